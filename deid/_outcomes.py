"""Outcome tables of the metrics catalog, and their safe release.

**Tables.** :func:`compute_tables` counts, on a frame with one column per element (the linked opened
packages), each metric's cohort (denominator) and outcome (numerator), overall and by each
disaggregation: an :class:`OutcomeTable` per (metric, breakdown), its last row the whole cohort.

**Cells.** Every count is a *cell*. Cohort cells are shared by metrics with the same cohort rule (the
same students: publishing one metric's and hiding the other's would give it away), the "all students"
row by every breakdown of a metric. A breakdown's cells add up to its total (one *equation* per
table and per counted quantity), and an outcome count never exceeds its cohort count.

**Protection** (:func:`protect`), with ``m`` the agreement's smallest reported cell and ``p`` its
protection (by default ``m``):

1. *primary suppression*: a cohort count from 1 to m−1 is hidden, with its group's outcome; an outcome
   count under m, or whose complement (cohort − outcome: the students who did *not* reach it) is
   under m, is hidden — its rate is then shown bottom- or top-coded (≤ 5 %, ≥ 95 %) where the coded
   band still protects it, else hidden too;
2. *complementary suppression*: the fewest further cells shown as "*" (a MIP on HiGHS,
   ``scipy.optimize.milp``, cohort by cohort, its objective bounded by the heuristic's safe answer)
   such that no hidden cell is alone in an equation — a condition every safe hiding meets, so when
   the answer passes the check below at the first round it is provably the fewest — or, where that
   weak rule does not settle (two-way tables), such that the others hidden in each equation can
   absorb the protection; within a budget of branch-and-bound nodes (the same on every machine),
   after which the heuristic's answer stays (:func:`_optimal`); then
3. *the attacker check* (:func:`attack`): for every hidden cell (and every hidden complement), the
   minimum and maximum value consistent with everything published (LPs on HiGHS over the equations,
   the outcome ≤ cohort bounds, non-negativity and the coded bands) must be at least ``p`` apart.
   When the MIP's answer fails it, the failing cells' equations must hide one cell more (a cut) and the
   MIP runs again; if no hiding satisfies it the release is refused (:class:`~deid.errors.CheckFailed`).

**Differencing** (:func:`differencing_check`): a new release is checked against each earlier release
under the same agreement. Students are split by membership — in both cohorts, only the earlier one,
only the new one — and the attacker sees both releases' published cells as sums over those parts. Any
hidden cell of either release, and any part of a cell (say, "the students the new cohort added in
school 5") holding 1 to m−1 students, must keep an interval of at least ``p``; otherwise the release is
refused with the cells named. The LP relaxation is the attacker model throughout (as in τ-ARGUS):
integrality could only narrow an interval of width ≥ p down to width ≥ p − 1.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from deid._metrics import Catalog, Metric, evaluate, load_catalog
from deid.errors import CheckFailed, InputError

if TYPE_CHECKING:
    import pandas as pd

ALL = "All students"  # the label of a table's total row
MISSING = "(not recorded)"  # the group of students whose breakdown element is empty
MISSING_GROUP = MISSING
BAND = 0.05  # rates within 5 points of 0 % or 100 % are coded (≤ 5 %, ≥ 95 %), as state dashboards do
MAX_ROUNDS = 40  # heuristic → attacker check → grow rounds before a release is declared unprotectable
MIP_ROUNDS = 10  # MIP → attacker check → cut rounds before the heuristic-then-prune answer is taken
WEAK_ROUNDS = 3  # rounds of the MIP's weak rule before its sufficient rule is tried
# The optimizer's budget for one release (all cohorts, all rounds), in HiGHS branch-and-bound nodes —
# never in seconds: a time limit made the hidden cells depend on how busy the machine was, so two
# partners re-running one release could publish different patterns and play them against each other.
# Each MIP measured at 1M students (one- and two-way tables) settled in 1 node; a release that uses
# the whole budget keeps the heuristic's safe answer, pruned, for the cohorts left.
MIP_NODES = 20_000
OUT_OF_BUDGET = "used up its search budget"  # why a cohort kept the heuristic's answer (the notes say it)
CROSS = "*"  # "race*sex": a crossed breakdown (every race × sex group), as the CLI and the app name it
CROSS_GROUP = " × "  # how a crossed group is written: "700 × F", "700 × F × Y"


def breakdown_parts(by: str) -> tuple[str, ...]:
    """The elements of a breakdown: one, or two or three for a crossed one ("race*sex", "race*sex*iep")."""
    return tuple(by.split(CROSS)) if by else ()


def with_margins(by: Sequence[str]) -> list[str]:
    """The breakdowns a release publishes: those asked for, and before them the margins of each
    crossed one — the one-way breakdown of each of its elements, then (for a three-way one) the two-way
    breakdown of each pair (its totals along every axis: a crossed table is read with its margins,
    and the attacker is assumed to know them anyway). A margin the release asks for under another
    order of its elements ("sex*race") is published under that name, once."""
    import itertools

    out: list[str] = []

    def named(parts: Iterable[str]) -> str | None:
        want = frozenset(parts)
        return next((x for x in (*out, *by) if frozenset(breakdown_parts(x)) == want), None)

    for size in (1, 2):
        for b in by:
            parts = breakdown_parts(b)
            for combo in itertools.combinations(parts, size) if len(parts) > size else ():
                name = named(combo) or CROSS.join(combo)
                if name not in out:
                    out.append(name)
    for b in by:
        if b not in out:
            out.append(b)
    return out


def breakdown_groups(frame: pd.DataFrame, by: str) -> np.ndarray:
    """Each row's group for a breakdown, as the tables write it: the value, or "(not recorded)" when
    empty; for a crossed breakdown the values joined by " × "."""
    parts = []
    for element in breakdown_parts(by):
        values = frame[element].astype("string").str.strip().fillna(MISSING).replace("", MISSING)
        parts.append(values.to_numpy(str))
    if len(parts) == 1:
        return parts[0]
    for element, values in zip(breakdown_parts(by), parts, strict=True):
        if any(CROSS_GROUP in v for v in np.unique(values)):
            raise InputError(f'A value of {element} contains "{CROSS_GROUP.strip()}"; it cannot be crossed.')
    out = parts[0].astype(str)
    for more in parts[1:]:
        out = np.char.add(np.char.add(out, CROSS_GROUP), more.astype(str))
    return out


# ------------------------------------------------------------------------------------------ the tables


@dataclass
class OutcomeTable:
    """One metric broken down by one element (``by``; empty for the overall table), or by two
    ("race*sex": groups "700 × F"). Row i is group i; the last row is the whole cohort. ``hidden_*``
    and ``band`` are filled by :func:`protect`."""

    metric: str
    by: str
    groups: list[str]
    cohort: list[int]
    outcome: list[int]
    hidden_cohort: list[bool] = field(default_factory=list)
    hidden_outcome: list[bool] = field(default_factory=list)
    band: list[str] = field(default_factory=list)  # "" | "low" (≤ 5 %) | "high" (≥ 95 %)

    def rate(self, i: int) -> str:
        """Row i's rate as published: a percentage, a coded band, or "*" when hidden."""
        if self.hidden_cohort and self.hidden_cohort[i]:
            return "*"
        if self.hidden_outcome and self.hidden_outcome[i]:
            return {"low": f"≤ {BAND:.0%}", "high": f"≥ {1 - BAND:.0%}"}.get(self.band[i], "*")
        d = self.cohort[i]
        return f"{100 * self.outcome[i] / d:.1f}%" if d else "—"

    def published(self, i: int) -> tuple[int | None, int | None]:
        """Row i's (cohort, outcome) counts as published: None where hidden."""
        hc = bool(self.hidden_cohort and self.hidden_cohort[i])
        ho = bool(self.hidden_outcome and self.hidden_outcome[i])
        return (None if hc else self.cohort[i], None if ho else self.outcome[i])

    def to_dict(self) -> dict[str, Any]:
        """The table as published (hidden counts left out): what a release stores and seals."""
        rows = []
        for i, g in enumerate(self.groups):
            c, o = self.published(i)
            rows.append({"group": g, "cohort": c, "outcome": o, "band": self.band[i] if self.band else ""})
        return {"metric": self.metric, "by": self.by, "rows": rows}


