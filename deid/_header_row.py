"""A header row that is data: whether a file's first row, read as column names, looks like one more
student record (a clerk unticked "include headers"). Column numbers only, never values.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._cells import DATE_FORMATS, NUMBER_PATTERN, as_string, clean
from deid._elements import element_library
from deid._header_match import compact_header, synonyms_of
from deid._recodes import grade_code

HEADER_SAMPLE_ROWS = 1000  # rows spread over the file that each column's header cell is compared with
_MIN_SAMPLE = 3  # fewer non-empty values than this say nothing about a column's shape
# A four-digit year or a school year: a real header in a wide export ("2023", "2024" over scale scores).
_YEAR = re.compile(r"(19[5-9]\d|20[0-4]\d)([-/](\d{2}|\d{4}))?")
_INTEGER = re.compile(r"[-+]?\d+")
_NUMBER = re.compile(NUMBER_PATTERN)
# A date column's values, in any of the spreadsheet forms (a header cell is then tried with strptime).
_DATELIKE = (
    r"^(\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}-[A-Za-z]{3}-\d{4}|\d{8})([ T]\d{1,2}:\d{2}(:\d{2})?)?$"
)
_EXCEL_SERIAL = re.compile(r"[1-6]\d{4}")  # Excel day numbers of the years 1927 to 2064


@dataclass(frozen=True)
class HeaderVerdict:
    """Whether a file's header row looks like one more data row (column numbers only, never values).

    ``value_columns`` are the 1-based columns whose header cell is shaped like the values below it (a
    date in a date column, a number in a numeric column, one of a code column's codes, an ID's shape);
    ``name_columns`` are the typed columns whose header cell is not. Columns of free text, names or
    addresses, and empty header cells, vote neither way.
    """

    value_columns: tuple[int, ...]
    name_columns: tuple[int, ...]

    @property
    def looks_like_data(self) -> bool:
        """At least two columns vote "value", and at least as many as vote "name"."""
        votes = len(self.value_columns)
        return votes >= 2 and votes >= len(self.name_columns)


def header_row_verdict(
    names: Sequence[str], table: pa.Table, sample_rows: int = HEADER_SAMPLE_ROWS
) -> HeaderVerdict:
    """Compare each header cell with a sample of its column's values (see :class:`HeaderVerdict`).

    A data clerk who unticks "include headers" gives a file whose first row is a student's record;
    read with that row as column names, the student goes missing and their values show up as column
    names. Only ``sample_rows`` rows spread over the table are looked at, so a 1M-row file costs the
    same as a 1,000-row one.
    """
    table = _spread_sample(table, sample_rows)
    table = _without_repeated_headers(names, table)
    skip = _numbered_headers(names)
    known = _dictionary_headers()
    value: list[int] = []
    name: list[int] = []
    for i, header in enumerate(names):
        if i >= table.num_columns or i in skip:
            continue
        # A cell the data dictionary knows as a column name ("ELL", "ETH", "SSID", "Birth Date") is
        # one, whatever the values below it look like: short SIS names share their codes' shape.
        vote = "name" if compact_header(header) in known else _header_vote(header.strip(), table.column(i))
        if vote == "value":
            value.append(i + 1)
        elif vote == "name":
            name.append(i + 1)
    return HeaderVerdict(tuple(value), tuple(name))


@functools.lru_cache(maxsize=1)
def _dictionary_headers() -> frozenset[str]:
    """Every element name, label and synonym in the shipped library, compacted as headers are."""
    return frozenset(
        syn.compact for el in element_library().values() for syn in synonyms_of(el) if syn.compact
    )


def _spread_sample(table: pa.Table, rows: int, runs: int = 40) -> pa.Table:
    """About ``rows`` rows in ``runs`` runs spread evenly over the table: zero-copy slices (``take`` of
    scattered rows would gather from every chunk of a 1M-row table and cost more than the check)."""
    n = table.num_rows
    if n <= rows:
        return table
    size = max(1, rows // runs)
    starts = np.linspace(0, n - size, runs).astype(np.int64)
    return pa.concat_tables([table.slice(int(s), size) for s in starts]).combine_chunks()


def _without_repeated_headers(names: Sequence[str], table: pa.Table) -> pa.Table:
    """The sample without rows that repeat the header (exports appended one after another): those would
    make the header cells look like values of their columns."""
    named = [(i, h.strip()) for i, h in enumerate(names) if h.strip() and i < table.num_columns]
    # Three cells at least: in a narrow headerless file, other students share the first one's grade
    # and enrollment date, and their rows are the evidence.
    if len(named) < 3 or not table.num_rows:
        return table
    hits = None
    for i, h in named:
        same = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(as_string(table.column(i))), h), False)
        as_int = pc.cast(same, pa.int32())
        hits = as_int if hits is None else pc.add(hits, as_int)
    repeated = pc.greater_equal(hits, max(3, 0.9 * len(named)))
    return table.filter(pc.invert(repeated)) if pc.any(repeated).as_py() else table


def _numbered_headers(names: Sequence[str]) -> set[int]:
    """Columns in runs of three or more consecutive integers (1, 2, 3 or 2023, 2024, 2025): item or
    year columns of a real header, which a student's record is very unlikely to hold side by side."""
    out: set[int] = set()
    run: list[int] = []
    prev: int | None = None
    for i, raw in enumerate([*names, ""]):
        h = raw.strip()
        num = int(h) if _INTEGER.fullmatch(h) and len(h) <= 6 else None
        if num is not None and prev is not None and num == prev + 1:
            run.append(i)
        else:
            if len(run) >= 3:
                out.update(run)
            run = [i] if num is not None else []
        prev = num
    return out


