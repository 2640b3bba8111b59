"""Sub-command ``demo``: the whole exchange between a district and a college, offline.

pathshare demo --workdir DIR [--rows N]
"""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo`` to the ``pathshare`` parser."""
    p = sub.add_parser(
        "demo",
        help="run the whole exchange between a district and a college, offline, in a folder",
        description=(
            "Create two vaults, exchange cards, execute an agreement, prepare a synthetic extract, "
            "seal it, open it on the other side and verify both audit logs. The vaults' passphrase "
            "is PATHSHARE_PASSPHRASE when set, else a new one printed at the end."
        ),
    )
    p.add_argument("--workdir", metavar="DIR", required=True, help="a new or empty folder")
    p.add_argument("--rows", metavar="N", type=int, default=2000, help="synthetic rows (default 2000)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``pathshare demo``."""
    from agreements import run_demo
    from deid.errors import InputError

    if args.rows < 50:
        raise InputError("The demo needs at least 50 rows to reach the agreement's k.")
    result = run_demo(args.workdir, rows=args.rows, passphrase=os.environ.get("PATHSHARE_PASSPHRASE"))
    return 0 if result.ok else 1
