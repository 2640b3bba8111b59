"""Partners: the cards of other organizations, imported, then verified out of band, or revoked.

Trust is explicit: an imported card is *unverified* until someone has compared its fingerprint with the
partner by phone or in person (:func:`verify_partner`). Only verified, unrevoked partners can be parties
to a new agreement (:func:`trusted_partner`). A card whose organization we already know under another
key is imported unverified with a loud warning: it may be an impersonation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agreements._audit import utc_now
from agreements._cards import Card, normalize_fingerprint
from agreements._vault import Vault
from agreements.errors import PartnerError


@dataclass
class Partner:
    """A partner organization as this vault knows it."""

    card: Card
    verified: bool
    revoked: bool
    imported: str
    verified_at: str | None = None
    revoked_at: str | None = None

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint()

    @property
    def org(self) -> str:
        return self.card.org

    @property
    def trusted(self) -> bool:
        """Verified and not revoked: may be a party to a new agreement."""
        return self.verified and not self.revoked

    @property
    def status(self) -> str:
        return "revoked" if self.revoked else "verified" if self.verified else "unverified"

    def to_dict(self) -> dict[str, object]:
        return {
            "fingerprint": self.fingerprint,
            "org": self.card.org,
            "kind": self.card.kind,
            "contact": self.card.contact,
            "status": self.status,
            "imported": self.imported,
            "verified_at": self.verified_at,
            "revoked_at": self.revoked_at,
            "signing_key": self.card.signing_key,
            "age_recipient": self.card.age_recipient,
        }


@dataclass
class ImportResult:
    """What :func:`import_card` did. ``key_changed`` means: warn loudly, possible impersonation."""

    partner: Partner
    new: bool
    key_changed: bool = False
    previous: list[Partner] | None = None
    message: str = ""


_COLUMNS = "card, verified_at, revoked_at, imported"


def _partner(row: tuple) -> Partner:
    card = Card.from_json(row[0], "A partner card stored in the vault")
    return Partner(
        card=card,
        verified=row[1] is not None,
        revoked=row[2] is not None,
        imported=row[3],
        verified_at=row[1],
        revoked_at=row[2],
    )


# A card is about a kilobyte; a file far larger is refused before it is read into memory.
_MAX_CARD_BYTES = 1 << 20


def import_card(vault: Vault, card: Card | Path | str, *, verified: bool = False) -> ImportResult:
    """Import a partner's card (a Card or a card file); audited, refusals too.

    ``verified=True`` records that the fingerprint was already confirmed out of band; it is refused
    when the organization is known under another key. Raises PartnerError for a bad card or our own.
    """
    if not isinstance(card, Card):
        path = Path(card)
        try:
            if path.stat().st_size > _MAX_CARD_BYTES:
                raise PartnerError(f"The card file {path.name} is too large to be a PathShare card.")
            text = path.read_bytes()
        except FileNotFoundError as exc:
            raise PartnerError(f"There is no card file {path}.") from exc
        except IsADirectoryError as exc:
            raise PartnerError(f"{path} is a folder, not a card file.") from exc
        except OSError as exc:
            raise PartnerError(f"Cannot read the card file {path}: {exc.strerror or exc}.") from exc
        try:
            card = Card.from_json(text, f"The card file {path.name}")
        except PartnerError as exc:
            vault.audit.append("partner.import.refused", details={"file": path.name, "reason": str(exc)})
            raise
    fp = card.fingerprint()
    from agreements._identity import has_identity, our_card

    if has_identity(vault) and our_card(vault).signing_key == card.signing_key:
        vault.audit.append("partner.import.refused", partner=fp, details={"reason": "our own card"})
        raise PartnerError("That is this organization's own card, not a partner's.")
    changed = [
        p
        for p in (
            _partner(r)
            for r in vault.db.execute(
                f"SELECT {_COLUMNS} FROM partners WHERE org = ? COLLATE NOCASE", (card.org,)
            )
        )
        if p.card.signing_key != card.signing_key
    ]
    if changed and verified:
        # Refused before anything is written; the refusal itself is on record.
        vault.audit.append(
            "partner.import.refused",
            partner=fp,
            details={"reason": "key changed", "previous": [p.fingerprint for p in changed]},
        )
        raise PartnerError(
            f"Refused to mark the card for {card.org} verified: we already hold a different key for "
            f"{card.org} ({changed[0].fingerprint}). Confirm the new fingerprint {fp} "
            "with them by phone, then import it without --verified and run `partner verify`."
        )
    row = vault.db.execute(f"SELECT {_COLUMNS} FROM partners WHERE fingerprint = ?", (fp,)).fetchone()
    if row is not None:
        existing = _partner(row)
        if verified and not existing.verified and not existing.revoked:
            return ImportResult(
                verify_partner(vault, fp),
                new=False,
                message=f"{card.org} was already imported; now verified.",
            )
        return ImportResult(
            existing, new=False, message=f"{card.org} ({fp}) is already known; status: {existing.status}."
        )
    now = utc_now()
    with vault.transaction() as conn:
        conn.execute(
            "INSERT INTO partners(fingerprint, org, kind, signing_key, age_recipient, card, imported, "
            "verified_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            (
                fp,
                card.org,
                card.kind,
                card.signing_key,
                card.age_recipient,
                card.to_json(),
                now,
                now if verified else None,
            ),
        )
        details: dict[str, object] = {"org": card.org, "kind": card.kind, "verified": verified}
        if changed:
            details["key_changed"] = True
            details["previous"] = [p.fingerprint for p in changed]
        vault.audit.append("partner.import", partner=fp, details=details, conn=conn)
    partner = Partner(card, verified, False, now, now if verified else None, None)
    if changed:
        message = (
            f"WARNING: {card.org} is already known under a different key "
            f"({', '.join(p.fingerprint for p in changed)}). This card ({fp}) may be an impersonation. "
            f"It was imported UNVERIFIED: call {card.org} on a number you already know, compare the "
            "fingerprint, and only then run `partner verify`; revoke the old key if they replaced it."
        )
        return ImportResult(partner, new=True, key_changed=True, previous=changed, message=message)
    msg = f"Imported {card.org} ({card.kind}), fingerprint {fp}" + (
        ", verified." if verified else "; confirm the fingerprint with them, then run `partner verify`."
    )
    return ImportResult(partner, new=True, message=msg)


def list_partners(vault: Vault) -> list[Partner]:
    """Every partner, by organization name."""
    rows = vault.db.execute(f"SELECT {_COLUMNS} FROM partners ORDER BY org COLLATE NOCASE, imported")
    return [_partner(r) for r in rows]


def find_partner(
    vault: Vault,
    *,
    fingerprint: str | None = None,
    signing_key: str | None = None,
    age_recipient: str | None = None,
) -> Partner | None:
    """The partner with this fingerprint, signing key or age recipient (None if unknown)."""
    if fingerprint is not None:
        row = vault.db.execute(
            f"SELECT {_COLUMNS} FROM partners WHERE fingerprint = ?", (normalize_fingerprint(fingerprint),)
        ).fetchone()
    elif signing_key is not None:
        # Several rows can share a key only if re-imported with another body; prefer a trusted one.
        row = vault.db.execute(
            f"SELECT {_COLUMNS} FROM partners WHERE signing_key = ? "
            "ORDER BY revoked_at IS NOT NULL, verified_at IS NULL, imported DESC",
            (signing_key,),
        ).fetchone()
    elif age_recipient is not None:
        row = vault.db.execute(
            f"SELECT {_COLUMNS} FROM partners WHERE age_recipient = ? "
            "ORDER BY revoked_at IS NOT NULL, verified_at IS NULL, imported DESC",
            (age_recipient,),
        ).fetchone()
    else:
        raise TypeError("find_partner needs fingerprint, signing_key or age_recipient")
    return None if row is None else _partner(row)


def trusted_partner(
    vault: Vault, *, fingerprint: str | None = None, signing_key: str | None = None
) -> Partner:
    """The partner, if verified and not revoked; PartnerError saying why not otherwise."""
    partner = find_partner(vault, fingerprint=fingerprint, signing_key=signing_key)
    label = fingerprint or "that key"
    if partner is None:
        raise PartnerError(f"No partner with fingerprint {label} is known; import their card first.")
    if partner.revoked:
        raise PartnerError(f"The partner {partner.org} ({partner.fingerprint}) was revoked.")
    if not partner.verified:
        raise PartnerError(
            f"The partner {partner.org} ({partner.fingerprint}) is not verified yet; confirm the fingerprint "
            "with them and run `partner verify`."
        )
    return partner


def _get(vault: Vault, fingerprint: str) -> Partner:
    fp = normalize_fingerprint(fingerprint)
    partner = find_partner(vault, fingerprint=fp)
    if partner is None:
        raise PartnerError(f"No partner with fingerprint {fp} is known; import their card first.")
    return partner


def verify_partner(vault: Vault, fingerprint: str) -> Partner:
    """Mark a partner verified after its fingerprint was confirmed out of band; audited."""
    partner = _get(vault, fingerprint)
    if partner.revoked:
        vault.audit.append(
            "partner.verify.refused", partner=partner.fingerprint, details={"reason": "revoked"}
        )
        raise PartnerError(
            f"The partner {partner.org} ({partner.fingerprint}) was revoked; import a new card."
        )
    if partner.verified:
        return partner
    now = utc_now()
    with vault.transaction() as conn:
        conn.execute("UPDATE partners SET verified_at = ? WHERE fingerprint = ?", (now, partner.fingerprint))
        vault.audit.append(
            "partner.verify", partner=partner.fingerprint, details={"org": partner.org}, conn=conn
        )
    partner.verified, partner.verified_at = True, now
    return partner


def revoke_partner(vault: Vault, fingerprint: str, reason: str = "") -> Partner:
    """Revoke a partner's card (it can no longer join agreements or send packages); audited."""
    partner = _get(vault, fingerprint)
    if partner.revoked:
        return partner
    now = utc_now()
    with vault.transaction() as conn:
        conn.execute("UPDATE partners SET revoked_at = ? WHERE fingerprint = ?", (now, partner.fingerprint))
        details: dict[str, object] = {"org": partner.org}
        if reason:
            details["reason"] = reason[:500]
        vault.audit.append("partner.revoke", partner=partner.fingerprint, details=details, conn=conn)
    partner.revoked, partner.revoked_at = True, now
    return partner