@dataclass(frozen=True)
class Tables:
    """What :func:`compute_tables` returns: the tables, and per cohort rule the rows in that cohort
    (for the differencing check; never written anywhere)."""

    tables: list[OutcomeTable]
    cohorts: dict[str, np.ndarray]  # cohort key -> boolean mask over the frame's rows
    metric_cohort: dict[str, str]  # metric id -> cohort key


def check_computable(
    metrics: Sequence[Metric], by: Sequence[str], columns: Iterable[str], allowed: Iterable[str] | None = None
) -> None:
    """Refuse (one sentence) a metric whose elements the data lack, or a breakdown the metric or the
    agreement does not allow (``allowed``: the elements the agreement shares)."""
    from deid._elements import load_elements

    names = {e.name: e.label.lower() for e in load_elements()}

    def said(element: str) -> str:  # the element as people call it (the library's label)
        return names.get(element, element.replace("_", " "))

    have = set(columns)
    for b in by:
        parts = breakdown_parts(b)
        if not parts or len(parts) > 3 or len(set(parts)) < len(parts) or not all(parts):
            raise InputError(
                f'"{b}" is not a breakdown: name one element, or two or three joined by {CROSS} '
                f"(race{CROSS}sex, race{CROSS}sex{CROSS}iep)."
            )
    elements = [p for b in by for p in breakdown_parts(b)]
    for m in metrics:
        lack = [said(e) for e in m.requires if e not in have]
        if lack:
            raise InputError(
                f'The measure "{m.label}" needs {", ".join(lack)}, which the opened packages do not hold.'
            )
        for b in elements:
            if b not in m.disaggregations:
                raise InputError(f'The measure "{m.label}" cannot be broken down by {said(b)}.')
    allowed_set = None if allowed is None else set(allowed)
    for b in elements:
        if allowed_set is not None and b not in allowed_set:
            raise InputError(
                f"The agreement does not allow a breakdown by {said(b)}: it does not share that element."
            )
        if b not in have:
            raise InputError(f"The opened packages hold no {said(b)} to break the tables down by.")


def compute_tables(
    frame: pd.DataFrame, metric_ids: Sequence[str], by: Sequence[str], catalog: Catalog | None = None
) -> Tables:
    """Count each metric overall and by each breakdown of ``by`` (see the module docstring); a two-way
    breakdown brings its one-way margins (:func:`with_margins`)."""
    import pandas as pd

    cat = catalog or load_catalog()
    metrics = [cat.get(i) for i in metric_ids]
    check_computable(metrics, by, frame.columns)
    by = with_margins(by)
    # Each column read once into categories: the conditions then run over distinct values, not rows.
    used = sorted({e for m in metrics for e in m.elements()} | {p for b in by for p in breakdown_parts(b)})
    frame = pd.DataFrame(
        {c: frame[c] if isinstance(frame[c].dtype, pd.CategoricalDtype) else frame[c].astype("category")
         for c in used},
        index=frame.index,
    )  # fmt: skip
    cohorts: dict[str, np.ndarray] = {}
    tables: list[OutcomeTable] = []
    # Each breakdown's groups once, as integer codes (sorted labels), for bincount per metric.
    coded: dict[str, tuple[np.ndarray, list[str]]] = {}
    for b in by:
        codes, uniques = pd.factorize(breakdown_groups(frame, b), sort=True)
        coded[b] = (codes, [str(u) for u in uniques])
    for m in metrics:
        key = m.cohort_key
        if key not in cohorts:
            cohorts[key] = evaluate(m.cohort, frame).to_numpy(bool)
        in_cohort = cohorts[key]
        reached = evaluate(m.numerator, frame).to_numpy(bool) & in_cohort
        total = (int(in_cohort.sum()), int(reached.sum()))
        tables.append(OutcomeTable(m.id, "", [ALL], [total[0]], [total[1]]))
        for b in by:
            codes, labels = coded[b]
            size = np.bincount(codes[in_cohort], minlength=len(labels))
            hits = np.bincount(codes[reached], minlength=len(labels))
            present = np.flatnonzero(size)  # groups with no student of this cohort are not listed
            tables.append(
                OutcomeTable(
                    m.id,
                    b,
                    [*(labels[k] for k in present), ALL],
                    [*(int(size[k]) for k in present), total[0]],
                    [*(int(hits[k]) for k in present), total[1]],
                )
            )
    return Tables(tables, cohorts, {m.id: m.cohort_key for m in metrics})


# ------------------------------------------------------------------------------------ the cell model


@dataclass
class _Model:
    """Cells (id → value), equations (total, parts), outcome ≤ cohort pairs, and where each table row
    lives. A cell id is ("C", cohort key, by, group) or ("O", metric, by, group); by = "" for totals."""

    ids: list[tuple[str, str, str, str]] = field(default_factory=list)
    index: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    values: list[int] = field(default_factory=list)
    equations: list[tuple[int, list[int]]] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)  # (outcome cell, cohort cell)
    # The cohort each cell belongs to: cells of different cohorts share no equation, so the attacker's
    # LPs split into one small system per cohort.
    component: list[str] = field(default_factory=list)
    appears: list[int] = field(default_factory=list)  # in how many published table rows a cell shows
    # Cells an earlier release of the same cohort already published: hiding them now protects nothing.
    shown: set[int] = field(default_factory=set)
    # The attacker's intervals already computed, per block of hidden cells (see _component_intervals):
    # a block's LPs depend only on its hidden cells and their coded bands, so rounds that change one
    # block (a cut, a grown cell, a cell pruned) solve that block again and reuse the others.
    solved: dict[Any, dict[tuple[tuple[int, float], ...], tuple[float, float]]] = field(default_factory=dict)
    points: dict[Any, list[np.ndarray]] = field(default_factory=dict)  # per block: the LPs' optimal tables

    def cell(self, cid: tuple[str, str, str, str], value: int, component: str = "") -> int:
        i = self.index.get(cid)
        if i is None:
            i = self.index[cid] = len(self.ids)
            self.ids.append(cid)
            self.values.append(value)
            self.component.append(component)
            self.appears.append(0)
        self.appears[i] += 1
        return i

    def eq_of(self) -> list[list[int]]:
        """For each cell, the equations it is in."""
        out: list[list[int]] = [[] for _ in self.ids]
        for k, (t, parts) in enumerate(self.equations):
            for j in (t, *parts):
                out[j].append(k)
        return out


def _cell_ids(
    t: OutcomeTable, i: int, cohort_key: str
) -> tuple[tuple[str, str, str, str], tuple[str, str, str, str]]:
    g = t.groups[i]
    by = "" if g == ALL else t.by
    grp = "" if g == ALL else g
    return ("C", cohort_key, by, grp), ("O", t.metric, by, grp)


