"""Partners: the cards of other organizations, imported, then verified out of band, or revoked.

Trust is explicit: an imported card is *unverified* until someone has compared its fingerprint with the
partner by phone or in person (:func:`verify_partner`). Only verified, unrevoked partners can be parties
to a new agreement (:func:`trusted_partner`). A card whose organization we already know under another
key is imported unverified with a loud warning: it may be an impersonation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._cards import Card, normalize_fingerprint
from agreements._clock import utc_now
from agreements.errors import PartnerError

if TYPE_CHECKING:
    from agreements._vault import Vault


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
    hint: str = ""  # what to do next, apart from the message (the CLI prints it on its own line)


# Revocation is of keys, not of card bodies: a card is revoked when it, or any card sharing its signing
# key or its age key, was revoked (the same keys re-signed under a new ``created`` date are still revoked).
_COLUMNS = (
    "card, verified_at, COALESCE(revoked_at, (SELECT MIN(r.revoked_at) FROM partners r "
    "WHERE r.revoked_at IS NOT NULL AND (r.signing_key = partners.signing_key "
    "OR r.age_recipient = partners.age_recipient))), imported"
)


def _partner(row: tuple) -> Partner:
    card = Card.from_json(row[0], "A partner card stored in the vault", stored=True)
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
    if isinstance(card, Card):
        # Checked like a card file (a Card can be built by hand): its text, keys and self-signature.
        try:
            card = Card.from_dict(card.to_dict(), "The card")
        except PartnerError as exc:
            vault.audit.append("partner.import.refused", details={"reason": str(exc)})
            raise
    else:
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
    refusal = _key_conflict(vault, card)
    if refusal is not None:
        reason, message = refusal
        vault.audit.append("partner.import.refused", partner=fp, details={"reason": reason})
        raise PartnerError(message)
    if has_identity(vault) and same_name(our_card(vault).org, card.org):
        vault.audit.append("partner.import.refused", partner=fp, details={"reason": "our own name"})
        raise PartnerError(
            f"Refused the card for {card.org}: its name is, or looks like, this organization's own name."
        )
    # Names are compared as they look (TR39 skeletons), so a lookalike is a key change, not a stranger.
    changed = [
        p
        for p in (_partner(r) for r in vault.db.execute(f"SELECT {_COLUMNS} FROM partners"))
        if p.card.signing_key != card.signing_key and same_name(p.card.org, card.org)
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
            f"{changed[0].org} ({changed[0].fingerprint}).",
            f"Confirm the new fingerprint {fp} with them by phone, then import the card unverified and mark "
            "it verified.",
            action="verify_partner",
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
            f"({', '.join(p.fingerprint for p in changed)}"
            f"{'' if changed[0].org == card.org else f', as {changed[0].org}: the names look alike'}). "
            f"This card ({fp}) may be an impersonation. It was imported UNVERIFIED."
        )
        hint = (
            f"Call {card.org} on a number you already know, compare the fingerprint, and only then mark "
            "the partner verified; revoke the old key if they replaced it."
        )
        return ImportResult(partner, new=True, key_changed=True, previous=changed, message=message, hint=hint)
    msg = f"Imported {card.org} ({card.kind}), fingerprint {fp}" + (", verified." if verified else ".")
    hint = "" if verified else "Confirm the fingerprint with them by phone, then mark the partner verified."
    return ImportResult(partner, new=True, message=msg, hint=hint)


def _key_conflict(vault: Vault, card: Card) -> tuple[str, str] | None:
    """Why ``card`` may not be imported because of its keys, as (audit reason, sentence), or None.

    A revoked key never comes back (whatever card carries it), and a key is one organization's: a card
    carrying our age key, another partner's age key (under a different signing key) or another
    organization's signing key would have packages, receipts and certificates recorded against the
    wrong party.
    """
    from agreements._identity import has_identity, our_card

    if has_identity(vault) and our_card(vault).age_recipient == card.age_recipient:
        return "our age key", (
            f"Refused the card for {card.org}: it carries this organization's own age key, "
            "not one of its own."
        )
    rows = vault.db.execute(
        f"SELECT {_COLUMNS}, revoked_at FROM partners WHERE signing_key = ? OR age_recipient = ?",
        (card.signing_key, card.age_recipient),
    ).fetchall()
    # The same card again is not a conflict (import_card reports it as already known, with its status).
    others = [(p, r[4]) for r in rows if (p := _partner(r[:4])).fingerprint != card.fingerprint()]
    for other, own_revocation in others:
        if own_revocation is not None or other.revoked:
            which = "signing key" if other.card.signing_key == card.signing_key else "age key"
            when = (other.revoked_at or "")[:10]
            return f"revoked {which}", (
                f"Refused the card for {card.org}: its {which} is the one on the card of {other.org} "
                f"({other.fingerprint}) revoked on {when}, and a revoked key cannot come back on a new card."
            )
    for other, _ in others:
        if other.card.signing_key != card.signing_key:
            return "age key of another partner", (
                f"Refused the card for {card.org}: its age key belongs to {other.org} ({other.fingerprint}), "
                "so packages for one would be recorded against the other."
            )
        if not same_name(other.org, card.org):
            return "signing key of another partner", (
                f"Refused the card for {card.org}: its signing key belongs to {other.org} "
                f"({other.fingerprint}); an organization that changes its name makes new keys."
            )
    return None


def name_keys(name: str) -> tuple[str, str]:
    """What an organization name looks like, as two Unicode TR39 skeletons (disarm's ``skeleton_key``:
    NFKC, invisible and control characters dropped, confusables mapped to their prototype, digits
    that pass for letters included, case folded). One is taken as written — a capital I then passes for
    an l, as it does on screen — and one after case folding, so RIVERBEND is Riverbend."""
    from disarm import skeleton_key

    return skeleton_key(name, digit_policy="tr39"), skeleton_key(name.casefold(), digit_policy="tr39")


def same_name(a: str, b: str) -> bool:
    """Whether two organization names would pass for each other on screen: the one way names are
    compared (a Cyrillic "е" or a zero-width space does not make a new organization)."""
    ka, kb = name_keys(a), name_keys(b)
    return ka[0] == kb[0] or ka[1] == kb[1]


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
    vault: Vault,
    *,
    fingerprint: str | None = None,
    signing_key: str | None = None,
    purpose: str = "",
) -> Partner:
    """The partner, if verified and not revoked (neither its card nor either of its keys); PartnerError
    saying why not otherwise, in one sentence naming the organization.

    This is the one check of a partner's standing: sealing, opening, receipts, certificates and linkage
    keys all come here (through :func:`party_card` for an agreement's parties). ``purpose`` ("seal a
    package for", "accept a receipt from", …) says what is refused.
    """
    partner = find_partner(vault, fingerprint=fingerprint, signing_key=signing_key)
    label = fingerprint or "that key"
    refused = f"Refused to {purpose} " if purpose else ""
    if partner is None:
        if refused:
            raise PartnerError(f"{refused}{label}: this vault holds no card with that fingerprint.")
        raise PartnerError(f"No partner with fingerprint {label} is known; import their card first.")
    if partner.revoked:
        when = f" on {partner.revoked_at[:10]}" if partner.revoked_at else ""
        if refused:
            raise PartnerError(f"{refused}{partner.org}: its card ({partner.fingerprint}) was revoked{when}.")
        raise PartnerError(f"The partner {partner.org} ({partner.fingerprint}) was revoked{when}.")
    if not partner.verified:
        who = f"{refused}{partner.org}: its card" if refused else f"The partner {partner.org}"
        raise PartnerError(
            f"{who} ({partner.fingerprint}) is not verified yet.",
            "Confirm the fingerprint with them by phone, then mark the partner verified.",
        )
    return partner


def party_card(vault: Vault, party: Any, purpose: str) -> Card:
    """The card behind a party of an agreement: the one place an agreement's parties become keys.

    ``party`` is an agreement party (``fingerprint``, ``org``, ``signing_key``, ``age_recipient``). It is
    our own card, or a partner's that :func:`trusted_partner` accepts and whose keys are the party's;
    PartnerError (one sentence naming the organization) otherwise.
    """
    from agreements._identity import our_card

    me = our_card(vault)
    if party.fingerprint == me.fingerprint():
        card = me
    else:
        try:
            card = trusted_partner(vault, fingerprint=party.fingerprint, purpose=purpose).card
        except PartnerError as exc:
            if find_partner(vault, fingerprint=party.fingerprint) is None:
                raise PartnerError(
                    f"Refused to {purpose} {party.org}: this vault holds no card with its fingerprint "
                    f"{party.fingerprint}."
                ) from exc
            raise
    if (card.signing_key, card.age_recipient) != (party.signing_key, party.age_recipient):
        raise PartnerError(
            f"Refused to {purpose} {card.org}: the agreement gives keys that differ from its card "
            f"({card.fingerprint()})."
        )
    return card


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
    """Revoke a partner's card and its keys; audited.

    Nothing is sealed for it, opened from it or accepted from it (receipts, certificates, linkage keys)
    afterwards, and no card carrying its signing key or age key can be imported again."""
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
