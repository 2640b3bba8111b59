"""Readers and writers: CSV, XLSX and Parquet in, CSV and Parquet out; every value read as text.

Reading repairs what real SIS/MIS exports need and refuses what cannot be trusted, always with one
sentence naming the file and the place (a physical ``line`` of a CSV file, or a ``data row`` counted
from 1 after the header), never a cell value:

- encodings: UTF-8 (with or without a byte-order mark), UTF-16 with a BOM, and 8-bit Windows exports
  (Windows-1252 preferred, else what charset-normalizer finds plausible); non-UTF-8 bytes are
  transcoded by pyarrow's streaming reader in memory, so no plaintext copy is written to disk;
- delimiters: comma, semicolon, tab or pipe, chosen by parsing a sample with each;
- trailing unnamed empty columns are dropped; a repeated header whose column is identical to the first
  one or empty is dropped (it carries nothing; any other repeat is an error);
- a row one field short is padded, an extra empty trailing field is dropped; any other ragged row is
  an error naming its line;
- refused: empty files, a header without rows, blank header names, cells over 1 MB, binary files,
  bytes that decode in no plausible encoding, rows repeating the header (two exports pasted one under
  the other: deleting them is the clerk's call, and dropping them would shift every row number after).

Writing is atomic (``deid._atomic``) and the format follows the extension (``.csv`` or ``.parquet``).
CSV output is UTF-8 and neutralizes spreadsheet formulas: a cell starting with ``= + - @``, a tab or
a carriage return gets a leading ``'`` unless the whole cell is a plain number (``-3`` stays ``-3``).
Released rows are written only through :func:`write_release`, which puts them in a fresh secret random
order: the order of a student information system's export (by grade, by name) would otherwise pair
each released row with a name on a public directory list.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._atomic import Recorded, atomic_path, check_output_path
from deid.errors import InputError, OutputError

MAX_CELL_BYTES = 1_000_000
BLOCK_SIZE = 2 << 20  # small blocks parse in parallel; a row must fit in one
_BIG_BLOCK_SIZE = 64 << 20  # the retry, so that a 10 MB cell is parsed and then refused with its row
_DELIMITERS = (",", ";", "\t", "|")
_SAMPLE_BYTES = 256 << 10
_CHUNK = 8 << 20
_WRITE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_READ_FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# 8-bit code pages a North-American export may plausibly be in, most likely first.
_EIGHT_BIT = ["cp1252", "cp1250", "latin_1", "mac_roman", "cp437", "cp850", "iso8859_15"]


@dataclass
class ReadInfo:
    """What the reader found and repaired (for the report; never holds cell values)."""

    format: str = "csv"
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    repairs: list[str] = field(default_factory=list)
    # header name -> the names its later, different-valued repeats were read under (duplicates="rename")
    renamed_duplicates: dict[str, list[str]] = field(default_factory=dict)


def read_table(
    path: str | os.PathLike[str],
    *,
    sheet: str | None = None,
    info: ReadInfo | None = None,
    duplicates: str = "error",
) -> pa.Table:
    """Read a CSV, XLSX or Parquet file into a table whose every column is text (``pa.string()``).

    ``sheet`` picks an XLSX worksheet by name. ``info``, when given, is filled with the detected
    encoding, delimiter and the repairs made. A header name repeated over a column that is neither
    empty nor identical to the first is an error with ``duplicates="error"``; with ``"rename"`` the
    repeat is read as ``NAME_2`` and listed in ``info.renamed_duplicates`` (the de-identification run
    then refuses a policy that would depend on which of the two "NAME" means).
    Raises :class:`InputError` with one sentence naming the file and the problem.
    """
    p = Path(path)
    info = info if info is not None else ReadInfo()
    if not p.exists():
        raise InputError(f"{p} does not exist.")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a data file.")
    kind = _READ_FORMATS.get(p.suffix.lower())
    if kind is None:
        raise InputError(
            f"{p}: PathShare reads .csv, .xlsx and .parquet files, not '{p.suffix or 'no extension'}'."
        )
    try:
        if p.stat().st_size == 0:
            raise InputError(f"{p} is empty.")
        info.format = kind
        if kind == "xlsx":
            table = _read_xlsx(p, sheet, info)
        elif kind == "parquet":
            table = _read_parquet(p, info)
        else:
            table = _read_csv(p, info)
    except OSError as exc:  # unreadable (permissions, a device error): a sentence, not a traceback
        raise InputError(f"Cannot read {p}: {exc.strerror or 'the system refused'}.") from None
    return finish(p, table, info, duplicates)


# ---------------------------------------------------------------------------------------- CSV


def _read_csv(p: Path, info: ReadInfo) -> pa.Table:
    encoding = detect_encoding(p, full=False)
    for attempt in range(2):
        info.encoding = encoding
        text_sample = decoded_sample(p, encoding)
        if not text_sample.strip():
            raise InputError(f"{p} is empty.")
        # Strip spaces and line ends only: a tab is a delimiter, and a data row of empty tab-separated
        # cells ("\t\t") must not be mistaken for the absence of a line end.
        if p.stat().st_size <= _SAMPLE_BYTES and not any(c in text_sample.strip(" \r\n") for c in "\r\n"):
            # One line and no line end: pyarrow would call it an unclosed quote.
            raise InputError(f"{p} has a header but no data rows.")
        delimiter, header = sniff(p, text_sample)
        info.delimiter = delimiter
        names = [f"c{i}" for i in range(len(header))]
        invalid: list[tuple[int | None, str, int]] = []
        try:
            table = _parse(p, p, encoding, delimiter, names, invalid, threads=True)
            break
        except _NotUtf8:
            # The start looked like UTF-8 but a later byte is not: find the real encoding (once).
            if attempt:
                raise InputError(
                    f"{p} contains bytes that are not valid text in any encoding tried."
                ) from None
            encoding = detect_encoding(p, full=True)
    odd_quotes = encoding not in ("utf-16", "utf-32") and _count_bytes(p, b'"') % 2
    if odd_quotes and (invalid or _has_line_break(table)):
        # pyarrow reads an unclosed quote to the next quote or to the end of the file as one cell:
        # rows vanish into a cell (which then holds a line break) or come out ragged. Neither seen, an
        # odd count is a quote inside an unquoted value, as in 5'10", which is only a character.
        raise InputError(f'{p} has a quote (") that is never closed, so rows after it cannot be told apart.')
    if invalid:
        table = _repair_ragged(p, encoding, delimiter, header, names, info)
    return table.rename_columns(header)


def _has_line_break(table: pa.Table) -> bool:
    """Whether any cell holds a line break: where rows swallowed by an unclosed quote would be."""
    return any(pc.any(pc.match_substring_regex(c, r"[\r\n]")).as_py() for c in table.columns)


def _count_bytes(p: Path, needle: bytes) -> int:
    total = 0
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            total += chunk.count(needle)
    return total


class _NotUtf8(Exception):
    """pyarrow found invalid UTF-8 in a file assumed to be UTF-8."""


def _parse(
    p: Path,
    source: Path | bytes,
    encoding: str,
    delimiter: str,
    names: list[str],
    invalid: list[tuple[int | None, str, int]],
    *,
    threads: bool,
) -> pa.Table:
    """pyarrow's CSV reader with PathShare's options; a row too long for the usual block is retried
    with a big block so an oversized cell can be refused with its row number."""
    for block in (BLOCK_SIZE, _BIG_BLOCK_SIZE):
        invalid.clear()
        try:
            return _arrow_csv(source, encoding, delimiter, names, invalid, threads=threads, block_size=block)
        except pa.ArrowInvalid as exc:
            msg = str(exc)
            if ("straddling" in msg or "block" in msg) and block != _BIG_BLOCK_SIZE:
                continue
            if "UTF8" in msg and encoding in ("utf-8", "utf-8-sig"):
                raise _NotUtf8() from exc
            # from None: pyarrow's messages may quote the text of a row
            raise translate_arrow_error(p, exc) from None
    raise AssertionError("unreachable")


def _arrow_source(source: Path | bytes) -> object:
    return pa.BufferReader(source) if isinstance(source, bytes) else str(source)


def _arrow_csv(
    source: Path | bytes,
    encoding: str,
    delimiter: str,
    names: list[str],
    invalid: list[tuple[int | None, str, int]],
    *,
    threads: bool,
    block_size: int = 0,
) -> pa.Table:
    import pyarrow.csv as pcsv

    def on_invalid(row: pcsv.InvalidRow) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    read_opts = pcsv.ReadOptions(
        column_names=names,
        # the header as a parsed row, not a line: a header cell with a line break ("Student<LF>ID",
        # Excel's Alt+Enter) would otherwise leave its second line behind as a data row
        skip_rows_after_names=1,
        block_size=block_size or BLOCK_SIZE,
        use_threads=threads,
        encoding="utf8" if encoding in ("utf-8", "utf-8-sig") else encoding,
    )
    parse_opts = pcsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
    )
    convert_opts = pcsv.ConvertOptions(
        column_types={n: pa.string() for n in names},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pcsv.read_csv(
        _arrow_source(source), read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
    )


def translate_arrow_error(p: Path, exc: Exception) -> InputError:
    msg = str(exc)
    if "straddling" in msg or "block" in msg:
        return InputError(f"{p} has a value longer than 1 MB or a quote that is never closed.")
    if "UTF8" in msg or "utf8" in msg.lower():
        return InputError(f"{p} contains bytes that are not valid text in its encoding.")
    # pyarrow's own words are not repeated: some of its messages quote the row they stopped at.
    return InputError(f"{p} is not a well-formed CSV file (check its quotes and delimiters).")


def _repair_ragged(
    p: Path, encoding: str, delimiter: str, header: list[str], names: list[str], info: ReadInfo
) -> pa.Table:
    """Re-read single-threaded (so pyarrow reports line numbers), mend the rows that may be mended,
    splice them into an in-memory UTF-8 copy and parse that."""
    k = len(header)
    k_core = max((i + 1 for i, h in enumerate(header) if h), default=0)
    data = p.read_bytes()
    if encoding not in ("utf-8", "utf-8-sig"):
        data = data.decode(encoding).encode("utf-8")
    elif data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    invalid: list[tuple[int | None, str, int]] = []
    # single-threaded, so pyarrow numbers the rows (header = row 1) and reports them in order
    _parse(p, data, "utf-8", delimiter, names, invalid, threads=False)
    pieces: list[bytes] = []
    pos = 0
    padded = trimmed = 0
    for number, text, n_fields in invalid:
        fields = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
        body = text.rstrip("\r")
        if min(k - 1, k_core) <= n_fields < k:
            fixed = body + delimiter * (k - n_fields)
            padded += 1
        elif n_fields > k and not any(f.strip() for f in fields[k:]):
            fixed = delimiter.join(_quote(f, delimiter) for f in fields[:k])
            trimmed += 1
        else:
            raise InputError(f"{p}: row {number} has {n_fields} fields, the header has {k}.")
        start, end = _locate_row(data, body.encode("utf-8"), pos)
        if start < 0:
            raise InputError(f"{p}: row {number} has {n_fields} fields and could not be repaired.")
        pieces.append(data[pos:start])
        pieces.append(fixed.encode("utf-8"))
        pos = end
    pieces.append(data[pos:])
    del data
    fixed_data = b"".join(pieces)
    del pieces
    if padded:
        info.repairs.append(f"{padded} row(s) short of fields were padded with empty fields")
    if trimmed:
        info.repairs.append(f"{trimmed} row(s) with extra empty trailing fields were trimmed")
    still: list[tuple[int | None, str, int]] = []
    table = _parse(p, fixed_data, "utf-8", delimiter, names, still, threads=True)
    if still:  # should not happen; never silently lose a row
        raise InputError(f"{p}: {len(still)} row(s) could not be repaired to {k} fields.")
    return table


def _locate_row(data: bytes, body: bytes, pos: int) -> tuple[int, int]:
    """Byte span of the first record ``body`` at or after ``pos`` that starts and ends a line."""
    while True:
        start = data.find(body, pos)
        if start < 0:
            return -1, -1
        end = start + len(body)
        at_line_start = start == 0 or data[start - 1 : start] == b"\n"
        at_line_end = end == len(data) or data[end : end + 1] in (b"\n", b"\r")
        if at_line_start and at_line_end:
            return start, end
        pos = start + 1


def _quote(value: str, delimiter: str) -> str:
    if any(ch in value for ch in (delimiter, '"', "\n", "\r")):
        return '"' + value.replace('"', '""') + '"'
    return value


def detect_encoding(p: Path, *, full: bool = True) -> str:
    """Pick the file's encoding: BOMs first, then UTF-8, then an 8-bit Windows code page.

    With ``full=False`` a file whose first 256 KB are UTF-8 is taken as UTF-8 (pyarrow validates the
    rest while parsing, and the caller comes back with ``full=True`` if it finds otherwise); NUL bytes
    anywhere still mark it as binary."""
    with open(p, "rb") as fh:
        head = fh.read(_SAMPLE_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        enc = "utf-32"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc = "utf-16"
    else:
        enc = ""
    if enc == "utf-8-sig":
        return enc  # pyarrow validates UTF-8 as it parses
    if enc:
        _check_decodes(p, enc)
        return enc
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0", b"PAR1", b"%PDF")):
        raise InputError(f"{p} looks like a binary file (a workbook, archive or PDF), not CSV text.")
    if b"\x00" in head:
        raise InputError(f"{p} looks like a binary file, not CSV text (it contains NUL bytes).")
    if not full:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head)  # a cut last character is fine
        except UnicodeDecodeError:
            pass
        else:
            _check_no_nul(p)
            return "utf-8"
    bad_at = _first_non_utf8(p)
    if bad_at is None:
        return "utf-8"
    # Not UTF-8: sample the start and the first undecodable place for charset-normalizer.
    import charset_normalizer

    with open(p, "rb") as fh:
        fh.seek(max(0, bad_at - (64 << 10)))
        around = fh.read(128 << 10)
    sample = head + b"\n" + around
    match = charset_normalizer.from_bytes(sample, cp_isolation=_EIGHT_BIT).best()
    if match is None:
        raise InputError(
            f"{p} is not text in any encoding PathShare recognises "
            f"(tried UTF-8, UTF-16 and Windows code pages); save it as UTF-8 CSV."
        )
    for candidate in ("cp1252", match.encoding):
        if _decodes(p, candidate):
            return candidate
    raise InputError(f"{p} contains bytes that decode in no plausible encoding; save it as UTF-8 CSV.")


def _check_no_nul(p: Path) -> None:
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            if b"\x00" in chunk:
                raise InputError(f"{p} looks like a binary file, not CSV text (it contains NUL bytes).")


def _first_non_utf8(p: Path) -> int | None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(p, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            if b"\x00" in chunk:
                raise InputError(f"{p} looks like a binary file, not CSV text (it contains NUL bytes).")
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return offset
    return None


def _decodes(p: Path, encoding: str) -> bool:
    try:
        _check_decodes(p, encoding)
    except InputError:
        return False
    return True


def _check_decodes(p: Path, encoding: str) -> None:
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(p, "rb") as fh:
        try:
            while chunk := fh.read(_CHUNK):
                text = decoder.decode(chunk)
                if "\x00" in text:
                    raise InputError(f"{p} looks like a binary file, not CSV text (it contains NUL bytes).")
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InputError(f"{p} contains bytes that are not valid {encoding} text.") from exc


def decoded_sample(p: Path, encoding: str) -> str:
    with open(p, "rb") as fh:
        raw = fh.read(_SAMPLE_BYTES)
    text = raw.decode(encoding, errors="ignore")  # the tail may cut a multi-byte character
    return text.lstrip("\ufeff")


def sniff(p: Path, sample: str) -> tuple[str, list[str]]:
    """Choose the delimiter whose parse of the sample gives the most consistent, widest rows."""
    complete = sample if len(sample) < _SAMPLE_BYTES // 2 else sample[: sample.rfind("\n") + 1] or sample
    best: tuple[float, int, str, list[str]] | None = None
    for delim in _DELIMITERS:
        try:
            rows = []
            # newline=None: rows ended by a lone CR (old Mac exports) are rows too, as pyarrow reads them
            for i, row in enumerate(csv.reader(io.StringIO(complete, newline=None), delimiter=delim)):
                if row:
                    rows.append(row)
                if i > 200:
                    break
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        body = rows[1:] or rows
        consistent = sum(1 for r in body if abs(len(r) - width) <= 1) / len(body)
        score = (consistent, width, delim, rows[0])
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        # A single column, or not delimited at all.
        try:
            first = next(csv.reader(io.StringIO(complete, newline=None)), [])
        except csv.Error:
            # csv's own message names no value, but a sentence of ours says what to do
            raise InputError(
                f"{p} is not a well-formed CSV file: its header row cannot be read (a field over "
                f"128 KB or stray quotes)."
            ) from None
        if not first:
            raise InputError(f"{p} is empty.")
        return ",", [h.strip() for h in first]
    return best[2], [h.strip().lstrip("\ufeff") for h in best[3]]


# ---------------------------------------------------------------------------------------- XLSX


_MAX_XLSX_BYTES = 1 << 30  # far beyond Excel's own 1,048,576 rows of ordinary columns


def _read_xlsx(p: Path, sheet: str | None, info: ReadInfo) -> pa.Table:
    if p.stat().st_size > _MAX_XLSX_BYTES:
        raise InputError(
            f"{p} is {p.stat().st_size / (1 << 30):.1f} GB, too large to read as an Excel workbook (a "
            "workbook is read whole); save the sheet as CSV (File > Save As > CSV UTF-8) and use that."
        )
    try:
        return _read_xlsx_fast(p, sheet, info)
    except _SlowPath:
        pass
    # openpyxl warns through `warnings`, and one of its warnings quotes a cell's value (a number in a
    # date-formatted cell beyond Excel's dates, which it then reads as "#VALUE!"): the warnings are
    # caught here, never printed, and that one is refused by its cell, without the value.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = _read_xlsx_cells(p, sheet, info)
    for w in caught:
        found = _XLSX_BAD_DATE.match(str(w.message))
        if found:
            raise InputError(_bad_date(p, found.group(1), info))
    return table


def _bad_date(p: Path, cell: str, info: ReadInfo) -> str:
    return (
        f"{p}: cell {cell} (sheet '{info.sheet}') is formatted as a date but holds a "
        f"number outside Excel's dates; correct it or format the column as numbers or text."
    )


class _SlowPath(Exception):
    """The workbook has something the fast reader does not handle; openpyxl reads it instead."""


def _read_xlsx_fast(p: Path, sheet: str | None, info: ReadInfo) -> pa.Table:
    """Values from calamine (Rust; ~10x openpyxl), plus the two things only cell styles say, taken from
    the sheet's XML in one C-speed regex pass that stops only at the cells that carry such a style:
    numbers shown zero-padded ("0000000000": an ID whose leading zeros Excel only displays, restored)
    and date-formatted cells holding a number outside Excel's dates (refused, as openpyxl's reader
    does). Anything unusual (cells without a position, an unreadable style part) goes the slow way."""
    from python_calamine import CalamineWorkbook

    try:
        wb = CalamineWorkbook.from_path(str(p))
        names = list(wb.sheet_names)
    except Exception as exc:  # calamine raises its own errors, zipfile's or ValueError on bad files
        raise InputError(f"{p} is not a readable Excel workbook.") from exc
    if sheet is not None:
        if sheet not in names:
            raise InputError(f"{p} has no sheet named '{sheet}'; its sheets are: {', '.join(names)}.")
        name = sheet
    elif len(names) == 1:
        name = names[0]
    else:
        raise InputError(f"{p} has {len(names)} sheets ({', '.join(names)}); name the one to read.")
    info.sheet = name
    styled = _styled_cells(p, name)  # before the values: a workbook it cannot read goes the slow way
    try:
        ws = wb.get_sheet_by_name(name)
        grid = ws.to_python(skip_empty_area=False)
    except Exception as exc:
        raise InputError(f"{p} (sheet '{name}') is not readable.") from exc
    if not grid or not any(v != "" for v in grid[0]):
        raise InputError(f"{p} (sheet '{name}') is empty.")
    header = [_cell_text(v) or "" for v in grid[0]]
    header = [h.strip() for h in header]
    width = len(grid[0])
    blank = [""] * width
    kept = [i for i in range(1, len(grid)) if grid[i] != blank]
    rows = [grid[i] for i in kept]
    kept = [i + 1 for i in kept]  # sheet row numbers (the grid starts at A1)
    del grid
    padded: dict[int, dict[int, int]] = {}  # column -> {data row index: width}
    if styled:
        position = {row: i for i, row in enumerate(kept)}
        for (row, col), (kind, width) in styled.items():
            i = position.get(row)
            if i is None or col >= len(header):
                continue
            value = rows[i][col]
            if kind == "date" and isinstance(value, int | float) and not isinstance(value, bool):
                raise InputError(_bad_date(p, f"{_column_letters(col)}{row}", info))
            if kind == "pad":
                padded.setdefault(col, {})[i] = width
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in header]
    arrays = [_xlsx_column(col, padded.get(j)) for j, col in enumerate(columns)]
    return pa.table(arrays, names=header)


def _xlsx_column(values: list[object], padded: dict[int, int] | None) -> pa.Array:
    """One column of calamine values as text, as :func:`_cell_text` words each value (fast paths for
    the common all-text and all-number columns), with zero-padded numbers restored."""
    texts = _xlsx_texts(values)
    for i, width in (padded or {}).items():
        v = values[i]
        if type(v) is float and v.is_integer():  # type: ignore[union-attr]
            texts[i] = str(int(v)).zfill(width)  # type: ignore[arg-type]
        elif type(v) is int:
            texts[i] = str(v).zfill(width)
    return pa.array(texts, pa.string())


def _xlsx_texts(values: list[object]) -> list[str | None]:
    import datetime as dt

    kinds = set(map(type, values))
    if kinds <= {str}:
        return [v or None for v in values]  # type: ignore[misc]
    if kinds == {dt.date}:  # a date column (a datetime's type is datetime, not date)
        return [v.isoformat() for v in values]  # type: ignore[attr-defined]
    if kinds <= {str, float, int}:  # (not bool: type(True) is bool) as _cell_text words each
        return [
            (v or None) if type(v) is str  # type: ignore[misc]
            else str(v) if type(v) is int
            else (str(int(v)) if v.is_integer() else repr(v))  # type: ignore[union-attr]
            for v in values
        ]
    return [_cell_text(v) for v in values]


def _column_letters(col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


_XLSX_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_XLSX_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_CELL_START = re.compile(rb"<c[ >/]")
_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})(\d{1,7})"')


def _styled_cells(p: Path, sheet: str) -> dict[tuple[int, int], tuple[str, int]]:
    """{(sheet row, column index): ("pad", width) or ("date", 0)} for the cells whose style is a
    zero-padded number format or a date format; usually few or none, so only those are looked at."""
    import xml.etree.ElementTree as ET
    import zipfile

    from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format

    try:
        with zipfile.ZipFile(p) as z:
            book = ET.fromstring(z.read("xl/workbook.xml"))
            rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
            rid = next(e.get(_XLSX_REL) for e in book.iter(f"{_XLSX_NS}sheet") if e.get("name") == sheet)
            target = next(e.get("Target") for e in rels if e.get("Id") == rid) or ""
            part = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            formats = dict(BUILTIN_FORMATS)
            wanted: dict[int, tuple[str, int]] = {}
            if "xl/styles.xml" in z.namelist():
                styles = ET.fromstring(z.read("xl/styles.xml"))
                for f in styles.iter(f"{_XLSX_NS}numFmt"):
                    formats[int(f.get("numFmtId", "0"))] = f.get("formatCode", "")
                xfs = styles.find(f"{_XLSX_NS}cellXfs")
                for index, xf in enumerate(xfs if xfs is not None else []):
                    code = formats.get(int(xf.get("numFmtId", "0")), "")
                    if code and set(code) == {"0"} and len(code) > 1:
                        wanted[index] = ("pad", len(code))
                    elif code and is_date_format(code):
                        wanted[index] = ("date", 0)
            if not wanted:
                return {}
            # Excel, LibreOffice and openpyxl write each cell as <c r="B7" s="3" …>: position first. A cell
            # without its position first is left to openpyxl (checked by counting, at C speed).
            # The style attributes are found first (a literal prefix, so the scan is fast) and only
            # their cells' positions are read.
            pattern = re.compile(rb' s="(' + b"|".join(str(i).encode() for i in wanted) + rb')"')
            found: dict[tuple[int, int], tuple[str, int]] = {}
            with z.open(part) as raw:
                tail = b""
                while chunk := raw.read(16 << 20):
                    data = tail + chunk
                    cut = data.rfind(b"<")  # never split a tag between two pieces
                    data, tail = data[:cut], data[cut:]
                    cells = data.count(b"<c ") + data.count(b"<c>") + data.count(b"<c/")
                    if data.count(b'<c r="') != cells:
                        raise _SlowPath  # positions implied by order, or written later: openpyxl
                    for m in pattern.finditer(data):
                        ref = _CELL_REF.match(data, data.rfind(b"<", 0, m.start()))
                        if ref is None or ref.end() > m.start():
                            continue  # the attribute of another element (a row's, a column's)
                        found[(int(ref.group(2)), _column_index(ref.group(1)))] = wanted[int(m.group(1))]
                if _CELL_START.search(tail):
                    raise _SlowPath
            return found
    except (KeyError, StopIteration, ValueError, zipfile.BadZipFile, ET.ParseError) as exc:
        raise _SlowPath from exc


def _column_index(letters: bytes) -> int:
    index = 0
    for ch in letters:
        index = index * 26 + ch - 64
    return index - 1


_XLSX_BAD_DATE = re.compile(r"Cell (\$?[A-Z]{1,3}\$?\d+) is marked as a date")


def _read_xlsx_cells(p: Path, sheet: str | None, info: ReadInfo) -> pa.Table:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException on bad files
        raise InputError(f"{p} is not a readable Excel workbook.") from exc
    try:
        names = wb.sheetnames
        if sheet is not None:
            if sheet not in names:
                raise InputError(f"{p} has no sheet named '{sheet}'; its sheets are: {', '.join(names)}.")
            ws = wb[sheet]
        elif len(names) == 1:
            ws = wb[names[0]]
        else:
            raise InputError(f"{p} has {len(names)} sheets ({', '.join(names)}); name the one to read.")
        info.sheet = ws.title
        # Cells, not bare values: a number shown with a zero-padded format ("0000000") is an ID
        # whose leading zeros Excel only displays, and they are restored.
        rows = ([_cell_text(c.value, getattr(c, "number_format", None)) for c in r] for r in ws.iter_rows())
        header_row = next(rows, None)
        if header_row is None:
            raise InputError(f"{p} (sheet '{ws.title}') is empty.")
        header = ["" if v is None else v.strip() for v in header_row]
        columns: list[list[str | None]] = [[] for _ in header]
        k = len(header)
        for row in rows:
            if all(v is None for v in row):
                continue
            texts = row
            if len(texts) > k:
                if any(t for t in texts[k:]):
                    raise InputError(
                        f"{p}: data row {len(columns[0]) + 1} has values beyond the header's {k} columns."
                    )
                texts = texts[:k]
            texts += [None] * (k - len(texts))
            for col, t in zip(columns, texts, strict=True):
                col.append(t)
    finally:
        wb.close()
    if not header or not any(header):
        raise InputError(f"{p} (sheet '{info.sheet}') is empty.")
    return pa.table([pa.array(c, pa.string()) for c in columns], names=header)


def _cell_text(v: object, number_format: str | None = None) -> str | None:
    import datetime as dt

    if v is None:
        return None
    if (
        number_format
        and isinstance(v, int | float)
        and not isinstance(v, bool)
        and float(v).is_integer()
        and set(number_format) == {"0"}
    ):
        return str(int(v)).zfill(len(number_format))
    if isinstance(v, str):
        return v if v != "" else None
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    return str(v)


# ------------------------------------------------------------------------------------- Parquet


def _read_parquet(p: Path, info: ReadInfo) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{p} is not a readable Parquet file.") from exc
    cols = []
    for col in table.columns:
        cols.append(column_as_text(col))
    return pa.table(cols, names=table.column_names)


def column_as_text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_string(t):
        return col
    if pa.types.is_large_string(t):
        return col.cast(pa.string())
    if pa.types.is_date(t):
        return pc.strftime(col, format="%Y-%m-%d")
    if pa.types.is_timestamp(t):
        return pc.strftime(col, format="%Y-%m-%d %H:%M:%S")
    if pa.types.is_boolean(t):
        return pc.if_else(col, "TRUE", "FALSE")
    if pa.types.is_floating(t):
        # 3.0 -> "3", not "3.0", like the CSV the same data would come from
        as_int = pc.equal(col, pc.floor(col))
        ints = pc.cast(pc.if_else(as_int, col, None), pa.int64(), safe=False).cast(pa.string())
        return pc.coalesce(ints, col.cast(pa.string()))
    try:
        return col.cast(pa.string())
    except pa.ArrowNotImplementedError:
        return pa.chunked_array(
            [pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())]
        )


# ---------------------------------------------------------------------------- common finishing


def finish(p: Path, table: pa.Table, info: ReadInfo, duplicates: str = "error") -> pa.Table:
    """Header repairs and refusals shared by every format."""
    check_text(table, str(p))
    names = list(table.column_names)
    if not names:
        raise InputError(f"{p} has no header row.")
    keep: list[int] = []
    first_of: dict[str, int] = {}
    new_names = list(names)
    last_named = max((i for i, n in enumerate(names) if n), default=-1)
    if last_named < 0:
        raise InputError(f"{p} has no column names in its first row.")
    refuse_repeated_headers(p, table, names)
    check_header_is_not_data(p, names, table)
    dropped_trailing = 0
    for i, name in enumerate(names):
        col = table.column(i)
        if not name:
            if i > last_named and col.null_count == len(col):
                dropped_trailing += 1
                continue
            raise InputError(f"{p}: column {i + 1} has no name in the header row.")
        if name in first_of:
            j = first_of[name]
            if col.null_count == len(col):
                info.repairs.append(f"the second '{name}' column (column {i + 1}) was empty and was dropped")
                continue
            if col.equals(table.column(j)):
                info.repairs.append(
                    f"the second '{name}' column (column {i + 1}) repeated column {j + 1} "
                    f"exactly and was dropped"
                )
                continue
            if duplicates != "rename":
                raise InputError(
                    f"{p}: the header names '{name}' twice (columns {j + 1} and {i + 1}) with "
                    f"different values; rename one of them."
                )
            n = 2
            while f"{name}_{n}" in first_of or f"{name}_{n}" in names:
                n += 1
            new_names[i] = f"{name}_{n}"
            info.renamed_duplicates.setdefault(name, []).append(new_names[i])
            info.repairs.append(
                f"the second '{name}' column (column {i + 1}) differs from the first and was "
                f"read as '{new_names[i]}'"
            )
            first_of[new_names[i]] = i
            keep.append(i)
            continue
        first_of[name] = i
        keep.append(i)
    if dropped_trailing:
        info.repairs.append(f"{dropped_trailing} empty unnamed trailing column(s) were dropped")
    table = table.select(keep).rename_columns([new_names[i] for i in keep])
    if table.num_rows == 0:
        raise InputError(f"{p} has a header but no data rows.")
    for name in table.column_names:
        col = table.column(name)
        lengths = pc.binary_length(col)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_CELL_BYTES:
            row = pc.index(pc.greater(lengths, MAX_CELL_BYTES), True).as_py()
            raise InputError(f"{p}: the cell in column '{name}', data row {row + 1}, is larger than 1 MB.")
    return table


def check_text(table: pa.Table, where: str) -> None:
    """Refuse text columns holding bytes no Unicode text may hold (a lone surrogate written as UTF-8,
    stray bytes in a Parquet string column): every later step assumes valid UTF-8. The message names
    the column and the first such row, never the bytes."""
    for name, col in zip(table.column_names, table.columns, strict=True):  # (names may repeat)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        offset = 0
        for chunk in col.chunks:
            bad = _first_invalid_utf8(chunk)
            if bad is not None:
                raise InputError(
                    f"{where}: the cell in column '{name}', data row {offset + bad + 1}, is not valid "
                    "text (it holds bytes no Unicode text may hold, such as half of a surrogate pair); "
                    "save the file again as UTF-8."
                )
            offset += len(chunk)


def _first_invalid_utf8(chunk: pa.Array) -> int | None:
    """Index of the first cell of ``chunk`` that is not valid UTF-8, or None (bisection: each step is
    one vectorized validation)."""

    def valid(part: pa.Array) -> bool:
        try:
            part.validate(full=True)
        except pa.ArrowInvalid:
            return False
        return True

    if valid(chunk):
        return None
    lo, hi = 0, len(chunk)  # the first bad cell is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if valid(chunk.slice(lo, mid - lo)):
            lo = mid
        else:
            hi = mid
    return lo


def refuse_repeated_headers(p: Path, table: pa.Table, names: list[str]) -> None:
    """Refuse data rows that repeat the header cell for cell: two exports pasted one under the other.

    Read as data, such a row would be de-identified as a student ("Student ID" as an ID, "Grade" as
    a grade); dropped silently, every later row number in findings and messages would be off. So the
    clerk is told which rows to delete. Only a row equal to the header in every named column (at
    least two of them) counts.
    """
    named = [(i, n.strip()) for i, n in enumerate(names) if n.strip()]
    if len(named) < 2 or not table.num_rows:
        return
    repeated = None
    for i, name in named:
        same = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(table.column(i)), name), False)
        repeated = same if repeated is None else pc.and_(repeated, same)
        if not pc.any(repeated).as_py():
            return
    rows = pc.indices_nonzero(repeated).to_pylist()
    shown = ", ".join(str(r + 1) for r in rows[:5]) + (", …" if len(rows) > 5 else "")
    raise InputError(
        f"{p}: data row{'s' if len(rows) > 1 else ''} {shown} repeat{'' if len(rows) > 1 else 's'} the "
        f"header row (two exports pasted together?); delete {'them' if len(rows) > 1 else 'it'} and "
        f"read the file again."
    )


# A header cell shaped like one of these is a student's value: the file has no header row.
_DATA_HEADERS = (
    (re.compile(r"\d{3}-\d{2}-\d{4}"), "a Social Security number"),
    (re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}"), "an e-mail address"),
    (re.compile(r"(\+?1[ .-]?)?(\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"), "a phone number"),
)


def check_header_is_not_data(p: Path, names: list[str], table: pa.Table | None = None) -> None:
    """Refuse a file whose first row is a student's record: its values would become column names (and
    so appear in messages, reports and the mapping), and the student would be missing from the data.

    First a header cell shaped like an SSN, e-mail or phone number; then, with ``table``, the header
    compared column by column with a sample of the values below it (``deid._header_row.header_row_verdict``:
    a date over dates, a number over numbers, a code over codes, an ID's shape over IDs)."""
    for i, name in enumerate(names):
        for pattern, what in _DATA_HEADERS:
            if pattern.fullmatch(name.strip()):
                raise InputError(
                    f"{p} has no header row: the first row's column {i + 1} holds {what}, not a "
                    f"column name; add a row of column names at the top."
                )
    if table is None:
        return
    # Imported here: deid._header_row is the data dictionary's layer, above the readers.
    from deid._header_row import header_row_verdict

    verdict = header_row_verdict(names, table)
    if verdict.looks_like_data:
        raise InputError(
            f"{p} seems to have no header row: its first row looks like a student's record "
            f"({_columns_text(verdict.value_columns)} hold values like those below them); add a row of "
            f"column names at the top."
        )


def _columns_text(columns: tuple[int, ...], most: int = 6) -> str:
    """'columns 2, 5 and 7' (at most ``most`` numbers, then 'and N more'); numbers, never values."""
    shown = [str(c) for c in columns[:most]]
    rest = len(columns) - len(shown)
    if rest:
        return f"columns {', '.join(shown)} and {rest} more"
    return f"columns {', '.join(shown[:-1])} and {shown[-1]}" if len(shown) > 1 else f"column {shown[0]}"


# -------------------------------------------------------------------------------------- writers


PathArg = str | os.PathLike[str]


def check_distinct_files(
    inputs: list[tuple[str, PathArg | None]], outputs: list[tuple[str, PathArg | None]]
) -> None:
    """Refuse a run that would write one of ``outputs`` over an input or over another output
    (``[(role, path)]``, e.g. ``("the report", path)``; None entries are skipped). A report named
    like the extract would replace the students' file with JSON: data lost. Inputs may coincide."""
    seen: list[tuple[str, Path]] = [(role, Path(path)) for role, path in inputs if path is not None]
    for role, path in outputs:
        if path is None:
            continue
        p = Path(path)
        for other_role, other in seen:
            if same_file(p, other):
                raise OutputError(
                    f"{p} cannot be both {other_role} and {role}; choose another name for {role}."
                )
        seen.append((role, p))


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: by identity when both exist (a hard or symbolic link
    counts), else by resolved path; when the file system cannot say, by absolute path (the careful
    answer: an output is refused rather than written over its input)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)  # also a hard link or a symbolic link to it
        return a.resolve() == b.resolve()
    except OSError:
        return a.absolute() == b.absolute()


