"""The audit log in the users' words: one sentence per thing a person did, with organization and
agreement titles, in local time, and the details as labelled values.

The log itself stays as it is (one entry per recorded fact, internal action names, UTC, JSON details):
it is the evidence, and ``audit log --json``, the CSV and the bundle carry it unchanged. This module only
reads it. Several entries that one action of a user writes (preparing a package writes the mapping
check, the sealing, the seal and the prepared record; opening writes the opening and the receipt) are
told as one line: ``story(vault, entries)`` groups them (consecutive, same user, same agreement and
package, in the order the workflow writes them, within ``GROUP_WINDOW``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agreements._audit import AuditEntry
    from agreements._vault import Vault

# Entries further apart than this are never told as one action.
GROUP_WINDOW = timedelta(hours=2)

# action -> (family, stage): an entry joins the line before it when both are of one family and its stage
# is later (so the mapping check and the seal that follows are one line).
_STAGES: dict[str, tuple[str, int]] = {
    "profile.save": ("prepare", 0),
    "mapping.apply": ("prepare", 1),
    "deid.agreement": ("prepare", 1),
    "package.sealing": ("prepare", 3),
    "package.sealed": ("prepare", 4),
    "secret.created": ("prepare", 1),
    "linkage.secret_created": ("prepare", 1),
    "package.prepared": ("prepare", 6),
    "package.prepare_refused": ("prepare", 6),
    "package.seal_refused": ("prepare", 6),
    "package.seal_failed": ("prepare", 6),
    "agreement.signed": ("sign", 0),
    "agreement.imported": ("sign", 0),
    "agreement.joined": ("sign", 0),
    "agreement.executed": ("sign", 1),
    "package.opened": ("open", 0),
    "package.reopened": ("open", 0),
    "package.rejected": ("open", 0),
    "package.receipt_written": ("open", 1),
    "package.destroy_failed": ("destroy", 0),
    "package.certificate_rewritten": ("destroy", 0),
    "package.destroyed": ("destroy", 1),
}

# What Prepare repeats while the clerk goes through its steps (each preview checks the mapping again;
# the first one makes the link-token secret): any number of them, in any order, are one action.
_REPEATABLE = frozenset({"mapping.apply", "deid.agreement", "secret.created", "linkage.secret_created"})

# How much an entry says about what the user did: the line's sentence is its weightiest entry's.
_WEIGHT = {
    "profile.save": 1,
    "mapping.apply": 1,
    "agreement.exported": 1,
    "package.receipt_written": 1,
    "secret.created": 0,
    "linkage.secret_created": 0,
    "package.sealing": 0,
    "agreement.executed": 0,
}

# What each action means, in words. ``{agreement}`` is the agreement's title, ``{partner}`` the
# organization, ``{package}`` the package (its file when known), ``{d[key]}`` a detail.
_SENTENCES: dict[str, str] = {
    "vault.create": "Created this vault",
    "vault.upgrade": "Updated the vault to a newer PathShare",
    "vault.passphrase_change": "Changed the vault's passphrase",
    "vault.tampering": "Found, on opening the vault, that parts of it disagreed with this log",
    "identity.create": "Set up this organization's keys",
    "identity.export_age": "Saved the organization's decryption key to a file",
    "card.export": "Saved this organization's card to share with partners",
    "organization.roles": "Said what this organization does: {roles}",
    "partner.import": "Added {partner}'s card",
    "partner.verify": "Marked {partner} verified after comparing fingerprints",
    "partner.revoke": "Revoked {partner}'s card",
    "agreement.created": "Drafted the agreement “{agreement}”",
    "agreement.signed": "Signed the agreement “{agreement}”",
    "agreement.imported": "Imported a signed copy of “{agreement}”",
    "agreement.executed": "The agreement “{agreement}” is signed by every party and in force",
    "agreement.exported": "Saved “{agreement}” for the other parties to countersign",
    "agreement.amended": "Drafted a new version of “{agreement}”",
    "agreement.terminated": "Ended the agreement “{agreement}”",
    "agreement.joined": "Joined the agreement “{agreement}”",
    "agreement.codebook": "Saved the codebook of “{agreement}”",
    "profile.save": "Saved the column mapping “{d[name]}”",
    "profile.delete": "Deleted the column mapping “{d[name]}”",
    "profile.export": "Saved the column mapping “{d[name]}” to share",
    "profile.import": "Imported the column mapping “{d[name]}”",
    "mapping.apply": "Checked an extract's columns against “{agreement}”",
    "deid.agreement": "De-identified an extract under “{agreement}”",
    "deid.refused": "De-identifying an extract under “{agreement}” was refused",
    "package.sealing": "Began sealing a package under “{agreement}”",
    "package.sealed": "Sealed {package} under “{agreement}”",
    "secret.created": "Made the link-token secret for “{agreement}”",
    "linkage.secret_created": "Made the consortium's linkage secret for “{agreement}”",
    "package.prepared": "Prepared and sealed {package} for {recipients} under “{agreement}”",
    "package.prepare_refused": "Preparing a package under “{agreement}” was refused",
    "package.seal_refused": "Sealing a package under “{agreement}” was refused",
    "package.seal_failed": "Sealing a package under “{agreement}” failed",
    "package.delivered": "{partner} opened {package} and sent a receipt",
    "package.refused_by_recipient": "{partner} refused {package}",
    "package.receipt_rejected": "A receipt was refused",
    "package.opened": "Opened a package from {partner} under “{agreement}”",
    "package.reopened": "Opened a package from {partner} once more",
    "package.rejected": "Refused a package from {partner}",
    "package.receipt_written": "Wrote a receipt for {partner}",
    "package.destroyed": "Destroyed {package} and signed a destruction certificate for {partner}",
    "package.destroy_failed": "Destroying {package} did not finish",
    "package.certificate_rewritten": "Wrote the destruction certificate of {package} again",
    "package.destruction_certified": "{partner} certified that {package} is destroyed",
    "package.certificate_rejected": "A destruction certificate was refused",
    "package.voided": "Voided {package}, which was never sent",
    "package.staging_removed": "Removed what an interrupted opening had left",
    "package.staging_left": "Found what an interrupted opening had left, and could not remove it",
    "package.open_unrecorded": "Found a folder an interrupted opening had written",
    "linkage.key_exported": "Saved the linkage key of “{agreement}” for {partner}",
    "linkage.key_imported": "Imported the linkage key of “{agreement}”",
    "linkage.key_rejected": "A linkage key file was refused",
    "linkage.linked": "Linked {d[file_a]} and {d[file_b]} on their link tokens ({d[linked]} rows linked)",
    "outcomes.released": "Released {d[tables]} outcome table(s) under “{agreement}”",
    "audit.verify": "Verified the audit log",
    "audit.verify_bundle": "Checked an audit bundle from another organization",
    "audit.export": "Exported the audit log as a signed bundle",
    "audit.export_csv": "Exported audit entries as CSV",
    "audit.report": "Wrote the audit report",
    "audit.disclosures_exported": "Exported the record of disclosures",
    "audit.checkpoint": "Wrote a signed checkpoint of the audit log",
    "audit.partner_rewritten": "Found that {partner}'s audit log was rewritten",
    "audit.partner_rollback": "Found that {partner}'s audit log was rolled back",
    "audit.partner_head_unconfirmed": "Could not confirm {partner}'s audit log",
    "outcomes.sealed": "Sealed outcome tables for the partners of “{agreement}” (aggregate data)",
    "outcomes.received": "Opened outcome tables from {partner} under “{agreement}”",
}

# Detail keys as labels; keys not listed are technical (hashes, schema numbers) and shown only with the
# technical details.
_LABELS: dict[str, str] = {
    "title": "Title",
    "version": "Version",
    "file": "File",
    "files": "Files",
    "rows": "Rows",
    "rows_in": "Rows in the extract",
    "rows_out": "Rows released",
    "bytes": "Size",
    "recipients": "Recipients",
    "input": "Extract",
    "k_achieved": "Smallest group",
    "suppressed_cells": "Cells blanked",
    "columns": "Columns",
    "mapped": "Columns mapped",
    "profile": "Column mapping",
    "name": "Name",
    "source_system": "Source system",
    "reason": "Reason",
    "result": "Result",
    "method": "How",
    "destroyed_at": "Destroyed on",
    "org": "Organization",
    "kind": "Kind of organization",
    "verified": "Verified",
    "roles": "Roles",
    "entries": "Entries",
    "ok": "Verified",
    "first_bad": "First bad entry",
    "signatures": "Signatures",
    "new_signatures": "New signatures",
    "errors": "Problems",
    "findings": "Notes",
    "elements": "Elements",
    "scope": "Scope",
    "by": "By",
    "findings_list": "Found",
    "folder": "Folder",
    "deleted": "Files deleted",
    "remaining": "Files left",
    "time": "When",
    "metrics": "Measures",
    "tables": "Tables",
    "hidden_primary": "Small cells hidden",
    "hidden_complementary": "Cells hidden to protect them",
    "min_cell": "Smallest cell shown",
    "disclosure": "Disclosure",
    "file_a": "File A",
    "file_b": "File B",
    "packages": "Packages",
    "agreements": "Agreements",
    "rows_a": "Rows in file A",
    "rows_b": "Rows in file B",
    "linked": "Rows linked",
    "linked_by": "Linked by",
    "output": "Saved as",
}

_ROLE_WORDS = {"send": "sends data", "receive": "receives data", "oversee": "oversees compliance"}


@dataclass(frozen=True)
class StoryLine:
    """One thing a person did, told from one or more audit entries."""

    first: int  # the first and last entry numbers it tells
    last: int
    when: str  # local time, "2026-12-05 13:21"
    who: str  # the OS user
    sentence: str
    details: tuple[tuple[str, str], ...]  # (label, value) for the readable form
    entries: tuple[AuditEntry, ...]
    agreement_title: str = ""
    partner_name: str = ""

    @property
    def seqs(self) -> tuple[int, ...]:
        return tuple(e.seq for e in self.entries)

    def technical(self) -> str:
        """Every entry as recorded (JSON), for "Show technical details"."""
        return "\n\n".join(
            json.dumps(e.to_dict(), ensure_ascii=False, sort_keys=True, indent=1) for e in self.entries
        )


def local_time(iso: str) -> str:
    """An entry's UTC time as this computer's local time, to the minute ("2026-12-05 13:21")."""
    try:
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return t.astimezone().strftime("%Y-%m-%d %H:%M")


def _when(iso: str) -> datetime | None:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


@dataclass(frozen=True)
class Names:
    """What the log's ids stand for: organizations, agreement titles, package files."""

    orgs: Mapping[str, str]
    titles: Mapping[str, str]
    packages: Mapping[str, str]

    def org(self, fingerprint: str | None) -> str:
        if not fingerprint:
            return ""
        return self.orgs.get(fingerprint, "an organization this vault holds no card for")

    def title(self, agreement: str | None) -> str:
        if not agreement:
            return ""
        return self.titles.get(agreement, "an agreement this vault does not hold")

    def package(self, package: str | None, details: Mapping[str, Any]) -> str:
        name = self.packages.get(package or "")
        if name:
            return name
        file = details.get("file") if isinstance(details.get("file"), str) else None
        return f"the package {file}" if file else "a package"


