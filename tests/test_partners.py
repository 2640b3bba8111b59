"""Partner cards: import (bad JSON, bad signature, key changed), list, verify, revoke, trust rules."""

from __future__ import annotations

import json

import pytest

from agreements import (
    PartnerError,
    Vault,
    create_identity,
    find_partner,
    import_card,
    list_partners,
    our_card,
    revoke_partner,
    trusted_partner,
    verify_partner,
)

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """Fewer SQLCipher KDF iterations for speed: nothing here depends on the key derivation, which
    tests/test_vault.py exercises with SQLCipher's defaults."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture
def two(tmp_path):
    """Two organizations' vaults, and a third that will claim to be the first."""
    college = Vault.create(tmp_path / "college.vault", PASS)
    create_identity(college, "Riverside College", "college")
    district = Vault.create(tmp_path / "district.vault", PASS)
    create_identity(district, "Lakeview USD", "district", "dpo@lakeview.example")
    (tmp_path / "district.json").write_text(our_card(district).to_json())
    yield college, district
    college.close()
    district.close()


def test_import_list_verify_revoke(two, tmp_path):
    college, district = two
    card = our_card(district)
    result = import_card(college, tmp_path / "district.json")
    assert result.new and not result.key_changed
    assert card.fingerprint() in result.message
    p = result.partner
    assert (p.verified, p.revoked, p.status) == (False, False, "unverified")
    assert [x.fingerprint for x in list_partners(college)] == [card.fingerprint()]
    with pytest.raises(PartnerError, match="not verified"):
        trusted_partner(college, fingerprint=card.fingerprint())
    # Fingerprints may be typed loosely over the phone.
    p = verify_partner(college, card.fingerprint().lower().replace("-", " "))
    assert p.verified and p.verified_at
    assert trusted_partner(college, signing_key=card.signing_key).org == "Lakeview USD"
    assert find_partner(college, age_recipient=card.age_recipient).fingerprint == card.fingerprint()
    p = revoke_partner(college, card.fingerprint(), "contract ended")
    assert p.revoked and p.status == "revoked"
    with pytest.raises(PartnerError, match="revoked"):
        trusted_partner(college, fingerprint=card.fingerprint())
    with pytest.raises(PartnerError, match="revoked"):
        verify_partner(college, card.fingerprint())
    actions = [e.action for e in college.audit.entries(action="partner.")]
    assert actions == ["partner.import", "partner.verify", "partner.revoke", "partner.verify.refused"]
    assert all(e.partner == card.fingerprint() for e in college.audit.entries(action="partner."))
    assert college.audit.verify().ok


def test_reimport_is_idempotent(two, tmp_path):
    college, _ = two
    import_card(college, tmp_path / "district.json")
    again = import_card(college, tmp_path / "district.json")
    assert not again.new and "already known" in again.message
    assert len(list_partners(college)) == 1
    upgraded = import_card(college, tmp_path / "district.json", verified=True)
    assert upgraded.partner.verified


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda text: "{not json", "not valid JSON"),
        (lambda text: text.replace("Lakeview USD", "Lakeview U5D"), "bad signature"),
        (lambda text: json.dumps({**json.loads(text), "pathshare_card": 2}), "card version 2"),
        (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "signature"}),
         "missing signature"),
        (lambda text: json.dumps({**json.loads(text), "signature": ""}), "not signed"),
        (lambda text: json.dumps({**json.loads(text), "age_recipient": "age1nope"}), "age recipient"),
        (lambda text: json.dumps([1, 2]), "not a PathShare card"),
    ],
)
def test_bad_cards_are_refused_and_logged(two, tmp_path, mutate, message):
    college, _ = two
    bad = tmp_path / "bad.json"
    bad.write_text(mutate((tmp_path / "district.json").read_text()))
    before = college.audit.head()[0]
    with pytest.raises(PartnerError, match=message) as info:
        import_card(college, bad)
    assert "bad.json" in str(info.value)
    assert list_partners(college) == []
    refused = college.audit.entries()[-1]
    assert refused.seq == before + 1 and refused.action == "partner.import.refused"


def test_own_card_is_refused(two, tmp_path):
    _, district = two
    with pytest.raises(PartnerError, match="own card"):
        import_card(district, tmp_path / "district.json")


