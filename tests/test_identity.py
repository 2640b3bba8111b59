"""Organization identity, public card, fingerprint, age identity export."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pyrage
import pytest

from agreements import (
    Card,
    IdentityError,
    PartnerError,
    Vault,
    age_identity,
    create_identity,
    export_age_identity,
    our_card,
    signing_key,
)
from agreements._cards import fingerprint_of, normalize_fingerprint
from agreements._signing import verify_document

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """Fewer SQLCipher KDF iterations for speed: nothing here depends on the key derivation, which
    tests/test_vault.py exercises with SQLCipher's defaults."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture
def vault(tmp_path):
    v = Vault.create(tmp_path / "org.vault", PASS)
    yield v
    v.close()


def test_create_identity_makes_a_self_signed_card(vault):
    card = create_identity(vault, "Lakeview Unified", "district", "dpo@lakeview.example")
    assert card == our_card(vault)
    assert card.org == "Lakeview Unified" and card.kind == "district"
    assert card.age_recipient.startswith("age1")
    assert card.created.endswith("Z")
    assert verify_document(card.signing_key, card.body(), card.signature)
    # The signing key in the vault is the card's key.
    from agreements._signing import public_key_b64

    assert public_key_b64(signing_key(vault)) == card.signing_key
    assert str(age_identity(vault).to_public()) == card.age_recipient
    entry = vault.audit.entries(action="identity.create")[0]
    assert entry.details["fingerprint"] == card.fingerprint()
    assert entry.actor.endswith("(Lakeview Unified)")


def test_only_one_identity_and_inputs_checked(vault):
    create_identity(vault, "Lakeview Unified", "district")
    with pytest.raises(IdentityError, match="already has"):
        create_identity(vault, "Other", "college")
    assert our_card(vault).org == "Lakeview Unified"
    assert vault.audit.entries()[-1].action == "identity.create.refused"


@pytest.mark.parametrize("org, kind", [("", "district"), ("X", "school"), ("a\nb", "college")])
def test_bad_identity_inputs(vault, org, kind):
    with pytest.raises(IdentityError):
        create_identity(vault, org, kind)


def test_no_identity_yet(vault):
    for fn in (our_card, signing_key, age_identity):
        with pytest.raises(IdentityError, match="no organization identity yet") as info:
            fn(vault)
        # what to do is the hint, kept apart from the message, in words for both faces; the action names
        # the step, and the CLI adds its command (tests/test_hints.py)
        assert info.value.hint == "Create it first." and info.value.action == "create_identity"
        assert "pathshare" not in info.value.message


def test_secret_keys_never_appear_in_the_card_or_the_file_unencrypted(vault, tmp_path):
    create_identity(vault, "Lakeview Unified", "district")
    secret = str(age_identity(vault))
    assert secret not in our_card(vault).to_json()
    vault.close()
    raw = (tmp_path / "org.vault").read_bytes()
    assert secret.encode() not in raw and b"Lakeview" not in raw


def test_card_json_round_trip_and_fingerprint_is_stable(vault):
    card = create_identity(vault, "Lakeview Unified", "district", "dpo@lakeview.example")
    text = card.to_json()
    again = Card.from_json(text)
    assert again == card
    assert again.fingerprint() == card.fingerprint()
    # The fingerprint depends only on the canonical body, not on JSON layout.
    compact = json.dumps(json.loads(text), separators=(",", ":"), sort_keys=True)
    assert Card.from_json(compact).fingerprint() == card.fingerprint()
    fp = card.fingerprint()
    assert len(fp) == 23 and fp.count("-") == 3
    assert all(len(g) == 5 for g in fp.split("-"))
    assert normalize_fingerprint(fp.lower().replace("-", " ")) == fp


def test_fingerprint_known_vector():
    # Pins the definition: SHA-256 of the canonical body, first 100 bits, base32 in groups of 5.
    body = {"pathshare_card": 1, "org": "A", "kind": "district", "contact": "", "signing_key": "k",
            "age_recipient": "age1x", "created": "2026-01-01T00:00:00Z"}
    import base64
    import hashlib

    canon = (b'{"age_recipient":"age1x","contact":"","created":"2026-01-01T00:00:00Z","kind":"district",'
             b'"org":"A","pathshare_card":1,"signing_key":"k"}')
    expect = base64.b32encode(hashlib.sha256(canon).digest()).decode()[:20]
    assert fingerprint_of(body).replace("-", "") == expect


