"""Receipts and destruction certificates: a recipient's signed statements that it opened (or refused) a
package and that it destroyed its data, and the JSON files they travel in.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agreements._clock import utc_text
from agreements._manifest import Manifest, nonempty_str
from agreements._signing import sign_document, verify_document
from agreements.errors import PackageRejected
from deid import (
    Recorded,
    atomic_open,
    read_json_file,
)

_RECEIPT_RESULTS = ("opened", "rejected")


@dataclass(frozen=True)
class Receipt:
    """A recipient's signed statement that it opened (or rejected) a package."""

    package_id: str
    manifest_hash: str
    agreement_id: str
    recipient_fingerprint: str
    time: str
    result: str
    reason: str = ""  # why a ``rejected`` package was refused (the recipient's one sentence)


@dataclass(frozen=True)
class DestructionCertificate:
    """A recipient's signed statement that it destroyed a package's data."""

    package_id: str
    manifest_hash: str
    agreement_id: str
    recipient_fingerprint: str
    destroyed_at: str
    method: str
    statement: str


_RECEIPT_KEYS = {
    "pathshare_receipt",
    "package_id",
    "manifest_hash",
    "agreement_id",
    "recipient",
    "time",
    "result",
    "signature",
}
_CERT_KEYS = {
    "pathshare_destruction_certificate",
    "package_id",
    "manifest_hash",
    "agreement_id",
    "recipient",
    "destroyed_at",
    "method",
    "statement",
    "signature",
}


_MAX_REASON = 500  # characters: a refusal is one sentence


def make_receipt(
    manifest: Manifest,
    recipient_key: Ed25519PrivateKey,
    recipient_fingerprint: str,
    result: str = "opened",
    now: datetime | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """A signed receipt (JSON-ready dict) for ``manifest``; ``result`` is ``opened`` or ``rejected``.

    A ``rejected`` receipt carries ``reason``, the recipient's refusal sentence (it never holds
    student data: refusals name files, agreements and dates, never values).
    """
    if result not in _RECEIPT_RESULTS:
        raise ValueError(f"result must be one of {_RECEIPT_RESULTS}")
    if (result == "rejected") != bool(reason):
        raise ValueError("a rejected receipt needs a reason, and only a rejected one has one")
    doc: dict[str, Any] = {
        "pathshare_receipt": 1,
        "package_id": manifest.package_id,
        "manifest_hash": manifest.hash,
        "agreement_id": manifest.agreement_id,
        "recipient": recipient_fingerprint,
        "time": utc_text(now),
        "result": result,
    }
    if reason:
        doc["reason"] = reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
    doc["signature"] = sign_document(recipient_key, doc)
    return doc


def verify_receipt(receipt: Any, public_key: Ed25519PublicKey | str) -> Receipt:
    """The receipt's content if its signature verifies under ``public_key``; else PackageRejected."""
    keys = _RECEIPT_KEYS | {"reason"} if isinstance(receipt, dict) and "reason" in receipt else _RECEIPT_KEYS
    doc = _signed(receipt, keys, "pathshare_receipt", public_key, "receipt")
    if doc["result"] not in _RECEIPT_RESULTS or (doc["result"] == "rejected") != ("reason" in doc):
        raise PackageRejected("The receipt is malformed.")
    reason = doc.get("reason", "")
    if len(reason) > _MAX_REASON or not reason.isprintable():
        # make_receipt writes one printable sentence; a line break or a terminal control character here
        # would reach `pathshare packages` and `receipt import` output as it is (a forged second line).
        raise PackageRejected("The receipt is malformed.")
    return Receipt(
        doc["package_id"],
        doc["manifest_hash"],
        doc["agreement_id"],
        doc["recipient"],
        doc["time"],
        doc["result"],
        doc.get("reason", ""),
    )


def make_destruction_certificate(
    *,
    package_id: str,
    manifest_hash: str,
    agreement_id: str,
    recipient_key: Ed25519PrivateKey,
    recipient_fingerprint: str,
    method: str,
    statement: str,
    destroyed_at: datetime | None = None,
) -> dict[str, Any]:
    """A destruction certificate (JSON-ready dict) signed by the recipient that held the package."""
    if not method.strip() or not statement.strip():
        raise ValueError("a destruction certificate needs a method and a statement")
    doc: dict[str, Any] = {
        "pathshare_destruction_certificate": 1,
        "package_id": package_id,
        "manifest_hash": manifest_hash,
        "agreement_id": agreement_id,
        "recipient": recipient_fingerprint,
        "destroyed_at": utc_text(destroyed_at),
        "method": method,
        "statement": statement,
    }
    doc["signature"] = sign_document(recipient_key, doc)
    return doc


def verify_destruction_certificate(
    certificate: Any, public_key: Ed25519PublicKey | str
) -> DestructionCertificate:
    """The certificate's content if its signature verifies under ``public_key``; else PackageRejected."""
    doc = _signed(
        certificate, _CERT_KEYS, "pathshare_destruction_certificate", public_key, "destruction certificate"
    )
    return DestructionCertificate(
        doc["package_id"],
        doc["manifest_hash"],
        doc["agreement_id"],
        doc["recipient"],
        doc["destroyed_at"],
        doc["method"],
        doc["statement"],
    )


def _signed(
    doc: Any, keys: set[str], marker: str, public_key: Ed25519PublicKey | str, what: str
) -> dict[str, Any]:
    if not isinstance(doc, dict) or set(doc) != keys or doc[marker] != 1:
        raise PackageRejected(f"The {what} is malformed.")
    if not all(nonempty_str(doc[k]) for k in keys - {marker}):
        raise PackageRejected(f"The {what} is malformed.")
    from deid import unsafe_characters

    if any(unsafe_characters(doc[k], keep="\n\t") for k in keys - {marker}):
        # Its text is printed and shown (`packages`, the dashboard): an escape sequence or a bidi
        # override there would act on the reader's terminal or pass for other text.
        raise PackageRejected(
            f"The {what} is malformed: it holds control, text-direction or invisible characters."
        )
    body = {k: v for k, v in doc.items() if k != "signature"}
    if not verify_document(public_key, body, doc["signature"]):
        raise PackageRejected(
            f"The {what}'s signature does not verify (tampered, or signed by someone else)."
        )
    return body


# A receipt or certificate is under a kilobyte; a file far larger is refused before it is read.
_MAX_RETURNED_DOCUMENT_BYTES = 1 << 20


def load_json_document(path: Path, what: str) -> Any:
    """Read a receipt or certificate file; InputError naming the file if it is not JSON."""
    source = f"The {what} file {path}"
    return read_json_file(path, source, what=f"a {what}", max_bytes=_MAX_RETURNED_DOCUMENT_BYTES)


def write_json_document(
    path: Path, doc: dict[str, Any], *, force: bool = False, recorded: Recorded | None = None
) -> None:
    """Write a receipt or certificate as pretty JSON, atomically (0644: it holds no secrets);
    ``force``/``recorded``: deid's rule for replacing a file."""
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    with atomic_open(path, "wb", 0o644, force=force, recorded=recorded) as fh:
        fh.write(data)
