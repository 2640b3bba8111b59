"""``prepare``: map an extract onto an agreement, de-identify it, gate it, seal it — one step.

The gate fails closed: nothing is sealed unless the agreement is executed and in force, we are one of
its providers, the output holds only the agreement's elements, k-anonymity reaches the agreement's k,
and the residual-PII scan of the whole output is clean. Every refusal is audited with its reason.

The de-identified table goes from memory into a private (0600) staging file in the folder the user
chose for the package, is sealed, and the staging file is removed whatever happens; the vault keeps
the agreement's release secret and record-code crosswalk (never a file beside the data).
"""

from __future__ import annotations

import contextlib
import re
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from agreements._agreement import Agreement
from agreements._agreement_store import require_in_force
from agreements._clock import utc_now
from agreements._identity import our_card
from agreements._profiles import map_for_agreement
from agreements._recorded import output_rule
from agreements._vault import Vault
from agreements._workflows import SealedPackage, seal_for_agreement
from agreements.errors import AgreementError
from deid import check_output_path, same_file
from deid.errors import CheckFailed, OutputError, PathShareError

Progress = Callable[[float, str], None]


def _noop(_fraction: float, _message: str) -> None:
    return None


@dataclass(frozen=True)
class PreparedPackage:
    """The outcome of :func:`prepare`: the sealed package, the de-identification report, and what
    leaves the organization, in plain words."""

    sealed: SealedPackage
    report: Any  # deid.DeidReport
    mapping_how: str
    data_name: str
    columns: tuple[str, ...]
    input_columns: int
    input_columns_carried: int | None = None

    @property
    def path(self) -> Path:
        return self.sealed.path

    def _redaction_text(self) -> str:
        from deid import describe_kinds

        redacted = describe_kinds(getattr(self.report, "redacted_by_kind", None) or {})
        found = describe_kinds(getattr(self.report, "residual_by_kind", None) or {})
        where = f"redacted from the notes: {redacted}; " if redacted else ""
        after = f"found afterwards: {found}." if found else "no identifying text was found in the output."
        return where + after

    def _roster_text(self) -> str:
        cols = getattr(self.report, "roster_columns", None) or {}
        headers = list(dict.fromkeys(h for group in cols.values() for h in group))
        if not headers:
            return ""
        return (
            "The notes were checked for the names, IDs, e-mail addresses and phone numbers in these "
            f"columns of the extract: {', '.join(headers)}.\n"
        )

    def summary(self) -> str:
        """Exactly what leaves the organization and to whom, for the clerk to read before sending."""
        a = self.sealed.agreement
        to = ", ".join(p.org for p in a.recipients())
        deadline = (a.body.get("destruction") or {}).get("deadline", "the agreed date")
        r = self.report
        k_text = (
            f"every combination of {', '.join(r.quasi_identifiers)} is shared by at least "
            f"{r.k_achieved} students (the agreement requires {r.k_required})"
            if r.quasi_identifiers and r.k_achieved is not None
            else f"every row had at least one of {', '.join(r.quasi_identifiers)} blanked to reach "
            f"k = {r.k_required}"
            if r.quasi_identifiers
            else "the agreement names no quasi-identifiers to check"
        )
        disclosure = getattr(r, "disclosure", None)
        if disclosure:
            k_text += "; " + " ".join(disclosure.get("sentences") or []).rstrip(".")
        elif r.suppressed_cells:
            k_text += f"; {r.suppressed_cells:,} cells were blanked to get there"
        return (
            f"Package {self.sealed.manifest.package_id} is sealed in {self.path.name}.\n"
            f'It can be opened only by: {to} (agreement "{a.title}", in force until {a.expires}).\n'
            f"It holds 1 file, {self.data_name}: {r.rows_out:,} rows with these columns: "
            f"{', '.join(self.columns)}.\n"
            f"Not included: {self._left_out_text()}\n"
            f"Privacy check: {k_text}; {self._redaction_text()}\n"
            f"{self._roster_text()}"
            + "".join(f"Warning: {w}.\n" for w in r.warnings)  # the same the recipient reads
            + f"Recipients must destroy it by {deadline}."
        )

    def _left_out_text(self) -> str:
        from deid import describe_left_out

        r = self.report
        if r.extract_columns is None or r.extract_columns_left_out is None:
            return "columns the agreement does not list."
        return describe_left_out(r.extract_columns, r.extract_columns_left_out, r.left_out_headers)


