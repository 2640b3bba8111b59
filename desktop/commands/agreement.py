"""Sub-commands: agreement new | sign | export | import | list | show | amend | terminate | join.

Thin wrappers over ``agreements``' agreement workflows; every refusal is an ``AgreementError`` (or
another PathShareError) that the dispatcher prints as one sentence with exit status 1.
"""

from __future__ import annotations

import argparse
import json
from datetime import date

from agreements import (
    Agreement,
    AgreementSummary,
    agreement_status,
    amend_agreement_from_file,
    create_agreement_from_file,
    destruction_due,
    expiring_agreements,
    export_agreement,
    get_agreement,
    import_agreement,
    join_agreement,
    list_agreements,
    our_card,
    sign_agreement,
    terminate_agreement,
)
from desktop.commands._vaultargs import add_force, open_vault


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    agreement = sub.add_parser("agreement", help="data-sharing agreements: draft, sign, exchange, list")
    asub = agreement.add_subparsers(dest="agreement_command", metavar="ACTION", required=True)

    p = asub.add_parser(
        "new", help="store a draft agreement from an (unsigned) agreement file; prints its id"
    )
    p.add_argument("file", metavar="FILE.json")
    p.set_defaults(func=cmd_new)

    p = asub.add_parser("sign", help="sign an agreement with this organization's key")
    p.add_argument("id", metavar="ID", help="the agreement id (or its first characters)")
    p.add_argument("--version", type=int, help="a version other than the latest")
    p.set_defaults(func=cmd_sign)

    p = asub.add_parser("export", help="write the agreement with its signatures for partners to countersign")
    p.add_argument("id", metavar="ID")
    p.add_argument("out", metavar="OUT.json")
    p.add_argument("--version", type=int, help="a version other than the latest")
    add_force(p)
    p.set_defaults(func=cmd_export)

    p = asub.add_parser("import", help="import a partner's signed agreement file and merge its signatures")
    p.add_argument("file", metavar="FILE.json")
    p.set_defaults(func=cmd_import)

    p = asub.add_parser("list", help="list agreements with their status")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--expiring-days", type=int, metavar="N", help="only agreements in force that end within N days"
    )
    p.add_argument(
        "--destruction-due", action="store_true", help="only ended agreements whose data must be destroyed"
    )
    p.add_argument("--all", action="store_true", help="include versions superseded by an amendment")
    p.set_defaults(func=cmd_list)

    p = asub.add_parser("show", help="show an agreement's terms, parties and signatures")
    p.add_argument("id", metavar="ID")
    p.add_argument("--version", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = asub.add_parser("amend", help="draft a new version of an agreement from a file")
    p.add_argument("id", metavar="ID")
    p.add_argument("file", metavar="FILE.json")
    p.set_defaults(func=cmd_amend)

    p = asub.add_parser("terminate", help="end an agreement with a signed termination notice")
    p.add_argument("id", metavar="ID")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(func=cmd_terminate)

    p = asub.add_parser("join", help="join a general offer by signing the same terms")
    p.add_argument("id", metavar="ID")
    p.add_argument("--name", required=True, help="who signs for this organization")
    p.add_argument("--title", required=True, help="their title")
    p.add_argument("--email", required=True, help="their e-mail")
    p.add_argument("--role", action="append", choices=("provider", "recipient"), help="default: the offer's")
    p.set_defaults(func=cmd_join)

    from desktop.commands.mapping import add_codebook_command

    add_codebook_command(asub)


def _short(agreement_id: str) -> str:
    return agreement_id[:8]


def _progress(a: Agreement) -> str:
    if a.is_executed:
        return f"All parties have signed: agreement {_short(a.id)} version {a.version} is executed."
    missing = ", ".join(p.org for p in a.missing_signers())
    return f"Still to sign: {missing}."


def cmd_new(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        a = create_agreement_from_file(vault, args.file)
    print(a.id)
    print(f"Stored the draft \u201c{a.title}\u201d (version {a.version}).")
    print(f"Next: `pathshare agreement sign {_short(a.id)}`, then export it for the other parties.")
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        before = get_agreement(vault, args.id, args.version)
        a = sign_agreement(vault, args.id, version=args.version)
    if a is before:
        print(f"You had already signed agreement {_short(a.id)} version {a.version}.")
    else:
        print(f"Signed agreement {_short(a.id)} version {a.version} (\u201c{a.title}\u201d).")
    print(_progress(a))
    if not a.is_executed:
        print(f"Next: `pathshare agreement export {_short(a.id)} OUT.json` and send the file to them.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        a = export_agreement(vault, args.id, args.out, version=args.version, force=args.force)
    signers = ", ".join(p.org for p in a.all_parties() if a.signed_by(p.fingerprint)) or "nobody"
    print(f"Wrote agreement {_short(a.id)} version {a.version} to {args.out} (signed by {signers}).")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        a = import_agreement(vault, args.file)
        status = agreement_status(vault, a)
        mine = a.party(our_card(vault).fingerprint()) is not None
    print(f"Imported agreement {_short(a.id)} version {a.version} (\u201c{a.title}\u201d): {status}.")
    if status not in ("terminated", "expired"):
        print(_progress(a))
        if mine and not a.is_executed:
            print(f"Next: review it with `pathshare agreement show {_short(a.id)}`, then sign it.")
        elif not mine:
            print(f"It is a general offer; join it with `pathshare agreement join {_short(a.id)} ...`.")
    return 0


def _table(rows: list[AgreementSummary], *, deadlines: bool = False) -> None:
    if not rows:
        print("No agreements.")
        return
    today = date.today()
    width = min(48, max(len(r.title) for r in rows))
    for r in rows:
        title = r.title if len(r.title) <= width else r.title[: width - 1] + "\u2026"
        when = f"destroy by {r.destruction_deadline}"
        if deadlines:
            days = (r.destruction_deadline - today).days
            when += f" ({-days} days overdue)" if days < 0 else f" (in {days} days)"
        print(
            f"{_short(r.id)}  v{r.version:<2} {r.status:<10}  "
            f"{r.effective} \u2192 {r.expires}  {when}  {title}"
        )


def cmd_list(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        if args.expiring_days is not None:
            rows = expiring_agreements(vault, args.expiring_days)
        elif args.destruction_due:
            rows = destruction_due(vault)
        else:
            rows = list_agreements(vault, include_superseded=args.all)
    if args.json:
        today = date.today()
        out = [
            {
                **r.to_dict(),
                "days_to_expiry": (r.expires - today).days,
                "days_to_destruction_deadline": (r.destruction_deadline - today).days,
            }
            for r in rows
        ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        _table(rows, deadlines=args.destruction_due)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        a = get_agreement(vault, args.id, args.version)
        status = agreement_status(vault, a)
    if args.json:
        out = {
            "status": status,
            "in_force": status == "executed" and a.in_force(),
            "sha256": a.sha256,
            "agreement": a.to_document(),
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    t = a.terms
    print(f"{t.title}")
    print(f"  id {a.id}  version {a.version}  status {status}")
    print(f"  sha256 {a.sha256}")
    if a.previous:
        print(f"  amends the version with sha256 {a.previous}")
    print(f"  legal basis: {t.legal_basis.basis} \u2014 {t.legal_basis.citation}")
    print(
        f"  in force {t.effective} \u2192 {t.expires}; "
        f"destroy by {t.destruction.deadline} ({t.destruction.method})"
    )
    print(f"  purpose: {t.purpose}")
    print("Parties:")
    for p in a.all_parties():
        mark = "signed" if a.signed_by(p.fingerprint) else ("joined" if p not in t.parties else "not signed")
        rep = p.authorized_representative
        print(f"  {p.fingerprint}  {p.org} ({'/'.join(p.roles)}) \u2014 {rep.name}, {rep.title}: {mark}")
    for term in a.terminations:
        print(f"  terminated by {term.terminated_by} at {term.terminated_at}: {term.reason}")
    print(
        f"Elements (k = {t.policy.k}, minimum cell size {t.policy.min_cell_size}, "
        f"linkage {t.policy.linkage_scope}):"
    )
    for name, rule in a.element_treatments().items():
        params = ", ".join(f"{k}={v}" for k, v in rule["params"].items())
        out_name = f" \u2192 {rule['as']}" if rule["as"] not in (None, name) else ""
        qi = "  [quasi-identifier]" if rule["quasi_identifier"] else ""
        print(f"  {name:<26} {rule['treatment']}{f'({params})' if params else ''}{out_name}{qi}")
    if a.general_offer:
        print(f"General offer: further partners may join as {'/'.join(t.join_as or [])}.")
    return 0


def cmd_amend(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        corrected = not get_agreement(vault, args.id).signatures
        a = amend_agreement_from_file(vault, args.id, args.file)
    if corrected:
        print(f"Corrected the unsigned draft of agreement {_short(a.id)} (version {a.version}).")
    else:
        print(
            f"Stored version {a.version} of agreement {_short(a.id)} as a draft; it replaces version "
            f"{a.version - 1} once every party has signed it."
        )
    return 0


def cmd_terminate(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        a = terminate_agreement(vault, args.id, args.reason)
    print(
        f"Terminated agreement {_short(a.id)}. "
        f"Export it (`pathshare agreement export {_short(a.id)} OUT.json`) "
        "so the other parties receive the notice."
    )
    return 0


def cmd_join(args: argparse.Namespace) -> int:
    rep = {"name": args.name, "title": args.title, "email": args.email}
    with open_vault(args) as vault:
        a = join_agreement(vault, args.id, rep, roles=args.role)
    print(f"Joined agreement {_short(a.id)} (\u201c{a.title}\u201d). Export it and send it to its parties.")
    return 0