def output_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"`` or ``"parquet"`` for an output path, or raise OutputError."""
    suffix = Path(path).suffix.lower()
    fmt = _WRITE_FORMATS.get(suffix)
    if fmt is None:
        raise OutputError(
            f"Cannot write {path}: PathShare writes .csv or .parquet files, not '{suffix or 'no extension'}'."
        )
    return fmt


def neutralize_formulas(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Prefix ``'`` to text cells a spreadsheet would run as a formula (vectorized; the rule:
    deid/_csvsafe.py)."""
    from deid._csvsafe import FORMULA_START, PLAIN_NUMBER

    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return col
    risky = pc.and_(
        pc.match_substring_regex(col, FORMULA_START), pc.invert(pc.match_substring_regex(col, PLAIN_NUMBER))
    )
    if not pc.any(risky).as_py():
        return col
    return pc.if_else(risky, pc.binary_join_element_wise("'", col, ""), col)


_WRITE_BATCH = 65536  # rows per written batch (a shuffled write gathers one batch at a time)


def release_order(n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` for released rows, from the OS's CSPRNG.

    Each row gets an independent 64-bit sort key from ``os.urandom`` and rows go in key order, so the
    order is drawn afresh on every call and depends on nothing in the data: not on identifiers, not
    on the input's order (two rows tie with probability about n²/2⁶⁵; a tie keeps input order, which
    says nothing either). Streaming-friendly by construction: a writer that cannot hold every row
    gives each incoming row its random key and does an external sort on it (or scatters rows into
    spill files by the key's top bits and shuffles each file in memory); no key needs any other row.
    """
    if n <= 0:
        return np.zeros(0, np.int64)
    keys = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
    return np.argsort(keys, kind="stable").astype(np.int64)


