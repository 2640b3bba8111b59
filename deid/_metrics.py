"""The metrics catalog: career-pathway outcome metrics defined over the element library.

The catalog ships as ``deid/data/metrics.json`` beside the element library (``elements.json``) and is
versioned (``version``; a release of tables names the version it used). A :class:`Metric` counts
students: a *cohort* (the denominator), the students of the cohort who reach the outcome (the
*numerator*), over a *time window* (plain words; a window the data must show is a ``years_after``
condition), broken down by the *disaggregations* it allows, and it names the elements it *requires*.

A condition (``where``) is one of:

``{"element": E, "in": [codes]}``         E's value is one of the codes
``{"element": E, "present": true}``       E has a value
``{"element": E, "at_least": X}``         E's number is X or more (a bucket such as ``[12, 24)`` or
                                          ``>= 60`` counts when it settles the question, else refused)
``{"years_after": {"from": S, "to": T, "min": a, "max": b}}``  the academic year of term T starts
                                          a to b years (b excluded) after the school year S ends
``{"all": [...]}`` / ``{"any": [...]}``   every / some of the conditions

:func:`metrics_named_in` finds the metrics an agreement's purpose names (by their ``purpose_terms``);
:func:`missing_elements` says which required elements an element list lacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deid._jsonread import read_json_file
from deid.errors import InputError, PolicyError

if TYPE_CHECKING:  # pandas loads only when a metric is computed
    import pandas as pd

_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_LEAF_KEYS = ("in", "present", "at_least")


@dataclass(frozen=True)
class Metric:
    """One outcome metric of the catalog (see the module docstring)."""

    id: str
    label: str
    definition: str
    cohort_label: str
    cohort: Mapping[str, Any]
    numerator_label: str
    numerator: Mapping[str, Any]
    time_window: str
    disaggregations: tuple[str, ...]
    requires: tuple[str, ...]
    purpose_terms: tuple[str, ...] = ()

    @property
    def cohort_key(self) -> str:
        """Metrics with the same cohort rule share this key (and so their denominators)."""
        return json.dumps(self.cohort, sort_keys=True)

    def elements(self) -> set[str]:
        """Every element the metric's cohort and numerator read."""
        return _condition_elements(self.cohort) | _condition_elements(self.numerator)


@dataclass(frozen=True)
class Catalog:
    """The metrics catalog: its version and its metrics, in catalog order."""

    version: str
    metrics: tuple[Metric, ...]

    def get(self, metric_id: str) -> Metric:
        for m in self.metrics:
            if m.id == metric_id:
                return m
        known = ", ".join(m.id for m in self.metrics)
        raise PolicyError(f"The metrics catalog has no metric {metric_id!r}; it has {known}.")

    def ids(self) -> list[str]:
        return [m.id for m in self.metrics]


def _condition_elements(cond: Mapping[str, Any]) -> set[str]:
    if "all" in cond or "any" in cond:
        return set().union(*(_condition_elements(c) for c in cond.get("all", cond.get("any", ()))))
    if "years_after" in cond:
        return {cond["years_after"]["from"], cond["years_after"]["to"]}
    return {cond["element"]}


def _check_condition(cond: Any, where: str, known: set[str]) -> None:
    if not isinstance(cond, Mapping):
        raise PolicyError(f"{where} is not a condition (a JSON object).")
    if "all" in cond or "any" in cond:
        parts = cond.get("all", cond.get("any"))
        if len(cond) != 1 or not isinstance(parts, list) or not parts:
            raise PolicyError(f"{where}: 'all' or 'any' takes a non-empty list and nothing else.")
        for i, part in enumerate(parts):
            _check_condition(part, f"{where}[{i}]", known)
        return
    if "years_after" in cond:
        spec = cond["years_after"]
        if not isinstance(spec, Mapping) or set(spec) != {"from", "to", "min", "max"}:
            raise PolicyError(f"{where}: 'years_after' needs exactly from, to, min and max.")
        for key in ("from", "to"):
            if spec[key] not in known:
                raise PolicyError(f"{where} names {spec[key]!r}, which is not in the element library.")
        if not all(isinstance(spec[k], int) for k in ("min", "max")) or spec["min"] >= spec["max"]:
            raise PolicyError(f"{where}: 'years_after' needs whole numbers min < max.")
        return
    element = cond.get("element")
    if element not in known:
        raise PolicyError(f"{where} names {element!r}, which is not in the element library.")
    tests = [k for k in _LEAF_KEYS if k in cond]
    if len(tests) != 1 or set(cond) != {"element", tests[0]}:
        raise PolicyError(f"{where} needs the element and exactly one of {', '.join(_LEAF_KEYS)}.")
    value = cond[tests[0]]
    ok = {
        "in": isinstance(value, list) and value and all(isinstance(v, str) for v in value),
        "present": value is True,
        "at_least": isinstance(value, int | float) and not isinstance(value, bool),
    }[tests[0]]
    if not ok:
        raise PolicyError(f"{where}: the value of {tests[0]!r} is not valid.")


