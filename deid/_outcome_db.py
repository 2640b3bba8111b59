"""Outcome tables on DuckDB: reading opened packages, linking them and counting, out of core.

The in-memory path (``agreements._outcomes.link_frames`` then :func:`deid._outcomes.compute_tables`)
holds every package's data file whole in Arrow and the linked frame in pandas; this one holds, per
student, only what the counting returns (a flag per cohort for the differencing check):

1. **Reading.** Each package's data files become one Parquet file of text columns in a private
   folder (``deid._spill.private_folder``: 0700, removed at the end, swept when a killed run left
   it). A CSV as PathShare writes it (UTF-8, comma, one header row) is copied by DuckDB straight from
   the file; any other file, and a CSV DuckDB's strict reader does not take as such, goes through
   ``deid.read_table`` (its checks and one-sentence refusals) and is written there by Arrow.
2. **Linking.** ``deid.link`` on DuckDB, each further package's token column read from its Parquet
   file (never all tokens in memory), within the memory setting.
3. **Merging.** One table ``linked`` in a DuckDB database file in the private folder: the first
   package's rows (the students counted), every element a column of text; a further package's value
   fills a blank of the first on the rows linked to it (as ``link_frames`` does).
4. **Counting.** Every leaf condition of the catalog (``{"element": E, "in": ...}``, ``at_least``,
   ``years_after``...) is decided *in Python on the distinct values* of its elements — by
   :func:`deid._metrics.evaluate` itself, so the semantics (trimming, buckets, terms, refusals) are
   the in-memory path's exactly — and handed to DuckDB as the list of values that pass; one
   ``GROUP BY GROUPING SETS`` then counts every metric's cohort and outcome for every breakdown in one
   scan. Group labels ("(not recorded)", trimming, "A × B") come from the same per-value code.

Memory: DuckDB's own (``memory_limit`` = the memory setting; beyond it, it spills into the private
folder), the distinct values, and one byte per student and cohort (the cohort masks the differencing
check and the release's member digests need).
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deid._spill import private_folder
from deid.errors import InputError, OutputError, memory_too_small

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from deid._metrics import Catalog
    from deid._outcomes import Tables

DEFAULT_MEMORY_MB = 1024
BATCH_ROWS = 100_000  # rows DuckDB hands back at a time (flags, keys), and Parquet row groups
ROW = "__row"  # the first package's row (its Parquet file row number): the student counted
_PLAIN_DELIMITERS = ("\t", ";", "|")  # a header holding one of these is left to read_table's sniffing


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class LinkedData:
    """Linked packages in DuckDB (see the module docstring): table ``linked`` with ``__row`` and a text
    column per element; the first package's keys stay in its Parquet file (``key_file``).
    :meth:`close` removes the private folder; use as a context manager."""

    con: duckdb.DuckDBPyConnection
    folder: Path
    rows: int
    linked: int
    columns: list[str]
    key_file: Path
    key_column: str
    batch_rows: int = BATCH_ROWS
    _n: int = field(default=0, repr=False)

    def __enter__(self) -> LinkedData:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def sql(self, query: str) -> Any:
        """Run ``query`` (a relation); DuckDB's memory and disk failures become one sentence."""
        return _run(self.con, query, self.folder.parent)

    def keys(self) -> Iterator[pa.Array]:
        """The first package's student keys, in row order (its Parquet file's), batch by batch."""
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(self.key_file)
        for batch in pf.iter_batches(batch_size=self.batch_rows, columns=[self.key_column]):
            yield batch.column(0)


def _run(con: duckdb.DuckDBPyConnection, query: str, where: Path) -> Any:
    import duckdb

    try:
        return con.sql(query)
    except duckdb.OutOfMemoryException:
        raise memory_too_small("to count these packages") from None
    except (duckdb.IOException, OSError) as exc:
        reason = getattr(exc, "strerror", None) or "the disk refused (full or not writable)"
        raise OutputError(f"Cannot write temporary files in {where}: {reason}.") from None


# ------------------------------------------------------------------------------------------- reading


