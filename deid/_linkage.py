"""Linking students across partners without sharing identities: keyed link tokens and the matcher.

**Tokens.** :func:`link_tokens` (and the ``link_tokens`` treatment, which calls it) turns a student's
identifiers into several keyed tokens, one per *kind* — a different combination of normalized fields —
so a record that differs from its partner's in one field still agrees on the kinds that leave it out:

====  =====================================================================  ==================
kind  fields (each normalized: case, accents, punctuation, spacing)          catches
====  =====================================================================  ==================
I     the state student ID                                                   (the ID itself)
A     first name × surname × birth date                                      clean records
W     first and middle name (either order) × surname × birth date            going by middle
M     first and middle initials (either order) × surname × birth date        (counts against)
B     first name × surname × birth date with day and month unordered         day/month swaps
C     surname × birth date × sex                                             first-name changes
E     first name × birth date × sex                                          surname changes
G     first name × surname × birth year                                      birth-date errors
P     first name × birth date × surname or any one-letter deletion of it     surname typos
Q     surname × birth date × first name or any one-letter deletion of it     first-name typos
K     (opt-in) the Cal-PASS derived key: first 3 letters of first and last   the baseline
      name, sex, birth date
====  =====================================================================  ==================

"First name" is the *canonical* name of its nickname group (deid/data/nicknames.csv, then the ODU
nickname table, deid/data/nicknames_odu.csv: Bob, Rob and Robert agree; Margie and Margaret); a name in
several groups (Alex) carries a token for each. "Surname" is the whole surname with its spaces and
hyphens removed, and each part of a compound surname on its own (García-López → GARCIALOPEZ, GARCIA,
LOPEZ), so a half or a re-joined surname still agrees. Two names one edit apart (a letter changed,
dropped, added, or two neighbours swapped) share a one-letter deletion, so P and Q agree across a typo
(the symmetric-deletion idea of SymSpell).

Keys: from the agreement's linkage secret (HKDF), a keyed BLAKE2b digest of each *distinct* field
value (few calls), then AES-256 over the block [kind, 40 bits of each field's digest] — one
vectorized call for all rows — truncated to 64 bits. Without the secret no token can be computed
from a guessed name or ID. A token is written as its kind letter and 11 base64url characters; a
row's tokens, separated by spaces, fill one text column (default ``link_tokens``).

**One shape for every cell.** How many tokens of a kind a row *could* carry depends on its data (P
and Q: about the length of a name; M and W: whether there is a middle name; B: a birth day of 12 or
less; I: whether there is an ID), and that count, with sex and birth year, singled out 38% of rows.
So every row carries exactly :data:`SLOTS` [kind] tokens of each kind its file's fields can give:
its real ones and dummies in the free slots (see :func:`_assemble`), in value order within each
kind. Without the secret a dummy cannot be told from a real token, and it matches nothing in another
provider's file (a keyed dummy only its own record's dummy in the same provider's next release).

**Matching.** :func:`link_tables` (and :func:`link` for files) joins the two token sets (a numpy
sort-merge join, no per-row Python), scores each candidate pair by which kinds agree (:data:`WEIGHTS`),
keeps pairs at or above :data:`THRESHOLD`, and assigns one-to-one by mutual best score (rows whose best
score is tied stay unlinked, rather than guessed). One-to-one is between *students*, not rows: a file's
rows of one student (several enrollments; :func:`person_groups`) are grouped first, and every row of a
linked student is paired with every row of the other's. Whether a row has an ID or a middle name is
hidden by the fixed shape, so there is no rule on a *disagreeing* ID or middle initial (it cannot be
told from an absent one); agreeing middle initials (M) add a little evidence instead. On the benchmark
this kept precision and raised recall (docs/linkage-threat-model.md). ``method="id"`` links on the ID
token alone; ``"calpass"`` links on the ID token, then on the Cal-PASS derived key (exact, unambiguous
keys only) — the baselines.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._column_rule import ColumnRule
from deid._linkdb import DEFAULT_MEMORY_MB, Pairs
from deid._tokenkinds import B64, KINDS, TOKEN_CHARS, parse_tokens
from deid._treatments import Column, Treatment, TreatmentContext, _keyed_digests, parse_dates
from deid.errors import InputError, OutputError, PolicyError

TOKEN_COLUMN = "link_tokens"
KEY_PURPOSE = "link_tokens"
DUMMY_PURPOSE = "link_tokens/dummy"
ROLES = ("first", "middle", "last", "birth_date", "sex")
# Evidence each agreeing kind adds (a hand-set Fellegi-Sunter-style weight: the rarer a chance
# agreement of that combination, the higher). A pair is linked at THRESHOLD or more: any kind with a
# full name and birth date, or two partial kinds (e.g. E + P: a surname typo), but never C alone
# (twins share surname, birth date and often sex).
WEIGHTS: dict[str, int] = {
    "I": 20, "A": 8, "M": 1, "W": 9, "B": 6, "C": 6, "E": 5, "G": 4, "P": 3, "Q": 3, "K": 0,
}  # fmt: skip
THRESHOLD = 7
# Tokens of each kind in every row's cell, whatever the row holds (the real ones, then dummies): a cell's
# shape must not say how long a name is, whether there is a middle name or an ID, or whether the birth
# day is 12 or less. Measured on synthetic K-12 and college extracts (20,000 rows each): A, B and G
# have more than 3 real tokens in under 0.04% of rows (a name in several nickname groups × a
# compound surname; the first 3, in priority order, are kept); P and Q (a name and each one-letter
# deletion of its first 12 letters) have at most 13.
SLOTS: dict[str, int] = {
    "I": 1, "A": 3, "M": 3, "W": 3, "B": 3, "C": 3, "E": 3, "G": 3, "P": 13, "Q": 13, "K": 1,
}  # fmt: skip
METHODS = ("combined", "em", "id", "calpass")
# Words of a surname that are particles, not surnames of their own (De La Cruz → CRUZ as its part).
_PARTICLES = ("DE", "DEL", "LA", "LAS", "LOS", "DA", "DAS", "DO", "DOS", "DI", "DU", "VAN", "VON", "DER",
              "DEN", "LE", "Y", "E", "SAN", "ST")  # fmt: skip
# Letters NFKD does not split into a base letter and a mark.
_SPECIAL = (("Đ", "D"), ("Ð", "D"), ("Ø", "O"), ("Ł", "L"), ("ß", "SS"), ("ẞ", "SS"), ("Æ", "AE"),
            ("Œ", "OE"), ("Þ", "TH"), ("İ", "I"), ("ı", "I"))  # fmt: skip
# Sex codes that give a sex token: the sex element's code set (its codes, labels and aliases) says what
# a value means; X (nonbinary, unknown, declined) and blanks give none (an unknown matching an unknown
# is no evidence). Any other value is refused, naming the column (see :func:`sex_codes`).
_SEX_TOKENS = ("F", "M")
MAX_SHARED = 50  # a token shared by more students than this on either side is not specific: not joined
MAX_ENROLLMENTS = 1000  # rows of one student in one file (terms × courses) that are still grouped


# ----------------------------------------------------------------------------------- normalization


def fold(column: Column) -> pa.ChunkedArray:
    """Upper-case, accents removed (NFKD, marks dropped), a few letters NFKD keeps spelled out;
    punctuation and spacing untouched (see :func:`letters`)."""
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    col = pc.utf8_normalize(col.cast(pa.string()), form="NFKD")
    col = pc.replace_substring_regex(col, pattern=r"\p{M}+", replacement="")
    col = pc.utf8_upper(col)
    for src, dst in _SPECIAL:
        col = pc.replace_substring(col, pattern=src, replacement=dst)
    return col


def _null_empty(col: Column) -> Column:
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def letters(column: Column) -> pa.ChunkedArray:
    """A name as its letters only (folded; spaces, hyphens, apostrophes and periods removed); empty
    → null. ``"  María-José O'Neil "`` → ``MARIAJOSEONEIL``."""
    return _null_empty(pc.replace_substring_regex(fold(column), pattern=r"[^\p{L}]+", replacement=""))


def surname_parts(column: Column) -> tuple[pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray]:
    """(whole surname, first part, last part), letters only; a part is null when the surname has one
    part (so it adds no token) or equals the whole. Particles (DE, LA, VAN, …) are not parts."""
    words = pc.replace_substring_regex(fold(column), pattern=r"[^\p{L}\s\-]+", replacement="")
    particles = "|".join(_PARTICLES)
    core = pc.replace_substring_regex(words, pattern=rf"(^|[\s\-])(({particles})([\s\-]+|$))+",
                                      replacement=" ")  # fmt: skip
    core = pc.utf8_trim(core, characters=" -")
    whole = letters(column)
    first = _null_empty(pc.replace_substring_regex(core, pattern=r"[\s\-].*$", replacement=""))
    last = _null_empty(pc.replace_substring_regex(core, pattern=r"^.*[\s\-]", replacement=""))
    first = pc.if_else(pc.equal(first, whole), pa.scalar(None, pa.string()), first)
    last = pc.if_else(pc.or_kleene(pc.equal(last, whole), pc.equal(last, first)),
                      pa.scalar(None, pa.string()), last)  # fmt: skip
    return whole, first, last


def _fold_text(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    out = "".join(ch for ch in decomposed if not unicodedata.category(ch).startswith("M")).upper()
    for src, dst in _SPECIAL:
        out = out.replace(src, dst)
    return "".join(ch for ch in out if ch.isalpha())


NICKNAME_SOURCES = ("nicknames.csv", "nicknames_odu.csv")


@lru_cache(maxsize=4)
def nickname_table(path: str | None = None) -> dict[str, tuple[str, ...]]:
    """Folded name → the canonical (formal, folded) names of every group it belongs to.

    Two sources, in priority order (a name in several groups keeps its first ones): our own
    ``deid/data/nicknames.csv`` (one group a line, formal name first: English and Spanish short forms),
    then ``deid/data/nicknames_odu.csv`` — Old Dominion University's hand-curated table of ~1,100
    English given names and their nicknames (github.com/carltonnorthern/nicknames, Apache-2.0, licence
    beside it; rows ``formal,has_nickname,nickname``), which adds e.g. Margie, Madge and Marge for
    Margaret. ``path`` reads one file of either form instead."""
    files = [Path(path)] if path else [Path(__file__).parent / "data" / name for name in NICKNAME_SOURCES]
    groups: dict[str, list[str]] = {}
    for p in files:
        with p.open(encoding="utf-8", newline="") as fh:
            rows = csv.reader(line for line in fh if line.strip() and not line.lstrip().startswith("#"))
            for row in rows:
                if len(row) == 3 and row[1].strip() == "has_nickname":
                    row = [row[0], row[2]]  # the ODU table's triplets
                names = [_fold_text(x) for x in row if x.strip()]
                if not names or row[0].strip().lower() in ("formal", "name1"):
                    continue
                formal = names[0]
                for name in names:
                    if formal not in groups.setdefault(name, []):
                        groups[name].append(formal)
    return {k: tuple(v) for k, v in groups.items()}


def first_name_keys(column: Column, slots: int = 3) -> list[pa.ChunkedArray]:
    """The canonical forms of each first name (letters only): ``slots`` columns, the first never null
    where the name is present (a name in no group is its own canonical form), the others null unless
    the name belongs to several groups."""
    name = letters(column)
    table = nickname_table()
    keys = pa.array(list(table), pa.string())
    idx = pc.index_in(name, value_set=keys)
    out: list[pa.ChunkedArray] = []
    for s in range(slots):
        canon = pa.array([v[s] if len(v) > s else None for v in table.values()], pa.string())
        got = pc.take(canon, idx)
        out.append(pc.coalesce(got, name) if s == 0 else got)
    return out


# ----------------------------------------------------------------------------------------- tokens


@dataclass
class LinkFields:
    """Which input columns hold which identifier (None: the file has no such column)."""

    id: str | None = None
    first: str | None = None
    middle: str | None = None
    last: str | None = None
    birth_date: str | None = None
    sex: str | None = None

    def columns(self) -> list[str]:
        """The named columns, without repeats."""
        return list(dict.fromkeys(c for c in asdict(self).values() if c))


def _prf(key: bytes) -> Callable[[bytes], bytes]:
    return lambda m: hashlib.blake2b(m, key=key, digest_size=8).digest()


class _Keys:
    """The two keys behind tokens, derived from the ``link_tokens`` key: one keys a PRF over each
    distinct field value (few calls: there are far fewer distinct names and dates than rows), the
    other AES, which turns each row's packed field digests into its token in one vectorized call."""

    def __init__(self, key: bytes) -> None:
        from deid._secrets import derive_key

        self.field = _prf(derive_key(key, "link_tokens/field"))
        self.block = derive_key(key, "link_tokens/block")


