"""Sub-commands: ``metrics [--agreement ID]`` — the metrics catalog (and what an agreement's purpose
names); ``outcomes PACKAGE... --metric M --by E --out FOLDER`` — a protected release of outcome tables
(agreements/_outcomes.py)."""

from __future__ import annotations

import argparse

from desktop.commands._vaultargs import add_force, open_vault


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser(
        "metrics",
        help="list the outcome metrics PathShare can compute",
        description="List the metrics catalog. With --agreement, the metrics the agreement's purpose "
        "names and the elements it would still need to share for them.",
    )
    p.add_argument("--agreement", metavar="ID", help="check this agreement's elements against its purpose")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser(
        "outcomes",
        help="compute outcome tables on opened packages and release them safely",
        description=(
            "Count the chosen metrics on opened packages of one agreement (linked on their link tokens "
            "when there are several), hide small counts and every count that would let a reader work "
            "one out (also together with earlier releases), and write the tables to a new folder: "
            "outcomes.xlsx, outcomes.csv with datapackage.json, outcomes.html, outcomes.pdf and "
            "release.json."
        ),
    )
    p.add_argument("packages", nargs="+", metavar="PACKAGE_FOLDER", help="a folder `pathshare open` wrote")
    p.add_argument("--metric", action="append", required=True, metavar="ID",
                   help="a metric of the catalog (`pathshare metrics`); repeat for several")  # fmt: skip
    p.add_argument("--by", action="append", default=[], metavar="ELEMENT",
                   help="a breakdown: school_id, cte_pathway, sex, race, english_learner_status, "
                        "economically_disadvantaged, iep, ...; two or three joined by * (race*sex, "
                        "race*sex*iep) for a table of every combination, with its totals; repeat for "
                        "several")  # fmt: skip
    p.add_argument("--out", required=True, metavar="FOLDER", help="a new (or empty) folder for the tables")
    p.add_argument("--format", action="append", choices=("xlsx", "csv", "html", "pdf"), metavar="FORMAT",
                   help="xlsx, csv, html or pdf (default: all four); repeat for several")  # fmt: skip
    p.add_argument("--protection", type=int, metavar="N",
                   help="students of uncertainty every hidden count keeps (default and minimum: the "
                        "agreement's smallest reported cell)")  # fmt: skip
    p.add_argument("--memory-mb", type=int, metavar="MB",
                   help="memory for reading, linking and counting (default 1024; spills beyond)")  # fmt: skip
    p.add_argument("--heuristic", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_outcomes)

    t = sub.add_parser("tables", help="seal outcome tables for the agreement's partners, or open theirs")
    tsub = t.add_subparsers(dest="tables_command", metavar="ACTION", required=True)
    p = tsub.add_parser("seal", help="seal a folder `pathshare outcomes` wrote for the agreement's partners")
    p.add_argument("folder", metavar="FOLDER")
    p.add_argument("--out", required=True, metavar="TABLES.age")
    add_force(p)
    p.set_defaults(func=cmd_tables_seal)
    p = tsub.add_parser("open", help="open outcome tables a partner sealed, and check them")
    p.add_argument("package", metavar="TABLES.age")
    p.add_argument("--out", required=True, metavar="FOLDER", help="a new (or empty) folder")
    p.set_defaults(func=cmd_tables_open)


def cmd_metrics(args: argparse.Namespace) -> int:
    from deid import load_catalog

    catalog = load_catalog()
    if args.agreement is None:
        print(f"metrics catalog {catalog.version}")
        for m in catalog.metrics:
            print(f"{m.id}: {m.label} — {m.definition}")
            print(f"    breakdowns: {', '.join(m.disaggregations)}; needs: {', '.join(m.requires)}")
        return 0
    from agreements import get_agreement, metrics_check

    with open_vault(args) as vault:
        agreement = get_agreement(vault, args.agreement)
    found = metrics_check(agreement, catalog)
    if not found:
        print(f"the purpose of agreement {agreement.id} names none of the catalog's metrics")
        return 0
    for m, lack in found:
        state = "can be computed" if not lack else f"the agreement does not share {', '.join(lack)}"
        print(f"{m.id}: {m.label}: {state}")
    return 0


def cmd_outcomes(args: argparse.Namespace) -> int:
    from agreements import release_outcomes

    formats = tuple(args.format) if args.format else ("xlsx", "csv", "html", "pdf")
    with open_vault(args) as vault:
        release = release_outcomes(
            vault, args.packages, args.metric, args.by, args.out, formats=formats,
            method="heuristic" if args.heuristic else "optimal", protection=args.protection,
            memory_mb=args.memory_mb,
        )  # fmt: skip
    print(release.summary())
    if release.linked:
        print(f"{release.linked:,} students linked to another package's records")
    print(f"wrote {', '.join(p.name for p in release.files)} in {release.folder}")
    return 0


def cmd_tables_seal(args: argparse.Namespace) -> int:
    from agreements import seal_outcomes

    with open_vault(args) as vault:
        sealed = seal_outcomes(vault, args.folder, args.out, force=args.force)
    print(f"sealed the tables for {', '.join(sealed.recipients)} in {sealed.path}")
    return 0


def cmd_tables_open(args: argparse.Namespace) -> int:
    from agreements import open_outcomes

    with open_vault(args) as vault:
        got = open_outcomes(vault, args.package, args.out)
    print(f"opened {got.tables} table(s) from {got.sender} into {got.folder}; checked: no small count shown, "
          "no hidden count recoverable")  # fmt: skip
    return 0
