"""Disclosure control that keeps the data useful: the search for the least lossy generalization.

The quasi-identifiers (QIs) of a release each have a generalization hierarchy (deid/_hierarchy.py). A
**transformation** picks one level per QI (full-domain generalization, as ARX does); then **local
suppression**: each row of an equivalence class smaller than k loses one more QI value per round until
every class that still shows a value has k rows (an empty cell counts as a value of its own, as in
deid/_risk.py). Two ways of choosing the value are tried and the better kept: the QI with the most
groups first for every row (failing rows pool on the values they keep), and each row's cheapest value
by the loss measure (a common value before a rare one, so small groups keep theirs). A class failing l
(distinct or entropy) or t for a sensitive element loses all its QI values. The companion column
:data:`SUPPRESSED_COLUMN` names, per row, the QI values withheld (``race;zip3``; empty when none), so a
withheld cell is never mistaken for a value missing in the source. A transformation is allowed only when
at most ``suppression_limit`` of the rows lose a value. Rows left with no QI value at all link to nothing
and are not counted in k.

**Loss measure** (non-uniform entropy, as ARX offers it): a cell holding value v (n_v students), released
as a group g (n_g students), loses log2(n_g / n_v) bits — what the recipient can no longer tell apart;
a withheld cell, or any cell of a QI left out, loses log2(N / n_v) (N: the column's students with a
value). A rare value carries many bits, so withholding or merging it costs more than a common one: the
measure itself resists erasing small groups. Each column's loss is its bits lost over its whole
information (0: all kept, 1: the column gone); the loss is their mean over the QIs. The search minimises

    loss + min(0.15, 0.1 × (groups erased) + 0.05 × (groups losing more than twice the overall share))

where a *group* is a value of a QI (as the extract has it) or of a sensitive element held by at least k
students (a smaller group cannot be shown on its own anyway), *erased* means every one of its students
suppressed, and the *overall share* is the share of the column's students whose value was withheld (for
a sensitive element: of all students who lost a value). Among transformations of nearly equal loss the
search takes the one that erases or singles out no group, paying at most 0.15 of loss for it (the cap
also keeps the pruning below tight); it does not give up a column for everyone to
spare one group a few withheld values (on the demo cohort the only releases where no group loses more
than twice its column's share leave sex out — its 15 students of sex X cannot all keep it — at 0.76
loss against 0.56). So when the choice singles out a group, the best transformation that does not is
offered beside it, and so is the least lossy one when fairness made the search prefer another: the
clerk sees what fairness costs and picks within what the agreement allows. When the agreement
*requires* fairness (``Disclosure.fairness == "require"``) the release is the least lossy one with no
group over twice its share, found with the suppression orders and with an exact fair local suppression
(:meth:`_Search.fair_suppress`, a mixed-integer program that withholds only values needed for k), or
refused in one sentence when there is none.

**Search.** It works on the distinct combinations of the QIs' values, each weighted by its rows, never
on rows (a lattice node's class sizes are sums of those weights), so its cost grows with the number of
combinations, not of students. The lattice of level vectors is visited in order of a lower bound (the
generalization loss alone, which suppression can only raise); it stops once the bound reaches the best
score found. Two
monotonicity properties prune it as in ARX: if a transformation fails (suppression over the limit), so
does every more specific one (each QI at the same or a finer level), which is then skipped unevaluated.
Hierarchies must be monotone for this to hold (deid/_hierarchy.py checks them).

**Risk** (prosecutor model, as ARX reports it): a record's re-identification risk is 1/(its class size);
the report gives the highest and the average, the share of records above a threshold (1/k unless told),
the share of sample uniques (classes of one), and the marketer risk (classes / records), before (the
values as released, no generalization) and after.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._elements import code_with_label
from deid._hierarchy import ORIGINAL, REMOVED, Hierarchy, hierarchy_from_dict
from deid.errors import CheckFailed, PolicyError

SUPPRESSED_COLUMN = "qi_withheld"
DEFAULT_SUPPRESSION_LIMIT = 0.05
ERASED_PENALTY = 0.1
UNFAIR_PENALTY = 0.05
FAIRNESS_CAP = 0.15  # fairness never buys more than this much loss (and the lattice pruning stays tight)
UNFAIR_RATIO = 2.0
FAIR_MAX_VARIABLES = 6_000  # the exact fair suppression's program beyond this is not attempted
# What a program may take is counted in branch-and-bound nodes, not seconds, so the same extract gets the
# same release on a busy laptop and an idle one (a 1.5 s limit cut programs off under load and changed
# the answer). The programs of a cohort settle in at most ~60 nodes; the seconds are only a safety net.
FAIR_BB_NODES = 500  # per program
FAIR_SECONDS = 10.0  # per lattice node, a safety net (counted apart in fair_stats as out_of_time)
FAIR_MAX_NODES = 400  # lattice nodes given the exact fair suppression, in order of their bound
FAIR_MAX_PROGRAMS = 20  # of those, programs actually solved (the others are refuted by counting)
FAIR_RESOLVES = 8  # solutions withholding a needless value cut off and solved again
L_KINDS = ("distinct", "entropy")
FAIRNESS = ("prefer", "require")
LOSS_MEASURE = (
    "non-uniform entropy: a cell of value v released as a group g loses log2(n_g/n_v) bits, a withheld "
    "cell or one of a quasi-identifier left out log2(N/n_v) bits (n: students with that value or group, "
    "N: students with a value); each column's bits lost over its whole information (0 = all kept, "
    "1 = column gone), averaged over the quasi-identifiers"
)
_SAFE_RANGE = 1 << 62


@dataclass(frozen=True)
class Disclosure:
    """What a release must satisfy beyond k, and how it may be transformed (by output column name).

    ``hierarchies`` give each QI's levels (a QI without one can only be kept or left out);
    ``choice`` fixes the level of QIs by name (the clerk's pick among the candidates) instead of searching.
    """

    hierarchies: Mapping[str, Hierarchy] = field(default_factory=dict)
    sensitive: tuple[str, ...] = ()
    l: int | None = None  # noqa: E741  (the literature's name)
    l_kind: str = "distinct"
    t: float | None = None
    suppression_limit: float = DEFAULT_SUPPRESSION_LIMIT
    choice: Mapping[str, str] | None = None
    risk_threshold: float | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # column -> words for people ("ZIP code")
    # "prefer": the search pays a little loss for fairness and offers the fair release beside its choice;
    # "require": the release is the least lossy one where no group loses its value more than twice as
    # often as its column (refused, in one sentence, when there is none)
    fairness: str = "prefer"

    def check(self, where: str) -> None:
        """PolicyError (one sentence) for settings out of range."""
        if self.l is not None and (isinstance(self.l, bool) or not isinstance(self.l, int) or self.l < 2):
            raise PolicyError(f"{where}: 'l' must be a whole number of at least 2.")
        if self.l_kind not in L_KINDS:
            raise PolicyError(f"{where}: 'l_kind' must be distinct or entropy.")
        if self.fairness not in FAIRNESS:
            raise PolicyError(f"{where}: 'fairness' must be prefer or require.")
        if self.t is not None and (not _number(self.t) or not 0 < self.t < 1):
            raise PolicyError(f"{where}: 't' must be a number between 0 and 1, such as 0.2.")
        if not _number(self.suppression_limit) or not 0 <= self.suppression_limit <= 0.5:
            raise PolicyError(
                f"{where}: 'suppression_limit' must be a share between 0 and 0.5, such as 0.05."
            )
        if (self.l is not None or self.t is not None) and not self.sensitive:
            raise PolicyError(f"{where}: l-diversity and t-closeness need the sensitive elements named.")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"suppression_limit": self.suppression_limit}
        if self.sensitive:
            out["sensitive"] = list(self.sensitive)
        if self.l is not None:
            out["l"] = self.l
            out["l_kind"] = self.l_kind
        if self.t is not None:
            out["t"] = self.t
        if self.hierarchies:
            out["hierarchies"] = {q: h.to_dict() for q, h in self.hierarchies.items()}
        if self.choice:
            out["choice"] = dict(self.choice)
        if self.fairness != "prefer":
            out["fairness"] = self.fairness
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Disclosure:
        """The ``disclosure`` block of a standalone policy file."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"{where}: 'disclosure' must be an object.")
        known = {
            "suppression_limit",
            "sensitive",
            "l",
            "l_kind",
            "t",
            "hierarchies",
            "choice",
            "risk_threshold",
            "fairness",
        }
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"{where}: 'disclosure' has an unknown setting {sorted(unknown)[0]!r}.")
        sensitive = data.get("sensitive", [])
        if not isinstance(sensitive, list) or not all(isinstance(s, str) for s in sensitive):
            raise PolicyError(f"{where}: 'sensitive' must list output column names.")
        hierarchies = {}
        raw = data.get("hierarchies", {})
        if not isinstance(raw, Mapping):
            raise PolicyError(f"{where}: 'hierarchies' must map column names to hierarchies.")
        for column, spec in raw.items():
            if isinstance(spec, str):  # an element of the library by name
                from deid._elements import element_library

                element = element_library().get(spec)
                if element is None:
                    raise PolicyError(f"{where}: the element library has no element {spec!r} for {column}.")
                hierarchies[column] = element.generalization()
            else:
                hierarchies[column] = hierarchy_from_dict(column, spec, where=where)
        choice = data.get("choice")
        if choice is not None and not (
            isinstance(choice, Mapping) and all(isinstance(v, str) for v in choice.values())
        ):
            raise PolicyError(f"{where}: 'choice' must map quasi-identifiers to level names.")
        out = cls(
            hierarchies=hierarchies,
            sensitive=tuple(sensitive),
            l=data.get("l"),
            l_kind=data.get("l_kind", "distinct"),
            t=data.get("t"),
            suppression_limit=data.get("suppression_limit", DEFAULT_SUPPRESSION_LIMIT),
            choice=dict(choice) if choice else None,
            risk_threshold=data.get("risk_threshold"),
            fairness=data.get("fairness", "prefer"),
        )
        out.check(where)
        return out


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


