"""Column classifier: which columns of an extract identify students or hold sensitive facts.

Two kinds of evidence, combined per column:

* the **header**, normalized ("STU_BIRTH_DT" → "stu birth dt", "GuardianEmail" → "guardian email") and
  matched against the names SIS/MIS exports use (SSID, STU_ID, DOB, Sex_Cd, IEP, 504, EL/ELL/LEP,
  FRPM/FRL/SED, Discipline, Health, Notes …);
* the **values**, on a sample of rows: patterns for SSNs, e-mail addresses, phone numbers, dates, ZIP
  codes, street addresses and ID numbers (10-digit state IDs), English-learner codes, long free text,
  and how name-like the values are (against a bundled list of common given names and surnames).

The result says, in plain words and without quoting any value, why each column was flagged, so the
clerk can decide about it explicitly. Only flagged columns are returned.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._wordlists import COMMON_FIRST_NAMES, COMMON_SURNAMES, NAME_LIKE_WORDS

__all__ = ["CATEGORY_OF", "ColumnFlag", "classify_columns"]

CATEGORY_OF: dict[str, str] = {
    "ssn": "identifier",
    "ssid": "identifier",
    "student_id": "identifier",
    "name": "identifier",
    "email": "identifier",
    "phone": "identifier",
    "address": "identifier",
    "birth_date": "quasi_identifier",
    "zip": "quasi_identifier",
    "gender": "quasi_identifier",
    "race_ethnicity": "quasi_identifier",
    "city": "quasi_identifier",
    "date": "quasi_identifier",
    "iep": "sensitive",
    "section_504": "sensitive",
    "english_learner": "sensitive",
    "frpm": "sensitive",
    "discipline": "sensitive",
    "health": "sensitive",
    "homeless": "sensitive",
    "foster": "sensitive",
    "migrant": "sensitive",
    "free_text": "free_text",
}

_DESCRIBE = {
    "ssn": "Social Security numbers",
    "ssid": "state student IDs",
    "student_id": "student ID numbers",
    "name": "names",
    "email": "e-mail addresses",
    "phone": "phone numbers",
    "address": "street addresses",
    "birth_date": "birth dates",
    "zip": "ZIP codes",
    "gender": "gender",
    "race_ethnicity": "race or ethnicity",
    "city": "cities",
    "date": "dates",
    "iep": "special-education (IEP) status",
    "section_504": "Section 504 plan status",
    "english_learner": "English-learner status",
    "frpm": "free/reduced-price meal or economic status",
    "discipline": "discipline records",
    "health": "health information",
    "homeless": "homeless status",
    "foster": "foster-care status",
    "migrant": "migrant status",
    "free_text": "free text",
}

# Header words that make "name"/"ID" headers about something other than a person.
_NOT_A_PERSON = (
    r"\b(school|schl|district|dist|lea|course|crs|crse|section|sect|class|program|prog|pathway|college|"
    r"institution|inst|award|top|cds|term|file|user|teacher|staff|counselor|site|campus|building|room|"
    r"city|street|test|assessment|vendor|product)\b"
)
# (kind, pattern over the normalized header); the first that matches wins, so order matters:
# "Guardian Email" is an e-mail before it is a guardian's name.
_HEADER_RULES: list[tuple[str, str, float]] = [
    ("ssn", r"\b(ssn|social security( number| no| num)?|soc sec( no| num)?|ss (num|no|nbr|number))\b", 0.95),
    ("email", r"\b(e ?mail|emailaddr|email addr)\b", 0.9),
    ("phone", r"\b(phone|telephone|tel|cell|mobile|ph|phone nbr|contact number)\b", 0.9),
    ("birth_date", r"\b(dob|birth|birthdate|bdate|bday|born|bd|birth dt|brth)\b", 0.95),
    ("ssid", r"\b(ssid|state (student )?(id|identifier|number|num|no|nbr)|statewide (student )?id|"
             r"state student number|statestudentnumber|stateid)\b", 0.95),
    ("section_504", r"\b(504|sec504|section 504)\b", 0.9),
    ("iep", r"\b(iep|sped|sp ed|special ed|special education|idea|disability|disabilities|disabled|swd)\b",
     0.9),
    ("english_learner", r"\b(el|ell|ells|lep|elas|elpac|eld|lf|english learner|english language learner|"
                        r"language fluency|lang fluency|limited english|english proficiency|el status)\b",
     0.85),
    ("frpm", r"\b(frpm|frl|free|reduced|meal|meals|lunch|nslp|econ|sed|socioeconomic|socio econ|"
             r"economically|socio ?economically|disadvantaged|poverty|low income|title i|pell)\b", 0.85),
    ("discipline", r"\b(discipline|disciplinary|suspension|suspensions|suspended|susp|expulsion|expelled|"
                   r"incident|incidents|referral|referrals|behavior|behaviour|offense|offenses|infraction|infractions)\b",
     0.85),
    ("health", r"\b(health|medical|medication|medications|diagnosis|allergy|allergies|immunization|"
               r"immunizations|nurse|mental|condition|conditions)\b", 0.85),
    ("homeless", r"\b(homeless|mckinney|mckinney vento)\b", 0.85),
    ("foster", r"\b(foster)\b", 0.85),
    ("migrant", r"\b(migrant)\b", 0.85),
    ("address", r"\b(address|addr|street|str|residence|mailing|address line|apt)\b", 0.85),
    ("zip", r"\b(zip|zipcode|zip5|zip cd|postal|postcode)\b", 0.85),
    ("city", r"\b(city|town)\b", 0.7),
    ("gender", r"\b(sex|gender|gndr|sex cd|gender cd|gn)\b", 0.85),
    ("race_ethnicity", r"\b(race|ethnicity|ethnic|hispanic|latino|latinx|fedethnicity)\b", 0.8),
    ("name", r"\b(name|names|nm|surname|fname|lname|mname|nickname)\b|"
             r"^(first|last|middle|given|fn|ln|mi|guardian|parent|mother|father|preferred|"
             r"parent guardian|guardian 1|guardian 2|parent 1|parent 2)$", 0.85),
    ("student_id", r"\b(stu|student|stdnt|pupil|learner|local|person|banner|colleague|perm|permanent)\b"
                   r".*\b(id|num|number|no|nbr|identifier|#)\b|^(id|stu id|studentid|stuid|permnum|perm id)$",
     0.85),
    ("free_text", r"\b(note|notes|comment|comments|remark|remarks|narrative|memo|observation|observations|"
                  r"description|explanation|reason|details)\b", 0.85),
]  # fmt: skip
_HEADER_RES = [(kind, re.compile(p), conf) for kind, p, conf in _HEADER_RULES]
_NOT_A_PERSON_RE = re.compile(_NOT_A_PERSON)

# Value patterns (RE2, anchored; applied to trimmed sampled values).
_V_EMAIL = r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$"
_V_SSN = r"^\d{3}-\d{2}-\d{4}$"
_V_PHONE = r"^(\+?1[ .\-]?)?(\(\d{3}\) ?|\d{3}[ .\-])\d{3}[ .\-]\d{4}$"
_V_NANP10 = r"^[2-9]\d\d[2-9]\d{6}$"
_V_DATE = (
    r"^(\d{1,2}[/\-.]\d{1,2}[/\-.](\d{2}|\d{4})|\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?)?|"
    r"(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01]))$"
)
_V_ZIP = r"^\d{5}(-\d{4})?$"
_V_ID = r"^[A-Za-z]{0,3}\d{5,12}$"
_V_TEN = r"^\d{10}$"
_V_ADDRESS = (
    r"(?i)^\d{1,6}[A-Za-z]? [\p{L}0-9 .'\-]+ (st|street|ave|avenue|rd|road|blvd|boulevard|dr|drive|ln|lane|"
    r"way|ct|court|pl|place|cir|circle|pkwy|parkway|hwy|highway|ter|terrace|trl|trail|loop|sq|square)\.?"
    r"(,? (apt|unit|ste|suite|#) ?[\w\-]+)?$"
)
_EL_CODES = pa.array(["EO", "IFEP", "EL", "RFEP", "TBD", "ADEL", "LEP", "FEP", "ELL"])
_NAME_SHAPE = r"^\p{Lu}[\p{L}\p{M}'’\-.]*( [\p{L}\p{M}'’\-.]+){0,3}$"


@dataclass(frozen=True)
class ColumnFlag:
    """Why one column looks identifying, quasi-identifying, sensitive or free text."""

    column: str
    kind: str  # ssid, student_id, name, birth_date, email, phone, address, zip, ssn, iep, ...
    category: str  # "identifier" | "quasi_identifier" | "sensitive" | "free_text"
    confidence: float  # 0..1
    reason: str  # plain words, never a value from the column


def normalize_header(header: str) -> str:
    """'STU_BIRTH_DT' → 'stu birth dt'; 'GuardianEmail' → 'guardian email'; '504 Plan' → '504 plan'."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", str(header))
    text = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", text)
    text = text.replace("#", " # ")
    return " ".join(re.sub(r"[^0-9a-z#]+", " ", text.lower()).split())