def prepare(
    vault: Vault,
    input_path: str | Path,
    agreement_id: str,
    out: str | Path,
    *,
    profile: str | None = None,
    accept_suggested: bool = False,
    sheet: str | None = None,
    today: date | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    force: bool = False,
    choice: dict[str, str] | None = None,
) -> PreparedPackage:
    """De-identify ``input_path`` under agreement ``agreement_id`` and seal it to ``out``.

    An existing file at ``out`` is replaced only with ``force``, and never one the vault recorded
    (an earlier sealed package, a receipt…).

    The mapping is the profile named ``profile``, else the saved profile whose headers match; with
    ``accept_suggested`` the suggested mapping is used when no profile matches (the CLI asks for it
    explicitly). ``choice`` fixes the generalization level of quasi-identifiers by name (the clerk's
    pick among the disclosure search's candidates; only levels the agreement allows). Raises a
    PathShareError naming the first reason to refuse; nothing is written then.
    """
    step = progress or _noop
    src = Path(input_path)
    try:
        # A destination that cannot be written is said before anything is read, made or recorded
        # (a refused prepare must not leave a linkage secret or a mapping behind).
        if same_file(src, Path(out)):
            raise OutputError(
                f"Cannot write the package over the extract {src.name}; choose another file name."
            )
        check_output_path(out, force=force, recorded=output_rule(vault))
        run = _deidentify_under(
            vault, src, agreement_id, profile, accept_suggested, sheet, today, step, full_rescan=True,
            choice=choice,
        )
        _gate(run.agreement, run.policy, run.table.column_names, run.report)
        # CSV or an Excel workbook, as the agreement chose (Policy.release_format).
        extension = run.agreement.terms.policy.release_format
        data_name = f"{_slug(our_card(vault).org)}-{(today or date.today()).isoformat()}.{extension}"
        run.report.output = f"data/{data_name}"
        sealed = _seal_table(
            vault, run.agreement, run.table, data_name, run.report, Path(out), today, now, step, force
        )
        _store_crosswalk(vault, run)
    except PathShareError as exc:
        vault.audit.append(
            "package.prepare_refused", agreement=agreement_id, details={"input": src.name, "reason": str(exc)}
        )
        raise
    vault.audit.append(
        "package.prepared",
        agreement=run.agreement.id,
        package=sealed.manifest.package_id,
        details={**run.audit_details(), "input": src.name},
    )
    step(1.0, "sealed")
    return PreparedPackage(
        sealed,
        run.report,
        run.mapping_how,
        f"data/{data_name}",
        tuple(run.table.column_names),
        run.input_columns,
        run.input_columns_carried,
    )


