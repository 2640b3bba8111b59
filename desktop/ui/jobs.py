"""Job functions run in the worker process (no Qt here), and the worker's entry point.

Each job is a thin adapter: it calls one library function (``deid`` / ``agreements``) and reduces the
result to a small picklable summary for the window — never the whole table. Tables the window must
show (the before/after preview) cross as Arrow IPC in shared memory, which the window maps without a
copy (see :func:`table_to_shm` / :func:`table_from_shm`).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[float, str], None]


@dataclass
class JobContext:
    """What every job gets besides its own arguments."""

    progress: Progress
    vault: Any = None  # an open agreements Vault when the job named one
    shm_prefix: str = "ps_"


def run_job(spec: dict[str, Any], progress: Progress) -> Any:
    """Resolve ``spec["func"]``, open the vault if asked, and run the job."""
    module_name, _, func_name = spec["func"].partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    vault = None
    if spec.get("vault_path"):
        from agreements import Vault

        vault = Vault.open(spec["vault_path"], spec.get("passphrase") or "")
    ctx = JobContext(progress=progress, vault=vault, shm_prefix=spec.get("shm_prefix") or "ps_")
    try:
        return func(ctx, **spec.get("kwargs", {}))
    finally:
        close = getattr(vault, "close", None)
        if close:
            close()


def worker_main(conn: Any) -> None:
    """Entry point of the worker process: read one job from the pipe, run it, send the outcome."""
    import contextlib
    import os

    from desktop.ui.problems import user_error

    # The window comes first: on a busy two-core machine the job yields the CPU to the UI process.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(5)
    spec = conn.recv()
    from agreements import identify_vault_user

    identify_vault_user("job")
    last = [0.0]

    def progress(fraction: float, stage: str) -> None:
        # Throttle: the window polls every 40 ms; more messages would only fill the pipe.
        now = time.monotonic()
        if now - last[0] >= 0.03 or fraction >= 1.0:
            last[0] = now
            conn.send(("progress", float(fraction), str(stage)))

    try:
        result = run_job(spec, progress)
    except Exception as exc:  # every error goes back to the window as a sentence (problems.py says which)
        error = user_error(exc)
        conn.send(("error", type(error).__name__, error.message, error.hint))
    else:
        conn.send(("ok", result))
    conn.close()


# --- tables through shared memory ------------------------------------------------------------------


_SHM_DIR = Path("/dev/shm")  # Linux: shared memory is a RAM-backed file system


def table_to_shm(table: Any, name: str) -> str:
    """Put a pyarrow Table, as Arrow IPC, in shared memory block ``name`` (private to this user); return
    the name. The window maps it without a copy and removes it (:class:`ShmTable`)."""
    import pyarrow as pa

    if _SHM_DIR.is_dir():
        path = _SHM_DIR / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return name
    from multiprocessing import resource_tracker, shared_memory

    sizer = pa.MockOutputStream()
    with pa.ipc.new_stream(sizer, table.schema) as writer:
        writer.write_table(table)
    block = shared_memory.SharedMemory(name=name, create=True, size=max(1, sizer.size()))
    _write_ipc(block.buf, table)
    block.close()
    # The window owns the block from here (it unlinks it); the tracker must not remove it at our exit.
    resource_tracker.unregister(block._name, "shared_memory")  # type: ignore[attr-defined]
    return name


def _write_ipc(memory: memoryview, table: Any) -> None:
    import pyarrow as pa

    stream = pa.FixedSizeBufferWriter(pa.py_buffer(memory))
    writer = pa.ipc.new_stream(stream, table.schema)
    writer.write_table(table)
    writer.close()
    stream.close()


class ShmTable:
    """A pyarrow Table mapped from shared memory without a copy; ``release()`` removes the block."""

    def __init__(self, name: str) -> None:
        import pyarrow as pa

        self.name = name
        self._block: Any = None
        if (_SHM_DIR / name).exists():
            source = pa.memory_map(str(_SHM_DIR / name), "r")
            # Mapped: the name can go now (the memory lives until the mapping is dropped), so nothing
            # is left behind however the window ends.
            os.unlink(_SHM_DIR / name)
        else:
            from multiprocessing import shared_memory

            self._block = shared_memory.SharedMemory(name=name)
            source = pa.py_buffer(self._block.buf)
        self.table = pa.ipc.open_stream(source).read_all()

    def release(self) -> None:
        """Drop the table and remove the shared-memory block."""
        import contextlib
        import gc

        self.table = None
        gc.collect()
        if self._block is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(_SHM_DIR / self.name)
            return
        with contextlib.suppress(BufferError):
            self._block.close()
        with contextlib.suppress(FileNotFoundError):
            self._block.unlink()


# --- the jobs ---------------------------------------------------------------------------------------


def selftest(
    ctx: JobContext, out: str, steps: int = 20, delay: float = 0.05, run_folder: str | None = None
) -> dict[str, Any]:
    """A job that writes ``out`` atomically in ``steps`` slow steps (for tests of cancel and progress);
    with ``run_folder``, first makes a private run folder there, as the linker's spill (left behind)."""
    from deid import atomic_open, private_folder

    if run_folder is not None:
        private_folder(run_folder)

    with atomic_open(out, "wb") as fh:
        for i in range(steps):
            fh.write(b"x" * 1024)
            fh.flush()
            ctx.progress((i + 1) / steps, f"step {i + 1} of {steps}")
            time.sleep(delay)
    return {"out": out, "steps": steps}


