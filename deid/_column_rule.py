"""One column's rule: the input column, its treatment, the output name, whether it is a
quasi-identifier, and the treatment's settings. The treatments read rules and the policy validates
them with the treatments, so the rule sits below both (it used to live in deid/_policy.py, which the
treatments imported while the policy looked the treatments up: an import cycle).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deid.errors import PolicyError


@dataclass(frozen=True)
class ColumnRule:
    """How one input column is treated.

    ``source`` is the input column; ``treatment`` one of :data:`deid.TREATMENTS`; ``output`` the output
    column name (``as`` in JSON; default: the source name); ``quasi_identifier`` puts the output into
    the k-anonymity check; ``params`` are the treatment's own settings (e.g. ``{"to": "year"}``).
    """

    source: str
    treatment: str
    output: str | None = None
    quasi_identifier: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def output_name(self) -> str | None:
        """The output column's name, or None when the column is dropped."""
        if self.treatment == "drop":
            return None
        return self.output or self.source

    def to_dict(self) -> dict[str, Any]:
        """The rule in the policy file's JSON form (without the source name, which is the key)."""
        out: dict[str, Any] = {"treatment": self.treatment}
        if self.output:
            out["as"] = self.output
        if self.quasi_identifier:
            out["quasi_identifier"] = True
        out.update(self.params)
        return out


def parse_reference_date(value: Any, where: str) -> dt.date:
    """Parse a policy's ``reference_date`` (YYYY-MM-DD)."""
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise PolicyError(f"{where}: reference_date must be a date written YYYY-MM-DD.") from exc
