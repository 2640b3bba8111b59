"""Linkage robustness (issue 18 item 4): sex codes go through the element's code set or are refused,
never silently dropped; the link report lists each file's token kinds and warns when they differ."""

from __future__ import annotations

import pyarrow as pa
import pytest

from deid import Policy, deidentify
from deid._linkage import KINDS, LinkFields, link_tables, link_tokens, parse_tokens, sex_codes
from deid._secrets import derive_key
from deid.errors import InputError, PolicyError

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
