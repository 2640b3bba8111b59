"""Streaming de-identification (issue 18 item 1): batches of a few rows, so every batch edge is crossed,
give what the in-memory run gives; the whole-file parts (k-anonymity classes, recode_rare and zip3
counts, the roster) come from the first passes; bad settings and a full disk leave nothing behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from faults import disk_full_on_arrow_write

from deid import deidentify_file, load_policy
from deid.errors import InputError, OutputError
from deid.synth import synth_file

POLICY = {
    "pathshare_policy": 1,
    "k": 5,
    "drop_unlisted": True,
    "columns": {
        "SSID": {"treatment": "record_code", "as": "student_code"},
        "Local ID": {"treatment": "token", "as": "local_token"},
        "Birth Date": {"treatment": "generalize_date", "to": "year", "as": "birth_year",
                       "quasi_identifier": True},
        "Gender": {"treatment": "keep", "quasi_identifier": True},
        "ZIP": {"treatment": "zip3", "as": "zip3", "quasi_identifier": True},
        "Grade": {"treatment": "keep", "quasi_identifier": True},
        "Enroll Date": {"treatment": "date_shift", "by": "SSID"},
        "EL Status": {"treatment": "recode_rare", "min_count": 5},
        "GPA": {"treatment": "bucket", "edges": [0, 1, 2, 3, 4.5]},
        "Counselor Notes": {"treatment": "redact_text"},
    },
}
REPORTED = (
    "rows_in", "rows_out", "k_achieved", "suppressed_cells", "rows_with_suppression", "equivalence_classes",
    "records_at_risk_before", "rows_fully_suppressed", "rows_with_empty_qi", "redacted_by_kind",
    "residual_findings_total", "residual_by_kind", "dropped_columns", "warnings",
)


@pytest.fixture(scope="module")
def extract(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stream")
    synth_file("k12", 240, folder / "k12.csv", seed=3)
    return folder / "k12.csv"


def _rows(path: Path) -> list[str]:
    """The file's rows as sorted JSON lines: the order is random in both runs, the rows are not."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
    else:
        table = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
            column_types={}, strings_can_be_null=True, quoted_strings_can_be_null=False))
    return sorted(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())


def _policy(tmp_path: Path, policy: dict = POLICY):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(policy))
    return load_policy(path)


# 23 rows a batch: 11 batches of the 240 rows, the last one short — every batch edge is still crossed.
# (It was 7: 35 batches, a third of this file's time, each paying the text scanner's fixed cost.)
@pytest.mark.parametrize(("batch_rows", "out_ext"), [(23, "csv"), (50, "parquet"), (1000, "csv")])
def test_streaming_equals_the_in_memory_run(tmp_path: Path, extract: Path, batch_rows: int,
                                            out_ext: str) -> None:
    policy = _policy(tmp_path)
    secret = tmp_path / "secret.key"
    whole = deidentify_file(extract, policy, tmp_path / f"whole.{out_ext}", secret_file=secret)
    streamed = deidentify_file(extract, policy, tmp_path / f"streamed.{out_ext}", secret_file=secret,
                               batch_rows=batch_rows, memory_mb=128)
    assert _rows(tmp_path / f"streamed.{out_ext}") == _rows(tmp_path / f"whole.{out_ext}")
    for field in REPORTED:
        assert getattr(streamed, field) == getattr(whole, field), field
    assert whole.suppressed_cells > 0 and whole.redacted_by_kind  # the comparison has teeth
    assert [(c.name, c.cells_changed, c.suppressed_cells, c.redacted_by_kind) for c in streamed.columns] == [
        (c.name, c.cells_changed, c.suppressed_cells, c.redacted_by_kind) for c in whole.columns
    ]
    assert any("streamed in batches" in n for n in streamed.notes)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pathshare-spill-")]


