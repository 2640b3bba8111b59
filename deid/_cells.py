"""A column's cells as text: trimmed, empty cells as nulls, numbers and dates read the way exports write
them. Every step of mapping (profiling, recodes, applying, validation, the header-row check) starts here.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

DATE_FORMATS = (
    "%m/%d/%Y",
    "%Y-%m-%d",
    "%Y%m%d",
    "%m-%d-%Y",
    "%Y/%m/%d",
    "%d-%b-%Y",
    "%m/%d/%y",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
)
# Plain numbers, an optional trailing % (a rate written as a percentage).
NUMBER_PATTERN = r"^[-+]?(\d+\.?\d*|\.\d+)%?$"


def as_string(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(col.type):
        return col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%d")
    return pc.cast(col, pa.string())


def clean(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Text with surrounding blanks trimmed and empty strings as nulls."""
    text = pc.utf8_trim_whitespace(as_string(col))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def best_date_format(values: pa.Array | pa.ChunkedArray) -> tuple[str | None, float]:
    """The strptime format that parses most of ``values`` (non-null text) and the fraction it parses."""
    n = len(values) - values.null_count
    if n == 0:
        return None, 0.0
    best: tuple[str | None, float] = (None, 0.0)
    for fmt in DATE_FORMATS:
        parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
        frac = (len(parsed) - parsed.null_count) / n
        if frac > best[1]:
            best = (fmt, frac)
        if frac >= 0.999:
            break
    return best


def to_float(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Numbers as float64 (a trailing % removed); anything unparseable becomes null."""
    text = clean(values)
    ok = pc.match_substring_regex(text, NUMBER_PATTERN)
    text = pc.if_else(ok, pc.replace_substring(text, "%", ""), pa.scalar(None, pa.string()))
    return pc.cast(text, pa.float64())
