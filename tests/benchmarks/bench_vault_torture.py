"""The longer torture run (issue 14 item 3) for `make bench`: more writers, a minute of kills, the
production key derivation. Prints processes, appends, kills and entries lost (must be 0).
PATHSHARE_TORTURE_SECONDS shortens or lengthens it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/vault_torture.py

from vault_torture import run_torture


def test_vault_torture_long(tmp_path):
    seconds = float(os.environ.get("PATHSHARE_TORTURE_SECONDS", "60"))
    result = run_torture(tmp_path, seconds=seconds, writers=5, seed=11, kill_every=(0.1, 0.5), app=True)
    print(
        f"\nvault torture, {seconds:.0f} s: {result.processes} processes, "
        f"{result.confirmed} confirmed appends, "
        f"{result.kills} kills, {result.refusals} refusals, {result.unconfirmed_present} unconfirmed but "
        f"present, {result.entries} entries, entries lost: {result.lost}"
    )
    assert result.verified and result.lost == 0
    assert result.unconfirmed_present <= result.kills