def test_streaming_a_parquet_input_and_a_note_left_in_the_clear(tmp_path: Path, extract: Path) -> None:
    """A Parquet extract streams too, and a residual finding is reported at the same data row."""
    import pyarrow.parquet as pq

    table = pcsv.read_csv(extract, convert_options=pcsv.ConvertOptions(
        column_types={n: pa.string() for n in pcsv.read_csv(extract).column_names}))
    pq.write_table(table, tmp_path / "k12.parquet")
    policy = dict(POLICY, columns=dict(POLICY["columns"], **{"Student Email": {"treatment": "keep"}}))
    policy = _policy(tmp_path, policy)
    secret = tmp_path / "secret.key"
    whole = deidentify_file(tmp_path / "k12.parquet", policy, tmp_path / "w.csv", secret_file=secret)
    streamed = deidentify_file(tmp_path / "k12.parquet", policy, tmp_path / "s.csv", secret_file=secret,
                               batch_rows=31)  # 8 batches, the last one short
    assert whole.residual_findings_total > 0
    assert [(f.column, f.row, f.kind) for f in streamed.residual_findings] == [
        (f.column, f.row, f.kind) for f in whole.residual_findings
    ]
    assert _rows(tmp_path / "s.csv") == _rows(tmp_path / "w.csv")


def test_the_memory_setting_sizes_the_batches(tmp_path: Path, extract: Path) -> None:
    """Without --batch-rows the memory setting chooses the batch: half of it for a batch's work, so a
    smaller setting means smaller batches, never more than the cap, never a batch too small to pay."""
    from deid._stream import DEFAULT_BATCH_ROWS, batch_rows_for, duckdb_memory_mb

    row = 430.0  # bytes a row of the synthetic K-12 extract takes as read
    sizes = [batch_rows_for(mb, row) for mb in (64, 256, 512, 1024, 1 << 20)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-2] and sizes[-1] == DEFAULT_BATCH_ROWS
    assert 12 * row * batch_rows_for(512, row) <= 256 << 20  # a batch's work within half the setting
    assert batch_rows_for(64, 1e9) == 1024  # a huge row still gets a workable batch
    assert duckdb_memory_mb(512) == 128 and duckdb_memory_mb(64) == 32
    report = deidentify_file(extract, _policy(tmp_path), tmp_path / "out.csv",
                             secret_file=tmp_path / "secret.key", memory_mb=64)
    from types import SimpleNamespace

    from deid._stream import open_source

    chosen = batch_rows_for(64, open_source(extract, SimpleNamespace()).row_bytes)
    assert 1024 <= chosen < DEFAULT_BATCH_ROWS
    assert any(f"streamed in batches of {chosen:,} rows" in n for n in report.notes), report.notes


def test_suppression_on_classes_equals_suppression_on_rows() -> None:
    """Local suppression decided per class (weighted by its rows) is row-wise suppression."""
    from deid._risk import suppress_to_k
    from deid._stream import QiClasses, suppress_classes

    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 400))
        table = pa.table({
            "a": pa.array(rng.choice(["x", "y", "z", "", None], n).tolist(), pa.string()),
            "b": pa.array(rng.choice([str(i) for i in range(12)], n).tolist(), pa.string()),
            "c": pa.array(rng.choice(["p", "q"], n).tolist(), pa.string()),
        })
        qis, k = ["a", "b", "c"], int(rng.integers(2, 8))
        _, rows = suppress_to_k(table, qis, k)
        classes = QiClasses.count([QiClasses.of_batch(table, qis)], qis)
        distinct = [len(set(v for v in table.column(q).to_pylist() if v is not None)) for q in qis]
        _, by_class = suppress_classes(classes, qis, k, distinct)
        assert by_class == rows


def test_a_memory_setting_too_small_is_one_sentence(tmp_path: Path, extract: Path) -> None:
    with pytest.raises(InputError, match=r"memory setting \(16 MB\) is below the 64 MB"):
        deidentify_file(extract, _policy(tmp_path), tmp_path / "o.csv", secret_file=tmp_path / "s.key",
                        memory_mb=16)
    assert not (tmp_path / "o.csv").exists()


