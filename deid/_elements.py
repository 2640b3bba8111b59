"""The element library: the shared data dictionary's building blocks.

An :class:`Element` is one fact partners share (``birth_date``, ``sex``, ``grade_level`` …) with its type,
its code set where a standard one exists (CALPADS codes for California K-12), a description, the closest
CEDS element name, a category (identifier, quasi-identifier, sensitive …), a default de-identification
treatment, and the header names SIS/MIS exports use for it (which drive the mapping suggestions).

The library ships as ``deid/data/elements.json``; agreements pick elements from it or define their own
(:func:`element_from_dict` accepts a minimal ``{"name": ..., "type": ...}``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from deid._hierarchy import Hierarchy, hierarchy_from_dict
from deid._jsonread import read_json_file
from deid.errors import PolicyError

ELEMENT_TYPES = ("string", "code", "date", "integer", "decimal", "text", "boolean")
CATEGORIES = ("identifier", "quasi_identifier", "sensitive", "attribute", "free_text")
DOMAINS = ("any", "k12", "college")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Code:
    """One value of a code set: the code itself, its label, and spellings that mean it."""

    code: str
    label: str
    aliases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "label": self.label, "aliases": list(self.aliases)}


@dataclass(frozen=True)
class Element:
    """One shared data element (see the module docstring)."""

    name: str
    label: str = ""
    type: str = "string"
    description: str = ""
    ceds: str = ""
    ceds_exact: bool = False
    category: str = "attribute"
    domain: str = "any"
    format: str = ""
    treatment: Mapping[str, Any] = field(default_factory=lambda: {"treatment": "keep"})
    synonyms: tuple[str, ...] = ()
    code_set: tuple[Code, ...] = ()
    code_set_name: str = ""
    numeric_codes: Mapping[str, str] = field(default_factory=dict)
    numeric_codes_note: str = ""
    normalize: str = ""
    code_notes: str = ""
    # How to fill this element from another element's column when no column holds it (e.g.
    # hispanic_latino from a combined race/ethnicity field): {"element", "yes": [...], "unknown": [...]}.
    derive_from: Mapping[str, Any] = field(default_factory=dict)
    # A fixed shape: exactly this many digits (the SSID: 10), checked before the value becomes a code
    # (deid._idshape); ``repair`` "zfill" pads values that lost their leading zeros instead of refusing.
    digits: int = 0
    repair: str = ""
    # How a quasi-identifier can be made coarser (deid/_hierarchy.py); {} when only removal is possible.
    hierarchy: Mapping[str, Any] = field(default_factory=dict)

    def generalization(self) -> Hierarchy:
        """The element's validated generalization hierarchy (only ``removed`` when it defines none)."""
        if not self.hierarchy:
            return Hierarchy(self.name, "map")
        return hierarchy_from_dict(self.name, self.hierarchy)

    @property
    def codes(self) -> frozenset[str]:
        """The valid codes (empty when the element has no closed code set)."""
        return frozenset(c.code for c in self.code_set)

    @property
    def quasi_identifier(self) -> bool:
        """Whether the element joins the k-anonymity quasi-identifier set by default."""
        return self.category == "quasi_identifier"

    def to_dict(self) -> dict[str, Any]:
        """The element as JSON-ready data (the format of elements.json)."""
        out: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "ceds": self.ceds,
            "ceds_exact": self.ceds_exact,
            "category": self.category,
            "domain": self.domain,
            "treatment": dict(self.treatment),
            "synonyms": list(self.synonyms),
        }
        if self.code_set:
            out["code_set_name"] = self.code_set_name
            out["code_set"] = [c.to_dict() for c in self.code_set]
        if self.numeric_codes:
            out["numeric_codes"] = dict(self.numeric_codes)
            out["numeric_codes_note"] = self.numeric_codes_note
        if self.normalize:
            out["normalize"] = self.normalize
        if self.code_notes:
            out["code_notes"] = self.code_notes
        if self.derive_from:
            out["derive_from"] = dict(self.derive_from)
        if self.digits:
            out["digits"] = self.digits
        if self.repair:
            out["repair"] = self.repair
        if self.hierarchy:
            out["hierarchy"] = dict(self.hierarchy)
        return out


