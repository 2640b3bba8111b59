"""The free-text PII scanner: kinds, roster, accents, false positives, nulls, offline presidio."""

from __future__ import annotations

import dataclasses
import socket

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deid._textscan as ts
from deid._textscan import KINDS, Finding, TextScanner, presidio_analyzer
from deid.errors import PolicyError

ROSTER_NAMES = ["Maria Lopez", "José García-López", "Liam O'Brien", "Will Smith", "Grace Nguyen"]
ROSTER_IDS = ["0012345678", "L123456"]


@pytest.fixture(scope="module")
def scanner() -> TextScanner:
    return TextScanner(ROSTER_NAMES, ROSTER_IDS)


def _redact_one(scanner: TextScanner, text: str) -> str:
    out, _ = scanner.redact(pa.array([text]))
    return out.to_pylist()[0]


def _found(scanner: TextScanner, text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in scanner.find(pa.array([text]))]


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("Email maria.lopez@gmail.com today.", "EMAIL_ADDRESS", "maria.lopez@gmail.com"),
        ("Guardian: j_smith+school@district.k12.ca.us", "EMAIL_ADDRESS", "j_smith+school@district.k12.ca.us"),
        ("Call (916) 555-0142 after 3.", "PHONE_NUMBER", "(916) 555-0142"),
        ("Call 916-555-0142.", "PHONE_NUMBER", "916-555-0142"),
        ("Call 916.555.0142.", "PHONE_NUMBER", "916.555.0142"),
        ("Call +1 916 555 0142.", "PHONE_NUMBER", "+1 916 555 0142"),
        ("Cell 9165550142 (text ok).", "PHONE_NUMBER", "9165550142"),
        ("Abuela in Mexico: +52 55 1234 5678.", "PHONE_NUMBER", "+52 55 1234 5678"),
        ("SSN 123-45-6789 on file.", "US_SSN", "123-45-6789"),
        ("SSN 123 45 6789 on file.", "US_SSN", "123 45 6789"),
        ("SSN 123456789 on file.", "US_SSN", "123456789"),
        ("ITIN 912-78-1234 on file.", "US_ITIN", "912-78-1234"),
        ("Card 4111 1111 1111 1111 was used.", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("Logged in from 192.168.10.25 twice.", "IP_ADDRESS", "192.168.10.25"),
        ("See https://example.org/profile/maria?id=3.", "URL", "https://example.org/profile/maria?id=3"),
        ("Portfolio at www.example.com/mlopez, done.", "URL", "www.example.com/mlopez"),
        ("DOB: 03/14/2009 per registrar.", "DATE_OF_BIRTH", "DOB: 03/14/2009"),
        ("SSID 0012345678 did not match.", "STUDENT_ID", "0012345678"),
        ("Local ID L123456 updated.", "STUDENT_ID", "L123456"),
        ("Old district number 77120045 noted.", "ID_NUMBER", "77120045"),
        ("Other district ID D1234567 on the transcript.", "ID_NUMBER", "D1234567"),
        ("Chromebook MAC 00:1B:44:11:3A:B7 reported.", "MAC_ADDRESS", "00:1B:44:11:3A:B7"),
        (
            "Device 2001:0db8:85a3:0000:0000:8a2e:0370:7334 seen.",
            "IP_ADDRESS",
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        ),
        ("Refund to DE89 3704 0044 0532 0130 00 done.", "IBAN_CODE", "DE89 3704 0044 0532 0130 00"),
        ("Aunt in London: 020 7946 0958.", "PHONE_NUMBER", "020 7946 0958"),
        ("Met with Maria Lopez today.", "PERSON", "Maria Lopez"),
        ("Referred to Ms. Taylor for tutoring.", "PERSON", "Ms. Taylor"),
    ],
)
def test_each_kind_is_found_and_redacted_with_its_placeholder(scanner, text, kind, value):
    assert (kind, value) in _found(scanner, text)
    redacted = _redact_one(scanner, text)
    assert f"<{kind}>" in redacted
    assert value not in redacted
    assert redacted == text.replace(value, f"<{kind}>")