# ------------------------------------------------------------------------------------ results


@dataclass
class Candidate:
    """One transformation the clerk can pick: levels per QI and what it costs."""

    levels: dict[str, str]
    loss: float
    score: float
    rows_suppressed: int
    kept_share: dict[str, float]  # per QI: share of students with a value who keep one
    removed: list[str]
    groups_warned: int
    groups_erased: int
    sentence: str = ""
    words: dict[str, str] = field(default_factory=dict)  # per QI: its level in plain words
    names: dict[str, str] = field(default_factory=dict)  # per QI: its name in plain words
    # False when the agreement requires fairness and this one singles out a group: shown to compare
    # (what keeping a column would cost), not a choice the clerk has
    allowed: bool = True


@dataclass
class GroupLoss:
    """One group (a value of a QI as released, or of a sensitive element) and what it lost."""

    attribute: str
    group: str
    students: int
    suppressed: int
    generalized: int

    @property
    def share_suppressed(self) -> float:
        return self.suppressed / self.students if self.students else 0.0


@dataclass
class DisclosureResult:
    """What the search chose, what it cost, the risk before and after, and the fairness table."""

    k: int
    quasi_identifiers: list[str]
    sensitive: list[str]
    l_required: int | None
    l_kind: str
    t_required: float | None
    suppression_limit: float
    loss_measure: str
    levels: dict[str, str]
    removed: list[str]
    loss: float
    loss_by_column: dict[str, float]
    rows: int
    rows_suppressed: int  # rows that lost at least one quasi-identifier value
    linked_rows: int  # rows that still show some quasi-identifier value (k, l, t are measured on them)
    cells_lost_by_column: dict[str, int]
    cells_generalized_by_column: dict[str, int]
    values_by_column: dict[str, int]
    k_achieved: int | None
    l_achieved: dict[str, float]  # distinct: whole numbers; entropy: exp(lowest class entropy)
    t_achieved: dict[str, float]
    classes: int
    risk_threshold: float
    risk_before: dict[str, float]
    risk_after: dict[str, float]
    groups: list[GroupLoss]
    warnings: list[str]
    candidates: list[Candidate]
    search: dict[str, Any]
    sentences: list[str]
    names: dict[str, str] = field(default_factory=dict)  # per QI: its name in plain words
    level_words: dict[str, str] = field(default_factory=dict)  # per QI: the chosen level in plain words
    class_sizes: dict[str, int] = field(default_factory=dict)  # classes by size band ("11-21": 40)
    fairness: str = "prefer"
    # QIs left out because the agreement requires fairness: the least lossy release kept them
    removed_for_fairness: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for g, raw in zip(self.groups, data["groups"], strict=True):
            raw["share_suppressed"] = round(g.share_suppressed, 4)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DisclosureResult:
        raw = dict(data)
        raw["groups"] = [
            GroupLoss(**{k: v for k, v in g.items() if k != "share_suppressed"})
            for g in raw.get("groups", [])
        ]
        raw["candidates"] = [Candidate(**c) for c in raw.get("candidates", [])]
        return cls(**raw)

    def as_risk(self) -> Any:
        """The counts the report's k-anonymity fields hold (deid._risk.RiskResult's shape)."""
        from deid._risk import RiskResult

        kept = [q for q in self.quasi_identifiers if q not in self.removed]
        return RiskResult(
            k_required=self.k,
            quasi_identifiers=kept,
            k_achieved=self.k_achieved,
            classes=self.classes,
            records_at_risk_before=round(self.risk_before["records_at_risk"] * self.rows),
            suppressed_cells=sum(self.cells_lost_by_column[q] for q in kept),
            rows_with_suppression=self.rows_suppressed,
            rows_fully_suppressed=self.rows - self.linked_rows,
            rows_with_empty_qi=self.rows_suppressed,
            suppressed_by_column={q: self.cells_lost_by_column[q] for q in kept},
        )

    def lost_share(self, qi: str) -> float:
        """Share of the students with a value in ``qi`` who lose it (suppressed, or the QI left out)."""
        n = self.values_by_column.get(qi, 0)
        return self.cells_lost_by_column.get(qi, 0) / n if n else 0.0


# ------------------------------------------------------------------------------- the prepared data


@dataclass
class _QI:
    name: str
    idx: np.ndarray  # per row: index into values, -1 when missing
    values: list[str]
    counts: np.ndarray
    hierarchy: Hierarchy
    levels: list[int]  # hierarchy level numbers that the search may use (duplicates dropped)
    gmaps: dict[int, np.ndarray]  # level -> group id per distinct value
    labels: dict[int, list[str]]  # level -> group label per group id
    loss_per_value: dict[int, np.ndarray]  # level -> per cell of each value: bits lost / column's bits
    gen_loss: dict[int, float]  # level -> the column's normalized loss (0 … 1)
    present: int  # rows with a value
    suppressed_loss: np.ndarray  # per cell of each value, when withheld (as when the column leaves)
    removed_level: int | None

    def codes(self, level: int) -> tuple[np.ndarray, int]:
        """Per row the group code at ``level`` (0 = missing) and the number of codes."""
        if level == self.removed_level or not len(self.values):  # (a column with no value at all)
            return np.zeros(len(self.idx), np.int64), 1
        gmap = self.gmaps[level]
        codes = np.where(self.idx >= 0, gmap[np.maximum(self.idx, 0)] + 1, 0)
        return codes.astype(np.int64), len(self.labels[level]) + 1

    def level_name(self, level: int) -> str:
        if level == self.removed_level:
            return REMOVED
        return ORIGINAL if level == 0 else self.hierarchy.levels[level - 1].name


def _wcount(codes: np.ndarray, weights: np.ndarray, minlength: int = 0) -> np.ndarray:
    """Rows per code, each row counting ``weights`` rows (a row of a table of classes stands for its
    class's rows: deid._stream); exact integers."""
    return np.bincount(codes, weights=weights, minlength=minlength).round().astype(np.int64)


def _encode(
    column: pa.ChunkedArray | pa.Array, weights: np.ndarray | None = None
) -> tuple[np.ndarray, list[str], np.ndarray]:
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not pa.types.is_string(flat.type):
        flat = flat.cast(pa.string())
    flat = pc.if_else(pc.equal(flat, ""), pa.scalar(None, pa.string()), flat)
    enc = pc.dictionary_encode(flat)
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    values = [str(v) for v in enc.dictionary.to_pylist()]
    w = np.ones(len(idx), np.int64) if weights is None else weights
    has = idx >= 0
    counts = _wcount(idx[has], w[has], len(values)) if len(values) else np.zeros(0, np.int64)
    return idx, values, counts


