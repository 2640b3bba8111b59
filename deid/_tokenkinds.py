"""What a link token is, in one place for both linkage engines (deid._linkmemory in memory,
deid._linkdb on DuckDB): a kind letter and 11 base64url characters (64 bits); bit i of a pair's
agreement mask is kind i; :func:`parse_tokens` reads a column of them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid.errors import InputError

TOKEN_COLUMN = "link_tokens"  # the column that holds them, unless named otherwise
TOKEN_CHARS = 12  # kind letter + 11 base64url characters (64 bits)
B64 = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", np.uint8)
KINDS = ("I", "A", "M", "W", "B", "C", "E", "G", "P", "Q", "K", "N", "S")
# Kinds that are no evidence of a match, only of a mismatch (deid._linkmatch.conflicts): N is a row's
# first name, birth date and sex when it carries an ID, S its surname, birth date and sex. Two rows
# that share N or S but no ID token both carry an ID, and not the same one: two students.
GUARD_KINDS = ("N", "S")
# The kinds that group a file's own rows into students (deid._linkmatch.person_groups).
GROUPING_KINDS = ("I", "A", "E", *GUARD_KINDS)
KIND_LETTERS = "".join(KINDS)
# a token's first byte -> its kind's index (255: not a kind letter)
KIND_INDEX = np.full(256, 255, np.uint8)
KIND_INDEX[np.frombuffer(KIND_LETTERS.encode(), np.uint8)] = np.arange(len(KINDS), dtype=np.uint8)


_DECODE = np.full(256, 255, np.uint8)
_DECODE[B64] = np.arange(64, dtype=np.uint8)


# Around and between a cell's tokens any run of ASCII whitespace (space, tab, line breaks) counts as one
# space — a hand-edited CSV, a cell pasted from a spreadsheet with a tab: one rule for both engines
# (an RE2 class, which pyarrow here and DuckDB in deid._linkdb both read).
WHITESPACE = r"[\t\n\v\f\r ]"


def parse_tokens(
    column: pa.Array | pa.ChunkedArray, where: str = "the file", first_row: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A link-tokens column → (row, kind index, 64-bit value) arrays, one entry per token.

    Works on the column's bytes in place (every token is 12 characters, one space between tokens); a
    column not in that form is read again with the whitespace around and between its tokens
    (:data:`WHITESPACE`) made single spaces first. Raises InputError naming ``where`` and the first
    bad row when a cell is not link tokens (its number counted from ``first_row``, when ``column`` is
    a batch of a file's rows)."""
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    col = col.cast(pa.large_string())
    got = _parse(col)
    if isinstance(got, int):
        spaced = pc.replace_substring_regex(col, pattern=WHITESPACE + "+", replacement=" ")
        got = _parse(pc.utf8_trim(spaced, characters=" "))
    if isinstance(got, int):
        raise InputError(f"{where}: row {got + 2 + first_row} does not hold link tokens.")
    return got


def _parse(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | int:
    """The tokens of a column whose cells are tokens with one space between them, or the first row
    (0-based) that is not."""
    step = TOKEN_CHARS + 1
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], np.int64)[arr.offset : arr.offset + n + 1]
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths[pc.is_null(arr).to_numpy(zero_copy_only=False)] = 0
    bad = np.flatnonzero((lengths > 0) & ((lengths + 1) % step != 0))
    if len(bad):
        return int(bad[0])
    data = arr.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    counts = (lengths + 1) // step
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint8), np.zeros(0, np.uint64)
    rows = np.repeat(np.arange(n, dtype=np.int64), counts)
    first = np.cumsum(counts) - counts
    starts = offsets[:-1][rows] + step * (np.arange(total, dtype=np.int64) - first[rows])
    del first
    # Every token's 12 bytes in one gather from a sliding-window view (no copy of the column).
    block = np.lib.stride_tricks.sliding_window_view(raw, TOKEN_CHARS)[starts]
    kinds = KIND_INDEX[block[:, 0]]
    sextets = np.ascontiguousarray(_DECODE[block[:, 1:]].T)  # one row per character
    del block
    wrong = (kinds == 255) | (sextets.max(axis=0) == 255)
    values = np.zeros(total, np.uint64)
    for j in range(TOKEN_CHARS - 1):
        values <<= np.uint64(6)
        values |= sextets[j]
    del sextets
    inner = np.ones(total, bool)
    inner[np.cumsum(counts)[counts > 0] - 1] = False  # a row's last token has no space after it
    wrong[inner] |= raw[starts[inner] + TOKEN_CHARS] != ord(" ")
    if wrong.any():
        return int(rows[np.argmax(wrong)])
    return rows, kinds, values
