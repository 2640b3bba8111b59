"""Exchange workflows the desktop app and the CLI share: seal under an agreement, open what arrives,
receipts and destruction certificates. Each checks everything (fail closed), records the package in
the vault and audits the outcome — refusals included.

``prepare`` (map + de-identify + gate + seal) builds on :func:`seal_for_agreement`; see issue 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agreements._agreement import Agreement
from agreements._agreement_store import agreement_status, require_in_force
from agreements._audit import hold_partner_head
from agreements._identity import age_identity, our_card, signing_key
from agreements._manifest import DATA_DIR, MANIFEST_NAME, REPORT_NAME, SIGNATURE_NAME, Manifest
from agreements._open_package import open_package
from agreements._package_store import (
    PackageRecord,
    certify_destruction,
    check_not_replayed,
    get_package,
    import_destruction_certificate,
    import_receipt,
    received_on,
    record_received,
    record_rejected,
    record_reopened,
    record_sent,
    record_voided,
    resolve_package_id,
)
from agreements._partners import Partner, find_partner, party_card, trusted_partner
from agreements._receipts import load_json_document, make_receipt, write_json_document
from agreements._recorded import RECEIVED, SENT, output_rule, record_file
from agreements._seal import seal
from agreements._signing import canonical_json, load_public_key
from agreements._staging import forget_staging, record_staging
from agreements._stored_agreements import agreement_by_hash
from agreements._vault import Vault
from agreements.errors import AgreementError, OpenedFilesMissing, PackageRejected, PartnerError
from deid import check_output_path
from deid.errors import InputError, OutputError, PathShareError

Progress = Callable[[float, str], None]


def _noop(_fraction: float, _message: str) -> None:
    pass


@dataclass(frozen=True)
class SealedPackage:
    """A package sealed under an agreement and recorded in the vault."""

    manifest: Manifest
    agreement: Agreement
    path: Path
    record: PackageRecord


@dataclass(frozen=True)
class ReceivedPackage:
    """A package that passed every check and now sits in ``out_dir``."""

    manifest: Manifest
    report: dict[str, Any]
    out_dir: Path
    files: tuple[Path, ...]
    sender: Partner
    agreement: Agreement
    checks: tuple[str, ...]
    warnings: tuple[str, ...] = field(default=())
    receipt: Path | None = None


# ------------------------------------------------------------------------------------------------ seal


def seal_for_agreement(
    vault: Vault,
    agreement_id: str,
    files: Sequence[
        tuple[str, Path] | tuple[str, Path, int | None] | tuple[str, Path, int | None, str | None]
    ],
    report: dict[str, Any],
    out: Path,
    *,
    today: date | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> SealedPackage:
    """Seal de-identified ``files`` (already checked against the agreement) for its recipients.

    Refused (AgreementError, audited) unless the agreement is executed and in force ``today`` and we
    are one of its providers. The package is encrypted to exactly the agreement's recipients, signed
    by our identity, carries our audit-log head, and is recorded (``package.sealed``). An existing
    file at ``out`` is replaced only with ``force``, never a file the vault recorded.
    """
    step = progress or _noop
    me = our_card(vault)
    try:
        agreement = require_in_force(vault, agreement_id, today)
        if me.fingerprint() not in {p.fingerprint for p in agreement.providers()}:
            raise AgreementError(
                f"This organization is not a provider in agreement {agreement.id} ({agreement.title}); "
                "only providers may send data under it."
            )
        if not agreement.recipients():
            raise AgreementError(f"Agreement {agreement.id} names no recipient to seal for.")
        # Keys come from the cards this vault trusts, through the one check of revocation.
        recipients = [
            party_card(vault, p, "seal a package for").age_recipient for p in agreement.recipients()
        ]
        parties = [p for p in agreement.recipients() if p.fingerprint != me.fingerprint()]
    except (AgreementError, PartnerError) as exc:
        vault.audit.append("package.seal_refused", agreement=agreement_id, details={"reason": str(exc)})
        raise
    step(0.05, "sealing the package")
    recipient_fps = [p.fingerprint for p in agreement.recipients()]
    committed: list[str] = []

    def commit_head(package_id: str, content_hash: str) -> Any:
        # Log the disclosure first, then sign the head covering that entry into the manifest: every
        # recipient then holds a head of our log that a rewrite dropping this package contradicts.
        committed.append(package_id)
        return vault.audit.commit_package(package_id, agreement.id, content_hash, recipient_fps)

    try:
        manifest = seal(
            files,
            report,
            agreement_id=agreement.id,
            agreement_hash=agreement.sha256,
            sender_key=signing_key(vault),
            sender_fingerprint=me.fingerprint(),
            recipients=recipients,
            audit_head=commit_head,
            out=Path(out),
            now=now,
            progress=lambda f, m: step(0.05 + 0.9 * f, m),
            force=force,
            recorded=output_rule(vault),
        )
    except BaseException as exc:
        if committed:  # logged as being sealed, but no package came out of it
            vault.audit.append(
                "package.seal_failed",
                agreement=agreement.id,
                package=committed[0],
                details={"reason": str(exc) or type(exc).__name__},
            )
        raise
    step(0.95, "recording the package")
    record = record_sent(vault, manifest, Path(out), [p.fingerprint for p in parties])
    step(1.0, "sealed")
    return SealedPackage(manifest=manifest, agreement=agreement, path=Path(out), record=record)


# ------------------------------------------------------------------------------------------------ open


def trusted_sender(vault: Vault, manifest: Manifest) -> Partner:
    try:
        partner = find_partner(vault, fingerprint=manifest.sender_fingerprint)
    except PartnerError as exc:
        raise PackageRejected(
            f"The package names a malformed sender ({manifest.sender_fingerprint!r})."
        ) from exc
    if partner is None:
        raise PackageRejected(
            f"The package is signed by {manifest.sender_fingerprint}, a partner this vault does not know; "
            "import their card and verify it first."
        )
    try:
        return trusted_partner(vault, fingerprint=partner.fingerprint, purpose="open a package from")
    except PartnerError as exc:
        raise PackageRejected(str(exc)) from exc


def _agreement_for(vault: Vault, manifest: Manifest, sender: Partner, today: date | None) -> Agreement:
    agreement = agreement_by_hash(vault, manifest.agreement_hash)
    if agreement is None or agreement.id != manifest.agreement_id:
        raise PackageRejected(
            f"The package was sealed under agreement {manifest.agreement_id}, which this vault does not hold "
            "(in that version); import the executed agreement first."
        )
    status = agreement_status(vault, agreement, today)
    deadline = agreement.destruction_deadline.isoformat()
    if status == "expired":
        raise PackageRejected(
            f"Agreement {agreement.id} ({agreement.title}) expired on {agreement.expires}: data under it can "
            f"no longer be opened, and what was received must be destroyed by {deadline}."
        )
    if status == "terminated":
        raise PackageRejected(
            f"Agreement {agreement.id} ({agreement.title}) was terminated: data under it can no longer be "
            f"opened, and what was received must be destroyed by {deadline}."
        )
    if status == "superseded":
        raise PackageRejected(
            f"The package was sealed under version {agreement.version} of agreement {agreement.id}, which a "
            "later version superseded."
        )
    if status != "executed":
        raise PackageRejected(f"Agreement {agreement.id} is not executed (it is {status}).")
    try:
        in_force = require_in_force(vault, agreement.id, today)
    except AgreementError as exc:
        raise PackageRejected(str(exc)) from exc
    if in_force.sha256 != agreement.sha256:
        raise PackageRejected(f"The package was sealed under another version of agreement {agreement.id}.")
    if sender.fingerprint not in {p.fingerprint for p in agreement.providers()}:
        raise PackageRejected(f"{sender.org} is not a provider in agreement {agreement.id}.")
    party = agreement.party(sender.fingerprint)
    try:
        party_card(vault, party, "open a package from")
    except PartnerError as exc:
        raise PackageRejected(str(exc)) from exc
    return agreement


def _check_recipients(vault: Vault, manifest: Manifest, agreement: Agreement) -> None:
    me = our_card(vault)
    allowed = {p.age_recipient for p in agreement.recipients()}
    if me.fingerprint() not in {p.fingerprint for p in agreement.recipients()} or (
        me.age_recipient not in manifest.recipients
    ):
        raise PackageRejected(
            f"This organization is not a named recipient of the package under {agreement.id}."
        )
    if not set(manifest.recipients) <= allowed:
        raise PackageRejected(
            f"The package is also encrypted to someone who is not a recipient in agreement {agreement.id}."
        )


CHECKS = (
    "The sender's signature over the manifest is valid, from a partner you verified.",
    "The agreement is executed and in force, names the sender as a provider and you as a recipient.",
    "The package was not opened before (no replay).",
    "Every file matches the size and SHA-256 in the signed manifest, and nothing else is inside.",
)


def open_received(
    vault: Vault,
    package: str | Path,
    out_dir: str | Path,
    *,
    receipt: str | Path | None = None,
    progress: Progress | None = None,
    today: date | None = None,
    force: bool = False,
    reopen_reason: str | None = None,
) -> ReceivedPackage:
    """``pathshare open``: verify and unpack a package into ``out_dir`` (absent or empty).

    Refused with PackageRejected (or OutputError for the destination) — audited, nothing in
    ``out_dir`` — unless the sender is a verified, unrevoked partner whose signature verifies; the
    agreement is one we hold, executed and in force, with the sender a provider and us a named
    recipient; the package id was not opened before; and every file matches the manifest. The
    sender's audit-log head is held for rollback detection. With ``receipt``, a signed receipt is
    written there for the sender (an existing file replaced only with ``force``, never a recorded one).

    ``reopen_reason``: open once more a package this vault opened before, whose folder was lost — the
    same package (same id and manifest), not destroyed, not re-opened before, its old folder gone;
    recorded with the reason (``package.reopened``). Without it a package opened before is a replay.
    """
    step = progress or _noop
    seen: dict[str, Any] = {}
    rule = output_rule(vault)
    if reopen_reason is not None and not reopen_reason.strip():
        raise PackageRejected(
            "Say why the package is opened once more; the vault records it.",
            "Give the reason.",
            action="give_reason",
        )
    if receipt is not None:
        from deid import same_file

        if same_file(Path(receipt), Path(package)):
            raise OutputError(
                f"Cannot write the receipt over the package {Path(package).name}; choose another name."
            )
        check_output_path(receipt, force=force, recorded=rule)  # refuse before opening, not after
        if Path(out_dir).resolve() in Path(receipt).resolve().parents:
            # A refused package leaves nothing in the destination: its refusal receipt included.
            raise OutputError(
                f"Cannot write the receipt inside {Path(out_dir).name}, the folder the package opens into; "
                "choose a place outside it."
            )

    def verify_sender(manifest: Manifest) -> Any:
        seen["manifest"] = manifest
        seen["sender"] = trusted_sender(vault, manifest)
        return load_public_key(seen["sender"].card.signing_key)

    def check_manifest(manifest: Manifest) -> None:
        seen["signed"] = True  # open_package calls this only after the signature verified
        seen["agreement"] = _agreement_for(vault, manifest, seen["sender"], today)
        _check_recipients(vault, manifest, seen["agreement"])
        if reopen_reason is None:
            check_not_replayed(vault, manifest)
        else:
            _check_reopen(vault, manifest)

    staging: list[Path] = []

    def on_staging(folder: Path) -> None:
        record_staging(vault, folder, Path(out_dir), Path(package))
        staging.append(folder)

    step(0.02, "decrypting and checking the package")
    try:
        opened = open_package(
            Path(package),
            age_identity(vault),
            Path(out_dir),
            verify_sender=verify_sender,
            check_manifest=check_manifest,
            progress=lambda f, m: step(0.02 + 0.75 * f, m),
            on_staging=on_staging,
        )
    except PathShareError as exc:
        if staging:  # open_package removed it
            forget_staging(vault, staging[0])
        # Only a manifest whose signature verified may name the agreement and sender in the log.
        trusted = seen.get("manifest") if seen.get("signed") else None
        record_rejected(vault, Path(package), str(exc), trusted)
        if receipt is not None and trusted is not None and isinstance(exc, PackageRejected):
            try:
                exc.receipt = _write_refusal_receipt(
                    vault, trusted, seen["sender"], Path(receipt), str(exc), force=force
                )
            except OutputError as failure:  # the refusal stays the news; the missing receipt is added
                raise PackageRejected(f"{exc} The receipt for the sender was not written: {failure}") from exc
        raise
    manifest, sender, agreement = opened.manifest, seen["sender"], seen["agreement"]
    step(0.95, "recording the package")
    if reopen_reason is None:
        record_received(vault, manifest, Path(out_dir), agreement)
    else:
        record_reopened(vault, manifest, Path(out_dir), reopen_reason.strip())
    forget_staging(vault, staging[0])  # moved into out_dir, now recorded: tracked for destruction
    warnings: list[str] = []
    seq, head = manifest.audit_head
    verdict = hold_partner_head(
        vault, sender.card, seq, head, canonical_json(manifest.to_json()).decode(), manifest.audit_proofs
    )
    if not verdict.ok:
        warnings.append(f"{verdict.reason}.")
    receipt_path = None
    if receipt is not None:
        receipt_path = Path(receipt)
        me = our_card(vault)
        doc = make_receipt(manifest, signing_key(vault), me.fingerprint(), "opened")
        with vault.transaction() as conn:
            vault.audit.append(
                "package.receipt_written",
                agreement=manifest.agreement_id,
                partner=sender.fingerprint,
                package=manifest.package_id,
                details={"file": receipt_path.name},
                conn=conn,
            )
            # Written inside the transaction: no "written" entry for a file that could not be.
            write_json_document(receipt_path, doc, force=force, recorded=rule)
            record_file(conn, receipt_path, "receipt", manifest.package_id)
    step(1.0, "opened")
    return ReceivedPackage(
        manifest=manifest,
        report=opened.report,
        out_dir=opened.out_dir,
        files=opened.files,
        sender=sender,
        agreement=agreement,
        checks=CHECKS,
        warnings=tuple(warnings),
        receipt=receipt_path,
    )


# ------------------------------------------------------------------------------ receipts and certificates


def _check_reopen(vault: Vault, manifest: Manifest) -> None:
    """PackageRejected unless ``manifest`` is a package this vault opened before and may open again."""
    opened = received_on(vault, manifest.package_id, manifest.sender_fingerprint)
    if opened is None:
        raise PackageRejected(
            f"Package {manifest.package_id} was never opened here; only a package this vault opened "
            "before can be opened once more."
        )
    before = get_package(vault, manifest.package_id, RECEIVED, manifest.sender_fingerprint)
    if before.manifest_hash != manifest.hash or before.sender != manifest.sender_fingerprint:
        raise PackageRejected(
            f"This is not the package {manifest.package_id} opened here on {opened[:10]}: its manifest "
            "differs, so it is refused (replay)."
        )
    if before.destroyed_at is not None:
        raise PackageRejected(
            f"Package {manifest.package_id} was certified destroyed on {before.destroyed_at[:10]}; "
            "it cannot be opened again."
        )
    if before.reopened_at is not None:
        raise PackageRejected(
            f"Package {manifest.package_id} was already opened once more on {before.reopened_at[:10]}; "
            "ask the sender for a new package."
        )
    folder = Path(before.location)
    if folder.exists() and any(folder.iterdir()):
        raise PackageRejected(
            f"Package {manifest.package_id} is still open in {folder}; use those files, or destroy them "
            "first.",
            "Destroying the package deletes them and writes the certificate.",
            action="destroy_package",
            subject=manifest.package_id,
        )


def _write_refusal_receipt(
    vault: Vault, manifest: Manifest, sender: Partner, path: Path, reason: str, *, force: bool = False
) -> Path | None:
    """Tell the sender, in a signed ``rejected`` receipt, that a package of theirs was refused and why.

    Only for a manifest whose signature verified (so the package id and sender are real), and never
    for a replayed copy: the first copy's ``opened`` receipt already stands, and a ``rejected`` one
    would overwrite it on the sender's side. Returns the receipt's path, or None when none is due.
    """
    if received_on(vault, manifest.package_id, manifest.sender_fingerprint) is not None:
        return None
    me = our_card(vault).fingerprint()
    doc = make_receipt(manifest, signing_key(vault), me, "rejected", reason=reason)
    with vault.transaction() as conn:
        vault.audit.append(
            "package.receipt_written",
            agreement=manifest.agreement_id,
            partner=sender.fingerprint,
            package=manifest.package_id,
            details={"file": path.name, "result": "rejected"},
            conn=conn,
        )
        write_json_document(path, doc, force=force, recorded=output_rule(vault))
        record_file(conn, path, "receipt", manifest.package_id)
    return path


def import_receipt_file(vault: Vault, path: str | Path) -> Any:
    """``pathshare receipt import``: verify a recipient's receipt and mark the package delivered."""
    source = f"The receipt file {Path(path).name}"
    doc = _load_audited(vault, Path(path), "receipt", "package.receipt_rejected")
    return import_receipt(vault, doc, source)


