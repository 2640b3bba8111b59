"""Disclosure control: hierarchies, the search, l-diversity, t-closeness, risk, fairness, the marker.

k, l and t claimed by the report are measured again on the output by an independent implementation,
pycanon (CSIC's anonymity checker), on synthetic and on messy data."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pycanon import anonymity

from deid import (
    SUPPRESSED_COLUMN,
    CheckFailed,
    Disclosure,
    PolicyError,
    element_library,
    hierarchy_from_dict,
    protect_microdata,
    risk_chart_png,
    risk_figure,
)
from deid._disclosure import _Search

QIS = ["birth_year", "sex", "race", "zip3", "school_id"]
RACES = (
    ["700"] * 60 + ["100"] * 6 + ["600"] * 6 + ["201"] * 4 + ["204", "205", "206", "208", "299", "301", "400"]
)


def _synthetic(n: int = 600, seed: int = 3, messy: bool = False) -> pa.Table:
    rng = np.random.default_rng(seed)
    cols = {
        "birth_year": rng.choice([str(y) for y in range(2005, 2012)], n),
        "sex": rng.choice(["M", "F", "F", "M", "X"], n, p=[0.3, 0.3, 0.18, 0.18, 0.04]),
        "race": rng.choice(RACES, n),
        "zip3": rng.choice([f"9{i:02d}" for i in range(12)], n),
        "school_id": rng.choice([f"S{i}" for i in range(6)], n),
        "iep": rng.choice(["Y", "N"], n, p=[0.15, 0.85]),
        "el": rng.choice(["EO", "EL", "RFEP", "IFEP"], n),
    }
    table = {k: list(v) for k, v in cols.items()}
    if messy:  # empty cells, blank strings, odd codes, non-ASCII text
        for name in [*QIS, "iep"]:
            for i in rng.choice(n, n // 15, replace=False):
                table[name][i] = None if i % 2 else ""
        for i in rng.choice(n, 5, replace=False):
            table["race"][i] = "ZZ"
            table["school_id"][i] = "École Saint-Jean"
    return pa.table({k: pa.array(v, pa.string()) for k, v in table.items()})


def _hierarchies() -> dict:
    lib = element_library()
    return {
        "birth_year": lib["birth_date"].generalization(),
        "sex": lib["sex"].generalization(),
        "race": lib["race"].generalization(),
        "zip3": lib["zip"].generalization(),
        "school_id": lib["school_id"].generalization(),
    }


def _released_frame(out: pa.Table, qis: list[str], sensitive: list[str]) -> pd.DataFrame:
    """The output as pycanon reads it: an empty cell (withheld or missing) as a value of its own (pandas'
    groupby would otherwise drop the row); rows with no quasi-identifier value at all left out (they
    link to nothing; ARX counts them as suppressed records)."""
    df = out.to_pandas()
    for c in qis + sensitive:
        df[c] = df[c].replace("", None).fillna("(missing)").astype(str)
    shows = (df[qis] != "(missing)").any(axis=1) if qis else pd.Series(False, index=df.index)
    return df[shows].reset_index(drop=True)


@pytest.mark.parametrize("messy", [False, True])
@pytest.mark.parametrize(
    ("l_kind", "l_value", "t"), [("distinct", 2, None), ("entropy", 2, 0.4), (None, None, None)]
)
def test_k_l_t_claimed_equal_pycanon_on_the_output(messy, l_kind, l_value, t):
    table = _synthetic(messy=messy)
    # entropy 2-diversity needs a balanced element: iep (15% Y) cannot have it anywhere (tested below)
    sensitive = (("el",) if l_kind == "entropy" else ("iep", "el")) if (l_value or t) else ()
    rules = Disclosure(
        hierarchies=_hierarchies(), sensitive=sensitive, l=l_value, l_kind=l_kind or "distinct", t=t
    )
    out, r = protect_microdata(table, QIS, 5, rules)
    kept = [q for q in QIS if q not in r.removed]
    assert set(r.removed).isdisjoint(out.column_names)
    df = _released_frame(out, kept, list(sensitive))
    assert len(df) == r.linked_rows
    assert r.rows_suppressed <= 0.05 * r.rows
    k_pycanon = anonymity.k_anonymity(df, kept)
    assert r.k_achieved == k_pycanon >= 5
    for s in sensitive:
        if l_kind == "entropy":
            # pycanon floors exp(entropy) in floating point, so an exact 2.0 may come out as 1
            measured = anonymity.entropy_l_diversity(df, kept, [s])
            assert r.l_achieved[s] >= 2 and measured in (
                math.floor(r.l_achieved[s] + 1e-9),
                math.floor(r.l_achieved[s] + 1e-9) - 1,
            )
        elif l_kind == "distinct":
            assert r.l_achieved[s] == anonymity.l_diversity(df, kept, [s]) >= 2
        assert r.t_achieved[s] == pytest.approx(anonymity.t_closeness(df, kept, [s]), abs=1e-6)
        if t is not None:
            assert r.t_achieved[s] <= t + 1e-9


def test_search_finds_the_exhaustive_optimum_despite_pruning():
    table = _synthetic(n=400, seed=11)
    rules = Disclosure(hierarchies=_hierarchies(), sensitive=("iep",), l=2)
    _, r = protect_microdata(table, QIS, 5, rules, candidates=1)
    brute = _Search(table, QIS, 5, rules)
    scores = []
    for node in itertools.product(*[q.levels for q in brute.qis]):
        ev = brute.evaluate(node)
        if ev.feasible:
            scores.append((ev.score, ev.loss))
    best_score, best_loss = min(scores)
    assert r.candidates[0].score == pytest.approx(best_score, abs=1e-4)
    assert r.loss == pytest.approx(best_loss, abs=1e-4)
    # the pruning did prune: fewer transformations evaluated than exist
    assert r.search["evaluated"] < r.search["transformations"]
    assert r.search["pruned_by_bound"] + r.search["pruned_by_monotonicity"] > 0


def test_marker_tells_withheld_from_missing_and_report_counts_by_column_and_group():
    table = _synthetic(messy=True)
    # a transformation that needs local suppression (the search itself may prefer one that needs none)
    fixed = {"birth_year": "as released", "sex": "as released", "race": "federal", "zip3": "removed"}
    rules = Disclosure(
        hierarchies=_hierarchies(), suppression_limit=0.3, choice={**fixed, "school_id": "removed"}
    )
    out, r = protect_microdata(table, QIS, 5, rules)
    marker = [m.split(";") if m else [] for m in out.column(SUPPRESSED_COLUMN).to_pylist()]
    assert sum(1 for m in marker if m) == r.rows_suppressed > 0
    kept = [q for q in QIS if q not in r.removed]
    for q in kept:
        source = table.column(q).to_pylist()
        released = out.column(q).to_pylist()
        lost = 0
        for src, got, m in zip(source, released, marker, strict=True):
            if q in m:
                assert got is None and src not in (None, "")  # withheld: empty, and the marker names it
                lost += 1
            elif src in (None, ""):
                assert got is None  # missing in the source: empty, not named by the marker
            else:
                assert got is not None
        assert r.cells_lost_by_column[q] == lost
        groups = [g for g in r.groups if g.attribute == q]
        assert sum(g.students for g in groups) == r.values_by_column[q]
        assert sum(g.suppressed for g in groups) == lost
    assert all(set(m) <= set(kept) for m in marker)


def test_a_quasi_identifier_that_cannot_be_kept_leaves_the_release_said_plainly():
    # a unique value per row: no level but removal reaches k
    n = 60
    table = pa.table({"a": [str(i) for i in range(n)], "b": ["x", "y"] * (n // 2)})
    out, r = protect_microdata(table, ["a", "b"], 5, Disclosure())
    assert r.removed == ["a"] and "a" not in out.column_names
    assert r.lost_share("a") == 1.0 and r.lost_share("b") == 0.0
    assert any(s.startswith("a would be removed for 100% of students") for s in r.sentences)


def test_unreachable_k_and_single_valued_sensitive_element_are_one_sentence():
    table = pa.table({"a": ["1", "2", "3", "4"], "s": ["Y"] * 4})
    fixed = hierarchy_from_dict("a", {"kind": "map", "levels": [], "removable": False})
    with pytest.raises(CheckFailed) as e:
        protect_microdata(table, ["a"], 2, Disclosure(hierarchies={"a": fixed}, suppression_limit=0.0))
    assert "k = 2" in str(e.value) and "a to be left out" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(CheckFailed, match=r"^The sensitive element s has 1 distinct value in this extract"):
        protect_microdata(table, ["a"], 2, Disclosure(sensitive=("s",), l=2))
    with pytest.raises(CheckFailed, match="only 4 rows, fewer than k = 5"):
        protect_microdata(table, ["a"], 5, Disclosure())


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        (
            {
                "kind": "map",
                "levels": [
                    {"name": "a", "groups": {"X": ["1", "2"]}},
                    {"name": "b", "groups": {"P": ["1"], "Q": ["2"]}},
                ],
            },
            "not monotone between levels 'a' and 'b'",
        ),
        (
            {"kind": "date", "levels": [{"name": "two", "years": 2}, {"name": "five", "years": 5}]},
            "not monotone",
        ),
        ({"kind": "prefix", "levels": [{"name": "a", "keep": 2}, {"name": "b", "keep": 3}]}, "not monotone"),
        (
            {"kind": "number", "levels": [{"name": "a", "width": 3}, {"name": "b", "width": 5}]},
            "not monotone",
        ),
        (
            {"kind": "map", "levels": [{"name": "r", "rare": True}, {"name": "x", "groups": {"A": ["1"]}}]},
            "must be the last",
        ),
        ({"kind": "spiral"}, "has kind 'spiral'"),
    ],
)
def test_bad_hierarchy_is_one_sentence_naming_the_element(spec, fragment):
    with pytest.raises(PolicyError) as e:
        hierarchy_from_dict("race", spec)
    assert str(e.value).startswith("The hierarchy of element race") and fragment in str(e.value)


def test_library_hierarchies_generalize_as_documented():
    lib = element_library()
    race = lib["race"].generalization()
    assert race.level_names == ["as released", "federal", "broad", "other_rare", "removed"]
    assert race.generalize(["201", "400", "700", "303"], [1, 1, 1, 1], 1, 5) == [
        "Asian",
        "Asian",
        "White",
        "Native Hawaiian or Other Pacific Islander",
    ]
    assert lib["zip"].generalization().generalize(["917"], [1], 1, 5) == ["91x"]
    assert lib["birth_date"].generalization().generalize(["2009-05-03", "15"], [1, 1], 4, 5) == [
        "2008-2009",
        "14-15",
    ]
    assert lib["grade_level"].generalization().generalize(["10"], [1], 1, 5) == ["High (9-12)"]
    assert lib["school_id"].generalization().generalize(["a", "b"], [3, 20], 1, 11) == ["Other", "b"]


def test_fairness_warns_when_a_group_loses_more_than_twice_the_overall_share():
    # Z's 12 students lose their value of a (the QI with more groups goes first); others lose nothing
    rows = [(f"g{i % 20}", str(i % 4 * 1000)) for i in range(1000)] + [("Z", str(300 + i)) for i in range(12)]
    table = pa.table({"a": [g for g, _ in rows], "v": [v for _, v in rows]})
    fixed = {q: hierarchy_from_dict(q, {"kind": "map", "levels": [], "removable": False}) for q in ("a", "v")}
    _, r = protect_microdata(table, ["a", "v"], 4, Disclosure(hierarchies=fixed))
    z = next(g for g in r.groups if g.attribute == "a" and g.group == "Z")
    assert z.suppressed == 12 and r.cells_lost_by_column["a"] == 12
    assert any(w.startswith("a = Z: 100% of its 12 students lost it") for w in r.warnings)
    # with the column's words and the code's label, the clerk reads a group, not a code
    named = Disclosure(hierarchies=fixed, labels={"a": "Program"})
    _, r = protect_microdata(table, ["a", "v"], 4, named, code_labels={"a": {"Z": "Zoology"}})
    assert any(w.startswith("Program = Z — Zoology: 100% of its 12 students lost it") for w in r.warnings)


def test_search_prefers_not_erasing_a_group():
    # Group Z of column a (12 students) has a unique v each. Kept as it is, local suppression takes a
    # first (it has more groups), then v: Z is erased from a (loss 0.037 + 0.1 + 0.01). Merging Z's v
    # values with "0" and 1000 with 2000 loses 0.143 and erases nobody: the search takes it.
    rows = [(f"g{i % 20}", str(i % 4 * 1000)) for i in range(1000)] + [("Z", str(300 + i)) for i in range(12)]
    table = pa.table({"a": [g for g, _ in rows], "v": [v for _, v in rows]})
    merged = {"A": [str(300 + i) for i in range(12)] + ["0"], "B": ["1000", "2000"]}
    h = {
        "a": hierarchy_from_dict("a", {"kind": "map", "levels": [], "removable": False}),
        "v": hierarchy_from_dict(
            "v", {"kind": "map", "levels": [{"name": "merged", "groups": merged}], "removable": False}
        ),
    }
    _, r = protect_microdata(table, ["a", "v"], 4, Disclosure(hierarchies=h))
    assert r.levels["v"] == "merged" and r.rows_suppressed == 0
    feasible = list(_all_feasible(table, ["a", "v"], 4, Disclosure(hierarchies=h)))
    plain = next(c for c in feasible if c[0] == (0, 0))
    assert plain[2] < r.loss  # the erasing choice had less plain loss: fairness decided
    keep_v = Disclosure(hierarchies=h, choice={"v": "as released"})
    _, erasing = protect_microdata(table, ["a", "v"], 4, keep_v)
    assert next(g for g in erasing.groups if g.attribute == "a" and g.group == "Z").suppressed == 12


def _all_feasible(table, qis, k, rules):
    s = _Search(table, qis, k, rules)
    for node in itertools.product(*[q.levels for q in s.qis]):
        ev = s.evaluate(node)
        if ev.feasible:
            yield node, ev.score, ev.loss


def test_risk_measures_before_and_after():
    table = _synthetic()
    _, r = protect_microdata(table, QIS, 5, Disclosure(hierarchies=_hierarchies()))
    df = table.to_pandas()
    sizes = df.groupby(QIS, dropna=False).size()
    assert r.risk_before["highest"] == pytest.approx(1 / sizes.min())
    assert r.risk_before["sample_uniques"] == pytest.approx((sizes == 1).sum() / len(df))
    assert r.risk_before["marketer"] == pytest.approx(len(sizes) / len(df))
    assert r.risk_after["highest"] <= 1 / 5 and r.risk_after["sample_uniques"] == 0
    assert r.risk_after["records_at_risk"] == 0 and r.risk_threshold == pytest.approx(0.2)
    assert r.risk_before["records_at_risk"] > 0


def test_candidates_are_within_the_rules_and_the_clerks_choice_is_applied():
    table = _synthetic()
    rules = Disclosure(hierarchies=_hierarchies())
    _, r = protect_microdata(table, QIS, 5, rules)
    assert 1 <= len(r.candidates) <= 3
    for cand in r.candidates[1:]:
        pick = Disclosure(hierarchies=_hierarchies(), choice=cand.levels)
        out, chosen = protect_microdata(table, QIS, 5, pick)
        assert chosen.levels == cand.levels and chosen.loss == pytest.approx(cand.loss, abs=1e-4)
        df = _released_frame(out, [q for q in QIS if q not in chosen.removed], [])
        assert anonymity.k_anonymity(df, [q for q in QIS if q not in chosen.removed]) >= 5
    with pytest.raises(PolicyError, match="uses level 'decade', which its hierarchy does not allow"):
        protect_microdata(table, QIS, 5, Disclosure(hierarchies=_hierarchies(), choice={"race": "decade"}))


def test_policy_file_disclosure_block_round_trips_and_is_checked():
    from deid import Policy

    data = {
        "pathshare_policy": 1,
        "k": 5,
        "columns": {
            "race": {"treatment": "keep", "quasi_identifier": True},
            "iep": {"treatment": "keep"},
        },
        "disclosure": {"sensitive": ["iep"], "l": 2, "hierarchies": {"race": "race"}},
    }
    policy = Policy.from_dict(data)
    assert policy.disclosure.l == 2 and policy.disclosure.hierarchies["race"].kind == "map"
    again = Policy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert again.disclosure.hierarchies["race"].to_dict() == policy.disclosure.hierarchies["race"].to_dict()
    bad = json.loads(json.dumps(data))
    bad["disclosure"]["t"] = 2
    with pytest.raises(PolicyError, match="'t' must be a number between 0 and 1"):
        Policy.from_dict(bad)
    bad["disclosure"] = {"sensitive": ["nope"]}
    with pytest.raises(PolicyError, match="names nope, which is not an output column"):
        Policy.from_dict(bad)
    bad["disclosure"] = {"fairness": "always"}
    with pytest.raises(PolicyError, match="'fairness' must be prefer or require"):
        Policy.from_dict(bad)
    data["disclosure"]["fairness"] = "require"
    assert Policy.from_dict(json.loads(json.dumps(Policy.from_dict(data).to_dict()))).disclosure.fairness == (
        "require"
    )


def test_entropy_threshold_matches_definition():
    # a class with values Y, N, N, N: entropy < log 2, so entropy 2-diversity fails where distinct passes
    p = np.array([0.25, 0.75])
    assert -(p * np.log(p)).sum() < math.log(2)
    # classes 1 and 5 are 1:3 and 3:1 (entropy below log 2); 2, 3, 4 are balanced; so is the whole
    table = pa.table(
        {
            "a": [str(i) for i in range(1, 6) for _ in range(4)],
            "s": list("YNNNYNYNYNYNYYNNYYYN"),
        }
    )
    fixed = {"a": hierarchy_from_dict("a", {"kind": "map", "levels": [], "removable": True})}
    _, distinct = protect_microdata(table, ["a"], 2, Disclosure(hierarchies=fixed, sensitive=("s",), l=2))
    assert distinct.levels["a"] == "as released"
    _, entropy = protect_microdata(
        table,
        ["a"],
        2,
        Disclosure(hierarchies=fixed, sensitive=("s",), l=2, l_kind="entropy", suppression_limit=0.5),
    )
    assert entropy.rows_suppressed == 8 and entropy.l_achieved["s"] == pytest.approx(2.0)
    with pytest.raises(CheckFailed, match="too uneven in this extract for entropy l-diversity"):
        protect_microdata(
            pa.table({"a": ["1"] * 8, "s": ["Y"] + ["N"] * 7}),
            ["a"],
            2,
            Disclosure(sensitive=("s",), l=2, l_kind="entropy"),
        )


def test_a_quasi_identifier_with_no_value_at_all_is_handled():
    # an element the extract lacks arrives as an all-empty column: nothing to group, nothing lost
    table = pa.table({"a": ["x", "y"] * 10, "empty": pa.nulls(20, pa.string())})
    out, r = protect_microdata(table, ["a", "empty"], 5, Disclosure())
    assert "empty" in out.column_names and r.k_achieved == 10
    assert r.values_by_column["empty"] == 0 and r.rows_suppressed == 0


def _demo_like() -> pa.Table:
    """The demo's cohort (``pathshare demo``'s extract: 2,000 K-12 records, seed 7, grades 9-12) with the
    demo agreement's quasi-identifiers as its treatments release them (birth year, ZIP3)."""
    from deid.synth import generate

    t = generate("k12", 2000, seed=7).table
    t = t.filter(pc.is_in(t.column("Grade"), value_set=pa.array(["09", "10", "11", "12"])))
    return pa.table(
        {
            "birth_year": pc.utf8_slice_codeunits(t.column("Birth Date"), 0, 4),
            "sex": t.column("Gender"),
            "race": t.column("Race Code"),
            "zip3": pc.utf8_slice_codeunits(t.column("ZIP"), 0, 3),
            "school_id": t.column("School Code"),
        }
    )


