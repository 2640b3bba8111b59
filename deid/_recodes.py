"""Recodes: how each source value of a code element maps onto its code set (``Male``/``m``/``1`` ->
``M``, ``9``/``Grade 9`` -> ``09``, ``Yes``/``True`` -> ``Y``, race names -> CALPADS codes), proposed
from the element's codes, labels and aliases, and applied to a column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from deid._cells import clean
from deid._elements import Element

if TYPE_CHECKING:
    from deid._value_profile import ValueProfile


def norm_value(value: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_]", " ", value.strip().lower())).strip(" .")


def grade_code(value: str, codes: frozenset[str]) -> str | None:
    """Grade spellings: '9', '09', 'Grade 9', '9th', 'Gr. 9' -> '09'; 'K' -> 'KN'."""
    v = norm_value(value)
    v = re.sub(r"^(grade|gr|grd)\.?\s*", "", v)
    v = re.sub(r"^0+(?=\d)", "", v)
    v = re.sub(r"(?<=\d)\.0+$", "", v)  # 9.0 from a spreadsheet
    m = re.fullmatch(r"(\d{1,2})(st|nd|rd|th)?( grade)?", v)
    if m:
        code = f"{int(m.group(1)):02d}"
        if int(m.group(1)) == 0:
            code = "KN"
        return code if code in codes else None
    return None


def code_lookup(el: Element) -> dict[str, str]:
    """Normalized spelling -> code, for every code, label and alias of ``el``."""
    table: dict[str, str] = {}
    for c in el.code_set:
        for spelling in (*c.aliases, c.label, c.code):
            table.setdefault(norm_value(spelling), c.code)
    for c in el.code_set:  # a code itself always wins over another code's alias
        table[norm_value(c.code)] = c.code
    return table


def suggest_recodes(values: Iterable[Any] | pa.Array | pa.ChunkedArray, element: Element) -> dict[str, str]:
    """Propose ``{source value: code}`` for the values of a code element that are not already codes.

    Values already in the code set, and values no rule recognizes, are left out (validation reports
    the latter). Numeric codes (e.g. MIS ``SEX`` 1/2/3) use the element's ``numeric_codes`` convention,
    which the user must confirm.
    """
    if not element.code_set:
        return {}
    if isinstance(values, pa.Array | pa.ChunkedArray):
        distinct = [v for v in pc.unique(pc.drop_null(clean(values))).to_pylist() if v is not None]
    else:
        distinct = sorted({str(v).strip() for v in values if v is not None and str(v).strip()})
    codes = element.codes
    lookup = code_lookup(element)
    numeric_only = bool(distinct) and all(re.fullmatch(r"\d+", v) for v in distinct)
    out: dict[str, str] = {}
    for raw in distinct:
        if raw in codes:
            continue
        code: str | None = None
        if element.format == "grade":
            code = grade_code(raw, codes)
        if code is None and numeric_only and element.numeric_codes and element.format != "flag":
            code = element.numeric_codes.get(raw.lstrip("0") or "0")
        if code is None:
            code = lookup.get(norm_value(raw))
        if code is None and re.fullmatch(r"\d+\.0+", raw):
            code = raw.split(".")[0] if raw.split(".")[0] in codes else None
        if code is not None and code != raw:
            out[raw] = code
    return out


def code_coverage(prof: ValueProfile, el: Element) -> tuple[float, str]:
    """Fraction of the sampled rows whose value is, or recodes to, one of ``el``'s codes."""
    if not prof.top_values:
        return 0.0, " (too many distinct values for a code)"
    codes = el.codes
    recodes = suggest_recodes([v for v, _ in prof.top_values], el)
    direct = sum(n for v, n in prof.top_values if v in codes)
    via = sum(n for v, n in prof.top_values if v in recodes)
    total = sum(n for _, n in prof.top_values)
    numeric = all(re.fullmatch(r"\d+", v) for v, _ in prof.top_values)
    # A numeric convention (1/2/3 for sex) is weaker evidence than the codes or their names.
    only_numeric_convention = numeric and el.numeric_codes and not codes & {v for v, _ in prof.top_values}
    via_weight = 0.75 if only_numeric_convention else 0.95
    cov = (direct + via_weight * via) / total if total else 0.0
    how = " after recodes" if via else ""
    # A code set fits better when the values use most of it (Y/N flags: both values, not just "1").
    used = {recodes.get(v, v) for v, _ in prof.top_values} & codes
    if len(codes) <= 3 and len(used) < min(2, len(codes)):
        cov *= 0.6
    return cov, how


def apply_recodes(col: pa.ChunkedArray | pa.Array, recodes: Mapping[str, str]) -> pa.ChunkedArray | pa.Array:
    """Replace source values by codes, vectorized (``index_in`` + ``take``); other values unchanged."""
    text = clean(col)
    if not recodes:
        return text
    keys = pa.array(list(recodes), pa.string())
    targets = pa.array(list(recodes.values()), pa.string())
    idx = pc.index_in(text, value_set=keys)
    mapped = (
        pc.take(targets, idx)
        if isinstance(idx, pa.Array)
        else pa.chunked_array([pc.take(targets, chunk) for chunk in idx.chunks], pa.string())
    )
    return pc.if_else(pc.is_null(idx), text, mapped)
