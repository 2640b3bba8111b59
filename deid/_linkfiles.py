"""Linking two de-identified files on their link tokens (the matcher: deid._linkmatch): find each
file's token column, read it (on DuckDB a Parquet file's tokens straight from the file), link, and write
the joined rows and the report — all or nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from deid._linkdb import DEFAULT_MEMORY_MB
from deid._linkmatch import METHODS, THRESHOLD, Links, link_sides, make_engine
from deid._tokenkinds import TOKEN_COLUMN
from deid.errors import InputError, OutputError

if TYPE_CHECKING:
    from deid._treatments import Column


def find_token_column(table: pa.Table, where: str, column: str | None = None) -> str:
    """The link-tokens column of ``table``: ``column`` if given, else ``link_tokens``, else the one
    column whose first filled cell looks like link tokens. InputError when there is none."""
    if column is not None:
        if column not in table.column_names:
            raise InputError(f"{where} has no column '{column}'.")
        return column
    if TOKEN_COLUMN in table.column_names:
        return TOKEN_COLUMN
    found = []
    for name in table.column_names:
        sample = pc.drop_null(table.column(name).slice(0, 1000))
        looks = pc.match_substring_regex(sample, r"^([A-Z][A-Za-z0-9_\-]{11}( |$))+$")
        if len(sample) and pc.all(looks).as_py():
            found.append(name)
    if not found:
        raise InputError(
            f"{where} has no link-tokens column.",
            "De-identify it under an agreement that shares link tokens, or name the column that holds them.",
            action="name_token_column",
        )
    if len(found) > 1:
        raise InputError(
            f"{where} has several link-tokens columns ({', '.join(found)}).",
            "Name the one to link on.",
            action="name_token_column",
        )
    return found[0]


def link(
    file_a: str | os.PathLike[str],
    file_b: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    report: str | os.PathLike[str] | None = None,
    method: str = "combined",
    columns: tuple[str | None, str | None] = (None, None),
    force: bool = False,
    engine: str = "duckdb",
    memory_mb: int | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
    chart: str | os.PathLike[str] | None = None,
) -> Links:
    """Link two de-identified files on their link tokens; write the joined rows to ``out`` (.csv or
    .parquet: ``a_row``, ``b_row`` (1-based data rows), ``link_method``, ``link_score``, then A's
    columns and B's, B's renamed ``<name>_b`` where A has the same name; token columns left out) and
    the report to ``report`` (JSON). Nothing is written when either file cannot be read; an existing
    output or report is replaced only with ``force``.

    The tokens are joined on DuckDB (``engine="duckdb"``, the default; ``"memory"``: numpy) within
    ``memory_mb`` (default 1 GB), spilling into a private folder made beside the output (or the
    report, or in the system's temporary folder; ``spill_dir`` to choose) and removed afterwards. A
    Parquet file's token column is read by DuckDB straight from the file, never whole into memory.
    ``chart`` (.png): the analyst's charts of the weights and of the score distribution
    (deid._linkcharts), written with the report."""
    from deid._atomic import check_output_path
    from deid._io import check_distinct_files, output_format, write_table
    if method not in METHODS:
        raise InputError(f"Unknown linkage method {method!r}: use {', '.join(METHODS)}.")
    if out is not None:
        output_format(out)
    check_distinct_files(
        [("file A", file_a), ("file B", file_b)],
        [("the linked file", out), ("the report", report), ("the chart", chart)],
    )
    if chart is not None and Path(chart).suffix.lower() != ".png":
        raise InputError(f"{chart}: the chart is written as a PNG image; name it with .png.")
    for target in (out, report, chart):
        if target is not None:
            check_output_path(target, force=force)
    if spill_dir is None:
        first = next((t for t in (out, report, chart) if t is not None), None)
        spill_dir = Path(first).parent if first is not None else None
    eng = make_engine(engine, memory_mb or DEFAULT_MEMORY_MB, spill_dir)
    try:
        inputs = [_link_input(eng, path, col, want_others=out is not None)
                  for path, col in ((file_a, columns[0]), (file_b, columns[1]))]  # fmt: skip
        sides = [eng.side(*x.tokens) if x.tokens is not None else x.side for x in inputs]
        links = link_sides(eng, sides[0], sides[1], inputs[0].rows, inputs[1].rows, method,
                            (str(file_a), str(file_b)), THRESHOLD)  # fmt: skip
    finally:
        eng.close()
    ca, cb = inputs[0].column, inputs[1].column
    links.report.token_columns = (ca, cb)
    written: list[Path] = []

    def write_report() -> None:
        from deid._atomic import write_bytes_atomic
        from deid._linkcharts import link_chart_png

        if report is not None:
            try:
                links.report.write(report, force=force)
            except OSError as exc:
                raise OutputError(f"Cannot write {report}: {exc.strerror or 'the system refused'}.") from None
            written.append(Path(report))
        if chart is not None:
            try:
                write_bytes_atomic(chart, link_chart_png(links.report), force=force)
            except OSError as exc:
                raise OutputError(f"Cannot write {chart}: {exc.strerror or 'the system refused'}.") from None
            written.append(Path(chart))

    if out is None:
        write_report()
        return links
    joined = _joined_table(inputs[0].others, inputs[1].others, links)
    links.report.output = str(out)

    def before_commit(_tmp: Path) -> None:
        # The report is saved before the linked file appears: a failure leaves neither (all or nothing).
        write_report()

    try:
        write_table(joined, out, before_commit=before_commit, force=force)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return links


@dataclass
class _Input:
    """One file to link: its token column's name, its row count, its other columns (when the linked
    file is written), and either its tokens as a column or the engine's side read from the file."""

    column: str
    rows: int
    others: pa.Table
    tokens: tuple[Column, str, int] | None = None
    side: Any = None


