"""The agreement document model: schema, consistency checks, lifecycle and signatures (no vault)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agreements import AgreementError
from agreements._agreement import (
    TREATMENT_PARAMETERS,
    Agreement,
    amendment_terms,
    parse_agreement,
)
from agreements._signing import canonical_json, public_key_b64, verify_document

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"
TODAY = date(2027, 3, 1)
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


class Org:
    """A test organization: a signing key and the party entry that names it."""

    def __init__(self, name: str, kind: str, fingerprint: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.name = name
        self.entry = {
            "org": name,
            "kind": kind,
            "roles": [],
            "fingerprint": fingerprint,
            "signing_key": public_key_b64(self.key),
            "age_recipient": str(pyrage.x25519.Identity.generate().to_public()),
            "authorized_representative": {"name": "A. Person", "title": "Director", "email": "a@x.example"},
        }

    def party(self, *roles: str) -> dict:
        return {**self.entry, "roles": list(roles)}


@pytest.fixture
def orgs() -> tuple[Org, Org, Org]:
    return (
        Org("Lakeview USD", "district", "AAAAA-BBBBB-CCCCC-DDDDD"),
        Org("Riverbend CC", "college", "EEEEE-FFFFF-GGGGG-HHHHH"),
        Org("Hillcrest USD", "district", "IIIII-JJJJJ-KKKKK-LLLLL"),
    )


@pytest.fixture
def terms(orgs) -> dict:
    district, college, _ = orgs
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body["parties"] = [district.party("provider"), college.party("recipient")]
    return body


def refused(body: dict, *fragments: str) -> str:
    with pytest.raises(AgreementError) as info:
        Agreement.from_terms(body, source="a.json")
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, msg
    assert msg.startswith("a.json") and msg.endswith(".") and "\n" not in msg
    return msg


def test_documented_example_is_a_valid_complete_agreement():
    a = parse_agreement(EXAMPLE.read_bytes(), source="agreement.json")
    assert a.status(TODAY) == "draft" and not a.signatures
    assert a.terms.legal_basis.basis == "ferpa_studies_99_31_a_6"
    assert [p.kind for p in a.terms.parties] == ["district", "college"]
    assert 15 <= len(a.terms.elements) <= 25
    # Every treatment in the example is one the specification lists (deid/_treatment_spec.py).
    assert {e.treatment for e in a.terms.elements} <= set(TREATMENT_PARAMETERS)
    assert a.recipients()[0].kind == "college" and a.providers()[0].kind == "district"


def test_element_treatments_for_the_engine():
    a = parse_agreement(EXAMPLE.read_bytes())
    t = a.element_treatments()
    assert t["birth_date"] == {
        "treatment": "generalize_date",
        "params": {"to": "year"},
        "as": "birth_year",
        "quasi_identifier": True,
    }
    assert t["first_name"]["as"] is None and t["first_name"]["treatment"] == "drop"
    assert t["gpa"]["params"]["edges"][0] == 0 and t["gpa"]["as"] == "gpa"
    assert t["state_student_id"]["as"] == "student_code"
    assert t["sex"]["quasi_identifier"] and not t["gpa"]["quasi_identifier"]


def test_signing_executes_only_when_every_party_signed_the_same_bytes(orgs, terms):
    district, college, stranger = orgs
    draft = Agreement.from_terms(terms)
    assert draft.status(TODAY) == "draft"
    proposed = draft.sign(district.key, now=NOW)
    assert proposed.status(TODAY) == "proposed" and not proposed.in_force(TODAY)
    assert [p.org for p in proposed.missing_signers()] == ["Riverbend CC"]
    # Signatures are over the RFC 8785 bytes of the terms, verifiable with nothing but the public key.
    sig = proposed.signatures[0]
    assert verify_document(sig.signing_key, terms, sig.signature)
    assert proposed.canonical_bytes == canonical_json(terms)
    assert sig.signed_at == "2026-06-15T12:00:00Z"

    # The college countersigns its own copy of the exported file; the two copies merge.
    college_copy = parse_agreement(proposed.to_json_bytes(), source="from-district.json").sign(college.key)
    back = parse_agreement(college_copy.to_json_bytes(), source="from-college.json")
    executed = proposed.merged_with(back)
    assert executed.is_executed and executed.status(TODAY) == "executed" and executed.in_force(TODAY)
    assert executed.sign(district.key) is executed  # signing twice changes nothing

    with pytest.raises(AgreementError, match="not a party"):
        proposed.sign(stranger.key)


def test_dates_decide_in_force_and_expiry(orgs, terms):
    district, college, _ = orgs
    a = Agreement.from_terms(terms).sign(district.key).sign(college.key)
    assert not a.in_force(date(2026, 6, 30))  # before effective: executed, not yet in force
    assert a.in_force(date(2026, 7, 1)) and a.in_force(date(2029, 6, 30))  # both ends inclusive
    assert a.status(date(2029, 7, 1)) == "expired" and not a.in_force(date(2029, 7, 1))
    assert a.status(TODAY, superseded=True) == "superseded" and not a.in_force(TODAY, superseded=True)


def test_a_changed_term_breaks_every_signature(orgs, terms):
    district, _, _ = orgs
    doc = Agreement.from_terms(terms).sign(district.key).to_document()
    doc["policy"]["k"] = 2
    with pytest.raises(AgreementError, match="bad signature by Lakeview USD"):
        parse_agreement(json.dumps(doc), source="x.json")
    doc = Agreement.from_terms(terms).sign(district.key).to_document()
    doc["signatures"][0]["signature"] = "not base64!"
    with pytest.raises(AgreementError, match="bad signature"):
        parse_agreement(json.dumps(doc), source="x.json")


def test_a_signature_by_a_non_party_is_refused(orgs, terms):
    district, _, stranger = orgs
    doc = Agreement.from_terms(terms).sign(district.key).to_document()
    doc["signatures"][0]["signing_key"] = public_key_b64(stranger.key)
    with pytest.raises(AgreementError, match="not a party"):
        parse_agreement(json.dumps(doc), source="x.json")


def test_merging_different_terms_is_refused(orgs, terms):
    district, college, _ = orgs
    a = Agreement.from_terms(terms).sign(district.key)
    other = copy.deepcopy(terms)
    other["purpose"] += " Also something else."
    b = Agreement.from_terms(other).sign(college.key)
    with pytest.raises(AgreementError, match="differ"):
        a.merged_with(b)


def test_not_json_and_unknown_schema_version():
    with pytest.raises(AgreementError, match=r"^x\.json is not valid JSON \(line 1\)\.$"):
        parse_agreement(b"{nope", source="x.json")
    with pytest.raises(AgreementError, match="not a PathShare agreement"):
        parse_agreement(b"[1, 2]", source="x.json")
    with pytest.raises(AgreementError, match="no pathshare_agreement field"):
        parse_agreement(b"{}", source="x.json")
    with pytest.raises(AgreementError, match="gives the key 'title' twice"):
        parse_agreement(b'{"pathshare_agreement": 1, "title": "a", "title": "b"}', source="x.json")
    doc = json.loads(EXAMPLE.read_text())
    doc["pathshare_agreement"] = 3
    with pytest.raises(AgreementError, match="schema version 3, which this PathShare does not know"):
        parse_agreement(json.dumps(doc), source="x.json")


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda b: b.pop("purpose"), ("purpose is missing",)),
        (lambda b: b.update(colour="blue"), ("colour is not a field",)),
        (lambda b: b.update(effective="2026-13-01"), ("effective",)),
        (lambda b: b.update(effective="July 1, 2026"), ("effective", "YYYY-MM-DD")),
        (lambda b: b["parties"][0].update(roles=["funder"]), ("parties[0].roles[0]",)),
        (lambda b: b["parties"][0].update(signing_key="abc"), ("parties[0].signing_key",)),
        (lambda b: b["parties"][1].update(age_recipient="age1nope"), ("parties[1].age_recipient", "age1")),
        (lambda b: b["legal_basis"].update(basis="because"), ("legal_basis.basis",)),
        (lambda b: b["policy"].update(k="5"), ("policy.k",)),
        (lambda b: b["policy"].update(drop_unlisted=False), ("policy.drop_unlisted",)),
        (lambda b: b.update(id="123"), ("id", "UUID")),
        (lambda b: b.update(version=2), ("previous",)),
    ],
)
def test_schema_violations_are_one_sentence(terms, edit, fragments):
    edit(terms)
    refused(terms, *fragments)


@pytest.mark.parametrize(
    ("edit", "fragments"),
    [
        (lambda b: b.update(effective="2029-07-01"), ("dates are out of order", "effective 2029-07-01")),
        (lambda b: b["destruction"].update(deadline="2029-01-01"), ("dates are out of order", "destruction")),
        (
            lambda b: b["policy"]["quasi_identifiers"].append("guardian_name"),
            ("guardian_name is not an element",),
        ),
        (
            lambda b: b["policy"]["quasi_identifiers"].append("last_name"),
            ("last_name is an element the policy drops",),
        ),
        (lambda b: b["policy"]["parameters"]["gpa"].pop("edges"), ("needs the parameter edges",)),
        (lambda b: b["policy"]["parameters"]["birth_date"].pop("to"), ("needs the parameter to",)),
        (lambda b: b["policy"]["parameters"].update(first_name={"as": "fn"}), ("first_name is dropped",)),
        (lambda b: b["policy"]["parameters"].update(sex={"edges": [1, 2]}), ("takes no parameter edges",)),
        (lambda b: b["policy"]["parameters"].update(email={"as": "e"}), ("email, which is not an element",)),
        (lambda b: b["policy"]["parameters"]["gpa"].update(edges=[3, 2, 1]), ("increasing order",)),
        (lambda b: b["policy"]["parameters"]["birth_date"].update(to="decade"), ("'to' must be one of",)),
        (lambda b: b["policy"]["parameters"]["birth_date"].update(to="age"), ("reference_date",)),
        (lambda b: b["policy"]["parameters"]["zip"].update(min_count=0), ("min_count",)),
        (lambda b: b["policy"]["parameters"]["gpa"].update({"as": "sex"}), ("both be written as sex",)),
        (lambda b: b["elements"][4].update(treatment="bucket"), ("birth_date has type date",)),
        (lambda b: b["elements"][5].update(code_set=None), ("sex has type code but no code_set",)),
        (lambda b: b["elements"].append(dict(b["elements"][0])), ("appears twice",)),
        (lambda b: b["parties"][1].update(roles=["provider"]), ("one provider and one recipient",)),
        (lambda b: b["parties"][1].update(fingerprint=b["parties"][0]["fingerprint"]), ("share the same",)),
        (lambda b: b.update(general_offer=True), ("join_as",)),
    ],
)
def test_contradictions_between_elements_policy_and_dates(terms, edit, fragments):
    edit(terms)
    refused(terms, *fragments)


def test_termination_is_signed_and_travels_with_the_file(orgs, terms):
    district, college, stranger = orgs
    a = Agreement.from_terms(terms).sign(district.key).sign(college.key)
    ended = a.terminated_by(college.key, "Study completed early.", now=NOW)
    assert ended.status(TODAY) == "terminated" and not ended.in_force(TODAY)
    again = parse_agreement(ended.to_json_bytes(), source="t.json")
    assert again.terminations[0].reason == "Study completed early." and again.status(TODAY) == "terminated"
    doc = ended.to_document()
    doc["terminations"][0]["reason"] = "Forged reason."
    with pytest.raises(AgreementError, match="termination with a bad signature"):
        parse_agreement(json.dumps(doc), source="t.json")
    with pytest.raises(AgreementError, match="not a party"):
        a.terminated_by(stranger.key, "No.")
    with pytest.raises(AgreementError, match="needs a reason"):
        a.terminated_by(district.key, "  ")


def test_amendment_is_a_new_version_linked_by_hash(orgs, terms):
    district, college, _ = orgs
    v1 = Agreement.from_terms(terms).sign(district.key).sign(college.key)
    changed = copy.deepcopy(terms)
    changed["expires"] = "2030-06-30"
    changed["destruction"]["deadline"] = "2030-09-30"
    v2 = Agreement.from_terms(amendment_terms(v1, changed))
    assert (v2.id, v2.version, v2.previous) == (v1.id, 2, v1.sha256)
    assert v2.status(TODAY) == "draft"
    changed["id"] = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(AgreementError, match="keeps the agreement's id"):
        amendment_terms(v1, changed)


def test_general_offer_lets_a_further_partner_join_the_same_terms(orgs, terms):
    district, college, hill = orgs
    terms["general_offer"] = True
    terms["join_as"] = ["provider"]
    offer = Agreement.from_terms(terms).sign(district.key)
    with pytest.raises(AgreementError, match="not executed yet"):
        offer.joined_by(hill.key, hill.party("provider"))
    offer = offer.sign(college.key)
    joined = offer.joined_by(hill.key, hill.party("provider"), now=NOW)
    assert [p.org for p in joined.providers()] == ["Lakeview USD", "Hillcrest USD"]
    assert joined.sha256 == offer.sha256  # the same terms: nothing re-signed
    reread = parse_agreement(joined.to_json_bytes(), source="j.json")
    assert reread.party(hill.entry["fingerprint"]) is not None
    with pytest.raises(AgreementError, match="open to provider only"):
        offer.joined_by(hill.key, hill.party("recipient"))
    doc = joined.to_document()
    doc["joinders"][0]["party"]["org"] = "Someone Else"
    with pytest.raises(AgreementError, match="joinder with a bad signature"):
        parse_agreement(json.dumps(doc), source="j.json")
    plain = Agreement.from_terms({**terms, "general_offer": False, "join_as": None})
    with pytest.raises(AgreementError, match="not a general offer"):
        plain.joined_by(hill.key, hill.party("provider"))


def test_published_json_schema_is_in_step_with_the_model():
    from agreements._agreement import agreement_json_schema

    published = json.loads((EXAMPLE.parent.parent / "agreement.schema.json").read_text(encoding="utf-8"))
    assert published == agreement_json_schema()
    assert published["properties"]["pathshare_agreement"]["enum"] == [1, 2]  # version 1 is still read
    assert set(published["required"]) >= {"parties", "elements", "policy", "destruction", "legal_basis"}


def test_documentation_names_every_treatment_and_legal_basis():
    from agreements import LEGAL_BASES

    doc = (EXAMPLE.parent.parent / "agreement-schema.md").read_text(encoding="utf-8")
    for name in (*TREATMENT_PARAMETERS, *LEGAL_BASES):
        assert f"`{name}`" in doc, name


def test_element_treatments_build_a_policy_the_engine_accepts():
    """The documented example's rules, identity-mapped (column = element), pass deid's own checks."""
    from deid import ColumnRule, Policy

    a = parse_agreement(EXAMPLE.read_bytes())
    rules = [
        ColumnRule(name, t["treatment"], t["as"], t["quasi_identifier"], t["params"])
        for name, t in a.element_treatments().items()
    ]
    policy = Policy.from_rules(rules, k=a.terms.policy.k, name="The example agreement")
    assert policy.quasi_identifiers == ["birth_year", "sex", "race", "zip3", "school_id"]
    assert policy.rule_for("gpa").params["edges"][-1] == 4.01


def test_signatures_survive_any_layout_of_the_file(orgs, terms):
    """Parties may re-indent or reorder the file: the RFC 8785 bytes, and so the signatures, stay the same."""
    district, college, _ = orgs
    signed = Agreement.from_terms(terms).sign(district.key).sign(college.key)
    doc = signed.to_document()

    def reversed_keys(value):
        if isinstance(value, dict):
            return {k: reversed_keys(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reversed_keys(v) for v in value]
        return value

    for text in (
        json.dumps(doc, sort_keys=True),
        json.dumps(reversed_keys(doc), indent=7, ensure_ascii=True),
        json.dumps(doc, separators=(",", ":"), ensure_ascii=False),
    ):
        again = parse_agreement(text.encode("utf-8"), source="relaid.json")
        assert again.sha256 == signed.sha256 and again.is_executed


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # Any text a person can read (line breaks and tabs included); control, bidi and invisible
    # characters are refused (tests/test_attacks_partner.py).
    purpose=st.text(
        alphabet=st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
        | st.sampled_from("\n\t"),
        min_size=1,
        max_size=60,
    ),
    edges=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
        min_size=2,
        max_size=6,
        unique=True,
    ),
)
def test_any_text_and_numbers_round_trip_through_a_signed_file(orgs, terms, purpose, edges):
    district, college, _ = orgs
    body = copy.deepcopy(terms)
    body["purpose"] = purpose
    body["policy"]["parameters"]["gpa"]["edges"] = sorted(edges)
    signed = Agreement.from_terms(body).sign(district.key).sign(college.key)
    again = parse_agreement(signed.to_json_bytes(), source="round.json")
    assert again.is_executed and again.sha256 == signed.sha256 and again.terms.purpose == purpose


def test_an_agreement_is_not_changed_through_the_dicts_it_came_from_or_gave_out(orgs, terms):
    district, _, _ = orgs
    a = Agreement.from_terms(terms)
    terms["policy"]["k"] = 99
    a.to_document()["policy"]["k"] = 98
    assert a.body["policy"]["k"] == a.terms.policy.k == 11
    signed = a.sign(district.key)
    assert parse_agreement(signed.to_json_bytes()).signed_by(district.entry["fingerprint"])
