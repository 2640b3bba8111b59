"""The element library (deid/data/elements.json): complete, consistent, and usable by the engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deid._elements import (
    ELEMENT_TYPES,
    dictionary_elements,
    element_from_dict,
    element_library,
    elements_from_json,
    elements_markdown,
    load_elements,
    select_elements,
)
from deid._policy import policy_from_elements
from deid._recodes import norm_value
from deid.errors import InputError, PolicyError

ROOT = Path(__file__).resolve().parent.parent
LIB = element_library()

# The names the whole project uses (generator truth, the example agreement, the engine's tests).
PROJECT_NAMES = [
    "state_student_id",
    "local_student_id",
    "college_student_id",
    "first_name",
    "middle_name",
    "last_name",
    "birth_date",
    "sex",
    "hispanic_latino",
    "race",
    "street_address",
    "city",
    "zip",
    "phone",
    "email",
    "guardian_name",
    "guardian_email",
    "grade_level",
    "school_id",
    "enroll_date",
    "english_learner_status",
    "iep",
    "section_504",
    "economically_disadvantaged",
    "cte_pathway",
    "dual_enrollment",
    "credits_earned",
    "gpa",
    "attendance_rate",
    "discipline_incidents",
    "notes",
    "term",
    "units_attempted",
    "units_earned",
    "top_code",
    "award",
]
# The rest the issue lists.
ISSUE_NAMES = [
    "district_id",
    "college_id",
    "school_year",
    "course_id",
    "course_section",
    "grade_earned",
    "cte_concentrator",
    "cte_completer",
    "industry_credential",
    "postsecondary_enrollment",
]


def test_library_has_every_project_element_and_about_forty():
    assert set(PROJECT_NAMES) <= set(LIB)
    assert set(ISSUE_NAMES) <= set(LIB)
    assert 40 <= len(LIB) <= 60


def test_generator_truth_uses_library_names():
    from deid.synth import column_elements

    for kind in ("k12", "college"):
        assert set(column_elements(kind).values()) <= set(LIB)


def test_every_element_is_complete():
    for el in LIB.values():
        assert el.label and el.description, el.name
        assert el.type in ELEMENT_TYPES, el.name
        assert el.synonyms, el.name
        assert isinstance(el.ceds_exact, bool)
        if el.name != "notes":
            assert el.ceds, el.name
        if el.type == "code" and el.format not in (
            "school_code",
            "course",
            "pathway",
            "award",
            "top_code",
            "school_year",
            "term",
            "letter_grade",
        ):
            assert el.code_set, f"{el.name} is a code without a code set"


def test_default_treatments_form_a_valid_engine_policy():
    policy = policy_from_elements(list(LIB.values()))
    assert {r.source for r in policy.rules} == set(LIB)
    qis = set(policy.quasi_identifiers)
    assert {"birth_year", "sex", "race", "zip3"} <= qis
    assert policy.rule_for("first_name").treatment == "drop"
    assert policy.rule_for("notes").treatment == "redact_text"
    assert policy.rule_for("state_student_id").treatment == "token"


def test_california_code_sets():
    assert LIB["sex"].codes == {"M", "F", "X"}  # CALPADS has no N: nonbinary is X
    race = LIB["race"].codes
    assert {"100", "201", "208", "299", "301", "304", "399", "400", "600", "700"} <= race
    assert "500" not in race  # Hispanic is asked separately (hispanic_latino)
    assert LIB["english_learner_status"].codes >= {"EO", "IFEP", "EL", "RFEP", "TBD"}
    grades = LIB["grade_level"].codes
    assert {"TK", "KN", "01", "09", "12"} <= grades and "9" not in grades
    for flag in (
        "hispanic_latino",
        "iep",
        "section_504",
        "economically_disadvantaged",
        "dual_enrollment",
        "cte_concentrator",
        "cte_completer",
        "postsecondary_enrollment",
    ):
        assert LIB[flag].codes == {"Y", "N"}, flag


def test_aliases_never_point_to_two_codes():
    for el in LIB.values():
        seen: dict[str, str] = {}
        for code in el.code_set:
            for alias in (*code.aliases, code.code):
                key = norm_value(alias)
                assert seen.setdefault(key, code.code) == code.code, (el.name, alias)


def test_synonyms_are_unique_within_an_element():
    for el in LIB.values():
        lowered = [s.lower() for s in el.synonyms]
        assert len(lowered) == len(set(lowered)), el.name


def test_round_trip_and_load_from_file(tmp_path):
    again = elements_from_json({"elements": [el.to_dict() for el in LIB.values()]})
    assert [e.to_dict() for e in again] == [e.to_dict() for e in LIB.values()]
    path = tmp_path / "els.json"
    path.write_text(json.dumps([LIB["sex"].to_dict()]))
    assert load_elements(path)[0] == LIB["sex"]
    with pytest.raises(InputError, match="not valid JSON"):
        (tmp_path / "bad.json").write_text("{")
        load_elements(tmp_path / "bad.json")
    with pytest.raises(InputError, match="does not exist"):
        load_elements(tmp_path / "none.json")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "Bad Name"}, "invalid name"),
        ({"name": "x", "type": "blob"}, "unknown type"),
        ({"name": "x", "category": "secret"}, "unknown category"),
        ({"name": "x", "code_set": [3]}, "invalid code"),
    ],
)
def test_invalid_elements_are_refused(data, message):
    with pytest.raises(PolicyError, match=message):
        element_from_dict(data)


def test_duplicate_and_unknown_names():
    with pytest.raises(PolicyError, match="twice"):
        elements_from_json([{"name": "a"}, {"name": "a"}])
    with pytest.raises(PolicyError, match="no element called nope"):
        select_elements(["sex", "nope"])


def test_agreement_entries_gain_the_library_knowledge():
    doc = json.loads((ROOT / "docs" / "examples" / "agreement.json").read_text(encoding="utf-8"))
    els = {
        el.name: el
        for el in dictionary_elements(
            doc["elements"] + [{"name": "my_own", "type": "text", "description": "local"}]
        )
    }
    grade = els["grade_level"]
    assert grade.codes == {"09", "10", "11", "12"}  # the agreement's codes win
    assert "Grade" in grade.synonyms  # the library's synonyms stay, for mapping
    assert any("9th" in c.aliases for c in grade.code_set)
    assert els["hispanic_latino"].codes == {"Y", "N"}  # a boolean keeps the library's Y/N
    assert els["my_own"].type == "text" and els["my_own"].synonyms == ()


def test_docs_table_is_generated_from_the_library():
    assert (ROOT / "docs" / "elements.md").read_text(encoding="utf-8") == elements_markdown()


def test_library_modules_do_not_import_qt():
    code = (
        "import sys, deid._elements, deid._suggest, deid._apply_mapping, deid._validate, deid._header_row, "
        "agreements._profiles, agreements._codebook; "
        "sys.exit('PySide6' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_cli_elements(run_cli):
    code, out, _ = run_cli("elements")
    assert code == 0 and "birth_date" in out and "[F, M, X]" in out
    code, out, _ = run_cli("elements", "--json")
    assert code == 0
    assert [e["name"] for e in json.loads(out)["elements"]] == list(LIB)
