"""Text that is safe to print on a terminal or show in a window: PathShare's one rule for it.

Partners' files (cards, agreements, certificates, receipts, packages) and users' extracts can hold any
Unicode. Some characters act instead of showing: control characters (ESC starts terminal sequences that
move the cursor or erase lines; CR rewrites a line), bidirectional overrides and isolates (U+202E turns
"gpj.exe" around; Unicode TR9, and "Trojan Source", CVE-2021-42574), zero-width and other format
characters, line and paragraph separators, and surrogate, private-use and unassigned code points. Those
are the Unicode categories Cc, Cf, Cs, Co, Cn, Zl and Zp; spaces of every width (Zs) are ordinary text.
Such a character is shown as its escape (``\\x1b``, ``\\u202e``, ``\\n``): visible and inert. Line breaks
and tabs can be kept where a text may have several lines.
"""

from __future__ import annotations

import unicodedata

_ACTING = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _acts(ch: str) -> bool:
    return unicodedata.category(ch) in _ACTING


def unsafe_characters(text: str, keep: str = "") -> list[str]:
    """The distinct characters of ``text`` that act rather than show (``keep`` excepted), in order."""
    if text.isprintable():  # fast path: isprintable() is false for every acting character
        return []
    return list(dict.fromkeys(ch for ch in text if ch not in keep and _acts(ch)))


def display_text(text: str, keep: str = "") -> str:
    """``text`` with every character that acts rather than shows (``keep`` excepted) written as its
    escape."""
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii") if ch not in keep and _acts(ch) else ch for ch in text
    )