def _prepare_qi(
    table: pa.Table, name: str, hierarchy: Hierarchy, k: int, choice: str | None, weights: np.ndarray
) -> _QI:
    idx, values, counts = _encode(table.column(name), weights)
    m = len(values)
    gmaps = {0: np.arange(m, dtype=np.int64)}
    labels = {0: list(values)}
    levels = [0]
    for level in range(1, len(hierarchy.levels) + 1):
        mapped = hierarchy.generalize(values, counts.tolist(), level, k)
        uniq, inverse = (
            np.unique(np.asarray(mapped, dtype=object).astype(str), return_inverse=True)
            if m
            else (
                np.array([], dtype=str),
                np.zeros(0, np.int64),
            )
        )
        gmaps[level] = inverse.astype(np.int64)
        labels[level] = [str(u) for u in uniq]
        # the same grouping as the level kept before it (monotone: same number of groups) adds nothing
        if len(uniq) < len(labels[levels[-1]]) or choice == hierarchy.levels[level - 1].name:
            levels.append(level)
    removed_level = len(hierarchy.levels) + 1 if hierarchy.removable else None
    if removed_level is not None:
        levels.append(removed_level)
    present = int(counts.sum())
    # Non-uniform entropy: a cell of value v released as group g loses log2(n_g / n_v) bits, a withheld
    # cell log2(N / n_v); normalized by the column's whole information, sum over rows of log2(N / n_v).
    safe = np.maximum(counts, 1).astype(float)
    bits_gone = np.log2(max(present, 1) / safe)
    total_bits = float((bits_gone * counts).sum())
    norm = total_bits if total_bits > 0 else 1.0
    loss_per_value: dict[int, np.ndarray] = {}
    gen_loss: dict[int, float] = {}
    for level in levels:
        if level == removed_level:
            loss_per_value[level] = bits_gone / norm
        else:
            n_group = np.bincount(gmaps[level], weights=counts, minlength=len(labels[level]))
            loss_per_value[level] = np.log2(np.maximum(n_group[gmaps[level]], 1) / safe) / norm
        gen_loss[level] = float((loss_per_value[level] * counts).sum())
    suppressed_loss = bits_gone / norm
    if choice is not None:
        names = {ORIGINAL: 0, **{lv.name: i + 1 for i, lv in enumerate(hierarchy.levels)}}
        if removed_level is not None:
            names[REMOVED] = removed_level
        if choice not in names:
            raise PolicyError(
                f"The transformation chosen for {name} uses level {choice!r}, which its hierarchy does not "
                f"allow (it allows {', '.join(hierarchy.level_names)})."
            )
        levels = [names[choice]]
    return _QI(
        name,
        idx,
        values,
        counts,
        hierarchy,
        levels,
        gmaps,
        labels,
        loss_per_value,
        gen_loss,
        present,
        suppressed_loss,
        removed_level,
    )


@dataclass
class _Eval:
    """One transformation evaluated. While searching, the arrays are per distinct combination of the
    QIs' released values (:attr:`_Search.weight` rows each); :meth:`_Search.per_row` turns them into
    arrays per row for the chosen transformations only."""

    levels: tuple[int, ...]
    feasible: bool
    suppressed: np.ndarray | None = None  # with at least one quasi-identifier value withheld
    dense: np.ndarray | None = None  # class (withheld and missing cells empty)
    linked: np.ndarray | None = None  # still shows some quasi-identifier value
    blank: list[np.ndarray] = field(default_factory=list)  # per QI: its values withheld
    loss: float = 0.0
    score: float = 0.0
    warned: int = 0
    erased: int = 0
    order: tuple[int, ...] = ()  # the local suppression order that gave this result
    exact: bool = False  # from the exact fair suppression (a program), not a suppression order


def _combine(codes: list[tuple[np.ndarray, int]], n: int) -> np.ndarray:
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for c, size in codes:
        if span * size >= _SAFE_RANGE:
            key = _dense(key)
            span = int(key.max()) + 1 if n else 1
        key = key * size + c
        span *= size
    return _dense(key)


def _dense(key: np.ndarray) -> np.ndarray:
    return pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)


