"""Readers and writers: encodings, dialects, text-only values, repairs, refusals, formula-safe CSV."""

from __future__ import annotations

import codecs
import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deid import InputError, OutputError, ReadInfo, read_table, write_release, write_table

ROWS = 'SSID,Name,Grade,Notes\n0012345678,José Núñez,09,"line one\nline two"\n0000000001,Zoë O\'Brien,10,ok\n'


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(
    ("encoding", "prefix", "expected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("cp1252", b"", "cp1252"),
        ("utf-16", b"", "utf-16"),  # Python's utf-16 codec writes a BOM
    ],
)
def test_encodings_are_detected_and_values_stay_text(tmp_path, encoding, prefix, expected):
    p = _write(tmp_path, "in.csv", prefix + ROWS.encode(encoding))
    info = ReadInfo()
    t = read_table(p, info=info)
    assert info.encoding == expected
    assert t.column_names == ["SSID", "Name", "Grade", "Notes"]
    assert all(pa.types.is_string(c.type) for c in t.columns)
    assert t.column("SSID").to_pylist() == ["0012345678", "0000000001"]  # leading zeros survive
    assert t.column("Grade").to_pylist() == ["09", "10"]
    assert t.column("Name").to_pylist() == ["José Núñez", "Zoë O'Brien"]
    assert t.column("Notes").to_pylist()[0] == "line one\nline two"  # quoted newline kept


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path, delimiter):
    text = ROWS.replace(",", delimiter)
    info = ReadInfo()
    t = read_table(_write(tmp_path, "in.csv", text.encode()), info=info)
    assert info.delimiter == delimiter
    assert t.num_rows == 2 and t.column("Grade").to_pylist() == ["09", "10"]


def test_cp1252_bytes_late_in_a_big_file_are_still_found(tmp_path):
    body = "ID,Name\n" + "".join(f"{i:05d},Plain\n" for i in range(60000)) + "99999,Ñandú\n"
    info = ReadInfo()
    t = read_table(_write(tmp_path, "in.csv", body.encode("cp1252")), info=info)
    assert info.encoding == "cp1252"
    assert t.column("Name")[-1].as_py() == "Ñandú"
    assert t.column("ID")[0].as_py() == "00000"


def test_real_export_repairs(tmp_path):
    # trailing empty unnamed columns, an identical repeated header, an empty repeated header,
    # a row one field short, a row with an extra empty field
    text = (
        "ID,Phone,Name,Phone,Email,Email,,\n"
        "001,555-0100,Ann,555-0100,,,,\n"
        "002,555-0101,Bo,555-0101,,,\n"
        "003,555-0102,Cy,555-0102,,,,,\n"
    )
    info = ReadInfo()
    t = read_table(_write(tmp_path, "in.csv", text.encode()), info=info)
    assert t.column_names == ["ID", "Phone", "Name", "Email"]
    assert t.column("ID").to_pylist() == ["001", "002", "003"]
    assert t.column("Phone").to_pylist() == ["555-0100", "555-0101", "555-0102"]
    assert len(info.repairs) >= 3
    assert not any("555" in r or "Ann" in r for r in info.repairs)  # no values in messages


def test_ragged_rows_mixed_with_quoted_newlines_are_repaired_in_place(tmp_path):
    text = 'A,B,C\n1,"x\ny",3\n2,short\n3,"p\nq",r\n4,5,6,\n'
    t = read_table(_write(tmp_path, "in.csv", text.encode()))
    assert t.column("A").to_pylist() == ["1", "2", "3", "4"]  # order preserved
    assert t.column("B").to_pylist() == ["x\ny", "short", "p\nq", "5"]
    assert t.column("C").to_pylist() == ["3", None, "r", "6"]


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", "is empty"),
        (b"\n\n", "is empty"),
        (b"A,B,C\n", "header but no data rows"),
        (b"A,B,C\n1,2,3\n1,2,3,4,5\n", "row 3 has 5 fields, the header has 3"),
        (b"A,B,C\n1\n", "row 2 has 1 fields, the header has 3"),
        (b"A,,C\n1,2,3\n", "column 2 has no name"),
        (b"A,B,A\n1,2,3\n", "names 'A' twice"),
        (b"A,B\n1,\x00\x01\x02\n", "binary"),
        (b'A,B\n1,"unclosed\n2,3\n', "never closed"),
        (b"PK\x03\x04" + os.urandom(200), "binary"),
    ],
)
def test_bad_csv_is_refused_with_one_sentence(tmp_path, data, phrase):
    p = _write(tmp_path, "bad.csv", data)
    with pytest.raises(InputError) as info:
        read_table(p)
    msg = str(info.value)
    assert phrase in msg and "bad.csv" in msg and "\n" not in msg


