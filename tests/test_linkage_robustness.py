"""Linkage robustness (issue 18 item 4): sex codes go through the element's code set or are refused,
never silently dropped; the link report lists each file's token kinds and warns when they differ."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from linkscore import evaluate, truth_pairs

from deid import Policy, deidentify
from deid._linkmatch import link_tables
from deid._linknorm import first_name_keys, sex_codes
from deid._linktokens import LinkFields, link_tokens
from deid._secrets import derive_key
from deid._tokenkinds import KINDS, parse_tokens
from deid.errors import InputError, PolicyError
from deid.synth import generate

SECRET = b"0123456789abcdef0123456789abcdef"
KEY = derive_key(SECRET, "link_tokens")  # what a policy's link_tokens rule uses under SECRET
PEOPLE = [("Ana", "Soto", "2008-01-20"), ("Luis", "Vega", "2008-02-21"), ("Mia", "Ortiz", "2009-05-22")]


def _people(sex: list[str | None]) -> pa.Table:
    return pa.table(
        {
            "First": [p[0] for p in PEOPLE],
            "Last": [p[1] for p in PEOPLE],
            "DOB": [p[2] for p in PEOPLE],
            "SEX": pa.array(sex, pa.string()),
        }
    )


def _real_kinds(tokens_a: pa.ChunkedArray, tokens_b: pa.ChunkedArray) -> set[str]:
    _, ka, va = parse_tokens(tokens_a)
    _, _, vb = parse_tokens(tokens_b)
    common = set(va.tolist()) & set(vb.tolist())
    return {KINDS[k] for k, v in zip(ka.tolist(), va.tolist(), strict=True) if v in common}


def test_sex_goes_through_the_code_set() -> None:
    got = sex_codes(pa.array(["F", " female ", "Girl", "m", "MALE", "X", "Unknown", "", None]), "Gender")
    assert got.to_pylist() == ["F", "F", "F", "M", "M", None, None, None, None]
    local = sex_codes(pa.array(["1", "2", "3"]), "SEX", {"1": "F", "2": "M", "3": "X"})
    assert local.to_pylist() == ["F", "M", None]


def test_numeric_sex_codes_are_refused_naming_the_column_never_silently_dropped() -> None:
    """A college MIS export codes sex 1/2: refused with the column and rows, or — told what the codes
    mean — the same sex tokens (kinds C and E) as the district's F/M file."""
    fields = LinkFields(first="First", last="Last", birth_date="DOB", sex="SEX")
    district = link_tokens(_people(["F", "M", "F"]), fields, KEY)
    with pytest.raises(InputError) as err:
        link_tokens(_people(["1", "2", "1"]), fields, KEY)
    msg = str(err.value)
    assert "Column 'SEX'" in msg and "3 value(s)" in msg and "data rows 1, 2, 3" in msg and "sex_codes" in msg
    college = link_tokens(_people(["1", "2", "1"]), fields, KEY, sex_map={"1": "F", "2": "M"})
    assert {"C", "E"} <= _real_kinds(district, college)
    # Through a standalone policy: the rule's sex_codes, validated.
    rule = {"treatment": "link_tokens", "id": False, "from": ["First", "Last", "DOB", "SEX"]}
    policy = {"pathshare_policy": 1, "k": 1, "columns": {"First": rule}}
    with pytest.raises(InputError, match="Column 'SEX'"):
        deidentify(_people(["1", "2", "1"]), Policy.from_dict(policy), secret=SECRET)
    policy["columns"]["First"] = {**rule, "sex_codes": {"1": "F", "2": "M"}}
    out, report = deidentify(_people(["1", "2", "1"]), Policy.from_dict(policy), secret=SECRET)
    assert {"C", "E"} <= _real_kinds(district, out.column("First"))
    # The report says how many rows have a real token of each kind: C and E for all three.
    (kinds_note,) = [n for n in report.notes if n.startswith("link tokens by kind")]
    assert "C 3" in kinds_note and "E 3" in kinds_note
    policy["columns"]["First"] = {**rule, "sex_codes": {"1": "female"}}
    with pytest.raises(PolicyError, match="F, M or X"):
        Policy.from_dict(policy)


def test_link_report_lists_token_kinds_and_warns_when_they_differ() -> None:
    with_middle = pa.table({"First": ["Ana"], "Mid": ["Rosa"], "Last": ["Soto"], "DOB": ["2008-01-20"]})
    a = link_tokens(with_middle, LinkFields(first="First", middle="Mid", last="Last", birth_date="DOB"), KEY)
    b = link_tokens(with_middle, LinkFields(first="First", last="Last", birth_date="DOB"), KEY)
    report = link_tables(a, b, names=("district.csv", "college.csv")).report
    assert report.kinds_a == "A M W B C E G P Q" and report.kinds_b == "A B C E G P Q"
    (note,) = report.notes
    assert "only district.csv has middle initials (M), middle name (W)" in note
    same = link_tables(a, a).report
    assert same.kinds_a == same.kinds_b and not same.notes


