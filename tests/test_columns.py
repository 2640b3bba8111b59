"""The column classifier: SIS/MIS headers, value-only evidence, and columns it must leave alone."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from deid._columns import ColumnFlag, classify_columns, normalize_header

N = 60


def _col(values: list, n: int = N) -> list:
    return [values[i % len(values)] for i in range(n)]


@pytest.mark.parametrize(
    ("header", "kind", "category"),
    [
        ("SSID", "ssid", "identifier"),
        ("State Student ID", "ssid", "identifier"),
        ("STU_ID", "student_id", "identifier"),
        ("Local ID", "student_id", "identifier"),
        ("Student Number", "student_id", "identifier"),
        ("DOB", "birth_date", "quasi_identifier"),
        ("STU_BIRTH_DT", "birth_date", "quasi_identifier"),
        ("Sex_Cd", "gender", "quasi_identifier"),
        ("GuardianEmail", "email", "identifier"),
        ("Home Phone", "phone", "identifier"),
        ("Mailing Address", "address", "identifier"),
        ("ZIP_CD", "zip", "quasi_identifier"),
        ("Social Security Number", "ssn", "identifier"),
        ("STU_FIRST_NM", "name", "identifier"),
        ("Parent/Guardian", "name", "identifier"),
        ("IEP", "iep", "sensitive"),
        ("SpEd Status", "iep", "sensitive"),
        ("504", "section_504", "sensitive"),
        ("Sec504", "section_504", "sensitive"),
        ("EL", "english_learner", "sensitive"),
        ("ELL", "english_learner", "sensitive"),
        ("LEP Flag", "english_learner", "sensitive"),
        ("FRPM", "frpm", "sensitive"),
        ("FRL", "frpm", "sensitive"),
        ("SED", "frpm", "sensitive"),
        ("Discipline", "discipline", "sensitive"),
        ("Suspension Days", "discipline", "sensitive"),
        ("Health Conditions", "health", "sensitive"),
        ("Medical Alert", "health", "sensitive"),
        ("McKinney-Vento Homeless", "homeless", "sensitive"),
        ("Foster Youth", "foster", "sensitive"),
        ("CALPADS ID", "ssid", "identifier"),  # the element library's synonyms count too
        ("SASID", "ssid", "identifier"),
        ("PIDM", "student_id", "identifier"),
        ("SB03", "birth_date", "quasi_identifier"),
        ("Socioeconomically Disadvantaged", "frpm", "sensitive"),
        ("Offense Count", "discipline", "sensitive"),
        ("Notes", "free_text", "free_text"),
        ("Comments", "free_text", "free_text"),
    ],
)
def test_sis_headers_are_flagged_with_kind_and_category(header, kind, category):
    # values that say nothing by themselves: the header alone decides
    flags = classify_columns(pa.table({header: _col(["Y", "N"])}))
    assert header in flags
    flag = flags[header]
    assert (flag.kind, flag.category) == (kind, category)
    assert 0 < flag.confidence <= 1
    assert f'"{header}"' in flag.reason


@pytest.mark.parametrize(
    "header",
    ["GPA", "Grade", "School Code", "School Name", "Course Name", "Credits Earned", "Attendance Rate",
     "CTE Pathway", "Term", "Last Updated", "Parent Education Level", "TOP_CD", "Units Attempted"],
)  # fmt: skip
def test_ordinary_columns_are_not_flagged(header):
    values = {
        "GPA": ["3.45", "2.10", "4.00", "3.01"],
        "Grade": ["09", "10", "11", "12", "KN"],
        "School Code": ["0123456", "0123457"],
        "School Name": ["Lincoln High", "Roosevelt Middle"],
        "Course Name": ["Algebra I", "English 9", "Biology"],
        "Term": ["2025FA", "2026SP"],
        "Last Updated": ["yes", "no"],
    }.get(header, ["12", "7", "30", "2.5"])
    assert classify_columns(pa.table({header: _col(values)})) == {}


def test_value_only_columns_are_flagged_from_their_values():
    table = pa.table(
        {
            "X1": _col([f"kid{i}@example.org" for i in range(7)]),
            "X2": _col(["123-45-6789", "234-56-7890", "345-67-8901"]),
            "X3": _col(["(626) 555-0123", "626-555-0199", "6265550142"]),
            "X4": [f"{i:010d}" for i in range(N)],
            "X4b": [f"{6265550100 + i * 7}" for i in range(N)],  # bare 10-digit phone numbers
            "X5": _col(["Maria Lopez", "Wei Chen", "Aaliyah Johnson", "José García", "Liam Murphy"]),
            "X6": _col(["Met with the student about schedule changes and college applications today."]),
            "X7": _col(["12 Oak St", "450 W Main Street", "9 Elm Ave Apt 4"]),
            "X8": _col(["EO", "EL", "RFEP", "IFEP"]),
            "X9": _col(["03/14/2009", "11/02/2010"]),
            "X10": [f"L{100000 + i * 7}" for i in range(N)],
            "X11": _col(["91770", "91776", "91801"]),
            "X12": pa.array(_col([dt.date(2009, 3, 14), dt.date(2010, 1, 2)]), pa.date32()),
        }
    )
    flags = classify_columns(table)
    kinds = {name: flags[name].kind for name in flags}
    assert kinds == {
        "X1": "email",
        "X2": "ssn",
        "X3": "phone",
        "X4": "ssid",
        "X4b": "phone",
        "X5": "name",
        "X6": "free_text",
        "X7": "address",
        "X8": "english_learner",
        "X9": "date",
        "X10": "student_id",
        "X11": "zip",
        "X12": "date",
    }
    assert flags["X1"].category == "identifier"
    assert "100% of sampled values look like e-mail addresses" in flags["X1"].reason
    assert 'the header "X1" does not say so' in flags["X1"].reason


def test_header_and_values_together_are_most_confident():
    emails = _col([f"parent{i}@example.org" for i in range(9)])
    flags = classify_columns(
        pa.table({"Guardian Email": emails, "X": emails, "Email Opt-in": _col(["Y", "N"])})
    )
    assert flags["Guardian Email"].confidence > flags["X"].confidence
    assert flags["Guardian Email"].confidence > flags["Email Opt-in"].confidence
    assert flags["Guardian Email"].reason == (
        'header "Guardian Email" and 100% of sampled values look like e-mail addresses'
    )


def test_values_beat_a_misleading_sensitive_header():
    flags = classify_columns(pa.table({"Health Contact": _col([f"nurse{i}@example.org" for i in range(5)])}))
    assert flags["Health Contact"].kind == "email"
    assert "suggests health information" in flags["Health Contact"].reason


def test_reasons_never_quote_values():
    secret = ["Xochitl Quetzalli", "Zbigniew Brzezinski", "Maria Lopez"]
    table = pa.table(
        {"Student": _col(secret), "SSN": _col(["123-45-6789"]), "Notes": _col(["Maria Lopez x" * 5])}
    )
    for flag in classify_columns(table).values():
        assert isinstance(flag, ColumnFlag)
        for value in [*secret, "123-45-6789", "Lopez"]:
            assert value not in flag.reason


def test_sampling_spans_the_whole_table_and_skips_nulls():
    # an export sorted so that the first rows are empty: the evenly spaced sample still sees the values
    table = pa.table(
        {"X1": [None] * 3000 + ["a@example.org"] * 3000, "Empty": pa.array([None] * 6000, pa.string())}
    )
    flags = classify_columns(table, sample_rows=100)
    assert set(flags) == {"X1"} and flags["X1"].kind == "email"
    assert classify_columns(pa.table({"DOB": pa.array([], pa.string())}))["DOB"].kind == "birth_date"


def test_normalize_header():
    assert normalize_header("STU_BIRTH_DT") == "stu birth dt"
    assert normalize_header("GuardianEmail") == "guardian email"
    assert normalize_header("Sec504") == "sec 504"
    assert normalize_header("Student #") == "student #"


def test_synthetic_k12_and_college_extracts():
    from deid.synth import generate

    k12 = classify_columns(generate("k12", 400, seed=1).table)
    expected = {
        "SSID": "ssid", "Local ID": "student_id", "First Name": "name", "Middle Name": "name",
        "Last Name": "name", "Birth Date": "birth_date", "Gender": "gender", "Address": "address",
        "ZIP": "zip", "Phone": "phone", "Guardian Name": "name", "Guardian Email": "email",
        "Student Email": "email", "EL Status": "english_learner", "IEP": "iep", "504 Plan": "section_504",
        "FRPM": "frpm", "Discipline Count": "discipline", "Counselor Notes": "free_text",
    }  # fmt: skip
    for column, kind in expected.items():
        assert k12[column].kind == kind, column
    for column in ("GPA", "Grade", "School Code", "Credits Earned", "Attendance Rate", "CTE Pathway"):
        assert column not in k12
    college = classify_columns(generate("college", 400, seed=1).table)
    assert {c: college[c].kind for c in ("STU_ID", "STU_BIRTH_DT", "SEX", "EMAIL_ADDR", "PHONE_NBR")} == {
        "STU_ID": "student_id",
        "STU_BIRTH_DT": "birth_date",
        "SEX": "gender",
        "EMAIL_ADDR": "email",
        "PHONE_NBR": "phone",
    }
    assert "UNITS_ATT" not in college and "CUM_GPA" not in college
