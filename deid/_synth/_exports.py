"""How two systems export the population: a K-12 SIS extract and a community-college MIS extract."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._synth import _notes
from deid._synth import _people as pp
from deid._synth import _tables as t

K12_COLUMNS: tuple[tuple[str, str], ...] = (
    ("SSID", "state_student_id"),
    ("Local ID", "local_student_id"),
    ("First Name", "first_name"),
    ("Middle Name", "middle_name"),
    ("Last Name", "last_name"),
    ("Birth Date", "birth_date"),
    ("Gender", "sex"),
    ("Hispanic", "hispanic_latino"),
    ("Race Code", "race"),
    ("Address", "street_address"),
    ("City", "city"),
    ("ZIP", "zip"),
    ("Phone", "phone"),
    ("Guardian Name", "guardian_name"),
    ("Guardian Email", "guardian_email"),
    ("Student Email", "email"),
    ("Grade", "grade_level"),
    ("School Code", "school_id"),
    ("Enroll Date", "enroll_date"),
    ("EL Status", "english_learner_status"),
    ("IEP", "iep"),
    ("504 Plan", "section_504"),
    ("FRPM", "economically_disadvantaged"),
    ("CTE Pathway", "cte_pathway"),
    ("Dual Enrollment", "dual_enrollment"),
    ("Credits Earned", "credits_earned"),
    ("GPA", "gpa"),
    ("Attendance Rate", "attendance_rate"),
    ("Discipline Count", "discipline_incidents"),
    ("Counselor Notes", "notes"),
)
COLLEGE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("STU_ID", "college_student_id"),
    ("SSID", "state_student_id"),
    ("STU_LAST_NM", "last_name"),
    ("STU_FIRST_NM", "first_name"),
    ("STU_MID_NM", "middle_name"),
    ("STU_BIRTH_DT", "birth_date"),
    ("SEX", "sex"),
    ("ETHNICITY", "race"),
    ("ZIP_CD", "zip"),
    ("EMAIL_ADDR", "email"),
    ("PHONE_NBR", "phone"),
    ("TERM_CD", "term"),
    ("UNITS_ATT", "units_attempted"),
    ("UNITS_ERN", "units_earned"),
    ("TOP_CD", "top_code"),
    ("AWARD_CD", "award"),
    ("CUM_GPA", "gpa"),
    ("DUAL_ENRL_FLG", "dual_enrollment"),
)
# --messy adds a second phone column under the same header, and two trailing columns with empty names.
MESSY_EXTRA = {"k12": ("Phone", "phone"), "college": ("PHONE_NBR", "phone")}
TRAILING_EMPTY_COLUMNS = 2

HIGH_SCHOOLS = ("1930049", "1931047", "0112607", "1933746", "0119586", "1936251", "3630587", "0109850")
HIGH_SCHOOL_WEIGHTS = (22, 18, 15, 12, 10, 9, 8, 6)
MIDDLE_SCHOOLS = ("6017497", "0106013", "6058236")
ELEMENTARY_SCHOOLS = ("6017489", "0104521", "6111413", "0132456")
CTE_PATHWAYS = (
    "110", "111", "112", "120", "121", "130", "131", "140", "141", "150", "151", "152", "160", "161",
    "170", "171", "173", "180", "181", "190", "191", "200", "201", "210", "211", "220", "221", "230",
    "040", "052", "098",
)  # fmt: skip
EL_CODES = ("EO", "IFEP", "EL", "RFEP", "TBD")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com")
STUDENT_EMAIL_DOMAIN = "@students.sgvusd.org"  # a fictional district
STAFF_EMAIL_DOMAIN = "@sgvusd.org"

# SEX in the college export: 1 female, 2 male, 3 nonbinary or unknown (documented in deid.synth).
COLLEGE_SEX = ("1", "2", "3")
# ETHNICITY in the college export: one letter, Hispanic taking precedence over race.
ETHNICITY_CODES = {
    "H": "Hispanic or Latino (any race)", "N": "American Indian or Alaska Native", "A": "Asian",
    "P": "Pacific Islander", "F": "Filipino", "B": "Black or African American", "W": "White",
    "T": "Two or more races", "X": "Unknown or declined",
}  # fmt: skip
TERMS_COLLEGE_ONLY = ("2023FA", "2024SP", "2024FA", "2025SP", "2025FA", "2026SP")
TOP_CODES = (
    "490100", "170100", "150100", "220100", "210500", "050200", "050500", "070700", "070200", "070800",
    "094800", "095300", "095600", "093400", "120100", "121000", "123010", "130500", "130600", "133000",
    "140200", "061400", "010100", "190500", "210550",
)  # fmt: skip
AWARD_CODES = ("A", "S", "Y", "Z", "E", "B", "L", "T")
# Noise applied to a college row of a student who is also in the K-12 export (bit flags in the truth).
NOISE_FLAGS = (
    "nickname", "typo_first", "typo_last", "accents_dropped", "surname_part", "surname_joiner",
    "middle_missing", "middle_initial", "birth_day_month_swapped", "sex_unknown", "zip_moved",
    "ssid_missing", "upper_case", "goes_by_middle_name",
)  # fmt: skip
_BIT = {name: 1 << i for i, name in enumerate(NOISE_FLAGS)}


# --- shared pieces -------------------------------------------------------------------------------


def load_tables() -> None:
    """Load the word lists (cached) so worker threads only read them."""
    t.first_names(), t.last_names(), t.places(), t.streets(), t.nickname_groups()


def names(people: pp.People, accents: np.ndarray, cp1252: bool) -> dict[str, pa.Array]:
    """First, middle, last (compound surnames joined), and the guardian's name."""
    first_t, last_t = t.first_names(), t.last_names()
    first = first_t.strings(people.first, accents, cp1252)
    has_middle = people.middle >= 0
    middle = pc.if_else(
        pa.array(has_middle), first_t.strings(np.maximum(people.middle, 0), accents, cp1252), ""
    )
    last1 = last_t.strings(people.last, accents, cp1252)
    last2 = last_t.strings(np.maximum(people.last2, 0), accents, cp1252)
    joiner = t.pick(("-", " "), people.joiner)
    last = pc.if_else(pa.array(people.last2 >= 0), t.join(last1, joiner, last2), last1)
    g_first = first_t.strings(people.g_first, accents, cp1252)
    g_last = pc.if_else(
        pa.array(people.g_last >= 0), last_t.strings(np.maximum(people.g_last, 0), accents, cp1252), last1
    )
    return {
        "first": first,
        "middle": middle,
        "last": last,
        "last1": last1,
        "last2": last2,
        "guardian": t.join(g_first, " ", g_last),
    }


