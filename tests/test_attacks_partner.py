"""Attacks from issue 20 that concern partners, names, passphrases and the audit actor (items 4, 5, 6, 9,
13, 14). Each test performs the attack and fails if it works again."""

from __future__ import annotations

import os
import pwd

import pytest

from agreements import Vault, create_identity

PASS = "correct horse battery staple"


# ------------------------------------------------------------------ 14: the audit actor from the OS


def test_attack_logname_spoofs_the_audit_actor(tmp_path, monkeypatch):
    """`LOGNAME=jsmith pathshare …` must not put jsmith in the log: the actor is the OS account."""
    real = pwd.getpwuid(os.getuid()).pw_name
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "jsmith")
    vault = Vault.create(tmp_path / "org.vault", PASS)
    try:
        create_identity(vault, "Lakeview USD", "district")
        vault.audit.append("test.event")
        users = {e.user for e in vault.audit.entries()}
    finally:
        vault.close()
    assert users == {real}
    assert real != "jsmith"


# The account name's branches (POSIX account database, Windows GetUserNameW) are tested in
# tests/test_platform.py, with the rest of the platform seam.


# ------------------------------------------------------------------ 13: weak passphrases


@pytest.mark.parametrize(
    "weak",
    [
        "Password2026!!",  # a common word, a year, punctuation: zxcvbn 3, accepted before
        "Riverbend2026!!",  # the organization's own name: scored 4 when the name was not given
        "Community2026!!",  # a word of the name
        "ir@riverbend.example 1",  # the contact
        "PathShare2026!!",  # what anyone attacking a PathShare vault tries first
    ],
)
def test_attack_guessable_passphrase_is_accepted(tmp_path, weak):
    from agreements import WeakPassphrase

    with pytest.raises(WeakPassphrase, match="too weak"):
        Vault.create(
            tmp_path / "college.vault",
            weak,
            user_inputs=("Riverbend Community College", "ir@riverbend.example"),
        )
    assert list(tmp_path.iterdir()) == []


def test_attack_org_name_passphrase_at_init_is_refused(run_cli, tmp_path, monkeypatch):
    """`pathshare init` gives the organization's name and contact to the strength check."""
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "Riverbend2026!!")
    code, _out, err = run_cli(
        "--vault", tmp_path / "c.vault", "init", "--org", "Riverbend Community College", "--kind", "college"
    )
    assert code == 1 and "too weak" in err and "organization's name" in err
    assert not (tmp_path / "c.vault").exists()


def test_attack_org_name_passphrase_on_change_is_refused(tmp_path):
    from agreements import WeakPassphrase

    vault = Vault.create(tmp_path / "org.vault", PASS)
    try:
        create_identity(vault, "Riverbend Community College", "college", "ir@riverbend.example")
        with pytest.raises(WeakPassphrase, match="organization's name"):
            vault.change_passphrase("Riverbend2026!!")
    finally:
        vault.close()


def test_strong_passphrase_still_accepted_with_the_name_known(tmp_path):
    vault = Vault.create(
        tmp_path / "org.vault",
        "tidal mango quarry lantern",
        user_inputs=("Riverbend Community College", "ir@riverbend.example"),
    )
    vault.close()


# ------------------------------------------------------------------ 4, 5, 6: revoked and hijacked keys


@pytest.fixture
def extract(tmp_path):
    src = tmp_path / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    return src


def _seal(org, agreement_id, extract, out):
    from agreements import seal_for_agreement

    return seal_for_agreement(org.vault, agreement_id, [("students.csv", extract, 2)], {"rows_out": 2}, out)


def _card_from(vault, **changes):
    """A card self-signed with ``vault``'s signing key: its own fields, with ``changes``."""
    from datetime import UTC, datetime

    from agreements import our_card, signing_key
    from agreements._cards import make_card

    card = our_card(vault)
    fields = {
        "org": card.org,
        "kind": card.kind,
        "contact": card.contact,
        "age_recipient": card.age_recipient,
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    } | changes
    return make_card(signing_key(vault), **fields)


