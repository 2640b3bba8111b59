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
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from deid._atomic import write_bytes_atomic
from deid.errors import InputError, PolicyError

if TYPE_CHECKING:  # deid._mapping pulls in pyarrow: imported where used, so `import agreements` stays light
    from agreements._vault import Vault
    from deid._mapping import MappingProfile

MAX_PROFILE_BYTES = 5_000_000


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _from_row(document: str, name: str) -> MappingProfile:
    from deid._mapping import MappingProfile

    return MappingProfile.from_dict(json.loads(document), f"the saved mapping profile '{name}'")


def save_profile(vault: Vault, profile: MappingProfile, *, replace: bool = False) -> None:
    """Store ``profile`` under its name; PolicyError if that name exists and ``replace`` is False."""
    from deid._mapping import MappingProfile

    MappingProfile.from_dict(profile.to_dict(), f"the mapping profile '{profile.name}'")  # validate
    now = _now()
    with vault.transaction() as conn:
        row = conn.execute("SELECT created FROM mapping_profiles WHERE name = ?", (profile.name,)).fetchone()
        if row and not replace:
            raise PolicyError(f"A mapping profile called '{profile.name}' already exists; choose another "
                              f"name or replace it.")
        conn.execute(
            "INSERT INTO mapping_profiles(name, source_system, signature, document, created, updated) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "source_system = excluded.source_system, signature = excluded.signature, "
            "document = excluded.document, updated = excluded.updated",
            (profile.name, profile.source_system, profile.signature, profile.to_json(),
             row[0] if row else now, now),
        )
        vault.audit.append("profile.save", details={
            "name": profile.name, "source_system": profile.source_system,
            "columns": len(profile.columns), "mapped": len(profile.mapped), "replaced": bool(row)})


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
    from deid._mapping import match_profile

    return match_profile(headers, list_profiles(vault))


def read_profile_file(path: str | os.PathLike[str]) -> MappingProfile:
    """Read a profile JSON file; InputError/PolicyError with one sentence naming the file."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_PROFILE_BYTES:
            raise InputError(f"{p} is too large to be a mapping profile.")
        data = json.loads(p.read_text(encoding="utf-8-sig"))
    except FileNotFoundError as exc:
        raise InputError(f"{p} does not exist.") from exc
    except IsADirectoryError as exc:
        raise InputError(f"{p} is a folder, not a mapping profile file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p} cannot be read as UTF-8 text.") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{p} is not valid JSON (line {exc.lineno}).") from exc
    from deid._mapping import MappingProfile

    return MappingProfile.from_dict(data, str(p))


def export_profile(vault: Vault, name: str, path: str | os.PathLike[str]) -> MappingProfile:
    """Write the saved profile ``name`` to ``path`` as JSON (atomically; audited)."""
    profile = get_profile(vault, name)
    write_bytes_atomic(path, profile.to_json().encode("utf-8"), perm=0o644)
    vault.audit.append("profile.export", details={"name": profile.name, "file": Path(path).name})
    return profile


def import_profile(vault: Vault, path: str | os.PathLike[str], *, name: str | None = None,
                   replace: bool = False) -> MappingProfile:
    """Save the profile in the JSON file ``path`` (optionally under another ``name``); audited."""
    profile = read_profile_file(path)
    if name:
        profile.name = name
    save_profile(vault, profile, replace=replace)
    vault.audit.append("profile.import", details={"name": profile.name, "file": Path(path).name})
    return profile
