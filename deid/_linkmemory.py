"""The in-memory linkage engine: every token of both files parsed into numpy arrays and joined by a
numpy sort-merge join (no per-row Python). deid._linkdb.DuckEngine is the out-of-core one; both answer
the same questions for the matcher (deid._linkmatch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deid._linkdb import Pairs
from deid._tokenkinds import KINDS, parse_tokens

Side = tuple[np.ndarray, np.ndarray, np.ndarray]  # (row, kind index, 64-bit value), one per token


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(distinct values sorted, where each starts in sorted order, how many, the sorting order)."""
    order = np.argsort(values)
    v = values[order]
    starts = np.flatnonzero(np.r_[True, v[1:] != v[:-1]]) if len(v) else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, len(v)])
    return v[starts], starts, counts, order


def _candidates(
    a: tuple[np.ndarray, np.ndarray, np.ndarray],
    b: tuple[np.ndarray, np.ndarray, np.ndarray],
    kinds: set[int],
    max_shared: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row_a, row_b, agreeing-kinds bitmask) for every pair of rows sharing a token of ``kinds``.

    A sort-merge join: each side's tokens sorted, distinct values matched by binary search, each
    shared value paired across sides; a value carried by more than MAX_SHARED rows of a side is not
    specific and is skipped."""
    sides = []
    for rows, kind, values in (a, b):
        if not set(np.unique(kind).tolist()) <= kinds:
            sel = np.isin(kind, list(kinds))
            rows, kind, values = rows[sel], kind[sel], values[sel]
        sides.append((rows, kind, *_runs(values)))
    (rows_a, kind_a, ua, sa, ca, oa), (rows_b, _, ub, sb, cb, ob) = sides
    if len(ua) == 0 or len(ub) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.uint32)
    pos = np.minimum(np.searchsorted(ub, ua), len(ub) - 1)
    keep = (ub[pos] == ua) & (ca <= max_shared) & (cb[pos] <= max_shared)
    start_a, n_a, start_b, n_b = sa[keep], ca[keep], sb[pos[keep]], cb[pos[keep]]
    per_run = n_a * n_b
    run = np.repeat(np.arange(len(start_a)), per_run)
    t = np.arange(int(per_run.sum()), dtype=np.int64) - np.repeat(np.cumsum(per_run) - per_run, per_run)
    ia = oa[start_a[run] + t // n_b[run]]
    ib = ob[start_b[run] + t % n_b[run]]
    ra, rb = rows_a[ia], rows_b[ib]
    bit = np.left_shift(np.uint32(1), kind_a[ia].astype(np.uint32))
    if len(ra) == 0:
        return ra, rb, bit
    pair = ra * np.int64(1 << 31) + rb
    order = np.argsort(pair)
    pair, bit = pair[order], bit[order]
    first = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    mask = np.bitwise_or.reduceat(bit, first)
    upair = pair[first]
    return upair >> np.int64(31), upair & np.int64((1 << 31) - 1), mask


def _by_group(side: Side, groups: np.ndarray) -> Side:
    """The side's tokens with each row replaced by its student (group), each token once per student."""
    rows, kinds, values = side
    g = groups[rows]
    order = np.lexsort((g, values))
    g, kinds, values = g[order], kinds[order], values[order]
    keep = np.r_[True, (g[1:] != g[:-1]) | (values[1:] != values[:-1])] if len(g) else np.zeros(0, bool)
    return g[keep], kinds[keep], values[keep]


def _only_rows(side: tuple[np.ndarray, np.ndarray, np.ndarray], kind: int, free: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    rows, kinds, values = side
    sel = (kinds == kind) & free[rows]
    return rows[sel], kinds[sel], values[sel]


class MemoryEngine:
    """The in-memory linkage engine (numpy; deid._linkdb.DuckEngine is the out-of-core one). Sides are
    (row, kind index, 64-bit value) numpy arrays (:func:`deid._tokenkinds.parse_tokens`)."""

    name = "memory"

    def side(self, column: Any, where: str, n: int) -> Any:
        del n
        return parse_tokens(column, where)

    def kinds(self, side: Any) -> set[str]:
        return {KINDS[int(k)] for k in np.unique(side[1])}

    def candidates(
        self,
        a: Any,
        b: Any,
        kinds: set[int],
        max_shared: int,
        groups: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Pairs:
        if groups is not None:
            a, b = _by_group(a, groups[0]), _by_group(b, groups[1])
        return _candidates(a, b, kinds, max_shared)

    def self_pairs(self, side: Any, kinds: set[int], max_shared: int) -> Pairs:
        """Pairs of different rows of one side sharing a token of ``kinds`` (row < other row)."""
        ra, rb, mask = _candidates(side, side, kinds, max_shared)
        keep = ra < rb
        return ra[keep], rb[keep], mask[keep]

    def only_rows(self, side: Any, kind: int, free: np.ndarray) -> Any:
        return _only_rows(side, kind, free)

    def close(self) -> None:
        pass
