"""The treatments are specified once (deid.TREATMENT_SPECS); the engine and the agreement schema both
follow that one table, so a treatment or parameter added there is known to both (issue 15)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pyarrow as pa
import pytest
from test_agreement_model import Org

from agreements import TREATMENT_CHOICES, Agreement, AgreementError, Element
from deid import (
    ELEMENT_TYPES,
    TREATMENT_NAMES,
    TREATMENT_SPECS,
    TREATMENTS,
    deidentify,
    parameter_problem,
    policy_from_elements,
)
from deid import (
    Element as LibraryElement,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"


def test_the_engine_and_the_schema_name_the_same_treatments_and_types():
    assert set(TREATMENTS) == set(TREATMENT_SPECS) == set(TREATMENT_NAMES)
    assert get_args(Element.model_fields["treatment"].annotation) == TREATMENT_NAMES
    assert get_args(Element.model_fields["type"].annotation) == ELEMENT_TYPES
    # the form's words for each treatment cover exactly the specified ones
    assert set(TREATMENT_CHOICES) == set(TREATMENT_NAMES)


@pytest.mark.parametrize("name", TREATMENT_NAMES)
def test_each_engine_treatment_takes_its_parameters_from_the_spec(name):
    spec, cls = TREATMENT_SPECS[name], TREATMENTS[name]
    assert (cls.required, cls.optional, cls.needs_secret) == (spec.required, spec.optional, spec.needs_secret)
    assert set(spec.defaults) <= set(spec.optional)


def _terms(**race_params) -> dict:
    district = Org("Lakeview USD", "district", "AAAAA-BBBBB-CCCCC-DDDDD")
    college = Org("Riverbend CC", "college", "EEEEE-FFFFF-GGGGG-HHHHH")
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body["parties"] = [district.party("provider"), college.party("recipient")]
    body["policy"]["parameters"]["race"] = race_params
    # the example now keeps race (the disclosure search generalizes it); these tests are about recode_rare
    next(e for e in body["elements"] if e["name"] == "race")["treatment"] = "recode_rare"
    return body


def test_recode_rare_min_count_is_optional_in_an_agreement_and_defaults_to_k():
    """The two copies disagreed: the agreement schema required min_count, the engine defaulted it to
    the policy's k. The engine's rule is the one kept; the agreement now follows it."""
    assert "min_count" in TREATMENT_SPECS["recode_rare"].optional
    agreement = Agreement.from_terms(_terms(), source="a.json")  # refused before: "needs the parameter"
    k = agreement.terms.policy.k
    race = next(e for e in agreement.terms.elements if e.name == "race")
    assert race.treatment == "recode_rare"
    # as the engine runs it: a category with k-1 rows becomes Other, one with k rows stays
    race_rule = {**agreement.element_treatments()["race"], "quasi_identifier": False}  # no k suppression
    policy = policy_from_elements([LibraryElement("race", type="code")], treatments={"race": race_rule}, k=k)
    table = pa.table({"race": pa.array(["700"] * k + ["600"] * (k - 1), pa.string())})
    out, _report = deidentify(table, policy)
    assert out.column("race").to_pylist() == ["700"] * k + ["Other"] * (k - 1)


def test_parameter_values_are_still_checked_once_for_agreements():
    with pytest.raises(AgreementError, match="min_count"):
        Agreement.from_terms(_terms(min_count=0), source="a.json")
    problem = parameter_problem("recode_rare", {"min_count": 0}, [])
    assert problem == "'min_count' must be a whole number of at least 1"
    assert parameter_problem("recode_rare", {}, []) == ""