def test_invalid_candidates_are_left_alone(scanner):
    # SSA never issues area 000/666, group 00, serial 0000; a card number must pass Luhn;
    # an address needs a real top-level domain; octets stop at 255.
    for text in [
        "Code 000-12-3456 is not an SSN.",
        "Code 666-12-3456 is not an SSN.",
        "Code 123-00-4567 is not an SSN.",
        "Code 123-45-0000 is not an SSN.",
        "Number 4111 1111 1111 1112 fails the Luhn check.",  # ("fails Luhn": a surname mid-sentence)
        "Write to maria@school.invalidtld now.",
        "Version 300.1.2.999 of the app.",
    ]:
        assert _found(scanner, text) == [], text
        assert _redact_one(scanner, text) == text


# What presidio's pattern recognizers find (the reference), in the formats they know.
_REFERENCE_TEXTS = [
    "Call 916-555-0142, (916)555-0143, 916.555.0144, 916 555 0145, +1 (916) 555-0146, 1-916-555-0147.",
    "UK +44 20 7946 0958 or 020 7946 0958; India +91 98765 43210; Mexico +52 55 1234 5678.",
    "Canada 604-555-0199 ext 12; Brazil +55 11 91234-5678; Germany +49 30 901820.",
    "Cards 4111-1111-1111-1111, 5500 0000 0000 0004, 340000000000009, 6011000000000004.",
    "SSNs 219-09-9999, 219 09 9999, 219.09.9999, 219099999; ITIN 912-70-1234.",
    "IPs 192.168.1.1, 8.8.8.8, 2001:0db8:85a3:0000:0000:8a2e:0370:7334; MAC 00:1B:44:11:3A:B7.",
    "Mail a.b-c@sub.example.co.uk, ALLCAPS@EXAMPLE.ORG, x@y.io; IBAN DE89 3704 0044 0532 0130 00.",
    "Sites https://www.example.com/path?q=1 and http://example.org and www.school.k12.ca.us/page.",
]
_REFERENCE_KINDS = {
    "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "US_ITIN", "CREDIT_CARD", "IP_ADDRESS", "MAC_ADDRESS",
    "IBAN_CODE", "UK_NHS",
}  # fmt: skip


def test_everything_presidios_recognizers_find_is_found():
    analyzer = presidio_analyzer()
    scanner = TextScanner([], [])
    for text in _REFERENCE_TEXTS:
        ours = scanner.find(pa.array([text]))
        for res in analyzer.analyze(text, language="en"):
            with_scheme = res.entity_type == "URL" and text[res.start : res.end].startswith(("http", "www"))
            if res.entity_type in _REFERENCE_KINDS or with_scheme:
                assert any(f.start < res.end and res.start < f.end for f in ours), (
                    res.entity_type,
                    text[res.start : res.end],
                )


def test_without_a_suffix_list_every_address_is_kept_as_pii(monkeypatch):
    monkeypatch.setattr(ts, "_email_tlds", lambda: pa.array([], pa.string()))
    scanner = TextScanner([], [])
    assert _redact_one(scanner, "Write to maria@school.invalidtld now.") == "Write to <EMAIL_ADDRESS> now."


def test_roster_catches_a_first_name_alone(scanner):
    text = "Maria said she will retake the test."
    assert _found(scanner, text) == [("PERSON", "Maria")]
    assert _redact_one(scanner, text) == "<PERSON> said she will retake the test."
    assert _redact_one(scanner, "Lopez was absent.") == "<PERSON> was absent."


def test_full_names_become_one_placeholder_and_possessives_keep_their_s(scanner):
    assert _redact_one(scanner, "Maria Lopez and José García-López met.") == "<PERSON> and <PERSON> met."
    assert _redact_one(scanner, "Maria's mom called.") == "<PERSON>'s mom called."
    assert _found(scanner, "Maria's mom called.") == [("PERSON", "Maria")]


