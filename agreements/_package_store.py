"""Package records in the vault: what we sealed and opened, receipts, destruction certificates.

Both sides keep a row per package (``sent`` by the provider, ``received`` by a recipient), so:

* a package id opened twice is refused as a replay (:func:`check_not_replayed`, for ``check_manifest``);
* a signed receipt imported on the sender's side marks the package delivered to that recipient;
* a signed destruction certificate closes the package for that recipient; the provider lists the
  packages still outstanding past their agreement's destruction deadline.

Every change is audited in the same transaction as the row it records (actions ``package.*``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._agreement import Agreement
from agreements._clock import utc_now
from agreements._identity import our_card, signing_key
from agreements._idprefix import match_id
from agreements._manifest import Manifest
from agreements._partners import trusted_partner
from agreements._receipts import (
    DestructionCertificate,
    Receipt,
    make_destruction_certificate,
    verify_destruction_certificate,
    verify_receipt,
)
from agreements._recorded import RECEIVED, SENT
from agreements._signing import canonical_json
from agreements.errors import PackageRejected, PartnerError

if TYPE_CHECKING:
    from agreements._vault import Vault


@dataclass(frozen=True)
class PackageRecord:
    """A package as this vault recorded it."""

    package_id: str
    direction: str  # "sent" or "received"
    agreement_id: str
    agreement_hash: str
    manifest_hash: str
    sender: str  # the sender's card fingerprint
    recipients: tuple[str, ...]  # card fingerprints (or age recipients we hold no card for)
    created: str
    recorded: str
    files: int
    bytes: int
    location: str  # where we wrote it (sent) or opened it (received)
    destroyed_at: str | None  # received: when we destroyed it
    delivered_to: tuple[str, ...] = ()  # sent: recipients whose "opened" receipt we hold
    destroyed_by: tuple[str, ...] = ()  # sent: recipients whose destruction certificate we hold
    refused: tuple[tuple[str, str], ...] = ()  # sent: (recipient, reason) from "rejected" receipts
    voided_at: str | None = None  # sent: voided because it never left (void_reason says why)
    void_reason: str | None = None
    reopened_at: str | None = None  # received: opened once more after the folder was lost
    reopen_reason: str | None = None

    @property
    def voided(self) -> bool:
        """Sent and voided, and no recipient ever answered (a receipt proves it did leave after all)."""
        return self.voided_at is not None and not self.delivered_to and not self.refused

    @property
    def refused_by(self) -> tuple[str, ...]:
        return tuple(fp for fp, _ in self.refused)

    @property
    def closed(self) -> bool:
        """Sent: every recipient certified destruction or refused the package (so never opened it).
        Received: we destroyed it."""
        if self.direction == RECEIVED:
            return self.destroyed_at is not None
        if self.voided:
            return True
        return set(self.recipients) <= set(self.destroyed_by) | set(self.refused_by)

    @property
    def state(self) -> str:
        """One word for where the package stands (``packages`` lists it; the app says STATE_LABELS):
        void, closed (destroyed everywhere it went), delivered, refused, or open."""
        if self.voided:
            return "void"
        if self.closed:
            return "closed"
        if self.delivered_to:
            return "delivered"
        if self.refused:
            return "refused"
        return "open"

    @property
    def state_label(self) -> str:
        """``state`` in the users' words, which differ for what we sent and what we received."""
        return STATE_LABELS[(self.direction, self.state)]

    @property
    def can_void(self) -> bool:
        """Sent, not void, and no recipient answered: it may never have left (``void_package``)."""
        return (
            self.direction == SENT
            and self.voided_at is None
            and not (self.delivered_to or self.refused or self.destroyed_by)
        )

    @property
    def can_reopen(self) -> bool:
        """Received, not destroyed, not opened again yet, and its folder is gone or empty: it may be
        opened once more with a reason (``open_received(reopen_reason=…)`` has the last word)."""
        if self.direction != RECEIVED or self.destroyed_at is not None or self.reopened_at is not None:
            return False
        folder = Path(self.location)
        return not (folder.exists() and any(folder.iterdir()))

    @property
    def can_destroy(self) -> bool:
        """Received and not yet destroyed (``destroy``)."""
        return self.direction == RECEIVED and self.destroyed_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "package_id": self.package_id,
            "direction": self.direction,
            "agreement_id": self.agreement_id,
            "agreement_hash": self.agreement_hash,
            "manifest_hash": self.manifest_hash,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "created": self.created,
            "recorded": self.recorded,
            "files": self.files,
            "bytes": self.bytes,
            "location": self.location,
            "destroyed_at": self.destroyed_at,
            "delivered_to": list(self.delivered_to),
            "destroyed_by": list(self.destroyed_by),
            "refused": [{"recipient": fp, "reason": reason} for fp, reason in self.refused],
            "closed": self.closed,
            "voided_at": self.voided_at,
            "void_reason": self.void_reason,
            "reopened_at": self.reopened_at,
            "reopen_reason": self.reopen_reason,
        }


