"""Identifiers checked before they become codes (issue 18 item 5, deid/_idshape.py): SSIDs that lost
their leading zeros in Excel are refused with the rows and the fix on every path, or padded only when
the element (or the rule) says ``repair: zfill`` — and then every student gets the same code as the
correct file gives them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from deid import Crosswalk, MappingProfile, Policy, apply_mapping, deidentify, element_library, validate
from deid.errors import InputError, PolicyError
from deid.synth import generate

SECRET = b"0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def extracts() -> tuple[pa.Table, pa.Table, int]:
    """A 2,777-row synthetic K-12 extract, and the same students after Excel: the SSIDs as numbers."""
    table = generate("k12", 2777, seed=3).table.select(
        ["SSID", "First Name", "Last Name", "Birth Date", "Gender"]
    )
    ssid = table.column("SSID")
    excel = pc.cast(pc.cast(ssid, pa.int64()), pa.string())
    lost = int(pc.sum(pc.starts_with(ssid, "0")).as_py())
    assert 200 < lost < 400  # about one in ten SSIDs starts with a zero
    return table, table.set_column(0, "SSID", excel), lost


def _codes(table: pa.Table, rule: dict, crosswalk: Crosswalk) -> tuple[list, list[str]]:
    policy = Policy.from_dict({"pathshare_policy": 1, "k": 1, "columns": {"SSID": rule}})
    out, report = deidentify(table, policy, secret=SECRET, crosswalk=crosswalk)
    return out.column(0).to_pylist(), report.notes


def test_lost_leading_zeros_are_refused_with_rows_and_the_fix(extracts) -> None:
    _good, excel, lost = extracts
    for treatment in ("record_code", "token"):
        with pytest.raises(InputError) as err:
            _codes(excel, {"treatment": treatment, "as": "student_code"}, Crosswalk())
        msg = str(err.value)
        assert f"has {lost} value(s) with fewer than 10 digits" in msg
        assert (
            "data rows" in msg and "restore the leading zeros: the column was probably opened in Excel" in msg
        )
        assert "0" * 3 not in msg.replace("10 digits", "")  # no SSID in the message


def test_the_282_of_2777_case_gets_the_same_codes_or_is_refused(extracts) -> None:
    """The same students with and without leading zeros: identical student_code, tokens and link
    tokens with repair: zfill (and the report says how many were padded); never silently different."""
    good, excel, lost = extracts
    crosswalk = Crosswalk()
    for rule in (
        {"treatment": "record_code", "as": "student_code"},
        {"treatment": "token", "as": "student_token"},
    ):
        right, _ = _codes(good, rule, crosswalk)
        repaired, notes = _codes(excel, {**rule, "repair": "zfill"}, crosswalk)
        assert repaired == right
        assert any(f"{lost} value(s) of column 'SSID'" in n and "padded with zeros" in n for n in notes)
    link_rule = {"treatment": "link_tokens", "from": ["First Name", "Last Name", "Birth Date", "Gender"]}
    right, _ = _codes(good, link_rule, Crosswalk())
    repaired, _ = _codes(excel, {**link_rule, "repair": "zfill"}, Crosswalk())
    id_token = [c.split()[0] for c in right]  # kind I comes first in every cell
    assert [c.split()[0] for c in repaired] == id_token
    with pytest.raises(InputError, match="lost their leading zeros"):
        _codes(excel, link_rule, Crosswalk())


def test_other_shapes_are_refused_and_other_columns_are_not_checked() -> None:
    for bad in ("1.23457E+09", "12345678901", "A123456789", "1234567890.0"):
        t = pa.table({"State Student ID": ["1234567890", bad]})
        policy = Policy.from_dict(
            {"pathshare_policy": 1, "k": 1, "columns": {"State Student ID": {"treatment": "token"}}}
        )
        with pytest.raises(InputError, match=r"1 value.s. that are not 10-digit IDs, in data row 2"):
            deidentify(t, policy, secret=SECRET)
    # A local ID is not a fixed-shape element: anything goes. An explicit element is checked whatever
    # the header says.
    t = pa.table({"Local ID": ["42", "A7"]})
    policy = Policy.from_dict(
        {"pathshare_policy": 1, "k": 1, "columns": {"Local ID": {"treatment": "token"}}}
    )
    assert deidentify(t, policy, secret=SECRET)[0].num_rows == 2
    named = {"treatment": "token", "element": "state_student_id"}
    with pytest.raises(InputError, match="fewer than 10 digits"):
        policy = Policy.from_dict({"pathshare_policy": 1, "k": 1, "columns": {"Local ID": named}})
        deidentify(t, policy, secret=SECRET)
    with pytest.raises(PolicyError, match='must be "zfill"'):
        Policy.from_dict(
            {"pathshare_policy": 1, "columns": {"SSID": {"treatment": "token", "repair": "pad"}}}
        )


def test_mapping_validation_reports_them_and_an_element_that_repairs_pads(extracts) -> None:
    """The agreement path (map, deid --agreement, prepare, the app) validates through the mapping."""
    good, excel, lost = extracts
    columns = {"SSID": "state_student_id", **{c: None for c in good.column_names[1:]}}
    mapping = MappingProfile(name="m", columns=columns)
    ssid = element_library()["state_student_id"]
    findings = [f for f in validate(excel, mapping, [ssid]) if f.kind == "lost_zeros"]
    assert len(findings) == 1 and findings[0].severity == "error" and findings[0].count == lost
    assert "restore the leading zeros" in findings[0].message and len(findings[0].first_rows) == 5
    assert not [f for f in validate(good, mapping, [ssid]) if f.kind in ("lost_zeros", "identifier_shape")]
    zfill = dataclasses.replace(ssid, repair="zfill")
    (finding,) = [f for f in validate(excel, mapping, [zfill]) if f.kind == "lost_zeros"]
    assert finding.severity == "warning" and "padded with zeros" in finding.message
    mapped = apply_mapping(excel, mapping, [zfill])
    assert mapped.column("state_student_id").to_pylist() == good.column("SSID").to_pylist()


def test_cli_deid_policy_refuses_in_one_sentence_and_writes_nothing(run_cli, tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("SSID,Grade\n0012345678,09\n12345678,10\n", encoding="utf-8")
    (tmp_path / "secret").write_text("ab" * 32 + "\n")
    policy = {
        "pathshare_policy": 1,
        "k": 1,
        "columns": {"SSID": {"treatment": "record_code"}, "Grade": {"treatment": "keep"}},
    }
    (tmp_path / "p.json").write_text(json.dumps(policy))
    code, _out, err = run_cli("deid", tmp_path / "in.csv", "--policy", tmp_path / "p.json", "--out",
                              tmp_path / "out.csv", "--secret-file", tmp_path / "secret")  # fmt: skip
    assert code == 1 and "data row 2" in err and "restore the leading zeros" in err
    assert "Traceback" not in err and "12345678" not in err
    assert not (tmp_path / "out.csv").exists()
