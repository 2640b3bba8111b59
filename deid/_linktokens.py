"""Keyed link tokens, from the fields as deid._linknorm normalizes them (the matcher that links on them:
deid._linkmatch).

:func:`link_tokens` (and the ``link_tokens`` treatment, which calls it) turns a student's
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
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._column_rule import ColumnRule
from deid._linknorm import first_name_keys, letters, null_empty, sex_codes, surname_parts
from deid._tokenkinds import B64, KINDS, TOKEN_CHARS
from deid._treatments import Column, Treatment, TreatmentContext, keyed_digests, parse_dates
from deid.errors import PolicyError

KEY_PURPOSE = "link_tokens"
DUMMY_PURPOSE = "link_tokens/dummy"
ROLES = ("first", "middle", "last", "birth_date", "sex")
# Tokens of each kind in every row's cell, whatever the row holds (the real ones, then dummies): a cell's
# shape must not say how long a name is, whether there is a middle name or an ID, or whether the birth
# day is 12 or less. Measured on synthetic K-12 and college extracts (20,000 rows each): A, B and G
# have more than 3 real tokens in under 0.04% of rows (a name in several nickname groups × a
# compound surname; the first 3, in priority order, are kept); P and Q (a name and each one-letter
# deletion of its first 12 letters) have at most 13.
SLOTS: dict[str, int] = {
    "I": 1, "A": 3, "M": 3, "W": 3, "B": 3, "C": 3, "E": 3, "G": 3, "P": 13, "Q": 13, "K": 1,
    "N": 1, "S": 1,
}  # fmt: skip


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
    digests, chunks = keyed_digests(col, keys.field, 8)
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


def _join(*parts: Column) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(*parts, "|", null_handling="emit_null")


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
        id_field = f(null_empty(ids))
        tokens["I"] = [_tokens("I", [id_field], keys)]
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
        # The guards N and S (no evidence of a match; deid._linkmatch.conflicts): first name (N) or
        # surname (S), birth date and sex, of a row with an ID. Two students who agree on those and
        # both carry an ID share N or S and not I, and the matcher keeps them apart (same name, birth
        # date and sex: most of the false links at a million students a side). The fixed shape stays:
        # a row without an ID carries dummies, so a row alone says nothing; what a recipient learns is,
        # for two rows that already agree on first name (or surname), birth date and sex — what E and C
        # show — whether both have an ID (docs/linkage-threat-model.md).
        if fields.id:
            combos.append(("N", [f_slots[0], (DS[0], DS[1] & id_field[1])]))
            combos.append(("S", [l_slots[0], (DS[0], DS[1] & id_field[1])]))
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
