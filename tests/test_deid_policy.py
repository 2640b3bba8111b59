"""Policy files: the documented example (docs/policy-format.md) loads; every kind of mistake gets one
clear sentence."""

from __future__ import annotations

import json

import pytest

from deid import ColumnRule, Policy, PolicyError, load_policy

DESIGN_EXAMPLE = {
    "pathshare_policy": 1,
    "k": 5,
    "drop_unlisted": True,
    "columns": {
        "SSID": {"treatment": "record_code", "as": "student_code"},
        "Birth Date": {
            "treatment": "generalize_date",
            "to": "year",
            "as": "birth_year",
            "quasi_identifier": True,
        },
        "Gender": {"treatment": "keep", "quasi_identifier": True},
        "ZIP": {"treatment": "zip3", "as": "zip3", "quasi_identifier": True},
        "GPA": {"treatment": "bucket", "edges": [0, 1, 2, 3, 4.5]},
        "Counselor Notes": {"treatment": "redact_text"},
        "Last Name": {"treatment": "drop"},
    },
}


def _policy(tmp_path, data) -> object:
    p = tmp_path / "policy.json"
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return load_policy(p)


def test_design_example_loads_and_round_trips(tmp_path):
    pol = _policy(tmp_path, DESIGN_EXAMPLE)
    assert pol.k == 5 and pol.drop_unlisted
    assert pol.quasi_identifiers == ["birth_year", "Gender", "zip3"]
    assert pol.needs_secret
    assert pol.rule_for("GPA").params == {"edges": [0, 1, 2, 3, 4.5]}
    assert pol.to_dict() == DESIGN_EXAMPLE
    assert Policy.from_dict(pol.to_dict()) == pol


def _with(column: str, rule: dict) -> dict:
    data = json.loads(json.dumps(DESIGN_EXAMPLE))
    data["columns"][column] = rule
    return data


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        ("{not json", "is not valid JSON (line 1"),
        ("[]", "must be a JSON object"),
        ({"columns": {}}, "has no 'pathshare_policy'"),
        ({**DESIGN_EXAMPLE, "pathshare_policy": 2}, "policy version 2"),
        ({**DESIGN_EXAMPLE, "k": 0}, "'k' must be a whole number"),
        ({**DESIGN_EXAMPLE, "extra": 1}, "unknown setting(s): extra"),
        ({**DESIGN_EXAMPLE, "columns": {}}, "non-empty 'columns'"),
        (
            _with("GPA", {"treatment": "bukcet", "edges": [0, 1]}),
            "unknown treatment 'bukcet' (did you mean 'bucket'?)",
        ),
        (_with("GPA", {"treatment": "bucket"}), "column 'GPA' (bucket) needs 'edges'"),
        (_with("GPA", {"treatment": "bucket", "edges": [3, 2]}), "'edges' of column 'GPA' must be"),
        (_with("GPA", {"treatment": "bucket", "edges": [1, 2], "egdes": 1}), "unknown setting 'egdes'"),
        (_with("GPA", {"as": "x"}), "column 'GPA' has no 'treatment'"),
        (_with("Birth Date", {"treatment": "generalize_date", "to": "decade"}), "'to' must be one of"),
        (
            _with("Birth Date", {"treatment": "generalize_date", "to": "age", "reference_date": "June"}),
            "reference_date must be a date",
        ),
        (_with("GPA", {"treatment": "keep", "as": "zip3"}), "would both be written as 'zip3'"),
        (_with("Last Name", {"treatment": "drop", "quasi_identifier": True}), "cannot be a quasi-identifier"),
        (_with("Gender", {"treatment": "recode_rare", "min_count": 0}), "'min_count' of column 'Gender'"),
        (_with("Gender", {"treatment": "keep", "quasi_identifier": "yes"}), "must be true or false"),
    ],
)
def test_invalid_policies_are_refused(tmp_path, data, phrase):
    with pytest.raises(PolicyError) as info:
        _policy(tmp_path, data)
    assert phrase in str(info.value)
    assert "policy.json" in str(info.value)


def test_missing_policy_file(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.json")


def test_missing_column_is_named_with_close_matches(tmp_path):
    pol = _policy(tmp_path, DESIGN_EXAMPLE)
    cols = ["SSID", "Birth Date", "Gender", "Zip Code", "GPA", "Counselor Notes", "Last Name"]
    with pytest.raises(PolicyError, match=r"names column 'ZIP', which in\.csv does not have \(did you mean"):
        pol.check_columns(cols, input_name="in.csv")
    pol.check_columns([*cols[:3], "ZIP", *cols[4:]])


def test_policy_from_rules_is_how_an_agreement_supplies_one():
    pol = Policy.from_rules(
        [
            ColumnRule("ssid", "token", output="student_token"),
            ColumnRule("sex", "keep", quasi_identifier=True),
        ],
        k=3,
    )
    assert pol.quasi_identifiers == ["sex"] and pol.k == 3 and pol.needs_secret
    with pytest.raises(PolicyError, match="more than one rule"):
        Policy.from_rules([ColumnRule("a", "keep"), ColumnRule("a", "drop")])


def test_passthrough_collision_is_caught():
    pol = Policy.from_rules([ColumnRule("SSID", "keep", output="Gender")], drop_unlisted=False)
    with pytest.raises(PolicyError, match="collide"):
        pol.check_columns(["SSID", "Gender"])