def test_margie_is_margaret_from_the_sourced_nickname_table() -> None:
    keys = [k.to_pylist() for k in first_name_keys(pa.array(["Margie", "Margaret", "Marge", "Peggy"]))]
    assert [keys[0][i] for i in range(4)] == ["MARGARET"] * 4  # ODU's table, and our own (Peggy)
    fields = LinkFields(first="First", last="Last", birth_date="DOB")
    person = {"Last": ["Nash"], "DOB": ["2008-03-04"]}
    a = link_tokens(pa.table({"First": ["Margaret"], **person}), fields, KEY)
    b = link_tokens(pa.table({"First": ["Margie"], **person}), fields, KEY)
    assert "A" in _real_kinds(a, b) and link_tables(a, b).pairs() == {(0, 0)}


def test_several_enrollments_per_student_link_to_one_person() -> None:
    """A college file with one row per term (1 to 4 per student, some without the SSID on a row):
    every row of a student links to that student's district row, and to nothing else."""
    district = generate("k12", 300, seed=11).table
    cols = ["SSID", "First Name", "Last Name", "Birth Date", "Gender"]
    rng = np.random.default_rng(4)
    students = rng.choice(300, 200, replace=False)
    rows = np.repeat(students, rng.integers(1, 5, len(students)))
    college = district.select(cols).take(pa.array(rows))
    no_id = rng.random(len(rows)) < 0.2  # the SSID missing on some terms' rows
    college = college.set_column(
        0, "SSID", pc.if_else(pa.array(no_id), pa.scalar(None, pa.string()), college["SSID"])
    )
    fields = LinkFields("SSID", "First Name", None, "Last Name", "Birth Date", "Gender")
    links = link_tables(link_tokens(district, fields, KEY), link_tokens(college, fields, KEY))
    truth = truth_pairs(np.arange(300), rows)
    assert len(truth) == len(rows) > 300
    score = evaluate(links.pairs(), truth)
    assert score["precision"] == 1.0 and score["recall"] == 1.0
    r = links.report
    assert (r.students_a, r.students_b) == (300, 200) and r.rate_b == 1.0
    assert any(f"{len(rows):,} rows for 200 students" in n for n in r.notes)


def test_em_recovers_known_m_and_u() -> None:
    """Patterns drawn from a known Fellegi–Sunter model (5 kinds, 1 match in 1,000 pairs): EM gets
    m, u and the match share back roughly."""
    from deid._fsem import estimate

    rng = np.random.default_rng(7)
    m, u = np.array([0.95, 0.9, 0.8, 0.7, 0.6]), np.array([0.001, 0.01, 0.05, 0.1, 0.2])
    lam, n = 0.001, 2_000_000
    match = rng.random(n) < lam
    agree = np.where(match[:, None], rng.random((n, 5)) < m, rng.random((n, 5)) < u)
    patterns, counts = np.unique(agree, axis=0, return_counts=True)
    fit = estimate(patterns, counts, ("A", "B", "C", "D", "E"))
    assert np.allclose(fit.m, m, atol=0.05) and np.allclose(fit.u, u, rtol=0.1)
    assert abs(fit.match_share - lam) < 0.0003
    assert fit.agree_weight()["A"] > fit.agree_weight()["E"] > 0 > fit.disagree_weight()["A"]


def test_em_weights_link_a_small_pair_of_files() -> None:
    """EM on two small token files: the fitted weights put the ID and name-and-birth-date kinds above
    the partial ones, and the links are the true pairs."""
    district = generate("k12", 400, seed=12).table
    cols = ["SSID", "First Name", "Last Name", "Birth Date", "Gender"]
    rows = np.random.default_rng(5).choice(400, 250, replace=False)
    college = district.select(cols).take(pa.array(rows))
    college = college.set_column(0, "SSID", pa.nulls(len(rows), pa.string()))  # derived kinds only
    fields = LinkFields("SSID", "First Name", None, "Last Name", "Birth Date", "Gender")
    links = link_tables(link_tokens(district, fields, KEY), link_tokens(college, fields, KEY), method="em")
    est = links.report.estimated
    assert est is not None and 0 < est["match_share"] < 0.01
    w = links.report.weights
    assert w["A"] >= w["C"] > 0 and w["G"] > 0
    score = evaluate(links.pairs(), truth_pairs(np.arange(400), rows))
    assert score["precision"] == 1.0 and score["recall"] > 0.99
