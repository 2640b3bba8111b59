"""Sub-command ``prepare``: de-identify + check + seal under an agreement, one step.

pathshare prepare INPUT --agreement ID --out PACKAGE.age [--profile NAME] [--accept-suggested]
"""

from __future__ import annotations

import argparse

from desktop.commands._vaultargs import add_force, open_vault, refuse_output_over_vault, vault_path
from desktop.commands.deidentify import ProgressLine


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``prepare`` to the ``pathshare`` parser."""
    p = sub.add_parser(
        "prepare",
        help="de-identify an extract under an agreement, check it, and seal it for the recipients",
        description=(
            "Map the extract onto the agreement's elements, de-identify it under the agreement's "
            "policy, refuse unless every check passes, then seal it for the agreement's recipients "
            "(its rows in a new random order)."
        ),
    )
    p.add_argument("input", metavar="INPUT", help="the extract: .csv, .xlsx or .parquet")
    p.add_argument("--agreement", metavar="ID", required=True, help="an executed agreement (id or prefix)")
    p.add_argument("--out", metavar="PACKAGE.age", required=True, help="where to write the sealed package")
    p.add_argument("--profile", metavar="NAME", help="the saved mapping profile to use")
    p.add_argument(
        "--accept-suggested",
        action="store_true",
        help="use the suggested mapping when no saved profile matches the extract's columns",
    )
    p.add_argument("--sheet", metavar="NAME", help="the worksheet to read from an .xlsx workbook")
    p.add_argument("--report", metavar="REPORT.json", help="also write the de-identification report here")
    add_force(p)
    p.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    """Handler of ``pathshare prepare``."""
    import sys

    from agreements import prepare
    from deid import check_output_path, write_bytes_atomic

    refuse_output_over_vault(args, vault_path(args))  # that sentence first: it says the most
    if args.report:
        # before the package is sealed: never a package without its report
        check_output_path(args.report, force=args.force)
        from pathlib import Path

        from deid import same_file
        from deid.errors import OutputError

        for other, what in ((args.input, "the extract"), (args.out, "the package")):
            if same_file(Path(args.report), Path(other)):
                raise OutputError(
                    f"Cannot write the report over {what} {Path(other).name}; choose another name."
                )
    bar = ProgressLine() if sys.stderr.isatty() else None
    try:
        with open_vault(args) as vault:  # `with`: a vault damaged mid-run is said in one sentence
            result = prepare(
                vault,
                args.input,
                args.agreement,
                args.out,
                profile=args.profile,
                accept_suggested=args.accept_suggested,
                sheet=args.sheet,
                progress=bar,
                force=args.force,
            )
            if args.report:
                from agreements import output_rule

                write_bytes_atomic(
                    args.report,
                    result.report.to_json().encode("utf-8"),
                    force=args.force,
                    recorded=output_rule(vault),
                )
    finally:
        if bar is not None:
            bar.close()
    print(result.summary())
    return 0
