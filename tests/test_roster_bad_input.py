"""Bad input in a notes column (issue 13): megabyte cells, binary junk, invalid UTF-8 / lone surrogates,
mixed scripts, right-to-left text, emoji and names disguised by invisible or look-alike characters.
Each is redacted or refused in one sentence (exit status 1), never a traceback, never a cell's text
in the message, never a partial output."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from deid import InputError, Policy, deidentify
from deid._textnorm import visible_text

POLICY = {
    "pathshare_policy": 1,
    "k": 1,
    "drop_unlisted": True,
    "columns": {"Notes": {"treatment": "redact_text"}, "Grade": {"treatment": "keep"}},
}
HEADER = b"First Name,Last Name,Grade,Notes\n"


def _policy_file(tmp_path: Path) -> Path:
    p = tmp_path / "policy.json"
    p.write_text(json.dumps(POLICY))
    return p


def _row(first: str, last: str, note: bytes, grade: str = "10") -> bytes:
    return f"{first},{last},{grade},".encode() + b'"' + note.replace(b'"', b'""') + b'"\n'


def _refused_in_one_sentence(code: int, out: str, err: str, *secrets: str) -> str:
    assert code == 1
    message = err.strip()
    assert message.startswith("pathshare: ") and message.endswith(".")
    assert "\n" not in message and "Traceback" not in err + out and "unexpected" not in message
    for secret in secrets:
        assert secret not in message
    return message


def _notes(path: Path) -> list[str]:
    return list(_notes_by_grade(path).values())


def _notes_by_grade(path: Path) -> dict[str, str]:
    """Released notes by the (kept) Grade column: release row order is random."""
    # (pyarrow, not the csv module: its field limit is process-wide, and raising it would change
    # what other tests see)
    table = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        convert_options=pacsv.ConvertOptions(column_types={"Grade": pa.string(), "Notes": pa.string()}),
    )
    rows = zip(table.column("Grade").to_pylist(), table.column("Notes").to_pylist(), strict=True)
    return {grade + "#" * i: note or "" for i, (grade, note) in enumerate(rows)}


def test_megabyte_notes_are_redacted_and_a_larger_cell_is_refused(tmp_path: Path, run_cli):
    note = ("Maria Lopez called from 626-555-0142 about Dolores. " * 20_000)[:1_000_000].encode()
    src = tmp_path / "big.csv"
    src.write_bytes(HEADER + b"".join(_row("Maria", "Lopez", note) for _ in range(8))
                    + _row("Dolores", "Castellanos", b"short note"))  # fmt: skip
    out = tmp_path / "out.csv"
    code, stdout, err = run_cli("deid", src, "--policy", _policy_file(tmp_path), "--out", out)
    assert code == 0, err
    notes = _notes(out)
    assert len(notes) == 9 and sum(len(n) > 100_000 for n in notes) == 8  # (rows come out shuffled)
    for n in notes:
        assert "Maria" not in n and "Lopez" not in n and "Dolores" not in n and "626-555" not in n
    assert "names" in stdout and "phone numbers" in stdout  # per-kind counts in the summary

    too_big = tmp_path / "too-big.csv"
    too_big.write_bytes(HEADER + _row("Maria", "Lopez", b"Maria Lopez " * 100_000))
    code, stdout, err = run_cli(
        "deid", too_big, "--policy", _policy_file(tmp_path), "--out", tmp_path / "x.csv"
    )
    message = _refused_in_one_sentence(code, stdout, err, "Maria", "Lopez")
    assert "column 'Notes', data row 1, is larger than 1 MB" in message
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("junk", ["nul", "random"])
def test_binary_junk_in_notes_is_refused_in_one_sentence(tmp_path: Path, run_cli, junk: str):
    rnd = random.Random(13)
    low = 0 if junk == "nul" else 1
    blob = bytes(rnd.randrange(low, 256) for _ in range(4000))
    src = tmp_path / "junk.csv"
    src.write_bytes(HEADER + _row("Maria", "Lopez", b"Maria Lopez " + blob))
    out = tmp_path / "out.csv"
    code, stdout, err = run_cli("deid", src, "--policy", _policy_file(tmp_path), "--out", out)
    _refused_in_one_sentence(code, stdout, err, "Maria", "Lopez")
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["junk.csv", "policy.json"]


def _invalid_utf8_notes(bad_row: int, rows: int = 5) -> pa.Array:
    cells = [b"Maria Lopez is fine." for _ in range(rows)]
    cells[bad_row] = b"Maria \xed\xa0\x80 Lopez \xff"  # a lone surrogate as UTF-8, and a stray byte
    binary = pa.array(cells, pa.binary())
    return pa.Array.from_buffers(pa.string(), len(binary), binary.buffers())


def test_invalid_utf8_and_lone_surrogates_are_refused_naming_column_and_row(tmp_path: Path, run_cli):
    rows = 5
    table = pa.table(
        {
            "First Name": ["Maria"] * rows,
            "Last Name": ["Lopez"] * rows,
            "Grade": ["10"] * rows,
            "Notes": _invalid_utf8_notes(bad_row=2, rows=rows),
        }
    )
    src = tmp_path / "notes.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out.csv"
    code, stdout, err = run_cli("deid", src, "--policy", _policy_file(tmp_path), "--out", out)
    message = _refused_in_one_sentence(code, stdout, err, "Maria", "Lopez")
    assert "column 'Notes', data row 3, is not valid text" in message
    assert not out.exists()
    # the library refuses the same table made in memory (it never reaches a pyarrow error)
    with pytest.raises(InputError, match=r"column 'Notes', data row 3, is not valid text"):
        deidentify(table, Policy.from_dict(POLICY))
    # UTF-8-encoded surrogates in a CSV are not UTF-8: the file is read in a Windows code page, and
    # the names around them are still redacted
    csv_src = tmp_path / "surrogate.csv"
    csv_src.write_bytes(HEADER + _row("Maria", "Lopez", b"Maria \xed\xa0\x80 Lopez called."))
    code, stdout, err = run_cli("deid", csv_src, "--policy", _policy_file(tmp_path), "--out", out)
    assert code == 0, err
    (note,) = _notes(out)
    assert "Maria" not in note and "Lopez" not in note and note.endswith("<PERSON> called.")


MIXED = [
    # (note, words that must survive)
    # (a word in another script is not matched against the roster's "Maria", but right before a
    # surname it is a given name: "Мария López")
    ("Мария López 王小明 met Maria Lopez; Ελένη said call 626-555-0142.", ["王小明", "Ελένη"]),
    ("مريم لوبيز سألت عن Maria Lopez اليوم. שלום לכולם", ["مريم", "اليوم", "שלום"]),
    ("🎉 Maria Lopez 👩‍👩‍👧 called 😀 about 🏫", ["🎉", "😀", "🏫"]),
    # disguises that display as the name: zero-width space, soft hyphen, full-width letters,
    # a Cyrillic "а" and "о" in Latin words, a right-to-left override, bidi isolates
    ("Ma\u200bria Lo\u00adpez asked again.", ["asked again."]),
    ("Ｍａｒｉａ Ｌｏｐｅｚ asked again.", ["asked again."]),
    ("M\u0430ria L\u043epez asked again.", ["asked again."]),
    ("\u202ezepoL airaM\u202c asked again.", ["asked again."]),
    ("\u2067Maria\u2069 \u2066Lopez\u2069 asked again.", ["asked again."]),
]


def test_mixed_scripts_rtl_emoji_and_disguised_names_are_redacted(tmp_path: Path, run_cli):
    src = tmp_path / "mixed.csv"
    rows = [_row("Maria", "Lopez", note.encode(), grade=f"{i:02d}") for i, (note, _) in enumerate(MIXED)]
    src.write_bytes(HEADER + b"".join(rows))
    out = tmp_path / "out.csv"
    code, _stdout, err = run_cli("deid", src, "--policy", _policy_file(tmp_path), "--out", out)
    assert code == 0, err
    released = {grade[:2]: note for grade, note in _notes_by_grade(out).items()}
    assert len(released) == len(MIXED)
    for i, (original, keep) in enumerate(MIXED):
        note = released[f"{i:02d}"]
        # what the recipient reads: the cell as displayed holds neither name
        shown = visible_text(pa.array([note])).to_pylist()[0]
        assert "Maria" not in shown and "Lopez" not in shown, original
        assert "<PERSON>" in note
        for word in keep:
            assert word in note, (original, word)


def test_the_residual_scan_sees_disguised_names_in_kept_free_text():
    table = pa.table(
        {
            "First Name": ["Maria", "Jose"],
            "Last Name": ["Lopez", "Cruz"],
            "Comments": [
                "Ma\u200bria L\u043epez will pick her up after school.",
                "Nothing new this week, all good.",
            ],
        }
    )
    policy = Policy.from_dict(
        {"pathshare_policy": 1, "k": 1, "drop_unlisted": True, "columns": {"Comments": {"treatment": "keep"}}}
    )
    _out, report = deidentify(table, policy)
    assert [(f.kind, f.column, f.row) for f in report.residual_findings] == [("PERSON", "Comments", 1)]


def test_visible_text_leaves_ordinary_text_of_any_script_alone():
    cells = ["Plain note.", "Мария Лопес", "王小明", "שלום", "مريم", "café naïve", None, ""]
    assert visible_text(pa.array(cells)).to_pylist() == cells
