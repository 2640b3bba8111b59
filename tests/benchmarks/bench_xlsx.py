"""Benchmark: read a 50,000-row x 30-column XLSX (issue 18 item 7: target <= 3 s) against, in the same
run, the openpyxl cell-by-cell reader it replaced and a CSV of the same table. The workbook has a
zero-padded ID column (number format "0000000000"), a date column, numbers and text, and the check is
that every ID keeps its leading zeros. Writes bench-results/xlsx.json. PATHSHARE_BENCH_XLSX_ROWS sets
the rows (default 50,000).

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_xlsx.py -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import time
from pathlib import Path

from deid import _io, read_table, write_table
from deid._atomic import write_bytes_atomic

ROOT = Path(__file__).resolve().parents[2]


def _workbook(path: Path, rows: int) -> None:
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    rng = random.Random(18)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Students")
    ws.append([f"col{i}" for i in range(30)])
    for r in range(rows):
        ssid = WriteOnlyCell(ws, value=rng.randint(1, 99_999))
        ssid.number_format = "0000000000"
        row: list[object] = [ssid, dt.datetime(2008, 1, 1) + dt.timedelta(days=r % 3000), rng.random() * 4]
        row += [f"text{r}-{i}" if i % 3 else r * i for i in range(27)]
        ws.append(row)
    wb.save(path)


def _best(fn, repeat: int = 2) -> tuple[float, float, object]:
    """Best wall and CPU seconds of ``fn()`` (CPU is steadier on a shared machine), and its result."""
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu), out


def test_bench_xlsx(tmp_path: Path) -> None:
    rows = int(os.environ.get("PATHSHARE_BENCH_XLSX_ROWS", "50000"))
    book = tmp_path / "students.xlsx"
    _workbook(book, rows)
    fast_wall, fast_cpu, table = _best(lambda: read_table(book))
    assert table.num_rows == rows and table.num_columns == 30  # type: ignore[union-attr]
    ids = table.column("col0").to_pylist()  # type: ignore[union-attr]
    assert all(len(v) == 10 for v in ids), "leading zeros lost"
    old_wall, old_cpu, old = _best(lambda: _io._read_xlsx_cells(book, None, _io.ReadInfo()), repeat=1)
    assert old.to_pydict() == table.to_pydict()  # type: ignore[union-attr]  # the same text, cell for cell
    csv = tmp_path / "students.csv"
    write_table(table, csv)  # type: ignore[arg-type]
    csv_wall, csv_cpu, _ = _best(lambda: read_table(csv))
    results = {
        "rows": rows,
        "columns": 30,
        "xlsx_s": round(fast_wall, 3),
        "xlsx_cpu_s": round(fast_cpu, 3),
        "openpyxl_reader_s": round(old_wall, 3),
        "openpyxl_reader_cpu_s": round(old_cpu, 3),
        "csv_s": round(csv_wall, 3),
        "speedup_vs_openpyxl_cpu": round(old_cpu / fast_cpu, 1),
        "vs_csv_cpu": round(fast_cpu / csv_cpu, 1),
    }
    print(f"\n[xlsx] {rows:,} x 30: {results['xlsx_s']} s wall, {results['xlsx_cpu_s']} s CPU "
          "(target <= 3 s); "
          f"the openpyxl reader {results['openpyxl_reader_s']} s wall, {results['openpyxl_reader_cpu_s']} s "
          f"CPU ({results['speedup_vs_openpyxl_cpu']}x by CPU); the same table as CSV {results['csv_s']} s "
          f"({results['vs_csv_cpu']}x by CPU)")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    write_bytes_atomic(out / "xlsx.json", (json.dumps(results, indent=2) + "\n").encode(), 0o644, force=True)