def _text(data: Mapping[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where} has no {key}.")
    return value


def catalog_from_json(data: Any, source: str = "the metrics catalog") -> Catalog:
    """Parse and check a catalog; PolicyError naming ``source`` and the metric when it is invalid."""
    from deid._elements import load_elements

    if not isinstance(data, Mapping) or data.get("pathshare_metrics") != 1:
        raise PolicyError(f"{source} is not a PathShare metrics catalog (format 1).")
    version = _text(data, "version", source)
    raw = data.get("metrics")
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{source} has no list of metrics.")
    known = {e.name for e in load_elements()}
    out: list[Metric] = []
    for i, item in enumerate(raw):
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("id"), str)
            or not _ID_RE.match(item["id"])
        ):
            raise PolicyError(f"Metric {i + 1} of {source} has no valid id (lower-case letters, digits, _).")
        where = f"Metric {item['id']} of {source}"
        for part in ("cohort", "numerator"):
            if not isinstance(item.get(part), Mapping) or "where" not in item[part]:
                raise PolicyError(f"{where} has no {part} condition.")
            _check_condition(item[part]["where"], f"{where}: its {part}", known)
        dis = item.get("disaggregations", [])
        req = item.get("requires", [])
        for name in (*dis, *req):
            if name not in known:
                raise PolicyError(f"{where} names {name!r}, which is not in the element library.")
        metric = Metric(
            id=item["id"],
            label=_text(item, "label", where),
            definition=_text(item, "definition", where),
            cohort_label=str(item["cohort"].get("label", "")),
            cohort=item["cohort"]["where"],
            numerator_label=str(item["numerator"].get("label", "")),
            numerator=item["numerator"]["where"],
            time_window=_text(item, "time_window", where),
            disaggregations=tuple(dis),
            requires=tuple(req),
            purpose_terms=tuple(str(t).lower() for t in item.get("purpose_terms", ())),
        )
        undeclared = metric.elements() - set(metric.requires)
        if undeclared:
            raise PolicyError(
                f"{where} reads {', '.join(sorted(undeclared))} without listing it in requires."
            )
        out.append(metric)
    ids = [m.id for m in out]
    if len(set(ids)) != len(ids):
        raise PolicyError(f"{source} defines a metric id twice.")
    return Catalog(version, tuple(out))


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The catalog shipped with PathShare, or the one in the JSON file ``path``."""
    if path is None:
        return _shipped()
    p = Path(path)
    return catalog_from_json(read_json_file(p, str(p), what="a metrics catalog"), str(p))


@lru_cache(maxsize=1)
def _shipped() -> Catalog:
    text = resources.files("deid").joinpath("data/metrics.json").read_text(encoding="utf-8")
    return catalog_from_json(json.loads(text), "the metrics catalog")


def metrics_named_in(purpose: str, catalog: Catalog | None = None) -> list[Metric]:
    """The metrics whose purpose terms appear (as words) in ``purpose`` — what an agreement is for."""
    text = " " + re.sub(r"[^a-z0-9\-]+", " ", purpose.lower()) + " "
    found = []
    for m in (catalog or load_catalog()).metrics:
        if any(f" {term} " in text or (" " not in term and f" {term}" in text) for term in m.purpose_terms):
            found.append(m)
    return found


def missing_elements(metric: Metric, elements: Iterable[str]) -> list[str]:
    """The elements ``metric`` requires that ``elements`` lacks, in the metric's order."""
    have = set(elements)
    return [e for e in metric.requires if e not in have]


# ---------------------------------------------------------------------------------------- evaluation

_BUCKET = re.compile(r"^\s*\[\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)\s*$")
_AT_LEAST = re.compile(r"^\s*>=\s*(-?[\d.]+)\s*$")
_TERM = re.compile(r"^(\d{4})(FA|SP|SU|WI)$")
_YEAR = re.compile(r"^(\d{4})\s*[-/]\s*(\d{2}|\d{4})$")


def _at_least(col: pd.Series, x: float, element: str) -> pd.Series:
    """Whether each value is at least ``x``: numbers, and buckets that settle it ([a, b) with a ≥ x or
    b ≤ x; ">= a" with a ≥ x). A bucket straddling ``x`` cannot say: refused, naming the element."""
    import numpy as np
    import pandas as pd

    text = col.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    out = pd.Series(num >= x, index=col.index).fillna(False).astype(bool)
    rest = text.notna() & num.isna() & (text != "")
    if rest.any():
        low = text[rest].str.extract(_BUCKET)
        top = text[rest].str.extract(_AT_LEAST)[0].astype(float)
        lo, hi = low[0].astype(float), low[1].astype(float)
        yes = (lo >= x) | (top >= x)
        no = hi <= x
        unsure = ~(yes | no)
        if bool(unsure.any()):
            raise InputError(
                f"The values of {element} are ranges that do not say whether a student reached {x:g}; "
                f"the metric needs {element} in finer ranges or as numbers."
            )
        out.loc[yes.index] = np.asarray(yes, dtype=bool)
    return out