# Elements of the shared library (deid/data/elements.json) whose header synonyms name a flagged kind.
_ELEMENT_KIND = {
    "state_student_id": "ssid",
    "local_student_id": "student_id",
    "college_student_id": "student_id",
    "first_name": "name",
    "middle_name": "name",
    "last_name": "name",
    "guardian_name": "name",
    "birth_date": "birth_date",
    "sex": "gender",
    "hispanic_latino": "race_ethnicity",
    "race": "race_ethnicity",
    "street_address": "address",
    "city": "city",
    "zip": "zip",
    "phone": "phone",
    "email": "email",
    "guardian_email": "email",
    "discipline_incidents": "discipline",
    "english_learner_status": "english_learner",
    "iep": "iep",
    "section_504": "section_504",
    "economically_disadvantaged": "frpm",
    "notes": "free_text",
}


@functools.lru_cache(maxsize=1)
def _synonym_kinds() -> dict[str, str]:
    """Normalized header synonym → kind, from the element library (the names the mapper knows)."""
    try:
        from deid._elements import element_library

        library = element_library()
    except Exception:  # the library is an aid here, not a requirement
        return {}
    out: dict[str, str] = {}
    for name, kind in _ELEMENT_KIND.items():
        element = library.get(name)
        for synonym in element.synonyms if element is not None else ():
            out.setdefault(normalize_header(synonym), kind)
    return out


