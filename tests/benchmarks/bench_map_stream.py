"""Benchmark: mapping and validation of a file read in batches (issue 18 item 2), against a pyarrow
read+write of the same file and against the in-memory mapping, in the same run, each in its own process:
wall and CPU time, the process's own peak memory (VmHWM) and the peak over the file size.

Each mapping run does the whole step: read the export, suggest the mapping, validate it (duplicate IDs
included), apply it and write the mapped rows as CSV (so the mapped values are made, not only
planned). Rows: PATHSHARE_BENCH_MAP_ROWS (default "1000000"; a list like "1000000,4000000" gives the
curve); memory setting: PATHSHARE_BENCH_MEMORY_MB (default 1024, the CLI's default). The in-memory run
is skipped above PATHSHARE_BENCH_WHOLE_MAX rows (default 4,000,000). Writes bench-results/map_stream.json.

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_map_stream.py \
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bench_stream import PYARROW, ROOT, _run

from deid._atomic import write_bytes_atomic

WHOLE = """
import pyarrow.csv as pcsv
from deid import MappingProfile, apply_mapping, read_table, suggest_mapping, validate
table = read_table(sys.argv[1])
profile = MappingProfile.from_suggestions("bench", suggest_mapping(table))
findings = validate(table, profile)
mapped = apply_mapping(table, profile)
del table
pcsv.write_csv(mapped, sys.argv[2])
extra = {"rows": mapped.num_rows, "findings": [f.to_dict() for f in findings]}
"""

STREAMED = """
import pyarrow.csv as pcsv
from deid import MappingProfile, scan_extract
with scan_extract(sys.argv[1], memory_mb=int(sys.argv[3])) as scan:
    t_read = time.perf_counter() - t0
    profile = MappingProfile.from_suggestions("bench", scan.suggest())
    t_suggest = time.perf_counter() - t0 - t_read
    findings = scan.validate(profile)
    t_validate = time.perf_counter() - t0 - t_read - t_suggest
    writer = None
    rows = 0
    for batch in scan.mapped_batches(profile):
        if writer is None:
            writer = pcsv.CSVWriter(sys.argv[2], batch.schema)
        writer.write_table(batch)
        rows += batch.num_rows
    writer.close()
    batch_rows = scan.batch_rows
extra = {"rows": rows, "findings": [f.to_dict() for f in findings], "batch_rows": batch_rows,
         "timings": {"read": t_read, "suggest": t_suggest, "validate": t_validate,
                     "apply_write": time.perf_counter() - t0 - t_read - t_suggest - t_validate}}
"""


def test_bench_map_stream(tmp_path: Path) -> None:
    from deid.synth import synth_file

    counts = [int(x) for x in os.environ.get("PATHSHARE_BENCH_MAP_ROWS", "1000000").split(",") if x]
    memory = int(os.environ.get("PATHSHARE_BENCH_MEMORY_MB", "1024"))
    whole_max = int(os.environ.get("PATHSHARE_BENCH_WHOLE_MAX", "4000000"))
    curve = []
    for rows in counts:
        src = tmp_path / f"k12-{rows}.csv"
        synth_file("k12", rows, src, seed=1)
        size = src.stat().st_size
        base = _run(PYARROW, str(src), str(tmp_path / "pa.csv"))
        streamed = _run(STREAMED, str(src), str(tmp_path / "s.csv"), str(memory))
        point = {
            "rows": rows,
            "file_mb": round(size / 2**20, 1),
            "memory_mb": memory,
            "batch_rows": streamed["batch_rows"],
            "load_average": round(streamed["load"], 2),
            "pyarrow_read_write_s": round(base["seconds"], 2),
            "pyarrow_cpu_s": round(base["cpu_seconds"], 2),
            "pyarrow_peak_mb": round(base["peak_rss_bytes"] / 2**20),
            "stream_s": round(streamed["seconds"], 2),
            "stream_cpu_s": round(streamed["cpu_seconds"], 2),
            "stream_peak_mb": round(streamed["peak_rss_bytes"] / 2**20),
            "stream_peak_over_file": round(streamed["peak_rss_bytes"] / size, 2),
            "stream_vs_pyarrow": round(streamed["seconds"] / base["seconds"], 2),
            "stream_timings": {k: round(v, 2) for k, v in streamed["timings"].items()},
        }
        if rows <= whole_max:
            whole = _run(WHOLE, str(src), str(tmp_path / "w.csv"))
            point.update(
                whole_s=round(whole["seconds"], 2),
                whole_cpu_s=round(whole["cpu_seconds"], 2),
                whole_peak_mb=round(whole["peak_rss_bytes"] / 2**20),
                whole_peak_over_file=round(whole["peak_rss_bytes"] / size, 2),
                whole_vs_pyarrow=round(whole["seconds"] / base["seconds"], 2),
            )
            # the same findings and the same mapped file, read whole or in batches
            assert whole["findings"] == streamed["findings"]
            assert (tmp_path / "w.csv").read_bytes() == (tmp_path / "s.csv").read_bytes()
        curve.append(point)
        print(f"\n[map] {rows:,} rows ({point['file_mb']} MB, load {point['load_average']}): in batches "
              f"{point['stream_s']} s ({point['stream_cpu_s']} s CPU), peak {point['stream_peak_mb']} MB = "
              f"{point['stream_peak_over_file']}x the file, {point['stream_vs_pyarrow']}x a pyarrow "
              f"read+write ({point['pyarrow_read_write_s']} s, {point['pyarrow_peak_mb']} MB); whole: "
              f"{point.get('whole_s')} s ({point.get('whole_cpu_s')} s CPU), {point.get('whole_peak_mb')} MB "
              f"= {point.get('whole_peak_over_file')}x the file; {point['stream_timings']}")
        for p in (src, tmp_path / "pa.csv", tmp_path / "s.csv", tmp_path / "w.csv"):
            p.unlink(missing_ok=True)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    text = json.dumps({"curve": curve}, indent=2) + "\n"
    write_bytes_atomic(out / "map_stream.json", text.encode(), 0o644, force=True)