def _academic_start(term: pd.Series) -> pd.Series:
    """The calendar year in which a term's academic year starts (2026FA, 2027SP, 2027SU → 2026)."""
    import pandas as pd

    parts = term.astype("string").str.strip().str.upper().str.extract(_TERM)
    year = pd.to_numeric(parts[0], errors="coerce")
    return year.where(parts[1] == "FA", year - 1)


def _school_year_end(year: pd.Series) -> pd.Series:
    """The calendar year a school year ends in (2025-26 → 2026; a plain 2026 stays)."""
    import pandas as pd

    text = year.astype("string").str.strip()
    parts = text.str.extract(_YEAR)
    start = pd.to_numeric(parts[0], errors="coerce")
    plain = pd.to_numeric(text, errors="coerce")
    return (start + 1).fillna(plain)


def evaluate(cond: Mapping[str, Any], frame: pd.DataFrame) -> pd.Series:
    """A boolean Series: which rows of ``frame`` (one column per element) meet ``cond``. A missing
    value meets no test but ``present: false`` would (not offered: absence is not an outcome)."""
    import pandas as pd

    if "all" in cond:
        out = pd.Series(True, index=frame.index)
        for part in cond["all"]:
            out &= evaluate(part, frame)
        return out
    if "any" in cond:
        out = pd.Series(False, index=frame.index)
        for part in cond["any"]:
            out |= evaluate(part, frame)
        return out
    if "years_after" in cond:
        spec = cond["years_after"]
        start = _per_value(frame[spec["to"]], _academic_start)
        end = _per_value(frame[spec["from"]], _school_year_end)
        gap = pd.Series(start, index=frame.index) - pd.Series(end, index=frame.index)
        return ((gap >= spec["min"]) & (gap < spec["max"])).fillna(False).astype(bool)
    col = frame[cond["element"]]
    if "in" in cond:
        wanted = cond["in"]

        def test(v: pd.Series) -> pd.Series:
            return v.astype("string").str.strip().isin(wanted).fillna(False).astype(bool)
    elif "present" in cond:

        def test(v: pd.Series) -> pd.Series:
            return (v.notna() & (v.astype("string").str.strip() != "")).fillna(False).astype(bool)
    else:
        x, element = float(cond["at_least"]), cond["element"]

        def test(v: pd.Series) -> pd.Series:
            return _at_least(v, x, element)

    return pd.Series(_per_value(col, test), index=frame.index).fillna(False).astype(bool)


def _per_value(col: pd.Series, fn: Any) -> Any:
    """``fn`` over a column; for a categorical one, over its few categories, then spread by code (a
    million rows cost what their distinct values cost)."""
    import numpy as np
    import pandas as pd

    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = pd.Series(col.cat.categories, dtype=object)
        res = np.asarray(fn(cats))
        codes = col.cat.codes.to_numpy()
        missing = fn(pd.Series([None], dtype=object)).to_numpy()[0]
        return np.where(codes >= 0, res[np.maximum(codes, 0)] if len(res) else missing, missing)
    return np.asarray(fn(col.reset_index(drop=True)))


def catalog_markdown(catalog: Catalog | None = None) -> str:
    """The catalog in plain words (docs/outcomes.md's table and the codebook's outcomes section)."""
    cat = catalog or load_catalog()
    lines = [
        f"Metrics catalog version {cat.version}.",
        "",
        "| Metric | Definition | Counted among | Time window | Breakdowns | Needs |",
        "|---|---|---|---|---|---|",
    ]
    for m in cat.metrics:
        lines.append(
            f"| `{m.id}` {m.label} | {m.definition} | {m.cohort_label} | {m.time_window} | "
            f"{', '.join(m.disaggregations)} | {', '.join(m.requires)} |"
        )
    return "\n".join(lines) + "\n"


def describe_metrics(metric_ids: Sequence[str], catalog: Catalog | None = None) -> list[tuple[str, str]]:
    """(label, plain-words definition) of each metric, for notes sheets and reports."""
    cat = catalog or load_catalog()
    return [(cat.get(i).label, f"{cat.get(i).definition} Time window: {cat.get(i).time_window}.")
            for i in metric_ids]  # fmt: skip


evaluate_condition = evaluate  # the name deid exports (``evaluate`` alone says too little outside)
