"""Staging folders of interrupted openings: a package is decrypted into a private folder beside its
destination, noted in the vault first, so that if the process is killed the next start finds the
decrypted data and removes it (and audits that it did).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from agreements._clock import utc_now
from agreements._recorded import RECEIVED
from deid import process_running

if TYPE_CHECKING:
    from agreements._vault import Vault

_STAGING = "open_staging:"  # settings key prefix: one row per opening in progress


def record_staging(vault: Vault, staging: Path, out_dir: Path, package: Path) -> None:
    """Note an opening's private staging folder before anything is decrypted into it, so that if the
    process is killed (decrypted data left beside the destination, outside destruction tracking) the
    next start finds and removes it (:func:`sweep_staging`)."""
    info = {
        "staging": str(Path(staging).resolve()),
        "out_dir": str(Path(out_dir).resolve()),
        "package": Path(package).name,
        "pid": os.getpid(),
        "started": utc_now(),
    }
    vault.set_setting(_STAGING + info["staging"], json.dumps(info))


def forget_staging(vault: Vault, staging: Path) -> None:
    """The opening that used ``staging`` ended (opened and recorded, or refused and cleaned up)."""
    with vault.transaction() as conn:
        conn.execute("DELETE FROM settings WHERE key = ?", (_STAGING + str(Path(staging).resolve()),))


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a row of ours from before is never still running (openings forget theirs)
    return process_running(pid)  # (the platform seam: never a signal on Windows)


def sweep_staging(vault: Vault) -> list[str]:
    """At start: remove the staging folders of openings that never finished, and audit each.

    ``package.staging_removed`` names a folder removed (decrypted data of a killed opening);
    ``package.staging_left`` one that could not be removed (it stays listed, and is tried again);
    ``package.open_unrecorded`` a destination that received files whose opening was never recorded
    (killed between the move and the record: its data is outside destruction tracking until the
    package is opened again or the folder is deleted). Returns the sentences, for the user.
    """
    rows = vault.db.execute(
        "SELECT key, value FROM settings WHERE key LIKE ? ORDER BY key", (_STAGING + "%",)
    ).fetchall()
    notes: list[str] = []
    for key, value in rows:
        try:
            info = json.loads(value)
            staging, out_dir = Path(info["staging"]), Path(info["out_dir"])
            pid = int(info.get("pid", 0))
        except (ValueError, TypeError, KeyError):
            staging, out_dir, pid, info = Path(key[len(_STAGING) :]), None, 0, {}
        if pid and _running(pid):
            continue  # an opening in progress in another process
        details = {"folder": str(staging), "package": info.get("package"), "started": info.get("started")}
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
            if staging.exists():
                vault.audit.append("package.staging_left", details=details)
                notes.append(f"An interrupted opening left decrypted data in {staging}; delete that folder.")
                continue
            action = "package.staging_removed"
            notes.append(f"Removed {staging}, left by an interrupted opening of {info.get('package')}.")
        elif out_dir is not None and _unrecorded(vault, out_dir):
            action = "package.open_unrecorded"
            details["folder"] = str(out_dir)
            notes.append(
                f"An opening of {info.get('package')} into {out_dir} was interrupted before it was recorded; "
                "delete that folder or open the package again into an empty one."
            )
        else:
            action = ""
        with vault.transaction() as conn:
            conn.execute("DELETE FROM settings WHERE key = ?", (key,))
            if action:
                vault.audit.append(action, details=details, conn=conn)
    return notes


def _unrecorded(vault: Vault, out_dir: Path) -> bool:
    with contextlib.suppress(OSError):
        if (out_dir / "manifest.json").exists():
            row = vault.db.execute(
                "SELECT 1 FROM packages WHERE direction = ? AND location IN (?, ?)",
                (RECEIVED, str(out_dir), str(out_dir.resolve())),
            ).fetchone()
            return row is None
    return False
