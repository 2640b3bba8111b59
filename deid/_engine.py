"""The de-identification run: policy → treatments → k-anonymity → residual PII scan → report.

:func:`deidentify` works on a table in memory (a notebook, the agreements layer); :func:`deidentify_file`
adds reading, atomic writing, the secret file and its crosswalk. Both take ``progress(fraction,
message)``; the callback may raise :class:`deid.errors.Cancelled` to stop, and nothing is written then.

Residual findings do not stop ``deidentify``: the output is written and the findings are reported
(loudly, in the summary). It is ``prepare`` (sealing) that refuses an output with findings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from deid._arrowmem import system_allocator
from deid._atomic import check_output_path
from deid._columns import flag_category, flag_warning
from deid._disclosure import SUPPRESSED_COLUMN, protect_microdata
from deid._hierarchy import ORIGINAL, REMOVED
from deid._io import ReadInfo, check_distinct_files, check_text, output_format, read_table, write_release
from deid._policy import Policy
from deid._registry import make_treatment
from deid._report import ColumnReport, DeidReport, cells_changed, suppression_by_group
from deid._residual import residual_scan
from deid._risk import suppress_to_k
from deid._roster import Roster, check_aligned
from deid._secrets import (
    Crosswalk,
    crosswalk_path,
    load_crosswalk,
    load_secret,
    padding_key_path,
    save_crosswalk,
)
from deid._treatments import TreatmentContext, require_crosswalk, require_secret
from deid.errors import OutputError, PolicyError

Progress = Callable[[float, str], None]



def _noop(_fraction: float, _message: str) -> None:
    return None


def deidentify(
    table: pa.Table,
    policy: Policy,
    *,
    secret: bytes | None = None,
    crosswalk: Crosswalk | None = None,
    progress: Progress | None = None,
    input_name: str = "the input",
    reference_date: dt.date | None = None,
    full_rescan: bool = True,
    roster: Roster | None = None,
    dummy_secret: bytes | None = None,
    group_codes: Mapping[str, Collection[str]] | None = None,
) -> tuple[pa.Table, DeidReport]:
    """De-identify ``table`` (all text columns) under ``policy``; return (output table, report).

    ``secret`` keys tokens and date shifts; ``crosswalk`` holds record codes (both needed only when the
    policy uses them). ``reference_date`` (default today) is where ages are computed unless a rule
    gives its own. ``full_rescan`` (default) re-scans every row of redacted text columns in the
    residual scan; ``False`` re-scans at most :data:`RESCAN_SAMPLE_ROWS` evenly spaced rows of them
    (see :func:`residual_scan`), for very large files where the second pass matters. ``dummy_secret``
    (a secret no partner shares) keys link-token dummies so they repeat across this provider's
    releases (see :func:`deid._linktokens.link_tokens`); without it they are fresh random.
    ``group_codes`` ({quasi-identifier output column: its published codes}) asks the report for
    suppression by group (:func:`deid._report.suppression_by_group`): only those codes are named. Given
    as {code: label}, the labels also name the groups in the disclosure search's warnings.

    The output's rows are in the input's order (row i is input data row i, as the report's residual
    findings count them): a table to look at, not to share. Anything that leaves is written with
    :func:`deid._io.write_release`, which shuffles the rows; :func:`deidentify_file` does.

    The scanner's roster is built from ``table``'s own columns (:meth:`Roster.from_table`). When
    ``table`` is a view of an extract that leaves columns out (a mapping onto an agreement's elements),
    pass ``roster=Roster.from_table(extract)``: the left-out columns' names, IDs, e-mail addresses and
    phone numbers are then searched for too. Its rows must be ``table``'s rows, in the same order.
    """
    return _run(
        [table],
        policy,
        secret=secret,
        crosswalk=crosswalk,
        progress=progress,
        input_name=input_name,
        reference_date=reference_date,
        full_rescan=full_rescan,
        roster=roster,
        dummy_secret=dummy_secret,
        group_codes=group_codes,
    )


def _run(
    box: list[pa.Table],
    policy: Policy,
    *,
    secret: bytes | None,
    crosswalk: Crosswalk | None,
    progress: Progress | None,
    input_name: str,
    reference_date: dt.date | None,
    full_rescan: bool,
    roster: Roster | None = None,
    dummy_secret: bytes | None = None,
    group_codes: Mapping[str, Collection[str]] | None = None,
) -> tuple[pa.Table, DeidReport]:
    """The run. It takes the input out of ``box`` and lets go of each input column once it is
    treated, so when the caller holds no other reference (deidentify_file) memory peaks lower."""
    table = box.pop()
    step = progress or _noop
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    step(0.0, "checking the policy")
    policy.check_columns(table.column_names, input_name=input_name)
    check_text(table, input_name)  # (read_table checked files; a table made in memory may not be text)
    treatments = [(rule, make_treatment(rule)) for rule in policy.rules]
    require_secret(policy, treatments, secret)
    require_crosswalk(policy, crosswalk is not None)
    reference = reference_date or dt.date.today()

    flags = _classify(table)
    # The roster comes from every column of the input as read (released, dropped or never mapped),
    # built in one place (deid._roster) for every path.
    own = Roster.from_table(table, policy, flags)
    # The report names the extract's own headers: a mapped view's columns are copies of them.
    fed_by = own.columns if roster is None else roster.columns
    if roster is not None:
        check_aligned(roster, table.num_rows)
        own = roster.merged(own)
    roster = own
    rows_in = table.num_rows
    needed = set()
    for r in policy.rules:
        if isinstance(r.params.get("by"), str):
            needed.add(r.params["by"])
        needed.update(x for x in r.params.get("from") or () if isinstance(x, str))
    student_id = next(
        (
            r.source
            for r in policy.rules
            if r.treatment in ("record_code", "token") and "from" not in r.params
        ),
        None,
    )
    if student_id and any(r.treatment == "date_shift" and "by" not in r.params for r in policy.rules):
        needed.add(student_id)
    columns = {name: table.column(name) for name in table.column_names}
    input_names = table.column_names
    ctx = TreatmentContext(
        table=table.select(sorted(needed)),
        k=policy.k,
        secret=secret,
        crosswalk=crosswalk,
        reference_date=reference,
        scanner_factory=roster.scanner,
        student_id_column=student_id,
        dummy_secret=dummy_secret,
    )
    del table
    timings["classify"] = time.perf_counter() - t0

    out_cols: list[pa.ChunkedArray] = []
    out_names: list[str] = []
    col_reports: list[ColumnReport] = []
    dropped: list[str] = []
    notes: list[str] = []
    warnings: list[str] = []
    text_outputs: set[str] = set()
    n = len(treatments)
    t1 = time.perf_counter()
    listed = {r.source for r in policy.rules}
    if policy.drop_unlisted:  # classified and rostered above; nothing else needs them
        for col in input_names:
            if col not in listed:
                columns.pop(col, None)
    for rule in policy.rules:
        if rule.treatment == "drop":
            columns.pop(rule.source, None)
    # Free text goes last: by then most other input columns are let go, so the scanner's working
    # memory does not come on top of the whole input. The output keeps the policy's order.
    order = sorted(range(n), key=lambda i: treatments[i][0].treatment == "redact_text")
    done: dict[int, tuple[str, pa.ChunkedArray, ColumnReport]] = {}
    for step_no, i in enumerate(order):
        rule, treatment = treatments[i]
        step(0.05 + 0.6 * step_no / max(n, 1), f"{rule.treatment}: {rule.source}")
        if rule.treatment == "drop":
            continue
        source = columns.pop(rule.source)
        t_col = time.perf_counter()
        result = treatment.fit_apply(source, ctx)
        timings[f"{rule.treatment} {rule.source}"] = time.perf_counter() - t_col
        if not isinstance(result, pa.ChunkedArray):
            result = pa.chunked_array([result])
        notes.extend(treatment.notes)
        name = rule.output_name
        assert name is not None
        report_row = ColumnReport(
            name=name,
            source=rule.source,
            treatment=rule.treatment,
            cells_changed=cells_changed(source, result),
            quasi_identifier=rule.quasi_identifier,
            redacted_by_kind=dict(getattr(treatment, "redacted_by_kind", None) or {}),
        )
        done[i] = (name, result, report_row)
        flag = flags.get(rule.source)
        kind = flag_category(flag)
        if rule.treatment == "redact_text" or (rule.treatment == "keep" and kind == "free_text"):
            text_outputs.add(name)
        if rule.treatment == "keep" and flag is not None and kind in ("identifier", "sensitive"):
            warnings.append(flag_warning(rule.source, flag, "is kept as it is"))
        elif flag_category(flag) == "quasi_identifier" and not rule.quasi_identifier:
            warnings.append(flag_warning(rule.source, flag, "is not in the k-anonymity check"))
        del source, result
        _release_memory()
    for i, (rule, _treatment) in enumerate(treatments):
        if rule.treatment == "drop":
            dropped.append(rule.source)
            continue
        name, result, report_row = done.pop(i)
        out_cols.append(result)
        out_names.append(name)
        col_reports.append(report_row)
    passed: list[str] = []
    for col in input_names:
        if col in listed:
            continue
        if policy.drop_unlisted:
            dropped.append(col)
            continue
        passed.append(col)
        out_cols.append(columns[col])
        out_names.append(col)
        col_reports.append(ColumnReport(name=col, source=col, treatment="keep", cells_changed=0))
        flag = flags.get(col)
        if flag is not None:
            if flag_category(flag) == "free_text":
                text_outputs.add(col)
            if flag_category(flag) in ("identifier", "quasi_identifier", "sensitive", "free_text"):
                warnings.append(flag_warning(col, flag, "is not in the policy and passes through unchanged"))
    output = pa.table(out_cols, names=out_names) if out_cols else pa.table({})
    del out_cols
    columns.clear()  # the input's remaining columns: no longer needed
    ctx.table = pa.table({})
    _release_memory()
    timings["transform"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    step(0.7, "checking k-anonymity")
    qis = policy.quasi_identifiers
    unsuppressed, qis_before = output, list(qis)
    disclosure = None
    if policy.disclosure is not None and qis:
        # The search: generalization levels with the least information loss, then record suppression
        # within the limit (deid/_disclosure.py); a quasi-identifier it leaves out leaves the output.
        labels = {c: v for c, v in (group_codes or {}).items() if isinstance(v, Mapping)}
        output, disclosure = protect_microdata(output, qis, policy.k, policy.disclosure, code_labels=labels)
        risk = disclosure.as_risk()
        for name in disclosure.removed:
            dropped.append(name)
        col_reports = [c for c in col_reports if c.name not in disclosure.removed]
        col_reports.append(
            ColumnReport(name=SUPPRESSED_COLUMN, source="", treatment="suppression_marker",
                         cells_changed=0)
        )
        qis = [q for q in qis if q not in disclosure.removed]
        warnings.extend(disclosure.warnings)
    else:
        output, risk = suppress_to_k(output, qis, policy.k)
    # Who lost cells, by group (published codes only): greedy suppression and the search alike.
    by_group = (
        suppression_by_group(unsuppressed, output, qis_before, policy.k, group_codes)
        if group_codes and risk.suppressed_cells
        else {}
    )
    del unsuppressed
    for c in col_reports:
        c.suppressed_cells = risk.suppressed_by_column.get(c.name, 0)
    timings["k_anonymity"] = time.perf_counter() - t2

    # Quasi-identifiers the search generalized hold labels PathShare wrote ("White", "2000-2009", "9xx"),
    # not input values: like years and ZIP3s, they cannot carry an SSN, a roster ID or a name.
    written = (
        {q for q, level in disclosure.levels.items() if level not in (ORIGINAL, REMOVED)}
        if disclosure is not None
        else set()
    )
    t3 = time.perf_counter()
    step(0.8, "scanning the output for identifying text")
    redacted = {c.name for c in col_reports if c.treatment == "redact_text"}
    residual_by_kind: dict[str, int] = {}
    findings, by_column, sampled = residual_scan(
        output,
        ctx.scanner if text_outputs else None,
        text_outputs,
        roster,
        sample_columns=set() if full_rescan else redacted,
        # record codes and tokens are random or keyed hashes, years, dates, buckets and ZIP3s are
        # written by PathShare in fixed shapes: only columns that carry input values as they were
        # can hold an SSN, an e-mail, a phone number or a roster ID or name
        raw_columns={c.name for c in col_reports if c.treatment in ("keep", "recode_rare")} - written,
        by_kind=residual_by_kind,
    )
    # Without a column of people's names the scanner cannot tell a student's own name in a note from
    # an ordinary word: say so, and the seal gate refuses such free text.
    unchecked = sorted(text_outputs) if text_outputs and not roster.columns.names else []
    if unchecked:
        warnings.append(
            f"the free text in {', '.join(unchecked)} could not be checked for the students' and "
            "guardians' own names, because no column of the input holds people's names (include the "
            "name columns in the extract: the policy drops them, and they make the check possible)"
        )
    redacted_by_kind: dict[str, int] = {}
    for c in col_reports:
        for kind, count in c.redacted_by_kind.items():
            redacted_by_kind[kind] = redacted_by_kind.get(kind, 0) + count
    for name, (k, n_rows) in sampled.items():
        notes.append(
            f"the residual scan re-checked {k:,} evenly spaced rows of the {n_rows:,} in '{name}' (the "
            f"column was redacted by the same scanner, so the other rows hold nothing it would find)"
        )
    timings["residual_scan"] = time.perf_counter() - t3
    timings["deidentify_total"] = time.perf_counter() - t0

    report = DeidReport(
        input=input_name,
        output=None,
        rows_in=rows_in,
        rows_out=output.num_rows,
        k_required=policy.k,
        k_achieved=risk.k_achieved if qis else None,
        quasi_identifiers=qis,
        suppressed_cells=risk.suppressed_cells,
        rows_with_suppression=risk.rows_with_suppression,
        columns=col_reports,
        dropped_columns=dropped,
        residual_findings=findings,
        residual_findings_total=sum(by_column.values()),
        residual_findings_by_column=by_column,
        residual_by_kind=residual_by_kind,
        redacted_by_kind=redacted_by_kind,
        text_unchecked=unchecked,
        rows_fully_suppressed=risk.rows_fully_suppressed,
        rows_with_empty_qi=risk.rows_with_empty_qi,
        suppression_by_group=by_group,
        records_at_risk_before=risk.records_at_risk_before,
        equivalence_classes=risk.classes,
        passed_through=passed,
        warnings=warnings,
        notes=notes,
        reference_date=reference.isoformat(),
        created=dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        timings={k: round(v, 3) for k, v in timings.items()},
        policy=policy.to_dict(),
        roster_columns=fed_by.to_dict(),
        disclosure=disclosure.to_dict() if disclosure is not None else None,
    )
    return output, report


def deidentify_file(
    input_path: str | os.PathLike[str],
    policy: Policy,
    output_path: str | os.PathLike[str],
    *,
    secret: bytes | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    crosswalk: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    sheet: str | None = None,
    progress: Progress | None = None,
    reference_date: dt.date | None = None,
    full_rescan: bool = True,
    force: bool = False,
    batch_rows: int | None = None,
    memory_mb: int | None = None,
) -> DeidReport:
    """Read ``input_path``, de-identify it under ``policy``, write ``output_path`` (.csv or .parquet)
    atomically, its rows in a fresh secret random order, and return the report (also written to
    ``report_path`` when given; its residual findings count the input's data rows).

    The secret comes from ``secret`` (bytes) or ``secret_file`` (created, 32 random bytes and mode
    0600, if missing — the report's notes say so); record codes are kept in the encrypted crosswalk
    ``crosswalk`` (default: ``<secret_file>.crosswalk``). On any error, including a cancel from
    ``progress``, no output, report or crosswalk change is left behind. ``full_rescan``: see
    :func:`deidentify`. An existing output or report is replaced only with ``force``.

    ``batch_rows`` or ``memory_mb`` stream the file instead of holding it (deid._stream): batches of
    ``batch_rows`` rows (default: as many as half of ``memory_mb`` holds while a batch is worked on,
    at most 262,144), and ``memory_mb`` (default 1,024), a quarter of it for DuckDB's sort into a
    random order, spilling to disk beside the output beyond it. Inputs the streaming reader does not
    take are run in memory, and the report's notes say why.
    """
    return _deidentify_file(
        input_path,
        policy,
        output_path,
        secret=secret,
        secret_file=secret_file,
        crosswalk=crosswalk,
        report_path=report_path,
        sheet=sheet,
        progress=progress,
        reference_date=reference_date,
        full_rescan=full_rescan,
        force=force,
        batch_rows=batch_rows,
        memory_mb=memory_mb,
    )


def _release_memory() -> None:
    """Hand Arrow memory freed so far back to the OS, from every allocator in play (mimalloc and
    jemalloc keep freed memory cached; input columns let go of stay there otherwise)."""
    pools = {id(pa.default_memory_pool()): pa.default_memory_pool()}
    for make in (pa.mimalloc_memory_pool, pa.jemalloc_memory_pool):
        try:
            pool = make()
        except (NotImplementedError, pa.ArrowNotImplementedError):
            continue
        pools[id(pool)] = pool
    for pool in pools.values():
        pool.release_unused()


def _deidentify_file(
    input_path: str | os.PathLike[str],
    policy: Policy,
    output_path: str | os.PathLike[str],
    *,
    secret: bytes | None,
    secret_file: str | os.PathLike[str] | None,
    crosswalk: str | os.PathLike[str] | None,
    report_path: str | os.PathLike[str] | None,
    sheet: str | None,
    progress: Progress | None,
    reference_date: dt.date | None,
    full_rescan: bool,
    force: bool,
    batch_rows: int | None = None,
    memory_mb: int | None = None,
) -> DeidReport:
    step = progress or _noop
    t0 = time.perf_counter()
    src, dest = Path(input_path), Path(output_path)
    output_format(dest)
    if src.exists() and dest.exists() and src.resolve() == dest.resolve():
        raise OutputError(f"Cannot write {dest}: it is the input file; choose another output name.")
    # The files this run writes (or, for an existing secret file, must not overwrite) are all
    # different from the input and from each other: a report named like the extract would destroy it.
    uses_secret = secret is None and policy.needs_secret
    codes = any(r.treatment == "record_code" for r in policy.rules)
    cw_file = crosswalk or (crosswalk_path(secret_file) if secret_file is not None else None)
    # Link-token dummies keyed by a file made on this machine beside the (partner-shared) secret file:
    # the same record gets the same dummies in each release (docs/linkage-threat-model.md).
    padding = (
        padding_key_path(secret_file)
        if secret_file is not None and any(r.treatment == "link_tokens" for r in policy.rules)
        else None
    )
    check_distinct_files(
        [("the input", src)],
        [
            ("the output", dest),
            ("the report", report_path),
            ("the secret file", secret_file if uses_secret else None),
            ("the crosswalk", cw_file if codes else None),
            ("the padding key file", padding),
        ],
    )
    check_output_path(dest, force=force)
    if report_path is not None:
        check_output_path(report_path, force=force)
    notes: list[str] = []
    step(0.0, f"reading {src.name}")
    info = ReadInfo()
    box: list[Any] = []
    if batch_rows is not None or memory_mb is not None:
        from deid._stream import DEFAULT_MEMORY_MB, NotStreamable, open_source

        try:
            if any(r.treatment == "link_tokens" for r in policy.rules):
                raise NotStreamable("link tokens are made in memory")
            if not src.exists() or src.is_dir():
                raise NotStreamable("the reader says what is wrong with it")
            box.append(open_source(src, info))
            batch_rows = max(1, int(batch_rows)) if batch_rows else 0  # 0: the memory setting chooses
            memory_mb = int(memory_mb or DEFAULT_MEMORY_MB)
        except NotStreamable as exc:
            notes.append(f"read whole, not streamed: {exc.reason}")
    if not box:
        # The table goes in a box that _run empties: no reference here keeps the input alive.
        box.append(read_table(src, sheet=sheet, info=info, duplicates="rename"))
        _check_duplicates(src, policy, info)
    pa.default_memory_pool().release_unused()  # the reader's block buffers
    t_read = time.perf_counter() - t0
    created: Path | None = None
    if secret_file is not None and secret is None and policy.needs_secret:
        secret, was_created = load_secret(secret_file, create=True)
        if was_created:
            created = Path(secret_file)
            notes.append(
                f"a new secret file was created at {secret_file}; keep it safe and private — "
                f"tokens, date shifts and record codes depend on it"
            )
    dummy_secret = None
    padding_created = False
    if padding is not None:
        try:
            dummy_secret, padding_created = load_secret(padding, create=True)
        except BaseException:
            if created is not None:
                created.unlink(missing_ok=True)
            raise
        if padding_created:
            notes.append(
                f"a new padding key file was created at {padding}; keep it beside the secret file but "
                f"do not share it — it keeps each student's link-token padding the same in every release"
            )
    written: list[Path] = [padding] if padding is not None and padding_created else []
    try:
        with system_allocator():
            return _finish_file(
                box,
                policy,
                src,
                dest,
                secret=secret,
                secret_file=secret_file,
                crosswalk=crosswalk,
                report_path=report_path,
                step=step,
                reference_date=reference_date,
                full_rescan=full_rescan,
                dummy_secret=dummy_secret,
                force=force,
                info=info,
                notes=notes,
                t0=t0,
                t_read=t_read,
                written=written,
                batch_rows=batch_rows,
                memory_mb=memory_mb,
            )
    except BaseException:
        # Nothing of a failed or cancelled run stays: not a secret it created, not its report.
        for path in [*written, *([created] if created else [])]:
            path.unlink(missing_ok=True)
        raise


def _finish_file(
    box: list[pa.Table],
    policy: Policy,
    src: Path,
    dest: Path,
    *,
    secret: bytes | None,
    secret_file: str | os.PathLike[str] | None,
    crosswalk: str | os.PathLike[str] | None,
    report_path: str | os.PathLike[str] | None,
    step: Progress,
    reference_date: dt.date | None,
    full_rescan: bool,
    dummy_secret: bytes | None,
    force: bool,
    info: ReadInfo,
    notes: list[str],
    t0: float,
    t_read: float,
    written: list[Path],
    batch_rows: int | None = None,
    memory_mb: int | None = None,
) -> DeidReport:
    cw = None
    cw_path = (
        Path(crosswalk)
        if crosswalk is not None
        else (crosswalk_path(secret_file) if secret_file is not None else None)
    )
    if any(r.treatment == "record_code" for r in policy.rules) and secret is not None:
        require_crosswalk(policy, cw_path is not None)
        assert cw_path is not None
        cw = load_crosswalk(cw_path, secret)

    def inner(fraction: float, message: str) -> None:
        step(0.1 + 0.75 * fraction, message)

    from deid._stream import Source, run_stream

    streamed = None
    if isinstance(box[0], Source):
        streamed, report = run_stream(
            box.pop(),
            policy,
            secret=secret,
            crosswalk=cw,
            progress=inner,
            input_name=str(src),
            reference_date=reference_date,
            full_rescan=full_rescan,
            batch_rows=int(batch_rows or 0),
            memory_mb=int(memory_mb or 0),
            spill_dir=dest.parent,
        )
    else:
        output, report = _run(
            box,
            policy,
            secret=secret,
            crosswalk=cw,
            progress=inner,
            input_name=str(src),
            reference_date=reference_date,
            full_rescan=full_rescan,
            dummy_secret=dummy_secret,
        )
    report.output = str(dest)
    report.input_format = info.format
    report.input_encoding = info.encoding
    report.notes = notes + [f"input repaired: {r}" for r in info.repairs] + report.notes
    report.timings["read"] = round(t_read, 3)
    step(0.87, f"writing {dest.name}")
    t_write = time.perf_counter()

    def before_commit(tmp: Path) -> None:
        # Last chance to cancel; then the report and the crosswalk are saved before the output
        # appears, so no output ever carries codes its crosswalk does not hold, or lacks its report.
        step(0.97, "saving")
        report.output_sha256 = _sha256(tmp)
        report.timings["write"] = round(time.perf_counter() - t_write, 3)
        report.timings["total"] = round(time.perf_counter() - t0, 3)
        if report_path is not None:
            report.write(report_path, force=force)
            written.append(Path(report_path))
        if cw is not None and cw.new_codes and cw_path is not None and secret is not None:
            save_crosswalk(cw_path, cw, secret)

    # A release: written in a fresh random order (deid._io.write_release), never the extract's.
    if streamed is not None:
        from deid._io import write_batches

        try:
            write_batches(streamed.batches(), dest, before_commit=before_commit, force=force)
        finally:
            streamed.close()
        return report
    write_release(output, dest, before_commit=before_commit, force=force)
    return report


def _check_duplicates(src: Path, policy: Policy, info: ReadInfo) -> None:
    """A repeated header over different values is harmless when the policy drops it, and an error
    when the policy would keep, code or pass through one of the two without saying which."""
    for name, renamed in info.renamed_duplicates.items():
        rule = policy.rule_for(name)
        if rule is not None and rule.treatment != "drop":
            raise PolicyError(
                f"{src} has two columns named '{name}' with different values, so the policy's "
                f"rule for '{name}' is ambiguous; rename one in the file (the second is read "
                f"as '{renamed[0]}')."
            )
        if not policy.drop_unlisted and rule is None:
            raise PolicyError(
                f"{src} has two columns named '{name}' with different values; name them in the "
                f"policy ('{name}' and '{renamed[0]}') or set drop_unlisted to true."
            )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------------- PII integration


def _classify(table: pa.Table) -> dict[str, Any]:
    """Column flags from deid._columns (identifier / quasi_identifier / sensitive / free_text)."""
    from deid._columns import classify_columns

    return classify_columns(table, sample_rows=2000)


