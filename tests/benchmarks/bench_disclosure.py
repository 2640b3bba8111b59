"""Disclosure-control benchmark (issue 16): the search against today's greedy suppression and anjana.

Data: the demo's cohort (``pathshare demo``'s synthetic high-school extract, 2,000 records → grades
9-12) at k = 11, PATHSHARE_BENCH_DISCLOSURE_ROWS (default 100,000) synthetic K-12 rows at k = 5 and
11, and 1,000,000 rows at k = 11 (PATHSHARE_BENCH_DISCLOSURE_1M=0 skips them). The quasi-identifiers are
the demo agreement's: birth year, sex, race, ZIP3, school, released by the agreement's treatments first.

Methods, run on the same table in the same run:

* ``greedy``: today's cell suppression (deid.suppress_to_k, the engine before this issue);
* ``search``: deid.protect_microdata with the element library's hierarchies and the demo agreement's
  restriction (race may be generalized, never left out), suppression limit 5%;
* ``search-fair``: ``search`` with fairness required (the demo agreement's setting): the least lossy
  release where no group loses its value more than twice as often as its column (exact fair local
  suppression, deid/_disclosure.py), or refused — then the row says why;
* ``search-free``: the same with no restriction (any quasi-identifier may leave);
* ``search-50%``: ``search`` with a 50% suppression limit (what it takes to beat ``greedy``'s loss, which
  touches nearly every row);
* ``anjana``: anjana.anonymity.k_anonymity (another Python anonymization library) with the same
  hierarchies (each level of ours, then "*"), record suppression up to 5% (rows it suppresses are
  dropped from its output and count as lost). Skipped above 200,000 rows (its per-cell Python loops).

Measured for each: cells lost per quasi-identifier (withheld, left out or "*"), the loss (non-uniform
entropy as in deid/_disclosure.py, computed the same way from each output), rows suppressed, the worst
group's loss (a value of a QI held by at least k students: the share of them that lost it, against
the column's share), race kept for students who have one and how many race groups remain, seconds,
and the peak of Python/numpy allocations (tracemalloc, in a second run), and the search's time over
greedy's. Printed and written to bench-results/disclosure.json.

The loss is measured from each output by the same function (``_loss``): a cell greedy blanks is charged
exactly as a cell the search withholds (log2(N/n_v) bits), a row anjana drops loses every cell, and the
search's own reported loss must equal the measured one (checked). The baselines are not held to the
same rule, though: greedy has no suppression limit (on the demo it withholds values of 98% of the
students), the search and anjana withhold from at most 5%. ``least_loss_possible`` proves what that
costs: at every lattice node, the rows of classes smaller than k that have no empty value must lose a
value under *any* cell suppression (no other row can join their class), so nodes where they exceed the
limit are out, and the least generalization loss over the other nodes bounds from below the loss of
every full-domain generalization with any local suppression within the limit.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deid import (
    CheckFailed,
    ColumnRule,
    Disclosure,
    TreatmentContext,
    element_library,
    make_treatment,
    protect_microdata,
    suppress_to_k,
)
from deid._disclosure import _combine, _Search
from deid.synth import generate

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "disclosure.json"
ROWS = int(os.environ.get("PATHSHARE_BENCH_DISCLOSURE_ROWS", "100000"))
QIS = ["birth_year", "sex", "race", "zip3", "school_id"]
ELEMENT = {"birth_year": "birth_date", "sex": "sex", "race": "race", "zip3": "zip", "school_id": "school_id"}
ANJANA_MAX_ROWS = 200_000


def _released(rows: int, seed: int, high_school: bool, k: int) -> pa.Table:
    """The QI columns as the demo agreement's treatments release them (before any k step)."""
    t = generate("k12", rows, seed=seed).table
    if high_school:
        t = t.filter(pc.is_in(t.column("Grade"), value_set=pa.array(["09", "10", "11", "12"])))
    ctx = TreatmentContext(table=t, k=k)

    def treat(src: str, treatment: str, **params: object) -> pa.ChunkedArray:
        out = make_treatment(ColumnRule(src, treatment, params=params)).fit_apply(t.column(src), ctx)
        return out if isinstance(out, pa.ChunkedArray) else pa.chunked_array([out])

    return pa.table(
        {
            "birth_year": treat("Birth Date", "generalize_date", to="year"),
            "sex": t.column("Gender"),
            "race": t.column("Race Code"),
            "zip3": treat("ZIP", "zip3", min_count=k),
            "school_id": t.column("School Code"),
            "iep": t.column("IEP"),
        }
    )