def deidentify_for_agreement(
    vault: Vault,
    input_path: str | Path,
    agreement_id: str,
    out: str | Path,
    *,
    profile: str | None = None,
    accept_suggested: bool = False,
    sheet: str | None = None,
    today: date | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> Any:
    """``pathshare deid INPUT --agreement ID --out OUTPUT``: the same mapping, secret and policy as
    :func:`prepare`, written to the provider's own file instead of sealed (no gate: the report says what
    a seal would refuse). An existing file at ``out`` is replaced only with ``force``, never one the
    vault recorded. Returns the DeidReport."""
    from deid import write_release

    step = progress or _noop
    src = Path(input_path)
    try:
        if same_file(src, Path(out)):
            raise OutputError(
                f"Cannot write the output over the extract {src.name}; choose another file name."
            )
        rule = output_rule(vault)
        check_output_path(out, force=force, recorded=rule)  # before the slow part
        run = _deidentify_under(
            vault, src, agreement_id, profile, accept_suggested, sheet, today, step, full_rescan=False
        )
        run.report.output = Path(out).name
        write_release(
            run.table,
            out,
            before_commit=lambda _tmp: _store_crosswalk(vault, run),
            force=force,
            recorded=rule,
        )
    except PathShareError as exc:
        vault.audit.append(
            "deid.refused", agreement=agreement_id, details={"input": src.name, "reason": str(exc)}
        )
        raise
    vault.audit.append(
        "deid.agreement", agreement=run.agreement.id, details={**run.audit_details(), "input": src.name}
    )
    step(1.0, "written")
    return run.report


def preview_under_agreement(
    vault: Vault,
    input_path: str | Path,
    agreement_id: str,
    *,
    profile: str | None = None,
    accept_suggested: bool = False,
    sheet: str | None = None,
    today: date | None = None,
    progress: Progress | None = None,
    choice: dict[str, str] | None = None,
) -> AgreementRun:
    """De-identify exactly as :func:`prepare` will (same mapping, secret, crosswalk, full residual scan)
    and return the result in memory, for the app's before/after preview and risk panel. Its rows stay in
    the extract's order, side by side with it; only the sealed file is shuffled. New record codes
    are kept, so the package sealed next carries the codes previewed. Nothing is written to disk."""
    step = progress or _noop
    run = _deidentify_under(
        vault,
        Path(input_path),
        agreement_id,
        profile,
        accept_suggested,
        sheet,
        today,
        step,
        full_rescan=True,
        choice=choice,
    )
    _store_crosswalk(vault, run)
    return run


@dataclass
class AgreementRun:
    """One de-identification of an extract under an agreement — what prepare, deid --agreement and the
    app's preview share: the output table (in memory), its report, and the agreement's policy."""

    agreement: Agreement
    policy: Any
    table: Any
    report: Any
    mapping_how: str
    input_columns: int
    crosswalk: Any
    # The agreement's release secret when this run made it: stored with the crosswalk only once the run
    # succeeds, so a refused prepare leaves no secret (and no "secret.created") behind.
    new_secret: bytes | None = None
    input_columns_carried: int | None = None  # input columns that reach the output (None: not counted)

    def sealing_problems(self) -> list[SealingProblem]:
        """What keeps this output from being sealed (the one gate; empty: it may be sealed)."""
        return sealing_problems(self.agreement, self.policy, list(self.table.column_names), self.report)

    def audit_details(self) -> dict[str, Any]:
        r = self.report
        return {
            "mapping": self.mapping_how,
            "rows_in": r.rows_in,
            "rows_out": r.rows_out,
            "k_achieved": r.k_achieved,
            "suppressed_cells": r.suppressed_cells,
            # the disclosure search's choice (levels per quasi-identifier, loss, values withheld): counts
            # and names only, so the audit log says how the release was protected
            **(
                {
                    "levels": r.disclosure["levels"],
                    "loss": r.disclosure["loss"],
                    "rows_withheld": r.disclosure["rows_suppressed"],
                    "chosen_by_clerk": bool(getattr(self.policy.disclosure, "choice", None)),
                }
                if getattr(r, "disclosure", None)
                else {}
            ),
            "columns": list(self.table.column_names),
            # headers of the extract's columns whose values the notes were searched for (no values)
            "roster_columns": dict(r.roster_columns),
        }


def _deidentify_under(
    vault: Vault,
    src: Path,
    agreement_id: str,
    profile: str | None,
    accept_suggested: bool,
    sheet: str | None,
    today: date | None,
    step: Progress,
    *,
    full_rescan: bool,
    choice: dict[str, str] | None = None,
) -> AgreementRun:
    import dataclasses

    from deid import Roster, deidentify, read_table

    agreement = _check_provider(vault, agreement_id, today)
    # Before any work: refuses a missing linkage key. A new secret is only stored when the run succeeds.
    secret, crosswalk, new_secret = _release_secret(vault, agreement)
    own = new_secret or _own_release_secret(vault, agreement)
    step(0.0, "reading the extract")
    # A repeated header over different values (a second "Phone") is read as PHONE_2: the mapping
    # leaves it unmapped, so the agreement's drop-unlisted rule keeps it out of the output.
    table = read_table(src, sheet=sheet, duplicates="rename")
    step(0.08, "mapping columns onto the agreement's elements")
    mapping = map_for_agreement(
        vault, agreement, table, profile=profile, input_name=src.name, require_confirmed=not accept_suggested
    )
    policy = mapping.policy
    if choice and policy.disclosure is not None:
        # the clerk's pick among the candidates; the search refuses a level the agreement does not allow
        policy = dataclasses.replace(policy, disclosure=dataclasses.replace(policy.disclosure, choice=choice))
    input_columns = table.num_columns
    # The extract's columns that stay home (the output also has empty columns for elements the extract
    # lacks, so its width says nothing about this): counted once here, shown everywhere from the report.
    mapped = mapping.profile.mapped
    left_out = columns_left_out(agreement, {h: mapped.get(h) for h in table.column_names})
    carried = input_columns - len(left_out)
    # The roster comes from the extract as read, not from the mapped view: a column the agreement
    # drops or never maps ("Guardian Name") still names people the notes must not.
    roster = Roster.from_table(table)
    del table
    out_table, report = deidentify(
        mapping.table,
        policy,
        secret=secret,
        crosswalk=crosswalk,
        progress=lambda f, m: step(0.1 + 0.6 * f, m),
        input_name=src.name,
        reference_date=today,
        full_rescan=full_rescan,  # the seal gate needs every row scanned, not a sample
        roster=roster,
        # our own release secret (never the consortium's): link-token dummies repeat across our releases
        dummy_secret=own,
        group_codes=_group_codes(agreement, mapping.policy),
    )
    report.input = src.name
    report.extract_columns, report.extract_columns_left_out = input_columns, len(left_out)
    report.left_out_headers = left_out
    # IDs the mapping padded because the agreement's element says so (repair: zfill): the report says so.
    report.notes.extend(f.message.rstrip(".") for f in mapping.findings if f.kind == "lost_zeros")
    return AgreementRun(
        agreement,
        policy,
        out_table,
        report,
        mapping.how,
        input_columns,
        crosswalk,
        new_secret,
        min(carried, input_columns),
    )


def columns_left_out(agreement: Agreement, mapping: Mapping[str, str | None]) -> list[str]:
    """The extract's headers (``mapping``: header → element, or None when unmapped) whose values are not
    shared under ``agreement``: unmapped, mapped onto an element it does not list, or onto one it drops
    (names, IDs). The one rule behind every count of left-out columns (the app's steps, prepare's
    summary, the report the recipient reads)."""
    treatments = agreement.element_treatments()
    shared: set[str] = set()
    out = []
    for header, element in mapping.items():
        spec = treatments.get(element or "")
        if spec is None or spec["treatment"] == "drop" or element in shared:
            out.append(header)  # (a second column onto the same element is not shared either)
        else:
            shared.add(str(element))
    return out


def _group_codes(agreement: Agreement, policy: Any) -> dict[str, dict[str, str]]:
    """{quasi-identifier output column: {code: label} of its element's closed code set (and the value
    rare codes are recoded to)}: the groups the report may name when it counts suppression by group,
    with the words the warnings name them by."""
    from deid import dictionary_elements

    elements = {e.name: e for e in dictionary_elements(agreement.body.get("elements") or [])}
    out: dict[str, dict[str, str]] = {}
    for rule in policy.rules:
        el = elements.get(rule.source)
        if not rule.quasi_identifier or rule.output_name is None or el is None or not el.code_set:
            continue
        codes = {c.code: c.label for c in el.code_set}
        if rule.treatment == "recode_rare" and rule.params.get("other"):
            other = str(rule.params["other"])
            codes.setdefault(other, other)
        out[rule.output_name] = codes
    return out


def _check_provider(vault: Vault, agreement_id: str, today: date | None) -> Agreement:
    agreement = require_in_force(vault, agreement_id, today)
    if our_card(vault).fingerprint() not in {p.fingerprint for p in agreement.providers()}:
        raise AgreementError(
            f"This organization is not a provider in agreement {agreement.id} ({agreement.title}); "
            "only providers may send data under it."
        )
    from agreements._partners import party_card

    for party in agreement.recipients():  # a revoked recipient is refused before any work is done
        party_card(vault, party, "seal a package for")
    return agreement


@dataclass(frozen=True)
class SealingProblem:
    """One reason an output may not be sealed under its agreement. ``kind``: ``columns`` (a column the
    agreement does not list), ``k`` (groups smaller than the agreement's k), ``suppression``, ``l`` or
    ``t`` or ``fairness`` (the disclosure search's result short of the agreement), ``residual`` (identifying
    text left) or ``unchecked_text`` (notes that cannot be checked for the students' own names)."""

    kind: str
    message: str  # one phrase, without a final full stop


def sealing_problems(
    agreement: Agreement, policy: Any, columns: list[str], report: Any
) -> list[SealingProblem]:
    """Every reason the output (its ``columns`` and de-identification ``report``) may not leave under
    ``agreement`` — the one sealing gate: ``prepare`` refuses on the first, the app's preview lists
    them all and keeps sealing disabled while there is any. Empty: it may be sealed."""
    from deid import SUPPRESSED_COLUMN

    problems: list[SealingProblem] = []
    allowed = {r.output_name for r in policy.rules if r.treatment != "drop"}
    disclosure = getattr(report, "disclosure", None)
    if disclosure:
        allowed.add(SUPPRESSED_COLUMN)  # says which rows had their quasi-identifiers withheld
    extra = [c for c in columns if c not in allowed]
    if extra:
        problems.append(
            SealingProblem(
                "columns",
                f"The output holds columns agreement {agreement.id} does not list ({', '.join(extra)})",
            )
        )
    k_required = agreement.terms.policy.k
    # k_achieved is None when every row had a quasi-identifier blanked: the engine's suppression then
    # still guarantees classes of at least k (an empty cell counts as a value), so only a number counts.
    # (The app's preview once kept Next disabled in that case while prepare sealed: this rule is kept.)
    if report.quasi_identifiers and (
        report.k_required < k_required or (report.k_achieved or k_required) < k_required
    ):
        problems.append(
            SealingProblem(
                "k", f"k-anonymity is {report.k_achieved} but agreement {agreement.id} requires {k_required}"
            )
        )
    if disclosure:
        problems.extend(_disclosure_problems(agreement, disclosure))
    findings = report.residual_findings
    if findings or report.residual_findings_total:
        total = report.residual_findings_total or len(findings)
        problems.append(
            SealingProblem(
                "residual",
                f"The residual scan found {total:,} piece(s) of identifying text in the output: "
                f"{_where(findings)}",
            )
        )
    unchecked = list(getattr(report, "text_unchecked", None) or [])
    if unchecked:
        problems.append(
            SealingProblem(
                "unchecked_text",
                f"The notes in {', '.join(unchecked)} cannot be checked for the students' own names: the "
                "extract has no column of people's names (include them; they are never sent)",
            )
        )
    return problems


def _gate(agreement: Agreement, policy: Any, columns: list[str], report: Any) -> None:
    """Refuse, saying exactly why, unless the output may leave under ``agreement``."""
    problems = sealing_problems(agreement, policy, columns, report)
    if problems:
        raise CheckFailed(f"{problems[0].message}; nothing was sealed.")


def _disclosure_problems(agreement: Agreement, result: dict[str, Any]) -> list[SealingProblem]:
    """What the agreement requires of the disclosure search's result (deid.DisclosureResult), as measured
    on the output: k over the released rows, suppression within the limit, l and t per sensitive element,
    and — when the agreement requires fairness — no group warned about."""
    policy = agreement.terms.policy
    out: list[SealingProblem] = []
    k_got = result.get("k_achieved")
    if k_got is not None and k_got < policy.k:
        out.append(
            SealingProblem("k", f"k-anonymity is {k_got} but agreement {agreement.id} requires {policy.k}")
        )
    limit = policy.suppression_limit
    rows = max(1, int(result.get("rows") or 0))
    if result.get("rows_suppressed", 0) > limit * rows + 1e-9:
        out.append(
            SealingProblem(
                "suppression",
                f"{result['rows_suppressed']:,} of {rows:,} students were withheld, more than agreement "
                f"{agreement.id} allows ({limit:.0%})",
            )
        )
    for name in policy.sensitive:
        column = agreement.element_treatments()[name]["as"]
        if policy.l is not None:
            got = (result.get("l_achieved") or {}).get(column)
            if got is None or got < policy.l:
                out.append(
                    SealingProblem(
                        "l",
                        f"{column} shows {got} different value(s) in some group of students, but agreement "
                        f"{agreement.id} requires {policy.l} ({policy.l_kind} l-diversity)",
                    )
                )
        if policy.t is not None:
            got_t = (result.get("t_achieved") or {}).get(column)
            if got_t is None or got_t > policy.t + 1e-9:
                out.append(
                    SealingProblem(
                        "t",
                        f"{column} differs by {got_t} from the whole release in some group of students, but "
                        f"agreement {agreement.id} allows at most t = {policy.t}",
                    )
                )
    warned = result.get("warnings") or []
    if policy.fairness == "require" and warned:
        out.append(
            SealingProblem(
                "fairness",
                f"{len(warned)} group(s) of students lose a value more than twice as often as their column "
                f"({warned[0].split(':')[0]} first), but agreement {agreement.id} requires that none does",
            )
        )
    return out


_ROWS_NAMED = 10  # row numbers named per kind and column in a refusal


def _where(findings: list[Any]) -> str:
    """"PERSON in column notes, data rows 3, 17 and 40 of the extract; …" — kinds, columns and row
    numbers (the extract's data rows), never the text found."""
    groups: dict[tuple[str, str], list[int]] = {}
    for f in findings:
        groups.setdefault((f.kind, f.column), []).append(int(f.row))
    parts = []
    for (kind, column), rows in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        rows = sorted(set(rows))
        shown = ", ".join(str(r) for r in rows[:_ROWS_NAMED])
        more = f" and {len(rows) - _ROWS_NAMED:,} more" if len(rows) > _ROWS_NAMED else ""
        parts.append(f"{kind} in column {column}, data row{'s' if len(rows) > 1 else ''} {shown}{more}")
    return ("; ".join(parts) + " of the extract") if parts else "rows not listed"


def _seal_table(
    vault: Vault,
    agreement: Agreement,
    table: Any,
    data_name: str,
    report: Any,
    out: Path,
    today: date | None,
    now: datetime | None,
    step: Progress,
    force: bool,
) -> SealedPackage:
    """Write ``table`` to a private staging file beside ``out``, seal it, and always remove it."""
    from agreements._clock import utc_text
    from agreements._release_kit import release_kit
    from deid import write_release

    check_output_path(out, force=force, recorded=output_rule(vault))
    staging = Path(tempfile.mkdtemp(prefix=".pathshare-staging-", dir=out.parent))  # mode 0700
    try:
        data = staging / data_name
        step(0.72, "writing the de-identified file")
        # Rows in a fresh random order, never the extract's; hashed as written, so sealing reads once;
        # a CSV starts with a BOM so that Excel keeps the accents (a workbook types its text columns).
        digest = write_release(table, data, bom=True)
        report.output_sha256 = None  # the manifest carries the hash of what is sealed
        leaving = report.for_recipient()
        created = utc_text(now)  # as the manifest says it
        kit = release_kit(
            agreement, leaving, data_name, sender=our_card(vault).org, created=created, rows=table.num_rows
        )
        files: list[Any] = [(data_name, data, table.num_rows, digest)]
        for name, body in kit.items():
            (staging / name).write_bytes(body)
            files.append((name, staging / name, None))
        return seal_for_agreement(
            vault,
            agreement.id,
            files,
            leaving,
            out,
            today=today,
            now=now,
            progress=lambda f, m: step(0.75 + 0.24 * f, m),
            force=force,
        )
    finally:
        for p in staging.iterdir():
            with contextlib.suppress(OSError):
                p.unlink()
        with contextlib.suppress(OSError):
            staging.rmdir()


def _own_release_secret(vault: Vault, agreement: Agreement) -> bytes:
    """The agreement's release secret as stored in this vault: this provider's own, never shared with
    partners (not the consortium's linkage secret). Called once :func:`_release_secret` made or found it."""
    row = vault.db.execute(
        "SELECT secret FROM release_secrets WHERE agreement_id = ?", (agreement.id,)
    ).fetchone()
    return bytes(row[0])


def _release_secret(vault: Vault, agreement: Agreement) -> tuple[bytes, Any, bytes | None]:
    """The secret keying tokens, the crosswalk, and the agreement's own release secret when it is new
    (made here on first use, stored by :func:`_store_crosswalk` when the run succeeds; else None).

    With linkage scope "consortium" the shared secret (delivered to each provider) keys tokens, so
    partners' tokens agree; record codes always use this provider's own crosswalk.
    """
    from deid import Crosswalk

    row = vault.db.execute(
        "SELECT secret, crosswalk FROM release_secrets WHERE agreement_id = ?", (agreement.id,)
    ).fetchone()
    new: bytes | None = None
    if row is None:
        secret = new = secrets.token_bytes(32)
        crosswalk = Crosswalk()
    else:
        secret = bytes(row[0])
        crosswalk = (
            Crosswalk.from_bytes(bytes(row[1]), secret, name="the vault's crosswalk")
            if row[1]
            else Crosswalk()
        )
    shared = _consortium_secret(vault, agreement)
    return (shared or secret), crosswalk, new


def _consortium_secret(vault: Vault, agreement: Agreement) -> bytes | None:
    """The consortium linkage secret when the agreement's scope is "consortium" (refused when this
    vault does not hold it yet: tokens keyed otherwise would silently never link); else None."""
    from agreements._linkage_store import linkage_secret

    if agreement.terms.policy.linkage_scope != "consortium":
        return None
    secret = linkage_secret(vault, agreement)
    if secret is None:
        raise AgreementError(
            f"Agreement {agreement.id} links records across partners, but this vault does not hold its "
            "linkage key yet; import the key file the key holder sent.",
            "Import the linkage key file.",
            action="import_linkage_key",
        )
    return secret


def _store_crosswalk(vault: Vault, run: AgreementRun) -> None:
    """Keep the (possibly grown) crosswalk, encrypted under the agreement's own release secret; store
    that secret first when the run made it."""
    agreement, crosswalk = run.agreement, run.crosswalk
    with vault.transaction() as conn:
        row = conn.execute(
            "SELECT secret FROM release_secrets WHERE agreement_id = ?", (agreement.id,)
        ).fetchone()
        if run.new_secret is not None:
            if row is not None:
                # Another prepare under this agreement stored its secret meanwhile: our codes differ.
                raise AgreementError(
                    f"Another run under agreement {agreement.id} created its release secret at the same "
                    "time; nothing was kept from this one. Run it again."
                )
            stamp = utc_now()
            conn.execute(
                "INSERT INTO release_secrets(agreement_id, secret, crosswalk, created, updated) "
                "VALUES (?, ?, ?, ?, ?)",
                (agreement.id, run.new_secret, crosswalk.to_bytes(run.new_secret), stamp, stamp),
            )
            vault.audit.append(
                "secret.created", agreement=agreement.id, details={"scope": "provider"}, conn=conn
            )
            run.new_secret = None  # stored: a second call (preview, then seal) only updates
            return
        own = bytes(row[0])
        conn.execute(
            "UPDATE release_secrets SET crosswalk = ?, updated = ? WHERE agreement_id = ?",
            (crosswalk.to_bytes(own), utc_now(), agreement.id),
        )


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "extract"


