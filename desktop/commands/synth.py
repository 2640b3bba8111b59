"""Sub-command: ``synth`` — write a synthetic K-12 or college extract (and optionally its truth)."""

from __future__ import annotations

import argparse

from desktop.commands._vaultargs import add_force


def _rows(text: str) -> int:
    from deid.synth import MAX_ROWS

    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows") from None
    if not 1 <= value <= MAX_ROWS:
        raise argparse.ArgumentTypeError(f"the number of rows must be from 1 to {MAX_ROWS:,}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("the seed must be zero or positive")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser(
        "synth",
        help="write a synthetic student extract (for trying PathShare out and for tests)",
        description=(
            "Write a synthetic K-12 (SIS) or community-college (MIS) extract. The same seed always "
            "gives the same file, and the college extract shares students with the K-12 one."
        ),
    )
    p.add_argument("--kind", required=True, choices=("k12", "college"), help="which kind of export")
    p.add_argument("--rows", required=True, type=_rows, metavar="N", help="number of data rows")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file: .csv, .parquet or .xlsx (Excel: slow beyond some 100,000 rows)",
    )
    p.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--messy",
        action="store_true",
        help="write it as real exports look (legacy encoding, mixed dates, ragged rows; CSV only)",
    )
    p.add_argument(
        "--truth",
        metavar="TRUTH_FILE",
        help="also write what the generator knows (person ids, planted PII, column elements) as JSON",
    )
    add_force(p)
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    """Generate and write the extract; print one line saying what was written."""
    from deid.synth import synth_file

    result = synth_file(
        args.kind,
        args.rows,
        args.out,
        seed=args.seed,
        messy=args.messy,
        truth_path=args.truth,
        force=args.force,
    )
    label = "K-12" if args.kind == "k12" else "college"
    style = " messy" if args.messy else ""
    extra = f"; truth in {args.truth}" if args.truth else ""
    print(f"Wrote {result.table.num_rows:,}{style} {label} rows to {args.out} (seed {args.seed}){extra}.")
    return 0