def _worst_group_ratio(source: pd.DataFrame, out: pd.DataFrame, qis: list[str], k: int) -> float:
    """Measured on the output with pandas: over the quasi-identifiers kept, the largest share of a group
    (a code held by at least k students) whose value was withheld, over its column's share."""
    worst = 0.0
    for q in (q for q in qis if q in out.columns):
        has = source[q].fillna("") != ""
        lost = has & (out[q].fillna("") == "")
        if not lost.any():
            continue
        frame = pd.DataFrame({"g": source[q][has], "lost": lost[has]})
        by_group = frame.groupby("g")["lost"].agg(["size", "mean"])
        worst = max(worst, by_group[by_group["size"] >= k]["mean"].max() / (lost.sum() / has.sum()))
    return worst


def test_demo_cohort_the_clerk_is_offered_a_release_where_no_group_loses_twice_its_share():
    """Issue 16's fairness target on the demo's cohort at k = 11: when the search's choice singles out a
    group, a release where no group of at least k students loses its value more than twice as often as
    its column is among the candidates; applied, it meets the bound (measured with pandas), k (pycanon),
    and keeps race for >= 90% of the students in >= 4 groups."""
    table = _demo_like()
    h = _hierarchies()
    h["race"] = h["race"].restricted(None, False)  # the demo agreement keeps race
    _, r = protect_microdata(table, QIS, 11, Disclosure(hierarchies=h))
    src = table.to_pandas()
    chosen = r.candidates[0]
    assert chosen.groups_warned == len(r.warnings) > 0  # (said to the clerk, and in the report)
    fair = next(c for c in r.candidates if c.groups_warned == 0)
    assert fair.loss > chosen.loss and "more than twice" not in fair.sentence
    out, got = protect_microdata(table, QIS, 11, Disclosure(hierarchies=h, choice=fair.levels))
    assert got.warnings == [] and got.loss == pytest.approx(fair.loss, abs=1e-4)
    released = out.to_pandas()
    assert _worst_group_ratio(src, released, QIS, 11) <= 2.0
    kept = [q for q in QIS if q not in got.removed]
    assert anonymity.k_anonymity(_released_frame(out, kept, []), kept) >= 11
    race = released["race"].fillna("")
    assert (race != "").sum() / (src["race"].fillna("") != "").sum() >= 0.9 and race[
        race != ""
    ].nunique() >= 4
    # the choice's own worst group is what the report warns about
    chosen_out, _ = protect_microdata(table, QIS, 11, Disclosure(hierarchies=h, choice=chosen.levels))
    assert _worst_group_ratio(src, chosen_out.to_pandas(), QIS, 11) > 2.0