def test_a_disk_too_full_for_the_spill_leaves_nothing(tmp_path: Path, extract: Path, monkeypatch) -> None:
    """The pile files of the random order cannot be written (the disk is full): one sentence, no output,
    no spill folder."""
    import errno

    real = pa.ipc.new_stream

    class Full:
        def __init__(self, writer) -> None:
            self.writer = writer

        def write_table(self, table):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str):
            return getattr(self.writer, name)

    monkeypatch.setattr(pa.ipc, "new_stream", lambda *a, **kw: Full(real(*a, **kw)))
    out = tmp_path / "o.csv"
    with pytest.raises(OutputError, match=r"Not enough room for the temporary files .* nothing was written"):
        deidentify_file(extract, _policy(tmp_path), out, secret_file=tmp_path / "s.key", batch_rows=40)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_piles_give_the_order_of_sorting_every_row_by_its_key(tmp_path: Path) -> None:
    """Rows scattered into pile files by their key's top bits, each pile sorted alone: the same order
    as one sort of all the rows by key (what release_order does in memory)."""
    from deid._stream import _Piles

    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**63, 5000, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    rows = pa.table({"i": np.arange(5000), "__key": pa.array(keys, pa.uint64())})
    piles = _Piles(tmp_path, 1 << 20, 5000)
    piles.budget = 5000  # a few rows a pile: several piles
    for at in range(0, 5000, 700):
        piles.add(rows.slice(at, 700))
    piles.finish()
    assert piles.bits and len(piles.writers) > 4
    out = pa.concat_tables(list(piles.batches(333)))
    assert out.column_names == ["i"]
    assert out.column("i").to_pylist() == np.argsort(keys, kind="stable").tolist()
    assert not list(tmp_path.glob("pile-*"))  # each pile removed once read


def test_wide_rows_without_quasi_identifiers_in_the_smallest_memory_setting(tmp_path: Path) -> None:
    """40,000 notes of 1.5 KB (60 MB) under the 64 MB setting: DuckDB's sort ran out of its 32 MB share
    here; the piles take them. A policy without quasi-identifiers streams too (it failed on an empty
    table of classes)."""
    n = 40_000
    ids = [f"{i:06d}" for i in range(n)]
    pcsv.write_csv(pa.table({"ID": ids, "Notes": ["x" * 1500 + i for i in ids]}), tmp_path / "wide.csv")
    policy = _policy(tmp_path, {"pathshare_policy": 1, "k": 1, "columns": {
        "ID": {"treatment": "keep"}, "Notes": {"treatment": "keep"}}})
    report = deidentify_file(tmp_path / "wide.csv", policy, tmp_path / "o.csv", memory_mb=64, batch_rows=4000)
    out = pcsv.read_csv(tmp_path / "o.csv", convert_options=pcsv.ConvertOptions(
        column_types={"ID": pa.string(), "Notes": pa.string()}))
    assert report.rows_out == n and sorted(out.column("ID").to_pylist()) == ids
    assert out.column("ID").to_pylist() != ids  # a fresh random order, not the input's
    got = zip(out.column("ID").to_pylist(), out.column("Notes").to_pylist(), strict=True)
    assert all(note == "x" * 1500 + i for i, note in got)  # each row whole


def test_a_disk_too_full_for_the_input_cache_leaves_nothing(tmp_path: Path, extract: Path,
                                                            monkeypatch) -> None:
    """Pass 1 keeps the input as Arrow beside the output; a disk too full for that is the same one
    sentence, and neither the half-written cache, its folder nor an output is left."""
    writes = disk_full_on_arrow_write(monkeypatch)
    out = tmp_path / "o.csv"
    with pytest.raises(OutputError, match=r"Not enough room .*No space left on device.* nothing was written"):
        deidentify_file(extract, _policy(tmp_path), out, secret_file=tmp_path / "s.key", batch_rows=40)
    assert len(writes) == 3 and not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_input_that_needs_repairs_is_read_whole_and_says_so(tmp_path: Path) -> None:
    src = tmp_path / "ragged.csv"
    src.write_text("SSID,Grade,Notes\n0000000001,9,ok\n0000000002,10\n0000000003,11,fine\n", encoding="utf-8")
    policy = _policy(tmp_path, {"pathshare_policy": 1, "k": 1, "columns": {
        "SSID": {"treatment": "drop"}, "Grade": {"treatment": "keep"}, "Notes": {"treatment": "keep"}}})
    report = deidentify_file(src, policy, tmp_path / "o.csv", batch_rows=2)
    assert report.rows_out == 3
    assert "read whole, not streamed: its rows need repairs" in report.notes
    assert any("repaired" in n for n in report.notes)


