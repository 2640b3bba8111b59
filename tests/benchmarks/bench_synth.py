"""Benchmark: ``pathshare synth`` — generating and writing PATHSHARE_BENCH_ROWS rows (default 1,000,000).

For each export (K-12 and college, clean CSV, clean Parquet, messy CSV) it measures generation, the
write, and the truth file; the baseline, in the same run and process, is pyarrow writing the very
same table to CSV (``pyarrow.csv.write_csv``) — the least any CSV writer of this data must spend.
Each scenario runs in a fresh subprocess so its peak memory (ru_maxrss) is its own. Figures are
printed and written to bench-results/synth.json; nothing here asserts on speed.

    make bench        # or: PATHSHARE_BENCH_ROWS=100000 .venv/bin/python -m pytest -s \\
                      #   tests/benchmarks/bench_synth.py -o addopts="" -o python_files="bench_*.py"
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "synth.json"

_SCENARIO = r"""
import json, os, resource, sys, time
from pathlib import Path
import pyarrow.csv as pacsv
from deid.synth import generate, write_synth

kind, ext, messy = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
rows, folder = int(sys.argv[4]), Path(sys.argv[5])
out = folder / f"{kind}{'_messy' if messy else ''}.{ext}"
t0 = time.perf_counter()
result = generate(kind, rows, seed=0, messy=messy)
t1 = time.perf_counter()
write_synth(result, out)
t2 = time.perf_counter()
result.truth.save(folder / f"{kind}{'_messy' if messy else ''}.truth.json")
t3 = time.perf_counter()
base = folder / f"{kind}_baseline.csv"
pacsv.write_csv(result.table, str(base))
t4 = time.perf_counter()
print(json.dumps({
    "generate_s": t1 - t0, "write_s": t2 - t1, "truth_s": t3 - t2, "baseline_write_s": t4 - t3,
    "file_bytes": out.stat().st_size,
    "truth_bytes": (folder / f"{kind}{'_messy' if messy else ''}.truth.json").stat().st_size,
    "baseline_bytes": base.stat().st_size,
    "planted_spans": int(len(result.truth.spans["row"])),
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
base.unlink()
out.unlink()
"""


def _run(kind: str, ext: str, messy: bool, folder: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _SCENARIO, kind, ext, "1" if messy else "0", str(ROWS), str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bench_synth(tmp_path):
    scenarios = [("k12", "csv", False), ("k12", "parquet", False), ("k12", "csv", True)]
    scenarios += [("college", "csv", False), ("college", "csv", True)]
    results = {}
    print(f"\nsynth benchmark, {ROWS:,} rows per file (baseline: pyarrow.csv.write_csv of the same table)")
    for kind, ext, messy in scenarios:
        name = f"{kind}{'_messy' if messy else ''}_{ext}"
        r = _run(kind, ext, messy, tmp_path)
        total = r["generate_s"] + r["write_s"]
        r["total_s"] = total
        r["rows_per_s"] = ROWS / total
        r["ratio_to_baseline_write"] = total / r["baseline_write_s"]
        r["write_ratio_to_baseline_write"] = r["write_s"] / r["baseline_write_s"]
        results[name] = r
        print(
            f"  {name:<18} generate {r['generate_s']:6.1f} s  write {r['write_s']:5.1f} s  "
            f"(pyarrow write {r['baseline_write_s']:4.1f} s; "
            f"total/baseline {r['ratio_to_baseline_write']:5.1f}x, "
            f"write/baseline {r['write_ratio_to_baseline_write']:4.1f}x)  {r['rows_per_s']:,.0f} rows/s  "
            f"file {r['file_bytes'] / 1e6:6.1f} MB  truth {r['truth_bytes'] / 1e6:5.1f} MB "
            f"({r['truth_s']:.1f} s)  peak RSS {r['peak_rss_mb']:,.0f} MB"
        )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": ROWS, "scenarios": results}, indent=2) + "\n", encoding="utf-8")
    print(f"  written to {RESULTS}")