# --- Prepare ---------------------------------------------------------------------------------------


def provider_agreements(vault: Any) -> list[dict[str, Any]]:
    """Executed, in-force agreements under which this organization provides data (a short vault read;
    runs on the UI thread)."""
    from agreements import get_agreement, list_agreements, our_card

    me = our_card(vault).fingerprint()
    out = []
    for s in list_agreements(vault):
        if not s.in_force:
            continue
        a = get_agreement(vault, s.id, s.version)
        party = a.party(me)
        if party is None or "provider" not in party.roles:
            continue
        out.append(
            {
                "id": a.id,
                "version": a.version,
                "title": a.title,
                "purpose": a.terms.purpose,
                "recipients": [p.org for p in a.recipients()],
                "effective": a.effective.isoformat(),
                "expires": a.expires.isoformat(),
                "destruction": a.destruction_deadline.isoformat(),
                "elements": [e.name for e in a.terms.elements],
                "k": a.terms.policy.k,
            }
        )
    return out


def _agreement_elements(agreement: Any) -> list[Any]:
    """The agreement's dictionary as the engine's elements (agreements' own conversion)."""
    from agreements import agreement_elements

    return agreement_elements(agreement)


@dataclass(frozen=True)
class ElementChoice:
    """One element of the agreement as the Map step offers it."""

    name: str
    label: str
    treatment: str
    codes: list[str]
    labels: dict[str, str]  # code -> what it means


@dataclass(frozen=True)
class ColumnGuess:
    """The element suggested for one column of the extract (None: not shared), and why."""

    element: str | None
    confidence: float
    why: str


@dataclass(frozen=True)
class Inspection:
    """What the Prepare screen's Map step shows (the inspect_extract job's result)."""

    path: str
    rows: int
    columns: list[str]
    elements: list[ElementChoice]
    suggestions: dict[str, ColumnGuess]  # column -> its suggestion
    recode_suggestions: dict[str, dict[str, str]]  # column -> {value: code}
    date_formats: dict[str, str]
    profile: str | None  # the saved profile the suggestions come from, if any
    values: dict[str, list[str]]  # column -> its distinct values, for columns with at most 40
    profile_note: str


def inspect_extract(ctx: JobContext, path: str, agreement_id: str) -> Inspection:
    """Read the extract and propose its mapping onto the agreement's elements (no output written): the
    library's proposal (agreements.propose_mapping, as `pathshare map --agreement` prints it)."""
    from agreements import propose_mapping, require_in_force

    agreement = require_in_force(ctx.vault, agreement_id)
    ctx.progress(0.05, "reading the extract and suggesting how your columns match the agreement")
    elements = _agreement_elements(agreement)
    proposal = propose_mapping(ctx.vault, path, elements)
    table, profile = proposal.table, proposal.profile
    by_column = {s.column: s for s in proposal.suggestions}
    suggested: dict[str, ColumnGuess] = {}
    for column in table.column_names:
        s = by_column[column]
        if column in proposal.from_profile:  # a saved profile whose headers match wins
            why = f"your saved profile “{profile.name}”"
            suggested[column] = ColumnGuess(profile.columns.get(column), 1.0, why)
        else:
            why = "; ".join(s.candidates[0].reasons) if s.candidates and s.element else ""
            suggested[column] = ColumnGuess(s.element, s.score, why)
    recode_suggestions = {c: dict(r) for c, r in profile.recodes.items()}
    date_formats = dict(profile.date_formats)
    saved = profile if proposal.from_profile else None
    ctx.progress(0.9, "listing values to recode")
    values: dict[str, list[str]] = {}
    import pyarrow.compute as pc

    for name in table.column_names:
        distinct = pc.unique(table.column(name).drop_null())
        if 0 < len(distinct) <= 40:
            values[name] = sorted(str(v) for v in distinct.to_pylist())
    ctx.progress(1.0, "done")
    return Inspection(
        path=path,
        rows=table.num_rows,
        columns=table.column_names,
        elements=[
            ElementChoice(
                name=el.name,
                label=el.label or el.name,
                treatment=t.treatment,
                codes=sorted(el.codes),
                labels={str(c.code): str(c.label) for c in el.code_set},
            )
            for el, t in zip(elements, agreement.terms.elements, strict=True)
        ],
        suggestions=suggested,
        recode_suggestions=recode_suggestions,
        date_formats=date_formats,
        profile=saved.name if saved is not None else None,
        values=values,
        profile_note=f"Suggestions come from your saved profile “{saved.name}”." if saved is not None else "",
    )