def _header_kind(header: str) -> tuple[str, float] | None:
    norm = normalize_header(header)
    exact = _synonym_kinds().get(norm)
    if exact is not None:
        return exact, 0.9
    glued = norm.replace(" ", "")
    for kind, rx, conf in _HEADER_RES:
        if rx.search(norm) or (kind in {"section_504", "ssid", "email"} and rx.search(glued)):
            if kind in {"name", "student_id"} and _NOT_A_PERSON_RE.search(norm):
                continue
            return kind, conf
    return None


def _share(mask: pa.Array, n: int) -> float:
    return float(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0) / n if n else 0.0


def _value_kind(values: pa.Array, col_type: pa.DataType) -> tuple[str, float, str] | None:
    """(kind, share, what) from sampled values, or None. ``what`` describes the values in words."""
    if pa.types.is_date(col_type) or pa.types.is_timestamp(col_type):
        return "date", 1.0, "values are dates"
    if not (pa.types.is_string(col_type) or pa.types.is_large_string(col_type)):
        if pa.types.is_integer(col_type):
            values = pc.cast(values, pa.string())
        else:
            return None
    vals = pc.utf8_trim_whitespace(values)
    vals = vals.filter(pc.greater(pc.utf8_length(vals), 0))
    n = len(vals)
    if n == 0:
        return None

    def share(pattern: str) -> float:
        return _share(pc.match_substring_regex(vals, pattern), n)

    distinct = len(pc.unique(vals)) / n
    lengths = pc.utf8_length(vals).to_numpy(zero_copy_only=False)
    words = pc.list_value_length(pc.utf8_split_whitespace(vals)).to_numpy(zero_copy_only=False)
    checks: list[tuple[str, float, str]] = [
        ("email", share(_V_EMAIL), "look like e-mail addresses"),
        ("ssn", share(_V_SSN), "look like Social Security numbers"),
        ("phone", share(_V_PHONE), "look like phone numbers"),
        ("address", share(_V_ADDRESS), "look like street addresses"),
    ]
    for kind, s, what in checks:
        if s >= 0.6:
            return kind, s, f"{s:.0%} of sampled values {what}"
    ten = share(_V_TEN)
    phone_like = share(_V_PHONE) + share(_V_NANP10)
    if phone_like >= 0.8 and ten < 0.8 * phone_like:
        # a mix of "(626) 555-0123" and "6265550123" is still a phone column
        return (
            "phone",
            min(1.0, phone_like),
            f"{min(1.0, phone_like):.0%} of sampled values look like phone numbers",
        )
    if ten >= 0.8:
        nanp = share(_V_NANP10)
        if nanp >= 0.98 * ten and n >= 10:  # 10 random digits pass the NANP shape only 64% of the time
            return "phone", ten, f"{ten:.0%} of sampled values are 10-digit phone numbers"
        return "ssid", ten, f"{ten:.0%} of sampled values are 10-digit numbers like state student IDs"
    d = share(_V_DATE)
    if d >= 0.8:
        return "date", d, f"{d:.0%} of sampled values are dates"
    z = share(_V_ZIP)
    if z >= 0.9 and distinct < 0.5:
        return "zip", z, f"{z:.0%} of sampled values look like ZIP codes"
    ids = share(_V_ID)
    if ids >= 0.9 and distinct >= 0.9 and n >= 20:
        return "student_id", ids, f"{ids:.0%} of sampled values are distinct ID numbers"
    el = _share(pc.is_in(pc.utf8_upper(vals), value_set=_EL_CODES), n)
    if el >= 0.95 and len(pc.unique(vals)) >= 2:
        return "english_learner", el, "values are English-learner status codes (EO, IFEP, EL, RFEP)"
    if n >= 5 and float(np.mean(lengths)) >= 30 and float(np.mean(words)) >= 5:
        return "free_text", 1.0, "values are free text (sentences)"
    shaped = share(_NAME_SHAPE)
    if shaped >= 0.8 and float(np.mean(words)) <= 4:
        tokens = pc.utf8_split_whitespace(vals)
        flat = pc.utf8_title(pc.utf8_trim(tokens.flatten(), ".,"))
        known = pa.array(sorted((COMMON_FIRST_NAMES | COMMON_SURNAMES) - NAME_LIKE_WORDS))
        hit = np.asarray(pc.is_in(flat, value_set=known).to_numpy(zero_copy_only=False), bool)
        parents = pc.list_parent_indices(tokens).to_numpy(zero_copy_only=False)
        per_value = np.zeros(n, dtype=bool)
        per_value[parents[hit]] = True
        s = float(per_value.mean())
        if s >= 0.15:
            return (
                "name",
                min(1.0, s * 2),
                f"{s:.0%} of sampled values contain a common given name or surname",
            )
    return None


