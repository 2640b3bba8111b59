"""Benchmark: pathway outcomes on PATHSHARE_BENCH_ROWS linked synthetic students (default 1,000,000),
10 metrics × 5 breakdowns (school, CTE pathway, sex, race, English-learner status).

The students are ``deid.synth``'s K-12 population (school, pathway, sex, race, EL status, dual
enrollment, grade as generated); the college and employer side a link would add (first term, units,
persistence, transfer-level courses, award, graduation, CTE status) is drawn per student from fixed
rates with a fixed seed — the synthetic college file holds one term per student and no outcomes
(docs/synth.md), so the linked frame is built here, not by the linker (bench_linkage measures that).

Measured, in a subprocess of its own (peak RSS is the scenario's):
* counting the tables, against the baseline of one pandas ``groupby().size()`` per table;
* protecting them with the MIP (HiGHS) and with the simple heuristic ("also hide the smallest other
  cell of the row or column", then grow until the attacker check passes) — cells hidden by each at the
  same protection, and the attacker check (LP min/max of every hidden cell) on both results: recovered
  exactly, and narrower than the protection — both must be zero.

* two-way tables (race × sex, English-learner status × race, with their margins) for
  two metrics: the MIP (per cohort, bounded by the heuristic's answer, within its node budget; which
  way each cohort took is printed), the grown heuristic, and the issue's plain heuristic (not grown),
  whose recovered and too-narrow cells the attacker check counts.

Figures are printed and written to bench-results/outcomes.json. The test asserts the privacy claims
(nothing recovered) and that the MIP hides no more cells than the heuristic; it asserts nothing on speed.

    PATHSHARE_BENCH_ROWS=100000 .venv/bin/python -m pytest -q -s tests/benchmarks/bench_outcomes.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "outcomes.json"
METRICS = ["dual_enrollment", "cte_concentrators", "cte_completers", "hs_graduation", "college_enrollment",
           "persistence", "units_12", "units_24", "transfer_math_english", "award_3yr"]  # fmt: skip
BY = ["school_id", "cte_pathway", "sex", "race", "english_learner_status"]
# Two-way tables (each with its one-way margins), where complementary suppression is a real choice.
CROSSED_METRICS = ["dual_enrollment", "college_enrollment"]
CROSSED = ["race*sex", "english_learner_status*race"]
MIN_CELL = 11


def linked_frame(rows: int, seed: int = 0):  # -> pd.DataFrame
    import numpy as np
    import pandas as pd

    from deid.synth import generate

    table = generate("k12", rows, seed=seed).table
    cols = {"Grade": "grade_level", "School Code": "school_id", "CTE Pathway": "cte_pathway",
            "Gender": "sex", "Race Code": "race", "EL Status": "english_learner_status",
            "Dual Enrollment": "dual_enrollment"}  # fmt: skip
    frame = pd.DataFrame({el: table.column(c).to_pandas().astype("category") for c, el in cols.items()})
    rng = np.random.default_rng(seed + 1)
    n = len(frame)
    in_pathway = frame.cte_pathway.astype("string").fillna("").to_numpy() != ""
    conc = in_pathway & (rng.random(n) < 0.55)

    def flag(p):
        return pd.Categorical(np.where(p, "Y", "N"))

    senior = frame.grade_level.astype("string").to_numpy() == "12"
    enrolled = senior & (rng.random(n) < 0.42)
    term = np.where(enrolled, rng.choice(["2026FA", "2027SP"], n, p=[0.85, 0.15]), None)
    units = np.where(enrolled, rng.gamma(2.2, 8.0, n).round(1).astype(str), None)
    frame["cte_concentrator"] = flag(conc)
    frame["cte_completer"] = flag(conc & (rng.random(n) < 0.6))
    frame["hs_graduate"] = flag(rng.random(n) < 0.88)
    frame["school_year"] = pd.Categorical(np.full(n, "2025-26"))
    frame["term"] = pd.Categorical(term)
    frame["units_earned"] = units
    frame["persisted_next_term"] = flag(enrolled & (rng.random(n) < 0.7))
    frame["transfer_math_year1"] = flag(enrolled & (rng.random(n) < 0.35))
    frame["transfer_english_year1"] = flag(enrolled & (rng.random(n) < 0.55))
    frame["award"] = pd.Categorical(np.where(enrolled & (rng.random(n) < 0.2), "A", None))
    return frame


def scenario(rows: int) -> dict:
    import resource
    import time

    from deid import compute_tables, hidden_count, protect, recheck

    t0 = time.perf_counter()
    frame = linked_frame(rows)
    t1 = time.perf_counter()
    result = compute_tables(frame, METRICS, BY)
    t2 = time.perf_counter()
    # Baseline: the bare counts, one groupby per table (no cohort or outcome logic, no checks).
    for _m in METRICS:
        for b in BY:
            frame.groupby(b, observed=True).size()
    t3 = time.perf_counter()
    best = protect(result.tables, result.metric_cohort, MIN_CELL)
    t4 = time.perf_counter()
    exposed_best = recheck(result.tables, result.metric_cohort, MIN_CELL)
    t5 = time.perf_counter()
    hidden_best = hidden_count(result.tables)
    simple_tables = compute_tables(frame, METRICS, BY)
    t6 = time.perf_counter()
    simple = protect(simple_tables.tables, simple_tables.metric_cohort, MIN_CELL, method="heuristic")
    t7 = time.perf_counter()
    exposed_simple = recheck(simple_tables.tables, simple_tables.metric_cohort, MIN_CELL)
    cells = sum(2 * len(t.groups) for t in result.tables)
    return {
        "rows": rows,
        "metrics": len(METRICS),
        "breakdowns": len(BY),
        "tables": len(result.tables),
        "cells_listed": cells,
        "build_frame_s": t1 - t0,
        "count_s": t2 - t1,
        "baseline_groupby_s": t3 - t2,
        "count_vs_baseline": (t2 - t1) / max(t3 - t2, 1e-9),
        "protect_mip_s": t4 - t3,
        "attack_check_s": t5 - t4,
        "protect_heuristic_s": t7 - t6,
        "primary": best.primary,
        "hidden_mip": hidden_best,
        "hidden_heuristic": hidden_count(simple_tables.tables),
        "mip_rounds": best.rounds,
        "heuristic_rounds": simple.rounds,
        "smallest_interval_mip": best.smallest_interval,
        "smallest_interval_heuristic": simple.smallest_interval,
        "recovered_exactly_mip": sum(e.high - e.low < 1e-6 for e in exposed_best),
        "narrower_than_protection_mip": len(exposed_best),
        "recovered_exactly_heuristic": sum(e.high - e.low < 1e-6 for e in exposed_simple),
        "narrower_than_protection_heuristic": len(exposed_simple),
        **crossed(frame),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def crossed(frame) -> dict:
    """Two-way tables: the MIP, the grown heuristic, and the plain heuristic of the issue ("also hide
    the smallest other cell in the row and column", not grown) whose recovered cells are counted."""
    import time

    from deid import compute_tables, hidden_count, protect, recheck
    from deid._outcomes import _build, _heuristic, _primary  # the plain heuristic is bench-only

    best = compute_tables(frame, CROSSED_METRICS, CROSSED)
    t0 = time.perf_counter()
    prot = protect(best.tables, best.metric_cohort, MIN_CELL)
    t1 = time.perf_counter()
    grown = compute_tables(frame, CROSSED_METRICS, CROSSED)
    protect(grown.tables, grown.metric_cohort, MIN_CELL, method="heuristic")
    t2 = time.perf_counter()
    plain = compute_tables(frame, CROSSED_METRICS, CROSSED)
    model, rows = _build(plain.tables, plain.metric_cohort)
    fixed, _ = _primary(model, MIN_CELL)
    hidden = _heuristic(model, fixed, model.eq_of())
    for t, here in zip(plain.tables, rows, strict=True):
        t.hidden_cohort = [c in hidden for c, _ in here]
        t.hidden_outcome = [o in hidden for _, o in here]
        t.band = [""] * len(here)
    exposed_best = recheck(best.tables, best.metric_cohort, MIN_CELL)
    exposed_grown = recheck(grown.tables, grown.metric_cohort, MIN_CELL)
    exposed_plain = recheck(plain.tables, plain.metric_cohort, MIN_CELL)
    return {
        "crossed_method": prot.method,
        "crossed_note": prot.note,
        "crossed_smallest_interval_mip": prot.smallest_interval,
        "crossed_recovered_exactly_mip": sum(e.high - e.low < 1e-6 for e in exposed_best),
        "crossed_narrower_than_protection_heuristic": len(exposed_grown),
        "crossed_tables": len(best.tables),
        "crossed_cells_listed": sum(2 * len(t.groups) for t in best.tables),
        "crossed_protect_mip_s": t1 - t0,
        "crossed_protect_heuristic_s": t2 - t1,
        "crossed_hidden_mip": hidden_count(best.tables),
        "crossed_hidden_heuristic": hidden_count(grown.tables),
        "crossed_hidden_plain_heuristic": hidden_count(plain.tables),
        "crossed_narrower_than_protection_mip": len(exposed_best),
        "crossed_recovered_exactly_plain_heuristic": sum(e.high - e.low < 1e-6 for e in exposed_plain),
        "crossed_narrower_than_protection_plain_heuristic": len(exposed_plain),
    }


def test_outcomes_benchmark():
    proc = subprocess.run(
        [sys.executable, __file__, str(ROWS)], capture_output=True, text=True, check=False, timeout=3600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(got, indent=2) + "\n")
    for k, v in got.items():
        print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    assert got["narrower_than_protection_mip"] == 0 and got["recovered_exactly_mip"] == 0
    assert got["narrower_than_protection_heuristic"] == 0
    assert got["hidden_mip"] <= got["hidden_heuristic"]
    assert got["smallest_interval_mip"] >= MIN_CELL
    assert got["crossed_narrower_than_protection_mip"] == 0 and got["crossed_recovered_exactly_mip"] == 0
    assert got["crossed_narrower_than_protection_heuristic"] == 0
    assert got["crossed_hidden_mip"] <= got["crossed_hidden_heuristic"]


if __name__ == "__main__":
    print(json.dumps(scenario(int(sys.argv[1]))))