def test_bytes_in_no_plausible_encoding_are_refused(tmp_path):
    rng = __import__("random").Random(7)
    junk = bytes(rng.randrange(0x80, 0x100) for _ in range(20000))
    p = _write(tmp_path, "junk.csv", b"A,B\n" + junk)
    with pytest.raises(InputError, match=r"junk\.csv .*(encoding|binary)"):
        read_table(p)


def test_a_10_mb_cell_is_refused_with_its_row(tmp_path):
    big = "x" * (10 * 1024 * 1024)
    p = _write(tmp_path, "big.csv", f"A,B\n1,ok\n2,{big}\n".encode())
    with pytest.raises(
        InputError, match=r"big\.csv: the cell in column 'B', data row 2, is larger than 1 MB"
    ):
        read_table(p)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputError, match=r"\.json"):
        read_table(_write(tmp_path, "x.json", b"{}"))


def _xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for r in rows:
            ws.append(r)
    wb.save(path)
    return path


def test_xlsx_zero_padded_number_formats_keep_leading_zeros(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SSID", "Count"])
    ws.append([12345, 7])
    ws["A2"].number_format = "0000000000"
    wb.save(tmp_path / "z.xlsx")
    assert read_table(tmp_path / "z.xlsx").to_pydict() == {"SSID": ["0000012345"], "Count": ["7"]}


def test_xlsx_one_sheet_named_sheet_and_several_unnamed(tmp_path):
    import datetime as dt

    rows = [
        ["SSID", "Birth Date", "GPA", "Count"],
        ["0012", dt.datetime(2008, 3, 5), 3.25, 4.0],
        ["0013", None, None, 2],
    ]
    one = _xlsx(tmp_path / "one.xlsx", {"Students": rows})
    t = read_table(one)
    assert t.to_pydict() == {
        "SSID": ["0012", "0013"],
        "Birth Date": ["2008-03-05", None],
        "GPA": ["3.25", None],
        "Count": ["4", "2"],
    }
    many = _xlsx(tmp_path / "many.xlsx", {"Readme": [["x"]], "Students": rows})
    with pytest.raises(InputError, match=r"many\.xlsx has 2 sheets \(Readme, Students\)"):
        read_table(many)
    assert read_table(many, sheet="Students").num_rows == 2
    with pytest.raises(InputError, match="no sheet named 'Other'"):
        read_table(many, sheet="Other")


def test_parquet_is_read_as_text(tmp_path):
    import datetime as dt

    p = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "id": ["007"],
                "n": pa.array([3], pa.int64()),
                "x": [2.5],
                "y": [4.0],
                "d": pa.array([dt.date(2008, 3, 5)]),
            }
        ),
        p,
    )
    t = read_table(p)
    assert t.to_pydict() == {"id": ["007"], "n": ["3"], "x": ["2.5"], "y": ["4"], "d": ["2008-03-05"]}