def _hierarchies(race_removable: bool) -> dict:
    lib = element_library()
    out = {q: lib[ELEMENT[q]].generalization() for q in QIS}
    if not race_removable:
        out["race"] = out["race"].restricted(None, False)
    return out


def _loss(source: pd.DataFrame, output: pd.DataFrame, k: int) -> dict:
    """Non-uniform entropy (deid/_disclosure.py's measure, computed from the data alone) and the group
    losses of ``output`` (rows aligned with ``source``; a QI missing from ``output``, an empty cell or "*"
    where the source had a value is lost: log2(N/n_v) bits; a value released as o keeps P(v | o))."""
    col_losses, by_col, worst = [], {}, {"ratio": 0.0, "share": 0.0, "group": ""}
    for q in QIS:
        src = source[q].replace("", None)
        has = src.notna()
        n_has = int(has.sum())
        n_v = src[has].map(src[has].value_counts())
        total_bits = float(np.log2(n_has / n_v).sum()) or 1.0
        if q not in output.columns:
            by_col[q] = {"lost": n_has, "lost_share": 1.0, "removed": True, "loss": 1.0}
            col_losses.append(1.0)
            continue
        out = output[q].replace({"": None, "*": None})
        lost = has & out.isna()
        kept = has & ~lost
        pairs = pd.DataFrame({"s": src[kept], "o": out[kept]})
        n_o = pairs["o"].map(pairs["o"].value_counts())
        n_so = pairs.groupby(["s", "o"])["s"].transform("size")
        bits = float(np.log2(n_o / n_so).sum()) + float(np.log2(n_has / n_v[lost[has]]).sum())
        col_losses.append(bits / total_bits)
        share = float(lost.sum()) / max(1, n_has)
        by_col[q] = {
            "lost": int(lost.sum()),
            "lost_share": round(share, 4),
            "removed": False,
            "loss": round(bits / total_bits, 4),
        }
        groups = pd.DataFrame({"g": src[has], "lost": lost[has]}).groupby("g")["lost"].agg(["size", "mean"])
        groups = groups[groups["size"] >= k]
        if len(groups) and share > 0:
            g = groups["mean"].idxmax()
            ratio = float(groups["mean"].max()) / share
            if ratio > worst["ratio"]:
                worst = {
                    "ratio": round(ratio, 2),
                    "share": round(float(groups["mean"].max()), 4),
                    "group": f"{q} = {g}",
                    "column_share": round(share, 4),
                }
    lost_cells = sum(col_losses)
    total_cells = len(col_losses)
    race_src = source["race"].replace("", None)
    race_out = output["race"].replace({"": None, "*": None}) if "race" in output.columns else None
    with_race = race_src.notna()
    kept = int((with_race & race_out.notna()).sum()) if race_out is not None else 0
    return {
        "loss": round(lost_cells / max(1, total_cells), 4),
        "by_column": by_col,
        "worst_group": worst,
        "race_kept_share": round(kept / max(1, int(with_race.sum())), 4),
        "race_groups": int(race_out.dropna().nunique()) if race_out is not None else 0,
    }


def _measure(func):
    """The result and seconds of an untraced run, and the peak of a second, traced run (tracemalloc slows
    code that allocates often, the search more than greedy: times come from the untraced run)."""
    t0 = time.perf_counter()
    out = func()
    seconds = time.perf_counter() - t0
    tracemalloc.start()
    func()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, round(seconds, 3), round(peak / 2**20, 1)


def _greedy(table: pa.Table, k: int) -> tuple[pd.DataFrame, int]:
    out, risk = suppress_to_k(table, QIS, k)
    return out.to_pandas(), risk.rows_with_suppression


def _search(
    table: pa.Table, k: int, race_removable: bool, limit: float = 0.05, fairness: str = "prefer"
) -> tuple[pd.DataFrame | None, int, dict]:
    rules = Disclosure(hierarchies=_hierarchies(race_removable), suppression_limit=limit, fairness=fairness)
    try:
        out, r = protect_microdata(table, QIS, k, rules, candidates=1)
    except CheckFailed as e:  # fairness required and no fair release found: refused, said why
        return None, 0, {"refused": str(e)}
    return (
        out.to_pandas(),
        r.rows_suppressed,
        {"levels": r.levels, "loss_reported": r.loss, "search": r.search},
    )


