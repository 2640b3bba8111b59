"""Mapping and validation of an export read in batches, memory bounded by a setting (issue 18, item 2).

:func:`deid._suggest.suggest_mapping`, :func:`deid._validate.validate` and
:func:`deid._apply_mapping.apply_mapping` take a table held whole. :class:`ExtractScan` reads the file
once (the streaming reader of deid._stream, the same header checks) into an Arrow IPC file in a private
folder (deid._spill: 0700, removed at the end, swept when a killed run left it) and then reads Arrow
batches back, so each step is a pass over batches:

- **suggest**: the classifier's sample (2,000 rows evenly spaced over the file: the rows
  ``profile_values`` takes from a whole column) and, for the columns suggested as a code set, every
  distinct value (a rare spelling still gets its recode, as in memory);
- **validate**: the same checks batch by batch (:class:`deid._validate.Checks`: counts add up, first
  rows are the file's), with the whole-column facts fixed first (a date column's format from the file's
  first rows, a percentage column's largest value); repeated student IDs across the whole file are found
  by DuckDB (rows and key columns handed over per batch; DuckDB spills beyond its share of the setting);
- **map**: each batch mapped with those same whole-column facts.

The results equal the in-memory functions' (tests compare them at batches of a few rows).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._apply_mapping import apply, column_top
from deid._cells import clean
from deid._elements import Element, element_library
from deid._io import ReadInfo
from deid._mapping_profile import MappingProfile, as_profile
from deid._spill import private_folder
from deid._stream import (
    DEFAULT_MEMORY_MB,
    MIN_MEMORY_MB,
    InputCache,
    batch_rows_for,
    disk_sentence,
    duckdb_memory_mb,
    give_back,
    open_source,
)
from deid._validate import Checks, ValidationFinding, duplicate_finding, duplicate_keys, whole_column_formats
from deid._value_profile import SAMPLE_ROWS
from deid.errors import InputError, OutputError

# A batch being mapped or validated holds a few copies of itself (cleaned text, distinct values, masks);
# far less than de-identifying it (deid._stream's factor 12), so batches can be larger for the same
# setting — but the streaming de-identification's sizing is kept: one rule for what a setting means.


class ExtractScan:
    """An export read once into a private folder, then read back in batches (module docstring).

    ``num_rows`` and ``column_names`` as a table has them; ``head`` the first 2,000 rows. Use as a
    context manager, or ``close`` it: the copy of the extract is removed then (and on any error here).
    NotStreamable (deid._stream) when only the in-memory reader takes the file (an Excel workbook, a
    CSV whose rows need repairs)."""

    def __init__(
        self,
        path: str | Path,
        *,
        memory_mb: int | None = None,
        batch_rows: int | None = None,
        spill_dir: str | Path | None = None,
    ) -> None:
        self.path = Path(path)
        self.memory_mb = int(memory_mb or DEFAULT_MEMORY_MB)
        if self.memory_mb < MIN_MEMORY_MB:
            raise InputError(
                f"The memory setting ({self.memory_mb} MB) is below the {MIN_MEMORY_MB} MB that reading a "
                "file in batches needs; give at least that."
            )
        if not self.path.exists() or self.path.is_dir():
            raise InputError(f"{self.path} does not exist or is not a file.")
        self.info = ReadInfo()
        source = open_source(self.path, self.info)
        self.column_names = list(source.names)
        self.batch_rows = int(batch_rows) if batch_rows else batch_rows_for(self.memory_mb, source.row_bytes)
        folder = Path(spill_dir) if spill_dir is not None else self.path.parent
        self._spill_dir = folder
        try:
            self.spill = private_folder(folder)
        except OSError as exc:
            raise OutputError(disk_sentence(folder, exc)) from exc
        try:
            self._cache = InputCache(self.spill / "input.arrow", folder)
            head: list[pa.Table] = []
            held = 0
            self.num_rows = 0
            for batch in source.batches(self.batch_rows):
                self._cache.add(batch)
                self.num_rows += batch.num_rows
                if held < SAMPLE_ROWS:
                    head.append(batch.slice(0, SAMPLE_ROWS - held))
                    held += head[-1].num_rows
                give_back()
            self._cache.finish()
            self.head = pa.concat_tables(head) if head else pa.table(
                {n: pa.array([], pa.string()) for n in self.column_names}
            )
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ExtractScan:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the copy of the extract (idempotent)."""
        shutil.rmtree(self.spill, ignore_errors=True)

    # ---------------------------------------------------------------------------------- reading back

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[tuple[int, pa.Table]]:
        """(index of the batch's first row, the batch) in file order; only ``columns`` when given."""
        offset = 0
        for batch in self._cache.batches(list(columns) if columns is not None else None):
            yield offset, batch
            offset += batch.num_rows
            give_back()

    def sample(self, rows: int = SAMPLE_ROWS) -> pa.Table:
        """``rows`` rows evenly spaced over the file (all of them in a shorter file): the rows the value
        profile of a whole column looks at."""
        if self.num_rows <= rows:
            return self._all()
        take = np.linspace(0, self.num_rows - 1, rows).astype(np.int64)
        parts = []
        for start, batch in self.batches():
            lo, hi = np.searchsorted(take, [start, start + batch.num_rows])
            if hi > lo:
                parts.append(batch.take(pa.array(take[lo:hi] - start)))
        return pa.concat_tables(parts)

    def _all(self) -> pa.Table:
        parts = [b for _, b in self.batches()]
        return pa.concat_tables(parts) if parts else self.head

    def distinct_values(self, columns: Iterable[str]) -> dict[str, pa.Array]:
        """Each column's distinct values (as read; nulls left out), in one pass."""
        cols = [c for c in dict.fromkeys(columns)]
        if not cols:
            return {}
        parts: dict[str, list[pa.Array]] = {c: [] for c in cols}
        for _, batch in self.batches(cols):
            for c in cols:
                arr = pc.unique(pc.drop_null(batch.column(c)))
                parts[c].append(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        return {
            c: pc.unique(pa.concat_arrays(v)) if v else pa.array([], pa.string()) for c, v in parts.items()
        }

    # ------------------------------------------------------------------------------------ the steps

    def suggest(self, elements: Sequence[Element] | None = None) -> list[Any]:
        """:func:`deid.suggest_mapping` of the whole file: the sample's profiles, every distinct value's
        recodes."""
        from deid._recodes import suggest_recodes
        from deid._suggest import suggest_mapping

        els = list(element_library().values()) if elements is None else list(elements)
        by_name = {el.name: el for el in els}
        suggestions = suggest_mapping(self.sample(), els)
        coded = [s.column for s in suggestions if s.element and by_name[s.element].code_set]
        values = self.distinct_values(coded)
        return [
            dataclasses.replace(s, recodes=suggest_recodes(values[s.column], by_name[s.element]))
            if s.column in values and s.element is not None
            else s
            for s in suggestions
        ]

    def facts(
        self, prof: MappingProfile, els: Sequence[Element]
    ) -> tuple[dict[str, str], dict[str, float]]:
        """The whole-column facts a batch cannot see: each date column's format (from the file's first
        rows) where the mapping names none, and each percentage column's largest value."""
        by_name = {el.name: el for el in els}
        present = [c for c in prof.mapped if c in self.column_names]
        fractions = [c for c in present if by_name.get(prof.mapped[c]) and by_name[prof.mapped[c]].normalize
                     == "fraction"]
        tops = {c: float("-inf") for c in fractions}
        if fractions:
            for _, batch in self.batches(fractions):
                for c in fractions:
                    tops[c] = max(tops[c], column_top(batch.column(c)))
        return whole_column_formats(self.head, prof, els), tops

    def validate(
        self,
        mapping: MappingProfile | Mapping[str, str | None],
        elements: Sequence[Element] | None = None,
        *,
        required: Iterable[str] | None = None,
        today: dt.date | None = None,
        min_age: int = 2,
        max_age: int = 100,
    ) -> list[ValidationFinding]:
        """:func:`deid.validate` of the whole file, in one pass over batches (duplicates on DuckDB)."""
        prof = as_profile(mapping)
        els = list(element_library().values()) if elements is None else list(elements)
        date_formats, tops = self.facts(prof, els)
        checks = Checks(prof, els, required=required, today=today, min_age=min_age, max_age=max_age,
                        date_formats=date_formats, tops=tops)
        checks.add(self.head.slice(0, 0), 0)  # the mapping's columns checked before any pass
        keys = duplicate_keys(prof)
        wanted = list(dict.fromkeys(
            [*prof.mapped, *(d["from"] for d in prof.derived.values()),
             *(c for _, cols in keys for c in cols)]
        ))
        with _Repeats(self, keys) as repeats:
            for offset, batch in self.batches(wanted) if wanted else ():
                checks.add(batch, offset)
                repeats.add(batch, offset)
            found = repeats.counts()
        duplicates = [duplicate_finding(prof, id_el, n, rows) for id_el, (n, rows) in found.items() if n]
        return checks.findings(duplicates)

    def mapped_batches(
        self,
        mapping: MappingProfile | Mapping[str, str | None],
        elements: Sequence[Element] | None = None,
        *,
        keep_unmapped: bool = False,
        fill_missing: bool = False,
    ) -> Iterator[pa.Table]:
        """:func:`deid.apply_mapping` of the whole file, batch by batch (the same whole-column facts
        for every batch)."""
        prof = as_profile(mapping)
        els = list(element_library().values()) if elements is None else list(elements)
        date_formats, tops = self.facts(prof, els)
        for _, batch in self.batches():
            yield apply(batch, prof, els, keep_unmapped=keep_unmapped, fill_missing=fill_missing,
                         date_formats=date_formats, tops=tops)


class _Repeats:
    """Student IDs repeated anywhere in the file (per term/year/course when mapped), on DuckDB: each
    batch's row numbers and cleaned key columns go into a table in the scan's private folder; DuckDB
    counts the keys and lists the first repeated rows within its share of the memory setting."""

    def __init__(self, scan: ExtractScan, keys: list[tuple[str, list[str]]]) -> None:
        self.scan, self.keys = scan, keys
        self.con: Any = None

    def __enter__(self) -> _Repeats:
        if not self.keys:
            return self
        import duckdb

        try:
            self.con = duckdb.connect(
                str(self.scan.spill / "ids.duckdb"),
                config={
                    "memory_limit": f"{duckdb_memory_mb(self.scan.memory_mb)}MB",
                    "temp_directory": str(self.scan.spill),
                    "threads": 2,
                    "preserve_insertion_order": False,
                },
            )
            self.con.execute("SET enable_progress_bar = false")
            for i, (_, cols) in enumerate(self.keys):
                key_cols = ", ".join(f"k{j} VARCHAR" for j in range(len(cols)))
                self.con.execute(f"CREATE TABLE ids{i} (row BIGINT, {key_cols})")
        except BaseException as exc:
            self._fail(exc)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.con is not None:
            with contextlib.suppress(Exception):
                self.con.close()
            self.con = None
            for f in self.scan.spill.glob("ids.duckdb*"):
                f.unlink(missing_ok=True)

    def _fail(self, exc: BaseException) -> None:
        import duckdb

        self.__exit__()
        if isinstance(exc, duckdb.OutOfMemoryException):
            raise InputError(
                f"The memory setting ({self.scan.memory_mb:,} MB) is too small to look for repeated "
                "student IDs in this file: give a larger memory setting or free memory."
            ) from exc
        if isinstance(exc, duckdb.IOException | OSError):
            raise OutputError(disk_sentence(self.scan._spill_dir, exc)) from exc
        raise exc

    def add(self, batch: pa.Table, offset: int) -> None:
        if self.con is None:
            return
        try:
            for i, (_, cols) in enumerate(self.keys):
                first = clean(batch.column(cols[0]))
                keep = pc.is_valid(first)  # rows without an ID are not duplicates of each other
                arrays = [pa.array(np.arange(offset, offset + batch.num_rows, dtype=np.int64))]
                arrays += [clean(batch.column(c)) for c in cols]
                part = pa.table(arrays, names=["row", *(f"k{j}" for j in range(len(cols)))]).filter(keep)
                self.con.register("part", part)
                self.con.execute(f"INSERT INTO ids{i} SELECT * FROM part")
                self.con.unregister("part")
        except BaseException as exc:
            self._fail(exc)

    def counts(self) -> dict[str, tuple[int, tuple[int, ...]]]:
        """Per ID element: how many rows repeat an earlier row's key, and the first few (from 1)."""
        from deid._rownumbers import MAX_ROWS_LISTED

        out: dict[str, tuple[int, tuple[int, ...]]] = {}
        if self.con is None:
            return out
        try:
            for i, (id_el, cols) in enumerate(self.keys):
                k = ", ".join(f"k{j}" for j in range(len(cols)))
                total, groups = self.con.execute(
                    f"SELECT (SELECT count(*) FROM ids{i}), "
                    f"(SELECT count(*) FROM (SELECT DISTINCT {k} FROM ids{i}))"
                ).fetchone()
                n = int(total) - int(groups)
                rows: tuple[int, ...] = ()
                if n:
                    rows = tuple(
                        int(r) + 1
                        for (r,) in self.con.execute(
                            f"SELECT row FROM ids{i} "
                            f"QUALIFY row_number() OVER (PARTITION BY {k} ORDER BY row) > 1 "
                            f"ORDER BY row LIMIT {MAX_ROWS_LISTED}"
                        ).fetchall()
                    )
                out[id_el] = (n, rows)
        except BaseException as exc:
            self._fail(exc)
        return out


def scan_extract(
    path: str | Path,
    *,
    memory_mb: int | None = None,
    batch_rows: int | None = None,
    spill_dir: str | Path | None = None,
) -> ExtractScan:
    """An :class:`ExtractScan` of the export at ``path`` (close it, or use it in a ``with``)."""
    return ExtractScan(path, memory_mb=memory_mb, batch_rows=batch_rows, spill_dir=spill_dir)