def _link_input(eng: Any, path: str | os.PathLike[str], column: str | None, *, want_others: bool) -> _Input:
    """Read a file to link. On DuckDB a Parquet file's token column is left in the file (DuckDB reads
    it); other formats, and every file in memory, are read whole (deid._io.read_table)."""
    from deid._io import read_table

    if eng.name != "duckdb" or Path(path).suffix.lower() != ".parquet":
        table = read_table(path)
        name = find_token_column(table, str(path), column)
        n = table.num_rows
        return _Input(name, n, table.drop_columns([name]), tokens=(table.column(name), str(path), n))
    import pyarrow.parquet as pq

    from deid._io import ReadInfo, column_as_text, finish

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p} does not exist.")
    if p.is_dir():
        raise InputError(f"{p} is a folder, not a data file.")
    try:
        pf = pq.ParquetFile(p)
        names = pf.schema_arrow.names
        rows = pf.metadata.num_rows
        if column is not None:
            if column not in names:
                raise InputError(f"{p} has no column '{column}'.")
            name = column
        elif TOKEN_COLUMN in names:
            name = TOKEN_COLUMN
        else:  # the one column whose first cells look like link tokens (as find_token_column does)
            first = next(pf.iter_batches(batch_size=1000), None)
            sample = pa.Table.from_batches([first]) if first is not None else pf.schema_arrow.empty_table()
            text = pa.table([column_as_text(c) for c in sample.columns], names=sample.column_names)
            name = find_token_column(text, str(p))
        rest = [n for n in names if n != name]
        if want_others and rest:
            others = pq.read_table(p, columns=rest)
            as_text = pa.table([column_as_text(c) for c in others.columns], names=others.column_names)
            others = finish(p, as_text, ReadInfo())
        else:
            others = pa.table({"": pa.nulls(rows, pa.string())}).drop_columns([""])
    except (pa.ArrowException, OSError):
        raise InputError(f"{p} is not a readable Parquet file.") from None
    if rows == 0:
        raise InputError(f"{p} has a header but no data rows.")
    return _Input(name, rows, others, side=eng.parquet_side(p, name, str(p)))


def _joined_table(ta: pa.Table, tb: pa.Table, links: Links) -> pa.Table:
    cols: dict[str, Any] = {
        "a_row": pa.array((links.row_a + 1).astype(str), pa.string()),
        "b_row": pa.array((links.row_b + 1).astype(str), pa.string()),
        "link_method": pa.array(links.method.tolist(), pa.string()),
        "link_score": pa.array(links.score.astype(str), pa.string()),
    }
    ia, ib = pa.array(links.row_a), pa.array(links.row_b)
    for name in ta.column_names:
        cols[name] = ta.column(name).take(ia)
    for name in tb.column_names:
        new = name if name not in cols else f"{name}_b"
        while new in cols:
            new += "_b"
        cols[new] = tb.column(name).take(ib)
    return pa.table(cols)