def test_accents_hyphens_and_apostrophes(scanner):
    text = "Éxito: José García-López y Liam O'Brien; García, Garcia-Lopez y O’Brien también."
    found = _found(scanner, text)
    assert ("PERSON", "José García-López") in found
    assert ("PERSON", "Liam O'Brien") in found
    assert ("PERSON", "García") in found  # a part of a hyphenated surname
    assert ("PERSON", "Garcia-Lopez") in found  # written without accents
    assert ("PERSON", "O’Brien") in found  # curly apostrophe
    redacted = _redact_one(scanner, text)
    assert redacted == "Éxito: <PERSON> y <PERSON>; <PERSON>, <PERSON> y <PERSON> también."


def test_offsets_are_characters_not_bytes(scanner):
    text = "Ñandú — café. Call 916-555-0142, ask for Maria."
    for f in scanner.find(pa.array([text])):
        assert text[f.start : f.end] in {"916-555-0142", "Maria"}
    assert len(scanner.find(pa.array([text]))) == 2


def test_capitalized_common_words_are_names_only_next_to_a_name(scanner):
    assert _redact_one(scanner, "Will follow up in May.") == "Will follow up in May."
    assert _redact_one(scanner, "Grace period ends Friday.") == "Grace period ends Friday."
    assert _redact_one(scanner, "Spoke with Will Smith.") == "Spoke with <PERSON>."
    assert _redact_one(scanner, "Grace Nguyen is here.") == "<PERSON> is here."


def test_ordinary_word_names_count_mid_sentence_but_not_at_a_sentence_start():
    scanner = TextScanner(["Grace Kim", "Dean Ortiz", "May Chen"], common_names=False)
    assert (
        _redact_one(scanner, "Ryan and Grace are working; Dean too.")
        == "Ryan and <PERSON> are working; Dean too."
    )
    assert (
        _redact_one(scanner, "Grace period ends. Dean's list soon.") == "Grace period ends. Dean's list soon."
    )
    # month names stay words even mid-sentence, unless beside a name
    assert _redact_one(scanner, "Back in May, then May Chen.") == "Back in May, then <PERSON>."


def test_a_rows_own_name_counts_even_when_it_is_an_ordinary_word():
    table = pa.table(
        {
            "First Name": ["Grace", "Hunter"],
            "Last Name": ["Kim", "Diaz"],
            "SSID": ["1111111111", "2222222222"],
            "Notes": ["Grace met with me.", "Grace period for Hunter ends."],
        }
    )
    scanner = TextScanner.from_table(table, ["First Name", "Last Name"], ["SSID"])
    out, changed = scanner.redact(table.column("Notes"))
    assert out.to_pylist() == ["<PERSON> met with me.", "Grace period for <PERSON> ends."]
    assert changed == 2
    # a column that does not line up with the table gets no per-row rule
    out, _ = scanner.redact(pa.array(["Grace met with me."] * 3))
    assert out.to_pylist() == ["Grace met with me."] * 3


@pytest.mark.parametrize(
    "text",
    [
        "Enrolled in MATH 101 and BIO 2 for fall; see Room 204 after 3:15 pm.",
        "Attendance improved to 94% since 09/15/2025. GPA 3.45, credits 22.5.",
        "Met about A-G requirements and college applications on 2025-10-02.",
        "Wants ENGL 1A at the college in spring; period 4 to period 6.",
        "Scored 1450 on the SAT in October 2025; grade 11, cohort 2027.",
        "Schedule change approved. The Counselor will call the Registrar on Monday.",
        "Applied to the University of Washington and Cal State Long Beach; toured Lincoln High in June.",
        "Needs 10 more credits in Area B. Hope scholarship info sent home; Grant application due.",
    ],
)
def test_no_false_positives_on_ordinary_school_text(scanner, text):
    assert _found(scanner, text) == []
    assert _redact_one(scanner, text) == text


def test_nulls_empty_strings_and_counts(scanner):
    col = pa.chunked_array(
        [["Maria called.", None], [], ["", None, "Room 204", "maria.lopez@gmail.com"]], type=pa.string()
    )
    out, changed = scanner.redact(col)
    assert out.to_pylist() == ["<PERSON> called.", None, "", None, "Room 204", "<EMAIL_ADDRESS>"]
    assert changed == 2
    assert [f.row for f in scanner.find(col)] == [0, 5]
    all_null, changed = scanner.redact(pa.array([None, None], pa.string()))
    assert all_null.to_pylist() == [None, None] and changed == 0