Field = tuple[np.ndarray, np.ndarray]  # (64-bit field digests, valid mask), one per row


def _field(column: Column, keys: _Keys) -> Field:
    """Keyed digest of each row's value (one PRF call per distinct value); nulls are not valid."""
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    digests, chunks = _keyed_digests(col, keys.field, 8)
    idx = chunks[0].indices if chunks else pa.array([], pa.int32())
    valid = pc.is_valid(idx).to_numpy(zero_copy_only=False)
    table = digests.view(">u8").ravel().astype(np.uint64) if len(digests) else np.zeros(1, np.uint64)
    return table[idx.fill_null(0).to_numpy(zero_copy_only=False)], valid


def _deletion_fields(column: Column, keys: _Keys, width: int = 12) -> list[Field]:
    """The name itself and each one-letter deletion of it (first ``width`` positions), as fields:
    two names one edit apart (a letter changed, dropped, added, or two swapped) share one of them.
    Computed per distinct name, then spread to rows."""
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    enc = pc.dictionary_encode(col.combine_chunks() if col.num_chunks != 1 else col.chunk(0))
    names = enc.dictionary.to_pylist()
    idx = enc.indices.fill_null(0).to_numpy(zero_copy_only=False)
    row_valid = pc.is_valid(enc.indices).to_numpy(zero_copy_only=False)
    d = len(names)
    out: list[Field] = []
    seen: list[list[str]] = [[] for _ in range(d)]
    for i in range(width + 1):
        vals = np.zeros(max(d, 1), np.uint64)
        ok = np.zeros(max(d, 1), bool)
        for j, s in enumerate(names):
            v = s if i == 0 else (s[: i - 1] + s[i:] if i <= len(s) else None)
            if v and v not in seen[j]:
                seen[j].append(v)
                vals[j] = int.from_bytes(keys.field(v.encode("utf-8")), "big")
                ok[j] = True
        if not ok.any():
            break
        out.append((vals[idx], ok[idx] & row_valid))
    return out