def _csv_header(path: Path) -> list[str] | None:
    """The header of a CSV as PathShare writes it (UTF-8, comma-separated), or None when the file
    may be anything else (read_table then sniffs and checks it)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            line = fh.readline(1 << 16)
    except (OSError, UnicodeDecodeError):
        return None
    if not line.endswith(("\n", "\r")) or any(d in line for d in _PLAIN_DELIMITERS):
        return None
    names = next(csv.reader([line]), [])
    if len(names) < 2 or any(not n or n != n.strip() for n in names) or len(set(names)) != len(names):
        return None
    return names


def _copy_csv(
    con: duckdb.DuckDBPyConnection, files: Sequence[Path], out: Path, batch: int
) -> list[str] | None:
    """Copy CSV files straight into the Parquet file ``out`` with DuckDB's strict reader; None (and
    nothing kept) when any file is not a plain PathShare CSV or DuckDB does not take it."""
    import duckdb

    headers = [_csv_header(f) if f.suffix.lower() == ".csv" else None for f in files]
    if any(h is None for h in headers) or any(h != headers[0] for h in headers):
        return None
    names: list[str] = headers[0]  # type: ignore[assignment]
    cols = ", ".join(f"{_ident(n)}: 'VARCHAR'" for n in names)
    parts = " UNION ALL ".join(
        f"SELECT * FROM read_csv({_text(str(f))}, header = true, delim = ',', quote = '\"', "
        f"escape = '\"', columns = {{{cols}}}, auto_detect = false, strict_mode = true, "
        f"null_padding = false, encoding = 'utf-8')"
        for f in files
    )
    try:
        con.execute(f"COPY ({parts}) TO {_text(str(out))} (FORMAT parquet, ROW_GROUP_SIZE {batch})")
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error:
        out.unlink(missing_ok=True)
        return None
    return names


def _spill_package(
    con: duckdb.DuckDBPyConnection, files: Sequence[Path], where: str, out: Path, batch: int
) -> list[str]:
    """One package's data files as one Parquet file of text columns; its column names."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deid._io import read_table

    names = _copy_csv(con, files, out, batch)
    if names is not None:
        if pq.ParquetFile(out).metadata.num_rows == 0:
            raise InputError(f"{files[0]} has a header but no data rows.")
        return names
    parts = [read_table(f) for f in files]  # its own checks and one-sentence refusals
    try:
        table = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    except (pa.ArrowInvalid, ValueError):
        raise InputError(f"The data files in {where} do not share their columns.") from None
    del parts
    pq.write_table(table, out, row_group_size=batch)
    return list(table.column_names)


def _first_rows(path: Path, rows: int = 1000) -> pa.Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    first = next(pf.iter_batches(batch_size=rows), None)
    return pa.Table.from_batches([first]) if first is not None else pf.schema_arrow.empty_table()


