"""Identifiers as the link tokens read them: case, accents, punctuation and spacing folded
(:func:`fold`, :func:`letters`), a compound surname and its parts (:func:`surname_parts`), a first name as
the canonical names of its nickname groups (:func:`nickname_table`, :func:`first_name_keys`), and sex
through the sex element's code set (:func:`sex_codes`). Vectorized (Arrow compute); no key and no token
here — deid._linktokens makes the tokens from what these return.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from deid._treatments import Column
from deid.errors import InputError

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


def null_empty(col: Column) -> Column:
    """Empty text → null (an empty name gives no token)."""
    return pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)


def letters(column: Column) -> pa.ChunkedArray:
    """A name as its letters only (folded; spaces, hyphens, apostrophes and periods removed); empty
    → null. ``"  María-José O'Neil "`` → ``MARIAJOSEONEIL``."""
    return null_empty(pc.replace_substring_regex(fold(column), pattern=r"[^\p{L}]+", replacement=""))


def surname_parts(column: Column) -> tuple[pa.ChunkedArray, pa.ChunkedArray, pa.ChunkedArray]:
    """(whole surname, first part, last part), letters only; a part is null when the surname has one
    part (so it adds no token) or equals the whole. Particles (DE, LA, VAN, …) are not parts."""
    words = pc.replace_substring_regex(fold(column), pattern=r"[^\p{L}\s\-]+", replacement="")
    particles = "|".join(_PARTICLES)
    core = pc.replace_substring_regex(words, pattern=rf"(^|[\s\-])(({particles})([\s\-]+|$))+",
                                      replacement=" ")  # fmt: skip
    core = pc.utf8_trim(core, characters=" -")
    whole = letters(column)
    first = null_empty(pc.replace_substring_regex(core, pattern=r"[\s\-].*$", replacement=""))
    last = null_empty(pc.replace_substring_regex(core, pattern=r"^.*[\s\-]", replacement=""))
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


def sex_codes(column: Column, name: str, sex_map: Mapping[str, str] | None = None) -> pa.ChunkedArray:
    """A sex column as "F", "M" or null, through the sex element's code set (codes, labels, aliases:
    "Female", "m", "girl" …) and ``sex_map`` (local codes such as MIS 1/2, which only the source
    system's documentation can say). X (nonbinary, unknown) and blanks are null: they give no sex
    token. A value neither knows is refused — InputError naming the column and the rows — never
    dropped silently (a file with no sex tokens links far worse and would say nothing)."""
    from deid._elements import element_library
    from deid._recodes import code_lookup, norm_value
    from deid._rownumbers import first_rows_where, rows_text

    el = element_library()["sex"]
    lookup = {norm_value(k): v for k, v in code_lookup(el).items()}
    lookup.update({norm_value(str(k)): str(v).strip().upper() for k, v in (sex_map or {}).items()})
    col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    enc = pc.dictionary_encode(col.cast(pa.string()).combine_chunks())
    distinct = enc.dictionary.to_pylist()
    meaning = [lookup.get(norm_value(v)) if v is not None and v.strip() else "" for v in distinct]
    unknown = pa.array([m is None for m in meaning], pa.bool_())
    bad = pc.take(unknown, enc.indices)
    count, rows = first_rows_where(bad)
    if count:
        codes = ", ".join(c.code for c in el.code_set)
        raise InputError(
            f"Column '{name}' (sex, for the link tokens) has {count} value(s) that are not sex codes "
            f"({codes} or their names), in {rows_text(rows, count)}: recode them, or say what the "
            "source system's codes mean with \"sex_codes\" in the link_tokens rule (for example "
            '{"1": "F", "2": "M"}). Without sex the link tokens would lose two of their kinds.'
        )
    tokens = pa.array([m if m in _SEX_TOKENS else None for m in meaning], pa.string())
    return pa.chunked_array([pc.take(tokens, enc.indices)])