def write_release(
    table: pa.Table,
    path: str | os.PathLike[str],
    *,
    before_commit: Callable[[Path], None] | None = None,
    force: bool = False,
    recorded: Recorded | None = None,
    bom: bool = False,
) -> str:
    """Write rows that leave the organization (or may): :func:`write_table` in :func:`release_order`.

    The one door for every path that writes released data (``deid``, ``deid --agreement``,
    ``prepare``, the app's Prepare, the demo): never sort such rows by anything, and never keep the
    input's order. Row numbers the de-identification report gives (residual findings) count the
    input's data rows, which is the order of ``table`` here, not of the file written.
    """
    order = release_order(table.num_rows)
    return write_table(
        table, path, before_commit=before_commit, order=order, force=force, recorded=recorded, bom=bom,
        workbook=Path(path).suffix.lower() == ".xlsx",
    )


def write_batches(
    batches: Iterator[pa.Table],
    path: str | os.PathLike[str],
    *,
    before_commit: Callable[[Path], None] | None = None,
    force: bool = False,
    recorded: Recorded | None = None,
) -> str:
    """:func:`write_table` for rows that arrive in batches (already in their release order: a streaming
    run's rows come from DuckDB's sort by a random key); returns the SHA-256 of what was written."""
    fmt = output_format(path)
    check_output_path(path, force=force, recorded=recorded)
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        with atomic_path(path, force=force, recorded=recorded) as tmp:
            with open(tmp, "wb") as raw:
                sink = HashingWriter(raw)
                writer: Any = None
                schema: pa.Schema | None = None
                try:
                    for piece in batches:
                        if fmt == "csv":
                            piece = pa.table(
                                [neutralize_formulas(c) for c in piece.columns], names=piece.column_names
                            )
                        if writer is None:
                            schema = piece.schema
                            options = pcsv.WriteOptions(batch_size=_WRITE_BATCH)
                            writer = (
                                pcsv.CSVWriter(sink, schema, write_options=options)
                                if fmt == "csv"
                                else pq.ParquetWriter(sink, schema, compression="zstd")
                            )
                        writer.write_table(piece if piece.schema == schema else piece.cast(schema))
                finally:
                    if writer is not None:
                        writer.close()
            if before_commit is not None:
                before_commit(tmp)
        return sink.hexdigest()
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}.") from exc


