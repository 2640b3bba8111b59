"""Free-text PII scanning and redaction, vectorized over whole columns.

How it works (and why it is fast): a note-by-note loop in Python — which is what presidio's
``AnalyzerEngine.analyze`` amounts to — costs milliseconds per note. Here a whole column goes through
pyarrow's RE2-based compute functions at once:

1. one combined RE2 alternation finds every *candidate* (e-mail, URL, date of birth, SSN, credit card,
   phone, MAC and IP address, IBAN, ID-like token, titled name, capitalized word) and wraps it in a
   tag character;
2. splitting on the tag gives, per cell, alternating plain and candidate pieces (a list array);
3. candidates are validated in bulk: names and IDs by hash look-up against the roster (the file's own
   students and guardians) and a bundled list of common names; the rest by anchored RE2 patterns that
   encode presidio's validation rules (SSN area/group/serial ranges, NANP phone shape, IP octets,
   e-mail top-level domains from tldextract's bundled suffix list, Luhn for card numbers, mod 97
   for IBANs);
4. accepted pieces are swapped for typed placeholders and each cell joined back together.

Presidio itself (:func:`presidio_analyzer`, built fully offline) is the reference these patterns were
checked against; it is used by the benchmark and the tests, not on the hot path.

Findings and redaction come from the same pass, so ``find`` reports exactly what ``redact`` replaces.
A :class:`Finding` holds a row number, a kind and character offsets — never the matched text.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import socket
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid import _names
from deid import _textpatterns as tp
from deid._arrowmem import system_allocator
from deid._strindex import HashSet, StringSet
from deid._wordlists import COMMON_FIRST_NAMES, COMMON_SURNAMES, NAME_LIKE_WORDS

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

__all__ = ["KINDS", "Finding", "TextScanner", "installed_ner_model", "presidio_analyzer"]

PERSON = "PERSON"
EMAIL_ADDRESS = "EMAIL_ADDRESS"
PHONE_NUMBER = "PHONE_NUMBER"
US_SSN = "US_SSN"
US_ITIN = "US_ITIN"
CREDIT_CARD = "CREDIT_CARD"
IP_ADDRESS = "IP_ADDRESS"
URL = "URL"
STUDENT_ID = "STUDENT_ID"
ID_NUMBER = "ID_NUMBER"
DATE_OF_BIRTH = "DATE_OF_BIRTH"
MAC_ADDRESS = "MAC_ADDRESS"
IBAN_CODE = "IBAN_CODE"
ADDRESS = "ADDRESS"
DRIVER_LICENSE = "DRIVER_LICENSE"
PASSPORT = "PASSPORT"
BANK_ACCOUNT = "BANK_ACCOUNT"

#: Every kind the scanner reports; the placeholder for kind K is ``<K>``.
KINDS: tuple[str, ...] = (
    PERSON, EMAIL_ADDRESS, PHONE_NUMBER, US_SSN, US_ITIN, CREDIT_CARD, IP_ADDRESS, URL,
    STUDENT_ID, ID_NUMBER, DATE_OF_BIRTH, MAC_ADDRESS, IBAN_CODE, ADDRESS, DRIVER_LICENSE, PASSPORT,
    BANK_ACCOUNT,
)  # fmt: skip
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
_PLACEHOLDERS = pa.array([f"<{k}>" for k in KINDS], pa.string())

# Rows and text bytes per batch: bound the memory of the intermediate tagged text and piece arrays.
_BATCH_ROWS = 262_144
_BATCH_BYTES = 64 * 1024 * 1024

# --- candidate patterns (RE2 syntax; no look-around, no back-references) -------------------------
_NAME_WORD = tp.NAME_WORD
# The tag characters (see _TAG_CHOICES) never belong to a candidate: patterns with a negated class
# leave them out, so no match runs into a block marked by an earlier pass.
_NOT_TAG = r"\x01-\x08\x{E000}-\x{F8FF}"
_URL = rf"(?:[Hh][Tt][Tt][Pp][Ss]?://|www\.)[^\s<>\"'{_NOT_TAG}]*[^\s<>\"'.,;:!?)\]{_NOT_TAG}]"
# Plain candidates searched in every cell, in one RE2 pass (priority order: at one position the first
# alternative that matches wins). They are kept cheap on purpose: RE2's DFA for this alternation stays
# small, so the pass costs about as much as reading the text. Formatted numbers have no leading \b,
# so "Maria916-555-0142" and "SSN123-45-6789" are caught (RE2's \b sees no boundary between a letter
# and a digit).
_PLAIN_CANDIDATES: list[tuple[str, str]] = [
    ("ssn", r"(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{3}\.\d{2}\.\d{4}|\d{3}-\d{6}|\d{5}-\d{4})\b"),
    ("card", r"(?:\d{4}[ \-]\d{4}[ \-]\d{4}[ \-]\d{1,7}|\d{4}[ \-]\d{6}[ \-]\d{5})\b"),
    ("phone", tp.NANP),
    ("intl_phone", tp.INTL_PHONE),
    ("mac", r"\b[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}\b"),
    ("ipv6", r"\b(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}\b|"
             r"\b(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,5})?\b"),
    # (more dotted groups are taken too, so that "03.93.92.16.85" is judged whole: a phone, not an
    # address and ".85")
    ("ip", r"\b(?:\d{1,3}\.){3}\d{1,3}(?:\.\d{1,3})*\b"),
    ("grouped_phone", tp.GROUPED_PHONE),
    ("iban", tp.IBAN),
    ("unit", tp.UNIT_ALONE),
    ("id", r"\b[A-Za-z]{0,4}\d[\dA-Za-z]{3,24}\b"),
    ("name", _NAME_WORD),
]  # fmt: skip
# The expensive detectors (Unicode e-mail, URLs, dates of birth, street lines, titles, "X's mom" and
# the context pairs), each with a *trigger*: a cheap pattern that every match of the detector holds.
# Together in one alternation they made RE2's DFA outgrow its memory budget (20x slower per note);
# apart, each runs only on the few cells that hold its trigger (selected in bulk), before the main
# pass, and marks what it found as a block the main pass takes whole. In priority order: a block
# marked by an earlier pass is skipped by the later ones.
#   (name, trigger, context or None, pattern): with a context, the pair (context)(value) is searched;
#   the context stays in the text and only the value becomes a candidate.
_PASSES: list[tuple[str, str, str | None, str]] = [
    ("url", r"://|(?i:www)\.", None, _URL),
    ("email", "@", None, tp.EMAIL),
    ("dob", tp.DOB_WORD, None, tp.DOB),
    # (a street line before the contexts: "my address is PSC 6293, Box 8158 APO AP 04336" is one line)
    ("street", tp.STREET_TRIGGER, None, tp.STREET),
    ("phone", tp.PHONE_WORD, tp.PHONE_CONTEXT, tp.PHONE_VALUE),
    ("id", tp.ID_WORDS, tp.ID_CONTEXT, tp.ID_VALUE),
    ("address", tp.ADDRESS_CONTEXT, tp.ADDRESS_CONTEXT, tp.ADDRESS_VALUE),
    ("title", tp.TITLE_HEAD, None, tp.TITLE),
    ("possessive_relation", tp.POSSESSIVE_TAIL, None, tp.POSSESSIVE_RELATION),
    ("name", tp.NAME_CONTEXT, tp.NAME_CONTEXT, tp.NAME_VALUE),
    ("lower_list", tp.LOWER_LIST_TRIGGER, None, tp.LOWER_LIST),
]
# Context pairs searched in two steps, without capture groups: the context is marked ``pair context
# sep`` wherever it stands (which is also where its trigger is), then the value right after the
# separator is marked ``sep value close``; a context with no value after it is an *orphan* whose marks
# _split_marked ignores. (RE2 finds a match's groups with its slow NFA on a large pattern: one pair
# pattern with groups cost three times these two searches.) Only for contexts that end where they end
# whatever follows (greedy, no lazy repetition): the name contexts.
_SPLIT_PASSES = ("name",)
_CANDIDATE = dict(_PLAIN_CANDIDATES) | {name: p for name, _, c, p in _PASSES if c is None}
# the kinds of context (each pair marks its value with a separator of its own, so the value's kind of
# context is known without looking for the context again)
_CONTEXTS = tuple(name for name, _, c, _ in _PASSES if c is not None)
# the contexts, anchored at the end of the text before a candidate
_CONTEXT_BEFORE = {name: f"(?:{c})$" for name, _, c, _ in _PASSES if c is not None}
# (the split passes' separators' codes in _split_marked)
_SPLIT_CODES = tuple(5 + _CONTEXTS.index(name) for name in _SPLIT_PASSES)
# Context pairs marked whole without capture groups, ``pair sep context value close``, whose value
# starts where _split_marked can tell from the text alone: the phone value starts at the first digit
# after the phone word (a phone context holds no digit), with a "(" and a "+" before it.
_DEFERRED_PASSES = ("phone",)
_DEFERRED_CODES = tuple(5 + _CONTEXTS.index(name) for name in _DEFERRED_PASSES)


def _esc(ch: str) -> str:
    return f"\\x{{{ord(ch):x}}}"


@dataclass(frozen=True)
class _Tags:
    """Characters that occur nowhere in a batch, used to mark and split it.

    Each expensive pass writes what it found as ``open match close``, or, for a context rule, ``pair
    context sep value close`` (one ``sep`` per kind of context); the main pass wraps every plain
    candidate in ``tag``. No pattern matches a tag character, so a later match is either outside every
    block or wholly inside one (then it is dropped: the earlier pass wins), and the pieces are cut at
    the outermost marks (see :func:`_split_marked`).
    """

    tag: str
    open: str
    pair: str
    close: str
    seps: tuple[str, ...]  # one per entry of _CONTEXTS


def _pass_pattern(
    context: str | None, pattern: str, tags: _Tags, sep: str, deferred: bool = False
) -> tuple[tuple[str, str], str]:
    """A marking pass: ((pattern for Latin cells, for the others), rewrite)."""
    if context is None:
        found, rewrite = pattern, rf"{tags.open}\0{tags.close}"
    elif deferred:  # (see _DEFERRED_PASSES)
        found, rewrite = f"(?:{context})(?:{pattern})", rf"{tags.pair}{sep}\0{tags.close}"
    else:
        found, rewrite = f"({context})({pattern})", rf"{tags.pair}\1{sep}\2{tags.close}"
    return (tp.latin(found), found), rewrite


def _main_pattern() -> tuple[str, str]:
    """The main pass (for Latin cells, for the others): the plain candidates. (No capture groups:
    extracting groups for every match would cost more than the search.)"""
    plain = "|".join(f"(?:{p})" for _, p in _PLAIN_CANDIDATES)
    return tp.latin(plain), plain


# (what of tp.STREET can match a name context's value — one to three words and a number, as
# tp.NAME_VALUE takes it: no US line, which starts with a house number, no city line, no tail — is
# compiled alone: the whole of tp.STREET costs ~0.05 s to compile, once per batch)
_STREET_OR_PLACE = (
    "^(?:" + tp.INTL_LINE + "|" + tp.PO_BOX + "|" + tp.ADDRESS_VALUE + r")[ \t\n,;:!?)\]\"'”’.]?$"
)


# Validation of the non-name candidates, tried in this order on each candidate's full text.
_SSN_VALID = (
    r"(?:00[1-9]|0[1-9]\d|[1-57-8]\d\d|6[0-57-9]\d|66[0-57-9])[\-. ]?(?:0[1-9]|[1-9]\d)[\-. ]?"
    r"(?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})"
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
# grouped national numbers: only shapes that are not a list of scores or years (a leading 0, a
# parenthesized area code, or three groups joined by dashes or dots), and not a date
# grouped national numbers: the candidate shape, judged by _grouped_phone_ok
_GROUPED_VALID = "^(?:" + tp.GROUPED_PHONE + ")$"
_GROUPS = re.compile(r"[ .\-]+")
_EXTENSION = re.compile(r"\s?(?:[xX]|[eE][xX][tT](?:ension)?\.?|#)\s?\d{1,6}$")
_YEAR = re.compile(r"(?:19|20)\d\d")
_DATE_FIRST = re.compile(r"(?:\d{4}[\-./]\d{1,2}[\-./]\d{1,2}|\d{1,2}[\-./]\d{1,2}[\-./]\d{2,4})(?:\s|$)")


def _grouped_phone_ok(text: str) -> bool:
    """A national number written in groups, and not a list of scores, years or a date.

    Taken: a parenthesized area code ("(96) 627-277"), a leading 0 ("020 7946 0958", "0961-7596216"),
    three or more groups joined by dashes or dots ("71-33-52-22", "03.93.92.16.85"), a 7-digit local
    number written with a space ("668 5702"), an area code and a number of six digits or more ("99
    668472"),
    and three or four groups separated by single spaces of 7 to 12 digits with a group of three digits or more
    ("374 780 163", "21 253 109 8211"), unless every group is a year ("2019 2020 2021") or a number up
    to 100 ("85 90 95 100").
    """
    core = _EXTENSION.sub("", text)
    if core.startswith("("):
        return True
    groups = _GROUPS.split(core)
    digits = sum(len(g) for g in groups)
    if not 7 <= digits <= 15 or re.fullmatch(
        r"\d{1,2}[ .\-]\d{1,2}[ .\-]\d{2,4}|\d{4}[ .\-]\d{1,2}[ .\-]\d{1,2}", core
    ):
        return False
    if core.startswith("0"):
        return True
    if _DATE_FIRST.match(core):  # a date and a time ("2000-04-16 11:34")
        return False
    seps = set(_GROUPS.findall(core))
    if len(groups) >= 3 and (seps == {"-"} or seps == {"."}):
        return True
    if seps != {" "}:
        return False
    if len(groups) == 2:  # (with a dash or a dot, "555-0142" may be a score or a range: a phone word decides)
        if len(groups[0]) == 3 and len(groups[1]) == 4 and core[0] in "23456789":
            return True
        # an area code and a subscriber number of six digits or more ("99 668472"), not a year first
        return 2 <= len(groups[0]) <= 4 and 6 <= len(groups[1]) <= 8 and not _YEAR.fullmatch(groups[0])
    if not 3 <= len(groups) <= 4 or digits > 12 or max(len(g) for g in groups) < 3:
        return False
    if all(len(g) == 4 and _YEAR.fullmatch(g) for g in groups):
        return False
    return not all(len(g) <= 3 and int(g) <= 100 for g in groups)


_VALIDATORS: list[tuple[str, str]] = [
    (EMAIL_ADDRESS, "^(?:" + _CANDIDATE["email"] + ")$"),
    (URL, "^(?:" + _CANDIDATE["url"] + ")$"),
    (DATE_OF_BIRTH, "^(?:" + _CANDIDATE["dob"] + ")$"),
    (US_SSN, r"^(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4}|\d{3}\.\d{2}\.\d{4}|\d{3}-\d{6}|\d{5}-\d{4})$"),
    (CREDIT_CARD, "^(?:" + _CANDIDATE["card"] + ")$"),
    (ADDRESS, "^(?:" + tp.STREET + "|" + tp.UNIT_ALONE + ")$"),
    (PHONE_NUMBER, "^(?:" + _CANDIDATE["phone"] + ")$"),
    (PHONE_NUMBER, "^(?:" + _CANDIDATE["intl_phone"] + ")$"),
    (MAC_ADDRESS, r"^[0-9A-Fa-f]{2}(?:[:\-][0-9A-Fa-f]{2}){5}$"),
    (IP_ADDRESS, "^(?:" + _CANDIDATE["ipv6"] + ")$"),
    (IP_ADDRESS, rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"),
    ("GROUPED_PHONE", _GROUPED_VALID),  # (a phone number; judged by _grouped_phone_ok)
    ("LOWER_LIST", "^(?:" + tp.LOWER_LIST + ")$"),  # (names if most words are given names)
    (IBAN_CODE, "^(?:" + tp.IBAN + ")$"),
    (PERSON, "^(?:" + _CANDIDATE["title"] + ")$"),
    # bare digit runs, by shape: a valid SSN, a NANP phone number, a card (Luhn checked later), an ID
    (US_SSN, f"^{_SSN_VALID}$"),
    (PHONE_NUMBER, r"^1?[2-9]\d\d[2-9]\d{6}$"),
    (CREDIT_CARD, r"^\d{13,19}$"),
    (ID_NUMBER, r"^\d{8,}$"),
]
# The formatted SSN candidate shapes above still need the SSA's ranges (presidio's rules: no 000 or 666
# area, no 00 group, no 0000 serial; 9xx areas are ITINs).
# validator kinds that stand for another kind
_VALIDATED_AS = {"GROUPED_PHONE": PHONE_NUMBER, "LOWER_LIST": PERSON}
_ITIN = r"^9\d\d[\-. ]\d\d[\-. ]\d{4}$"  # ("91101-2345" is a ZIP+4, not an ITIN)
# a grouped number that is a date ("03-14-2009", "2009.03.14") is not a phone number
_DATE_SHAPE = r"^(?:\d{1,2}[\-.]\d{1,2}[\-.]\d{2,4}|\d{4}[\-.]\d{1,2}[\-.]\d{1,2})$"

_CALENDAR_LOWER = pa.array(
    """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday""".split()  # noqa: SIM905
)
# a word of a name: letters, with inner apostrophes, hyphens and dots ("O'Brien", "García-López", "J.")
_NAME_TOKEN_RE2 = r"^[\p{L}\p{M}]+(?:['’\-.][\p{L}\p{M}]*)*$"
_NOT_A_NAME = pa.array(sorted(tp.NOT_A_NAME), pa.string())
_TITLE_WORDS = pa.array(sorted(tp.TITLE_WORDS), pa.string())
_INSTITUTIONS = pa.array(
    """High Elementary Middle Academy College University School Schools Institute Center Library
    Hospital Clinic Street Avenue Boulevard Road Drive County City State District Unified Stadium
    Church Foundation Scholarship Award Prize Fund Company Corporation Inc Museum Airport Station
    Campus Program Prep Charter Magnet Continuation""".split()  # noqa: SIM905
)
_LIST_SEP = r"^(?:, ?|,? and |,? & |,? or | y | e )$"
# a name before these names a company or a band ("Russell Investments", "Hall Orchestra")
_ORGANIZATIONS = pa.array(
    sorted(
        set(_INSTITUTIONS.to_pylist())
        | set(
            """Orchestra Band Ltd Ltd. LLC LLP Inc. Corp Corp. Co Co. Technologies Technology Investments
            Associates Capital Group Partners Bank Insurance Global Research Analytics Solutions Systems
            Holdings Industries Enterprises Consulting Labs Media Records Brothers Bros Sons Law
            Agency Studios Pharmaceuticals Motors Airlines Communications Software Services""".split()  # noqa: SIM905
        )
    ),
    pa.string(),
)
# the first word of a place's name: "South Africa", "Los Angeles", "New Zealand" (not "San", "La",
# "St": "San Martín", "De La Cruz", "St. John" are surnames)
_PLACE_HEADS = pa.array(
    """North South East West Northern Southern Eastern Western Central New Los Las Port Fort Mount Mt
    Lake Cape Puerto Rio Costa United Sri Hong Saudi""".split(),  # noqa: SIM905
    pa.string(),
)
_AND = pa.array([" and ", " & ", " y ", " e ", " und ", " et "], pa.string())
# a capitalized word after these is a place or a company as often as a person: "moved here from
# Kenosha", "I work for Citigroup", "travelling to Hungary", "studying English"
_PLACE_WORD_BEFORE = (
    r"(?i:\b(?:in|at|from|to|for|of|on|into|onto|near|via|across|around|toward|towards|through|within|"
    r"became|become|support|supports|visit|visited|visiting|studying|study|studies|new|great|nice|"
    r"where|called|named|city|town|village|country|del|de|la|du|di|da))\s$"
)
# what a person's family or work is called after "the X": "the Nguyen family", "the Sokolov novel"
_OWNED_AFTER = (
    r"^(?:'s|’s)?\s(?:family|families|household|twins|kids|children|brothers|sisters|siblings|"
    r"novel|novels|book|books|song|songs|album|albums|film|films|movie|movies|poem|poems|biography|"
    r"memoir|play|plays|painting|paintings|symphony|opera|version|recording|lecture|essay|essays)\b"
)
_ARTICLE_BEFORE = r"(?:^|[^\p{L}])(?i:the|a|an|this|that|these|our|their|your|its|my|his|her)\s+$"
_CALENDAR = pa.array(
    """January February March April May June July August September October November December
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday""".split()  # noqa: SIM905
)

# Cells are split on a tag character that does not occur in them: control characters first, then the
# 6,400 characters of Unicode's private use area (text that holds all of them is not text).
_TAG_CHOICES = [*"\x01\x02\x03\x04\x05\x06\x07\x08", *(chr(c) for c in range(0xE000, 0xF900))]


@dataclass(frozen=True)
class Finding:
    """One piece of PII in a text cell. Never holds the matched text, only where it is."""

    row: int  # 0-based row index within the column scanned
    kind: str  # one of KINDS
    start: int  # character (code point) offsets within the cell
    end: int


def _as_string_array(values: Any) -> pa.Array:
    """The non-null values of any array-like, as a pyarrow string array (not deduplicated: the
    callers deduplicate tokens and ID keys, which are far fewer than the raw values)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if not isinstance(values, pa.Array):
        values = pa.array([v if v is None else str(v) for v in values], pa.string())
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    return pc.drop_null(values).cast(pa.string())


def _strip_accents(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(pc.utf8_normalize(values, "NFD"), r"\p{Mn}+", "")


def _name_tokens(names: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Split full names into the tokens a note may use alone; return (strong, weak) token sets.

    Each token is kept as written, title-cased (exports are often ALL CAPS) and without accents;
    hyphenated names also contribute their parts ("García-López" → "García", "López"). Upper-case
    forms, tokens of two letters or fewer and ordinary English words ("Will", "May") are *weak*:
    accepted in a note only next to another name.
    """
    if len(names) == 0:
        empty = pa.array([], pa.string())
        return empty, empty
    # split the (many) full names first: the distinct tokens are far fewer, and all else works on those
    tokens = pc.unique(pc.utf8_split_whitespace(names).flatten())
    tokens = pc.utf8_split_whitespace(pc.replace_substring_regex(tokens, r"[,;/()\"]+", " ")).flatten()
    tokens = pc.utf8_trim(tokens, ".:'’-")
    # notes use straight and curly apostrophes alike: "O'Brien", "O’Brien"
    tokens = pa.concat_arrays(
        [tokens, pc.replace_substring(tokens, "'", "’"), pc.replace_substring(tokens, "’", "'")]
    )
    parts = pc.split_pattern(tokens, "-").flatten()
    tokens = pc.unique(pa.concat_arrays([tokens.cast(pa.string()), parts.cast(pa.string())]))
    tokens = tokens.filter(pc.and_(pc.greater_equal(pc.utf8_length(tokens), 2),
                                   pc.invert(pc.match_substring_regex(tokens, r"[\d@]"))))  # fmt: skip
    titled = pc.utf8_title(tokens)
    written = tokens.filter(pc.invert(pc.utf8_is_upper(tokens)))
    forms = pc.unique(pa.concat_arrays([written, titled, _strip_accents(written), _strip_accents(titled)]))
    upper = pc.unique(pa.concat_arrays([pc.utf8_upper(forms), pc.utf8_upper(_strip_accents(forms))]))
    name_like = pa.array(sorted(NAME_LIKE_WORDS), pa.string())
    weak_mask = pc.or_(pc.is_in(forms, value_set=name_like), pc.less_equal(pc.utf8_length(forms), 2))
    strong = forms.filter(pc.invert(weak_mask))
    # "GARCIA" in capitals is still a name; short capitals ("LEE", "ANA") may be acronyms, so weak.
    loud = pc.utf8_upper(strong)
    loud = loud.filter(pc.greater_equal(pc.utf8_length(loud), 4))
    strong = pc.unique(
        pa.concat_arrays(
            [
                strong,
                loud,
                pc.utf8_upper(_strip_accents(strong)).filter(pc.greater_equal(pc.utf8_length(strong), 4)),
            ]
        )
    )
    weak = pc.unique(pa.concat_arrays([forms.filter(weak_mask), upper]))
    weak = weak.filter(pc.invert(pc.is_in(weak, value_set=strong)))
    return strong, weak


@functools.lru_cache(maxsize=1)
def _common_name_tokens() -> pa.Array:
    """The bundled common names, as strong tokens (no ordinary words, no two-letter names)."""
    common = sorted(
        n for n in COMMON_FIRST_NAMES | COMMON_SURNAMES if n not in NAME_LIKE_WORDS and len(n) > 2
    )
    strong, _ = _name_tokens(pa.array(common, pa.string()))
    return strong


@functools.lru_cache(maxsize=1)
def _email_tlds() -> pa.Array:
    """Top-level domains from tldextract's bundled public-suffix snapshot (read locally, never fetched)."""
    import importlib.util
    from pathlib import Path

    # Locate the file without importing tldextract (whose import pulls in requests and urllib3).
    spec = importlib.util.find_spec("tldextract")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - a declared dependency
        raise RuntimeError("tldextract is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    try:
        text = (folder / ".tld_set_snapshot").read_text(encoding="utf-8")
    except OSError:  # e.g. a frozen build keeping package data inside an archive
        import pkgutil

        text = (pkgutil.get_data("tldextract", ".tld_set_snapshot") or b"").decode("utf-8")
    tlds: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("//"):
            tlds.add(line.rsplit(".", 1)[-1].lstrip("*!.").lower())
    return pa.array(sorted(t for t in tlds if t), pa.string())


def _iban_ok(text: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = text.replace(" ", "").replace("-", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


MIN_ID_LENGTH = 5  # roster IDs shorter than this would hit room numbers, course numbers and scores
_FORM_ROWS = 1 << 16  # roster values formed and hashed at a time: the build holds no copy of them all


def roster_id_forms(ids: pa.Array, min_length: int = MIN_ID_LENGTH) -> pa.Array:
    """Per roster ID cell, the form the scanner searches the notes for (trimmed); null for one too
    short to search for."""
    trimmed = pc.utf8_trim_whitespace(ids)
    long_enough = pc.greater_equal(pc.utf8_length(trimmed), min_length)
    return pc.if_else(long_enough, trimmed, pa.scalar(None, pa.string()))


def roster_email_forms(emails: pa.Array) -> pa.Array:
    """Per roster e-mail cell, the form the scanner looks for (trimmed, lower case); null without an "@"."""
    lowered = pc.utf8_lower(pc.utf8_trim_whitespace(emails))
    return pc.if_else(pc.match_substring(lowered, "@"), lowered, pa.scalar(None, pa.string()))


def roster_phone_forms(phones: pa.Array) -> pa.Array:
    """Per roster phone cell, its last ten digits ("+1 …" and "1-…" alike); null under seven digits."""
    digits = pc.replace_substring_regex(phones, r"\D+", "")
    last = pc.utf8_slice_codeunits(digits, -10)
    return pc.if_else(pc.greater_equal(pc.utf8_length(digits), 7), last, pa.scalar(None, pa.string()))


def _formed_set(values: Any, form: Callable[[pa.Array], pa.Array]) -> HashSet:
    """The hash set of the forms of ``values`` (any array-like), made a slice at a time."""
    arr = _as_string_array(values)
    found = HashSet()
    for at in range(0, len(arr), _FORM_ROWS):
        found.add(form(arr.slice(at, _FORM_ROWS)))
    return found


def _is_set(values: Any) -> bool:
    """A set prepared elsewhere (a streaming run's roster: deid._roster.RosterBuilder), not values."""
    return hasattr(values, "contains") and not isinstance(values, (pa.Array, pa.ChunkedArray))


class _ContactIndex:
    """The roster's own e-mail addresses and phone numbers. A note that writes one of them is caught
    even when it fails the pattern checks: a district's internal mail domain ("@students.sgvusd.local"
    has no public top-level domain), a number whose exchange a NANP check rejects.

    Each is a set of the forms (:func:`roster_email_forms`, :func:`roster_phone_forms`) kept as keyed
    hashes (deid._strindex.HashSet): built once, 8 bytes an address, looked up by binary search —
    ``pc.is_in`` would hash the whole roster again on every call (1.6 s per call for a million students,
    twice per streamed batch). Either is given ready (a streaming run collects it batch by batch) or
    made here from the values."""

    def __init__(self, emails: Any, phones: Any) -> None:
        self._email_index = emails if _is_set(emails) else _formed_set(emails, roster_email_forms)
        self._phone_index = phones if _is_set(phones) else _formed_set(phones, roster_phone_forms)
        self.size = len(self._email_index) + len(self._phone_index)

    def kinds(self, values: pa.Array) -> np.ndarray:
        """Per value: the kind code of a roster e-mail or phone it is, else -1."""
        out = np.full(len(values), -1, dtype=np.int16)
        if self.size == 0 or len(values) == 0:
            return out
        if len(self._email_index):
            out[self._email_index.contains(pc.utf8_lower(values))] = _KIND_CODE[EMAIL_ADDRESS]
        if len(self._phone_index):
            digits = pc.replace_substring_regex(values, r"\D+", "")
            n = pc.utf8_length(digits).fill_null(0).to_numpy(zero_copy_only=False)
            hit = self._phone_index.contains(pc.utf8_slice_codeunits(digits, -10))
            out[hit & (n >= 7) & (n <= 15) & (out < 0)] = _KIND_CODE[PHONE_NUMBER]
        return out


class TextScanner:
    """Finds and redacts PII in free-text columns: pattern kinds plus the file's own roster.

    Build it from the table being de-identified (:meth:`from_table`) so the students' and guardians'
    names and IDs are searched in every note — "Maria" alone is caught when "Maria Lopez" is on the
    roster — then call :meth:`redact` on each free-text column and :meth:`find` on the output
    (the residual scan). ``common_names`` adds a bundled list of frequent names not on the roster.
    """

    def __init__(
        self,
        roster_names: Iterable[str] = (),
        roster_ids: Iterable[str] | StringSet = (),
        *,
        common_names: bool = True,
        min_id_length: int = MIN_ID_LENGTH,
        row_names: Sequence[pa.Array | pa.ChunkedArray] = (),
        roster_emails: Iterable[str] | StringSet = (),
        roster_phones: Iterable[str] | StringSet = (),
    ) -> None:
        self._strong, self._weak = _name_tokens(_as_string_array(roster_names))
        # the roster's tokens as a set, for the few context values checked word by word
        self._roster_tokens = pc.unique(pa.concat_arrays([self._strong, self._weak]))
        empty = pa.array([], pa.string())
        self._list_surnames, self._list_ambiguous, self._given_word = empty, empty, empty
        if common_names:
            # Names not on the roster count alone only when they are unmistakably names: the bundled
            # lists' given names that are no English word. Their surnames and their names that are
            # also words ("Young", "Will") count only beside a name or after a context rule.
            given, given_word, surname, ambiguous = _names.name_sets()
            self._strong = pc.unique(pa.concat_arrays([self._strong, _common_name_tokens(), given]))
            self._weak = self._weak.filter(pc.invert(pc.is_in(self._weak, value_set=self._strong)))
            self._given_word = given_word.filter(
                pc.invert(pc.is_in(given_word, value_set=pa.concat_arrays([self._strong, self._weak])))
            )
            self._list_surnames = surname.filter(pc.invert(pc.is_in(surname, value_set=self._strong)))
            self._list_ambiguous = ambiguous
        self._given_any = pc.unique(pa.concat_arrays([self._strong, self._weak]))
        # The roster's IDs, e-mail addresses and phones are kept as keyed hashes (8 bytes each): a
        # million students' contacts are not held as text. A streaming run hands them in ready
        # (deid._roster.RosterBuilder, made with the same forms), with ``roster_names`` as the names'
        # distinct words — the tokens above come from those words alone.
        self._ids = (
            roster_ids
            if _is_set(roster_ids)
            else _formed_set(roster_ids, lambda a: roster_id_forms(a, min_id_length))
        )
        self._tlds = _email_tlds()
        self._contacts = _ContactIndex(roster_emails, roster_phones)
        # Per-row names (aligned with the rows of the columns to scan): a row's own name is accepted
        # even when it is an ordinary word ("Grace met with me"), which the roster alone cannot do.
        # (kept by reference — the table's own buffers — and tokenized only for the rows that need it)
        self._row_names = [c if pa.types.is_string(c.type) else pc.cast(c, pa.string()) for c in row_names]
        self._row_count = len(self._row_names[0]) if self._row_names else -1

    def with_row_names(self, row_names: Sequence[pa.Array | pa.ChunkedArray]) -> TextScanner:
        """This scanner (the same roster, built once) for other rows: ``row_names`` are the name columns
        of the rows about to be scanned (a streaming run's batch)."""
        import copy

        other = copy.copy(self)
        other._row_names = [c if pa.types.is_string(c.type) else pc.cast(c, pa.string()) for c in row_names]
        other._row_count = len(other._row_names[0]) if other._row_names else -1
        return other

    @classmethod
    def from_table(
        cls, table: pa.Table, name_columns: Sequence[str], id_columns: Sequence[str], **options: Any
    ) -> TextScanner:
        """A scanner whose roster is the distinct values of ``table``'s name and ID columns.

        Columns of ``table`` itself then also get the per-row rule: in row *i*, the names of row *i*
        are found even when they are ordinary words ("Grace", "Hunter").
        """
        from deid.errors import PolicyError

        for col in (*name_columns, *id_columns):
            if col not in table.column_names:
                raise PolicyError(f'The roster column "{col}" is not in the table.')
        names = [_as_string_array(table.column(c)) for c in name_columns]
        ids = [_as_string_array(table.column(c)) for c in id_columns]
        all_names = pa.concat_arrays(names) if names else ()
        all_ids = pa.concat_arrays(ids) if ids else ()
        options.setdefault("row_names", [table.column(c) for c in name_columns])
        return cls(all_names, all_ids, **options)

    @property
    def roster_size(self) -> tuple[int, int]:
        """(name tokens, IDs) the scanner searches for — counts only, for reports."""
        return len(self._strong) + len(self._weak), len(self._ids)

    # --- public operations ----------------------------------------------------------------------

    def redact(self, column: pa.Array | pa.ChunkedArray) -> tuple[pa.ChunkedArray, int]:
        """Replace each finding with ``<KIND>``; return the new column and how many cells changed.

        Nulls stay null; cells without findings come back byte for byte.
        """
        out: list[pa.Array] = []
        changed = 0
        aligned = len(column) == self._row_count
        base = 0
        for batch in _batches(column):
            redacted, n, _ = self._scan(
                batch, base if aligned else -1, want_redacted=True, want_findings=False
            )
            base += len(batch)
            out.append(redacted)
            changed += n
        return pa.chunked_array(out, type=_text_type(column)), changed

    def redact_counted(
        self, column: pa.Array | pa.ChunkedArray
    ) -> tuple[pa.ChunkedArray, int, dict[str, int]]:
        """:meth:`redact`, and how many pieces of each kind were replaced ({kind: count}, for reports)."""
        out: list[pa.Array] = []
        changed = 0
        counts = np.zeros(len(KINDS), dtype=np.int64)
        aligned = len(column) == self._row_count
        base = 0
        for batch in _batches(column):
            redacted, n, found = self._scan(
                batch, base if aligned else -1, want_redacted=True, want_findings=True
            )
            base += len(batch)
            out.append(redacted)
            changed += n
            counts += np.bincount(found[1].astype(np.int64), minlength=len(KINDS))[: len(KINDS)]
        by_kind = {KINDS[i]: int(c) for i, c in enumerate(counts) if c}
        return pa.chunked_array(out, type=_text_type(column)), changed, by_kind

    def find(self, column: pa.Array | pa.ChunkedArray, limit: int | None = None) -> list[Finding]:
        """Every finding in the column (row, kind, character offsets), in row order; at most ``limit``."""
        findings: list[Finding] = []
        for rows, kinds, starts, ends in self._found_batches(column):
            for r, k, s, e in zip(rows.tolist(), kinds.tolist(), starts.tolist(), ends.tolist(), strict=True):
                findings.append(Finding(r, KINDS[k], s, e))
                if limit is not None and len(findings) >= limit:
                    return findings
        return findings

    def find_arrays(self, column: pa.Array | pa.ChunkedArray) -> dict[str, np.ndarray]:
        """The findings as parallel numpy arrays ``row``, ``kind`` (strings), ``start``, ``end``.

        Same content as :meth:`find`, without a Python object per finding: for millions of rows.
        """
        parts = list(self._found_batches(column))
        if not parts:
            return {"row": np.zeros(0, np.int64), "kind": np.zeros(0, "<U1"),
                    "start": np.zeros(0, np.int64), "end": np.zeros(0, np.int64)}  # fmt: skip
        rows, kinds, starts, ends = (np.concatenate(x) for x in zip(*parts, strict=True))
        return {"row": rows, "kind": np.asarray(KINDS)[kinds], "start": starts, "end": ends}

    def _found_batches(self, column: pa.Array | pa.ChunkedArray) -> Iterable[tuple[np.ndarray, ...]]:
        aligned = len(column) == self._row_count
        base = 0
        for batch in _batches(column):
            _, _, found = self._scan(batch, base if aligned else -1, want_redacted=False, want_findings=True)
            rows, kinds, starts, ends = found
            yield rows.astype(np.int64) + base, kinds, starts, ends
            base += len(batch)

    def count(self, column: pa.Array | pa.ChunkedArray) -> int:
        """How many cells hold at least one finding (cheaper than :meth:`find` on large columns)."""
        aligned = len(column) == self._row_count
        total = base = 0
        for batch in _batches(column):
            total += self._scan(batch, base if aligned else -1, want_redacted=False, want_findings=False)[1]
            base += len(batch)
        return total

    # --- the vectorized pass --------------------------------------------------------------------

    def _scan(
        self, cells: pa.Array, row_base: int, *, want_redacted: bool, want_findings: bool
    ) -> tuple[pa.Array | None, int, tuple[np.ndarray, ...]]:
        # (on the system allocator: a batch allocates and frees dozens of column-sized buffers, and
        # mimalloc's purging of them cost ~20 % of the scan's CPU time in the kernel — see _arrowmem)
        with system_allocator():
            return self._scan_batch(cells, row_base, want_redacted=want_redacted, want_findings=want_findings)

    def _scan_batch(
        self, cells: pa.Array, row_base: int, *, want_redacted: bool, want_findings: bool
    ) -> tuple[pa.Array | None, int, tuple[np.ndarray, ...]]:
        n_rows = len(cells)
        # cells with a character outside the Latin blocks take the full (slower) patterns
        exotic, low_controls = _byte_facts(cells)
        tag, open_, pair, close, *seps = _pick_tags(cells, 4 + len(_CONTEXTS), low_controls)
        tags = _Tags(tag, open_, pair, close, tuple(seps))
        marked, triggered = _mark(cells, exotic, tags)
        everything = np.ones(n_rows, dtype=bool)
        tagged = _replace_rows(marked, everything, exotic, _main_pattern(), tag + r"\0" + tag)
        parts, pair_context = _split_marked(tagged, tags)
        offsets = parts.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        flat = parts.values
        n_pieces = len(flat)
        counts = np.diff(offsets)
        row_of = np.repeat(np.arange(n_rows, dtype=np.int32), counts)
        # Within a cell, pieces alternate plain / candidate, starting with plain: a piece is a candidate
        # when its index and its cell's first index differ in parity.
        alternating = np.tile(np.array([0, 1], dtype=np.int8), n_pieces // 2 + 1)[:n_pieces]
        start_parity = np.repeat((offsets[:-1] & 1).astype(np.int8), counts)
        match_idx = np.flatnonzero(alternating != start_parity)
        del alternating, start_parity

        kinds = np.full(n_pieces, -1, dtype=np.int16)  # accepted kind per piece, -1 = keep
        # characters kept after the placeholder: a possessive "'s", or the words a context rule's
        # value took that are not part of the name ("<PERSON> about grades")
        suffix = np.zeros(n_pieces, dtype=np.int32)
        # characters kept before it: the words a context rule's value took before the name
        # ("spoke with Mom Maria" → "Mom <PERSON>")
        prefix = np.zeros(n_pieces, dtype=np.int32)
        if len(match_idx):
            context = _ContextHints(pair_context, triggered, row_of[match_idx])
            # (every piece of an all-Latin batch is Latin: _matches need not look)
            token = _ALL_LATIN.set(not exotic.any())
            try:
                self._classify(flat, match_idx, kinds, suffix, prefix, row_of, row_base, offsets, context)
            finally:
                _ALL_LATIN.reset(token)

        accepted = np.flatnonzero(kinds >= 0)
        # "Maria Lopez" becomes one <PERSON>: a person piece directly after another, one space
        # between, is merged into the first (its placeholder and the space are dropped).
        merged = np.zeros(0, dtype=np.int64)
        if len(accepted):
            person = np.flatnonzero(kinds == _KIND_CODE[PERSON])
            if len(person) > 1:
                nxt = np.minimum(person + 2, n_pieces - 1)
                ok = (
                    (kinds[nxt] == _KIND_CODE[PERSON]) & (nxt == person + 2) & (row_of[nxt] == row_of[person])
                )
                ok &= (suffix[person] == 0) & (suffix[nxt] == 0) & (prefix[nxt] == 0)
                cand = person[ok]
                if len(cand):
                    gaps = pc.take(flat, pa.array(cand + 1))
                    single_space = np.asarray(pc.equal(gaps, " ").to_numpy(zero_copy_only=False), bool)
                    merged = cand[single_space] + 2
        touched = np.zeros(n_rows, dtype=bool)
        touched[row_of[accepted]] = True
        n_changed = int(np.count_nonzero(touched))

        redacted = None
        if want_redacted:
            redacted = self._rebuild(cells, parts, flat, kinds, suffix, prefix, accepted, merged)
        found: tuple[np.ndarray, ...] = (np.zeros(0, np.int64),) * 4
        if want_findings and len(accepted):
            found = self._spans(flat, offsets, row_of, kinds, suffix, prefix, accepted, merged)
        return redacted, n_changed, found

    def _classify(
        self,
        flat: pa.Array,
        match_idx: np.ndarray,
        kinds: np.ndarray,
        suffix: np.ndarray,
        prefix: np.ndarray,
        row_of: np.ndarray,
        row_base: int,
        offsets: np.ndarray,
        context: _ContextHints,
    ) -> None:
        """Decide, for every candidate piece, whether it is PII and of which kind (in place)."""
        cand = pc.take(flat, pa.array(match_idx))
        # 0. values that follow a context ("call me at 555-0142", "spoke with ximena")
        claimed = self._classify_context(flat, match_idx, cand, kinds, suffix, prefix, context)
        # 1. roster and common names: hash look-ups
        # (the same words recur — "Called", "Student", a family's name —: each distinct one looked up once)
        distinct = _Distinct(cand)
        strong = distinct.mask(lambda v: pc.is_in(v, value_set=self._strong)) & ~claimed
        weak = distinct.mask(lambda v: pc.is_in(v, value_set=self._weak)) & ~strong & ~claimed
        # the bundled lists' given names that are also words: weak, but they do not support each other
        # ("The Princess Royal") and count mid-sentence only after a lower-case word ("What Will Happen")
        listword = (
            distinct.mask(lambda v: pc.is_in(v, value_set=self._given_word)) & ~strong & ~weak & ~claimed
        )
        weak |= listword
        # Plain words (letters only) that are not names are done with; only the rest need more work.
        unknown = ~strong & ~weak & ~claimed
        wordlike = distinct.mask(pc.utf8_is_alpha)
        odd = np.flatnonzero(unknown & ~wordlike)
        odd_vals = pc.take(cand, pa.array(odd))
        # possessive forms ("Maria's"): look the stem up
        poss = _np_bool(pc.ends_with(odd_vals, "'s")) | _np_bool(pc.ends_with(odd_vals, "’s"))
        if poss.any():
            sub = odd[poss]
            stems = pc.utf8_slice_codeunits(pc.take(odd_vals, pa.array(np.flatnonzero(poss))), 0, -2)
            s_ok = _np_bool(pc.is_in(stems, value_set=self._strong))
            w_ok = _np_bool(pc.is_in(stems, value_set=self._weak)) & ~s_ok
            strong[sub[s_ok]] = True
            weak[sub[w_ok]] = True
            suffix[match_idx[sub[s_ok | w_ok]]] = 2
        # hyphenated compounds whose parts are (strong) names: "Lopez-Nguyen"
        hyph = _np_bool(pc.match_substring(odd_vals, "-")) & ~strong[odd] & ~weak[odd]
        if hyph.any():
            sub = odd[hyph]
            pieces = pc.split_pattern(pc.take(odd_vals, pa.array(np.flatnonzero(hyph))), "-")
            hit = _np_bool(pc.is_in(pieces.values, value_set=self._strong))
            per = np.add.reduceat(hit, pieces.offsets.to_numpy()[:-1]) if len(hit) else np.zeros(len(sub))
            strong[sub[per > 0]] = True
        person_code = _KIND_CODE[PERSON]
        kinds[match_idx[strong]] = person_code

        # 2. structured kinds on the candidates that are not plain words
        rest = ~strong[odd] & ~weak[odd]
        if rest.any():
            sub = odd[rest]
            sub_vals = pc.take(odd_vals, pa.array(np.flatnonzero(rest)))
            # "SSID0012345678": letters glued to a number are checked as the number
            glued = _np_bool(pc.match_substring_regex(sub_vals, r"^[A-Za-z]{1,4}\d{5,}$"))
            # as written ("D1234567"), an unclaimed letters-and-number piece is still an ID of some kind
            lettered_id = _np_bool(pc.match_substring_regex(sub_vals, r"^[A-Za-z]{1,3}\d{6,}$"))
            if glued.any():
                stripped = pc.replace_substring_regex(sub_vals, r"^[A-Za-z]+", "")
                strip = glued.copy()  # (as written, a roster ID keeps its letters)
                strip[glued] = ~self._ids.contains(sub_vals.filter(pa.array(glued)))
                sub_vals = pc.if_else(pa.array(strip), stripped, sub_vals)
            is_id = self._ids.contains(sub_vals)
            kinds[match_idx[sub[is_id]]] = _KIND_CODE[STUDENT_ID]
            sub, sub_vals, lettered_id = sub[~is_id], sub_vals.filter(pa.array(~is_id)), lettered_id[~is_id]
            # Only pieces with a separator, an "@" or six digits in a row can pass a validator below;
            # this skips the many years and short numbers ("2025", "Room 2041") in one pass.
            todo_rows = np.flatnonzero(_np_bool(pc.match_substring_regex(sub_vals, r"[@.+( :/\-]|\d{6}")))
            if len(todo_rows):
                # the same values recur (dates, room numbers, a family's phone): each distinct one once
                encoded = pc.dictionary_encode(pc.take(sub_vals, pa.array(todo_rows)))
                found = self._structured_kinds(encoded.dictionary)[
                    encoded.indices.to_numpy(zero_copy_only=False)
                ]
                hit = found >= 0
                kinds[match_idx[sub[todo_rows[hit]]]] = found[hit]
            if self._contacts.size:  # the roster's own addresses and numbers, whatever their shape
                contact = self._contacts.kinds(sub_vals)
                kinds[match_idx[sub[contact >= 0]]] = contact[contact >= 0]
            targets = match_idx[sub[lettered_id]]
            kinds[targets[kinds[targets] < 0]] = _KIND_CODE[ID_NUMBER]

        # 3. weak names count only beside another name: "Will Smith", "Grace May Chen"
        if weak.any():
            wpos = match_idx[weak]
            is_name = kinds == person_code
            # two weak roster names side by side ("Will May") support each other
            is_name[match_idx[weak & ~listword]] = True
            n = len(kinds)
            prev_ok = (wpos - 2 >= 0) & is_name[np.maximum(wpos - 2, 0)]
            prev_ok &= row_of[np.maximum(wpos - 2, 0)] == row_of[wpos]
            next_ok = (wpos + 2 < n) & is_name[np.minimum(wpos + 2, n - 1)]
            next_ok &= row_of[np.minimum(wpos + 2, n - 1)] == row_of[wpos]
            cand_pos = wpos[prev_ok | next_ok]
            if len(cand_pos):
                # the neighbour must be separated by exactly one space
                before = pc.take(flat, pa.array(np.maximum(cand_pos - 1, 0)))
                after = pc.take(flat, pa.array(np.minimum(cand_pos + 1, n - 1)))
                sp_before = _np_bool(pc.equal(before, " ")) & is_name[np.maximum(cand_pos - 2, 0)]
                sp_before &= row_of[np.maximum(cand_pos - 2, 0)] == row_of[cand_pos]
                sp_after = _np_bool(pc.equal(after, " ")) & is_name[np.minimum(cand_pos + 2, n - 1)]
                sp_after &= row_of[np.minimum(cand_pos + 2, n - 1)] == row_of[cand_pos]
                kinds[cand_pos[sp_before | sp_after]] = person_code
            # a row's own names, whatever they mean in English (only when rows line up with the table)
            left = wpos[kinds[wpos] != person_code]
            if row_base >= 0 and len(left) and self._row_names:
                vals = pc.take(flat, pa.array(left))
                rows = pa.array(row_of[left] + row_base)
                own = np.zeros(len(left), dtype=bool)
                for names in self._row_names:
                    row_toks = pc.utf8_split_whitespace(pc.take(names, rows))
                    parent = pc.list_parent_indices(row_toks).to_numpy(zero_copy_only=False)
                    same = _np_bool(pc.equal(pc.take(vals, pa.array(parent)), pc.list_flatten(row_toks)))
                    own[parent[same]] = True
                kinds[left[own]] = person_code
            # Mid-sentence and capitalized, an ordinary word is a name ("Grace and Dean are working"):
            # only at the start of a sentence ("Grace period ends", "Will follow up") is it a word.
            # Month and day names, and capitals ("MAY"), stay words unless beside a name.
            left = wpos[kinds[wpos] != person_code]
            if len(left):
                vals = pc.take(flat, pa.array(left))
                titled = _matches(vals, r"^\p{Lu}.*\p{Ll}")
                titled &= ~_np_bool(pc.is_in(vals, value_set=_CALENDAR))
                left, vals = left[titled], vals.filter(pa.array(titled))
                prev = pc.take(flat, pa.array(left - 1))
                at_cell_start = (left - 1 == offsets[:-1][row_of[left]]) & _np_bool(
                    pc.match_substring_regex(prev, r"^[\s\"'“‘(*•\-]*$")
                )
                after_stop = _np_bool(pc.match_substring_regex(prev, r"[.!?;:\n][\"'“‘(\s]*$"))
                # after an article it is a thing: "the Hope scholarship", "a Will", "our Grace period"
                after_article = _np_bool(pc.match_substring_regex(prev, _ARTICLE_BEFORE))
                listed = np.isin(left, match_idx[listword])
                after_lower = _matches(prev, r"\p{Ll}[\p{L}\p{M}]*,? $")
                ok = ~at_cell_start & ~after_stop & ~after_article & (~listed | after_lower)
                kinds[left[ok]] = person_code

        # 4. a name before an institution word names the institution: "Lincoln High", "Cal State",
        # "Washington Elementary" (not a person: nothing to redact); neither word is a name below
        blocked = np.zeros(len(kinds), dtype=bool)
        nxt_word = np.minimum(match_idx + 2, len(kinds) - 1)
        before_inst = (match_idx + 2 < len(kinds)) & (row_of[nxt_word] == row_of[match_idx]) & ~claimed
        if before_inst.any():
            sel = np.flatnonzero(before_inst)
            # (the institution word first: it rules out almost every candidate at once)
            after = pc.take(flat, pa.array(match_idx[sel] + 2))
            sel = sel[_np_bool(pc.is_in(after, value_set=_INSTITUTIONS))]
            pos = match_idx[sel]
            inst = _np_bool(pc.equal(pc.take(flat, pa.array(pos + 1)), " "))
            inst &= _matches(pc.take(cand, pa.array(sel)), r"^\p{Lu}")
            inst &= (kinds[pos] < 0) | (kinds[pos] == person_code)
            inst &= kinds[pos + 2] != person_code  # "Andrew Hall": Hall is a name here
            blocked[pos[inst]] = True
            blocked[pos[inst] + 2] = True
            kinds[pos[inst]] = -1

        # 5. names beside names: a listed surname, a name that is also a word ("Young") or an unknown
        # capitalized word right after a name ("Maria Fanucci", "Cettina Young"); a given name right
        # before one ("Will Vargas"); listed names in a list with a name ("Ortiz, Becker and Nguyen")
        if len(self._list_surnames) or len(self._list_ambiguous):
            self._names_beside_names(flat, match_idx, distinct, kinds, row_of, blocked, suffix)

        # 6. what names things, not people (a context rule's value stays a name)
        _not_people(flat, match_idx, distinct, ~claimed, kinds, row_of, match_idx[listword & ~claimed])

    def _names_beside_names(
        self,
        flat: pa.Array,
        match_idx: np.ndarray,
        distinct: _Distinct,
        kinds: np.ndarray,
        row_of: np.ndarray,
        blocked: np.ndarray,
        suffix: np.ndarray,
    ) -> None:
        person_code = _KIND_CODE[PERSON]
        vals = distinct.values
        word = _matches(vals, r"^\p{Lu}[\p{L}\p{M}'’\-]*$")
        idx = np.flatnonzero((kinds[match_idx] < 0) & ~blocked[match_idx] & word[distinct.index])
        if not len(idx):
            return
        # (each list hashed once per batch: hashing a value set of 100,000 names is the cost of a look-up)
        list_surname_d = _np_bool(pc.is_in(vals, value_set=self._list_surnames))
        calendar_d = _np_bool(pc.is_in(vals, value_set=_CALENDAR))
        listed_d = list_surname_d | _np_bool(pc.is_in(vals, value_set=self._list_ambiguous))
        given_d = _np_bool(pc.is_in(vals, value_set=self._given_any)) | _np_bool(
            pc.is_in(vals, value_set=self._given_word)
        )
        english_d = _np_bool(pc.is_in(pc.utf8_lower(vals), value_set=_names.english_words_array()))
        unknown_d = ~english_d & ~listed_d
        lengths_d = pc.utf8_length(vals).to_numpy(zero_copy_only=False)
        unknown_d &= ~calendar_d & (lengths_d >= 3)
        unknown_d &= ~_np_bool(pc.utf8_is_upper(vals))  # acronyms ("NASA", "USA")
        given_raw_d = _np_bool(pc.is_in(vals, value_set=_names.given_names_array())) & ~calendar_d
        given_raw_d &= lengths_d >= 3  # ("In Czech Republic")
        surname_d = list_surname_d & ~english_d
        n = len(kinds)
        word_at = np.zeros(n, dtype=bool)  # every undecided capitalized word
        word_at[match_idx[idx]] = True
        # only words that some rule below can take need their separators read (not "Called", "Student")
        idx = idx[(listed_d | given_d | unknown_d | given_raw_d | (lengths_d == 1))[distinct.index[idx]]]
        which = distinct.index[idx]
        listed, given_like, unknown = listed_d[which], given_d[which], unknown_d[which]
        english = english_d[which]
        pos = match_idx[idx]
        sep_prev = pc.take(flat, pa.array(np.maximum(pos - 1, 0)))
        sep_next = pc.take(flat, pa.array(np.minimum(pos + 1, n - 1)))
        space_prev = _np_bool(pc.equal(sep_prev, " "))
        space_next = _np_bool(pc.equal(sep_next, " "))
        list_prev = _np_bool(pc.match_substring_regex(sep_prev, r"^(?:, ?|,? and |,? & |,? or | y | e )$"))
        list_next = _np_bool(pc.match_substring_regex(sep_next, r"^(?:, ?|,? and |,? & |,? or | y | e )$"))
        has_prev = (pos - 2 >= 0) & (row_of[np.maximum(pos - 2, 0)] == row_of[pos])
        has_next = (pos + 2 < n) & (row_of[np.minimum(pos + 2, n - 1)] == row_of[pos])
        prev_at, next_at = np.maximum(pos - 2, 0), np.minimum(pos + 2, n - 1)
        # A middle initial between two name-like words makes all three a name, listed or not ("Szabina
        # J Gelencsér", "Faina D. Yefremova"); an unknown word before a listed surname is its given
        # name ("Tomomi Nishiyama").
        namish = kinds == person_code
        namish[pos[(unknown | listed | given_like) & ~english]] = True  # (not "Area B. Hope")
        initial = pc.utf8_length(pc.take(vals, pa.array(which))).to_numpy(zero_copy_only=False) == 1
        initial_next = space_next | _np_bool(pc.equal(sep_next, ". "))
        # (a listed given name before the initial vouches for any capitalized word after it: "Sari J.
        # Paavolainen", "Brad L Key", "Daniela C Capon"; a given name and a surname both listed, or a
        # given name before an unlisted word, make a name: "Harry Sheppard", "Kira Fransson", "Amadeo
        # Vitorović"; so do two listed surnames that are no words ("Tosh Olsen") and an unlisted
        # word before a name ("Cleofe Mateo"))
        given_raw, surname = given_raw_d[which], surname_d[which]
        given_raw_at = np.zeros(n, dtype=bool)
        given_raw_at[pos[given_raw]] = True
        given_raw_at |= kinds == person_code
        vouched = given_raw_at[prev_at] & word_at[next_at] & ~given_raw_at[pos]
        middle = initial & space_prev & initial_next & has_prev & has_next
        middle &= (namish[prev_at] & namish[next_at]) | vouched
        middle &= (kinds[prev_at] < 0) | (kinds[prev_at] == person_code)
        middle &= (kinds[next_at] < 0) | (kinds[next_at] == person_code)
        listed_at = np.zeros(n, dtype=bool)
        listed_at[pos[listed]] = True
        given_before = unknown & space_next & has_next & listed_at[next_at] & (kinds[next_at] < 0)
        # two unknown capitalized words side by side, neither an English word, a place or a listed
        # name: a given name and a surname nobody listed ("Calquín Cazares")
        unknown_at = np.zeros(n, dtype=bool)
        unknown_at[pos[unknown]] = True
        given_before |= unknown & space_next & has_next & unknown_at[next_at] & (kinds[next_at] < 0)
        surname_at = np.zeros(n, dtype=bool)
        surname_at[pos[surname]] = True
        free_next = space_next & has_next & (kinds[next_at] < 0)
        given_before |= given_raw & ~initial & free_next & (surname_at[next_at] | unknown_at[next_at])
        given_before |= surname & free_next & surname_at[next_at]
        given_before |= unknown & space_next & has_next & (kinds[next_at] == person_code)
        for sel in (middle, given_before):
            kinds[pos[sel]] = person_code
            kinds[next_at[sel]] = person_code
        kinds[prev_at[middle]] = person_code
        for _ in range(3):  # chains: "Maria Elena Fanucci Rossi"
            is_name = kinds == person_code
            prev_name = has_prev & is_name[np.maximum(pos - 2, 0)]
            next_name = has_next & is_name[np.minimum(pos + 2, n - 1)]
            accept = (listed | unknown) & space_prev & prev_name  # after a name
            accept |= given_like & space_next & next_name  # a given name before one
            accept |= listed & ((list_prev & prev_name) | (list_next & next_name))  # in a list of names
            accept &= kinds[pos] < 0
            if not accept.any():
                break
            kinds[pos[accept]] = person_code
        self._names_alone(
            flat, match_idx, kinds, row_of, suffix, pos, surname, unknown, english, listed
        )

    def _names_alone(
        self,
        flat: pa.Array,
        match_idx: np.ndarray,
        kinds: np.ndarray,
        row_of: np.ndarray,
        suffix: np.ndarray,
        pos: np.ndarray,
        surname: np.ndarray,
        unknown: np.ndarray,
        english: np.ndarray,
        listed: np.ndarray,
    ) -> None:
        """Names with no name beside them, told by where they stand (the candidates ``pos`` are the
        capitalized words still undecided; ``surname``: a listed surname that is no English word).

        - a listed surname that is no English word, in the middle of a sentence right after a
          lower-case word that is no article, preposition of place or place word: "than early
          Yefremova?" ("Unlike the Christiansen novel", "moved here from Kenosha" stay: there a
          capitalized word names a thing or a place as often); a word nobody listed (no English word,
          place or listed name) is not taken there;
        - either, after a speech verb: "says Hartvigsson.", "asked Bergqvist";
        - either, at the start of a sentence before a verb people do ("Mehrudin shouted", "Asya spent
          a year"; not before "is", said of things too: "Schoology is down");
        - either, as a speaker's label at the start of a line, before a colon and a quote, or before a
          colon and a capital with another such label in the note ("Koppány: \"Who are you?\"");
        - two such words joined by "and" ("Torpy and Salinas were engineers"), the second also a
          listed name that is a word or place ("Muslija and Brown");
        - the same word again in the same note, once a name of that note holds it ("directed by Joakim
          Westgård and starring Westgård", "Asya's kid").
        """
        person_code = _KIND_CODE[PERSON]
        n = len(kinds)
        alone = (unknown | surname) & (kinds[pos] < 0)
        if alone.any():
            sel = np.flatnonzero(alone)
            at = pos[sel]
            before = pc.utf8_slice_codeunits(pc.take(flat, pa.array(at - 1)), -40)
            after = pc.utf8_slice_codeunits(pc.take(flat, pa.array(np.minimum(at + 1, n - 1))), 0, 40)
            last_piece = at + 1 >= n
            if last_piece.any():
                after = pc.if_else(pa.array(last_piece), pa.scalar("", after.type), after)
            mid = _matches(before, r"(?:^|[^\p{L}\p{M}'’\-])\p{Ll}[\p{L}\p{M}]*,? $")
            mid &= ~_matches(before, _ARTICLE_BEFORE) & ~_matches(before, _PLACE_WORD_BEFORE)
            mid &= ~unknown[sel]  # (a word nobody listed after a lower-case word is as often a place)
            said = _matches(before, r"(?i:\b(?:says|said|asks|asked|told|replied|adds|added|wrote))\s$")
            cell_start = at - 1 == _cell_first(row_of, at)
            opening = _matches(before, r"(?:^|[.!?\n][\"'“‘)\]]?\s+)$") | cell_start
            verb = _matches(after, r"^(?:'s|’s)?\s(?:" + tp.PERSON_VERBS + r")\b")
            # a speaker's label at the start of a line ("Koppány: \"Who are you?\"", "Leverett: What a …")
            line_start = _matches(before, r"(?:^|\n)[ \t>*\-]*$") | cell_start
            # (a capitalized word after the colon is a candidate of its own: the piece ends before it);
            # a quote after it, or another such label in the note (a dialogue) — "Éxito: José y Ana"
            # is a heading
            label = line_start & _matches(after, r"^:[ \t]*(?:[\"'“‘]|[ \t]$)")
            quoted = label & _matches(after, r"^:[ \t]*[\"'“‘]")
            labels_in_row = np.bincount(row_of[at[label]], minlength=int(row_of[-1]) + 1)
            label &= quoted | (labels_in_row[row_of[at]] >= 2)
            # after "the", before a word for a family or a person's work, a surname or a word nobody
            # listed is the person's name: "the Nguyen family", "the Christiansen novel" (not "the
            # Hope scholarship": a word; not "the Kenosha family": a place; not "the Schoology app")
            owned = _matches(before, r"(?:^|[^\p{L}\p{M}'’\-])(?i:the)\s$")
            # ("The Nguyen family": a capitalized "The" is a candidate of its own, one space before)
            the_at = np.maximum(at - 2, 0)
            capital_the = (at >= 2) & (row_of[the_at] == row_of[at]) & _np_bool(pc.equal(before, " "))
            capital_the[capital_the] = _np_bool(pc.equal(pc.take(flat, pa.array(the_at[capital_the])), "The"))
            owned = (owned | capital_the) & _matches(after, _OWNED_AFTER)
            take = mid | said | (opening & verb) | label | owned
            kinds[at[take]] = person_code
        # "Torpy and Salinas": both words of a pair joined by "and", neither an English word unless
        # it is a listed name ("Brown")
        pair = (unknown | listed) & (kinds[pos] < 0)
        namish = np.zeros(n, dtype=bool)
        namish[pos[pair & (unknown | listed)]] = True
        namish[pos[english & ~listed]] = False
        first = pos[pair & unknown]
        first = first[(first + 2 < n) & (row_of[np.minimum(first + 2, n - 1)] == row_of[first])]
        first = first[namish[first + 2]]
        if len(first):
            joined = _np_bool(pc.is_in(pc.take(flat, pa.array(first + 1)), value_set=_AND))
            kinds[first[joined]] = person_code
            kinds[first[joined] + 2] = person_code
        # the same word again in the note, once a name of that note holds it
        left = pos[((unknown | listed) & ~english) & (kinds[pos] < 0)]
        if not len(left):
            return
        named_rows = np.unique(row_of[match_idx[kinds[match_idx] == person_code]])
        left = left[np.isin(row_of[left], named_rows)]
        if not len(left):
            return
        person = match_idx[kinds[match_idx] == person_code]
        person = person[np.isin(row_of[person], np.unique(row_of[left]))]
        words = pc.utf8_split_whitespace(pc.take(flat, pa.array(person)))
        parent = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
        tokens = pc.replace_substring_regex(pc.list_flatten(words), r"(?:['’]s)?[,.;:!?)]*$", "")
        keys = _row_keys(row_of[person[parent]], tokens)
        words_left = pc.take(flat, pa.array(left))
        stems = pc.replace_substring_regex(words_left, r"['’]s$", "")
        again = _np_bool(pc.is_in(_row_keys(row_of[left], stems), value_set=keys))
        kinds[left[again]] = person_code
        # ("Asya's kid": the possessive stays after the placeholder)
        suffix[left[again]] = (pc.utf8_length(words_left).to_numpy(zero_copy_only=False)
                               - pc.utf8_length(stems).to_numpy(zero_copy_only=False))[again]

    def _classify_context(
        self,
        flat: pa.Array,
        match_idx: np.ndarray,
        cand: pa.Array,
        kinds: np.ndarray,
        suffix: np.ndarray,
        prefix: np.ndarray,
        context: _ContextHints,
    ) -> np.ndarray:
        """Accept the values of context rules and "X's mom"; return the mask of candidates claimed."""
        claimed = np.zeros(len(match_idx), dtype=bool)
        in_any = np.zeros(len(match_idx), dtype=bool)
        for name in _CONTEXTS:
            in_any |= context.triggered[name][context.rows]
        # Only candidates in a cell holding some context's trigger can follow a context (a pair's
        # value, whose context is known, or another candidate right after a context: "Name: Ms.
        # Taylor", where the title was marked first). The text before them is the plain piece (its last
        # 64 characters: every context is shorter — the longest, a phone word with 24 characters of
        # "number is", or "left a voicemail message for", run to about 45 —, and the end-anchored
        # searches then never read a long note twice); it must end in a space, a colon, "#", "(", "-",
        # … or a letter.
        maybe = np.flatnonzero(in_any)
        # (told by the last UTF-8 byte: any byte of a character beyond ASCII lets it through, and the
        # context searches below decide)
        ends = _CONTEXT_END_BYTE[_last_bytes(flat, match_idx[maybe] - 1)]
        ends |= context.pair[maybe] >= 0
        maybe = maybe[ends]
        prev_m = pc.utf8_slice_codeunits(pc.take(flat, pa.array(match_idx[maybe] - 1)), -64)
        if len(maybe):
            vals_m = pc.take(cand, pa.array(maybe))
            known = context.pair[maybe]
            rows = context.rows[maybe]
            for name in ("id", "address", "phone", "name"):
                free = ~claimed[maybe]
                code = _CONTEXTS.index(name)
                hit = free & (known == code)
                look = np.flatnonzero(free & (known < 0) & context.triggered[name][rows])
                if len(look):
                    hit[look] = _matches(pc.take(prev_m, pa.array(look)), _CONTEXT_BEFORE[name])
                if not hit.any():
                    continue
                where = np.flatnonzero(hit)
                vals = pc.take(vals_m, pa.array(where))
                ok, kind_codes, heads, tails = self._context_values(
                    name, vals, pc.take(prev_m, pa.array(where))
                )
                idx = maybe[where[ok]]
                claimed[idx] = True
                kinds[match_idx[idx]] = kind_codes[ok]
                prefix[match_idx[idx]] = heads[ok]
                suffix[match_idx[idx]] = tails[ok]
        # "Maria's mom", "Ximena’s dad": the name, with "'s mom" kept after the placeholder
        # (only in the cells where the "X's mom" pass found its trigger)
        rel = np.flatnonzero(~claimed & context.triggered["possessive_relation"][context.rows])
        rel = rel[_np_bool(pc.match_substring_regex(pc.take(cand, pa.array(rel)), "['’]s "))]
        rel = rel[_matches(pc.take(cand, pa.array(rel)), "^(?:" + tp.POSSESSIVE_RELATION + ")$")]
        if len(rel):
            vals = pc.take(cand, pa.array(rel)).to_pylist()
            for i, v in zip(rel.tolist(), vals, strict=True):
                stem = max(v.find("'s "), v.find("’s "))
                if v[:stem].lower() not in tp.NOT_A_NAME:
                    claimed[i] = True
                    kinds[match_idx[i]] = _KIND_CODE[PERSON]
                    suffix[match_idx[i]] = len(v) - stem
        return claimed

    def _context_values(
        self, context: str, vals: pa.Array, before: pa.Array
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For the values after a context: (accepted, kind code, characters kept before and after the
        placeholder)."""
        n = len(vals)
        codes = np.full(n, -1, dtype=np.int16)
        heads = np.zeros(n, dtype=np.int32)
        tails = np.zeros(n, dtype=np.int32)
        if context == "phone":
            digits = pc.utf8_length(pc.replace_substring_regex(vals, r"\D+", ""))
            digits = digits.to_numpy(zero_copy_only=False)
            shaped = _matches(vals, "^(?:" + tp.PHONE_VALUE + ")$")
            date = _np_bool(pc.match_substring_regex(vals, _DATE_SHAPE))
            ok = shaped & ~date & (digits >= 7) & (digits <= 15)
            codes[:] = _KIND_CODE[PHONE_NUMBER]
        elif context == "id":
            shaped = _np_bool(pc.match_substring_regex(vals, "^(?:" + tp.ID_VALUE + ")$"))
            alnum = pc.utf8_length(pc.replace_substring_regex(vals, r"[^A-Za-z0-9]+", "")).to_numpy(
                zero_copy_only=False
            )
            date = _np_bool(pc.match_substring_regex(vals, _DATE_SHAPE))
            ok = shaped & (alnum >= 5) & ~date
            codes[:] = _KIND_CODE[ID_NUMBER]
            codes[self._ids.contains(vals)] = _KIND_CODE[STUDENT_ID]
            for kind, pattern in reversed(tp.ID_KIND_CONTEXTS):
                named = _np_bool(pc.match_substring_regex(before, pattern + r"[^\n]{0,40}$"))
                codes[named] = _KIND_CODE[kind]
        elif context == "address":
            ok = _matches(vals, "^(?:" + tp.ADDRESS_VALUE + ")$")
            codes[:] = _KIND_CODE[ADDRESS]
        else:
            ok = np.zeros(n, dtype=bool)
            codes[:] = _KIND_CODE[PERSON]
            # "sent to Magasinsgatan 7": a street line, not a name (only a value with a digit can be one)
            street = _np_bool(pc.match_substring_regex(vals, r"\d"))
            if street.any():
                with_digit = np.flatnonzero(street)
                street[with_digit] = _matches(pc.take(vals, pa.array(with_digit)), _STREET_OR_PLACE)
            codes[street] = _KIND_CODE[ADDRESS]
            ok |= street
            # the character that ended the value stays
            ends_word = _np_bool(pc.match_substring_regex(vals, r"[ \t\n,;:!?)\]\"'”’.]$"))
            tails[street & ends_word] = 1
            # "my name is john": a given name in lower case counts; after "this is"/"I am" or a verb
            # ("this is made up", "i am tired") only a word that is no English word does
            strong_ctx = _matches(before, tp.STRONG_NAME_CONTEXT)
            kept_words, name_heads, name_tails = self._name_values(vals, strong_ctx)
            take = kept_words & ~street
            ok |= take
            heads[take] = name_heads[take]
            tails[take] = name_tails[take]
        return ok, codes, heads, tails

    def _structured_kinds(self, values: pa.Array) -> np.ndarray:
        """The kind code of each value that one of :data:`_VALIDATORS` takes (and its extra checks
        pass), else -1. Each validator only sees what no earlier one claimed."""
        out = np.full(len(values), -1, dtype=np.int16)
        todo = np.ones(len(values), dtype=bool)
        latin = not pc.any(pc.match_substring_regex(values, tp.NOT_LATIN)).as_py()
        for kind, pattern in _VALIDATORS:
            todo_idx = np.flatnonzero(todo)
            if not len(todo_idx):
                break
            pattern = tp.latin(pattern) if latin else pattern
            hit_idx = todo_idx[
                _np_bool(pc.match_substring_regex(pc.take(values, pa.array(todo_idx)), pattern))
            ]
            if not len(hit_idx):
                continue
            todo[hit_idx] = False
            keep = self._validate(kind, pc.take(values, pa.array(hit_idx)))
            if kind != US_SSN:
                out[hit_idx[keep]] = _KIND_CODE[_VALIDATED_AS.get(kind, kind)]
                continue
            # (SSA ranges: no 000 or 666 area, no 00 group, no 0000 serial; 9xx areas are ITINs)
            vals = pc.take(values, pa.array(hit_idx[keep]))
            itin = _np_bool(pc.match_substring_regex(vals, _ITIN))
            valid = _np_bool(pc.match_substring_regex(vals, f"^{_SSN_VALID}$"))
            targets = hit_idx[keep]
            out[targets[itin]] = _KIND_CODE[US_ITIN]
            out[targets[valid & ~itin]] = _KIND_CODE[US_SSN]
        return out

    def _name_values(self, vals: pa.Array, strong_ctx: np.ndarray) -> tuple[np.ndarray, ...]:
        """The words after a name context, all values at once: (a name is there, characters kept
        before it, characters kept after it).

        Leading relation words stay ("Mom Maria" → "Mom <PERSON>"); then words are taken while they
        are names: a title first ("Ms. Taylor" is replaced whole), a roster name after a name whatever
        it means in English ("Chanthy Her"), not a relation, pronoun or clause word, not a month alone
        ("May 5"; after a name it is a surname, "Mary-Kate May"), not an English word in lower case
        unless, after "my name is"/"Name:", it is a given name ("my name is john").
        """
        n = len(vals)
        stripped = pc.utf8_rtrim(vals, characters=" \t\n,;:!?)]\"'”’.")
        words = pc.split_pattern(stripped, " ")
        offsets = words.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
        count = np.diff(offsets)
        flat = words.values
        low = pc.utf8_lower(pc.utf8_rtrim(flat, characters="."))
        word_len = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
        not_name = _np_bool(pc.is_in(low, value_set=_NOT_A_NAME))
        title = _np_bool(pc.is_in(low, value_set=_TITLE_WORDS))
        token = _matches(flat, _NAME_TOKEN_RE2)
        roster = _np_bool(pc.is_in(flat, value_set=self._roster_tokens))
        calendar = _np_bool(pc.is_in(low, value_set=_CALENDAR_LOWER))
        lower = _matches(flat, r"^\p{Ll}")
        english = _np_bool(pc.is_in(low, value_set=_names.english_words_array()))
        given = _np_bool(pc.is_in(pc.utf8_title(low), value_set=_names.given_names_array()))
        parent = np.repeat(np.arange(n), count)
        lowercase_word = lower & english & ~(strong_ctx[parent] & given)
        width = int(count.max()) if n else 0
        # one column per word position (values have a few words)
        grid = np.full((n, width + 1), -1, dtype=np.int64)
        position = np.arange(len(flat)) - offsets[:-1][parent]
        grid[parent, position] = np.arange(len(flat))
        lead = np.zeros(n, dtype=np.int64)
        leading = np.ones(n, dtype=bool)
        for j in range(width):
            w = grid[:, j]
            leading &= (w >= 0) & (j < count - 1)
            leading &= not_name[w] & ~title[w]
            lead += leading
        kept = np.zeros(n, dtype=np.int64)
        going = np.ones(n, dtype=bool)
        for j in range(width):
            w = grid[:, j]
            here = going & (j >= lead) & (w >= 0)
            if not here.any():
                continue
            first_title = here & (kept == 0) & title[w] & (count > lead + 1)
            stop = here & ~first_title & ~token[w]
            roster_after = here & ~first_title & ~stop & (kept > 0) & roster[w]
            stop |= here & ~first_title & ~roster_after & (not_name[w] | (calendar[w] & (kept == 0)))
            stop |= here & ~first_title & ~roster_after & lowercase_word[w]
            kept += here & ~stop
            going &= ~(here & stop) & ((j < lead) | (w >= 0))
        # character counts: words are joined by single spaces
        cum = np.concatenate([[0], np.cumsum(word_len)])
        first = offsets[:-1]
        lead_chars = cum[first + lead] - cum[first] + lead
        taken = lead + kept
        taken_chars = cum[first + taken] - cum[first] + np.maximum(taken - 1, 0)
        total = pc.utf8_length(vals).to_numpy(zero_copy_only=False).astype(np.int64)
        ok = kept > 0
        return ok, lead_chars.astype(np.int32), (total - taken_chars).astype(np.int32)

    def _validate(self, kind: str, values: pa.Array) -> np.ndarray:
        """Extra checks a pattern cannot express; returns a keep-mask over ``values``."""
        if kind == EMAIL_ADDRESS:
            if len(self._tlds) == 0:  # no suffix list available: fail closed, keep every address
                return np.ones(len(values), dtype=bool)
            tld = pc.utf8_lower(pc.extract_regex(values, r"\.(?P<tld>[^.]+)$").field("tld"))
            # an IDN top-level domain written in punycode ("xn--p1ai") is not in the list as such
            puny = _np_bool(pc.starts_with(tld, "xn--"))
            return _np_bool(pc.is_in(tld, value_set=self._tlds)) | puny
        if kind == IBAN_CODE:
            return np.array([_iban_ok(v) for v in values.to_pylist()], dtype=bool)
        if kind == CREDIT_CARD:
            digits = pc.replace_substring_regex(values, r"\D+", "").to_pylist()
            return np.array([_luhn_ok(d) for d in digits], dtype=bool)
        if kind == "LOWER_LIST":
            return _mostly_given_names(values)
        if kind == "GROUPED_PHONE":
            return np.array([_grouped_phone_ok(v) for v in values.to_pylist()], dtype=bool)
        if kind == PHONE_NUMBER:
            digits = pc.utf8_length(pc.replace_substring_regex(values, r"\D+", ""))
            n = digits.to_numpy(zero_copy_only=False)
            return (n >= 8) & (n <= 15) & ~_np_bool(pc.match_substring_regex(values, _DATE_SHAPE))
        return np.ones(len(values), dtype=bool)

    # --- outputs ----------------------------------------------------------------------------------

    @staticmethod
    def _rebuild(
        cells: pa.Array,
        parts: pa.Array,
        flat: pa.Array,
        kinds: np.ndarray,
        suffix: np.ndarray,
        prefix: np.ndarray,
        accepted: np.ndarray,
        merged: np.ndarray,
    ) -> pa.Array:
        if len(accepted) == 0:
            return cells
        repl = pc.take(_PLACEHOLDERS, pa.array(kinds[accepted].astype(np.int32)))
        keep_after, keep_before = suffix[accepted], prefix[accepted]
        if keep_after.any() or keep_before.any():
            # (few pieces: a possessive or a context rule's extra words)
            where = np.flatnonzero((keep_after > 0) | (keep_before > 0))
            pieces = pc.take(flat, pa.array(accepted[where])).cast(pa.string())
            texts = pc.binary_join_element_wise(
                _slice_each(pieces, keep_before[where], head=True),
                pc.take(repl, pa.array(where)),
                _slice_each(pieces, keep_after[where], head=False),
                "",
            )
            changed = np.zeros(len(repl), dtype=bool)
            changed[where] = True
            repl = pc.replace_with_mask(repl, pa.array(changed), texts.cast(repl.type))
        positions = accepted
        values = repl
        if len(merged):
            # the merged person's placeholder and the space before it both become empty
            drop = np.concatenate([merged - 1, merged])
            positions = np.concatenate([accepted, drop])
            values = pa.concat_arrays([repl.cast(pa.string()), pa.array([""] * len(drop), pa.string())])
            order = np.argsort(positions, kind="stable")
            # a merged piece is also in `accepted`; keep the empty string (the later entry)
            positions = positions[order]
            values = pc.take(values, pa.array(order))
            last = np.ones(len(positions), dtype=bool)
            last[:-1] = positions[1:] != positions[:-1]
            positions = positions[last]
            values = values.filter(pa.array(last))
        mask = np.zeros(len(flat), dtype=bool)
        mask[positions] = True
        new_flat = pc.replace_with_mask(flat, pa.array(mask), values.cast(flat.type))
        rebuilt = type(parts).from_arrays(parts.offsets, new_flat, mask=parts.is_null())
        return pc.binary_join(rebuilt, pa.scalar("", flat.type)).cast(cells.type)

    @staticmethod
    def _spans(
        flat: pa.Array,
        offsets: np.ndarray,
        row_of: np.ndarray,
        kinds: np.ndarray,
        suffix: np.ndarray,
        prefix: np.ndarray,
        accepted: np.ndarray,
        merged: np.ndarray,
    ) -> tuple[np.ndarray, ...]:
        lengths = pc.utf8_length(flat).to_numpy(zero_copy_only=False).astype(np.int64)
        cum = np.concatenate([[0], np.cumsum(lengths)])
        starts_all = cum[:-1] - cum[offsets[:-1]][row_of]
        ends_all = starts_all + lengths - suffix
        starts_all = starts_all + prefix
        keep = ~np.isin(accepted, merged)
        heads = accepted[keep]
        # a merged chain's end is the end of its last member
        group = np.cumsum(keep) - 1
        chain_end = np.zeros(len(heads), dtype=np.int64)
        np.maximum.at(chain_end, group, ends_all[accepted])
        return (row_of[heads], kinds[heads].astype(np.int64), starts_all[heads], chain_end)


def _slice_each(pieces: pa.Array, counts: np.ndarray, *, head: bool) -> pa.Array:
    """Each piece's first (``head``) or last ``counts[i]`` characters ("" for 0), in a few kernel calls:
    the counts take few distinct values (the words a context rule keeps, a possessive's "'s")."""
    out = pa.array([""] * len(pieces), pa.string())
    for count in np.unique(counts[counts > 0]).tolist():
        sel = counts == count
        part = pieces.filter(pa.array(sel))
        cut = pc.utf8_slice_codeunits(part, 0, count) if head else pc.utf8_slice_codeunits(part, -count)
        out = pc.replace_with_mask(out, pa.array(sel), cut)
    return out


def _not_people(
    flat: pa.Array,
    match_idx: np.ndarray,
    distinct: _Distinct,
    free: np.ndarray,
    kinds: np.ndarray,
    row_of: np.ndarray,
    word_names: np.ndarray,
) -> None:
    """Undo names that name things (in place; ``free`` marks the candidates no context rule claimed):

    - a list of names before an organization word or after "The": "The Jones, Smith and Davis
      Orchestra", "Barnett, Melton and Garcia LLP" (a company named after people);
    - a word after a place's first word: "South Africa", "Los Angeles", "New Zealand";
    - a given name that is also a word, before a pronoun: "lost, Can I request" (``word_names``).

    (Decided on the candidates' distinct values first: only the few names beside such a word have
    their separators read.)
    """
    person_code = _KIND_CODE[PERSON]
    n = len(kinds)
    pos = match_idx[free & (kinds[match_idx] == person_code)]
    if not len(pos):
        return

    def piece_mask(words: pa.Array) -> np.ndarray:
        at = np.zeros(n, dtype=bool)
        at[match_idx[distinct.mask(lambda v: pc.is_in(v, value_set=words))]] = True
        return at

    def sep_is(at: np.ndarray, pattern: str) -> np.ndarray:
        return _matches(pc.take(flat, pa.array(at)), pattern) if len(at) else np.zeros(0, dtype=bool)

    nxt, prv = np.minimum(pos + 2, n - 1), np.maximum(pos - 2, 0)
    same_next = (pos + 2 < n) & (row_of[nxt] == row_of[pos])
    same_prev = (pos >= 2) & (row_of[prv] == row_of[pos])
    org = np.zeros(n, dtype=bool)
    organization, the = piece_mask(_ORGANIZATIONS), piece_mask(pa.array(["The"], pa.string()))
    heads, pronoun = piece_mask(_PLACE_HEADS), piece_mask(pa.array(["I", "You", "We"], pa.string()))
    # seeds: a name before an organization word, a list's first name after "The"
    sel = np.flatnonzero(same_next & organization[nxt])
    sel = sel[sep_is(pos[sel] + 1, r"^ $")]
    org[pos[sel]] = org[nxt[sel]] = True
    sel = np.flatnonzero(same_prev & the[prv])
    sel = sel[sep_is(pos[sel] - 1, r"^ $") & sep_is(np.minimum(pos[sel] + 1, n - 1), _LIST_SEP)]
    org[pos[sel]] = True
    if org.any():  # along the list, both ways (only in the cells that hold a seed)
        rows = np.isin(row_of[pos], row_of[np.flatnonzero(org)])
        lp, ln, lx, lv = pos[rows], same_next[rows], nxt[rows], prv[rows]
        list_next = ln & sep_is(np.minimum(lp + 1, n - 1), _LIST_SEP)
        list_prev = same_prev[rows] & sep_is(lp - 1, _LIST_SEP)
        for _ in range(4):
            grow = ~org[lp] & ((list_next & org[lx]) | (list_prev & org[lv]))
            if not grow.any():
                break
            org[lp[grow]] = True
    # "South Africa": the word before is a place's first word, one space between
    sel = np.flatnonzero(same_prev & heads[prv])
    sel = sel[sep_is(pos[sel] - 1, r"^ $")]
    org[pos[sel]] = org[prv[sel]] = True
    # "Can I", "Will you"
    sel = np.flatnonzero(np.isin(pos, word_names))
    if len(sel):
        after = pc.utf8_slice_codeunits(pc.take(flat, pa.array(np.minimum(pos[sel] + 1, n - 1))), 0, 6)
        word = _matches(after, r"^ (?:you|we|he|she|they|it)\b")
        word |= same_next[sel] & pronoun[nxt[sel]] & _matches(after, r"^ $")
        org[pos[sel[word]]] = True
    undo = np.flatnonzero(org)
    kinds[undo[kinds[undo] == person_code]] = -1


def _mostly_given_names(lists: pa.Array) -> np.ndarray:
    """Per lower-case list: at least three words, and two in three, are listed given names that are
    no English words ("silvana, adam, christopher, chad and caleb"; not "math, science, art")."""
    words = pc.split_pattern_regex(lists, r",? (?:and |& )?|, ")
    flat = words.values
    name = _np_bool(pc.is_in(pc.utf8_title(flat), value_set=_names.given_names_array()))
    name &= ~_np_bool(pc.is_in(flat, value_set=_names.english_words_array()))
    offsets = words.offsets.to_numpy(zero_copy_only=False)
    total = np.diff(offsets)
    hits = np.add.reduceat(name.astype(np.int64), offsets[:-1]) if len(name) else np.zeros_like(total)
    return (hits >= 3) & (3 * hits >= 2 * total)


# the last bytes of a plain piece before a context's value: white space, ":#(-=.,!" or a letter
_CONTEXT_END_BYTE = np.zeros(256, dtype=bool)
_CONTEXT_END_BYTE[[ord(c) for c in " \t\n\r\f:#(-=.,!"]] = True
_CONTEXT_END_BYTE[ord("A") : ord("Z") + 1] = _CONTEXT_END_BYTE[ord("a") : ord("z") + 1] = True
_CONTEXT_END_BYTE[0x80:] = True


def _last_bytes(pieces: pa.Array, idx: np.ndarray) -> np.ndarray:
    """The last UTF-8 byte of each piece ``idx`` of a (large) string array (0 for an empty one)."""
    offsets_buf, data_buf = pieces.buffers()[1:3]
    width = np.int64 if pa.types.is_large_string(pieces.type) else np.int32
    off = np.frombuffer(offsets_buf, dtype=width)[pieces.offset :]
    if data_buf is None or not len(idx):
        return np.zeros(len(idx), dtype=np.uint8)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    start, end = off[idx], off[idx + 1]
    return np.where(end > start, data[np.maximum(end - 1, 0)], 0).astype(np.uint8)


def _row_keys(rows: np.ndarray, words: pa.Array) -> pa.Array:
    """"row<US>word" strings: a word keyed by its cell, for look-ups within a note."""
    rows_text = pa.array(rows.astype(np.int64)).cast(pa.string()).cast(words.type)
    return pc.binary_join_element_wise(rows_text, words, pa.scalar("\x1f", words.type))


def _cell_first(row_of: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The index of the first piece of each piece's cell."""
    first = np.flatnonzero(np.r_[True, row_of[1:] != row_of[:-1]])
    return first[np.searchsorted(first, at, side="right") - 1]


# set while the pieces of a batch whose cells are all Latin are classified
_ALL_LATIN: contextvars.ContextVar[bool] = contextvars.ContextVar("all_latin", default=False)


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    """``match_substring_regex`` as a numpy mask, with the Latin pattern when every value is Latin."""
    if _ALL_LATIN.get() or not pc.any(pc.match_substring_regex(values, tp.NOT_LATIN)).as_py():
        pattern = tp.latin(pattern)
    return _np_bool(pc.match_substring_regex(values, pattern))


def _np_bool(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A pyarrow boolean result as a numpy bool array (nulls → False)."""
    if arr.null_count:
        arr = pc.fill_null(arr, False)
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


def _text_type(column: pa.Array | pa.ChunkedArray) -> pa.DataType:
    t = column.type
    return t if (pa.types.is_string(t) or pa.types.is_large_string(t)) else pa.string()


def _batches(column: pa.Array | pa.ChunkedArray) -> Iterable[pa.Array]:
    """The column as string arrays of at most _BATCH_ROWS rows and about _BATCH_BYTES of text.

    Small chunks are joined (fewer, larger batches amortize per-call costs: pattern compilation, look-up
    tables); long notes make smaller batches (the tagged copy of a batch must stay far below 2 GiB).
    """
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    n = len(column)
    if n == 0:
        return
    text_bytes = sum(c.nbytes for c in column.chunks)
    rows = int(max(1024, min(_BATCH_ROWS, _BATCH_BYTES * n // max(text_bytes, 1))))
    for start in range(0, n, rows):
        part = column.slice(start, rows)
        chunk = part.combine_chunks() if part.num_chunks != 1 else part.chunk(0)
        if pa.types.is_null(chunk.type):
            chunk = pa.array([None] * len(chunk), pa.string())
        elif not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            chunk = pc.cast(chunk, pa.string())
        yield chunk


class _Distinct:
    """The distinct values of an array and, per element, which one it is: value-only checks run once
    per distinct value."""

    def __init__(self, values: pa.Array) -> None:
        encoded = pc.dictionary_encode(values)
        self.values: pa.Array = encoded.dictionary
        self.index: np.ndarray = encoded.indices.to_numpy(zero_copy_only=False)

    def mask(self, check: Callable[[pa.Array], Any]) -> np.ndarray:
        """``check`` (a pyarrow boolean function) on each distinct value, spread back to every element."""
        return _np_bool(check(self.values))[self.index]


@dataclass(frozen=True)
class _ContextHints:
    """What the marking passes tell the classifier about contexts, per candidate."""

    pair: np.ndarray  # index into _CONTEXTS of the context before a pair's value, else -1
    triggered: dict[str, np.ndarray]  # per pass: the rows that hold its trigger
    rows: np.ndarray  # the row of each candidate


def _split_marked(tagged: pa.Array, tags: _Tags) -> tuple[pa.ListArray, np.ndarray]:
    """The marked text split into alternating plain text and candidates, every mark dropped (see
    :class:`_Tags`), and, per candidate in order, the index in _CONTEXTS of a pair's context (-1 for
    the rest).

    Done on the text's code units at once (its UTF-8 bytes when the tags are one-byte characters, the
    usual case): pieces are cut at each ``tag`` outside blocks and at the outermost blocks' ``open``,
    ``sep`` and ``close`` (a pair's context stays in the plain text before its value); marks inside a
    block are a later pass's finding inside an earlier one's and are dropped.
    """
    chars = (tags.tag, tags.open, tags.pair, tags.close, *tags.seps)
    arr = tagged.cast(pa.large_string())
    n_rows = len(arr)
    validity = arr.buffers()[0]
    valid = np.ones(n_rows, dtype=bool) if validity is None else _np_bool(arr.is_valid())
    one_byte = max(map(ord, chars)) < 0x80
    if one_byte:
        _, offsets_buf, data_buf = arr.buffers()
        row_off = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n_rows + 1]
        base, end = int(row_off[0]), int(row_off[-1])
        units = (
            np.frombuffer(data_buf, dtype=np.uint8)[base:end]
            if data_buf is not None
            else np.zeros(0, np.uint8)
        )
        row_off = row_off - base
        code = np.zeros(256, dtype=np.int8)  # 1 tag, 2 open, 3 pair, 4 close, 5.. separators
        for i, ch in enumerate(chars):
            code[ord(ch)] = i + 1
        lowest, highest = min(map(ord, chars)), max(map(ord, chars))
        if highest - lowest + 1 == len(chars):  # (the usual case: one range, compared without a look-up)
            is_mark = (units - np.uint8(lowest)) <= np.uint8(highest - lowest)
        else:
            is_mark = code[units] > 0
        marks = np.flatnonzero(is_mark)
        kind = code[units[marks]]
    else:  # (text that holds control characters: private-use tags, code points handled in Python)
        strings = [v or "" for v in arr.to_pylist()]
        units = np.frombuffer("".join(strings).encode("utf-32-le"), dtype=np.uint32)
        row_off = np.concatenate([[0], np.cumsum([len(v) for v in strings])]).astype(np.int64)
        kind_all = np.zeros(len(units), dtype=np.int8)
        for i, ch in enumerate(chars):
            kind_all[units == ord(ch)] = i + 1
        is_mark = kind_all > 0
        marks = np.flatnonzero(is_mark)
        kind = kind_all[marks]
    first_mark = np.searchsorted(marks, row_off)
    mark_row = np.repeat(np.arange(n_rows), np.diff(first_mark))
    new_pos = marks - np.arange(len(marks))  # positions in the text without the marks
    # a deferred pair (see _DEFERRED_PASSES) has its separator right after its pair mark: the separator
    # stands, in the text without marks, where the value starts
    for sep_code in _DEFERRED_CODES:
        at = np.flatnonzero(kind == sep_code)
        at = at[(at > 0) & (marks[at] == marks[np.maximum(at - 1, 0)] + 1)]
        at = at[kind[at - 1] == 3]
        if not len(at):
            continue
        zero, ten = units.dtype.type(48), units.dtype.type(10)
        start = np.zeros(len(at), dtype=np.int64)
        todo = np.arange(len(at))
        for width in (24, 160):  # (most contexts are short: "Phone: ", "call me at ")
            window = np.minimum(marks[at[todo]][:, None] + np.arange(1, width + 1), len(units) - 1)
            is_digit = (units[window] - zero) < ten
            found = is_digit.any(axis=1)
            start[todo[found]] = window[found, np.argmax(is_digit[found], axis=1)]
            todo = todo[~found]
        for ch in "(+":  # (marks — the main pass's tags — may stand between)
            before = start - 1
            for _ in range(2):
                before = before - is_mark[before]
            start = np.where(units[before] == ord(ch), before, start)
        new_pos[at] = start - np.searchsorted(marks, start)
    # a split pass's context (see _SPLIT_PASSES): its value pass doubled the separator of a context
    # with a value; the first of the two is no mark, and a separator left single (a context with no
    # value after it) is none, nor its pair mark
    for code in _SPLIT_CODES:
        at = np.flatnonzero(kind == code)
        if not len(at):
            continue
        pos = marks[at]
        first = np.r_[pos[1:] == pos[:-1] + 1, False]
        second = np.r_[False, first[:-1]]
        kind[at[first]] = 0
        alone = at[~first & ~second]
        kind[alone] = 0
        # (the last pair mark before it: only the main pass's tags can stand in a context)
        pairs = np.flatnonzero(kind == 3)
        kind[pairs[np.searchsorted(pairs, alone) - 1]] = 0
    # nesting: a block opens with open or pair and ends with close
    opens = (kind == 2) | (kind == 3)
    step = np.where(opens, 1, np.where(kind == 4, -1, 0))
    depth_after = np.cumsum(step)
    depth_before = depth_after - step
    cut = ((kind == 1) | (kind == 2)) & (depth_before == 0)
    cut |= (kind == 4) & (depth_after == 0)
    cut |= (kind >= 5) & (depth_before == 1)
    kept = units[~is_mark]
    new_row_off = row_off - first_mark
    cuts = new_pos[cut]
    cut_kind = (kind[cut] - 5).astype(np.int8)  # a pair's kind of context for its separator
    cut_row = mark_row[cut]
    if not one_byte:  # back to UTF-8: offsets in bytes
        width = 1 + (kept >= 0x80) + (kept >= 0x800) + (kept >= 0x10000)
        byte_at = np.concatenate([[0], np.cumsum(width)]).astype(np.int64)
        cuts, new_row_off = byte_at[cuts], byte_at[new_row_off]
        kept = np.frombuffer(kept.astype(np.uint32).tobytes().decode("utf-32-le").encode("utf-8"), np.uint8)
    # piece offsets: each row's start, then its cuts; each row has (its cuts + 1) pieces, a null none
    cuts_per_row = np.bincount(cut_row, minlength=n_rows)
    per_row = cuts_per_row + 1
    per_row[~valid] = 0
    list_off = np.concatenate([[0], np.cumsum(per_row)])
    piece_start = np.repeat(new_row_off[:-1], per_row)
    # the cuts, in order, start the second, third, … piece of their row
    rank = np.arange(len(cuts)) - np.concatenate([[0], np.cumsum(cuts_per_row)])[cut_row]
    piece_start[list_off[:-1][cut_row] + rank + 1] = cuts
    piece_off = np.concatenate([piece_start, [new_row_off[-1]]]).astype(np.int64)
    flat = pa.LargeStringArray.from_buffers(
        len(piece_start), pa.py_buffer(piece_off), pa.py_buffer(np.ascontiguousarray(kept))
    )
    mask = None if validity is None else pa.array(~valid)
    parts = pa.ListArray.from_arrays(pa.array(list_off.astype(np.int32)), flat, mask=mask)
    # each candidate is opened by a cut at an even place in its row: a tag, an open, or a separator
    openers = cut_kind[rank % 2 == 0]
    return parts, np.where(openers >= 0, openers, -1).astype(np.int8)


def _byte_facts(cells: pa.Array) -> tuple[np.ndarray, bool]:
    """Per cell, whether it holds a character outside the Latin blocks (``tp.NOT_LATIN``), and whether
    any cell holds a control character U+0001–U+0008 (the usual tags) — read off the UTF-8 bytes in
    one numpy pass (two regex searches over the whole text cost several times more)."""
    n = len(cells)
    offsets_buf, data_buf = cells.buffers()[1:3]
    if data_buf is None or n == 0:
        return np.zeros(n, dtype=bool), False
    width = np.int64 if pa.types.is_large_string(cells.type) else np.int32
    row_off = np.frombuffer(offsets_buf, dtype=width)[cells.offset : cells.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)[row_off[0] : row_off[-1]]
    row_off -= row_off[0]
    low_controls = bool(np.count_nonzero((data - np.uint8(1)) < np.uint8(8)))
    # lead bytes of U+0240 and above (U+0000–023F are one byte or leads C0–C8; 0x80–0xBF continue)
    lead = np.flatnonzero(data >= 0xC9)
    if not len(lead):
        return np.zeros(n, dtype=bool), low_controls
    b0 = data[lead]
    b1 = data[np.minimum(lead + 1, len(data) - 1)]
    latin = (b0 == 0xC9) & (b1 < 0x90)  # U+0240–024F
    latin |= (b0 == 0xE1) & (b1 >= 0xB8) & (b1 <= 0xBB)  # U+1E00–1EFF
    latin |= (b0 == 0xE2) & (b1 <= 0x81)  # U+2000–207F, of which …
    # (… U+2070–207F is not: E2 81 B0–BF)
    b2 = data[np.minimum(lead + 2, len(data) - 1)]
    latin &= ~((b0 == 0xE2) & (b1 == 0x81) & (b2 >= 0xB0))
    exotic = np.zeros(n, dtype=bool)
    exotic[np.searchsorted(row_off, lead[~latin], side="right") - 1] = True
    return exotic, low_controls


def _pick_tags(cells: pa.Array, n: int, low_controls: bool = True) -> list[str]:
    """``n`` characters that occur nowhere in ``cells`` (to tag and mark candidates with);
    ``low_controls``: whether some cell may hold one of U+0001–U+0008 (else they are taken at once)."""
    # (usually none of the first few control characters is there: one scan tells)
    if n <= 8 and not low_controls:
        return _TAG_CHOICES[:n]
    if not pc.any(pc.match_substring_regex(cells, "[" + "".join(map(_esc, _TAG_CHOICES[:n])) + "]")).as_py():
        return _TAG_CHOICES[:n]
    tags: list[str] = []
    for tag in _TAG_CHOICES:
        if not pc.any(pc.match_substring(cells, tag)).as_py():
            tags.append(tag)
            if len(tags) == n:
                return tags
    from deid.errors import InputError  # pragma: no cover - needs 6,400 distinct rare characters

    raise InputError("A text column holds every private-use Unicode character; it cannot be scanned.")


_ANY_TRIGGER = "|".join(f"(?:{t})" for _, t, _, _ in _PASSES)
# passes whose trigger few notes hold (each searched only where this union of them is found)
_RARE_PASSES = ("url", "dob", "street", "address", "possessive_relation", "lower_list")
_RARE_TRIGGER = "|".join(f"(?:{t})" for name, t, _, _ in _PASSES if name in _RARE_PASSES)


def _mark(cells: pa.Array, exotic: np.ndarray, tags: _Tags) -> tuple[pa.Array, dict[str, np.ndarray]]:
    """Run the expensive detectors (:data:`_PASSES`), each only on the cells that hold its trigger, and
    mark what they find as blocks for the main pass. Also returns, per pass, the rows that hold its
    trigger (no other row can hold its context).

    One search for any trigger first: the cells without one (about half of them) are left out of the
    rest."""
    n = len(cells)
    latin = not exotic.any()
    hit = _np_bool(pc.match_substring_regex(cells, tp.latin(_ANY_TRIGGER) if latin else _ANY_TRIGGER))
    rows = np.flatnonzero(hit)
    text = pc.take(cells, pa.array(rows))
    sub_exotic = exotic[rows]
    triggered: dict[str, np.ndarray] = {}
    # the rarer triggers are looked for together first, then each only in the cells that hold one
    rare = np.zeros(len(rows), dtype=bool)
    if len(rows):
        rare = _np_bool(pc.match_substring_regex(text, tp.latin(_RARE_TRIGGER) if latin else _RARE_TRIGGER))
    for name, trigger, context, pattern in _PASSES:
        mask = np.zeros(n, dtype=bool)
        triggered[name] = mask
        if not len(rows):
            continue
        if name in _SPLIT_PASSES:
            sep = tags.seps[_CONTEXTS.index(name)]
            everywhere = np.ones(len(rows), dtype=bool)
            before = pc.binary_length(text).to_numpy(zero_copy_only=False)
            text = _replace_rows(text, everywhere, sub_exotic, (tp.latin(context), context),
                                 rf"{tags.pair}\0{sep}")  # fmt: skip
            # (the cells the pass marked are the ones it made longer: no search for the separator)
            sub_mask = pc.binary_length(text).to_numpy(zero_copy_only=False) != before
            mask[rows] = sub_mask
            if sub_mask.any():
                value = _esc(sep) + "(?:" + pattern + ")"
                rewrite = rf"{sep}\0{tags.close}"
                text = _replace_rows(text, sub_mask, sub_exotic, (tp.latin(value), value), rewrite)
            continue
        trigger = tp.latin(trigger) if latin else trigger
        if name in _RARE_PASSES:
            sub_mask = np.zeros(len(rows), dtype=bool)
            where = np.flatnonzero(rare)
            if len(where):
                sub_mask[where] = _np_bool(pc.match_substring_regex(pc.take(text, pa.array(where)), trigger))
        elif name == "email":  # (a literal: a byte search, faster than any regex)
            sub_mask = _np_bool(pc.match_substring(text, "@"))
        elif name == "title":
            # (its pattern starts with its trigger, and no context look-up needs its rows: searched
            # whole, without a search for the trigger first)
            sub_mask = np.ones(len(rows), dtype=bool)
        else:
            sub_mask = _np_bool(pc.match_substring_regex(text, trigger))
        mask[rows] = sub_mask
        if not sub_mask.any():
            continue
        sep = tags.seps[_CONTEXTS.index(name)] if context is not None else ""
        patterns, rewrite = _pass_pattern(context, pattern, tags, sep, name in _DEFERRED_PASSES)
        text = _replace_rows(text, sub_mask, sub_exotic, patterns, rewrite)
    if not len(rows):
        return cells, triggered
    return pc.replace_with_mask(cells, pa.array(hit), text.cast(cells.type)), triggered


def _replace_rows(
    text: pa.Array,
    rows: np.ndarray,
    exotic: np.ndarray,
    patterns: tuple[str, str],
    rewrite: str,
) -> pa.Array:
    """``replace_substring_regex`` on the selected rows: with the first (Latin, see :func:`tp.latin`)
    pattern where the cell is all Latin, with the second (full) one where it is not."""
    for where, pat in ((rows & ~exotic, patterns[0]), (rows & exotic, patterns[1])):
        if not where.any():
            continue
        whole = bool(where.all())
        sub = text if whole else pc.take(text, pa.array(np.flatnonzero(where)))
        sub = pc.replace_substring_regex(sub, pat, rewrite)
        text = sub if whole else pc.replace_with_mask(text, pa.array(where), sub)
    return text


# --- presidio, fully offline ---------------------------------------------------------------------

_ANALYZER_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_ipv6_probe() -> Iterator[None]:
    """Import what pulls in urllib3 (presidio, tldextract, spaCy: through requests) without its probe.

    When imported, urllib3 binds a socket to ``::1`` to learn whether IPv6 works. Nothing leaves the
    machine, but PathShare opens no sockets at all, so during the import the probe is told Python has
    no IPv6; urllib3 is never used to connect anywhere, so what it concludes does not matter.
    """
    if "urllib3.util.connection" in sys.modules:
        yield
        return
    saved = socket.has_ipv6
    socket.has_ipv6 = False
    try:
        with contextlib.suppress(ImportError):
            import urllib3.util.connection  # noqa: F401 - imported here so the probe finds no IPv6
    finally:
        socket.has_ipv6 = saved
    yield


@functools.lru_cache(maxsize=1)
def _offline_tldextract() -> Any:
    with _no_ipv6_probe():
        import tldextract

    # No suffix-list URLs and no cache directory: tldextract uses the snapshot bundled in its wheel.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_ENGLISH_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm", "en_core_web_trf")


def installed_ner_model() -> str | None:
    """The name of an installed spaCy English pipeline with NER, or None (nothing is downloaded)."""
    with _no_ipv6_probe():
        import spacy.util

    return next((m for m in _ENGLISH_MODELS if spacy.util.is_package(m)), None)


def presidio_analyzer(ner_model: str | None = None) -> AnalyzerEngine:
    """Presidio's AnalyzerEngine with its pattern recognizers, built without touching the network.

    By default the NLP engine is presidio's no-op engine (no spaCy model is loaded or downloaded), so
    there is no NER: PERSON comes from the roster recognizer instead. ``ner_model`` — the name of an
    *installed* spaCy pipeline (see :func:`installed_ner_model`) or a path to one — adds presidio's
    spaCy NER (PERSON, LOCATION, …); it is loaded from disk, never fetched. The e-mail recognizer's
    tldextract check uses the suffix list bundled with tldextract. Built once per model and cached.
    """
    with _ANALYZER_LOCK:
        return _build_presidio(ner_model)


@functools.lru_cache(maxsize=4)
def _build_presidio(ner_model: str | None) -> AnalyzerEngine:
    with _no_ipv6_probe():
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpEngine, NoOpNlpEngine, SpacyNlpEngine
        from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer, validating domains against the bundled suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return _offline_tldextract()(pattern_text).fqdn != ""

    nlp_engine: NlpEngine
    if ner_model is None:
        nlp_engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "no_op"}])
    else:
        from pathlib import Path

        import spacy
        import spacy.util

        if not (spacy.util.is_package(ner_model) or Path(ner_model).is_dir()):
            from deid.errors import InputError

            raise InputError(
                f'The spaCy model "{ner_model}" is not installed; PathShare never downloads one.'
            )
        nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": ner_model}])
        nlp_engine.nlp = {"en": spacy.load(ner_model)}  # loaded here, from disk: load() may download
    if not nlp_engine.is_loaded():
        nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(nlp_engine=nlp_engine, languages=["en"])
    if ner_model is not None:
        registry.add_nlp_recognizer(nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    registry.add_recognizer(OfflineEmailRecognizer())
    with warnings.catch_warnings():
        # presidio warns that context words cannot come from a no-op engine: known, intended.
        warnings.simplefilter("ignore", UserWarning)
        return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
