"""The token join on DuckDB (deid/_linkdb.py) gives the links the in-memory join gives, reads a
Parquet file's tokens from the file, stays within its memory setting and leaves no spill behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from deid._linkfiles import link
from deid._linkmatch import link_tables
from deid._linktokens import LinkFields, link_tokens
from deid._secrets import derive_key
from deid.errors import InputError
from deid.synth import generate

KEY = derive_key(b"engines test secret, 32 bytes..", "link_tokens")
K12 = LinkFields("SSID", "First Name", "Middle Name", "Last Name", "Birth Date", "Gender")
COLLEGE = LinkFields("SSID", "STU_FIRST_NM", "STU_MID_NM", "STU_LAST_NM", "STU_BIRTH_DT", "SEX")


@pytest.fixture(scope="module")
def pair() -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """A district and a college file (overlapping students; the college side with typos, nicknames,
    swapped days, missing IDs), the college with some students on several rows (one per term)."""
    k12 = generate("k12", 300, seed=3).table
    col = generate("college", 300, seed=3).table
    sex = pc.take(pa.array(["F", "M", "X"]), pc.subtract(pc.cast(col["SEX"], pa.int64()), 1))
    col = col.set_column(col.column_names.index("SEX"), "SEX", sex)
    rows = np.r_[np.arange(300), np.arange(0, 300, 7), np.arange(0, 300, 11)]  # repeated terms
    col = col.take(pa.array(rows))
    return link_tokens(k12, K12, KEY, baseline=True), link_tokens(col, COLLEGE, KEY, baseline=True)


@pytest.mark.parametrize("method", ["combined", "em", "id", "calpass"])
def test_duckdb_and_memory_engines_link_alike(pair, method: str, tmp_path: Path) -> None:
    mem = link_tables(*pair, method=method, engine="memory")
    duck = link_tables(*pair, method=method, engine="duckdb", memory_mb=256, spill_dir=tmp_path)
    assert len(mem.row_a) > 20  # the pair links (about 1 in 6 students is in both)
    for got, want in ((duck.row_a, mem.row_a), (duck.row_b, mem.row_b), (duck.method, mem.method),
                      (duck.score, mem.score)):  # fmt: skip
        assert np.array_equal(got, want)
    a, b = mem.report.to_dict(), duck.report.to_dict()
    assert (a.pop("engine"), b.pop("engine")) == ("memory", "duckdb")
    assert a == b
    if method == "combined":
        assert mem.report.students_b < mem.report.rows_b  # several rows per student were grouped
    assert list(tmp_path.iterdir()) == []  # the spill folder is gone


def test_link_reads_parquet_tokens_on_duckdb_like_in_memory(pair, tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(
        pa.table({"grade": pa.array([str(i % 12) for i in range(len(pair[0]))]), "link_tokens": pair[0]}), a
    )
    pq.write_table(pa.table({"tok": pair[1], "term": pa.array(["F24"] * len(pair[1]))}), b)
    outs = {}
    for engine in ("memory", "duckdb"):
        out = tmp_path / engine / "linked.parquet"
        out.parent.mkdir()
        links = link(a, b, out, report=out.with_suffix(".json"), engine=engine)
        outs[engine] = pq.read_table(out)
        assert links.report.token_columns == ("link_tokens", "tok") and links.report.engine == engine
        assert sorted(p.name for p in out.parent.iterdir()) == ["linked.json", "linked.parquet"]
    assert outs["duckdb"].equals(outs["memory"]) and outs["duckdb"].num_rows > 40
    assert "link_tokens" not in outs["duckdb"].column_names and "grade" in outs["duckdb"].column_names


def test_duckdb_engine_refuses_bad_cells_and_a_tiny_memory_setting_in_one_sentence(
    pair, tmp_path: Path
) -> None:
    good = pair[0].slice(0, 5)
    cells = good.to_pylist()
    cells[3] = cells[3][:30] + "!" + cells[3][31:]  # one character that is not base64url
    bad = pa.chunked_array([pa.array(cells)])
    messages = []
    for engine in ("memory", "duckdb"):
        with pytest.raises(InputError) as err:
            link_tables(good, bad, names=("a.csv", "b.csv"), engine=engine, spill_dir=tmp_path)
        messages.append(str(err.value))
    assert messages[0] == messages[1] == "b.csv: row 5 does not hold link tokens."
    with pytest.raises(InputError, match="memory setting"):
        link_tables(good, good, engine="duckdb", memory_mb=8, spill_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_parquet_row_group_too_large_for_the_memory_setting_is_read_page_by_page(
    pair, tmp_path: Path, monkeypatch
) -> None:
    """DuckDB holds a row group's token column whole, so 128 MB failed at 200,000 rows (one row group
    of 128 MB); such a column is read by pyarrow a page at a time instead — the same links. Forced
    here on small files (several row groups; the first file is read twice) by the share's setting."""
    import deid._linkdb as linkdb

    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"link_tokens": pair[0]}), a, row_group_size=70)
    pq.write_table(pa.table({"link_tokens": _loosen(pair[1].to_pylist())}), b)
    want = link(a, b, engine="memory")
    monkeypatch.setattr(linkdb, "ROW_GROUP_SHARE", 10**9)
    read: list[str] = []
    real = linkdb._page_reader
    monkeypatch.setattr(linkdb, "_page_reader", lambda p, column: read.append(p.name) or real(p, column))
    got = link(a, b, engine="duckdb", memory_mb=128, spill_dir=tmp_path)
    assert read == ["a.parquet", "b.parquet", "a.parquet"]  # every reading went page by page
    assert got.pairs() == want.pairs() and len(want.pairs()) > 20
    assert np.array_equal(got.score, want.score)


