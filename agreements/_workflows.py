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
from agreements._agreement_store import agreement_by_hash, agreement_status, require_in_force
from agreements._audit import hold_partner_head
from agreements._identity import age_identity, our_card, signing_key
from agreements._package import (
    Manifest,
    load_json_document,
    make_receipt,
    open_package,
    seal,
    write_json_document,
)
from agreements._package_store import (
    PackageRecord,
    certify_destruction,
    check_not_replayed,
    forget_staging,
    import_destruction_certificate,
    import_receipt,
    received_on,
    record_received,
    record_rejected,
    record_sent,
    record_staging,
)
from agreements._partners import Partner, find_partner, party_card, trusted_partner
from agreements._signing import canonical_json, load_public_key
from agreements._vault import Vault
from agreements.errors import AgreementError, PackageRejected, PartnerError
from deid._atomic import check_output_path
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
    files: Sequence[tuple[str, Path] | tuple[str, Path, int | None]],
    report: dict[str, Any],
    out: Path,
    *,
    today: date | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> SealedPackage:
    """Seal de-identified ``files`` (already checked against the agreement) for its recipients.

    Refused (AgreementError, audited) unless the agreement is executed and in force ``today`` and we
    are one of its providers. The package is encrypted to exactly the agreement's recipients, signed
    by our identity, carries our audit-log head, and is recorded (``package.sealed``).
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


def _sender(vault: Vault, manifest: Manifest) -> Partner:
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
) -> ReceivedPackage:
    """``pathshare open``: verify and unpack a package into ``out_dir`` (absent or empty).

    Refused with PackageRejected (or OutputError for the destination) — audited, nothing in
    ``out_dir`` — unless the sender is a verified, unrevoked partner whose signature verifies; the
    agreement is one we hold, executed and in force, with the sender a provider and us a named
    recipient; the package id was not opened before; and every file matches the manifest. The
    sender's audit-log head is held for rollback detection. With ``receipt``, a signed receipt is
    written there for the sender.
    """
    step = progress or _noop
    seen: dict[str, Any] = {}
    if receipt is not None:
        check_output_path(receipt)  # refuse before opening, not after the data is out
        from agreements._prepare import _same_file

        if _same_file(Path(receipt), Path(package)):
            raise OutputError(
                f"Cannot write the receipt over the package {Path(package).name}; choose another name."
            )
        if Path(out_dir).resolve() in Path(receipt).resolve().parents:
            # A refused package leaves nothing in the destination: its refusal receipt included.
            raise OutputError(
                f"Cannot write the receipt inside {Path(out_dir).name}, the folder the package opens into; "
                "choose a place outside it."
            )

    def verify_sender(manifest: Manifest) -> Any:
        seen["manifest"] = manifest
        seen["sender"] = _sender(vault, manifest)
        return load_public_key(seen["sender"].card.signing_key)

    def check_manifest(manifest: Manifest) -> None:
        seen["signed"] = True  # open_package calls this only after the signature verified
        seen["agreement"] = _agreement_for(vault, manifest, seen["sender"], today)
        _check_recipients(vault, manifest, seen["agreement"])
        check_not_replayed(vault, manifest)

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
                exc.receipt = _write_refusal_receipt(vault, trusted, seen["sender"], Path(receipt), str(exc))
            except OutputError as failure:  # the refusal stays the news; the missing receipt is added
                raise PackageRejected(f"{exc} The receipt for the sender was not written: {failure}") from exc
        raise
    manifest, sender, agreement = opened.manifest, seen["sender"], seen["agreement"]
    step(0.95, "recording the package")
    record_received(vault, manifest, Path(out_dir), agreement)
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
        write_json_document(
            receipt_path, make_receipt(manifest, signing_key(vault), me.fingerprint(), "opened")
        )
        vault.audit.append(
            "package.receipt_written",
            agreement=manifest.agreement_id,
            partner=sender.fingerprint,
            package=manifest.package_id,
            details={"file": receipt_path.name},
        )
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


def _write_refusal_receipt(
    vault: Vault, manifest: Manifest, sender: Partner, path: Path, reason: str
) -> Path | None:
    """Tell the sender, in a signed ``rejected`` receipt, that a package of theirs was refused and why.

    Only for a manifest whose signature verified (so the package id and sender are real), and never
    for a replayed copy: the first copy's ``opened`` receipt already stands, and a ``rejected`` one
    would overwrite it on the sender's side. Returns the receipt's path, or None when none is due.
    """
    if received_on(vault, manifest.package_id, manifest.sender_fingerprint) is not None:
        return None
    me = our_card(vault).fingerprint()
    write_json_document(path, make_receipt(manifest, signing_key(vault), me, "rejected", reason=reason))
    vault.audit.append(
        "package.receipt_written",
        agreement=manifest.agreement_id,
        partner=sender.fingerprint,
        package=manifest.package_id,
        details={"file": path.name, "result": "rejected"},
    )
    return path


def import_receipt_file(vault: Vault, path: str | Path) -> Any:
    """``pathshare receipt import``: verify a recipient's receipt and mark the package delivered."""
    source = f"The receipt file {Path(path).name}"
    doc = _load_audited(vault, Path(path), "receipt", "package.receipt_rejected")
    return import_receipt(vault, doc, source)


def destroy(
    vault: Vault,
    package_id: str,
    certificate: str | Path,
    *,
    method: str = "deleted all copies (files and backups) of the package's data",
    statement: str = "All data received in this package has been destroyed as the agreement requires.",
    now: datetime | None = None,
) -> dict[str, Any]:
    """``pathshare destroy``: after deleting the data, sign a destruction certificate and write it.

    Run again for a package already certified, it writes the certificate the vault holds once more (the
    first file may have been lost, or its writing failed after the destruction was recorded)."""
    import json

    from agreements._package_store import RECEIVED, get_package

    check_output_path(certificate)  # before the vault records the destruction
    record = get_package(vault, package_id, RECEIVED)
    if record.destroyed_at is not None:
        row = vault.db.execute(
            "SELECT certificate FROM destruction_certificates WHERE package_id = ? AND recipient = ?",
            (record.package_id, our_card(vault).fingerprint()),
        ).fetchone()
        if row is not None:
            cert = dict(json.loads(row[0]))
            write_json_document(Path(certificate), cert)
            vault.audit.append(
                "package.certificate_rewritten",
                agreement=record.agreement_id,
                package=record.package_id,
                details={"file": Path(certificate).name},
            )
            return cert
    cert = certify_destruction(vault, package_id, method=method, statement=statement, now=now)
    try:
        write_json_document(Path(certificate), cert)
    except OSError as exc:
        raise OutputError(
            f"Cannot write the certificate {certificate}: {exc.strerror or exc}; the destruction is "
            f"recorded, so run `pathshare destroy {record.package_id} --certificate FILE` again to write it."
        ) from exc
    return cert


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
    from agreements._agreement_store import get_agreement

    try:
        return get_agreement(vault, agreement_id).title
    except PathShareError:
        return "an agreement this vault does not hold"