def code_with_label(code: object, labels: Mapping[str, str]) -> str:
    """A code as people read it: "700 — White" when its label is known, else the code."""
    text = "" if code is None else str(code)
    label = labels.get(text)
    return f"{text} — {label}" if label and label != text else text


def element_from_dict(data: Mapping[str, Any], source: str = "the element list") -> Element:
    """Build an Element from its JSON form; raise PolicyError naming ``source`` when it is invalid."""
    if not isinstance(data, Mapping):
        raise PolicyError(f"An element in {source} is not a JSON object.")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise PolicyError(
            f"An element in {source} has an invalid name {name!r}: use lower-case letters, digits and _."
        )
    etype = data.get("type", "string")
    if etype not in ELEMENT_TYPES:
        raise PolicyError(f"Element {name} in {source} has an unknown type {etype!r}.")
    category = data.get("category", "attribute")
    if category not in CATEGORIES:
        raise PolicyError(f"Element {name} in {source} has an unknown category {category!r}.")
    domain = data.get("domain", "any")
    if domain not in DOMAINS:
        raise PolicyError(f"Element {name} in {source} has an unknown domain {domain!r}.")
    treatment = data.get("treatment") or {"treatment": "keep"}
    if isinstance(treatment, str):
        treatment = {"treatment": treatment}
    if not isinstance(treatment, Mapping) or "treatment" not in treatment:
        raise PolicyError(f"Element {name} in {source} has an invalid treatment.")
    codes: list[Code] = []
    raw_set = data.get("code_set") or ()
    set_name = str(data.get("code_set_name", ""))
    if isinstance(raw_set, Mapping):
        # An agreement's form: {"name": ..., "codes": {code: label}}.
        set_name = str(raw_set.get("name", set_name))
        raw_codes = raw_set.get("codes") or {}
        if not isinstance(raw_codes, Mapping):
            raise PolicyError(f"Element {name} in {source} has an invalid code set.")
        raw_set = [{"code": str(c), "label": str(lbl)} for c, lbl in raw_codes.items()]
    for raw in raw_set:
        if isinstance(raw, str):
            codes.append(Code(raw, raw))
        elif isinstance(raw, Mapping) and isinstance(raw.get("code"), str):
            codes.append(Code(raw["code"], str(raw.get("label", raw["code"])), tuple(raw.get("aliases", ()))))
        else:
            raise PolicyError(f"Element {name} in {source} has an invalid code in its code set.")
    return Element(
        name=name,
        label=str(data.get("label") or name.replace("_", " ").capitalize()),
        type=etype,
        description=str(data.get("description", "")),
        ceds=str(data.get("ceds", "")),
        ceds_exact=bool(data.get("ceds_exact", False)),
        category=category,
        domain=domain,
        format=str(data.get("format", "")),
        treatment=dict(treatment),
        synonyms=tuple(str(s) for s in data.get("synonyms", ())),
        code_set=tuple(codes),
        code_set_name=set_name,
        numeric_codes={str(k): str(v) for k, v in (data.get("numeric_codes") or {}).items()},
        numeric_codes_note=str(data.get("numeric_codes_note", "")),
        normalize=str(data.get("normalize", "")),
        code_notes=str(data.get("code_notes", "")),
        derive_from=dict(data.get("derive_from") or {}),
        digits=_digits(data.get("digits", 0), name, source),
        repair=_repair(data.get("repair", ""), name, source),
        hierarchy=_hierarchy(name, data.get("hierarchy"), source),
    )


