"""Benchmark: reading and linking two opened packages for outcomes, then counting (issue 19, item 2).

PATHSHARE_BENCH_ROWS (default 1,000,000) synthetic K-12 students and as many college rows with the
same seed (overlapping populations, the college side with typos and nicknames: ``deid.synth``) are
tokenized under one secret and written as the CSV data files opened packages hold: the district's
link tokens, grade, school year, school, pathway, sex, race, English-learner status and dual
enrollment; the college's link tokens, first term and units (drawn per row with a fixed seed).

Then, each in a fresh subprocess (its own peak memory, VmHWM), the two files are combined and
5 metrics × 5 breakdowns counted three ways:

- ``pandas``: the first path, kept as the oldest baseline — both files as pandas frames of Python
  strings, linked on the in-memory engine, the college's columns filled in with pandas;
- ``arrow``: the in-memory path (``agreements._outcomes.link_frames`` then ``compute_tables``) — both
  files read whole into Arrow, linked on DuckDB, the columns kept as categories, counted by bincount;
- ``duckdb``: what releases run now (``deid.open_linked`` then ``deid.count_linked``) — each CSV
  copied by DuckDB into a private folder, linked there, merged and counted in one GROUP BY GROUPING
  SETS scan, within the memory setting (PATHSHARE_BENCH_MEMORY_MB, default 1024; the ``arrow`` way's
  linker gets the same setting).

All must give the same tables. Printed and written to bench-results/outcomes_load.json: wall time,
CPU time and peak RSS of each, and the file sizes; nothing is asserted on speed.

    PATHSHARE_BENCH_ROWS=200000 .venv/bin/python -m pytest -q -s tests/benchmarks/bench_outcomes_load.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
SEED = 5
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "outcomes_load.json"
METRICS = ["dual_enrollment", "college_enrollment", "persistence", "units_12", "units_24"]
BY = ["school_id", "cte_pathway", "sex", "race", "english_learner_status"]


def _peak_mb() -> float:
    # VmHWM: this process's own peak (ru_maxrss carries the parent's over exec on Linux).
    with open("/proc/self/status") as fh:
        return int(next(line.split()[1] for line in fh if line.startswith("VmHWM:"))) / 1024


def make_files(rows: int, folder: Path) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from deid import LinkFields, derive_key, link_tokens
    from deid.synth import generate

    key = derive_key(b"bench consortium secret, 32 byte", "link_tokens")
    k12 = generate("k12", rows, seed=SEED).table
    col = generate("college", rows, seed=SEED).table
    sex = pc.take(pa.array(["F", "M", "X"]), pc.subtract(pc.cast(col["SEX"], pa.int64()), 1))
    col = col.set_column(col.column_names.index("SEX"), "SEX", sex)
    k_fields = LinkFields("SSID", "First Name", "Middle Name", "Last Name", "Birth Date", "Gender")
    c_fields = LinkFields("SSID", "STU_FIRST_NM", "STU_MID_NM", "STU_LAST_NM", "STU_BIRTH_DT", "SEX")
    k_tokens, c_tokens = link_tokens(k12, k_fields, key), link_tokens(col, c_fields, key)
    district = pa.table({
        "link_tokens": k_tokens,
        "grade_level": k12["Grade"],
        "school_year": pa.array(["2025-26"] * rows),
        "school_id": k12["School Code"],
        "cte_pathway": k12["CTE Pathway"],
        "sex": k12["Gender"],
        "race": k12["Race Code"],
        "english_learner_status": k12["EL Status"],
        "dual_enrollment": k12["Dual Enrollment"],
    })  # fmt: skip
    rng = np.random.default_rng(SEED)
    n = col.num_rows
    units = rng.gamma(2.2, 8.0, n).round(1).astype(str)
    college = pa.table({
        "link_tokens": c_tokens,
        "term": pa.array(rng.choice(["2026FA", "2027SP"], n, p=[0.85, 0.15])),
        "units_earned": pa.array(units),
        "persisted_next_term": pa.array(np.where(rng.random(n) < 0.7, "Y", "N")),
    })  # fmt: skip
    for name, table in (("district", district), ("college", college)):
        pcsv.write_csv(table, folder / f"{name}.csv")
    sizes = {n: round((folder / f"{n}.csv").stat().st_size / 2**20, 1) for n in ("district", "college")}
    return {"file_mb": sizes}


def _before(tables):  # the baseline: the path before (pandas strings, numpy linker, pandas fill)
    import pandas as pd
    import pyarrow as pa

    from deid import link_tables

    frames = [t.to_pandas() for t in tables]
    del tables
    merged = frames[0]
    other = frames[1]
    links = link_tables(pa.array(merged["link_tokens"]), pa.array(other["link_tokens"]), engine="memory")
    extra = other.drop(columns=["link_tokens"])
    fill = pd.DataFrame(index=merged.index, columns=extra.columns, dtype=object)
    fill.iloc[links.row_a] = extra.iloc[links.row_b].to_numpy()
    for c in extra.columns:
        merged[c] = fill[c]
    return merged


def _memory() -> int:
    return int(os.environ.get("PATHSHARE_BENCH_MEMORY_MB", "1024"))


def _duckdb(folder: Path) -> dict:
    import resource
    import time

    from deid import count_linked, open_linked

    memory = _memory()
    t0 = time.perf_counter()
    files = [[folder / f"{n}.csv"] for n in ("district", "college")]
    with open_linked(files, ["district", "college"], {}, [], memory_mb=memory, spill_dir=folder) as data:
        t1 = time.perf_counter()
        result = count_linked(data, METRICS, BY)
        t2 = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    tables_out = [[t.metric, t.by, t.groups, t.cohort, t.outcome] for t in result.tables]
    (folder / "tables_duckdb.json").write_text(json.dumps(tables_out))
    return {"read_link_s": t1 - t0, "count_s": t2 - t1, "total_s": t2 - t0, "memory_mb": memory,
            "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": _peak_mb()}  # fmt: skip


def run(way: str, folder: Path) -> dict:
    import resource
    import time

    from agreements._outcomes import link_frames
    from deid import compute_tables, read_table

    if way == "duckdb":
        return _duckdb(folder)
    t0 = time.perf_counter()
    tables = [read_table(folder / f"{n}.csv") for n in ("district", "college")]
    t1 = time.perf_counter()
    if way == "pandas":
        frame = _before(tables)
    else:  # the linker within the same memory setting as the DuckDB path's
        frame, _ = link_frames(tables, ["district", "college"], {}, memory_mb=_memory())
    del tables
    t2 = time.perf_counter()
    result = compute_tables(frame, METRICS, BY)
    t3 = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    tables_out = [[t.metric, t.by, t.groups, t.cohort, t.outcome] for t in result.tables]
    (folder / f"tables_{way}.json").write_text(json.dumps(tables_out))
    return {
        "read_s": t1 - t0,
        "link_s": t2 - t1,
        "count_s": t3 - t2,
        "total_s": t3 - t0,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "frame_mb": round(float(frame.memory_usage(deep=True).sum()) / 2**20, 1),
        "peak_rss_mb": _peak_mb(),
    }


def _child(*args: object) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, *map(str, args)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_outcomes_load_benchmark(tmp_path: Path) -> None:
    files = _child("make", ROWS, tmp_path)
    names = [w for w in os.environ.get("PATHSHARE_BENCH_WAYS", "pandas,arrow,duckdb").split(",") if w]
    ways = {w: _child(w, 0, tmp_path) for w in names}
    texts = {(tmp_path / f"tables_{w}.json").read_text() for w in names}
    same = len(texts) == 1
    got = {"rows": ROWS, **files, **ways, "same_tables": same}
    if "arrow" in ways and "duckdb" in ways:
        got["rss_duckdb_vs_arrow"] = ways["duckdb"]["peak_rss_mb"] / ways["arrow"]["peak_rss_mb"]
        got["time_duckdb_vs_arrow"] = ways["duckdb"]["total_s"] / ways["arrow"]["total_s"]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(got, indent=2) + "\n")
    print(json.dumps(got, indent=2))
    assert same, "the paths must count the same tables"


if __name__ == "__main__":
    what, rows, where = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    print(json.dumps(make_files(rows, where) if what == "make" else run(what, where)))
