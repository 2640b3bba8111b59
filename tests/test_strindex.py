"""deid._strindex: positions looked up by sorted hashes equal pc.index_in's, collisions included; the
crosswalk gives the same codes batch by batch (indexed) as in one call."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid import _strindex
from deid._secrets import Crosswalk
from deid._strindex import StringIndex, hash64


def _words(rng: np.random.Generator, n: int) -> list[str]:
    alphabet = list("0123456789ABCDEFxyzé ")
    return ["".join(rng.choice(alphabet, size=rng.integers(0, 12))) for _ in range(n)]


def test_positions_equal_index_in() -> None:
    rng = np.random.default_rng(7)
    values = pc.unique(pa.array(_words(rng, 3000)))
    index = StringIndex(values.slice(0, 2000))
    index.extend(values.slice(2000))
    queries = pa.array(_words(rng, 5000) + values.to_pylist()[:50])
    expected = pc.index_in(queries, value_set=values).fill_null(-1).to_numpy(zero_copy_only=False)
    got = index.positions(queries)
    assert (got == expected).all()
    assert (got >= 0).sum() >= 50  # hits and misses both exercised


def test_a_hash_collision_is_settled_exactly(monkeypatch) -> None:
    # a hash that collides on purpose: every string of the same length hashes alike
    monkeypatch.setattr(_strindex, "hash64", lambda v: pc.utf8_length(_strindex._as_string(v))
                        .to_numpy(zero_copy_only=False).astype(np.uint64))
    values = pa.array(["AB", "CD", "EFG", "HIJ", ""])
    index = StringIndex(values)
    got = index.positions(pa.array(["CD", "HIJ", "XY", "", "AB", "ZZZZ"]))
    assert got.tolist() == [1, 3, -1, 4, 0, -1]


def test_hash_is_the_same_for_the_same_string_wherever_it_sits() -> None:
    a = pa.array(["x", "0012345678", "", None, "0012345678"])
    h = hash64(a)
    assert h[1] == h[4] and h[2] == h[3] and len(set(h.tolist())) == 3
    assert (hash64(a.slice(1, 1)) == h[1]).all()  # a slice's offset is honoured


def test_crosswalk_in_batches_gives_what_one_call_gives() -> None:
    rng = np.random.default_rng(3)
    ids = pa.array([f"{x:010d}" for x in rng.integers(0, 3000, size=6000)] + [None])
    whole = Crosswalk()
    codes_whole = whole.codes_for("s", ids)
    batched = Crosswalk()
    batched._maps["s"] = whole._maps["s"]  # the same known codes: each batch must find them
    parts = [batched.codes_for("s", ids.slice(i, 500)) for i in range(0, len(ids), 500)]
    assert pa.concat_arrays(parts).equals(codes_whole)
    # new IDs in small batches (the indexed path) get codes once, kept for the next batch
    fresh = Crosswalk()
    first = [fresh.codes_for("s", ids.slice(i, 300)) for i in range(0, len(ids), 300)]
    again = fresh.codes_for("s", ids)
    assert pa.concat_arrays(first).equals(again)
    assert fresh.new_codes == len(pc.unique(pc.drop_null(ids)))
    assert pc.count_distinct(fresh._maps["s"][1]).as_py() == fresh.new_codes


def test_hashing_in_pieces_gives_each_string_its_own_hash() -> None:
    # more than one piece of bytes (deid._strindex._CHUNK_BYTES), one string longer than a piece
    values = pa.array([f"student{i}@students.example.org" for i in range(60_000)] + ["x" * (2 << 20), "y"])
    h = hash64(values)
    for i in (0, 1, 29_999, 59_999, 60_000, 60_001):
        assert h[i] == hash64(values.slice(i, 1))[0]
    assert len(set(h.tolist())) == len(values)