STATE_LABELS = {
    ("sent", "void"): "Void: never sent",
    ("sent", "closed"): "Closed: every recipient destroyed it",
    ("sent", "delivered"): "Delivered: the recipient opened it",
    ("sent", "refused"): "Refused by the recipient",
    ("sent", "open"): "Sent: no receipt yet",
    ("received", "closed"): "Destroyed",
    ("received", "open"): "Opened, not yet destroyed",
    ("received", "void"): "Void",
    ("received", "delivered"): "Opened",
    ("received", "refused"): "Refused",
}

_COLUMNS = (
    "package_id, direction, agreement_id, agreement_hash, manifest_hash, sender, recipients, created, "
    "recorded, files, bytes, location, destroyed_at, voided_at, void_reason, reopened_at, reopen_reason"
)
_INSERTED = _COLUMNS.split(", destroyed_at")[0]


def _recipient_names(agreement: Agreement, manifest: Manifest) -> list[str]:
    """The manifest's age recipients as the agreement's party fingerprints.

    Named by the agreement, never by looking an age key up among all cards: a card that copied another
    partner's age key must not have that partner's packages recorded against it. An age recipient the
    agreement does not name (a package that should have been refused) is kept as it is.
    """
    by_key = {p.age_recipient: p.fingerprint for p in agreement.all_parties()}
    return [by_key.get(recipient, recipient) for recipient in manifest.recipients]


def _insert(conn: Any, manifest: Manifest, direction: str, location: Path, recipients: Sequence[str]) -> None:
    conn.execute(
        f"INSERT INTO packages({_INSERTED}, manifest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            manifest.package_id,
            direction,
            manifest.agreement_id,
            manifest.agreement_hash,
            manifest.hash,
            manifest.sender_fingerprint,
            json.dumps(list(recipients)),
            manifest.created,
            utc_now(),
            len(manifest.files),
            sum(f.size for f in manifest.files),
            str(Path(location).resolve()),  # absolute: where the vault knows its files are
            canonical_json(manifest.to_json()).decode("utf-8"),
        ),
    )


def record_sent(
    vault: Vault, manifest: Manifest, package_path: Path, recipients: Sequence[str]
) -> PackageRecord:
    """Record a package we sealed for ``recipients`` — the fingerprints of the agreement's recipient
    parties it was sealed for, ourselves excepted — and audit ``package.sealed``."""
    recipients = list(recipients)
    with vault.transaction() as conn:
        _insert(conn, manifest, SENT, Path(package_path), recipients)
        vault.audit.append(
            "package.sealed",
            agreement=manifest.agreement_id,
            package=manifest.package_id,
            details={
                "file": Path(package_path).name,
                "files": len(manifest.files),
                "rows": sum(f.rows or 0 for f in manifest.files),
                "bytes": sum(f.size for f in manifest.files),
                "recipients": recipients,
                "manifest_hash": manifest.hash,
            },
            conn=conn,
        )
    return get_package(vault, manifest.package_id, SENT, manifest.sender_fingerprint)


def received_on(vault: Vault, package_id: str, sender: str | None = None) -> str | None:
    """When the package with this id (from ``sender``, if given) was opened here (UTC time), or None."""
    sql, args = "SELECT recorded FROM packages WHERE package_id = ? AND direction = ?", [package_id, RECEIVED]
    if sender is not None:
        sql, args = sql + " AND sender = ?", [*args, sender]
    row = vault.db.execute(sql, args).fetchone()
    if row is None:
        # The log too: an old page of the packages table spliced into the vault must not reopen a replay.
        from agreements._integrity import logged_opening

        return logged_opening(vault.db, package_id, sender)
    return str(row[0])