def test_altered_card_is_refused(vault):
    card = create_identity(vault, "Lakeview Unified", "district")
    data = card.to_dict()
    data["org"] = "Evil Unified"
    with pytest.raises(PartnerError, match="bad signature"):
        Card.from_json(json.dumps(data))
    data = card.to_dict()
    data["pathshare_card"] = 7
    with pytest.raises(PartnerError, match="version 7"):
        Card.from_json(json.dumps(data))
    data = card.to_dict()
    del data["signature"]
    with pytest.raises(PartnerError, match="missing signature"):
        Card.from_json(json.dumps(data))
    with pytest.raises(PartnerError, match="not valid JSON"):
        Card.from_json("{not json")


def test_export_age_identity_mode_0600_and_decrypts(vault, tmp_path):
    card = create_identity(vault, "Lakeview Unified", "district")
    out = tmp_path / "org.agekey"
    export_age_identity(vault, out)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    text = out.read_text()
    lines = text.splitlines()
    assert lines[-1].startswith("AGE-SECRET-KEY-1")
    assert all(line.startswith("#") for line in lines[:-1])
    assert f"# public key: {card.age_recipient}" in lines
    ciphertext = pyrage.encrypt(b"hello partner", [pyrage.x25519.Recipient.from_str(card.age_recipient)])
    assert pyrage.decrypt(ciphertext, [pyrage.x25519.Identity.from_str(lines[-1])]) == b"hello partner"
    assert vault.audit.entries()[-1].action == "identity.export_age"


def test_exported_identity_works_with_the_age_cli(vault, tmp_path, age_cli):
    card = create_identity(vault, "Lakeview Unified", "district")
    out = tmp_path / "org.agekey"
    export_age_identity(vault, out)
    enc = tmp_path / "msg.age"
    enc.write_bytes(pyrage.encrypt(b"no lock-in", [pyrage.x25519.Recipient.from_str(card.age_recipient)]))
    result = subprocess.run([age_cli, "-d", "-i", str(out), str(enc)], capture_output=True, check=True)
    assert result.stdout == b"no lock-in"


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_init_card_export_and_age_export(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    v = tmp_path / "d.vault"
    code, out, _ = run_cli("--vault", v, "init", "--org", "Lakeview USD", "--kind", "district",
                           "--contact", "dpo@lakeview.example")
    assert code == 0 and "Fingerprint:" in out
    fp = out.split("Fingerprint:")[1].split()[0]
    code, out, _ = run_cli("--vault", v, "card", "export", tmp_path / "card.json")
    assert code == 0 and fp in out
    card = Card.from_json((tmp_path / "card.json").read_text())
    assert card.fingerprint() == fp and card.contact == "dpo@lakeview.example"
    code, out, _ = run_cli("--vault", v, "card", "show", "--json")
    assert code == 0 and json.loads(out)["fingerprint"] == fp
    # A second init on the same vault is refused.
    code, _, err = run_cli("--vault", v, "init", "--org", "Again", "--kind", "college")
    assert code == 1 and "already has an organization identity" in err
    # export-age needs --yes; nothing written without it.
    key = tmp_path / "age.key"
    code, _, err = run_cli("--vault", v, "identity", "export-age", key)
    assert code == 1 and "--yes" in err and not key.exists()
    code, _, _ = run_cli("--vault", v, "identity", "export-age", key, "--yes")
    assert code == 0 and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    code, _, err = run_cli("--vault", v, "identity", "export-age", key, "--yes")
    assert code == 1 and "already exists" in err
    # A bad organization name is refused before any vault is created.
    code, _, err = run_cli("--vault", tmp_path / "new.vault", "init", "--org", " ", "--kind", "college")
    assert code == 1 and "cannot be empty" in err and not (tmp_path / "new.vault").exists()
    code, out, _ = run_cli("--vault", v, "audit", "log", "--json")
    actions = [e["action"] for e in json.loads(out)]
    assert actions == ["vault.create", "identity.create", "card.export", "identity.create.refused",
                       "identity.export_age", "identity.export_age.refused"]