def open_linked(
    packages: Sequence[Sequence[str | Path]],
    names: Sequence[str],
    to_element: Mapping[str, str],
    key_columns: Sequence[str],
    *,
    engine: str = "duckdb",
    memory_mb: int | None = None,
    spill_dir: str | Path | None = None,
    batch_rows: int = BATCH_ROWS,
) -> LinkedData:
    """Read, link and merge opened packages (each a list of data files; ``names`` say where each is
    for messages) into DuckDB: see the module docstring. ``to_element`` renames a column to its
    element; ``key_columns`` are the columns that may tell the first package's students apart (the
    first one present is the key; then ``link_tokens``). ``engine`` is the linker's ("duckdb", or
    "memory" for tests)."""
    import tempfile

    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    from deid._linkfiles import find_token_column, link

    memory = memory_mb or DEFAULT_MEMORY_MB
    parent = Path(spill_dir) if spill_dir is not None else Path(tempfile.gettempdir())
    try:
        folder = private_folder(parent)
    except OSError as exc:
        raise OutputError(f"Cannot make a private folder in {parent}: {exc.strerror or 'refused'}.") from None
    con: duckdb.DuckDBPyConnection | None = None
    try:
        con = duckdb.connect(
            str(folder / "outcomes.duckdb"),
            config={"memory_limit": f"{memory}MB", "temp_directory": str(folder / "tmp"),
                    "preserve_insertion_order": True},
        )  # fmt: skip
        files: list[Path] = []
        columns: list[list[str]] = []
        for k, (pkg, where) in enumerate(zip(packages, names, strict=True)):
            out = folder / f"package_{k}.parquet"
            columns.append(_spill_package(con, [Path(p) for p in pkg], where, out, batch_rows))
            files.append(out)
        first = columns[0]
        key = next((c for c in (*key_columns, "link_tokens") if c in first), None)
        if key is None:
            raise InputError(f"{names[0]} has no record code or link tokens to tell its students apart.")
        token_cols: list[str | None] = []
        if len(files) > 1:
            for path, where in zip(files, names, strict=True):
                token_cols.append(find_token_column(_first_rows(path), where))
        else:
            token_cols.append("link_tokens" if "link_tokens" in first else None)
        linked = 0
        joins = [f"read_parquet({_text(str(files[0]))}, file_row_number = true) AS p0"]
        merged: dict[str, str] = {}
        for col in first:
            if col != token_cols[0]:
                merged[to_element.get(col, col)] = f"p0.{_ident(col)}"
        for k in range(1, len(files)):
            links = link(
                files[0], files[k], columns=(token_cols[0], token_cols[k]), engine=engine, memory_mb=memory,
                spill_dir=folder,
            )  # fmt: skip
            linked = max(linked, len(links.row_a))
            # A student with two rows in a file links each of them: a row of the first package takes
            # one row of the other (the last linked, as link_frames does), never one row per link.
            at = np.full(pq.ParquetFile(files[0]).metadata.num_rows, -1, dtype=np.int64)
            at[np.asarray(links.row_a, dtype=np.int64)] = np.asarray(links.row_b, dtype=np.int64)
            rows_a = np.flatnonzero(at >= 0)
            pairs = pa.table({"a": pa.array(rows_a), "b": pa.array(at[rows_a])})
            del at, rows_a
            con.register(f"links_{k}", pairs)
            con.execute(f"CREATE TABLE pairs_{k} AS SELECT * FROM links_{k}")
            con.unregister(f"links_{k}")
            del links, pairs
            joins.append(
                f"LEFT JOIN pairs_{k} AS l{k} ON l{k}.a = p0.file_row_number "
                f"LEFT JOIN read_parquet({_text(str(files[k]))}, file_row_number = true) AS p{k} "
                f"ON p{k}.file_row_number = l{k}.b"
            )
            for col in columns[k]:
                if col == token_cols[k]:
                    continue
                name, other = to_element.get(col, col), f"p{k}.{_ident(col)}"
                have = merged.get(name)
                # the first package's value wins; the other fills its blanks (null or empty)
                merged[name] = other if have is None else (
                    f"CASE WHEN {have} IS NOT NULL AND {have} <> '' THEN {have} ELSE {other} END"
                )
        select = ", ".join(
            [f"p0.file_row_number AS {ROW}"]
            + [f"({expr})::VARCHAR AS {_ident(name)}" for name, expr in merged.items()]
        )
        _run(con, f"CREATE TABLE linked AS SELECT {select} FROM {' '.join(joins)}", parent).fetchall()
        for path in files[1:]:  # the merged table has what the counting reads; their tokens go now
            path.unlink(missing_ok=True)
        rows = int(con.execute("SELECT count(*) FROM linked").fetchall()[0][0])
        return LinkedData(con, folder, rows, linked, list(merged), files[0], key, batch_rows)
    except duckdb.OutOfMemoryException:
        _discard(con, folder)
        raise memory_too_small("to read these packages", memory) from None
    except (duckdb.IOException, OSError) as exc:
        _discard(con, folder)
        reason = getattr(exc, "strerror", None) or "the disk refused (full or not writable)"
        raise OutputError(f"Cannot write temporary files in {parent}: {reason}.") from None
    except BaseException:
        _discard(con, folder)
        raise


def _discard(con: Any, folder: Path) -> None:
    if con is not None:
        con.close()
    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------ counting


def _distinct(data: LinkedData, elements: Sequence[str]) -> Any:  # -> pd.DataFrame of object columns
    cols = ", ".join(_ident(e) for e in elements)
    frame = data.sql(f"SELECT DISTINCT {cols} FROM linked").df()
    return frame.astype(object).where(frame.notna(), None)


