"""Fuzz the package unpacker for a fixed time (issue 20 item 7): 0 hangs, 0 crashes, 0 accepted mutants.

Structure-aware mutations of a genuine signed package's plaintext tar (tests/unpack_fuzz.py), each
encrypted to the recipient as a hostile sender could, then opened with a 5 s limit per case. Seeded
(PATHSHARE_FUZZ_SEED, default 20) so a failure can be replayed; time: PATHSHARE_FUZZ_SECONDS (default
60). Baseline in the same run: opening the untouched package, so the rate reads as a ratio. Printed
and written to bench-results/fuzz_unpack.json.

    PATHSHARE_FUZZ_SECONDS=20 .venv/bin/python -m pytest -q -s tests/benchmarks/bench_fuzz_unpack.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for the shared fuzzer

from unpack_fuzz import Target, run

SECONDS = float(os.environ.get("PATHSHARE_FUZZ_SECONDS", "60"))
SEED = int(os.environ.get("PATHSHARE_FUZZ_SEED", "20"))
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "fuzz_unpack.json"


def test_bench_fuzz_unpack() -> None:
    target = Target()
    t0 = time.perf_counter()
    baseline = 0
    while time.perf_counter() - t0 < min(5.0, SECONDS / 10):
        outcome, detail = target.open(target.tar)
        assert outcome == "same", (outcome, detail)
        baseline += 1
    baseline_rate = baseline / (time.perf_counter() - t0)

    rng = random.Random(SEED)
    tally = run(target, rng.randint, SECONDS, timeout=5.0)
    rate = tally.cases / tally.seconds
    result = {
        "seed": SEED,
        "seconds": round(tally.seconds, 1),
        "cases": tally.cases,
        "cases_per_second": round(rate, 1),
        "genuine_opens_per_second": round(baseline_rate, 1),
        "rate_vs_genuine": round(rate / baseline_rate, 2),
        "mutations_identical_to_original_skipped": tally.identical,
        **tally.counts,
        "examples": tally.examples,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"\nfuzz unpack: {tally.cases} cases in {tally.seconds:.1f} s ({rate:.0f}/s, "
        f"{rate / baseline_rate:.2f}x the rate of opening the genuine package): "
        + ", ".join(f"{k} {v}" for k, v in tally.counts.items())
    )
    assert tally.cases > 0
    for bad in ("hang", "crash", "accepted", "leftover"):
        assert tally.counts[bad] == 0, (bad, tally.examples.get(bad))
