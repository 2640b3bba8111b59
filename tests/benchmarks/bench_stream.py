"""Benchmark: streaming de-identification (issue 18 item 1) against a pyarrow read+write of the same
file, and against the in-memory run, in the same run: wall time, each child's own peak memory (VmHWM)
and the peak over the file size, at the row counts in PATHSHARE_BENCH_STREAM_ROWS (default
"1000000,4000000"; add 10000000 for the statewide-scale point). Targets: peak <= 1.5x the file at 1M
rows and flat beyond; deid <= 5x the pyarrow read+write. PATHSHARE_BENCH_MEMORY_MB is the streaming
run's memory setting (default 512). The in-memory run is skipped above PATHSHARE_BENCH_WHOLE_MAX rows
(default 4,000,000). Writes bench-results/stream.json and prints the curve.

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_stream.py \
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bench_deid import POLICY

from deid._atomic import write_bytes_atomic

ROOT = Path(__file__).resolve().parents[2]

_MEASURE = textwrap.dedent(
    """
    import json, os, sys, time
    t0 = time.perf_counter()
    c0 = time.process_time()
    {body}
    elapsed = time.perf_counter() - t0
    extra.update(cpu_seconds=time.process_time() - c0, load=os.getloadavg()[0])
    peak = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))) * 1024
    print(json.dumps({{"seconds": elapsed, "peak_rss_bytes": peak, **extra}}))
    """
)

PYARROW = """
import pyarrow as pa, pyarrow.csv as pcsv
names = pcsv.read_csv(sys.argv[1], read_options=pcsv.ReadOptions(block_size=1 << 16)).column_names
types = {n: pa.string() for n in names}
t = pcsv.read_csv(sys.argv[1], convert_options=pcsv.ConvertOptions(column_types=types))
pcsv.write_csv(t, sys.argv[2])
extra = {"rows": t.num_rows}
"""

DEID = """
import threading
from pathlib import Path
from deid import deidentify_file, load_policy
memory = int(sys.argv[5])
spill = [0]

def watch():  # the largest the run's private spill folder got (the input's cache, DuckDB's files)
    out = Path(sys.argv[2]).parent
    while True:
        try:
            total = sum(f.stat().st_size for d in out.glob(".pathshare-spill-*") for f in d.iterdir())
            spill[0] = max(spill[0], total)
        except OSError:  # removed while being looked at
            pass
        time.sleep(0.5)

threading.Thread(target=watch, daemon=True).start()
report = deidentify_file(sys.argv[1], load_policy(sys.argv[3]), sys.argv[2], secret_file=sys.argv[4],
                         **({"memory_mb": memory} if memory else {}))
extra = {"rows": report.rows_out, "k_achieved": report.k_achieved, "spill_mb": spill[0] >> 20,
         "suppressed_cells": report.suppressed_cells,
         "residual_findings": report.residual_findings_total, "timings": report.timings}
"""


def _run(body: str, *args: str) -> dict:
    code = _MEASURE.format(body=textwrap.dedent(body).strip())
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    out = proc.stdout
    return json.loads(out[out.rindex('{"seconds"'):].strip())  # the last line, whatever precedes it


def _synth(rows: int, path: Path, tmp: Path) -> None:
    """A synthetic K-12 extract of ``rows`` rows; beyond what one synth run makes (5,000,000), parts of
    other seeds (other students) follow, their header rows left out."""
    from deid.synth import MAX_ROWS, synth_file

    with open(path, "wb") as out:
        seed, left = 1, rows
        while left:
            part = tmp / "part.csv"
            synth_file("k12", min(left, MAX_ROWS), part, seed=seed)
            with open(part, "rb") as f:
                if seed > 1:
                    f.readline()
                while chunk := f.read(16 << 20):
                    out.write(chunk)
            part.unlink()
            left -= min(left, MAX_ROWS)
            seed += 1


def test_bench_stream(tmp_path: Path) -> None:

    wanted = os.environ.get("PATHSHARE_BENCH_STREAM_ROWS", "1000000,4000000")
    counts = [int(x) for x in wanted.split(",") if x]
    memory = int(os.environ.get("PATHSHARE_BENCH_MEMORY_MB", "512"))
    whole_max = int(os.environ.get("PATHSHARE_BENCH_WHOLE_MAX", "4000000"))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(POLICY))
    curve = []
    for rows in counts:
        src = tmp_path / f"k12-{rows}.csv"
        _synth(rows, src, tmp_path)
        size = src.stat().st_size
        base = _run(PYARROW, str(src), str(tmp_path / "pa.csv"))
        key = str(tmp_path / f"secret-{rows}.key")
        streamed = _run(DEID, str(src), str(tmp_path / "s.csv"), str(policy), key, str(memory))
        point = {
            "rows": rows,
            "file_mb": round(size / 2**20, 1),
            "pyarrow_read_write_s": round(base["seconds"], 2),
            "pyarrow_cpu_s": round(base["cpu_seconds"], 2),
            "pyarrow_peak_mb": round(base["peak_rss_bytes"] / 2**20),
            "stream_s": round(streamed["seconds"], 2),
            "stream_cpu_s": round(streamed["cpu_seconds"], 2),
            "load_average": round(streamed["load"], 2),
            "stream_spill_mb": streamed["spill_mb"],
            "stream_peak_mb": round(streamed["peak_rss_bytes"] / 2**20),
            "stream_peak_over_file": round(streamed["peak_rss_bytes"] / size, 2),
            "stream_vs_pyarrow": round(streamed["seconds"] / base["seconds"], 2),
            "stream_us_per_row": round(1e6 * streamed["seconds"] / rows, 2),
            "stream_timings": streamed["timings"],
            "k_achieved": streamed["k_achieved"],
            "suppressed_cells": streamed["suppressed_cells"],
        }
        if rows <= whole_max:
            whole = _run(DEID, str(src), str(tmp_path / "w.csv"), str(policy), key, "0")
            point.update(
                whole_s=round(whole["seconds"], 2),
                whole_cpu_s=round(whole["cpu_seconds"], 2),
                whole_peak_mb=round(whole["peak_rss_bytes"] / 2**20),
                whole_peak_over_file=round(whole["peak_rss_bytes"] / size, 2),
                whole_vs_pyarrow=round(whole["seconds"] / base["seconds"], 2),
            )
            assert (whole["k_achieved"], whole["suppressed_cells"]) == (
                streamed["k_achieved"], streamed["suppressed_cells"])
        curve.append(point)
        print(f"\n[stream] {rows:,} rows ({point['file_mb']} MB, load {point['load_average']}): streamed "
              f"{point['stream_s']} s ({point['stream_cpu_s']} s CPU), spill {point['stream_spill_mb']} MB, "
              f"peak "
              f"{point['stream_peak_mb']} MB = {point['stream_peak_over_file']}x the file, "
              f"{point['stream_vs_pyarrow']}x a pyarrow read+write ({point['pyarrow_read_write_s']} s, "
              f"{point['pyarrow_peak_mb']} MB); in memory: {point.get('whole_s')} s, "
              f"{point.get('whole_peak_mb')} MB = {point.get('whole_peak_over_file')}x the file")
        for p in (src, tmp_path / "pa.csv", tmp_path / "s.csv", tmp_path / "w.csv"):
            p.unlink(missing_ok=True)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    text = json.dumps({"memory_mb": memory, "curve": curve}, indent=2) + "\n"
    write_bytes_atomic(out / "stream.json", text.encode(), 0o644, force=True)