def _shape(text: pa.Array) -> pa.Array:
    """Each value's character classes: 'A4313402' -> 'A9999999', 'Smith' -> 'Aaaaa'."""
    text = pc.replace_substring_regex(text, r"\d", "9")
    text = pc.replace_substring_regex(text, r"[A-Z]", "A")
    return pc.replace_substring_regex(text, r"[a-z]", "a")


def _is_date(value: str) -> bool:
    for fmt in DATE_FORMATS:
        try:
            dt.datetime.strptime(value, fmt)
            return True
        except ValueError:
            continue
    return False


def _header_vote(header: str, col: pa.ChunkedArray | pa.Array) -> str | None:
    """'value' when ``header`` would be a typical value of ``col``, 'name' when ``col`` has a typed shape
    that ``header`` lacks, None when the column says nothing (free text, names, too few values)."""
    if not header:
        return None
    values = pc.drop_null(clean(col))
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    present = len(values)
    if present < _MIN_SAMPLE:
        return None

    def share(pattern: str) -> float:
        return (pc.sum(pc.match_substring_regex(values, pattern)).as_py() or 0) / present

    if _YEAR.fullmatch(header):
        # A year names a column of a wide export unless the column itself holds years.
        return "value" if share(_YEAR.pattern.join("^$")) >= 0.9 else None
    if share(NUMBER_PATTERN) >= 0.95:
        return "value" if _NUMBER.fullmatch(header) else "name"
    counts = pc.value_counts(values)
    distinct = len(counts)
    if distinct <= 60 and present >= 2 * distinct:
        top = counts.field("values").to_pylist()
        if header in top:
            return "value"
        seen = set(top)
        for el in element_library().values():
            codes = el.codes
            if (
                codes
                and len(seen & codes) >= 0.9 * len(seen)
                and (header in codes or (el.format == "grade" and grade_code(header, codes) is not None))
            ):
                return "value"
        if len(header) <= 1 or any(ch.isdigit() for ch in header):
            # A code too rare to be in a small sample ("2025SP" over other terms, "A" over "H"/"W"):
            # a one-letter or numbered cell shaped like the codes. Words ("Gender" over "Female") are not,
            # nor abbreviations: "ELL", "IEP" over "YES"/"NO" share the shape of the codes but name them.
            shapes = set(_shape(pa.array(top, pa.string())).to_pylist())
            if _shape(pa.array([header], pa.string()))[0].as_py() in shapes:
                return "value"
        return "name"
    datelike = share(_DATELIKE)
    if datelike >= 0.5:
        dated = datelike + share(_EXCEL_SERIAL.pattern.join("^$"))
        if dated >= 0.8:
            return "value" if _is_date(header) or _EXCEL_SERIAL.fullmatch(header) else "name"
    # IDs: at most three shapes, each seen more than once, cover nearly all values (names, addresses
    # and free text come in many lengths, so they have no such shapes and vote neither way).
    lengths = pc.value_counts(pc.utf8_length(values)).field("counts").to_pylist()
    if sum(sorted(lengths, reverse=True)[:3]) < 0.9 * present:
        # Values of many lengths have many shapes (names, addresses, text): no need to compute them.
        return "value" if pc.any(pc.equal(values, header)).as_py() else None
    shapes = pc.value_counts(_shape(values))
    pairs = zip(shapes.field("counts").to_pylist(), shapes.field("values").to_pylist(), strict=True)
    common = sorted(((c, v) for c, v in pairs if c >= 2 and c >= 0.05 * present), reverse=True)[:3]
    if sum(c for c, _ in common) >= 0.9 * present:
        own = _shape(pa.array([header], pa.string()))[0].as_py()
        return "value" if own in shapes.field("values").to_pylist() else "name"
    # Names, cities, free text: a header cell that is itself one of the values below it (a surname
    # shared with other students, a city) is one more record; a column name hardly ever is.
    return "value" if pc.any(pc.equal(values, header)).as_py() else None
