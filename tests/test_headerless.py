"""A student extract exported without its header row ("include headers" unticked) is refused.

Read as it is, its first row (a student's record) would become the column names: the student silently
missing from the shared data, their values shown in mapping screens and messages as if they were
column names. ``deid._io`` already refused a first row holding an SSN, e-mail or phone number; here the
first row looks harmless and ``deid._header_row.header_row_verdict`` compares each header cell with the
values below it. The refusal is one sentence with column numbers, never a value.

Limit (documented in docs/mapping.md, not tested because it cannot be detected): a headerless file
whose columns are all free text, names or addresses, or that has a single typed column, is read with
its first row as the header.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from deid import header_row_verdict, read_table
from deid.errors import InputError
from deid.synth import generate, write_synth

ROWS = 80
SEED = 11
NEW_SENTENCE = re.compile(
    r"^pathshare: (?P<file>\S+) seems to have no header row: its first row looks like a student's record "
    r"\(columns \d+(, \d+)*( and \d+| and \d+ more) hold values like those below them\); add a row of "
    r"column names at the top\.$"
)
# The columns whose values the old check already recognizes (SSN, e-mail, phone) and the free text that
# may quote them: without them the first row of a headerless file looks harmless.
SHAPED = ("Phone", "PHONE", "Email", "EMAIL", "Notes")


def _decoded(path: Path, encoding: str) -> list[list[str]]:
    text = path.read_bytes().decode(encoding)
    return list(csv.reader(io.StringIO(text, newline="")))


def _write_rows(path: Path, rows: list[list[str]], encoding: str) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


@pytest.fixture(scope="module")
def extracts(tmp_path_factory) -> dict[str, dict[str, Path | list[str]]]:
    """Per kind and messiness: the synthetic export, its headerless copy, a narrow copy without the
    e-mail/phone/notes columns (with and without header), and the first data row's cells."""
    base = tmp_path_factory.mktemp("headerless")
    out: dict[str, dict[str, Path | list[str]]] = {}
    for kind in ("k12", "college"):
        for messy in (False, True):
            tag = f"{kind}{'-messy' if messy else ''}"
            res = generate(kind, ROWS, seed=SEED, messy=messy)
            full = base / f"{tag}.csv"
            write_synth(res, full)
            raw = full.read_bytes()
            bom = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""
            nohdr = base / f"{tag}-noheader.csv"
            nohdr.write_bytes(bom + raw[raw.index(b"\n") + 1 :])  # the header line dropped, nothing else
            encoding = res.truth.encoding
            rows = _decoded(full, "utf-8-sig" if bom else encoding)
            header = rows[0]
            keep = [i for i, h in enumerate(header) if h and not any(s in h for s in SHAPED)]
            keep = [i for i in keep if header.index(header[i]) == i]  # the messy repeated header: once
            narrow_rows = [[r[i] if i < len(r) else "" for i in keep] for r in rows]
            out[tag] = {
                "full": full,
                "noheader": nohdr,
                "narrow": _write_rows(base / f"{tag}-narrow.csv", narrow_rows, encoding),
                "narrow-noheader": _write_rows(
                    base / f"{tag}-narrow-noheader.csv", narrow_rows[1:], encoding
                ),
                "first_row": rows[1],
            }
    return out


def _no_value_in(message: str, path: Path, first_row: list[str]) -> None:
    text = message.replace(str(path), "")
    leaked = [v for v in first_row if len(v.strip()) >= 3 and v.strip() in text]
    assert not leaked, "a cell value reached the message"


TAGS = ["k12", "k12-messy", "college", "college-messy"]


@pytest.mark.parametrize("tag", TAGS)
def test_headerless_synthetic_extract_refused_by_map(extracts, run_cli, tag):
    """The whole export without its header line: refused (its first row has an e-mail or a phone, or the
    columns vote), exit 1, one sentence, no value."""
    e = extracts[tag]
    code, out, err = run_cli("map", e["noheader"])
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("pathshare: ") and "Traceback" not in err
    assert "no header row" in err and "add a row of column names at the top" in err
    _no_value_in(err, e["noheader"], e["first_row"])


@pytest.mark.parametrize("tag", TAGS)
def test_headerless_harmless_first_row_refused_with_one_sentence(extracts, run_cli, tag):
    """Without e-mail, phone and notes columns the first row holds nothing the old check knew: the new
    comparison of header cells with the values below them refuses it."""
    e = extracts[tag]
    code, out, err = run_cli("map", e["narrow-noheader"])
    assert code == 1 and out == ""
    line = err.rstrip("\n")
    assert "\n" not in line
    m = NEW_SENTENCE.match(line)
    assert m, line
    assert m["file"] == str(e["narrow-noheader"])
    _no_value_in(err, e["narrow-noheader"], e["first_row"])