def _least_loss_possible(table: pa.Table, k: int, race_removable: bool, limit: float = 0.05) -> float:
    """A lower bound of the loss of any full-domain generalization + local suppression within ``limit``
    (see the module doc)."""
    s = _Search(table, QIS, k, Disclosure(hierarchies=_hierarchies(race_removable), suppression_limit=limit))
    best = 1.0
    for node in itertools.product(*[q.levels for q in s.qis]):
        codes = [s.codes(i, lv) for i, lv in enumerate(node)]
        size = np.bincount(dense := _combine(codes, s.m), weights=s.weight)
        shown = [c != 0 for (c, _), q, lv in zip(codes, s.qis, node, strict=True) if lv != q.removed_level]
        full = np.logical_and.reduce(shown) if shown else np.zeros(s.m, bool)
        if s.weight[(size[dense] < k) & full].sum() <= s.limit_rows:
            best = min(best, sum(q.gen_loss[lv] for q, lv in zip(s.qis, node, strict=True)) / len(s.qis))
    return round(best, 4)


def _anjana_hierarchies(source: pd.DataFrame, k: int) -> dict:
    hs = _hierarchies(True)
    out = {}
    for q in QIS:
        values = sorted(source[q].unique().tolist())
        counts = source[q].value_counts().reindex(values).tolist()
        h = hs[q]
        levels = {0: values}
        for i in range(1, len(h.levels) + 1):
            levels[i] = h.generalize(values, counts, i, k)
        levels[len(levels)] = ["*"] * len(values)
        out[q] = {lvl: pd.Series(v, dtype=object) for lvl, v in levels.items()}
    return out


def _anjana(source: pd.DataFrame, k: int) -> tuple[pd.DataFrame, int]:
    from anjana.anonymity import k_anonymity_inner

    # object columns: anjana's type checks take numpy arrays and lists, not pandas' Arrow-backed strings
    data = source[QIS].astype(object)
    hierarchies = _anjana_hierarchies(data, k)
    # pandas 3 makes every new string column Arrow-backed, which anjana's type checks refuse
    with pd.option_context("future.infer_string", False):
        anon, supp, _levels = k_anonymity_inner(data, [], QIS, k, 5, hierarchies)
    if "index" in anon.columns:  # suppressed rows dropped: put the survivors back in place
        anon = anon.set_index("index")
    aligned = anon.reindex(range(len(source)))
    return aligned.reset_index(drop=True), int(supp)