def _profile(
    mapping: dict[str, Any],
    recodes: dict[str, Any],
    date_formats: dict[str, Any],
    name: str = "(this extract)",
) -> Any:
    from deid import MappingProfile

    return MappingProfile(
        name=name, columns=dict(mapping), recodes=dict(recodes), date_formats=dict(date_formats)
    )


def confirm_mapping(
    ctx: JobContext,
    path: str,
    agreement_id: str,
    profile_name: str,
    mapping: dict[str, Any],
    recodes: dict[str, Any],
    date_formats: dict[str, Any],
) -> list[dict[str, Any]]:
    """Save the clerk's confirmed mapping as profile ``profile_name`` (replacing an older one of that
    name) and check the extract under it: the library's validation findings, as dicts."""
    from agreements import map_for_agreement, require_in_force, save_profile
    from deid import read_table

    agreement = require_in_force(ctx.vault, agreement_id)
    profile = _profile(mapping, recodes, date_formats, name=profile_name)
    save_profile(ctx.vault, profile, replace=True)
    ctx.progress(0.05, "reading the extract")
    table = read_table(path, duplicates="rename")  # as prepare reads it (NAME_2 for a repeated header)
    ctx.progress(0.6, "checking values against the agreement's code sets")
    result = map_for_agreement(
        ctx.vault, agreement, table, profile=profile_name, input_name=Path(path).name, refuse_errors=False
    )
    ctx.progress(1.0, "done")
    from agreements import columns_left_out
    from deid import describe_left_out

    left_out = columns_left_out(agreement, {h: (mapping.get(h) or None) for h in table.column_names})
    # The same sentence as the Done step and the recipient's report (one count, from the library).
    counted = {
        "severity": "info",
        "kind": "left_out",
        "message": describe_left_out(table.num_columns, len(left_out), left_out),
    }
    return [f.to_dict() for f in result.findings] + [counted]


# --- standalone de-identification (no vault) --------------------------------------------------------


def deidentify_to_file(
    ctx: JobContext,
    path: str,
    policy: dict[str, Any],
    out: str,
    secret_file: str | None = None,
    report: str | None = None,
) -> dict[str, Any]:
    """``pathshare deid INPUT --policy … --out OUT``: the engine's deidentify_file; returns the report."""
    from deid import Policy, deidentify_file

    result = deidentify_file(
        path,
        Policy.from_dict(policy),
        out,
        secret_file=secret_file,
        report_path=report,
        progress=ctx.progress,
    )
    return result.to_dict()


# --- Prepare: preview and seal (through agreements' prepare workflow) -------------------------------


def _sources(report: dict[str, Any], before: list[str], mapping: dict[str, Any]) -> dict[str, str | None]:
    """Output column -> the extract's column it came from (the report may name the element instead)."""
    by_element = {element: column for column, element in mapping.items() if element}
    out: dict[str, str | None] = {}
    for col in report.get("columns", []):
        source = col.get("source")
        out[col["name"]] = source if source in before else by_element.get(source)
    return out


@dataclass(frozen=True)
class FlaggedCell:
    """A cell the residual scan flagged: its output column, its row (from 0, the window's model counts
    so) and what it may be ("a name"), never the value."""

    column: str
    row: int
    kind: str


@dataclass(frozen=True)
class OutputColumn:
    """One column that will be shared: its name, the extract's column it came from, and what is done to
    its values, in words."""

    name: str
    source: str | None
    treatment: str


