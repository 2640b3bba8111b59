"""Sub-commands: link FILE_A FILE_B --out LINKED [--report R.json] [--method M] |
linkage status ID | linkage export-key ID --for FINGERPRINT --out F | linkage import-key F.

``link`` joins two de-identified files on their link tokens (``agreements.link_files``, the workflow the
app's Link page calls too): it opens the vault to refuse writing over a file the vault answers for and to
audit what was linked.
``linkage`` manages an agreement's consortium secret (agreements/_linkage_store.py).
"""

from __future__ import annotations

import argparse
import json

from desktop.commands._vaultargs import add_force, open_vault

_STATE_TEXT = {
    "not_consortium": "linkage scope is 'provider': each provider keeps its own secret",
    "not_executed": "not executed yet: the secret is made when every party has signed",
    "not_a_provider": "this organization is not a provider: it never holds the linkage secret",
    "created": "the linkage secret was made now; export it for each other provider (linkage export-key)",
    "held": "this vault holds the linkage secret",
    "awaiting": "waiting for the linkage key file from the key holder {holder} (linkage import-key)",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser("link", help="link two de-identified files on their link tokens")
    p.add_argument("file_a", metavar="FILE_A")
    p.add_argument("file_b", metavar="FILE_B")
    p.add_argument("--out", required=True, metavar="LINKED", help="the linked rows (.csv or .parquet)")
    p.add_argument("--report", metavar="R.json", help="counts and rates by method (JSON)")
    p.add_argument(
        "--method",
        choices=("combined", "em", "id", "calpass"),
        default="combined",
        help="combined (default), em (the same tokens, weights estimated from the two files), "
        "id (state ID only), calpass (ID, then the Cal-PASS key)",
    )
    p.add_argument("--chart", metavar="C.png", help="charts of the match weights and of the scores (PNG)")
    p.add_argument(
        "--memory-mb",
        type=int,
        metavar="MB",
        help="memory for joining the tokens (default 1024; spills beyond)",
    )
    p.add_argument("--column-a", metavar="NAME", help="the link-tokens column of FILE_A")
    p.add_argument("--column-b", metavar="NAME", help="the link-tokens column of FILE_B")
    add_force(p)
    p.set_defaults(func=cmd_link)

    lk = sub.add_parser("linkage", help="an agreement's consortium linkage secret")
    lsub = lk.add_subparsers(dest="linkage_command", metavar="ACTION", required=True)
    p = lsub.add_parser("status", help="whether this vault holds, makes or awaits the secret")
    p.add_argument("agreement", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)
    p = lsub.add_parser("export-key", help="write the linkage key file for one provider")
    p.add_argument("agreement", metavar="ID")
    p.add_argument("--for", dest="fingerprint", required=True, metavar="FINGERPRINT")
    p.add_argument("--out", required=True, metavar="F")
    add_force(p)
    p.set_defaults(func=cmd_export)
    p = lsub.add_parser("import-key", help="import a linkage key file addressed to us")
    p.add_argument("file", metavar="F")
    p.set_defaults(func=cmd_import)


def cmd_link(args: argparse.Namespace) -> int:
    from agreements import link_files

    with open_vault(args) as vault:
        links = link_files(vault, args.file_a, args.file_b, args.out, report=args.report,
                           method=args.method, columns=(args.column_a, args.column_b),
                           force=args.force, chart=args.chart, memory_mb=args.memory_mb)  # fmt: skip
    r = links.report
    print(
        f"linked {r.linked:,} rows ({r.linked_by['id']:,} by state ID, {r.linked_by['derived']:,} by "
        f"derived keys): {r.rate_a:.1%} of {r.rows_a:,} in A, {r.rate_b:.1%} of {r.rows_b:,} in B"
    )
    if r.left_ambiguous:
        print(f"{r.left_ambiguous:,} row(s) left unlinked: their best candidates tied")
    if r.kept_apart:
        print(f"{r.kept_apart:,} pair(s) not linked: same name, birth date and sex, two different state IDs")
    for note in r.notes:
        print(f"note: {note}")
    wrote = [str(p) for p in (args.out, args.report, args.chart) if p]
    print(f"wrote {', '.join(wrote[:-1])} and {wrote[-1]}" if len(wrote) > 1 else f"wrote {wrote[0]}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from agreements import ensure_linkage_secret, get_agreement

    with open_vault(args) as vault:
        agreement = get_agreement(vault, args.agreement)
        status = ensure_linkage_secret(vault, agreement)
    if args.json:
        doc = {"agreement": agreement.id, "version": agreement.version, "state": status.state,
               "key_holder": status.key_holder, "dual_role": list(status.dual_role)}  # fmt: skip
        print(json.dumps(doc))
        return 0
    text = _STATE_TEXT[status.state].format(holder=status.key_holder)
    print(f"agreement {agreement.id} v{agreement.version}: {text}")
    for fp in status.dual_role:
        print(f"warning: {fp} is both provider and recipient: it holds the linkage secret and receives "
              f"other providers' tokens, so it could re-identify their students")  # fmt: skip
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from agreements import export_linkage_key

    with open_vault(args) as vault:
        path = export_linkage_key(vault, args.agreement, args.fingerprint, args.out, force=args.force)
    print(f"wrote {path} (encrypted to {args.fingerprint}; only that provider can open it)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from agreements import import_linkage_key

    with open_vault(args) as vault:
        agreement = import_linkage_key(vault, args.file)
    print(f"imported the linkage secret of agreement {agreement.id} v{agreement.version}")
    return 0
