"""Mapping profiles in the vault: a confirmed column mapping per source system, reused automatically.

A profile (:class:`deid.MappingProfile`: column -> element, value recodes, date formats, header
signature) is saved under a name ("Aeries export", "Colleague MIS"). When an export with the same header
set comes back, :func:`profile_for_headers` finds it. Profiles are exported and imported as JSON files
so a consortium can share them; they hold column names and code spellings, never student data.
Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._clock import utc_now
from deid import read_json_file, write_bytes_atomic
from deid.errors import PolicyError

if TYPE_CHECKING:  # mapping pulls in pyarrow: imported where used, so `import agreements` stays light
    from agreements._vault import Vault
    from deid import MappingProfile

MAX_PROFILE_BYTES = 5_000_000


def _from_row(document: str, name: str) -> MappingProfile:
    from deid import MappingProfile

    return MappingProfile.from_dict(json.loads(document), f"the saved mapping profile '{name}'")


def save_profile(vault: Vault, profile: MappingProfile, *, replace: bool = False) -> None:
    """Store ``profile`` under its name; PolicyError if that name exists and ``replace`` is False."""
    from deid import MappingProfile

    MappingProfile.from_dict(profile.to_dict(), f"the mapping profile '{profile.name}'")  # validate
    now = utc_now()
    with vault.transaction() as conn:
        row = conn.execute("SELECT created FROM mapping_profiles WHERE name = ?", (profile.name,)).fetchone()
        if row and not replace:
            raise PolicyError(
                f"A mapping profile called '{profile.name}' already exists; choose another "
                f"name or replace it."
            )
        conn.execute(
            "INSERT INTO mapping_profiles(name, source_system, signature, document, created, updated) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "source_system = excluded.source_system, signature = excluded.signature, "
            "document = excluded.document, updated = excluded.updated",
            (
                profile.name,
                profile.source_system,
                profile.signature,
                profile.to_json(),
                row[0] if row else now,
                now,
            ),
        )
        vault.audit.append(
            "profile.save",
            details={
                "name": profile.name,
                "source_system": profile.source_system,
                "columns": len(profile.columns),
                "mapped": len(profile.mapped),
                "replaced": bool(row),
            },
        )


def get_profile(vault: Vault, name: str) -> MappingProfile:
    """The saved profile called ``name`` (case-insensitive); PolicyError naming the saved ones if absent."""
    row = vault.db.execute("SELECT name, document FROM mapping_profiles WHERE name = ?", (name,)).fetchone()
    if row is None:
        names = [p.name for p in list_profiles(vault)]
        hint = f" Saved profiles: {', '.join(names)}." if names else " No profiles are saved yet."
        raise PolicyError(f"There is no mapping profile called '{name}'.{hint}")
    return _from_row(row[1], row[0])


def list_profiles(vault: Vault) -> list[MappingProfile]:
    """Every saved profile, by name."""
    rows = vault.db.execute("SELECT name, document FROM mapping_profiles ORDER BY name COLLATE NOCASE")
    return [_from_row(doc, name) for name, doc in rows.fetchall()]


def delete_profile(vault: Vault, name: str) -> None:
    """Remove a saved profile (audited); PolicyError if there is none by that name."""
    get_profile(vault, name)
    with vault.transaction() as conn:
        conn.execute("DELETE FROM mapping_profiles WHERE name = ?", (name,))
        vault.audit.append("profile.delete", details={"name": name})


def profile_for_headers(vault: Vault, headers: Sequence[str]) -> MappingProfile | None:
    """The saved profile made for an export with these headers, if any (see :func:`deid.match_profile`)."""
    from deid import match_profile

    return match_profile(headers, list_profiles(vault))


def read_profile_file(path: str | os.PathLike[str]) -> MappingProfile:
    """Read a profile JSON file; InputError/PolicyError with one sentence naming the file."""
    p = Path(path)
    data = read_json_file(p, str(p), what="a mapping profile", max_bytes=MAX_PROFILE_BYTES)
    from deid import MappingProfile

    return MappingProfile.from_dict(data, str(p))


def export_profile(
    vault: Vault, name: str, path: str | os.PathLike[str], *, force: bool = False
) -> MappingProfile:
    """Write the saved profile ``name`` to ``path`` as JSON (atomically; audited). An existing file is
    replaced only with ``force``, never one the vault recorded."""
    from agreements._recorded import output_rule

    profile = get_profile(vault, name)
    write_bytes_atomic(
        path, profile.to_json().encode("utf-8"), perm=0o644, force=force, recorded=output_rule(vault)
    )
    vault.audit.append("profile.export", details={"name": profile.name, "file": Path(path).name})
    return profile


def import_profile(
    vault: Vault, path: str | os.PathLike[str], *, name: str | None = None, replace: bool = False
) -> MappingProfile:
    """Save the profile in the JSON file ``path`` (optionally under another ``name``); audited."""
    profile = read_profile_file(path)
    if name:
        profile.name = name
    save_profile(vault, profile, replace=replace)
    vault.audit.append("profile.import", details={"name": profile.name, "file": Path(path).name})
    return profile


# ------------------------------------------------------------------ the agreement's view of an export


@dataclass
class AgreementMapping:
    """An export put into an agreement's dictionary, ready for the engine.

    ``table`` has the element names as columns (every element of the dictionary; those the export
    lacks are empty), ``policy`` is the agreement's de-identification policy keyed by element,
    ``profile`` the mapping used, ``how`` where it came from ("profile" / "profile (headers match)" /
    "suggested"), and ``findings`` the validation before de-identification.
    """

    table: Any
    policy: Any
    profile: MappingProfile
    how: str
    elements: list[Any]
    findings: list[Any] = field(default_factory=list)

    @property
    def errors(self) -> list[Any]:
        return [f for f in self.findings if f.severity == "error"]


def agreement_elements(agreement: Any) -> list[Any]:
    """The agreement's data dictionary as elements (its codes; the library's synonyms and aliases)."""
    from deid import dictionary_elements

    return dictionary_elements(agreement.body.get("elements") or [])


@dataclass
class MappingProposal:
    """How an export's columns map onto a dictionary, before anyone confirms it: what `pathshare map`
    prints and the app's Map step shows (one workflow, :func:`propose_mapping`).

    ``table`` is the export as read (every column text; a differing repeated header read as ``NAME_2``,
    as ``prepare`` reads it), ``repairs`` what the reader repaired, ``elements`` the dictionary,
    ``suggestions`` one per column in file order, ``profile`` the proposed mapping — a saved profile
    when one applies, else the suggestions — and ``how`` where it came from ("profile",
    "profile (headers match)" or "suggested"). ``from_profile`` lists the columns the saved profile
    decided (the others, if any, are suggestions: a column the profile maps to an element this
    dictionary does not have).
    """

    table: Any
    repairs: list[str]
    elements: list[Any]
    suggestions: list[Any]
    profile: MappingProfile
    how: str
    from_profile: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. why a file asked for in batches was read whole


def propose_mapping(
    vault: Vault | None,
    path: str | os.PathLike[str],
    elements: list[Any],
    *,
    profile: str | None = None,
    match_saved: bool = True,
    sheet: str | None = None,
    name: str = "suggested",
    source_system: str = "",
    memory_mb: int | None = None,
    batch_rows: int | None = None,
) -> MappingProposal:
    """Read the export at ``path`` and propose its mapping onto ``elements``.

    With ``memory_mb`` or ``batch_rows`` the export is read in batches (deid.scan_extract): the
    proposal's ``table`` is then that scan (``num_rows``, ``column_names``, ``validate``; the caller
    closes it), unless only the in-memory reader takes the file (an Excel workbook, rows needing
    repairs: read whole, ``repairs`` says so).

    The saved profile named ``profile`` is used when given; else, with a vault and ``match_saved``, the
    saved profile whose headers match; else the suggestions (named ``name``). A saved profile's entry
    for an element the dictionary lacks is replaced by the suggestion for that column. Nothing is
    stored, so nothing is audited: saving the mapping (:func:`save_profile`) and checking an extract
    against an agreement (:func:`map_for_agreement`) write their own entries.
    """
    from deid import MappingProfile, ReadInfo, read_table, suggest_mapping

    info = ReadInfo()
    table: Any = None
    streamed: list[str] = []
    if memory_mb is not None or batch_rows is not None:
        from deid import NotStreamable, scan_extract

        try:
            table = scan_extract(path, memory_mb=memory_mb, batch_rows=batch_rows)
        except NotStreamable as exc:
            streamed.append(f"read whole, not in batches: {exc.reason}")
    if table is None:
        table = read_table(path, sheet=sheet, info=info, duplicates="rename")
        suggestions = suggest_mapping(table, elements)
    else:
        try:
            suggestions = table.suggest(elements)
        except BaseException:
            table.close()
            raise
    fresh = MappingProfile.from_suggestions(name, suggestions, source_system=source_system)
    saved: MappingProfile | None = None
    how = "suggested"
    if vault is not None and profile:
        saved, how = get_profile(vault, profile), "profile"
    elif vault is not None and match_saved:
        saved = profile_for_headers(vault, table.column_names)
        how = "profile (headers match)" if saved is not None else how
    if saved is None:
        return MappingProposal(table, list(info.repairs), elements, suggestions, fresh, how, notes=streamed)
    known = {el.name for el in elements}
    decided = [
        c
        for c in table.column_names
        if c in saved.columns and (saved.columns[c] in known or saved.columns[c] is None)
    ]
    for column in table.column_names:
        if column in decided:
            continue
        # not decided by the profile: the suggestion, with its recodes and date format
        saved.columns[column] = fresh.columns.get(column)
        if column in fresh.recodes:
            saved.recodes[column] = fresh.recodes[column]
        if column in fresh.date_formats:
            saved.date_formats[column] = fresh.date_formats[column]
    return MappingProposal(table, list(info.repairs), elements, suggestions, saved, how, decided, streamed)


def map_for_agreement(
    vault: Vault,
    agreement: Any,
    table: Any,
    *,
    profile: str | None = None,
    input_name: str = "the input",
    require_confirmed: bool = True,
    refuse_errors: bool = True,
) -> AgreementMapping:
    """Map an export onto an agreement's dictionary for ``deid --agreement`` and ``prepare``.

    The mapping is the profile named ``profile``, else the saved profile whose headers match; with
    neither, ``require_confirmed`` refuses (a mapping must be confirmed once, with `pathshare map
    --save-profile`), otherwise the suggestions are used. Validation errors refuse with the first one
    when ``refuse_errors`` (CheckFailed). Audited as ``mapping.apply`` (profile name, counts; no values).
    """
    from deid import MappingProfile, apply_mapping, policy_from_elements, suggest_mapping, validate
    from deid.errors import CheckFailed

    elements = agreement_elements(agreement)
    chosen: MappingProfile | None
    if profile:
        chosen, how = get_profile(vault, profile), "profile"
    else:
        chosen, how = profile_for_headers(vault, table.column_names), "profile (headers match)"
    if chosen is None:
        if require_confirmed:
            raise PolicyError(
                f"No saved mapping profile matches the columns of {input_name}; confirm one first.",
                "Confirm how the columns map once, and save it as a mapping profile.",
                action="save_profile",
                subject=agreement.id,
            )
        chosen = MappingProfile.from_suggestions("suggested", suggest_mapping(table, elements))
        how = "suggested"
    findings = validate(table, chosen, elements)
    errors = [f for f in findings if f.severity == "error"]
    if errors and refuse_errors:
        more = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        first = errors[0].message.rstrip(".")
        raise CheckFailed(
            f"{input_name} does not fit agreement {agreement.id}: {first}{more}.",
            "Checking the mapping lists every problem." if len(errors) > 1 else None,
            action="check_mapping" if len(errors) > 1 else None,
        )
    mapped = apply_mapping(table, chosen, elements, fill_missing=True)
    policy = policy_from_elements(
        elements,
        treatments=agreement.element_treatments(),
        k=agreement.terms.policy.k,
        name=f"agreement {agreement.id}'s policy",
        # every agreement's release goes through the disclosure-control search (deid/_disclosure.py)
        disclosure=agreement.disclosure(),
    )
    vault.audit.append(
        "mapping.apply",
        agreement=agreement.id,
        details={
            "profile": chosen.name if how != "suggested" else None,
            "how": how,
            "columns": table.num_columns,
            "mapped": len(chosen.mapped),
            "findings": len(findings),
            "errors": len(errors),
        },
    )
    return AgreementMapping(mapped, policy, chosen, how, elements, findings)