def test_large_string_and_non_string_columns(scanner):
    out, _ = scanner.redact(pa.array(["Call 916-555-0142"], pa.large_string()))
    assert out.type == pa.large_string()
    assert out.to_pylist() == ["Call <PHONE_NUMBER>"]
    out, changed = scanner.redact(pa.array([1, 2, None]))
    assert out.to_pylist() == ["1", "2", None] and changed == 0


def test_rows_are_numbered_across_batches(scanner, monkeypatch):
    monkeypatch.setattr(ts, "_BATCH_ROWS", 3)
    col = pa.array(["nothing here"] * 7 + ["Maria here"] + ["x"] * 3 + ["SSN 123-45-6789"])
    assert [(f.row, f.kind) for f in scanner.find(col)] == [(7, "PERSON"), (11, "US_SSN")]
    assert [(f.row, f.kind) for f in scanner.find(col, limit=1)] == [(7, "PERSON")]
    out, changed = scanner.redact(col)
    assert changed == 2 and out.to_pylist()[7] == "<PERSON> here"
    assert scanner.count(col) == 2


def test_long_notes_make_smaller_batches(scanner, monkeypatch):
    monkeypatch.setattr(ts, "_BATCH_BYTES", 4096)
    long_note = "Routine check-in, nothing to report. " * 40  # ~1.5 kB: 1,024-row batches
    col = pa.array([long_note] * 2500 + ["Call 916-555-0142"])
    batches = list(ts._batches(col))
    assert [len(b) for b in batches] == [1024, 1024, 453]
    assert [(f.row, f.kind) for f in scanner.find(col)] == [(2500, "PHONE_NUMBER")]


def test_text_containing_the_internal_tag_characters(scanner):
    text = "odd \x01 bytes \x02 from Maria \ue000"
    assert _redact_one(scanner, text) == "odd \x01 bytes \x02 from <PERSON> \ue000"


def test_findings_never_hold_text(scanner):
    assert [f.name for f in dataclasses.fields(Finding)] == ["row", "kind", "start", "end"]
    findings = scanner.find(pa.array(["Maria Lopez, 123-45-6789, maria.lopez@gmail.com"]))
    assert len(findings) == 3
    for f in findings:
        assert f.kind in KINDS
        assert "Maria" not in repr(f) and "6789" not in repr(f) and "gmail" not in repr(f)


def test_find_and_redact_agree(scanner):
    texts = [
        "Maria Lopez (SSID 0012345678) and Will Smith; call (916) 555-0142 or maria.lopez@gmail.com.",
        "José's guardian, Ms. Rivera, gave SSN 123-45-6789 and DOB 03/14/2009.",
    ]
    col = pa.array(texts)
    out, _ = scanner.redact(col)
    by_row: dict[int, list[Finding]] = {}
    for f in scanner.find(col):
        by_row.setdefault(f.row, []).append(f)
    for i, text in enumerate(texts):
        rebuilt, last = [], 0
        for f in by_row[i]:
            rebuilt += [text[last : f.start], f"<{f.kind}>"]
            last = f.end
        rebuilt.append(text[last:])
        assert "".join(rebuilt) == out.to_pylist()[i]


def test_find_arrays_matches_find(scanner, monkeypatch):
    monkeypatch.setattr(ts, "_BATCH_ROWS", 2)
    col = pa.array(["Maria Lopez, 123-45-6789", None, "nothing", "x@example.org and Will Smith"])
    arrays = scanner.find_arrays(col)
    listed = scanner.find(col)
    columns = [arrays[k].tolist() for k in ("row", "kind", "start", "end")]
    assert list(zip(*columns, strict=True)) == [(f.row, f.kind, f.start, f.end) for f in listed]
    assert [f.row for f in listed] == [0, 0, 3, 3]
    assert len(scanner.find_arrays(pa.array(["nothing"]))["row"]) == 0