class _Search:
    """The lattice search. It never looks at rows: every row with the same released values in all the
    QIs behaves the same under generalization and local suppression, so the search works on the
    distinct combinations of those values, each weighted by its number of rows (a class's size at a
    lattice node is the sum of the weights of the combinations that fall into it). On 1M rows of five
    QIs that is tens of thousands of combinations, not a million rows, per transformation."""

    def __init__(
        self,
        table: pa.Table,
        qis: Sequence[str],
        k: int,
        rules: Disclosure,
        weights: np.ndarray | None = None,
    ) -> None:
        rows = table.num_rows
        # rows the table's rows stand for (1 each; a class's count in a table of classes)
        self.row_weight = np.ones(rows, np.int64) if weights is None else np.asarray(weights, np.int64)
        rw = self.row_weight
        self.n = int(rw.sum())
        self.weighted = weights is not None
        self.k = k
        self.rules = rules
        choice = rules.choice or {}
        unknown = [q for q in choice if q not in qis]
        if unknown:
            raise PolicyError(
                f"The chosen transformation names {unknown[0]}, which is not a quasi-identifier."
            )
        self.qis = [
            _prepare_qi(table, q, rules.hierarchies.get(q) or Hierarchy(q, "map"), k, choice.get(q), rw)
            for q in qis
        ]
        # The distinct combinations: per row its combination, per combination its rows and values.
        self.row_combo = (
            _combine([(q.idx + 1, len(q.values) + 1) for q in self.qis], rows)
            if self.qis
            else np.zeros(rows, np.int64)
        )
        self.m = int(self.row_combo.max()) + 1 if rows else 0
        self.weight = _wcount(self.row_combo, rw, self.m)
        first = np.zeros(self.m, np.int64)
        first[self.row_combo] = np.arange(rows)  # any row of a combination holds its values
        self.cidx = [q.idx[first] for q in self.qis]
        self.sensitive: list[tuple[str, np.ndarray, int, list[str]]] = []
        # per sensitive element: (combination, value code, rows) for every pair that occurs
        self.sens_pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for s in rules.sensitive:
            if s not in table.column_names:
                raise PolicyError(f"The sensitive element {s} is not a column of the release.")
            idx, values, _ = _encode(table.column(s))
            codes = idx + 1  # 0 = missing, a value of its own
            distinct = len(np.unique(codes[rw > 0])) if self.n else 0
            if rules.l is not None and distinct < rules.l:
                raise CheckFailed(
                    f"The sensitive element {s} has {distinct} distinct value{'s' if distinct != 1 else ''} "
                    "in "
                    f"this extract, so no group can show {rules.l} different values; lower l or take {s} off "
                    "the agreement's sensitive elements."
                )
            if rules.l is not None and rules.l_kind == "entropy" and self.n:
                p = _wcount(codes, rw) / self.n
                p = p[p > 0]
                if -(p * np.log(p)).sum() < math.log(rules.l) - 1e-12:
                    raise CheckFailed(
                        f"The sensitive element {s} is too uneven in this extract for entropy l-diversity "
                        f"with l = {rules.l} (even the whole release would fail it); use distinct "
                        "l-diversity or a lower l."
                    )
            m = len(values) + 1
            self.sensitive.append((s, codes, m, ["(missing)", *values]))
            up, inv = np.unique(self.row_combo * m + codes, return_inverse=True)
            cnt = _wcount(inv.reshape(-1), rw, len(up))
            self.sens_pairs.append((up // m, up % m, cnt))
        self.denominator = max(1, len(self.qis))  # the loss is the mean of the columns' normalized losses
        self.limit_rows = math.floor(rules.suppression_limit * self.n + 1e-9)
        self.evaluated = 0
        self.pruned_bound = 0
        self.pruned_monotone = 0
        self.group_sizes = [_wcount(q.idx[q.idx >= 0], rw[q.idx >= 0], len(q.values)) for q in self.qis]
        self.sens_sizes = [_wcount(c, rw, m) for _, c, m, _ in self.sensitive]
        self._codes: dict[tuple[int, int], tuple[np.ndarray, int]] = {}
        self._costs: dict[tuple[int, ...], np.ndarray] = {}
        self.fair_stats = {
            "tried": 0,
            "found": 0,
            "proved_none": 0,
            "too_large": 0,
            "too_slow": 0,
            "out_of_time": 0,
            "needless_cut": 0,
            "solved": 0,
        }

    # ---- one transformation

    def classes_before(self) -> np.ndarray:
        """Per row its class with the values as released (no generalization): its combination."""
        return self.row_combo

    def codes(self, i: int, level: int) -> tuple[np.ndarray, int]:
        """Per combination the group code of QI ``i`` at ``level`` (0 = missing), and the codes' count."""
        got = self._codes.get((i, level))
        if got is None:
            q, ci = self.qis[i], self.cidx[i]
            if level == q.removed_level or not len(q.values):  # (a column with no value at all)
                got = np.zeros(self.m, np.int64), 1
            else:
                gmap = q.gmaps[level]
                got = np.where(ci >= 0, gmap[np.maximum(ci, 0)] + 1, 0), len(q.labels[level]) + 1
            self._codes[(i, level)] = got
        return got

    def cell_costs(self, levels: tuple[int, ...]) -> np.ndarray:
        """Per QI and combination: the loss added by withholding its value at ``levels``."""
        got = self._costs.get(levels)
        if got is None:
            rows = []
            for q, lv, ci in zip(self.qis, levels, self.cidx, strict=True):
                if lv == q.removed_level or not len(q.values):
                    rows.append(np.full(self.m, np.inf))
                    continue
                at = np.maximum(ci, 0)
                rows.append(np.where(ci >= 0, q.suppressed_loss[at] - q.loss_per_value[lv][at], np.inf))
            got = np.stack(rows) if rows else np.zeros((0, self.m))
            self._costs = {levels: got}  # (one node at a time)
        return got

    def failing_lt(self, dense: np.ndarray, sizes: np.ndarray, linked: np.ndarray) -> np.ndarray:
        """Per class: does it fail l or t (t measured against the released rows' distribution)?"""
        r = self.rules
        n_classes = len(sizes)
        fail = np.zeros(n_classes, bool)
        for (_name, _codes, m, _), (p_combo, p_val, p_rows) in zip(
            self.sensitive, self.sens_pairs, strict=True
        ):
            keep = linked[p_combo]
            pair = dense[p_combo[keep]] * m + p_val[keep]
            up, inv = np.unique(pair, return_inverse=True)
            cnt = np.bincount(inv, weights=p_rows[keep])
            cls = up // m
            val = up % m
            if r.l is not None:
                if r.l_kind == "distinct":
                    distinct = np.bincount(cls, minlength=n_classes)
                    fail |= (distinct < r.l) & (sizes > 0)
                else:
                    p = cnt / sizes[cls]
                    h = -np.bincount(cls, weights=p * np.log(p), minlength=n_classes)
                    fail |= (h < math.log(r.l) - 1e-12) & (sizes > 0)
            if r.t is not None:
                shown = np.bincount(p_val[keep], weights=p_rows[keep], minlength=m)
                overall = shown / max(1.0, float(shown.sum()))
                p = cnt / sizes[cls]
                diff = np.bincount(cls, weights=np.abs(p - overall[val]), minlength=n_classes)
                present = np.bincount(cls, weights=overall[val], minlength=n_classes)
                tv = 0.5 * (diff + (1.0 - present))
                fail |= (tv > r.t + 1e-12) & (sizes > 0)
        return fail

    def orders(self, levels: tuple[int, ...]) -> list[tuple[int, ...]]:
        """The local suppression orders tried at ``levels``: the QI with the most groups first (the
        finest split goes first), and no fixed order — each row withholds its cheapest value — which can
        spread the loss instead of taking one group's value from most of its students. (Bringing each
        other QI to the front as well, one more evaluation per QI, changed nothing on the demo's cohort.)"""
        sizes = [self.codes(i, lv)[1] for i, lv in enumerate(levels)]
        default = tuple(sorted(range(len(self.qis)), key=lambda i: -sizes[i]))
        return [default, ()]

    def evaluate(self, levels: tuple[int, ...]) -> _Eval:
        """The best feasible local suppression of ``levels`` over :meth:`orders` (infeasible if none)."""
        self.evaluated += 1
        best: _Eval | None = None
        for order in self.orders(levels):
            ev = self.suppress(levels, order)
            if ev.feasible and (best is None or (ev.score, ev.loss) < (best.score, best.loss)):
                best = ev
        return best or _Eval(levels, False)

    def suppress(self, levels: tuple[int, ...], order: tuple[int, ...]) -> _Eval:
        """Generalize to ``levels``, then suppress locally: each row of a class smaller than k loses one
        more quasi-identifier value per round (in ``order``), an empty cell counting as a value of its
        own, until every class that shows a value has k rows; a class that fails l or t loses all its
        quasi-identifier values. Feasible when at most the limit's rows lose anything."""
        base = [self.codes(i, lv) for i, lv in enumerate(levels)]
        codes = [c.copy() for c, _ in base]
        sizes_q = [size for _, size in base]
        lt = self.rules.l is not None or self.rules.t is not None
        w = self.weight
        settled = False
        dense = np.zeros(self.m, np.int64)
        linked = np.ones(self.m, bool)
        for _ in range(len(self.qis) + 8):
            dense = _combine(list(zip(codes, sizes_q, strict=True)), self.m)
            linked = np.logical_or.reduce([c != 0 for c in codes]) if codes else np.zeros(self.m, bool)
            n_classes = int(dense.max()) + 1 if self.m else 0
            csize = np.bincount(dense[linked], weights=w[linked], minlength=n_classes)
            fail_k = (csize < self.k)[dense] & linked
            fail_lt = np.zeros(self.m, bool)
            if lt:
                fail_lt = self.failing_lt(dense, csize, linked)[dense] & linked & ~fail_k
            if not fail_k.any() and not fail_lt.any():
                settled = True
                break
            for c in codes:
                c[fail_lt] = 0
            if order:
                done = np.zeros(self.m, bool)
                for i in order:
                    hit = fail_k & ~done & (codes[i] != 0)
                    codes[i][hit] = 0
                    done |= hit
            elif fail_k.any():
                # each row withholds its cheapest value still shown (the least information lost)
                cost = np.where(np.stack(codes) != 0, self.cell_costs(levels), np.inf)
                pick = np.argmin(cost, axis=0)
                for i, c in enumerate(codes):
                    c[fail_k & (pick == i) & (c != 0)] = 0
            if int(w[self._touched(codes, levels)].sum()) > self.limit_rows:
                return _Eval(levels, False)
        if not settled:
            return _Eval(levels, False)
        return self._finish(levels, codes, dense, linked, order)

    def _finish(
        self,
        levels: tuple[int, ...],
        codes: list[np.ndarray],
        dense: np.ndarray,
        linked: np.ndarray,
        order: tuple[int, ...],
    ) -> _Eval:
        """The evaluation of a settled local suppression (``codes``: per QI and combination, 0 where
        withheld or missing): what it withholds, its loss and its fairness counts."""
        w = self.weight
        blank = [
            np.zeros(self.m, bool) if lv == q.removed_level else (ci >= 0) & (c == 0)
            for q, lv, c, ci in zip(self.qis, levels, codes, self.cidx, strict=True)
        ]
        touched = np.logical_or.reduce(blank) if blank else np.zeros(self.m, bool)
        if int(w[touched].sum()) > self.limit_rows:
            return _Eval(levels, False)
        ev = _Eval(levels, True, touched, dense, linked, blank, order=order)
        lost = 0.0
        for q, lv, b, ci in zip(self.qis, levels, blank, self.cidx, strict=True):
            lost += q.gen_loss[lv]
            if b.any():
                i = ci[b]
                lost += float((w[b] * (q.suppressed_loss[i] - q.loss_per_value[lv][i])).sum())
        ev.loss = lost / self.denominator
        ev.warned, ev.erased = self.fairness_counts(blank, touched)
        penalty = ERASED_PENALTY * ev.erased + UNFAIR_PENALTY * ev.warned
        ev.score = ev.loss + min(FAIRNESS_CAP, penalty)
        return ev

    def fair_suppress(self, levels: tuple[int, ...], seconds: float = FAIR_SECONDS) -> _Eval | None:
        """The least lossy local suppression at ``levels`` in which no group loses its value more than
        twice as often as its column and every withheld value is needed for k — solved exactly as a
        mixed-integer program (scipy's HiGHS). None when there is none (proved), or when the program is
        too large or too slow to settle (counted in :attr:`fair_stats`); l and t are checked after.

        * Only the combinations in classes smaller than k may lose values: a row whose class already
          has k rows keeps them all (withholding its values would only dilute its column's share).
        * Each such combination withholds one pattern S of its shown values (S may be empty), all its
          rows alike: a 0/1 variable per (combination, S).
        * A class the rows reach holds none or at least k of them (one 0/1 variable per class no kept
          row reaches: ``sum <= W·y`` and ``sum >= k·y``); rows left with no value link to nothing.
        * The rows that lose a value stay within the suppression limit.
        * For every group g (a value of a QI, or of a sensitive element, held by at least k students,
          n_g of them) and its column (N students with a value, L losing it):
          ``lost_g · N <= 2 · n_g · L`` — the 2x rule, linear in the counts.
        * The objective is the loss measure (each withheld cell's bits over its column's, as above).

        A solution in which one row could get one withheld value back without any class falling below
        k would withhold it only to make another group's share look smaller: that pattern is cut off
        and the program solved again (at most a few times)."""
        from scipy.optimize import Bounds, LinearConstraint, milp
        from scipy.sparse import csr_matrix

        stats = self.fair_stats
        stats["tried"] += 1
        nq, w, k = len(self.qis), self.weight, self.k
        codes = [self.codes(i, lv)[0] for i, lv in enumerate(levels)]
        sizes_q = [self.codes(i, lv)[1] for i, lv in enumerate(levels)]
        dense = _combine(list(zip(codes, sizes_q, strict=True)), self.m)
        linked = np.logical_or.reduce([c != 0 for c in codes]) if codes else np.zeros(self.m, bool)
        csize = np.bincount(dense[linked], weights=w[linked], minlength=int(dense.max()) + 1 if self.m else 0)
        failing = np.flatnonzero(linked & (csize[dense] < k))
        if not len(failing):
            return None  # nothing to suppress: the heuristic's evaluation is already exact
        shown = np.stack([c[failing] != 0 for c in codes])  # per QI and failing combination
        # rows of a failing class with every value shown can only leave it by losing one: no program
        # is needed to see that they are over the limit
        full = [
            shown[i] for i, (q, lv) in enumerate(zip(self.qis, levels, strict=True)) if lv != q.removed_level
        ]
        if full and int(w[failing[np.logical_and.reduce(full)]].sum()) > self.limit_rows:
            stats["proved_none"] += 1
            return None
        # the variables: per failing combination, every subset of its shown values (bit i: QI i)
        n_shown = shown.sum(axis=0)
        if int((1 << n_shown).sum()) > FAIR_MAX_VARIABLES:
            stats["too_large"] += 1
            return None
        var_c, var_mask = [], []
        for j, c in enumerate(failing):
            bits = [1 << i for i in range(nq) if shown[i, j]]
            for r in range(len(bits) + 1):
                for combo in itertools.combinations(bits, r):
                    var_c.append(c)
                    var_mask.append(sum(combo))
        vc = np.asarray(var_c, np.int64)
        vm = np.asarray(var_mask, np.int64)
        nv = len(vc)
        kept_rows = np.ones(self.m, bool)
        kept_rows[failing] = False
        fixed = np.flatnonzero(kept_rows)
        # class of every kept combination and of every (combination, pattern)
        tcodes = [np.concatenate([c[fixed], np.where((vm >> i) & 1, 0, c[vc])]) for i, c in enumerate(codes)]
        target = _combine(list(zip(tcodes, sizes_q, strict=True)), len(fixed) + nv)
        n_t = int(target.max()) + 1
        base = np.bincount(target[: len(fixed)], weights=w[fixed], minlength=n_t)
        vt = target[len(fixed) :]
        vw = w[vc].astype(float)
        nothing = ~np.logical_or.reduce([tc[len(fixed) :] != 0 for tc in tcodes])  # links to nothing
        cost = self.cell_costs(levels)
        obj = np.zeros(nv)
        for i in range(nq):
            on = ((vm >> i) & 1).astype(bool)
            obj[on] += cost[i, vc[on]]
        obj = obj * vw / self.denominator + 1e-9 * vm.astype(bool)

        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        lo: list[float] = []
        hi: list[float] = []

        def add(idx: np.ndarray, coef: np.ndarray, low: float, high: float) -> None:
            rows.append(np.full(len(idx), len(lo), np.int64))
            cols.append(np.asarray(idx, np.int64))
            vals.append(np.asarray(coef, float))
            lo.append(low)
            hi.append(high)

        order = np.argsort(vc, kind="stable")
        starts = np.flatnonzero(np.r_[True, vc[order][1:] != vc[order][:-1]])
        for idx in np.split(order, starts[1:]):
            add(idx, np.ones(len(idx)), 1.0, 1.0)  # one pattern per combination
        reached = np.unique(vt[~nothing])
        ys = {int(t): nv + j for j, t in enumerate(reached[base[reached] == 0])}
        by_t = np.argsort(vt, kind="stable")
        t_starts = np.flatnonzero(np.r_[True, vt[by_t][1:] != vt[by_t][:-1]])
        for idx in np.split(by_t, t_starts[1:]):
            t = int(vt[idx[0]])
            if nothing[idx[0]] or base[t] >= k:
                continue
            if base[t] > 0:  # kept rows are there: the class must reach k
                add(idx, vw[idx], k - base[t], np.inf)
            else:
                y = ys[t]
                add(np.r_[idx, y], np.r_[vw[idx], -vw[idx].sum()], -np.inf, 0.0)
                add(np.r_[idx, y], np.r_[vw[idx], -float(k)], 0.0, np.inf)
        some = np.flatnonzero(vm != 0)
        add(some, vw[some], 0.0, float(self.limit_rows))
        for i, (q, lv) in enumerate(zip(self.qis, levels, strict=True)):
            if lv == q.removed_level:
                continue
            on = np.flatnonzero((vm >> i) & 1)
            if not len(on):
                continue
            g_of = self.cidx[i][vc[on]]
            for g in np.unique(g_of):
                n_g = int(self.group_sizes[i][g])
                if n_g >= k:
                    add(on, vw[on] * (q.present * (g_of == g) - UNFAIR_RATIO * n_g), -np.inf, 0.0)
        for sizes, (p_combo, p_val, p_rows) in zip(self.sens_sizes, self.sens_pairs, strict=True):
            # per failing combination, its rows of each value of the sensitive element
            at = np.full(self.m, -1, np.int64)
            at[failing] = np.arange(len(failing))
            inside = at[p_combo] >= 0
            for g in np.unique(p_val[inside]):
                n_g = int(sizes[g])
                if n_g < k:
                    continue
                per = np.zeros(len(failing))
                sel = inside & (p_val == g)
                np.add.at(per, at[p_combo[sel]], p_rows[sel])
                add(some, self.n * per[at[vc[some]]] - UNFAIR_RATIO * n_g * vw[some], -np.inf, 0.0)
        n_all = nv + len(ys)
        integrality = np.ones(n_all)
        c_all = np.r_[obj, np.zeros(len(ys))]
        upper = np.ones(n_all)
        t0 = time.perf_counter()
        for _ in range(FAIR_RESOLVES):
            a = csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(lo), n_all)
            )
            left = seconds - (time.perf_counter() - t0)
            if left <= 0:
                stats["out_of_time"] += 1
                return None
            stats["solved"] += 1
            res = milp(
                c_all,
                constraints=LinearConstraint(a, np.asarray(lo), np.asarray(hi)),
                integrality=integrality,
                bounds=Bounds(np.zeros(n_all), upper),
                options={"node_limit": FAIR_BB_NODES, "time_limit": left},
            )
            if res.status == 2:  # infeasible: proved, no fair suppression at these levels
                stats["proved_none"] += 1
                return None
            if res.x is None or res.status != 0:
                out_of_time = time.perf_counter() - t0 >= seconds
                stats["out_of_time" if out_of_time else "too_slow"] += 1
                return None
            pick = np.flatnonzero(res.x[:nv] > 0.5)
            mask = np.zeros(self.m, np.int64)
            mask[vc[pick]] = vm[pick]
            # a withheld value one row could get back without any class falling below k
            size_t = base + np.bincount(vt[pick], weights=vw[pick], minlength=n_t)
            where = {(int(c), int(mk)): int(t) for c, mk, t in zip(vc, vm, vt, strict=True)}
            needless = []
            for j in pick:
                c, mk = int(vc[j]), int(vm[j])
                if not mk:
                    continue
                old = int(vt[j])
                leaves_ok = nothing[j] or size_t[old] - 1 >= k or size_t[old] - 1 == 0
                for i in range(nq):
                    if (mk >> i) & 1 and leaves_ok and size_t[where[(c, mk & ~(1 << i))]] + 1 >= k:
                        needless.append(j)
                        break
            if not needless:
                break
            stats["needless_cut"] += len(needless)
            for j in needless:
                upper[j] = 0.0  # cut the pattern off and solve again
        else:
            stats["too_slow"] += 1
            return None
        out = [c.copy() for c in codes]
        for i, c in enumerate(out):
            c[(mask >> i) & 1 == 1] = 0
        dense = _combine(list(zip(out, sizes_q, strict=True)), self.m)
        linked = np.logical_or.reduce([c != 0 for c in out]) if out else np.zeros(self.m, bool)
        csize = np.bincount(dense[linked], weights=w[linked], minlength=int(dense.max()) + 1)
        if (csize[dense[linked]] < k).any():
            return None  # (cannot happen: the constraints say so; never ship a class below k)
        if (self.rules.l is not None or self.rules.t is not None) and self.failing_lt(dense, csize, linked)[
            dense[linked]
        ].any():
            return None
        ev = self._finish(levels, out, dense, linked, ())
        if not ev.feasible or ev.warned:
            return None
        ev.exact = True
        stats["found"] += 1
        return ev

    def fair_search(self, ceiling: float = math.inf, max_nodes: int = FAIR_MAX_NODES) -> _Eval | None:
        """The least lossy transformation whose exact fair suppression (:meth:`fair_suppress`) exists,
        among lattice nodes whose generalization alone loses less than ``ceiling`` (a fair release
        already found), visited in order of that bound, at most ``max_nodes`` of them (a count, not a
        time, so that the same extract always gets the same release)."""
        nodes = list(itertools.product(*[q.levels for q in self.qis]))
        bound = {
            nd: sum(q.gen_loss[lv] for q, lv in zip(self.qis, nd, strict=True)) / self.denominator
            for nd in nodes
        }
        nodes.sort(key=lambda nd: (bound[nd], nd))
        best: _Eval | None = None
        for tried, nd in enumerate(nodes):
            if bound[nd] >= min(ceiling, best.loss if best else math.inf) - 1e-12:
                break
            if tried >= max_nodes or self.fair_stats["solved"] >= FAIR_MAX_PROGRAMS:
                self.fair_stats["unexplored"] = len(nodes) - tried
                break
            ev = self.fair_suppress(nd)
            if ev is not None and (best is None or ev.loss < best.loss):
                best = ev
        return best

    def _touched(self, codes: list[np.ndarray], levels: tuple[int, ...]) -> np.ndarray:
        out = np.zeros(self.m, bool)
        for q, lv, c, ci in zip(self.qis, levels, codes, self.cidx, strict=True):
            if lv != q.removed_level:
                out |= (ci >= 0) & (c == 0)
        return out

    def fairness_counts(self, blank: list[np.ndarray], touched: np.ndarray) -> tuple[int, int]:
        """Groups erased (every student's value withheld) and groups losing more than twice their
        column's share (for a sensitive element: of the students who lost any value)."""
        warned = erased = 0
        w = self.weight
        lost_by: list[tuple[np.ndarray, np.ndarray, int]] = []
        for sizes, q, b, ci in zip(self.group_sizes, self.qis, blank, self.cidx, strict=True):
            lost_by.append((sizes, np.bincount(ci[b], weights=w[b], minlength=len(sizes)), q.present))
        for sizes, (p_combo, p_val, p_rows) in zip(self.sens_sizes, self.sens_pairs, strict=True):
            hit = touched[p_combo]
            lost_by.append(
                (sizes, np.bincount(p_val[hit], weights=p_rows[hit], minlength=len(sizes)), self.n)
            )
        for sizes, lost, base in lost_by:
            hits = float(lost.sum())
            if not hits or not base:
                continue
            overall = hits / base
            shown = sizes >= self.k  # a group smaller than k cannot be shown on its own anyway
            share = np.divide(lost, sizes, out=np.zeros(len(sizes)), where=shown)
            warned += int(((share > UNFAIR_RATIO * overall + 1e-12) & shown).sum())
            erased += int(((lost == sizes) & shown).sum())
        return warned, erased

    def per_row(self, ev: _Eval) -> _Eval:
        """``ev`` with its arrays per row (for applying it and reporting on it)."""
        assert ev.suppressed is not None and ev.dense is not None and ev.linked is not None
        rc = self.row_combo
        blank = [b[rc] for b in ev.blank]
        return _Eval(
            ev.levels,
            ev.feasible,
            ev.suppressed[rc],
            ev.dense[rc],
            ev.linked[rc],
            blank,
            ev.loss,
            ev.score,
            ev.warned,
            ev.erased,
            ev.order,
            ev.exact,
        )

    # ---- the lattice

    def run(
        self, allowed: list[list[int]] | None = None, *, fair: bool = False
    ) -> tuple[_Eval | None, list[_Eval]]:
        """The best transformation (least score) and every feasible one evaluated; with ``fair``, the
        best of those where no group loses more than twice its column's share (None if there is none)."""
        allowed = allowed or [q.levels for q in self.qis]
        nodes = list(itertools.product(*allowed))
        bound = {
            nd: sum(q.gen_loss[lv] for q, lv in zip(self.qis, nd, strict=True)) / self.denominator
            for nd in nodes
        }
        nodes.sort(key=lambda nd: (bound[nd], nd))
        best: _Eval | None = None
        failed: list[tuple[int, ...]] = []
        feasible: list[_Eval] = []
        for i, nd in enumerate(nodes):
            if best is not None and bound[nd] >= best.score:
                self.pruned_bound += len(nodes) - i
                break
            if any(all(a <= b for a, b in zip(nd, f, strict=True)) for f in failed):
                self.pruned_monotone += 1
                continue
            ev = self.evaluate(nd)
            if not ev.feasible:
                failed.append(nd)
                continue
            feasible.append(ev)
            if fair and ev.warned:  # (not a failure: a finer transformation may spread the loss)
                continue
            if best is None or (ev.score, ev.loss) < (best.score, best.loss):
                best = ev
        return best, feasible