def check_not_replayed(vault: Vault, manifest: Manifest) -> None:
    """PackageRejected if this sender's package with this id was already opened here (a replayed copy).

    The replay list, like the vault's record of packages, is keyed by (sender fingerprint, package
    id): a package id is the sender's random UUID, and only the sender's signature makes it theirs.
    Another organization's package that carries an id already used here is neither a replay nor a
    collision: it opens and is recorded beside the other, so a partner who learned an id can neither
    block nor shadow another's package.
    """
    opened = received_on(vault, manifest.package_id, manifest.sender_fingerprint)
    if opened is not None:
        raise PackageRejected(
            f"The package {manifest.package_id} was already opened here on {opened[:10]}; "
            "a second copy is refused (replay)."
        )


def record_received(vault: Vault, manifest: Manifest, out_dir: Path, agreement: Agreement) -> PackageRecord:
    """Record a package we opened under ``agreement`` (and audit ``package.opened``); PackageRejected if
    it is a replay."""
    with vault.transaction() as conn:
        check_not_replayed(vault, manifest)
        _insert(conn, manifest, RECEIVED, Path(out_dir), _recipient_names(agreement, manifest))
        vault.audit.append(
            "package.opened",
            agreement=manifest.agreement_id,
            partner=manifest.sender_fingerprint,
            package=manifest.package_id,
            details={
                "files": len(manifest.files),
                "rows": sum(f.rows or 0 for f in manifest.files),
                "bytes": sum(f.size for f in manifest.files),
                "manifest_hash": manifest.hash,
                "sender_audit_head": list(manifest.audit_head),
            },
            conn=conn,
        )
    return get_package(vault, manifest.package_id, RECEIVED, manifest.sender_fingerprint)


def record_reopened(vault: Vault, manifest: Manifest, out_dir: Path, reason: str) -> PackageRecord:
    """Record that a package we opened before was opened once more into ``out_dir`` because the first
    folder was lost (``package.reopened``, with the reason and where it was opened before)."""
    sender = manifest.sender_fingerprint
    before = get_package(vault, manifest.package_id, RECEIVED, sender)
    with vault.transaction() as conn:
        conn.execute(
            "UPDATE packages SET location = ?, reopened_at = ?, reopen_reason = ? WHERE package_id = ? "
            "AND direction = ? AND sender = ? AND reopened_at IS NULL AND destroyed_at IS NULL",
            (str(Path(out_dir).resolve()), utc_now(), reason, manifest.package_id, RECEIVED, sender),
        )
        if conn.execute("SELECT changes()").fetchone()[0] != 1:
            raise PackageRejected(
                f"Package {manifest.package_id} cannot be opened once more.",
                "The list of packages shows where it stands.",
                action="list_packages",
            )
        vault.audit.append(
            "package.reopened",
            agreement=manifest.agreement_id,
            partner=manifest.sender_fingerprint,
            package=manifest.package_id,
            details={
                "reason": reason,
                "previous_folder": before.location,
                "files": len(manifest.files),
                "manifest_hash": manifest.hash,
            },
            conn=conn,
        )
    return get_package(vault, manifest.package_id, RECEIVED, sender)


def record_voided(vault: Vault, package_id: str, reason: str, file_state: str) -> PackageRecord:
    """Mark a sent package void (it never left) and audit ``package.voided`` with the reason."""
    with vault.transaction() as conn:
        package = get_package(vault, package_id, SENT)
        if package.voided_at is not None:
            raise PackageRejected(f"Package {package_id} was already voided on {package.voided_at[:10]}.")
        conn.execute(
            "UPDATE packages SET voided_at = ?, void_reason = ? WHERE package_id = ? AND direction = ?",
            (utc_now(), reason, package_id, SENT),
        )
        vault.audit.append(
            "package.voided",
            agreement=package.agreement_id,
            package=package_id,
            details={"reason": reason, "file": Path(package.location).name, "sealed_file": file_state},
            conn=conn,
        )
    return get_package(vault, package_id, SENT)


