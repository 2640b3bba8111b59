"""The compliance officer's queries and reports, shared by the desktop screens and the CLI.

* :func:`dashboard` — agreements expiring soon, packages past their destruction deadline without a
  certificate, packages sent without a receipt.
* :func:`disclosure_record` — the record of disclosures of pupil records that California Education
  Code 49064 asks a district to keep (who received what, when, under which agreement), built from the
  audit log's ``package.sealed`` / ``package.delivered`` entries and the package store;
  :func:`write_disclosures_csv` writes it.
* :func:`write_audit_csv`, :func:`audit_report_html` — the audit log as CSV and as the HTML that
  ``desktop/pdf.py`` lays out as a PDF report; :func:`verify_log` and :func:`check_bundle` verify the
  log or a bundle from another machine (and record that they did).
* Drafting helpers for the agreement form: :func:`blank_terms`, :func:`library_entry` (an element of
  the element library as an agreement element), :func:`parse_parameters` / :func:`format_parameters`,
  and :func:`check_draft` (the first problem of a draft, with the field it concerns).
* :func:`status_label` and :func:`key_conflicts` — what the agreements and partners lists show.

No Qt here: the desktop layer only draws what these return.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._audit import PartnerLogProblem, partner_log_problems
from agreements.errors import AgreementError, AuditError, PartnerError
from deid.errors import PathShareError

if TYPE_CHECKING:
    from agreements._agreement_store import AgreementSummary
    from agreements._audit import AuditEntry, AuditVerdict
    from agreements._cards import Card
    from agreements._partners import Partner
    from agreements._vault import Vault

EXPIRING_DAYS = 60  # the dashboard's horizon for "expiring soon"

# ------------------------------------------------------------------------------------------- names


def organization_names(vault: Vault) -> dict[str, str]:
    """Card fingerprint -> organization name, for every partner and ourselves."""
    from agreements._identity import our_card
    from agreements._partners import list_partners

    out = {p.fingerprint: p.org for p in list_partners(vault)}
    try:
        me = our_card(vault)
        out[me.fingerprint()] = me.org
    except PathShareError:
        pass
    return out


def _org(names: Mapping[str, str], fingerprint: str) -> str:
    return names.get(fingerprint, fingerprint)


# --------------------------------------------------------------------------------------- dashboard


@dataclass(frozen=True)
class PackageDue:
    """A sent package the dashboard flags: past its destruction deadline, or without a receipt."""

    package_id: str
    agreement_id: str
    agreement_title: str
    sent: str  # when we recorded it (ISO time)
    file: str  # the package file's name
    missing: tuple[str, ...]  # organizations whose certificate (or "opened" receipt) we do not hold
    deadline: str = ""  # destruction deadline (YYYY-MM-DD), for packages past it
    refused: tuple[tuple[str, str], ...] = ()  # (organization, its refusal sentence), from rejected receipts

    def to_dict(self) -> dict[str, Any]:
        return {
            "package_id": self.package_id,
            "agreement_id": self.agreement_id,
            "agreement_title": self.agreement_title,
            "sent": self.sent,
            "file": self.file,
            "missing": list(self.missing),
            "deadline": self.deadline,
            "refused": [{"organization": org, "reason": reason} for org, reason in self.refused],
        }


@dataclass(frozen=True)
class Dashboard:
    """What needs the compliance officer's attention today."""

    today: date
    days: int
    expiring: list[AgreementSummary]
    past_deadline: list[PackageDue]
    without_receipt: list[PackageDue]
    # Partners whose audit log was found rewritten or rolled back (what they signed for us earlier no
    # longer holds): their packages, receipts and certificates deserve a second look.
    partner_logs: list[PartnerLogProblem] = field(default_factory=list)
    # Tampering with this vault found when it was opened ("DATE: finding"), see agreements/_integrity.py.
    tampering: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "days": self.days,
            "expiring": [s.to_dict() for s in self.expiring],
            "past_deadline": [p.to_dict() for p in self.past_deadline],
            "without_receipt": [p.to_dict() for p in self.without_receipt],
            "partner_logs": [
                {"time": p.time, "partner": p.partner, "action": p.action, "reason": p.reason}
                for p in self.partner_logs
            ],
            "tampering": list(self.tampering),
        }