# --------------------------------------------------------------------------------- the entry point


def protect_microdata(
    table: pa.Table,
    qis: Sequence[str],
    k: int,
    rules: Disclosure | None = None,
    *,
    candidates: int = 3,
    code_labels: Mapping[str, Mapping[str, str]] | None = None,
    weights: np.ndarray | None = None,
) -> tuple[pa.Table, DisclosureResult]:
    """Find the transformation of ``table``'s quasi-identifiers ``qis`` with the least loss that reaches
    k (and l, t) within the suppression limit, apply it, and say what it cost (see the module doc).
    ``code_labels`` ({column: {code: label}}) lets the warnings name a group as "100 — American Indian
    or Alaska Native" rather than by its bare code. ``weights``: each row of ``table`` stands for that
    many rows (a table of the distinct combinations of the quasi-identifiers' and sensitive elements'
    values with their counts, from a pass over a file read in batches: deid._stream); the result is the
    one the rows themselves give, and the table returned has one row per row of ``table``.

    Raises CheckFailed (one sentence) when no transformation the hierarchies allow reaches the rules."""
    rules = rules or Disclosure()
    t0 = time.perf_counter()
    total = table.num_rows if weights is None else int(np.asarray(weights).sum())
    if 0 < total < k:
        raise CheckFailed(
            f"The extract has only {total} rows, fewer than k = {k}; no release of it can reach k."
        )
    search = _Search(table, qis, k, rules, weights)
    best, feasible = search.run()
    if best is None:
        raise CheckFailed(_unreachable(search, rules, k))
    counted = (
        search.evaluated,
        search.pruned_bound,
        search.pruned_monotone,
    )  # (the search, not the candidates)
    fair: _Eval | None = None
    unfair = best
    if best.warned and (rules.fairness == "require" or (candidates > 1 and not rules.choice)):
        fair = _fairest(search, rules)
        if rules.fairness == "require":
            if fair is None:
                raise CheckFailed(_unfair(search, best, code_labels or {}))
            best = fair
    alternatives = _alternatives(search, best, candidates - 1) if candidates > 1 and not rules.choice else []
    if candidates > 1 and not rules.choice:
        # Beside the choice, the clerk sees the fair one when the choice singles out a group (no group
        # losing more than twice its column's share), and the least lossy one when fairness made the
        # search prefer another: what fairness costs, either way, within what the agreement allows.
        first = [fair] if fair is not None and fair.levels != best.levels else []
        if unfair.levels != best.levels:
            first.append(unfair)  # (fairness required: what keeping more would cost, to compare)
        least = min(feasible, key=lambda ev: (ev.loss, ev.score))
        if least.levels != best.levels:
            first.append(least)
        shown = {best.levels}
        picked = []
        for ev in [*first, *alternatives]:
            if ev.levels not in shown:
                shown.add(ev.levels)
                picked.append(ev)
        alternatives = picked[: candidates - 1]
    search.evaluated, search.pruned_bound, search.pruned_monotone = counted
    seconds = time.perf_counter() - t0
    best = search.per_row(best)
    alternatives = [search.per_row(a) for a in alternatives]
    out = _apply(table, search, best)
    result = _result(search, best, alternatives, seconds, code_labels or {})
    result.removed_for_fairness = [
        q.name
        for q, lv, was in zip(search.qis, best.levels, unfair.levels, strict=True)
        if lv == q.removed_level and was != q.removed_level
    ]
    result.sentences = describe(result)
    return out, result