@dataclass(frozen=True)
class Preview:
    """What the Prepare screen's Preview and Risk steps show (the preview_extract job's result)."""

    before: Any  # the extract as the clerk knows it, in shared memory (ShmTable opens it)
    after: Any  # the de-identified table, in shared memory
    sources: dict[str, str | None]  # output column -> the extract's column it came from
    code_labels: dict[str, dict[str, str]]  # output column -> {code: what it means}
    rows_in: int
    rows_out: int
    columns_out: list[str]
    column_details: list[OutputColumn]
    k_required: int
    k_achieved: int | None  # None: no quasi-identifiers
    quasi_identifiers: list[str]
    suppressed_cells: int
    residual: list[FlaggedCell]  # the first findings (the report keeps a bounded number)
    residual_total: int
    redacted_kinds: str  # what redaction took out of the notes, in the clerk's words
    residual_kinds: str  # what may still be there
    text_unchecked: list[str]  # note columns that cannot be checked for the students' own names
    problems: list[Any]  # agreements.SealingProblem: the one gate prepare applies (empty: may be sealed)
    summary: str
    disclosure: dict[str, Any] | None  # the disclosure search's result (sentences, candidates, charts)
    choice: dict[str, str] | None  # the way to share the clerk picked, as previewed


def preview_extract(
    ctx: JobContext, path: str, agreement_id: str, profile_name: str, choice: dict[str, str] | None = None
) -> Preview:
    """De-identify under the agreement exactly as prepare will (same mapping, secret, crosswalk and full
    residual scan), without sealing; the before/after tables cross to the window through shared memory.
    """
    from agreements import code_labels, get_profile, preview_under_agreement, treatment_words
    from deid import describe_kinds, read_table

    run = preview_under_agreement(
        ctx.vault,
        path,
        agreement_id,
        profile=profile_name,
        progress=lambda f, m: ctx.progress(0.9 * f, m),
        choice=choice,
    )
    ctx.progress(0.92, "preparing the preview")
    table = read_table(path, duplicates="rename")  # the extract as the clerk knows it ("before" side)
    out_table, rep = run.table, run.report.to_dict()
    before = table_to_shm(table, ctx.shm_prefix + "before")
    after = table_to_shm(out_table, ctx.shm_prefix + "after")
    profile_columns = dict(get_profile(ctx.vault, profile_name).columns)
    sources = _sources(rep, table.column_names, profile_columns)
    words = treatment_words(run.agreement, rep)  # "grouped into ranges", never "bucket"
    return Preview(
        before=before,
        after=after,
        sources=sources,
        code_labels=code_labels(run.agreement),
        rows_in=rep.get("rows_in", table.num_rows),
        rows_out=rep.get("rows_out", out_table.num_rows),
        columns_out=out_table.column_names,
        column_details=[
            OutputColumn(c["name"], sources.get(c["name"]), words.get(c["name"], ""))
            for c in rep.get("columns", [])
        ],
        k_required=run.agreement.terms.policy.k,
        k_achieved=rep.get("k_achieved"),
        quasi_identifiers=rep.get("quasi_identifiers", []),
        suppressed_cells=rep.get("suppressed_cells", 0),
        # The report counts data rows from 1; the window's model counts from 0.
        residual=[
            FlaggedCell(f["column"], int(f["row"]) - 1, f["kind"]) for f in rep.get("residual_findings", [])
        ],
        residual_total=rep.get("residual_findings_total", 0),
        redacted_kinds=describe_kinds(rep.get("redacted_by_kind") or {}),
        residual_kinds=describe_kinds(rep.get("residual_by_kind") or {}),
        text_unchecked=list(rep.get("text_unchecked") or []),
        problems=run.sealing_problems(),
        summary=run.report.summary(),
        disclosure=rep.get("disclosure"),
        choice=choice,
    )


@dataclass(frozen=True)
class SealedExtract:
    """What the Prepare screen's Done step shows after sealing (the seal_extract job's result)."""

    out: str  # the package file
    bytes: int
    package_id: str
    rows: int
    columns: list[str]
    recipients: list[str]  # organizations
    agreement_title: str
    summary: str  # exactly what leaves, in sentences


def seal_extract(
    ctx: JobContext,
    path: str,
    agreement_id: str,
    profile_name: str,
    out: str,
    force: bool = False,
    choice: dict[str, str] | None = None,
) -> SealedExtract:
    """De-identify, gate and seal in one step — ``pathshare prepare`` with the confirmed profile."""
    import os

    from agreements import prepare

    prepared = prepare(
        ctx.vault,
        path,
        agreement_id,
        out,
        profile=profile_name,
        progress=ctx.progress,
        force=force,
        choice=choice,  # the clerk's pick in the Risk step, as previewed
    )
    sealed = prepared.sealed
    return SealedExtract(
        out=str(prepared.path),
        bytes=os.path.getsize(prepared.path),
        package_id=sealed.manifest.package_id,
        rows=prepared.report.rows_out,
        columns=list(prepared.columns),
        recipients=[p.org for p in sealed.agreement.recipients()],
        agreement_title=sealed.agreement.title,
        summary=prepared.summary(),
    )