def _titles(vault: Vault) -> dict[str, str]:
    """Agreement hash -> title, and agreement id -> title of its latest version."""
    out: dict[str, str] = {}
    for sha, aid, title in vault.db.execute("SELECT sha256, id, title FROM agreements ORDER BY version"):
        out[sha] = title
        out[aid] = title
    return out


def dashboard(vault: Vault, today: date | None = None, days: int = EXPIRING_DAYS) -> Dashboard:
    """Agreements in force that end within ``days`` days; sent packages past their agreement's
    destruction deadline without every recipient's destruction certificate; sent packages for which
    some recipient's receipt has not come back."""
    from agreements._agreement_store import expiring_agreements
    from agreements._package_store import SENT, list_packages, outstanding_past_deadline

    today = today or date.today()
    names, titles = organization_names(vault), _titles(vault)
    past = [
        PackageDue(
            package_id=rec.package_id,
            agreement_id=rec.agreement_id,
            agreement_title=titles.get(rec.agreement_hash, titles.get(rec.agreement_id, "")),
            sent=rec.recorded,
            file=Path(rec.location).name,
            # a recipient that refused the package never held its data: it owes no certificate
            missing=tuple(
                _org(names, r)
                for r in rec.recipients
                if r not in rec.destroyed_by and r not in rec.refused_by
            ),
            deadline=deadline,
        )
        for rec, deadline in outstanding_past_deadline(vault, today)
    ]
    unreceipted = [
        PackageDue(
            package_id=rec.package_id,
            agreement_id=rec.agreement_id,
            agreement_title=titles.get(rec.agreement_hash, titles.get(rec.agreement_id, "")),
            sent=rec.recorded,
            file=Path(rec.location).name,
            missing=tuple(_org(names, r) for r in rec.recipients if r not in rec.delivered_to),
            refused=tuple((_org(names, r), reason) for r, reason in rec.refused),
        )
        for rec in list_packages(vault, SENT)
        # a voided package never left: no receipt is owed for it
        if set(rec.recipients) - set(rec.delivered_to) and not rec.voided
    ]
    from agreements._integrity import past_tampering

    return Dashboard(
        today,
        days,
        expiring_agreements(vault, days, today),
        past,
        unreceipted,
        partner_log_problems(vault),
        past_tampering(vault),
    )


# ---------------------------------------------------------------------- Ed Code 49064 disclosures


@dataclass(frozen=True)
class Disclosure:
    """One disclosure of pupil records to one recipient (California Education Code 49064)."""

    disclosed: str  # when the package was sealed for the recipient (ISO time, UTC)
    recipient: str  # the organization that received the records
    recipient_fingerprint: str
    agreement_id: str
    agreement_title: str
    agreement_version: int | None
    legal_basis: str  # the provision relied on (the legitimate interest / authority)
    purpose: str
    package_id: str
    file: str
    files: int
    rows: int
    delivered: str  # when the recipient's receipt says it opened the package ("" without a receipt)
    disclosed_by: str  # the audit actor: OS user (organization)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in DISCLOSURE_FIELDS}


DISCLOSURE_FIELDS = (
    "disclosed",
    "recipient",
    "recipient_fingerprint",
    "agreement_id",
    "agreement_title",
    "agreement_version",
    "legal_basis",
    "purpose",
    "package_id",
    "file",
    "files",
    "rows",
    "delivered",
    "disclosed_by",
)


