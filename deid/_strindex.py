"""Look-ups in a large, growing set of strings, prepared once.

``pc.is_in`` and ``pc.index_in`` hash their whole value set on every call. A streaming run looks up
each batch's IDs in everything seen so far (the crosswalk of record codes: a million IDs at a million
rows), so with those every batch costs O(all IDs) and the run O(batches x IDs) — measured 4.4 s of a
1,000,000-row run at 4 batches, growing with every extra batch. Here the set is kept as one 64-bit
hash per string, sorted; a look-up is a binary search (O(batch x log n)) and every hit is checked
against the string itself, so a hash collision can never give a wrong answer (it falls back to an
exact ``pc.index_in`` for the few values concerned).

:class:`HashSet` keeps *only* the hashes — 8 bytes a value, whatever its length — for membership where a
hash collision may only ever say "yes" too often, never "no": the roster a streaming run collects for
the text scanner and the residual scan (a million students' IDs, e-mail addresses and phones). Its
hashes are keyed with a random key drawn per set, so no two runs hash a value alike.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["HashSet", "PairedHashSet", "StringIndex", "StringSet", "hash64", "new_key"]

_MUL = np.uint64(0x100000001B3)  # FNV-1's 64-bit prime, as the polynomial's base
_LEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64's finalizer: every input bit moves every output bit
_MIX2 = np.uint64(0x94D049BB133111EB)
_NO_SALT = np.uint64(0)
_powers: dict[int, np.ndarray] = {}  # per base: base**i, for i up to the longest string seen so far


def _powers_to(n: int, base: np.uint64 = _MUL) -> np.ndarray:
    have = _powers.get(int(base))
    if have is None or len(have) < n:
        grown = np.empty(max(n, 64, 2 * (0 if have is None else len(have))), dtype=np.uint64)
        grown[0] = 1
        with np.errstate(over="ignore"):
            for i in range(1, len(grown)):  # a few dozen entries: the longest string seen so far
                grown[i] = grown[i - 1] * base
        if len(_powers) > 64:  # (a key per set: keep the cache from growing with the sets made)
            _powers.clear()
        _powers[int(base)] = have = grown
    return have


def _as_string(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if not pa.types.is_string(values.type):
        values = pc.cast(values, pa.string())
    if values.null_count:
        values = pc.fill_null(values, "")
    return values


_CHUNK_BYTES = 1 << 20  # bytes hashed at a time: the per-byte work arrays stay ~25 MB


def hash64(values: pa.Array | pa.ChunkedArray, key: int | None = None) -> np.ndarray:
    """One 64-bit hash per string (a null hashes as the empty string), computed on Arrow's buffers
    in a few numpy passes: a polynomial over the bytes, the length, and a final mix. The bytes are
    taken about a megabyte at a time, so hashing two million e-mail addresses holds no per-byte
    array of the whole set. With ``key`` (64 bits) the polynomial's base and the final mix come from
    the key: the same strings hash differently under every key."""
    if key is None:
        base, salt = _MUL, _NO_SALT
    else:
        base, salt = np.uint64((key & 0xFFFFFFFFFFFFFFFF) | 1), np.uint64((key >> 64) & 0xFFFFFFFFFFFFFFFF)
    arr = _as_string(values)
    n = len(arr)
    out = np.zeros(n, dtype=np.uint64)
    if n == 0:
        return out
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4).astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    start = 0
    while start < n:
        end = int(np.searchsorted(offsets, offsets[start] + _CHUNK_BYTES, side="right")) - 1
        end = min(n, max(start + 1, end))
        out[start:end] = _hash_rows(data, offsets[start : end + 1], base, salt)
        start = end
    return out


def _hash_rows(
    data: np.ndarray, offsets: np.ndarray, base: np.uint64 = _MUL, salt: np.uint64 = _NO_SALT
) -> np.ndarray:
    lo, hi = int(offsets[0]), int(offsets[-1])
    lengths = np.diff(offsets)
    h = np.zeros(len(lengths), dtype=np.uint64)
    if hi > lo:
        chunk = data[lo:hi].astype(np.uint64)
        starts = offsets[:-1] - lo
        pos = np.arange(hi - lo, dtype=np.int64) - np.repeat(starts, lengths)
        with np.errstate(over="ignore"):
            terms = (chunk + np.uint64(1)) * _powers_to(int(lengths.max()), base)[pos]
            nonempty = lengths > 0
            # (empty strings add no bytes, so each non-empty start's segment ends at the next one's)
            h[nonempty] = np.add.reduceat(terms, starts[nonempty])
    with np.errstate(over="ignore"):
        h ^= lengths.astype(np.uint64) * _LEN
        h ^= salt
        h ^= h >> np.uint64(30)
        h *= _MIX1
        h ^= h >> np.uint64(27)
        h *= _MIX2
        h ^= h >> np.uint64(31)
    return h


class StringIndex:
    """The positions of strings in ``values`` (distinct, no nulls), looked up by binary search over
    their sorted hashes; :meth:`extend` adds values not yet in it."""

    def __init__(self, values: pa.Array) -> None:
        self.values = _as_string(values)
        h = hash64(self.values)
        order = np.argsort(h, kind="stable")
        self._keys = h[order]
        # (an Arrow string array holds fewer than 2**31 strings: 32-bit positions, half the memory)
        self._pos = order.astype(np.int32)

    def __len__(self) -> int:
        return len(self.values)

    def positions(self, queries: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Per query (no nulls), its position in the values, or -1 when it is not there."""
        q = _as_string(queries)
        out = np.full(len(q), -1, dtype=np.int64)
        if len(q) == 0 or len(self._keys) == 0:
            return out
        h = hash64(q)
        at = np.minimum(np.searchsorted(self._keys, h), len(self._keys) - 1)
        hit = self._keys[at] == h
        cand = np.flatnonzero(hit)
        if len(cand):
            pos = self._pos[at[cand]]
            same = pc.equal(self.values.take(pa.array(pos)), q.take(pa.array(cand)))
            same_np = same.to_numpy(zero_copy_only=False).astype(bool)
            out[cand[same_np]] = pos[same_np]
            clash = cand[~same_np]  # the same hash as another value: settle these exactly
            if len(clash):
                exact = pc.index_in(q.take(pa.array(clash)), value_set=self.values)
                out[clash] = exact.fill_null(-1).to_numpy(zero_copy_only=False)
        return out

    def extend(self, new: pa.Array) -> None:
        """Add ``new`` (distinct, none of them in the index yet) after the present values."""
        new = _as_string(new)
        if len(new) == 0:
            return
        h = hash64(new)
        order = np.argsort(h, kind="stable")
        h = h[order]
        pos = (order + len(self.values)).astype(np.int32)
        where = np.searchsorted(self._keys, h)
        self._keys = np.insert(self._keys, where, h)
        self._pos = np.insert(self._pos, where, pos)
        self.values = pa.concat_arrays([self.values, new])


