"""Benchmark: the mapping step on a 1,000,000-row synthetic K-12 extract (suggest, validate, apply).

Baselines in the same run: reading the same CSV with pyarrow (every column as text, as ``read_table``
does) — the cheapest pass over the data any step must make — and with pandas (``dtype=str``), the
yardstick of the end-to-end budget in docs/performance.md. The mapping step should cost a fraction
of that: suggestions look at a sample only, recodes and date normalization are vectorized.
Printed and written to bench-results/mapping.json. Rows: PATHSHARE_BENCH_ROWS (default 1,000,000).

    make bench        # or: PATHSHARE_BENCH_ROWS=50000 .venv/bin/python -m pytest -s \\
                      #   tests/benchmarks/bench_mapping.py -o addopts="" -o python_files="bench_*.py"
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv

from deid import MappingProfile, apply_mapping, suggest_mapping, validate
from deid.synth import column_elements, generate, write_synth

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "mapping.json"


def _timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t0


def test_bench_mapping(tmp_path):
    path = tmp_path / "k12.csv"
    write_synth(generate("k12", ROWS, seed=1), path)
    size = path.stat().st_size
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    names = pcsv.read_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 20)).column_names
    opts = pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    table, t_read = _timed(pcsv.read_csv, path, convert_options=opts)
    import pandas as pd

    _, t_pandas = _timed(pd.read_csv, path, dtype=str, keep_default_na=False)

    suggestions, t_suggest = _timed(suggest_mapping, table)
    truth = column_elements("k12")
    accuracy = sum(s.element == truth[s.column] for s in suggestions) / len(suggestions)
    profile = MappingProfile.from_suggestions("bench", suggestions)
    findings, t_validate = _timed(validate, table, profile)
    mapped, t_apply = _timed(apply_mapping, table, profile)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    assert mapped.num_rows == ROWS
    result = {
        "rows": ROWS,
        "file_bytes": size,
        "baseline_read_s": round(t_read, 3),
        "pandas_read_s": round(t_pandas, 3),
        "suggest_s": round(t_suggest, 3),
        "validate_s": round(t_validate, 3),
        "apply_s": round(t_apply, 3),
        "map_total_over_read": round((t_suggest + t_validate + t_apply) / t_read, 2),
        "map_total_over_pandas_read": round((t_suggest + t_validate + t_apply) / t_pandas, 2),
        "apply_rows_per_s": round(ROWS / t_apply),
        "suggestion_accuracy": round(accuracy, 3),
        "validation_findings": len(findings),
        "peak_rss_bytes": peak,
        "peak_rss_over_file": round(peak / size, 2),
        "rss_growth_bytes": max(0, peak - rss0),
    }
    print("\nmapping benchmark:")
    for key, value in result.items():
        print(f"  {key:24} {value}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