def test_attack_revoked_partner_receives_new_package(sides, tmp_path, extract):
    """After `partner revoke … --reason "age key compromised"`, nothing is sealed to that key."""
    from agreements import PartnerError, revoke_partner

    d, c, agreement_id = sides
    revoke_partner(d.vault, c.fp, reason="age key compromised")
    out = tmp_path / "p.age"
    with pytest.raises(PartnerError) as caught:
        _seal(d, agreement_id, extract, out)
    message = str(caught.value)
    assert "Riverbend Community College" in message and "revoked" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(("p.age", ".p.age"))]
    assert d.last() == "package.seal_refused"


def test_attack_revoked_partner_receives_new_package_by_cli_prepare(tmp_path, run_cli, monkeypatch):
    """The same attack on the command line, `prepare` after `partner revoke`, against the demo's vaults."""
    from agreements import run_demo

    passphrase = "correct horse battery staple 42"
    work = tmp_path / "demo"
    run_demo(work, rows=300, passphrase=passphrase, say=lambda _line: None)
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", passphrase)
    vault = Vault.open(work / "district.vault", passphrase)
    try:
        agreement_id = vault.db.execute("SELECT id FROM agreements LIMIT 1").fetchone()[0]
        college = vault.db.execute("SELECT fingerprint FROM partners").fetchone()[0]
    finally:
        vault.close()
    code, _out, err = run_cli(
        "--vault", work / "district.vault", "partner", "revoke", college, "--reason", "age key compromised"
    )
    assert code == 0, err
    out = tmp_path / "again.age"
    code, _out, err = run_cli(
        "--vault", work / "district.vault", "prepare", work / "district-extract.csv",
        "--agreement", agreement_id, "--out", out,
    )  # fmt: skip
    assert code == 1 and "Riverbend Community College" in err and "revoked" in err
    assert err.count("\n") == 1 and not out.exists()


def test_attack_package_from_revoked_partner_is_opened(sides, tmp_path, extract):
    from agreements import PackageRejected, open_received, revoke_partner

    d, c, agreement_id = sides
    sealed = _seal(d, agreement_id, extract, tmp_path / "p.age")
    revoke_partner(c.vault, d.fp, reason="signing key stolen")
    with pytest.raises(PackageRejected, match=r"Lakeview Unified School District.*revoked"):
        open_received(c.vault, sealed.path, tmp_path / "inbox")
    assert not (tmp_path / "inbox").exists()
    assert c.last() == "package.rejected"


def test_attack_receipt_and_certificate_from_revoked_partner_are_accepted(sides, tmp_path, extract):
    from agreements import (
        SENT,
        PackageRejected,
        destroy,
        get_package,
        import_certificate_file,
        import_receipt_file,
        open_received,
        revoke_partner,
    )

    d, c, agreement_id = sides
    sealed = _seal(d, agreement_id, extract, tmp_path / "p.age")
    open_received(c.vault, sealed.path, tmp_path / "inbox", receipt=tmp_path / "receipt.json")
    destroy(c.vault, sealed.manifest.package_id, tmp_path / "certificate.json")
    revoke_partner(d.vault, c.fp, reason="age key compromised")
    with pytest.raises(PackageRejected, match=r"receipt from Riverbend Community College.*revoked"):
        import_receipt_file(d.vault, tmp_path / "receipt.json")
    assert d.last() == "package.receipt_rejected"
    with pytest.raises(PackageRejected, match=r"certificate from Riverbend Community College.*revoked"):
        import_certificate_file(d.vault, tmp_path / "certificate.json")
    assert d.last() == "package.certificate_rejected"
    record = get_package(d.vault, sealed.manifest.package_id, SENT)
    assert record.delivered_to == () and record.destroyed_by == () and not record.closed


def test_attack_revoked_key_returns_as_new_card(sides):
    """The revoked keys re-signed with a new `created` date: a new fingerprint, same keys — refused."""
    from agreements import PartnerError, find_partner, import_card, revoke_partner

    d, c, _ = sides
    revoke_partner(d.vault, c.fp, reason="age key compromised")
    again = _card_from(c.vault)
    assert again.fingerprint() != c.fp
    with pytest.raises(PartnerError, match=r"Riverbend Community College.*revoked"):
        import_card(d.vault, again, verified=True)
    assert d.last() == "partner.import.refused"
    assert find_partner(d.vault, fingerprint=again.fingerprint()) is None