def _fairest(search: _Search, rules: Disclosure) -> _Eval | None:
    """The least lossy release where no group loses its value more than twice as often as its column:
    the lattice searched with the suppression orders (keeping only fair results), then — when fairness
    is required — with the exact fair suppression (:meth:`_Search.fair_suppress`) at every node that
    could lose less (a program per node: seconds on a cohort, too slow to run for a mere candidate)."""
    by_order, _ = search.run(fair=True)
    if rules.choice:  # (the clerk's pick: one node, the exact suppression there if the orders failed)
        return by_order or search.fair_suppress(tuple(q.levels[0] for q in search.qis))
    ceiling = by_order.loss if by_order is not None else math.inf
    exact = search.fair_search(ceiling) if rules.fairness == "require" else None
    found = [ev for ev in (by_order, exact) if ev is not None]
    return min(found, key=lambda ev: (ev.loss, ev.score)) if found else None


def _unfair(search: _Search, best: _Eval, code_labels: Mapping[str, Mapping[str, str]]) -> str:
    """One sentence: no release within the limit keeps every group within twice its column's share."""
    worst = ""
    per_row = search.per_row(best)
    w = search.row_weight  # (a row of a table of classes stands for its class's students)
    for q, b in zip(search.qis, per_row.blank, strict=True):
        has = q.idx >= 0
        if not b.any() or not w[has].sum():
            continue
        overall = w[b].sum() / w[has].sum()
        lost = np.bincount(q.idx[b], weights=w[b], minlength=len(q.values))
        share = np.divide(lost, q.counts, out=np.zeros(len(q.values)), where=q.counts >= search.k)
        g = int(np.argmax(share))
        if share[g] > UNFAIR_RATIO * overall:
            name = search.rules.labels.get(q.name, q.name)
            group = code_with_label(q.values[g], code_labels.get(q.name, {}))
            worst = (
                f" (the least lossy one withholds {name} from {share[g]:.0%} of the students with {group}, "
                f"against {overall:.1%} of the column)"
            )
            break
    stats = search.fair_stats
    cut_short = stats.get("unexplored") or stats["too_slow"] or stats["out_of_time"]
    out_of_time = " among the transformations it could try" if cut_short else ""
    return (
        f"No release within the agreement's rules keeps every group of students from losing its values "
        f"more than twice as often as its column{out_of_time}{worst}; set fairness to prefer, or allow more "
        "of the quasi-identifiers to be generalized or left out."
    )