def test_risk_charts_draw_the_results_numbers():
    """The figure the Risk step shows and the release report embeds: its bars are the result's numbers."""
    table = _synthetic()
    rules = Disclosure(hierarchies=_hierarchies(), suppression_limit=0.3, choice={"zip3": "removed"})
    _, r = protect_microdata(table, QIS, 5, rules)
    d = r.to_dict()
    sizes, losses, groups = risk_figure(d).axes
    assert [p.get_height() for p in sizes.patches] == list(d["class_sizes"].values())
    assert [p.get_width() for p in losses.patches] == pytest.approx(
        [100 * v for v in d["loss_by_column"].values()]
    )
    shown = groups.get_title().split(":")[0]
    mine = sorted((g for g in d["groups"] if g["attribute"] == shown), key=lambda g: -g["students"])[:12]
    assert shown not in r.removed and sum(g["suppressed"] for g in mine) > 0
    bars = [p.get_height() for p in groups.patches]
    assert bars == [g["students"] for g in mine] + [g["students"] - g["suppressed"] for g in mine]
    assert risk_chart_png(d).startswith(b"\x89PNG")


def _restorable_cells(source: pd.DataFrame, out: pd.DataFrame, r, k: int) -> int:
    """Withheld values that one row could get back without any group of the output falling below k —
    measured on the output with pandas: each row's class (an empty cell a value of its own, rows showing
    no value left out), and the value a withheld cell would show at the release's level."""
    kept = [q for q in r.quasi_identifiers if q not in r.removed]
    shown = out[kept].fillna("").astype(str)
    level_of = {q: _hierarchies()[q].level_names.index(r.levels[q]) for q in kept}
    released: dict[str, dict[str, str]] = {}
    for q in kept:
        values = source[q].dropna()
        values = values[values != ""].value_counts()
        if level_of[q] == 0:
            released[q] = {v: v for v in values.index}
        else:
            labels = _hierarchies()[q].generalize(list(values.index), list(values.values), level_of[q], k)
            released[q] = dict(zip(values.index, labels, strict=True))
    keys = shown.apply(tuple, axis=1)
    counted = shown.ne("").any(axis=1)
    size = keys[counted].value_counts()
    count = 0
    for i in np.flatnonzero(out[SUPPRESSED_COLUMN].fillna("") != ""):
        for q in out[SUPPRESSED_COLUMN].iloc[i].split(";"):
            row = shown.iloc[i].copy()
            old = tuple(row)
            row[q] = released[q][source[q].iloc[i]]
            new = tuple(row)
            old_ok = not counted.iloc[i] or size.get(old, 0) - 1 in (0,) or size.get(old, 0) - 1 >= k
            if old_ok and size.get(new, 0) + 1 >= k:
                count += 1
    return count


