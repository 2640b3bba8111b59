"""Agreements in the vault: parties checked against partner cards, exchange by files, refusals, queries."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from agreements import (
    AgreementError,
    Vault,
    agreement_by_hash,
    agreement_status,
    agreement_versions,
    amend_agreement,
    create_agreement,
    create_identity,
    destruction_due,
    expiring_agreements,
    export_agreement,
    get_agreement,
    import_agreement,
    import_card,
    join_agreement,
    list_agreements,
    our_card,
    require_in_force,
    revoke_partner,
    sign_agreement,
    terminate_agreement,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"
PASS = "correct horse battery staple"
TODAY = date.today()


class Org:
    def __init__(self, tmp: Path, name: str, org: str, kind: str, *, path: Path | None = None) -> None:
        if path is None:  # a brand-new organization
            self.vault = Vault.create(tmp / f"{name}.vault", PASS)
            self.card = create_identity(self.vault, org, kind, f"{name}@example.org")
        else:  # a copy of a prepared vault
            self.vault = Vault.open(path, PASS)
            self.card = our_card(self.vault)
        self.fp = self.card.fingerprint()
        self.tmp = tmp

    def trust(self, other: Org) -> None:
        import_card(self.vault, other.card, verified=True)

    def actions(self) -> list[str]:
        return [e.action for e in self.vault.audit.entries()]


@pytest.fixture(scope="module")
def _prepared(tmp_path_factory) -> dict[str, Path]:
    """District and college vaults that know and trust each other, built once for the module."""
    base = tmp_path_factory.mktemp("orgs")
    d = Org(base, "district", "Lakeview Unified School District", "district")
    c = Org(base, "college", "Riverbend Community College", "college")
    d.trust(c)
    c.trust(d)
    d.vault.close()
    c.vault.close()
    return {"district": d.vault.path, "college": c.vault.path}


@pytest.fixture
def orgs(_prepared, tmp_path):
    sides = []
    for name, path in _prepared.items():
        copy = tmp_path / path.name
        shutil.copyfile(path, copy)
        sides.append(Org(tmp_path, name, "", "", path=copy))
    d, c = sides
    yield d, c
    d.vault.close()
    c.vault.close()


def example_terms(provider: Org, recipient: Org, **changes) -> dict:
    """The documented example, parties named by fingerprint only, dates around today."""
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body.pop("id")
    reps = [p["authorized_representative"] for p in body["parties"]]
    body["parties"] = [
        {"fingerprint": provider.fp, "roles": ["provider"], "authorized_representative": reps[0]},
        {"fingerprint": recipient.fp, "roles": ["recipient"], "authorized_representative": reps[1]},
    ]
    body["effective"] = (TODAY - timedelta(days=30)).isoformat()
    body["expires"] = (TODAY + timedelta(days=365)).isoformat()
    body["destruction"]["deadline"] = (TODAY + timedelta(days=455)).isoformat()
    body.update(changes)
    return body


def exchange(a: Org, b: Org, agreement_id: str, name: str) -> Path:
    out = a.tmp / name
    export_agreement(a.vault, agreement_id, out)
    import_agreement(b.vault, out)
    return out


def test_draft_fills_parties_from_cards_and_both_sides_execute(orgs):
    d, c = orgs
    draft = create_agreement(d.vault, example_terms(d, c), source="agreement.json")
    assert draft.terms.parties[1].org == "Riverbend Community College"
    assert draft.terms.parties[1].age_recipient == c.card.age_recipient
    assert agreement_status(d.vault, draft) == "draft"
    assert agreement_by_hash(d.vault, "0" * 64) is None
    with pytest.raises(AgreementError, match="no signature yet"):
        export_agreement(d.vault, draft.id, d.tmp / "x.json")
    assert not (d.tmp / "x.json").exists()

    sign_agreement(d.vault, draft.id[:8])  # a unique prefix of the id will do
    exchange(d, c, draft.id, "proposal.json")
    assert agreement_status(c.vault, get_agreement(c.vault, draft.id)) == "proposed"
    signed = sign_agreement(c.vault, draft.id)
    assert signed.is_executed
    exchange(c, d, draft.id, "countersigned.json")
    for side in (d, c):
        a = get_agreement(side.vault, draft.id)
        assert a.is_executed and agreement_status(side.vault, a) == "executed"
        assert require_in_force(side.vault, draft.id).sha256 == draft.sha256
        assert agreement_by_hash(side.vault, draft.sha256).id == draft.id
        assert side.vault.audit.verify()
    assert d.actions()[-6:] == [
        "agreement.created",
        "agreement.export.refused",
        "agreement.signed",
        "agreement.exported",
        "agreement.imported",
        "agreement.executed",
    ]
    assert c.actions()[-4:] == [
        "agreement.imported",
        "agreement.signed",
        "agreement.executed",
        "agreement.exported",
    ]
    entries = [e for e in c.vault.audit.entries() if e.action.startswith("agreement.")]
    assert all(e.agreement == draft.id for e in entries)


def test_only_verified_unrevoked_partners_can_be_parties(orgs, tmp_path):
    d, c = orgs
    stranger = Org(tmp_path, "stranger", "Hillcrest USD", "district")
    import_card(d.vault, stranger.card)  # imported but never verified
    before = len(d.vault.audit)
    with pytest.raises(AgreementError, match="Only verified, unrevoked partners can be parties"):
        create_agreement(d.vault, example_terms(d, stranger))
    assert d.vault.db.execute("SELECT count(*) FROM agreements").fetchone()[0] == 0
    assert d.actions()[-1] == "agreement.create.refused" and len(d.vault.audit) == before + 1
    revoke_partner(d.vault, c.fp, "key lost")
    with pytest.raises(AgreementError, match="Only verified, unrevoked partners"):
        create_agreement(d.vault, example_terms(d, c))
    stranger.vault.close()


def test_a_draft_must_include_us_and_match_the_cards(orgs, tmp_path):
    d, c = orgs
    other = Org(tmp_path, "other", "Hillcrest USD", "district")
    d.trust(other)
    with pytest.raises(AgreementError, match="does not name your organization"):
        create_agreement(d.vault, example_terms(other, c))
    terms = example_terms(d, c)
    terms["parties"][1]["signing_key"] = d.card.signing_key
    with pytest.raises(AgreementError, match=r"parties\[1\]\.signing_key does not match the card"):
        create_agreement(d.vault, terms)
    other.vault.close()


def test_importing_terms_that_differ_from_what_we_signed_is_refused(orgs):
    d, c = orgs
    a = create_agreement(d.vault, example_terms(d, c))
    sign_agreement(d.vault, a.id)
    exchange(d, c, a.id, "proposal.json")
    sign_agreement(c.vault, a.id)
    # The college's copy comes back with different terms, re-signed by the college: a forgery or an edit.
    doc = json.loads((d.tmp / "proposal.json").read_text())
    doc["policy"]["k"] = 2
    doc.pop("signatures")
    from agreements import Agreement, signing_key

    forged = Agreement.from_terms(doc).sign(signing_key(c.vault))
    path = d.tmp / "changed.json"
    path.write_bytes(forged.to_json_bytes())
    held = get_agreement(d.vault, a.id)
    with pytest.raises(AgreementError, match="differs from the version you signed"):
        import_agreement(d.vault, path)
    assert get_agreement(d.vault, a.id) == held
    assert d.actions()[-1] == "agreement.import.refused"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json at all", "bad.json is not valid JSON"),
        (b'{"pathshare_agreement": 7}', "schema version 7"),
    ],
)
def test_bad_files_are_refused_and_audited(orgs, content, message):
    d, _ = orgs
    bad = d.tmp / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(AgreementError, match=message):
        import_agreement(d.vault, bad)
    assert d.actions()[-1] == "agreement.import.refused"
    assert d.vault.db.execute("SELECT count(*) FROM agreements").fetchone()[0] == 0


def test_an_unsigned_file_or_a_tampered_signature_is_refused(orgs):
    d, c = orgs
    a = create_agreement(d.vault, example_terms(d, c))
    unsigned = d.tmp / "unsigned.json"
    unsigned.write_bytes(a.to_json_bytes())
    with pytest.raises(AgreementError, match="carries no signature"):
        import_agreement(c.vault, unsigned)
    sign_agreement(d.vault, a.id)
    out = d.tmp / "p.json"
    export_agreement(d.vault, a.id, out)
    doc = json.loads(out.read_text())
    doc["purpose"] = "Something else entirely."
    out.write_text(json.dumps(doc))
    with pytest.raises(AgreementError, match="bad signature by Lakeview"):
        import_agreement(c.vault, out)
    assert c.vault.db.execute("SELECT count(*) FROM agreements").fetchone()[0] == 0


def test_an_agreement_between_others_is_refused(orgs, tmp_path):
    d, c = orgs
    third = Org(tmp_path, "third", "Hillcrest USD", "district")
    third.trust(d)
    third.trust(c)
    a = create_agreement(d.vault, example_terms(d, c))
    sign_agreement(d.vault, a.id)
    out = d.tmp / "p.json"
    export_agreement(d.vault, a.id, out)
    with pytest.raises(AgreementError, match="you are not a party"):
        import_agreement(third.vault, out)
    # ...and an unknown organization among the parties is refused too.
    fourth = Org(tmp_path, "fourth", "Pine Valley USD", "district")
    fourth.trust(c)
    with pytest.raises(AgreementError, match="not among your verified partners"):
        import_agreement(fourth.vault, out)
    third.vault.close()
    fourth.vault.close()


def test_signing_an_agreement_we_are_not_party_to_is_refused(orgs, tmp_path):
    d, c = orgs
    third = Org(tmp_path, "third", "Hillcrest USD", "district")
    d.trust(third)
    third.trust(d)
    terms = example_terms(d, third, general_offer=True, join_as=["provider"])
    offer = create_agreement(d.vault, terms)
    sign_agreement(d.vault, offer.id)
    exchange(d, third, offer.id, "offer.json")
    sign_agreement(third.vault, offer.id)
    exchange(third, d, offer.id, "back.json")
    # The college imports the executed general offer although it is not (yet) a party...
    c.trust(third)
    exchange(d, c, offer.id, "offer-to-college.json")
    with pytest.raises(AgreementError, match="not a party"):
        sign_agreement(c.vault, offer.id)
    assert c.actions()[-1] == "agreement.sign.refused"
    # ...and joins it by signing the same terms as a further provider.
    rep = {"name": "Dr. Ana Ruiz", "title": "Vice President, Instruction", "email": "aruiz@riverbend.example"}
    joined = join_agreement(c.vault, offer.id, rep)
    assert joined.sha256 == offer.sha256 and c.fp in [p.fingerprint for p in joined.providers()]
    exchange(c, d, offer.id, "joinder.json")
    assert d.actions()[-2:] == ["agreement.imported", "agreement.joined"]
    assert [p.org for p in get_agreement(d.vault, offer.id).providers()] == [
        "Lakeview Unified School District",
        "Riverbend Community College",
    ]
    third.vault.close()


def test_amendment_supersedes_once_executed(orgs):
    d, c = orgs
    v1 = create_agreement(d.vault, example_terms(d, c))
    sign_agreement(d.vault, v1.id)
    exchange(d, c, v1.id, "v1.json")
    sign_agreement(c.vault, v1.id)
    exchange(c, d, v1.id, "v1-back.json")
    terms = example_terms(d, c)
    terms["policy"]["k"] = 20
    v2 = amend_agreement(d.vault, v1.id, terms, source="amendment.json")
    assert (v2.version, v2.previous) == (2, v1.sha256)
    assert require_in_force(d.vault, v1.id).version == 1  # v1 stays in force until v2 is executed
    sign_agreement(d.vault, v1.id)
    exchange(d, c, v1.id, "v2.json")
    sign_agreement(c.vault, v1.id)
    exchange(c, d, v1.id, "v2-back.json")
    statuses = {s.version: s.status for s in list_agreements(d.vault, include_superseded=True)}
    assert statuses == {1: "superseded", 2: "executed"}
    assert require_in_force(d.vault, v1.id).terms.policy.k == 20
    assert "agreement.amended" in d.actions()


def test_termination_travels_and_queries_find_destruction_due(orgs):
    d, c = orgs
    a = create_agreement(d.vault, example_terms(d, c))
    sign_agreement(d.vault, a.id)
    exchange(d, c, a.id, "p.json")
    sign_agreement(c.vault, a.id)
    exchange(c, d, a.id, "b.json")
    assert [s.id for s in expiring_agreements(d.vault, 400)] == [a.id]
    assert expiring_agreements(d.vault, 30) == []
    assert destruction_due(d.vault) == []
    later = TODAY + timedelta(days=366)
    assert [s.status for s in destruction_due(d.vault, later)] == ["expired"]

    terminate_agreement(c.vault, a.id, "The study ended early.")
    exchange(c, d, a.id, "t.json")
    assert d.actions()[-2:] == ["agreement.imported", "agreement.terminated"]
    with pytest.raises(AgreementError, match="not in force: it was terminated"):
        require_in_force(d.vault, a.id)
    due = destruction_due(d.vault)
    assert [s.status for s in due] == ["terminated"]
    with pytest.raises(AgreementError, match="terminated; it can no longer be signed"):
        sign_agreement(d.vault, a.id)


def test_the_vault_keeps_agreements_across_reopening(orgs):
    d, c = orgs
    a = create_agreement(d.vault, example_terms(d, c))
    sign_agreement(d.vault, a.id)
    path = d.vault.path
    d.vault.close()
    d.vault = Vault.open(path, PASS)
    again = get_agreement(d.vault, a.id)
    assert again.sha256 == a.sha256 and again.signed_by(d.fp) and not again.is_executed


def test_signing_is_refused_once_a_co_party_was_revoked(orgs):
    d, c = orgs
    a = create_agreement(d.vault, example_terms(d, c))
    sign_agreement(d.vault, a.id)
    exchange(d, c, a.id, "p.json")
    revoke_partner(c.vault, d.fp, "laptop stolen")
    with pytest.raises(AgreementError, match="not among your verified partners"):
        sign_agreement(c.vault, a.id)
    assert not get_agreement(c.vault, a.id).signed_by(c.fp)
    assert c.actions()[-1] == "agreement.sign.refused"


def test_a_draft_naming_us_under_a_wrong_fingerprint_gets_a_precise_sentence(orgs):
    d, c = orgs
    terms = example_terms(d, c)
    terms["parties"][0] = {**terms["parties"][0], "org": d.card.org, "fingerprint": "AAAAA-AAAAA-AAAAA-AAAAA"}
    with pytest.raises(AgreementError, match="with a fingerprint other than your card's"):
        create_agreement(d.vault, terms, source="draft.json")


def test_an_unsigned_draft_is_corrected_in_place(orgs):
    d, c = orgs
    a = create_agreement(d.vault, example_terms(d, c))
    fixed_terms = example_terms(d, c)
    fixed_terms["title"] = "Corrected title"
    fixed = amend_agreement(d.vault, a.id, fixed_terms, source="fixed.json")
    assert (fixed.id, fixed.version, fixed.previous, fixed.title) == (a.id, 1, None, "Corrected title")
    assert [v.title for v in agreement_versions(d.vault, a.id)] == ["Corrected title"]
    sign_agreement(d.vault, a.id)
    v2 = amend_agreement(d.vault, a.id, example_terms(d, c))
    assert (v2.version, v2.previous) == (2, fixed.sha256)
    v2_fixed = amend_agreement(d.vault, a.id, {**example_terms(d, c), "title": "Second try"})
    assert (v2_fixed.version, v2_fixed.previous, v2_fixed.title) == (2, fixed.sha256, "Second try")
    assert len(agreement_versions(d.vault, a.id)) == 2
    assert d.vault.audit.verify()


def test_an_id_is_named_by_its_full_text_or_a_unique_prefix_of_four_or_more():
    """One rule for agreements and packages (agreements._idprefix.match_id)."""
    import pytest

    from agreements._idprefix import match_id
    from agreements.errors import AgreementError

    ids = ["abcd1234", "abcd9999", "abcd", "ffff0000"]

    def pick(text: str) -> str:
        return match_id(text, lambda t: [i for i in ids if i.startswith(t)], noun="agreement",
                        missing="There is no agreement {text} here.", error=AgreementError,
                        list_action="list_agreements")  # fmt: skip

    assert pick(" FFFF") == "ffff0000" and pick("abcd1") == "abcd1234"
    assert pick("abcd") == "abcd"  # a full id wins over the longer ids it starts
    for text, words in [("abcd12345", "There is no agreement abcd12345 here."),
                        ("ab", "too short to name an agreement"), ("", "No agreement id was given."),
                        ("abcd9", None)]:  # fmt: skip
        if words is None:
            assert pick(text) == "abcd9999"
            continue
        with pytest.raises(AgreementError) as err:
            pick(text)
        assert words in err.value.message
    ids.append("abcd9998")
    with pytest.raises(AgreementError, match="names more than one agreement"):
        pick("abcd9")
