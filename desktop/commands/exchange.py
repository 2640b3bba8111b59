"""Sub-commands: open PACKAGE.age --out DIR [--receipt R.json] [--reopen --reason R] |
receipt import R.json | destroy PACKAGE_ID --certificate OUT.json [--files-moved-to DIR | --attest S] |
certificate import C.json | void PACKAGE_ID --reason R | packages [--sent | --received] [--outstanding]
[--json]. Commands that write a file take --force to replace an existing one.

The work happens in ``agreements._workflows``; this module only parses arguments and prints.
(``prepare`` joins here when the prepare workflow lands.)
"""

from __future__ import annotations

import argparse
import json
from datetime import date

from agreements.errors import PackageRejected
from desktop.commands._vaultargs import add_force, open_vault


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    p = sub.add_parser("open", help="verify and unpack a package sent to us")
    p.add_argument("package", metavar="PACKAGE.age")
    p.add_argument("--out", required=True, metavar="DIR", help="an empty or new folder for the files")
    p.add_argument(
        "--receipt",
        metavar="RECEIPT.json",
        help="also write a signed receipt for the sender: opened, or refused and why",
    )
    p.add_argument(
        "--reopen",
        action="store_true",
        help="open once more a package this vault opened before whose folder was lost (once; needs --reason)",
    )
    p.add_argument("--reason", help="with --reopen: why the package is opened again (recorded in the vault)")
    add_force(p)
    p.set_defaults(func=cmd_open)

    receipt = sub.add_parser("receipt", help="receipts partners send back for our packages")
    rsub = receipt.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    p = rsub.add_parser("import", help="verify a receipt and mark the package delivered")
    p.add_argument("file", metavar="RECEIPT.json")
    p.set_defaults(func=cmd_receipt_import)

    p = sub.add_parser(
        "destroy",
        help="delete a package we received, confirm it is gone, and sign a destruction certificate",
        description=(
            "Delete the files `open` wrote (the vault knows the folder), check that they are gone, and "
            "only then record the destruction and write the signed certificate for the provider. If the "
            "files were moved, say where (--files-moved-to); if they are gone some other way, certify by "
            "hand (--attest): the certificate says which."
        ),
    )
    p.add_argument("package_id", metavar="PACKAGE_ID", help="the package (its id, or the first characters)")
    p.add_argument("--certificate", required=True, metavar="OUT.json", help="where to write the certificate")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--files-moved-to", metavar="DIR", help="the folder the opened files were moved to (deleted there)"
    )
    where.add_argument(
        "--attest",
        metavar="STATEMENT",
        help="certify by hand what you checked, when the files are not where PathShare can delete them",
    )
    p.add_argument(
        "--sender",
        metavar="FINGERPRINT",
        help="the sender's card fingerprint, when packages from two senders carry the same id",
    )
    p.add_argument("--method", help="how else it was destroyed (backups, copies); added to the certificate")
    p.add_argument("--statement", help="the statement the certificate signs")
    add_force(p)
    p.set_defaults(func=cmd_destroy)

    p = sub.add_parser(
        "void",
        help="void a package we sealed but never sent (deletes the sealed file; recorded)",
    )
    p.add_argument("package_id", metavar="PACKAGE_ID", help="the package (its id, or the first characters)")
    p.add_argument("--reason", required=True, help="why it was never sent (recorded in the vault)")
    p.set_defaults(func=cmd_void)

    cert = sub.add_parser("certificate", help="destruction certificates partners send back")
    csub = cert.add_subparsers(dest="certificate_command", metavar="ACTION", required=True)
    p = csub.add_parser("import", help="verify a destruction certificate and close the package")
    p.add_argument("file", metavar="CERTIFICATE.json")
    p.set_defaults(func=cmd_certificate_import)

    p = sub.add_parser("packages", help="list the packages we sent and received")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--sent", action="store_true")
    which.add_argument("--received", action="store_true")
    p.add_argument(
        "--outstanding",
        action="store_true",
        help="sent packages not destroyed past their destruction deadline",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_packages)