@pytest.mark.parametrize("seed", [6, 7])
def test_required_fairness_is_reached_by_the_exact_suppression_where_the_orders_miss_it(seed):
    """fairness = require on an extract where both suppression orders single out a group at every cheap
    transformation: the exact fair suppression (a program solved by HiGHS) finds a release in which no
    group of at least k students loses its value more than twice as often as its column — measured on
    the output with pandas —, k holds as pycanon measures it, every withheld value is needed for k (none
    could be given back: the rule is not met by withholding more to dilute a column's share), and it
    loses less than the fair release the orders find. (Seed 7: the first solution withholds needless
    values, which are cut off.)"""
    table = _synthetic(n=600, seed=seed)
    _, preferred = protect_microdata(table, QIS, 3, Disclosure(hierarchies=_hierarchies()))
    assert preferred.warnings  # the search's own choice singles out a group
    by_orders = next(c for c in preferred.candidates if c.groups_warned == 0)
    out, r = protect_microdata(table, QIS, 3, Disclosure(hierarchies=_hierarchies(), fairness="require"))
    assert r.warnings == [] and r.search["exact_fair_suppression"]["found"] >= 1
    assert r.loss < by_orders.loss - 0.05
    src, released = table.to_pandas(), out.to_pandas()
    assert 0 < r.rows_suppressed <= 0.05 * len(src)
    assert _worst_group_ratio(src, released, QIS, 3) <= 2.0
    kept = [q for q in QIS if q not in r.removed]
    assert anonymity.k_anonymity(_released_frame(out, kept, []), kept) == r.k_achieved >= 3
    assert _restorable_cells(src, released, r, 3) == 0
    # the same measure finds the cells the orders' suppression withholds needlessly (it can fail)
    heuristic_out, heuristic = protect_microdata(
        table, QIS, 3, Disclosure(hierarchies=_hierarchies(), choice=preferred.levels)
    )
    assert heuristic.rows_suppressed > 0 and _worst_group_ratio(src, heuristic_out.to_pandas(), QIS, 3) > 2.0


