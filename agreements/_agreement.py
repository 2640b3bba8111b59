"""Data-sharing agreements: the document model, its validation, lifecycle and signatures.

An agreement file (schema documented in docs/agreement-schema.md) is a JSON object whose **terms**
(everything but ``signatures``, ``joinders`` and ``terminations``) are what parties sign:
``Ed25519(canonical_json(terms))`` (RFC 8785). Every party signing the same canonical bytes executes
it. Status is never written in the file: it is derived from signatures, dates and termination records
(``Agreement.status(today)``), so nothing a sender types can claim an agreement is executed.

The model is pure (no vault): ``parse_agreement`` reads and checks a file, ``Agreement.sign``,
``merged_with``, ``terminated_by`` and ``joined_by`` return new values. ``agreements._agreement_store``
keeps them in the vault and checks parties against partner cards.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from agreements._clock import utc_text
from agreements._signing import (
    canonical_json,
    load_public_key,
    public_key_b64,
    sha256_hex,
    sign_document,
    verify_document,
)
from agreements.errors import AgreementError
from deid import (
    ELEMENT_TYPES,
    TREATMENT_NAMES,
    TREATMENT_SPECS,
    PathShareError,
    parameter_problem,
    parse_json,
)

SCHEMA_VERSION = 2
# Version 2 added the disclosure-control settings of the policy (sensitive, l, l_kind, t,
# suppression_limit, hierarchies, fairness); version 1 agreements are still read (they take the defaults).
SCHEMA_VERSIONS = (1, 2)
V2_POLICY_FIELDS = ("sensitive", "l", "l_kind", "t", "suppression_limit", "hierarchies", "fairness")
# Keys of an agreement file that travel with it but are not part of the signed terms.
UNSIGNED_KEYS = ("signatures", "joinders", "terminations")

STATUSES = ("draft", "proposed", "executed", "expired", "terminated", "superseded")

LEGAL_BASES = {
    "ferpa_studies_99_31_a_6": "FERPA studies exception, 34 CFR 99.31(a)(6)",
    "ferpa_audit_evaluation_99_35": "FERPA audit/evaluation exception, 34 CFR 99.35",
    "consent": "written consent of parents or eligible students, 34 CFR 99.30",
    "deidentified_99_31_b": "de-identified records, 34 CFR 99.31(b)",
}

# The treatments, their parameters and the element types they apply to come from deid's one specification
# (deid/_treatment_spec.py); these tables are views of it for the schema's checks.
TREATMENT_PARAMETERS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    name: (frozenset(spec.required), frozenset(spec.optional)) for name, spec in TREATMENT_SPECS.items()
}
# Which element types each treatment can apply to.
TREATMENT_TYPES: dict[str, frozenset[str]] = {name: spec.types for name, spec in TREATMENT_SPECS.items()}

_IDENT = r"^[a-z][a-z0-9_]{0,63}$"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# --------------------------------------------------------------------------------------------------
# The terms, as pydantic models (strict: no coercion, no unknown keys)


def _iso_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    return date.fromisoformat(value)


def _uuid_text(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError as exc:
        raise ValueError("must be a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e") from exc
    return value


def _ed25519_key(value: str) -> str:
    load_public_key(value)  # ValueError when malformed
    return value


def _age_recipient(value: str) -> str:
    import pyrage

    try:
        pyrage.x25519.Recipient.from_str(value)
    except Exception as exc:  # pyrage raises its own untyped errors
        raise ValueError("must be an age X25519 recipient (age1…)") from exc
    return value


def _displayable(value: str) -> str:
    """Text every party will read, printed and shown: no escape sequences, bidi overrides or invisible
    characters (deid.unsafe_characters, the one rule); line breaks and tabs are fine."""
    from deid import display_text, unsafe_characters

    bad = unsafe_characters(value, keep="\n\t")
    if bad:
        shown = ", ".join(display_text(c) for c in bad)
        raise ValueError(f"holds control, text-direction or invisible characters ({shown})")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=1, max_length=20000),
    AfterValidator(_displayable),
]
Name = Annotated[str, StringConstraints(pattern=_IDENT)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), AfterValidator(_displayable)]
Role = Literal["provider", "recipient"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Representative(_Model):
    """The person who signs for a party."""

    name: Text
    title: Text
    email: Email


class Party(_Model):
    """A signatory organization, as on its card, with its roles under this agreement."""

    org: Text
    kind: Literal["district", "college", "employer", "intermediary"]
    roles: Annotated[list[Role], Field(min_length=1, max_length=2)]
    fingerprint: Text
    signing_key: Annotated[str, AfterValidator(_ed25519_key)]
    age_recipient: Annotated[str, AfterValidator(_age_recipient)]
    authorized_representative: Representative


class LegalBasis(_Model):
    basis: Literal[
        "ferpa_studies_99_31_a_6", "ferpa_audit_evaluation_99_35", "consent", "deidentified_99_31_b"
    ]
    citation: Text


class Scope(_Model):
    cohorts: Annotated[list[Text], Field(min_length=1)]
    school_years: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}$")]], Field(min_length=1)
    ]
    description: Text | None = None


class CodeSet(_Model):
    name: Text
    codes: Annotated[dict[str, Text], Field(min_length=1)]


class Element(_Model):
    """One entry of the data dictionary."""

    name: Name
    type: Literal[ELEMENT_TYPES]  # type: ignore[valid-type]  (deid's one list)
    code_set: CodeSet | None = None
    description: Text
    treatment: Literal[TREATMENT_NAMES]  # type: ignore[valid-type]  (deid's one specification)


class Policy(_Model):
    """The dataset-level de-identification rules, and per-element treatment parameters."""

    k: Annotated[int, Field(ge=2, le=1000)]
    quasi_identifiers: list[Name]
    min_cell_size: Annotated[int, Field(ge=1, le=1000)]
    drop_unlisted: Literal[True]
    linkage_scope: Literal["provider", "consortium"]
    parameters: dict[Name, dict[str, Any]] = {}
    # Schema version 2: disclosure control (docs/disclosure-control.md).
    sensitive: list[Name] = []
    l: Annotated[int, Field(ge=2, le=100)] | None = None  # noqa: E741  (the literature's name)
    l_kind: Literal["distinct", "entropy"] = "distinct"
    t: Annotated[float, Field(gt=0, lt=1)] | None = None
    suppression_limit: Annotated[float, Field(ge=0, le=0.5)] = 0.05
    # element -> {"allow": [level names], "removable": bool} restricting the library's hierarchy, or a
    # full definition {"kind": ..., "levels": [...]} (e.g. the provider's schools grouped by district)
    hierarchies: dict[Name, dict[str, Any]] = {}
    # "require": the release is the least lossy one in which no group of students loses a value more than
    # twice as often as its column (refused when there is none); "prefer": the search leans that way
    fairness: Literal["prefer", "require"] = "prefer"
    # How the released data travels: a CSV with a byte-order mark (Excel keeps the accents), or an Excel
    # workbook whose text columns are typed as text (codes such as 0109850 keep their leading zeros even
    # when a clerk opens and saves it). Not a version-2 field: any agreement may say it.
    release_format: Literal["csv", "xlsx"] = "csv"


class Destruction(_Model):
    deadline: IsoDate
    method: Text


class Contact(_Model):
    name: Text
    email: Email
    phone: Text | None = None


class Terms(_Model):
    """The signed body of an agreement (schema versions 1 and 2)."""

    pathshare_agreement: Literal[1, 2]
    id: Annotated[str, AfterValidator(_uuid_text)]
    version: Annotated[int, Field(ge=1)]
    previous: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None
    title: Text
    parties: Annotated[list[Party], Field(min_length=2)]
    legal_basis: LegalBasis
    purpose: Text
    activity: Text
    scope: Scope
    effective: IsoDate
    expires: IsoDate
    elements: Annotated[list[Element], Field(min_length=1)]
    policy: Policy
    destruction: Destruction
    redisclosure: Text
    security_requirements: Annotated[list[Text], Field(min_length=1)]
    breach_notice_contact: Contact
    general_offer: bool
    join_as: Annotated[list[Role], Field(min_length=1, max_length=2)] | None = None


def field_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not isinstance(part, str) or part.startswith(("function-", "literal[", "nullable[")):
            continue
        else:
            out += f".{part}" if out else part
    return out or "the document"


def validation_sentence(exc: ValidationError, source: str) -> str:
    first = exc.errors()[0]
    where = field_path(first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        return f"{source} is not a valid agreement: {where} is missing."
    if first["type"] == "extra_forbidden":
        return (
            f"{source} is not a valid agreement: {where} is not a field of schema version {SCHEMA_VERSION}."
        )
    if first["type"] == "string_pattern_mismatch" and (first.get("ctx") or {}).get("pattern") == _IDENT:
        msg = "must be a lowercase name of letters, digits and underscores, such as birth_date"
    if where == "policy.drop_unlisted":
        msg = "must be true (an agreement never lets columns outside its data dictionary leave)"
    return f"{source} is not a valid agreement: {where}: {msg}."


# --------------------------------------------------------------------------------------------------
# Consistency checks a JSON schema cannot express


def check_terms(terms: Terms, source: str) -> None:
    bad = f"{source} is not a valid agreement:"
    if terms.effective > terms.expires:
        raise AgreementError(
            f"{bad} its dates are out of order "
            f"(effective {terms.effective} is after expires {terms.expires}).",
            field="expires",
        )
    if terms.destruction.deadline < terms.expires:
        raise AgreementError(
            f"{bad} its dates are out of order (the destruction deadline {terms.destruction.deadline} "
            f"is before the agreement expires on {terms.expires}).",
            field="destruction.deadline",
        )
    if (terms.version == 1) != (terms.previous is None):
        raise AgreementError(
            f"{bad} version 1 has no previous version, and every later version "
            "must name the hash of the one before."
        )
    _check_parties(terms, bad)
    _check_policy(terms, bad)
    _check_disclosure(terms, bad)


def _check_parties(terms: Terms, bad: str) -> None:
    for attr in ("fingerprint", "signing_key", "age_recipient"):
        values = [getattr(p, attr) for p in terms.parties]
        if len(set(values)) != len(values):
            raise AgreementError(
                f"{bad} two parties share the same {attr.replace('_', ' ')}.", field="parties"
            )
    for p in terms.parties:
        if len(set(p.roles)) != len(p.roles):
            raise AgreementError(f"{bad} the roles of {p.org} repeat.", field="parties")
    roles = {r for p in terms.parties for r in p.roles}
    if roles != {"provider", "recipient"}:
        raise AgreementError(f"{bad} it needs at least one provider and one recipient.", field="parties")
    if terms.general_offer and not terms.join_as:
        raise AgreementError(
            f"{bad} a general offer must say in join_as which roles joining partners take.", field="join_as"
        )
    if not terms.general_offer and terms.join_as:
        raise AgreementError(f"{bad} join_as is only meaningful when general_offer is true.", field="join_as")


def _check_policy(terms: Terms, bad: str) -> None:
    elements = {e.name: e for e in terms.elements}
    if len(elements) != len(terms.elements):
        raise AgreementError(f"{bad} an element name appears twice in the data dictionary.", field="elements")
    for i, e in enumerate(terms.elements):
        if e.type == "code" and e.code_set is None:
            raise AgreementError(
                f"{bad} element {e.name} has type code but no code_set.", field=f"elements[{i}].code_set"
            )
        allowed = TREATMENT_TYPES.get(e.treatment)
        if allowed is not None and e.type not in allowed:
            raise AgreementError(
                f"{bad} element {e.name} has type {e.type}, which treatment {e.treatment} cannot apply to.",
                field=f"elements[{i}].type",
            )
    policy = terms.policy
    qis = "policy.quasi_identifiers"
    seen: set[str] = set()
    for qi in policy.quasi_identifiers:
        if qi in seen:
            raise AgreementError(f"{bad} quasi-identifier {qi} is listed twice.", field=qis)
        seen.add(qi)
        if qi not in elements:
            raise AgreementError(
                f"{bad} quasi-identifier {qi} is not an element of its data dictionary.", field=qis
            )
        if elements[qi].treatment == "drop":
            raise AgreementError(f"{bad} quasi-identifier {qi} is an element the policy drops.", field=qis)
    for name in policy.parameters:
        if name not in elements:
            raise AgreementError(
                f"{bad} the policy gives parameters for {name}, which is not an element.",
                field=f"policy.parameters.{name}",
            )
    outputs: dict[str, str] = {}
    for e in terms.elements:
        params = dict(policy.parameters.get(e.name, {}))
        where = f"policy.parameters.{e.name}"
        required, optional = TREATMENT_PARAMETERS[e.treatment]
        if e.treatment == "drop" and params:
            raise AgreementError(
                f"{bad} element {e.name} is dropped, yet the policy gives it parameters.", field=where
            )
        unknown = set(params) - required - optional - {"as"}
        if unknown:
            raise AgreementError(
                f"{bad} treatment {e.treatment} of element {e.name} takes no parameter {sorted(unknown)[0]}.",
                field=where,
            )
        missing = required - set(params)
        if missing:
            raise AgreementError(
                f"{bad} treatment {e.treatment} of element {e.name} needs the parameter "
                f"{sorted(missing)[0]} in policy.parameters.{e.name}.",
                field=where,
            )
        problem = parameter_problem(e.treatment, params, elements)
        if problem:
            raise AgreementError(f"{bad} element {e.name}: {problem}.", field=where)
        if e.treatment != "drop":
            out = params.get("as", e.name)
            if out in outputs:
                raise AgreementError(
                    f"{bad} elements {outputs[out]} and {e.name} would both be written as {out}.", field=where
                )
            outputs[out] = e.name


def _check_disclosure(terms: Terms, bad: str) -> None:
    """The version-2 settings: only in version 2, naming elements, and hierarchies that validate."""
    policy = terms.policy
    used = [f for f in V2_POLICY_FIELDS if f in policy.model_fields_set]
    if terms.pathshare_agreement == 1 and used:
        raise AgreementError(
            f"{bad} policy.{used[0]} is not a field of schema version 1 (set pathshare_agreement to 2).",
            field=f"policy.{used[0]}",
        )
    elements = {e.name: e for e in terms.elements}
    for name in policy.sensitive:
        if name not in elements or elements[name].treatment == "drop":
            raise AgreementError(
                f"{bad} sensitive element {name} is not an element the release carries.",
                field="policy.sensitive",
            )
        if name in policy.quasi_identifiers:
            raise AgreementError(
                f"{bad} element {name} cannot be both a quasi-identifier and sensitive.",
                field="policy.sensitive",
            )
    if (policy.l is not None or policy.t is not None) and not policy.sensitive:
        raise AgreementError(
            f"{bad} l-diversity and t-closeness need policy.sensitive to name elements.",
            field="policy.sensitive",
        )
    for name, spec in policy.hierarchies.items():
        if name not in policy.quasi_identifiers:
            raise AgreementError(
                f"{bad} the policy gives a hierarchy for {name}, which is not a quasi-identifier.",
                field=f"policy.hierarchies.{name}",
            )
        try:
            element_hierarchy(name, spec)
        except PathShareError as exc:
            raise AgreementError(
                f"{bad} {exc.message[0].lower()}{exc.message[1:]}", field=f"policy.hierarchies.{name}"
            ) from None


def element_hierarchy(name: str, spec: Mapping[str, Any] | None) -> Any:
    """The hierarchy of element ``name`` under an agreement's ``policy.hierarchies[name]``: the library's,
    restricted (``allow``, ``removable``), or the agreement's own definition (``kind`` and ``levels``)."""
    from deid import Hierarchy, element_library, hierarchy_from_dict

    spec = dict(spec or {})
    unknown = set(spec) - {"allow", "removable", "kind", "levels"}
    if unknown:
        raise AgreementError(
            f"The hierarchy of element {name} has an unknown setting {sorted(unknown)[0]!r}."
        )
    removable = spec.pop("removable", None)
    if removable is not None and not isinstance(removable, bool):
        raise AgreementError(f"The hierarchy of element {name}: 'removable' must be true or false.")
    allow = spec.pop("allow", None)
    if allow is not None and not (isinstance(allow, list) and all(isinstance(a, str) for a in allow)):
        raise AgreementError(f"The hierarchy of element {name}: 'allow' must list level names.")
    if spec:
        base = hierarchy_from_dict(name, spec)
    else:
        element = element_library().get(name)
        base = element.generalization() if element is not None else Hierarchy(name, "map")
    return base.restricted(allow, removable)