def cmd_open(args: argparse.Namespace) -> int:
    from agreements import open_received
    from deid.errors import InputError

    if args.reopen != (args.reason is not None):
        raise InputError("--reopen and --reason go together: say why the package is opened again.")
    with open_vault(args) as vault:
        try:
            got = open_received(
                vault,
                args.package,
                args.out,
                receipt=args.receipt,
                force=args.force,
                reopen_reason=args.reason if args.reopen else None,
            )
        except PackageRejected as exc:
            if exc.receipt is not None:
                print(f"Receipt telling the sender the package was refused: {exc.receipt}")
            raise
    m = got.manifest
    again = " once more (recorded with your reason)" if args.reopen else ""
    print(
        f"Opened package {m.package_id}{again} from {got.sender.org} under agreement {got.agreement.title}."
    )
    for check in got.checks:
        print(f"  ok: {check}")
    for entry, path in zip(m.files, got.files, strict=True):
        rows = f", {entry.rows} rows" if entry.rows is not None else ""
        print(f"  {path} ({entry.size} bytes{rows})")
    for warning in got.warnings:
        print(f"  warning: {warning}")
    if got.receipt is not None:
        print(f"Receipt for the sender: {got.receipt}")
    return 0


def cmd_receipt_import(args: argparse.Namespace) -> int:
    from agreements import import_receipt_file

    with open_vault(args) as vault:
        receipt = import_receipt_file(vault, args.file)
    if receipt.result == "rejected":
        print(
            f"Package {receipt.package_id} was refused by {receipt.recipient_fingerprint} at {receipt.time}: "
            f"{receipt.reason}"
        )
        return 0
    print(
        f"Package {receipt.package_id}: {receipt.result} by {receipt.recipient_fingerprint} "
        f"at {receipt.time}."
    )
    return 0


def cmd_destroy(args: argparse.Namespace) -> int:
    from agreements import destroy

    extra = {k: v for k, v in (("method", args.method), ("statement", args.statement)) if v}
    with open_vault(args) as vault:
        done = destroy(
            vault,
            args.package_id,
            args.certificate,
            files_moved_to=args.files_moved_to,
            attest=args.attest,
            force=args.force,
            sender=args.sender,
            **extra,
        )
    pid = done.certificate["package_id"]
    if done.rewritten:
        print(f"Package {pid} was already certified destroyed; wrote its certificate to {args.certificate}.")
        return 0
    if done.verified == "deleted":
        print(f"Deleted the {len(done.deleted)} files of package {pid} from {done.folder}; none is left.")
    else:
        print(
            f"Deleted {len(done.deleted)} file(s) of package {pid} found in {done.folder}; "
            f"{len(done.missing)} were not there: the certificate says you certified it by hand."
        )
    print(f"Destruction certified in {args.certificate}; send it to the provider.")
    return 0


def cmd_void(args: argparse.Namespace) -> int:
    from agreements import void_package

    with open_vault(args) as vault:
        voided = void_package(vault, args.package_id, args.reason)
    pid = voided.record.package_id
    if voided.deleted:
        print(f"Package {pid} is void; its sealed file {voided.file} was deleted.")
    else:
        print(
            f"Package {pid} is void. Its sealed file was not at {voided.file}: if a copy exists "
            "elsewhere, delete it, since it must not be sent."
        )
    return 0


def cmd_certificate_import(args: argparse.Namespace) -> int:
    from agreements import import_certificate_file

    with open_vault(args) as vault:
        cert = import_certificate_file(vault, args.file)
    print(
        f"Package {cert.package_id}: destruction certified by {cert.recipient_fingerprint} "
        f"({cert.destroyed_at})."
    )
    return 0


def cmd_packages(args: argparse.Namespace) -> int:
    from agreements import RECEIVED, SENT, list_packages, outstanding_past_deadline

    with open_vault(args) as vault:
        if args.outstanding:
            rows = [(r, deadline) for r, deadline in outstanding_past_deadline(vault, date.today())]
        else:
            direction = SENT if args.sent else RECEIVED if args.received else None
            rows = [(r, None) for r in list_packages(vault, direction)]
    if args.json:
        print(json.dumps([{**r.to_dict(), **({"deadline": d} if d else {})} for r, d in rows], indent=2))
        return 0
    if not rows:
        print("No packages." if not args.outstanding else "No package is outstanding past its deadline.")
        return 0
    for r, deadline in rows:
        state = r.state
        if r.reopened_at:
            state += f", opened again {r.reopened_at[:10]}"
        due = f", destruction was due {deadline}" if deadline else ""
        print(
            f"{r.package_id}  {r.direction:8}  {r.created}  agreement {r.agreement_id}  {r.files} file(s), "
            f"{r.bytes} bytes  {state}{due}"
        )
        for fingerprint, reason in r.refused:
            print(f"  refused by {fingerprint}: {reason}")
    return 0