def phone(people: pp.People) -> pa.Array:
    """The household phone as "(626) 555-0123"."""
    area = t.pick(pp.AREA_CODES, people.area)
    return t.join("(", area, ") ", t.digits(people.exch, 3), "-", t.digits(people.line, 4))


def random_phones(rng: np.random.Generator, n: int) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Other phone numbers: area code, exchange and line as text."""
    area = t.pick(pp.AREA_CODES, t.choice_index(rng, pp.AREA_WEIGHTS, n))
    return area, t.digits(rng.integers(200, 1000, n), 3), t.digits(rng.integers(0, 10000, n), 4)


def _stack_choice(options: list[pa.Array], which: np.ndarray) -> pa.Array:
    """Element-wise pick among equally long arrays."""
    n = len(which)
    return pa.concat_arrays(options).take(pa.array(which.astype(np.int64) * n + np.arange(n)))


# --- K-12 ------------------------------------------------------------------------------------------


def k12_block(seed: int, block: int, messy: bool) -> tuple[dict[str, pa.Array], dict[str, np.ndarray]]:
    """One block of the K-12 export: columns (by header) and planted note spans (block-relative rows)."""
    people = pp.people_block(seed, block, pp.K12_PEOPLE)
    rng = np.random.default_rng(np.random.SeedSequence([seed, pp.K12_EXPORT, block]))
    n = len(people)
    first_t, last_t = t.first_names(), t.last_names()
    nm = names(people, people.accents, cp1252=messy)
    group = people.group
    g = list(t.GROUPS)
    grade = people.grade.astype(np.int64)

    ssid = t.digits(pp.ssid_of(seed, people.key), 10)
    local_id = t.text(pp.local_id_of(seed, people.key))
    birth = t.mdy(people.birth)
    gender = t.pick(("F", "M", "X"), people.sex)
    hispanic = t.pick(("N", "Y"), people.hispanic.astype(np.int64))
    race = t.pick(pp.RACE_CODES, people.race)

    unit = pc.if_else(
        pa.array(people.unit_kind == 0),
        "",
        t.join(t.pick(("", " Apt ", " #", " Unit "), people.unit_kind), t.text(people.unit_no)),
    )
    address = t.join(
        t.text(people.house),
        " ",
        t.pick(pp.DIRECTIONS, people.direction),
        t.streets().take(pa.array(people.street)),
        " ",
        t.pick(pp.STREET_SUFFIXES, people.suffix),
        unit,
    )
    pl = t.places()
    city = pl.city.take(pa.array(people.place))
    zip_code = pl.zip.take(pa.array(people.place))
    home_phone = phone(people)

    g_first_email = first_t.email.take(pa.array(people.g_first))
    g_last_idx = np.where(people.g_last >= 0, people.g_last, people.last)
    g_last_email = last_t.email.take(pa.array(g_last_idx))
    g_num = t.text(people.g_email_n)
    g_local = _stack_choice(
        [
            t.join(g_first_email, ".", g_last_email, g_num),
            t.join(g_first_email, pc.utf8_slice_codeunits(g_last_email, 0, 1), g_num),
            t.join(pc.utf8_slice_codeunits(g_first_email, 0, 1), g_last_email, g_num),
            t.join(g_last_email, ".", g_first_email),
        ],
        people.g_email_style,
    )
    guardian_email = t.join(g_local, "@", t.pick(EMAIL_DOMAINS, people.g_email_domain))
    student_email = t.join(
        first_t.email.take(pa.array(people.first)),
        ".",
        last_t.email.take(pa.array(people.last)),
        t.digits(people.email_n, 2),
        STUDENT_EMAIL_DOMAIN,
    )

    grade_text = t.pick(pp.GRADES, grade)
    school = _stack_choice(
        [
            t.pick(HIGH_SCHOOLS, t.choice_index(rng, HIGH_SCHOOL_WEIGHTS, n)),
            t.pick(MIDDLE_SCHOOLS, rng.integers(0, len(MIDDLE_SCHOOLS), n)),
            t.pick(ELEMENTARY_SCHOOLS, rng.integers(0, len(ELEMENTARY_SCHOOLS), n)),
        ],
        np.select([grade >= 9, grade >= 7], [0, 1], 2),
    )
    # Entered this school in August of the entry year; some transferred in later.
    first_grade_here = np.select([grade >= 9, grade >= 7], [9, 7], 0)
    entry_year = 2025 - (grade - first_grade_here)
    aug = np.array([t.days_of(y, 8, 12) for y in range(2010, 2026)])
    enroll = aug[entry_year - 2010] + rng.integers(0, 10, n)
    transfer = rng.random(n) < 0.12
    enroll = np.where(transfer, enroll + rng.integers(20, 300, n), enroll)
    enroll_text = t.mdy(enroll)

    multilingual = np.isin(
        group,
        [
            g.index(x)
            for x in (
                "hispanic",
                "chinese",
                "vietnamese",
                "korean",
                "filipino",
                "indian",
                "armenian",
                "seasian",
            )
        ],
    )
    el = np.where(
        multilingual,
        t.choice_index(rng, [30, 10, 24, 35, 1], n),
        t.choice_index(rng, [86, 5, 4, 4, 1], n),
    )
    iep = rng.random(n) < 0.125
    plan504 = ~iep & (rng.random(n) < 0.04)
    frpm_p = np.full(n, 0.3)
    frpm_p[group == g.index("hispanic")] = 0.78
    frpm_p[group == g.index("black")] = 0.65
    frpm_p[np.isin(group, [g.index("vietnamese"), g.index("seasian"), g.index("pacific")])] = 0.6
    frpm = rng.random(n) < frpm_p
    has_pathway = (grade >= 9) & (rng.random(n) < 0.45)
    pathway = pc.if_else(
        pa.array(has_pathway), t.pick(CTE_PATHWAYS, t.choice_index(rng, np.ones(len(CTE_PATHWAYS)), n)), ""
    )
    yn = ("N", "Y")

    # Credits: about 60 a year in high school, less for students behind; in steps of 2.5.
    deficit = np.round(rng.gamma(0.8, 8.0, n) / 2.5) * 2.5
    credits = np.maximum(0.0, 60.0 * (grade - 8) - deficit)
    credits_text = pc.if_else(pa.array(grade >= 9), t.decimal(np.round(credits * 10), 1), "")
    gpa_text = pc.if_else(pa.array(grade >= 6), t.decimal(people.gpa_c, 2), "")
    absent = np.minimum(rng.gamma(1.3, 38.0, n), 1000.0)
    attendance = t.decimal(np.round(1000.0 - absent), 3)
    discipline = t.text(rng.poisson(0.28, n))

    # Note values.
    full = t.join(nm["first"], " ", nm["last"])
    teacher_group = t.choice_index(rng, t.GROUP_SHARE, n)
    lkeys = [t.LAST_NAME_GROUP.get(x, x) for x in g]
    teacher_idx = pp.group_pick(rng.random(n), lkeys, last_t.pools, teacher_group)
    teacher_name = last_t.folded.take(pa.array(teacher_idx))
    if messy:
        teacher_name = last_t.cp1252_folded.take(pa.array(teacher_idx))
    # Other students named in a note are earlier rows of the same block, so they are in the file
    # whatever --rows cuts off (row 0 of a block names itself; its spans are relabelled below).
    before = np.arange(n)
    other = (rng.random(n) * before).astype(np.int64)
    other_first = (rng.random(n) * before).astype(np.int64)
    area, exch, line = random_phones(rng, n)
    phone2 = _stack_choice(
        [
            t.join(area, "-", exch, "-", line),
            t.join(area, ".", exch, ".", line),
            t.join("(", area, ") ", exch, "-", line),
            t.join("(", area, ")", exch, "-", line),
        ],
        t.choice_index(rng, [45, 15, 30, 10], n),
    )
    staff_letter = t.pick(tuple("abcdefghijklmnoprstvw"), rng.integers(0, 21, n))
    staff_email = t.join(staff_letter, last_t.email.take(pa.array(teacher_idx)), STAFF_EMAIL_DOMAIN)
    ssn_area = rng.integers(1, 900, n)
    ssn_area = np.where(ssn_area == 666, 667, ssn_area)
    ssn = t.join(
        t.digits(ssn_area, 3), "-", t.digits(rng.integers(1, 100, n), 2), "-",
        t.digits(rng.integers(1, 10000, n), 4),
    )  # fmt: skip
    values = {
        _notes.FIRST: nm["first"],
        _notes.FULL: full,
        _notes.TEACHER: teacher_name,
        _notes.GUARDIAN: nm["guardian"],
        _notes.OTHER: full.take(pa.array(other)),
        _notes.OTHER_FIRST: nm["first"].take(pa.array(other_first)),
        _notes.PHONE: home_phone,
        _notes.PHONE2: phone2,
        _notes.EMAIL: guardian_email,
        _notes.SEMAIL: student_email,
        _notes.STAFF_EMAIL: staff_email,
        _notes.SSN: ssn,
        _notes.SSID: ssid,
        _notes.LOCAL_ID: local_id,
        _notes.LAST: nm["last"],
    }
    notes, spans = _notes.build_notes(rng, values, n, messy)
    first_row = spans["row"] == 0
    for was, now in ((_notes.OTHER, _notes.FULL), (_notes.OTHER_FIRST, _notes.FIRST)):
        spans["source"][first_row & (spans["source"] == was)] = now

    columns: dict[str, pa.Array] = {
        "SSID": ssid,
        "Local ID": local_id,
        "First Name": nm["first"],
        "Middle Name": nm["middle"],
        "Last Name": nm["last"],
        "Birth Date": birth,
        "Gender": gender,
        "Hispanic": hispanic,
        "Race Code": race,
        "Address": address,
        "City": city,
        "ZIP": zip_code,
        "Phone": home_phone,
        "Guardian Name": nm["guardian"],
        "Guardian Email": guardian_email,
        "Student Email": student_email,
        "Grade": grade_text,
        "School Code": school,
        "Enroll Date": enroll_text,
        "EL Status": t.pick(EL_CODES, el),
        "IEP": t.pick(yn, iep.astype(np.int64)),
        "504 Plan": t.pick(yn, plan504.astype(np.int64)),
        "FRPM": t.pick(yn, frpm.astype(np.int64)),
        "CTE Pathway": pathway,
        "Dual Enrollment": t.pick(yn, people.dual.astype(np.int64)),
        "Credits Earned": credits_text,
        "GPA": gpa_text,
        "Attendance Rate": attendance,
        "Discipline Count": discipline,
        "Counselor Notes": notes,
    }
    if messy:
        mrng = np.random.default_rng(np.random.SeedSequence([seed, pp.MESSY, block]))
        columns["Birth Date"] = t.messy_dates(mrng, people.birth, birth)
        columns["Enroll Date"] = t.messy_dates(mrng, enroll, enroll_text)
        area, exch, line = random_phones(mrng, n)
        columns["Phone "] = pc.if_else(  # renamed to a second "Phone" when the table is assembled
            pa.array(mrng.random(n) < 0.4), t.join("(", area, ") ", exch, "-", line), ""
        )
    return columns, spans


# --- college ---------------------------------------------------------------------------------------


def _typo(rng: np.random.Generator, s: str) -> str:
    """One-character edit: substitute, delete, insert, or swap two neighbours."""
    letters = "aeioulnrstmcdhy"
    for _ in range(8):
        if len(s) < 2:
            return s + letters[int(rng.integers(len(letters)))]
        i = int(rng.integers(1, len(s)))  # keep the first letter: typists rarely miss it
        op = int(rng.integers(4))
        if op == 0:
            c = letters[int(rng.integers(len(letters)))]
            c = c.upper() if s[i].isupper() else c
            out = s[:i] + c + s[i + 1 :]
        elif op == 1 and len(s) > 3:
            out = s[:i] + s[i + 1 :]
        elif op == 2:
            out = s[:i] + s[i - 1] + s[i:]
        else:
            j = min(i, len(s) - 2)
            out = s[:j] + s[j + 1] + s[j] + s[j + 2 :]
        if out != s and out.strip():
            return out
    return s


def college(seed: int, rows: int, messy: bool) -> tuple[dict[str, pa.Array], np.ndarray, np.ndarray]:
    """The college export: columns, person ids, noise bit flags.

    Its students are (a) the K-12 people among the first ``rows`` of the K-12 population (same seed)
    who are in grade 11 or 12 and either dual-enrolled or, for seniors, headed to the college; and
    (b) college-only people filling the remaining rows. Rows are shuffled.
    """
    shared = pp.people(seed, rows, pp.K12_PEOPLE, only_in_college=True)
    overlap = shared.key  # K-12 person ids
    n_only = rows - len(overlap)
    only = pp.people(seed, n_only, pp.COLLEGE_ONLY_PEOPLE)
    people = pp.People.concat([shared, only])
    n = rows
    is_k12 = np.arange(n) < len(overlap)
    person_id = np.concatenate([overlap, pp.COLLEGE_ONLY_BASE + np.arange(n_only)]).astype(np.int64)
    id_key = np.concatenate([overlap, pp.COLLEGE_ONLY_KEY + np.arange(n_only)]).astype(np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([seed, pp.COLLEGE_EXPORT, rows]))
    noise = np.zeros(n, dtype=np.int64)
    first_t = t.first_names()

    # Names: the college drops accents more often than the district does.
    accents = people.accents & (rng.random(n) < 0.45)
    noise |= np.where(is_k12 & people.accents & ~accents & _has_accents(people), _BIT["accents_dropped"], 0)
    nm = names(people, accents, cp1252=False)
    first, last, middle = nm["first"], nm["last"], nm["middle"]

    # Compound surnames: one half only, or the other joiner.
    compound = is_k12 & (people.last2 >= 0)
    u = rng.random(n)
    part = compound & (u < 0.5)
    second_half = rng.random(n) < 0.3
    half = pc.if_else(pa.array(second_half), nm["last2"], nm["last1"])
    last = pc.if_else(pa.array(part), half, last)
    rejoin = compound & (u >= 0.5) & (u < 0.75)
    other_joiner = t.pick(("-", " "), 1 - people.joiner.astype(np.int64))
    last = pc.if_else(pa.array(rejoin), t.join(nm["last1"], other_joiner, nm["last2"]), last)
    noise |= np.where(part, _BIT["surname_part"], 0) | np.where(rejoin, _BIT["surname_joiner"], 0)

    # Nicknames and other forms of the first name; typos. Few rows: edited one by one.
    groups = t.nickname_groups()
    nick_rows = np.flatnonzero(is_k12 & (rng.random(n) < 0.16))
    nick_pick = rng.random(len(nick_rows))
    edits: dict[int, str] = {}
    for r, p in zip(nick_rows.tolist(), nick_pick.tolist(), strict=True):
        alts = groups.get(first_t.names[people.first[r]])
        if alts:
            edits[r] = alts[int(p * len(alts))]
            noise[r] |= _BIT["nickname"]
    first = _replace_rows(first, edits)
    for name, flag, rate in (("first", "typo_first", 0.035), ("last", "typo_last", 0.035)):
        rows_ = np.flatnonzero(is_k12 & (rng.random(n) < rate))
        column = first if name == "first" else last
        current = column.take(pa.array(rows_)).to_pylist()
        edits = {int(r): _typo(rng, v) for r, v in zip(rows_, current, strict=True)}
        noise[rows_] |= _BIT[flag]
        if name == "first":
            first = _replace_rows(first, edits)
        else:
            last = _replace_rows(last, edits)
    had_middle = people.middle >= 0
    # Some students go by their middle name: the college has it as the first name.
    by_middle = is_k12 & had_middle & (noise == 0) & (rng.random(n) < 0.025)
    by_middle_a = pa.array(by_middle)
    first, middle = pc.if_else(by_middle_a, middle, first), pc.if_else(by_middle_a, first, middle)
    noise |= np.where(by_middle, _BIT["goes_by_middle_name"], 0)
    u = rng.random(n)
    drop_middle = is_k12 & had_middle & ~by_middle & (u < 0.45)
    initial = is_k12 & had_middle & ~by_middle & (u >= 0.45) & (u < 0.55)
    middle = pc.if_else(pa.array(drop_middle), "", middle)
    middle = pc.if_else(pa.array(initial), pc.utf8_slice_codeunits(middle, 0, 1), middle)
    noise |= np.where(drop_middle, _BIT["middle_missing"], 0) | np.where(initial, _BIT["middle_initial"], 0)
    upper = rng.random(n) < 0.35  # older records were keyed in capitals
    noise |= np.where(is_k12 & upper, _BIT["upper_case"], 0)

    def finish(arr: pa.Array) -> pa.Array:
        return pc.if_else(pa.array(upper), pc.utf8_upper(arr), arr)

    # Birth date: now and then day and month swapped.
    y, m, d = t.ymd(people.birth)
    swap = is_k12 & (d <= 12) & (d != m) & (rng.random(n) < 0.03)
    birth = np.where(swap, t.days_from_ymd(y, d, m), people.birth)
    noise |= np.where(swap, _BIT["birth_day_month_swapped"], 0)
    birth_text = t.yyyymmdd(birth)

    sex_unknown = rng.random(n) < 0.005
    sex = np.where(sex_unknown, 2, people.sex)
    noise |= np.where(is_k12 & sex_unknown & (people.sex != 2), _BIT["sex_unknown"], 0)

    race = np.asarray(pp.RACE_CODES, dtype=object)[people.race]
    letter = np.select(
        [people.hispanic, race == "100", np.char.startswith(race.astype(str), "2"),
         np.char.startswith(race.astype(str), "3"), race == "400", race == "600", race == "700"],
        ["H", "N", "A", "P", "F", "B", "W"],
        "X",
    )  # fmt: skip
    u = rng.random(n)
    letter = np.where(u < 0.03, "T", np.where(u < 0.05, "X", letter))

    pl = t.places()
    moved = rng.random(n) < 0.15
    place = np.where(moved, pl.pick(rng.random(n)), people.place)
    noise |= np.where(is_k12 & moved & (place != people.place), _BIT["zip_moved"], 0)
    zip_text = pl.zip.take(pa.array(place))
    plus4 = rng.random(n) < 0.1
    zip_text = pc.if_else(
        pa.array(plus4), t.join(zip_text, "-", t.digits(rng.integers(1, 10000, n), 4)), zip_text
    )

    ssid_present = rng.random(n) < np.where(is_k12, 0.6, 0.45)
    noise |= np.where(is_k12 & ~ssid_present, _BIT["ssid_missing"], 0)
    ssid = pc.if_else(pa.array(ssid_present), t.digits(pp.ssid_of(seed, id_key), 10), "")
    stu_id = t.join("A", t.digits(pp.college_id_of(seed, id_key), 8))

    first_email = first_t.email.take(pa.array(people.first))
    last_email = t.last_names().email.take(pa.array(people.last))
    year2 = t.digits(y % 100, 2)
    email = t.join(
        _stack_choice(
            [
                t.join(first_email, ".", last_email, year2),
                t.join(first_email, last_email, t.text(rng.integers(1, 1000, n))),
                t.join(pc.utf8_slice_codeunits(first_email, 0, 1), last_email, year2),
            ],
            t.choice_index(rng, [50, 30, 20], n),
        ),
        "@",
        t.pick(EMAIL_DOMAINS[:5], t.choice_index(rng, [55, 15, 10, 15, 5], n)),
    )
    home = t.join(t.pick(pp.AREA_CODES, people.area), t.digits(people.exch, 3), t.digits(people.line, 4))
    area, exch, line = random_phones(rng, n)
    own = t.join(area, exch, line)
    phone_digits = pc.if_else(pa.array(is_k12 & (rng.random(n) < 0.5)), home, own)
    dashed = rng.random(n) < 0.2

    def piece(a: int, b: int) -> pa.Array:
        return pc.utf8_slice_codeunits(phone_digits, a, b)

    phone_text = pc.if_else(
        pa.array(dashed), t.join(piece(0, 3), "-", piece(3, 6), "-", piece(6, 10)), phone_digits
    )

    dual = np.where(is_k12, people.dual, (pp.REFERENCE_DAYS - people.birth) < 18 * 365.25)
    term = np.where(
        is_k12,
        np.where(dual, np.where(rng.random(n) < 0.55, 0, 1), np.where(rng.random(n) < 0.3, 2, 3)),
        4 + t.choice_index(rng, [8, 10, 14, 16, 24, 28], n),
    )
    term_text = t.pick(("2025FA", "2026SP", "2026SU", "2026FA", *TERMS_COLLEGE_ONLY), term)
    units_dual = np.array([3.0, 4.0, 5.0, 6.0, 7.0, 8.0])[t.choice_index(rng, [30, 25, 10, 20, 5, 10], n)]
    units_reg = np.array([3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12.5, 13, 14, 15, 16, 17, 18])[
        t.choice_index(rng, [8, 6, 4, 8, 4, 5, 6, 5, 3, 12, 2, 6, 6, 9, 7, 3, 2], n)
    ]
    units_att = np.where(dual, units_dual, units_reg)
    u = rng.random(n)
    units_ern = np.where(u < 0.75, units_att, np.where(u < 0.9, np.maximum(0.0, units_att - 3.0), 0.0))
    top = t.pick(TOP_CODES, t.choice_index(rng, np.linspace(3.0, 1.0, len(TOP_CODES)), n))
    older = (pp.REFERENCE_DAYS - people.birth) > 20 * 365.25
    awarded = ~is_k12 & (rng.random(n) < np.where(older, 0.16, 0.03))
    award = pc.if_else(
        pa.array(awarded), t.pick(AWARD_CODES, t.choice_index(rng, [14, 8, 12, 8, 10, 6, 4, 2], n)), ""
    )
    gpa = np.where(
        is_k12,
        np.clip(people.gpa_c / 100.0 + rng.normal(-0.1, 0.35, n), 0.0, 4.0),
        np.clip(rng.normal(2.8, 0.8, n), 0.0, 4.0),
    )
    gpa_text = pc.if_else(pa.array(rng.random(n) < 0.04), "", t.decimal(np.round(gpa * 1000), 3))

    columns: dict[str, pa.Array] = {
        "STU_ID": stu_id,
        "SSID": ssid,
        "STU_LAST_NM": finish(last),
        "STU_FIRST_NM": finish(first),
        "STU_MID_NM": finish(middle),
        "STU_BIRTH_DT": birth_text,
        "SEX": t.pick(COLLEGE_SEX, sex),
        "ETHNICITY": pa.array(letter.astype(str), pa.string()),
        "ZIP_CD": zip_text,
        "EMAIL_ADDR": email,
        "PHONE_NBR": phone_text,
        "TERM_CD": term_text,
        "UNITS_ATT": t.decimal(np.round(units_att * 10), 1),
        "UNITS_ERN": t.decimal(np.round(units_ern * 10), 1),
        "TOP_CD": top,
        "AWARD_CD": award,
        "CUM_GPA": gpa_text,
        "DUAL_ENRL_FLG": t.pick(("N", "Y"), dual.astype(np.int64)),
    }
    if messy:
        mrng = np.random.default_rng(np.random.SeedSequence([seed, pp.MESSY, rows]))
        columns["STU_BIRTH_DT"] = t.messy_dates(mrng, birth, birth_text)
        area, exch, line = random_phones(mrng, n)
        columns["PHONE_NBR "] = pc.if_else(pa.array(mrng.random(n) < 0.35), t.join(area, exch, line), "")

    order = rng.permutation(n)
    order_a = pa.array(order)
    return {k: v.take(order_a) for k, v in columns.items()}, person_id[order], noise[order]


def _replace_rows(arr: pa.Array, edits: dict[int, str]) -> pa.Array:
    """``arr`` with the values at the given rows replaced."""
    if not edits:
        return arr
    mask = np.zeros(len(arr), dtype=bool)
    rows = np.fromiter(edits, dtype=np.int64, count=len(edits))
    mask[rows] = True
    order = np.sort(rows)  # replace_with_mask takes replacements in row order
    return pc.replace_with_mask(arr, pa.array(mask), pa.array([edits[int(r)] for r in order], pa.string()))


def _has_accents(people: pp.People) -> np.ndarray:
    """Whether any of a person's names has a letter that folding changes."""
    first_t, last_t = t.first_names(), t.last_names()
    f = np.array([t.fold(x) != x for x in first_t.names])
    la = np.array([t.fold(x) != x for x in last_t.names])
    out = f[people.first] | la[people.last] | (la[np.maximum(people.last2, 0)] & (people.last2 >= 0))
    return out | (f[np.maximum(people.middle, 0)] & (people.middle >= 0))