def test_demo_cohort_no_release_keeping_sex_and_race_is_fair_and_requiring_it_says_so():
    """On the demo's cohort at k = 11 the 15 students of sex X can keep their sex only in one group
    without race (no race has 11 of them), so two of them lose a race held by 29 and 32 students: no local
    suppression of the students in groups smaller than k keeps every group within twice its column's
    share while sex and race stay — the exact program proves it at every transformation. Requiring
    fairness then is refused in one sentence naming the group and what to change."""
    table = _demo_like()
    h = _hierarchies()
    h["race"] = h["race"].restricted(None, False)
    h["sex"] = h["sex"].restricted(None, False)
    with pytest.raises(CheckFailed) as e:
        protect_microdata(table, QIS, 11, Disclosure(hierarchies=h, fairness="require"))
    message = str(e.value)
    assert "more than twice as often as its column" in message and "\n" not in message
    assert "set fairness to prefer" in message and "of the students with X, against" in message
    search = _Search(table, QIS, 11, Disclosure(hierarchies=h, fairness="require"))
    assert search.fair_search() is None
    assert search.fair_stats["proved_none"] == search.fair_stats["tried"] > 0
    # sex may leave: then a fair release exists, keeps race for everyone, and is what is required
    h["sex"] = _hierarchies()["sex"]
    out, r = protect_microdata(table, QIS, 11, Disclosure(hierarchies=h, fairness="require"))
    assert r.warnings == [] and "sex" in r.removed
    # what keeping sex would cost is shown beside it, marked as not allowed, and cannot be picked
    blocked = [c for c in r.candidates if not c.allowed]
    assert r.candidates[0].allowed and blocked and all(c.groups_warned for c in blocked)
    assert "sex" not in blocked[0].removed and "which the agreement does not allow" in blocked[0].sentence
    with pytest.raises(CheckFailed, match="more than twice as often"):
        protect_microdata(
            table, QIS, 11, Disclosure(hierarchies=h, fairness="require", choice=blocked[0].levels)
        )
    src, released = table.to_pandas(), out.to_pandas()
    assert _worst_group_ratio(src, released, QIS, 11) <= 2.0
    kept = [q for q in QIS if q not in r.removed]
    assert anonymity.k_anonymity(_released_frame(out, kept, []), kept) >= 11
    race = released["race"].fillna("")
    assert (race != "").sum() / (src["race"].fillna("") != "").sum() >= 0.9
    assert race[race != ""].nunique() >= 4


