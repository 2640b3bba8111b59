"""Package records in two real vaults: sent/opened, replay, receipts, destruction certificates, deadlines."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from partners_setup import TODAY, Org

from agreements import (
    RECEIVED,
    SENT,
    Manifest,
    age_identity,
    certify_destruction,
    check_not_replayed,
    get_package,
    import_destruction_certificate,
    import_receipt,
    list_packages,
    make_receipt,
    open_package,
    outstanding_past_deadline,
    record_received,
    record_rejected,
    record_sent,
    seal,
    signing_key,
)
from agreements.errors import PackageRejected


def _send(d: Org, c: Org, agreement_id: str, tmp_path: Path) -> tuple[Manifest, Path]:
    from agreements import require_in_force

    agreement = require_in_force(d.vault, agreement_id)
    src = tmp_path / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\n", encoding="utf-8")
    pkg = tmp_path / "outbox.age"
    manifest = seal(
        [("students.csv", src, 1)],
        {"rows_in": 1},
        agreement_id=agreement.id,
        agreement_hash=agreement.sha256,
        sender_key=signing_key(d.vault),
        sender_fingerprint=d.fp,
        recipients=[c.card.age_recipient],
        audit_head=d.vault.audit.head(),
        out=pkg,
    )
    record_sent(d.vault, manifest, pkg, [c.fp])
    return manifest, pkg


def _receive(c: Org, pkg: Path, out: Path) -> Manifest:
    opened = open_package(
        pkg,
        age_identity(c.vault),
        out,
        verify_sender=c.verify_sender,
        check_manifest=lambda m: check_not_replayed(c.vault, m),
    )
    from agreements import require_in_force

    record_received(c.vault, opened.manifest, out, require_in_force(c.vault, opened.manifest.agreement_id))
    return opened.manifest


def test_sent_opened_replay_receipt_and_destruction(sides, tmp_path: Path) -> None:
    d, c, agreement_id = sides
    manifest, pkg = _send(d, c, agreement_id, tmp_path)
    sent = get_package(d.vault, manifest.package_id, SENT)
    assert sent.recipients == (c.fp,) and sent.files == 1 and not sent.closed and sent.delivered_to == ()
    assert "package.sealed" in d.actions()

    assert _receive(c, pkg, tmp_path / "inbox") == manifest
    received = get_package(c.vault, manifest.package_id, RECEIVED)
    assert received.sender == d.fp and received.manifest_hash == manifest.hash
    assert [p.package_id for p in list_packages(c.vault, RECEIVED)] == [manifest.package_id]
    opened_entry = next(e for e in c.vault.audit.entries() if e.action == "package.opened")
    assert opened_entry.package == manifest.package_id and opened_entry.partner == d.fp

    # The same package again is a replay: refused before anything is written.
    with pytest.raises(PackageRejected, match="replay"):
        _receive(c, pkg, tmp_path / "inbox2")
    assert not (tmp_path / "inbox2").exists()
    record_rejected(c.vault, pkg, "replay", manifest)
    assert c.actions()[-1] == "package.rejected"

    # The receipt goes back: the district's record shows delivery.
    receipt = make_receipt(manifest, signing_key(c.vault), c.fp)
    import_receipt(d.vault, json.loads(json.dumps(receipt)))
    assert get_package(d.vault, manifest.package_id, SENT).delivered_to == (c.fp,)
    assert d.actions()[-1] == "package.delivered"

    # Past the destruction deadline the package is outstanding until the college certifies destruction.
    deadline = TODAY + timedelta(days=455)
    assert outstanding_past_deadline(d.vault, today=deadline) == []
    late = outstanding_past_deadline(d.vault, today=deadline + timedelta(days=1))
    assert [(r.package_id, when) for r, when in late] == [(manifest.package_id, deadline.isoformat())]

    cert = certify_destruction(
        c.vault, manifest.package_id, method="NIST 800-88 clear", statement="Every copy was deleted."
    )
    assert get_package(c.vault, manifest.package_id, RECEIVED).closed
    assert c.actions()[-1] == "package.destroyed"
    with pytest.raises(PackageRejected, match="already certified"):
        certify_destruction(c.vault, manifest.package_id, method="x", statement="y")

    import_destruction_certificate(d.vault, cert)
    assert get_package(d.vault, manifest.package_id, SENT).closed
    assert outstanding_past_deadline(d.vault, today=deadline + timedelta(days=1)) == []
    assert d.actions()[-1] == "package.destruction_certified"
    assert d.vault.audit.verify() and c.vault.audit.verify()


def test_forged_or_misdirected_receipts_and_certificates_are_refused(sides, tmp_path: Path) -> None:
    d, c, agreement_id = sides
    manifest, _ = _send(d, c, agreement_id, tmp_path)
    # Signed by the district's own key while claiming to be the college: the signature fails.
    forged = make_receipt(manifest, signing_key(d.vault), c.fp)
    with pytest.raises(PackageRejected, match="does not verify"):
        import_receipt(d.vault, forged)
    assert d.actions()[-1] == "package.receipt_rejected"
    # A receipt naming a package we never sent.
    other = Manifest(**{**manifest.__dict__, "package_id": "pkg-unknown"})
    with pytest.raises(PackageRejected, match="no record of a package pkg-unknown"):
        import_receipt(d.vault, make_receipt(other, signing_key(c.vault), c.fp))
    # A receipt by someone who is not a partner at all.
    with pytest.raises(PackageRejected, match="holds no card"):
        import_receipt(d.vault, make_receipt(manifest, signing_key(c.vault), "AAAAA-BBBBB-CCCCC-DDDDD"))
    with pytest.raises(PackageRejected, match="malformed"):
        import_receipt(d.vault, ["not", "a", "receipt"])
    # A certificate for a package the college never received cannot be issued.
    with pytest.raises(PackageRejected, match="no record"):
        certify_destruction(c.vault, manifest.package_id, method="m", statement="s")
    with pytest.raises(PackageRejected, match="malformed"):
        import_destruction_certificate(d.vault, "nope")
    assert get_package(d.vault, manifest.package_id, SENT).delivered_to == ()