def test_attack_revoked_age_key_returns_under_a_new_signing_key(sides, tmp_path):
    """Only the age key is reused (a fresh signing key): revocation of the age key still holds."""
    from agreements import PartnerError, import_card, revoke_partner

    d, c, _ = sides
    revoke_partner(d.vault, c.fp, reason="age key compromised")
    fresh = Vault.create(tmp_path / "fresh.vault", PASS)
    try:
        create_identity(fresh, "Riverbend Community College", "college", "ir@riverbend.example")
        card = _card_from(fresh, age_recipient=c.card.age_recipient)
    finally:
        fresh.close()
    with pytest.raises(PartnerError, match=r"age key.*revoked"):
        import_card(d.vault, card)


def test_attack_twin_card_imported_before_the_revocation_still_receives(sides, tmp_path, extract):
    """A second card with the same keys, already in the vault when the first is revoked, is revoked too."""
    from agreements import PartnerError, find_partner, import_card, revoke_partner

    d, c, agreement_id = sides
    twin = _card_from(c.vault, contact="new-ir@riverbend.example")
    import_card(d.vault, twin, verified=True)
    revoke_partner(d.vault, c.fp, reason="age key compromised")
    assert find_partner(d.vault, fingerprint=twin.fingerprint()).revoked
    with pytest.raises(PartnerError, match="revoked"):
        _seal(d, agreement_id, extract, tmp_path / "p.age")


def test_attack_card_hijacks_another_partners_age_key(sides, tmp_path):
    """An impostor's card carrying the college's public age key (under the impostor's own signing key)."""
    from agreements import PartnerError, find_partner, import_card

    d, c, _ = sides
    evil = Vault.create(tmp_path / "evil.vault", PASS)
    try:
        create_identity(evil, "Evil Employer", "employer", "x@evil.example")
        hijack = _card_from(evil, age_recipient=c.card.age_recipient)
        ours = _card_from(evil, age_recipient=d.card.age_recipient)
    finally:
        evil.close()
    with pytest.raises(PartnerError, match="age key belongs to Riverbend Community College"):
        import_card(d.vault, hijack)
    assert d.last() == "partner.import.refused"
    assert find_partner(d.vault, fingerprint=hijack.fingerprint()) is None
    with pytest.raises(PartnerError, match="this organization's own age key"):
        import_card(d.vault, ours)


def test_attack_card_hijacks_another_partners_signing_key(sides):
    """The college's signing key on a card naming another organization."""
    from agreements import PartnerError, import_card

    d, c, _ = sides
    renamed = _card_from(c.vault, org="Lakeview Adult School")
    with pytest.raises(PartnerError, match="signing key belongs to Riverbend Community College"):
        import_card(d.vault, renamed)