def _build(
    tables: Sequence[OutcomeTable], metric_cohort: Mapping[str, str]
) -> tuple[_Model, list[list[tuple[int, int]]]]:
    model = _Model()
    rows: list[list[tuple[int, int]]] = []
    seen_eq: set[tuple[str, ...]] = set()
    seen_pair: set[int] = set()
    for t in tables:
        ck = metric_cohort[t.metric]
        here = []
        for i in range(len(t.groups)):
            cid, oid = _cell_ids(t, i, ck)
            c, o = model.cell(cid, t.cohort[i], ck), model.cell(oid, t.outcome[i], ck)
            here.append((c, o))
            if o not in seen_pair:
                seen_pair.add(o)
                model.pairs.append((o, c))
        rows.append(here)
        if t.by:
            for kind, key, col in (("C", ck, 0), ("O", t.metric, 1)):
                if (kind, key, t.by) not in seen_eq:
                    seen_eq.add((kind, key, t.by))
                    model.equations.append((here[-1][col], [r[col] for r in here[:-1]]))
    # A crossed table's cells also add up along each axis to its margins (which with_margins publishes
    # beside it): "White × F" + "White × M" = "White"; "White × F × Y" + "White × F × N" = "White × F".
    named = {frozenset(breakdown_parts(t.by)): t.by for t in tables if t.by}
    for t, here in zip(tables, rows, strict=True):
        parts = breakdown_parts(t.by)
        if len(parts) < 2:
            continue
        ck = metric_cohort[t.metric]
        for kind, key, col in (("C", ck, 0), ("O", t.metric, 1)):
            if (kind, key, t.by, "margins") in seen_eq:
                continue
            seen_eq.add((kind, key, t.by, "margins"))
            for margin, cells in _margin_lines(parts, t.groups[:-1], [r[col] for r in here[:-1]], named):
                total = model.index.get((kind, key, *margin))
                if total is not None:  # a margin not published constrains nothing the attacker sees
                    model.equations.append((total, cells))
    return model, rows


def _margin_lines(
    parts: Sequence[str], groups: Sequence[str], cells: Sequence[Any], named: Mapping[frozenset[str], str]
) -> list[tuple[tuple[str, str], list[Any]]]:
    """The lines of a crossed table along each axis — its cells with all coordinates but one fixed —
    each with the margin it adds up to: (the margin breakdown's name, its group), found in ``named``
    (element set → breakdown name) and written in that breakdown's order of elements."""
    lines: dict[tuple[int, tuple[str, ...]], list[Any]] = {}
    for g, cell in zip(groups, cells, strict=True):
        labels = g.split(CROSS_GROUP)
        if len(labels) != len(parts):
            raise InputError(f'The crossed group "{g}" does not name one group of each element.')
        for axis in range(len(parts)):
            rest = tuple(x for j, x in enumerate(labels) if j != axis)
            lines.setdefault((axis, rest), []).append(cell)
    out = []
    for (axis, rest), members in lines.items():
        others = [p for j, p in enumerate(parts) if j != axis]
        by = named.get(frozenset(others))
        if by is None:
            continue
        at = dict(zip(others, rest, strict=True))
        out.append(((by, CROSS_GROUP.join(at[p] for p in breakdown_parts(by))), members))
    return out


def _primary(model: _Model, m: int) -> tuple[set[int], list[tuple[dict[int, float], str]]]:
    """Cells hidden by the threshold, and the sensitive expressions beyond the cells themselves
    (a complement cohort − outcome under m)."""
    hide: set[int] = set()
    extra: list[tuple[dict[int, float], str]] = []
    vals = model.values
    for c in range(len(vals)):
        if model.ids[c][0] == "C" and 0 < vals[c] < m:
            hide.add(c)
    for o, c in model.pairs:
        n, d = vals[o], vals[c]
        if d == 0:
            continue
        if d < m or n < m:
            hide.add(o)
        if d - n < m:
            hide.add(o)
            extra.append(({c: 1.0, o: -1.0}, f"{model.ids[o]}:complement"))
    return hide, extra


# ------------------------------------------------------------------------------- the attacker's LPs


def _intervals(
    model: _Model,
    hidden: set[int],
    bands: Mapping[int, str],
    targets: Sequence[dict[int, float]],
    need: float | None = None,
) -> list[tuple[float, float]]:
    """For each target (a linear expression over cells of one cohort), its min and max over every
    table consistent with what is published: hidden cells free (≥ 0), the rest fixed, equations and
    bounds held. One LP system per cohort and block (HiGHS). With ``need``, a target shown to be at
    least that wide by feasible tables already found comes back as their spread (see
    _component_intervals), not its exact interval."""
    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(targets)
    by_comp: dict[str, list[int]] = {}
    for k, t in enumerate(targets):
        by_comp.setdefault(model.component[next(iter(t))], []).append(k)
    for comp, ks in by_comp.items():
        found = _component_intervals(model, comp, hidden, bands, [targets[k] for k in ks], need=need)
        for k, interval in zip(ks, found, strict=True):
            out[k] = interval
    return out