def _predicate(data: LinkedData, cond: Mapping[str, Any], cache: dict[str, str]) -> str:
    """SQL that is true where ``cond`` holds: every leaf decided by deid._metrics.evaluate on the
    distinct values of its elements (registered as a small table of the values that pass)."""
    from deid._metrics import evaluate

    if "all" in cond or "any" in cond:
        parts = [_predicate(data, c, cache) for c in cond.get("all", cond.get("any", ()))]
        joiner = " AND " if "all" in cond else " OR "
        return "(" + joiner.join(parts) + ")"
    key = json.dumps(cond, sort_keys=True)
    if key in cache:
        return cache[key]
    import pyarrow as pa

    if "years_after" in cond:
        elements = [cond["years_after"]["from"], cond["years_after"]["to"]]
    else:
        elements = [cond["element"]]
    values = _distinct(data, elements)
    passing = values[evaluate(cond, values).to_numpy(bool)] if len(values) else values
    table = data.name("leaf")
    data.con.register(table, pa.table({f"v{i}": pa.array(passing[e].tolist(), pa.string())
                                       for i, e in enumerate(elements)}))  # fmt: skip
    # a missing value never passes a test: plain equality suffices, and NULL reads as false
    if len(elements) == 1:
        sql = f"COALESCE({_ident(elements[0])} IN (SELECT v0 FROM {table}), false)"
    else:
        sql = (f"COALESCE(EXISTS (SELECT 1 FROM {table} WHERE v0 = linked.{_ident(elements[0])} "
               f"AND v1 = linked.{_ident(elements[1])}), false)")  # fmt: skip
    cache[key] = sql
    return sql


def _labels(data: LinkedData, element: str) -> dict[str | None, str]:
    """Each distinct value of ``element`` → its group label, as deid._outcomes.breakdown_groups writes it."""
    import pandas as pd

    from deid._outcomes import breakdown_groups

    values = _distinct(data, [element])
    if not len(values):
        return {}
    labels = breakdown_groups(pd.DataFrame({element: values[element]}), element)
    return dict(zip(values[element].tolist(), (str(v) for v in labels), strict=True))


def count_linked(
    data: LinkedData, metric_ids: Sequence[str], by: Sequence[str], catalog: Catalog | None = None
) -> Tables:
    """:func:`deid._outcomes.compute_tables` on linked data in DuckDB: the same tables (and per cohort
    the mask of rows in it), counted in one ``GROUP BY GROUPING SETS`` scan."""
    from deid._metrics import load_catalog
    from deid._outcomes import (
        ALL,
        CROSS_GROUP,
        OutcomeTable,
        Tables,
        breakdown_parts,
        check_computable,
        with_margins,
    )

    cat = catalog or load_catalog()
    metrics = [cat.get(i) for i in metric_ids]
    check_computable(metrics, by, data.columns)
    by = with_margins(by)
    cache: dict[str, str] = {}
    keys = list(dict.fromkeys(m.cohort_key for m in metrics))
    rule = {m.cohort_key: m.cohort for m in metrics}
    cohort_sql = {k: _predicate(data, rule[k], cache) for k in keys}
    outcome_sql = {m.id: _predicate(data, m.numerator, cache) for m in metrics}
    elements = list(dict.fromkeys(p for b in by for p in breakdown_parts(b)))
    labels = {e: _labels(data, e) for e in elements}
    for b in by:  # a crossed breakdown refuses a value holding the separator (as breakdown_groups does)
        if len(breakdown_parts(b)) >= 2:
            for e in breakdown_parts(b):
                if any(CROSS_GROUP in v for v in labels[e].values()):
                    sign = CROSS_GROUP.strip()
                    raise InputError(f'A value of {e} contains "{sign}"; it cannot be crossed.')
    flags = [f"{cohort_sql[k]} AS c{i}" for i, k in enumerate(keys)]
    flags += [f"({cohort_sql[m.cohort_key]} AND {outcome_sql[m.id]}) AS o{i}" for i, m in enumerate(metrics)]
    inner = ", ".join([*(_ident(e) for e in elements), *flags]) if elements else ", ".join(flags)
    sets = ["()"] + [f"({', '.join(_ident(p) for p in breakdown_parts(b))})" for b in by]
    sums = [f"count(*) FILTER (WHERE c{i})" for i in range(len(keys))]
    sums += [f"count(*) FILTER (WHERE o{i})" for i in range(len(metrics))]
    grouping = f"GROUPING({', '.join(_ident(e) for e in elements)})" if elements else "0"
    outer = ", ".join([*(_ident(e) for e in elements), f"{grouping} AS g", *sums])
    rows = data.sql(
        f"SELECT {outer} FROM (SELECT {inner} FROM linked) GROUP BY GROUPING SETS ({', '.join(sets)})"
    ).fetchall()
    ne = len(elements)
    full = (1 << ne) - 1
    # GROUPING's bit for element i (the leftmost is the highest) is 0 when the row is grouped by it.
    set_of = {full: ""}
    for b in by:
        grouped = 0
        for p in breakdown_parts(b):
            grouped |= 1 << (ne - 1 - elements.index(p))
        set_of[full & ~grouped] = b
    counts: dict[str, dict[str, np.ndarray]] = {b: {} for b in ["", *by]}
    nk = len(keys)
    for row in rows:
        b = set_of[row[ne]]
        vals = np.asarray(row[ne + 1:], dtype=np.int64)
        label = CROSS_GROUP.join(labels[p][row[elements.index(p)]] for p in breakdown_parts(b)) if b else ALL
        have = counts[b].get(label)
        counts[b][label] = vals if have is None else have + vals  # values trimmed to one label add up
    total = counts[""].get(ALL, np.zeros(nk + len(metrics), np.int64))
    tables: list[OutcomeTable] = []
    for j, m in enumerate(metrics):
        ci, oi = keys.index(m.cohort_key), nk + j
        tables.append(OutcomeTable(m.id, "", [ALL], [int(total[ci])], [int(total[oi])]))
        for b in by:
            groups = sorted(g for g, v in counts[b].items() if v[ci] > 0)
            tables.append(OutcomeTable(
                m.id, b, [*groups, ALL],
                [*(int(counts[b][g][ci]) for g in groups), int(total[ci])],
                [*(int(counts[b][g][oi]) for g in groups), int(total[oi])],
            ))  # fmt: skip
    cohorts = _masks(data, [cohort_sql[k] for k in keys])
    return Tables(tables, dict(zip(keys, cohorts, strict=True)), {m.id: m.cohort_key for m in metrics})