def _digits(value: Any, name: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 64:
        raise PolicyError(f"Element {name} in {source} has an invalid 'digits' (a number of digits).")
    return value


def _repair(value: Any, name: str, source: str) -> str:
    if value not in ("", "zfill"):
        raise PolicyError(
            f"Element {name} in {source} has an unknown 'repair' {value!r}; PathShare knows \"zfill\"."
        )
    return str(value)


def _hierarchy(name: str, raw: Any, source: str) -> dict[str, Any]:
    """The element's hierarchy as given, once it validates (PolicyError naming the element if not)."""
    if raw is None:
        return {}
    hierarchy_from_dict(name, raw, where=source)
    return dict(raw)


def elements_from_json(
    data: Mapping[str, Any] | Sequence[Any], source: str = "the element list"
) -> list[Element]:
    """Parse an element list: ``{"elements": [...]}`` or a bare list. Names must be unique."""
    items = data.get("elements") if isinstance(data, Mapping) else data
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise PolicyError(f"{source} has no list of elements.")
    out = [element_from_dict(item, source) for item in items]
    seen: set[str] = set()
    for el in out:
        if el.name in seen:
            raise PolicyError(f"{source} defines the element {el.name} twice.")
        seen.add(el.name)
    return out


def load_elements(path: str | Path | None = None) -> list[Element]:
    """The element library shipped with PathShare, or the element list in the JSON file ``path``."""
    if path is None:
        return list(_library())
    p = Path(path)
    data = read_json_file(p, str(p), what="an element list")
    return elements_from_json(data, str(p))


@lru_cache(maxsize=1)
def _library() -> tuple[Element, ...]:
    text = resources.files("deid").joinpath("data/elements.json").read_text(encoding="utf-8")
    return tuple(elements_from_json(json.loads(text), "the element library"))


def element_library() -> dict[str, Element]:
    """The shipped element library by name."""
    return {el.name: el for el in _library()}


def dictionary_elements(
    entries: Iterable[Mapping[str, Any]], library: Mapping[str, Element] | None = None
) -> list[Element]:
    """Elements for an agreement's data dictionary entries (``{"name", "type", "code_set", ...}``).

    An entry named like a library element keeps what the agreement says (type, description, treatment,
    codes) and gains the library's knowledge for mapping: synonyms, value format, category, code
    aliases and numeric conventions. Any other entry is taken as it is.
    """
    lib = element_library() if library is None else library
    out = []
    for entry in entries:
        own = element_from_dict(entry, "the agreement's data dictionary")
        base = lib.get(own.name)
        if base is None:
            out.append(own)
            continue
        aliases = {c.code: c.aliases for c in base.code_set}
        codes = tuple(Code(c.code, c.label, aliases.get(c.code, ())) for c in own.code_set) or base.code_set
        out.append(
            replace(
                base,
                type=own.type if "type" in entry else base.type,
                description=own.description or base.description,
                treatment=own.treatment if "treatment" in entry else base.treatment,
                code_set=codes,
                code_set_name=own.code_set_name or base.code_set_name,
                label=str(entry.get("label") or base.label),
                repair=own.repair if "repair" in entry else base.repair,
            )
        )
    return out


def select_elements(names: Iterable[str], library: Mapping[str, Element] | None = None) -> list[Element]:
    """The library elements called ``names`` (in that order); PolicyError naming any unknown one."""
    lib = element_library() if library is None else library
    unknown = [n for n in names if n not in lib]
    if unknown:
        raise PolicyError(f"The element library has no element called {', '.join(sorted(unknown))}.")
    return [lib[n] for n in names]


def elements_markdown(elements: Sequence[Element] | None = None) -> str:
    """The element table as Markdown (docs/elements.md is generated from it)."""
    els = list(_library()) if elements is None else list(elements)
    lines = [
        "# The element library",
        "",
        "Generated from `deid/data/elements.json` by `deid._elements.elements_markdown()`;",
        "do not edit by hand.",
        "CEDS names marked * are the closest CEDS element, not an exact match.",
        "",
        "| Element | Label | Type | Codes | CEDS | Category | Default treatment | Header synonyms (sample) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for el in els:
        codes = ", ".join(c.code for c in el.code_set) if el.code_set else ""
        if el.code_set_name:
            codes = f"{el.code_set_name}: {codes}"
        ceds = el.ceds + ("" if el.ceds_exact or not el.ceds else " *")
        treat = el.treatment.get("treatment", "")
        extra = ", ".join(f"{k}={v}" for k, v in el.treatment.items() if k != "treatment")
        if extra:
            treat = f"{treat} ({extra})"
        syn = ", ".join(el.synonyms[:6])
        cells = [f"`{el.name}`", el.label, el.type, codes, ceds, el.category, treat, syn]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    with_levels = [el for el in els if el.hierarchy]
    if with_levels:
        lines += [
            "## Generalization hierarchies",
            "",
            "How the disclosure-control search may make each quasi-identifier coarser, finest first "
            "(docs/disclosure-control.md). An agreement may allow fewer levels.",
            "",
            "| Element | Levels |",
            "|---|---|",
        ]
        for el in with_levels:
            lines.append(f"| `{el.name}` | {el.generalization().describe()} |")
        lines.append("")
    return "\n".join(lines)
