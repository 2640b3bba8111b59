"""The compliance officer's queries, shared by the desktop screens and the CLI.

* :func:`dashboard` — agreements expiring soon, packages past their destruction deadline without a
  certificate, packages sent without a receipt; :func:`overview` — the dashboard's counts.
* :func:`disclosure_record` — the record of disclosures of pupil records that California Education
  Code 49064 asks a district to keep (who received what, when, under which agreement), built from the
  audit log's ``package.sealed`` / ``package.delivered`` entries and the package store;
  :func:`write_disclosures_csv` writes it.
* :func:`key_conflicts` — organizations known under more than one key.

The audit log's reports are in :mod:`agreements._audit_reports`, the agreement form's helpers in
:mod:`agreements._drafting`, what the lists call a status in :mod:`agreements._list_labels`.
No Qt here: the desktop layer only draws what these return.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._audit import PartnerLogProblem, partner_log_problems
from agreements._list_labels import AGREEMENT_GROUPS, EXPIRING_DAYS, RECEIVED_GROUPS, SENT_GROUPS, status_key
from deid.errors import PathShareError

if TYPE_CHECKING:
    from agreements._agreement_store import AgreementSummary
    from agreements._partners import Partner
    from agreements._vault import Vault

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


def org_name(names: Mapping[str, str], fingerprint: str) -> str:
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


def agreement_titles(vault: Vault) -> dict[str, str]:
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
    from agreements._package_store import list_packages, outstanding_past_deadline
    from agreements._recorded import SENT

    today = today or date.today()
    names, titles = organization_names(vault), agreement_titles(vault)
    past = [
        PackageDue(
            package_id=rec.package_id,
            agreement_id=rec.agreement_id,
            agreement_title=titles.get(rec.agreement_hash, titles.get(rec.agreement_id, "")),
            sent=rec.recorded,
            file=Path(rec.location).name,
            # a recipient that refused the package never held its data: it owes no certificate
            missing=tuple(
                org_name(names, r)
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
            missing=tuple(org_name(names, r) for r in rec.recipients if r not in rec.delivered_to),
            refused=tuple((org_name(names, r), reason) for r, reason in rec.refused),
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
    from agreements._package_store import get_package
    from agreements._recorded import SENT
    from agreements._stored_agreements import agreement_by_hash
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
                    recipient=org_name(names, str(fp)),
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


def _cell(value: Any) -> Any:
    # A text cell starting like a formula would run as one in Excel (CSV injection): deid's one rule.
    from deid import spreadsheet_safe

    return "" if value is None else spreadsheet_safe(value)


def write_csv(
    vault: Vault,
    out: str | os.PathLike[str],
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    force: bool,
) -> int:
    from agreements._recorded import output_rule
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
    n = write_csv(
        vault, out, DISCLOSURE_FIELDS, ([d.to_dict()[k] for k in DISCLOSURE_FIELDS] for d in rows), force
    )
    vault.audit.append("audit.disclosures_exported", details={"file": Path(out).name, "rows": n})
    return n


# ------------------------------------------------------------------------------------------ partners


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


# ------------------------------------------------------------------------------------------ overview


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
    from agreements._package_store import list_packages
    from agreements._recorded import RECEIVED, SENT

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
