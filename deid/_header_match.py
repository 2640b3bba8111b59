"""How well a column's header names an element of the data dictionary (the header half of a mapping
suggestion).

A header is normalized into tokens — case, separators, camelCase, the abbreviations of SIS/MIS exports
such as STU/NM/DT/CD/NBR/FLG — and compared with each element's name, label and synonyms; a word that
changes what a header is about ("Exit Date", "Parent Email") halves the score.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from deid._elements import Element

# Abbreviations of SIS/MIS column names, expanded before comparing headers with synonyms.
_ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "stu": ("student",),
    "stud": ("student",),
    "std": ("student",),
    "pupil": ("student",),
    "nm": ("name",),
    "nme": ("name",),
    "dt": ("date",),
    "dte": ("date",),
    "cd": ("code",),
    "cde": ("code",),
    "nbr": ("number",),
    "num": ("number",),
    "no": ("number",),
    "flg": ("flag",),
    "ind": ("flag",),
    "addr": ("address",),
    "adr": ("address",),
    "ern": ("earned",),
    "erned": ("earned",),
    "att": ("attempted",),
    "atmpt": ("attempted",),
    "enrl": ("enrollment",),
    "enr": ("enrollment",),
    "enroll": ("enrollment",),
    "cum": ("cumulative",),
    "sch": ("school",),
    "schl": ("school",),
    "gr": ("grade",),
    "grd": ("grade",),
    "lvl": ("level",),
    "dob": ("birth", "date"),
    "bday": ("birth", "date"),
    "brth": ("birth",),
    "ph": ("phone",),
    "tel": ("phone",),
    "mid": ("middle",),
    "frst": ("first",),
    "fst": ("first",),
    "lst": ("last",),
    "yr": ("year",),
    "eth": ("ethnicity",),
    "ethn": ("ethnicity",),
    "pct": ("percent",),
    "cnt": ("count",),
    "disc": ("discipline",),
    "crs": ("course",),
    "crse": ("course",),
    "sect": ("section",),
    "sec": ("section",),
    "dist": ("district",),
    "coll": ("college",),
    "inst": ("institution",),
    "gndr": ("gender",),
    "sx": ("sex",),
    "zipcode": ("zip",),
    "postalcode": ("zip",),
    "firstname": ("first", "name"),
    "lastname": ("last", "name"),
    "middlename": ("middle", "name"),
    "birthdate": ("birth", "date"),
    "emailaddress": ("email",),
    "ssn": ("ssn",),
    "id": ("id",),
    "ident": ("id",),
    "identifier": ("id",),
    "nb": ("number",),
    "ethnic": ("ethnicity",),
    "hisp": ("hispanic",),
    "econ": ("economic",),
    "dis": ("disadvantaged",),
    "cred": ("credits",),
    "credit": ("credits",),
    "unit": ("units",),
    "plan": ("plan",),
}
# Tokens that say little about which element a column is; they count less in the comparison.
_WEAK = {
    "student": 0.3,
    "code": 0.4,
    "number": 0.4,
    "flag": 0.4,
    "status": 0.5,
    "indicator": 0.4,
    "id": 0.6,
    "name": 0.6,
    "of": 0.1,
    "the": 0.1,
    "type": 0.4,
    "current": 0.3,
    "primary": 0.3,
    "legal": 0.3,
    "date": 0.7,
    "cumulative": 0.6,
    "total": 0.5,
}
# Words that change what a header is about: "Exit Date" is not an enrollment date, "Parent Email" not
# the student's. A header carrying one its synonym lacks scores half.
QUALIFIERS = frozenset({
    "exit", "withdraw", "withdrawal", "leave", "end", "graduation", "grad", "expected", "previous",
    "prior", "parent", "guardian", "mother", "father", "emergency", "contact", "teacher", "counselor",
    "staff", "sibling", "work", "mailing", "preferred", "alternate",
})  # fmt: skip
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def header_tokens(header: str) -> tuple[str, ...]:
    """Normalize a column header into comparable tokens (case, separators, camelCase, abbreviations)."""
    text = re.sub(r"e-mail", "email", header.strip(), flags=re.IGNORECASE)
    text = _CAMEL.sub(" ", text)
    raw = [t for t in re.split(r"[^0-9A-Za-z]+", text.lower()) if t]
    out: list[str] = []
    for tok in raw:
        out.extend(_ABBREVIATIONS.get(tok, (tok,)))
    return tuple(out)


def compact_header(header: str) -> str:
    return re.sub(r"[^0-9a-z]", "", header.lower())


def _weighted_dice(a: Sequence[str], b: Sequence[str]) -> float:
    if not a or not b:
        return 0.0
    sa, sb = set(a), set(b)
    common = sum(_WEAK.get(t, 1.0) for t in sa & sb)
    total = sum(_WEAK.get(t, 1.0) for t in sa) + sum(_WEAK.get(t, 1.0) for t in sb)
    return 2 * common / total if total else 0.0


@dataclass(frozen=True)
class _Synonym:
    text: str
    tokens: tuple[str, ...]
    compact: str


def synonyms_of(el: Element) -> list[_Synonym]:
    texts = [el.name, el.label, *el.synonyms]
    return [_Synonym(t, header_tokens(t), compact_header(t)) for t in texts if t]


def header_score(
    header: str, el: Element, _cache: dict[str, list[_Synonym]] | None = None
) -> tuple[float, str]:
    """How well ``header`` names ``el`` (0..1) and the synonym that matched best."""
    syns = _cache[el.name] if _cache is not None else synonyms_of(el)
    tokens = header_tokens(header)
    compact = compact_header(header)
    best, best_syn = 0.0, ""
    matcher = difflib.SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(compact)  # the header is the fixed side: difflib caches its index
    for syn in syns:
        if compact and (compact == syn.compact or tokens == syn.tokens):
            return 1.0, syn.text
        score = _weighted_dice(tokens, syn.tokens)
        if len(compact) >= 4 and len(syn.compact) >= 4:
            matcher.set_seq1(syn.compact)
            # Cheap upper bounds first: most synonyms are nowhere near the header.
            if matcher.real_quick_ratio() > 0.75 and matcher.quick_ratio() > 0.75:
                ratio = matcher.ratio()
                score = max(score, (ratio - 0.5) * 1.8 if ratio > 0.75 else 0.0)
        if (set(tokens) & QUALIFIERS) - set(syn.tokens):
            score *= 0.5
        if score > best:
            best, best_syn = score, syn.text
    return min(best, 0.97), best_syn
