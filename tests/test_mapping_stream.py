"""Mapping and validation of a file read in batches (issue 18, item 2): deid.scan_extract gives what
suggest_mapping, validate and apply_mapping give on the whole table, at batch sizes small enough that
every check crosses batch edges; a memory setting too small, a file only the in-memory reader takes,
and a disk too full each end in one sentence with nothing left behind."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from faults import disk_full_on_arrow_write

from deid import (
    MappingProfile,
    apply_mapping,
    dictionary_elements,
    element_library,
    read_table,
    scan_extract,
    suggest_mapping,
    validate,
)
from deid._spill import SPILL_FOLDER_PREFIX
from deid._stream import NotStreamable
from deid.errors import InputError, OutputError
from deid.synth import generate

LIB = element_library()
TODAY = dt.date(2026, 6, 30)
BATCHES = [1, 7, 23, 1000]


def _write(table: pa.Table, path) -> None:
    pcsv.write_csv(table, path)


def _problem_rows(n: int) -> pa.Table:
    """A small export with every kind of problem validation reports, spread so that repeats, first
    rows and counts fall on both sides of batch edges."""
    ids = [f"{i:010d}" for i in range(1, n + 1)]
    for at, same in ((6, 0), (7, 1), (22, 2), (23, 3), (46, 10), (n - 1, 1)):
        ids[at] = ids[same]  # same term: repeats on both sides of batch edges of 7 and 23, and at the end
    ids[5] = "12345"  # lost its leading zeros (a spreadsheet)
    ids[30] = "1.2345E+09"
    ids[31] = ""  # no ID: not a repeat of another empty one
    ids[32] = ""
    sexes = ["M", "F", "m", "f", "1", "X"] * (n // 6 + 1)
    sexes[8], sexes[24] = "Zed", "Q"
    births = [f"0{1 + i % 9}/1{i % 10}/20{10 + i % 5}" for i in range(n)]
    births[9], births[40], births[41] = "13/45/2009", "01/02/2099", "01/02/1850"
    gpas = [f"{(i % 40) / 10:.1f}" for i in range(n)]
    gpas[12], gpas[50] = "abc", "7.5"
    # percentages, but the first rows' look like fractions: all divided by 100 (the whole column's
    # largest is over 1), the first batches' too
    attendance = ["0.95" if i < 40 else f"{80 + i % 20}" for i in range(n)]
    terms = ["2024FA", "2025SP"] * (n // 2 + 1)
    return pa.table(
        {
            "SSID": ids,
            "Gender": sexes[:n],
            "DOB": births,
            "GPA": gpas,
            "Attendance Pct": attendance,
            "Term": terms[:n],
            "Notes": [f"note {i}" for i in range(n)],
        }
    )


MAPPING = {
    "SSID": "state_student_id",
    "Gender": "sex",
    "DOB": "birth_date",
    "GPA": "gpa",
    "Attendance Pct": "attendance_rate",
    "Term": "term",
}


@pytest.fixture(scope="module")
def problems(tmp_path_factory):
    path = tmp_path_factory.mktemp("problems") / "export.csv"
    _write(_problem_rows(120), path)
    return path


def _els(*names):
    return [LIB[n] for n in names]


@pytest.mark.parametrize("batch_rows", BATCHES)
def test_streamed_validation_equals_the_whole_table(problems, batch_rows):
    els = _els(*MAPPING.values(), "grade_level")
    table = read_table(problems)
    whole = [f.to_dict() for f in validate(table, MAPPING, els, today=TODAY)]
    with scan_extract(problems, batch_rows=batch_rows) as scan:
        assert scan.num_rows == 120 and scan.column_names == table.column_names
        streamed = [f.to_dict() for f in scan.validate(MAPPING, els, today=TODAY)]
    assert streamed == whole
    kinds = {f["kind"] for f in whole}
    # the test exercises every check (a finding missing on both sides would pass unnoticed)
    assert {"unmapped_required", "lost_zeros", "identifier_shape", "outside_code_set", "bad_date",
            "future_date", "age_out_of_range", "bad_number", "out_of_range", "duplicate_id"} <= kinds
    dup = next(f for f in whole if f["kind"] == "duplicate_id")
    assert dup["count"] == 6 and dup["first_rows"] == [7, 8, 23, 24, 47]


@pytest.mark.parametrize("batch_rows", BATCHES)
def test_streamed_mapping_equals_the_whole_table(problems, batch_rows):
    els = _els(*MAPPING.values())
    table = read_table(problems)
    whole = apply_mapping(table, MAPPING, els, fill_missing=True, keep_unmapped=True)
    with scan_extract(problems, batch_rows=batch_rows) as scan:
        parts = list(scan.mapped_batches(MAPPING, els, fill_missing=True, keep_unmapped=True))
    assert max(p.num_rows for p in parts) <= batch_rows
    assert pa.concat_tables(parts).to_pylist() == whole.to_pylist()
    # the percentages were divided by 100 because the whole file's largest is over 1, in every batch
    rates = whole.column("attendance_rate").to_pylist()
    assert (rates[0], rates[-1]) == ("0.0095", "0.99")


def test_a_date_format_comes_from_the_files_first_rows_not_each_batchs(tmp_path):
    # The column's format is the one of the file's first 2,000 rows (M/D/YYYY): the later dd-Mon-yyyy
    # dates are not in it, in memory and in every batch alike (a batch of only those would pick them).
    days = [f"{1 + i % 12:02d}/03/2010" for i in range(2100)] + ["25-Mar-2010"] * 100
    path = tmp_path / "dates.csv"
    _write(pa.table({"DOB": days}), path)
    els = _els("birth_date")
    table = read_table(path)
    whole = apply_mapping(table, {"DOB": "birth_date"}, els).column("birth_date").to_pylist()
    assert whole[0] == "2010-01-03" and whole[-1] is None
    found = [f.to_dict() for f in validate(table, {"DOB": "birth_date"}, els, today=TODAY)]
    assert [f["count"] for f in found if f["kind"] == "bad_date"] == [100]
    with scan_extract(path, batch_rows=97) as scan:
        parts = list(scan.mapped_batches({"DOB": "birth_date"}, els))
        assert [f.to_dict() for f in scan.validate({"DOB": "birth_date"}, els, today=TODAY)] == found
    assert pa.concat_tables(parts).column("birth_date").to_pylist() == whole


@pytest.mark.parametrize("kind", ["k12", "college"])
def test_streamed_suggestions_equal_the_whole_tables(tmp_path, kind):
    result = generate(kind, 2600, seed=7, messy=True)  # more rows than the 2,000-row sample
    truth = result.truth.column_elements()
    first: dict[str, int] = {}
    for i, name in enumerate(result.table.column_names):
        if name in truth and name not in first:
            first[name] = i
    table = result.table.select(list(first.values()))
    # a rare spelling on a row the 2,000-row sample skips: its recode comes from every distinct value
    sex = next(c for c in table.column_names if truth[c] == "sex")
    sampled = set(np.linspace(0, table.num_rows - 1, 2000).astype(np.int64).tolist())
    rare = next(i for i in range(table.num_rows) if i not in sampled)
    values = table.column(sex).to_pylist()
    values[rare] = "Female"
    table = table.set_column(table.column_names.index(sex), sex, pa.array(values, pa.string()))
    path = tmp_path / f"{kind}.csv"
    _write(table, path)
    table = read_table(path)
    dictionary = dictionary_elements([{"name": n} for n in dict.fromkeys(truth.values())])
    whole = suggest_mapping(table, dictionary)
    with scan_extract(path, batch_rows=97) as scan:
        streamed = scan.suggest(dictionary)
        profile = MappingProfile.from_suggestions("s", streamed)
        findings = [f.to_dict() for f in scan.validate(profile, dictionary, today=TODAY)]
        mapped = pa.concat_tables(list(scan.mapped_batches(profile, dictionary)))
    assert [s.to_dict() for s in streamed] == [s.to_dict() for s in whole]
    assert next(s for s in whole if s.column == sex).recodes.get("Female") == "F"  # compared too
    assert findings == [f.to_dict() for f in validate(table, profile, dictionary, today=TODAY)]
    assert mapped.to_pylist() == apply_mapping(table, profile, dictionary).to_pylist()


def test_nothing_of_the_scan_is_left_after_it_closes_or_fails(problems, tmp_path):
    spill = tmp_path / "spill"
    spill.mkdir()
    with scan_extract(problems, batch_rows=13, spill_dir=spill) as scan:
        folder = scan.spill
        assert folder.exists() and oct(folder.stat().st_mode & 0o777) == "0o700"
        with pytest.raises(InputError, match="'Nope'"):
            scan.validate({"Nope": "sex"}, _els("sex"))
    assert not folder.exists() and not list(spill.glob(SPILL_FOLDER_PREFIX + "*"))


def test_a_memory_setting_below_the_minimum_is_one_sentence(problems, tmp_path):
    with pytest.raises(InputError, match=r"^The memory setting \(8 MB\) is below the 64 MB"):
        scan_extract(problems, memory_mb=8, spill_dir=tmp_path)
    assert not list(tmp_path.glob(SPILL_FOLDER_PREFIX + "*"))


def test_a_file_only_the_in_memory_reader_takes_is_said_so(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(NotStreamable):
        scan_extract(path, spill_dir=tmp_path)
    assert not list(tmp_path.glob(SPILL_FOLDER_PREFIX + "*"))


def test_a_disk_too_full_for_the_copy_is_one_sentence(problems, tmp_path, monkeypatch):
    writes = disk_full_on_arrow_write(monkeypatch)
    with pytest.raises(OutputError, match=r"^Not enough room for the temporary files .*No space left"):
        scan_extract(problems, batch_rows=7, spill_dir=tmp_path)
    assert len(writes) == 3 and not list(tmp_path.glob(SPILL_FOLDER_PREFIX + "*"))


def test_a_disk_too_full_for_the_id_check_is_one_sentence(problems, tmp_path, monkeypatch):
    """DuckDB cannot write the IDs it looks for repeats in: one sentence, its files gone with the scan."""
    import duckdb

    real = duckdb.connect

    class Full:
        def __init__(self, con) -> None:
            self.con = con

        def execute(self, sql: str, *args):
            if sql.startswith("INSERT"):
                raise duckdb.IOException("No space left on device")
            return self.con.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self.con, name)

    monkeypatch.setattr(duckdb, "connect", lambda *a, **kw: Full(real(*a, **kw)))
    with scan_extract(problems, batch_rows=7, spill_dir=tmp_path) as scan:
        with pytest.raises(OutputError, match=r"^Not enough room for the temporary files"):
            scan.validate(MAPPING, _els(*MAPPING.values()), today=TODAY)
        assert not list(scan.spill.glob("ids.duckdb*"))
    assert not list(tmp_path.glob(SPILL_FOLDER_PREFIX + "*"))


def test_a_memory_setting_too_small_for_the_id_check_is_one_sentence(problems, tmp_path, monkeypatch):
    import duckdb

    real = duckdb.connect

    class Small:
        def __init__(self, con) -> None:
            self.con = con

        def execute(self, sql: str, *args):
            if "DISTINCT" in sql:
                raise duckdb.OutOfMemoryException("could not allocate block")
            return self.con.execute(sql, *args)

        def __getattr__(self, name: str):
            return getattr(self.con, name)

    monkeypatch.setattr(duckdb, "connect", lambda *a, **kw: Small(real(*a, **kw)))
    with (
        scan_extract(problems, batch_rows=7, spill_dir=tmp_path) as scan,
        pytest.raises(InputError, match=r"^The memory setting \(1,024 MB\) is too small to look for"),
    ):
        scan.validate(MAPPING, _els(*MAPPING.values()), today=TODAY)


# ------------------------------------------------------------------------------------------ CLI


def test_cli_map_in_batches_prints_what_the_whole_file_gives(run_cli, tmp_path):
    path = tmp_path / "export.csv"
    _write(_problem_rows(120), path)
    code, out, err = run_cli("map", path, "--json", "--set", "Gender=sex")
    assert code == 0, err
    whole = json.loads(out)
    code, out, err = run_cli("map", path, "--json", "--set", "Gender=sex", "--batch-rows", "13")
    assert code == 0, err
    streamed = json.loads(out)
    assert streamed.pop("notes") == [] and whole.pop("notes") == []
    assert streamed == whole
    assert any(f["kind"] == "duplicate_id" for f in whole["validation"])
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]  # the copy it read batches from is gone


def test_cli_map_in_batches_of_a_file_needing_repairs_reads_it_whole_and_says_so(run_cli, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("SSID,Gender\n0000000001,M\n0000000002\n0000000003,F\n", encoding="utf-8")
    code, out, err = run_cli("map", path, "--memory-mb", "256")
    assert code == 0, err
    assert "Note: read whole, not in batches: its rows need repairs" in out
    assert "Read with a repair" in out


def test_cli_map_with_too_little_memory_is_one_sentence(run_cli, tmp_path):
    path = tmp_path / "export.csv"
    _write(_problem_rows(60), path)
    code, out, err = run_cli("map", path, "--memory-mb", "8")
    assert code == 1 and out == ""
    assert err.startswith("pathshare: The memory setting (8 MB) is below the 64 MB")
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["export.csv"]