Tokens = tuple[np.ndarray, np.ndarray]  # (rows that have the token, their 64-bit token values)


def _aes_values(key: bytes, block: np.ndarray) -> np.ndarray:
    """AES-256 of each 16-byte row of ``block`` (one vectorized call), first 64 bits as integers."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    ct = np.frombuffer(enc.update(block.tobytes()) + enc.finalize(), np.uint8).reshape(-1, 16)
    return np.ascontiguousarray(ct[:, :8]).view(">u8").ravel().astype(np.uint64)


def _tokens(kind: str, fields: Sequence[Field], keys: _Keys) -> Tokens:
    """The kind's token for every row where every field is valid: AES-256 of the block
    [kind, 40 bits of each field digest], its first 64 bits (written as the kind and base64url)."""
    valid = np.logical_and.reduce([v for _, v in fields])
    rows = np.flatnonzero(valid)
    block = np.zeros((len(rows), 16), np.uint8)
    block[:, 0] = ord(kind)
    for i, (vals, _) in enumerate(fields):
        block[:, 1 + 5 * i : 6 + 5 * i] = vals[rows].astype(">u8").view(np.uint8).reshape(-1, 8)[:, 3:]
    return rows, _aes_values(keys.block, block)


def _encode(kind: str, vals: np.ndarray) -> np.ndarray:
    """64-bit values (any shape) → their tokens as bytes (same shape + 12): the kind letter and 11
    base64url characters."""
    out = np.empty((*vals.shape, TOKEN_CHARS), np.uint8)
    out[..., 0] = ord(kind)
    for j in range(11):
        out[..., 1 + j] = B64[((vals >> np.uint64(6 * (10 - j))) & np.uint64(63)).astype(np.intp)]
    return out


def _assemble(
    n: int, blocks: Sequence[tuple[str, Sequence[Tokens]]], dummy_key: bytes | None
) -> tuple[pa.Array, int]:
    """Every row's cell in one shape: for each ``(kind, parts)`` of ``blocks``, exactly
    :data:`SLOTS` [kind] tokens — the row's real ones (``parts`` in priority order, any beyond the
    slots left out) and dummies in the free slots — in value order within the kind. Returns the
    column and how many real tokens were left out. Written straight into one buffer.

    Dummies are 64 random bits from the OS's CSPRNG, or, with ``dummy_key`` (a key only this provider
    holds: its release secret under an agreement, its padding key file for `deid --policy`), AES
    under it of [0, kind, slot, the XOR of the row's real tokens]: as random as a real token to anyone
    without the key, never equal to another provider's tokens or dummies, and the same in every release
    of a record whose real tokens are the same — so a recipient who links two releases cannot tell
    real tokens from dummies by which ones recur. A row with no real token at all gets random dummies
    (its seed would be the same as every such row's). Value order puts real tokens and dummies in an
    order that says nothing (both look random)."""
    width = sum(SLOTS[kind] for kind, _ in blocks)
    step = TOKEN_CHARS + 1
    line = width * step - 1
    values: list[tuple[np.ndarray, np.ndarray]] = []  # per kind: (n, slots) values, real ones per row
    seed = np.zeros(n, np.uint64)
    real = np.zeros(n, np.int64)
    left_out = 0
    for kind, parts in blocks:
        cap = SLOTS[kind]
        vals = np.zeros((n, cap), np.uint64)
        filled = np.zeros(n, np.int64)
        for rows, tokens in parts:
            keep = filled[rows] < cap
            left_out += int(len(rows) - keep.sum())
            rows, tokens = rows[keep], tokens[keep]
            vals[rows, filled[rows]] = tokens
            seed[rows] ^= tokens
            filled[rows] += 1
        real += filled
        values.append((vals, filled))
    out = np.full(n * line, ord(" "), np.uint8)
    cells = np.lib.stride_tricks.as_strided(
        out, shape=(n, width, TOKEN_CHARS), strides=(line, step, 1), writeable=True
    )
    nothing = np.flatnonzero(real == 0)
    start = 0
    for i, (kind, _) in enumerate(blocks):
        cap = SLOTS[kind]
        vals, filled = values[i]
        values[i] = (np.zeros(0, np.uint64), np.zeros(0, np.int64))  # let go as we go
        r, j = np.nonzero(np.arange(cap) >= filled[:, None])
        if dummy_key is None:
            vals[r, j] = np.frombuffer(os.urandom(8 * len(r)), np.uint64)
        else:
            block = np.zeros((len(r), 16), np.uint8)
            block[:, 1] = ord(kind)
            block[:, 2] = j
            block[:, 8:] = seed[r].astype(">u8").view(np.uint8).reshape(-1, 8)
            vals[r, j] = _aes_values(dummy_key, block)
        if len(nothing):
            vals[nothing] = np.frombuffer(os.urandom(8 * cap * len(nothing)), np.uint64).reshape(-1, cap)
        vals.sort(axis=1)
        cells[:, start : start + cap] = _encode(kind, vals)
        start += cap
        del vals, filled
    offsets = np.arange(n + 1, dtype=np.int64) * line
    return (
        pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(out.tobytes()))
        .cast(pa.string()),
        left_out,
    )


def sex_codes(column: Column, name: str, sex_map: Mapping[str, str] | None = None) -> pa.ChunkedArray:
    """A sex column as "F", "M" or null, through the sex element's code set (codes, labels, aliases:
    "Female", "m", "girl" …) and ``sex_map`` (local codes such as MIS 1/2, which only the source
    system's documentation can say). X (nonbinary, unknown) and blanks are null: they give no sex
    token. A value neither knows is refused — InputError naming the column and the rows — never
    dropped silently (a file with no sex tokens links far worse and would say nothing)."""
    from deid._elements import element_library
    from deid._recodes import _lookup, _norm_value
    from deid._rownumbers import _first_rows, _rows_text

    el = element_library()["sex"]
    lookup = {_norm_value(k): v for k, v in _lookup(el).items()}
    lookup.update({_norm_value(str(k)): str(v).strip().upper() for k, v in (sex_map or {}).items()})
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    enc = pc.dictionary_encode(col.cast(pa.string()).combine_chunks())
    distinct = enc.dictionary.to_pylist()
    meaning = [lookup.get(_norm_value(v)) if v is not None and v.strip() else "" for v in distinct]
    unknown = pa.array([m is None for m in meaning], pa.bool_())
    bad = pc.take(unknown, enc.indices)
    count, rows = _first_rows(bad)
    if count:
        codes = ", ".join(c.code for c in el.code_set)
        raise InputError(
            f"Column '{name}' (sex, for the link tokens) has {count} value(s) that are not sex codes "
            f"({codes} or their names), in {_rows_text(rows, count)}: recode them, or say what the "
            "source system's codes mean with \"sex_codes\" in the link_tokens rule (for example "
            '{"1": "F", "2": "M"}). Without sex the link tokens would lose two of their kinds.'
        )
    tokens = pa.array([m if m in _SEX_TOKENS else None for m in meaning], pa.string())
    return pa.chunked_array([pc.take(tokens, enc.indices)])


def _join(*parts: Column) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(*parts, "|", null_handling="emit_null")


def _distinct(slots: Sequence[Column]) -> list[Column]:
    """Null out a slot equal to an earlier one, so a row never carries the same token twice."""
    out: list[Column] = []
    for s in slots:
        for prev in out:
            s = pc.if_else(pc.equal(s, prev).fill_null(False), pa.scalar(None, pa.string()), s)
        out.append(s)
    return out


def _pair(a: Column, b: Column) -> pa.ChunkedArray:
    """The two names in a fixed order (first + middle, whichever way round a student gives them)."""
    lo = pc.if_else(pc.less_equal(a, b), a, b)
    hi = pc.if_else(pc.less_equal(a, b), b, a)
    return _join(lo, hi)


def link_tokens(
    table: pa.Table,
    fields: LinkFields,
    key: bytes,
    *,
    baseline: bool = False,
    notes: list[str] | None = None,
    dummy_key: bytes | None = None,
    sex_map: Mapping[str, str] | None = None,
) -> pa.ChunkedArray:
    """The link-tokens column for ``table`` (see the module docstring) under ``key`` (32 bytes, from
    :func:`deid._secrets.derive_key` of the linkage secret with purpose ``"link_tokens"``).

    Every cell has the same shape (:data:`SLOTS`), dummies filling what a row lacks; ``dummy_key``
    (32 bytes no other provider holds) makes a record's dummies the same in each release, else they
    are fresh random (see :func:`_assemble`). ``baseline`` adds the Cal-PASS-style derived-key token
    (kind K), for measuring against it. A row with neither an ID nor the fields of any derived kind
    gets dummies only; ``notes`` (when given) receives counts, never values. ``sex_map`` says what a
    local sex code means ({"1": "F", "2": "M"}); values the sex element's code set does not know, and
    it does not say, are refused (:func:`sex_codes`).
    """
    keys = _Keys(key)
    n = table.num_rows

    def col(name: str | None) -> pa.ChunkedArray | None:
        return table.column(name) if name else None

    def f(column: Column) -> Field:
        return _field(column, keys)

    tokens: dict[str, list[Tokens]] = {}
    if fields.id:
        ids = pc.utf8_upper(pc.replace_substring_regex(table.column(fields.id).cast(pa.string()),
                                                       pattern=r"[\s\-]+", replacement=""))  # fmt: skip
        tokens["I"] = [_tokens("I", [f(_null_empty(ids))], keys)]
    first_raw = col(fields.first)
    last_raw = col(fields.last)
    birth = col(fields.birth_date)
    if first_raw is not None and last_raw is not None and birth is not None:
        dates, bad = parse_dates(birth)
        if bad and notes is not None:
            notes.append(f"{bad} birth date(s) of '{fields.birth_date}' could not be read: no derived tokens")
        ts = pc.cast(dates, pa.timestamp("s"))
        mo, dy = pc.month(dates), pc.day(dates)
        lo = pc.cast(pc.min_element_wise(mo, dy), pa.string())
        hi = pc.cast(pc.max_element_wise(mo, dy), pa.string())
        year = pc.cast(pc.year(dates), pa.string())
        swappable = pc.and_(pc.less_equal(dy, 12), pc.not_equal(mo, dy))
        if fields.sex:
            s = sex_codes(table.column(fields.sex), fields.sex, sex_map)
        else:
            s = pa.chunked_array([pa.nulls(n, pa.string())])
        d_text = pc.strftime(ts, format="%Y-%m-%d")
        D = f(d_text)
        DS = f(_join(d_text, s))
        DX = f(pc.if_else(swappable, _join(year, lo, hi), pa.scalar(None, pa.string())))
        Y = f(year)
        f_raw = letters(first_raw)
        f_slots = [f(x) for x in first_name_keys(first_raw)]
        whole, part1, part2 = surname_parts(last_raw)
        l_slots = [f(x) for x in (whole, part1, part2)]
        combos: list[tuple[str, list[Field]]] = [
            ("A", [fs, ls, D]) for fs, ls in itertools.product(f_slots, l_slots)
        ]
        if fields.middle:
            # Initials of first and middle, in either order: survives a middle name cut to its
            # initial and a student going by the middle name; a different middle initial counts against.
            middle = first_name_keys(col(fields.middle), slots=1)[0]
            first1 = first_name_keys(first_raw, slots=1)[0]
            initials = f(_pair(pc.utf8_slice_codeunits(first1, 0, 1), pc.utf8_slice_codeunits(middle, 0, 1)))
            combos += [("M", [initials, ls, D]) for ls in l_slots]
            # Kind W: both names in either order (a student going by the middle name).
            pair = f(_pair(first1, pc.if_else(pc.greater(pc.utf8_length(middle), 1), middle,
                                              pa.scalar(None, pa.string()))))  # fmt: skip
            combos += [("W", [pair, ls, D]) for ls in l_slots]
        combos += [("B", [fs, ls, DX]) for fs, ls in itertools.product(f_slots, l_slots)]
        combos += [("C", [ls, DS]) for ls in l_slots]
        combos += [("E", [fs, DS]) for fs in f_slots]
        combos += [("G", [fs, ls, Y]) for fs, ls in itertools.product(f_slots, l_slots)]
        # Typo tolerance: the other name exact, this one within one edit (shared deletion variant).
        combos += [("P", [f_slots[0], D, v]) for v in _deletion_fields(whole, keys)]
        combos += [("Q", [l_slots[0], D, v]) for v in _deletion_fields(f_raw, keys)]
        if baseline:
            f3 = pc.utf8_slice_codeunits(f_raw, 0, 3)
            l3 = pc.utf8_slice_codeunits(whole, 0, 3)
            combos.append(("K", [f(f3), f(l3), DS]))
        for kind, parts in combos:
            tokens.setdefault(kind, []).append(_tokens(kind, parts, keys))
    if not tokens:
        raise PolicyError("link_tokens needs the ID column, or first name, last name and birth date.")
    have = np.zeros(n, bool)
    for parts in tokens.values():
        for rows, _ in parts:
            have[rows] = True
    joined, left_out = _assemble(n, [(k, tokens[k]) for k in KINDS if k in tokens], dummy_key)
    if notes is not None:
        if not have.all():
            notes.append(
                f"{int((~have).sum())} row(s) had no ID and no complete name and birth date: "
                "their link tokens are all dummies and link to nothing"
            )
        if left_out:
            notes.append(f"{left_out} link token(s) beyond the fixed number per kind were left out")
        # What each kind holds (rows with a real token; the rest are dummies): a kind that is empty or
        # nearly so (no sex, no middle names) links worse, and the analyst's link report shows the kinds.
        real = []
        for kind in KINDS:
            if kind in tokens:
                rows = np.zeros(n, bool)
                for r, _ in tokens[kind]:
                    rows[r] = True
                real.append(f"{kind} {int(rows.sum()):,}")
        notes.append(f"link tokens by kind (rows with a real token, of {n:,}): {', '.join(real)}")
    return pa.chunked_array([joined])


class LinkTokens(Treatment):
    """Several keyed link tokens per student (ID and derived keys), in one text column.

    Rule: the source column is the state student ID (``"id": false`` when the file has none and the
    source is just where the rule hangs); ``from`` lists the other identifier columns and ``fields``
    names their roles, in the same order (default by count: first, last, birth_date; + sex; with
    middle as the second of five). ``baseline: true`` adds the Cal-PASS derived-key token.
    """

    name: ClassVar[str] = "link_tokens"  # its parameters: deid/_treatment_spec.py
    _DEFAULT_ROLES: ClassVar[dict[int, tuple[str, ...]]] = {
        2: ("first", "last"),  # not enough for derived tokens: caught in check_params
        3: ("first", "last", "birth_date"),
        4: ("first", "last", "birth_date", "sex"),
        5: ("first", "middle", "last", "birth_date", "sex"),
    }

    @classmethod
    def roles(cls, rule: ColumnRule) -> tuple[str, ...]:
        """The role of each ``from`` column."""
        given = rule.params.get("fields")
        if given is not None:
            return tuple(given)
        return cls._DEFAULT_ROLES.get(len(rule.params.get("from") or ()), ())

    @classmethod
    def check_params(cls, rule: ColumnRule, where: str) -> None:
        super().check_params(rule, where)
        src = rule.params["from"]
        if not (isinstance(src, list) and src and all(isinstance(s, str) and s for s in src)):
            raise PolicyError(f"{where}: 'from' of column '{rule.source}' must list input column names.")
        given = rule.params.get("fields")
        if given is not None and not (
            isinstance(given, list) and len(given) == len(src) and all(g in ROLES for g in given)
        ):
            raise PolicyError(
                f"{where}: 'fields' of column '{rule.source}' must name, for each 'from' column in "
                f"order, one of {', '.join(ROLES)}."
            )
        roles = cls.roles(rule)
        if len(set(roles)) != len(roles) or not {"first", "last", "birth_date"} <= set(roles):
            raise PolicyError(
                f"{where}: column '{rule.source}' (link_tokens) needs the first name, last name and "
                f"birth date columns in 'from' (with 'fields' naming their roles when not in that order)."
            )
        for key in ("id", "baseline"):
            if key in rule.params and not isinstance(rule.params[key], bool):
                raise PolicyError(f"{where}: '{key}' of column '{rule.source}' must be true or false.")
        from deid._idshape import check_repair_param

        check_repair_param(rule.params, rule.source, where)
        sex_map = rule.params.get("sex_codes")
        if sex_map is not None and not (
            isinstance(sex_map, dict)
            and sex_map
            and all(isinstance(v, str) and v.strip().upper() in ("F", "M", "X") for v in sex_map.values())
        ):
            raise PolicyError(
                f"{where}: 'sex_codes' of column '{rule.source}' must map each local code to F, M or X "
                '(for example {"1": "F", "2": "M"}).'
            )

    def apply(self, column: Column, ctx: TreatmentContext) -> Column:
        roles = dict(zip(self.roles(self.rule), self.params["from"], strict=True))
        use_id = bool(self.params.get("id", True))
        parts = {self.rule.source: self._checked_id(column)} if use_id else {}
        for c in roles.values():
            parts[c] = ctx.table.column(c)
        table = pa.table(list(parts.values()), names=list(parts))
        fields = LinkFields(id=self.rule.source if use_id else None, **roles)
        from deid._secrets import derive_key

        # Dummies stable across this provider's releases, keyed by a secret partners do not share
        # (under an agreement: the provider's own release secret); else fresh random ones.
        dummy_key = derive_key(ctx.dummy_secret, DUMMY_PURPOSE) if ctx.dummy_secret else None
        return link_tokens(
            table,
            fields,
            ctx.key(KEY_PURPOSE),
            baseline=bool(self.params.get("baseline")),
            notes=self.notes,
            dummy_key=dummy_key,
            sex_map=self.params.get("sex_codes"),
        )


# --------------------------------------------------------------------------------------- matching


@dataclass
class LinkReport:
    """What a link run found: counts and rates by method, never identities."""

    file_a: str
    file_b: str
    method: str
    rows_a: int
    rows_b: int
    linked: int
    linked_by: dict[str, int]
    rate_a: float
    rate_b: float
    candidate_pairs: int
    below_threshold: int
    left_ambiguous: int
    threshold: int
    weights: dict[str, int] = field(default_factory=lambda: dict(WEIGHTS))
    token_columns: tuple[str, str] = (TOKEN_COLUMN, TOKEN_COLUMN)
    output: str | None = None
    notes: list[str] = field(default_factory=list)
    # The token kinds each file carries (kind letters, see the module docstring): pairs can agree only
    # on kinds both files have, so a difference is warned about in ``notes``.
    kinds_a: str = ""
    kinds_b: str = ""
    # Students found in each file (rows of one student grouped; see person_groups): ``linked`` counts
    # pairs of rows, so a student with three enrollments linked to one row of the other file counts 3.
    students_a: int = 0
    students_b: int = 0
    # method "em": the fitted Fellegi–Sunter model (λ, threshold, per kind m, u and weight; deid._fsem)
    estimated: dict[str, Any] | None = None
    # where the token join ran: "duckdb" (out of core) or "memory" (deid._linkdb)
    engine: str = "memory"
    # methods combined and em: candidate pairs of students by score (rounded), for the analyst's chart of
    # the score distribution (deid._linkcharts) — counts only
    score_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data."""
        return asdict(self)

    def write(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the report as JSON, atomically (an existing file is replaced only with ``force``)."""
        from deid._atomic import write_bytes_atomic

        write_bytes_atomic(path, json.dumps(self.to_dict(), indent=2).encode("utf-8") + b"\n", force=force)


@dataclass
class Links:
    """The linked pairs: 0-based rows of A and B, the method that linked them (``id`` or ``derived``)
    and the score."""

    row_a: np.ndarray
    row_b: np.ndarray
    method: np.ndarray  # "id" | "derived"
    score: np.ndarray
    report: LinkReport

    def pairs(self) -> set[tuple[int, int]]:
        """The pairs as a set of (row_a, row_b)."""
        return set(zip(self.row_a.tolist(), self.row_b.tolist(), strict=True))


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
    max_shared: int = MAX_SHARED,
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


Side = tuple[np.ndarray, np.ndarray, np.ndarray]  # (row, kind index, 64-bit value), one per token


def person_groups(side: Any, n: int, engine: Any = None) -> np.ndarray:
    """For each of a file's ``n`` rows, the number of the student it belongs to: rows that share
    their state ID token, or a name-and-birth-date token (A) *and* a first-name, birth-date and sex
    token (E), are one student's several rows (one per term, course or enrollment). Twins share
    neither (different first names; opposite-sex twins whose names share a nickname group differ in
    E). Numbers are 0.. in order of each student's first row. ``side`` is one of ``engine``'s sides
    (deid._linkdb; default: parsed tokens in memory)."""
    if engine is None:
        engine = MemoryEngine()
    bit = {k: np.uint32(1 << KINDS.index(k)) for k in ("I", "A", "E")}
    ra, rb, mask = engine.self_pairs(side, {KINDS.index(k) for k in bit}, MAX_ENROLLMENTS)
    same = ((mask & bit["I"]) != 0) | (((mask & bit["A"]) != 0) & ((mask & bit["E"]) != 0))
    return _components(n, ra[same], rb[same])


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph on ``n`` nodes with edges (i, j): each node's component,
    numbered 0.. by first node (label propagation with pointer jumping; a few passes)."""
    label = np.arange(n, dtype=np.int64)
    while len(i):
        low = np.minimum(label[i], label[j])
        before = label.copy()
        np.minimum.at(label, i, low)
        np.minimum.at(label, j, low)
        while True:  # pointer jumping: every node to its root
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            break
    _, first, inverse = np.unique(label, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def _by_group(side: Side, groups: np.ndarray) -> Side:
    """The side's tokens with each row replaced by its student (group), each token once per student."""
    rows, kinds, values = side
    g = groups[rows]
    order = np.lexsort((g, values))
    g, kinds, values = g[order], kinds[order], values[order]
    keep = np.r_[True, (g[1:] != g[:-1]) | (values[1:] != values[:-1])] if len(g) else np.zeros(0, bool)
    return g[keep], kinds[keep], values[keep]


def _expand(ga: np.ndarray, gb: np.ndarray, groups_a: np.ndarray, groups_b: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Linked students (ga[k], gb[k]) → every (row of A, row of B) pair of theirs, and for each pair
    the index k of the students' link."""

    def members(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(groups, kind="stable")
        counts = np.bincount(groups, minlength=int(groups.max()) + 1 if len(groups) else 0)
        return order, np.cumsum(counts) - counts, counts

    (oa, sa, ca), (ob, sb, cb) = members(groups_a), members(groups_b)
    na, nb = ca[ga], cb[gb]
    per = na * nb
    k = np.repeat(np.arange(len(ga)), per)
    t = np.arange(int(per.sum()), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
    return oa[sa[ga[k]] + t // nb[k]], ob[sb[gb[k]] + t % nb[k]], k


def _score(mask: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    score = np.zeros(len(mask), np.int64)
    for i, k in enumerate(KINDS):
        if k in kinds:
            score += np.where(mask & np.uint32(1 << i), WEIGHTS[k], 0)
    return score


def _one_to_one(ra: np.ndarray, rb: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, int]:
    """Indices of the pairs kept by rounds of mutual best (unique best on both sides), and how many
    rows were left because their best was tied."""
    alive = np.ones(len(ra), bool)
    kept: list[np.ndarray] = []
    while alive.any():
        idx = np.flatnonzero(alive)
        best_a = _unique_best(ra[idx], score[idx])
        best_b = _unique_best(rb[idx], score[idx])
        mutual = idx[best_a & best_b]
        if len(mutual) == 0:
            break
        kept.append(mutual)
        done_a, done_b = np.unique(ra[mutual]), np.unique(rb[mutual])
        alive &= ~(np.isin(ra, done_a) | np.isin(rb, done_b))
    left = len(np.unique(ra[alive])) if alive.any() else 0
    return (np.concatenate(kept) if kept else np.zeros(0, np.int64)), left


def _unique_best(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask: the entry holds its group's highest score, and no other entry of the group ties it."""
    order = np.lexsort((-score, group))
    g, s = group[order], score[order]
    first = np.r_[True, g[1:] != g[:-1]]
    second_same = np.r_[g[1:] == g[:-1], False]
    second_ties = np.r_[s[1:] == s[:-1], False]
    best = first & ~(second_same & second_ties)
    out = np.zeros(len(group), bool)
    out[order[best]] = True
    return out


def link_tables(
    tokens_a: Column,
    tokens_b: Column,
    *,
    method: str = "combined",
    names: tuple[str, str] = ("file A", "file B"),
    threshold: int = THRESHOLD,
    engine: str = "memory",
    memory_mb: int | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
) -> Links:
    """Link two link-tokens columns (rows of A to rows of B, one-to-one); see the module docstring.

    ``engine``: "memory" (numpy) or "duckdb" (out of core within ``memory_mb``, spilling into a
    private folder made in ``spill_dir`` and removed afterwards; deid._linkdb) — the same links."""
    if method not in METHODS:
        raise InputError(f"Unknown linkage method {method!r}: use {', '.join(METHODS)}.")
    eng = make_engine(engine, memory_mb or DEFAULT_MEMORY_MB, spill_dir)
    try:
        a = eng.side(tokens_a, names[0], len(tokens_a))
        b = eng.side(tokens_b, names[1], len(tokens_b))
        return _link_sides(eng, a, b, len(tokens_a), len(tokens_b), method, names, threshold)
    finally:
        eng.close()


def _link_sides(
    eng: Any, a: Any, b: Any, n_a: int, n_b: int, method: str, names: tuple[str, str], threshold: int
) -> Links:
    """The matcher on either engine's sides (deid._linkdb): the engine joins the tokens; the scores,
    the EM fit and the one-to-one assignment run here on the candidate pairs."""
    id_kind = KINDS.index("I")
    report_notes: list[str] = []
    kinds_a, kinds_b = eng.kinds(a), eng.kinds(b)
    if kinds_a != kinds_b:
        only = [(names[0], kinds_a - kinds_b), (names[1], kinds_b - kinds_a)]
        what = "; ".join(f"only {name} has {', '.join(_KIND_NAMES[k] for k in sorted(ks, key=KINDS.index))}"
                         for name, ks in only if ks)  # fmt: skip
        report_notes.append(
            f"the two files carry different kinds of link tokens ({what}): pairs can agree only on the "
            "kinds both have, so fewer link (were both made with the same identifier columns?)"
        )
    students = (n_a, n_b)
    fitted: dict[str, Any] | None = None
    score_counts: dict[str, int] = {}
    if method in ("combined", "em"):
        # One row per student is not assumed: a file's rows of one student (several enrollments) are
        # grouped first, students are linked one-to-one, and every row of a linked student is paired.
        groups_a, groups_b = person_groups(a, n_a, eng), person_groups(b, n_b, eng)
        students = (int(groups_a.max()) + 1 if n_a else 0, int(groups_b.max()) + 1 if n_b else 0)
        use = [k for k in KINDS if k != "K"]
        ga, gb, mask = eng.candidates(a, b, {KINDS.index(k) for k in use}, MAX_SHARED, (groups_a, groups_b))
        if method == "em":
            # Weights from the data (deid._fsem): Fellegi–Sunter, EM on the agreement patterns of every
            # pair of students; a pair is kept at posterior match probability 1/2 or more.
            from deid._fsem import estimate, patterns_from_masks

            bits = {k: KINDS.index(k) for k in use if k in (kinds_a & kinds_b)}
            fit = estimate(*patterns_from_masks(mask, students[0] * students[1], bits))
            exact = fit.score(mask, bits)
            ok = exact >= fit.threshold
            score = np.round(exact).astype(np.int64)
            fitted = fit.to_dict()
            kept, left = _one_to_one(ga[ok], gb[ok], np.round(exact[ok] * 1000).astype(np.int64))
        else:
            score = _score(mask, use)
            ok = score >= threshold
            kept, left = _one_to_one(ga[ok], gb[ok], score[ok])
        sel = np.flatnonzero(ok)[kept]
        row_a, row_b, k = _expand(ga[sel], gb[sel], groups_a, groups_b)
        by_id = (mask[sel] & np.uint32(1 << id_kind)) != 0
        out = (row_a, row_b, np.where(by_id, "id", "derived")[k], score[sel][k])
        stats = (len(ga), int((~ok).sum()), left)
        values, counts = np.unique(score, return_counts=True)
        score_counts = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        for name, rows, count in ((names[0], n_a, students[0]), (names[1], n_b, students[1])):
            if count < rows:
                report_notes.append(
                    f"{name} has {rows:,} rows for {count:,} students (several rows of one student, such as "
                    "one per term, are linked together to the same student of the other file)"
                )
    else:
        ra, rb, mask = eng.candidates(a, b, {id_kind}, MAX_SHARED)
        kept, left = _one_to_one(ra, rb, np.ones(len(ra), np.int64))
        parts = [(ra[kept], rb[kept], np.full(len(kept), "id", object), np.full(len(kept), WEIGHTS["I"]))]
        n_cand, n_left = len(ra), left
        if method == "calpass":
            # Cal-PASS style: rows the ID did not link are joined on the derived key (exact and unique).
            free_a = np.ones(n_a, bool)
            free_a[ra[kept]] = False
            free_b = np.ones(n_b, bool)
            free_b[rb[kept]] = False
            ka = eng.only_rows(a, KINDS.index("K"), free_a)
            kb = eng.only_rows(b, KINDS.index("K"), free_b)
            if not eng.kinds(ka) and not eng.kinds(kb):
                report_notes.append(
                    "the files carry no Cal-PASS derived-key tokens (made with baseline: true)"
                )
            r2a, r2b, _ = eng.candidates(ka, kb, {KINDS.index("K")}, MAX_SHARED)
            k2, left2 = _one_to_one(r2a, r2b, np.ones(len(r2a), np.int64))
            parts.append((r2a[k2], r2b[k2], np.full(len(k2), "derived", object), np.zeros(len(k2), np.int64)))
            n_cand, n_left = n_cand + len(r2a), n_left + left2
        out = tuple(np.concatenate(x) for x in zip(*parts, strict=True))  # type: ignore[assignment]
        stats = (n_cand, 0, n_left)
    order = np.argsort(out[0], kind="stable")
    row_a, row_b, how, score_out = (np.asarray(x)[order] for x in out)
    linked = len(row_a)
    report = LinkReport(
        file_a=names[0],
        file_b=names[1],
        method=method,
        rows_a=n_a,
        rows_b=n_b,
        linked=linked,
        linked_by={"id": int((how == "id").sum()), "derived": int((how == "derived").sum())},
        rate_a=round(len(np.unique(row_a)) / n_a, 4) if n_a else 0.0,
        rate_b=round(len(np.unique(row_b)) / n_b, 4) if n_b else 0.0,
        candidate_pairs=int(stats[0]),
        below_threshold=int(stats[1]),
        left_ambiguous=int(stats[2]),
        threshold=threshold,
        notes=report_notes,
        kinds_a=" ".join(sorted(kinds_a, key=KINDS.index)),
        kinds_b=" ".join(sorted(kinds_b, key=KINDS.index)),
        students_a=students[0],
        students_b=students[1],
        estimated=fitted,
        engine=eng.name,
        score_counts=score_counts,
    )
    if fitted is not None:
        report.weights = {k: v["weight"] for k, v in fitted["kinds"].items()}  # type: ignore[index]
        report.threshold = fitted["threshold"]  # type: ignore[assignment]
    return Links(row_a.astype(np.int64), row_b.astype(np.int64), how.astype(str), score_out.astype(np.int64),
                 report)  # fmt: skip


_KIND_NAMES = {
    "I": "the state ID (I)", "A": "name and birth date (A)", "M": "middle initials (M)",
    "W": "middle name (W)", "B": "day/month swaps (B)", "C": "surname, birth date and sex (C)",
    "E": "first name, birth date and sex (E)", "G": "name and birth year (G)", "P": "surname typos (P)",
    "Q": "first-name typos (Q)", "K": "the Cal-PASS key (K)",
}  # fmt: skip


def _only_rows(side: tuple[np.ndarray, np.ndarray, np.ndarray], kind: int, free: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    rows, kinds, values = side
    sel = (kinds == kind) & free[rows]
    return rows[sel], kinds[sel], values[sel]


def find_token_column(table: pa.Table, where: str, column: str | None = None) -> str:
    """The link-tokens column of ``table``: ``column`` if given, else ``link_tokens``, else the one
    column whose first filled cell looks like link tokens. InputError when there is none."""
    if column is not None:
        if column not in table.column_names:
            raise InputError(f"{where} has no column '{column}'.")
        return column
    if TOKEN_COLUMN in table.column_names:
        return TOKEN_COLUMN
    found = []
    for name in table.column_names:
        sample = pc.drop_null(table.column(name).slice(0, 1000))
        looks = pc.match_substring_regex(sample, r"^([A-Z][A-Za-z0-9_\-]{11}( |$))+$")
        if len(sample) and pc.all(looks).as_py():
            found.append(name)
    if not found:
        raise InputError(
            f"{where} has no link-tokens column.",
            "De-identify it under an agreement that shares link tokens, or name the column that holds them.",
            action="name_token_column",
        )
    if len(found) > 1:
        raise InputError(
            f"{where} has several link-tokens columns ({', '.join(found)}).",
            "Name the one to link on.",
            action="name_token_column",
        )
    return found[0]


def link(
    file_a: str | os.PathLike[str],
    file_b: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    report: str | os.PathLike[str] | None = None,
    method: str = "combined",
    columns: tuple[str | None, str | None] = (None, None),
    force: bool = False,
    engine: str = "duckdb",
    memory_mb: int | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    chart: str | os.PathLike[str] | None = None,
) -> Links:
    """Link two de-identified files on their link tokens; write the joined rows to ``out`` (.csv or
    .parquet: ``a_row``, ``b_row`` (1-based data rows), ``link_method``, ``link_score``, then A's
    columns and B's, B's renamed ``<name>_b`` where A has the same name; token columns left out) and
    the report to ``report`` (JSON). Nothing is written when either file cannot be read; an existing
    output or report is replaced only with ``force``.

    The tokens are joined on DuckDB (``engine="duckdb"``, the default; ``"memory"``: numpy) within
    ``memory_mb`` (default 1 GB), spilling into a private folder made beside the output (or the
    report, or in the system's temporary folder; ``spill_dir`` to choose) and removed afterwards. A
    Parquet file's token column is read by DuckDB straight from the file, never whole into memory.
    ``chart`` (.png): the analyst's charts of the weights and of the score distribution
    (deid._linkcharts), written with the report."""
    from deid._atomic import check_output_path
    from deid._io import check_distinct_files, output_format, write_table
    if method not in METHODS:
        raise InputError(f"Unknown linkage method {method!r}: use {', '.join(METHODS)}.")
    if out is not None:
        output_format(out)
    check_distinct_files(
        [("file A", file_a), ("file B", file_b)],
        [("the linked file", out), ("the report", report), ("the chart", chart)],
    )
    if chart is not None and Path(chart).suffix.lower() != ".png":
        raise InputError(f"{chart}: the chart is written as a PNG image; name it with .png.")
    for target in (out, report, chart):
        if target is not None:
            check_output_path(target, force=force)
    if spill_dir is None:
        first = next((t for t in (out, report, chart) if t is not None), None)
        spill_dir = Path(first).parent if first is not None else None
    eng = make_engine(engine, memory_mb or DEFAULT_MEMORY_MB, spill_dir)
    try:
        inputs = [_link_input(eng, path, col, want_others=out is not None)
                  for path, col in ((file_a, columns[0]), (file_b, columns[1]))]  # fmt: skip
        sides = [eng.side(*x.tokens) if x.tokens is not None else x.side for x in inputs]
        links = _link_sides(eng, sides[0], sides[1], inputs[0].rows, inputs[1].rows, method,
                            (str(file_a), str(file_b)), THRESHOLD)  # fmt: skip
    finally:
        eng.close()
    ca, cb = inputs[0].column, inputs[1].column
    links.report.token_columns = (ca, cb)
    written: list[Path] = []

    def write_report() -> None:
        from deid._atomic import write_bytes_atomic
        from deid._linkcharts import link_chart_png

        if report is not None:
            try:
                links.report.write(report, force=force)
            except OSError as exc:
                raise OutputError(f"Cannot write {report}: {exc.strerror or 'the system refused'}.") from None
            written.append(Path(report))
        if chart is not None:
            try:
                write_bytes_atomic(chart, link_chart_png(links.report), force=force)
            except OSError as exc:
                raise OutputError(f"Cannot write {chart}: {exc.strerror or 'the system refused'}.") from None
            written.append(Path(chart))

    if out is None:
        write_report()
        return links
    joined = _joined_table(inputs[0].others, inputs[1].others, links)
    links.report.output = str(out)

    def before_commit(_tmp: Path) -> None:
        # The report is saved before the linked file appears: a failure leaves neither (all or nothing).
        write_report()

    try:
        write_table(joined, out, before_commit=before_commit, force=force)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return links


@dataclass
class _Input:
    """One file to link: its token column's name, its row count, its other columns (when the linked
    file is written), and either its tokens as a column or the engine's side read from the file."""

    column: str
    rows: int
    others: pa.Table
    tokens: tuple[Column, str, int] | None = None
    side: Any = None


def _link_input(eng: Any, path: str | os.PathLike[str], column: str | None, *, want_others: bool) -> _Input:
    """Read a file to link. On DuckDB a Parquet file's token column is left in the file (DuckDB reads
    it); other formats, and every file in memory, are read whole (deid._io.read_table)."""
    from deid._io import read_table

    if eng.name != "duckdb" or Path(path).suffix.lower() != ".parquet":
        table = read_table(path)
        name = find_token_column(table, str(path), column)
        n = table.num_rows
        return _Input(name, n, table.drop_columns([name]), tokens=(table.column(name), str(path), n))
    import pyarrow.parquet as pq

    from deid._io import ReadInfo, _as_text, _finish

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist.")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a data file.")
    try:
        pf = pq.ParquetFile(p)
        names = pf.schema_arrow.names
        rows = pf.metadata.num_rows
        if column is not None:
            if column not in names:
                raise InputError(f"{p} has no column '{column}'.")
            name = column
        elif TOKEN_COLUMN in names:
            name = TOKEN_COLUMN
        else:  # the one column whose first cells look like link tokens (as find_token_column does)
            first = next(pf.iter_batches(batch_size=1000), None)
            sample = pa.Table.from_batches([first]) if first is not None else pf.schema_arrow.empty_table()
            text = pa.table([_as_text(c) for c in sample.columns], names=sample.column_names)
            name = find_token_column(text, str(p))
        rest = [n for n in names if n != name]
        if want_others and rest:
            others = pq.read_table(p, columns=rest)
            others = _finish(p, pa.table([_as_text(c) for c in others.columns], names=others.column_names),
                             ReadInfo())  # fmt: skip
        else:
            others = pa.table({"": pa.nulls(rows, pa.string())}).drop_columns([""])
    except (pa.ArrowException, OSError):
        raise InputError(f"{p} is not a readable Parquet file.") from None
    if rows == 0:
        raise InputError(f"{p} has a header but no data rows.")
    return _Input(name, rows, others, side=eng.parquet_side(p, name, str(p)))


def _joined_table(ta: pa.Table, tb: pa.Table, links: Links) -> pa.Table:
    cols: dict[str, Any] = {
        "a_row": pa.array((links.row_a + 1).astype(str), pa.string()),
        "b_row": pa.array((links.row_b + 1).astype(str), pa.string()),
        "link_method": pa.array(links.method.tolist(), pa.string()),
        "link_score": pa.array(links.score.astype(str), pa.string()),
    }
    ia, ib = pa.array(links.row_a), pa.array(links.row_b)
    for name in ta.column_names:
        cols[name] = ta.column(name).take(ia)
    for name in tb.column_names:
        new = name if name not in cols else f"{name}_b"
        while new in cols:
            new += "_b"
        cols[new] = tb.column(name).take(ib)
    return pa.table(cols)


def fields_from_mapping(mapping: Mapping[str, str]) -> LinkFields:
    """LinkFields from {element: column} for the standard element names (state_student_id,
    first_name, middle_name, last_name, birth_date, sex)."""
    return LinkFields(
        id=mapping.get("state_student_id"),
        first=mapping.get("first_name"),
        middle=mapping.get("middle_name"),
        last=mapping.get("last_name"),
        birth_date=mapping.get("birth_date"),
        sex=mapping.get("sex"),
    )


# ----------------------------------------------------------------------------------- the engines


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


def make_engine(
    engine: str, memory_mb: int = DEFAULT_MEMORY_MB, spill_dir: str | os.PathLike[str] | None = None
) -> Any:
    """The engine named ``engine`` ("duckdb" or "memory")."""
    if engine == "memory":
        return MemoryEngine()
    if engine == "duckdb":
        from deid._linkdb import DuckEngine

        return DuckEngine(memory_mb, spill_dir)
    raise InputError(f"Unknown linkage engine {engine!r}: use duckdb or memory.")
