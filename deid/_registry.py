"""The treatment registry: every treatment class by name, filled here, explicitly.

The engine's treatments live in ``deid/_treatments.py`` and ``link_tokens`` in ``deid/_linktokens.py``
(which builds on them). The registry sits above both, so neither imports the other back: it used to be
filled from the bottom of the linkage module after ``_treatments`` imported it at its end, an import cycle
whose order decided whether policies could see ``link_tokens``. To add a treatment, list its class here
(docs/architecture.md, "How to add a treatment").
"""

from __future__ import annotations

from deid._column_rule import ColumnRule
from deid._linktokens import LinkTokens
from deid._treatments import ENGINE_TREATMENTS, Treatment

TREATMENTS: dict[str, type[Treatment]] = {cls.name: cls for cls in (*ENGINE_TREATMENTS, LinkTokens)}


def make_treatment(rule: ColumnRule) -> Treatment:
    """The treatment object for a (validated) rule."""
    return TREATMENTS[rule.treatment](rule)
