"""Outcome tables on DuckDB (deid/_outcome_db.py) count exactly what the in-memory path counts.

The in-memory path (read_table, ``link_frames``, ``compute_tables``) is the reference: every test
builds the same packages, counts them both ways and compares every table, every cohort's rows, and
the per-row groups and outcomes the differencing check reads. Batches are tiny (a few rows) so that
batch edges fall everywhere; values are messy on purpose (blanks, spaces around codes, lower case,
ranges of units, odd terms, quotes, commas and line breaks inside cells, non-ASCII letters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from linked_people import people_tokens

from agreements._outcomes import link_frames
from deid import (
    SPILL_FOLDER_PREFIX,
    InputError,
    breakdown_groups,
    compute_tables,
    count_linked,
    evaluate_condition,
    load_catalog,
    open_linked,
    read_table,
    row_groups,
    row_outcomes,
)

METRICS = ["dual_enrollment", "cte_concentrators", "college_enrollment", "units_12", "units_24",
           "persistence"]  # fmt: skip
BY = ["school_id", "sex", "race*sex"]


def _messy(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(values: list[str | None]) -> np.ndarray:
        return rng.choice(np.array(values, dtype=object), n)

    return pd.DataFrame({
        "rc": [f"R{seed}-{i}" for i in range(n)],
        "grade_level": pick(["12", " 12", "12 ", "11", "09", "", None]),
        "dual_enrollment": pick(["Y", "N", " Y", "y", None, ""]),
        "cte_concentrator": pick(["Y", "N", None]),
        "school_id": pick(["A", "B ", " B", "C,D", 'E"q', "Zoë", "", None, "F\u00a0", "line\nbreak"]),
        "sex": pick(["F", "M", "X", None, " F"]),
        "race": pick(["100", "700", "600", ""]),
        "school_year": pick(["2025-26", "2026", "2025/2026", "", None]),
        "term": pick(["2026FA", "2026fa", " 2027SP", "2027SU", "2028FA", "bad", None]),
        "units_earned": pick(["12", "15.5", "[12, 24)", ">= 24", "3", "[0, 12)", "", None, "24", "11.99"]),
        "persisted_next_term": pick(["Y", "N", "", None]),
    })  # fmt: skip


def _csv(frame: pd.DataFrame, path: Path) -> Path:
    pcsv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), path)
    return path


def _same_tables(a, b) -> None:
    assert len(a.tables) == len(b.tables)
    for x, y in zip(a.tables, b.tables, strict=True):
        assert (x.metric, x.by, x.groups) == (y.metric, y.by, y.groups)
        assert (x.cohort, x.outcome) == (y.cohort, y.outcome)
    assert a.metric_cohort == b.metric_cohort
    assert set(a.cohorts) == set(b.cohorts)
    for k in a.cohorts:
        assert np.array_equal(a.cohorts[k], b.cohorts[k])


def _no_spill_left(folder: Path) -> None:
    assert not list(folder.glob(SPILL_FOLDER_PREFIX + "*"))


@pytest.mark.parametrize("batch", [1, 7, 100_000])
def test_one_package_counts_as_in_memory_on_messy_values(tmp_path: Path, monkeypatch, batch: int):
    path = _csv(_messy(600, 1), tmp_path / "district.csv")
    reference = compute_tables(link_frames([read_table(path)], ["d"], {})[0], METRICS, BY)
    def refuse(*_a, **_k):  # a PathShare CSV goes straight into DuckDB, never whole through Arrow
        raise AssertionError("read whole")

    monkeypatch.setattr("deid._io.read_table", refuse)
    with open_linked([[path]], ["district"], {}, ["rc"], batch_rows=batch, spill_dir=tmp_path) as data:
        got = count_linked(data, METRICS, BY)
        keys = pa.chunked_array(list(data.keys())).to_pylist()
    _same_tables(reference, got)
    assert keys == [f"R1-{i}" for i in range(600)]  # the digests' keys, in the rows' order
    assert got.tables[0].cohort[0] > 0 and any(t.outcome[-1] for t in got.tables)
    _no_spill_left(tmp_path)


def _tokens(n: int) -> list[str]:
    return people_tokens(n)


@pytest.mark.parametrize("engine", ["duckdb", "memory"])
def test_two_packages_link_and_count_as_in_memory(tmp_path: Path, engine: str):
    """The college's rows in another order, some students only in one package, an element both hold
    (the district's value wins, the college's fills its blanks): the same linked tables, masks, and
    per-row groups and outcomes (what the differencing check reads)."""
    n = 160
    tokens = _tokens(n)
    district = _messy(n, 2).drop(columns=["term", "units_earned", "persisted_next_term"])
    district.insert(1, "link_tokens", tokens)
    rng = np.random.default_rng(3)
    went = sorted(rng.choice(n, 90, replace=False), reverse=True)
    college = _messy(len(went), 4)[["term", "units_earned", "persisted_next_term", "school_id"]]
    college.insert(0, "link_tokens", [tokens[i] for i in went])
    college = pd.concat([college, _messy(20, 5)[["term", "units_earned", "persisted_next_term", "school_id"]]
                         .assign(link_tokens=_tokens(n + 20)[n:])], ignore_index=True)  # fmt: skip
    # A student twice in each file: each of its rows links, yet a row is counted once.
    twice = int(went[0])
    district = pd.concat([district, district.iloc[[twice]].assign(rc="again")], ignore_index=True)
    college = pd.concat([college, college.iloc[[0]]], ignore_index=True)
    files = [_csv(district, tmp_path / "district.csv"), _csv(college, tmp_path / "college.csv")]
    frame, linked = link_frames([read_table(f) for f in files], ["d", "c"], {}, engine=engine)
    reference = compute_tables(frame, METRICS, BY)
    assert len(frame) == n + 1
    with open_linked([[f] for f in files], ["d", "c"], {}, ["rc"], batch_rows=3, spill_dir=tmp_path,
                     engine=engine) as data:  # fmt: skip
        assert (data.rows, data.linked) == (n + 1, linked)
        assert linked >= 80
        got = count_linked(data, METRICS, BY)
        groups = row_groups(data, ["school_id", "race*sex", "race*sex*school_id"])
        outcomes = row_outcomes(data, METRICS)
        three = count_linked(data, METRICS[:2], ["race*sex*school_id"])
    _same_tables(reference, got)
    _same_tables(compute_tables(frame, METRICS[:2], ["race*sex*school_id"]), three)
    for b in ("school_id", "race*sex", "race*sex*school_id"):
        assert list(groups[b]) == list(breakdown_groups(frame, b))
    cat = load_catalog()
    for m in METRICS:
        assert np.array_equal(outcomes[m], evaluate_condition(cat.get(m).numerator, frame).to_numpy(bool))
    _no_spill_left(tmp_path)


def test_files_duckdb_does_not_take_are_read_as_before(tmp_path: Path):
    """A semicolon-separated CSV in Latin-1, a Parquet file and a package of two files: read through
    read_table (its sniffing and checks), then counted on DuckDB — the same tables."""
    frame = _messy(300, 6)
    odd = tmp_path / "odd.csv"
    frame.to_csv(odd, sep=";", index=False, encoding="latin-1")
    parquet = tmp_path / "p.parquet"
    pa.Table.from_pandas(frame, preserve_index=False).to_pandas().to_parquet(parquet)
    halves = [_csv(frame.iloc[:150], tmp_path / "a.csv"), _csv(frame.iloc[150:], tmp_path / "b.csv")]
    reference = compute_tables(link_frames([read_table(odd)], ["d"], {})[0], METRICS, BY)
    for files in ([odd], [parquet], halves):
        with open_linked([files], ["d"], {}, ["rc"], batch_rows=11, spill_dir=tmp_path) as data:
            got = count_linked(data, METRICS, BY)
        for x, y in zip(reference.tables, got.tables, strict=True):  # rows of two files: any order
            assert (x.groups, x.cohort, x.outcome) == (y.groups, y.cohort, y.outcome)
    _no_spill_left(tmp_path)


def test_bad_packages_are_refused_in_one_sentence_and_leave_nothing(tmp_path: Path):
    frame = _messy(50, 7)
    good = _csv(frame, tmp_path / "good.csv")
    other = _csv(frame.drop(columns=["race"]), tmp_path / "other.csv")
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text('rc,grade_level\nR1,"12\nR2,11\n', encoding="utf-8")
    nokey = _csv(frame.drop(columns=["rc"]), tmp_path / "nokey.csv")
    header = tmp_path / "header.csv"
    header.write_text("rc,grade_level\n", encoding="utf-8")
    cases = [
        ([[good, other]], "do not share their columns", None),
        ([[unclosed]], "never closed", None),
        ([[nokey]], "no record code or link tokens", None),
        ([[header]], "has a header but no data rows", None),
        ([[good]], r"memory setting \(1 MB\) is too small to read these packages", 1),
    ]
    for packages, words, memory in cases:
        with pytest.raises(InputError, match=words) as err:
            open_linked(packages, ["the package"], {}, ["rc"], spill_dir=tmp_path, memory_mb=memory)
        assert "\n" not in str(err.value) and "R1" not in str(err.value)
        _no_spill_left(tmp_path)
    with open_linked([[good]], ["d"], {}, ["rc"], spill_dir=tmp_path) as data, pytest.raises(
        InputError, match="cannot be broken down by"
    ):
        count_linked(data, ["units_12"], ["grade_level"])
    _no_spill_left(tmp_path)


def test_duckdb_works_within_the_memory_setting_in_a_private_folder(tmp_path: Path):
    path = _csv(_messy(40, 8), tmp_path / "d.csv")
    with open_linked([[path]], ["d"], {}, ["rc"], memory_mb=200, spill_dir=tmp_path) as data:
        limit = data.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
        spill = data.sql("SELECT current_setting('temp_directory')").fetchall()[0][0]
        assert limit.replace(" ", "") in {"190.7MiB", "200.0MB", "200MB"}
        assert Path(spill).parent == data.folder and data.folder.parent == tmp_path
        assert (data.folder.stat().st_mode & 0o077) == 0
    assert not data.folder.exists()
