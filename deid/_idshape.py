"""Identifiers checked before they become codes: an element with a fixed shape (the state student ID:
10 digits) is validated wherever its column is turned into a record code, a token or link tokens.

An SSID column that went through Excel loses its leading zeros ("0012345678" → "12345678"). Hashed
or coded as it is, that student gets a different ``student_code`` and different link tokens than the
correct file gives them — silently breaking "the same student gets the same code in every release".
So a value shorter than the element's ``digits`` is refused, with its rows and the fix, unless the
element (an agreement's data dictionary entry, or the policy rule: ``"repair": "zfill"``) says to
pad it, in which case the report says how many were restored. Values in any other wrong shape
(letters, too many digits, ``1.23457E+09``, ``1234567890.0``) are refused.

One rule, called from every path: the mapping's :func:`deid._validate.validate` (``pathshare map``,
``deid --agreement``, ``prepare``, the app) reports the same problems as findings, and
:func:`deid._apply_mapping.normalize_column` pads when the element says so; the treatments that make codes
(``record_code``, ``token``, ``link_tokens``) call :func:`check_identifier` for a standalone policy,
where the column is found by the rule's ``"element"`` or by its header (a synonym of the element).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deid._elements import Element, element_library
from deid._rownumbers import first_rows_where, rows_text
from deid.errors import InputError, PolicyError

REPAIRS = ("", "zfill")
EXCEL_HINT = "restore the leading zeros: the column was probably opened in Excel"


@dataclass(frozen=True)
class ShapeCheck:
    """What :func:`shape_problems` found in one column: counts and first data rows (from 1), never
    values. ``short`` values lost their leading zeros; ``bad`` have another wrong shape."""

    short: int = 0
    short_rows: tuple[int, ...] = ()
    bad: int = 0
    bad_rows: tuple[int, ...] = ()


def _text(col: Any) -> Any:
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def shape_problems(col: pa.Array | pa.ChunkedArray, digits: int) -> ShapeCheck:
    """Count the values of ``col`` that are not ``digits`` digits (empty cells are fine)."""

    text = _text(col)
    good = pc.match_substring_regex(text, rf"^\d{{{digits}}}$")
    short = pc.match_substring_regex(text, rf"^\d{{1,{digits - 1}}}$") if digits > 1 else None
    present = pc.is_valid(text)
    bad = pc.and_(present, pc.invert(good))
    if short is not None:
        bad = pc.and_(bad, pc.invert(short))
        n_short, short_rows = first_rows_where(short)
    else:
        n_short, short_rows = 0, ()
    n_bad, bad_rows = first_rows_where(bad)
    return ShapeCheck(n_short, short_rows, n_bad, bad_rows)


def zfill(col: pa.Array | pa.ChunkedArray, digits: int) -> Any:
    """Digits-only values shorter than ``digits`` padded on the left with zeros; others unchanged."""
    text = _text(col)
    short = pc.match_substring_regex(text, rf"^\d{{1,{max(digits - 1, 1)}}}$")
    padded = pc.utf8_lpad(text, width=digits, padding="0")
    return pc.if_else(pc.fill_null(short, False), padded, text)


def shape_messages(
    check: ShapeCheck, column: str, el: Element
) -> list[tuple[str, str, int, tuple[int, ...]]]:
    """(kind, sentence, count, rows) for each problem of ``check``: ``lost_zeros`` (refused unless
    the element repairs, then it is a note) and ``identifier_shape``."""

    what = el.label or el.name
    out = []
    if check.short:
        if el.repair == "zfill":
            sentence = (
                f"{check.short} value(s) of column '{column}' ({what}) had fewer than {el.digits} digits, "
                f"in {rows_text(check.short_rows, check.short)}: they lost their leading zeros (the "
                f"column was probably opened in Excel) and were padded with zeros to {el.digits} digits, "
                f"as the element says (repair: zfill)."
            )
        else:
            sentence = (
                f"Column '{column}' ({what}) has {check.short} value(s) with fewer than {el.digits} "
                f"digits, in {rows_text(check.short_rows, check.short)}: they look like IDs that lost "
                f"their leading zeros; {EXCEL_HINT}."
            )
        out.append(("lost_zeros", sentence, check.short, check.short_rows))
    if check.bad:
        out.append((
            "identifier_shape",
            f"Column '{column}' ({what}) has {check.bad} value(s) that are not {el.digits}-digit IDs, in "
            f"{rows_text(check.bad_rows, check.bad)} (letters, other lengths, or a number a spreadsheet "
            f"rewrote such as 1.23E+09); correct the source.",
            check.bad,
            check.bad_rows,
        ))  # fmt: skip
    return out


def check_identifier(
    col: pa.Array | pa.ChunkedArray, el: Element, column: str, notes: list[str] | None = None
) -> Any:
    """``col`` checked against ``el``'s shape: returned as it is (or zero-padded when the element
    repairs, with a note in ``notes``); InputError (rows and the fix) for any value that does not fit."""
    if not el.digits:
        return col
    check = shape_problems(col, el.digits)
    messages = shape_messages(check, column, el)
    refused = [m for m in messages if not (m[0] == "lost_zeros" and el.repair == "zfill")]
    if refused:
        raise InputError(refused[0][1])  # the sentence carries the fix
    if check.short:
        if notes is not None:
            notes.append(messages[0][1].rstrip("."))
        return zfill(col, el.digits)
    return col


def _compact(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def identifier_element(source: str, params: Mapping[str, Any]) -> Element | None:
    """The fixed-shape element a rule's source column holds: the rule's ``element``, else the element
    named like the column (a mapped table), else the one whose name or a synonym is the column's
    header ("SSID", "State Student ID"); None when the column is no such identifier. The rule's own
    ``repair`` overrides the element's."""
    lib = element_library()
    name = params.get("element")
    if name is not None:
        if not isinstance(name, str) or name not in lib:
            raise PolicyError(f"Column '{source}' names an element the library does not have: {name!r}.")
        el: Element | None = lib[name]
    elif source in lib:
        el = lib[source]
    else:
        key = _compact(source)
        el = next(
            (e for e in lib.values() if e.digits and key in {_compact(s) for s in (e.name, *e.synonyms)}),
            None,
        )
    if el is None or not el.digits:
        return None
    repair = params.get("repair")
    if repair is not None:
        from dataclasses import replace

        el = replace(el, repair=repair)
    return el


def check_repair_param(params: Mapping[str, Any], source: str, where: str) -> None:
    """PolicyError unless a rule's ``repair`` is one PathShare knows."""
    repair = params.get("repair")
    if repair is not None and repair not in REPAIRS[1:]:
        raise PolicyError(
            f"{where}: 'repair' of column '{source}' must be \"zfill\" "
            "(pad IDs that lost their leading zeros)."
        )