def _run(name: str, table: pa.Table, k: int) -> dict:
    source = table.to_pandas().fillna("")
    # anjana and pycanon group with pandas, which drops missing keys: missing is a value of its own there
    filled = source.replace("", "(missing)")
    results: dict = {"rows": table.num_rows, "k": k, "methods": {}}
    (g_out, g_rows), secs, mem = _measure(lambda: _greedy(table, k))
    results["methods"]["greedy"] = {
        **_loss(source, g_out, k),
        "rows_suppressed": g_rows,
        "seconds": secs,
        "peak_mb": mem,
    }
    for label, removable, limit, fairness in (
        ("search", False, 0.05, "prefer"),
        ("search-fair", False, 0.05, "require"),
        ("search-free", True, 0.05, "prefer"),
        ("search-50%", False, 0.5, "prefer"),
    ):
        (s_out, s_rows, extra), secs, mem = _measure(
            lambda removable=removable, limit=limit, fairness=fairness: _search(
                table, k, removable, limit, fairness
            )
        )
        if s_out is None:
            results["methods"][label] = {"skipped": extra["refused"], "seconds": secs}
            continue
        results["methods"][label] = {
            **_loss(source, s_out, k),
            "rows_suppressed": s_rows,
            "seconds": secs,
            "peak_mb": mem,
            **extra,
        }
    if table.num_rows <= ANJANA_MAX_ROWS:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # anjana prints its progress
            (a_out, a_rows), secs, mem = _measure(lambda: _anjana(filled, k))
        a_out = a_out.replace("(missing)", "")
        results["methods"]["anjana"] = {
            **_loss(source, a_out, k),
            "rows_suppressed": a_rows,
            "seconds": secs,
            "peak_mb": mem,
        }
    else:
        results["methods"]["anjana"] = {
            "skipped": f"more than {ANJANA_MAX_ROWS:,} rows (per-cell Python loops)"
        }
    greedy_s = max(results["methods"]["greedy"]["seconds"], 1e-6)
    for m in results["methods"].values():
        if "loss_reported" in m:
            m["time_over_greedy"] = round(m["seconds"] / greedy_s, 2)
            m["loss_matches_report"] = abs(m["loss"] - m["loss_reported"]) < 1e-3
    if table.num_rows <= 5000:
        results["least_loss_possible"] = {
            "race_kept": _least_loss_possible(table, k, False),
            "free": _least_loss_possible(table, k, True),
        }
    print(f"\n== {name}: {table.num_rows:,} rows, k = {k}")
    for method, m in results["methods"].items():
        if "skipped" in m:
            took = f" ({m['seconds']} s)" if "seconds" in m else ""
            print(f"  {method:12s} skipped: {m['skipped']}{took}")
            continue
        lost = ", ".join(
            f"{q} {'out' if c['removed'] else format(c['lost_share'], '.0%')}"
            for q, c in m["by_column"].items()
        )
        w = m["worst_group"]
        print(
            f"  {method:12s} loss {m['loss']:.3f}  rows withheld {m['rows_suppressed']:,}  lost: {lost}  "
            f"race kept {m['race_kept_share']:.1%} in {m['race_groups']} groups  worst group "
            f"{w.get('group', '')} {w.get('share', 0):.0%} ({w.get('ratio', 0)}x)  {m['seconds']} s  "
            f"{m['peak_mb']} MB"
            + (f"  ({m['time_over_greedy']}x greedy's time)" if "time_over_greedy" in m else "")
        )
    if "least_loss_possible" in results:
        print(f"  least loss any transformation can reach within 5%: {results['least_loss_possible']}")
    return results


def test_bench_disclosure():
    runs = {"demo_k11": _run("demo cohort", _released(2000, 7, True, 11), 11)}
    big = _released(ROWS, 1, False, 5)
    runs[f"synthetic_{ROWS}_k5"] = _run("synthetic", big, 5)
    big11 = _released(ROWS, 1, False, 11)
    runs[f"synthetic_{ROWS}_k11"] = _run("synthetic", big11, 11)
    if os.environ.get("PATHSHARE_BENCH_DISCLOSURE_1M", "1") != "0":
        for k in (5, 11):
            runs[f"synthetic_1000000_k{k}"] = _run("synthetic", _released(1_000_000, 1, False, k), k)
    demo = runs["demo_k11"]["methods"]
    ours = demo["search-fair"]  # the demo agreement requires fairness
    if "skipped" in ours:
        raise AssertionError(f"the demo's fair release was refused: {ours['skipped']}")
    targets = {
        "no_qi_kept_over_half_lost": all(
            c["removed"] or c["lost_share"] <= 0.5 for c in ours["by_column"].values()
        ),
        "race_kept_90pct_4_groups": ours["race_kept_share"] >= 0.9 and ours["race_groups"] >= 4,
        "no_group_over_twice_overall": ours["worst_group"]["ratio"] <= 2.0,
        "loss_below_both_baselines": ours["loss"] < demo["greedy"]["loss"]
        and ("skipped" in demo["anjana"] or ours["loss"] < demo["anjana"]["loss"]),
        # greedy withholds from 98% of the students: no transformation within 5% can match its loss
        "greedy_loss_reachable_within_limit": runs["demo_k11"]["least_loss_possible"]["race_kept"]
        <= demo["greedy"]["loss"],
    }
    if "synthetic_1000000_k11" in runs:
        targets["search_1m_within_3x_greedy"] = (
            runs["synthetic_1000000_k11"]["methods"]["search"]["time_over_greedy"] <= 3.0
        )
    runs["demo_targets"] = targets
    print("\ndemo targets:", json.dumps(targets))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(runs, indent=2) + "\n", encoding="utf-8")
    # The bench measures; it holds the search to a loss within 0..1 that equals what it reports.
    measured = [r for r in runs.values() if isinstance(r, dict) and "methods" in r]
    assert all(r["methods"]["search"]["loss"] <= 1 for r in measured)
    # the loss the bench measures from the output is the loss the search reports (one measure for all)
    assert all(
        m["loss_matches_report"] for r in measured for m in r["methods"].values() if "loss_reported" in m
    )
