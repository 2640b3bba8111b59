"""Validating an export against a mapping before de-identification: required elements unmapped, values
outside code sets, impossible dates, numbers out of range, duplicate student IDs — with counts and
first row numbers, never values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._apply_mapping import check_mapping, map_distinct, normalize_values
from deid._cells import clean
from deid._elements import Element, element_library
from deid._mapping_profile import MappingProfile, as_profile
from deid._rownumbers import MAX_ROWS_LISTED, first_rows_where, rows_text

ID_ELEMENTS = ("state_student_id", "local_student_id", "college_student_id")
# Elements that make several rows per student legitimate (one per term, year, course …).
_RECORD_LEVEL = ("school_year", "term", "course_id", "course_section")


@dataclass(frozen=True)
class ValidationFinding:
    """One problem found before de-identification: counts and first data rows (from 1), never values."""

    kind: str
    severity: str  # "error" blocks de-identification; "warning" is shown for a decision
    message: str
    element: str | None = None
    column: str | None = None
    count: int = 0
    first_rows: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "element": self.element,
            "column": self.column,
            "count": self.count,
            "first_rows": list(self.first_rows),
        }


def validate(
    table: pa.Table,
    mapping: MappingProfile | Mapping[str, str | None],
    elements: Sequence[Element] | None = None,
    *,
    required: Iterable[str] | None = None,
    today: dt.date | None = None,
    min_age: int = 2,
    max_age: int = 100,
) -> list[ValidationFinding]:
    """Check an export against a mapping before de-identification.

    Reports elements left unmapped (errors for those named in ``required``; warnings for the other
    elements given when ``required`` is None), values
    outside a code set after recodes, dates that do not parse, lie in the future or give an age outside
    ``min_age``..``max_age``, numbers that do not parse or are out of range, and duplicate student IDs
    (per term/year/course when those are mapped). Each finding has a count and the first data rows.
    (deid._mapping_stream makes the same checks on a file read in batches.)
    """
    prof = as_profile(mapping)
    els = list(element_library().values()) if elements is None else list(elements)
    check = Checks(prof, els, required=required, today=today, min_age=min_age, max_age=max_age,
                   date_formats=whole_column_formats(table, prof, els))
    check.add(table, 0)
    return check.findings(_duplicate_findings(table, prof))


def whole_column_formats(head: pa.Table, prof: MappingProfile, els: Sequence[Element]) -> dict[str, str]:
    """The date format of each date column the mapping names none for, from the first rows (``head``:
    the table, or the file's first rows) — one format per column, however the file is read."""
    from deid._apply_mapping import column_date_format

    by_name = {el.name: el for el in els}
    return {
        col: column_date_format(head.column(col))
        for col, name in prof.mapped.items()
        if name in by_name and by_name[name].type == "date" and not prof.date_formats.get(col)
        and col in head.column_names
    }


@dataclass
class _Tally:
    """One check over a file read in batches: how many rows it flags and the first few (from 1)."""

    count: int = 0
    rows: tuple[int, ...] = ()

    def add(self, n: int, rows: tuple[int, ...], offset: int) -> None:
        self.count += n
        if n and len(self.rows) < MAX_ROWS_LISTED:
            self.rows = (*self.rows, *(r + offset for r in rows))[:MAX_ROWS_LISTED]


class Checks:
    """The value checks of :func:`validate`, fed a table whole or batch by batch (``add`` with the
    batch's first row's index), then worded once (``findings``): counts add up and the first rows are
    the file's, so both ways give the same findings. ``date_formats``: the whole column's format for a
    date column the mapping names none for; ``tops``: the whole column's largest value for a
    percentage column (``normalize: fraction``)."""

    def __init__(
        self,
        prof: MappingProfile,
        els: Sequence[Element],
        *,
        required: Iterable[str] | None,
        today: dt.date | None,
        min_age: int,
        max_age: int,
        date_formats: Mapping[str, str] | None = None,
        tops: Mapping[str, float] | None = None,
    ) -> None:
        self.prof, self.els = prof, list(els)
        self.by_name = {el.name: el for el in self.els}
        self.required = list(required) if required is not None else None
        self.today = today or dt.date.today()
        self.min_age, self.max_age = min_age, max_age
        self.date_formats = dict(date_formats or {})
        self.tops = dict(tops or {})
        self.tallies: dict[tuple[str, str], _Tally] = {}
        self.checked = False

    def add(self, table: pa.Table, offset: int) -> None:
        """Check ``table``, whose first row is the file's data row ``offset + 1``."""
        if not self.checked:
            check_mapping(table, self.prof, self.by_name)
            self.checked = True
        for col, name in self.prof.mapped.items():
            el = self.by_name[name]
            for kind, (n, rows) in _column_checks(
                table.column(col), el, self.prof.recodes.get(col),
                self.prof.date_formats.get(col) or self.date_formats.get(col), self.tops.get(col),
                self.today, self.min_age, self.max_age,
            ):
                self.tallies.setdefault((col, kind), _Tally()).add(n, rows, offset)

    def findings(self, duplicates: list[ValidationFinding]) -> list[ValidationFinding]:
        """Every finding, in the order :func:`validate` has always given them."""
        findings = _unmapped_findings(self.prof, self.els, self.by_name, self.required)
        for col, name in self.prof.mapped.items():
            el = self.by_name[name]
            if el.digits:
                # An ID of a fixed shape (the SSID), before it becomes a code: one rule (deid._idshape).
                from deid._idshape import ShapeCheck, shape_messages

                short = self.tallies.get((col, "short"), _Tally())
                bad = self.tallies.get((col, "bad"), _Tally())
                check = ShapeCheck(short.count, short.rows, bad.count, bad.rows)
                for kind, message, n, rows in shape_messages(check, col, el):
                    repaired = kind == "lost_zeros" and el.repair == "zfill"
                    severity = "warning" if repaired else "error"
                    findings.append(ValidationFinding(kind, severity, message, name, col, n, rows))
            for kind in _VALUE_KINDS:
                tally = self.tallies.get((col, kind))
                if tally is not None and tally.count:
                    findings.append(_value_finding(kind, col, el, tally, self.min_age, self.max_age))
        return findings + duplicates


def _unmapped_findings(
    prof: MappingProfile, els: Sequence[Element], by_name: Mapping[str, Element], required: list[str] | None
) -> list[ValidationFinding]:
    findings = []
    mapped_els = set(prof.mapped.values()) | set(prof.derived)
    # Named as required: an error. Otherwise every dictionary element is expected, but an agreement
    # with several providers lists elements one export cannot have: a warning (its column stays empty).
    severity = "error" if required is not None else "warning"
    for name in required if required is not None else [el.name for el in els]:
        if name not in mapped_els:
            label = by_name[name].label if name in by_name else name
            what = "the required element" if required is not None else "the element"
            findings.append(
                ValidationFinding(
                    "unmapped_required",
                    severity,
                    f"No column is mapped to {what} {name} ({label}).",
                    element=name,
                )
            )
    return findings


_VALUE_KINDS = (
    "outside_code_set", "bad_date", "future_date", "age_out_of_range", "bad_number", "out_of_range"
)


def _column_checks(
    column: Any,
    el: Element,
    recodes: Mapping[str, str] | None,
    date_format: str | None,
    top: float | None,
    today: dt.date,
    min_age: int,
    max_age: int,
) -> list[tuple[str, tuple[int, tuple[int, ...]]]]:
    """(kind, (count, first rows)) of each check of one column's values (rows of this table, from 1)."""
    out: list[tuple[str, tuple[int, tuple[int, ...]]]] = []
    if el.digits:
        from deid._idshape import shape_problems

        shape = shape_problems(column, el.digits)
        out += [("short", (shape.short, shape.short_rows)), ("bad", (shape.bad, shape.bad_rows))]
    if not (el.code_set or el.type in ("date", "integer", "decimal")):
        return out  # free text and identifiers: nothing to check value by value
    if el.type == "date" and date_format is None:
        from deid._apply_mapping import column_date_format

        date_format = column_date_format(column)
    if el.normalize == "fraction" and top is None:
        from deid._apply_mapping import column_top

        top = column_top(column)
    present, values = map_distinct(
        column,
        lambda v: pc.is_valid(clean(v)),
        lambda v: normalize_values(v, el, recodes, date_format, top),
    )
    if el.code_set:
        bad = pc.and_(present, pc.invert(pc.is_in(values, value_set=pa.array(sorted(el.codes)))))
        out.append(("outside_code_set", first_rows_where(bad)))
    elif el.type == "date":
        out.append(("bad_date", first_rows_where(pc.and_(present, pc.is_null(values)))))
        dates = pc.cast(values, pa.date32())  # normalized ISO dates or empty: Arrow's fast ISO parser
        out.append(("future_date", first_rows_where(pc.greater(dates, pa.scalar(today, pa.date32())))))
        if el.name == "birth_date":
            youngest = (
                today.replace(year=today.year - min_age)
                if not (today.month == 2 and today.day == 29)
                else dt.date(today.year - min_age, 2, 28)
            )
            oldest = dt.date(today.year - max_age, 1, 1)
            out_of_range = pc.or_(
                pc.greater(dates, pa.scalar(youngest, pa.date32())),
                pc.less(dates, pa.scalar(oldest, pa.date32())),
            )
            out_of_range = pc.and_(out_of_range, pc.less_equal(dates, pa.scalar(today, pa.date32())))
            out.append(("age_out_of_range", first_rows_where(out_of_range)))
    else:
        out.append(("bad_number", first_rows_where(pc.and_(present, pc.is_null(values)))))
        lo_hi = _RANGES.get(el.format)
        if lo_hi:
            nums = pc.cast(values, pa.float64())
            bad = pc.or_(pc.less(nums, lo_hi[0]), pc.greater(nums, lo_hi[1]))
            if el.type == "integer":
                bad = pc.or_(bad, pc.not_equal(nums, pc.floor(nums)))
            out.append(("out_of_range", first_rows_where(bad)))
    return out


def _value_finding(
    kind: str, col: str, el: Element, tally: _Tally, min_age: int, max_age: int
) -> ValidationFinding:
    """The sentence of one value check (counts and rows, never values)."""
    n, rows, name = tally.count, tally.rows, el.name
    where = rows_text(rows, n)
    severity = "error"
    if kind == "outside_code_set":
        message = (
            f"Column '{col}' ({name}) has {n} value(s) outside the "
            f"{el.code_set_name or 'code set'} after recodes, in {where}; add a recode or correct the source."
        )
    elif kind == "bad_date":
        message = (
            f"Column '{col}' ({name}) has {n} value(s) that are not dates in the column's format, in {where}."
        )
    elif kind == "future_date":
        message = f"Column '{col}' ({name}) has {n} date(s) in the future, in {where}."
    elif kind == "age_out_of_range":
        severity = "warning"
        message = (
            f"Column '{col}' (birth_date) gives {n} student(s) an age outside {min_age} to {max_age} years, "
            f"in {where}."
        )
    elif kind == "bad_number":
        message = f"Column '{col}' ({name}) has {n} value(s) that are not numbers, in {where}."
    else:  # out_of_range
        lo, hi = _RANGES[el.format]
        severity = "warning"
        message = f"Column '{col}' ({name}) has {n} value(s) outside {lo:g} to {hi:g}, in {where}."
    return ValidationFinding(kind, severity, message, name, col, n, rows)


_RANGES = {
    "gpa": (0.0, 5.0),
    "rate": (0.0, 1.0),
    "credits": (0.0, 400.0),
    "units": (0.0, 400.0),
    "count": (0.0, 1000.0),
}


def _repeated_rows(columns: Sequence[pa.ChunkedArray | pa.Array]) -> np.ndarray:
    """Rows (0-based, ascending) whose key — the first column, non-empty, plus the others — appeared
    in an earlier row. Keys become integers (dictionary codes combined), then one ``np.unique``."""
    combined: np.ndarray | None = None
    valid: np.ndarray | None = None
    for col in columns:
        arr = clean(col)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        encoded = pc.dictionary_encode(arr)
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64) + 1
        if valid is None:
            valid = codes > 0  # rows without an ID are not duplicates of each other
        width = len(encoded.dictionary) + 1
        if combined is not None and int(combined.max(initial=0)) >= (2**62) // width:
            # Too many combinations for one integer: re-number the key so far first.
            combined = np.unique(combined, return_inverse=True)[1].astype(np.int64)
        combined = codes if combined is None else combined * width + codes
    if combined is None or valid is None:
        return np.array([], np.int64)
    rows = np.flatnonzero(valid)
    _, first = np.unique(combined[rows], return_index=True)
    repeated = np.ones(len(rows), dtype=bool)
    repeated[first] = False
    return rows[repeated]


