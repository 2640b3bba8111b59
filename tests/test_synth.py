"""The synthetic extracts: shapes, codes, reproducibility, overlap, planted PII, messy files, CLI."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from deid.errors import InputError, OutputError
from deid.synth import (
    COLLEGE_HEADERS,
    COLLEGE_ONLY_BASE,
    K12_HEADERS,
    NOISE_FLAGS,
    column_elements,
    generate,
    load_truth,
    write_synth,
)

ELEMENTS = {
    "state_student_id", "local_student_id", "college_student_id", "first_name", "middle_name", "last_name",
    "birth_date", "sex", "hispanic_latino", "race", "street_address", "city", "zip", "phone", "email",
    "guardian_name", "guardian_email", "grade_level", "school_id", "enroll_date", "english_learner_status",
    "iep", "section_504", "economically_disadvantaged", "cte_pathway", "dual_enrollment", "credits_earned",
    "gpa", "attendance_rate", "discipline_incidents", "notes", "term", "units_attempted", "units_earned",
    "top_code", "award",
}  # fmt: skip
CALPADS_RACE = {"100", "201", "202", "203", "204", "205", "206", "207", "208", "299", "301", "302", "303",
                "304", "399", "400", "600", "700"}  # fmt: skip
REFERENCE = dt.date(2026, 6, 30)


@pytest.fixture(scope="module")
def k12():
    return generate("k12", 600, seed=11)


@pytest.fixture(scope="module")
def college():
    return generate("college", 600, seed=11)


def col(result, name: str) -> list[str]:
    return result.table.column(name).to_pylist()


# --- shape and codes --------------------------------------------------------------------------------


def test_k12_headers_are_the_contract(k12):
    assert k12.table.column_names == list(K12_HEADERS)
    assert len(K12_HEADERS) == 30
    assert K12_HEADERS[0] == "SSID" and K12_HEADERS[-1] == "Counselor Notes"
    assert k12.table.num_rows == 600
    assert all(str(f.type) == "string" for f in k12.table.schema)


def test_college_headers(college):
    assert college.table.column_names == list(COLLEGE_HEADERS)
    assert college.table.num_rows == 600
    assert all(str(f.type) == "string" for f in college.table.schema)


def test_column_elements_name_known_elements(k12, college):
    for result, headers in ((k12, K12_HEADERS), (college, COLLEGE_HEADERS)):
        mapping = result.truth.column_elements()
        assert list(mapping) == list(headers)
        assert set(mapping.values()) <= ELEMENTS
    assert column_elements("college")["STU_BIRTH_DT"] == "birth_date"
    # The element names exist in the shipped element library, when it is there.
    library = Path(__file__).resolve().parent.parent / "deid" / "data" / "elements.json"
    if library.exists():
        doc = json.loads(library.read_text(encoding="utf-8"))
        names = {e["name"] for e in (doc["elements"] if isinstance(doc, dict) else doc)}
        assert names >= ELEMENTS


def test_k12_identifiers_keep_leading_zeros_and_are_unique(k12):
    big = generate("k12", 3000, seed=2)
    ssid = col(big, "SSID")
    assert all(re.fullmatch(r"\d{10}", s) for s in ssid)
    assert len(set(ssid)) == len(ssid)
    assert any(s.startswith("0") for s in ssid)
    assert all(re.fullmatch(r"\d{6,7}", s) for s in col(big, "Local ID"))
    assert len(set(col(big, "Local ID"))) == 3000
    schools = col(big, "School Code")
    assert all(re.fullmatch(r"\d{7}", s) for s in schools)
    assert any(s.startswith("0") for s in schools)
    grades = set(col(big, "Grade"))
    assert {"09", "10", "11", "12"} <= grades
    assert grades <= {"KN", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12"}
    assert sum(g in {"09", "10", "11", "12"} for g in col(big, "Grade")) > 0.8 * 3000
    pathways = [p for p in col(big, "CTE Pathway") if p]
    assert all(re.fullmatch(r"\d{3}", p) for p in pathways) and any(p.startswith("0") for p in pathways)


def test_k12_code_sets_and_formats(k12):
    assert set(col(k12, "Gender")) <= {"M", "F", "X"}
    assert set(col(k12, "Hispanic")) == {"Y", "N"}
    assert set(col(k12, "Race Code")) - {""} <= CALPADS_RACE
    assert set(col(k12, "EL Status")) <= {"EO", "IFEP", "EL", "RFEP", "TBD"}
    for name in ("IEP", "504 Plan", "FRPM", "Dual Enrollment"):
        assert set(col(k12, name)) <= {"Y", "N"}
    assert all(re.fullmatch(r"\d{5}", z) for z in col(k12, "ZIP"))
    assert all(re.fullmatch(r"\(\d{3}\) \d{3}-\d{4}", p) for p in col(k12, "Phone"))
    assert all(re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+\.[a-z]+", e) for e in col(k12, "Guardian Email"))
    for gpa in filter(None, col(k12, "GPA")):
        assert re.fullmatch(r"\d\.\d\d", gpa) and 0 <= float(gpa) <= 4
    for rate in col(k12, "Attendance Rate"):
        assert re.fullmatch(r"[01]\.\d{3}", rate) and 0 <= float(rate) <= 1
    assert all(d.isdigit() and int(d) < 20 for d in col(k12, "Discipline Count"))
    for birth, grade in zip(col(k12, "Birth Date"), col(k12, "Grade"), strict=True):
        born = dt.datetime.strptime(birth, "%m/%d/%Y").date()
        age = (REFERENCE - born).days / 365.25
        if grade in {"09", "10", "11", "12"}:
            assert 13 <= age < 20
    for d in col(k12, "Enroll Date"):
        assert dt.datetime.strptime(d, "%m/%d/%Y").date() <= REFERENCE


def test_names_are_varied_with_accents_hyphens_apostrophes():
    big = generate("k12", 5000, seed=5)
    names = col(big, "First Name") + col(big, "Last Name")
    assert any(re.search(r"[áéíóúñÁÉÍÓÚÑ]", n) for n in names)
    assert any("-" in n for n in names)
    assert any("'" in n for n in names)
    last = col(big, "Last Name")
    counts = sorted((last.count(x) for x in set(last)), reverse=True)
    assert counts[0] > 20 * counts[-1]  # some common, many rare
    assert len(set(col(big, "First Name"))) > 200


def test_college_code_sets(college):
    assert set(col(college, "SEX")) <= {"1", "2", "3"}
    assert set(col(college, "ETHNICITY")) <= set("HNAPFBWTX")
    assert all(re.fullmatch(r"A\d{8}", s) for s in col(college, "STU_ID"))
    assert len(set(col(college, "STU_ID"))) == 600
    for s in col(college, "STU_BIRTH_DT"):
        dt.datetime.strptime(s, "%Y%m%d")
    assert all(re.fullmatch(r"20\d\d(FA|SP|SU)", s) for s in col(college, "TERM_CD"))
    tops = col(college, "TOP_CD")
    assert all(re.fullmatch(r"\d{6}", s) for s in tops) and any(s.startswith("0") for s in tops)
    assert all(re.fullmatch(r"\d{5}(-\d{4})?", z) for z in col(college, "ZIP_CD"))
    for att, ern in zip(col(college, "UNITS_ATT"), col(college, "UNITS_ERN"), strict=True):
        assert 0 <= float(ern) <= float(att)
    ssid = col(college, "SSID")
    present = [s for s in ssid if s]
    assert all(re.fullmatch(r"\d{10}", s) for s in present)
    assert 0.3 < len(present) / len(ssid) < 0.75
    assert set(col(college, "AWARD_CD")) <= {"", "A", "S", "Y", "Z", "E", "B", "L", "T"}


# --- reproducibility -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["k12", "college"])
def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, kind):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        write_synth(generate(kind, 150, seed=seed), tmp_path / f"{name}.csv")
        write_synth(generate(kind, 150, seed=seed), tmp_path / f"{name}.parquet")
        write_synth(generate(kind, 150, seed=seed, messy=True), tmp_path / f"{name}.messy.csv")
    for ext in ("csv", "parquet", "messy.csv"):
        a, b, c = ((tmp_path / f"{n}.{ext}").read_bytes() for n in "abc")
        assert a == b
        assert a != c


def test_several_blocks_are_reproducible():
    # More rows than one block: the blocks are made on threads and must still come out the same.
    a, b = generate("k12", 17_000, seed=21), generate("k12", 17_000, seed=21)
    assert a.table.equals(b.table)
    assert np.array_equal(a.truth.spans["start"], b.truth.spans["start"])


def test_public_names():
    import deid.synth

    assert all(hasattr(deid.synth, name) for name in deid.synth.__all__)


def test_k12_population_does_not_depend_on_rows():
    small, large = generate("k12", 50, seed=9), generate("k12", 20_000, seed=9)
    assert small.table.equals(large.table.slice(0, 50))
    inside = large.truth.spans["row"] < 50
    for key in ("row", "start", "end"):
        assert np.array_equal(small.truth.spans[key], large.truth.spans[key][inside])


# --- overlap between the K-12 and college populations ----------------------------------------------------


def test_college_overlaps_k12_of_the_same_seed(k12, college):
    pid = college.truth.person_id
    shared = pid[pid < COLLEGE_ONLY_BASE]
    assert 0.1 * 600 < len(shared) < 0.4 * 600
    assert len(set(pid.tolist())) == 600  # one row per student
    assert set(shared.tolist()) <= set(k12.truth.person_id.tolist())
    grades = col(k12, "Grade")
    assert {grades[p] for p in shared} <= {"11", "12"}
    k_ssid, c_ssid = col(k12, "SSID"), col(college, "SSID")
    rows = np.flatnonzero(pid < COLLEGE_ONLY_BASE)
    for r in rows:
        if c_ssid[r]:
            assert c_ssid[r] == k_ssid[pid[r]]
    # College-only students never carry a K-12 student's SSID.
    assert not {c_ssid[r] for r in np.flatnonzero(pid >= COLLEGE_ONLY_BASE)} - {""} & set(k_ssid)


def test_college_noise_is_what_the_truth_says(k12, college):
    from deid._synth._tables import fold

    bit = {name: 1 << i for i, name in enumerate(NOISE_FLAGS)}
    pid, noise = college.truth.person_id, college.truth.noise
    kf, kl, kb = col(k12, "First Name"), col(k12, "Last Name"), col(k12, "Birth Date")
    k_middle = col(k12, "Middle Name")
    cf, cl, cb = col(college, "STU_FIRST_NM"), col(college, "STU_LAST_NM"), col(college, "STU_BIRTH_DT")
    checked = 0
    for r in np.flatnonzero(pid < COLLEGE_ONLY_BASE):
        p, flags = int(pid[r]), int(noise[r])
        born = dt.datetime.strptime(kb[p], "%m/%d/%Y").strftime("%Y%m%d")
        name_flags = bit["nickname"] | bit["typo_first"] | bit["typo_last"] | bit["surname_part"]
        name_flags |= bit["surname_joiner"] | bit["goes_by_middle_name"]
        if not flags & name_flags:
            assert fold(cf[r]).upper() == fold(kf[p]).upper()
            assert fold(cl[r]).upper() == fold(kl[p]).upper()
            checked += 1
        if flags & bit["birth_day_month_swapped"]:
            assert cb[r] != born and cb[r][:4] == born[:4]
        else:
            assert cb[r] == born
        if flags & bit["typo_first"] and not flags & bit["nickname"]:
            assert fold(cf[r]).upper() != fold(kf[p]).upper()
        if flags & bit["goes_by_middle_name"]:
            assert fold(cf[r]).upper() == fold(k_middle[p]).upper()
    assert checked > 40
    assert noise[pid >= COLLEGE_ONLY_BASE].sum() == 0


def test_college_noise_kinds_all_occur():
    big = generate("college", 8000, seed=1)
    seen = 0
    for i in range(len(NOISE_FLAGS)):
        seen |= int(np.bitwise_or.reduce(big.truth.noise & (1 << i)))
    assert seen == (1 << len(NOISE_FLAGS)) - 1


# --- planted PII -------------------------------------------------------------------------------------------


def test_planted_spans_hold_what_they_claim(k12):
    truth = k12.truth
    notes = col(k12, "Counselor Notes")
    first, ssid, local = col(k12, "First Name"), col(k12, "SSID"), col(k12, "Local ID")
    patterns = {
        "US_SSN": r"(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4}",
        "EMAIL_ADDRESS": r"[a-z0-9.]+@[a-z0-9.]+\.(org|com)",
        "PHONE_NUMBER": r"(\(\d{3}\) ?|\d{3}[-.])\d{3}[-.]\d{4}",
        "STUDENT_ID": r"\d{6,10}",
        "PERSON": r"[^\W\d_][\w'\- .]*",
    }
    kinds = truth.spans["kind"]
    assert set(kinds) == set(patterns)
    own_first = own_id = 0
    for i in range(len(kinds)):
        text = truth.span_text(notes, i)
        row = int(truth.spans["row"][i])
        assert re.fullmatch(patterns[kinds[i]], text), (kinds[i], text)
        own_first += kinds[i] == "PERSON" and text == first[row]
        own_id += kinds[i] == "STUDENT_ID" and text in (ssid[row], local[row])
    assert own_first > 50 and own_id > 5
    # The source says whose value it is; staff names are the only PERSON values not in the file.
    sources = truth.spans["source"]
    guardians = set(col(k12, "Guardian Name"))
    full_names = [f"{f} {la}" for f, la in zip(first, col(k12, "Last Name"), strict=True)]
    staff = 0
    for i in range(len(kinds)):
        text, row = truth.span_text(notes, i), int(truth.spans["row"][i])
        if sources[i] == "student_first_name":
            assert text == first[row]
        elif sources[i] == "student_last_name":
            assert text == col(k12, "Last Name")[row]
        elif sources[i] == "guardian_name":
            assert text in guardians
        elif sources[i] == "other_student_full_name":
            assert text in full_names[:row]  # someone earlier in the same file
        elif sources[i] == "other_student_first_name":
            assert text in first[:row]
        elif sources[i] == "staff_last_name":
            assert kinds[i] == "PERSON" and notes[row][: truth.spans["start"][i]].endswith(
                ("Ms. ", "Mr. ", "Dr. ")
            )
            staff += 1
        elif sources[i] == "ssn":
            assert kinds[i] == "US_SSN"
    assert staff > 10
    # Spans never overlap and stay inside the note.
    for r in set(truth.spans["row"].tolist()):
        sel = truth.spans["row"] == r
        starts, ends = truth.spans["start"][sel], truth.spans["end"][sel]
        assert np.all(starts[1:] >= ends[:-1]) and ends.max() <= len(notes[r])


def test_notes_vary_and_carry_innocuous_look_alikes(k12):
    notes = col(k12, "Counselor Notes")
    assert 0.05 < sum(n == "" for n in notes) / len(notes) < 0.3
    lengths = [len(n) for n in notes]
    assert max(lengths) > 250 and min(lengths) == 0
    text = " ".join(notes)
    for look_alike in ("MATH 101", "Room ", "/2025", "Ext. 2231"):
        assert look_alike in text
    ssn_rows = set(k12.truth.spans["row"][k12.truth.spans["kind"] == "US_SSN"].tolist())
    assert 0.01 * 600 < len(ssn_rows) < 0.15 * 600


def test_truth_round_trips_through_json(tmp_path, college, k12):
    for result in (k12, college):
        path = tmp_path / f"{result.truth.kind}.json"
        result.truth.save(path)
        back = load_truth(path)
        assert np.array_equal(back.person_id, result.truth.person_id)
        assert back.columns == [tuple(c) for c in result.truth.columns]
        for key in ("row", "start", "end"):
            assert np.array_equal(back.spans[key], result.truth.spans[key])
        assert list(back.spans["kind"]) == list(result.truth.spans["kind"])
        assert b"\n" not in path.read_bytes()  # compact
    assert np.array_equal(load_truth(tmp_path / "college.json").noise, college.truth.noise)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError):
        load_truth(tmp_path / "bad.json")


# --- files -------------------------------------------------------------------------------------------------


def test_clean_csv_parquet_xlsx_keep_leading_zeros(tmp_path, k12):
    write_synth(k12, tmp_path / "k.csv")
    raw = (tmp_path / "k.csv").read_text(encoding="utf-8")
    zero_ssid = next(s for s in col(k12, "SSID") if s.startswith("0"))
    assert f'"{zero_ssid}"' in raw
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0] == list(K12_HEADERS) and len(rows) == 601
    assert [r[0] for r in rows[1:]] == col(k12, "SSID")
    write_synth(k12, tmp_path / "k.parquet")
    assert pq.read_table(tmp_path / "k.parquet").equals(k12.table)
    small = generate("k12", 30, seed=11)
    write_synth(small, tmp_path / "k.xlsx")
    from openpyxl import load_workbook

    sheet = load_workbook(tmp_path / "k.xlsx", read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert list(values[0]) == list(K12_HEADERS)
    assert [v[0] for v in values[1:]] == col(small, "SSID")
    assert [v[17] for v in values[1:]] == col(small, "School Code")


def test_messy_k12_is_cp1252_ragged_with_duplicate_header(tmp_path):
    result = generate("k12", 400, seed=4, messy=True)
    path = tmp_path / "messy.csv"
    write_synth(result, path)
    data = path.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("cp1252")
    assert "\x92" not in text and "\u2019" in text  # curly apostrophes as cp1252 byte 0x92
    assert b"\x92" in data and b"\xe9" in data  # ’ and é as Windows-1252 bytes
    assert "?" not in "".join(col(result, "Last Name"))  # Nguyễn becomes Nguyen, not Nguy?n
    from deid._synth._tables import cp1252_safe

    assert cp1252_safe("Nguyễn Đức José") == "Nguyen Duc José"
    header = text.split("\r\n", 1)[0]
    assert header.endswith("Counselor Notes,Phone,,")
    names = header.split(",")
    assert names.count("Phone") == 2
    rows = list(csv.reader(io.StringIO(text, newline="")))
    width = len(names)
    ragged = {r["row"]: r["fields"] for r in result.truth.ragged_rows}
    assert len(ragged) == 3
    for i, row in enumerate(rows[1:]):
        assert len(row) == ragged.get(i, width), i
    assert any("\n" in row[29] for row in rows[1:])  # quoted newlines inside notes
    assert "\r\n" in text
    ssids = [row[0] for row in rows[1:]]
    assert any(s.startswith("0") and len(s) == 10 for s in ssids)
    births = [row[5] for row in rows[1:]]
    assert any(re.fullmatch(r"\d\d/\d\d/\d{4}", b) for b in births)
    assert any(re.fullmatch(r"\d{4}-\d\d-\d\d", b) for b in births)
    assert any(re.fullmatch(r"\d{1,2}/\d{1,2}/\d\d", b) for b in births)
    # The notes in the file are exactly the table's notes, so the planted offsets hold in the file.
    notes = [row[29] for row in rows[1:]]
    assert notes == col(result, "Counselor Notes")
    truth = result.truth
    assert truth.columns[-3:] == [("Phone", "phone"), ("", None), ("", None)]
    assert truth.encoding == "cp1252"


def test_messy_college_is_utf8_with_bom(tmp_path):
    result = generate("college", 300, seed=4, messy=True)
    path = tmp_path / "messy.csv"
    write_synth(result, path)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert "\ufeff" not in text  # one BOM only
    header = text.split("\r\n", 1)[0].split(",")
    assert header.count("PHONE_NBR") == 2 and header[-2:] == ["", ""]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert sorted(len(r) for r in rows[1:]).count(len(header)) == 297
    births = [r[5] for r in rows[1:]]
    assert any(re.fullmatch(r"\d{8}", b) for b in births)
    assert any(not re.fullmatch(r"\d{8}", b) for b in births)


def test_writer_refusals(tmp_path, k12):
    with pytest.raises(OutputError, match="must end in"):
        write_synth(k12, tmp_path / "x.txt")
    with pytest.raises(OutputError, match="folder"):
        write_synth(k12, tmp_path / "missing" / "x.csv")
    messy = generate("k12", 30, messy=True)
    with pytest.raises(OutputError, match="CSV only"):
        write_synth(messy, tmp_path / "x.parquet")
    with pytest.raises(OutputError, match="messy=True"):
        write_synth(k12, tmp_path / "x.csv", messy=True)
    with pytest.raises(InputError):
        generate("k13", 10)
    with pytest.raises(InputError):
        generate("k12", 0)
    assert list(tmp_path.iterdir()) == []


# --- command line ---------------------------------------------------------------------------------------


def test_cli_writes_file_and_truth(run_cli, tmp_path):
    out, truth = tmp_path / "d.csv", tmp_path / "d.truth.json"
    code, stdout, stderr = run_cli("synth", "--kind", "k12", "--rows", "120", "--out", out, "--seed", "3",
                                   "--truth", truth)  # fmt: skip
    assert code == 0, stderr
    assert "120" in stdout and str(out) in stdout
    assert out.read_bytes().startswith(b'"SSID","Local ID"')
    doc = json.loads(truth.read_text(encoding="utf-8"))
    assert doc["kind"] == "k12" and len(doc["person_id"]) == 120 and doc["spans"]["kind"]
    code, _, _ = run_cli("synth", "--kind", "college", "--rows", "80", "--out", tmp_path / "c.csv", "--messy")
    assert code == 0
    assert (tmp_path / "c.csv").read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--kind", "k13", "--rows", "10"], 2),
        (["--kind", "k12", "--rows", "0"], 2),
        (["--kind", "k12", "--rows", "ten"], 2),
        (["--kind", "k12", "--rows", "10", "--seed", "-1"], 2),
    ],
)
def test_cli_usage_errors(run_cli, tmp_path, args, expected):
    code, _, stderr = run_cli("synth", *args, "--out", tmp_path / "x.csv")
    assert code == expected
    assert "pathshare:" in stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("out", "extra", "fragment"),
    [
        ("missing/x.csv", [], "does not exist"),
        ("x.json", [], "must end in"),
        ("x.parquet", ["--messy"], "CSV only"),
        ("x.csv", ["--truth", "missing/t.json"], "does not exist"),
    ],
)
def test_cli_refusals_leave_no_file(run_cli, tmp_path, out, extra, fragment):
    code, _, stderr = run_cli("synth", "--kind", "k12", "--rows", "10", "--out", tmp_path / out, *extra)
    assert code == 1
    assert fragment in stderr
    assert stderr.startswith("pathshare: ") and stderr.count("\n") == 1 and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_too_many_rows_for_excel_quickly(run_cli, tmp_path):
    code, _, stderr = run_cli("synth", "--kind", "k12", "--rows", "1048576", "--out", tmp_path / "x.xlsx")
    assert code == 1 and "Excel" in stderr and stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