def disclosure_record(
    vault: Vault, *, since: str | date | None = None, until: str | date | None = None
) -> list[Disclosure]:
    """Every disclosure this organization made, oldest first: one row per package and recipient.

    Built from the audit log (``package.sealed``: what, when, to whom, by whom; ``package.delivered``:
    the recipient's receipt) and the vault's agreements (title, version, legal basis, purpose), so it
    holds only what the tamper-evident log holds. A package voided because it never left
    (``package.voided``, no receipt) is not a disclosure and is left out.
    """
    from agreements._agreement import LEGAL_BASES
    from agreements._agreement_store import agreement_by_hash
    from agreements._package_store import SENT, get_package
    from agreements.errors import PackageRejected

    names = organization_names(vault)
    delivered: dict[tuple[str, str], str] = {}
    for e in vault.audit.entries(action="package.delivered"):
        if e.package and e.partner:
            delivered[(e.package, e.partner)] = str(e.details.get("time") or e.time)
    out: list[Disclosure] = []
    agreements: dict[str, Any] = {}
    for e in vault.audit.entries(action="package.sealed", since=since, until=until):
        details = e.details
        title, version, basis, purpose = "", None, "", ""
        try:
            record = get_package(vault, e.package or "", SENT)
            sha = record.agreement_hash
        except PackageRejected:
            sha = ""
        else:
            if record.voided:  # sealed but never sent (`pathshare void`): not a disclosure
                continue
        if sha and sha not in agreements:
            agreements[sha] = agreement_by_hash(vault, sha)
        a = agreements.get(sha)
        if a is not None:
            title, version = a.title, a.version
            lb = a.terms.legal_basis
            label = LEGAL_BASES.get(lb.basis, lb.basis)
            # The form suggests the provision's own text as the citation: do not say it twice.
            basis = label if lb.citation.strip() in label else f"{label}: {lb.citation}"
            purpose = a.terms.purpose
        recipients = details.get("recipients") or []
        for fp in recipients if isinstance(recipients, list) else []:
            out.append(
                Disclosure(
                    disclosed=e.time,
                    recipient=_org(names, str(fp)),
                    recipient_fingerprint=str(fp),
                    agreement_id=e.agreement or "",
                    agreement_title=title,
                    agreement_version=version,
                    legal_basis=basis,
                    purpose=purpose,
                    package_id=e.package or "",
                    file=str(details.get("file", "")),
                    files=int(details.get("files", 0) or 0),
                    rows=int(details.get("rows", 0) or 0),
                    delivered=delivered.get((e.package or "", str(fp)), ""),
                    disclosed_by=e.actor,
                )
            )
    return out


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    # A text cell starting like a formula would run as one in Excel (CSV injection): quote it so it
    # shows as text. Numbers are left alone.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _write_csv(
    vault: Vault,
    out: str | os.PathLike[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    force: bool,
) -> int:
    from agreements._package_store import output_rule
    from deid import atomic_path

    n = 0
    rule = output_rule(vault)
    with (
        atomic_path(out, 0o600, force=force, recorded=rule) as tmp,
        open(tmp, "w", encoding="utf-8-sig", newline="") as fh,
    ):
        # utf-8-sig: Excel opens the file as UTF-8 (organization names with accents stay readable).
        writer = csv.writer(fh, dialect="excel")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
            n += 1
    return n


def write_disclosures_csv(
    vault: Vault,
    out: str | os.PathLike[str],
    disclosures: Sequence[Disclosure] | None = None,
    *,
    force: bool = False,
) -> int:
    """Write the disclosure record as CSV (atomically; an existing file replaced only with ``force``);
    audited as ``audit.disclosures_exported``. Returns the number of rows."""
    rows = disclosure_record(vault) if disclosures is None else list(disclosures)
    n = _write_csv(
        vault, out, DISCLOSURE_FIELDS, ([d.to_dict()[k] for k in DISCLOSURE_FIELDS] for d in rows), force
    )
    vault.audit.append("audit.disclosures_exported", details={"file": Path(out).name, "rows": n})
    return n


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
    n = _write_csv(vault, out, AUDIT_CSV_FIELDS, rows, force)
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


