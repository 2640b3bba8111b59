"""Benchmark: free-text PII scanning — PathShare's vectorized scanner against presidio, same run.

PathShare: ``TextScanner.from_table(...).redact`` over the notes column of a synthetic K-12 extract of
PATHSHARE_BENCH_ROWS rows (default 1,000,000); ``find_arrays`` on the same column gives the spans scored
against the generator's planted PII. Baseline: presidio's ``AnalyzerEngine.analyze`` (built offline
by ``presidio_analyzer()``) called note by note on the first PATHSHARE_BENCH_PRESIDIO_ROWS notes
(default 10,000). Target: >= 100x presidio's notes per second, recall at least presidio's.

Recall: a planted span counts as found when some detection overlaps it (any kind: what matters is that
it gets redacted). Precision: detections overlapping a planted span / all detections. Both scanners are
also scored on the same presidio sample, so the comparison is like for like.

Both are single-threaded, so on an idle machine wall time ≈ CPU time; on a shared machine the wall
figures swing with the load (printed), and the CPU-time ratio is the steadier comparison.

Printed and written to bench-results/textscan.json.

    make bench        # or: PATHSHARE_BENCH_ROWS=20000 .venv/bin/python -m pytest -s \\
                      #   tests/benchmarks/bench_textscan.py -o addopts="" -o python_files="bench_*.py"
"""

from __future__ import annotations

import json
import os
import re
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from deid import TextScanner, presidio_analyzer, write_bytes_atomic
from deid.synth import generate

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
PRESIDIO_ROWS = min(ROWS, int(os.environ.get("PATHSHARE_BENCH_PRESIDIO_ROWS", "10000")))
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "textscan.json"
NAME_COLUMNS = ["First Name", "Middle Name", "Last Name", "Guardian Name"]
ID_COLUMNS = ["SSID", "Local ID"]


def _covered(a_row, a_start, a_end, b_row, b_start, b_end) -> np.ndarray:
    """For each interval a, whether some interval b in the same row overlaps it (vectorized)."""
    if len(a_row) == 0:
        return np.zeros(0, dtype=bool)
    if len(b_row) == 0:
        return np.zeros(len(a_row), dtype=bool)
    big = int(max(np.max(a_end), np.max(b_end))) + 1
    bs = np.asarray(b_row, np.int64) * big + np.asarray(b_start, np.int64)
    be = np.asarray(b_row, np.int64) * big + np.asarray(b_end, np.int64)
    order = np.argsort(bs, kind="stable")
    bs, be = bs[order], np.maximum.accumulate(be[order])  # max end among b's starting before x
    a_s = np.asarray(a_row, np.int64) * big + np.asarray(a_start, np.int64)
    a_e = np.asarray(a_row, np.int64) * big + np.asarray(a_end, np.int64)
    j = np.searchsorted(bs, a_e, side="left") - 1  # last b starting before a ends
    return (j >= 0) & (be[np.maximum(j, 0)] > a_s)


def _score(planted: dict[str, np.ndarray], rows, starts, ends, n_rows: int) -> dict:
    keep = planted["row"] < n_rows
    p_row, p_start, p_end = planted["row"][keep], planted["start"][keep], planted["end"][keep]
    p_kind = planted["kind"][keep]
    found = _covered(p_row, p_start, p_end, rows, starts, ends)
    correct = _covered(rows, starts, ends, p_row, p_start, p_end)
    by_kind = {str(k): round(float(found[p_kind == k].mean()), 4) for k in sorted(set(p_kind.tolist()))}
    return {
        "planted": len(p_row),
        "detections": len(rows),
        "recall": round(float(found.mean()), 4) if len(found) else None,
        "precision": round(float(correct.mean()), 4) if len(correct) else None,
        "recall_by_kind": by_kind,
    }


