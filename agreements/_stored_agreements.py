"""Reading the agreements a vault holds: one version by id (or a unique prefix of it), by the hash a
package's manifest names, or every version. Only reads: the stores that write agreements, link
secrets and the security checks all build on this, so it imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agreements._agreement import Agreement, parse_agreement
from agreements._idprefix import match_id
from agreements.errors import AgreementError

if TYPE_CHECKING:
    from agreements._vault import Vault


def load_rows(vault: Vault, agreement_id: str) -> list[Agreement]:
    rows = vault.db.execute(
        "SELECT document FROM agreements WHERE id = ? ORDER BY version", (agreement_id,)
    ).fetchall()
    return [parse_agreement(r[0], source=f"agreement {agreement_id} in the vault") for r in rows]


def resolve_id(vault: Vault, text: str) -> str:
    """An agreement id from what a user typed: the full id or a unique prefix (agreements._idprefix)."""

    def candidates(t: str) -> list[str]:
        sql = "SELECT DISTINCT id FROM agreements WHERE id = ? OR substr(id, 1, ?) = ?"
        return [r[0] for r in vault.db.execute(sql, (t, len(t), t)).fetchall()]

    return match_id(text, candidates, noun="agreement", missing="There is no agreement {text} in this vault.",
                    error=AgreementError, list_action="list_agreements")  # fmt: skip


def pick(versions: list[Agreement], version: int | None, agreement_id: str) -> Agreement:
    if version is None:
        return versions[-1]
    for a in versions:
        if a.version == version:
            return a
    raise AgreementError(f"Agreement {agreement_id} has no version {version} in this vault.")


def get_agreement(vault: Vault, agreement_id: str, version: int | None = None) -> Agreement:
    """One version of an agreement (the latest by default); ``agreement_id`` may be a unique prefix."""
    aid = resolve_id(vault, agreement_id)
    return pick(load_rows(vault, aid), version, aid)


def agreement_by_hash(vault: Vault, sha256: str) -> Agreement | None:
    """The version whose canonical terms hash to ``sha256`` (as a package manifest names it), or None.

    Pair it with :func:`agreement_status` to decide whether data under it may be opened."""
    row = vault.db.execute("SELECT document FROM agreements WHERE sha256 = ?", (sha256.lower(),)).fetchone()
    return None if row is None else parse_agreement(row[0], source="an agreement in the vault")


def agreement_versions(vault: Vault, agreement_id: str) -> list[Agreement]:
    """Every version of an agreement the vault holds, oldest first."""
    return load_rows(vault, resolve_id(vault, agreement_id))