@pytest.mark.parametrize("batch_rows", [None, 40])
def test_a_policy_that_needs_a_secret_is_refused_alike_in_memory_and_streamed(tmp_path: Path, extract: Path,
                                                                           batch_rows: int | None) -> None:
    """One rule (deid._treatments.require_secret) for both paths: one sentence naming the column, the
    step as an action (the CLI adds its option, the app its button), nothing written."""
    from deid.errors import PolicyError

    out = tmp_path / "o.csv"
    with pytest.raises(PolicyError) as err:
        deidentify_file(extract, _policy(tmp_path), out, secret_file=None, batch_rows=batch_rows)
    assert "need a secret file" in err.value.message and "--" not in err.value.message
    assert err.value.action == "secret_file" and not out.exists()


def test_a_run_removes_what_a_killed_run_left_beside_the_output(tmp_path: Path, extract: Path) -> None:
    """A killed streaming run leaves its private folder (a copy of the extract as read, names and IDs in
    the clear); the next run there removes it — but not a live run's, another machine's (a shared drive)
    or one without its owner note (a run just starting)."""
    import platform
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    dead_pid = int(gone.stdout)
    here = platform.node()

    def left(name: str, owner: str | None) -> Path:
        folder = tmp_path / f".pathshare-spill-{name}"
        folder.mkdir()
        (folder / "input.arrow").write_bytes(b"Ana Soto 1000000001")
        if owner is not None:
            (folder / "owner").write_text(owner, encoding="utf-8")
        return folder

    killed = left("killed", f"{here}\n{dead_pid}\n")
    live = left("live", f"{here}\n{os.getppid()}\n")
    elsewhere = left("elsewhere", f"another-machine.example\n{dead_pid}\n")
    starting = left("starting", None)
    out = tmp_path / "o.csv"
    deidentify_file(extract, _policy(tmp_path), out, secret_file=tmp_path / "s.key", batch_rows=40)
    assert not killed.exists()
    assert live.exists() and elsewhere.exists() and starting.exists()
    # and the run's own folder is gone when it ends
    assert {p.name for p in tmp_path.glob(".pathshare-spill-*")} == {live.name, elsewhere.name, starting.name}


# The generalization search streams too: it runs on the table of classes (QIs and sensitive elements)
# counted in pass 3, each class weighing its rows, and each row takes its class's released values.
DISCLOSURE = dict(
    POLICY,
    disclosure={
        "hierarchies": {"birth_year": "birth_date", "zip3": "zip", "Gender": "sex", "Grade": "grade_level"},
        "sensitive": ["EL Status"],
        "l": 2,
        "suppression_limit": 0.1,
    },
)


@pytest.mark.parametrize("batch_rows", [23, 1000])
def test_streaming_with_disclosure_control_equals_the_in_memory_run(tmp_path: Path, extract: Path,
                                                                    batch_rows: int) -> None:
    policy = _policy(tmp_path, DISCLOSURE)
    secret = tmp_path / "secret.key"
    whole = deidentify_file(extract, policy, tmp_path / "whole.csv", secret_file=secret)
    streamed = deidentify_file(extract, policy, tmp_path / "streamed.csv", secret_file=secret,
                               batch_rows=batch_rows, memory_mb=128)
    assert not any("read whole" in n for n in streamed.notes)
    assert _rows(tmp_path / "streamed.csv") == _rows(tmp_path / "whole.csv")
    for field in (*REPORTED, "quasi_identifiers"):
        assert getattr(streamed, field) == getattr(whole, field), field
    assert [(c.name, c.treatment, c.cells_changed, c.suppressed_cells) for c in streamed.columns] == [
        (c.name, c.treatment, c.cells_changed, c.suppressed_cells) for c in whole.columns
    ]

    def result(d: dict) -> dict:
        d = json.loads(json.dumps(d))
        d["search"].pop("seconds")
        d["groups"] = sorted(d["groups"], key=lambda g: (g["attribute"], g["group"]))
        return d

    assert result(streamed.disclosure) == result(whole.disclosure)
    # the comparison has teeth: something was generalized and some values withheld
    assert set(whole.disclosure["levels"].values()) != {"as released"} and whole.suppressed_cells > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pathshare-spill-")]