def write_checkpoint(
    vault: Vault, out: str | os.PathLike[str] | None = None, *, force: bool = False
) -> str:
    """A signed checkpoint of the log's head (``audit checkpoint`` and its callers), recorded in the log
    (``audit.checkpoint``); written to ``out`` when given (never over a file the vault recorded; an
    existing file only with ``force``). Returns the checkpoint text."""
    from agreements._package_store import output_rule
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
            f"<td>{_e(_org(names, e.partner) if e.partner else '')}</td><td>{_e(_short(e.package))}</td>"
            f"<td class='small'>{_e(details[:240])}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "".join(parts)


def record_report(vault: Vault, out: str | os.PathLike[str], entries: int, ok: bool) -> None:
    """Audit that a PDF report was written (``audit.report``)."""
    vault.audit.append("audit.report", details={"file": Path(out).name, "entries": entries, "ok": ok})


# -------------------------------------------------------------------------------- partners, status


def key_conflicts(vault: Vault) -> list[tuple[str, list[Partner]]]:
    """Organizations known under more than one unrevoked key: (org, partners, newest first).

    Such a card may be an impersonation; the partners screen shows a loud warning until the officer
    revokes the key that is not the organization's own (after checking by phone).
    """
    from agreements._partners import list_partners, same_name

    groups: list[list[Partner]] = []  # names that pass for each other (same_name), a handful of partners
    for p in list_partners(vault):
        if not p.revoked:
            group = next((g for g in groups if any(same_name(q.org, p.org) for q in g)), None)
            if group is None:
                groups.append([p])
            else:
                group.append(p)
    return [
        (ps[0].org, sorted(ps, key=lambda p: p.imported, reverse=True))
        for ps in groups
        if len({p.card.signing_key for p in ps}) > 1
    ]


STATUS_FILTERS = ("all", "draft", "awaiting", "executed", "expiring", "expired", "terminated")


def status_label(summary: AgreementSummary, today: date | None = None, days: int = EXPIRING_DAYS) -> str:
    """What the agreements list shows: draft · awaiting signatures — whose · executed · expiring soon
    (in N days) · expired · terminated · superseded · executed, in effect from DATE."""
    today = today or date.today()
    s = summary.status
    if s == "draft":
        return "draft (unsigned)"
    if s == "proposed":
        return "awaiting signatures — " + ", ".join(summary.awaiting)
    if s == "executed":
        if today < summary.effective:
            return f"executed, in effect from {summary.effective.isoformat()}"
        left = (summary.expires - today).days
        if left <= days:
            return f"expiring soon — in {left} day{'s' if left != 1 else ''}"
        return "executed"
    return s


def status_key(summary: AgreementSummary, today: date | None = None, days: int = EXPIRING_DAYS) -> str:
    """The filter a summary belongs to (one of ``STATUS_FILTERS`` but "all")."""
    today = today or date.today()
    if summary.status == "proposed":
        return "awaiting"
    if summary.status == "executed" and summary.effective <= today and (summary.expires - today).days <= days:
        return "expiring"
    return summary.status


AGREEMENT_GROUPS = (
    ("draft", "Drafts"),
    ("awaiting", "Awaiting signatures"),
    ("executed", "In force"),
    ("expiring", f"Ending within {EXPIRING_DAYS} days"),
    ("expired", "Expired"),
    ("terminated", "Terminated"),
)


# PackageRecord.state -> the chart's short label (the lists say more: STATE_LABELS).
SENT_GROUPS = (
    ("open", "No receipt yet"),
    ("delivered", "Delivered"),
    ("refused", "Refused"),
    ("closed", "Destroyed"),
    ("void", "Void"),
)
RECEIVED_GROUPS = (("open", "Not yet destroyed"), ("closed", "Destroyed"))


