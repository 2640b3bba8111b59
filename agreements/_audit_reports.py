"""The audit log for people: as CSV, as the HTML that ``desktop/pdf.py`` lays out as a PDF report, the
one sentence a verification ends in; :func:`verify_log` and :func:`check_bundle` verify the log or a
bundle from another machine (and record that they did); :func:`audit_choices` — what the audit
filters offer.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._compliance import Disclosure, org_name, organization_names, write_csv
from agreements.errors import AuditError

if TYPE_CHECKING:
    from agreements._audit import AuditEntry, AuditVerdict
    from agreements._cards import Card
    from agreements._vault import Vault

# ------------------------------------------------------------------------------------ the audit log

AUDIT_CSV_FIELDS = ("seq", "time", "actor", "action", "agreement", "partner", "package", "details", "hash")


def write_audit_csv(
    vault: Vault, entries: Sequence[AuditEntry], out: str | os.PathLike[str], *, force: bool = False
) -> int:
    """Write audit entries as CSV (details as JSON text), atomically (an existing file replaced only
    with ``force``); audited as ``audit.export_csv``."""
    rows = (
        (
            e.seq,
            e.time,
            e.actor,
            e.action,
            e.agreement,
            e.partner,
            e.package,
            json.dumps(e.details, ensure_ascii=False, sort_keys=True) if e.details else "",
            e.hash,
        )
        for e in entries
    )
    n = write_csv(vault, out, AUDIT_CSV_FIELDS, rows, force)
    vault.audit.append("audit.export_csv", details={"file": Path(out).name, "entries": n})
    return n


def verdict_sentence(verdict: AuditVerdict, what: str = "The audit log") -> str:
    """One sentence for a verdict, naming the first bad entry when there is one."""
    if verdict.ok:
        return " ".join(
            [
                f"{what} verifies: all {verdict.entries:,} entries are intact and in order "
                f"(head {verdict.head_hash[:16]}…).",
                *verdict_notes(verdict),
            ]
        )
    where = f" The first bad entry is #{verdict.first_bad}." if verdict.first_bad else ""
    reason = verdict.reason.rstrip(".")
    return f"{what} does NOT verify: {reason}.{where}"


def verdict_notes(verdict: AuditVerdict) -> list[str]:
    """What verification could not check or found earlier (a missing head file, past tampering), as
    sentences to show under the verdict."""
    return [f"{note[0].upper()}{note[1:]}." for note in verdict.warnings]


def verify_log(vault: Vault, checkpoint: str | os.PathLike[str] | None = None) -> AuditVerdict:
    """Verify the vault's own log and record the check (``audit.verify``) — `audit verify` and the app's
    Audit screen both call this. With ``checkpoint`` (a checkpoint file we signed earlier), the log must
    also still hold what it did then; a checkpoint that cannot be read or checked is recorded
    (``audit.verify.refused``) and raised as AuditError."""
    from agreements.errors import AuditError

    if checkpoint is None:
        verdict = vault.audit.verify()
    else:
        name = Path(checkpoint).name
        try:
            text = Path(checkpoint).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AuditError(f"Cannot read the checkpoint file {checkpoint}.") from exc
        try:
            verdict = vault.audit.verify_against_checkpoint(text)
        except AuditError as exc:
            vault.audit.append("audit.verify.refused", details={"file": name, "reason": str(exc)})
            reason = str(exc).removeprefix("The checkpoint ").rstrip(".")
            raise AuditError(f"The checkpoint file {name} {reason}.", exc.hint) from exc
    vault.audit.append(
        "audit.verify",
        details={"ok": verdict.ok, "entries": verdict.entries, "first_bad": verdict.first_bad},
    )
    return verdict


def write_checkpoint(vault: Vault, out: str | os.PathLike[str] | None = None, *, force: bool = False) -> str:
    """A signed checkpoint of the log's head (``audit checkpoint`` and its callers), recorded in the log
    (``audit.checkpoint``); written to ``out`` when given (never over a file the vault recorded; an
    existing file only with ``force``). Returns the checkpoint text."""
    from agreements._recorded import output_rule
    from deid import check_output_path, write_bytes_atomic

    rule = output_rule(vault)
    if out is not None:
        check_output_path(out, force=force, recorded=rule)  # before it is on record
    text = vault.audit.checkpoint()
    vault.audit.append("audit.checkpoint", details={"size": int(text.split("\n")[1])})
    if out is not None:
        write_bytes_atomic(out, text.encode("utf-8"), perm=0o644, force=force, recorded=rule)
    return text


@dataclass
class BundleCheck:
    """An audit bundle from another machine, verified against the card this vault holds for it."""

    file: str
    org: str
    fingerprint: str
    signer: str  # "our own card", "verified partner", "unverified partner"
    verdict: AuditVerdict
    entries: list[AuditEntry] = field(default_factory=list)

    @property
    def sentence(self) -> str:
        return verdict_sentence(self.verdict, f"The audit bundle {self.file} from {self.org} ({self.signer})")


def _bundle_entries(data: Mapping[str, Any]) -> list[AuditEntry]:
    from agreements._audit import AuditEntry

    out = []
    for e in data.get("entries", []):
        if not isinstance(e, dict):
            continue
        try:
            out.append(
                AuditEntry(
                    int(e.get("seq", 0)),
                    str(e.get("time", "")),
                    str(e.get("actor", "")),
                    str(e.get("action", "")),
                    e.get("agreement"),
                    e.get("partner"),
                    e.get("package"),
                    e.get("details") if isinstance(e.get("details"), dict) else {},
                    str(e.get("prev_hash", "")),
                    str(e.get("hash", "")),
                )
            )
        except (TypeError, ValueError):
            continue  # the verdict already names a malformed entry
    return out


def check_bundle(vault: Vault, path: str | os.PathLike[str]) -> BundleCheck:
    """Verify an audit bundle exported on another machine (``pathshare audit verify --bundle``).

    The signer must be this organization or a partner whose card this vault holds; for a partner, the
    bundle must also still contain the state of any earlier checkpoint we hold (rollback detection).
    Audited as ``audit.verify_bundle``. AuditError when the file is not a bundle or its signer is unknown.
    """
    from agreements._audit import (
        bundle_card,
        bundle_roots,
        hold_partner_checkpoint,
        read_bundle,
        verify_bundle,
    )
    from agreements._identity import our_card
    from agreements._partners import find_partner

    p = Path(path)
    data = read_bundle(p)
    claimed = bundle_card(data)
    ours = our_card(vault)
    signer: Card
    if claimed.signing_key == ours.signing_key:
        signer, who = ours, "our own card"
    else:
        partner = find_partner(vault, signing_key=claimed.signing_key)
        if partner is None:
            vault.audit.append(
                "audit.verify_bundle.refused", details={"file": p.name, "reason": "unknown signer"}
            )
            raise AuditError(
                f"The audit bundle {p.name} comes from {claimed.org}, whose card this vault does not hold; "
                "import and verify their card first."
            )
        signer, who = partner.card, f"{partner.status} partner"
    verdict = verify_bundle(data, signer)
    if verdict.ok and signer is not ours:
        held = hold_partner_checkpoint(
            vault, data["checkpoint"], signer, lambda sizes: bundle_roots(data, sizes), "bundle"
        )
        if not held.ok:
            verdict = held
    vault.audit.append(
        "audit.verify_bundle",
        partner=signer.fingerprint(),
        details={"file": p.name, "ok": verdict.ok, "entries": verdict.entries},
    )
    return BundleCheck(p.name, signer.org, signer.fingerprint(), who, verdict, _bundle_entries(data))


def audit_choices(vault: Vault) -> dict[str, list[str]]:
    """What the audit filters offer: the actions (and their ``area.`` prefixes) and OS users in the log."""
    actions = sorted(r[0] for r in vault.db.execute("SELECT DISTINCT action FROM audit_log"))
    prefixes = sorted({a.split(".", 1)[0] + "." for a in actions if "." in a})
    actors = [r[0] for r in vault.db.execute("SELECT DISTINCT actor FROM audit_log")]
    users = sorted({a.split(" (", 1)[0] for a in actors})
    return {"actions": prefixes + actions, "users": users}


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def _short(text: str | None, n: int = 8) -> str:
    return "" if not text else text[:n]


def audit_report_html(
    vault: Vault,
    *,
    verdict: AuditVerdict,
    entries: Sequence[AuditEntry],
    disclosures: Sequence[Disclosure],
    filters: str = "",
    generated: str = "",
    max_entries: int = 500,
    source: str = "",
) -> str:
    """The audit report as self-contained HTML (Qt's rich text subset), for ``desktop.pdf.html_to_pdf``:
    organization and card fingerprint, the verification verdict, the record of disclosures of pupil
    records (Education Code 49064), counts by action, and the latest ``max_entries`` entries (Qt's page
    layout of a table grows faster than linearly: 500 rows take about 2 s, 2,000 rows 14 s)."""
    from agreements._clock import utc_now
    from agreements._identity import our_card

    card = our_card(vault)
    generated = generated or utc_now()[:19].replace("T", " ") + " UTC"
    names = organization_names(vault)
    parts = [
        "<html><head><meta charset='utf-8'><style>"
        "body { font-family: sans-serif; font-size: 9pt; } table { font-size: 8pt; }"
        "h1 { font-size: 16pt; margin-bottom: 2px; } h2 { font-size: 12pt; margin-top: 14px; }"
        "table { border-collapse: collapse; } th { background: #e8e8e8; text-align: left; }"
        "td, th { border: 1px solid #999; padding: 2px 4px; vertical-align: top; }"
        ".ok { color: #1a6b1a; font-weight: bold; } .bad { color: #b00000; font-weight: bold; }"
        ".small { color: #444; font-size: 8pt; }"
        "</style></head><body>",
        f"<h1>Audit report — {_e(card.org)}</h1>",
        f"<p>{_e(card.kind.capitalize())} · card fingerprint <b>{_e(card.fingerprint())}</b> · "
        f"generated {_e(generated)}" + (f" · {_e(source)}" if source else "") + "</p>",
        "<h2>Verification</h2>",
        f"<p class='{'ok' if verdict.ok else 'bad'}'>{_e(verdict_sentence(verdict))}</p>",
        f"<p class='small'>Each entry's SHA-256 covers the previous entry's hash, so editing, deleting, "
        f"inserting or reordering any entry breaks the chain at that entry. Head hash: "
        f"{_e(verdict.head_hash)}</p>",
        "<h2>Record of disclosures of pupil records (California Education Code 49064)</h2>",
        "<p class='small'>Every release of de-identified pupil records made from this vault: who received "
        "what, when, and under which agreement (its legal basis and purpose), with the date the "
        "recipient's signed receipt says it opened the package.</p>",
    ]
    if disclosures:
        parts.append(
            "<table width='100%' cellspacing='0'><tr><th width='10%'>Disclosed (UTC)</th>"
            "<th width='14%'>Recipient</th><th width='15%'>Agreement</th>"
            "<th width='23%'>Legal basis and purpose</th><th width='12%'>Package</th><th width='6%'>Rows</th>"
            "<th width='9%'>Receipt</th><th width='11%'>By</th></tr>"
        )
        for d in disclosures:
            parts.append(
                f"<tr><td>{_e(d.disclosed[:19].replace('T', ' '))}</td>"
                f"<td>{_e(d.recipient)}<br><span class='small'>{_e(d.recipient_fingerprint)}</span></td>"
                f"<td>{_e(d.agreement_title)}<br><span class='small'>{_e(_short(d.agreement_id))} "
                f"v{_e(d.agreement_version or '?')}</span></td>"
                f"<td>{_e(d.legal_basis)}<br><span class='small'>{_e(_clip(d.purpose, 200))}</span></td>"
                f"<td>{_e(d.file)}<br><span class='small'>{_e(_short(d.package_id))} · {d.files} file(s)"
                f"</span></td><td>{d.rows:,}</td>"
                f"<td>{_e(d.delivered[:10]) if d.delivered else 'none'}</td>"
                f"<td>{_e(d.disclosed_by.split(' (', 1)[0])}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No pupil records were disclosed from this vault.</p>")
    counts = Counter(e.action for e in entries)
    parts.append("<h2>Entries by action</h2>")
    if filters:
        parts.append(f"<p class='small'>Filters: {_e(filters)}</p>")
    parts.append("<table cellspacing='0'><tr><th width='220'>Action</th><th width='70'>Entries</th></tr>")
    for action, n in sorted(counts.items()):
        parts.append(f"<tr><td>{_e(action)}</td><td>{n:,}</td></tr>")
    parts.append("</table>")
    shown = list(entries)[-max_entries:]
    parts.append("<h2>Entries</h2>")
    if len(shown) < len(entries):
        parts.append(
            f"<p class='small'>The latest {len(shown):,} of {len(entries):,} entries; the complete log is in "
            "the CSV and signed-bundle exports.</p>"
        )
    bad = verdict.first_bad
    parts.append(
        "<table width='100%' cellspacing='0'><tr><th width='4%'>#</th><th width='10%'>Time (UTC)</th>"
        "<th width='9%'>Who</th><th width='16%'>Action</th><th width='9%'>Agreement</th>"
        "<th width='15%'>Partner</th><th width='8%'>Package</th><th width='28%'>Details</th></tr>"
    )
    for e in shown:
        mark = " class='bad'" if bad is not None and e.seq == bad else ""
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True) if e.details else ""
        parts.append(
            f"<tr{mark}><td>{e.seq}</td><td>{_e(e.time[:19].replace('T', ' '))}</td><td>{_e(e.user)}</td>"
            f"<td>{_e(e.action)}</td><td>{_e(_short(e.agreement))}</td>"
            f"<td>{_e(org_name(names, e.partner) if e.partner else '')}</td><td>{_e(_short(e.package))}</td>"
            f"<td class='small'>{_e(details[:240])}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)


def record_report(vault: Vault, out: str | os.PathLike[str], entries: int, ok: bool) -> None:
    """Audit that a PDF report was written (``audit.report``)."""
    vault.audit.append("audit.report", details={"file": Path(out).name, "entries": entries, "ok": ok})