def duplicate_keys(prof: MappingProfile) -> list[tuple[str, list[str]]]:
    """(ID element, its columns: the ID's, then the term/year/course columns mapped) per ID element
    mapped — the key a student ID must not repeat in."""
    el_to_col = {e: c for c, e in prof.mapped.items()}
    extra = [el_to_col[e] for e in _RECORD_LEVEL if e in el_to_col]
    return [(id_el, [el_to_col[id_el], *extra]) for id_el in ID_ELEMENTS if id_el in el_to_col]


def duplicate_finding(prof: MappingProfile, id_el: str, n: int, rows: tuple[int, ...]) -> ValidationFinding:
    """The sentence for ``n`` repeated IDs of ``id_el``, first at data ``rows`` (from 1)."""
    el_to_col = {e: c for c, e in prof.mapped.items()}
    col = el_to_col[id_el]
    record_level = [e for e in _RECORD_LEVEL if e in el_to_col]
    per = f" per {', '.join(record_level)}" if record_level else ""
    return ValidationFinding(
        "duplicate_id",
        "error",
        f"Column '{col}' ({id_el}) repeats {n} student ID(s){per}, in {rows_text(rows, n)}.",
        id_el,
        col,
        n,
        rows,
    )


def _duplicate_findings(table: pa.Table, prof: MappingProfile) -> list[ValidationFinding]:
    out = []
    for id_el, cols in duplicate_keys(prof):
        dup_rows = _repeated_rows([table.column(c) for c in cols])
        if len(dup_rows):
            rows = tuple(int(r) + 1 for r in dup_rows[:MAX_ROWS_LISTED])
            out.append(duplicate_finding(prof, id_el, len(dup_rows), rows))
    return out
