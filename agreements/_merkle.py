"""RFC 6962 / RFC 9162 Merkle tree hashing with consistency proofs, over the audit log's entries.

The audit log is a hash chain (each entry names the previous one), which proves order but not that a
later head *extends* an earlier one without showing every entry in between — and those entries name
other partners' agreements and packages. A Merkle tree over the same entries does: a partner holding
our signed head of size m checks a head of size n against it with about log2(n) hashes (a consistency
proof) and learns nothing else. This is the tree C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint)
assumes: a checkpoint's hash is the tree's root.

Leaves are the entries' chain hashes (32 bytes each, in ``seq`` order), hashed as RFC 6962 leaves:
``SHA-256(0x00 || chain hash)``; inner nodes are ``SHA-256(0x01 || left || right)``; the empty tree's
root is ``SHA-256("")``. No library on PyPI does this under a licence PathShare can ship (pymerkle is
GPL), so it is written here from the RFCs and tested with Trillian's published vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
MAX_PROOF = 64  # a proof for a tree of n leaves has at most 2*log2(n) hashes; 64 covers 2**32 entries


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash of ``data``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 hash of an inner node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_below(n: int) -> int:
    """The largest power of two strictly less than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes], lo: int = 0, hi: int | None = None) -> bytes:
    """MTH of the leaf hashes ``leaves[lo:hi]``.

    Pairing level by level and carrying an odd last node up unchanged builds exactly RFC 6962's tree
    (which splits at the largest power of two below the size), without recursion."""
    hi = len(leaves) if hi is None else hi
    if hi <= lo:
        return EMPTY_ROOT
    level = list(leaves[lo:hi])
    sha = hashlib.sha256
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class Tree:
    """All complete subtrees of a list of leaf hashes, built once (n hashes), so the root and any number
    of consistency proofs cost O(log² n) each instead of O(n)."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self.size = len(leaves)
        self._levels: list[Sequence[bytes]] = [leaves]
        sha = hashlib.sha256
        level = leaves
        while len(level) > 1:
            level = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
            self._levels.append(level)

    def range_root(self, lo: int, hi: int) -> bytes:
        """MTH of ``leaves[lo:hi]`` for a range RFC 6962's recursion produces (``lo`` aligned to the
        largest power of two below ``hi - lo``, or the range a complete aligned subtree)."""
        size = hi - lo
        if size <= 0:
            return EMPTY_ROOT
        height = size.bit_length() - 1
        if size == 1 << height and lo % size == 0:
            return self._levels[height][lo >> height]
        k = _largest_power_below(size)
        return node_hash(self.range_root(lo, lo + k), self.range_root(lo + k, hi))

    def root(self) -> bytes:
        return self.range_root(0, self.size)

    def consistency_proof(self, m: int) -> list[bytes]:
        """RFC 6962 section 2.1.2 PROOF(m, D[n]) for this tree."""
        return consistency_proof(self, m)


def consistency_proof(leaves: Sequence[bytes] | Tree, m: int) -> list[bytes]:
    """RFC 6962 section 2.1.2 PROOF(m, D[n]) for the tree of all ``leaves`` (n = len(leaves))."""
    tree = leaves if isinstance(leaves, Tree) else None
    n = tree.size if tree is not None else len(leaves)  # type: ignore[arg-type]

    def mth(lo: int, hi: int) -> bytes:
        return tree.range_root(lo, hi) if tree is not None else root_of(leaves, lo, hi)  # type: ignore[arg-type]

    if not 0 <= m <= n:
        raise ValueError(f"cannot prove size {m} against a tree of {n} entries")
    if m == 0 or m == n:
        return []
    proof: list[bytes] = []

    def subproof(m: int, lo: int, hi: int, whole: bool) -> None:
        # Appends in the RFC's order: the deepest node first.
        size = hi - lo
        if m == size:
            if not whole:
                proof.append(mth(lo, hi))
            return
        k = _largest_power_below(size)
        if m <= k:
            subproof(m, lo, lo + k, whole)
            proof.append(mth(lo + k, hi))
        else:
            subproof(m - k, lo + k, hi, False)
            proof.append(mth(lo, lo + k))

    subproof(m, 0, n, True)
    return proof


def verify_consistency(m: int, n: int, root_m: bytes, root_n: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: does the tree of size ``n`` with root ``root_n`` extend the tree of size
    ``m`` with root ``root_m``? False for any malformed input."""
    if not (isinstance(m, int) and isinstance(n, int)) or m < 0 or n < m or len(proof) > MAX_PROOF:
        return False
    if any(not isinstance(p, bytes) or len(p) != 32 for p in proof):
        return False
    if m == n:
        return not proof and root_m == root_n
    if m == 0:
        return not proof  # every tree extends the empty one
    if not proof:
        return False
    path = list(proof)
    if m & (m - 1) == 0:  # a complete subtree: its root is the first node of the path
        path.insert(0, root_m)
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == root_m and sr == root_n and sn == 0


class Frontier:
    """The tree's right edge (one complete subtree per set bit of the size), grown a leaf at a time:
    gives the root at any size reached while streaming entries, in O(log n) memory."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []  # roots of complete subtrees, largest (leftmost) first

    def append(self, leaf: bytes) -> None:
        node = leaf
        size = self.size
        while size & 1:
            node = node_hash(self._stack.pop(), node)
            size >>= 1
        self._stack.append(node)
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1]
        for left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