def _unreachable(search: _Search, rules: Disclosure, k: int) -> str:
    what = f"k = {k}"
    if rules.l is not None:
        what += f" with l = {rules.l}"
    if rules.t is not None:
        what += f" and t = {rules.t}"
    fixed = [q.name for q in search.qis if q.removed_level is None]
    lower = (
        "lower k" + (", l" if rules.l is not None else "") + (" or relax t" if rules.t is not None else "")
    )
    change = (
        f"allow {', '.join(fixed)} to be left out or generalized further, raise the suppression limit, "
        f"or {lower}"
        if fixed
        else f"raise the suppression limit or {lower}"
    )
    if search.n < k:
        return f"The extract has only {search.n} rows, fewer than k = {k}; no release of it can reach k."
    return (
        f"No transformation the hierarchies allow reaches {what} while suppressing at most "
        f"{rules.suppression_limit:.0%} of the {search.n:,} rows; {change}."
    )


def _alternatives(search: _Search, best: _Eval, wanted: int) -> list[_Eval]:
    """The best transformation keeping each QI the chosen one leaves out (or loses most of)."""
    out: list[_Eval] = []
    lost = []
    for i, (q, lv) in enumerate(zip(search.qis, best.levels, strict=True)):
        if lv == q.removed_level or lv > 0:
            lost.append((lv == q.removed_level, lv, i))
    for _removed, _lv, i in sorted(lost, reverse=True):
        if len(out) >= wanted:
            break
        q = search.qis[i]
        keep = [lv for lv in q.levels if lv != q.removed_level and lv < best.levels[i]]
        if not keep:
            continue
        allowed = [list(x.levels) for x in search.qis]
        allowed[i] = keep
        alt, _ = search.run(allowed)
        if alt is not None and alt.levels != best.levels and all(alt.levels != o.levels for o in out):
            out.append(alt)
    return out


def _apply(table: pa.Table, search: _Search, ev: _Eval) -> pa.Table:
    cols, names = [], []
    by_name = {q.name: (q, lv, b) for q, lv, b in zip(search.qis, ev.levels, ev.blank, strict=True)}
    marks = []
    for name in table.column_names:
        if name in by_name:
            q, lv, b = by_name[name]
            if lv == q.removed_level:
                continue  # the quasi-identifier leaves the release (said in the report)
            labels = pa.array(q.labels[lv], pa.string())
            groups = q.gmaps[lv]
            idx = q.idx
            col = (
                pc.take(labels, pa.array(np.where(idx >= 0, groups[np.maximum(idx, 0)], 0), mask=idx < 0))
                if len(labels)
                else pa.nulls(len(idx), pa.string())
            )
            withheld = pa.array(b)
            col = pc.if_else(withheld, pa.scalar(None, pa.string()), col)
            cols.append(pa.chunked_array([col]))
            marks.append((name, b))
        else:
            cols.append(table.column(name))
        names.append(name)
    # Which quasi-identifier values of the row were withheld ("race;zip3"), so an empty cell withheld
    # is never mistaken for a value missing in the source (empty here): one label per pattern of
    # withheld values that occurs, taken per row.
    n = table.num_rows
    if marks and n:
        pattern = _combine([(m.astype(np.int64), 2) for _, m in marks], n)
        first = np.zeros(int(pattern.max()) + 1, np.int64)
        first[pattern] = np.arange(n)
        flags = [m[first] for _, m in marks]
        texts = [
            ";".join(name for (name, _), f in zip(marks, flags, strict=True) if f[i])
            for i in range(len(first))
        ]
        marker = pc.take(pa.array(texts, pa.string()), pa.array(pattern))
    else:
        marker = pa.array([""] * n, pa.string())
    cols.append(pa.chunked_array([marker]))
    names.append(SUPPRESSED_COLUMN)
    return pa.table(cols, names=names)


def risk_measures(
    sizes_per_row: np.ndarray, threshold: float, weights: np.ndarray | None = None
) -> dict[str, float]:
    """Prosecutor-model risks of records in classes of the given sizes (ARX's definitions); with
    ``weights``, each entry stands for that many records."""
    if weights is not None:
        w = np.asarray(weights, float)
        keep = w > 0
        sizes, w = sizes_per_row[keep], w[keep]
        n_w = float(w.sum())
        if not len(sizes):
            return risk_measures(sizes, threshold)
        r = 1.0 / sizes
        classes_w = float((r * w).sum())
        return {
            "highest": round(float(r.max()), 6),
            "average": round(classes_w / n_w, 6),
            "records_at_risk": round(float(w[r > threshold + 1e-12].sum()) / n_w, 6),
            "sample_uniques": round(float(w[sizes == 1].sum()) / n_w, 6),
            "marketer": round(classes_w / n_w, 6),
        }
    n = len(sizes_per_row)
    if not n:
        return {
            "highest": 0.0,
            "average": 0.0,
            "records_at_risk": 0.0,
            "sample_uniques": 0.0,
            "marketer": 0.0,
        }
    risk = 1.0 / sizes_per_row
    classes = float(risk.sum())  # each class contributes size × 1/size = 1
    return {
        "highest": round(float(risk.max()), 6),
        "average": round(classes / n, 6),
        "records_at_risk": round(float((risk > threshold + 1e-12).mean()), 6),
        "sample_uniques": round(float((sizes_per_row == 1).mean()), 6),
        "marketer": round(classes / n, 6),
    }


def _measured(search: _Search, ev: _Eval) -> tuple[int | None, dict[str, float], dict[str, float], int]:
    """k, l and t as measured on the released rows (what an independent checker finds on the output)."""
    assert ev.linked is not None and ev.dense is not None
    released = ev.linked  # rows that show some quasi-identifier value (the others link to nothing)
    rw = search.row_weight[released]
    dense = ev.dense[released]
    if not len(dense):
        return None, {}, {}, 0
    dense = _dense(dense)
    sizes = _wcount(dense, rw)
    l_out: dict[str, float] = {}
    t_out: dict[str, float] = {}
    for name, codes, m, _ in search.sensitive:
        c = codes[released]
        pair = dense * m + c
        up, inv = np.unique(pair, return_inverse=True)
        cnt = _wcount(inv.reshape(-1), rw, len(up))
        cls, val = up // m, up % m
        if search.rules.l_kind == "entropy":
            p = cnt / sizes[cls]
            h = -np.bincount(cls, weights=p * np.log(p), minlength=len(sizes))
            l_out[name] = round(float(np.exp(h.min())), 6)  # exp of the lowest class entropy
        else:
            l_out[name] = int(np.bincount(cls[cnt > 0], minlength=len(sizes)).min())
        overall = _wcount(c, rw, m) / max(1, int(rw.sum()))
        p = cnt / sizes[cls]
        diff = np.bincount(cls, weights=np.abs(p - overall[val]), minlength=len(sizes))
        present = np.bincount(cls, weights=overall[val], minlength=len(sizes))
        t_out[name] = round(float((0.5 * (diff + (1.0 - present))).max()), 6)
    return int(sizes.min()), l_out, t_out, len(sizes)


