"""Sub-commands of ``pathshare audit`` for the compliance officer:

* ``audit disclosures [--out FILE.csv] [--json] [--since D] [--until D]`` — the record of disclosures
  of pupil records (California Education Code 49064): who received what, when, under which agreement;
* ``audit report OUT.pdf`` — the PDF audit report the app writes (verdict, disclosure record, entries).

Registered under ``audit`` (this module is loaded after ``audit`` in ``desktop/cli.py``'s
COMMAND_MODULES); the work is done by ``agreements`` (_compliance, _audit_reports).
"""

from __future__ import annotations

import argparse
import json
import sys

from desktop.commands._vaultargs import add_force, open_vault


def _audit_actions(sub: argparse._SubParsersAction) -> argparse._SubParsersAction | None:
    """The sub-commands of ``pathshare audit`` (registered by desktop/commands/audit.py)."""
    parser = sub.choices.get("audit")
    if parser is None:
        return None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``audit disclosures`` (or a top-level ``disclosures`` if ``audit`` is not registered)."""
    actions = _audit_actions(sub)
    help_text = "the record of disclosures of pupil records (Ed Code 49064): who received what, when"
    p = (actions or sub).add_parser("disclosures", help=help_text)
    p.add_argument("--out", metavar="FILE.csv", help="write the record as CSV (UTF-8, opens in Excel)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--since", metavar="DATE", help="disclosures from this date (UTC)")
    p.add_argument("--until", metavar="DATE", help="disclosures up to this date, inclusive (UTC)")
    add_force(p)
    p.set_defaults(func=cmd_disclosures)

    help_text = "write the audit report as PDF: verdict, disclosure record (Ed Code 49064), entries"
    p = (actions or sub).add_parser("report", help=help_text)
    p.add_argument("out", metavar="OUT.pdf")
    add_force(p)
    p.set_defaults(func=cmd_report)


def cmd_disclosures(args: argparse.Namespace) -> int:
    from agreements import disclosure_record, write_disclosures_csv

    with open_vault(args) as vault:
        rows = disclosure_record(vault, since=args.since, until=args.until)
        if args.out:
            n = write_disclosures_csv(vault, args.out, rows, force=args.force)
    if args.json:
        print(json.dumps([d.to_dict() for d in rows], indent=2, ensure_ascii=False))
        return 0
    if args.out:
        print(f"Wrote {n} disclosure record{'s' if n != 1 else ''} to {args.out}.")
        return 0
    if not rows:
        print("No disclosures of pupil records are recorded in this vault.")
        return 0
    for d in rows:
        receipt = f"receipt {d.delivered[:10]}" if d.delivered else "no receipt yet"
        print(
            f"{d.disclosed[:10]}  {d.recipient}  {d.rows} rows  {d.file}  "
            f"agreement {d.agreement_id[:8]} v{d.agreement_version or '?'} ({d.agreement_title})  {receipt}"
        )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from agreements import (
        audit_report_html,
        disclosure_record,
        output_rule,
        record_report,
        verdict_sentence,
        verify_log,
    )
    from deid import check_output_path

    with open_vault(args) as vault:
        rule = output_rule(vault)
        check_output_path(args.out, force=args.force, recorded=rule)  # before the slow part
        verdict = verify_log(vault)
        entries = vault.audit.entries()
        disclosures = disclosure_record(vault)
        html = audit_report_html(vault, verdict=verdict, entries=entries, disclosures=disclosures)
        from desktop.pdf import html_to_pdf  # Qt, only now

        html_to_pdf(html, args.out, title="PathShare audit report", force=args.force, recorded=rule)
        record_report(vault, args.out, len(entries), verdict.ok)
    print(f"Wrote the audit report to {args.out}.")
    if not verdict.ok:
        # The report is written all the same: it is the evidence. The exit status says it failed.
        sys.stderr.write(f"pathshare: {verdict_sentence(verdict)}\n")
        return 1
    print(verdict_sentence(verdict))
    return 0
