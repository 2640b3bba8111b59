"""Streaming de-identification: the input in Arrow record batches, memory bounded by a setting.

The in-memory run (:func:`deid._engine._run`) holds the whole extract; a statewide one (60 million rows)
does not fit a district laptop. Here the file is read batch by batch, several times, and only what
needs the whole file is kept between batches — and that is counts and distinct values, never rows:

1. **Pass 1** counts the rows and, for the treatments that learn from the whole column (``zip3``'s small
   areas, ``recode_rare``'s rare values), the values they count (``fit_counts``).
2. **Pass 2** takes the classifier's evenly spaced sample rows (the same rows the in-memory run
   samples), so columns are classified — and the roster chosen — exactly as there.
3. **Pass 3** collects the roster (the distinct names, IDs, e-mail addresses and phone numbers, which
   the scanner searches the notes for) and the quasi-identifier classes: the treated QI values of each
   row, counted per distinct combination (:class:`QiClasses`). Local suppression (deid._risk) decides
   per class, never per row, so it runs on this table of classes. With disclosure control the classes
   are of the QIs and the sensitive elements together, and the generalization search
   (deid._disclosure.protect_microdata) runs on them, each class weighing its rows: the result the rows
   give, and each class's released values (generalized, withheld, the ``qi_withheld`` marker), which
   every row of the class takes in pass 4. Memory grows with the number of classes, not of rows.
4. **Pass 4** treats each batch (each treatment fitted once, in passes 1-3), empties the QI cells
   suppression chose, redacts the notes (the scanner built once; each batch brings its rows' own names),
   re-scans the output, and gives each row a random 64-bit key from the operating system's CSPRNG. The
   rows are sorted by that key — a fresh random order, as ``write_release`` gives — outside memory:
   by the key's top bits into pile files in a private folder beside the output, then each pile sorted
   alone (:class:`_Piles`), and the writer takes them back batch by batch.

The result equals the in-memory run's (the same rows, codes, suppressions and findings; tests compare
them with batches of a few rows, so every batch edge is crossed), except the order of the rows (both
random) and where a check looks at a whole column at once: the residual scan's "a column of names"
test and its sampled re-scan are made per batch. Inputs the streaming reader does not take — a CSV
whose rows need repairs, a header that needs renaming, an Excel workbook, a policy with link tokens —
are run in memory as before (the caller falls back on :class:`NotStreamable`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._platform import heap_trimmer
from deid._policy import Policy
from deid._registry import make_treatment
from deid._report import ColumnReport, DeidReport, ResidualFinding
from deid._risk import RiskResult, blank_as_null, combine, value_codes
from deid._roster import RosterBuilder, roster_columns
from deid._spill import private_folder
from deid._treatments import TreatmentContext, require_secret
from deid.errors import InputError, OutputError, memory_too_small

DEFAULT_BATCH_ROWS = 262_144  # the largest batch the memory setting chooses (batch_rows_for)
DEFAULT_MEMORY_MB = 1024
MIN_MEMORY_MB = 64  # below this even a small batch cannot be worked on and put in order
# A batch being treated, redacted and re-scanned takes about this many times its own size as read
# (measured: a 65,536-row batch of the synthetic K-12 extract, 430 bytes a row in Arrow, raised the
# process by ~300 MB while the scanner worked on its notes: 10.7x).
_BATCH_FACTOR = 12


def batch_rows_for(memory_mb: int, row_bytes: float) -> int:
    """The rows per batch that keep a batch's work within half the memory setting (the other half:
    a pile of the random order, a quarter, and what the run keeps between batches)."""
    rows = (memory_mb << 20) // 2 // max(int(_BATCH_FACTOR * row_bytes), 1)
    return int(min(DEFAULT_BATCH_ROWS, max(1024, rows)))


def duckdb_memory_mb(memory_mb: int) -> int:
    """The share of the memory setting for one pile of the random order (a pile file is read and sorted
    whole) and for DuckDB where a step uses it (mapping's repeated-ID check; it spills beyond): a
    quarter."""
    return max(MIN_MEMORY_MB // 2, memory_mb // 4)
_SEP = "\x1f"  # between the QI values of a class key (the text check refuses control characters)

Progress = Callable[[float, str], None]


class NotStreamable(Exception):
    """This input or policy is run in memory instead; ``reason`` says why (for the report's notes)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------- reading


@dataclass
class Source:
    """A CSV or Parquet file read as batches of text columns named by its header."""

    path: Path
    names: list[str]
    fmt: str
    encoding: str = "utf-8"
    delimiter: str = ","
    row_bytes: float = 0.0  # a row's size as read (Arrow), from the first rows: sizes the batches

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        """The file's rows in order, ``batch_rows`` at a time (the last batch may be shorter)."""
        pending: list[pa.Table] = []
        held = 0
        for piece in self._pieces(batch_rows):
            pending.append(piece)
            held += piece.num_rows
            while held >= batch_rows:
                whole = pa.concat_tables(pending)
                yield whole.slice(0, batch_rows)
                rest = whole.slice(batch_rows)
                pending, held = ([rest] if rest.num_rows else []), rest.num_rows
        if held:
            yield pa.concat_tables(pending)

    def _pieces(self, batch_rows: int) -> Iterator[pa.Table]:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            from deid._io import column_as_text

            with pq.ParquetFile(self.path) as pf:
                for rb in pf.iter_batches(batch_size=batch_rows):
                    cols = [column_as_text(pa.chunked_array([c])) for c in rb.columns]
                    yield pa.table(cols, names=self.names)
            return
        import pyarrow.csv as pcsv

        from deid._io import BLOCK_SIZE, translate_arrow_error

        invalid: list[Any] = []

        def on_invalid(row: pcsv.InvalidRow) -> str:
            invalid.append(row.number)
            return "skip"

        generated = [f"c{i}" for i in range(len(self.names))]
        reader = pcsv.open_csv(
            str(self.path),
            read_options=pcsv.ReadOptions(
                column_names=generated,
                skip_rows_after_names=1,
                block_size=BLOCK_SIZE,
                use_threads=True,
                encoding="utf8" if self.encoding in ("utf-8", "utf-8-sig") else self.encoding,
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=self.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
            ),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in generated},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        try:
            for rb in reader:
                if invalid:
                    raise InputError(
                        f"{self.path}: a row has more or fewer cells than the header; read it without "
                        "a memory setting to have it repaired or refused with its row number."
                    )
                yield pa.Table.from_batches([rb]).rename_columns(self.names)
        except pa.ArrowInvalid as exc:
            raise translate_arrow_error(self.path, exc) from None


def open_source(path: Path, info: Any) -> Source:
    """The streaming reader of ``path``, after the same checks of its header the in-memory reader
    makes; NotStreamable when only the in-memory reader can take it (it repairs, or reads Excel)."""
    from deid._io import (
        check_header_is_not_data,
        decoded_sample,
        detect_encoding,
        read_table,
        refuse_repeated_headers,
        sniff,
    )

    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raise NotStreamable("an Excel workbook is read whole")
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            names = list(pq.read_schema(p).names)
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{p} is not a readable Parquet file.") from exc
        source = Source(p, names, "parquet")
        info.format = "parquet"
    else:
        # The first rows through the in-memory reader: every check and sentence it has for a header.
        encoding = detect_encoding(p, full=False)
        sample = decoded_sample(p, encoding)
        if not sample.strip():
            raise InputError(f"{p} is empty.")
        delimiter, header = sniff(p, sample)
        source = Source(p, header, "csv", encoding, delimiter)
        info.format, info.encoding, info.delimiter = "csv", encoding, delimiter
        del read_table
    names = source.names
    if not names or any(not n for n in names) or len(set(names)) != len(names):
        raise NotStreamable("its header needs repairs")
    try:
        first = next(source.batches(2000), None)
    except InputError as exc:
        if "more or fewer cells" in str(exc):
            raise NotStreamable("its rows need repairs") from exc
        raise
    if first is None:
        raise InputError(f"{p} has a header but no data rows.")
    source.row_bytes = first.nbytes / max(first.num_rows, 1)
    refuse_repeated_headers(p, first, names)
    check_header_is_not_data(p, names, first)
    return source


class InputCache:
    """The input as read in pass 1, kept in an Arrow IPC file in the run's private spill folder, so
    the later passes read Arrow batches back instead of parsing the CSV again (parsing is most of a
    read: measured 3 s per pass of a 1,000,000-row extract; an IPC batch is read back in a few ms).
    Read through a plain file, not a memory map: mapped pages would count in the process's memory."""

    def __init__(self, path: Path, spill_dir: Path) -> None:
        self.path = path
        self._spill_dir = spill_dir
        self._sink: Any = None
        self._writer: Any = None
        self._schema: pa.Schema | None = None
        self._pieces: list[int] = []  # record batches per batch added (a CSV batch is many blocks)
        self.rows = 0

    def add(self, batch: pa.Table) -> None:
        try:
            if self._writer is None:
                self._schema = batch.schema
                self._sink = pa.OSFile(str(self.path), "wb")
                self._writer = pa.ipc.new_file(self._sink, self._schema)
            if batch.schema != self._schema:
                batch = batch.cast(self._schema)
            before = self._writer.stats.num_record_batches
            self._writer.write_table(batch)
            self._pieces.append(self._writer.stats.num_record_batches - before)
        except OSError as exc:
            raise OutputError(disk_sentence(self._spill_dir, exc)) from exc
        self.rows += batch.num_rows

    def finish(self) -> None:
        try:
            if self._writer is not None:
                self._writer.close()
                self._sink.close()
        except OSError as exc:
            raise OutputError(disk_sentence(self._spill_dir, exc)) from exc

    def batches(self, columns: list[str] | None = None) -> Iterator[pa.Table]:
        """The batches of pass 1 in order, as they were added (only ``columns``, when given, are read
        from the disk)."""
        if self._schema is None:
            return
        options = None
        if columns is not None:
            options = pa.ipc.IpcReadOptions(
                included_fields=[self._schema.get_field_index(c) for c in columns]
            )
        with pa.OSFile(str(self.path), "rb") as f:
            reader = pa.ipc.open_file(f, options=options)
            at = 0
            for pieces in self._pieces:
                yield pa.Table.from_batches(
                    [reader.get_batch(i) for i in range(at, at + pieces)], schema=reader.schema
                )
                at += pieces


# ------------------------------------------------------------------------------- classes of the QIs


@dataclass
class QiClasses:
    """The quasi-identifier classes of a whole file: each distinct combination of treated QI values
    (a table, one column per QI, empty cells as null) and its number of rows (``counts``)."""

    table: pa.Table
    counts: np.ndarray

    @classmethod
    def count(cls, parts: list[pa.Table], qis: list[str]) -> QiClasses:
        """Merge per-batch counts (tables of the QI columns plus ``count_all``)."""
        if not parts:
            empty = pa.table({q: pa.array([], pa.string()) for q in qis})
            return cls(empty, np.zeros(0, np.int64))
        merged = pa.concat_tables(parts).group_by(qis, use_threads=False).aggregate([("count_all", "sum")])
        return cls(merged.select(qis), merged.column("count_all_sum").to_numpy().astype(np.int64))

    @staticmethod
    def of_batch(qi_table: pa.Table, qis: list[str]) -> pa.Table:
        blanked = pa.table([blank_as_null(qi_table.column(q)) for q in qis], names=qis)
        return blanked.group_by(qis, use_threads=False).aggregate([([], "count_all")])

    def keys(self) -> pa.Array:
        return _class_keys(self.table, list(self.table.column_names))


def _class_keys(table: pa.Table, qis: list[str]) -> pa.Array:
    """One text key per row from its QI values; empty and null alike (as suppression counts them)."""
    cols = [pc.fill_null(blank_as_null(table.column(q)), "") for q in qis]
    key = pc.binary_join_element_wise(*cols, _SEP) if len(cols) > 1 else cols[0]
    return key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key


def suppress_classes(classes: QiClasses, qis: list[str], k: int, distinct: list[int]) -> tuple[
    list[np.ndarray], RiskResult
]:
    """deid._risk.suppress_to_k on the table of classes instead of the rows: every row of a class is
    treated alike there, so each class stands for its rows, weighted by its count. Returns, per QI, the
    classes whose cell is emptied, and the same RiskResult the row-wise run gives."""
    result = RiskResult(k_required=k, quasi_identifiers=list(qis))
    weight = classes.counts
    n_rows = int(weight.sum())
    m = len(weight)
    if not qis or n_rows == 0:
        result.k_achieved = n_rows or None
        result.classes = 1 if n_rows else 0
        return [np.zeros(m, bool) for _ in qis], result
    pairs = [value_codes(classes.table.column(q)) for q in qis]
    codes = [c.copy() for c, _ in pairs]
    sizes = [s for _, s in pairs]
    order = sorted(range(len(qis)), key=lambda i: -distinct[i])
    suppressed = [np.zeros(m, dtype=bool) for _ in qis]
    for iteration in range(len(qis) + 1):
        key = combine(codes, sizes, m)
        dense = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False)
        size = np.bincount(dense, weights=weight)[dense]
        all_empty = np.logical_and.reduce([c == 0 for c in codes])
        failing = (size < k) & ~all_empty
        if iteration == 0:
            result.records_at_risk_before = int(weight[failing].sum())
        if not failing.any():
            break
        done = np.zeros(m, dtype=bool)
        for i in order:
            hit = failing & ~done & (codes[i] != 0)
            codes[i][hit] = 0
            suppressed[i] |= hit
            done |= hit
    for q, mask in zip(qis, suppressed, strict=True):
        result.suppressed_by_column[q] = int(weight[mask].sum())
    any_supp = np.logical_or.reduce(suppressed)
    result.suppressed_cells = int(sum(int(weight[s].sum()) for s in suppressed))
    result.rows_with_suppression = int(weight[any_supp].sum())
    result.rows_fully_suppressed = int(weight[np.logical_and.reduce([c == 0 for c in codes])].sum())
    complete = np.logical_and.reduce([c != 0 for c in codes])
    result.rows_with_empty_qi = int(weight[~complete].sum())
    if complete.any():
        key = combine(codes, sizes, m)[complete]
        dense = pc.dictionary_encode(pa.array(key)).indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(dense, weights=weight[complete])
        result.k_achieved = int(counts.min())
        result.classes = len(counts)
    return suppressed, result


# ------------------------------------------------------------------------------------------- the run


@dataclass
class StreamOutput:
    """The de-identified rows in release order, from the pile files (_Piles); ``close`` removes the spill."""

    batches: Callable[[], Iterator[pa.Table]]
    close: Callable[[], None]


def run_stream(
    source: Source,
    policy: Policy,
    *,
    secret: bytes | None,
    crosswalk: Any,
    progress: Progress,
    input_name: str,
    reference_date: dt.date | None,
    full_rescan: bool,
    batch_rows: int,
    memory_mb: int,
    spill_dir: Path,
) -> tuple[StreamOutput, DeidReport]:
    """Passes 1-4 (module docstring); the returned rows are written by the caller, then ``close``d."""
    from deid._columns import classify_columns, flag_category, flag_warning
    from deid._report import cells_changed
    from deid._residual import RESCAN_SAMPLE_ROWS, RESIDUAL_LIMIT, residual_scan

    _libc()  # fewer malloc arenas from here on
    if memory_mb < MIN_MEMORY_MB:
        raise InputError(
            f"The memory setting ({memory_mb} MB) is below the {MIN_MEMORY_MB} MB that sorting the rows "
            "into a random order needs; give at least that."
        )
    if any(r.treatment == "link_tokens" for r in policy.rules):
        raise NotStreamable("link tokens are made in memory")
    if batch_rows <= 0:  # not given: the memory setting chooses
        batch_rows = batch_rows_for(memory_mb, source.row_bytes)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    names = source.names
    policy.check_columns(names, input_name=input_name)
    treatments = [(rule, make_treatment(rule)) for rule in policy.rules]
    require_secret(policy, treatments, secret)
    reference = reference_date or dt.date.today()
    needed: set[str] = set()
    for r in policy.rules:
        if isinstance(r.params.get("by"), str):
            needed.add(r.params["by"])
        needed.update(x for x in r.params.get("from") or () if isinstance(x, str))
    student_id = next(
        (r.source for r in policy.rules
         if r.treatment in ("record_code", "token") and "from" not in r.params),
        None,
    )
    if student_id and any(r.treatment == "date_shift" and "by" not in r.params for r in policy.rules):
        needed.add(student_id)

    def context(batch: pa.Table, scanner: Any = None) -> TreatmentContext:
        return TreatmentContext(
            table=batch.select(sorted(needed)),
            k=policy.k,
            secret=secret,
            crosswalk=crosswalk,
            reference_date=reference,
            scanner_factory=(lambda: scanner) if scanner is not None else None,
            student_id_column=student_id,
        )

    # Every file of the run (the input's cache, the pile files of the random order) goes in one private
    # folder beside the output (0700), removed at the end or on any error.
    try:
        spill = private_folder(spill_dir)  # (and what killed runs left there goes)
    except OSError as exc:
        raise OutputError(disk_sentence(spill_dir, exc)) from exc
    cache = InputCache(spill / "input.arrow", spill_dir)
    try:
        # Pass 1: rows, and the whole-column counts of the treatments that learn from them.
        progress(0.02, "counting the rows")
        counted = [(r, t) for r, t in treatments if hasattr(t, "fit_counts")]
        value_parts: dict[str, list[pa.Table]] = {r.source + "\0" + r.treatment: [] for r, _ in counted}
        n_rows = 0
        for batch in source.batches(batch_rows):
            n_rows += batch.num_rows
            cache.add(batch)
            for rule, treatment in counted:
                vc = pc.value_counts(pc.drop_null(treatment.counted(batch.column(rule.source))))
                value_parts[rule.source + "\0" + rule.treatment].append(
                    pa.table({"v": vc.field("values"), "n": vc.field("counts")})
                )
            give_back()
        fit_ctx = context(pa.table({n: pa.array([], pa.string()) for n in names}))
        for rule, treatment in treatments:
            key = rule.source + "\0" + rule.treatment
            if key in value_parts:
                parts = value_parts.pop(key)
                allv = (
                    pa.concat_tables(parts).group_by("v").aggregate([("n", "sum")])
                    if parts
                    else pa.table({"v": pa.array([], pa.string()), "n_sum": pa.array([], pa.int64())})
                )
                treatment.fit_counts(allv.column("v").combine_chunks(), allv.column("n_sum").combine_chunks(),
                                     fit_ctx)
            elif rule.treatment != "drop":
                treatment.fit(pa.chunked_array([], pa.string()), fit_ctx)
        cache.finish()
        timings["count"] = time.perf_counter() - t0

        # Pass 2: the classifier's sample rows (evenly spaced over the whole file, as in memory).
        progress(0.1, "classifying the columns")
        take = (
            np.linspace(0, n_rows - 1, 2000).astype(np.int64) if n_rows > 2000 else np.arange(n_rows)
        )
        sample_parts: list[pa.Table] = []
        start = 0
        for batch in cache.batches():
            lo, hi = np.searchsorted(take, [start, start + batch.num_rows])
            if hi > lo:
                sample_parts.append(batch.take(pa.array(take[lo:hi] - start)))
            start += batch.num_rows
        sample = pa.concat_tables(sample_parts) if sample_parts else fit_ctx.table
        flags = classify_columns(sample, sample_rows=2000)
        roster_cols = roster_columns(sample, flags, policy)

        # Pass 3: the roster's distinct values and the QI classes of the treated output.
        progress(0.2, "counting the quasi-identifier classes")
        qis = policy.quasi_identifiers
        rules_d = policy.disclosure if qis else None
        # With disclosure control the classes are of the QIs and the sensitive elements together: the
        # search's l and t look at the sensitive values within each class.
        sens = [s for s in (rules_d.sensitive if rules_d is not None else ()) if s not in qis]
        class_cols = [*qis, *sens]  # the columns a row's class is made of
        qi_rules = [
            (r, t) for r, t in treatments if r.output_name in class_cols and r.treatment != "drop"
        ]
        class_parts: list[pa.Table] = []
        distinct_parts: dict[str, list[pa.Array]] = {q: [] for q in qis}
        # the roster as keyed hashes, batch by batch (deid._roster.RosterBuilder): a million students'
        # IDs and contacts in tens of MB, where their text took hundreds and the scanner's build copies
        roster_builder = RosterBuilder(roster_cols)
        listed = {r.source for r in policy.rules}
        passthrough_qis = [q for q in class_cols if q not in {r.output_name for r, _ in qi_rules}]
        wanted = {*roster_cols.all(), *(r.source for r, _ in qi_rules), *passthrough_qis, *needed}
        pass3_columns = [c for c in names if c in wanted]
        for batch in cache.batches(pass3_columns):
            roster_builder.add(batch)
            if qis:
                ctx = context(batch)
                cols = {}
                for rule, treatment in qi_rules:
                    cols[rule.output_name] = _chunked(treatment.apply(batch.column(rule.source), ctx))
                    treatment.notes.clear()
                for q in passthrough_qis:
                    cols[q] = batch.column(q)
                qi_table = pa.table([cols[q] for q in class_cols], names=class_cols)
                class_parts.append(QiClasses.of_batch(qi_table, class_cols))
                for q in qis:
                    distinct_parts[q].append(_flat(pc.unique(qi_table.column(q))))
            give_back()
            if len(class_parts) > 64:  # keep the per-batch counts few: merge as we go
                merged = QiClasses.count(class_parts, class_cols)
                class_parts = [merged.table.append_column("count_all", pa.array(merged.counts))]
        roster = roster_builder.finish()
        del roster_builder
        classes = QiClasses.count(class_parts, class_cols)
        del class_parts
        disclosure = released = None
        if rules_d is not None:
            # The generalization search on the table of classes, each weighing its rows (the result the
            # rows give: deid._disclosure); ``released`` holds each class's released QI values.
            from deid._disclosure import protect_microdata

            progress(0.25, "searching for the least lossy generalization")
            released, disclosure = protect_microdata(
                classes.table, qis, policy.k, rules_d, weights=classes.counts
            )
            risk = disclosure.as_risk()
            suppressed = []
        else:
            distinct = [
                int(pc.count_distinct(pa.concat_arrays(distinct_parts[q])).as_py())
                if distinct_parts[q]
                else 0
                for q in qis
            ]
            suppressed, risk = suppress_classes(classes, qis, policy.k, distinct)
        class_keys = classes.keys() if class_cols else pa.array([], pa.string())  # (no QIs: none)
        timings["classes"] = time.perf_counter() - t0 - timings["count"]
    except BaseException:
        shutil.rmtree(spill, ignore_errors=True)
        raise

    # Pass 4: treat, suppress, redact, re-scan; into the pile files with a random key.
    con: _Piles | None = None
    try:
        con = _Piles(spill, duckdb_memory_mb(memory_mb) << 20, n_rows)
        out_names: list[str] = []
        reports: dict[str, ColumnReport] = {}
        redacted_kinds: dict[str, dict[str, int]] = {}
        notes_raw: list[str] = []
        warnings: list[str] = []
        text_outputs: set[str] = set()
        dropped: list[str] = []
        passed: list[str] = []
        for rule, _t in treatments:
            if rule.treatment == "drop":
                dropped.append(rule.source)
            else:
                out_names.append(rule.output_name)  # type: ignore[arg-type]
        for col in names:
            if col in listed:
                continue
            if policy.drop_unlisted:
                dropped.append(col)
            else:
                passed.append(col)
                out_names.append(col)
        for rule, _t in treatments:
            if rule.treatment == "drop":
                continue
            flag = flags.get(rule.source)
            kind = flag_category(flag)
            if rule.treatment == "redact_text" or (rule.treatment == "keep" and kind == "free_text"):
                text_outputs.add(rule.output_name)  # type: ignore[arg-type]
            if rule.treatment == "keep" and flag is not None and kind in ("identifier", "sensitive"):
                warnings.append(flag_warning(rule.source, flag, "is kept as it is"))
            elif flag_category(flag) == "quasi_identifier" and not rule.quasi_identifier:
                warnings.append(flag_warning(rule.source, flag, "is not in the k-anonymity check"))
            reports[rule.output_name] = ColumnReport(  # type: ignore[index]
                name=rule.output_name, source=rule.source, treatment=rule.treatment,  # type: ignore[arg-type]
                cells_changed=0, quasi_identifier=rule.quasi_identifier,
            )
        for col in passed:
            reports[col] = ColumnReport(name=col, source=col, treatment="keep", cells_changed=0)
            flag = flags.get(col)
            if flag is not None:
                if flag_category(flag) == "free_text":
                    text_outputs.add(col)
                if flag_category(flag) in ("identifier", "quasi_identifier", "sensitive", "free_text"):
                    warnings.append(
                        flag_warning(col, flag, "is not in the policy and passes through unchanged")
                    )
        removed = list(disclosure.removed) if disclosure is not None else []
        if disclosure is not None:
            from deid._disclosure import SUPPRESSED_COLUMN

            # as protect_microdata releases the rows: a QI it leaves out leaves, the marker comes last
            dropped.extend(removed)
            release_names = [c for c in out_names if c not in removed] + [SUPPRESSED_COLUMN]
            reports[SUPPRESSED_COLUMN] = ColumnReport(
                name=SUPPRESSED_COLUMN, source="", treatment="suppression_marker", cells_changed=0
            )
            warnings.extend(disclosure.warnings)
        else:
            release_names = out_names
        # QIs the search generalized hold labels PathShare wrote, not input values (as in memory)
        from deid._hierarchy import ORIGINAL, REMOVED

        written = (
            {q for q, lv in disclosure.levels.items() if lv not in (ORIGINAL, REMOVED)}
            if disclosure is not None
            else set()
        )
        redacted = {c for c, r in reports.items() if r.treatment == "redact_text"}
        # The scanner, built once from the whole roster; each batch brings its own rows' names.
        if redacted or text_outputs:
            progress(0.29, "preparing the search of the notes for the students' names")
        scanner_all = roster.scanner() if redacted or text_outputs else None
        # Building it for a million students passes through several hundred MB that are freed but kept
        # by the allocator (measured: 798 MB resident after the build, 462 MB once handed back); the
        # first batch's work would come on top of them.
        give_back()
        raw = {c for c, r in reports.items() if r.treatment in ("keep", "recode_rare")} - written
        findings: list[ResidualFinding] = []
        by_column: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        sampled: dict[str, tuple[int, int]] = {}
        masks = {q: suppressed[i] for i, q in enumerate(qis)} if disclosure is None else {}
        start = 0
        spent: dict[str, float] = {}
        order = sorted(range(len(treatments)), key=lambda i: treatments[i][0].treatment == "redact_text")
        for batch in cache.batches():
            progress(0.3 + 0.55 * start / max(n_rows, 1), "de-identifying")
            scanner = (
                scanner_all.with_row_names([batch.column(c) for c in roster.columns.names])
                if scanner_all is not None
                else None
            )
            ctx = context(batch, scanner)
            done: dict[str, pa.ChunkedArray] = {}
            for i in order:
                rule, treatment = treatments[i]
                if rule.treatment == "drop":
                    continue
                source_col = batch.column(rule.source)
                t_apply = time.perf_counter()
                result = _chunked(treatment.apply(source_col, ctx))
                spent[rule.treatment] = spent.get(rule.treatment, 0.0) + time.perf_counter() - t_apply
                reports[rule.output_name].cells_changed += cells_changed(source_col, result)  # type: ignore[index]
                for kind, count in (getattr(treatment, "redacted_by_kind", None) or {}).items():
                    bucket = redacted_kinds.setdefault(rule.output_name, {})  # type: ignore[arg-type]
                    bucket[kind] = bucket.get(kind, 0) + count
                notes_raw.extend(treatment.notes)
                treatment.notes.clear()
                done[rule.output_name] = result  # type: ignore[index]
            for col in passed:
                done[col] = batch.column(col)
            out = pa.table([done[c] for c in out_names], names=out_names)
            if qis and len(class_keys):
                found_at = pc.index_in(_class_keys(out, class_cols), value_set=class_keys)
                if found_at.null_count:  # every row's class was counted in pass 3
                    raise RuntimeError("a row's quasi-identifier class was not counted")
                at = found_at.to_numpy(zero_copy_only=False)
            if released is not None:
                # each row takes its class's released values (generalized, withheld) and marker
                take = pa.array(at) if qis and len(class_keys) else pa.array([], pa.int64())
                out = pa.table(
                    [
                        released.column(c).take(take) if c in qis else out.column(c)
                        for c in release_names[:-1]
                    ]
                    + [released.column(release_names[-1]).take(take)],
                    names=release_names,
                )
            elif qis and len(class_keys):
                cols = []
                for name in out_names:
                    col = out.column(name)
                    if name in masks and masks[name].any():
                        hit = masks[name][at]
                        if hit.any():
                            col = pc.if_else(pa.array(hit), pa.scalar(None, col.type), col)
                    cols.append(col)
                out = pa.table(cols, names=out_names)
            rows = None
            if not full_rescan and redacted:
                rows = max(1, -(-RESCAN_SAMPLE_ROWS * batch.num_rows // max(n_rows, 1)))
            t_scan = time.perf_counter()
            found, per_col, samp = residual_scan(
                out,
                (lambda s=scanner: s) if (scanner is not None and text_outputs) else None,
                text_outputs,
                roster,
                sample_columns=set() if full_rescan else redacted,
                raw_columns=raw,
                sample_rows=rows,
                by_kind=by_kind,
            )
            spent["residual_scan"] = spent.get("residual_scan", 0.0) + time.perf_counter() - t_scan
            for f in found:
                findings.append(ResidualFinding(column=f.column, row=f.row + start, kind=f.kind))
            for c, v in per_col.items():
                by_column[c] = by_column.get(c, 0) + v
            for c, (k_rows, _n) in samp.items():
                prev = sampled.get(c, (0, n_rows))
                sampled[c] = (prev[0] + k_rows, n_rows)
            keyed = out.append_column(
                "__key", pa.array(np.frombuffer(os.urandom(8 * out.num_rows), dtype=np.uint64))
            )
            t_sort = time.perf_counter()
            con.add(keyed)
            spent["to_piles"] = spent.get("to_piles", 0.0) + time.perf_counter() - t_sort
            start += batch.num_rows
            del out, keyed, done, ctx, scanner
            give_back()
        timings["transform"] = time.perf_counter() - t0 - timings["count"] - timings["classes"]
        # where the transform pass went (seconds per treatment kind, the residual scan, the piles)
        timings.update({f"transform_{k}": v for k, v in spent.items()})
        con.finish()
    except OSError as exc:
        _close(con, spill)
        raise OutputError(disk_sentence(spill_dir, exc)) from exc
    except BaseException:
        _close(con, spill)
        raise

    for c in reports.values():
        c.suppressed_cells = risk.suppressed_by_column.get(c.name, 0)
        c.redacted_by_kind = redacted_kinds.get(c.name, {})
    per_column_listed: dict[str, int] = {}
    kept: list[ResidualFinding] = []
    for f in sorted(findings, key=lambda f: (f.column, f.row)):
        if per_column_listed.get(f.column, 0) < RESIDUAL_LIMIT:
            kept.append(f)
            per_column_listed[f.column] = per_column_listed.get(f.column, 0) + 1
    notes = _merge_notes(notes_raw)
    for name, (k_rows, total) in sampled.items():
        notes.append(
            f"the residual scan re-checked {k_rows:,} evenly spaced rows of the {total:,} in '{name}' (the "
            f"column was redacted by the same scanner, so the other rows hold nothing it would find)"
        )
    unchecked = sorted(text_outputs) if text_outputs and not roster.columns.names else []
    if unchecked:
        warnings.append(
            f"the free text in {', '.join(unchecked)} could not be checked for the students' and "
            "guardians' own names, because no column of the input holds people's names (include the "
            "name columns in the extract: the policy drops them, and they make the check possible)"
        )
    redacted_total: dict[str, int] = {}
    for kinds in redacted_kinds.values():
        for kind, count in kinds.items():
            redacted_total[kind] = redacted_total.get(kind, 0) + count
    timings["deidentify_total"] = time.perf_counter() - t0
    notes.append(
        f"streamed in batches of {batch_rows:,} rows with a memory setting of {memory_mb:,} MB: the "
        "quasi-identifier classes were counted in a first pass and the rows put in a fresh random order "
        "through files sorted one at a time"
    )
    report = DeidReport(
        input=input_name,
        output=None,
        rows_in=n_rows,
        rows_out=n_rows,
        k_required=policy.k,
        k_achieved=risk.k_achieved if qis else None,
        quasi_identifiers=[q for q in qis if q not in removed],
        suppressed_cells=risk.suppressed_cells,
        rows_with_suppression=risk.rows_with_suppression,
        columns=[reports[c] for c in release_names],
        dropped_columns=dropped,
        residual_findings=kept,
        residual_findings_total=sum(by_column.values()),
        residual_findings_by_column=by_column,
        residual_by_kind=by_kind,
        redacted_by_kind=redacted_total,
        text_unchecked=unchecked,
        rows_fully_suppressed=risk.rows_fully_suppressed,
        rows_with_empty_qi=risk.rows_with_empty_qi,
        records_at_risk_before=risk.records_at_risk_before,
        equivalence_classes=risk.classes,
        passed_through=passed,
        warnings=warnings,
        notes=notes,
        reference_date=reference.isoformat(),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        timings={k: round(v, 3) for k, v in timings.items()},
        policy=policy.to_dict(),
        roster_columns=roster_cols.to_dict(),
        disclosure=disclosure.to_dict() if disclosure is not None else None,
    )

    def batches() -> Iterator[pa.Table]:
        try:
            yield from con.batches(batch_rows)
        except (MemoryError, pa.ArrowMemoryError) as exc:
            raise memory_too_small("to put this file's rows in a random order", memory_mb) from exc
        except OSError as exc:
            raise OutputError(disk_sentence(spill_dir, exc)) from exc

    return StreamOutput(batches, lambda: _close(con, spill)), report


def give_back() -> None:
    """Return freed memory to the operating system after a batch. Arrow's buffers are let go of, but
    glibc keeps freed blocks in per-thread arenas (measured: a third of the peak of a 200,000-row run);
    ``malloc_trim`` hands them back. Elsewhere than glibc this does nothing."""
    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _libc() -> Any:
    return heap_trimmer()  # glibc on Linux, None elsewhere (the platform seam)


def _flat(values: Any) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _chunked(col: Any) -> pa.ChunkedArray:
    return col if isinstance(col, pa.ChunkedArray) else pa.chunked_array([col])


def _close(con: Any, spill: Path) -> None:
    if con is not None:
        with contextlib.suppress(Exception):
            con.close()
    shutil.rmtree(spill, ignore_errors=True)


class _Piles:
    """The released rows in a fresh random order within bounded memory: the external sort by a random
    64-bit key from the OS's CSPRNG that :func:`deid._io.release_order` describes. Each row's key sends
    it to one of 2^b pile files by the key's top b bits; each pile, read back alone, is sorted by the
    key, and the piles follow each other in order — exactly the order of sorting every row by its key,
    with one pile in memory at a time (b chosen so a pile fits ``budget`` bytes, by the first batch's
    size a row; at most 2^9 files open). Replaces DuckDB's ORDER BY, which could not sort wide rows
    within a small share of the memory setting (64 MB: "could not allocate block", measured)."""

    MAX_BITS = 9

    def __init__(self, folder: Path, budget: int, rows: int) -> None:
        self.folder, self.budget, self.rows = folder, max(budget, 1 << 20), rows
        self.bits: int | None = None
        self.writers: dict[int, tuple[Any, Any]] = {}
        self.schema: pa.Schema | None = None

    def add(self, keyed: pa.Table) -> None:
        """Rows with their random key (``__key``, uint64) into their piles."""
        if not keyed.num_rows:
            return
        if self.bits is None:
            total = keyed.nbytes / keyed.num_rows * self.rows * 1.25  # (a later batch may be wider)
            piles = max(1.0, total / self.budget)
            self.bits = min(self.MAX_BITS, max(0, math.ceil(math.log2(piles))))
            self.schema = keyed.schema
        if keyed.schema != self.schema:
            keyed = keyed.cast(self.schema)
        key = keyed.column("__key").to_numpy()
        pile = (
            (key >> np.uint64(64 - self.bits)).astype(np.int64) if self.bits else np.zeros(len(key), np.int64)
        )
        order = np.argsort(pile, kind="stable")
        grouped = keyed.take(pa.array(order))
        counts = np.bincount(pile, minlength=1 << self.bits)
        at = 0
        for p in np.flatnonzero(counts):
            self._writer(int(p)).write_table(grouped.slice(at, int(counts[p])))
            at += int(counts[p])

    def _writer(self, p: int) -> Any:
        got = self.writers.get(p)
        if got is None:
            sink = pa.OSFile(str(self.folder / f"pile-{p:04d}.arrow"), "wb")
            got = (sink, pa.ipc.new_stream(sink, self.schema))
            self.writers[p] = got
        return got[1]

    def finish(self) -> None:
        for sink, writer in self.writers.values():
            writer.close()
            sink.close()

    def close(self) -> None:
        for sink, writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
            with contextlib.suppress(Exception):
                sink.close()
        self.writers = {}

    def batches(self, batch_rows: int) -> Iterator[pa.Table]:
        """The rows in key order, ``batch_rows`` at a time (without the key); each pile file is removed
        once read."""
        for p in sorted(self.writers):
            path = self.folder / f"pile-{p:04d}.arrow"
            with pa.OSFile(str(path), "rb") as f:
                pile = pa.ipc.open_stream(f).read_all()
            path.unlink()
            order = np.argsort(pile.column("__key").to_numpy(), kind="stable")
            pile = pile.drop_columns(["__key"]).take(pa.array(order))
            for at in range(0, pile.num_rows, batch_rows):
                yield pile.slice(at, batch_rows)
            del pile
            give_back()


def disk_sentence(folder: Path, exc: BaseException) -> str:
    why = getattr(exc, "strerror", None) or "the disk is full or cannot be written"
    return (
        f"Not enough room for the temporary files of a large run beside {folder} ({why}); nothing was "
        "written: free disk space there or write the output to another disk."
    )


_COUNTED_NOTE = re.compile(r"^(\d+) (.*)$")


def _merge_notes(notes: list[str]) -> list[str]:
    """Batch notes as one run's: "3 value(s) of 'X' …" from each batch summed, the rest once each."""
    totals: dict[str, int] = {}
    order: list[str] = []
    for note in notes:
        m = _COUNTED_NOTE.match(note)
        key = m.group(2) if m else note
        if key not in totals:
            order.append(key)
            totals[key] = 0
        totals[key] += int(m.group(1)) if m else 0
    return [f"{totals[k]} {k}" if totals[k] else k for k in order]