def test_a_fair_suppression_that_needs_needless_withholding_is_not_taken():
    """At this transformation of this extract, the only suppressions where no group loses its value more
    than twice as often as its column withhold values that could be given back without breaking k (they
    would only make another group's share look smaller): the program's solutions are cut off, and the
    clerk's pick of it under fairness = require is refused, not met by withholding more."""
    table = _synthetic(n=600, seed=7)
    pick = {"birth_year": "2_years", "sex": "as released", "race": "removed", "zip3": "removed"}
    pick["school_id"] = "as released"
    search = _Search(table, QIS, 3, Disclosure(hierarchies=_hierarchies(), fairness="require"))
    node = tuple(next(lv for lv in q.levels if q.level_name(lv) == pick[q.name]) for q in search.qis)
    assert search.fair_suppress(node) is None and search.fair_stats["needless_cut"] > 0
    with pytest.raises(CheckFailed, match="more than twice as often as its column"):
        protect_microdata(
            table, QIS, 3, Disclosure(hierarchies=_hierarchies(), fairness="require", choice=pick)
        )
    # without fairness required the same pick is a release (k holds), warned about
    _, r = protect_microdata(table, QIS, 3, Disclosure(hierarchies=_hierarchies(), choice=pick))
    assert r.warnings and r.k_achieved >= 3


