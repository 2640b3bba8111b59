"""Writing synthetic tables: CSV, Parquet, XLSX, and the deliberately messy CSV."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from deid._atomic import atomic_open, atomic_path, check_output_path
from deid.errors import OutputError

XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit (1,048,576) minus the header row
FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
_BATCH = 1 << 16


def output_format(path: str | os.PathLike[str], rows: int, messy: bool, *, force: bool = False) -> str:
    """The format for ``path`` (csv, parquet or xlsx), or an OutputError saying why not."""
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise OutputError(f"Cannot write {p}: the file name must end in .csv, .parquet or .xlsx.")
    if messy and fmt != "csv":
        raise OutputError(
            f"Cannot write {p}: --messy writes CSV only (real exports are CSV); use a .csv name."
        )
    if fmt == "xlsx" and rows > XLSX_MAX_ROWS:
        raise OutputError(
            f"Cannot write {p}: an Excel sheet holds at most {XLSX_MAX_ROWS:,} rows; use .csv or .parquet."
        )
    check_output_path(p, force=force)
    return fmt


def write_table(table: pa.Table, path: str | os.PathLike[str], fmt: str, *, force: bool = False) -> None:
    """Write a clean (not messy) table atomically; every column is text, so leading zeros survive."""
    if fmt == "csv":
        with atomic_path(path, force=force) as tmp:
            pacsv.write_csv(table, str(tmp))
    elif fmt == "parquet":
        with atomic_path(path, force=force) as tmp:
            pq.write_table(table, str(tmp), compression="zstd")
    else:
        _write_xlsx(table, path, force=force)


def _write_xlsx(table: pa.Table, path: str | os.PathLike[str], *, force: bool) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Students")
    ws.append(table.column_names)
    for batch in table.to_batches(_BATCH):
        cols = [c.to_pylist() for c in batch.columns]
        for row in zip(*cols, strict=True):
            ws.append(list(row))  # str cells are stored as text: "0123456" stays "0123456"
    with atomic_open(path, "wb", force=force) as fh:
        wb.save(fh)


def _csv_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, eol="\r\n"))
    return buf.getvalue()


def _slices(table: pa.Table, start: int, stop: int) -> Iterator[pa.Table]:
    for off in range(start, stop, _BATCH):
        yield table.slice(off, min(_BATCH, stop - off))


def write_messy_csv(
    table: pa.Table,
    path: str | os.PathLike[str],
    encoding: str,
    ragged_rows: list[dict[str, int]],
    *,
    force: bool = False,
) -> None:
    """A CSV as a legacy export or a hand-edited spreadsheet leaves it.

    ``encoding`` is "cp1252" (no byte-order mark) or "utf-8-sig" (UTF-8 with one). The header is
    unquoted (trailing empty names show as trailing commas); rows end in CRLF while newlines inside
    quoted notes stay LF; the rows listed in ``ragged_rows`` get one field fewer or one more.
    """
    header = ",".join(table.column_names) + "\r\n"
    width = table.num_columns
    ragged = {r["row"]: r["fields"] for r in ragged_rows}
    body_encoding = encoding.replace("-sig", "")  # the byte-order mark goes before the header only

    def encode(data: bytes) -> bytes:
        return data if body_encoding == "utf-8" else data.decode("utf-8").encode(body_encoding)

    with atomic_open(path, "wb", force=force) as fh:
        fh.write(header.encode(encoding))
        pos = 0
        for stop in [*sorted(ragged), table.num_rows]:
            for part in _slices(table, pos, stop):
                fh.write(encode(_csv_bytes(part)))
            if stop < table.num_rows:
                line = _csv_bytes(table.slice(stop, 1))
                fields = ragged[stop]
                # The row ends with empty trailing fields (",,\r\n"): drop or add one comma.
                if fields == width - 1:
                    line = line[:-3] + b"\r\n"
                elif fields == width + 1:
                    line = line[:-2] + b",\r\n"
                fh.write(encode(line))
            pos = stop + 1
