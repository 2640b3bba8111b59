"""Disclosure control in agreements (schema 2): the settings are checked, old agreements still read, the
engine gets the agreement's hierarchies, and the seal gate refuses what the agreement requires but the
output lacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"


def _terms() -> dict:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _version_1_with_fairness(body: dict) -> None:
    v2 = ("sensitive", "suppression_limit", "hierarchies")
    body.update(pathshare_agreement=1, policy={k: v for k, v in body["policy"].items() if k not in v2})


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda b: b.update(pathshare_agreement=1), "policy.sensitive is not a field of schema version 1"),
        (lambda b: b["policy"]["hierarchies"].update(race={"allow": ["decade"]}), "has no level 'decade'"),
        (
            lambda b: b["policy"]["hierarchies"].update(
                school_id={"kind": "map", "levels": [
                    {"name": "district", "groups": {"D1": ["A", "B"], "D2": ["C"]}},
                    {"name": "region", "groups": {"R1": ["A"], "R2": ["B", "C"]}},
                ]}
            ),
            "the hierarchy of element school_id is not monotone",
        ),
        (lambda b: b["policy"]["sensitive"].append("sex"), "cannot be both a quasi-identifier and sensitive"),
        (lambda b: b["policy"].update(l=2, sensitive=[]), "need policy.sensitive"),
        (lambda b: b["policy"].update(suppression_limit=0.9), "policy.suppression_limit"),
        (lambda b: b["policy"].update(fairness="always"), "policy.fairness"),
        (_version_1_with_fairness, "policy.fairness is not a field of schema version 1"),
        (lambda b: b["policy"]["hierarchies"].update(gpa={"removable": False}), "gpa, which is not a quasi"),
    ],
)
def test_agreement_disclosure_settings_are_checked(edit, fragment):
    from agreements import AgreementError
    from agreements._agreement import Agreement

    body = _terms()
    edit(body)
    with pytest.raises(AgreementError) as e:
        Agreement.from_terms(body, source="a.json")
    assert fragment in str(e.value) and str(e.value).startswith("a.json") and "\n" not in str(e.value)


def test_old_agreements_still_read_and_new_settings_reach_the_engine():
    from agreements._agreement import Agreement

    old = _terms()
    old["pathshare_agreement"] = 1
    for key in ("sensitive", "suppression_limit", "hierarchies", "fairness"):
        old["policy"].pop(key)
    a1 = Agreement.from_terms(old, source="old.json")
    d1 = a1.disclosure()
    assert d1.suppression_limit == 0.05 and not d1.sensitive and d1.l is None and d1.fairness == "prefer"
    assert d1.hierarchies["race"].removable  # the library's hierarchy, unrestricted
    body = _terms()
    body["policy"].update(l=2, t=0.3)
    body["policy"]["hierarchies"]["race"]["allow"] = ["federal"]
    d2 = Agreement.from_terms(body, source="new.json").disclosure()
    assert set(d2.hierarchies) == {"birth_year", "sex", "race", "zip3", "school_id"}  # output names
    assert d2.hierarchies["race"].level_names == ["as released", "federal"]  # restricted, not removable
    assert d2.sensitive == ("english_learner_status", "iep", "economically_disadvantaged")
    assert (d2.l, d2.t) == (2, 0.3)
    assert d2.fairness == "require"  # (the example agreement: an equity study)


def test_gate_refuses_what_the_agreement_requires_but_the_output_lacks():
    from agreements._agreement import Agreement
    from agreements._prepare import _disclosure_problems

    body = _terms()
    body["policy"].update(l=3, t=0.2)
    agreement = Agreement.from_terms(body, source="a.json")
    good = {"k_achieved": 11, "rows": 100, "rows_suppressed": 5,
            "l_achieved": dict.fromkeys(("english_learner_status", "iep", "economically_disadvantaged"), 3),
            "t_achieved": dict.fromkeys(("english_learner_status", "iep", "economically_disadvantaged"), 0.1)}
    assert _disclosure_problems(agreement, good) == []
    for change, fragment in [
        ({"k_achieved": 9}, "k-anonymity is 9"),
        ({"rows_suppressed": 6}, "6 of 100 students were withheld"),
        ({"l_achieved": {**good["l_achieved"], "iep": 2}}, "iep shows 2 different value(s)"),
        ({"t_achieved": {**good["t_achieved"], "iep": 0.25}}, "at most t = 0.2"),
        ({"warnings": ["Race = 204 — Vietnamese: 3% of its 29 students lost it, …"]}, "(Race = 204 — Viet"),
    ]:
        (problem,) = _disclosure_problems(agreement, {**good, **change})
        assert fragment in problem.message and "\n" not in problem.message
    body["policy"]["fairness"] = "prefer"  # warned about in the report, not refused
    lenient = Agreement.from_terms(body, source="a.json")
    assert _disclosure_problems(lenient, {**good, "warnings": ["Race = 204 — Vietnamese: …"]}) == []