def test_from_table_tokenizes_names_and_rejects_missing_columns():
    table = pa.table(
        {
            "Student": ["MARIA LOPEZ", "Ana Ruiz"],
            "Guardian": ["Pedro Lopez", None],
            "SSID": ["0099", "0012345678"],
        }
    )
    scanner = TextScanner.from_table(table, ["Student", "Guardian"], ["SSID"], common_names=False)
    # exports in capitals still match the names as written in notes; short IDs are ignored
    out, _ = scanner.redact(pa.array(["Maria and Pedro; Ruiz; 0012345678; 0099"]))
    assert out.to_pylist() == ["<PERSON> and <PERSON>; <PERSON>; <STUDENT_ID>; 0099"]
    with pytest.raises(PolicyError, match="Nickname"):
        TextScanner.from_table(table, ["Nickname"], [])


def test_roster_size_reports_counts_only():
    names, ids = TextScanner(["Maria Lopez"], ["0012345678"], common_names=False).roster_size
    assert names >= 2 and ids == 1


_SHARED = TextScanner(ROSTER_NAMES, ROSTER_IDS)  # hypothesis examples reuse one scanner
_SAFE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,;:!?()%/\n0123", max_size=120)


@settings(max_examples=30, deadline=None)
@given(_SAFE)
def test_text_without_pii_is_returned_unchanged(text):
    scanner = _SHARED
    out, changed = scanner.redact(pa.array([text]))
    assert out.to_pylist() == [text] and changed == 0
    assert scanner.find(pa.array([text])) == []


@settings(max_examples=30, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Maria",
                "Lopez",
                "Will",
                "said",
                "916-555-0142",
                "ok",
                "é",
                " ",
                ", ",
                "x@example.org",
                "123-45-6789",
                "'s",
                "-",
                "Room 204",
            ]
        ),
        max_size=12,
    )
)
def test_redaction_is_idempotent_and_leaves_nothing_to_find(parts):
    text = "".join(parts)
    scanner = _SHARED
    once, _ = scanner.redact(pa.array([text]))
    twice, changed = scanner.redact(once)
    assert twice.to_pylist() == once.to_pylist() and changed == 0
    assert scanner.find(once) == []


def test_presidio_analyzer_builds_offline_and_is_cached(monkeypatch):
    # Sockets are blocked suite-wide; also record any attempt to resolve or connect (a library that
    # swallowed the refusal would otherwise go unnoticed).
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network blocked in tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ts._build_presidio.cache_clear()
    ts._offline_tldextract.cache_clear()
    analyzer = presidio_analyzer()
    assert presidio_analyzer() is analyzer
    text = "Reach the guardian at ana.ruiz@example.org or (916) 555-0142."
    kinds = {r.entity_type for r in analyzer.analyze(text, language="en")}
    assert {"EMAIL_ADDRESS", "PHONE_NUMBER"} <= kinds  # the e-mail check ran tldextract offline
    assert attempts == []


def test_scanner_recall_on_planted_pii_matches_or_beats_presidio():
    from deid.synth import generate

    synth = generate("k12", 1500, seed=5)
    table, spans = synth.table, {k: np.asarray(v) for k, v in synth.truth.spans.items()}
    notes = table.column("Counselor Notes")
    scanner = TextScanner.from_table(
        table, ["First Name", "Middle Name", "Last Name", "Guardian Name"], ["SSID", "Local ID"]
    )
    by_row: dict[int, list[tuple[int, int]]] = {}
    for f in scanner.find(notes):
        by_row.setdefault(f.row, []).append((f.start, f.end))

    def hit(found: dict[int, list[tuple[int, int]]], r: int, s: int, e: int) -> bool:
        return any(a < e and s < b for a, b in found.get(r, []))

    rows, starts, ends, kinds = spans["row"], spans["start"], spans["end"], spans["kind"]
    ours = np.array([hit(by_row, r, s, e) for r, s, e in zip(rows, starts, ends, strict=True)])
    assert ours.mean() >= 0.99
    for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "STUDENT_ID"):
        assert ours[kinds == kind].all(), kind
    # precision: what we flag is planted PII
    planted = {}
    for r, s, e in zip(rows, starts, ends, strict=True):
        planted.setdefault(int(r), []).append((int(s), int(e)))
    flagged = [(r, s, e) for r, v in by_row.items() for s, e in v]
    assert np.mean([hit(planted, r, s, e) for r, s, e in flagged]) >= 0.98

    # presidio, note by note, on the first 150 notes: our recall is at least its recall
    analyzer = presidio_analyzer()
    sample = notes.slice(0, 150).to_pylist()
    theirs_found: dict[int, list[tuple[int, int]]] = {}
    for i, text in enumerate(sample):
        for res in analyzer.analyze(text or "", language="en"):
            theirs_found.setdefault(i, []).append((res.start, res.end))
    in_sample = rows < 150
    theirs = np.array(
        [
            hit(theirs_found, r, s, e)
            for r, s, e in zip(rows[in_sample], starts[in_sample], ends[in_sample], strict=True)
        ]
    )
    assert ours[in_sample].mean() >= theirs.mean()
    # and the redacted notes hold none of the planted e-mails, phones, SSNs or IDs
    redacted = scanner.redact(notes)[0].to_pylist()
    texts = notes.to_pylist()
    for r, s, e, k in zip(rows, starts, ends, kinds, strict=True):
        if k != "PERSON":
            assert texts[r][s:e] not in redacted[r]


