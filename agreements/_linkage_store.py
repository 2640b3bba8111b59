"""The consortium linkage secret: made when an agreement is executed, delivered to each provider only.

An agreement whose policy says ``"linkage_scope": "consortium"`` links records across its providers:
all providers must key their link tokens with the *same* secret, and no one else may hold it (a holder
could compute the token of any guessed name, birth date or ID; see docs/linkage-threat-model.md).

- **Who makes it.** The *key holder*: the first provider among the agreement's parties (a fixed
  rule, so two providers never both make one). After the agreement is executed (signed by every
  party), :func:`ensure_linkage_secret` makes 32 random bytes in the key holder's vault; in any other
  provider's vault it reports that the key is awaited; for a party that is not a provider it does
  nothing, ever.
- **How it travels.** :func:`export_linkage_key` writes a *linkage key file* for one provider party:
  JSON naming the agreement (id, version, hash), sender and addressee fingerprints, and the secret
  encrypted with age (X25519) to the addressee's age recipient from the signed agreement, the whole
  document signed with the sender's Ed25519 key. It refuses a party that is not a provider of the
  agreement. :func:`import_linkage_key` checks everything (known executed agreement, hash, sender a
  provider, signature, addressed to us, we a provider) before decrypting with our age identity and
  keeping the secret in the vault. The file may go by any channel: only the addressee can open it.
- **Rotation** is a new agreement version: secrets are kept per (agreement id, version), and a new
  version, once executed, gets a new one.

Every step is audited (``linkage.secret_created``, ``linkage.key_exported``, ``linkage.key_imported``,
``linkage.key_rejected``), never with the secret.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrage

from agreements._agreement import Agreement
from agreements._clock import utc_now
from agreements._signing import b64, canonical_json, sign_document, unb64, verify_document
from agreements.errors import AgreementError, PackageRejected
from deid import read_json_file, write_bytes_atomic
from deid.errors import InputError, PathShareError

if TYPE_CHECKING:
    from agreements._vault import Vault

KEY_FILE_FORMAT = 1
SECRET_BYTES = 32
_DOC_KEYS = {
    "pathshare_linkage_key", "agreement_id", "agreement_version", "agreement_sha256", "from", "to",
    "created", "ciphertext",
}  # fmt: skip


@dataclass(frozen=True)
class LinkageStatus:
    """Where this vault stands on an agreement's consortium secret.

    ``state``: ``not_consortium`` | ``not_executed`` | ``not_a_provider`` | ``created`` (just made
    here) | ``held`` | ``awaiting`` (another provider, ``key_holder``, makes it and sends it)."""

    state: str
    key_holder: str | None = None
    # Parties that are both provider and recipient: they hold the secret AND receive other providers'
    # tokens, so they could re-identify those students by brute force (docs/linkage-threat-model.md).
    dual_role: tuple[str, ...] = ()

    @property
    def holds_secret(self) -> bool:
        """True when this vault now holds the secret."""
        return self.state in ("created", "held")




def _our_fingerprint(vault: Vault) -> str:
    from agreements._identity import our_card

    return our_card(vault).fingerprint()


def _is_consortium(agreement: Agreement) -> bool:
    return getattr(agreement.terms.policy, "linkage_scope", "provider") == "consortium"


def key_holder(agreement: Agreement) -> str:
    """Fingerprint of the provider that makes the consortium secret: the first provider party."""
    return next(p.fingerprint for p in agreement.terms.parties if "provider" in p.roles)


def dual_role_parties(agreement: Agreement) -> tuple[str, ...]:
    """Fingerprints of the parties that are both provider and recipient of ``agreement``."""
    return tuple(p.fingerprint for p in agreement.all_parties() if {"provider", "recipient"} <= set(p.roles))


def _is_provider(agreement: Agreement, fingerprint: str) -> bool:
    party = agreement.party(fingerprint)
    return party is not None and "provider" in party.roles


def linkage_secret(vault: Vault, agreement: Agreement) -> bytes | None:
    """The consortium secret of this agreement version when its scope is "consortium" and this vault
    holds it; else None (the caller then uses the provider's own secret, or refuses)."""
    if not _is_consortium(agreement):
        return None
    row = vault.db.execute(
        "SELECT secret FROM linkage_secrets WHERE agreement_id = ? AND version = ?",
        (agreement.id, agreement.version),
    ).fetchone()
    return bytes(row[0]) if row else None


def ensure_linkage_secret(vault: Vault, agreement: Agreement) -> LinkageStatus:
    """Call after an agreement is signed or imported: makes the consortium secret when this vault is
    the key holder of an executed consortium agreement (audited ``linkage.secret_created``), and says
    what it is waiting for otherwise. Safe to call any number of times."""
    if not _is_consortium(agreement):
        return LinkageStatus("not_consortium")
    holder = key_holder(agreement)
    dual = dual_role_parties(agreement)
    if not agreement.is_executed:
        return LinkageStatus("not_executed", holder, dual)
    me = _our_fingerprint(vault)
    if not _is_provider(agreement, me):
        return LinkageStatus("not_a_provider", holder, dual)
    if linkage_secret(vault, agreement) is not None:
        return LinkageStatus("held", holder, dual)
    if me != holder:
        return LinkageStatus("awaiting", holder, dual)
    with vault.transaction() as conn:
        _store(conn, agreement, secrets.token_bytes(SECRET_BYTES), "generated", me)
        vault.audit.append(
            "linkage.secret_created",
            agreement=agreement.id,
            details={"version": agreement.version, "scope": "consortium"},
            conn=conn,
        )
    return LinkageStatus("created", holder, dual)


def _store(conn: Any, agreement: Agreement, secret: bytes, origin: str, source: str) -> None:
    conn.execute(
        "INSERT INTO linkage_secrets(agreement_id, version, agreement_sha256, secret, origin, source, "
        "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (agreement.id, agreement.version, agreement.sha256, secret, origin, source, utc_now()),
    )


def _agreement(vault: Vault, agreement_id: str, version: int | None) -> Agreement:
    from agreements._stored_agreements import get_agreement

    return get_agreement(vault, agreement_id, version)


@contextlib.contextmanager
def _rejections(vault: Vault, source: str) -> Iterator[None]:
    """Audit a refused key file (after nothing was stored) and let the error reach the user."""
    try:
        yield
    except PathShareError as exc:
        with contextlib.suppress(PathShareError):
            vault.audit.append("linkage.key_rejected", details={"file": source, "reason": str(exc)})
        raise


def export_linkage_key(
    vault: Vault,
    agreement_id: str,
    fingerprint: str,
    out: str | os.PathLike[str],
    *,
    version: int | None = None,
    force: bool = False,
) -> Path:
    """Write the linkage key file for provider ``fingerprint`` (see the module docstring); audited.
    An existing file is replaced only with ``force``, never one the vault recorded.

    Refuses (AgreementError) when the agreement is not a consortium agreement, not executed, this vault
    does not hold the secret, or ``fingerprint`` is not a provider of the agreement."""
    from agreements._recorded import output_rule
    from deid import check_output_path

    check_output_path(out, force=force, recorded=output_rule(vault))
    agreement = _agreement(vault, agreement_id, version)
    if not _is_consortium(agreement):
        raise AgreementError(
            f"Agreement {agreement.id} has linkage scope 'provider': its secret is never shared."
        )
    if not agreement.is_executed:
        raise AgreementError(f"Agreement {agreement.id} is not executed yet: no linkage key exists.")
    party = agreement.party(fingerprint)
    if party is None:
        raise AgreementError(f"{fingerprint} is not a party to agreement {agreement.id}.")
    if "provider" not in party.roles:
        raise AgreementError(
            f"{party.org} ({fingerprint}) is not a provider of agreement {agreement.id}: only providers "
            f"receive the linkage secret."
        )
    secret = linkage_secret(vault, agreement)
    if secret is None:
        raise AgreementError(
            f"This vault does not hold the linkage secret of agreement {agreement.id} "
            f"(the key holder is {key_holder(agreement)})."
        )
    from agreements._identity import signing_key

    me = _our_fingerprint(vault)
    from agreements._partners import party_card
    from agreements.errors import PartnerError

    try:
        card = party_card(vault, party, "send the linkage key to")
    except PartnerError as exc:
        raise AgreementError(str(exc)) from exc
    recipient = pyrage.x25519.Recipient.from_str(card.age_recipient)
    doc = {
        "pathshare_linkage_key": KEY_FILE_FORMAT,
        "agreement_id": agreement.id,
        "agreement_version": agreement.version,
        "agreement_sha256": agreement.sha256,
        "from": me,
        "to": fingerprint,
        "created": utc_now(),
        "ciphertext": b64(pyrage.encrypt(secret, [recipient])),
    }
    signed = {"document": doc, "signature": sign_document(signing_key(vault), doc)}
    path = Path(out)
    with vault.transaction() as conn:
        vault.audit.append(
            "linkage.key_exported",
            agreement=agreement.id,
            partner=fingerprint,
            details={"version": agreement.version},
            conn=conn,
        )
        write_bytes_atomic(
            path,
            json.dumps(signed, indent=2).encode("utf-8") + b"\n",
            perm=0o600,
            force=force,
            recorded=output_rule(vault),
        )
    return path


def import_linkage_key(vault: Vault, path: str | os.PathLike[str]) -> Agreement:
    """Check and import a linkage key file addressed to this vault; returns the agreement version it
    keys. Idempotent for the same secret. Refusals (PackageRejected, one sentence) are audited."""
    p = Path(path)
    with _rejections(vault, p.name):
        doc, signature = _read_key_file(p)
        try:
            agreement = _agreement(vault, doc["agreement_id"], doc["agreement_version"])
        except AgreementError as exc:
            raise PackageRejected(
                f"{p} is for agreement {doc['agreement_id']} version {doc['agreement_version']}, "
                f"which this vault does not hold; import the agreement first."
            ) from exc
        if agreement.sha256 != doc["agreement_sha256"]:
            raise PackageRejected(
                f"{p} names a different text of agreement {agreement.id} than this vault's."
            )
        if not agreement.is_executed:
            raise PackageRejected(f"{p}: agreement {agreement.id} is not executed in this vault yet.")
        if not _is_consortium(agreement):
            raise PackageRejected(f"{p}: agreement {agreement.id} does not share a linkage secret.")
        sender = agreement.party(doc["from"])
        if sender is None or "provider" not in sender.roles:
            raise PackageRejected(f"{p} comes from {doc['from']}, which is not a provider of the agreement.")
        from agreements._partners import party_card
        from agreements.errors import PartnerError

        try:
            card = party_card(vault, sender, "accept a linkage key from")
        except PartnerError as exc:
            raise PackageRejected(str(exc)) from exc
        if not verify_document(card.signing_key, doc, signature):
            raise PackageRejected(f"{p} is not signed by {sender.org}, or it was altered.")
        me = _our_fingerprint(vault)
        if doc["to"] != me:
            raise PackageRejected(f"{p} is addressed to {doc['to']}, not to this organization ({me}).")
        if not _is_provider(agreement, me):
            raise PackageRejected(f"{p}: this organization is not a provider of agreement {agreement.id}.")
        from agreements._identity import age_identity

        try:
            secret = pyrage.decrypt(unb64(doc["ciphertext"]), [age_identity(vault)])
        except (pyrage.DecryptError, ValueError) as exc:
            raise PackageRejected(f"{p} cannot be decrypted with this organization's key.") from exc
        if len(secret) != SECRET_BYTES:
            raise PackageRejected(f"{p} does not hold a linkage secret.")
        held = linkage_secret(vault, agreement)
        if held is not None:
            if held != secret:
                raise PackageRejected(
                    f"{p} holds a different linkage secret for agreement {agreement.id} than the one "
                    f"this vault already has."
                )
            return agreement
        with vault.transaction() as conn:
            _store(conn, agreement, secret, "imported", doc["from"])
            vault.audit.append(
                "linkage.key_imported",
                agreement=agreement.id,
                partner=doc["from"],
                details={"version": agreement.version},
                conn=conn,
            )
    return agreement


# A key file is a few hundred bytes; anything far larger is not one (and is not read into memory).
_MAX_KEY_FILE_BYTES = 1 << 20


def _read_key_file(p: Path) -> tuple[dict[str, Any], str]:
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a linkage key file.")
    if not p.exists():
        raise InputError(f"{p} does not exist.")
    data = read_json_file(
        p, str(p), what="a PathShare linkage key file", error=PackageRejected, max_bytes=_MAX_KEY_FILE_BYTES
    )
    doc = data.get("document") if isinstance(data, dict) else None
    signature = data.get("signature") if isinstance(data, dict) else None
    if not isinstance(doc, dict) or not isinstance(signature, str) or set(doc) != _DOC_KEYS:
        raise PackageRejected(f"{p} is not a PathShare linkage key file.")
    if doc["pathshare_linkage_key"] != KEY_FILE_FORMAT:
        raise PackageRejected(f"{p} has linkage key format {doc['pathshare_linkage_key']!r}; this reads 1.")
    if not isinstance(doc["agreement_version"], int) or not all(
        isinstance(doc[k], str) for k in _DOC_KEYS - {"pathshare_linkage_key", "agreement_version"}
    ):
        raise PackageRejected(f"{p} is not a PathShare linkage key file.")
    try:
        canonical_json(doc)  # plain JSON only
    except ValueError as exc:  # e.g. a version number beyond JSON's safe integers
        raise PackageRejected(f"{p} is not a PathShare linkage key file (a value is out of range).") from exc
    return doc, signature


def linkage_summary(vault: Vault) -> list[dict[str, Any]]:
    """The linkage secrets this vault holds (agreement, version, origin, source, created; never the
    secret), for listings and tests."""
    rows = vault.db.execute(
        "SELECT agreement_id, version, origin, source, created FROM linkage_secrets "
        "ORDER BY agreement_id, version"
    ).fetchall()
    keys = ("agreement_id", "version", "origin", "source", "created")
    return [dict(zip(keys, r, strict=True)) for r in rows]