# --------------------------------------------------------------------------------------------------
# Records that travel beside the terms


@dataclass(frozen=True)
class Signature:
    """One party's Ed25519 signature over the canonical terms. ``signed_at`` is the signer's claim."""

    signer_fingerprint: str
    signing_key: str
    signed_at: str
    signature: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Termination:
    """A party's signed notice ending an agreement (signature over the record without it)."""

    agreement_id: str
    agreement_sha256: str
    terminated_by: str
    signing_key: str
    terminated_at: str
    reason: str
    signature: str

    def payload(self) -> dict[str, str]:
        d = self.to_dict()
        del d["signature"]
        return d

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Joinder:
    """A further partner's signed acceptance of a general offer's terms (by their hash)."""

    agreement_id: str
    agreement_sha256: str
    party: dict[str, Any]
    signed_at: str
    signature: str

    def payload(self) -> dict[str, Any]:
        return {
            "agreement_id": self.agreement_id,
            "agreement_sha256": self.agreement_sha256,
            "party": self.party,
            "signed_at": self.signed_at,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.payload(), "signature": self.signature}

    @property
    def fingerprint(self) -> str:
        return str(self.party["fingerprint"])


def _record_fields(obj: Any, keys: tuple[str, ...], what: str, source: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != set(keys):
        raise AgreementError(f"{source} has a malformed {what} (it needs exactly: {', '.join(keys)}).")
    for k in keys:
        if k != "party" and not isinstance(obj[k], str):
            raise AgreementError(f"{source} has a malformed {what}: {k} must be text.")
    return obj


# --------------------------------------------------------------------------------------------------
# The agreement


@dataclass(frozen=True)
class Agreement:
    """One version of an agreement: its terms (exactly as signed) and the records that travel with it.

    Construct with ``parse_agreement`` (a file) or ``Agreement.from_terms`` (a new draft); both validate.
    Values are immutable: signing, merging and terminating return new ``Agreement`` values.
    """

    body: dict[str, Any]
    terms: Terms
    signatures: tuple[Signature, ...] = ()
    joinders: tuple[Joinder, ...] = ()
    terminations: tuple[Termination, ...] = ()
    _source: str = field(default="the agreement", compare=False, repr=False)

    # ---- construction

    @classmethod
    def from_terms(cls, body: Mapping[str, Any], *, source: str = "the agreement") -> Agreement:
        """A validated, unsigned agreement from its terms (copied: later changes to ``body`` do not
        reach the agreement)."""
        return cls._build(copy.deepcopy(dict(body)), [], [], [], source)

    @classmethod
    def _build(
        cls,
        body: dict[str, Any],
        signatures: list[Any],
        joinders: list[Any],
        terminations: list[Any],
        source: str,
    ) -> Agreement:
        version = body.get("pathshare_agreement")
        if version is None:
            raise AgreementError(
                f"{source} is not a PathShare agreement (it has no pathshare_agreement field)."
            )
        if version not in SCHEMA_VERSIONS:
            raise AgreementError(
                f"{source} uses agreement schema version {version!r}, which this PathShare does not know "
                f"(it reads versions {', '.join(str(v) for v in SCHEMA_VERSIONS)})."
            )
        try:
            canonical_json(body)
        except ValueError as exc:
            raise AgreementError(f"{source} is not a valid agreement: {exc}.") from exc
        try:
            terms = Terms.model_validate(body)
        except ValidationError as exc:
            raise AgreementError(validation_sentence(exc, source)) from None
        check_terms(terms, source)
        agreement = cls(body=body, terms=terms, _source=source)
        sigs = tuple(
            Signature(
                **_record_fields(
                    s, ("signer_fingerprint", "signing_key", "signed_at", "signature"), "signature", source
                )
            )
            for s in signatures
        )
        joins = tuple(
            Joinder(
                **_record_fields(
                    j,
                    ("agreement_id", "agreement_sha256", "party", "signed_at", "signature"),
                    "joinder",
                    source,
                )
            )
            for j in joinders
        )
        terms_ = tuple(
            Termination(
                **_record_fields(
                    t,
                    (
                        "agreement_id",
                        "agreement_sha256",
                        "terminated_by",
                        "signing_key",
                        "terminated_at",
                        "reason",
                        "signature",
                    ),
                    "termination",
                    source,
                )
            )
            for t in terminations
        )
        for s in sigs:
            agreement._check_signature(s, source)
        agreement = _replace(agreement, signatures=_unique(sigs, lambda s: s.signer_fingerprint))
        for j in joins:
            agreement._check_joinder(j, source)
        agreement = _replace(agreement, joinders=_unique(joins, lambda j: j.fingerprint))
        for t in terms_:
            agreement._check_termination(t, source)
        return _replace(agreement, terminations=_unique(terms_, lambda t: (t.terminated_by, t.signature)))

    # ---- identity

    @cached_property
    def canonical_bytes(self) -> bytes:
        """The RFC 8785 bytes every party signs."""
        return canonical_json(self.body)

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the canonical terms: names this exact version (manifests, amendments)."""
        return sha256_hex(self.canonical_bytes)

    @property
    def id(self) -> str:
        return self.terms.id

    @property
    def version(self) -> int:
        return self.terms.version

    @property
    def previous(self) -> str | None:
        return self.terms.previous

    @property
    def title(self) -> str:
        return self.terms.title

    @property
    def effective(self) -> date:
        return self.terms.effective

    @property
    def expires(self) -> date:
        return self.terms.expires

    @property
    def destruction_deadline(self) -> date:
        return self.terms.destruction.deadline

    @property
    def general_offer(self) -> bool:
        return self.terms.general_offer

    # ---- parties

    def all_parties(self) -> list[Party]:
        """The signatories plus partners that joined a general offer."""
        return list(self.terms.parties) + [Party.model_validate(j.party) for j in self.joinders]

    def party(self, fingerprint: str) -> Party | None:
        """The party (original or joined) with this card fingerprint."""
        return next((p for p in self.all_parties() if p.fingerprint == fingerprint), None)

    def party_for_key(self, signing_key: str) -> Party | None:
        return next((p for p in self.all_parties() if p.signing_key == signing_key), None)

    def providers(self) -> list[Party]:
        return [p for p in self.all_parties() if "provider" in p.roles]

    def recipients(self) -> list[Party]:
        """Parties that receive data: a sealed package is encrypted to their age recipients."""
        return [p for p in self.all_parties() if "recipient" in p.roles]

    def signed_by(self, fingerprint: str) -> bool:
        return any(s.signer_fingerprint == fingerprint for s in self.signatures)

    def missing_signers(self) -> list[Party]:
        """Original parties whose signature is still missing."""
        return [p for p in self.terms.parties if not self.signed_by(p.fingerprint)]

    # ---- lifecycle

    @property
    def is_executed(self) -> bool:
        """Every original party has signed these exact terms (signatures are checked on construction)."""
        return not self.missing_signers()

    @property
    def is_terminated(self) -> bool:
        return bool(self.terminations)

    def status(self, today: date | None = None, *, superseded: bool = False) -> str:
        """draft | proposed | executed | expired | terminated | superseded (derived, never stored)."""
        today = today or date.today()
        if self.terminations:
            return "terminated"
        if superseded:
            return "superseded"
        if today > self.expires:
            return "expired"
        if self.is_executed:
            return "executed"
        return "proposed" if self.signatures else "draft"

    def in_force(self, today: date | None = None, *, superseded: bool = False) -> bool:
        """Executed, not terminated or superseded, and ``today`` within effective..expires (inclusive)."""
        today = today or date.today()
        return (
            self.is_executed
            and not self.terminations
            and not superseded
            and self.effective <= today <= self.expires
        )

    # ---- signing

    def sign(self, key: Ed25519PrivateKey, *, now: datetime | None = None) -> Agreement:
        """This agreement with our signature added (unchanged if we already signed it)."""
        pub = public_key_b64(key)
        party = next((p for p in self.terms.parties if p.signing_key == pub), None)
        if party is None:
            raise AgreementError(
                f"You are not a party to agreement {self.id} (\u201c{self.title}\u201d); "
                "only its parties can sign it."
            )
        if self.signed_by(party.fingerprint):
            return self
        sig = Signature(party.fingerprint, pub, utc_text(now), sign_document(key, self.body))
        return _replace(self, signatures=(*self.signatures, sig))

    def _check_signature(self, s: Signature, source: str) -> None:
        party = next((p for p in self.terms.parties if p.fingerprint == s.signer_fingerprint), None)
        if party is None or party.signing_key != s.signing_key:
            raise AgreementError(
                f"{source} carries a signature by {s.signer_fingerprint}, "
                "who is not a party to the agreement."
            )
        if not verify_document(s.signing_key, self.body, s.signature):
            raise AgreementError(
                f"{source} carries a bad signature by {party.org}: the terms were changed after signing or "
                "the signature is damaged."
            )

    def merged_with(self, other: Agreement) -> Agreement:
        """Signatures, joinders and terminations of both copies of the same terms."""
        if other.sha256 != self.sha256:
            raise AgreementError(f"The two copies of agreement {self.id} version {self.version} differ.")
        return _replace(
            self,
            signatures=_unique((*self.signatures, *other.signatures), lambda s: s.signer_fingerprint),
            joinders=_unique((*self.joinders, *other.joinders), lambda j: j.fingerprint),
            terminations=_unique(
                (*self.terminations, *other.terminations), lambda t: (t.terminated_by, t.signature)
            ),
        )

    # ---- termination

    def terminated_by(self, key: Ed25519PrivateKey, reason: str, *, now: datetime | None = None) -> Agreement:
        """This agreement with our signed termination record added."""
        pub = public_key_b64(key)
        party = self.party_for_key(pub)
        if party is None:
            raise AgreementError(
                f"You are not a party to agreement {self.id}; only its parties can terminate it."
            )
        if not reason.strip():
            raise AgreementError("A termination needs a reason.")
        if not self.signatures:
            raise AgreementError(f"Agreement {self.id} is an unsigned draft; there is nothing to terminate.")
        rec = Termination(self.id, self.sha256, party.fingerprint, pub, utc_text(now), reason.strip(), "")
        rec = _replace(rec, signature=sign_document(key, rec.payload()))
        return _replace(self, terminations=(*self.terminations, rec))

    def _check_termination(self, t: Termination, source: str) -> None:
        party = self.party(t.terminated_by)
        if party is None or party.signing_key != t.signing_key:
            raise AgreementError(
                f"{source} carries a termination by someone who is not a party to the agreement."
            )
        if t.agreement_id != self.id or t.agreement_sha256 != self.sha256:
            raise AgreementError(f"{source} carries a termination of a different agreement or version.")
        if not verify_document(t.signing_key, t.payload(), t.signature):
            raise AgreementError(f"{source} carries a termination with a bad signature by {party.org}.")

    # ---- general offers

    def joined_by(
        self,
        key: Ed25519PrivateKey,
        party: Mapping[str, Any],
        *,
        now: datetime | None = None,
    ) -> Agreement:
        """This general offer with a further partner's signed acceptance of the same terms.

        ``party`` is the joiner's party entry (org, kind, roles, fingerprint, signing_key,
        age_recipient, authorized_representative); its signing key must be ``key``'s.
        """
        entry = dict(party)
        rec = Joinder(self.id, self.sha256, entry, utc_text(now), "")
        rec = _replace(rec, signature=sign_document(key, rec.payload()))
        if entry.get("signing_key") != public_key_b64(key):
            raise AgreementError("A partner joins a general offer with its own signing key.")
        self._check_joinder(rec, "the joinder")
        return _replace(self, joinders=(*self.joinders, rec))

    def _check_joinder(self, j: Joinder, source: str) -> None:
        if not self.general_offer:
            raise AgreementError(
                f"Agreement {self.id} is not a general offer; no further partner can join it."
            )
        if not self.is_executed:
            raise AgreementError(
                f"Agreement {self.id} is not executed yet; partners can join a general offer "
                "once all its parties signed."
            )
        if j.agreement_id != self.id or j.agreement_sha256 != self.sha256:
            raise AgreementError(f"{source} carries a joinder to a different agreement or version.")
        try:
            p = Party.model_validate(j.party)
        except ValidationError as exc:
            raise AgreementError(validation_sentence(exc, f"{source} (a joining party)")) from None
        if not set(p.roles) <= set(self.terms.join_as or ()):
            raise AgreementError(
                f"{p.org} cannot join agreement {self.id} as {'/'.join(p.roles)}; the offer is open to "
                f"{'/'.join(self.terms.join_as or ())} only."
            )
        for q in self.terms.parties:
            if q.fingerprint == p.fingerprint or q.signing_key == p.signing_key:
                raise AgreementError(f"{p.org} is already a party to agreement {self.id}.")
        if not verify_document(p.signing_key, j.payload(), j.signature):
            raise AgreementError(f"{source} carries a joinder with a bad signature by {p.org}.")

    # ---- the de-identification engine's view

    def element_treatments(self) -> dict[str, dict[str, Any]]:
        """Per element: {treatment, params (without "as"), as (output name; None when dropped),
        quasi_identifier}. The engine builds its Policy from this plus a provider's column mapping."""
        qis = set(self.terms.policy.quasi_identifiers)
        out: dict[str, dict[str, Any]] = {}
        for e in self.terms.elements:
            params = dict(self.terms.policy.parameters.get(e.name, {}))
            as_name = params.pop("as", e.name)
            out[e.name] = {
                "treatment": e.treatment,
                "params": params,
                "as": None if e.treatment == "drop" else as_name,
                "quasi_identifier": e.name in qis,
            }
        return out

    def disclosure(self, outputs: Mapping[str, str | None] | None = None) -> Any:
        """The policy's disclosure-control settings for the engine (deid.Disclosure), keyed by output
        column names (``outputs``: element -> output name, default from the policy's "as")."""
        from deid import Disclosure

        treat = self.element_treatments()
        names = outputs or {e: t["as"] for e, t in treat.items()}
        policy = self.terms.policy
        hierarchies = {}
        for element in policy.quasi_identifiers:
            out = names.get(element)
            if out:
                hierarchies[out] = element_hierarchy(element, policy.hierarchies.get(element))
        from deid import element_library

        library = element_library()
        labels = {
            names[e]: library[e].label
            for e in [*policy.quasi_identifiers, *policy.sensitive]
            if names.get(e) and e in library
        }
        return Disclosure(
            labels=labels,
            hierarchies=hierarchies,
            sensitive=tuple(names[s] for s in policy.sensitive if names.get(s)),
            l=policy.l,
            l_kind=policy.l_kind,
            t=policy.t,
            suppression_limit=policy.suppression_limit,
            fairness=policy.fairness,
        )

    # ---- files

    def to_document(self) -> dict[str, Any]:
        """The exchange form: terms plus signatures (and joinders / terminations when any)."""
        doc = copy.deepcopy(self.body)  # a copy: callers may edit it without touching this agreement
        doc["signatures"] = [s.to_dict() for s in self.signatures]
        if self.joinders:
            doc["joinders"] = [j.to_dict() for j in self.joinders]
        if self.terminations:
            doc["terminations"] = [t.to_dict() for t in self.terminations]
        return doc

    def to_json_bytes(self) -> bytes:
        """The agreement file, pretty-printed UTF-8 JSON."""
        return (json.dumps(self.to_document(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    new = dataclasses.replace(obj, **changes)
    return new


def _unique(items: Iterable[Any], key: Any) -> tuple[Any, ...]:
    seen: set[Any] = set()
    out = []
    for item in items:
        k = key(item)
        if k not in seen:
            seen.add(k)
            out.append(item)
    return tuple(out)


# The largest agreement file we read: a generous bound for a text document, not a data file.
MAX_AGREEMENT_BYTES = 4 * 1024 * 1024


def load_json(data: bytes | str, source: str) -> Any:
    """Parse JSON text for an agreement: one sentence on malformed, oversized or too deeply nested JSON
    or a key given twice (two values for one key would let a signer and a verifier read different terms)."""
    return parse_json(
        data, source, what="a PathShare agreement", error=AgreementError, max_bytes=MAX_AGREEMENT_BYTES
    )


def parse_agreement(data: bytes | str, *, source: str = "the agreement") -> Agreement:
    """Read an agreement file's bytes: JSON, schema, consistency, and every signature it carries."""
    doc = load_json(data, source)
    if not isinstance(doc, dict):
        raise AgreementError(f"{source} is not a PathShare agreement (it is not a JSON object).")
    body = {k: v for k, v in doc.items() if k not in UNSIGNED_KEYS}
    lists = []
    for key in UNSIGNED_KEYS:
        value = doc.get(key, [])
        if not isinstance(value, list):
            raise AgreementError(f"{source} is not a valid agreement: {key} must be a list.")
        lists.append(value)
    return Agreement._build(body, lists[0], lists[1], lists[2], source)


def amendment_terms(previous: Agreement, new_terms: Mapping[str, Any]) -> dict[str, Any]:
    """``new_terms`` as the next version of ``previous``: same id, version + 1, linked by hash."""
    body = {k: v for k, v in new_terms.items() if k not in UNSIGNED_KEYS}
    if body.get("id") not in (None, previous.id):
        raise AgreementError(
            f"The amendment names agreement {body.get('id')}, not {previous.id}; "
            "an amendment keeps the agreement's id."
        )
    body["id"] = previous.id
    body["version"] = previous.version + 1
    body["previous"] = previous.sha256
    return body


def agreement_json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of an agreement file, schema version 1: the terms plus the unsigned records.

    It checks structure only; the consistency rules (dates in order, policy matching the elements,
    signatures) are PathShare's own and documented in docs/agreement-schema.md.
    """
    schema = Terms.model_json_schema(mode="validation")
    text = {"type": "string", "minLength": 1}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://pathshare.example/schemas/agreement-{SCHEMA_VERSION}.json"
    schema["title"] = f"PathShare data-sharing agreement, schema version {SCHEMA_VERSION}"
    schema["properties"]["signatures"] = {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["signer_fingerprint", "signing_key", "signed_at", "signature"],
            "properties": {k: text for k in ("signer_fingerprint", "signing_key", "signed_at", "signature")},
        },
    }
    schema["properties"]["joinders"] = {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": ["agreement_id", "agreement_sha256", "party", "signed_at", "signature"],
            "properties": {
                **{k: text for k in ("agreement_id", "agreement_sha256", "signed_at", "signature")},
                "party": {"$ref": "#/$defs/Party"},
            },
        },
    }
    keys = (
        "agreement_id",
        "agreement_sha256",
        "terminated_by",
        "signing_key",
        "terminated_at",
        "reason",
        "signature",
    )
    schema["properties"]["terminations"] = {
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": list(keys),
            "properties": {k: text for k in keys},
        },
    }
    return schema
