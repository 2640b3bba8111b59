"""Mapping suggestions: for every column of an export, the elements it may hold, scored from its header
(:mod:`deid._header_match`) and a sample of its values (:mod:`deid._value_profile`), then assigned
one-to-one across columns (greedily by score), so two columns never both claim ``birth_date``. A
column left without an element maps to None: a policy built from the dictionary drops it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from deid._elements import Element, element_library
from deid._header_match import QUALIFIERS, header_score, header_tokens, synonyms_of
from deid._recodes import norm_value, suggest_recodes
from deid._value_profile import SAMPLE_ROWS, ValueProfile, profile_values, value_score

MIN_SCORE = 0.45  # below this a column is left unmapped rather than guessed


@dataclass(frozen=True)
class Candidate:
    """One element a column may hold, with its score (0..1) and the reasons (never cell values)."""

    element: str
    score: float
    header_score: float
    value_score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "element": self.element,
            "score": round(self.score, 3),
            "header_score": round(self.header_score, 3),
            "value_score": round(self.value_score, 3),
            "reasons": list(self.reasons),
        }


@dataclass(frozen=True)
class ColumnSuggestion:
    """The suggestion for one source column: ranked candidates and the element assigned (or None)."""

    column: str
    candidates: tuple[Candidate, ...]
    element: str | None
    score: float
    recodes: Mapping[str, str] = field(default_factory=dict)
    date_format: str | None = None
    # Other elements filled from this column's values: {element: {source value: code}}.
    derives: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "element": self.element,
            "score": round(self.score, 3),
            "candidates": [c.to_dict() for c in self.candidates],
            "recodes": dict(self.recodes),
            "date_format": self.date_format,
            "derives": {k: dict(v) for k, v in self.derives.items()},
        }


# Value formats distinctive enough to suggest an element from the values alone (an unnamed column of
# e-mail addresses); a column of small numbers or short codes needs its header too.
_DISTINCTIVE = {"email", "phone", "ssid", "street_address", "date", "free_text"}


def _combine(h: float, v: float, el: Element, prof: ValueProfile) -> float:
    if h >= 0.999:
        return 0.75 + 0.25 * v
    score = 0.6 * h + 0.4 * v
    if el.format in _DISTINCTIVE and v >= 0.9:
        score = max(score, 0.55 * v)
    elif len(el.code_set) >= 3 and el.format != "flag" and v >= 0.95:
        # Nearly every value in a code set of three or more codes, using several of them (grade levels
        # 09-12, EL status, race; not 1/2/3, which could be anything).
        recodes = suggest_recodes([value for value, _ in prof.top_values], el)
        used = {recodes.get(value, value) for value, _ in prof.top_values} & el.codes
        if len(used) >= min(4, len(el.code_set) - 1):
            score = max(score, 0.5 * v)
    return score


def suggest_mapping(
    table: pa.Table,
    elements: Sequence[Element] | None = None,
    *,
    sample_rows: int = SAMPLE_ROWS,
    top: int = 3,
) -> list[ColumnSuggestion]:
    """Suggest, for each column of ``table``, the element it holds (see the module docstring).

    ``elements`` defaults to the whole element library. Each suggestion lists up to ``top`` candidates
    best first; ``element`` is the one-to-one assignment (None when nothing scores :data:`MIN_SCORE`).
    """
    els = list(element_library().values()) if elements is None else list(elements)
    syn_cache = {el.name: synonyms_of(el) for el in els}
    by_name = {el.name: el for el in els}
    profiles = {name: profile_values(table.column(name), sample_rows) for name in table.column_names}
    scored: dict[str, list[Candidate]] = {}
    for col in table.column_names:
        prof = profiles[col]
        qualifiers = set(header_tokens(col)) & QUALIFIERS
        cands = []
        for el in els:
            h, syn = header_score(col, el, syn_cache)
            v, why = value_score(prof, el)
            score = _combine(h, v, el, prof)
            reasons = []
            if h > 0:
                reasons.append(f"header matches '{syn}' ({h:.0%})")
            if qualifiers - set(header_tokens(syn)):
                # "Exit Date" has date values, but it is not the enrollment date: do not let the values
                # carry a header that says it is about something else.
                score *= 0.6
                reasons.append(f"the header says '{sorted(qualifiers)[0]}'")
            reasons.append(why)
            cands.append(Candidate(el.name, score, h, v, tuple(reasons)))
        scored[col] = cands
    _apply_domain_context(scored, by_name)
    for col in scored:
        scored[col].sort(key=lambda c: -c.score)
    assigned = _assign(scored)
    out = []
    for col in table.column_names:
        name = assigned.get(col)
        target = by_name.get(name) if name else None
        recodes: dict[str, str] = {}
        date_format = None
        if target is not None and target.code_set:
            # All distinct values, not just the sample's: a rare spelling still gets its recode.
            recodes = suggest_recodes(table.column(col), target)
        if target is not None and target.type == "date":
            date_format = profiles[col].date_format
        score = next((c.score for c in scored[col] if c.element == name), 0.0)
        derives = _suggest_derived(name, profiles[col], els, set(assigned.values())) if name else {}
        out.append(
            ColumnSuggestion(col, tuple(scored[col][:top]), name, score, recodes, date_format, derives)
        )
    return out


def _suggest_derived(
    source_element: str, prof: ValueProfile, els: Sequence[Element], assigned: set[str]
) -> dict[str, dict[str, str]]:
    """Elements no column holds that this column's values can fill (see ``Element.derive_from``).

    Only values PathShare recognizes are listed (the rule's own spellings, the source element's codes
    and the spellings that recode to them): the listing is shown by ``map`` and kept in profiles that
    are shared with partners, so an unexpected value of the file never goes into it (it is left empty,
    and validation reports it as outside the source element's code set)."""
    out: dict[str, dict[str, str]] = {}
    source = next((el for el in els if el.name == source_element), None)
    for el in els:
        rule = el.derive_from
        if not rule or el.name in assigned or rule.get("element") != source_element or not prof.top_values:
            continue
        yes = {norm_value(v) for v in rule.get("yes", ())}
        unknown = {norm_value(v) for v in rule.get("unknown", ())}
        values = [v for v, _ in prof.top_values]
        known = set(source.codes) | set(suggest_recodes(values, source)) if source is not None else set()
        values = [v for v in values if v in known or norm_value(v) in yes or norm_value(v) in unknown]
        if not any(norm_value(v) in yes for v in values):
            continue
        yes_code, no_code = str(rule.get("then", "Y")), str(rule.get("else", "N"))
        out[el.name] = {
            v: (yes_code if norm_value(v) in yes else no_code)
            for v in values
            if norm_value(v) not in unknown
        }
    return out


def _apply_domain_context(scored: dict[str, list[Candidate]], by_name: Mapping[str, Element]) -> None:
    """Nudge K-12-only or college-only elements by what the confident columns say the export is."""
    votes = {"k12": 0, "college": 0}
    for cands in scored.values():
        best = max(cands, key=lambda c: c.score, default=None)
        if best and best.score >= 0.8 and by_name[best.element].domain in votes:
            votes[by_name[best.element].domain] += 1
    if votes["k12"] == votes["college"]:
        return
    lead = "k12" if votes["k12"] > votes["college"] else "college"
    for col, cands in scored.items():
        new = []
        for c in cands:
            d = by_name[c.element].domain
            delta = 0.06 if d == lead else (-0.06 if d != "any" else 0.0)
            if c.header_score == 0:
                delta = min(delta, 0.0)  # context breaks ties between named candidates only
            if delta:
                reason = "fits a K-12 export" if lead == "k12" else "fits a college export"
                c = Candidate(
                    c.element,
                    max(0.0, min(1.0, c.score + delta)),
                    c.header_score,
                    c.value_score,
                    (*c.reasons, reason) if delta > 0 else c.reasons,
                )
            new.append(c)
        scored[col] = new


def _assign(scored: Mapping[str, list[Candidate]]) -> dict[str, str]:
    """One element per column and one column per element, greedily by score.

    Ties go to the better header match, then to the column with more to lose (the larger margin over
    its own second choice): of two e-mail columns equally good for ``email``, the one that fits
    ``guardian_email`` less takes ``email``.
    """
    margin: dict[str, float] = {}
    for col, cands in scored.items():
        top = [*sorted((c.score for c in cands), reverse=True)[:2], 0.0, 0.0]
        margin[col] = top[0] - top[1]
    pairs = sorted(
        ((c.score, c.header_score, col, c.element) for col, cands in scored.items() for c in cands),
        key=lambda p: (-round(p[0], 6), -round(p[1], 6), -margin[p[2]], p[2], p[3]),
    )
    taken_cols: dict[str, str] = {}
    taken_els: set[str] = set()
    for score, _h, col, el in pairs:
        if score < MIN_SCORE:
            break
        if col in taken_cols or el in taken_els:
            continue
        taken_cols[col] = el
        taken_els.add(el)
    return taken_cols
