"""Which outcome measures of the metrics catalog an agreement's purpose names, and which elements the
agreement would have to share for them; and the column each shared element has in the opened
packages (:func:`released_columns`; not ``agreements.agreement_elements``, the dictionary's
elements). The codebook lists the measures and the outcome workflow computes them: both build on this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agreements._agreement import Agreement
    from deid import Catalog, Metric

_DOMAIN_OF_KIND = {"district": "k12", "college": "college"}



def released_columns(agreement: Agreement) -> dict[str, str]:
    """Element name -> the column it has in the opened packages, for elements the agreement shares."""
    params = agreement.terms.policy.parameters
    out = {}
    for el in agreement.terms.elements:
        if el.treatment == "drop":
            continue
        out[el.name] = str((params.get(el.name) or {}).get("as", el.name))
    return out


def metrics_check(agreement: Agreement, catalog: Catalog | None = None) -> list[tuple[Metric, list[str]]]:
    """The metrics the agreement's purpose names, each with the elements the agreement should share
    for it and does not: those a provider would hold (domain "any" or a provider's kind), not those a
    recipient computes from its own records."""
    from deid import load_elements, metrics_named_in

    domains = {"any"} | {_DOMAIN_OF_KIND.get(p.kind, "any") for p in agreement.providers()}
    domain = {e.name: e.domain for e in load_elements()}
    shared = set(released_columns(agreement))
    out = []
    for m in metrics_named_in(agreement.terms.purpose, catalog):
        lack = [e for e in m.requires if e not in shared and domain.get(e, "any") in domains]
        out.append((m, lack))
    return out
