"""The exchange workflows between two real vaults: seal under an agreement, open, refusals, receipts,
destruction — each outcome recorded and audited."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyrage
import pytest
from partners_setup import DEADLINE, EXPIRES, PASS, Org

from agreements import (
    RECEIVED,
    SENT,
    Vault,
    destroy,
    get_package,
    import_card,
    import_certificate_file,
    import_receipt_file,
    open_received,
    outstanding_past_deadline,
    require_in_force,
    revoke_partner,
    seal,
    seal_for_agreement,
    signing_key,
)
from agreements.errors import AgreementError, PackageRejected
from deid.errors import OutputError


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    src = tmp_path / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    return src


def test_full_exchange(sides, tmp_path: Path, extract: Path) -> None:
    d, c, agreement_id = sides
    (tmp_path / "outbox").mkdir()
    sealed = seal_for_agreement(
        d.vault, agreement_id, [("students.csv", extract, 2)], {"rows_out": 2}, tmp_path / "outbox" / "p.age"
    )
    assert sealed.manifest.recipients == (c.card.age_recipient,)
    assert sealed.record.direction == SENT and d.last() == "package.sealed"

    got = open_received(c.vault, sealed.path, tmp_path / "inbox", receipt=tmp_path / "receipt.json")
    assert got.sender.fingerprint == d.fp and got.agreement.id == agreement_id and not got.warnings
    assert got.files[0].read_text(encoding="utf-8") == extract.read_text(encoding="utf-8")
    assert got.report == {"rows_out": 2}
    assert get_package(c.vault, sealed.manifest.package_id, RECEIVED).sender == d.fp
    assert c.last() == "package.receipt_written"

    import_receipt_file(d.vault, tmp_path / "receipt.json")
    assert get_package(d.vault, sealed.manifest.package_id, SENT).delivered_to == (c.fp,)

    assert [r.package_id for r, _ in outstanding_past_deadline(d.vault, DEADLINE + timedelta(days=1))] == [
        sealed.manifest.package_id
    ]
    destroy(c.vault, sealed.manifest.package_id, tmp_path / "certificate.json")
    import_certificate_file(d.vault, tmp_path / "certificate.json")
    assert outstanding_past_deadline(d.vault, DEADLINE + timedelta(days=1)) == []
    assert d.vault.audit.verify() and c.vault.audit.verify()


def _refused(org: Org, package: Path, out: Path, match: str, **kw) -> None:
    before = len(org.vault.audit)
    with pytest.raises(PackageRejected, match=match):
        open_received(org.vault, package, out, **kw)
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".pathshare-open-")]
    assert len(org.vault.audit) == before + 1 and org.last() == "package.rejected"


def test_replay_revoked_and_expired_are_refused(sides, tmp_path: Path, extract: Path) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    open_received(c.vault, sealed.path, tmp_path / "in1")
    _refused(c, sealed.path, tmp_path / "in2", "replay")
    entry = c.vault.audit.entries()[-1]
    assert entry.package == sealed.manifest.package_id and "replay" in entry.details["reason"]

    again = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "q.age")
    _refused(
        c,
        again.path,
        tmp_path / "in3",
        r"expired on .* destroyed by " + DEADLINE.isoformat(),
        today=EXPIRES + timedelta(days=1),
    )
    revoke_partner(c.vault, d.fp, "key lost")
    _refused(c, again.path, tmp_path / "in4", "revoked")
    assert c.vault.audit.entries()[-1].package is None  # an untrusted manifest names nothing in the log


def test_manifest_outside_the_agreement_is_refused(sides, tmp_path: Path, extract: Path) -> None:
    d, c, agreement_id = sides
    agreement = require_in_force(d.vault, agreement_id)
    stranger = pyrage.x25519.Identity.generate()

    def raw(name: str, recipients: list[str], signer: Org = d) -> Path:
        out = tmp_path / name
        seal(
            [("students.csv", extract)],
            {},
            agreement_id=agreement.id,
            agreement_hash=agreement.sha256,
            sender_key=signing_key(signer.vault),
            sender_fingerprint=signer.fp,
            recipients=recipients,
            audit_head=(0, "0" * 64),
            out=out,
        )
        return out

    _refused(
        c,
        raw("extra.age", [c.card.age_recipient, str(stranger.to_public())]),
        tmp_path / "a",
        "also encrypted to someone",
    )
    _refused(c, raw("elsewhere.age", [str(stranger.to_public())]), tmp_path / "b", "not addressed")
    # The college signs a package as if it were a provider and sends it to the district.
    _refused(d, raw("wrong-way.age", [d.card.age_recipient], signer=c), tmp_path / "c", "not a provider")
    # A valid signature by the district, over a manifest for an agreement the college does not hold.
    other = tmp_path / "other.age"
    seal(
        [("students.csv", extract)],
        {},
        agreement_id="agr-elsewhere",
        agreement_hash="ab" * 32,
        sender_key=signing_key(d.vault),
        sender_fingerprint=d.fp,
        recipients=[c.card.age_recipient],
        audit_head=(0, "0" * 64),
        out=other,
    )
    _refused(c, other, tmp_path / "d", "does not hold")
    # Signed by an organization the college has never heard of, or has not verified.
    e = Org(
        tmp_path / "employer.vault",
        "Harbor Logistics",
        "employer",
    )
    try:
        _refused(c, raw("stranger.age", [c.card.age_recipient], signer=e), tmp_path / "e", "does not know")
        import_card(c.vault, e.card)  # imported, not verified
        _refused(c, raw("unverified.age", [c.card.age_recipient], signer=e), tmp_path / "f", "not verified")
    finally:
        e.vault.close()


def test_sealing_is_gated(sides, tmp_path: Path, extract: Path) -> None:
    d, c, agreement_id = sides
    with pytest.raises(AgreementError, match="not a provider"):
        seal_for_agreement(c.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    assert c.last() == "package.seal_refused" and not (tmp_path / "p.age").exists()
    with pytest.raises(AgreementError, match="not in force"):
        seal_for_agreement(
            d.vault,
            agreement_id,
            [("students.csv", extract)],
            {},
            tmp_path / "p.age",
            today=EXPIRES + timedelta(days=1),
        )
    assert d.last() == "package.seal_refused" and not (tmp_path / "p.age").exists()


def test_non_empty_destination_is_refused_and_audited(sides, tmp_path: Path, extract: Path) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "old.csv").write_text("keep")
    with pytest.raises(OutputError, match="not empty"):
        open_received(c.vault, sealed.path, tmp_path / "in")
    assert [p.name for p in (tmp_path / "in").iterdir()] == ["old.csv"] and c.last() == "package.rejected"


# ---------------------------------------------------------------------------------------------- the CLI


def test_cli_open_receipt_destroy_and_list(
    sides, tmp_path: Path, extract: Path, run_cli, monkeypatch
) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract, 2)], {}, tmp_path / "p.age")
    pid = sealed.manifest.package_id
    d.vault.close()
    c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    dv, cv = str(d.vault.path), str(c.vault.path)

    code, out, err = run_cli(
        "--vault",
        cv,
        "open",
        tmp_path / "p.age",
        "--out",
        tmp_path / "inbox",
        "--receipt",
        tmp_path / "r.json",
    )
    assert code == 0, err
    assert f"Opened package {pid} from Lakeview Unified School District" in out and "r.json" in out
    assert (tmp_path / "inbox" / "data" / "students.csv").read_bytes() == extract.read_bytes()

    code, out, err = run_cli("--vault", cv, "open", tmp_path / "p.age", "--out", tmp_path / "again")
    assert code == 1 and err.startswith("pathshare: ") and "replay" in err and "Traceback" not in err
    assert len([line for line in err.strip().splitlines() if "hint:" not in line]) == 1
    assert not (tmp_path / "again").exists()

    assert run_cli("--vault", dv, "receipt", "import", tmp_path / "r.json")[0] == 0
    code, out, _ = run_cli("--vault", dv, "packages", "--sent", "--json")
    listed = json.loads(out)
    assert code == 0 and listed[0]["package_id"] == pid and listed[0]["delivered_to"] == [c.fp]

    code, out, err = run_cli(
        "--vault", cv, "destroy", pid[:8], "--certificate", tmp_path / "cert.json", "--method", "shredded"
    )
    assert code == 0, err
    method = json.loads((tmp_path / "cert.json").read_text())["method"]
    assert method.startswith("deleted by PathShare") and method.endswith("; shredded")
    assert not (tmp_path / "inbox").exists()  # destroyed means destroyed: the opened folder is gone
    assert run_cli("--vault", dv, "certificate", "import", tmp_path / "cert.json")[0] == 0
    code, out, _ = run_cli("--vault", dv, "packages")
    assert code == 0 and pid in out and "closed" in out
    code, out, _ = run_cli("--vault", dv, "packages", "--outstanding")
    assert code == 0 and "No package is outstanding" in out


def test_cli_tampered_package_is_one_sentence(
    sides, tmp_path: Path, extract: Path, run_cli, monkeypatch
) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    data = bytearray(sealed.path.read_bytes())
    data[-20] ^= 0x40
    sealed.path.write_bytes(bytes(data))
    c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, err = run_cli("--vault", str(c.vault.path), "open", sealed.path, "--out", tmp_path / "in")
    assert code == 1 and out == ""
    assert err == "pathshare: The package's content is damaged or truncated.\n"
    assert not (tmp_path / "in").exists()
    with Vault.open(c.vault.path, PASS) as vault:
        last = vault.audit.entries()[-1]
    assert last.action == "package.rejected" and last.details["file"] == "p.age"


def test_bad_receipt_or_certificate_path_refuses_first(sides, tmp_path: Path, extract: Path) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    with pytest.raises(OutputError, match="does not exist"):
        open_received(c.vault, sealed.path, tmp_path / "in", receipt=tmp_path / "no" / "r.json")
    assert not (tmp_path / "in").exists()
    open_received(c.vault, sealed.path, tmp_path / "in")  # not recorded as opened by the refusal above
    with pytest.raises(OutputError, match="does not exist"):
        destroy(c.vault, sealed.manifest.package_id, tmp_path / "no" / "cert.json")
    assert not get_package(c.vault, sealed.manifest.package_id, RECEIVED).closed


# ------------------------------------------------------------------------- refusals the sender hears of


def _tampered_inside(sealed_path: Path, identity, recipient: str, out: Path) -> None:
    """Re-encrypt the package with one byte of its data file changed: the sender's signature still
    verifies (the manifest is untouched), but the file no longer matches the manifest."""
    import io

    from agreements import _agefile

    plain = io.BytesIO()
    _agefile.decrypt_to(sealed_path, [identity], plain)
    tar = bytearray(plain.getvalue())
    at = tar.index(b"A1,2008")
    tar[at + 1 : at + 2] = b"9"
    with open(out, "wb") as fh:
        _agefile.encrypt_chunks(iter([bytes(tar)]), fh, [recipient])


def test_a_refused_package_sends_the_sender_a_signed_rejected_receipt(
    sides, tmp_path: Path, extract: Path
) -> None:
    from agreements import dashboard

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")

    # Refused after the signature verified (expired): a rejected receipt, with the reason, is written.
    late = EXPIRES + timedelta(days=1)
    with pytest.raises(PackageRejected, match="expired") as info:
        open_received(c.vault, sealed.path, tmp_path / "in", receipt=tmp_path / "r.json", today=late)
    assert info.value.receipt == tmp_path / "r.json" and not (tmp_path / "in").exists()
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["result"] == "rejected" and doc["reason"] == str(info.value)
    assert c.last() == "package.receipt_written"
    assert c.vault.audit.entries()[-1].details["result"] == "rejected"

    # The sender learns of it: the package is refused (so closed: nothing was opened), with the reason.
    got = import_receipt_file(d.vault, tmp_path / "r.json")
    assert (got.result, got.reason) == ("rejected", str(info.value))
    record = get_package(d.vault, sealed.manifest.package_id, SENT)
    assert record.refused == ((c.fp, str(info.value)),) and record.delivered_to == () and record.closed
    assert d.last() == "package.refused_by_recipient"
    assert "expired" in d.vault.audit.entries()[-1].details["reason"]
    due = dashboard(d.vault).without_receipt
    assert len(due) == 1 and due[0].refused == ((c.card.org, str(info.value)),)

    # The same package opened later (say, under a renewed agreement) turns the refusal into delivery.
    open_received(c.vault, sealed.path, tmp_path / "in2", receipt=tmp_path / "ok.json")
    import_receipt_file(d.vault, tmp_path / "ok.json")
    record = get_package(d.vault, sealed.manifest.package_id, SENT)
    assert record.delivered_to == (c.fp,) and record.refused == () and not record.closed


def test_no_rejected_receipt_for_a_replay_or_an_unsigned_failure(
    sides, tmp_path: Path, extract: Path
) -> None:
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    open_received(c.vault, sealed.path, tmp_path / "in1")
    # A replay: the first copy's "opened" receipt stands; a rejected one would overwrite it.
    with pytest.raises(PackageRejected, match="replay") as info:
        open_received(c.vault, sealed.path, tmp_path / "in2", receipt=tmp_path / "r.json")
    assert info.value.receipt is None and not (tmp_path / "r.json").exists()
    # Damage before the signature could be checked: who sent it is unknown, so nobody to tell.
    data = bytearray(sealed.path.read_bytes())
    data[-20] ^= 0x40
    (tmp_path / "bad.age").write_bytes(bytes(data))
    with pytest.raises(PackageRejected, match="damaged") as info:
        open_received(c.vault, tmp_path / "bad.age", tmp_path / "in3", receipt=tmp_path / "r.json")
    assert info.value.receipt is None and not (tmp_path / "r.json").exists()


def test_cli_tells_the_user_a_rejected_receipt_was_written(
    sides, tmp_path: Path, extract: Path, run_cli, monkeypatch
) -> None:
    from agreements import age_identity

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    _tampered_inside(sealed.path, age_identity(c.vault), c.card.age_recipient, tmp_path / "changed.age")
    d.vault.close()
    c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, err = run_cli(
        "--vault", str(c.vault.path), "open", tmp_path / "changed.age", "--out", tmp_path / "in",
        "--receipt", tmp_path / "r.json",
    )
    assert code == 1 and err.startswith("pathshare: ")
    assert len([line for line in err.strip().splitlines() if "hint:" not in line]) == 1
    assert "students.csv" in err and "Traceback" not in err and not (tmp_path / "in").exists()
    assert out.strip() == f"Receipt telling the sender the package was refused: {tmp_path / 'r.json'}"
    assert json.loads((tmp_path / "r.json").read_text())["result"] == "rejected"

    code, out, err = run_cli("--vault", str(d.vault.path), "receipt", "import", tmp_path / "r.json")
    assert code == 0 and f"Package {sealed.manifest.package_id} was refused by {c.fp}" in out
    code, out, _ = run_cli("--vault", str(d.vault.path), "packages", "--sent")
    assert code == 0 and "refused" in out and f"refused by {c.fp}: " in out


def test_a_receipt_inside_the_destination_is_refused_first(sides, tmp_path: Path, extract: Path) -> None:
    """The destination stays empty when a package is refused: a receipt may not be written into it."""
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(OutputError, match="inside inbox, the folder the package opens into"):
        open_received(c.vault, sealed.path, inbox, receipt=inbox / "r.json")
    assert list(inbox.iterdir()) == []
    got = open_received(c.vault, sealed.path, inbox, receipt=tmp_path / "r.json")  # outside: fine
    assert got.receipt == tmp_path / "r.json"
