"""Applying a mapping: columns renamed to element names, codes recoded, dates written as ISO
``YYYY-MM-DD`` and numbers as plain text — what makes files from different systems line up. The work is
vectorized with pyarrow compute, once per distinct value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deid._cells import as_string, best_date_format, clean, to_float
from deid._elements import Element, element_library
from deid._mapping_profile import MappingProfile, as_profile
from deid._recodes import apply_recodes
from deid._value_profile import SAMPLE_ROWS
from deid.errors import InputError, PolicyError


def check_mapping(table: pa.Table, prof: MappingProfile, by_name: Mapping[str, Element] | None) -> None:
    missing = [
        c for c in [*prof.mapped, *(d["from"] for d in prof.derived.values())] if c not in table.column_names
    ]
    missing = list(dict.fromkeys(missing))
    if missing:
        raise InputError(
            f"The input has no column {', '.join(repr(c) for c in missing)}, which the mapping "
            f"'{prof.name}' uses."
        )
    targets = list(prof.mapped.values())
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise PolicyError(f"The mapping '{prof.name}' maps more than one column to {', '.join(dupes)}.")
    if by_name is not None:
        unknown = sorted((set(targets) | set(prof.derived)) - set(by_name))
        if unknown:
            raise PolicyError(
                f"The mapping '{prof.name}' uses element(s) the dictionary does not have: "
                f"{', '.join(unknown)}."
            )


def column_date_format(head: pa.ChunkedArray | pa.Array) -> str:
    """The date format of a column whose mapping names none: the best format of its first
    ``SAMPLE_ROWS`` rows (``head``: those rows, or more), "" when none fits. Chosen once per column, so a
    file read in batches gets the one format the whole column gets."""
    fmt, _ = best_date_format(pc.drop_null(clean(head.slice(0, SAMPLE_ROWS))))
    return fmt or ""


def _parse_dates(text: pa.ChunkedArray | pa.Array, fmt: str | None) -> pa.ChunkedArray | pa.Array:
    """Dates parsed with ``fmt`` (None: the best format of ``text``'s first rows; "": no format fits),
    as timestamps; unparseable -> null."""
    if fmt is None:
        fmt = column_date_format(text)
    if not fmt:
        return pa.nulls(len(text), pa.timestamp("s"))
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    # strptime's %Y also reads "09" as the year 9: such values are left to the mixed-format parser.
    years = pc.year(parsed)
    plausible = pc.and_(pc.greater_equal(years, 1900), pc.less_equal(years, 2100))
    parsed = pc.if_else(plausible, parsed, pa.scalar(None, pa.timestamp("s")))
    if parsed.null_count > text.null_count:
        # Exports mix formats (a hand-edited row, Excel serial days): the engine's mixed-format parser
        # fills the gaps; the column's own format goes first so an ambiguous 03/04 reads like the rest.
        from deid._treatments import parse_dates

        others, _ = parse_dates(text)
        if isinstance(parsed, pa.Array):
            others = others.combine_chunks()
        parsed = pc.coalesce(parsed, pc.cast(others, pa.timestamp("s")))
    return parsed


def _format_number(nums: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    rounded = pc.round(nums, 6)
    as_int = pc.equal(rounded, pc.floor(rounded))
    ints = pc.cast(pc.if_else(as_int, rounded, None), pa.int64(), safe=False).cast(pa.string())
    return pc.coalesce(ints, pc.cast(rounded, pa.string()))


def normalize_column(
    col: pa.ChunkedArray | pa.Array,
    el: Element,
    *,
    recodes: Mapping[str, str] | None = None,
    date_format: str | None = None,
    fraction_top: float | None = None,
) -> pa.ChunkedArray | pa.Array:
    """One column's values in the element's form: codes recoded, dates ISO, numbers plain (text).

    The work is done once per distinct value (dictionary encode, transform the dictionary, take):
    a million rows of birth dates hold a few thousand distinct dates. A date column without
    ``date_format`` gets the format of its first rows (:func:`column_date_format`); a percentage
    column (``normalize: fraction``) is divided by 100 when its largest value (``fraction_top``, else
    this column's) is over 1. Both are whole-column facts: a caller with one batch of the file passes
    the file's.
    """
    if el.type == "date" and date_format is None:
        date_format = column_date_format(col)
    if el.normalize == "fraction" and fraction_top is None:
        fraction_top = column_top(col)
    if el.code_set or el.type in ("date", "integer", "decimal"):
        return map_distinct(
            col, lambda values: normalize_values(values, el, recodes, date_format, fraction_top)
        )
    return normalize_values(col, el, recodes, date_format, fraction_top)


def column_top(col: pa.ChunkedArray | pa.Array) -> float:
    """The largest number of a column (-inf when it holds none): what ``normalize: fraction`` looks at."""
    top = pc.max(to_float(clean(col))).as_py()
    return float("-inf") if top is None else float(top)


def map_distinct(col: pa.ChunkedArray | pa.Array, *funcs: Any) -> Any:
    """Each of ``funcs`` applied to the distinct values of ``col`` and spread back over its rows (one
    result, or a tuple of results for several functions; the column is encoded once)."""
    arr = as_string(col)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    encoded = pc.dictionary_encode(arr)
    if len(encoded.dictionary) * 2 > max(len(arr), 1):
        out = [func(arr) for func in funcs]  # mostly distinct values: no gain
    else:
        out = [pc.take(func(encoded.dictionary), encoded.indices) for func in funcs]
    return out[0] if len(out) == 1 else tuple(out)


def normalize_values(
    col: pa.ChunkedArray | pa.Array,
    el: Element,
    recodes: Mapping[str, str] | None,
    date_format: str | None,
    fraction_top: float | None = None,
) -> pa.ChunkedArray | pa.Array:
    if el.type == "text" and not el.code_set:
        # Free text passes as it is (the redaction treatment reads it whole); copying a column of
        # notes only to trim it would cost more than every other column together.
        return as_string(col)
    text = clean(col)
    if el.code_set:
        text = apply_recodes(text, recodes or {})
        if el.format != "flag" or not recodes:
            # Codes are upper case in every code set here ("m" -> "M", "tbd" -> "TBD").
            upper = pc.utf8_upper(text)
            text = pc.if_else(pc.is_in(upper, value_set=pa.array(sorted(el.codes))), upper, text)
        return text
    if el.type == "date":
        parsed = _parse_dates(text, date_format)
        return pc.strftime(parsed, format="%Y-%m-%d")
    if el.type in ("integer", "decimal"):
        nums = to_float(text)
        if el.normalize == "fraction":
            top = pc.max(nums).as_py() if fraction_top is None else fraction_top
            if top is not None and top > 1.0:
                nums = pc.divide(nums, 100.0)
        return _format_number(nums)
    if el.format == "zip":
        return pc.utf8_slice_codeunits(text, 0, 5)
    if el.digits and el.repair == "zfill":
        from deid._idshape import zfill

        return zfill(text, el.digits)  # validate() reported how many were padded
    return text


def derive_column(col: pa.ChunkedArray | pa.Array, values: Mapping[str, str]) -> pa.ChunkedArray | pa.Array:
    """A column filled from another's values: listed values become their code, anything else empty."""
    text = clean(col)
    keys = pa.array(list(values), pa.string())
    targets = pa.array(list(values.values()), pa.string())
    idx = pc.index_in(text, value_set=keys)
    if isinstance(idx, pa.ChunkedArray):
        return pa.chunked_array([pc.take(targets, chunk) for chunk in idx.chunks], pa.string())
    return pc.take(targets, idx)


def apply_mapping(
    table: pa.Table,
    mapping: MappingProfile | Mapping[str, str | None],
    elements: Sequence[Element] | None = None,
    *,
    keep_unmapped: bool = False,
    fill_missing: bool = False,
) -> pa.Table:
    """Rename mapped columns to element names and put their values in the element's form.

    Codes are recoded (the mapping's recodes, then case), dates become ``YYYY-MM-DD`` (unparseable
    dates become empty: :func:`validate` reports them first), numbers plain text, attendance percentages
    fractions. Unmapped columns are left out unless ``keep_unmapped``. Columns come out in the order of
    ``elements`` (the dictionary's order), so outputs from different systems line up; with
    ``fill_missing`` every element of the dictionary is a column (empty when the export lacks it), so
    files from different systems have identical columns.
    """
    prof = as_profile(mapping)
    els = list(element_library().values()) if elements is None else list(elements)
    return apply(table, prof, els, keep_unmapped=keep_unmapped, fill_missing=fill_missing)


def apply(
    table: pa.Table,
    prof: MappingProfile,
    els: list[Element],
    *,
    keep_unmapped: bool,
    fill_missing: bool,
    date_formats: Mapping[str, str] | None = None,
    tops: Mapping[str, float] | None = None,
) -> pa.Table:
    """:func:`apply_mapping` of ``table`` — the whole file, or one batch of it with the file's date
    formats and fraction tops per column (deid._mapping_stream)."""
    by_name = {el.name: el for el in els}
    check_mapping(table, prof, by_name)
    element_to_col = {e: c for c, e in prof.mapped.items()}
    names: list[str] = []
    arrays: list[pa.ChunkedArray | pa.Array] = []
    for el in els:
        col = element_to_col.get(el.name)
        if col is not None:
            names.append(el.name)
            arrays.append(
                normalize_column(
                    table.column(col),
                    el,
                    recodes=prof.recodes.get(col),
                    date_format=prof.date_formats.get(col) or (date_formats or {}).get(col),
                    fraction_top=(tops or {}).get(col),
                )
            )
        elif el.name in prof.derived:
            rule = prof.derived[el.name]
            names.append(el.name)
            arrays.append(derive_column(table.column(rule["from"]), rule["values"]))
        elif fill_missing:
            names.append(el.name)
            arrays.append(pa.nulls(table.num_rows, pa.string()))
    if keep_unmapped:
        for col in table.column_names:
            if col not in prof.mapped and col not in by_name:
                names.append(col)
                arrays.append(table.column(col))
    return pa.table(dict(zip(names, arrays, strict=True)))