def test_attack_hijacking_card_in_the_vault_takes_over_receipts_and_certificates(sides, tmp_path, extract):
    """A hijacking card that got into a vault before the import check (an older PathShare) no longer
    captures the college's packages: recipients are recorded by the agreement's party fingerprints, the
    college's receipt is accepted and the impostor's certificate refused."""
    from agreements import (
        SENT,
        PackageRejected,
        get_package,
        import_destruction_certificate,
        import_receipt_file,
        make_destruction_certificate,
        open_received,
    )

    d, c, agreement_id = sides
    evil = Vault.create(tmp_path / "evil.vault", PASS)
    try:
        create_identity(evil, "Evil Employer", "employer", "x@evil.example")
        hijack = _card_from(evil, age_recipient=c.card.age_recipient)
        from agreements import signing_key

        evil_key = signing_key(evil)
    finally:
        evil.close()
    # Planted the way an older PathShare imported it (verified, newest): straight into the table.
    with d.vault.transaction() as conn:
        conn.execute(
            "INSERT INTO partners(fingerprint, org, kind, signing_key, age_recipient, card, imported, "
            "verified_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (hijack.fingerprint(), hijack.org, hijack.kind, hijack.signing_key, hijack.age_recipient,
             hijack.to_json(), "2099-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        )  # fmt: skip
    sealed = _seal(d, agreement_id, extract, tmp_path / "p.age")
    assert sealed.record.recipients == (c.fp,)
    open_received(c.vault, sealed.path, tmp_path / "inbox", receipt=tmp_path / "receipt.json")
    import_receipt_file(d.vault, tmp_path / "receipt.json")
    forged = make_destruction_certificate(
        package_id=sealed.manifest.package_id,
        manifest_hash=sealed.manifest.hash,
        agreement_id=agreement_id,
        recipient_key=evil_key,
        recipient_fingerprint=hijack.fingerprint(),
        method="deleted",
        statement="All gone.",
    )
    with pytest.raises(PackageRejected, match="Evil Employer is not a recipient"):
        import_destruction_certificate(d.vault, forged)
    record = get_package(d.vault, sealed.manifest.package_id, SENT)
    assert record.delivered_to == (c.fp,) and record.destroyed_by == () and not record.closed


# ------------------------------------------------------------------ 9: lookalike names, terminal escapes


def _stranger_card(tmp_path, org, name="evil", **changes):
    """A well-signed card for ``org`` made with a new identity's keys (what an impostor can send)."""
    evil = Vault.create(tmp_path / f"{name}.vault", PASS)
    try:
        create_identity(evil, "Some Employer", "employer", "x@evil.example")
        return _card_from(evil, org=org, **changes)
    finally:
        evil.close()


@pytest.mark.parametrize(
    "lookalike",
    [
        "Riverbend Community \u0421ollege",  # Cyrillic capital ES for the C
        "Riv\u0435rbend Community College",  # Cyrillic small IE for the e
        "Riverbend Community CoIIege",  # capital I for l
        "Riverbend\u200b Community College",  # a zero-width space
        "RIVERBEND COMMUNITY COLLEGE",
        "Riverbend Community Co11ege",  # digits for l
    ],
)
def test_attack_lookalike_name_imports_verified_without_warning(sides, tmp_path, lookalike):
    """A card whose name only looks like a known partner's is a key change: loud, unverified."""
    from agreements import PartnerError, find_partner, import_card

    d, _, _ = sides
    card = _stranger_card(tmp_path, lookalike)
    if "\u200b" in lookalike:  # a zero-width space does not get into a card at all
        with pytest.raises(PartnerError, match="invisible characters in its organization name"):
            import_card(d.vault, card)
        return
    with pytest.raises(PartnerError, match="already hold a different key for Riverbend Community College"):
        import_card(d.vault, card, verified=True)
    result = import_card(d.vault, card)
    assert result.key_changed and "WARNING" in result.message and "impersonation" in result.message
    assert not find_partner(d.vault, fingerprint=card.fingerprint()).verified


def test_attack_lookalike_of_our_own_name_is_imported(sides, tmp_path):
    from agreements import PartnerError, import_card

    d, _, _ = sides
    card = _stranger_card(tmp_path, "Lakeview Unified School Distr\u0456ct")  # Cyrillic і
    with pytest.raises(PartnerError, match="looks like, this organization's own name"):
        import_card(d.vault, card)
    assert d.last() == "partner.import.refused"


@pytest.mark.parametrize(
    "org",
    ["Riverbend\x1b[2K\rLakeview Unified", "Riverbend \u202eegelloC", "Riverbend\nCommunity College"],
)
def test_attack_escape_sequence_in_card_name_imports(sides, tmp_path, org):
    from agreements import PartnerError, import_card

    d, _, _ = sides
    card = _stranger_card(tmp_path, org)
    path = tmp_path / "card.json"
    path.write_text(card.to_json(), encoding="utf-8")
    with pytest.raises(PartnerError) as caught:
        import_card(d.vault, path)
    message = str(caught.value)
    assert "control, text-direction or invisible characters in its organization name" in message
    assert message.isprintable()
    assert d.last() == "partner.import.refused"


def test_attack_terminal_escapes_reach_the_terminal(tmp_path, run_cli, monkeypatch):
    """A card with escape sequences and a bidi override that got into a vault (an older PathShare):
    `partner list`, its JSON and `audit log` print them inert, never raw."""
    import json

    org = "Evil\x1b[2K\x1b[1A\rRiverbend Community College \u202eegelloC"
    card = _stranger_card(tmp_path, org)
    vault = Vault.create(tmp_path / "org.vault", PASS)
    try:
        create_identity(vault, "Lakeview USD", "district")
        with vault.transaction() as conn:
            conn.execute(
                "INSERT INTO partners(fingerprint, org, kind, signing_key, age_recipient, card, imported, "
                "verified_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (card.fingerprint(), card.org, card.kind, card.signing_key, card.age_recipient,
                 card.to_json(), "2026-01-01T00:00:00Z"),
            )  # fmt: skip
            vault.audit.append("partner.import", partner=card.fingerprint(), details={"org": org}, conn=conn)
    finally:
        vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    printed = []
    commands = [
        ("partner", "list"), ("partner", "list", "--json"), ("audit", "log"), ("audit", "log", "--json")
    ]  # fmt: skip
    for args in commands:
        code, out, err = run_cli("--vault", tmp_path / "org.vault", *args)
        assert code == 0, err
        for raw in ("\x1b", "\r", "\u202e"):
            assert raw not in out and raw not in err, (args, raw)
        printed.append(out)
    assert "\\x1b[2K" in printed[0] and "\\u202e" in printed[0]
    # JSON stays JSON, and it still says what the card says.
    assert json.loads(printed[1])[0]["org"] == org


