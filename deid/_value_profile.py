"""What a column's values look like, and how well they fit an element (the values half of a mapping
suggestion): formats such as dates, 10-digit IDs, ZIP codes, e-mails and phones; code-set coverage;
value ranges and distributions. Only a sample (:data:`SAMPLE_ROWS`) spread over the column is looked at.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._cells import NUMBER_PATTERN, best_date_format, clean, to_float
from deid._elements import Element
from deid._recodes import code_coverage

SAMPLE_ROWS = 2000

_PATTERNS = {
    "ssid": r"^\d{10}$",
    "digits": r"^\d+$",
    "id": r"^[A-Za-z@]?\d{4,12}[A-Za-z]?$",
    "zip": r"^\d{5}(-?\d{4})?$",
    "email": r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$",
    # North American numbers: area code and exchange start with 2-9 (random 10-digit IDs often do not).
    "phone": r"^(\+?1[-. ]?)?\(?[2-9]\d{2}\)?[-. ]?[2-9]\d{2}[-. ]?\d{4}$",
    "number": NUMBER_PATTERN,
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


def profile_values(col: pa.ChunkedArray | pa.Array, sample_rows: int = SAMPLE_ROWS) -> ValueProfile:
    """Profile ``sample_rows`` values spread evenly over a column (exports are often sorted, so the
    first rows alone can be one school, one grade or one term)."""
    n = len(col)
    if n > sample_rows:
        positions = pa.array(np.linspace(0, n - 1, sample_rows).astype(np.int64))
        col = col.take(positions)
    sample = clean(col)
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
            else to_float(values)
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