def record_rejected(vault: Vault, package_path: Path, reason: str, manifest: Manifest | None = None) -> None:
    """Audit a package we refused to open (``package.rejected``), naming the file and the reason."""
    vault.audit.append(
        "package.rejected",
        agreement=manifest.agreement_id if manifest else None,
        partner=manifest.sender_fingerprint if manifest else None,
        package=manifest.package_id if manifest else None,
        details={"file": Path(package_path).name, "reason": reason},
    )


def _row_record(vault: Vault, row: tuple) -> PackageRecord:
    package_id, direction, sender = row[0], row[1], row[5]
    delivered: tuple[str, ...] = ()
    destroyed: tuple[str, ...] = ()
    refused: list[tuple[str, str]] = []
    if direction == SENT:
        receipts = vault.db.execute(
            "SELECT recipient, result, receipt FROM package_receipts WHERE package_id = ? ORDER BY recipient",
            (package_id,),
        ).fetchall()
        delivered = tuple(r[0] for r in receipts if r[1] == "opened")
        refused = [(r[0], str(json.loads(r[2]).get("reason", ""))) for r in receipts if r[1] == "rejected"]
        destroyed = tuple(
            r[0]
            for r in vault.db.execute(
                "SELECT recipient FROM destruction_certificates WHERE package_id = ? AND sender = ? "
                "ORDER BY recipient",
                (package_id, sender),
            )
        )
    return PackageRecord(
        package_id=package_id,
        direction=direction,
        agreement_id=row[2],
        agreement_hash=row[3],
        manifest_hash=row[4],
        sender=row[5],
        recipients=tuple(json.loads(row[6])),
        created=row[7],
        recorded=row[8],
        files=int(row[9]),
        bytes=int(row[10]),
        location=row[11],
        destroyed_at=row[12],
        delivered_to=delivered,
        destroyed_by=destroyed,
        refused=tuple(refused),
        voided_at=row[13],
        void_reason=row[14],
        reopened_at=row[15],
        reopen_reason=row[16],
    )


def get_package(
    vault: Vault, package_id: str, direction: str | None = None, sender: str | None = None
) -> PackageRecord:
    """The record of a package (PackageRejected if this vault has none).

    Packages are keyed by (package id, sender): two received packages from different organizations
    may carry the same id, and then ``sender`` (a card fingerprint) must say which one is meant."""
    if not package_id.strip():
        raise PackageRejected(
            "No package id was given.", "The list of packages shows them.", action="list_packages"
        )
    sql = f"SELECT {_COLUMNS} FROM packages WHERE package_id = ?"
    args: tuple[str, ...] = (package_id,)
    if direction is not None:
        sql += " AND direction = ?"
        args += (direction,)
    if sender is not None:
        sql += " AND sender = ?"
        args += (sender,)
    rows = vault.db.execute(sql + " ORDER BY direction, sender", args).fetchall()
    if not rows:
        raise PackageRejected(
            f"This vault has no record of a package {package_id}"
            + (f" from {sender}." if sender is not None else ".")
        )
    received = [r for r in rows if r[1] == RECEIVED]
    if len(received) > 1 and (direction == RECEIVED or len(received) == len(rows)):
        senders = " and ".join(r[5] for r in received)
        raise PackageRejected(
            f"Packages from {senders} carry the same id {package_id}; say which sender's is meant.",
            "Name the sender by their fingerprint.",
            action="name_sender",
        )
    return _row_record(vault, rows[0])


def resolve_package_id(vault: Vault, text: str, direction: str | None = None) -> str:
    """A package id from what a user typed: the full id or a unique prefix (agreements._idprefix, as
    agreement ids are given), among the packages of ``direction`` when given."""

    def candidates(t: str) -> list[str]:
        sql = (
            "SELECT DISTINCT package_id FROM packages WHERE (package_id = ? OR substr(package_id, 1, ?) = ?)"
        )
        args: tuple[Any, ...] = (t, len(t), t)
        if direction is not None:
            sql += " AND direction = ?"
            args += (direction,)
        return [r[0] for r in vault.db.execute(sql, args).fetchall()]

    kind = {SENT: "sealed ", RECEIVED: "opened "}.get(direction or "", "")
    missing = f"This vault has no record of a {kind}package {{text}}."
    return match_id(text, candidates, noun="package", missing=missing, error=PackageRejected,
                    list_action="list_packages")  # fmt: skip