def test_attack_bidi_override_in_agreement_imports(tmp_path):
    """A title that reads differently than it is: refused by the one agreement parser (imports, drafts)."""
    import json
    from pathlib import Path

    from agreements import AgreementError, parse_agreement

    example = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"
    doc = json.loads(example.read_text(encoding="utf-8"))
    doc["title"] = "Dual enrollment \u202e2029 litnu\u202c study"
    path = tmp_path / "agreement.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(AgreementError, match=r"title: holds control, text-direction or invisible characters"):
        parse_agreement(path.read_bytes(), source=path.name)


def test_attack_escape_sequence_in_destruction_certificate(sides, tmp_path, extract):
    from agreements import (
        SENT,
        PackageRejected,
        get_package,
        import_destruction_certificate,
        make_destruction_certificate,
        open_received,
        signing_key,
    )

    d, c, agreement_id = sides
    sealed = _seal(d, agreement_id, extract, tmp_path / "p.age")
    open_received(c.vault, sealed.path, tmp_path / "inbox")
    cert = make_destruction_certificate(
        package_id=sealed.manifest.package_id,
        manifest_hash=sealed.manifest.hash,
        agreement_id=agreement_id,
        recipient_key=signing_key(c.vault),
        recipient_fingerprint=c.fp,
        method="deleted\x1b[1A\x1b[2K\rAll copies destroyed and verified by the district",
        statement="Done.",
    )
    with pytest.raises(PackageRejected, match="control, text-direction or invisible characters"):
        import_destruction_certificate(d.vault, cert)
    assert get_package(d.vault, sealed.manifest.package_id, SENT).destroyed_by == ()


def test_attack_bidi_override_shown_in_the_app(qtbot):
    """The app's shared display helpers show control and bidi characters as inert escapes."""
    from PySide6.QtWidgets import QTableWidget

    from desktop.ui.partners_page import esc, fill_table
    from desktop.ui.widgets import MessageBar, paragraph

    name = "Riverbend \u202eegelloC\x1b[2K"
    table = QTableWidget(1, 1)
    qtbot.addWidget(table)
    fill_table(table, [[name]])
    label = paragraph(name)
    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.show_error(f"Refused the card for {name}.")
    for text in (table.item(0, 0).text(), label.text(), bar.text(), esc(name)):
        assert "\u202e" not in text and "\x1b" not in text
        assert "\\u202e" in text
