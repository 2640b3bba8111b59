"""Sub-command ``deid``: de-identify an extract under a policy file (no vault needed).

    pathshare deid INPUT --policy POLICY.json --out OUTPUT [--secret-file F] [--report REPORT.json]

Prints the plain-language summary on stdout. A progress line goes to stderr when stderr is a terminal.
A missing secret file is created (32 random bytes, mode 0600) and one line on stderr says so.
Residual findings do not fail this command (exit 0, with a loud warning in the summary); ``prepare``
refuses to seal such an output. The ``--agreement`` form arrives with the vault.
"""

from __future__ import annotations

import argparse
import sys
import time

from desktop.commands._vaultargs import add_force


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser(
        "deid",
        help="de-identify an extract (CSV, XLSX, Parquet) under a policy",
        description=(
            "De-identify an extract under a policy; write CSV or Parquet, its rows in a new random order "
            "(residual findings in the report count the extract's data rows)."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="the extract: .csv, .xlsx or .parquet")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--policy", metavar="POLICY.json", help="a standalone policy file")
    source.add_argument(
        "--agreement",
        metavar="ID",
        help="an executed agreement: its mapping profile, policy and release secret (from the vault)",
    )
    p.add_argument("--profile", metavar="NAME", help="with --agreement: the saved mapping profile to use")
    p.add_argument("--out", metavar="OUTPUT", required=True, help="the output: .csv or .parquet")
    p.add_argument(
        "--secret-file",
        metavar="F",
        help="secret for tokens, date shifts and record codes (created if missing); the "
        "encrypted crosswalk of record codes and this machine's link-token padding key (never "
        "shared) are kept beside it",
    )
    p.add_argument("--report", metavar="REPORT.json", help="also write the JSON report here")
    p.add_argument("--sheet", metavar="NAME", help="the worksheet to read from an .xlsx workbook")
    p.add_argument(
        "--memory-mb",
        metavar="MB",
        type=int,
        help="with --policy: read the file in batches instead of whole, batches sized to this much "
        "memory (the rows' random order spills to temporary files beside the output); for extracts "
        "larger than memory",
    )
    p.add_argument(
        "--batch-rows",
        metavar="N",
        type=int,
        help="with --memory-mb: rows per batch (default: what the memory setting holds, at most 262144)",
    )
    add_force(p)
    p.set_defaults(func=run_deid)


class ProgressLine:
    """One self-overwriting progress line on a terminal, updated at most ten times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.shown = False

    def __call__(self, fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and fraction < 1.0:
            return
        self.last = now
        width = 24
        filled = int(width * max(0.0, min(1.0, fraction)))
        _control("\r")  # the carriage return is ours; the message goes through the display filter
        sys.stderr.write(f"[{'#' * filled}{'.' * (width - filled)}] {fraction:4.0%} {message[:50]:<50}")
        sys.stderr.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            _control("\r" + " " * 84 + "\r")
            sys.stderr.flush()


def _control(text: str) -> None:
    """Write the progress line's own control characters (``DisplayStream.write_control`` in the CLI)."""
    getattr(sys.stderr, "write_control", sys.stderr.write)(text)


def run_deid(args: argparse.Namespace) -> int:
    """Handler of ``pathshare deid``."""
    from pathlib import Path

    from deid import deidentify_file, load_policy

    if args.agreement:
        return _run_for_agreement(args)
    if args.profile:
        from deid.errors import PolicyError

        raise PolicyError("--profile goes with --agreement; a policy file names the input's columns itself.")

    policy = load_policy(args.policy)
    secret_file = args.secret_file
    if policy.needs_secret and not secret_file:
        from deid.errors import PolicyError

        raise PolicyError(
            f"The policy file {args.policy} uses record_code, token or date_shift, which need "
            f"a secret file: add --secret-file FILE."
        )
    created = bool(secret_file) and policy.needs_secret and not Path(secret_file).exists()
    bar = ProgressLine() if sys.stderr.isatty() else None
    try:
        report = deidentify_file(
            args.input,
            policy,
            args.out,
            secret_file=secret_file,
            report_path=args.report,
            sheet=args.sheet,
            progress=bar,
            force=args.force,
            memory_mb=args.memory_mb,
            batch_rows=args.batch_rows,
        )
    finally:
        if bar is not None:
            bar.close()
    if created:
        sys.stderr.write(
            f"pathshare: created a new secret file {secret_file} (keep it private; the same "
            f"file gives the same codes next time).\n"
        )
    print(report.summary())
    return 0


def _run_for_agreement(args: argparse.Namespace) -> int:
    """``deid INPUT --agreement ID``: the agreement's mapping, policy and release secret from the vault."""
    from agreements import deidentify_for_agreement
    from deid import check_distinct_files, check_output_path
    from deid.errors import PolicyError
    from desktop.commands._vaultargs import open_vault

    if args.memory_mb is not None or args.batch_rows is not None:
        raise PolicyError(
            "--memory-mb and --batch-rows work with --policy; with --agreement the extract is mapped "
            "and read whole."
        )
    if args.secret_file:
        raise PolicyError("--secret-file goes with --policy; under an agreement the vault keeps the secret.")
    if args.report:
        # checked before anything is written: a report that cannot be written must not leave an
        # output without its report behind
        check_output_path(args.report, force=args.force)
    check_distinct_files([("the input", args.input)], [("the output", args.out), ("the report", args.report)])
    bar = ProgressLine() if sys.stderr.isatty() else None
    vault = open_vault(args)
    try:
        report = deidentify_for_agreement(
            vault,
            args.input,
            args.agreement,
            args.out,
            profile=args.profile,
            sheet=args.sheet,
            progress=bar,
            force=args.force,
        )
    finally:
        vault.close()
        if bar is not None:
            bar.close()
    if args.report:
        report.write(args.report, force=args.force)  # an OSError becomes one sentence naming the report
    print(report.summary())
    return 0
