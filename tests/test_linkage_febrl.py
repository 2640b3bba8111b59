"""Linkage quality on data PathShare did not write: a small piece of FEBRL 4 (tests/febrl.py), each
file tokenized under one secret and linked. Floors a little under what the piece measures (the whole
dev and held-out parts: tests/benchmarks/bench_linkage_febrl.py, docs/linkage-threat-model.md)."""

from __future__ import annotations

import pytest
from febrl import CORPUS, NAMES_AND_BIRTH, WITH_ID, read
from linkscore import evaluate, truth_pairs

from deid._linkmatch import link_tables
from deid._linktokens import link_tokens
from deid._secrets import derive_key

KEY = derive_key(b"febrl test secret, 32 bytes.....", "link_tokens")


@pytest.mark.parametrize(
    ("fields", "precision", "recall"),
    [(WITH_ID, 0.99, 0.93), (NAMES_AND_BIRTH, 0.99, 0.43)],
    ids=["names-birth-and-ssn", "names-and-birth-only"],
)
def test_febrl_piece_links_above_a_floor(fields, precision: float, recall: float) -> None:
    a, na = read(CORPUS / "dataset4a_part.csv")
    b, nb = read(CORPUS / "dataset4b_part.csv")
    truth = truth_pairs(na, nb)
    assert len(truth) == 150 and a.num_rows == b.num_rows == 300
    links = link_tables(link_tokens(a, fields, KEY), link_tokens(b, fields, KEY))
    score = evaluate(links.pairs(), truth)
    assert score["precision"] >= precision and score["recall"] >= recall, score