# --- Receive ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedFile:
    """One data file of an opened package, where it was saved."""

    name: str
    rows: int
    bytes: int
    path: str


@dataclass(frozen=True)
class OpenedPackage:
    """What the Receive screen shows after opening a package (the open_received_package job's result)."""

    sender: str  # organization
    sender_fingerprint: str
    agreement_id: str
    agreement_title: str
    package_id: str
    checks: list[str]  # the checks that passed, as sentences
    warnings: list[str]
    files: list[OpenedFile]
    report: dict[str, Any]  # the sender's de-identification report, as sent
    report_summary: str
    out_dir: str
    receipt: str | None  # the signed receipt written, if one was asked for


def open_received_package(
    ctx: JobContext,
    package: str,
    out_dir: str,
    receipt: str | None,
    force: bool = False,
    reopen_reason: str | None = None,
) -> OpenedPackage:
    """Verify, decrypt and save a package (``pathshare open``); write the receipt when asked. With
    ``reopen_reason``, a package this vault opened before whose folder was lost (``open --reopen``)."""
    from agreements import open_received
    from agreements.errors import PackageRejected

    try:
        opened = open_received(
            ctx.vault,
            package,
            out_dir,
            receipt=receipt,
            progress=ctx.progress,
            force=force,
            reopen_reason=reopen_reason,
        )
    except PackageRejected as exc:
        if exc.receipt is None:
            raise
        raise PackageRejected(
            f"{exc} A signed receipt telling the sender it was refused is in {Path(exc.receipt).name}."
        ) from exc
    manifest = opened.manifest
    report = dict(opened.report)
    summary = ""
    try:
        from deid import DeidReport

        summary = DeidReport.from_dict(report).summary()
    except Exception:  # an older or foreign report: the figures below still show
        summary = ""
    return OpenedPackage(
        sender=opened.sender.org,
        sender_fingerprint=opened.sender.fingerprint,
        agreement_id=opened.agreement.id,
        agreement_title=opened.agreement.title,
        package_id=manifest.package_id,
        checks=list(opened.checks),
        warnings=list(opened.warnings),
        files=[
            OpenedFile(name=e.name, rows=e.rows or 0, bytes=e.size, path=str(p))
            for e, p in zip(manifest.files, opened.files, strict=True)
        ],
        report=report,
        report_summary=summary,
        out_dir=str(opened.out_dir),
        receipt=str(opened.receipt) if opened.receipt else None,
    )


# --- Link -------------------------------------------------------------------------------------------


def describe_link_file(path: str) -> dict[str, Any]:
    """Rows of a de-identified file and its link-tokens column (``None``: none, or several), for the
    line under each file on the Link page. Short work (a thread, not the worker): reads the file once."""
    from deid import find_token_column, read_table
    from deid.errors import InputError

    table = read_table(path, duplicates="rename")  # as prepare reads it (NAME_2 for a repeated header)
    try:
        column: str | None = find_token_column(table, str(path))
    except InputError:
        column = None
    return {"rows": table.num_rows, "token_column": column}


def link_files(
    ctx: JobContext, file_a: str, file_b: str, out: str, report: str, method: str, force: bool = False
) -> dict[str, Any]:
    """Link two de-identified files on their tokens (``pathshare link``): the library's workflow writes
    the linked rows, the JSON report and its audit entry; the window gets the report's counts (never
    identities)."""
    from agreements import link_files as link

    ctx.progress(0.05, f"linking {Path(file_a).name} and {Path(file_b).name}")
    links = link(ctx.vault, file_a, file_b, out, report=report, method=method, force=force)
    ctx.progress(1.0, "linked")
    from deid import link_chart_png

    # The analyst's charts (weights, score distribution), drawn by the library from the report's counts.
    return {**links.report.to_dict(), "chart_png": link_chart_png(links.report)}


def release_outcome_tables(
    ctx: JobContext, packages: list[str], metrics: list[str], by: list[str], out: str
) -> dict[str, Any]:
    """Make and save a release of outcome tables (``pathshare outcomes``); the window gets the summary
    and the file names (counts stay in the files)."""
    from agreements import release_outcomes

    release = release_outcomes(ctx.vault, packages, metrics, by, out, progress=ctx.progress)
    return {
        "summary": release.summary(),
        "files": [p.name for p in release.files],
        "folder": str(release.folder),
        "release": release.release_id,
    }
