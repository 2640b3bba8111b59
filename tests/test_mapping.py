"""Column mapping (issue 5): suggestions measured against the generator's truth, recodes, one-to-one
assignment, validation, apply_mapping lining exports up, and the `pathshare map` command."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from deid import (
    MappingProfile,
    apply_mapping,
    dictionary_elements,
    element_library,
    match_profile,
    policy_from_elements,
    suggest_mapping,
    suggest_recodes,
    validate,
)
from deid._header_match import header_tokens
from deid._recodes import apply_recodes
from deid.errors import InputError, PolicyError
from deid.synth import generate

SEED = 11
ROWS = 300
LIB = element_library()


@pytest.fixture(scope="module")
def exports():
    """Both synthetic exports of one population (same seed), small."""
    return {kind: generate(kind, ROWS, seed=SEED) for kind in ("k12", "college")}


@pytest.fixture(scope="module")
def dictionary(exports):
    """One agreement dictionary covering both exports' elements (as an agreement lists them)."""
    names: list[str] = []
    for result in exports.values():
        for element in result.truth.column_elements().values():
            if element not in names:
                names.append(element)
    return dictionary_elements([{"name": n} for n in names])


def accuracy(table: pa.Table, truth: dict[str, str], elements) -> tuple[float, list[str]]:
    suggestions = suggest_mapping(table, elements)
    wrong = [
        f"{s.column}->{s.element} (truth {truth[s.column]})"
        for s in suggestions
        if s.element != truth[s.column]
    ]
    return 1 - len(wrong) / len(suggestions), wrong


@pytest.mark.parametrize("kind", ["k12", "college"])
def test_suggestions_alone_get_at_least_90_percent_of_columns_right(exports, dictionary, kind):
    result = exports[kind]
    truth = result.truth.column_elements()
    assert set(truth) == set(result.table.column_names)
    acc, wrong = accuracy(result.table, truth, dictionary)
    print(
        f"\n{kind}: {acc:.1%} of {len(truth)} columns right against the agreement dictionary; wrong: {wrong}"
    )
    assert acc >= 0.9, wrong
    # Against the whole library (46 elements, more chances to go wrong) too.
    acc_lib, wrong_lib = accuracy(result.table, truth, list(LIB.values()))
    print(f"{kind}: {acc_lib:.1%} against the whole element library; wrong: {wrong_lib}")
    assert acc_lib >= 0.9, wrong_lib


def test_messy_exports_still_map(dictionary):
    for kind in ("k12", "college"):
        result = generate(kind, 120, seed=SEED, messy=True)
        truth = result.truth.column_elements()
        # The messy layout repeats a header and adds unnamed columns: map the first of each name.
        first = {}
        for i, name in enumerate(result.table.column_names):
            if name in truth and name not in first:
                first[name] = i
        table = result.table.select(list(first.values()))
        acc, wrong = accuracy(table, truth, dictionary)
        assert acc >= 0.9, (kind, wrong)


def _mapped(result, dictionary) -> pa.Table:
    profile = MappingProfile.from_suggestions("auto", suggest_mapping(result.table, dictionary))
    return apply_mapping(result.table, profile, dictionary, fill_missing=True)


def test_both_exports_line_up_after_apply_mapping(exports, dictionary):
    k12 = _mapped(exports["k12"], dictionary)
    college = _mapped(exports["college"], dictionary)
    assert k12.column_names == college.column_names == [el.name for el in dictionary]
    for el in dictionary:
        for name, table in (("k12", k12), ("college", college)):
            values = {v for v in table.column(el.name).to_pylist() if v is not None}
            if el.code_set:
                assert values <= el.codes, (name, el.name, values - el.codes)
            if el.type == "date":
                assert all(dt.date.fromisoformat(v) for v in values), (name, el.name)
    # The same facts under different codes come out the same: MIS SEX 1/2/3 and K-12 M/F/X.
    assert set(college.column("sex").to_pylist()) <= {"F", "M", "X"}
    assert {"F", "M"} <= set(college.column("sex").to_pylist())
    # The college's one-letter combined ethnicity gives both race codes and a derived Hispanic flag.
    hisp = college.column("hispanic_latino").to_pylist()
    assert {"Y", "N"} <= set(hisp)
    eth = exports["college"].table.column("ETHNICITY").to_pylist()
    assert all(h == "Y" for h, e in zip(hisp, eth, strict=True) if e == "H")
    assert all(r in ("UN",) for r, e in zip(college.column("race").to_pylist(), eth, strict=True) if e == "H")


