"""The residual scan: what still looks identifying in an output about to leave — the text scanner
over free-text columns, whole-cell checks (SSN, e-mail, phone, a roster ID, a column of roster names)
over the others. One module for the in-memory run (deid._engine) and the streaming one (deid._stream).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._report import ResidualFinding
from deid._textnorm import visible_text

if TYPE_CHECKING:
    from deid._roster import Roster

RESIDUAL_LIMIT = 100  # findings listed per column in the report; every finding is counted
_SSN_CELL = r"^\d{3}-\d{2}-\d{4}$"
_EMAIL_CELL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_PHONE_CELL = r"^(\+?1[ .-]?)?(\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}$"

RESCAN_SAMPLE_ROWS = 200_000


def residual_scan(
    output: pa.Table,
    scanner: Callable[[], Any] | None,
    text_columns: set[str],
    roster: Roster | None,
    *,
    sample_columns: set[str] = frozenset(),  # type: ignore[assignment]
    raw_columns: set[str] | None = None,
    sample_rows: int | None = None,
    limit: int = RESIDUAL_LIMIT,
    by_kind: dict[str, int] | None = None,
) -> tuple[list[ResidualFinding], dict[str, int], dict[str, tuple[int, int]]]:
    """Look for identifying values left in the output: the text scanner (``scanner()`` builds it) over
    free-text columns, and whole-cell checks (SSN, e-mail, phone, a roster ID, a column of roster
    names) over every other text column — of those, only ``raw_columns`` when given.

    Columns in ``sample_columns`` (those the same scanner already redacted: re-scanning them can only
    catch a scanner fault, which shows in any sample) are re-scanned on at most ``sample_rows`` evenly
    spaced rows (default :data:`RESCAN_SAMPLE_ROWS`). Returns up to ``limit`` findings (column,
    1-based row, kind) per column, the count of findings per column, and {column: (rows scanned,
    rows)} for the sampled columns; ``by_kind``, when given, receives the count of every finding per
    kind.
    """
    kinds_seen: dict[str, int] = {} if by_kind is None else by_kind
    findings: list[ResidualFinding] = []
    total = 0
    sampled: dict[str, tuple[int, int]] = {}
    by_column: dict[str, int] = {}
    sample_rows = RESCAN_SAMPLE_ROWS if sample_rows is None else sample_rows
    for name in output.column_names:
        col = output.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        if name in text_columns and scanner is not None:
            rows = None
            if name in sample_columns and len(col) > sample_rows:
                rows = np.unique(np.linspace(0, len(col) - 1, sample_rows).astype(np.int64))
                col = col.take(pa.array(rows))
                sampled[name] = (len(rows), output.num_rows)
            found = scanner().find(visible_text(col))  # what the recipient will read
            for f in found:
                kinds_seen[f.kind] = kinds_seen.get(f.kind, 0) + 1
            total += len(found)
            by_column[name] = by_column.get(name, 0) + len(found)
            for f in found[:limit]:
                row = int(rows[f.row]) if rows is not None else f.row
                findings.append(ResidualFinding(column=name, row=row + 1, kind=f.kind))
            continue
        if raw_columns is not None and name not in raw_columns:
            continue
        cell = pc.utf8_trim_whitespace(col)
        checks: list[tuple[str, pa.ChunkedArray]] = [
            ("US_SSN", pc.match_substring_regex(cell, _SSN_CELL)),
            ("EMAIL_ADDRESS", pc.match_substring_regex(cell, _EMAIL_CELL)),
            ("PHONE_NUMBER", pc.match_substring_regex(cell, _PHONE_CELL)),
        ]
        if roster is not None:
            upper = pc.utf8_upper(cell)
            distinct = pc.drop_null(pc.unique(upper))
            long_enough = pc.filter(distinct, pc.greater_equal(pc.utf8_length(distinct), 5))
            ids = roster.ids_among(long_enough)
            if len(ids):
                checks.append(("STUDENT_ID", pc.is_in(upper, value_set=ids)))
            names = roster.names_among(pc.filter(distinct, pc.greater_equal(pc.utf8_length(distinct), 2)))
            hits = pc.is_in(upper, value_set=names)
            nonempty = int(pc.sum(pc.is_valid(cell)).as_py() or 0)
            # A lone matching word (a city that is also a surname) is normal; a column where names
            # are common is a column of names.
            if nonempty and (pc.sum(hits).as_py() or 0) >= 0.2 * nonempty:
                checks.append(("PERSON", hits))
        for kind, mask in checks:
            hit_rows = np.flatnonzero(mask.fill_null(False).to_numpy(zero_copy_only=False))
            total += len(hit_rows)
            if len(hit_rows):
                kinds_seen[kind] = kinds_seen.get(kind, 0) + len(hit_rows)
            if len(hit_rows):
                by_column[name] = by_column.get(name, 0) + len(hit_rows)
            listed = sum(1 for f in findings if f.column == name)
            for r in hit_rows[: max(0, limit - listed)]:
                findings.append(ResidualFinding(column=name, row=int(r) + 1, kind=kind))
    findings.sort(key=lambda f: (f.column, f.row))
    return findings, by_column, sampled