class StringSet(Protocol):
    """What the text scanner needs of a roster set: membership per value, and a size for reports."""

    def contains(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray: ...

    def __len__(self) -> int: ...


def new_key() -> int:
    """A random 128-bit key for :func:`hash64` (64 bits of base, 64 of salt), from the OS's CSPRNG."""
    return int.from_bytes(os.urandom(16), "little")


class HashSet:
    """A set of strings kept as their keyed 64-bit hashes only (sorted, distinct): 8 bytes a value.

    :meth:`contains` answers "in the set" for every value that was added — a value always hashes to
    the hash it was stored as, so nothing added is ever missed — and also for a value that is not in
    the set but shares a stored hash: with n values stored, a value not among them is taken for one
    with a probability of at most n / 2**64 (a million stored: about 5e-14 per look-up). The key is
    drawn at random for each set (:func:`new_key`), so which strings collide differs run to run and
    cannot be arranged in advance; the strings themselves are never kept.
    """

    def __init__(self, key: int | None = None) -> None:
        self.key = new_key() if key is None else key
        self._keys = np.zeros(0, dtype=np.uint64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0

    def add(self, values: pa.Array | pa.ChunkedArray) -> None:
        """Add the non-null strings of ``values``."""
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
        if values.null_count:
            values = pc.drop_null(values)
        if len(values) == 0:
            return
        h = np.unique(hash64(values, self.key))
        self._pending.append(h)
        self._pending_n += len(h)
        # merged once the pending hashes are as many as half the set: each hash is merged O(log) times
        if self._pending_n >= max(1 << 18, len(self._keys) // 2):
            self._merge()

    def add_hashes(self, hashes: np.ndarray) -> None:
        """Add hashes made with this set's key (another set's :meth:`hashes`)."""
        if len(hashes):
            self._pending.append(np.asarray(hashes, dtype=np.uint64))
            self._pending_n += len(hashes)
            self._merge()

    def _merge(self) -> None:
        if not self._pending:
            return
        new = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_n = [], 0
        new.sort()
        new = new[np.concatenate(([True], new[1:] != new[:-1]))] if len(new) else new
        if len(self._keys):
            new = new[~_sorted_isin(new, self._keys)]
            at = np.searchsorted(self._keys, new)
            self._keys = np.insert(self._keys, at, new)
        else:
            self._keys = new

    def hashes(self) -> np.ndarray:
        """The stored hashes, sorted (for :meth:`discard_hashes` and tests)."""
        self._merge()
        return self._keys

    def discard_hashes(self, hashes: np.ndarray) -> None:
        """Remove the given hashes (those another set with the same key also holds)."""
        self._merge()
        if len(self._keys) and len(hashes):
            self._keys = self._keys[~_sorted_isin(self._keys, np.sort(hashes))]

    def __len__(self) -> int:
        self._merge()
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        return int(self._keys.nbytes) + sum(p.nbytes for p in self._pending)

    def contains(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Per value: whether it is in the set (a null never is; see the class for false positives)."""
        self._merge()
        n = len(values)
        if n == 0 or len(self._keys) == 0:
            return np.zeros(n, dtype=bool)
        h = hash64(values, self.key)
        found = _sorted_isin(h, self._keys)
        if values.null_count:
            found &= np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False), dtype=bool)
        return found


def _sorted_isin(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Per value: whether it is in ``sorted_keys`` (ascending) — a binary search each."""
    if len(sorted_keys) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, values), len(sorted_keys) - 1)
    return sorted_keys[at] == values


class _Union:
    """Membership in any of a few hash sets (disjoint: the sizes add up)."""

    def __init__(self, *parts: HashSet) -> None:
        self.parts = parts

    def contains(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        out = np.zeros(len(values), dtype=bool)
        for p in self.parts:
            if len(p):
                out |= p.contains(values)
        return out

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)


class PairedHashSet:
    """Two hash sets of the same strings — as written (``raw``) and as a rule writes them
    (``normalized``: trimmed, lower-cased …; a value the rule leaves out normalizes to null) — that
    share what they have in common. Most values are written as the rule writes them ("0012345678"
    trimmed is itself), so they are stored once (A); a value written otherwise is kept as written (C)
    and its normalized form apart (B). ``raw`` is A ∪ C and ``normalized`` A ∪ B, each exactly the
    set the values and their forms make.
    """

    def __init__(self, normalize: Callable[[pa.Array], pa.Array], key: int | None = None) -> None:
        self._normalize = normalize
        key = new_key() if key is None else key
        self._same, self._formed, self._written = HashSet(key), HashSet(key), HashSet(key)
        self.raw = _Union(self._same, self._written)
        self.normalized = _Union(self._same, self._formed)

    def add(self, values: pa.Array) -> None:
        """Add the non-null strings of ``values`` (distinct or not)."""
        if values.null_count:
            values = pc.drop_null(values)
        if len(values) == 0:
            return
        formed = self._normalize(values)
        same = np.asarray(pc.fill_null(pc.equal(formed, values), False).to_numpy(zero_copy_only=False), bool)
        if same.all():
            self._same.add(values)
            return
        self._same.add(values.filter(pa.array(same)))
        other = pa.array(~same)
        self._written.add(values.filter(other))
        self._formed.add(formed.filter(other))  # (its nulls, values the rule leaves out, are not added)

    def finish(self) -> None:
        """Drop from the normalized forms those already stored as written (so the sizes add up)."""
        if len(self._formed):
            self._formed.discard_hashes(self._same.hashes())