def test_a_damaged_parquet_file_is_refused_in_one_sentence(pair, tmp_path: Path) -> None:
    good, bad = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"link_tokens": pair[0]}), good)
    pq.write_table(pa.table({"link_tokens": pair[1]}), bad, compression="zstd")
    data = bytearray(bad.read_bytes())
    data[100:4000] = b"\x00" * 3900  # the column's compressed pages, not the footer
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        link(good, bad, tmp_path / "out.csv")
    assert str(err.value) == f"{bad} is not a readable Parquet file."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]


def test_the_prefilter_only_drops_tokens_no_pair_needs(pair, tmp_path: Path, monkeypatch) -> None:
    """The Bloom filter before the joins (deid/_linkdb.py) lets every shared token through: with 16
    bytes of flags (every flag set: nothing dropped) and with the default size (most tokens dropped)
    the links, scores and report are the same, and equal the in-memory engine's."""
    import deid._linkdb as linkdb

    mem = link_tables(*pair, method="combined", engine="memory")
    runs = {}
    for cap in (16, linkdb.FILTER_MAX_BYTES):
        monkeypatch.setattr(linkdb, "FILTER_MAX_BYTES", cap)
        runs[cap] = link_tables(*pair, method="combined", engine="duckdb", spill_dir=tmp_path)
    for links in runs.values():
        assert np.array_equal(links.row_a, mem.row_a) and np.array_equal(links.row_b, mem.row_b)
        assert np.array_equal(links.score, mem.score)
        assert links.report.candidate_pairs == mem.report.candidate_pairs > 0


def _loosen(cells: list[str | None]) -> pa.ChunkedArray:
    """Cells as a hand-edited CSV or a paste from a spreadsheet leaves them: tabs, line breaks and runs
    of spaces around and between the tokens (one cell in three of each form, the rest as written)."""
    out = []
    for i, c in enumerate(cells):
        if c and i % 3 == 0:
            c = "\t" + c.replace(" ", " \t ", 2).replace(" ", "\r\n", 1) + "\n"
        elif c and i % 3 == 1:
            c = "  " + c.replace(" ", "  ") + " "
        out.append(c)
    return pa.chunked_array([pa.array(out)])