@pytest.mark.parametrize("tag", TAGS)
def test_the_same_extracts_with_headers_are_accepted(extracts, run_cli, tag):
    e = extracts[tag]
    code, out, err = run_cli("map", e["narrow"])
    assert code == 0, err
    assert "seems to have no header row" not in out + err
    table = read_table(e["full"], duplicates="rename")  # the messy repeated "Phone" needs renaming
    assert table.num_rows == ROWS


def test_deid_refuses_and_writes_nothing(extracts, run_cli, tmp_path):
    policy = tmp_path / "policy.json"
    policy.write_text(
        '{"pathshare_policy": 1, "k": 2, "drop_unlisted": true, '
        '"columns": {"Grade": {"treatment": "keep"}, "Gender": {"treatment": "keep"}}}',
        encoding="utf-8",
    )
    e = extracts["k12-messy"]
    out_file = tmp_path / "out.csv"
    code, out, err = run_cli("deid", e["narrow-noheader"], "--policy", policy, "--out", out_file)
    assert code == 1 and out == "", err
    assert NEW_SENTENCE.match(err.rstrip("\n")), err
    assert not out_file.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["policy.json"]
    # the same file with its header goes through
    code, _, err = run_cli("deid", extracts["k12-messy"]["narrow"], "--policy", policy, "--out", out_file)
    assert code == 0, err
    assert out_file.is_file()


def test_prepare_and_the_gui_prepare_job_refuse(extracts, run_cli, _executed_pair, tmp_path, monkeypatch):
    from partners_setup import PASS

    from agreements import Vault
    from desktop.ui.jobs import JobContext, inspect_extract

    d_path, _, agreement_id = _executed_pair
    vault = tmp_path / d_path.name
    shutil.copyfile(d_path, vault)
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    e = extracts["college"]
    package = tmp_path / "p.age"
    code, out, err = run_cli(
        "--vault", vault, "prepare", e["narrow-noheader"], "--agreement", agreement_id[:8],
        "--out", package, "--accept-suggested",
    )  # fmt: skip
    assert code == 1
    assert NEW_SENTENCE.match(err.rstrip("\n")), err
    assert not package.exists()
    _no_value_in(err + out, e["narrow-noheader"], e["first_row"])
    ctx = JobContext(progress=lambda f, m: None)
    with Vault.open(vault, PASS) as ctx.vault, pytest.raises(InputError, match="no header row") as caught:
        inspect_extract(ctx, str(e["narrow-noheader"]), agreement_id)
    _no_value_in(str(caught.value), e["narrow-noheader"], e["first_row"])


def test_headerless_xlsx_refused(extracts, tmp_path):
    import openpyxl

    rows = _decoded(extracts["k12"]["narrow-noheader"], "utf-8")
    wb = openpyxl.Workbook()
    for r in rows:
        wb.active.append(r)
    path = tmp_path / "k12.xlsx"
    wb.save(path)
    with pytest.raises(InputError, match=r"seems to have no header row: .*\(columns \d"):
        read_table(path)


def _csv(path: Path, header: list[str] | None, rows: list[list[str]]) -> Path:
    return _write_rows(path, ([header] if header else []) + rows, "utf-8")


def _grades(n: int) -> list[str]:
    return [["09", "10", "11", "12"][i % 4] for i in range(n)]


def test_a_year_as_a_column_name_is_accepted(tmp_path):
    """'2024' over a column of years votes "value", but one column is not enough."""
    ids = [str(4_000_000 + 7 * i) for i in range(30)]
    years = [["2023", "2024", "2025"][i % 3] for i in range(30)]
    rows = [[a, g, y] for a, g, y in zip(ids, _grades(30), years, strict=True)]
    path = _csv(tmp_path / "year.csv", ["Student ID", "Gr", "2024"], rows)
    table = read_table(path)
    assert table.column_names == ["Student ID", "Gr", "2024"] and table.num_rows == 30
    verdict = header_row_verdict(table.column_names, table)
    assert verdict.value_columns == (3,) and verdict.name_columns == (1, 2)
    # without its header the same file is refused
    with pytest.raises(InputError, match="seems to have no header row"):
        read_table(_csv(tmp_path / "year-noheader.csv", None, rows))