@dataclass(frozen=True)
class Overview:
    """The dashboard's counts: agreements by status (latest version of each), packages by where they
    stand, each as (label, count) in a fixed order (the chart's bars), zeros included."""

    agreements: tuple[tuple[str, int], ...]
    sent: tuple[tuple[str, int], ...]
    received: tuple[tuple[str, int], ...]

    @property
    def totals(self) -> dict[str, int]:
        return {
            "agreements": sum(n for _, n in self.agreements),
            "sent": sum(n for _, n in self.sent),
            "received": sum(n for _, n in self.received),
        }


def overview(vault: Vault, today: date | None = None) -> Overview:
    """Count agreements by status and packages by state (the same rules as the lists: status_key,
    PackageRecord.state)."""
    from agreements._agreement_store import list_agreements
    from agreements._package_store import RECEIVED, SENT, list_packages

    today = today or date.today()
    by_status: dict[str, int] = {}
    for summary in list_agreements(vault):
        key = status_key(summary, today)
        by_status[key] = by_status.get(key, 0) + 1
    packages = list_packages(vault)

    def states(direction: str, order: tuple[tuple[str, str], ...]) -> tuple[tuple[str, int], ...]:
        counts = {state: 0 for state, _ in order}
        for record in packages:
            if record.direction == direction and record.state in counts:
                counts[record.state] += 1
        return tuple((label, counts[state]) for state, label in order)

    return Overview(
        agreements=tuple((label, by_status.get(key, 0)) for key, label in AGREEMENT_GROUPS),
        sent=states(SENT, SENT_GROUPS),
        received=states(RECEIVED, RECEIVED_GROUPS),
    )


# ---------------------------------------------------------------------------------- drafting helpers


def blank_terms(vault: Vault, today: date | None = None) -> dict[str, Any]:
    """A new draft's starting terms: this organization as provider, one year from today, the policy
    defaults (k = 11, cells of at least 11, provider-held linkage), everything else to fill in."""
    from agreements._agreement import LEGAL_BASES
    from agreements._identity import our_card

    today = today or date.today()
    me = our_card(vault)
    expires = date(today.year + 1, today.month, min(today.day, 28)) - timedelta(days=1)
    return {
        "pathshare_agreement": 1,
        "title": "",
        "parties": [
            {
                "fingerprint": me.fingerprint(),
                "org": me.org,
                "kind": me.kind,
                "roles": ["provider"],
                "authorized_representative": {"name": "", "title": "", "email": ""},
            }
        ],
        "legal_basis": {
            "basis": "ferpa_studies_99_31_a_6",
            "citation": LEGAL_BASES["ferpa_studies_99_31_a_6"],
        },
        "purpose": "",
        "activity": "",
        "scope": {"cohorts": [], "school_years": [], "description": None},
        "effective": today.isoformat(),
        "expires": expires.isoformat(),
        "elements": [],
        "policy": {
            "k": 11,
            "quasi_identifiers": [],
            "min_cell_size": 11,
            "drop_unlisted": True,
            "linkage_scope": "provider",
            "parameters": {},
        },
        "destruction": {"deadline": (expires + timedelta(days=90)).isoformat(), "method": ""},
        "redisclosure": "",
        "security_requirements": [],
        "breach_notice_contact": {"name": "", "email": "", "phone": None},
        "general_offer": False,
    }


@dataclass(frozen=True)
class LibraryEntry:
    """A library element as an agreement takes it: the element entry, its treatment parameters, and
    whether it is a quasi-identifier by default."""

    element: dict[str, Any]
    parameters: dict[str, Any]
    quasi_identifier: bool
    label: str
    category: str


