"""Shared set-up for tests that need organizations with real vaults and an executed agreement.

Imported by test modules as ``from partners_setup import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agreements import (
    Manifest,
    Vault,
    create_agreement,
    create_identity,
    export_agreement,
    import_agreement,
    import_card,
    our_card,
    sign_agreement,
    trusted_partner,
)
from agreements._signing import load_public_key


@contextmanager
def cheap_kdf() -> Iterator[None]:
    """Fewer SQLCipher KDF iterations while it lasts, for tests that are not about the KDF (a shared
    helper, so that a test of another package need not reach into ``agreements._vault`` itself)."""
    import agreements._vault as vault_module

    saved = vault_module._TEST_KDF_ITER
    vault_module._TEST_KDF_ITER = 1000
    try:
        yield
    finally:
        vault_module._TEST_KDF_ITER = saved

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"
PASS = "correct horse battery staple"
TODAY = date.today()
EXPIRES = TODAY + timedelta(days=365)  # execute_agreement's defaults, for tests about expiry
DEADLINE = TODAY + timedelta(days=455)


class Org:
    """One organization's vault and card: created new, or reopened from ``path``."""

    def __init__(self, path: Path, org: str = "", kind: str = "", *, new: bool = True) -> None:
        if new:
            self.vault = Vault.create(path, PASS)
            self.card = create_identity(self.vault, org, kind, "data@example.org")
        else:
            self.vault = Vault.open(path, PASS)
            self.card = our_card(self.vault)
        self.fp = self.card.fingerprint()

    def actions(self) -> list[str]:
        return [e.action for e in self.vault.audit.entries()]

    def last(self) -> str:
        return self.vault.audit.entries()[-1].action

    def verify_sender(self, manifest: Manifest) -> Ed25519PublicKey:
        partner = trusted_partner(self.vault, fingerprint=manifest.sender_fingerprint)
        return load_public_key(partner.card.signing_key)


def execute_agreement(
    orgs: list[Org],
    roles: list[list[str]],
    tmp: Path,
    *,
    scope: str = "provider",
    effective: date = TODAY - timedelta(days=30),
    expires: date = EXPIRES,
    deadline: date = DEADLINE,
) -> str:
    """Exchange cards (verified), draft the documented example between ``orgs`` with ``roles``, and have
    every party sign by passing the file along; afterwards every vault holds it executed. Returns its id."""
    for a in orgs:
        for b in orgs:
            if a is not b:
                import_card(a.vault, b.card, verified=True)
    terms = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    terms.pop("id")
    reps = [p["authorized_representative"] for p in terms["parties"]]
    terms["parties"] = [
        {"fingerprint": o.fp, "roles": r, "authorized_representative": reps[min(i, len(reps) - 1)]}
        for i, (o, r) in enumerate(zip(orgs, roles, strict=True))
    ]
    terms["effective"] = effective.isoformat()
    terms["expires"] = expires.isoformat()
    terms["destruction"]["deadline"] = deadline.isoformat()
    terms["policy"]["linkage_scope"] = scope
    draft = create_agreement(orgs[0].vault, terms)
    sign_agreement(orgs[0].vault, draft.id)
    holder = orgs[0]
    for i, org in enumerate(orgs[1:]):
        export_agreement(holder.vault, draft.id, tmp / f"step{i}.json")
        import_agreement(org.vault, tmp / f"step{i}.json")
        sign_agreement(org.vault, draft.id)
        holder = org
    export_agreement(holder.vault, draft.id, tmp / "executed.json")
    for org in orgs[:-1]:
        import_agreement(org.vault, tmp / "executed.json")
    return draft.id