def test_year_and_item_number_headers_of_wide_exports_are_accepted(tmp_path):
    """Scale scores under 2022/2023/2024 and item scores under 1..10 are numbers under numbers, but a
    run of consecutive numbers side by side is a header, not a student."""
    scores = [
        [str(4_000_000 + i)] + [str(2100 + (37 * i + 101 * j) % 700) for j in range(3)] for i in range(40)
    ]
    read_table(_csv(tmp_path / "scores.csv", ["SSID", "2022", "2023", "2024"], scores))
    items = [[str(4_000_000 + i)] + [str((i + j) % 2) for j in range(10)] for i in range(40)]
    table = read_table(_csv(tmp_path / "items.csv", ["SSID"] + [str(n) for n in range(1, 11)], items))
    assert table.num_columns == 11
    with pytest.raises(InputError, match="seems to have no header row"):
        read_table(_csv(tmp_path / "items-noheader.csv", None, items))


def test_odd_sis_names_are_accepted(tmp_path):
    """Short SIS names ("Gr", "Eth_Cd", "STU_ID", "Sx") and a column named after one of its codes ("EL")."""
    rows = [
        [f"S{100000 + 13 * i}", g, ["H", "W", "A", "B"][i % 4], "MF"[i % 2], ["EL", "EO", "RFEP"][i % 3],
         f"{1 + i % 12:02d}/{1 + i % 28:02d}/2009"]
        for i, g in enumerate(_grades(50))
    ]  # fmt: skip
    header = ["STU_ID", "Gr", "Eth_Cd", "Sx", "EL", "DOB"]
    table = read_table(_csv(tmp_path / "sis.csv", header, rows))
    verdict = header_row_verdict(table.column_names, table)
    # "EL" is one of its own codes, but the data dictionary knows it as a column name: no column votes.
    assert verdict.value_columns == ()
    assert not verdict.looks_like_data
    # Without the header the first student's "EL" (a name the dictionary knows) does not vote; the
    # other five cells do.
    with pytest.raises(InputError, match=r"\(columns 1, 2, 3, 4 and 6 hold values"):
        read_table(_csv(tmp_path / "sis-noheader.csv", None, rows))


def test_appended_exports_do_not_look_headerless(tmp_path):
    """Two exports appended: the header row repeats inside the data (an exact repeat is refused by the
    reader, by row; this one differs in a cell); such rows are left out of the comparison, else every
    code column's header would be "one of its values"."""
    res = generate("k12", 60, seed=3)
    rows = [["" if v is None else v for v in r.values()] for r in res.table.to_pylist()]
    header = list(res.table.column_names)
    near = [*header[:-1], header[-1] + " (2025)"]
    table = read_table(_csv(tmp_path / "twice.csv", header, [*rows[:30], near, *rows[30:]]))
    verdict = header_row_verdict(table.column_names, table)
    assert not verdict.value_columns


def test_a_header_cell_with_a_line_break_is_the_header(tmp_path):
    """Excel's Alt+Enter in a header cell: the header is a parsed row (its second line is not a data row,
    which made the header look like one of the values)."""
    path = tmp_path / "wrapped.csv"
    path.write_text('"Student\nID",Grade,Sex\n1234567,09,F\n2345678,10,M\n3456789,11,F\n', encoding="utf-8")
    table = read_table(path)
    assert table.column_names == ["Student\nID", "Grade", "Sex"]
    assert table.column("Grade").to_pylist() == ["09", "10", "11"]


def test_only_a_sample_is_compared(monkeypatch):
    """The verdict looks at about HEADER_SAMPLE_ROWS rows however long the table (slices, not a take of
    scattered rows)."""
    import deid._header_row as mapping

    seen: list[int] = []
    real = mapping._header_vote

    def spy(header: str, col: pa.ChunkedArray | pa.Array) -> str | None:
        seen.append(len(col))
        return real(header, col)

    monkeypatch.setattr(mapping, "_header_vote", spy)
    n = 300_000
    table = pa.table({"Grade": pa.array(_grades(n)), "ID": pa.array([str(10**6 + i) for i in range(n)])})
    verdict = header_row_verdict(["Grade", "ID"], table)
    assert verdict.name_columns == (1, 2)
    assert seen and max(seen) <= mapping.HEADER_SAMPLE_ROWS


def test_short_names_the_dictionary_knows_are_column_names(tmp_path):
    """'ELL' and 'IEP' over YES/NO, 'ETH' over ethnicity codes: short SIS names share their values'
    shape ('AAA'); the data dictionary knows them as column names, so the file is not taken for
    headerless (a real export refused with no way around it)."""
    eths = ["HIS", "WHT", "BLK", "ASN", "AMI", "PAC", "MUL"]
    rows = [[["YES", "NO"][i % 2], ["NO", "YES", "NO"][i % 3], eths[(3 * i) % 7]] for i in range(12)]
    table = read_table(_csv(tmp_path / "flags.csv", ["ELL", "IEP", "ETH"], rows))
    verdict = header_row_verdict(table.column_names, table)
    assert verdict.value_columns == () and verdict.name_columns == (1, 2, 3)
    assert table.num_rows == 12