def test_required_fairness_on_a_table_of_classes_gives_what_the_rows_give():
    """The streaming run protects a table of classes with their counts as weights: the exact fair
    suppression reads the weights, so the fair release and the refusal are those the rows give."""
    from test_disclosure_weighted import _classes
    from test_disclosure_weighted import _result as comparable

    rules = Disclosure(hierarchies=_hierarchies(), fairness="require")
    table = _synthetic(n=600, seed=6)
    _, whole = protect_microdata(table, QIS, 3, rules)
    classes, counts = _classes(table, QIS)
    _, weighted = protect_microdata(classes, QIS, 3, rules, weights=counts)
    assert whole.search["exact_fair_suppression"]["found"] and comparable(weighted) == comparable(whole)
    h = _hierarchies()
    h["race"] = h["race"].restricted(None, False)
    h["sex"] = h["sex"].restricted(None, False)
    strict = Disclosure(hierarchies=h, fairness="require")
    demo = _demo_like()
    with pytest.raises(CheckFailed) as rows_said:
        protect_microdata(demo, QIS, 11, strict)
    classes, counts = _classes(demo, QIS)
    with pytest.raises(CheckFailed) as classes_said:
        protect_microdata(classes, QIS, 11, strict, weights=counts)
    assert str(classes_said.value) == str(rows_said.value)


