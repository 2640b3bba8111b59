"""Mapping profiles: a confirmed mapping kept per source system ("Aeries export") with a header
signature, so :func:`match_profile` reuses it when the same export comes back; its JSON form is what
partners share.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deid._header_match import compact_header
from deid.errors import PolicyError

if TYPE_CHECKING:
    from deid._suggest import ColumnSuggestion

PROFILE_VERSION = 1


def header_signature(headers: Iterable[str]) -> str:
    """A stable fingerprint of an export's header set (order and case do not matter)."""
    names = sorted({compact_header(h) for h in headers})
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()


@dataclass
class MappingProfile:
    """A confirmed mapping for one source system: column -> element (None = dropped), value recodes per
    column, date formats per column, and the header signature it was made from."""

    name: str
    columns: dict[str, str | None]
    source_system: str = ""
    recodes: dict[str, dict[str, str]] = field(default_factory=dict)
    date_formats: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    description: str = ""
    # Elements filled from another column's values: {element: {"from": column, "values": {value: code}}}.
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.signature:
            self.signature = header_signature(self.columns)

    @property
    def mapped(self) -> dict[str, str]:
        """Only the columns that map to an element."""
        return {c: e for c, e in self.columns.items() if e}

    @classmethod
    def from_suggestions(
        cls, name: str, suggestions: Sequence[ColumnSuggestion], *, source_system: str = ""
    ) -> MappingProfile:
        """A profile holding the suggestions as they are (to be confirmed or corrected)."""
        return cls(
            name=name,
            source_system=source_system,
            columns={s.column: s.element for s in suggestions},
            recodes={s.column: dict(s.recodes) for s in suggestions if s.recodes},
            date_formats={s.column: s.date_format for s in suggestions if s.date_format},
            derived={
                el: {"from": s.column, "values": dict(values)}
                for s in suggestions
                for el, values in s.derives.items()
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile's JSON form (what `pathshare profile export` writes)."""
        return {
            "pathshare_mapping_profile": PROFILE_VERSION,
            "name": self.name,
            "source_system": self.source_system,
            "description": self.description,
            "signature": self.signature,
            "columns": dict(self.columns),
            "recodes": {c: dict(r) for c, r in self.recodes.items()},
            "date_formats": dict(self.date_formats),
            "derived": {e: {"from": d["from"], "values": dict(d["values"])} for e, d in self.derived.items()},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Any, source: str = "the mapping profile") -> MappingProfile:
        """Validate and build a profile from its JSON form; PolicyError naming ``source`` if invalid."""
        if not isinstance(data, dict) or "pathshare_mapping_profile" not in data:
            raise PolicyError(f"{source} is not a PathShare mapping profile.")
        if data["pathshare_mapping_profile"] != PROFILE_VERSION:
            raise PolicyError(
                f"{source} has profile version {data['pathshare_mapping_profile']!r}; this "
                f"PathShare reads version {PROFILE_VERSION}."
            )
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            raise PolicyError(f"{source} has no name.")
        columns = data.get("columns")
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in columns.items()
        ):
            raise PolicyError(f"{source} needs 'columns': an object of column name -> element name or null.")
        targets = [v for v in columns.values() if v]
        dupes = sorted({t for t in targets if targets.count(t) > 1})
        if dupes:
            raise PolicyError(f"{source} maps more than one column to {', '.join(dupes)}.")
        recodes = data.get("recodes") or {}
        if not isinstance(recodes, dict) or not all(
            isinstance(r, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in r.items())
            for r in recodes.values()
        ):
            raise PolicyError(f"{source} has invalid 'recodes' (column -> {{source value: code}}).")
        formats = data.get("date_formats") or {}
        if not isinstance(formats, dict) or not all(isinstance(v, str) for v in formats.values()):
            raise PolicyError(f"{source} has invalid 'date_formats'.")
        derived = data.get("derived") or {}
        if not isinstance(derived, dict) or not all(
            isinstance(d, dict)
            and isinstance(d.get("from"), str)
            and isinstance(d.get("values"), dict)
            and all(isinstance(a, str) and isinstance(b, str) for a, b in d["values"].items())
            for d in derived.values()
        ):
            raise PolicyError(
                f"{source} has invalid 'derived' (element -> {{from: column, values: {{...}}}})."
            )
        clash = sorted(set(derived) & set(targets))
        if clash:
            raise PolicyError(f"{source} both maps a column to and derives {', '.join(clash)}.")
        return cls(
            name=name.strip(),
            columns=dict(columns),
            source_system=str(data.get("source_system", "")),
            recodes={c: dict(r) for c, r in recodes.items()},
            date_formats=dict(formats),
            signature=str(data.get("signature") or ""),
            description=str(data.get("description", "")),
            derived={e: {"from": d["from"], "values": dict(d["values"])} for e, d in derived.items()},
        )


def match_profile(headers: Sequence[str], profiles: Iterable[MappingProfile]) -> MappingProfile | None:
    """The saved profile for an export with these headers: the same header set (ignoring order, case
    and separators), else the profile whose columns all appear with the largest overlap (at least 90%)."""
    profiles = list(profiles)
    sig = header_signature(headers)
    for prof in profiles:
        if prof.signature == sig:
            return prof
    present = {compact_header(h) for h in headers}
    best: tuple[float, MappingProfile | None] = (0.0, None)
    for prof in profiles:
        cols = {compact_header(c) for c in prof.columns}
        if not cols or not {compact_header(c) for c in prof.mapped} <= present:
            continue
        jaccard = len(cols & present) / len(cols | present)
        if jaccard >= 0.9 and jaccard > best[0]:
            best = (jaccard, prof)
    return best[1]


def as_profile(mapping: MappingProfile | Mapping[str, str | None]) -> MappingProfile:
    if isinstance(mapping, MappingProfile):
        return mapping
    return MappingProfile(name="mapping", columns=dict(mapping))
