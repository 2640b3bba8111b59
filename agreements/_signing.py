"""Canonical JSON (RFC 8785) and Ed25519 signatures over it — the one way PathShare signs things.

Cards, agreements, manifests, receipts, destruction certificates and audit checkpoints are all signed
as ``Ed25519(canonical_json(document_without_its_signature_field))``; signatures and keys travel as
standard base64 text.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def canonical_json(document: Any) -> bytes:
    """The RFC 8785 canonical bytes of a JSON-compatible value."""
    try:
        return rfc8785.dumps(document)
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise ValueError(f"not canonicalizable JSON: {exc}") from exc


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Decode standard base64, raising ValueError on anything malformed."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError("malformed base64") from exc


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return b64(pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def load_public_key(text: str) -> Ed25519PublicKey:
    """An Ed25519 public key from base64 of its 32 raw bytes (ValueError if malformed)."""
    raw = unb64(text)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def sign_document(key: Ed25519PrivateKey, document: Any) -> str:
    """Sign the canonical bytes of ``document``; return the signature as base64."""
    return b64(key.sign(canonical_json(document)))


def verify_document(public_key: Ed25519PublicKey | str, document: Any, signature: str) -> bool:
    """True when ``signature`` is a valid Ed25519 signature over the canonical bytes of ``document``."""
    try:
        pub = load_public_key(public_key) if isinstance(public_key, str) else public_key
        pub.verify(unb64(signature), canonical_json(document))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