def library_entry(name: str) -> LibraryEntry:
    """The element library's ``name`` as an agreement element with its default treatment.

    A library element of type ``code`` without a closed code set (school ids, course ids) is offered as
    ``string``: an agreement's ``code`` elements must list their codes (add them to make it a code)."""
    from deid import element_library

    lib = element_library()
    if name not in lib:
        raise AgreementError(f"The element library has no element called {name}.")
    el = lib[name]
    treatment = dict(el.treatment)
    kind = str(treatment.pop("treatment", "keep"))
    code_set = None
    if el.code_set:
        code_set = {"name": el.code_set_name or el.label, "codes": {c.code: c.label for c in el.code_set}}
    etype = el.type if (el.type != "code" or code_set) else "string"
    entry = {
        "name": el.name,
        "type": etype,
        "code_set": code_set,
        "description": el.description or el.label,
        "treatment": kind,
    }
    return LibraryEntry(
        element=entry,
        parameters=treatment,
        quasi_identifier=el.quasi_identifier and kind != "drop",
        label=el.label,
        category=el.category,
    )


def library_elements() -> list[dict[str, str]]:
    """The element library for the picker: name, label, type, category, domain, default treatment."""
    from deid import element_library

    return [
        {
            "name": el.name,
            "label": el.label,
            "type": el.type,
            "category": el.category,
            "domain": el.domain,
            "treatment": str(dict(el.treatment).get("treatment", "keep")),
            "parameters": format_parameters({k: v for k, v in el.treatment.items() if k != "treatment"}),
            "description": el.description,
        }
        for el in element_library().values()
    ]


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def _value(text: str) -> Any:
    text = text.strip()
    if _NUMBER.match(text):
        return float(text) if "." in text else int(text)
    return text


def parse_parameters(text: str) -> dict[str, Any]:
    """Treatment parameters as a person types them: ``to=year; as=birth_year``, ``edges=0, 1, 2.5``.

    Numbers become numbers; a value with commas becomes a list (``edges``, ``from``). AgreementError
    names a part without ``=``."""
    out: dict[str, Any] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AgreementError(f"The parameter {part!r} needs the form name=value (e.g. to=year).")
        if key in ("edges", "from") or "," in value:
            out[key] = [_value(v) for v in value.split(",") if v.strip()]
        else:
            out[key] = _value(value)
    return out


def format_parameters(params: Mapping[str, Any]) -> str:
    """The inverse of :func:`parse_parameters`."""
    parts = []
    for key, value in params.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return "; ".join(parts)


def parse_code_set(text: str) -> dict[str, Any] | None:
    """A code set as the form writes it: ``CALPADS Gender Code: F=Female; M=Male`` (None when empty).
    Without a name before ``:``, the set is called "Codes". AgreementError names a code without ``=``."""
    text = text.strip()
    if not text:
        return None
    name, sep, rest = text.partition(":")
    if not sep or "=" in name:
        name, rest = "Codes", text
    codes: dict[str, str] = {}
    for part in (p.strip() for p in rest.split(";")):
        if not part:
            continue
        code, eq, label = part.partition("=")
        if not eq or not code.strip():
            raise AgreementError(f"The code {part!r} needs the form CODE=Label (e.g. F=Female).")
        codes[code.strip()] = label.strip() or code.strip()
    return {"name": name.strip() or "Codes", "codes": codes}


def format_code_set(code_set: Mapping[str, Any] | None) -> str:
    """The inverse of :func:`parse_code_set`."""
    if not code_set:
        return ""
    codes = "; ".join(f"{k}={v}" for k, v in dict(code_set.get("codes") or {}).items())
    return f"{code_set.get('name', 'Codes')}: {codes}"


@dataclass(frozen=True)
class DraftProblem:
    """The first problem of a draft: the field it concerns (dotted path, e.g. ``parties[1].roles``)
    and one sentence."""

    field: str
    message: str