def _batches(table: pa.Table, order: np.ndarray | None) -> Iterator[pa.Table]:
    """``table`` in pieces of at most ``_WRITE_BATCH`` rows, in ``order`` when given: each piece is
    gathered on its own, so a shuffled write never copies the whole table."""
    if order is None:
        for start in range(0, table.num_rows, _WRITE_BATCH):
            yield table.slice(start, _WRITE_BATCH)
        return
    for start in range(0, len(order), _WRITE_BATCH):
        yield table.take(pa.array(order[start : start + _WRITE_BATCH]))


def write_table(
    table: pa.Table,
    path: str | os.PathLike[str],
    *,
    before_commit: Callable[[Path], None] | None = None,
    order: np.ndarray | None = None,
    force: bool = False,
    recorded: Recorded | None = None,
    bom: bool = False,
    workbook: bool = False,
) -> str:
    """Write ``table`` atomically as CSV (UTF-8, formulas neutralized), Parquet or (released data only,
    when the agreement says so) an Excel workbook with text-typed text columns, by extension, and
    return the SHA-256 (hex) of the bytes written, hashed on the way out (sealing then reads the file
    once instead of twice).

    ``bom`` starts a CSV with the UTF-8 byte-order mark: Excel reads a CSV without one in the
    machine's code page and garbles every accent (packages for analysts carry it; readers skip it).

    ``order`` (a permutation of the row indices) writes the rows in that order, batch by batch;
    released rows go through :func:`write_release` instead of choosing one here.
    ``before_commit(temp_path)`` runs after the data is fully written but before the file appears
    under its name (e.g. to save a crosswalk, or to honour a late cancel); if it raises, nothing is
    left behind. An existing file at ``path`` is replaced only with ``force``, never one ``recorded``
    names (see deid._atomic.check_output_path).
    """
    # An Excel workbook (``workbook``) is written only for released data whose agreement asks for it
    # (write_release); it is not one of the output formats the commands offer.
    fmt = "xlsx" if workbook and Path(path).suffix.lower() == ".xlsx" else output_format(path)
    check_output_path(path, force=force, recorded=recorded)
    if order is not None and len(order) != table.num_rows:
        raise ValueError("order must hold one index per row")
    if fmt == "xlsx" and table.num_rows > XLSX_MAX_ROWS:
        raise OutputError(
            f"Cannot write {path}: an Excel sheet holds at most {XLSX_MAX_ROWS:,} rows below its header, "
            f"and this release has {table.num_rows:,}; the agreement's CSV format has no such limit."
        )
    try:
        with atomic_path(path, force=force, recorded=recorded) as tmp:
            with open(tmp, "wb") as raw:
                sink = HashingWriter(raw)
                if fmt == "csv":
                    if bom:
                        sink.write(codecs.BOM_UTF8)
                    _write_csv(table, sink, order)
                elif fmt == "xlsx":
                    _write_xlsx(table, sink, order)
                else:
                    _write_parquet(table, sink, order)
            if before_commit is not None:
                before_commit(tmp)
        return sink.hexdigest()
    except OSError as exc:
        raise OutputError(f"Cannot write {path}: {exc.strerror or exc}.") from exc