def test_deidentified_outputs_have_identical_columns_and_code_sets(exports, dictionary):
    from deid import Crosswalk, deidentify

    treatments = {el.name: dict(el.treatment) for el in dictionary}
    # Small test files: a k of 2 keeps most rows; what matters here is the shape of the outputs.
    policy = policy_from_elements(dictionary, treatments=treatments, k=2)
    outs = {}
    for kind, result in exports.items():
        mapped = _mapped(result, dictionary)
        out, report = deidentify(
            mapped, policy, secret=b"s" * 32, crosswalk=Crosswalk(), reference_date=dt.date(2026, 6, 30)
        )
        outs[kind] = out
        assert report.rows_in == ROWS
    assert outs["k12"].column_names == outs["college"].column_names
    assert "first_name" not in outs["k12"].column_names  # dropped by the element's treatment
    for name in ("sex", "hispanic_latino", "dual_enrollment"):
        codes = LIB[name].codes
        for kind, out in outs.items():
            values = {v for v in out.column(name).to_pylist() if v is not None}
            assert values and values <= codes, (kind, name, values)


def test_headers_the_generator_never_produced_get_sensible_suggestions():
    n = 60
    table = pa.table(
        {
            "Stu_SSID": [f"{1000000000 + 7919 * i}" for i in range(n)],
            "DOB": [f"2009-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(n)],
            "Sex_Cd": [["Male", "Female", "Nonbinary"][i % 3] for i in range(n)],
            "Ethnicity": [["Yes", "No"][i % 2] for i in range(n)],
            "RaceDesc": [["White", "Filipino", "Black", "Hmong"][i % 4] for i in range(n)],
            "Gr": [["9", "10", "11", "12"][i % 4] for i in range(n)],
            "SchCode": [["101", "102", "103"][i % 3] for i in range(n)],
            "Lang Flu": [["EO", "EL", "RFEP"][i % 3] for i in range(n)],
            "SpEd": [["TRUE", "FALSE"][i % 2] for i in range(n)],
            "Zip5": [f"{93600 + i}" for i in range(n)],
            "Tel": [f"559{2000000 + 37 * i}" for i in range(n)],
            "Att_Pct": [f"{70 + (i * 7) % 30}.5" for i in range(n)],
            "Col_X": [f"kid{i}@mail.example" for i in range(n)],
            "Mystery": [str(i % 10) for i in range(n)],
        }
    )
    got = {s.column: s for s in suggest_mapping(table)}
    expected = {
        "Stu_SSID": "state_student_id",
        "DOB": "birth_date",
        "Sex_Cd": "sex",
        "Ethnicity": "hispanic_latino",
        "RaceDesc": "race",
        "Gr": "grade_level",
        "SchCode": "school_id",
        "Lang Flu": "english_learner_status",
        "SpEd": "iep",
        "Zip5": "zip",
        "Tel": "phone",
        "Att_Pct": "attendance_rate",
    }
    for col, element in expected.items():
        assert got[col].element == element, (col, got[col].candidates)
        assert got[col].candidates[0].reasons  # explained
    assert got["Col_X"].element in ("email", "guardian_email")  # values alone: an e-mail column
    assert got["Mystery"].element is None  # nothing fits well enough: left unmapped (dropped)
    assert got["Sex_Cd"].recodes == {"Male": "M", "Female": "F", "Nonbinary": "X"}
    assert got["Gr"].recodes == {"9": "09"}
    assert got["RaceDesc"].recodes == {"White": "700", "Filipino": "400", "Black": "600", "Hmong": "208"}
    assert got["SpEd"].recodes == {"TRUE": "Y", "FALSE": "N"}
    # Reasons and scores never carry cell values.
    text = json.dumps([s.to_dict()["candidates"] for s in got.values()])
    assert "1000000000" not in text and "kid0@" not in text


def test_header_normalization():
    assert header_tokens("STU_BIRTH_DT") == ("student", "birth", "date")
    assert header_tokens("SchCode") == ("school", "code")
    assert header_tokens("studentEMail") == ("student", "e", "mail") or header_tokens("E-mail") == ("email",)
    assert header_tokens("UNITS_ERN") == ("units", "earned")


def test_assignment_is_one_to_one():
    n = 40
    table = pa.table(
        {
            "DOB": [f"2008-01-{1 + i % 28:02d}" for i in range(n)],
            "Birth Date": [f"01/{1 + i % 28:02d}/2008" for i in range(n)],
            "Gender": [["M", "F"][i % 2] for i in range(n)],
            "Sex": [["M", "F"][i % 2] for i in range(n)],
        }
    )
    sugg = suggest_mapping(table)
    chosen = [s.element for s in sugg if s.element]
    assert len(chosen) == len(set(chosen))
    assert chosen.count("birth_date") == 1 and chosen.count("sex") == 1


@pytest.mark.parametrize(
    ("element", "values", "expected"),
    [
        (
            "sex",
            ["Male", "male", "M", "Female", "f", "Non-binary"],
            {"Male": "M", "male": "M", "Female": "F", "f": "F", "Non-binary": "X"},
        ),
        ("sex", ["1", "2", "3"], {"1": "F", "2": "M", "3": "X"}),  # a local convention (to confirm)
        (
            "iep",
            ["Yes", "No", "True", "False", "1", "0", "Y"],
            {"Yes": "Y", "No": "N", "True": "Y", "False": "N", "1": "Y", "0": "N"},
        ),
        (
            "grade_level",
            ["9", "09", "Grade 10", "11th", "K", "TK", "12", "10.0"],
            {"9": "09", "Grade 10": "10", "11th": "11", "K": "KN", "10.0": "10"},
        ),
        (
            "race",
            ["White", "Black or African American", "Asian", "Two or more races", "700"],
            {"White": "700", "Black or African American": "600", "Asian": "299", "Two or more races": "MR"},
        ),
        (
            "english_learner_status",
            ["English Only", "Reclassified", "EL"],
            {"English Only": "EO", "Reclassified": "RFEP"},
        ),
    ],
)
def test_suggest_recodes(element, values, expected):
    assert suggest_recodes(values, LIB[element]) == expected


def test_apply_recodes_is_vectorized_over_chunks():
    col = pa.chunked_array([["Male", "Female", None], ["M", " Male ", "unknown-value"]])
    out = apply_recodes(col, {"Male": "M", "Female": "F"})
    assert out.to_pylist() == ["M", "F", None, "M", "M", "unknown-value"]


def test_validation_counts_and_rows_without_values():
    table = pa.table(
        {
            "SSID": ["1111111111", "2222222222", "1111111111", "3333333333", "1111111111"],
            "Gender": ["M", "Q", "F", "Zed", "F"],
            "DOB": ["01/02/2009", "13/45/2009", "01/02/2099", "01/02/1850", "03/04/2010"],
            "GPA": ["3.2", "abc", "7.5", "2.0", "1.0"],
        }
    )
    mapping = {"SSID": "state_student_id", "Gender": "sex", "DOB": "birth_date", "GPA": "gpa"}
    findings = validate(
        table,
        mapping,
        [LIB[n] for n in ("state_student_id", "sex", "birth_date", "gpa", "grade_level")],
        today=dt.date(2026, 6, 30),
    )
    by_kind = {f.kind: f for f in findings}
    assert by_kind["unmapped_required"].element == "grade_level"
    assert (by_kind["outside_code_set"].count, by_kind["outside_code_set"].first_rows) == (2, (2, 4))
    assert (by_kind["bad_date"].count, by_kind["bad_date"].first_rows) == (1, (2,))
    assert (by_kind["future_date"].count, by_kind["future_date"].first_rows) == (1, (3,))
    assert (by_kind["age_out_of_range"].count, by_kind["age_out_of_range"].first_rows) == (1, (4,))
    assert (by_kind["duplicate_id"].count, by_kind["duplicate_id"].first_rows) == (2, (3, 5))
    assert by_kind["bad_number"].first_rows == (2,)
    assert by_kind["out_of_range"].first_rows == (3,)
    messages = " ".join(f.message for f in findings)
    for value in ("1111111111", "Zed", "13/45/2009", "abc", "7.5"):
        assert value not in messages


def test_duplicates_are_per_term_when_a_term_is_mapped():
    table = pa.table(
        {"STU_ID": ["A1", "A1", "A2", "A1"], "TERM_CD": ["2024FA", "2025SP", "2024FA", "2024FA"]}
    )
    findings = validate(
        table, {"STU_ID": "college_student_id", "TERM_CD": "term"}, [LIB["college_student_id"], LIB["term"]]
    )
    dup = [f for f in findings if f.kind == "duplicate_id"]
    assert len(dup) == 1 and dup[0].count == 1 and dup[0].first_rows == (4,)


def test_mapping_errors_name_the_column():
    table = pa.table({"A": ["1"], "B": ["2"]})
    with pytest.raises(InputError, match="'Z'"):
        apply_mapping(table, {"Z": "sex"})
    with pytest.raises(PolicyError, match="more than one column"):
        apply_mapping(table, {"A": "sex", "B": "sex"})


def test_match_profile_reuses_a_profile_for_the_same_headers():
    aeries = MappingProfile(
        "Aeries export",
        {"Stu ID": "local_student_id", "Birthdate": "birth_date", "Notes": None},
        source_system="Aeries",
    )
    mis = MappingProfile("Colleague MIS", {"STU_ID": "college_student_id", "SEX": "sex"})
    assert match_profile(["birthdate", "STU_ID", "notes"], [mis, aeries]) is aeries  # order/case/separators
    assert match_profile(["SEX", "STU_ID"], [aeries, mis]) is mis
    assert match_profile(["Something", "Else"], [aeries, mis]) is None
    assert match_profile(["STU_ID"], [mis]) is None  # a mapped column is missing


def test_profile_json_round_trip_and_refusals():
    prof = MappingProfile(
        "MIS",
        {"SEX": "sex", "X": None},
        recodes={"SEX": {"1": "F"}},
        date_formats={"DOB": "%Y%m%d"},
        derived={"hispanic_latino": {"from": "ETH", "values": {"H": "Y"}}},
    )
    again = MappingProfile.from_dict(json.loads(prof.to_json()))
    assert again == prof
    with pytest.raises(PolicyError, match="not a PathShare mapping profile"):
        MappingProfile.from_dict({"name": "x"})
    with pytest.raises(PolicyError, match="more than one column to sex"):
        MappingProfile.from_dict(
            {"pathshare_mapping_profile": 1, "name": "x", "columns": {"a": "sex", "b": "sex"}}
        )


def test_policy_from_agreement_treatments():
    els = [LIB["state_student_id"], LIB["birth_date"], LIB["first_name"], LIB["sex"]]
    treatments = {  # the shape of Agreement.element_treatments()
        "state_student_id": {
            "treatment": "record_code",
            "params": {},
            "as": "student_code",
            "quasi_identifier": False,
        },
        "birth_date": {
            "treatment": "generalize_date",
            "params": {"to": "year"},
            "as": "birth_year",
            "quasi_identifier": True,
        },
        "first_name": {"treatment": "drop", "params": {}, "as": None, "quasi_identifier": False},
    }
    policy = policy_from_elements(els, treatments=treatments, k=7)
    doc = policy.to_dict()
    assert doc["k"] == 7 and doc["drop_unlisted"] is True
    assert doc["columns"]["state_student_id"] == {"treatment": "record_code", "as": "student_code"}
    assert doc["columns"]["birth_date"] == {
        "treatment": "generalize_date",
        "as": "birth_year",
        "quasi_identifier": True,
        "to": "year",
    }
    assert doc["columns"]["sex"] == {"treatment": "keep", "quasi_identifier": True}  # library default
    assert policy.quasi_identifiers == ["birth_year", "sex"]


# ------------------------------------------------------------------------------------------ CLI


def test_cli_map_json_shape(run_cli, exports, tmp_path):
    from deid.synth import write_synth

    path = tmp_path / "college.csv"
    write_synth(exports["college"], path)
    code, out, err = run_cli("map", path, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["rows"] == ROWS and doc["profile"] is None
    truth = exports["college"].truth.column_elements()
    cols = {c["column"]: c for c in doc["columns"]}
    assert set(cols) == set(truth)
    right = sum(cols[c]["element"] == e for c, e in truth.items())
    assert right / len(truth) >= 0.9
    assert cols["SEX"]["recodes"] == {"1": "F", "2": "M", "3": "X"}
    assert "Confirm" in cols["SEX"]["note"]  # numeric sex codes are a convention, not a standard
    assert cols["ETHNICITY"]["derives"]["hispanic_latino"]["H"] == "Y"
    assert cols["STU_BIRTH_DT"]["date_format"] == "%Y%m%d"
    top = cols["SEX"]["candidates"][0]
    assert set(top) == {"element", "score", "header_score", "value_score", "reasons"}
    assert isinstance(doc["validation"], list) and "unmapped_elements" in doc


def test_cli_map_human_output(run_cli, exports, tmp_path):
    from deid.synth import write_synth

    path = tmp_path / "district.csv"
    write_synth(exports["k12"], path)
    code, out, _ = run_cli("map", path)
    assert code == 0
    assert "Birth Date" in out and "birth_date" in out
    assert "Validation: no problems found." in out or "Before de-identifying:" in out


def test_cli_map_reads_a_repeated_column_as_prepare_does(run_cli, tmp_path):
    """A messy export with two different "Phone" columns maps (as NAME_2, the way prepare and the app
    read it, so a saved profile matches), and the repairs are shown rather than the file refused."""
    path = tmp_path / "messy.csv"
    code, _, err = run_cli("synth", "--kind", "k12", "--rows", "200", "--seed", "3", "--messy", "--out", path)
    assert code == 0, err
    assert path.read_bytes().splitlines()[0].split(b",").count(b"Phone") == 2  # messy: Windows-1252
    code, out, err = run_cli("map", path)
    assert code == 0, err
    assert "Read with a repair: the second 'Phone' column" in out and "read as 'Phone_2'" in out
    code, out, err = run_cli("map", path, "--json")
    doc = json.loads(out)
    assert "Phone_2" in {c["column"] for c in doc["columns"]}
    assert any("Phone_2" in r for r in doc["repairs"])


def test_cli_map_unreadable_input(run_cli, tmp_path):
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"")
    code, out, err = run_cli("map", bad)
    assert code == 1 and out == ""
    assert err.startswith("pathshare: ") and "broken.csv" in err and "Traceback" not in err
    code, _, err = run_cli("map", tmp_path / "missing.csv")
    assert code == 1 and "missing.csv" in err


def test_cli_map_with_an_elements_file(run_cli, exports, tmp_path):
    from deid.synth import write_synth

    path = tmp_path / "k12.csv"
    write_synth(exports["k12"], path)
    els = tmp_path / "dict.json"
    els.write_text(json.dumps({"elements": [LIB["sex"].to_dict(), LIB["birth_date"].to_dict()]}))
    code, out, err = run_cli("map", path, "--elements", els, "--json")
    assert code == 0, err
    doc = json.loads(out)
    mapped = {c["column"]: c["element"] for c in doc["columns"] if c["element"]}
    assert mapped == {"Gender": "sex", "Birth Date": "birth_date"}


def test_messy_exports_validate_clean_and_parse_every_date():
    for kind, date_col in (("k12", "Birth Date"), ("college", "STU_BIRTH_DT")):
        result = generate(kind, 200, seed=4, messy=True)
        truth = result.truth.column_elements()
        first: dict[str, int] = {}
        for i, name in enumerate(result.table.column_names):
            if name in truth and name not in first:
                first[name] = i
        table = result.table.select(list(first.values()))
        profile = MappingProfile.from_suggestions("messy", suggest_mapping(table))
        # Checked as of the generator's reference date, so the test does not age with the calendar.
        findings = validate(table, profile, today=dt.date(2026, 6, 30))
        assert [f.message for f in findings if f.severity == "error"] == []
        out = apply_mapping(table, profile)
        present = sum(1 for v in table.column(date_col).to_pylist() if v and v.strip())
        parsed = out.column("birth_date").to_pylist()
        assert sum(v is not None for v in parsed) == present  # M/D/YY, ISO and Excel serials too
        assert all(1900 < int(v[:4]) < 2030 for v in parsed if v)


def test_values_alone_when_headers_say_nothing():
    n = 80
    table = pa.table(
        {
            "C1": [f"{(7919 * i) % 10**10:010d}" for i in range(n)],  # IDs, many not phone-shaped
            "C2": [["EO", "EL", "RFEP", "IFEP", "TBD"][i % 5] for i in range(n)],
            "C3": [["09", "10", "11", "12"][i % 4] for i in range(n)],
            "C4": [["1", "2", "3"][i % 3] for i in range(n)],  # could be anything: left alone
            "C5": [f"{1 + i % 12}/{1 + i % 28}/2008" for i in range(n)],
            "C6": [f"parent{i}@{['gmail.com', 'yahoo.com', 'aol.com'][i % 3]}" for i in range(n)],
            "C7": [f"s{i}@students.district.example" for i in range(n)],
        }
    )
    got = {s.column: s.element for s in suggest_mapping(table)}
    assert got["C1"] != "phone"
    assert got["C2"] == "english_learner_status"
    assert got["C3"] == "grade_level"
    assert got["C4"] is None
    assert got["C5"] in ("birth_date", "enroll_date")
    assert (got["C6"], got["C7"]) == ("guardian_email", "email")  # the school's own domain: students


def test_normalized_forms():
    from deid._apply_mapping import derive_column, normalize_column

    rate = normalize_column(pa.array(["95.5", "88%", "100", None]), LIB["attendance_rate"])
    assert rate.to_pylist() == ["0.955", "0.88", "1", None]
    assert normalize_column(pa.array(["91770-1234", " 93701 "]), LIB["zip"]).to_pylist() == ["91770", "93701"]
    assert normalize_column(pa.array(["m", "F", "x", "Q"]), LIB["sex"]).to_pylist() == ["M", "F", "X", "Q"]
    assert normalize_column(pa.array(["3.0", "2.50"]), LIB["gpa"]).to_pylist() == ["3", "2.5"]
    hisp = derive_column(pa.array(["H", "W", "X", None]), {"H": "Y", "W": "N"})
    assert hisp.to_pylist() == ["Y", "N", None, None]


def test_repeated_rows_with_composite_keys():
    from deid._validate import _repeated_rows

    ids = pa.chunked_array([["A", "B", "A"], ["A", None, None, "B"]])
    terms = pa.chunked_array([["F", "F", "S"], ["F", "F", "F", "F"]])
    assert _repeated_rows([ids]).tolist() == [2, 3, 6]
    assert _repeated_rows([ids, terms]).tolist() == [3, 6]


def test_cli_map_corrections(run_cli, exports, tmp_path):
    from deid.synth import write_synth

    path = tmp_path / "k12.csv"
    write_synth(exports["k12"], path)
    code, out, err = run_cli(
        "map", path, "--json", "--set", "Counselor Notes=", "--set", "Local ID=college_student_id"
    )
    assert code == 0, err
    doc = json.loads(out)
    cols = {c["column"]: c["element"] for c in doc["columns"]}
    assert cols["Counselor Notes"] is None and cols["Local ID"] == "college_student_id"
    assert doc["mapping"] == "suggested, corrected"
    code, out, err = run_cli("map", path, "--set", "Gender=gender_identity")
    assert code == 1 and "no element called gender_identity" in err and out == ""
    code, _, err = run_cli("map", path, "--set", "Nope=sex")
    assert code == 1 and "COLUMN=ELEMENT" in err


def test_headers_about_something_else_are_not_carried_by_their_values():
    n = 40
    table = pa.table(
        {
            "Exit Date": [f"06/{1 + i % 28:02d}/2025" for i in range(n)],
            "Parent Email": [f"p{i}@gmail.com" for i in range(n)],
            "Emergency Contact Phone": [f"(626) 555-{1000 + i}" for i in range(n)],
        }
    )
    got = {s.column: s for s in suggest_mapping(table)}
    assert got["Exit Date"].element is None  # date values, but not the enrollment date
    assert got["Parent Email"].element == "guardian_email"
    assert got["Emergency Contact Phone"].element is None  # not the student's phone: dropped
    assert any("header says" in r for r in got["Exit Date"].candidates[0].reasons)