DESTROY_STATEMENT = "All data received in this package has been destroyed as the agreement requires."


def opened_files(record: PackageRecord, vault: Vault) -> list[str]:
    """The files ``open`` wrote for a received package, relative to its folder ('/'-separated)."""
    import json

    row = vault.db.execute(
        "SELECT manifest FROM packages WHERE package_id = ? AND direction = ? AND sender = ?",
        (record.package_id, RECEIVED, record.sender),
    ).fetchone()
    manifest = Manifest.from_json(json.loads(row[0]))
    names = [f"{DATA_DIR}/{f.name}" for f in manifest.files]
    return [*names, REPORT_NAME, MANIFEST_NAME, SIGNATURE_NAME]


def _delete_opened(folder: Path, names: Sequence[str], *, remove_folder: bool) -> tuple[list[str], list[str]]:
    """Delete ``names`` under ``folder`` and the folders ``open`` made once empty (``folder`` itself
    with ``remove_folder``). Returns (deleted, still there) — the latter checked again on the disk."""
    import contextlib
    import os

    deleted = []
    for name in names:
        path = folder / name
        if os.path.lexists(path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            deleted.append(name)
    # The folders open made: data/ and its sub-folders, deepest first, then the folder itself.
    dirs = {folder / DATA_DIR} | {(folder / n).parent for n in names}
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()
    if remove_folder:
        with contextlib.suppress(OSError):
            folder.rmdir()
    remaining = [name for name in names if os.path.lexists(folder / name)]
    return deleted, remaining


def _others_in(folder: Path, names: Sequence[str]) -> list[str]:
    """Files in ``folder`` that ``open`` did not write (copies, notes, analysis): relative names."""
    if not folder.is_dir():
        return []
    ours = set(names)
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_dir() and rel not in ours:
            found.append(rel)
    return found


@dataclass(frozen=True)
class Destruction:
    """What ``destroy`` did: the signed certificate and how the destruction was established."""

    certificate: dict[str, Any]
    verified: str  # "deleted" (PathShare deleted the files and saw them gone) or "attested" (by hand)
    folder: Path
    deleted: tuple[str, ...]
    missing: tuple[str, ...]
    rewritten: bool = False


def destroy(
    vault: Vault,
    package_id: str,
    certificate: str | Path,
    *,
    files_moved_to: str | Path | None = None,
    attest: str | None = None,
    method: str | None = None,
    statement: str = DESTROY_STATEMENT,
    now: datetime | None = None,
    force: bool = False,
    sender: str | None = None,
) -> Destruction:
    """``pathshare destroy``: delete what ``open`` wrote, confirm it is gone, then sign the certificate.

    ``package_id`` is a received package's id or a unique prefix (and ``sender`` the sender's card
    fingerprint, needed only when packages from two senders carry that id). The files are looked for where the
    package was opened (the vault recorded the folder), or in ``files_moved_to`` when the user moved
    them. PathShare deletes every file it wrote there and checks the disk again; only when none is
    left is the destruction recorded and the certificate signed and written, its method saying
    "deleted by PathShare … confirmed gone". Refused, deleting nothing, when the folder also holds files
    PathShare did not write (copies must be destroyed too: move or delete them first), and when some
    files are not there — unless ``attest`` says what the user checked instead: the certificate then
    says it was certified by hand, with that statement and what PathShare found. Run again for a
    package already certified, it writes the certificate the vault holds once more.
    """
    import json

    rule = output_rule(vault)
    pid = resolve_package_id(vault, package_id, RECEIVED)
    check_output_path(certificate, force=force, recorded=rule)  # before anything is deleted or recorded
    record = get_package(vault, pid, RECEIVED, sender)
    folder = Path(files_moved_to) if files_moved_to is not None else Path(record.location)
    if record.destroyed_at is not None:
        row = vault.db.execute(
            "SELECT certificate FROM destruction_certificates WHERE package_id = ? AND sender = ? "
            "AND recipient = ?",
            (record.package_id, record.sender, our_card(vault).fingerprint()),
        ).fetchone()
        if row is not None:
            cert = dict(json.loads(row[0]))
            with vault.transaction() as conn:
                vault.audit.append(
                    "package.certificate_rewritten",
                    agreement=record.agreement_id,
                    package=record.package_id,
                    details={"file": Path(certificate).name},
                    conn=conn,
                )
                write_json_document(Path(certificate), cert, force=force, recorded=rule)
                record_file(conn, Path(certificate), "destruction certificate", record.package_id)
            return Destruction(cert, "recorded", Path(record.location), (), (), rewritten=True)
    if attest is not None and not attest.strip():
        raise PackageRejected(
            "Say what you checked; the certificate quotes it.", "Give what you checked.", action="attest"
        )
    if files_moved_to is not None and not folder.is_dir():
        raise PackageRejected(f"{folder} is not a folder; give the folder the package's files were moved to.")
    names = opened_files(record, vault)
    import os

    present = [n for n in names if os.path.lexists(folder / n)]
    missing = [n for n in names if n not in present]
    # Copies beside the opened files must go too; a folder the user moved the files into is theirs.
    others = _others_in(folder, names) if files_moved_to is None else []
    if others:
        raise PackageRejected(
            f"{folder} also holds {len(others)} file(s) PathShare did not write there (first: {others[0]}); "
            "copies of the data must be destroyed too: delete or move them, then destroy the package again. "
            "Nothing was deleted."
        )
    if missing and attest is None:
        where = "moved to" if files_moved_to is not None else "opened into"
        raise OpenedFilesMissing(
            f"{len(missing)} of the {len(names)} files of package {pid} are not in {folder}, the folder it "
            f"was {where} (first: {missing[0]}); nothing was deleted or certified. If they were moved, "
            "destroy them in the folder they are in now; if they are gone some other way, certify by "
            "hand, saying what you checked.",
            "Give the folder they are in now, or certify by hand with what you checked.",
            action="files_moved",
            folder=str(folder),
        )
    deleted, remaining = _delete_opened(folder, present, remove_folder=files_moved_to is None)
    if remaining:
        vault.audit.append(
            "package.destroy_failed",
            agreement=record.agreement_id,
            package=pid,
            details={"folder": str(folder), "deleted": len(deleted), "remaining": len(remaining)},
        )
        raise PackageRejected(
            f"{len(remaining)} file(s) of package {pid} could not be deleted from {folder} (first: "
            f"{remaining[0]}); nothing was certified."
        )
    if attest is None:
        verified = "deleted"
        how = (
            f"deleted by PathShare: the {len(deleted)} files it opened into {folder} were deleted and "
            "confirmed gone"
        )
    else:
        verified = "attested"
        found = (
            f"PathShare found {len(deleted)} of the {len(names)} files in {folder} and deleted them "
            f"(confirmed gone); the other {len(missing)} were not there"
        )
        how = (
            f"certified by hand by the recipient, not checked by PathShare: {found}; the recipient "
            f"states: {attest.strip()}"
        )
    if method:
        how += f"; {method.strip()}"
    cert = certify_destruction(
        vault,
        pid,
        sender=record.sender,
        method=how,
        statement=statement,
        now=now,
        details={
            "verified": verified,
            "folder": str(folder),
            "deleted": len(deleted),
            "missing": len(missing),
        },
    )
    try:
        with vault.transaction() as conn:
            write_json_document(Path(certificate), cert, force=force, recorded=rule)
            record_file(conn, Path(certificate), "destruction certificate", pid)
    except (OSError, OutputError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise OutputError(
            f"Cannot write the certificate {certificate}: {reason or exc}; the destruction is recorded.",
            "Write the certificate again.",
            action="write_certificate",
            subject=pid,
        ) from exc
    return Destruction(cert, verified, folder, tuple(deleted), tuple(missing))


# ------------------------------------------------------------------------------------------------ void


@dataclass(frozen=True)
class Voided:
    """A sent package voided because it never left; ``deleted`` says whether its file was removed."""

    record: PackageRecord
    file: Path
    deleted: bool


def void_package(vault: Vault, package_id: str, reason: str) -> Voided:
    """``pathshare void``: a package we sealed but never sent is void (id or unique prefix).

    Refused when any recipient sent a receipt (it did leave) or it is void already. The sealed file is
    deleted when it is still where it was written, so it cannot be sent by mistake; the package leaves
    the dashboard's and the disclosure record's "no receipt yet" (``package.voided``, with the reason).
    """
    import os

    if not reason or not reason.strip():
        raise PackageRejected(
            "Say why the package is void; the vault records it.", "Give the reason.", action="give_reason"
        )
    pid = resolve_package_id(vault, package_id, SENT)
    record = get_package(vault, pid, SENT)
    if record.voided_at is not None:
        raise PackageRejected(f"Package {pid} was already voided on {record.voided_at[:10]}.")
    if record.delivered_to or record.refused or record.destroyed_by:
        raise PackageRejected(
            f"Package {pid} cannot be voided: a recipient sent a receipt or certificate for it, so it left."
        )
    path = Path(record.location)
    deleted = False
    if path.is_file():
        os.unlink(path)
        deleted = True
    state = "deleted" if deleted else "not found where it was written"
    return Voided(record_voided(vault, pid, reason.strip(), state), path, deleted)


def import_certificate_file(vault: Vault, path: str | Path) -> Any:
    """``pathshare certificate import``: verify a recipient's destruction certificate and record it."""
    source = f"The certificate file {Path(path).name}"
    doc = _load_audited(vault, Path(path), "destruction certificate", "package.certificate_rejected")
    return import_destruction_certificate(vault, doc, source)


def _load_audited(vault: Vault, path: Path, what: str, action: str) -> Any:
    """A returned document's JSON; a file refused as unreadable or malformed is audited like any other
    refusal of what a partner sent (the same action the signature checks use)."""
    try:
        return load_json_document(path, what)
    except InputError as exc:
        vault.audit.append(action, details={"file": path.name, "reason": str(exc)})
        raise


@dataclass(frozen=True)
class ReturnedDocument:
    """A receipt or a destruction certificate a partner sent back, as imported, with one sentence for
    people (the partner and agreement by name, not by fingerprint or id)."""

    kind: str  # "receipt" or "certificate"
    record: Any  # the Receipt or DestructionCertificate
    sentence: str


def import_returned_file(vault: Vault, path: str | Path) -> ReturnedDocument:
    """The app's one door for what comes back from recipients: a receipt or a destruction certificate,
    told apart by the marker field each carries, then verified and recorded by the same functions as
    ``pathshare receipt import`` and ``pathshare certificate import`` (which audit it)."""
    from deid.errors import InputError

    p = Path(path)
    doc = load_json_document(p, "receipt or destruction certificate")
    if isinstance(doc, dict) and "pathshare_destruction_certificate" in doc:
        cert = import_destruction_certificate(vault, doc, f"The certificate file {p.name}")
        who = _partner_name(vault, cert.recipient_fingerprint)
        title = _agreement_title(vault, cert.agreement_id)
        return ReturnedDocument(
            "certificate",
            cert,
            f"{who} certified that it destroyed the data of package {cert.package_id[:8]} ({title}) "
            f"on {cert.destroyed_at[:10]}.",
        )
    if isinstance(doc, dict) and "pathshare_receipt" in doc:
        receipt = import_receipt(vault, doc, f"The receipt file {p.name}")
        who = _partner_name(vault, receipt.recipient_fingerprint)
        title = _agreement_title(vault, receipt.agreement_id)
        if receipt.result == "rejected":
            sentence = (
                f"{who} refused package {receipt.package_id[:8]} ({title}) on {receipt.time[:10]}: "
                f"{receipt.reason}"
            )
        else:
            sentence = f"{who} opened package {receipt.package_id[:8]} ({title}) on {receipt.time[:10]}."
        return ReturnedDocument("receipt", receipt, sentence)
    raise InputError(f"{p.name} is neither a PathShare receipt nor a destruction certificate.")


def _partner_name(vault: Vault, fingerprint: str) -> str:
    partner = find_partner(vault, fingerprint=fingerprint)
    return partner.org if partner is not None else "A partner we hold no card for"


def _agreement_title(vault: Vault, agreement_id: str) -> str:
    from agreements._stored_agreements import get_agreement

    try:
        return get_agreement(vault, agreement_id).title
    except PathShareError:
        return "an agreement this vault does not hold"