def _result(
    search: _Search,
    best: _Eval,
    alternatives: list[_Eval],
    seconds: float,
    code_labels: Mapping[str, Mapping[str, str]],
) -> DisclosureResult:
    assert best.suppressed is not None and best.dense is not None and best.linked is not None
    rules, n = search.rules, search.n
    threshold = rules.risk_threshold or 1.0 / search.k
    rw = search.row_weight
    before = search.classes_before()
    weighted = search.weighted  # (rows of one each: the plain per-row measures, as always)
    risk_before = risk_measures(
        _wcount(before, rw)[before].astype(float), threshold, rw if weighted else None
    )
    released = best.linked
    after = _dense(best.dense[released]) if released.any() else np.zeros(0, np.int64)
    rw_after = rw[released]
    risk_after = risk_measures(
        _wcount(after, rw_after)[after].astype(float) if len(after) else after.astype(float),
        threshold,
        rw_after if weighted else None,
    )
    k_got, l_got, t_got, n_classes = _measured(search, best)
    levels, removed, lost, generalized, values, loss_by = {}, [], {}, {}, {}, {}
    groups: list[GroupLoss] = []
    s_rows = best.suppressed
    overall_by: dict[str, float] = {}
    for q, lv, b in zip(search.qis, best.levels, best.blank, strict=True):
        levels[q.name] = q.level_name(lv)
        has = q.idx >= 0
        values[q.name] = int(rw[has].sum())
        at = np.maximum(q.idx, 0)
        if lv == q.removed_level:
            removed.append(q.name)
            lost[q.name] = values[q.name]
            generalized[q.name] = 0
            gen_mask = np.zeros_like(has)
        else:
            lost[q.name] = int(rw[b].sum())
            gen_mask = has & ~b & (_per_row(q.loss_per_value[lv], at) > 0)
            generalized[q.name] = int(rw[gen_mask].sum())
        overall_by[q.name] = int(rw[b].sum()) / values[q.name] if values[q.name] else 0.0
        row_loss = np.where(has, _per_row(q.loss_per_value[lv], at), 0.0)
        row_loss = np.where(b, _per_row(q.suppressed_loss, at), row_loss)
        loss_by[q.name] = round(float((row_loss * rw).sum()), 4)
        sup = _wcount(q.idx[b], rw[b], len(q.values))
        gen = _wcount(q.idx[gen_mask], rw[gen_mask], len(q.values))
        for i, v in enumerate(q.values):
            groups.append(GroupLoss(q.name, v, int(q.counts[i]), int(sup[i]), int(gen[i])))
    for name, codes, m, labels in search.sensitive:
        overall_by[name] = int(rw[s_rows].sum()) / n if n else 0.0
        size = _wcount(codes, rw, m)
        sup = _wcount(codes[s_rows], rw[s_rows], m)
        for i in range(m):
            if size[i]:
                groups.append(GroupLoss(name, labels[i], int(size[i]), int(sup[i]), 0))
    warnings = []
    for g in groups:
        overall = overall_by.get(g.attribute, 0.0)
        if overall and g.students >= search.k and g.share_suppressed > UNFAIR_RATIO * overall:
            column = rules.labels.get(g.attribute, g.attribute)
            group = code_with_label(g.group, code_labels.get(g.attribute, {}))
            warnings.append(
                f"{column} = {group}: {g.share_suppressed:.0%} of its {g.students:,} students lost "
                f"it, more than twice the column's {overall:.1%}"
            )
    chosen = _candidate(search, best)
    cands = [chosen, *(_candidate(search, a) for a in alternatives)]
    result = DisclosureResult(
        k=search.k,
        quasi_identifiers=[q.name for q in search.qis],
        sensitive=[s for s, *_ in search.sensitive],
        l_required=rules.l,
        l_kind=rules.l_kind,
        t_required=rules.t,
        suppression_limit=rules.suppression_limit,
        loss_measure=LOSS_MEASURE,
        levels=levels,
        removed=removed,
        loss=round(best.loss, 4),
        loss_by_column=loss_by,
        rows=n,
        rows_suppressed=int(rw[s_rows].sum()),
        linked_rows=int(rw[best.linked].sum()),
        cells_lost_by_column=lost,
        cells_generalized_by_column=generalized,
        values_by_column=values,
        k_achieved=k_got,
        l_achieved=l_got,
        t_achieved=t_got,
        classes=n_classes,
        risk_threshold=round(threshold, 6),
        risk_before=risk_before,
        risk_after=risk_after,
        groups=groups,
        warnings=warnings,
        candidates=cands,
        search={
            "transformations": int(np.prod([len(q.levels) for q in search.qis])) if search.qis else 1,
            "evaluated": search.evaluated,
            "pruned_by_bound": search.pruned_bound,
            "pruned_by_monotonicity": search.pruned_monotone,
            "seconds": round(seconds, 3),
            **({"exact_fair_suppression": dict(search.fair_stats)} if search.fair_stats["tried"] else {}),
        },
        sentences=[],
        fairness=rules.fairness,
    )
    result.names = {q.name: rules.labels.get(q.name, q.name) for q in search.qis}
    result.level_words = {q.name: _level_words(q, lv) for q, lv in zip(search.qis, best.levels, strict=True)}
    sizes_after = _wcount(after, rw_after) if len(after) else np.zeros(0, np.int64)
    result.class_sizes = _size_bands(sizes_after, search.k)
    result.sentences = describe(result)
    return result


def _per_row(per_value: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A per-value array read per row (zeros for a column with no value at all)."""
    return per_value[at] if len(per_value) else np.zeros(len(at))


def _candidate(search: _Search, ev: _Eval) -> Candidate:
    assert ev.suppressed is not None
    kept: dict[str, float] = {}
    removed = []
    levels = {}
    for q, lv in zip(search.qis, ev.levels, strict=True):
        levels[q.name] = q.level_name(lv)
        if lv == q.removed_level:
            removed.append(q.name)
            kept[q.name] = 0.0
        else:
            has = q.idx >= 0
            b = ev.blank[search.qis.index(q)]
            rw = search.row_weight
            kept[q.name] = round(float(rw[has & ~b].sum()) / max(1, int(rw[has].sum())), 4)
    cand = Candidate(
        levels,
        round(ev.loss, 4),
        round(ev.score, 4),
        int(search.row_weight[ev.suppressed].sum()),
        kept,
        removed,
        ev.warned,
        ev.erased,
    )
    cand.names = {q.name: search.rules.labels.get(q.name, q.name) for q in search.qis}
    cand.words = {q.name: _level_words(q, lv) for q, lv in zip(search.qis, ev.levels, strict=True)}
    cand.allowed = not (search.rules.fairness == "require" and ev.warned)
    cand.sentence = candidate_sentence(cand)
    return cand


def _level_words(q: _QI, level: int) -> str:
    if level == q.removed_level:
        return "left out"
    if level == 0:
        return "as it is"
    lv = q.hierarchy.levels[level - 1]
    return f"as {lv.label or lv.name.replace('_', ' ')}"


def _size_bands(sizes: np.ndarray, k: int) -> dict[str, int]:
    """How many classes have each size, in bands from k (counts of classes, never of a value)."""
    edges = [k, 2 * k, 5 * k, 10 * k, 50 * k]
    out: dict[str, int] = {}
    lo = 1
    for hi in edges:
        if hi > lo:
            out[f"{lo}-{hi - 1}"] = int(((sizes >= lo) & (sizes < hi)).sum())
        lo = hi
    out[f"{lo}+"] = int((sizes >= lo).sum())
    return out


def candidate_sentence(c: Candidate) -> str:
    """One plain sentence for a candidate transformation."""

    def name(q: str) -> str:
        return c.names.get(q, q)

    kept = [
        f"{name(q)} {c.words.get(q, 'as ' + lv)} for {c.kept_share[q]:.0%} of students"
        for q, lv in c.levels.items()
        if lv != REMOVED
    ]
    text = "Keeps " + (", ".join(kept) if kept else "none of the identifying details")
    if c.removed:
        text += f"; leaves out {', '.join(name(q) for q in c.removed)}"
    text += (
        f"; {c.rows_suppressed:,} student{'s' if c.rows_suppressed != 1 else ''} lose a value; "
        f"information lost {c.loss:.0%}"
    )
    if c.groups_warned:
        text += (
            f"; {c.groups_warned} group{'s' if c.groups_warned != 1 else ''} of students lose their value "
            "more than twice as often as their column overall"
        )
        if not c.allowed:
            text += ", which the agreement does not allow"
    text += "."

    return text


def describe(r: DisclosureResult) -> list[str]:
    """Plain sentences about a result, for the clerk and the compliance officer."""
    out = []

    def name(q: str) -> str:
        return r.names.get(q, q)

    for q in r.quasi_identifiers:
        if q in r.removed_for_fairness:
            out.append(
                f"{name(q)} would be removed for 100% of students: every release that keeps it makes some "
                "group of students lose a value more than twice as often as its column, and the agreement "
                "requires that none does."
            )
        elif q in r.removed:
            out.append(
                f"{name(q)} would be removed for 100% of students: keeping it would have needed more than "
                f"{r.suppression_limit:.0%} of them to lose a value, or lost more information."
            )
        elif r.levels[q] != ORIGINAL:
            out.append(
                f"{name(q)} is shared {r.level_words.get(q, r.levels[q])}; "
                f"{1 - r.lost_share(q):.0%} of students keep it."
            )
        else:
            out.append(f"{name(q)} is shared as it is for {1 - r.lost_share(q):.0%} of students.")
    out.append(
        f"{r.rows_suppressed:,} of {r.rows:,} students ({r.rows_suppressed / max(1, r.rows):.1%}) had a "
        f"value withheld (column {SUPPRESSED_COLUMN} names which); information lost: {r.loss:.1%}."
    )
    for alt in r.candidates[1:]:
        gained = [q for q in alt.levels if alt.levels[q] != REMOVED and q in r.removed]
        if gained:
            q = gained[0]
            out.append(
                f"Another choice keeps {name(q)} for {alt.kept_share[q]:.0%} of students: "
                f"{alt.sentence[0].lower()}{alt.sentence[1:]}"
            )
    if r.warnings:
        out.append(
            f"{len(r.warnings)} group(s) lost more than twice their column's share; see the fairness table."
        )
    return out