def test_whitespace_around_and_between_tokens_is_read_alike_by_both_engines(pair, tmp_path: Path) -> None:
    """One rule (deid._tokenkinds.WHITESPACE): spaces, tabs and line breaks around and between tokens
    are ignored by both engines — the DuckDB engine used to refuse a tab the in-memory one trimmed, and
    the in-memory one to refuse two spaces the DuckDB one ignored. On DuckDB the first file is read
    twice (the prefilter), so it is loosened on each side in turn."""
    want = link_tables(*pair, engine="memory")
    assert len(want.pairs()) > 20
    for a, b in ((pair[0], _loosen(pair[1].to_pylist())), (_loosen(pair[0].to_pylist()), pair[1])):
        for engine in ("memory", "duckdb"):
            got = link_tables(a, b, engine=engine, spill_dir=tmp_path)
            assert got.pairs() == want.pairs(), engine
            assert np.array_equal(got.score, want.score) and got.report.kinds_a == want.report.kinds_a
    # a character that is not whitespace nor base64url is still refused, alike (row 2: the second cell)
    cells = pair[1].to_pylist()[:3]
    cells[1] = "\t" + cells[1][:20] + "\u00a0" + cells[1][21:]
    messages = set()
    for engine in ("memory", "duckdb"):
        with pytest.raises(InputError) as err:
            link_tables(pair[0], pa.chunked_array([pa.array(cells)]), names=("a", "b"), engine=engine,
                        spill_dir=tmp_path)  # fmt: skip
        messages.add(str(err.value))
    assert messages == {"b: row 3 does not hold link tokens."}


def test_tiny_inputs_link_alike_on_both_engines(tmp_path: Path) -> None:
    """One row a side (a match, a non-match), a row with nothing to make tokens from (dummies only), an
    empty cell, the guards' conflict: both engines give the same links and the same report."""
    fields = LinkFields("id", "first", None, "last", "birth", "sex")

    def tokens(*rows: tuple[str, ...]) -> pa.ChunkedArray:
        names = ("id", "first", "last", "birth", "sex")
        columns = {n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)}
        return link_tokens(pa.table(columns), fields, KEY)

    eva = ("1", "Eva", "Ruiz", "2008-06-23", "F")
    cases = {
        "match": (tokens(eva), tokens(("", "Eva", "Ruiz", "2008-06-23", "F"))),
        "no match": (tokens(eva), tokens(("", "Luis", "Vega", "2008-02-21", "M"))),
        "two ids": (tokens(eva), tokens(("2", "Eva", "Ruiz", "2008-06-23", "F"))),
        "dummies only": (tokens(eva, ("", "", "", "", "")), tokens(eva)),
        "empty cell": (pa.chunked_array([pa.array(["", tokens(eva)[0].as_py()])]), tokens(eva)),
    }
    for name, (a, b) in cases.items():
        mem = link_tables(a, b, engine="memory")
        duck = link_tables(a, b, engine="duckdb", spill_dir=tmp_path)
        assert duck.pairs() == mem.pairs(), name
        ra, rb = mem.report.to_dict(), duck.report.to_dict()
        ra.pop("engine"), rb.pop("engine")
        assert ra == rb, name
    assert link_tables(*cases["match"]).pairs() == {(0, 0)}
    assert link_tables(*cases["no match"]).pairs() == set()
    assert link_tables(*cases["two ids"]).pairs() == set()
    assert link_tables(*cases["dummies only"]).pairs() == {(0, 0)}
    assert link_tables(*cases["empty cell"]).pairs() == {(1, 0)}
    assert list(tmp_path.iterdir()) == []


def test_running_out_of_the_memory_setting_is_the_one_memory_refusal(
    pair, tmp_path: Path, monkeypatch
) -> None:
    """DuckDB running out of its memory mid-link gives deid.errors.memory_too_small's sentence (the
    library names no option; each face says how to raise the setting), and leaves no spill."""
    import duckdb

    real_connect = duckdb.connect

    class Tight:
        def __init__(self, con: object) -> None:
            self._con = con

        def __getattr__(self, name: str) -> object:
            return getattr(self._con, name)

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("INSERT"):
                raise duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block")
            return self._con.execute(sql, *args)

    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: Tight(real_connect(*a, **k)))
    with pytest.raises(InputError) as err:
        link_tables(*pair, engine="duckdb", memory_mb=256, spill_dir=tmp_path)
    said = "The memory setting (256 MB) is too small to link these files; nothing was written."
    assert str(err.value) == said
    assert err.value.action == "raise_memory" and "--memory-mb" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