def test_the_exact_fair_suppression_is_budgeted_in_work_not_seconds(monkeypatch):
    """The same extract gets the same release on a loaded machine: every program HiGHS solves is given a
    node limit, and the seconds (a safety net) are far above what a cohort's programs take. (A 1.5 s limit
    cut programs off on a loaded machine and changed the release.)"""
    import scipy.optimize

    import deid._disclosure as disclosure

    seen: list[dict] = []
    real = scipy.optimize.milp

    def spy(*args, **kwargs):
        seen.append(dict(kwargs.get("options") or {}))
        return real(*args, **kwargs)

    monkeypatch.setattr(scipy.optimize, "milp", spy)
    table = _synthetic(n=600, seed=7)
    out, r = protect_microdata(table, QIS, 3, Disclosure(hierarchies=_hierarchies(), fairness="require"))
    assert seen and all(o.get("node_limit") == disclosure.FAIR_BB_NODES for o in seen)
    assert all(o["time_limit"] > 5 for o in seen)
    stats = r.search["exact_fair_suppression"]
    assert stats["out_of_time"] == 0 and stats["found"] >= 1
    # and the release is the one a run with no time limit at all gives
    monkeypatch.setattr(disclosure, "FAIR_SECONDS", 1e9)
    out_again, r_again = protect_microdata(
        table, QIS, 3, Disclosure(hierarchies=_hierarchies(), fairness="require")
    )
    assert out_again.equals(out) and r_again.levels == r.levels and r_again.loss == r.loss
