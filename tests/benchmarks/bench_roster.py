"""Benchmark: the roster (deid/_roster.py) stays linear, and what the roster/gate work adds to redaction.

1. ``Roster.from_table(extract).scanner()`` — classify the columns, pick every name/ID/e-mail/phone
   column, build the scanner's name tokens, ID index and contact index — on a synthetic K-12 extract of
   PATHSHARE_BENCH_ROWS rows (default 1,000,000) against a tenth of it in the same run. Linear means
   the per-row cost does not grow: target ratio (per-row time at N / per-row time at N/10) <= 1.5.
2. On the notes of the N/10 extract: ``visible_text`` (what the recipient will read) + ``redact_counted``
   (per-kind counts) against plain ``redact`` — the price of the bad-input normalization and the
   report's counts. Target: <= 1.5x.

Printed and written to bench-results/roster.json.

    PATHSHARE_BENCH_ROWS=200000 .venv/bin/python -m pytest -q -s tests/benchmarks/bench_roster.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from timing import best

from deid import Roster, write_bytes_atomic
from deid._textnorm import visible_text
from deid.synth import generate

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "roster.json"


def test_roster_build_is_linear_and_redaction_extras_are_cheap():
    small_rows = max(1000, ROWS // 10)
    big = generate("k12", ROWS, seed=11).table
    small = big.slice(0, small_rows)

    def build(table):
        return lambda: Roster.from_table(table).scanner()

    t_small = best(build(small), 2)
    t_big = best(build(big), 2)
    per_row_ratio = (t_big / ROWS) / (t_small / small_rows)

    scanner = Roster.from_table(small).scanner()
    notes = small.column("Counselor Notes")
    t_redact = best(lambda: scanner.redact(notes), 2)
    t_counted = best(lambda: scanner.redact_counted(visible_text(notes)), 2)
    extras_ratio = t_counted / t_redact

    result = {
        "rows": ROWS,
        "roster_seconds": {str(small_rows): round(t_small, 3), str(ROWS): round(t_big, 3)},
        "roster_per_row_ratio": round(per_row_ratio, 2),
        "roster_columns": Roster.from_table(small).columns.to_dict(),
        "redact_seconds": round(t_redact, 3),
        "visible_text_plus_redact_counted_seconds": round(t_counted, 3),
        "extras_ratio": round(extras_ratio, 2),
        "load": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    write_bytes_atomic(RESULTS, (json.dumps(result, indent=2) + "\n").encode(), 0o644, force=True)
    assert per_row_ratio <= 1.5, result
    assert extras_ratio <= 1.5, result