def test_bench_textscan():
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    synth = generate("k12", ROWS, seed=11)
    gen_s = time.perf_counter() - t0
    table = synth.table
    notes = table.column("Counselor Notes")
    spans = {k: np.asarray(v) for k, v in synth.truth.spans.items()}
    notes_mb = sum(b.size for c in notes.chunks for b in c.buffers() if b is not None) / 1e6

    # --- PathShare ---
    t0 = time.perf_counter()
    scanner = TextScanner.from_table(table, NAME_COLUMNS, ID_COLUMNS)
    build_s = time.perf_counter() - t0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    redacted, changed = scanner.redact(notes)
    redact_s, redact_cpu = time.perf_counter() - t0, time.process_time() - c0
    # how far redaction pushed the peak above what the table and the roster already held
    redact_peak_gain = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss_before
    t0, c0 = time.perf_counter(), time.process_time()
    found = scanner.find_arrays(notes)
    find_s, find_cpu = time.perf_counter() - t0, time.process_time() - c0
    f_row, f_start, f_end = found["row"], found["start"], found["end"]
    ours_full = _score(spans, f_row, f_start, f_end, ROWS)
    in_sample = f_row < PRESIDIO_ROWS
    ours_sample = _score(spans, f_row[in_sample], f_start[in_sample], f_end[in_sample], PRESIDIO_ROWS)
    ours_rate = ROWS / redact_s

    # --- presidio, note by note on the sample ---
    t0 = time.perf_counter()
    analyzer = presidio_analyzer()
    presidio_build_s = time.perf_counter() - t0
    sample = notes.slice(0, PRESIDIO_ROWS).to_pylist()
    p_row: list[int] = []
    p_start: list[int] = []
    p_end: list[int] = []
    t0, c0 = time.perf_counter(), time.process_time()
    for i, text in enumerate(sample):
        if not text:
            continue
        for res in analyzer.analyze(text, language="en"):
            p_row.append(i)
            p_start.append(res.start)
            p_end.append(res.end)
    presidio_s, presidio_cpu = time.perf_counter() - t0, time.process_time() - c0
    presidio_rate = PRESIDIO_ROWS / presidio_s
    presidio_sample = _score(
        spans, np.array(p_row, np.int64), np.array(p_start, np.int64), np.array(p_end, np.int64),
        PRESIDIO_ROWS,
    )  # fmt: skip

    # the redacted column really lost the planted values (spot check on the sample, by text)
    red_sample = redacted.slice(0, PRESIDIO_ROWS).to_pylist()
    survivors = 0
    total = 0
    for r, s, e in zip(spans["row"].tolist(), spans["start"].tolist(), spans["end"].tolist(), strict=True):
        if r >= PRESIDIO_ROWS:
            break
        total += 1
        # as a whole word: "Tran" inside "Transcript" is not a survivor
        survivors += re.search(rf"(?<!\w){re.escape(sample[r][s:e])}(?!\w)", red_sample[r] or "") is not None

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rows": ROWS,
        "notes_mb": round(notes_mb, 1),
        "synth_generate_s": round(gen_s, 2),
        "pathshare": {
            "roster_build_s": round(build_s, 3),
            "roster_tokens_and_ids": list(scanner.roster_size),
            "redact_s": round(redact_s, 3),
            "redact_cpu_s": round(redact_cpu, 3),
            "notes_per_s": round(ours_rate),
            "mb_per_s": round(notes_mb / redact_s, 1),
            "find_s": round(find_s, 3),
            "find_cpu_s": round(find_cpu, 3),
            "notes_per_cpu_s": round(ROWS / redact_cpu),
            "cells_changed": changed,
            "redact_peak_rss_gain_mb": round(redact_peak_gain),
            "score_all_rows": ours_full,
            "score_sample": ours_sample,
            "planted_values_surviving_redaction_in_sample": f"{survivors}/{total}",
        },
        "presidio": {
            "sample_rows": PRESIDIO_ROWS,
            "build_s": round(presidio_build_s, 2),
            "analyze_s": round(presidio_s, 2),
            "analyze_cpu_s": round(presidio_cpu, 2),
            "ms_per_note": round(1000 * presidio_s / PRESIDIO_ROWS, 3),
            "notes_per_s": round(presidio_rate, 1),
            "notes_per_cpu_s": round(PRESIDIO_ROWS / presidio_cpu, 1),
            "score_sample": presidio_sample,
        },
        "speedup_x": round(ours_rate / presidio_rate, 1),
        "speedup_cpu_x": round((ROWS / redact_cpu) / (PRESIDIO_ROWS / presidio_cpu), 1),
        "target_speedup_x": 100,
        "recall_at_least_presidio": (ours_sample["recall"] or 0) >= (presidio_sample["recall"] or 0),
        "peak_rss_mb": round(peak_mb),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "cpus": os.cpu_count(),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    write_bytes_atomic(RESULTS, (json.dumps(result, indent=2) + "\n").encode(), perm=0o644, force=True)
    print("\n=== free-text PII scan ===")
    print(
        f"PathShare: {ROWS:,} notes ({notes_mb:.0f} MB) redacted in {redact_s:.2f} s "
        f"({ours_rate:,.0f} notes/s, CPU {redact_cpu:.2f} s, peak RSS +{redact_peak_gain:.0f} MB); "
        f"roster built in {build_s:.2f} s; find {find_s:.2f} s"
    )
    print(
        f"presidio:  {PRESIDIO_ROWS:,} notes analyzed in {presidio_s:.2f} s "
        f"({presidio_rate:,.1f} notes/s, {1000 * presidio_s / PRESIDIO_ROWS:.2f} ms/note, "
        f"CPU {presidio_cpu:.2f} s)"
    )
    print(f"speed-up:  {result['speedup_x']}x wall, {result['speedup_cpu_x']}x CPU (target >= 100x)")
    print(f"PathShare on the sample: {ours_sample}")
    print(f"presidio  on the sample: {presidio_sample}")
    print(f"PathShare on all rows:   {ours_full}")
    print(f"planted values surviving redaction (sample): {survivors}/{total}; peak RSS {peak_mb:.0f} MB")
    print(f"load average (1 min) before/after: {result['load_average_1min']} on {os.cpu_count()} CPUs")
    assert isinstance(redacted, pa.ChunkedArray)
