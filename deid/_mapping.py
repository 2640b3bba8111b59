"""Column mapping: from whatever a SIS/MIS export calls its columns to the agreement's shared elements.

The steps, each usable alone:

- :func:`suggest_mapping` scores, for every column of an export, the elements it may hold — from its
  header (normalized: case, separators, camelCase, the abbreviations of SIS/MIS exports such as
  STU/NM/DT/CD/NBR/FLG, and each element's synonyms) and from a sample of its values (formats such as
  dates, 10-digit IDs, ZIP codes, e-mails and phones; code-set coverage; value ranges and
  distributions) — then assigns elements one-to-one across columns (greedily by score), so two columns
  never both claim ``birth_date``. A column left without an element maps to None: a policy built from
  the dictionary drops it.
- :func:`suggest_recodes` proposes, for a code element, how each source value maps onto its code set
  (``Male``/``m``/``1`` -> ``M``, ``9``/``Grade 9`` -> ``09``, ``Yes``/``True`` -> ``Y``, race names
  -> CALPADS codes).
- :class:`MappingProfile` keeps a confirmed mapping per source system ("Aeries export") with a header
  signature, so :func:`match_profile` reuses it when the same export comes back.
- :func:`validate` checks an export against a mapping before de-identification (required elements
  unmapped, values outside code sets, impossible dates, duplicate student IDs), with counts and first
  row numbers — never values.
- :func:`apply_mapping` renames columns to element names, applies the recodes and writes dates as ISO
  ``YYYY-MM-DD``: what makes files from different systems line up. :func:`policy_from_elements` then
  builds the element-keyed de-identification :class:`~deid.Policy`.

Everything that touches data is vectorized with pyarrow compute; only distinct values and a sample
(:data:`SAMPLE_ROWS`) are looked at in Python.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._elements import Element, element_library
from deid.errors import InputError, PolicyError

SAMPLE_ROWS = 2000
MIN_SCORE = 0.45  # below this a column is left unmapped rather than guessed
PROFILE_VERSION = 1

# --------------------------------------------------------------------------------- headers

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
_QUALIFIERS = frozenset({
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


def _compact(header: str) -> str:
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


def _synonyms_of(el: Element) -> list[_Synonym]:
    texts = [el.name, el.label, *el.synonyms]
    return [_Synonym(t, header_tokens(t), _compact(t)) for t in texts if t]


def header_score(
    header: str, el: Element, _cache: dict[str, list[_Synonym]] | None = None
) -> tuple[float, str]:
    """How well ``header`` names ``el`` (0..1) and the synonym that matched best."""
    syns = _cache[el.name] if _cache is not None else _synonyms_of(el)
    tokens = header_tokens(header)
    compact = _compact(header)
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
        if (set(tokens) & _QUALIFIERS) - set(syn.tokens):
            score *= 0.5
        if score > best:
            best, best_syn = score, syn.text
    return min(best, 0.97), best_syn


# ---------------------------------------------------------------------------------- values

_DATE_FORMATS = (
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
_PATTERNS = {
    "ssid": r"^\d{10}$",
    "digits": r"^\d+$",
    "id": r"^[A-Za-z@]?\d{4,12}[A-Za-z]?$",
    "zip": r"^\d{5}(-?\d{4})?$",
    "email": r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
    # North American numbers: area code and exchange start with 2-9 (random 10-digit IDs often do not).
    "phone": r"^(\+?1[-. ]?)?\(?[2-9]\d{2}\)?[-. ]?[2-9]\d{2}[-. ]?\d{4}$",
    "number": r"^[-+]?(\d+\.?\d*|\.\d+)%?$",
    "word": r"^[A-Za-z][A-Za-z'.\-]*( [A-Za-z][A-Za-z'.\-]*)?$",
    "street": r"^\d+[A-Za-z]? +[A-Za-z0-9 .,'#\-]*[A-Za-z]",
    "school_year": r"^(\d{4}[-/]\d{2}(\d{2})?|\d{4})$",
    "term": r"^(\d{3,4}|\d{6}|(FA|SP|SU|WI|F|S|W)\s?-?\d{2,4}|\d{4}\s?-?(FA|SP|SU|WI|F|S|W))$",
    "top_code": r"^\d{4}\.?\d{2}$",
    "course": r"^[A-Za-z]{1,6}[ -]?\d{1,4}[A-Za-z]?$|^\d{4}$",
    "letter_grade": r"^([A-D][+-]?|F|P|NP|CR|NC|I|W|IP|RD)$",
}


@dataclass
class ValueProfile:
    """What a sample of a column's values looks like (fractions of the non-empty sampled values)."""

    rows: int = 0
    present: int = 0
    distinct: int = 0
    fractions: dict[str, float] = field(default_factory=dict)
    date_format: str | None = None
    date_fraction: float = 0.0
    median_year: float | None = None
    numeric_min: float | None = None
    numeric_max: float | None = None
    integer_fraction: float = 0.0
    mean_length: float = 0.0
    mean_words: float = 0.0
    top_values: list[tuple[str, int]] = field(default_factory=list)  # only for low-cardinality columns
    top_domain_share: float = 0.0  # e-mail columns: share of the most common domain (a school's own)

    @property
    def empty(self) -> bool:
        return self.present == 0