def classify_columns(table: pa.Table, sample_rows: int = 2000) -> dict[str, ColumnFlag]:
    """Flag the columns of ``table`` that identify students or hold sensitive facts (only those).

    Headers are matched against SIS/MIS naming habits; the values of ``sample_rows`` evenly spaced
    rows are tested against patterns and a list of common names. A column flagged by both gets high
    confidence; by one alone, less. Reasons name the header and the share of matching values only.
    """
    if table.num_rows > sample_rows:
        # evenly spaced rows: an export sorted by school or grade still shows all its kinds of values
        sample = table.take(pa.array(np.linspace(0, table.num_rows - 1, sample_rows).astype(np.int64)))
    else:
        sample = table
    flags: dict[str, ColumnFlag] = {}
    for idx, name in enumerate(table.column_names):
        header = _header_kind(name)
        column = sample.column(idx)
        values = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        value = _value_kind(pc.drop_null(values), values.type)
        flag = _combine(name, header, value)
        if flag is not None:
            flags[name] = flag
    return flags


# Value kinds that confirm a header kind (birth dates are dates; SSIDs are student IDs…).
_AGREES = {
    ("birth_date", "date"),
    ("ssid", "student_id"),
    ("student_id", "ssid"),
    ("student_id", "student_id"),
    ("english_learner", "english_learner"),
}


def _combine(
    column: str, header: tuple[str, float] | None, value: tuple[str, float, str] | None
) -> ColumnFlag | None:
    if header is None and value is None:
        return None
    if header is not None:
        h_kind, h_conf = header
        if value is not None:
            v_kind, share, what = value
            if v_kind == h_kind or (h_kind, v_kind) in _AGREES:
                conf = min(0.99, max(h_conf, 0.9) + 0.09 * share)
                return _flag(column, h_kind, conf, f'header "{column}" and {what}')
            if CATEGORY_OF[v_kind] == "identifier" and CATEGORY_OF[h_kind] != "identifier" and share >= 0.8:
                # the values are stronger evidence than a misleading header ("Contact" full of e-mails)
                return _flag(column, v_kind, 0.9, f'{what} (header "{column}" suggests {_DESCRIBE[h_kind]})')
        if h_kind == "free_text" and value is None:
            h_conf = 0.6  # "Reason", "Description": could be codes; the values did not look like prose
        return _flag(column, h_kind, h_conf, f'header "{column}" names {_DESCRIBE[h_kind]}')
    assert value is not None
    v_kind, share, what = value
    conf = 0.5 if v_kind == "date" else round(0.5 + 0.45 * share, 2)
    return _flag(column, v_kind, conf, f'{what}; the header "{column}" does not say so')


def _flag(column: str, kind: str, confidence: float, reason: str) -> ColumnFlag:
    return ColumnFlag(column, kind, CATEGORY_OF[kind], round(float(confidence), 2), reason)


# ------------------------------------------------------------- a flag in the run's warnings


def flag_category(flag: Any) -> str | None:
    return getattr(flag, "category", None)


_LOOKS = {
    "identifier": "looks identifying",
    "quasi_identifier": "looks like a quasi-identifier",
    "sensitive": "looks sensitive",
    "free_text": "holds free text",
}


def flag_warning(column: str, flag: Any, what: str) -> str:
    looks = _LOOKS.get(flag_category(flag) or "", "looks identifying")
    return f"column '{column}' {what} and {looks} ({getattr(flag, 'reason', '')})"
