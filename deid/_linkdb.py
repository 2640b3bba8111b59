"""The linkage engines: where the token join and the scoring run.

:func:`deid._linkmatch.link_tables` runs one algorithm (person groups, candidates, scores, one-to-one)
on either engine; the engines only answer the questions that touch every token:

- :class:`MemoryEngine` — every token of both files parsed into numpy arrays (17 bytes a token, ~49
  tokens a row: about 830 MB per million rows and file, before the join). Fast on small files.
- :class:`DuckEngine` — DuckDB reads the token cells (a Parquet file's token column straight from the
  file), splits and hashes every token, and does the joins, the grouping and the counting within a
  memory setting, spilling to a private folder that is removed afterwards. A one-hash Bloom filter
  (numpy flags) first drops the tokens that cannot be in the other file (see the class). Only the
  candidate pairs (a few per student: row or student of A, of B, the bitmask of the token kinds they
  share) come back to numpy, where the scores, the EM fit and the one-to-one assignment run on them
  exactly as in memory (``test_duckdb_and_memory_engines_link_alike``).

Then each side keeps the tokens the other side also has (two exact semi-joins on what the filter let
through), and the counting (a token carried by more than MAX_SHARED students is not specific) and the
pair join run on what is left. Nothing here logs or raises with a token in the text.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from deid._spill import private_folder
from deid._tokenkinds import GROUPING_KINDS, KIND_LETTERS, WHITESPACE
from deid._tokenkinds import KIND_INDEX as _KIND_INDEX
from deid.errors import InputError, OutputError, memory_too_small

DEFAULT_MEMORY_MB = 1024
_GROUPING_KINDS = {KIND_LETTERS.index(k) for k in GROUPING_KINDS}
_IS_GROUPING = np.isin(np.arange(256), sorted(_GROUPING_KINDS))
BATCH_TOKENS = 1 << 20  # tokens DuckDB hands over at a time (13 MB)
MIN_MEMORY_MB = 128
# DuckDB holds a Parquet row group's token column whole; a column larger than 1/ROW_GROUP_SHARE of its
# memory is read page by page by pyarrow instead (deid's own files are written in one row group: 640 MB
# of tokens per million rows, so 128 MB failed at 200,000 rows before).
ROW_GROUP_SHARE = 4

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (row or student of A, of B, uint32 kind bitmask)


def _sorted(ra: np.ndarray, rb: np.ndarray, mask: np.ndarray) -> Pairs:
    order = np.lexsort((rb, ra))
    return ra[order].astype(np.int64), rb[order].astype(np.int64), mask[order].astype(np.uint32)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_kinds(kinds: set[int]) -> str:
    return f"kind IN ({', '.join(str(int(k)) for k in sorted(kinds))})"


_BIT = "(1::UINTEGER << kind::UINTEGER)"
FILTER_MAX_BYTES = 1 << 28  # the prefilter's flags at most (256 MB: ~17% filled by 49 million tokens)
# A token, split from its cell by DuckDB: its row (bit 31 set when the cell holds a character outside
# base64url and whitespace; bit 30 when it holds whitespace other than spaces, which is made spaces: the
# rule of deid._tokenkinds.WHITESPACE, as in memory), the code of its kind letter (0 when the token is
# not 12 characters) and its 64-bit hash. Runs of spaces around and between tokens are ignored. Only
# a cell with a character outside base64url and the space is looked at twice. ``OFFSET 0`` keeps the
# checks per-cell steps: without it DuckDB evaluates them once per token, on a copy of the cell (50
# times slower).
_ODD = "regexp_matches(cell, '[^A-Za-z0-9_ -]')"
_TOKENS = (
    "SELECT r, CASE WHEN length(tok) = 12 THEN ascii(tok) ELSE 0 END::UTINYINT AS c, hash(tok) AS h "
    "FROM (SELECT r, unnest(string_split(cell, ' ')) AS tok FROM ("
    f"SELECT CASE WHEN odd THEN r | (1::UINTEGER << 30) | ({_ODD}::UINTEGER << 31) ELSE r END AS r, cell "
    "FROM (SELECT r, odd, CASE WHEN odd THEN regexp_replace(cell, '" + WHITESPACE + "', ' ', 'g') "
    f"ELSE cell END AS cell FROM (SELECT r, cell, {_ODD} AS odd FROM ({{src}}) WHERE cell <> '' OFFSET 0) "
    "OFFSET 0) OFFSET 0)) WHERE tok <> ''"
)
# The same without the check, for a side read a second time (checked the first time, and found with
# nothing but spaces between its tokens; else it is read with _TOKENS again).
_TOKENS_CHECKED = (
    "SELECT r, ascii(tok)::UTINYINT AS c, hash(tok) AS h FROM (SELECT r, unnest(string_split(cell, ' ')) "
    "AS tok FROM ({src}) WHERE cell <> '') WHERE tok <> ''"
)
_BAD_CELL = np.uint32(1 << 31)
_SPACED_CELL = np.uint32(1 << 30)
_ROW_BITS = np.uint32(_SPACED_CELL - 1)


@dataclass
class DuckSide:
    """One file's tokens in DuckDB. ``source``: SQL giving (r, cell), its rows and token cells;
    ``grouping``: the table of its grouping tokens (I, A, E, N; all of them: they group the
    file's own rows into students); ``reduced``: the table of its tokens that may also be in the
    other file (what passed the prefilter: every shared token and a few others); both of (row, kind,
    value)."""

    source: str
    where: str
    kinds: set[str]
    grouping: str
    reduced: str | None = None
    parquet: bool = False
    spaced: bool = False  # a cell had whitespace other than spaces (its second reading normalizes it too)
    renew: Any = None  # called before each reading (a fresh reader of a file's pages)


class DuckEngine:
    """Sides are :class:`DuckSide`. DuckDB reads the cells (a Parquet file's token column straight from
    the file), splits and hashes every token; no token is parsed in Python.

    Most tokens match nothing (dummies, and the real tokens of students in one file only: 93% of them at
    1M rows a side), so before any join each file's tokens pass a one-hash Bloom filter — a numpy array
    of flags indexed by the top bits of each token's 64-bit hash: the first file's tokens set the flags;
    the second file keeps the tokens whose flag is set and sets a fresh array from those; the first file
    is read once more, keeping its tokens so flagged. What is left (every shared token, and the few
    percent the flags let through) is joined exactly in DuckDB on (kind, hash), within ``memory_mb``
    (DuckDB's memory and the flags together), spilling into a private folder made in ``spill_dir`` and
    removed by :meth:`close` (which :func:`deid._linkmatch.link_tables` always calls). A 64-bit hash
    collision between two different tokens (about 1 in 10,000 for two files of a million rows) adds one
    kind to one pair's agreement; no identity is involved."""

    name = "duckdb"

    def __init__(self, memory_mb: int = DEFAULT_MEMORY_MB, spill_dir: str | Path | None = None) -> None:
        import duckdb

        if memory_mb < MIN_MEMORY_MB:
            raise InputError(
                f"The memory setting ({memory_mb:,} MB) is below the {MIN_MEMORY_MB} MB that linking needs; "
                "give at least that."
            )
        self.memory_mb = memory_mb
        folder = Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir())
        try:
            self.spill = private_folder(folder)  # 0700; what killed runs left there goes
        except OSError as exc:
            raise OutputError(_disk_sentence(folder, exc)) from None
        self.spill_dir = folder
        self._n = 0
        self._sides: list[DuckSide] = []
        self._flags: np.ndarray | None = None
        # The flags take a quarter of the memory setting at most (a power of two of bytes); DuckDB the rest.
        quarter = memory_mb * (1 << 20) // 4
        self._flag_cap = min(FILTER_MAX_BYTES, 1 << (quarter.bit_length() - 1))
        self._duck_mb = memory_mb - (self._flag_cap >> 20)
        try:
            self.con = duckdb.connect(
                config={
                    "memory_limit": f"{self._duck_mb}MB",
                    "temp_directory": str(self.spill),
                    # row numbers come with the cells (file_row_number, or the column's index): order is free
                    "preserve_insertion_order": False,
                }
            )
            # reads the cells while the main connection stores what passes (two result streams)
            self.reader = self.con.cursor()
        except Exception:
            shutil.rmtree(self.spill, ignore_errors=True)
            raise

    # ---------------------------------------------------------------------------------------- plumbing

    def _name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def run(self, sql: str, fetch: str = "all") -> Any:
        """Execute ``sql`` and fetch its result whole (``fetch``: "all" rows, or "arrow"); DuckDB's
        failures become one sentence (never a token in it)."""
        import duckdb

        try:
            if fetch == "arrow":
                return self.con.sql(sql).to_arrow_table()
            return self.con.execute(sql).fetchall()
        except duckdb.OutOfMemoryException:
            raise self._too_small() from None
        except (duckdb.IOException, OSError) as exc:  # the spill: a full or unwritable disk
            raise OutputError(_disk_sentence(self.spill_dir, exc)) from None

    def _too_small(self) -> InputError:
        """The one refusal of a step that ran out of its memory setting (deid.errors.memory_too_small:
        each face says how to raise it; the library names no option)."""
        return memory_too_small("to link these files", self.memory_mb)

    def _arrow(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    def _batches(self, side: DuckSide, *, checked: bool = False) -> Any:
        """The side's tokens (row, kind letter's code, hash) from DuckDB, in Arrow batches. DuckDB's
        failures become one sentence: the memory setting, the spill's disk, or (a damaged page of a
        Parquet file whose footer was read) an unreadable file — DuckDB's own text is never shown."""
        import duckdb

        try:
            if side.renew is not None:
                side.renew()
            sql = (_TOKENS_CHECKED if checked and not side.spaced else _TOKENS).format(src=side.source)
            yield from self.reader.sql(sql).to_arrow_reader(BATCH_TOKENS)
        except duckdb.OutOfMemoryException:
            raise self._too_small() from None
        except (duckdb.Error, OSError) as exc:
            text = str(exc).lower()
            spill = isinstance(exc, OSError) or "temporary" in text or "no space" in text or "disk" in text
            if side.parquet and not spill:
                raise InputError(f"{side.where} is not a readable Parquet file.") from None
            if isinstance(exc, (duckdb.IOException, OSError)):
                raise OutputError(_disk_sentence(self.spill_dir, exc)) from None
            raise

    def _insert(self, table: str, rows: np.ndarray, kinds: np.ndarray, values: np.ndarray) -> None:
        if not len(rows):
            return
        batch = self._name("batch")
        self._arrow(
            batch, pa.table({"row": pa.array(rows), "kind": pa.array(kinds), "value": pa.array(values)})
        )
        self.run(f"INSERT INTO {table} SELECT * FROM {batch}")
        self.con.unregister(batch)

    def _flag_array(self, tokens: int) -> np.ndarray:
        """The flags, zeroed: one byte each (setting bits would cost four times the time at this size),
        some four per token, a power of two within the cap."""
        size = min(self._flag_cap, max(1 << 16, 1 << (4 * max(tokens, 1) - 1).bit_length()))
        if self._flags is None or len(self._flags) != size:
            self._flags = None
            self._flags = np.zeros(size, np.uint8)
        else:
            self._flags.fill(0)
        return self._flags

    def _slots(self, values: np.ndarray) -> np.ndarray:
        """Each value's flag: the value's top bits."""
        assert self._flags is not None
        return (values >> np.uint64(64 - (len(self._flags).bit_length() - 1))).view(np.int64)

    def _set(self, values: np.ndarray) -> None:
        assert self._flags is not None
        self._flags[self._slots(values)] = 1

    def _flagged(self, values: np.ndarray) -> np.ndarray:
        assert self._flags is not None
        return self._flags[self._slots(values)].view(bool)

    # ------------------------------------------------------------------------------------------ sides

    def side(self, column: Any, where: str, n: int) -> DuckSide:
        """A token column (Arrow) as a side."""
        col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
        name = self._name("cells")
        # on the reading cursor: a registered table is seen by its own connection only
        self.reader.register(name, pa.table({"r": pa.array(np.arange(n, dtype=np.uint32)), "cell": col}))
        return self._add(f"SELECT r, cell::VARCHAR AS cell FROM {name}", where, n)

    def parquet_side(self, path: str | Path, column: str, where: str) -> DuckSide:
        """The token column of a Parquet file as a side: DuckDB reads it (no other column), in batches.

        DuckDB holds a whole row group's column at a time (a file written in one piece: its whole
        token column, some 640 MB per million rows); when that is more than a quarter of its memory,
        pyarrow reads the column page by page instead (one thread, slower) and hands DuckDB batches."""
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        rows = meta.num_rows
        index = meta.schema.to_arrow_schema().get_field_index(column)
        chunk = max((meta.row_group(g).column(index).total_uncompressed_size
                     for g in range(meta.num_row_groups)), default=0)  # fmt: skip
        if chunk * ROW_GROUP_SHARE <= self._duck_mb << 20:
            src = (f"SELECT file_row_number::UINTEGER AS r, {_quote_ident(column)}::VARCHAR AS cell "
                   f"FROM read_parquet({_quote_text(str(path))}, file_row_number = true)")  # fmt: skip
            return self._add(src, where, rows, parquet=True)
        name = self._name("pages")

        def renew() -> None:  # a reader is read once: a fresh one for each reading of the side
            self.reader.register(name, _page_reader(Path(path), column))

        src = f"SELECT r, cell::VARCHAR AS cell FROM {name}"
        return self._add(src, where, rows, parquet=True, renew=renew)

    def _add(
        self, source: str, where: str, rows: int, *, parquet: bool = False, renew: Any = None
    ) -> DuckSide:
        """Read a side once: check every cell (InputError naming ``where`` and the first bad row),
        note its kinds, keep its grouping tokens, and pass its tokens through the prefilter (the
        first side sets the flags; the second keeps what they let through and sets them anew)."""
        if rows > _ROW_BITS:  # row numbers are 30 bits here (the 31st and 32nd mark cells)
            raise InputError(f"{where} has more rows ({rows:,}) than linking takes ({int(_ROW_BITS):,}).")
        grouping = self._name("grouping")
        self.run(f"CREATE TABLE {grouping} (row UINTEGER, kind UTINYINT, value UBIGINT)")
        side = DuckSide(source, where, set(), grouping, parquet=parquet, renew=renew)
        first = not self._sides
        if first:
            self._flag_array(rows * len(KIND_LETTERS) * 5)
        else:
            side.reduced = self._name("reduced")
            self.run(f"CREATE TABLE {side.reduced} (row UINTEGER, kind UTINYINT, value UBIGINT)")
        seen = np.zeros(len(KIND_LETTERS), np.int64)
        bad_row = -1
        for batch in self._batches(side):
            rows_, codes, values = (batch.column(i).to_numpy() for i in range(3))
            kinds = _KIND_INDEX[codes]
            marked = rows_ > _ROW_BITS
            if marked.any():
                wrong = (kinds == 255) | (rows_ >= _BAD_CELL)
                side.spaced |= bool(((rows_ & _SPACED_CELL) != 0).any())
                rows_ = rows_ & _ROW_BITS
            else:
                wrong = kinds == 255
            if wrong.any():
                r = int(rows_[wrong].min())
                bad_row = r if bad_row < 0 else min(bad_row, r)
                continue
            seen += np.bincount(kinds, minlength=len(KIND_LETTERS))
            grp = _IS_GROUPING[kinds]
            self._insert(grouping, rows_[grp], kinds[grp], values[grp])
            if first:
                self._set(values)
            else:
                keep = self._flagged(values)
                self._insert(side.reduced, rows_[keep], kinds[keep], values[keep])  # type: ignore[arg-type]
        if bad_row >= 0:
            raise InputError(f"{where}: row {bad_row + 2} does not hold link tokens.")
        side.kinds = {KIND_LETTERS[k] for k in np.flatnonzero(seen)}
        if not first:
            # Fresh flags from the second side's survivors, for the first side's second reading.
            self._flag_array(int(self.run(f"SELECT count(*) FROM {side.reduced}")[0][0]) * 2)
            for batch in self._table_batches(f"SELECT value FROM {side.reduced}"):
                self._set(batch.column(0).to_numpy())
        self._sides.append(side)
        return side

    def _table_batches(self, sql: str) -> Any:
        yield from self.reader.sql(sql).to_arrow_reader(BATCH_TOKENS)

    def _reduce_first(self) -> None:
        """The first side's tokens that the second side's survivors flag (its second reading)."""
        side = self._sides[0]
        if side.reduced is not None:
            return
        side.reduced = self._name("reduced")
        self.run(f"CREATE TABLE {side.reduced} (row UINTEGER, kind UTINYINT, value UBIGINT)")
        if len(self._sides) < 2:  # nothing to be shared with
            return
        for batch in self._batches(side, checked=True):
            rows_, codes, values = (batch.column(i).to_numpy() for i in range(3))
            rows_ = rows_ & _ROW_BITS if side.spaced else rows_
            keep = self._flagged(values)
            self._insert(side.reduced, rows_[keep], _KIND_INDEX[codes[keep]], values[keep])
        self._flags = None  # the flags' memory back before the joins

    def kinds(self, side: DuckSide) -> set[str]:
        return set(side.kinds)

    # ------------------------------------------------------------------------------------ the joins

    def candidates(
        self,
        a: DuckSide,
        b: DuckSide,
        kinds: set[int],
        max_shared: int,
        groups: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Pairs:
        """(row or student of A, of B, kinds bitmask) for every pair sharing a token of ``kinds``; with
        ``groups`` (each row's student), students instead of rows, each token once per student."""
        self._reduce_first()
        xa, xb = self._name("xa"), self._name("xb")
        only = _in_kinds(kinds)
        self.run(
            f"CREATE TABLE {xa} AS SELECT row, kind, value FROM (SELECT * FROM {a.reduced} WHERE {only}) "
            f"SEMI JOIN (SELECT kind, value FROM {b.reduced} WHERE {only}) USING (kind, value)"
        )
        self.run(
            f"CREATE TABLE {xb} AS SELECT row, kind, value FROM {b.reduced} "
            f"SEMI JOIN (SELECT kind, value FROM {xa}) USING (kind, value)"
        )
        if groups is not None:
            for x, g in ((xa, groups[0]), (xb, groups[1])):
                gname = self._name("groups")
                self._arrow(gname, pa.table({"row": pa.array(np.arange(len(g), dtype=np.uint32)),
                                             "grp": pa.array(g.astype(np.uint32))}))  # fmt: skip
                grouped = self._name("grouped")
                self.run(
                    f"CREATE TABLE {grouped} AS SELECT DISTINCT g.grp AS row, x.kind, x.value "
                    f"FROM {x} x JOIN {gname} g ON x.row = g.row"
                )
                self.run(f"DROP TABLE {x}")
                self.run(f"ALTER TABLE {grouped} RENAME TO {x}")
                self.con.unregister(gname)
        rows = self.run(
            f"WITH ok AS (SELECT kind, value FROM {xa} GROUP BY ALL HAVING count(*) <= {int(max_shared)} "
            f"INTERSECT SELECT kind, value FROM {xb} GROUP BY ALL HAVING count(*) <= {int(max_shared)}) "
            f"SELECT p.row AS ra, q.row AS rb, bit_or({_BIT.replace('kind', 'p.kind')}) AS mask "
            f"FROM {xa} p JOIN {xb} q USING (kind, value) SEMI JOIN ok USING (kind, value) GROUP BY ALL",
            "arrow",
        )
        self.run(f"DROP TABLE {xa}")
        self.run(f"DROP TABLE {xb}")
        return _sorted(*(rows.column(c).to_numpy() for c in ("ra", "rb", "mask")))

    def self_pairs(self, side: DuckSide, kinds: set[int], max_shared: int) -> Pairs:
        """Pairs of different rows of one side sharing a token of ``kinds`` (row < other row)."""
        if not kinds <= _GROUPING_KINDS:
            raise ValueError("self_pairs reads the grouping kinds only")
        x = self._name("shared")
        only = _in_kinds(kinds)
        self.run(
            f"CREATE TABLE {x} AS SELECT row, kind, value FROM (SELECT * FROM {side.grouping} WHERE {only}) "
            f"SEMI JOIN (SELECT kind, value FROM {side.grouping} WHERE {only} GROUP BY ALL "
            f"HAVING count(*) BETWEEN 2 AND {int(max_shared)}) USING (kind, value)"
        )
        rows = self.run(
            f"SELECT p.row AS ra, q.row AS rb, bit_or({_BIT.replace('kind', 'p.kind')}) AS mask FROM {x} p "
            f"JOIN {x} q ON p.kind = q.kind AND p.value = q.value AND p.row < q.row GROUP BY ALL",
            "arrow",
        )
        self.run(f"DROP TABLE {x}")
        return _sorted(*(rows.column(c).to_numpy() for c in ("ra", "rb", "mask")))

    def only_rows(self, side: DuckSide, kind: int, free: np.ndarray) -> DuckSide:
        """The side's (possibly shared) tokens of one kind, on the rows where ``free`` is set."""
        self._reduce_first()
        fname, name = self._name("free"), self._name("only")
        self._arrow(fname, pa.table({"row": pa.array(np.flatnonzero(free).astype(np.uint32))}))
        self.run(
            f"CREATE TABLE {name} AS SELECT row, kind, value FROM {side.reduced} "
            f"WHERE {_in_kinds({kind})} AND row IN (SELECT row FROM {fname})"
        )
        self.con.unregister(fname)
        kinds = {KIND_LETTERS[kind]} if KIND_LETTERS[kind] in side.kinds else set()
        return DuckSide(side.source, side.where, kinds, side.grouping, name, side.parquet)

    def close(self) -> None:
        self._flags = None
        with contextlib.suppress(Exception):
            self.reader.close()
        with contextlib.suppress(Exception):
            self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def _page_reader(path: Path, column: str) -> pa.RecordBatchReader:
    """(r, cell) batches of a Parquet file's column, read a page at a time (pyarrow's buffered stream:
    a row group's column is never held whole)."""
    import pyarrow.parquet as pq

    schema = pa.schema([("r", pa.uint32()), ("cell", pa.string())])

    def batches() -> Any:
        pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
        start = 0
        for batch in pf.iter_batches(batch_size=16_384, columns=[column], use_threads=False):
            n = batch.num_rows
            cells = batch.column(0)
            cells = cells if cells.type == pa.string() else cells.cast(pa.string())
            rows = pa.array(np.arange(start, start + n, dtype=np.uint32))
            yield pa.record_batch([rows, cells], schema=schema)
            start += n

    return pa.RecordBatchReader.from_batches(schema, batches())


def _disk_sentence(folder: Path, exc: BaseException) -> str:
    why = getattr(exc, "strerror", None) or "the disk is full or cannot be written"
    return (
        f"Not enough room for the temporary files of linking in {folder} ({why}); nothing was written: "
        "free disk space there or choose another folder."
    )