def test_presidio_uses_an_installed_ner_model_from_disk_only(tmp_path):
    import spacy

    from deid import installed_ner_model
    from deid.errors import InputError

    # a tiny local pipeline standing in for an installed model: an entity ruler that knows one name
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "PERSON", "pattern": "Zorblax Quux"}])
    nlp.to_disk(tmp_path / "tiny_ner")
    analyzer = presidio_analyzer(str(tmp_path / "tiny_ner"))
    text = "Met with Zorblax Quux about the schedule."
    found = {(r.entity_type, text[r.start : r.end]) for r in analyzer.analyze(text, language="en")}
    assert ("PERSON", "Zorblax Quux") in found
    # the default engine has no NER, and a model that is not installed is refused, never fetched
    assert ("PERSON", "Zorblax Quux") not in {
        (r.entity_type, text[r.start : r.end]) for r in presidio_analyzer().analyze(text, language="en")
    }
    with pytest.raises(InputError, match="not installed"):
        presidio_analyzer("en_core_web_nonexistent")
    assert installed_ner_model() in (
        None,
        "en_core_web_lg",
        "en_core_web_md",
        "en_core_web_sm",
        "en_core_web_trf",
    )


def test_building_presidio_creates_no_socket_at_all() -> None:
    """urllib3 (pulled in by presidio through tldextract and requests) binds a probe socket to ::1 when
    imported; PathShare imports it with the probe disarmed, so not even a local socket is made."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import socket\n"
        "made = []\n"
        "class Spy(socket.socket):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        made.append(args)\n"
        "        super().__init__(*args, **kwargs)\n"
        "socket.socket = Spy\n"
        "from deid._textscan import presidio_analyzer\n"
        "found = presidio_analyzer().analyze('write to ana@example.org', language='en')\n"
        "print(len(made), socket.has_ipv6, sorted({r.entity_type for r in found}))\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    sockets, ipv6_flag, entities = done.stdout.split(maxsplit=2)
    assert sockets == "0"  # the probe would have made one
    assert ipv6_flag == str(socket.has_ipv6)  # restored for everything else
    assert "EMAIL_ADDRESS" in entities


def test_the_rosters_own_addresses_and_numbers_are_found_by_a_built_once_index():
    """The roster's e-mail addresses (any case, a domain no pattern accepts) and phone numbers (any
    written form, with or without +1) are found; other values and nulls are not."""
    import pyarrow as pa

    from deid._textscan import _KIND_CODE, EMAIL_ADDRESS, PHONE_NUMBER, _ContactIndex

    index = _ContactIndex(
        pa.array(["Ana.Ruiz@students.sgvusd.local", None, "no-at-sign"]), pa.array(["(626) 555-0142", None])
    )
    got = index.kinds(pa.array(["ana.ruiz@STUDENTS.sgvusd.local", "+1 626.555.0142", "626-555-0143",
                                None, "other@students.sgvusd.local", "no-at-sign"]))  # fmt: skip
    assert got.tolist() == [_KIND_CODE[EMAIL_ADDRESS], _KIND_CODE[PHONE_NUMBER], -1, -1, -1, -1]
