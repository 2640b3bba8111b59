"""Regression guard on public labelled corpora this project did not write (tests/corpora).

The full table (both parts of each corpus, and presidio in the same run) is printed by
tests/benchmarks/bench_pii_corpus.py; here the development parts are scored and each type's share of
surviving spans and its precision must stay at least as good as measured when the detectors landed.
"""

from __future__ import annotations

import pii_corpus
import pytest

# (corpus, part) → type → (most surviving, least precision) allowed
_FLOORS = {
    ("presidio", "dev"): {
        "PERSON": (0.085, 0.91),  # (measured 8.1 % at 0.922)
        "ADDRESS": (0.07, 0.93),  # (measured 6.0 % at 0.95)
        "PHONE": (0.01, 0.95),
        "EMAIL": (0.0, 1.0),
        "CREDIT_CARD": (0.0, 0.95),
        "IBAN": (0.0, 0.95),
        "SSN": (0.0, 0.95),
        "IP": (0.0, 0.95),
    },
    ("wnut17", "dev"): {"PERSON": (0.58, 0.75)},  # (measured 56.4 % at 0.757)
}


@pytest.mark.parametrize(("corpus", "part"), list(_FLOORS))
def test_detectors_hold_their_measured_recall_and_precision(corpus, part):
    result = pii_corpus.run(corpus, part, pii_corpus.pathshare_detections)
    for kind, (most_surviving, least_precision) in _FLOORS[(corpus, part)].items():
        r = result[kind]
        assert r["labelled"] > 0, kind
        assert r["surviving"] <= most_surviving, (kind, r)
        assert r["precision"] is not None and r["precision"] >= least_precision, (kind, r)
