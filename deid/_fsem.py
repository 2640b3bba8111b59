"""Match weights estimated from the data: Fellegi–Sunter with EM on the token agreement patterns.

Each pair of students (one of each file) has an agreement pattern: which token kinds they share. A
pair that shares no token is never a candidate, but it is a pair all the same, so the all-disagree
pattern's count is known exactly (every pair of students less the candidates) — which is what lets the
u-probabilities (chance agreement) be estimated without sampling random pairs. Under conditional
independence of the kinds, EM estimates the share of matches λ, and for each kind the probability
that a match agrees on it (m) and that a non-match does (u). A pattern's weight is the sum over kinds
of log2(m/u) when it agrees and log2((1-m)/(1-u)) when not; a pair is a match at posterior ≥ 1/2,
i.e. weight ≥ log2((1-λ)/λ).

Why not Splink: Splink compares *values* column by column (exact, fuzzy, term-frequency adjusted).
Here the analyst never has values, only keyed tokens, and a token kind already *is* a comparison
(equality of a combination of normalized fields, typo-tolerant kinds included). The model Splink would
fit on them is this one — binary comparisons, one level each — and it would need the pairs materialized
in DuckDB; the patterns here are a few hundred distinct bitmasks with counts, so EM on them takes
milliseconds and no new dependency (Splink 5 would add sqlglot to the app; it runs in the benchmark
instead, on the raw identifiers, as the baseline: tests/benchmarks/bench_linkage.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FSWeights:
    """The fitted model: λ (share of pairs that match), and per kind m, u and the agreement weight."""

    kinds: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]
    match_share: float
    iterations: int

    def agree_weight(self) -> dict[str, float]:
        """log2(m/u) per kind: the evidence agreeing on it adds."""
        return {k: float(np.log2(m / u)) for k, m, u in zip(self.kinds, self.m, self.u, strict=True)}

    def disagree_weight(self) -> dict[str, float]:
        """log2((1-m)/(1-u)) per kind: the evidence not agreeing on it adds (negative)."""
        return {
            k: float(np.log2((1 - m) / (1 - u))) for k, m, u in zip(self.kinds, self.m, self.u, strict=True)
        }

    @property
    def threshold(self) -> float:
        """The weight at which a pair's posterior probability of being a match is 1/2."""
        return float(np.log2((1 - self.match_share) / self.match_share))

    def score(self, mask: np.ndarray, bits: dict[str, int]) -> np.ndarray:
        """The weight of each pair from its agreement bitmask (``bits``: kind → bit index)."""
        out = np.zeros(len(mask), np.float64)
        agree, disagree = self.agree_weight(), self.disagree_weight()
        for k in self.kinds:
            on = (mask & np.uint32(1 << bits[k])) != 0
            out += np.where(on, agree[k], disagree[k])
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "match_share": self.match_share,
            "threshold": round(self.threshold, 3),
            "iterations": self.iterations,
            "kinds": {
                k: {"m": round(m, 6), "u": float(f"{u:.3g}"), "weight": round(float(np.log2(m / u)), 2)}
                for k, m, u in zip(self.kinds, self.m, self.u, strict=True)
            },
        }


def estimate(
    patterns: np.ndarray,
    counts: np.ndarray,
    kinds: tuple[str, ...],
    *,
    max_iterations: int = 1000,
    tolerance: float = 1e-8,
) -> FSWeights:
    """EM on agreement ``patterns`` ((n_patterns, n_kinds) booleans) seen ``counts`` times each.

    Start: m = 0.9, u = each kind's overall agreement rate, λ = the share of pairs agreeing on more
    than half the kinds (at most 1/2). Probabilities are kept inside [1e-9, 1 - 1e-9]."""
    a = np.asarray(patterns, np.float64)
    c = np.asarray(counts, np.float64)
    total = c.sum()
    eps = 1e-9
    u = np.clip((c[:, None] * a).sum(axis=0) / total, eps, 1 - eps)
    m = np.full(a.shape[1], 0.9)
    lam = float(np.clip(c[a.mean(axis=1) > 0.5].sum() / total, eps, 0.5))
    it = 0
    for it in range(1, max_iterations + 1):  # noqa: B007 (the count is reported)
        log_m = a @ np.log(m) + (1 - a) @ np.log(1 - m) + np.log(lam)
        log_u = a @ np.log(u) + (1 - a) @ np.log(1 - u) + np.log(1 - lam)
        g = 1.0 / (1.0 + np.exp(np.clip(log_u - log_m, -700, 700)))  # P(match | pattern)
        wm, wu = c * g, c * (1 - g)
        new_lam = float(np.clip(wm.sum() / total, eps, 1 - eps))
        new_m = np.clip((wm[:, None] * a).sum(axis=0) / max(wm.sum(), eps), eps, 1 - eps)
        new_u = np.clip((wu[:, None] * a).sum(axis=0) / max(wu.sum(), eps), eps, 1 - eps)
        delta = max(abs(new_lam - lam), float(np.abs(new_m - m).max()), float(np.abs(new_u - u).max()))
        lam, m, u = new_lam, new_m, new_u
        if delta < tolerance:
            break
    return FSWeights(tuple(kinds), tuple(map(float, m)), tuple(map(float, u)), lam, it)


def patterns_from_masks(
    masks: np.ndarray, n_pairs: int, bits: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Distinct agreement patterns of the candidate pairs' bitmasks, with counts, plus the all-disagree
    pattern of the ``n_pairs - len(masks)`` pairs that share no token."""
    kinds = tuple(bits)
    values, counts = np.unique(masks, return_counts=True)
    rest = max(int(n_pairs) - len(masks), 0)
    values = np.r_[values, np.uint32(0)].astype(np.uint32)
    counts = np.r_[counts, rest]
    patterns = np.stack([(values & np.uint32(1 << bits[k])) != 0 for k in kinds], axis=1)
    return patterns, counts, kinds