def _masks(data: LinkedData, predicates: Sequence[str]) -> list[np.ndarray]:
    """Per predicate, a boolean mask over the first package's rows (fetched batch by batch)."""
    out = [np.zeros(data.rows, bool) for _ in predicates]
    if not predicates:
        return out
    cols = ", ".join(f"{p} AS f{i}" for i, p in enumerate(predicates))
    reader = data.sql(f"SELECT {ROW}, {cols} FROM linked").to_arrow_reader(data.batch_rows)
    for batch in reader:
        at = batch.column(0).to_numpy()
        for i in range(len(predicates)):
            out[i][at] = batch.column(i + 1).to_numpy(zero_copy_only=False)
    return out


def row_groups(data: LinkedData, by: Sequence[str]) -> dict[str, np.ndarray]:
    """Per breakdown, each row's group label (as :func:`deid._outcomes.breakdown_groups`), for the
    differencing check: object arrays sharing one string per label."""
    import pyarrow as pa

    from deid._outcomes import CROSS_GROUP, breakdown_parts

    out: dict[str, np.ndarray] = {}
    for b in by:
        parts = breakdown_parts(b)
        per: list[tuple[np.ndarray, np.ndarray]] = []  # (codes, label of each code)
        for e in parts:
            labels = _labels(data, e)
            values = list(labels)
            codes = np.zeros(data.rows, np.int64)
            table = data.name("values")
            data.con.register(table, pa.table({"v": pa.array(values, pa.string()),
                                               "k": pa.array(np.arange(len(values)))}))  # fmt: skip
            reader = data.sql(
                f"SELECT {ROW}, k FROM linked JOIN {table} ON v IS NOT DISTINCT FROM linked.{_ident(e)}"
            ).to_arrow_reader(data.batch_rows)
            for batch in reader:
                codes[batch.column(0).to_numpy()] = batch.column(1).to_numpy()
            per.append((codes, np.array([labels[v] for v in values] or [""], dtype=object)))
        if len(per) == 1:
            out[b] = per[0][1][per[0][0]]
        else:  # one string per combination of labels, indexed by the combination's code
            import itertools

            code = per[0][0]
            for codes, names in per[1:]:
                code = code * len(names) + codes
            combos = [CROSS_GROUP.join(c) for c in itertools.product(*(names for _, names in per))]
            out[b] = np.array(combos, dtype=object)[code]
    return out


def row_outcomes(
    data: LinkedData, metric_ids: Sequence[str], catalog: Catalog | None = None
) -> dict[str, np.ndarray]:
    """Per metric, each row's outcome flag (the numerator's condition), for the differencing check."""
    from deid._metrics import load_catalog

    cat = catalog or load_catalog()
    cache: dict[str, str] = {}
    preds = [_predicate(data, cat.get(m).numerator, cache) for m in metric_ids]
    return dict(zip(metric_ids, _masks(data, preds), strict=True))
