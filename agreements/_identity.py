"""The organization identity: an Ed25519 signing key and an age X25519 identity, kept only in the vault.

Its public half is the organization's :class:`~agreements._cards.Card`, which partners import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements._cards import ORG_KINDS, Card, make_card
from agreements._clock import utc_now
from agreements.errors import IdentityError
from deid import restrict_permissions

if TYPE_CHECKING:
    from agreements._vault import Vault

__all__ = [
    "ORG_KINDS",
    "age_identity",
    "check_identity_inputs",
    "create_identity",
    "export_age_identity",
    "our_card",
    "signing_key",
]

_NO_IDENTITY = "This vault has no organization identity yet."
_NO_IDENTITY_HINT = "Create it first."


def create_identity(vault: Vault, org: str, kind: str, contact: str = "") -> Card:
    """Create this installation's organization identity (once) and return its public card; audited."""
    org, kind, contact = check_identity_inputs(org, kind, contact)
    key = Ed25519PrivateKey.generate()
    age = pyrage.x25519.Identity.generate()
    card = make_card(
        key, org=org, kind=kind, contact=contact, age_recipient=str(age.to_public()), created=utc_now()
    )
    from cryptography.hazmat.primitives import serialization

    secret = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    if has_identity(vault):
        vault.audit.append("identity.create.refused", details={"reason": "exists"})
        raise IdentityError(f"The vault at {vault.path} already has an organization identity.")
    with vault.transaction() as conn:
        conn.execute(
            "INSERT INTO identity(id, org, kind, contact, created, signing_secret, age_secret, card) "
            "VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            (org, kind, contact, card.created, secret, str(age), card.to_json()),
        )
        vault.audit.forget_actor()
        vault.audit.append(
            "identity.create",
            partner=None,
            details={"fingerprint": card.fingerprint(), "kind": kind},
            conn=conn,
        )
    return card


def check_identity_inputs(org: str, kind: str, contact: str = "") -> tuple[str, str, str]:
    """Validate (and trim) what ``create_identity`` takes; IdentityError says what is wrong."""
    org = (org or "").strip()
    contact = (contact or "").strip()
    if not org:
        raise IdentityError("The organization name cannot be empty.")
    from deid import unsafe_characters

    # The same text rule partners' cards must pass (Card.from_dict): ours is printed on theirs too.
    if len(org) > 200 or unsafe_characters(org):
        raise IdentityError(
            "The organization name must be one line of at most 200 characters, without control, "
            "text-direction or invisible characters."
        )
    if kind not in ORG_KINDS:
        raise IdentityError(f"The kind {kind!r} is not one of {', '.join(ORG_KINDS)}.")
    if len(contact) > 300 or unsafe_characters(contact):
        raise IdentityError(
            "The contact must be one line of at most 300 characters, without control, text-direction "
            "or invisible characters."
        )
    return org, kind, contact


def has_identity(vault: Vault) -> bool:
    return vault.db.execute("SELECT 1 FROM identity WHERE id = 1").fetchone() is not None


def our_card(vault: Vault) -> Card:
    """This organization's public card (IdentityError if there is no identity yet)."""
    row = vault.db.execute("SELECT card FROM identity WHERE id = 1").fetchone()
    if row is None:
        raise IdentityError(_NO_IDENTITY, _NO_IDENTITY_HINT, action="create_identity")
    return Card.from_json(row[0], "Our own card in the vault", stored=True)


def signing_key(vault: Vault) -> Ed25519PrivateKey:
    """The organization's Ed25519 private key (from the vault)."""
    row = vault.db.execute("SELECT signing_secret FROM identity WHERE id = 1").fetchone()
    if row is None:
        raise IdentityError(_NO_IDENTITY, _NO_IDENTITY_HINT, action="create_identity")
    return Ed25519PrivateKey.from_private_bytes(bytes(row[0]))


def age_identity(vault: Vault) -> pyrage.x25519.Identity:
    """The organization's age X25519 identity (from the vault), for decrypting packages."""
    row = vault.db.execute("SELECT age_secret FROM identity WHERE id = 1").fetchone()
    if row is None:
        raise IdentityError(_NO_IDENTITY, _NO_IDENTITY_HINT, action="create_identity")
    return pyrage.x25519.Identity.from_str(row[0])


def export_card(vault: Vault, out: Path | str, *, force: bool = False) -> Card:
    """Write our public card (JSON) for partners to ``out``, atomically; audited (``card.export``).
    An existing file is replaced only with ``force``, never one the vault recorded."""
    from agreements._recorded import output_rule
    from deid import write_bytes_atomic

    card = our_card(vault)
    data = card.to_json().encode("utf-8")
    write_bytes_atomic(out, data, perm=0o644, force=force, recorded=output_rule(vault))
    vault.audit.append("card.export", details={"file": Path(out).name})
    return card


def export_age_identity(vault: Vault, out: Path | str) -> None:
    """Write the age identity in age-keygen's format to ``out`` (mode 0600, atomically); audited.

    With it, a recipient can decrypt packages with the standard ``age -d -i FILE`` — no lock-in.
    """
    from agreements._recorded import output_rule
    from deid import check_output_path, write_bytes_atomic
    from deid.errors import OutputError, OutputExists

    out = Path(out)
    try:
        # force=False always: a key file may be the only copy of another identity, so it is never
        # replaced. A missing folder too is refused before "exported" is on record.
        check_output_path(out, force=False, recorded=output_rule(vault))
    except OutputError as exc:
        vault.audit.append("identity.export_age.refused", details={"file": out.name, "reason": str(exc)})
        if isinstance(exc, OutputExists):
            exc.hint = "A key file is never replaced: choose another file name, or remove it first."
            exc.action = None  # no step replaces it (the CLI would add --force)
        raise
    identity = age_identity(vault)
    card = our_card(vault)
    text = (
        f"# created: {card.created}\n"
        f"# organization: {card.org} (PathShare card {card.fingerprint()})\n"
        f"# public key: {card.age_recipient}\n"
        f"{identity}\n"
    )
    # Logged first and in its own transaction: a secret key leaving the vault must always be on record.
    vault.audit.append("identity.export_age", details={"file": out.name})
    write_bytes_atomic(out, text.encode("utf-8"), perm=0o600, force=False, recorded=output_rule(vault))
    restrict_permissions(out, 0o600)
