"""Link two de-identified files on their link tokens, as a vault workflow that audits itself.

The CLI (``pathshare link``) and the app's Link page both call :func:`link_files`: it refuses to write
over a file the vault answers for, joins the two files with ``deid.link`` and records one audit entry,
``linkage.linked``, saying what was linked — each file's name and, when it lies in a folder a package
was opened into, that package and its agreement — how (the method) and how many rows linked. Never a
token, an identifier or a value from the files: only names of files, ids and counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._recorded import RECEIVED, output_rule
from agreements._vault import Vault
from deid import check_distinct_files, check_output_path

if TYPE_CHECKING:
    from deid import Links

AUDIT_ACTION = "linkage.linked"


@dataclass(frozen=True)
class LinkedSource:
    """Where one linked file came from: its name, and the opened package holding it (if any)."""

    file: str
    package: str | None = None
    agreement: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "package": self.package, "agreement": self.agreement}


def linked_source(vault: Vault, path: str | os.PathLike[str]) -> LinkedSource:
    """``path``'s name, and the received package it belongs to when it lies in the folder that package
    was opened into (and not destroyed since)."""
    target = Path(path).resolve()
    rows = vault.db.execute(
        "SELECT package_id, agreement_id, location FROM packages "
        "WHERE direction = ? AND destroyed_at IS NULL ORDER BY recorded",
        (RECEIVED,),
    ).fetchall()
    for package_id, agreement_id, location in rows:
        if location and Path(location).resolve() in target.parents:
            return LinkedSource(target.name, str(package_id), str(agreement_id))
    return LinkedSource(target.name)


def link_files(
    vault: Vault,
    file_a: str | os.PathLike[str],
    file_b: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    report: str | os.PathLike[str] | None = None,
    method: str = "combined",
    columns: tuple[str | None, str | None] = (None, None),
    force: bool = False,
    chart: str | os.PathLike[str] | None = None,
    memory_mb: int | None = None,
) -> Links:
    """Link ``file_a`` and ``file_b`` on their link tokens into ``out`` (and the JSON ``report``), then
    audit ``linkage.linked``. A file the vault recorded (a sealed package, a receipt, an opened package's
    files) is never replaced; nothing is audited when the link fails (nothing was written)."""
    from deid import link  # the linkage engine (numpy, pyarrow): loaded when a link is made

    # deid.link checks these too; here first so that its sentences win over the vault's output rule.
    check_distinct_files(
        [("file A", file_a), ("file B", file_b)],
        [("the linked file", out), ("the report", report), ("the chart", chart)],
    )
    rule = output_rule(vault)
    for target in (out, report, chart):
        if target is not None:
            check_output_path(target, force=force, recorded=rule)
    sources = (linked_source(vault, file_a), linked_source(vault, file_b))
    links = link(file_a, file_b, out, report=report, method=method, columns=columns, force=force,
                 chart=chart, memory_mb=memory_mb)  # fmt: skip
    r = links.report
    agreements = {s.agreement for s in sources if s.agreement}
    vault.audit.append(
        AUDIT_ACTION,
        # The entry names the agreement when the linked packages share one (the usual case: the
        # agreement whose linkage secret made both files' tokens).
        agreement=next(iter(agreements)) if len(agreements) == 1 else None,
        details={
            "file_a": sources[0].file,
            "file_b": sources[1].file,
            "packages": [s.package for s in sources if s.package],
            "agreements": sorted(agreements),
            "method": r.method,
            "rows_a": r.rows_a,
            "rows_b": r.rows_b,
            "linked": r.linked,
            "linked_by": dict(r.linked_by),
            "output": Path(out).name,
        },
    )
    return links
