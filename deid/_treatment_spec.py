"""The treatments' specification, written once: each treatment's name, the parameters it requires and
accepts, the element types it applies to, whether it needs the secret, and the defaults of its optional
parameters.

The engine's treatment classes (deid/_treatments.py, deid/_linktokens.py) take their ``required``,
``optional`` and ``needs_secret`` from here, and the agreement schema (agreements/_agreement.py) derives
its choice of treatments, its parameter table and its type table from here: a treatment or a parameter
is added in this one place. This module is pure Python (no pyarrow), so checking an agreement stays
light.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# The element types of a data dictionary (docs/agreement-schema.md).
ELEMENT_TYPES = ("string", "text", "integer", "decimal", "date", "boolean", "code")
DATE_GRANULARITIES = ("year", "year_month", "age", "age_band")
# A default that is the policy's k (rare categories and small ZIP3 areas are those under k rows).
POLICY_K = "the policy's k"

_OUTPUT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class TreatmentSpec:
    """One treatment, as a policy or an agreement may name it. Every treatment but ``drop`` also takes
    ``as`` (the output column's name), which is not listed."""

    name: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    types: frozenset[str] = frozenset(ELEMENT_TYPES)  # the element types it applies to
    needs_secret: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)  # optional parameter -> its default

    @property
    def parameters(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional)


_IDENTIFIER = frozenset({"string", "integer"})
TREATMENT_SPECS: dict[str, TreatmentSpec] = {
    spec.name: spec
    for spec in (
        TreatmentSpec("keep"),
        TreatmentSpec("drop"),
        TreatmentSpec(
            "record_code", optional=("namespace", "element", "repair"), types=_IDENTIFIER, needs_secret=True
        ),
        TreatmentSpec(
            "token", optional=("from", "element", "repair"), types=_IDENTIFIER, needs_secret=True
        ),
        TreatmentSpec(
            "generalize_date",
            required=("to",),
            optional=("reference_date", "edges"),
            types=frozenset({"date"}),
            defaults={"edges": "5-year bands from 0 to 80"},
        ),
        TreatmentSpec(
            "date_shift",
            optional=("by", "max_days"),
            types=frozenset({"date"}),
            needs_secret=True,
            defaults={"max_days": 30, "by": "the first coded or tokenized column"},
        ),
        TreatmentSpec(
            "bucket", required=("edges",), optional=("top", "bottom"), types=frozenset({"integer", "decimal"})
        ),
        TreatmentSpec(
            "zip3",
            optional=("min_count",),
            types=frozenset({"string", "code"}),
            defaults={"min_count": POLICY_K},
        ),
        # min_count is optional (default: the policy's k) in policies and agreements alike. The agreement
        # schema once required it while the engine did not; k is the rule the engine applies, and an
        # agreement's policy always states its k, so leaving min_count out is well defined.
        TreatmentSpec(
            "recode_rare",
            optional=("min_count", "other"),
            types=frozenset({"string", "code"}),
            defaults={"min_count": POLICY_K, "other": "Other"},
        ),
        TreatmentSpec("redact_text", types=frozenset({"string", "text"})),
        # Several keyed linkage tokens per student (deid/_linktokens.py): the element is the state student
        # ID, "from" the name/birth-date/sex elements that derive the fallback keys
        # (docs/linkage-threat-model.md).
        TreatmentSpec(
            "link_tokens",
            required=("from",),
            optional=("fields", "id", "baseline", "element", "repair", "sex_codes"),
            types=_IDENTIFIER,
            needs_secret=True,
            defaults={"id": True, "baseline": False},
        ),
    )
}
TREATMENT_NAMES: tuple[str, ...] = tuple(TREATMENT_SPECS)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parameter_problem(treatment: str, params: Mapping[str, Any], elements: Collection[str]) -> str:
    """One phrase saying what is wrong with the values of a treatment's parameters in a data dictionary
    (``elements``: the names its ``by`` and ``from`` may refer to), or "" when they are fine."""
    if "as" in params and not (isinstance(params["as"], str) and _OUTPUT_NAME.match(params["as"])):
        return "'as' must be a lowercase output name such as birth_year"
    edges = params.get("edges")
    if "edges" in params and not (
        isinstance(edges, list)
        and len(edges) >= 2
        and all(_is_number(x) for x in edges)
        and all(a < b for a, b in itertools.pairwise(edges))
    ):
        return "'edges' must be at least two numbers in increasing order"
    for key in ("min_count", "max_days"):
        if key in params and not (
            isinstance(params[key], int) and not isinstance(params[key], bool) and params[key] >= 1
        ):
            return f"'{key}' must be a whole number of at least 1"
    for key in ("top", "bottom"):
        if key in params and not _is_number(params[key]):
            return f"'{key}' must be a number"
    if "other" in params and not (isinstance(params["other"], str) and params["other"]):
        return "'other' must be a label"
    if treatment == "generalize_date":
        to = params.get("to")
        if to not in DATE_GRANULARITIES:
            return "'to' must be one of " + ", ".join(DATE_GRANULARITIES)
        if to in ("age", "age_band") and "reference_date" not in params:
            return f"generalizing to {to} needs a reference_date"
        if to == "age_band" and "edges" not in params:
            return "generalizing to age_band needs edges"
        ref = params.get("reference_date")
        if "reference_date" in params and not _is_iso_date(ref):
            return "'reference_date' must be a date written YYYY-MM-DD"
    if "namespace" in params and not (isinstance(params["namespace"], str) and params["namespace"]):
        return "'namespace' must be a name"
    if "by" in params and params["by"] not in elements:
        return "'by' must name the element that identifies the student"
    if treatment in ("token", "link_tokens") and "from" in params:
        src = params["from"]
        if not (isinstance(src, list) and src and all(isinstance(s, str) for s in src)):
            return "'from' must list element names"
        for s in src:
            if s not in elements:
                return f"'from' names {s}, which is not an element"
    return ""


def _is_iso_date(value: Any) -> bool:
    if isinstance(value, date):
        return not isinstance(value, datetime)
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True
