"""De-identification policy: one rule per input column, remainder dropped unless told otherwise.

A :class:`Policy` is a list of :class:`ColumnRule` (source column, treatment, output name, whether the
output is a quasi-identifier, treatment parameters) plus dataset-level settings (``k``,
``drop_unlisted``). The standalone JSON form (docs/policy-format.md)::

    {"pathshare_policy": 1, "k": 5, "drop_unlisted": true,
     "columns": {"SSID": {"treatment": "record_code", "as": "student_code"}, ...}}

is read by :func:`load_policy`; an agreement builds the same :class:`Policy` from its data dictionary
with :meth:`Policy.from_rules`. Validation happens on construction (treatments and their parameters,
output-name collisions) and against an input with :meth:`Policy.check_columns` (a column the input
lacks is named, with close matches suggested).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deid._column_rule import ColumnRule
from deid._jsonread import read_json_file
from deid.errors import PolicyError

if TYPE_CHECKING:
    from deid._elements import Element

MAX_POLICY_BYTES = 4 << 20  # a policy is a few kilobytes of rules

POLICY_VERSION = 1
_RULE_KEYS = {"treatment", "as", "quasi_identifier"}


@dataclass(frozen=True)
class Policy:
    """A validated de-identification policy (see the module docstring)."""

    rules: tuple[ColumnRule, ...]
    k: int = 5
    drop_unlisted: bool = True
    name: str = field(default="The policy", compare=False)  # how messages refer to it, at sentence start
    # The disclosure-control search (deid/_disclosure.py): hierarchies, l, t, suppression limit. None:
    # k is reached by the older greedy cell suppression (deid/_risk.py), for policy files without it.
    disclosure: Any = None

    def __post_init__(self) -> None:
        from deid._registry import TREATMENTS

        where = self.name
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise PolicyError(f"{where}: 'k' must be a whole number of at least 1.")
        if not isinstance(self.drop_unlisted, bool):
            raise PolicyError(f"{where}: 'drop_unlisted' must be true or false.")
        if self.disclosure is not None:
            self.disclosure.check(where)
            outputs_ = {r.output_name for r in self.rules if r.output_name}
            qis_ = set(self.quasi_identifiers)
            for column in [*self.disclosure.sensitive, *self.disclosure.hierarchies]:
                if column not in outputs_:
                    raise PolicyError(f"{where}: 'disclosure' names {column}, which is not an output column.")
            for column in self.disclosure.hierarchies:
                if column not in qis_:
                    raise PolicyError(f"{where}: {column} has a hierarchy but is not a quasi-identifier.")
        seen_sources: set[str] = set()
        outputs: dict[str, str] = {}
        for rule in self.rules:
            if rule.source in seen_sources:
                raise PolicyError(f"{where}: column '{rule.source}' has more than one rule.")
            seen_sources.add(rule.source)
            cls = TREATMENTS.get(rule.treatment)
            if cls is None:
                hint = _suggest(rule.treatment, TREATMENTS)
                raise PolicyError(
                    f"{where}: column '{rule.source}' has an unknown treatment '{rule.treatment}'{hint}."
                )
            cls.check_params(rule, where)
            out = rule.output_name
            if rule.output is not None and (not isinstance(rule.output, str) or not rule.output.strip()):
                raise PolicyError(f"{where}: column '{rule.source}' has an empty 'as' name.")
            if rule.treatment == "drop" and rule.quasi_identifier:
                raise PolicyError(
                    f"{where}: column '{rule.source}' is dropped, so it cannot be a quasi-identifier."
                )
            if out is not None:
                if out in outputs:
                    raise PolicyError(
                        f"{where}: columns '{outputs[out]}' and '{rule.source}' would both "
                        f"be written as '{out}'; give one a different 'as' name."
                    )
                outputs[out] = rule.source

    # ------------------------------------------------------------------------- construction

    @classmethod
    def from_rules(
        cls,
        rules: Iterable[ColumnRule],
        *,
        k: int = 5,
        drop_unlisted: bool = True,
        name: str = "The policy",
        disclosure: Any = None,
    ) -> Policy:
        """Build a policy from rules (how an agreement's data dictionary becomes a policy)."""
        return cls(tuple(rules), k=k, drop_unlisted=drop_unlisted, name=name, disclosure=disclosure)

    @classmethod
    def from_dict(cls, data: Any, *, name: str = "The policy") -> Policy:
        """Validate the standalone policy JSON (already parsed) and build a Policy."""
        if not isinstance(data, dict):
            raise PolicyError(f"{name} must be a JSON object with 'pathshare_policy' and 'columns'.")
        version = data.get("pathshare_policy")
        if version is None:
            raise PolicyError(f"{name} is not a PathShare policy (it has no 'pathshare_policy' version).")
        if version != POLICY_VERSION:
            raise PolicyError(
                f"{name} has policy version {version!r}; this PathShare reads version {POLICY_VERSION}."
            )
        known = {"pathshare_policy", "k", "drop_unlisted", "columns", "description", "disclosure"}
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"{name} has unknown setting(s): {', '.join(sorted(unknown))}.")
        columns = data.get("columns")
        if not isinstance(columns, dict) or not columns:
            raise PolicyError(f"{name} needs a non-empty 'columns' object naming the input's columns.")
        rules = []
        for source, spec in columns.items():
            if not isinstance(spec, dict):
                raise PolicyError(
                    f"{name}: the rule for column '{source}' must be an object with a 'treatment'."
                )
            if "treatment" not in spec:
                raise PolicyError(f"{name}: column '{source}' has no 'treatment'.")
            treatment = spec["treatment"]
            if not isinstance(treatment, str):
                raise PolicyError(f"{name}: the treatment of column '{source}' must be a name.")
            qi = spec.get("quasi_identifier", False)
            if not isinstance(qi, bool):
                raise PolicyError(f"{name}: 'quasi_identifier' of column '{source}' must be true or false.")
            params = {key: value for key, value in spec.items() if key not in _RULE_KEYS}
            rules.append(
                ColumnRule(
                    source=source,
                    treatment=treatment,
                    output=spec.get("as"),
                    quasi_identifier=qi,
                    params=params,
                )
            )
        disclosure = None
        if "disclosure" in data:
            from deid._disclosure import Disclosure

            disclosure = Disclosure.from_dict(data["disclosure"], name)
        return cls(
            tuple(rules),
            k=data.get("k", 5),
            drop_unlisted=data.get("drop_unlisted", True),
            name=name,
            disclosure=disclosure,
        )

    def to_dict(self) -> dict[str, Any]:
        """The standalone policy JSON for this policy."""
        out = {
            "pathshare_policy": POLICY_VERSION,
            "k": self.k,
            "drop_unlisted": self.drop_unlisted,
            "columns": {r.source: r.to_dict() for r in self.rules},
        }
        if self.disclosure is not None:
            out["disclosure"] = self.disclosure.to_dict()
        return out

    # ------------------------------------------------------------------------------ queries

    @property
    def quasi_identifiers(self) -> list[str]:
        """Output names of the quasi-identifier columns, in policy order."""
        return [r.output_name for r in self.rules if r.quasi_identifier and r.output_name]

    @property
    def needs_secret(self) -> bool:
        """True when a treatment needs the secret (record_code, token, date_shift)."""
        from deid._registry import TREATMENTS

        return any(TREATMENTS[r.treatment].needs_secret for r in self.rules)

    def rule_for(self, source: str) -> ColumnRule | None:
        """The rule for an input column, if any."""
        return next((r for r in self.rules if r.source == source), None)

    def check_columns(self, columns: Sequence[str], *, input_name: str = "the input") -> None:
        """Raise PolicyError if the policy names a column the input lacks (suggesting close matches),
        or if a passed-through column would collide with an output name."""
        present = set(columns)
        for rule in self.rules:
            needed = [rule.source]
            by = rule.params.get("by")
            if isinstance(by, str):
                needed.append(by)
            parts = rule.params.get("from")
            if isinstance(parts, list):
                needed.extend(p for p in parts if isinstance(p, str))
            for col in needed:
                if col not in present:
                    hint = _suggest(col, columns)
                    raise PolicyError(
                        f"{self.name} names column '{col}', which {input_name} does not have{hint}."
                    )
        if not self.drop_unlisted:
            listed = {r.source for r in self.rules}
            outputs = {r.output_name: r.source for r in self.rules if r.output_name}
            for col in columns:
                if col not in listed and col in outputs:
                    raise PolicyError(
                        f"{self.name}: unlisted column '{col}' passes through and would "
                        f"collide with the output of '{outputs[col]}'."
                    )


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Read and validate a standalone policy file (JSON). Raises PolicyError with one sentence."""
    p = Path(path)
    source = f"The policy file {p}"
    data = read_json_file(p, source, what="a policy", error=PolicyError, max_bytes=MAX_POLICY_BYTES)
    return Policy.from_dict(data, name=f"The policy file {p}")


def _suggest(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    w = word.lower()
    close = [lowered[c] for c in difflib.get_close_matches(w, list(lowered), n=3, cutoff=0.6)]
    if not close:  # "ZIP" for "Zip Code": one name inside the other
        close = [c for lc, c in lowered.items() if len(w) >= 3 and (w in lc or lc in w)][:3]
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


# The element-keyed policy of a mapped table (the columns are element names): what an agreement's
# data dictionary becomes once an export is mapped onto it.
def policy_from_elements(
    elements: Sequence[Element],
    *,
    treatments: Mapping[str, Mapping[str, Any]] | None = None,
    k: int = 5,
    mapped: Iterable[str] | None = None,
    name: str = "the agreement's policy",
    disclosure: Any = None,
) -> Policy:
    """The de-identification :class:`~deid.Policy` for a mapped table (whose columns are element names).

    Each element's treatment is ``treatments[name]`` when given (an agreement's
    ``element_treatments()``), else the element's default; quasi-identifier follows the treatment's
    ``quasi_identifier`` key, else the element's category. ``mapped`` limits the rules to the elements
    present in the table. Unlisted columns are dropped.
    """
    present = set(mapped) if mapped is not None else None
    rules = []
    for el in elements:
        if present is not None and el.name not in present:
            continue
        spec = dict((treatments or {}).get(el.name) or el.treatment)
        # Agreement.element_treatments() nests parameters under "params"; policy files do not.
        nested = spec.pop("params", None)
        if isinstance(nested, Mapping):
            spec.update(nested)
        treatment = spec.pop("treatment", "keep")
        output = spec.pop("as", None)
        if output == el.name:
            output = None
        qi = spec.pop("quasi_identifier", None)
        if qi is None:
            qi = el.quasi_identifier and treatment != "drop"
        rules.append(
            ColumnRule(
                source=el.name, treatment=treatment, output=output, quasi_identifier=bool(qi), params=spec
            )
        )
    return Policy.from_rules(rules, k=k, drop_unlisted=True, name=name, disclosure=disclosure)