def list_packages(vault: Vault, direction: str | None = None) -> list[PackageRecord]:
    """All package records, oldest first (optionally only ``sent`` or ``received``)."""
    sql = f"SELECT {_COLUMNS} FROM packages"
    args: tuple[str, ...] = ()
    if direction is not None:
        sql += " WHERE direction = ?"
        args = (direction,)
    rows = vault.db.execute(sql + " ORDER BY recorded, package_id", args).fetchall()
    return [_row_record(vault, r) for r in rows]


def _signer(vault: Vault, fingerprint: str, what: str) -> Any:
    """The trusted partner that signed a receipt or certificate (PackageRejected naming it otherwise)."""
    try:
        return trusted_partner(vault, fingerprint=fingerprint, purpose=f"accept a {what} from")
    except PartnerError as exc:
        raise PackageRejected(str(exc)) from exc


def nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def import_receipt(vault: Vault, receipt: Any, source: str = "The receipt") -> Receipt:
    """Verify a recipient's signed receipt for a package we sent and record it (``package.delivered``).

    Refused (PackageRejected, audited) when we sent no such package, the manifest hash differs, the
    signer is not a trusted partner, or the signer is not one of the package's recipients; or when it
    is a refusal from a recipient whose ``opened`` receipt we already hold.
    """
    try:
        if not isinstance(receipt, dict) or not all(
            nonempty_str(receipt.get(k)) for k in ("recipient", "package_id")
        ):
            raise PackageRejected(
                f"{source} is not a PathShare receipt (its fields are missing or malformed)."
            )
        package = get_package(vault, receipt["package_id"], SENT)
        partner = _signer(vault, receipt["recipient"], "receipt")
        checked = verify_receipt(receipt, partner.card.signing_key)
        if checked.manifest_hash != package.manifest_hash:
            raise PackageRejected(f"The receipt is for a different version of package {package.package_id}.")
        if partner.fingerprint not in package.recipients:
            raise PackageRejected(f"{partner.org} is not a recipient of package {package.package_id}.")
        if checked.result == "rejected" and partner.fingerprint in package.delivered_to:
            # A refusal imported after the delivery (an older attempt) must not erase it: the recipient
            # holds the data and still owes its destruction certificate.
            raise PackageRejected(
                f"{partner.org} already sent a receipt saying it opened package {package.package_id}; "
                "a refusal receipt cannot replace it."
            )
    except PackageRejected as exc:
        vault.audit.append("package.receipt_rejected", details={"reason": str(exc)})
        raise
    with vault.transaction() as conn:
        conn.execute(
            "INSERT INTO package_receipts(package_id, recipient, result, time, receipt, imported) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(package_id, recipient) DO UPDATE SET "
            "result = excluded.result, time = excluded.time, receipt = excluded.receipt, "
            "imported = excluded.imported",
            (
                checked.package_id,
                partner.fingerprint,
                checked.result,
                checked.time,
                json.dumps(receipt),
                utc_now(),
            ),
        )
        vault.audit.append(
            "package.delivered" if checked.result == "opened" else "package.refused_by_recipient",
            agreement=checked.agreement_id,
            partner=partner.fingerprint,
            package=checked.package_id,
            details={"result": checked.result, "time": checked.time}
            | ({"reason": checked.reason} if checked.reason else {}),
            conn=conn,
        )
    return checked