def _component_intervals(
    model: _Model,
    comp: str,
    hidden: set[int],
    bands: Mapping[int, str],
    targets: Sequence[dict[int, float]],
    need: float | None = None,
    stop: bool = False,
) -> list[tuple[float, float]]:
    """The intervals of ``targets`` (expressions over cells of cohort ``comp``). The hidden cells split
    into *blocks* — cells linked through an equation or bound in which two or more are hidden; the
    visible cells are constants — and a target's LPs need only its block's (small, dense) system.
    Blocks are solved once per set of hidden cells (``model.solved``).

    With ``need`` (the protection): every LP's optimum is a table consistent with what is published,
    so a target whose value already spreads by ``need`` or more over the tables found so far for its
    block has an interval at least that wide — no LP needed (its spread comes back, not its
    interval; a target narrower than ``need`` always gets its exact interval). With ``stop``: return
    at the first target narrower than ``need`` (those not reached come back NaN)."""
    free = sorted(c for c in hidden if model.component[c] == comp)
    pos = {c: k for k, c in enumerate(free)}
    vals = model.values
    nv = len(free)
    if nv == 0:
        return [(_const(t, vals), _const(t, vals)) for t in targets]
    rows: list[tuple[dict[int, float], float, bool]] = []  # (coefficients by position, rhs, equation)

    def row(coefs: Mapping[int, float]) -> tuple[dict[int, float], float]:
        r: dict[int, float] = {}
        const = 0.0
        for c, w in coefs.items():
            if c in pos:
                r[pos[c]] = r.get(pos[c], 0.0) + w
            else:
                const += w * vals[c]
        return r, const

    for t, parts in model.equations:
        if model.component[t] != comp:
            continue
        coefs = {t: -1.0}
        for j in parts:
            coefs[j] = coefs.get(j, 0.0) + 1.0
        r, const = row(coefs)
        if r:
            rows.append((r, -const, True))
    band_of: dict[int, str] = {}
    for o, c in model.pairs:
        if model.component[o] != comp:
            continue
        if o in pos or c in pos:
            r, const = row({o: 1.0, c: -1.0})
            rows.append((r, -const, False))
        kind = bands.get(o)
        if kind:  # the coded rate is published: outcome ≤ 5 % of cohort, or ≥ 95 %
            coefs = {o: 1.0, c: -BAND} if kind == "low" else {o: -1.0, c: 1.0 - BAND}
            r, const = row(coefs)
            rows.append((r, -const, False))
            band_of[o] = kind
    # Blocks: union-find over the hidden cells of each row (and of each target).
    parent = list(range(nv))

    def find(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    def union(vs: Iterable[int]) -> None:
        it = iter(vs)
        first = next(it, None)
        if first is None:
            return
        ra = find(first)
        for v in it:
            rb = find(v)
            if rb != ra:
                parent[rb] = ra

    local = [row(t) for t in targets]
    for r, _, _ in rows:
        union(r)
    for coefs, _ in local:
        union(coefs)
    members: dict[int, list[int]] = {}
    for v in range(nv):
        members.setdefault(find(v), []).append(v)
    by_block: dict[int, list[int]] = {}
    out: list[tuple[float, float]] = [(math.nan, math.nan)] * len(targets)
    for k, (coefs, const) in enumerate(local):
        if not coefs:
            out[k] = (const, const)
        else:
            by_block.setdefault(find(next(iter(coefs))), []).append(k)
    block_rows: dict[int, list[tuple[dict[int, float], float, bool]]] = {}
    for r in rows:
        if r[0]:
            block_rows.setdefault(find(next(iter(r[0]))), []).append(r)
    for root, ks in by_block.items():
        cells = members[root]
        key = (frozenset(free[v] for v in cells),
               frozenset((free[v], band_of[free[v]]) for v in cells if free[v] in band_of))  # fmt: skip
        known = model.solved.setdefault(key, {})
        todo = []
        for k in ks:
            tkey = tuple(sorted(targets[k].items()))
            if tkey in known:
                lo, hi = known[tkey]
                out[k] = (lo + local[k][1], hi + local[k][1])
                if stop and not (hi - lo >= (need or 0.0)):
                    return out
            else:
                todo.append((k, tkey))
        if not todo:
            continue
        at = {v: i for i, v in enumerate(cells)}
        solve = _block_lp(at, block_rows.get(root, []))
        pool = model.points.setdefault(key, [])
        for k, tkey in todo:
            r = np.zeros(len(cells))
            for v, w in local[k][0].items():
                r[at[v]] += w
            if need is not None and len(pool) >= 2:
                spread = np.asarray(pool) @ r
                if spread.max() - spread.min() >= need:
                    out[k] = (spread.min() + local[k][1], spread.max() + local[k][1])
                    continue
            lo, hi, points = solve(r)
            pool.extend(points)
            known[tkey] = (lo, hi)
            out[k] = (lo + local[k][1], hi + local[k][1])
            if stop and not (hi - lo >= (need or 0.0)):
                return out
    return out


def _block_lp(at: Mapping[int, int], rows: Sequence[tuple[dict[int, float], float, bool]]) -> Any:
    """A function giving (min, max) of a linear expression (by position) over one block's system:
    the block's cells ≥ 0, its equations and bounds (HiGHS, dense: blocks are small)."""
    from scipy.optimize import linprog

    n = len(at)
    eq = [r for r in rows if r[2]]
    ub = [r for r in rows if not r[2]]

    def dense(items: Sequence[tuple[dict[int, float], float, bool]]) -> tuple[Any, Any]:
        a = np.zeros((len(items), n))
        for i, (coefs, _, _) in enumerate(items):
            for v, w in coefs.items():
                a[i, at[v]] += w
        return a, np.array([rhs for _, rhs, _ in items])

    kw: dict[str, Any] = {"bounds": (0, None), "method": "highs"}
    if eq:
        kw["A_eq"], kw["b_eq"] = dense(eq)
    if ub:
        kw["A_ub"], kw["b_ub"] = dense(ub)

    def solve(r: np.ndarray) -> tuple[float, float, list[np.ndarray]]:
        lo, hi = linprog(r, **kw), linprog(-r, **kw)
        low = lo.fun if lo.status == 0 else (-math.inf if lo.status == 3 else math.nan)
        high = -hi.fun if hi.status == 0 else (math.inf if hi.status == 3 else math.nan)
        return low, high, [res.x for res in (lo, hi) if res.status == 0 and res.x is not None]

    return solve


def _const(target: Mapping[int, float], vals: Sequence[int]) -> float:
    return float(sum(w * vals[c] for c, w in target.items()))


@dataclass(frozen=True)
class Exposure:
    """A hidden cell (or complement, or part of a cell) whose interval is narrower than the protection."""

    cell: str
    low: float
    high: float
    index: int = -1  # the model's cell (for an expression: its outcome cell)


def attack(
    model: _Model,
    hidden: set[int],
    bands: Mapping[int, str],
    extra: Sequence[tuple[dict[int, float], str]],
    p: int,
) -> list[Exposure]:
    """The attacker check: every hidden cell and extra expression whose interval is narrower than p."""
    targets = [({c: 1.0}, _name(model.ids[c])) for c in sorted(hidden)]
    targets += [(coefs, label) for coefs, label in extra if any(c in hidden for c in coefs)]
    found = _intervals(model, hidden, bands, [t for t, _ in targets], need=p - 1e-6)
    out = []
    for (coefs, label), (lo, hi) in zip(targets, found, strict=True):
        if not (hi - lo >= p - 1e-6):  # also NaN (an inconsistent system) counts as exposed
            out.append(Exposure(label, lo, hi, max(coefs, key=lambda c: model.ids[c][0] == "O")))
    return out


def _name(cid: tuple[str, str, str, str]) -> str:
    kind, key, by, group = cid
    what = "cohort count" if kind == "C" else f"{key} count"
    where = f"{by} = {group}" if by else ALL.lower()
    return f"{what} for {where}"


# ------------------------------------------------------------------------- complementary suppression


def _mip(
    model: _Model,
    fixed: set[int],
    p: int,
    cuts: Sequence[tuple[list[int], int]],
    weak: bool = False,
    *,
    comp: str | None = None,
    bound: float | None = None,
    budget: list[int] | None = None,
) -> set[int] | None:
    """The fewest cells to hide (``fixed`` always) such that no hidden cell is alone in an equation
    (``weak``: a condition every safe hiding meets, so the optimum is a lower bound) or, otherwise,
    such that the others hidden in each equation can absorb ``p`` (a sufficient rule); plus the
    attacker check's cuts. ``comp``: only that cohort's cells (the others stay shown: no equation
    joins two cohorts); ``bound``: the objective at most this (a known safe answer's cost: what a
    starting solution would give branch and bound, which scipy's milp cannot take); ``budget``: a
    one-element list of branch-and-bound nodes left for the release, spent here (HiGHS's best answer
    within it is returned, or None)."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    n = len(model.ids)
    vals = np.asarray(model.values, float)
    # How far a visible-when-published cell could rise if it were hidden: an outcome count up to its
    # cohort count; a cohort count or a total without a bound of its own (the equation bounds it).
    up = np.full(n, np.inf)
    for o, c in model.pairs:
        up[o] = vals[c] - vals[o]
    ri: list[np.ndarray] = []
    ci: list[np.ndarray] = []
    vi: list[np.ndarray] = []
    lo: list[float] = []
    for t, parts in model.equations:
        if comp is not None and model.component[t] != comp:
            continue
        eq = np.array([t, *parts])
        for i in eq:
            others = eq[eq != i]
            # Hidden i moves up by what the others can lose, down by what they can gain (at most its
            # value): require room for p in all, as a sufficient linear rule the attacker check confirms.
            k = len(lo)
            ri.append(np.full(len(others) + 1, k))
            ci.append(np.append(others, i))
            room = np.ones(len(others)) if weak else vals[others] + np.minimum(up[others], vals[i])
            vi.append(np.append(room, -1.0 if weak else -p))
            lo.append(0.0)
    for cells, need in cuts:
        k = len(lo)
        ri.append(np.full(len(cells), k))
        ci.append(np.asarray(cells))
        vi.append(np.ones(len(cells)))
        lo.append(float(need))
    lb = np.zeros(n)
    lb[list(fixed)] = 1.0
    ub = np.ones(n)
    ub[list(_kept(model) - fixed)] = 0.0
    if comp is not None:
        ub[[i for i in range(n) if model.component[i] != comp]] = 0.0
    cost = _cost(model)
    cons = []
    if lo:
        a = coo_array((np.concatenate(vi), (np.concatenate(ri), np.concatenate(ci))), shape=(len(lo), n))
        cons = [LinearConstraint(a.tocsr(), np.array(lo), np.inf)]
    if bound is not None:
        cons.append(LinearConstraint(cost.reshape(1, -1), -np.inf, bound + 1e-6))
    options = {} if budget is None else {"node_limit": max(1, budget[0])}
    res = milp(cost, integrality=np.ones(n), bounds=Bounds(lb, ub), constraints=cons, options=options)
    if budget is not None:
        budget[0] -= max(1, int(getattr(res, "mip_node_count", 0) or 0))
    # status 1: the node limit — its best answer, if it has one, is still an answer
    if res.status not in (0, 1) or res.x is None:
        return None
    return {i for i in range(n) if res.x[i] > 0.5}


def _cost(model: _Model) -> np.ndarray:
    """What hiding each cell costs: the fewest cells lost in the tables people read (a cohort count
    shared by several measures' tables counts in each), then the smallest."""
    vals = np.asarray(model.values, float)
    return np.asarray(model.appears, float) + vals / max(1.0, float(vals.sum()))


def _sizes(model: _Model) -> set[int]:
    """A cohort's size (the denominator every reader needs): never hidden to protect others."""
    return {i for i, cid in enumerate(model.ids) if cid[0] == "C" and cid[2] == ""}


def _kept(model: _Model) -> set[int]:
    """Cells never hidden to protect others: a cohort's size, and what an earlier release published."""
    return _sizes(model) | model.shown


def _cut(
    model: _Model, hidden: set[int], exposed: Sequence[Exposure], eq_of: list[list[int]]
) -> tuple[list[int], int]:
    """One more hidden cell among the visible cells of the equations around the exposed cells — one
    equation further out while there is none (a cell whose equations hold only hidden cells and cells
    everyone has, such as what an earlier release published, is protected from further away)."""
    around: set[int] = {e.index for e in exposed}
    visible: list[int] = []
    for _hop in range(4):
        for c in list(around):
            for k in eq_of[c]:
                t, parts = model.equations[k]
                around.update((t, *parts))
            around.update(oc for pair in model.pairs if c in pair for oc in pair)
        visible = sorted(around - hidden - _kept(model))
        if visible:
            break
    return visible, 1


def _with_bands(
    model: _Model, hidden: set[int], extra: Sequence[tuple[dict[int, float], str]], p: int
) -> dict[int, str]:
    """Code the rate of a hidden outcome whose cohort is published, where the band still protects:
    all candidates at once, then without those of any cohort the attacker check finds exposed."""
    bands: dict[int, str] = {}
    vals = model.values
    for o, c in model.pairs:
        if o in hidden and c not in hidden and vals[c]:
            rate = vals[o] / vals[c]
            kind = "low" if rate <= BAND else "high" if rate >= 1 - BAND else ""
            if kind:
                bands[o] = kind
    while bands:
        exposed = attack(model, hidden, bands, extra, p)
        if not exposed:
            break
        bad = {model.component[e.index] for e in exposed}
        kept = {o: k for o, k in bands.items() if model.component[o] not in bad}
        if len(kept) == len(bands):  # exposure not from a band: leave it to the final check
            break
        bands = kept
    return bands


@dataclass(frozen=True)
class Protection:
    """What :func:`protect` decided: cells hidden by the threshold and to protect them, and the check."""

    primary: int
    complementary: int
    rounds: int
    checked: int  # intervals the attacker check computed (two LPs each)
    smallest_interval: float  # the narrowest interval among hidden cells (≥ protection)
    # "optimal" | "heuristic" | "heuristic, then pruned" (the MIP did not settle, or not within its budget) |
    # "mixed" (some cohorts one way, some the other)
    method: str = "optimal"
    note: str = ""  # in plain words, why the heuristic's answer was kept where it was
    seconds: float = 0.0  # the time protect took (reported; never decides anything)

    def describe(self) -> str:
        """How the hidden cells were chosen, in plain words (the notes and the command's summary)."""
        how = {
            "optimal": "by the optimizer (a mixed-integer program on HiGHS), the fewest cells it found",
            "heuristic": "by the simple rule (also hide the smallest other count of the row or column)",
            "heuristic, then pruned": "by the simple rule, then every count it could spare shown again",
            "mixed": "by the optimizer for some cohorts and the simple rule for others",
        }.get(self.method, self.method)
        return f"{how}; {self.note}" if self.note else how


def protect(
    tables: Sequence[OutcomeTable],
    metric_cohort: Mapping[str, str],
    min_cell: int,
    protection: int | None = None,
    *,
    method: str = "optimal",
    keep_hidden: Iterable[tuple[str, str, str, str]] = (),
    keep_shown: Iterable[tuple[str, str, str, str]] = (),
    nodes: int | None = None,
) -> Protection:
    """Hide cells in ``tables`` (in place) per the module docstring; CheckFailed if it cannot be done.

    ``nodes``: the optimizer's budget for this release in branch-and-bound nodes (default MIP_NODES;
    the same on every machine, so the same tables always give the same hidden cells); a cohort it has
    not settled within it keeps the heuristic's safe answer, pruned (``Protection.method`` and
    ``note`` say so).

    ``keep_hidden``: (metric, by, group, "cohort" | "outcome") cells an earlier release of the same
    cohort hid — hidden again, so the two releases' hidden cells cannot be played against each other;
    ``keep_shown``: the cells it published — never chosen to protect others (everyone has them).

    ``method="heuristic"`` is the comparison baseline: for each hidden cell alone in an equation, also
    hide the smallest visible cell of that equation, and the same around any cell the attacker check
    still exposes, until it passes."""
    started = time.monotonic()
    p = protection if protection is not None else min_cell
    model, rows = _build(tables, metric_cohort)
    fixed, extra = _primary(model, min_cell)
    n_primary = len(fixed)
    for metric, by, group, which in keep_hidden:
        cohort = ("C", metric_cohort.get(metric, ""), by, group)
        key = cohort if which == "cohort" else ("O", metric, by, group)
        if key in model.index:
            fixed.add(model.index[key])
    for metric, by, group, which in keep_shown:
        cohort = ("C", metric_cohort.get(metric, ""), by, group)
        key = cohort if which == "cohort" else ("O", metric, by, group)
        if key in model.index and model.index[key] not in fixed:
            model.shown.add(model.index[key])
    eq_of = model.eq_of()
    # A cohort's size is never hidden to protect others, and every count of that cohort lies between 0
    # and it: a protection wider than the cohort cannot be met, whatever else is hidden.
    sizes = {model.component[i]: model.values[i] for i in _sizes(model) if i not in fixed}
    if any(p > sizes.get(model.component[c], math.inf) for c in fixed):
        raise CheckFailed(
            "These tables cannot be released safely: a cohort is smaller than the protection of "
            f"{p} students that every hidden count must keep.",
            hint="Combine cohorts, or release with the agreement's own smallest reported cell.",
        )
    if method == "heuristic":
        hidden, rounds, _why = _search(model, fixed, p, extra, eq_of, method)
        how, note = method, ""
    else:
        hidden, rounds, how, note = _optimal(
            model, fixed, p, extra, eq_of, method, MIP_NODES if nodes is None else nodes
        )
    if hidden is None:
        raise CheckFailed(
            "These tables cannot be released safely: no choice of hidden cells keeps every small count "
            f"protected by at least {p} (try fewer breakdowns or a larger cohort).",
            hint="Remove a breakdown with many small groups, or combine cohorts.",
        )
    bands = _with_bands(model, hidden, extra, p)
    final = attack(model, hidden, bands, extra, p)
    if final:  # cannot happen: the bands were each checked; kept as the last line of defence
        raise CheckFailed(f"The attacker check recovered {final[0].cell}; nothing was released.")
    intervals = _intervals(model, hidden, bands, [{c: 1.0} for c in sorted(hidden)])
    for t, here in zip(tables, rows, strict=True):
        t.hidden_cohort = [c in hidden for c, _ in here]
        t.hidden_outcome = [o in hidden for _, o in here]
        t.band = [bands.get(o, "") for _, o in here]
    return Protection(
        primary=n_primary,
        complementary=len(hidden) - n_primary,
        rounds=rounds,
        checked=len(hidden) + len(extra),
        smallest_interval=min((hi - lo for lo, hi in intervals), default=math.inf),
        method=how,
        note=note,
        seconds=time.monotonic() - started,
    )


def _optimal(
    model: _Model,
    fixed: set[int],
    p: int,
    extra: Sequence[tuple[dict[int, float], str]],
    eq_of: list[list[int]],
    method: str,
    nodes: int,
) -> tuple[set[int] | None, int, str, str]:
    """The MIP's answer, cohort by cohort (cells of different cohorts share no equation, so each
    cohort is its own, smaller problem), within ``nodes`` branch-and-bound nodes for all together:

    1. the heuristic's safe answer — the fallback, and its cost bounds the MIPs' objective (never
       more cells than the heuristic);
    2. the MIP with the weak rule (no hidden cell alone in an equation: every safe hiding meets it, so
       an answer passing the attacker check in the first round is provably the fewest cells), for
       WEAK_ROUNDS rounds — one-way tables settle here;
    3. the MIP with the sufficient rule (the others hidden in each equation can absorb the protection)
       and the attacker check's cuts, for MIP_ROUNDS rounds — two-way tables, where the weak rule
       trades one exposed cell for another, settle here;
    4. otherwise the heuristic's answer with every cell it can spare shown again (_prune).

    Returns the hidden cells (None: no way protects them), the rounds, the method and a note in
    plain words."""
    budget = [nodes]
    hidden: set[int] = set()
    rounds = 0
    ways: dict[str, str] = {}
    for comp in sorted({model.component[c] for c in fixed}):
        fixed_c = {c for c in fixed if model.component[c] == comp}
        extra_c = [e for e in extra if model.component[next(iter(e[0]))] == comp]
        grown, r, _ = _search(model, fixed_c, p, extra_c, eq_of, "heuristic")
        rounds += r
        bound = float(_cost(model)[sorted(grown)].sum()) if grown is not None else None
        best, why = None, ""
        for rule, limit in ((method, WEAK_ROUNDS), ("sufficient", MIP_ROUNDS)):
            best, r, why = _search(model, fixed_c, p, extra_c, eq_of, rule, comp=comp, bound=bound,
                                   budget=budget, limit=limit)  # fmt: skip
            rounds += r
            if best is not None:
                ways[comp] = "" if rule == method else "sufficient"
                break
            if why == OUT_OF_BUDGET:
                break
        if best is not None:
            hidden |= best
        elif grown is not None:
            hidden |= _prune(model, grown, fixed_c, extra_c, p)
            ways[comp] = why
        else:
            return None, rounds, method, ""
    fell = [w for w in ways.values() if w and w != "sufficient"]
    strict = sum(w == "sufficient" for w in ways.values())
    notes = []
    if strict:
        notes.append(f"for {strict} of {len(ways)} cohort(s) the optimizer needed its stricter rule (each "
                     "hidden count's totals can absorb the protection): the fewest cells under that rule, "
                     "not proven the fewest possible")  # fmt: skip
    if fell:
        reasons = " and ".join(sorted(set(fell)))
        notes.append(f"for {len(fell)} of {len(ways)} cohort(s) the optimizer {reasons}, so the "
                     "simple rule's safe answer was kept there, with every cell it could spare shown "
                     "again")  # fmt: skip
    how = method if not fell else "heuristic, then pruned" if len(fell) == len(ways) else "mixed"
    return hidden, rounds, how, "; ".join(notes)


def _search(
    model: _Model,
    fixed: set[int],
    p: int,
    extra: Sequence[tuple[dict[int, float], str]],
    eq_of: list[list[int]],
    method: str,
    *,
    comp: str | None = None,
    bound: float | None = None,
    budget: list[int] | None = None,
    limit: int | None = None,
) -> tuple[set[int] | None, int, str]:
    """Rounds of "choose the hidden cells, attack, cut (MIP) or grow (heuristic)" until the attacker
    check passes: the hidden cells, or None when no round settles it; the rounds taken; and why not
    (plain words). The MIP takes ``comp``, ``bound`` and a ``budget`` (nodes left, spent in place)."""
    cuts: list[tuple[list[int], int]] = []
    hidden: set[int] | None = set(fixed)
    rounds = 0
    if limit is None:
        limit = MAX_ROUNDS if method == "heuristic" else MIP_ROUNDS
    while True:
        rounds += 1
        if rounds > limit:
            return None, rounds - 1, f"did not settle within {limit} rounds"
        if method == "heuristic":
            hidden = _heuristic(model, hidden or set(fixed), eq_of)
        else:
            if budget is not None and budget[0] <= 0:
                return None, rounds - 1, OUT_OF_BUDGET
            hidden = _mip(model, fixed, p, cuts, weak=method == "optimal", comp=comp, bound=bound,
                          budget=budget)  # fmt: skip
        if hidden is None:
            spent = budget is not None and budget[0] <= 0
            return None, rounds, OUT_OF_BUDGET if spent else "found no answer as good as the simple rule's"
        exposed = attack(model, hidden, {}, extra, p)
        if not exposed:
            return hidden, rounds, ""
        if method == "heuristic":
            hidden = _grow(model, hidden, exposed, eq_of)
            if hidden is None:
                return None, rounds, "cannot grow"
        else:
            # One cut per exposed cell: in a two-way table many cells are exposed at once, and one cut
            # for them all would take a round per cell.
            new_cuts = {tuple(_cut(model, hidden, [e], eq_of)[0]) for e in exposed}
            if not all(new_cuts):
                return None, rounds, "found no cut"
            cuts += [(list(c), 1) for c in sorted(new_cuts)]


def _prune(
    model: _Model, hidden: set[int], fixed: set[int], extra: Sequence[tuple[dict[int, float], str]], p: int
) -> set[int]:
    """Show again, one at a time (the most read first: cells repeated in several tables, then large
    ones), every complementary cell whose showing leaves all hidden cells of its cohort protected."""
    hidden = set(hidden)
    spare = sorted(hidden - fixed, key=lambda c: (-model.appears[c], -model.values[c]))
    for c in spare:
        trial = hidden - {c}
        comp = model.component[c]
        targets = [{k: 1.0} for k in sorted(trial) if model.component[k] == comp]
        for coefs, _ in extra:
            if model.component[next(iter(coefs))] == comp and any(k in trial for k in coefs):
                targets.append(coefs)
        found = _component_intervals(model, comp, trial, {}, targets, need=p - 1e-6, stop=True)
        if all(hi - lo >= p - 1e-6 for lo, hi in found):
            hidden = trial
    return hidden


def _heuristic(model: _Model, hidden: set[int], eq_of: list[list[int]]) -> set[int]:
    hidden = set(hidden)
    changed = True
    while changed:
        changed = False
        for o, c in model.pairs:
            if c in hidden and o not in hidden:
                hidden.add(o)
                changed = True
        for t, parts in model.equations:
            eq = [t, *parts]
            inside = [j for j in eq if j in hidden]
            if len(inside) == 1:
                kept = _kept(model)
                visible = [j for j in parts if j not in hidden] or ([t] if t not in hidden | kept else [])
                if visible:
                    hidden.add(min(visible, key=lambda j: model.values[j]))
                    changed = True
    return hidden


def _grow(
    model: _Model, hidden: set[int], exposed: Sequence[Exposure], eq_of: list[list[int]]
) -> set[int] | None:
    """The smallest visible cell around each exposed cell hidden too (one per exposed cell and round,
    as the MIP's cuts: two-way tables expose many cells at once)."""
    grown = set(hidden)
    for e in exposed:
        visible, _ = _cut(model, hidden, [e], eq_of)
        if not visible:
            return None
        grown.add(min(visible, key=lambda j: model.values[j]))
    return grown


def hidden_cells(
    tables: Iterable[Mapping[str, Any]], *, shown: bool = False
) -> list[tuple[str, str, str, str]]:
    """The hidden cells of published tables (``OutcomeTable.to_dict()``), for ``keep_hidden``; with
    ``shown``, the cells they published instead, for ``keep_shown``."""
    out = []
    for t in tables:
        for r in t["rows"]:
            g = str(r["group"])
            by, group = ("", "") if g == ALL else (str(t["by"]), g)
            if (r["cohort"] is None) != shown:
                out.append((str(t["metric"]), by, group, "cohort"))
            if (r["outcome"] is None) != shown:
                out.append((str(t["metric"]), by, group, "outcome"))
    return out


def hidden_count(tables: Sequence[OutcomeTable]) -> int:
    """Cells shown as hidden in the tables as people read them (a hidden total repeated in every
    breakdown's table counts in each: each is a "*" a reader sees)."""
    return sum(sum(t.hidden_cohort) + sum(t.hidden_outcome) for t in tables)


def recheck(
    tables: Sequence[OutcomeTable],
    metric_cohort: Mapping[str, str],
    min_cell: int,
    protection: int | None = None,
) -> list[Exposure]:
    """The attacker check on tables as they stand (hidden cells and bands already set): every hidden
    cell, and every complement under ``min_cell``, whose interval is narrower than the protection."""
    model, rows = _build(tables, metric_cohort)
    hidden: set[int] = set()
    bands: dict[int, str] = {}
    for t, here in zip(tables, rows, strict=True):
        for i, (c, o) in enumerate(here):
            if t.hidden_cohort[i]:
                hidden.add(c)
            if t.hidden_outcome[i]:
                hidden.add(o)
                if t.band[i]:
                    bands[o] = t.band[i]
    _, extra = _primary(model, min_cell)
    return attack(model, hidden, bands, extra, min_cell if protection is None else protection)


def verify_published(
    tables: Sequence[Mapping[str, Any]],
    min_cell: int,
    protection: int | None = None,
    catalog: Catalog | None = None,
) -> list[str]:
    """Problems a *receiver* finds in published tables (``OutcomeTable.to_dict()``), from what is
    published alone: a shown count from 1 to min_cell−1 (or a shown outcome whose complement is that
    small), or a hidden count whose attacker interval is narrower than the protection. Empty: safe."""
    cat = catalog or load_catalog()
    p = min_cell if protection is None else protection
    problems: list[str] = []
    rebuilt: list[OutcomeTable] = []
    try:
        metric_cohort = {str(t["metric"]): cat.get(str(t["metric"])).cohort_key for t in tables}
        for t in tables:
            rows = list(t["rows"])
            cohort = [r["cohort"] for r in rows]
            outcome = [r["outcome"] for r in rows]
            if not rows or str(rows[-1]["group"]) != ALL:
                raise ValueError("no total row")
            for v in (*cohort, *outcome):
                if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                    raise ValueError("a count is not a whole number")
            table = OutcomeTable(
                str(t["metric"]), str(t["by"]), [str(r["group"]) for r in rows],
                [c or 0 for c in cohort], [o or 0 for o in outcome],
                [c is None for c in cohort], [o is None for o in outcome],
                [str(r.get("band", "")) if r.get("band") in ("low", "high") else "" for r in rows],
            )  # fmt: skip
            rebuilt.append(table)
            for i, g in enumerate(table.groups):
                c, o = cohort[i], outcome[i]
                where = f"{t['metric']} by {t['by'] or 'all'}, {g}"
                if c is not None and 0 < c < min_cell:
                    problems.append(f"{where}: {c} students shown")
                if c is not None and o is not None and c and (o < min_cell or c - o < min_cell):
                    problems.append(f"{where}: an outcome count under {min_cell} can be read")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"The published tables are not PathShare outcome tables ({exc}).") from None
    except Exception as exc:  # the catalog refuses an unknown metric
        if isinstance(exc, InputError):
            raise
        raise InputError(f"The published tables name a measure this catalog lacks: {exc}") from None
    if problems:
        return problems
    model, rows_of = _build(rebuilt, metric_cohort)
    hidden: set[int] = set()
    shown: dict[int, int] = {}  # a count shown in any table is known everywhere it repeats
    bands: dict[int, str] = {}
    for t, here in zip(rebuilt, rows_of, strict=True):
        for i, (c, o) in enumerate(here):
            for cell, gone, value in (
                (c, t.hidden_cohort[i], t.cohort[i]),
                (o, t.hidden_outcome[i], t.outcome[i]),
            ):
                if gone:
                    hidden.add(cell)
                else:
                    shown[cell] = value
            if t.hidden_outcome[i] and t.band[i]:
                bands[o] = t.band[i]
    for cell, value in shown.items():
        model.values[cell] = value
    hidden -= set(shown)
    return [
        f"{e.cell} can be narrowed to {e.high - e.low:g} students"
        for e in attack(model, hidden, bands, [], p)
    ]


# ------------------------------------------------------------------------------------- differencing


@dataclass(frozen=True)
class EarlierRelease:
    """A release the vault keeps: its published tables, and per metric which of today's rows were in
    its cohort (``members``; from the vault's keyed digests) plus how many of its members today's data
    lack (``absent``)."""

    label: str
    tables: Sequence[Mapping[str, Any]]  # OutcomeTable.to_dict() of each table
    members: Mapping[str, np.ndarray]  # metric id -> boolean mask over today's rows
    absent: Mapping[str, int]


def differencing_check(
    new: Tables,
    frame_groups: Mapping[str, np.ndarray],
    reached: Mapping[str, np.ndarray],
    earlier: Sequence[EarlierRelease],
    min_cell: int,
    protection: int,
) -> list[str]:
    """Cells a combination of the new release with an earlier one would reveal (empty: none).

    ``frame_groups``: per breakdown element, each row's group label; ``reached``: per metric, each
    row's outcome flag. Per metric in both releases, the attacker's variables are each cell's count
    among students in both cohorts (B), only the earlier (O) and only the new (N) one."""
    out: list[str] = []
    new_by_metric: dict[str, list[OutcomeTable]] = {}
    for t in new.tables:
        new_by_metric.setdefault(t.metric, []).append(t)
    for old in earlier:
        old_by_metric: dict[str, list[Mapping[str, Any]]] = {}
        for t in old.tables:
            old_by_metric.setdefault(str(t["metric"]), []).append(t)
        for metric, tabs in new_by_metric.items():
            if metric not in old_by_metric or metric not in old.members:
                continue
            now = new.cohorts[new.metric_cohort[metric]]
            then = old.members[metric]
            found = _difference(
                metric, tabs, old_by_metric[metric], now, then, old.absent.get(metric, 0),
                frame_groups, reached[metric], min_cell, protection,
            )  # fmt: skip
            out.extend(f"{cell} (with the release of {old.label})" for cell in found)
    return out


def _difference(
    metric: str,
    new_tabs: Sequence[OutcomeTable],
    old_tabs: Sequence[Mapping[str, Any]],
    now: np.ndarray,
    then: np.ndarray,
    absent: int,
    groups: Mapping[str, np.ndarray],
    reached: np.ndarray,
    m: int,
    p: int,
) -> list[str]:
    from scipy.optimize import linprog

    parts = {"B": now & then, "N": now & ~then, "O": then & ~now}
    present = [k for k, mask in parts.items() if mask.any() or (k == "O" and absent)]
    bys = sorted(({t.by for t in new_tabs} & {str(t["by"]) for t in old_tabs}) - {""})
    # Variables: (part, kind, by, group) for each part present; totals have by = "".
    var: dict[tuple[str, str, str, str], int] = {}

    def v(key: tuple[str, str, str, str]) -> int:
        if key not in var:
            var[key] = len(var)
        return var[key]

    cell_groups: dict[str, set[str]] = {b: set() for b in bys}
    for t in new_tabs:
        if t.by in cell_groups:
            cell_groups[t.by].update(g for g in t.groups if g != ALL)
    for t in old_tabs:
        if str(t["by"]) in cell_groups:
            cell_groups[str(t["by"])].update(str(r["group"]) for r in t["rows"] if r["group"] != ALL)
    for k in present:
        for kind in ("C", "O"):
            v((k, kind, "", ""))
            for b in bys:
                for g in sorted(cell_groups[b]):
                    v((k, kind, b, g))
    eqs: list[tuple[dict[int, float], float]] = []
    ubs: list[tuple[dict[int, float], float]] = []
    for k in present:
        for kind in ("C", "O"):
            for b in bys:
                coefs = {v((k, kind, b, g)): 1.0 for g in cell_groups[b]}
                coefs[v((k, kind, "", ""))] = -1.0
                eqs.append((coefs, 0.0))
        for b in ["", *bys]:
            for g in sorted(cell_groups[b]) if b else [""]:
                ubs.append(({v((k, "O", b, g)): 1.0, v((k, "C", b, g)): -1.0}, 0.0))
        # A crossed breakdown's lines add up to its margins (as in _build).
        named = {frozenset(breakdown_parts(b)): b for b in bys}
        for b in bys:
            elements = breakdown_parts(b)
            if len(elements) < 2:
                continue
            gs = sorted(cell_groups[b])
            for kind in ("C", "O"):
                for (mby, mgroup), members in _margin_lines(elements, gs, gs, named):
                    if mgroup in cell_groups[mby]:
                        coefs = {v((k, kind, b, g)): 1.0 for g in members}
                        coefs[v((k, kind, mby, mgroup))] = -1.0
                        eqs.append((coefs, 0.0))

    def published(rows: Iterable[tuple[str, str, int | None, int | None, str]], over: Sequence[str]) -> None:
        for b, g, c, o, band in rows:
            if b and b not in cell_groups:
                continue
            ks = [k for k in over if k in present]
            if c is not None:
                eqs.append(({v((k, "C", b, g)): 1.0 for k in ks}, float(c)))
            if o is not None:
                eqs.append(({v((k, "O", b, g)): 1.0 for k in ks}, float(o)))
            if o is None and c is not None and band:
                coefs = {v((k, "O", b, g)): 1.0 if band == "low" else -1.0 for k in ks}
                ubs.append((coefs, (BAND if band == "low" else -(1 - BAND)) * c))

    def new_rows() -> Iterable[tuple[str, str, int | None, int | None, str]]:
        for t in new_tabs:
            for i, g in enumerate(t.groups):
                c, o = t.published(i)
                yield ("" if g == ALL else t.by, "" if g == ALL else g, c, o, t.band[i])

    def old_rows() -> Iterable[tuple[str, str, int | None, int | None, str]]:
        for t in old_tabs:
            for r in t["rows"]:
                g = str(r["group"])
                yield ("" if g == ALL else str(t["by"]), "" if g == ALL else g, r["cohort"], r["outcome"],
                       str(r.get("band", "")))  # fmt: skip

    published(new_rows(), ("B", "N"))
    published(old_rows(), ("B", "O"))
    # Groups a release's table does not list had no students in that cohort: zero, and published.
    for rows, over in ((list(new_rows()), ("B", "N")), (list(old_rows()), ("B", "O"))):
        listed = {(b, g) for b, g, *_ in rows}
        for b in bys:
            for g in cell_groups[b] - {gg for bb, gg in listed if bb == b}:
                ks = [k for k in over if k in present]
                eqs.append(({v((k, "C", b, g)): 1.0 for k in ks}, 0.0))
    n = len(var)

    def dense(items: Sequence[tuple[dict[int, float], float]]) -> tuple[Any, Any]:
        if not items:
            return None, None
        a = np.zeros((len(items), n))
        for r, (coefs, _) in enumerate(items):
            for j, w in coefs.items():
                a[r, j] += w
        return a, np.array([rhs for _, rhs in items])

    a_eq, b_eq = dense(eqs)
    a_ub, b_ub = dense(ubs)
    # Targets: hidden cells of either release (sum over its parts), and parts holding 1 to m-1 students.
    targets: list[tuple[dict[int, float], str]] = []
    for rows, over, which in ((new_rows(), ("B", "N"), "new"), (old_rows(), ("B", "O"), "earlier")):
        for b, g, c, o, _band in rows:
            if b and b not in cell_groups:
                continue
            ks = [k for k in over if k in present]
            where = f"{b} = {g}" if b else ALL.lower()
            if c is None:
                label = f"{which} {metric} cohort count for {where}"
                targets.append(({v((k, "C", b, g)): 1.0 for k in ks}, label))
            if o is None:
                label = f"{which} {metric} count for {where}"
                targets.append(({v((k, "O", b, g)): 1.0 for k in ks}, label))
    for k in ("N", "O"):
        if k not in present:
            continue
        mask = parts[k]
        what = "students only the new cohort has" if k == "N" else "students only the earlier cohort had"
        for b in ["", *bys]:
            labels = groups[b][mask] if b else np.full(int(mask.sum()), "")
            hits = reached[mask]
            for g in sorted(cell_groups[b]) if b else [""]:
                sel = labels == g
                c, o = int(sel.sum()), int((sel & hits).sum())
                where = f"{b} = {g}" if b else ALL.lower()
                if 0 < c < m:
                    targets.append(({v((k, "C", b, g)): 1.0}, f"{metric}: {what}, {where}"))
                if c > 0 and (o < m or c - o < m):
                    targets.append(({v((k, "O", b, g)): 1.0}, f"{metric} outcome of {what}, {where}"))
    kw: dict[str, Any] = {"bounds": (0, None), "method": "highs"}
    if a_eq is not None:
        kw["A_eq"], kw["b_eq"] = a_eq, b_eq
    if a_ub is not None:
        kw["A_ub"], kw["b_ub"] = a_ub, b_ub
    exposed = []
    for coefs, label in targets:
        r = np.zeros(n)
        for j, w in coefs.items():
            r[j] += w
        lo, hi = linprog(r, **kw), linprog(-r, **kw)
        low = lo.fun if lo.status == 0 else (-math.inf if lo.status == 3 else math.nan)
        high = -hi.fun if hi.status == 0 else (math.inf if hi.status == 3 else math.nan)
        if not (high - low >= p - 1e-6):
            exposed.append(label)
    return exposed
