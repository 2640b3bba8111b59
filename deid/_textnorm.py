"""Free text as a reader sees it, so that the PII scan sees what the recipient will read.

Text written by people and systems this project does not control can show a name that its code points
do not spell: "Ma\u200bria" (a zero-width space), "Ｍａｒｉａ" (full-width letters), "Mаria" (a Cyrillic
"а"), or "\u202ezepoL airaM\u202c" (a right-to-left override that displays "Maria Lopez"). A scanner
matching code points misses all four; the reader sees the name. :func:`visible_text` rewrites such
cells into what they display, before redaction and before the residual scan:

1. NFKC normalization (full-width and other compatibility forms, ligatures, no-break spaces);
2. right-to-left override runs (U+202E … U+202C, or to the end of the cell) written in the order they
   are displayed;
3. format characters (Unicode category Cf: zero-width spaces and joiners, bidirectional controls, soft
   hyphens, byte-order marks) removed — they display nothing (an emoji sequence joined by U+200D
   shows as its separate emoji);
4. words mixing Latin letters with letters of a script that has Latin look-alikes (Cyrillic, Greek,
   Armenian, Cherokee, Coptic) transliterated to Latin letters (``anyascii``): a mixed word is a
   disguise, not a word of either language. Words wholly in one script are untouched, so Arabic,
   Hebrew, Cyrillic, Chinese … text stays as written.

Steps 2–4 run in Python only on the (rare) cells that need them; everything else is vectorized.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["visible_text"]

_LOOKALIKE_SCRIPTS = r"\p{Cyrillic}\p{Greek}\p{Armenian}\p{Cherokee}\p{Coptic}"
# RE2: a word holding a Latin letter and a look-alike letter, in either order
_MIXED_WORD_RE2 = (
    rf"\p{{Latin}}[\p{{L}}\p{{M}}]*[{_LOOKALIKE_SCRIPTS}]|[{_LOOKALIKE_SCRIPTS}][\p{{L}}\p{{M}}]*\p{{Latin}}"
)
_NEEDS_WORK_RE2 = rf"\p{{Cf}}|{_MIXED_WORD_RE2}"

_OVERRIDE_RUN = re.compile("\u202e([^\u202c]*)(?:\u202c|$)")
_WORD = re.compile(r"(?:[^\W\d_]|[\u0300-\u036f])+")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_LOOKALIKE = re.compile(r"[\u0370-\u03ff\u1f00-\u1fff\u0400-\u052f\u0530-\u058f\u13a0-\u13ff\u2c80-\u2cff]")


def _is_format(ch: str) -> bool:
    import unicodedata

    return unicodedata.category(ch) == "Cf"


def _fix_cell(text: str) -> str:
    from anyascii import anyascii

    text = _OVERRIDE_RUN.sub(lambda m: m.group(1)[::-1], text)
    text = "".join(ch for ch in text if not _is_format(ch))

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        return anyascii(w) if _LATIN.search(w) and _LOOKALIKE.search(w) else w

    return _WORD.sub(word, text)


def visible_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """``column`` (text) rewritten as it displays; see the module docstring. Nulls stay null."""
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = pc.cast(column, pa.string())
    out = []
    for chunk in column.chunks:
        chunk = pc.utf8_normalize(chunk, "NFKC")
        needs = pc.fill_null(pc.match_substring_regex(chunk, _NEEDS_WORK_RE2), False)
        if pc.any(needs).as_py():
            values = chunk.to_pylist()
            flags = needs.to_pylist()
            chunk = pa.array(
                [_fix_cell(v) if f and v is not None else v for v, f in zip(values, flags, strict=True)],
                chunk.type,
            )
        out.append(chunk)
    return pa.chunked_array(out, column.type)