def certify_destruction(
    vault: Vault,
    package_id: str,
    *,
    sender: str | None = None,
    method: str,
    statement: str,
    now: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Recipient side: sign a destruction certificate for a package we opened, and mark it destroyed.

    Call it after the data has been deleted; returns the certificate to send to the provider
    (``package.destroyed`` is audited).
    """
    package = get_package(vault, package_id, RECEIVED, sender)
    if package.destroyed_at is not None:
        raise PackageRejected(
            f"Package {package_id} was already certified destroyed on {package.destroyed_at}."
        )
    card = our_card(vault)
    cert = make_destruction_certificate(
        package_id=package.package_id,
        manifest_hash=package.manifest_hash,
        agreement_id=package.agreement_id,
        recipient_key=signing_key(vault),
        recipient_fingerprint=card.fingerprint(),
        method=method,
        statement=statement,
        destroyed_at=now,
    )
    with vault.transaction() as conn:
        conn.execute(
            "UPDATE packages SET destroyed_at = ? WHERE package_id = ? AND direction = ? AND sender = ?",
            (cert["destroyed_at"], package_id, RECEIVED, package.sender),
        )
        conn.execute(
            "INSERT INTO destruction_certificates(package_id, sender, recipient, destroyed_at, method, "
            "certificate, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                package_id,
                package.sender,
                card.fingerprint(),
                cert["destroyed_at"],
                method,
                json.dumps(cert),
                utc_now(),
            ),
        )
        vault.audit.append(
            "package.destroyed",
            agreement=package.agreement_id,
            partner=package.sender,
            package=package_id,
            details={"method": method, "destroyed_at": cert["destroyed_at"], **(details or {})},
            conn=conn,
        )
    return cert


def import_destruction_certificate(
    vault: Vault, certificate: Any, source: str = "The destruction certificate"
) -> DestructionCertificate:
    """Provider side: verify a recipient's destruction certificate for a package we sent and record it.

    The package is closed once every recipient's certificate is held (``package.destruction_certified``).
    Refusals are audited and raised as PackageRejected.
    """
    try:
        if not isinstance(certificate, dict) or not all(
            nonempty_str(certificate.get(k)) for k in ("recipient", "package_id")
        ):
            raise PackageRejected(
                f"{source} is not a PathShare destruction certificate (its fields are missing or malformed)."
            )
        package = get_package(vault, certificate["package_id"], SENT)
        fingerprint = certificate["recipient"]
        partner = _signer(vault, fingerprint, "destruction certificate")
        checked = verify_destruction_certificate(certificate, partner.card.signing_key)
        if checked.manifest_hash != package.manifest_hash or checked.agreement_id != package.agreement_id:
            raise PackageRejected(
                f"The destruction certificate does not match package {package.package_id} as we sent it."
            )
        if partner.fingerprint not in package.recipients:
            raise PackageRejected(f"{partner.org} is not a recipient of package {package.package_id}.")
    except PackageRejected as exc:
        vault.audit.append("package.certificate_rejected", details={"reason": str(exc)})
        raise
    with vault.transaction() as conn:
        conn.execute(
            "INSERT INTO destruction_certificates(package_id, sender, recipient, destroyed_at, method, "
            "certificate, recorded) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(package_id, sender, recipient) DO NOTHING",
            (
                checked.package_id,
                package.sender,
                partner.fingerprint,
                checked.destroyed_at,
                checked.method,
                json.dumps(certificate),
                utc_now(),
            ),
        )
        vault.audit.append(
            "package.destruction_certified",
            agreement=checked.agreement_id,
            partner=partner.fingerprint,
            package=checked.package_id,
            details={"destroyed_at": checked.destroyed_at, "method": checked.method},
            conn=conn,
        )
    return checked


def outstanding_past_deadline(vault: Vault, today: date | None = None) -> list[tuple[PackageRecord, str]]:
    """Sent packages not yet closed whose agreement's destruction deadline is before ``today``.

    Returns (record, deadline) pairs, oldest deadline first. The deadline is the one of the agreement
    version the package was sealed under (matched by its hash).
    """
    today = today or date.today()
    rows = vault.db.execute(
        f"SELECT {', '.join('p.' + c.strip() for c in _COLUMNS.split(','))}, a.destruction_deadline "
        "FROM packages p JOIN agreements a ON a.sha256 = p.agreement_hash "
        "WHERE p.direction = ? AND a.destruction_deadline < ? ORDER BY a.destruction_deadline, p.recorded",
        (SENT, today.isoformat()),
    ).fetchall()
    out = []
    for row in rows:
        record = _row_record(vault, row[:-1])
        if not record.closed:
            out.append((record, str(row[-1])))
    return out