class HashingWriter(io.RawIOBase):
    """A binary file for pyarrow's writers that hashes (SHA-256) everything written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self._raw = raw
        self._digest = hashlib.sha256()
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._digest.update(view)
        self._raw.write(view)
        self._pos += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self._pos

    def flush(self) -> None:
        self._raw.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _write_csv(table: pa.Table, tmp: Any, order: np.ndarray | None) -> None:
    import pyarrow.csv as pcsv

    def safe(t: pa.Table) -> pa.Table:
        return pa.table([neutralize_formulas(c) for c in t.columns], names=t.column_names)

    if table.num_rows == 0:
        pcsv.write_csv(safe(table), tmp)
        return
    writer: pcsv.CSVWriter | None = None
    schema: pa.Schema | None = None
    try:
        for piece in _batches(table, order):
            out = safe(piece)
            if writer is None or schema is None:
                schema = out.schema
                writer = pcsv.CSVWriter(tmp, schema, write_options=pcsv.WriteOptions(batch_size=_WRITE_BATCH))
            writer.write_table(out if out.schema == schema else out.cast(schema))
    finally:
        if writer is not None:
            writer.close()


XLSX_MAX_ROWS = 1_048_575  # Excel's 1,048,576 rows per sheet, less the header
XLSX_SHEET = "data"


def _write_xlsx(table: pa.Table, tmp: Any, order: np.ndarray | None) -> None:
    """One sheet, ``data``: the header, then the rows. A text column's cells are text cells with Excel's
    Text format ("@"), so 0109850 stays 0109850 when a clerk opens, edits and saves the file, and a
    cell that begins with "=" is text, never a formula; numbers stay numbers, nulls are empty cells."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet(XLSX_SHEET)
    text = [pa.types.is_string(t) or pa.types.is_large_string(t) for t in table.schema.types]

    def cell(value: Any, as_text: bool) -> Any:
        c = WriteOnlyCell(sheet, value=value)
        if as_text and value is not None:
            c.data_type = "s"  # openpyxl would make "=…" a formula
            c.number_format = "@"
        return c

    sheet.append([cell(name, True) for name in table.column_names])
    for piece in _batches(table, order):
        columns = [c.to_pylist() for c in piece.columns]
        for row in zip(*columns, strict=True):
            sheet.append([cell(v, t) for v, t in zip(row, text, strict=True)])
    book.save(tmp)


def _write_parquet(table: pa.Table, tmp: Any, order: np.ndarray | None) -> None:
    import pyarrow.parquet as pq

    if order is None:
        pq.write_table(table, tmp, compression="zstd")
        return
    with pq.ParquetWriter(tmp, table.schema, compression="zstd") as writer:
        for piece in _batches(table, order):
            writer.write_table(piece)
        if table.num_rows == 0:
            writer.write_table(table)