def test_csv_writer_neutralizes_formulas_and_keeps_numbers(tmp_path):
    out = tmp_path / "out.csv"
    t = pa.table(
        {
            "a": ['=HYPERLINK("x")', "+1 555", "-3", "@SUM(A1)", "\tx", "ok", None, "-2.5", "a=b"],
            "b": ["1"] * 9,
        }
    )
    write_table(t, out)
    back = read_table(out).column("a").to_pylist()
    assert back == ['\'=HYPERLINK("x")', "'+1 555", "-3", "'@SUM(A1)", "'\tx", "ok", None, "-2.5", "a=b"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_parquet_writer_and_bad_output_paths(tmp_path):
    t = pa.table({"a": ["01", None]})
    write_table(t, tmp_path / "o.parquet")
    assert pq.read_table(tmp_path / "o.parquet").column("a").to_pylist() == ["01", None]
    with pytest.raises(OutputError, match=r"\.xlsx"):
        write_table(t, tmp_path / "o.xlsx")
    with pytest.raises(OutputError, match="does not exist"):
        write_table(t, tmp_path / "missing" / "o.csv")


def test_failed_write_leaves_nothing(tmp_path):
    t = pa.table({"a": ["1"]})

    def boom(_tmp: Path) -> None:
        raise RuntimeError("late failure")

    with pytest.raises(RuntimeError):
        write_table(t, tmp_path / "o.csv", before_commit=boom)
    assert list(tmp_path.iterdir()) == []


_cell = st.one_of(
    st.just(""),
    st.from_regex(r"0[0-9]{1,9}", fullmatch=True),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"), max_size=12
    ),
    st.sampled_from(["a,b", 'say "hi"', "line\nbreak", "semi;colon", "pipe|x", "tab\there", "Zoë Núñez"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_cell, min_size=3, max_size=3), min_size=1, max_size=15),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    quoting=st.sampled_from([0, 1]),  # csv.QUOTE_MINIMAL, csv.QUOTE_ALL
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_property_csv_round_trip(tmp_path, rows, delimiter, encoding, quoting, newline):
    import csv as _csv
    import io

    buf = io.StringIO()
    writer = _csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    writer.writerow(["ID", "Name", "Notes"])
    writer.writerows(rows)
    p = tmp_path / f"rt{abs(hash((delimiter, encoding)))}.csv"
    p.write_bytes(buf.getvalue().encode(encoding))
    t = read_table(p)
    expected = [[c or None for c in r] for r in rows]
    got = [list(r.values()) for r in t.to_pylist()]
    assert got == expected


def test_rows_repeating_the_header_are_refused_by_row(tmp_path):
    """Two exports pasted one under the other: the second header row is not a student, and dropping it
    silently would shift every later row number, so the clerk is told which rows to delete."""
    import openpyxl

    src = tmp_path / "appended.csv"
    src.write_text(
        "Student ID,Grade,Gender\nA1,9,F\nB2,10,M\n Student ID ,Grade,Gender\nC3,11,F\n"
        "Student ID,Grade,Gender\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as info:
        read_table(src)
    assert str(info.value) == (
        f"{src}: data rows 3, 5 repeat the header row (two exports pasted together?); delete them and "
        "read the file again."
    )

    # The same in a workbook; and a row equal to the header in only some columns is a student's.
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in (["Name", "Grade"], ["Ana", "9"], ["Name", "Grade"], ["Name", "10"]):
        ws.append(row)
    wb.save(tmp_path / "appended.xlsx")
    with pytest.raises(InputError, match="data row 2 repeats the header row"):
        read_table(tmp_path / "appended.xlsx")
    ws.delete_rows(3)
    wb.save(tmp_path / "fixed.xlsx")
    assert read_table(tmp_path / "fixed.xlsx").column("Name").to_pylist() == ["Ana", "Name"]


@pytest.mark.parametrize("content", [b"Student ID,Grade", b"Student ID,Grade\n", b"Student ID,Grade\r\n  "])
def test_a_header_alone_is_named_as_such_with_or_without_a_line_end(tmp_path, content):
    """Without a final line end pyarrow reported 'a quote that is never closed'; it is a header alone."""
    src = tmp_path / "header-only.csv"
    src.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_table(src)
    assert str(info.value) == f"{src} has a header but no data rows."


def test_a_tab_separated_row_of_empty_cells_is_a_data_row(tmp_path):
    """Found by the round-trip property: stripping all whitespace also stripped the tabs of an
    all-empty last row, and the file was refused as 'a header but no data rows'."""
    for newline in ("\n", "\r\n"):
        p = tmp_path / "blank_row.csv"
        p.write_text(f"ID\tName\tNotes{newline}\t\t{newline}", encoding="utf-8", newline="")
        assert read_table(p).to_pylist() == [{"ID": None, "Name": None, "Notes": None}]
    p = tmp_path / "header_only.csv"
    p.write_text("ID\tName\tNotes\n", encoding="utf-8")
    with pytest.raises(InputError, match="header but no data rows"):
        read_table(p)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_write_release_returns_the_hash_of_what_it_wrote(tmp_path, ext: str) -> None:
    """Sealing trusts this hash for its manifest (and checks it on its one read of the file)."""
    import hashlib

    from deid import write_release

    table = pa.table({"code": [f"S{i:05d}" for i in range(3000)], "note": ["=1+1"] * 3000})
    out = tmp_path / f"release.{ext}"
    digest = write_release(table, out)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()


def _mixed_workbook(path: Path) -> Path:
    import datetime as dt

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Students"
    ws.append(["SSID", "Birth Date", "GPA", "Flag", "Note", "Time", "Code"])
    ws.append([12345, dt.datetime(2008, 3, 5), 3.25, True, "hi", dt.time(10, 30), 7])
    ws.append([None, None, None, None, None, None, None])  # an empty row is skipped
    ws.append([42, dt.datetime(2009, 1, 2, 8, 15), 1e-05, False, "", dt.time(0, 0), "0042"])
    ws.append([7.0, None, 2.0, None, "=not a formula", None, 3])
    for row in (2, 4, 5):
        ws[f"A{row}"].number_format = "0000000000"
    ws["G2"].number_format = "000"
    wb.save(path)
    return path


def test_xlsx_fast_reader_gives_what_openpyxl_gives(tmp_path):
    """Values from calamine, styles from one scan of the sheet: the same text, cell for cell, as the
    openpyxl reader it replaced (kept as the fallback), zero-padded IDs included."""
    from deid import _io

    path = _mixed_workbook(tmp_path / "m.xlsx")
    fast = read_table(path).to_pydict()
    slow = _io._read_xlsx_cells(path, None, ReadInfo()).to_pydict()
    assert fast == slow
    assert fast["SSID"] == ["0000012345", "0000000042", "0000000007"] and fast["Code"] == ["007", "0042", "3"]


def test_xlsx_columns_of_one_kind_read_as_openpyxl_reads_them(tmp_path):
    """The fast paths for a column of only dates, only numbers, or numbers and text give the text the
    cell-by-cell reader gives (a whole number without ".0", others as Python writes them)."""
    import datetime as dt

    import openpyxl

    from deid import _io

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Enrolled", "Credits", "Mixed", "Whole"])
    for i in range(40):
        ws.append([dt.date(2020, 1, 1) + dt.timedelta(days=i), i * 2.5, "n/a" if i % 3 else i / 8, i * 1000])
    path = tmp_path / "kinds.xlsx"
    wb.save(path)
    fast = read_table(path).to_pydict()
    assert fast == _io._read_xlsx_cells(path, None, ReadInfo()).to_pydict()
    assert fast["Enrolled"][:2] == ["2020-01-01", "2020-01-02"] and fast["Credits"][:2] == ["0", "2.5"]
    assert fast["Mixed"][:4] == ["0", "n/a", "n/a", "0.375"] and fast["Whole"][1] == "1000"


def test_xlsx_without_cell_positions_goes_the_slow_way(tmp_path):
    """Cells may omit their position (r="A2"): order implies it. The style scan cannot place them, so
    openpyxl reads such a workbook, and the zero-padded IDs are still restored."""
    import re
    import zipfile

    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SSID", "Name"])
    for i in range(1, 4):
        ws.append([i * 11, f"n{i}"])
        ws[f"A{i + 1}"].number_format = "00000"
    path = tmp_path / "m.xlsx"
    wb.save(path)  # every cell present: without positions, order alone places them
    bare = tmp_path / "bare.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bare, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data = re.sub(rb'<c r="[A-Z]+\d+"', b"<c", data)
            dst.writestr(item, data)
    expected = {"SSID": ["00011", "00022", "00033"], "Name": ["n1", "n2", "n3"]}
    assert read_table(path).to_pydict() == expected
    assert read_table(bare).to_pydict() == expected


def test_xlsx_number_outside_excel_dates_is_refused_by_its_cell(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Birth Date"])
    ws.append([1e10])
    ws["A2"].number_format = "yyyy-mm-dd"
    wb.save(tmp_path / "d.xlsx")
    with pytest.raises(InputError, match=r"cell A2 \(sheet 'Sheet'\) is formatted as a date but holds a "
                                         r"number outside Excel's dates") as caught:
        read_table(tmp_path / "d.xlsx")
    assert "10000000000" not in str(caught.value)  # the value is never quoted


def test_a_huge_xlsx_is_refused_in_one_sentence(tmp_path, monkeypatch):
    from deid import _io

    path = _mixed_workbook(tmp_path / "m.xlsx")
    monkeypatch.setattr(_io, "_MAX_XLSX_BYTES", 1000)
    with pytest.raises(InputError, match=r"too large to read as an Excel workbook .* save the sheet as CSV"):
        read_table(path)


# --- released data as an Excel workbook (an agreement's release_format xlsx) -----------------------


def test_a_workbook_keeps_codes_as_text_and_text_never_runs_as_a_formula(tmp_path: Path):
    table = pa.table({
        "school_id": ["0109850", "0112607", None, "=HYPERLINK(\"x\")"],
        "gpa": [3.5, 2.0, None, 4.0],
    })  # fmt: skip
    out = tmp_path / "release.xlsx"
    digest = write_release(table, out)

    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()  # hashed as written, for the manifest
    import openpyxl

    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["data"]
    cells = {row[0].value: row for row in book["data"].iter_rows(min_row=2)}
    code = cells["0109850"][0]
    assert code.data_type == "s" and code.number_format == "@"  # text, shown as Text in Excel
    assert cells["=HYPERLINK(\"x\")"][0].data_type == "s"  # a string, not a formula
    assert cells["0109850"][1].data_type == "n" and cells["0109850"][1].value == 3.5
    header = [c.value for c in next(book["data"].iter_rows(max_row=1))]
    assert header == ["school_id", "gpa"]
    # PathShare's own reader (the recipient's outcomes) reads the codes back as they were
    assert sorted(v for v in read_table(out).column("school_id").to_pylist() if v) == [
        "0109850", "0112607", "=HYPERLINK(\"x\")"]  # fmt: skip


def test_a_release_over_excels_row_limit_is_refused_and_nothing_written(tmp_path: Path, monkeypatch):
    import deid._io as io_module  # the limit, made small

    monkeypatch.setattr(io_module, "XLSX_MAX_ROWS", 2)
    with pytest.raises(OutputError, match="at most 2 rows"):
        write_release(pa.table({"a": ["1", "2", "3"]}), tmp_path / "big.xlsx")
    assert list(tmp_path.iterdir()) == []