def story_names(vault: Vault) -> Names:
    """Organizations, agreement titles and package files of this vault (one read each)."""
    from pathlib import Path

    from agreements._compliance import agreement_titles, organization_names

    rows = vault.db.execute("SELECT package_id, direction, location FROM packages").fetchall()
    packages = {
        pid: (
            f"the package {Path(location).name}"
            if direction == "sent"
            else f"the package opened into the folder {Path(location).name}"
        )
        for pid, direction, location in rows
        if location
    }
    return Names(organization_names(vault), agreement_titles(vault), packages)


def _value(key: str, value: Any, n: Names) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "bytes" and isinstance(value, int):
        return _size(value)
    if key in ("recipients", "new_signatures", "by") and isinstance(value, (list, tuple, str)):
        items = [value] if isinstance(value, str) else list(value)
        return ", ".join(n.orgs.get(str(v), str(v)) for v in items)
    if key == "roles" and isinstance(value, list):
        return ", ".join(_ROLE_WORDS.get(str(v), str(v)) for v in value)
    if key == "packages" and isinstance(value, list):
        return ", ".join(n.package(str(v), {}).removeprefix("the package ") for v in value)
    if key == "agreements" and isinstance(value, list):
        return ", ".join(n.title(str(v)) for v in value)
    if key == "linked_by" and isinstance(value, dict):
        return (f"{value.get('id', 0):,} by the state ID, "
                f"{value.get('derived', 0):,} by name and birth date")  # fmt: skip
    if key == "columns" and isinstance(value, list):
        return f"{len(value)}: " + ", ".join(str(v) for v in value)
    if key in ("time", "destroyed_at") and isinstance(value, str) and "T" in value:
        return local_time(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def entry_details(entry: AuditEntry, n: Names) -> list[tuple[str, str]]:
    """An entry's details as (label, value): organizations and titles by name, hashes left out."""
    out: list[tuple[str, str]] = []
    if entry.agreement:
        out.append(("Agreement", n.title(entry.agreement)))
    if entry.partner:
        out.append(("Organization", n.org(entry.partner)))
    if entry.package:
        out.append(("Package", n.package(entry.package, entry.details).removeprefix("the package ")))
    for key, value in entry.details.items():
        if key == "findings" and isinstance(value, list):
            out.append(("Found", "; ".join(str(v) for v in value)))
        elif key in _LABELS and value not in (None, "", [], {}):
            out.append((_LABELS[key], _value(key, value, n)))
    return out


class _Fields(dict):  # type: ignore[type-arg]
    """Format fields for a sentence: a missing detail reads as a blank, never a KeyError."""

    def __missing__(self, key: str) -> str:
        return ""


def entry_sentence(entry: AuditEntry, n: Names, more: Mapping[str, Any] | None = None) -> str:
    """What one entry records, in words (``more``: details of the entries told with it, which fill what
    this one lacks, such as the recipients the seal recorded)."""
    action = entry.action
    refused = action.endswith(".refused")
    base = action.removesuffix(".refused")
    template = _SENTENCES.get(base)
    d = {**(more or {}), **entry.details}
    recipients = d.get("recipients") if isinstance(d.get("recipients"), list) else []
    fields = _Fields(
        agreement=n.title(entry.agreement) or "an agreement",
        partner=n.org(entry.partner) or "a partner",
        package=n.package(entry.package, d),
        recipients=", ".join(n.orgs.get(str(r), str(r)) for r in recipients) or "its recipients",
        roles=_value("roles", d.get("roles", []), n),
        d=_Fields({k: v for k, v in d.items() if isinstance(v, (str, int, float))}),
    )
    if template is None:
        words = base.replace("_", " ").replace(".", ": ")
        text = f"Recorded “{words}”"
    else:
        text = template.format_map(fields)
    if refused:
        reason = d.get("reason")
        text = f"Refused: {text[0].lower()}{text[1:]}" + (f" ({reason})" if isinstance(reason, str) else "")
    elif action in ("audit.verify", "audit.verify_bundle", "audit.report") and d.get("ok") is False:
        text += " — it did NOT verify"
    elif action in ("package.rejected", "package.refused_by_recipient") and isinstance(d.get("reason"), str):
        text += f": {d['reason']}"
    return text + "."


def _joins(line: list[AuditEntry], e: AuditEntry) -> bool:
    last = line[-1]
    here, there = _STAGES.get(e.action), _STAGES.get(last.action)
    if here is None or there is None or here[0] != there[0]:
        return False
    if not (here[1] > there[1] or (e.action in _REPEATABLE and last.action in _REPEATABLE)):
        return False  # two signatures, two seals, are two actions
    if e.user != last.user:
        return False
    if e.agreement and last.agreement and e.agreement != last.agreement:
        return False
    if e.package and last.package and e.package != last.package:
        return False
    t0, t1 = _when(last.time), _when(e.time)
    return t0 is not None and t1 is not None and timedelta(0) <= t1 - t0 <= GROUP_WINDOW


def group_entries(entries: Iterable[AuditEntry]) -> list[list[AuditEntry]]:
    """Entries (any order) grouped into the actions of a person, oldest first."""
    groups: list[list[AuditEntry]] = []
    for e in sorted(entries, key=lambda x: x.seq):
        if groups and _joins(groups[-1], e):
            groups[-1].append(e)
        else:
            groups.append([e])
    return groups


def story(vault: Vault | None, entries: Sequence[AuditEntry], known: Names | None = None) -> list[StoryLine]:
    """The entries as lines, one per action of a person, oldest first (``known`` when the caller already
    read this vault's names; a bundle from elsewhere is told with what this vault knows)."""
    n = known or (story_names(vault) if vault is not None else Names({}, {}, {}))
    lines = []
    for group in group_entries(entries):
        main = max(group, key=lambda e: (_WEIGHT.get(e.action, 2), e.seq))
        details: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        for e in [main, *[x for x in group if x is not main]]:
            for pair in entry_details(e, n):
                if pair not in seen and pair[0] not in {label for label, _ in details}:
                    seen.add(pair)
                    details.append(pair)
        if len(group) > 1:
            details.append(("Recorded as", f"{len(group)} entries (#{group[0].seq}–#{group[-1].seq})"))
        agreement = next((e.agreement for e in group if e.agreement), None)
        partner = next((e.partner for e in group if e.partner), None)
        lines.append(
            StoryLine(
                first=group[0].seq,
                last=group[-1].seq,
                when=local_time(group[0].time),
                who=group[0].user,
                sentence=entry_sentence(main, n, {k: v for e in group for k, v in e.details.items()}),
                details=tuple(details),
                entries=tuple(group),
                agreement_title=n.title(agreement),
                partner_name=n.org(partner),
            )
        )
    return lines


def action_label(action: str) -> str:
    """An action name as a filter choice shows it ("Sealed a package", not ``package.sealed``)."""
    template = _SENTENCES.get(action.removesuffix(".refused"))
    if template is None:
        return action
    generic = template.format_map(
        _Fields(agreement="an agreement", partner="a partner", package="a package", recipients="recipients",
                roles="…", d=_Fields(name="…"))
    )
    generic = generic.replace("“an agreement”", "an agreement")
    return generic + (" (refused)" if action.endswith(".refused") else "")

