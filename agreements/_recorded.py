"""The files a vault answers for — sealed packages, the folders packages were opened into, receipts and
certificates it wrote — and deid's output rule built from them: such a file is never replaced.

The bottom of the vault's stores: everything that writes a file asks :func:`output_rule`, so this
module imports none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._clock import utc_now

if TYPE_CHECKING:
    from agreements._vault import Vault

# A package record's direction: sealed here (the provider's row) or opened here (a recipient's).
SENT = "sent"
RECEIVED = "received"


def record_file(conn: Any, path: Path, kind: str, package_id: str | None) -> None:
    """Note in the vault (inside the caller's transaction) a file it answers for: never replaced."""
    conn.execute(
        "INSERT INTO recorded_files(path, kind, package_id, recorded) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, package_id = excluded.package_id, "
        "recorded = excluded.recorded",
        (str(Path(path).resolve()), kind, package_id, utc_now()),
    )


def _same(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def recorded_as(vault: Vault, path: str | Path) -> str | None:
    """What this vault recorded at ``path`` ("the sealed package 3f2a…"), or None.

    A sealed package, a receipt or certificate we wrote, and any file inside a folder a package was
    opened into (until it is destroyed) are recorded: deid's output rule never replaces one of them.
    """
    target = Path(path).resolve()
    rows = vault.db.execute(
        "SELECT package_id, direction, location FROM packages "
        "WHERE (direction = ? AND voided_at IS NULL) OR (direction = ? AND destroyed_at IS NULL)",
        (SENT, RECEIVED),
    ).fetchall()
    for package_id, direction, location in rows:
        where = Path(location)
        if direction == SENT and _same(where, target):
            return f"the sealed package {package_id}"
        if direction == RECEIVED and where.resolve() in target.parents:
            return f"a file of package {package_id}, opened into {where}"
    for kind, package_id, stored in vault.db.execute("SELECT kind, package_id, path FROM recorded_files"):
        if _same(Path(stored), target):
            return f"the {kind} for package {package_id}" if package_id else f"the {kind}"
    return None


def output_rule(vault: Vault) -> Any:
    """The ``recorded`` argument of deid's output helpers for this vault (see :func:`recorded_as`)."""
    return lambda path: recorded_as(vault, path)
