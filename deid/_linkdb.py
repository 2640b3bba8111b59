"""The linkage engines: where the token join and the scoring run.

:func:`deid._linkage.link_tables` runs one algorithm (person groups, candidates, scores, one-to-one)
on either engine; the engines only answer the questions that touch every token:

- :class:`MemoryEngine` — every token of both files parsed into numpy arrays (17 bytes a token, ~49
  tokens a row: about 830 MB per million rows and file, before the join). Fast on small files.
- :class:`DuckEngine` — the tokens stay in DuckDB, which reads them from the files (Parquet: straight
  from the file, only the token column) and joins, groups and aggregates them within a memory setting,
  spilling to a private folder that is removed afterwards. Only the candidate pairs (a few per
  student: row of A, row of B, the bitmask of the token kinds they share) come back to numpy, where
  the scoring, the EM fit and the one-to-one assignment run on them exactly as in memory
  (``test_duckdb_and_memory_engines_link_alike``).

Most tokens never match (dummies, and real tokens of students in one file only), so the DuckDB engine
first keeps, of each side, the tokens the other side also has (two semi-joins), and does the
grouping, the counting (a token carried by more than MAX_SHARED students is not specific) and the
pair join on what is left. Nothing here logs or raises with a token in the text.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from deid.errors import InputError, OutputError

KIND_LETTERS = "IAMWBCEGPQK"  # = deid._linkage.KINDS, in the same order (bit i is kind i)
DEFAULT_MEMORY_MB = 1024
GROUPING = "iae"
_GROUPING_KINDS = {KIND_LETTERS.index(k) for k in "IAE"}
BATCH_ROWS = 65_536  # rows parsed at a time (~3 million tokens, 40 MB)
MIN_MEMORY_MB = 128

Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # (row or student of A, of B, uint32 kind bitmask)


def _sorted(ra: np.ndarray, rb: np.ndarray, mask: np.ndarray) -> Pairs:
    order = np.lexsort((rb, ra))
    return ra[order].astype(np.int64), rb[order].astype(np.int64), mask[order].astype(np.uint32)


class MemoryEngine:
    """Sides are (row, kind index, 64-bit value) numpy arrays (:func:`deid._linkage.parse_tokens`)."""

    name = "memory"

    def __init__(self) -> None:
        from deid import _linkage

        self._lk = _linkage

    def side(self, column: Any, where: str, n: int) -> Any:
        del n
        return self._lk.parse_tokens(column, where)

    def kinds(self, side: Any) -> set[str]:
        return {self._lk.KINDS[int(k)] for k in np.unique(side[1])}

    def candidates(
        self,
        a: Any,
        b: Any,
        kinds: set[int],
        max_shared: int,
        groups: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Pairs:
        if groups is not None:
            a, b = self._lk._by_group(a, groups[0]), self._lk._by_group(b, groups[1])
        return self._lk._candidates(a, b, kinds, max_shared)

    def self_pairs(self, side: Any, kinds: set[int], max_shared: int) -> Pairs:
        """Pairs of different rows of one side sharing a token of ``kinds`` (row < other row)."""
        ra, rb, mask = self._lk._candidates(side, side, kinds, max_shared)
        keep = ra < rb
        return ra[keep], rb[keep], mask[keep]

    def only_rows(self, side: Any, kind: int, free: np.ndarray) -> Any:
        return self._lk._only_rows(side, kind, free)

    def close(self) -> None:
        pass


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _in_kinds(kinds: set[int]) -> str:
    return f"kind IN ({', '.join(str(int(k)) for k in sorted(kinds))})"


_BIT = "(1::UINTEGER << kind::UINTEGER)"


class DuckEngine:
    """Sides are DuckDB views of (row UINTEGER, value VARCHAR), one line a token.

    ``memory_mb`` bounds DuckDB's memory; ``spill_dir`` is where its private spill folder is made
    (removed by :meth:`close`, which :func:`deid._linkage.link_tables` always calls)."""

    name = "duckdb"

    def __init__(self, memory_mb: int = DEFAULT_MEMORY_MB, spill_dir: str | Path | None = None) -> None:
        import duckdb

        if memory_mb < MIN_MEMORY_MB:
            raise InputError(
                f"The memory setting ({memory_mb:,} MB) is below the {MIN_MEMORY_MB} MB linking needs: "
                "raise it."
            )
        self.memory_mb = memory_mb
        folder = Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir())
        try:
            self.spill = Path(tempfile.mkdtemp(prefix=".pathshare-spill-", dir=folder))  # 0700
        except OSError as exc:
            raise OutputError(_disk_sentence(folder, exc)) from None
        self.spill_dir = folder
        self._n = 0
        self._kinds: dict[str, set[str]] = {}
        self._grouping: dict[str, str] = {}  # a side's table of its I, A and E tokens
        try:
            self.con = duckdb.connect(
                config={
                    "memory_limit": f"{memory_mb}MB",
                    "temp_directory": str(self.spill),
                    # kept (the default): a Parquet file's cells must come in the file's row order
                    "preserve_insertion_order": True,
                }
            )
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
            raise InputError(self._memory_sentence()) from None
        except (duckdb.IOException, OSError) as exc:  # the spill: a full or unwritable disk
            raise OutputError(_disk_sentence(self.spill_dir, exc)) from None

    def _memory_sentence(self) -> str:
        return (
            f"The memory setting ({self.memory_mb:,} MB) is too small to link these files; nothing was "
            "written: raise it (--memory-mb) or free memory."
        )

    def _arrow(self, name: str, table: pa.Table) -> None:
        self.con.register(name, table)

    # ------------------------------------------------------------------------------------------ sides

    def side(self, column: Any, where: str, n: int) -> str:
        """A token column (Arrow) as a side, parsed in batches."""
        col = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
        return self._load((col.slice(i, BATCH_ROWS) for i in range(0, n, BATCH_ROWS)), where)

    def parquet_side(self, path: str | Path, column: str, where: str) -> str:
        """The token column of a Parquet file as a side: DuckDB reads it (no other column) and hands it
        over in batches — never the whole column, nor a whole row group, in memory."""
        import duckdb

        reader = self.con.cursor()
        sql = f"SELECT {_quote_ident(column)}::VARCHAR AS cell FROM read_parquet({_quote_text(str(path))})"
        try:
            batches = reader.sql(sql).to_arrow_reader(BATCH_ROWS)
            return self._load((b.column(0) for b in batches), where)
        except duckdb.OutOfMemoryException:
            raise InputError(self._memory_sentence()) from None
        except duckdb.Error:  # a damaged page (the footer was read before): DuckDB's text is not shown
            raise InputError(f"{where} is not a readable Parquet file.") from None
        finally:
            reader.close()

    def _load(self, batches: Any, where: str) -> str:
        """Parse each batch of cells (deid._linkage.parse_tokens: the same checks and messages as in
        memory) and append its tokens to a DuckDB table of (row, kind, value): 13 bytes a token, kept
        within the memory setting and spilled beyond it."""
        from deid._linkage import parse_tokens

        name = self._name("tokens")
        self.run(f"CREATE TEMP TABLE {name} (row UINTEGER, kind UTINYINT, value UBIGINT)")
        # The kinds that group a file's rows into students (I, A, E: 7 of a row's 49 tokens) also go to a
        # table of their own, so that grouping reads a seventh of the tokens.
        self.run(f"CREATE TEMP TABLE {name}_{GROUPING} (row UINTEGER, kind UTINYINT, value UBIGINT)")
        self._grouping[name] = f"{name}_{GROUPING}"
        grouping = _in_kinds(_GROUPING_KINDS)
        seen = np.zeros(len(KIND_LETTERS), np.int64)
        start = 0
        for cells in batches:
            rows, kinds, values = parse_tokens(cells, where, first_row=start)
            seen += np.bincount(kinds, minlength=len(KIND_LETTERS))
            batch = self._name("batch")
            self._arrow(batch, pa.table({"row": pa.array((rows + start).astype(np.uint32)),
                                         "kind": pa.array(kinds), "value": pa.array(values)}))  # fmt: skip
            self.run(f"INSERT INTO {name} SELECT * FROM {batch}")
            self.run(f"INSERT INTO {name}_{GROUPING} SELECT * FROM {batch} WHERE {grouping}")
            self.con.unregister(batch)
            start += len(cells)
            del rows, kinds, values
        self._kinds[name] = {KIND_LETTERS[k] for k in np.flatnonzero(seen)}
        return name

    def kinds(self, side: str) -> set[str]:
        return set(self._kinds[side])

    # ------------------------------------------------------------------------------------ the joins

    def candidates(
        self,
        a: str,
        b: str,
        kinds: set[int],
        max_shared: int,
        groups: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Pairs:
        """(row or student of A, of B, kinds bitmask) for every pair sharing a token of ``kinds``; with
        ``groups`` (each row's student), students instead of rows, each token once per student."""
        xa, xb = self._name("xa"), self._name("xb")
        self.run(
            f"CREATE TEMP TABLE {xa} AS SELECT row, kind, value FROM {a} WHERE {_in_kinds(kinds)} "
            f"AND value IN (SELECT value FROM {b} WHERE {_in_kinds(kinds)})"
        )
        self.run(
            f"CREATE TEMP TABLE {xb} AS SELECT row, kind, value FROM {b} "
            f"WHERE value IN (SELECT value FROM {xa})"
        )
        if groups is not None:
            for x, g in ((xa, groups[0]), (xb, groups[1])):
                gname = self._name("groups")
                self._arrow(gname, pa.table({"row": pa.array(np.arange(len(g), dtype=np.uint32)),
                                             "grp": pa.array(g.astype(np.uint32))}))  # fmt: skip
                grouped = self._name("grouped")
                self.run(
                    f"CREATE TEMP TABLE {grouped} AS SELECT DISTINCT g.grp AS row, x.kind, x.value "
                    f"FROM {x} x JOIN {gname} g ON x.row = g.row"
                )
                self.run(f"DROP TABLE {x}")
                self.run(f"ALTER TABLE {grouped} RENAME TO {x}")
                self.con.unregister(gname)
        rows = self.run(
            f"WITH ok AS (SELECT value FROM {xa} GROUP BY value HAVING count(*) <= {int(max_shared)} "
            f"INTERSECT SELECT value FROM {xb} GROUP BY value HAVING count(*) <= {int(max_shared)}) "
            f"SELECT p.row AS ra, q.row AS rb, bit_or({_BIT.replace('kind', 'p.kind')}) AS mask "
            f"FROM {xa} p JOIN {xb} q USING (value) SEMI JOIN ok USING (value) GROUP BY ALL",
            "arrow",
        )
        self.run(f"DROP TABLE {xa}")
        self.run(f"DROP TABLE {xb}")
        return _sorted(*(rows.column(c).to_numpy() for c in ("ra", "rb", "mask")))

    def self_pairs(self, side: str, kinds: set[int], max_shared: int) -> Pairs:
        """Pairs of different rows of one side sharing a token of ``kinds`` (row < other row)."""
        x = self._name("shared")
        if kinds <= _GROUPING_KINDS and side in self._grouping:
            side = self._grouping[side]
        self.run(
            f"CREATE TEMP TABLE {x} AS SELECT row, kind, value FROM {side} WHERE {_in_kinds(kinds)} "
            f"AND value IN (SELECT value FROM {side} WHERE {_in_kinds(kinds)} GROUP BY value "
            f"HAVING count(*) BETWEEN 2 AND {int(max_shared)})"
        )
        rows = self.run(
            f"SELECT p.row AS ra, q.row AS rb, bit_or({_BIT.replace('kind', 'p.kind')}) AS mask FROM {x} p "
            f"JOIN {x} q ON p.value = q.value AND p.row < q.row GROUP BY ALL",
            "arrow",
        )
        self.run(f"DROP TABLE {x}")
        return _sorted(*(rows.column(c).to_numpy() for c in ("ra", "rb", "mask")))

    def only_rows(self, side: str, kind: int, free: np.ndarray) -> str:
        """The side's tokens of one kind, on the rows where ``free`` is set."""
        fname, name = self._name("free"), self._name("only")
        self._arrow(fname, pa.table({"row": pa.array(np.flatnonzero(free).astype(np.uint32))}))
        self.run(
            f"CREATE TEMP TABLE {name} AS SELECT row, kind, value FROM {side} WHERE {_in_kinds({kind})} "
            f"AND row IN (SELECT row FROM {fname})"
        )
        self.con.unregister(fname)
        self._kinds[name] = {KIND_LETTERS[kind]} if self.run(f"SELECT 1 FROM {name} LIMIT 1") else set()
        return name

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()
        shutil.rmtree(self.spill, ignore_errors=True)


def _disk_sentence(folder: Path, exc: BaseException) -> str:
    why = getattr(exc, "strerror", None) or "the disk is full or cannot be written"
    return (
        f"Not enough room for the temporary files of linking in {folder} ({why}); nothing was written: "
        "free disk space there or choose another folder."
    )


def make_engine(engine: str, memory_mb: int = DEFAULT_MEMORY_MB, spill_dir: str | Path | None = None
                ) -> MemoryEngine | DuckEngine:  # fmt: skip
    """The engine named ``engine`` ("duckdb" or "memory")."""
    if engine == "memory":
        return MemoryEngine()
    if engine == "duckdb":
        return DuckEngine(memory_mb, spill_dir)
    raise InputError(f"Unknown linkage engine {engine!r}: use duckdb or memory.")
