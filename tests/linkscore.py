"""Scoring a linkage against the synthetic data's truth (tests and benchmarks only; moved out of
deid/_linkmatch.py, which holds what the app runs)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def evaluate(found: Iterable[tuple[int, int]], truth: Iterable[tuple[int, int]]) -> dict[str, float]:
    """Precision and recall of found pairs against true pairs."""
    f, t = set(found), set(truth)
    tp = len(f & t)
    return {
        "found": len(f),
        "true": len(t),
        "true_positives": tp,
        "precision": tp / len(f) if f else 1.0,
        "recall": tp / len(t) if t else 1.0,
    }


def truth_pairs(person_a: np.ndarray, person_b: np.ndarray) -> set[tuple[int, int]]:
    """(row_a, row_b) pairs of the same person, from two synthetic files' ``truth.person_id`` (every
    pair of their rows when a person has several in a file)."""
    where_a: dict[int, list[int]] = {}
    for i, p in enumerate(person_a.tolist()):
        where_a.setdefault(int(p), []).append(i)
    return {(i, j) for j, p in enumerate(person_b.tolist()) for i in where_a.get(int(p), ())}