# How the form calls a field in messages (other fields are named by their path).
_FIELD_LABELS = {
    "title": "the title",
    "parties": "the parties (a provider and a recipient)",
    "purpose": "the purpose",
    "activity": "the activity",
    "scope.cohorts": "the cohorts",
    "scope.school_years": "the school years",
    "legal_basis.citation": "the citation of the legal basis",
    "elements": "the data elements",
    "destruction.method": "the destruction method",
    "redisclosure": "the re-disclosure prohibition",
    "security_requirements": "the security requirements",
    "breach_notice_contact.name": "the breach-notice contact's name",
    "breach_notice_contact.email": "the breach-notice contact's e-mail",
}


_PART_WORDS = {
    "roles": "the roles",
    "description": "the description",
    "name": "the name",
    "type": "the type",
    "code_set": "the code set",
}


def _field_label(where: str, body: Mapping[str, Any]) -> str:
    """How a person calls the field at ``where``: "the e-mail of who signs for party 2 (Riverbend CC)"."""
    if where in _FIELD_LABELS:
        return _FIELD_LABELS[where]
    m = re.match(r"^(parties|elements)\[(\d+)\]\.(.+)$", where)
    if m:
        kind, i, rest = m.group(1), int(m.group(2)), m.group(3)
        items = body.get(kind) if isinstance(body.get(kind), list) else []
        item = items[i] if i < len(items) and isinstance(items[i], dict) else {}
        who = item.get("org") or item.get("name") or ""
        noun = "party" if kind == "parties" else "element"
        subject = f"{noun} {i + 1}" + (f" ({who})" if who else "")
        if rest.startswith("authorized_representative."):
            field = rest.split(".", 1)[1].replace("email", "e-mail")
            return f"the {field} of the person signing for {subject}"
        return f"{_PART_WORDS.get(rest, rest.replace('_', ' '))} of {subject}"
    return where


def check_draft(vault: Vault, terms: Mapping[str, Any]) -> DraftProblem | None:
    """Validate a draft the way :func:`create_agreement` will, without storing anything: parties are
    completed from their cards, then the schema and the consistency rules are checked. Returns the first
    problem, or None when the draft can be saved."""
    from pydantic import ValidationError

    from agreements._agreement import Terms, _check_terms, _loc, _validation_sentence
    from agreements._agreement_store import _fill_parties
    from agreements._identity import our_card

    body = json.loads(json.dumps(dict(terms)))
    body.setdefault("id", str(uuid.uuid4()))
    body["version"], body["previous"] = 1, None  # the store sets these (amendments too)
    me = our_card(vault)
    try:
        _fill_parties(vault, me, body, "The draft")
    except (AgreementError, PartnerError) as exc:
        return DraftProblem("parties", str(exc))
    try:
        parsed = Terms.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _loc(first["loc"])
        label = _field_label(where, body)
        if first["type"] == "string_too_short":
            return DraftProblem(where, f"The draft is not complete: {label} must be filled in.")
        if first["type"] == "too_short":
            need = (first.get("ctx") or {}).get("min_length", 1)
            entries = "entry" if need == 1 else "entries"
            return DraftProblem(where, f"The draft is not complete: {label} needs at least {need} {entries}.")
        if first["type"] == "string_pattern_mismatch" and where.endswith("email"):
            return DraftProblem(where, f"The draft is not valid: {label} is not an e-mail address.")
        if first["type"] == "string_pattern_mismatch" and where.startswith("scope.school_years"):
            return DraftProblem(
                "scope.school_years", "The draft is not valid: write each school year like 2024-25."
            )
        return DraftProblem(where, _validation_sentence(exc, "The draft"))
    try:
        _check_terms(parsed, "The draft")
    except AgreementError as exc:
        return DraftProblem(exc.field, str(exc))  # the check names the term it is about
    if not any(p.fingerprint == me.fingerprint() for p in parsed.parties):
        return DraftProblem("parties", "The draft does not name your organization as a party.")
    return None


def terms_of(agreement: Any) -> dict[str, Any]:
    """A copy of an agreement's terms to edit (for an amendment or a corrected draft)."""
    return copy.deepcopy(dict(agreement.body))
