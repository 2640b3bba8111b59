"""Drafting helpers for the agreement form: :func:`blank_terms` (a new draft's starting terms),
:func:`library_entry` (an element of the element library as an agreement element),
:func:`parse_parameters` / :func:`format_parameters` and :func:`parse_code_set` /
:func:`format_code_set` (the form's text fields), :func:`check_draft` (the first problem of a draft,
with the field it concerns) and :func:`terms_of` (terms to edit).
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from agreements.errors import AgreementError, PartnerError

if TYPE_CHECKING:
    from agreements._vault import Vault


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

    from agreements._agreement import Terms, check_terms, field_path, validation_sentence
    from agreements._agreement_store import fill_parties
    from agreements._identity import our_card

    body = json.loads(json.dumps(dict(terms)))
    body.setdefault("id", str(uuid.uuid4()))
    body["version"], body["previous"] = 1, None  # the store sets these (amendments too)
    me = our_card(vault)
    try:
        fill_parties(vault, me, body, "The draft")
    except (AgreementError, PartnerError) as exc:
        return DraftProblem("parties", str(exc))
    try:
        parsed = Terms.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = field_path(first["loc"])
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
        return DraftProblem(where, validation_sentence(exc, "The draft"))
    try:
        check_terms(parsed, "The draft")
    except AgreementError as exc:
        return DraftProblem(exc.field, str(exc))  # the check names the term it is about
    if not any(p.fingerprint == me.fingerprint() for p in parsed.parties):
        return DraftProblem("parties", "The draft does not name your organization as a party.")
    return None


def terms_of(agreement: Any) -> dict[str, Any]:
    """A copy of an agreement's terms to edit (for an amendment or a corrected draft)."""
    return copy.deepcopy(dict(agreement.body))