def _as_string(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(col.type):
        return col
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        return pc.strftime(col, format="%Y-%m-%d")
    return pc.cast(col, pa.string())


def _clean(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Text with surrounding blanks trimmed and empty strings as nulls."""
    text = pc.utf8_trim_whitespace(_as_string(col))
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def best_date_format(values: pa.Array | pa.ChunkedArray) -> tuple[str | None, float]:
    """The strptime format that parses most of ``values`` (non-null text) and the fraction it parses."""
    n = len(values) - values.null_count
    if n == 0:
        return None, 0.0
    best: tuple[str | None, float] = (None, 0.0)
    for fmt in _DATE_FORMATS:
        parsed = pc.strptime(values, format=fmt, unit="s", error_is_null=True)
        frac = (len(parsed) - parsed.null_count) / n
        if frac > best[1]:
            best = (fmt, frac)
        if frac >= 0.999:
            break
    return best


def profile_values(col: pa.ChunkedArray | pa.Array, sample_rows: int = SAMPLE_ROWS) -> ValueProfile:
    """Profile ``sample_rows`` values spread evenly over a column (exports are often sorted, so the
    first rows alone can be one school, one grade or one term)."""
    n = len(col)
    if n > sample_rows:
        positions = pa.array(np.linspace(0, n - 1, sample_rows).astype(np.int64))
        col = col.take(positions)
    sample = _clean(col)
    prof = ValueProfile(rows=len(sample))
    values = pc.drop_null(sample)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    prof.present = len(values)
    if not prof.present:
        return prof
    counts = pc.value_counts(values)
    prof.distinct = len(counts)
    if prof.distinct <= 60:
        pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        prof.top_values = sorted(pairs, key=lambda p: -p[1])
    n = prof.present
    for key, pattern in _PATTERNS.items():
        hits = pc.sum(pc.match_substring_regex(values, pattern)).as_py() or 0
        prof.fractions[key] = hits / n
    fmt, frac = best_date_format(values)
    if fmt and frac > 0.5:
        prof.date_format, prof.date_fraction = fmt, frac
        years = pc.year(pc.drop_null(pc.strptime(values, format=fmt, unit="s", error_is_null=True)))
        prof.median_year = pc.approximate_median(years).as_py()
    if prof.fractions.get("email", 0) > 0.5:
        domains = pc.struct_field(pc.extract_regex(values, r"@(?P<domain>[^@]+)$"), [0])
        counts_d = pc.value_counts(pc.utf8_lower(pc.drop_null(domains)))
        if len(counts_d):
            prof.top_domain_share = (pc.max(counts_d.field("counts")).as_py() or 0) / n
    if prof.fractions.get("number", 0) > 0.5:
        nums = (
            pc.cast(pc.replace_substring(values, "%", ""), pa.float64(), safe=False)
            if prof.fractions["number"] == 1.0
            else _to_float(values)
        )
        nums = pc.drop_null(nums)
        if len(nums):
            mm = pc.min_max(nums)
            prof.numeric_min, prof.numeric_max = mm["min"].as_py(), mm["max"].as_py()
            prof.integer_fraction = (pc.sum(pc.equal(nums, pc.floor(nums))).as_py() or 0) / len(nums)
    lengths = pc.utf8_length(values)
    prof.mean_length = pc.mean(lengths).as_py() or 0.0
    spaces = pc.count_substring(values, " ")
    prof.mean_words = (pc.mean(spaces).as_py() or 0.0) + 1
    return prof


def _to_float(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Numbers as float64 (a trailing % removed); anything unparseable becomes null."""
    text = _clean(values)
    ok = pc.match_substring_regex(text, _PATTERNS["number"])
    text = pc.if_else(ok, pc.replace_substring(text, "%", ""), pa.scalar(None, pa.string()))
    return pc.cast(text, pa.float64())


def _f(prof: ValueProfile, key: str) -> float:
    return prof.fractions.get(key, 0.0)


def _num_in(prof: ValueProfile, lo: float, hi: float) -> bool:
    return (
        prof.numeric_min is not None
        and prof.numeric_max is not None
        and prof.numeric_min >= lo
        and prof.numeric_max <= hi
    )


def value_score(prof: ValueProfile, el: Element) -> tuple[float, str]:
    """How well the sampled values fit ``el`` (0..1, 0.5 = no evidence) and why (never a value)."""
    if prof.empty:
        return 0.5, "the sampled values are all empty"
    if el.code_set:
        cov, how = code_coverage(prof, el)
        if el.format == "flag" and prof.distinct > 4:
            cov *= 0.3
        return cov, f"{cov:.0%} of sampled values fit the {el.code_set_name or 'code set'}{how}"
    fmt = el.format
    numeric = _f(prof, "number")
    if fmt == "ssid":
        s = _f(prof, "ssid")
        return s, f"{s:.0%} of sampled values are 10-digit numbers"
    if fmt == "id":
        s = _f(prof, "id") * (1.0 if prof.distinct >= 0.8 * prof.present else 0.4)
        return s, f"{s:.0%} of sampled values look like unique record IDs"
    if fmt == "person_name":
        s = _f(prof, "word") * (1.0 if prof.distinct > 20 or prof.distinct > 0.3 * prof.present else 0.3)
        return s, f"{s:.0%} of sampled values look like personal names"
    if fmt == "street_address":
        s = _f(prof, "street")
        return s, f"{s:.0%} of sampled values look like street addresses"
    if fmt == "city":
        s = _f(prof, "word") * (1.0 if prof.distinct < max(0.5 * prof.present, 30) else 0.4)
        return s, f"{s:.0%} of sampled values look like place names"
    if fmt == "email":
        s = _f(prof, "email")
        if prof.top_domain_share >= 0.6:
            # Most addresses at one domain: accounts the school or college issued to its students.
            s *= 0.8 if el.category == "identifier" and el.domain == "k12" and el.name != "email" else 1.0
            return s, f"{_f(prof, 'email'):.0%} of sampled values are e-mail addresses, mostly at one domain"
        return s, f"{s:.0%} of sampled values look like e-mail addresses"
    if fmt in ("zip", "phone"):
        s = _f(prof, fmt)
        return s, f"{s:.0%} of sampled values look like {'ZIP codes' if fmt == 'zip' else 'phone numbers'}"
    if fmt == "date":
        s = prof.date_fraction
        if s and el.name == "birth_date" and prof.median_year is not None:
            # Students are born 3 to 80 years before today.
            age = dt.date.today().year - prof.median_year
            s *= 1.0 if 3 <= age <= 80 else 0.5
        elif s and el.name != "birth_date" and prof.median_year is not None:
            s *= 1.0 if dt.date.today().year - prof.median_year <= 20 else 0.6
        return s, f"{prof.date_fraction:.0%} of sampled values are dates ({prof.date_format or 'no format'})"
    if fmt == "school_code":
        s = 0.7 if (_f(prof, "digits") > 0.9 or _f(prof, "id") > 0.9) and prof.distinct <= 200 else 0.2
        return s, "a few distinct numeric codes" if s > 0.5 else "values do not look like site codes"
    if fmt == "school_year":
        s = _f(prof, "school_year") * (1.0 if prof.distinct <= 20 else 0.3)
        return s, f"{s:.0%} of sampled values look like school years"
    if fmt == "term":
        s = _f(prof, "term") * (1.0 if prof.distinct <= 40 else 0.3)
        return s, f"{s:.0%} of sampled values look like term codes"
    if fmt == "top_code":
        s = _f(prof, "top_code")
        return s, f"{s:.0%} of sampled values look like 6-digit TOP codes"
    if fmt == "course":
        s = _f(prof, "course") * 0.8
        return s, f"{_f(prof, 'course'):.0%} of sampled values look like course codes"
    if fmt in ("credits", "units", "gpa", "rate", "count"):
        return _numeric_score(prof, fmt, numeric)
    if fmt == "free_text":
        s = min(1.0, prof.mean_length / 40) * (1.0 if prof.mean_words >= 4 else 0.3)
        return s, "long multi-word text" if s > 0.5 else "short values, not free text"
    if fmt in ("pathway", "award", "credential"):
        s = 0.6 if prof.distinct <= 60 and prof.mean_length <= 12 else 0.2
        return s, "a few distinct short codes" if s > 0.5 else "too many distinct values for a code"
    return 0.5, "no value check for this element"


def _numeric_score(prof: ValueProfile, fmt: str, numeric: float) -> tuple[float, str]:
    if numeric < 0.8:
        return 0.1, f"only {numeric:.0%} of sampled values are numbers"
    if fmt == "gpa":
        ok = _num_in(prof, 0, 5) and prof.integer_fraction < 0.9
        return (0.9 if ok else 0.2), "decimals between 0 and 5" if ok else "numbers outside a GPA's range"
    if fmt == "rate":
        ok = (_num_in(prof, 0, 1) or _num_in(prof, 0, 100)) and prof.integer_fraction < 0.7
        return (0.85 if ok else 0.2), "fractions or percentages" if ok else "numbers unlike a rate"
    if fmt == "count":
        ok = _num_in(prof, 0, 100) and prof.integer_fraction == 1.0 and prof.distinct <= 40
        return (0.8 if ok else 0.2), "small whole numbers" if ok else "numbers unlike a count"
    if fmt == "credits":
        ok = _num_in(prof, 0, 400)
        return (0.7 if ok else 0.2), "numbers between 0 and 400" if ok else "numbers outside a credit range"
    ok = _num_in(prof, 0, 200)
    return (0.7 if ok else 0.2), "numbers between 0 and 200" if ok else "numbers outside a unit range"


# --------------------------------------------------------------------------------- recodes


def _norm_value(value: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_]", " ", value.strip().lower())).strip(" .")


def _grade_code(value: str, codes: frozenset[str]) -> str | None:
    """Grade spellings: '9', '09', 'Grade 9', '9th', 'Gr. 9' -> '09'; 'K' -> 'KN'."""
    v = _norm_value(value)
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


def _lookup(el: Element) -> dict[str, str]:
    """Normalized spelling -> code, for every code, label and alias of ``el``."""
    table: dict[str, str] = {}
    for c in el.code_set:
        for spelling in (*c.aliases, c.label, c.code):
            table.setdefault(_norm_value(spelling), c.code)
    for c in el.code_set:  # a code itself always wins over another code's alias
        table[_norm_value(c.code)] = c.code
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
        distinct = [v for v in pc.unique(pc.drop_null(_clean(values))).to_pylist() if v is not None]
    else:
        distinct = sorted({str(v).strip() for v in values if v is not None and str(v).strip()})
    codes = element.codes
    lookup = _lookup(element)
    numeric_only = bool(distinct) and all(re.fullmatch(r"\d+", v) for v in distinct)
    out: dict[str, str] = {}
    for raw in distinct:
        if raw in codes:
            continue
        code: str | None = None
        if element.format == "grade":
            code = _grade_code(raw, codes)
        if code is None and numeric_only and element.numeric_codes and element.format != "flag":
            code = element.numeric_codes.get(raw.lstrip("0") or "0")
        if code is None:
            code = lookup.get(_norm_value(raw))
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
    text = _clean(col)
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


# ------------------------------------------------------------------------------ suggestions


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
    syn_cache = {el.name: _synonyms_of(el) for el in els}
    by_name = {el.name: el for el in els}
    profiles = {name: profile_values(table.column(name), sample_rows) for name in table.column_names}
    scored: dict[str, list[Candidate]] = {}
    for col in table.column_names:
        prof = profiles[col]
        qualifiers = set(header_tokens(col)) & _QUALIFIERS
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
        yes = {_norm_value(v) for v in rule.get("yes", ())}
        unknown = {_norm_value(v) for v in rule.get("unknown", ())}
        values = [v for v, _ in prof.top_values]
        known = set(source.codes) | set(suggest_recodes(values, source)) if source is not None else set()
        values = [v for v in values if v in known or _norm_value(v) in yes or _norm_value(v) in unknown]
        if not any(_norm_value(v) in yes for v in values):
            continue
        yes_code, no_code = str(rule.get("then", "Y")), str(rule.get("else", "N"))
        out[el.name] = {
            v: (yes_code if _norm_value(v) in yes else no_code)
            for v in values
            if _norm_value(v) not in unknown
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


# --------------------------------------------------------------------------------- profiles


def header_signature(headers: Iterable[str]) -> str:
    """A stable fingerprint of an export's header set (order and case do not matter)."""
    names = sorted({_compact(h) for h in headers})
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


@dataclass
class MappingProfile:
    """A confirmed mapping for one source system: column -> element (None = dropped), value recodes per
    column, date formats per column, and the header signature it was made from."""

    name: str
    columns: dict[str, str | None]
    source_system: str = ""
    recodes: dict[str, dict[str, str]] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    description: str = ""
    # Elements filled from another column's values: {element: {"from": column, "values": {value: code}}}.
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.signature:
            self.signature = header_signature(self.columns)

    @property
    def mapped(self) -> dict[str, str]:
        """Only the columns that map to an element."""
        return {c: e for c, e in self.columns.items() if e}

    @classmethod
    def from_suggestions(
        cls, name: str, suggestions: Sequence[ColumnSuggestion], *, source_system: str = ""
    ) -> MappingProfile:
        """A profile holding the suggestions as they are (to be confirmed or corrected)."""
        return cls(
            name=name,
            source_system=source_system,
            columns={s.column: s.element for s in suggestions},
            recodes={s.column: dict(s.recodes) for s in suggestions if s.recodes},
            date_formats={s.column: s.date_format for s in suggestions if s.date_format},
            derived={
                el: {"from": s.column, "values": dict(values)}
                for s in suggestions
                for el, values in s.derives.items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile's JSON form (what `pathshare profile export` writes)."""
        return {
            "pathshare_mapping_profile": PROFILE_VERSION,
            "name": self.name,
            "source_system": self.source_system,
            "description": self.description,
            "signature": self.signature,
            "columns": dict(self.columns),
            "recodes": {c: dict(r) for c, r in self.recodes.items()},
            "date_formats": dict(self.date_formats),
            "derived": {e: {"from": d["from"], "values": dict(d["values"])} for e, d in self.derived.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "the mapping profile") -> MappingProfile:
        """Validate and build a profile from its JSON form; PolicyError naming ``source`` if invalid."""
        if not isinstance(data, dict) or "pathshare_mapping_profile" not in data:
            raise PolicyError(f"{source} is not a PathShare mapping profile.")
        if data["pathshare_mapping_profile"] != PROFILE_VERSION:
            raise PolicyError(
                f"{source} has profile version {data['pathshare_mapping_profile']!r}; this "
                f"PathShare reads version {PROFILE_VERSION}."
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(f"{source} has no name.")
        columns = data.get("columns")
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items()
        ):
            raise PolicyError(f"{source} needs 'columns': an object of column name -> element name or null.")
        targets = [v for v in columns.values() if v]
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise PolicyError(f"{source} maps more than one column to {', '.join(dupes)}.")
        recodes = data.get("recodes") or {}
        if not isinstance(recodes, dict) or not all(
            isinstance(r, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in r.items())
            for r in recodes.values()
        ):
            raise PolicyError(f"{source} has invalid 'recodes' (column -> {{source value: code}}).")
        formats = data.get("date_formats") or {}
        if not isinstance(formats, dict) or not all(isinstance(v, str) for v in formats.values()):
            raise PolicyError(f"{source} has invalid 'date_formats'.")
        derived = data.get("derived") or {}
        if not isinstance(derived, dict) or not all(
            isinstance(d, dict)
            and isinstance(d.get("from"), str)
            and isinstance(d.get("values"), dict)
            and all(isinstance(a, str) and isinstance(b, str) for a, b in d["values"].items())
            for d in derived.values()
        ):
            raise PolicyError(
                f"{source} has invalid 'derived' (element -> {{from: column, values: {{...}}}})."
            )
        clash = sorted(set(derived) & set(targets))
        if clash:
            raise PolicyError(f"{source} both maps a column to and derives {', '.join(clash)}.")
        return cls(
            name=name.strip(),
            columns=dict(columns),
            source_system=str(data.get("source_system", "")),
            recodes={c: dict(r) for c, r in recodes.items()},
            date_formats=dict(formats),
            signature=str(data.get("signature") or ""),
            description=str(data.get("description", "")),
            derived={e: {"from": d["from"], "values": dict(d["values"])} for e, d in derived.items()},
        )


def match_profile(headers: Sequence[str], profiles: Iterable[MappingProfile]) -> MappingProfile | None:
    """The saved profile for an export with these headers: the same header set (ignoring order, case
    and separators), else the profile whose columns all appear with the largest overlap (at least 90%)."""
    profiles = list(profiles)
    sig = header_signature(headers)
    for prof in profiles:
        if prof.signature == sig:
            return prof
    present = {_compact(h) for h in headers}
    best: tuple[float, MappingProfile | None] = (0.0, None)
    for prof in profiles:
        cols = {_compact(c) for c in prof.columns}
        if not cols or not {_compact(c) for c in prof.mapped} <= present:
            continue
        jaccard = len(cols & present) / len(cols | present)
        if jaccard >= 0.9 and jaccard > best[0]:
            best = (jaccard, prof)
    return best[1]


def _as_profile(mapping: MappingProfile | Mapping[str, str | None]) -> MappingProfile:
    if isinstance(mapping, MappingProfile):
        return mapping
    return MappingProfile(name="mapping", columns=dict(mapping))


# -------------------------------------------------------------------------------- applying


def _check_mapping(table: pa.Table, prof: MappingProfile, by_name: Mapping[str, Element] | None) -> None:
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


def _parse_dates(text: pa.ChunkedArray | pa.Array, fmt: str | None) -> pa.ChunkedArray | pa.Array:
    """Dates parsed with ``fmt`` (or the best format found), as timestamps; unparseable -> null."""
    if fmt is None:
        fmt, _ = best_date_format(pc.drop_null(text.slice(0, SAMPLE_ROWS)))
    if fmt is None:
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
) -> pa.ChunkedArray | pa.Array:
    """One column's values in the element's form: codes recoded, dates ISO, numbers plain (text).

    The work is done once per distinct value (dictionary encode, transform the dictionary, take):
    a million rows of birth dates hold a few thousand distinct dates.
    """
    if el.code_set or el.type in ("date", "integer", "decimal"):
        return _map_distinct(col, lambda values: _normalize_values(values, el, recodes, date_format))
    return _normalize_values(col, el, recodes, date_format)


def _map_distinct(col: pa.ChunkedArray | pa.Array, *funcs: Any) -> Any:
    """Each of ``funcs`` applied to the distinct values of ``col`` and spread back over its rows (one
    result, or a tuple of results for several functions; the column is encoded once)."""
    arr = _as_string(col)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    encoded = pc.dictionary_encode(arr)
    if len(encoded.dictionary) * 2 > max(len(arr), 1):
        out = [func(arr) for func in funcs]  # mostly distinct values: no gain
    else:
        out = [pc.take(func(encoded.dictionary), encoded.indices) for func in funcs]
    return out[0] if len(out) == 1 else tuple(out)


def _normalize_values(
    col: pa.ChunkedArray | pa.Array,
    el: Element,
    recodes: Mapping[str, str] | None,
    date_format: str | None,
) -> pa.ChunkedArray | pa.Array:
    if el.type == "text" and not el.code_set:
        # Free text passes as it is (the redaction treatment reads it whole); copying a column of
        # notes only to trim it would cost more than every other column together.
        return _as_string(col)
    text = _clean(col)
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
        nums = _to_float(text)
        if el.normalize == "fraction":
            top = pc.max(nums).as_py()
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
    text = _clean(col)
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
    prof = _as_profile(mapping)
    els = list(element_library().values()) if elements is None else list(elements)
    by_name = {el.name: el for el in els}
    _check_mapping(table, prof, by_name)
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
                    date_format=prof.date_formats.get(col),
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


# ------------------------------------------------------------------------------- validation

ID_ELEMENTS = ("state_student_id", "local_student_id", "college_student_id")
# Elements that make several rows per student legitimate (one per term, year, course …).
_RECORD_LEVEL = ("school_year", "term", "course_id", "course_section")
MAX_ROWS_LISTED = 5


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


def _first_rows(mask: pa.ChunkedArray | pa.Array) -> tuple[int, tuple[int, ...]]:
    mask = pc.fill_null(mask, False)
    count = pc.sum(mask).as_py() or 0
    if not count:
        return 0, ()
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    idx = pc.indices_nonzero(mask).slice(0, MAX_ROWS_LISTED).to_pylist()
    return count, tuple(i + 1 for i in idx)


def _rows_text(rows: tuple[int, ...], count: int) -> str:
    listed = ", ".join(str(r) for r in rows)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    return f"data row{'s' if count > 1 else ''} {listed}{more}"


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


# ------------------------------------------------------------------------------------ policy


def policy_from_elements(
    elements: Sequence[Element],
    *,
    treatments: Mapping[str, Mapping[str, Any]] | None = None,
    k: int = 5,
    mapped: Iterable[str] | None = None,
    name: str = "the agreement's policy",
    disclosure: Any = None,
) -> Any:
    """The de-identification :class:`~deid.Policy` for a mapped table (whose columns are element names).

    Each element's treatment is ``treatments[name]`` when given (an agreement's
    ``element_treatments()``), else the element's default; quasi-identifier follows the treatment's
    ``quasi_identifier`` key, else the element's category. ``mapped`` limits the rules to the elements
    present in the table. Unlisted columns are dropped.
    """
    from deid._policy import ColumnRule, Policy

    present = set(mapped) if mapped is not None else None
    rules = []
    for el in elements:
        if present is not None and el.name not in present:
            continue
        spec = dict((treatments or {}).get(el.name) or el.treatment)
        # Agreement.element_treatments() nests parameters under "params"; policy files do not.
        nested = spec.pop("params", None)
        if isinstance(nested, Mapping):
            spec.update(nested)
        treatment = spec.pop("treatment", "keep")
        output = spec.pop("as", None)
        if output == el.name:
            output = None
        qi = spec.pop("quasi_identifier", None)
        if qi is None:
            qi = el.quasi_identifier and treatment != "drop"
        rules.append(
            ColumnRule(
                source=el.name, treatment=treatment, output=output, quasi_identifier=bool(qi), params=spec
            )
        )
    return Policy.from_rules(rules, k=k, drop_unlisted=True, name=name, disclosure=disclosure)


# ------------------------------------------------------------------- a header row that is data

HEADER_SAMPLE_ROWS = 1000  # rows spread over the file that each column's header cell is compared with
_MIN_SAMPLE = 3  # fewer non-empty values than this say nothing about a column's shape
# A four-digit year or a school year: a real header in a wide export ("2023", "2024" over scale scores).
_YEAR = re.compile(r"(19[5-9]\d|20[0-4]\d)([-/](\d{2}|\d{4}))?")
_INTEGER = re.compile(r"[-+]?\d+")
_NUMBER = re.compile(_PATTERNS["number"])
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
        vote = "name" if _compact(header) in known else _header_vote(header.strip(), table.column(i))
        if vote == "value":
            value.append(i + 1)
        elif vote == "name":
            name.append(i + 1)
    return HeaderVerdict(tuple(value), tuple(name))


@functools.lru_cache(maxsize=1)
def _dictionary_headers() -> frozenset[str]:
    """Every element name, label and synonym in the shipped library, compacted as headers are."""
    return frozenset(
        syn.compact for el in element_library().values() for syn in _synonyms_of(el) if syn.compact
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
        same = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(_as_string(table.column(i))), h), False)
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
    for fmt in _DATE_FORMATS:
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
    values = pc.drop_null(_clean(col))
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
    if share(_PATTERNS["number"]) >= 0.95:
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
                and (header in codes or (el.format == "grade" and _grade_code(header, codes) is not None))
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
