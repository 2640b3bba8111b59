"""Sub-commands: audit verify [--bundle F [--card CARD.json]] [--checkpoint F] | audit log [--json]
[filters] | audit export OUT | audit checkpoint [--out F]."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agreements import AuditError, Card, PartnerError, our_card, partner_log_problems, verify_bundle
from desktop.commands._vaultargs import add_force, open_vault


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands to the ``pathshare`` parser."""
    audit = sub.add_parser("audit", help="verify, read and export the audit log")
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    p = asub.add_parser("verify", help="recompute the hash chain (or check an exported bundle)")
    p.add_argument("--bundle", metavar="FILE", help="verify an audit bundle exported by a partner (or us)")
    p.add_argument(
        "--card",
        metavar="CARD.json",
        help="with --bundle: the exporter's card file (then no vault is needed)",
    )
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="also check our log still holds the state of a checkpoint we signed earlier",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = asub.add_parser("log", help="show audit entries")
    p.add_argument("--json", action="store_true")
    p.add_argument("--since", metavar="DATE", help="from this date or ISO time (UTC)")
    p.add_argument("--until", metavar="DATE", help="up to this date (inclusive) or ISO time (UTC)")
    p.add_argument("--action", help="an action, or a prefix ending in '.' (e.g. partner.)")
    p.add_argument("--agreement", metavar="ID")
    p.add_argument("--partner", metavar="FINGERPRINT")
    p.add_argument("--package", metavar="ID")
    p.add_argument("--user", help="the OS user who acted")
    p.add_argument("--limit", type=int, metavar="N", help="only the last N matching entries")
    p.set_defaults(func=cmd_log)

    p = asub.add_parser("export", help="write a signed bundle others can verify with our card")
    p.add_argument("out", metavar="OUT")
    add_force(p)
    p.set_defaults(func=cmd_export)

    p = asub.add_parser("checkpoint", help="print (or write) a signed checkpoint of the log's head")
    p.add_argument("--out", metavar="FILE")
    add_force(p)
    p.set_defaults(func=cmd_checkpoint)


def _report(verdict, what: str, args: argparse.Namespace) -> int:
    if getattr(args, "json", False):
        print(
            json.dumps(
                {
                    "ok": verdict.ok,
                    "entries": verdict.entries,
                    "first_bad": verdict.first_bad,
                    "reason": verdict.reason,
                    "head": verdict.head_hash,
                    "notes": list(verdict.warnings),
                }
            )
        )
    if not verdict.ok:
        raise AuditError(f"{what} does not verify: {verdict.reason}.")
    if not getattr(args, "json", False):
        print(f"{what} verifies: {verdict.entries} entries, head {verdict.head_hash[:16]}…")
        for note in verdict.warnings:
            print(f"Note: {note[0].upper()}{note[1:]}.")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    if args.bundle:
        return _verify_bundle(args)
    from agreements import verify_log

    with open_vault(args) as vault:
        verdict = verify_log(vault, checkpoint=args.checkpoint)  # the library's workflow, audited there
        partners = partner_log_problems(vault)
    code = _report(verdict, "The audit log", args)
    if not getattr(args, "json", False):
        # Our log is fine, but what partners signed for us earlier no longer holds in theirs: say so.
        for problem in partners:
            print(f"Warning ({problem.time[:10]}): {problem.reason}.")
    return code


def _verify_bundle(args: argparse.Namespace) -> int:
    from agreements import check_bundle

    bundle = Path(args.bundle)
    if args.card:
        try:
            signer = Card.from_json(Path(args.card).read_bytes(), f"The card file {Path(args.card).name}")
        except OSError as exc:
            raise PartnerError(f"Cannot read the card file {args.card}: {exc.strerror or exc}.") from exc
        return _report(verify_bundle(bundle, signer), f"The audit bundle {bundle.name}", args)
    # The signer's card from this vault, rollback detection against what the partner showed before,
    # and the audit entry: the same check the app's Audit screen runs.
    with open_vault(args) as vault:
        check = check_bundle(vault, bundle)
    return _report(check.verdict, f"The audit bundle {bundle.name} from {check.org} ({check.signer})", args)


def cmd_log(args: argparse.Namespace) -> int:
    if args.partner:
        import contextlib

        from agreements import normalize_fingerprint

        with contextlib.suppress(PartnerError):  # fingerprints may be typed loosely, as elsewhere
            args.partner = normalize_fingerprint(args.partner)
    with open_vault(args) as vault:
        entries = vault.audit.entries(
            since=args.since,
            until=args.until,
            action=args.action,
            agreement=args.agreement,
            partner=args.partner,
            package=args.package,
            user=args.user,
            limit=args.limit,
        )
    if args.json:
        print(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
        return 0
    for e in entries:
        about = " ".join(
            f"{k}={v}"
            for k, v in (("agreement", e.agreement), ("partner", e.partner), ("package", e.package))
            if v
        )
        details = json.dumps(e.details, ensure_ascii=False) if e.details else ""
        print(f"{e.seq:>6}  {e.time[:19]}Z  {e.actor}  {e.action}  {about}  {details}".rstrip())
    if not entries:
        print("No matching audit entries.")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with open_vault(args) as vault:
        verdict = vault.audit.export_bundle(Path(args.out), force=args.force)
        card = our_card(vault)
    print(f"Wrote {verdict.entries} audit entries and a signed checkpoint to {args.out}.")
    print(
        f"Verify elsewhere with: pathshare audit verify --bundle {args.out} (needs the card of {card.org}, "
        f"fingerprint {card.fingerprint()})"
    )
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from agreements import write_checkpoint

    with open_vault(args) as vault:
        text = write_checkpoint(vault, args.out or None, force=args.force)  # audited by the library
    if args.out:
        print(f"Wrote a signed checkpoint to {args.out}.")
    else:
        print(text, end="")
    return 0