def test_changed_key_for_a_known_organization_warns_and_is_not_trusted(two, tmp_path):
    college, _ = two
    import_card(college, tmp_path / "district.json", verified=True)
    impostor = Vault.create(tmp_path / "impostor.vault", PASS)
    fake = create_identity(impostor, "lakeview usd", "district")  # same org, any case
    impostor.close()
    result = import_card(college, fake)
    assert result.key_changed and result.new
    assert "WARNING" in result.message and "impersonation" in result.message
    assert result.previous and result.previous[0].org == "Lakeview USD"
    assert not result.partner.verified
    with pytest.raises(PartnerError, match="not verified"):
        trusted_partner(college, fingerprint=fake.fingerprint())
    entry = college.audit.entries(action="partner.import")[-1]
    assert entry.details["key_changed"] is True
    # Asking to mark such a card verified at import is refused and changes nothing.
    impostor2 = Vault.create(tmp_path / "impostor2.vault", PASS)
    fake2 = create_identity(impostor2, "Lakeview USD", "district")
    impostor2.close()
    with pytest.raises(PartnerError, match="different key"):
        import_card(college, fake2, verified=True)
    assert find_partner(college, fingerprint=fake2.fingerprint()) is None


def test_unknown_fingerprint(two):
    college, _ = two
    with pytest.raises(PartnerError, match="No partner"):
        verify_partner(college, "AAAAA-BBBBB-CCCCC-DDDDD")
    with pytest.raises(PartnerError, match="not a card fingerprint"):
        verify_partner(college, "12345")


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_partner_commands(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    d, c = tmp_path / "d.vault", tmp_path / "c.vault"
    assert run_cli("--vault", d, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
    assert run_cli("--vault", c, "init", "--org", "Riverside College", "--kind", "college")[0] == 0
    assert run_cli("--vault", d, "card", "export", tmp_path / "d.json")[0] == 0
    fp = json.loads(run_cli("--vault", d, "card", "show", "--json")[1])["fingerprint"]
    code, out, _ = run_cli("--vault", c, "partner", "import", tmp_path / "d.json")
    assert code == 0 and fp in out
    code, out, _ = run_cli("--vault", c, "partner", "list")
    assert code == 0 and fp in out and "unverified" in out
    assert run_cli("--vault", c, "partner", "verify", fp)[0] == 0
    rows = json.loads(run_cli("--vault", c, "partner", "list", "--json")[1])
    assert rows[0]["status"] == "verified" and rows[0]["org"] == "Lakeview USD"
    code, out, _ = run_cli("--vault", c, "partner", "revoke", fp)
    assert code == 0 and "revoked" in out
    code, out, _ = run_cli("--vault", c, "audit", "log", "--json", "--partner", fp.lower().replace("-", ""))
    assert [e["action"] for e in json.loads(out)] == ["partner.import", "partner.verify", "partner.revoke"]
    (tmp_path / "bad.json").write_text("{")
    code, _, err = run_cli("--vault", c, "partner", "import", tmp_path / "bad.json")
    assert code == 1 and err.strip() == "pathshare: The card file bad.json is not valid JSON (line 1)."
    code, _, err = run_cli("--vault", c, "partner", "verify", "AAAAA-BBBBB-CCCCC-DDDDD")
    assert code == 1 and "No partner" in err


def test_cli_key_change_warning(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    c = tmp_path / "c.vault"
    assert run_cli("--vault", c, "init", "--org", "Riverside College", "--kind", "college")[0] == 0
    for name in ("real", "fake"):
        v = tmp_path / f"{name}.vault"
        assert run_cli("--vault", v, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
        assert run_cli("--vault", v, "card", "export", tmp_path / f"{name}.json")[0] == 0
    assert run_cli("--vault", c, "partner", "import", tmp_path / "real.json", "--verified")[0] == 0
    code, _, err = run_cli("--vault", c, "partner", "import", tmp_path / "fake.json")
    assert code == 0 and "WARNING" in err and "impersonation" in err
    code, _, err = run_cli("--vault", c, "partner", "import", tmp_path / "fake.json", "--verified")
    # Already imported (unverified); --verified on a changed key stays refused.
    rows = json.loads(run_cli("--vault", c, "partner", "list", "--json")[1])
    assert sorted(r["status"] for r in rows) == ["unverified", "verified"]
