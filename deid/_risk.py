"""k-anonymity over the quasi-identifier output columns, reached by local suppression.

An **equivalence class** is the set of rows sharing the same values in every quasi-identifier (QI).
Suppression empties QI cells: while some class is smaller than k, every row of a failing class loses
one more QI value — its QI with the most distinct values in the file first (where the most detail
is) — and the classes are recomputed. During this, an empty QI cell counts as a value of its own, so
partly suppressed rows also end in classes of at least k; only rows whose QIs are all empty may stay
in a smaller class (they say nothing through their QIs).

As the issue defines it, ``k_achieved`` is the smallest class size among rows with **no** empty QI
cell — exactly what ``pandas.DataFrame.groupby(qis).size().min()`` gives on the output (pandas drops
rows with empty keys). Rows with an empty QI cell (suppressed here, or empty in the input) are counted
separately in the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SAFE_RANGE = 1 << 62


@dataclass
class RiskResult:
    """What k-anonymity found and did (counts only, never values)."""

    k_required: int
    quasi_identifiers: list[str]
    k_achieved: int | None = None
    classes: int = 0
    records_at_risk_before: int = 0
    suppressed_cells: int = 0
    rows_with_suppression: int = 0
    rows_fully_suppressed: int = 0
    rows_with_empty_qi: int = 0
    suppressed_by_column: dict[str, int] = field(default_factory=dict)


def value_codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, int]:
    """Integer codes per row (0 = empty) and how many codes there are."""
    # One chunk first: unifying the dictionaries of many chunks is slow.
    flat = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    enc = pc.dictionary_encode(flat)
    n_dict = len(enc.dictionary)
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    codes = idx.astype(np.int64) + 1
    # Empty strings are suppressed-looking cells too: treat "" like null.
    return codes, n_dict + 1


def combine(codes: list[np.ndarray], sizes: list[int], n_rows: int) -> np.ndarray:
    """One integer class id per row from several code columns (re-densified to avoid overflow)."""
    key = np.zeros(n_rows, dtype=np.int64)
    span = 1
    for c, n in zip(codes, sizes, strict=True):
        if span * n >= _SAFE_RANGE:
            key = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False).astype(np.int64)
            span = int(key.max()) + 1 if n_rows else 1
        key = key * n + c
        span *= n
    return key


def class_sizes(table: pa.Table, qis: list[str]) -> np.ndarray:
    """The size of each row's equivalence class (an empty cell counting as a value of its own)."""
    n = table.num_rows
    if not qis:
        return np.full(n, n, dtype=np.int64)
    pairs = [value_codes(blank_as_null(table.column(q))) for q in qis]
    key = combine([c for c, _ in pairs], [s for _, s in pairs], n)
    dense = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False)
    return np.bincount(dense)[dense]


def k_achieved(table: pa.Table, qis: list[str]) -> int | None:
    """Smallest class size among rows with no empty QI cell (None if there are no such rows)."""
    if not qis:
        return table.num_rows or None
    complete = np.ones(table.num_rows, dtype=bool)
    for q in qis:
        complete &= pc.is_valid(blank_as_null(table.column(q))).to_numpy(zero_copy_only=False)
    if not complete.any():
        return None
    sizes = class_sizes(table.filter(pa.array(complete)), qis)
    return int(sizes.min())


def blank_as_null(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
    return col


def suppress_to_k(table: pa.Table, qis: list[str], k: int) -> tuple[pa.Table, RiskResult]:
    """Empty QI cells until every class with a non-empty QI has at least ``k`` rows (see module doc)."""
    result = RiskResult(k_required=k, quasi_identifiers=list(qis))
    n = table.num_rows
    if not qis or n == 0:
        result.k_achieved = n or None
        result.classes = 1 if n else 0
        return table, result
    pairs = [value_codes(blank_as_null(table.column(q))) for q in qis]
    codes = [c.copy() for c, _ in pairs]
    sizes = [s for _, s in pairs]
    # Most distinct values first: the QI that splits classes finest goes first.
    distinct = [int(pc.count_distinct(table.column(q)).as_py()) for q in qis]
    order = sorted(range(len(qis)), key=lambda i: -distinct[i])
    suppressed = [np.zeros(n, dtype=bool) for _ in qis]
    for iteration in range(len(qis) + 1):
        key = combine(codes, sizes, n)
        dense = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False)
        size = np.bincount(dense)[dense]
        all_empty = np.logical_and.reduce([c == 0 for c in codes])
        failing = (size < k) & ~all_empty
        if iteration == 0:
            result.records_at_risk_before = int(failing.sum())
        if not failing.any():
            break
        done = np.zeros(n, dtype=bool)
        for i in order:
            m = failing & ~done & (codes[i] != 0)
            codes[i][m] = 0
            suppressed[i] |= m
            done |= m
    columns = []
    for name in table.column_names:
        if name in qis:
            i = qis.index(name)
            mask = suppressed[i]
            result.suppressed_by_column[name] = int(mask.sum())
            col = table.column(name)
            if mask.any():
                col = pc.if_else(pa.array(mask), pa.scalar(None, col.type), col)
            columns.append(col)
        else:
            columns.append(table.column(name))
    out = pa.table(columns, names=table.column_names)
    any_supp = np.logical_or.reduce(suppressed)
    result.suppressed_cells = int(sum(int(s.sum()) for s in suppressed))
    result.rows_with_suppression = int(any_supp.sum())
    result.rows_fully_suppressed = int(np.logical_and.reduce([c == 0 for c in codes]).sum())
    complete = np.logical_and.reduce([c != 0 for c in codes])
    result.rows_with_empty_qi = int((~complete).sum())
    if complete.any():
        key = combine(codes, sizes, n)[complete]
        dense = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(dense)
        result.k_achieved = int(counts.min())
        result.classes = len(counts)
    return out, result
