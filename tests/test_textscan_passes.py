"""How the scanner stays fast: the expensive detectors run as separate passes on the cells that hold
their trigger, and Latin text is searched with patterns cut down to the Latin blocks. Both must find
exactly what the full patterns find."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import deid._textpatterns as tp
import deid._textscan as ts
from deid import TextScanner

# Latin text of every sort the detectors look at (accents, Vietnamese, curly quotes, dashes)
_LATIN = [
    "Spoke with Maria at 12 Main St, Springfield, IL 62704 about her grades.",
    "Call me at 555-0142 or (415)555-0142x0135; e-mail maría.müller@bücher.de.",
    "Mom (Nguyễn Thị Hằng) called; DOB: March 14th, 2009. Ms. Đặng will follow up.",
    "Referred to Coach Rivera. Lives at 221B Baker Street, London. PO Box 1234.",
    "Driver’s license number is D1234567; passport no. X12345678; acct #12345678901.",
    "left message for ximena — “Ximena’s mom” asked about Rua das Flores 25, Lisboa.",
    "Sent to Magasinsgatan 7, 41118 Göteborg. Corner of Elm and 5th Ave. Apt. 026",
    "the Hope scholarship, Grace period, Will follow up May 5; Lincoln High; ÅÆØ þ ß ÿ Ÿ ẞ",
]


@pytest.mark.parametrize(
    "pattern",
    [p for _, _, _, p in ts._PASSES]
    + [t for _, t, _, _ in ts._PASSES]
    + [p for _, p in ts._PLAIN_CANDIDATES]
    + [p for _, p in ts._VALIDATORS]
    + list(ts._CONTEXT_BEFORE.values()),
)
def test_latin_patterns_find_what_the_full_ones_find_in_latin_text(pattern):
    cells = pa.array(_LATIN)
    assert not pc.any(pc.match_substring_regex(cells, tp.NOT_LATIN)).as_py()
    full = pc.replace_substring_regex(cells, pattern, "[\\0]")
    cut = pc.replace_substring_regex(cells, tp.latin(pattern), "[\\0]")
    assert cut.equals(full)
    assert tp.latin(pattern) != pattern or "\\p{" not in pattern


def test_latin_classes_are_the_unicode_categories_within_the_blocks():
    # \p{Lu} cut down holds A, É, Đ, Ẹ and not a, é, ß, digits or Cyrillic
    upper = "[" + tp._latin_class("Lu") + "]"
    found = pc.replace_substring_regex(pa.array(["AaÉéĐđẸẹß1Д"]), upper, "#").to_pylist()[0]
    assert found == "#a#é#đ#ẹß1Д"


def test_a_batch_mixing_latin_and_other_scripts_finds_the_same_as_cell_by_cell():
    scanner = TextScanner(["Мария Иванова", "Maria Lopez"], ["0012345678"])
    cells = [
        "Письмо от иван@пример.рф, spoke with Мария about 0012345678",
        "Spoke with Maria at 12 Main St, Springfield, IL 62704, phone (415) 555-0142",
        "emoji 😀 and Maria Lopez’s mom, call 415.555.0142x459",
        "plain text, nothing to see",
    ]
    together = scanner.redact(pa.array(cells))[0].to_pylist()
    alone = [scanner.redact(pa.array([c]))[0].to_pylist()[0] for c in cells]
    assert together == alone
    assert "Мария" not in together[0] and "иван@" not in together[0] and "0012345678" not in together[0]
    assert "Maria" not in together[1] and "Main St" not in together[1] and "555-0142" not in together[1]
    assert "Maria" not in together[2] and "555.0142" not in together[2]
    assert together[3] == cells[3]


def test_cells_holding_the_tag_characters_are_scanned_all_the_same():
    # control characters the scanner would use as tags push it onto private-use tags
    scanner = TextScanner(["Maria Lopez"])
    cells = ["\x01\x02 spoke with Maria\x03 \x04 at 12 Main St \x05\x06\x07\x08, call 415-555-0142"]
    out = scanner.redact(pa.array(cells))[0].to_pylist()[0]
    assert out == "\x01\x02 spoke with <PERSON>\x03 \x04 at <ADDRESS> \x05\x06\x07\x08, call <PHONE_NUMBER>"


def test_a_pass_does_not_match_inside_a_block_an_earlier_pass_marked():
    # the URL holds an e-mail address and a title-like word; the street line holds a title ("Doctor King")
    scanner = TextScanner()
    text = "See https://example.org/?to=ms.taylor@example.com and 12 Doctor King Blvd, Springfield, IL 62704."
    kinds = [(f.kind, text[f.start : f.end]) for f in scanner.find(pa.array([text]))]
    assert ("URL", "https://example.org/?to=ms.taylor@example.com") in kinds
    assert ("ADDRESS", "12 Doctor King Blvd, Springfield, IL 62704") in kinds
    assert len(kinds) == 2
