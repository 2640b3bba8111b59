"""What this organization does with PathShare: sends data, receives data, oversees compliance — any
combination. The app opens on the screen that fits (a district clerk on Prepare, a college analyst on
Receive, a compliance officer on the Dashboard); every screen stays reachable whatever is chosen.

Stored in the vault (it is the organization's fact, not one computer's preference) and audited when
changed. Until the organization says, the kind on its card gives a starting guess.
"""

from __future__ import annotations

from collections.abc import Iterable

from agreements._vault import Vault
from deid.errors import InputError

SEND, RECEIVE, OVERSEE = "send", "receive", "oversee"
ROLES: tuple[str, ...] = (SEND, RECEIVE, OVERSEE)
# In the users' words, for the app and the CLI.
ROLE_LABELS: dict[str, str] = {
    SEND: "We send student data to partners",
    RECEIVE: "We receive data from partners and analyse it",
    OVERSEE: "We oversee agreements and compliance",
}
# A first guess from the card's kind: districts and employers provide records, colleges receive them
# (and send their own, but their analysts' daily job is receiving), intermediaries broker agreements.
_BY_KIND: dict[str, frozenset[str]] = {
    "district": frozenset({SEND}),
    "college": frozenset({RECEIVE}),
    "employer": frozenset({SEND}),
    "intermediary": frozenset({OVERSEE}),
}
_SETTING = "organization_roles"


def default_roles(kind: str) -> frozenset[str]:
    """The starting guess for an organization of ``kind`` (all three for a kind we do not know)."""
    return _BY_KIND.get(kind, frozenset(ROLES))


def organization_roles(vault: Vault) -> frozenset[str]:
    """What this organization said it does, or the guess from its card's kind."""
    stored = vault.get_setting(_SETTING)
    if stored:
        roles = frozenset(r for r in stored.split(",") if r in ROLES)
        if roles:
            return roles
    from agreements._identity import our_card

    return default_roles(our_card(vault).kind)


def set_organization_roles(vault: Vault, roles: Iterable[str]) -> frozenset[str]:
    """Record what this organization does (at least one role); audited ``organization.roles``."""
    chosen = frozenset(roles)
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise InputError(f"'{unknown[0]}' is not a role; choose from {', '.join(ROLES)}.")
    if not chosen:
        raise InputError("Choose at least one thing your organization does (send, receive or oversee).")
    value = ",".join(r for r in ROLES if r in chosen)
    with vault.transaction():
        vault.set_setting(_SETTING, value)
        vault.audit.append("organization.roles", details={"roles": value.split(",")})
    return chosen
