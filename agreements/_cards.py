"""Public cards: what partners exchange to know each other's keys.

A card is self-signed JSON (Ed25519 over the RFC 8785 canonical bytes of the card without its
``signature`` field)::

    {"pathshare_card": 1, "org": "Lakeview Unified", "kind": "district", "contact": "dpo@lakeview.example",
     "signing_key": "<base64 Ed25519 public key>", "age_recipient": "age1…", "created": "2026-…Z",
     "signature": "<base64>"}

Its **fingerprint** is the SHA-256 of the canonical signed body, first 100 bits, written as four groups of
five base32 characters (``ABCDE-FGHIJ-KLMNO-PQRST``) — short enough to read over the phone, long enough
that nobody can make another card with the same one.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from agreements._signing import canonical_json, load_public_key, sign_document, verify_document
from agreements.errors import PartnerError
from deid import parse_json

MAX_CARD_BYTES = 1 << 20  # a card is about a kilobyte

CARD_VERSION = 1
ORG_KINDS = ("district", "college", "employer", "intermediary")
_FIELDS = ("org", "kind", "contact", "signing_key", "age_recipient", "created")
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class Card:
    """An organization's public card. Build one with :func:`make_card` or :meth:`from_json`."""

    org: str
    kind: str
    contact: str
    signing_key: str  # base64 of the raw 32-byte Ed25519 public key
    age_recipient: str  # "age1…"
    created: str  # ISO 8601 UTC
    signature: str  # base64 Ed25519 signature over the canonical body

    def body(self) -> dict[str, Any]:
        """The signed part of the card (everything but the signature)."""
        return {"pathshare_card": CARD_VERSION, **{f: getattr(self, f) for f in _FIELDS}}

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    def to_json(self) -> str:
        """The card as pretty JSON text (what `card export` writes)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def fingerprint(self) -> str:
        """Short, human-comparable fingerprint, e.g. ``K3XQF-7TZ2M-AB4CD-QWE5R``."""
        return fingerprint_of(self.body())

    def self_signature_ok(self) -> bool:
        return verify_document(self.signing_key, self.body(), self.signature)

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "The card", *, stored: bool = False) -> Card:
        """Parse and check a card (version, fields, keys, self-signature); PartnerError otherwise.

        ``source`` names the card in messages, e.g. ``"The card file partner.json"``. ``stored``: a card
        read back from the vault, accepted as it was imported (older vaults may hold cards that today's
        text check refuses; what is printed or shown is made safe where it is displayed).
        """
        data = parse_json(text, source, what="a PathShare card", error=PartnerError, max_bytes=MAX_CARD_BYTES)
        return cls.from_dict(data, source, stored=stored)

    @classmethod
    def from_dict(cls, data: Any, source: str = "The card", *, stored: bool = False) -> Card:
        """Check a parsed card; PartnerError names what is wrong."""
        if not isinstance(data, dict) or "pathshare_card" not in data:
            raise PartnerError(f'{source} is not a PathShare card (no "pathshare_card" version).')
        if data["pathshare_card"] != CARD_VERSION:
            raise PartnerError(
                f"{source} has card version {data['pathshare_card']!r}, which this PathShare does not know."
            )
        missing = [f for f in (*_FIELDS, "signature") if f not in data]
        if missing:
            raise PartnerError(f"{source} is missing {', '.join(missing)}.")
        extra = sorted(set(data) - {"pathshare_card", "signature", *_FIELDS})
        if extra:
            raise PartnerError(f"{source} has unknown fields: {', '.join(extra)}.")
        bad = [f for f in (*_FIELDS, "signature") if not isinstance(data[f], str)]
        if bad:
            raise PartnerError(f"{source} has non-text values in {', '.join(bad)}.")
        card = cls(**{f: data[f] for f in (*_FIELDS, "signature")})
        if not stored:
            from deid import unsafe_characters

            # A name is printed and shown everywhere: one with an escape sequence, a bidi override or a
            # zero-width character could erase a terminal line or pass for another organization.
            bad = [f for f in _FIELDS if unsafe_characters(card.body()[f])]
            if bad:
                names = {"org": "organization name", "contact": "contact"}
                raise PartnerError(
                    f"{source} has control, text-direction or invisible characters in its "
                    f"{', '.join(names.get(f, f) for f in bad)}; a genuine card has none."
                )
        if not card.org.strip():
            raise PartnerError(f"{source} has no organization name.")
        if card.kind not in ORG_KINDS:
            raise PartnerError(f"{source} has kind {card.kind!r}; expected one of {', '.join(ORG_KINDS)}.")
        try:
            load_public_key(card.signing_key)
        except ValueError as exc:
            raise PartnerError(f"{source} has a malformed signing key.") from exc
        if not _valid_age_recipient(card.age_recipient):
            raise PartnerError(f"{source} has a malformed age recipient.")
        if not card.signature:
            raise PartnerError(f"{source} is not signed.")
        if not card.self_signature_ok():
            raise PartnerError(f"{source} has a bad signature: it was altered or not made by its own key.")
        return card


def make_card(
    signing_secret: Any, *, org: str, kind: str, contact: str, age_recipient: str, created: str
) -> Card:
    """Build and self-sign a card with the Ed25519 private key ``signing_secret``."""
    from agreements._signing import public_key_b64

    unsigned = Card(org, kind, contact, public_key_b64(signing_secret), age_recipient, created, "")
    return Card(
        **{
            **{f: getattr(unsigned, f) for f in _FIELDS},
            "signature": sign_document(signing_secret, unsigned.body()),
        }
    )


def fingerprint_of(body: dict[str, Any]) -> str:
    """The fingerprint of a card body: SHA-256, first 100 bits, 4 groups of 5 base32 characters."""
    digest = hashlib.sha256(canonical_json(body)).digest()
    text = base64.b32encode(digest).decode("ascii")[:20]
    return "-".join(text[i : i + 5] for i in range(0, 20, 5))


def normalize_fingerprint(text: str) -> str:
    """Accept a fingerprint as people type it (any case, spaces or dashes); PartnerError if malformed."""
    raw = "".join(ch for ch in text.upper() if ch not in " -\t")
    if len(raw) != 20 or any(ch not in _B32 for ch in raw):
        raise PartnerError(
            f"{text.strip()!r} is not a card fingerprint (expected four groups of five letters and digits)."
        )
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def _valid_age_recipient(text: str) -> bool:
    import pyrage

    try:
        pyrage.x25519.Recipient.from_str(text)
    except Exception:  # pyrage raises its own error types for malformed Bech32
        return False
    return True
