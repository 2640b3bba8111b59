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

from deid._apply_mapping import _check_mapping, _map_distinct, _normalize_values
from deid._cells import _clean
from deid._elements import Element, element_library
from deid._mapping_profile import MappingProfile, _as_profile
from deid._rownumbers import MAX_ROWS_LISTED, _first_rows, _rows_text

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
    """
    prof = _as_profile(mapping)
    els = list(element_library().values()) if elements is None else list(elements)
    by_name = {el.name: el for el in els}
    _check_mapping(table, prof, by_name)
    today = today or dt.date.today()
    findings: list[ValidationFinding] = []
    mapped_els = set(prof.mapped.values()) | set(prof.derived)
    # Named as required: an error. Otherwise every dictionary element is expected, but an agreement
    # with several providers lists elements one export cannot have: a warning (its column stays empty).
    severity = "error" if required is not None else "warning"
    for name in list(required) if required is not None else [el.name for el in els]:
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
    for col, name in prof.mapped.items():
        el = by_name[name]
        if el.digits:
            # An ID of a fixed shape (the SSID), before it becomes a code: one rule (deid._idshape).
            from deid._idshape import shape_messages, shape_problems

            check = shape_problems(table.column(col), el.digits)
            for kind, message, n, rows in shape_messages(check, col, el):
                repaired = kind == "lost_zeros" and el.repair == "zfill"
                findings.append(
                    ValidationFinding(kind, "warning" if repaired else "error", message, name, col, n, rows)
                )
        if not (el.code_set or el.type in ("date", "integer", "decimal")):
            continue  # free text and identifiers: nothing to check value by value
        recodes, date_format = prof.recodes.get(col), prof.date_formats.get(col)
        present, values = _map_distinct(
            table.column(col),
            lambda v: pc.is_valid(_clean(v)),
            lambda v, el=el, r=recodes, f=date_format: _normalize_values(v, el, r, f),
        )
        if el.code_set:
            bad = pc.and_(present, pc.invert(pc.is_in(values, value_set=pa.array(sorted(el.codes)))))
            n, rows = _first_rows(bad)
            if n:
                findings.append(
                    ValidationFinding(
                        "outside_code_set",
                        "error",
                        f"Column '{col}' ({name}) has {n} value(s) outside the "
                        f"{el.code_set_name or 'code set'} after recodes, in {_rows_text(rows, n)}; "
                        f"add a recode or correct the source.",
                        name,
                        col,
                        n,
                        rows,
                    )
                )
        elif el.type == "date":
            findings.extend(_date_findings(col, el, present, values, today, min_age, max_age))
        elif el.type in ("integer", "decimal"):
            findings.extend(_number_findings(col, el, present, values))
    findings.extend(_duplicate_findings(table, prof))
    return findings


def _date_findings(
    col: str, el: Element, present: Any, values: Any, today: dt.date, min_age: int, max_age: int
) -> list[ValidationFinding]:
    out = []
    n, rows = _first_rows(pc.and_(present, pc.is_null(values)))
    if n:
        out.append(
            ValidationFinding(
                "bad_date",
                "error",
                f"Column '{col}' ({el.name}) has {n} value(s) that are not dates in the "
                f"column's format, in {_rows_text(rows, n)}.",
                el.name,
                col,
                n,
                rows,
            )
        )
    dates = pc.cast(values, pa.date32())  # normalized ISO dates or empty: Arrow's fast ISO parser
    n, rows = _first_rows(pc.greater(dates, pa.scalar(today, pa.date32())))
    if n:
        out.append(
            ValidationFinding(
                "future_date",
                "error",
                f"Column '{col}' ({el.name}) has {n} date(s) in the future, in {_rows_text(rows, n)}.",
                el.name,
                col,
                n,
                rows,
            )
        )
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
        n, rows = _first_rows(out_of_range)
        if n:
            out.append(
                ValidationFinding(
                    "age_out_of_range",
                    "warning",
                    f"Column '{col}' (birth_date) gives {n} student(s) an age "
                    f"outside {min_age} to {max_age} years, in {_rows_text(rows, n)}.",
                    el.name,
                    col,
                    n,
                    rows,
                )
            )
    return out


_RANGES = {
    "gpa": (0.0, 5.0),
    "rate": (0.0, 1.0),
    "credits": (0.0, 400.0),
    "units": (0.0, 400.0),
    "count": (0.0, 1000.0),
}


def _number_findings(col: str, el: Element, present: Any, values: Any) -> list[ValidationFinding]:
    out = []
    n, rows = _first_rows(pc.and_(present, pc.is_null(values)))
    if n:
        out.append(
            ValidationFinding(
                "bad_number",
                "error",
                f"Column '{col}' ({el.name}) has {n} value(s) that are not numbers, in "
                f"{_rows_text(rows, n)}.",
                el.name,
                col,
                n,
                rows,
            )
        )
    lo_hi = _RANGES.get(el.format)
    if lo_hi:
        nums = pc.cast(values, pa.float64())
        bad = pc.or_(pc.less(nums, lo_hi[0]), pc.greater(nums, lo_hi[1]))
        if el.type == "integer":
            bad = pc.or_(bad, pc.not_equal(nums, pc.floor(nums)))
        n, rows = _first_rows(bad)
        if n:
            out.append(
                ValidationFinding(
                    "out_of_range",
                    "warning",
                    f"Column '{col}' ({el.name}) has {n} value(s) outside "
                    f"{lo_hi[0]:g} to {lo_hi[1]:g}, in {_rows_text(rows, n)}.",
                    el.name,
                    col,
                    n,
                    rows,
                )
            )
    return out


def _repeated_rows(columns: Sequence[pa.ChunkedArray | pa.Array]) -> np.ndarray:
    """Rows (0-based, ascending) whose key — the first column, non-empty, plus the others — appeared
    in an earlier row. Keys become integers (dictionary codes combined), then one ``np.unique``."""
    combined: np.ndarray | None = None
    valid: np.ndarray | None = None
    for col in columns:
        arr = _clean(col)
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


def _duplicate_findings(table: pa.Table, prof: MappingProfile) -> list[ValidationFinding]:
    el_to_col = {e: c for c, e in prof.mapped.items()}
    extra = [el_to_col[e] for e in _RECORD_LEVEL if e in el_to_col]
    out = []
    for id_el in ID_ELEMENTS:
        col = el_to_col.get(id_el)
        if col is None:
            continue
        dup_rows = _repeated_rows([table.column(c) for c in (col, *extra)])
        n = len(dup_rows)
        if n:
            rows = tuple(int(r) + 1 for r in dup_rows[:MAX_ROWS_LISTED])
            per = f" per {', '.join(e for e in _RECORD_LEVEL if e in el_to_col)}" if extra else ""
            out.append(
                ValidationFinding(
                    "duplicate_id",
                    "error",
                    f"Column '{col}' ({id_el}) repeats {n} student ID(s){per}, in {_rows_text(rows, n)}.",
                    id_el,
                    col,
                    n,
                    rows,
                )
            )
    return out
