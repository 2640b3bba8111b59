"""Pathway outcomes under an agreement: compute the catalog's metrics on opened packages and release
tables that are safe to publish (``pathshare outcomes``, the app's Outcomes page).

:func:`release_outcomes` does it all, refusing with one sentence and writing nothing unless:

* every folder is a package this vault opened (its manifest names a received package), and all were
  sent under the same agreement;
* the metrics' elements are in the packages, and every breakdown is one the metric allows and the
  agreement shares (an element the agreement lists and does not drop);
* the tables can be protected (primary and complementary suppression, the attacker check: see
  ``deid._outcomes``) at the agreement's smallest reported cell;
* combined with every earlier release under the same agreement, no hidden cell and no small part of a
  cell can be worked out (the differencing check).

Packages are linked on their link tokens (the linkage engine, ``deid.link_tables``) when there are
two or more; the first package's rows are the students counted, the others add their outcomes.

The vault keeps each release (migration 60): its published tables and, per metric, keyed digests of
the record codes of its cohort — what the differencing check needs, never the codes themselves (the
digest key stays in the vault). The release is audited as ``outcomes.released``: a disclosure of
aggregate data (what, how much was hidden, under which agreement), never a count or a code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._agreement import Agreement
from agreements._clock import utc_text
from agreements._measures import released_columns
from agreements._package_store import get_package
from agreements._recorded import RECEIVED
from agreements._release_kit import is_kit_file
from agreements._stored_agreements import get_agreement
from agreements._vault import Vault
from agreements.errors import AgreementError, PackageRejected
from deid.errors import CheckFailed, InputError, OutputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from deid import Catalog, LinkedData, Metric, OutcomeTable, Protection, Tables

Progress = Callable[[float, str], None]
_KEY_SETTING = "outcomes_digest_key"
_ID_TREATMENTS = ("record_code", "token", "link_tokens")


def _noop(_fraction: float, _message: str) -> None:
    pass


@dataclass(frozen=True)
class OpenedData:
    """The opened packages of one agreement, as one frame with a column per element."""

    agreement: Agreement
    package_ids: tuple[str, ...]
    frame: pd.DataFrame
    keys: pa.ChunkedArray  # each row's student key (record code or tokens of the counted package)
    linked: int  # rows of the first package linked to another package's row


@dataclass(frozen=True)
class OutcomeRelease:
    """A release that was written and recorded."""

    release_id: str
    agreement: Agreement
    tables: list[OutcomeTable]
    protection: Protection
    files: tuple[Path, ...]
    folder: Path
    students: int
    linked: int

    def summary(self) -> str:
        p = self.protection
        return (
            f"{len(self.tables)} table(s) for {len({t.metric for t in self.tables})} metric(s) on "
            f"{self.students:,} students; {p.primary} count(s) under the smallest reported cell hidden, "
            f"{p.complementary} more hidden so they cannot be worked out ({p.describe()}); every hidden "
            f"count keeps an interval of at least {p.smallest_interval:g} students"
        )


# ------------------------------------------------------------------------------- opened packages


def _manifest(folder: Path) -> dict[str, Any]:
    from deid import read_json_file

    path = folder / "manifest.json"
    if not folder.is_dir() or not path.is_file():
        raise InputError(
            f"{folder} is not an opened package (it has no manifest.json); open the package first."
        )
    doc = read_json_file(path, str(path), what="a package manifest")
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("package_id"), str)
        or not isinstance(doc.get("files"), list)
    ):
        raise InputError(f"{path} is not a PathShare package manifest.")
    return doc


@dataclass(frozen=True)
class _Packages:
    """Opened packages of one agreement, checked: their data files, and how their columns are named."""

    agreement: Agreement
    ids: tuple[str, ...]
    files: list[list[Path]]
    names: list[str]
    to_element: dict[str, str]  # a released column -> its element
    key_columns: list[str]  # the columns that may tell the first package's students apart


def _packages(vault: Vault, folders: Sequence[str | Path]) -> _Packages:
    """Check that every folder is a package this vault opened, all under one agreement, with its data
    files; one sentence otherwise."""
    if not folders:
        raise InputError("Name at least one opened package folder.")
    agreement: Agreement | None = None
    files: list[list[Path]] = []
    ids = []
    for f in folders:
        folder = Path(f)
        doc = _manifest(folder)
        try:
            record = get_package(vault, doc["package_id"], RECEIVED)
        except PackageRejected:
            raise InputError(
                f"{folder} holds a package this vault did not open; open it with PathShare first."
            ) from None
        if record.destroyed_at:
            raise InputError(f"The package in {folder} was destroyed; its data can no longer be used.")
        a = get_agreement(vault, record.agreement_id)
        if agreement is None:
            agreement = a
        elif a.id != agreement.id:
            raise InputError(
                f"The packages were sent under different agreements ({agreement.title}; {a.title}); "
                "outcomes combine packages of one agreement only."
            )
        parts = []
        for entry in doc["files"]:
            name = str(entry.get("name", "")) if isinstance(entry, dict) else ""
            if is_kit_file(name):
                continue  # the analyst's datapackage.json, codebook, report and loaders: not data
            path = folder / "data" / name
            if not name or not path.is_file():
                raise InputError(
                    f"{folder} lacks its data file {name or '(unnamed)'}; open the package again."
                )
            parts.append(path)
        if not parts:
            raise InputError(f"{folder} holds no data file; open the package again.")
        files.append(parts)
        ids.append(doc["package_id"])
    assert agreement is not None
    columns = released_columns(agreement)
    id_cols = [columns[e.name] for e in agreement.terms.elements
               if e.treatment in _ID_TREATMENTS and e.name in columns]  # fmt: skip
    return _Packages(
        agreement, tuple(ids), files, [str(f) for f in folders],
        {col: name for name, col in columns.items()}, id_cols,
    )  # fmt: skip


def open_packages(
    vault: Vault,
    folders: Sequence[str | Path],
    *,
    engine: str = "duckdb",
    memory_mb: int | None = None,
    spill_dir: str | Path | None = None,
) -> tuple[Agreement, tuple[str, ...], LinkedData]:
    """Opened packages of one agreement read, linked and merged on DuckDB (``deid.open_linked``: out of
    core within ``memory_mb``, in a private folder made in ``spill_dir``): the agreement, the package
    ids and the linked data (close it, or use it as a context manager)."""
    from deid import open_linked

    pk = _packages(vault, folders)
    data = open_linked(
        pk.files, pk.names, pk.to_element, pk.key_columns, engine=engine, memory_mb=memory_mb,
        spill_dir=spill_dir,
    )  # fmt: skip
    return pk.agreement, pk.ids, data


def load_opened(
    vault: Vault,
    folders: Sequence[str | Path],
    *,
    engine: str = "duckdb",
    memory_mb: int | None = None,
) -> OpenedData:
    """Read opened packages of one agreement into one frame (linked on their link tokens), in memory.

    The releases run on :func:`open_packages` (DuckDB); this path — each data file read whole into
    Arrow, linked on ``engine``, the frame held as categories — stays for tests and as the benchmarks'
    baseline (the two count the same tables: tests/test_outcome_db.py)."""
    import pyarrow as pa

    from deid import read_table

    pk = _packages(vault, folders)
    tables: list[pa.Table] = []
    for parts, where in zip(pk.files, pk.names, strict=True):
        read = [read_table(p) for p in parts]
        try:
            tables.append(pa.concat_tables(read) if len(read) > 1 else read[0])
        except (pa.ArrowInvalid, ValueError):
            raise InputError(f"The data files in {where} do not share their columns.") from None

    def key_column(table: pa.Table, where: str) -> str:
        for c in (*pk.key_columns, "link_tokens"):
            if c in table.column_names:
                return c
        raise InputError(f"{where} has no record code or link tokens to tell its students apart.")

    first = tables[0]
    key_col = key_column(first, pk.names[0])
    merged, linked = link_frames(tables, pk.names, pk.to_element, engine=engine, memory_mb=memory_mb)
    return OpenedData(pk.agreement, pk.ids, merged, first.column(key_col), linked)


def link_frames(
    tables: Sequence[pa.Table],
    names: Sequence[str],
    to_element: dict[str, str],
    *,
    engine: str = "duckdb",
    memory_mb: int | None = None,
) -> tuple[pd.DataFrame, int]:
    """One frame with a column per element: the first package's rows (the students counted), each
    other package's columns filled in on the rows its link tokens link to (``deid.link_tables`` on
    ``engine``, one to one); where both have an element, the first package's value wins and the other
    fills its gaps. Link-token columns are left out and every column comes as categories.
    Returns the frame and the most rows linked to any one other package."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from deid import find_token_column, link_tables

    first = tables[0]
    n = first.num_rows
    linked = 0
    drop: set[str] = set()
    merged: dict[str, pa.ChunkedArray] = {}
    ca = find_token_column(first, names[0]) if len(tables) > 1 else None
    if ca is not None:
        drop.add(ca)
    elif "link_tokens" in first.column_names:
        drop.add("link_tokens")
    for col in first.column_names:
        if col not in drop:
            merged[to_element.get(col, col)] = first.column(col)
    for other, where in zip(tables[1:], names[1:], strict=True):
        cb = find_token_column(other, where)
        links = link_tables(
            first.column(ca), other.column(cb), names=(names[0], where), engine=engine, memory_mb=memory_mb
        )
        linked = max(linked, len(links.row_a))
        # Row i of the first package takes row at[i] of this one (null: not linked).
        at = np.full(n, -1, dtype=np.int64)
        at[np.asarray(links.row_a, dtype=np.int64)] = np.asarray(links.row_b, dtype=np.int64)
        take = pa.array(at, mask=at < 0)
        for col in other.column_names:
            if col == cb:
                continue
            name = to_element.get(col, col)
            fill = other.column(col).take(take)
            have = merged.get(name)
            if have is None:
                merged[name] = fill
                continue
            if have.type != fill.type:
                have, fill = have.cast(pa.string()), fill.cast(pa.string())
            keep = pc.is_valid(have)
            if pa.types.is_string(have.type) or pa.types.is_large_string(have.type):
                # Kleene: a missing value is not kept (plain and_ gave null there, and if_else then
                # left the blank unfilled: read_table reads an empty cell as missing)
                keep = pc.and_kleene(keep, pc.not_equal(have, ""))
            merged[name] = pc.if_else(keep, have, fill)
    frame = pa.table(
        {k: pc.dictionary_encode(v) if pa.types.is_string(v.type) or pa.types.is_large_string(v.type) else v
         for k, v in merged.items()}
    ).to_pandas()  # fmt: skip
    return frame, linked


# ------------------------------------------------------------------------------- the vault's releases


def _digest_key(vault: Vault) -> bytes:
    value = vault.get_setting(_KEY_SETTING)
    if value is None:
        value = secrets.token_hex(32)
        vault.set_setting(_KEY_SETTING, value)
    return bytes.fromhex(value)


def _digests(key: bytes, agreement_id: str, codes: Iterable[pa.Array]) -> list[str]:
    """Keyed digests of the student keys, in row order; ``codes``: the keys batch by batch (a
    ChunkedArray's chunks, or ``LinkedData.keys()``), so a million link-token cells are never all
    Python strings at once."""
    salt = agreement_id.encode()
    return [hmac.new(key, salt + b"\0" + str(c).encode(), hashlib.sha256).hexdigest()[:16]
            for chunk in codes for c in chunk.to_pylist()]  # fmt: skip


@dataclass(frozen=True)
class StoredRelease:
    release_id: str
    created: str
    document: dict[str, Any]
    members: dict[str, list[str]]  # metric id -> digests of the cohort's record codes


def list_releases(vault: Vault, agreement_id: str | None = None) -> list[StoredRelease]:
    """The outcome releases this vault made (under one agreement), oldest first."""
    sql = "SELECT release_id, created, document, members FROM outcome_releases"
    args: tuple[str, ...] = ()
    if agreement_id is not None:
        sql += " WHERE agreement_id = ?"
        args = (agreement_id,)
    rows = vault.db.execute(sql + " ORDER BY created, release_id", args).fetchall()
    return [StoredRelease(r[0], r[1], json.loads(r[2]), json.loads(zlib.decompress(r[3]))) for r in rows]


# ------------------------------------------------------------------------------------ the workflow


def _labels(agreement: Agreement, by: Sequence[str]) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    from deid import load_elements

    lib = {e.name: e for e in load_elements()}
    labels: dict[str, dict[str, str]] = {}
    names: dict[str, str] = {}
    own = {e.name: e for e in agreement.terms.elements}
    for b in by:
        codes: dict[str, str] = {}
        if b in lib:
            names[b] = lib[b].label
            codes.update({c.code: c.label for c in lib[b].code_set})
        el = own.get(b)
        if el is not None and el.code_set is not None:
            codes.update({str(k): str(v) for k, v in el.code_set.codes.items()})
        labels[b] = codes
    return labels, names


def _protect_and_difference(
    vault: Vault,
    data: LinkedData,
    result: Tables,
    agreement_id: str,
    digests: list[str],
    chosen: Sequence[Metric],
    min_cell: int,
    protection: int,
    method: str,
    step: Progress,
) -> Protection:
    """Protect the tables (in place), keeping what an earlier release of the same cohort hid, then
    check them against every earlier release under the agreement (CheckFailed naming the cells)."""
    import numpy as np

    from deid import EarlierRelease, differencing_check, hidden_cells, protect, row_groups, row_outcomes

    earlier = []
    keep_hidden: list[tuple[str, str, str, str]] = []
    keep_shown: list[tuple[str, str, str, str]] = []
    index = {d: i for i, d in enumerate(digests)}
    for old in list_releases(vault, agreement_id):
        members, absent = {}, {}
        for mid, ds in old.members.items():
            mask = np.zeros(len(digests), bool)
            hit = [index[d] for d in ds if d in index]
            mask[hit] = True
            members[mid] = mask
            absent[mid] = len(ds) - len(hit)
            same = mid in result.metric_cohort and not absent[mid]
            if same and np.array_equal(mask, result.cohorts[result.metric_cohort[mid]]):
                # The same cohort again: what it hid stays hidden (else the two give each other away).
                keep_hidden += [c for c in hidden_cells(old.document["tables"]) if c[0] == mid]
                keep_shown += [c for c in hidden_cells(old.document["tables"], shown=True) if c[0] == mid]
        label = f"{old.created[:10]} ({old.release_id[:8]})"
        earlier.append(EarlierRelease(label, old.document["tables"], members, absent))
    del index
    step(0.5, "hiding small counts")
    prot = protect(
        result.tables, result.metric_cohort, min_cell, protection, method=method,
        keep_hidden=keep_hidden, keep_shown=keep_shown,
    )  # fmt: skip
    step(0.7, "checking against earlier releases")
    if earlier:
        groups = row_groups(data, list(dict.fromkeys(t.by for t in result.tables if t.by)))
        reached = row_outcomes(data, [m.id for m in chosen])
        found = differencing_check(result, groups, reached, earlier, min_cell, protection)
        if found:
            shown = "; ".join(found[:5]) + (f"; and {len(found) - 5} more" if len(found) > 5 else "")
            raise CheckFailed(
                "This release would reveal small counts when combined with an earlier release under the "
                f"same agreement: {shown}.",
                hint="Release the same cohort as before, or a cohort that differs by at least "
                f"{min_cell} students in every group.",
            )
    return prot


def release_outcomes(
    vault: Vault,
    packages: Sequence[str | Path],
    metrics: Sequence[str],
    by: Sequence[str],
    out: str | Path,
    *,
    formats: Sequence[str] = ("xlsx", "csv", "html", "pdf"),
    catalog: Catalog | None = None,
    method: str = "optimal",
    protection: int | None = None,
    progress: Progress | None = None,
    memory_mb: int | None = None,
) -> OutcomeRelease:
    """Compute, protect, check and write a release of outcome tables into the new folder ``out``.

    ``protection``: how many students wide the interval of every hidden count must stay (at least,
    and by default, the agreement's smallest reported cell). The packages are read, linked and counted
    on DuckDB (:func:`open_packages`) within ``memory_mb`` (default 1 GB), in a private folder beside
    ``out`` that is removed afterwards."""
    from deid import (
        OUTCOME_FORMATS,
        ReleaseInfo,
        breakdown_parts,
        check_computable,
        count_linked,
        load_catalog,
        write_release_files,
    )

    step = progress or _noop
    cat = catalog or load_catalog()
    if not metrics:
        raise InputError("Choose at least one metric.")
    if len({frozenset(b.split("*")) for b in by}) != len(by) or len(set(metrics)) != len(metrics):
        raise InputError("A metric or a breakdown is named twice.")
    bad = [f for f in formats if f not in OUTCOME_FORMATS]
    if bad or not formats:
        raise InputError(
            f"Unknown output format {bad[0] if bad else '(none)'}: use {', '.join(OUTCOME_FORMATS)}."
        )
    folder = Path(out)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(
            f"{folder} already exists and is not an empty folder; name a new folder for the tables."
        )
    if not folder.parent.is_dir():
        raise OutputError(f"The folder {folder.parent} does not exist.")
    chosen = [cat.get(m) for m in metrics]  # an unknown metric: one sentence, before any work
    step(0.05, "reading the opened packages")
    agreement, package_ids, data = open_packages(
        vault, packages, memory_mb=memory_mb, spill_dir=folder.parent
    )
    with data:
        check_computable(chosen, by, data.columns, allowed=released_columns(agreement))
        min_cell = agreement.terms.policy.min_cell_size
        if protection is None:
            protection = min_cell
        elif protection < min_cell:
            raise InputError(
                f"The protection ({protection}) cannot be less than the agreement's smallest reported cell "
                f"({min_cell})."
            )
        step(0.3, "counting")
        result = count_linked(data, metrics, by, cat)
        step(0.45, "reading earlier releases")
        digests = _digests(_digest_key(vault), agreement.id, data.keys())
        prot = _protect_and_difference(
            vault, data, result, agreement.id, digests, chosen, min_cell, protection, method, step,
        )  # fmt: skip
        students, linked = data.rows, data.linked
    step(0.8, "writing the tables")
    created = utc_text()
    labels, names = _labels(agreement, [p for b in by for p in breakdown_parts(b)])
    info = ReleaseInfo(
        title=f"Pathway outcomes — {agreement.title}",
        agreement=f"{agreement.title} ({agreement.id}, version {agreement.version})",
        catalog_version=cat.version,
        min_cell=min_cell,
        protection=protection,
        created=created,
        labels=labels,
        element_labels=names,
        chosen=prot.describe(),
    )
    release_id = str(uuid.uuid4())
    document = {
        "pathshare_outcomes": 1,
        "release_id": release_id,
        "agreement_id": agreement.id,
        "agreement_version": agreement.version,
        "catalog_version": cat.version,
        "metrics": list(metrics),
        "by": list(by),
        "min_cell": min_cell,
        "protection": protection,
        "created": created,
        "packages": list(package_ids),
        "tables": [t.to_dict() for t in result.tables],
    }
    members = {
        m.id: [d for d, inside in zip(digests, result.cohorts[m.cohort_key], strict=True) if inside]
        for m in chosen
    }
    parent = folder.parent
    tmp = Path(tempfile.mkdtemp(prefix=".outcomes-", dir=parent))
    try:
        files = write_release_files(tmp, result.tables, cat, info, formats)
        (tmp / "release.json").write_text(json.dumps(document, indent=1, ensure_ascii=False), "utf-8")
        files.append(tmp / "release.json")
        with vault.transaction() as conn:
            conn.execute(
                "INSERT INTO outcome_releases(release_id, agreement_id, created, document, members) "
                "VALUES (?, ?, ?, ?, ?)",
                (release_id, agreement.id, created, json.dumps(document),
                 zlib.compress(json.dumps(members).encode())),
            )  # fmt: skip
            vault.audit.append(
                "outcomes.released",
                agreement=agreement.id,
                details={
                    "disclosure": "aggregate",
                    "release": release_id,
                    "metrics": list(metrics),
                    "by": list(by),
                    "tables": len(result.tables),
                    "hidden_primary": prot.primary,
                    "hidden_complementary": prot.complementary,
                    "protection_method": prot.method,
                    "protection_note": prot.note,
                    "min_cell": min_cell,
                    "packages": list(package_ids),
                    "folder": folder.name,
                },
                conn=conn,
            )
            if folder.exists():
                folder.rmdir()  # empty (checked above); replaced by the finished folder
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    step(1.0, "released")
    return OutcomeRelease(
        release_id, agreement, result.tables, prot,
        tuple(folder / f.name for f in files), folder, students, linked,
    )  # fmt: skip


# ------------------------------------------------------------------- sealing tables back to partners


@dataclass(frozen=True)
class SealedTables:
    """A release of tables sealed for the agreement's other parties."""

    package_id: str
    release_id: str
    path: Path
    recipients: tuple[str, ...]  # organization names


def _release_in(vault: Vault, folder: Path) -> tuple[dict[str, Any], StoredRelease]:
    from deid import read_json_file

    path = folder / "release.json"
    if not path.is_file():
        raise InputError(f"{folder} is not a folder of outcome tables (it has no release.json).")
    doc = read_json_file(path, str(path), what="a release of outcome tables")
    rid = doc.get("release_id") if isinstance(doc, dict) else None
    stored = next((r for r in list_releases(vault) if r.release_id == rid), None)
    if stored is None or stored.document != doc:
        raise InputError(
            f"The tables in {folder} are not a release this vault made (or were changed since); "
            "only tables PathShare checked can be sealed."
        )
    return doc, stored


def seal_outcomes(
    vault: Vault, folder: str | Path, out: str | Path, *, today: Any = None, force: bool = False
) -> SealedTables:
    """Seal a release folder (as :func:`release_outcomes` wrote it, unchanged) for every other party of
    its agreement, signed by us: an age package of aggregate tables. Refused unless the release is one
    this vault made and kept, and the agreement is in force with us a party. Audited
    (``package.sealing``, then ``outcomes.sealed``: an aggregate disclosure to those parties)."""
    from agreements._agreement_store import require_in_force
    from agreements._identity import our_card, signing_key
    from agreements._partners import party_card
    from agreements._recorded import output_rule
    from agreements._seal import seal

    src = Path(folder)
    doc, _stored = _release_in(vault, src)
    agreement = require_in_force(vault, doc["agreement_id"], today)
    me = our_card(vault).fingerprint()
    if agreement.party(me) is None:
        raise InputError(f"This organization is not a party to agreement {agreement.id}.")
    others = [p for p in agreement.all_parties() if p.fingerprint != me]
    recipients = [party_card(vault, p, "seal outcome tables for").age_recipient for p in others]
    names = sorted(f.name for f in src.iterdir() if f.is_file())
    allowed = {"outcomes.xlsx", "outcomes.csv", "datapackage.json", "outcomes.html", "outcomes.pdf",
               "release.json"}
    if not set(names) <= allowed:
        raise InputError(
            f"{src} holds files that are not the release's tables: {', '.join(sorted(set(names) - allowed))}."
        )
    fps = [p.fingerprint for p in others]

    def commit_head(package_id: str, content_hash: str) -> Any:
        return vault.audit.commit_package(package_id, agreement.id, content_hash, fps)

    report = {"pathshare_outcomes": 1, "aggregate": True, "release_id": doc["release_id"],
              "tables": len(doc["tables"]), "min_cell": doc["min_cell"]}  # fmt: skip
    manifest = seal(
        [(n, src / n) for n in names],
        report,
        agreement_id=agreement.id,
        agreement_hash=agreement.sha256,
        sender_key=signing_key(vault),
        sender_fingerprint=me,
        recipients=recipients,
        audit_head=commit_head,
        out=Path(out),
        force=force,
        recorded=output_rule(vault),
    )
    vault.audit.append(
        "outcomes.sealed",
        agreement=agreement.id,
        package=manifest.package_id,
        details={
            "disclosure": "aggregate",
            "release": doc["release_id"],
            "recipients": fps,
            "file": Path(out).name,
        },
    )
    return SealedTables(manifest.package_id, doc["release_id"], Path(out), tuple(p.org for p in others))


@dataclass(frozen=True)
class ReceivedTables:
    """Outcome tables a partner sealed for us, opened and checked."""

    folder: Path
    sender: str
    agreement: Agreement
    release_id: str
    tables: int


def open_outcomes(
    vault: Vault, package: str | Path, out_dir: str | Path, *, today: Any = None
) -> ReceivedTables:
    """Open outcome tables a partner sealed under an agreement we are party to, into ``out_dir`` —
    and check them ourselves from what they publish (``deid.verify_published``: no count under the
    smallest cell shown, no hidden count recoverable). Refused (PackageRejected, nothing left in
    ``out_dir``) otherwise. Audited as ``outcomes.received``."""
    from agreements._agreement_store import require_in_force
    from agreements._identity import age_identity, our_card
    from agreements._open_package import open_package
    from agreements._signing import load_public_key
    from agreements._stored_agreements import agreement_by_hash
    from agreements._workflows import trusted_sender
    from deid import verify_published

    seen: dict[str, Any] = {}
    me = our_card(vault)

    def verify_sender(manifest: Any) -> Any:
        seen["sender"] = trusted_sender(vault, manifest)
        return load_public_key(seen["sender"].card.signing_key)

    def check_manifest(manifest: Any) -> None:
        a = agreement_by_hash(vault, manifest.agreement_hash)
        if a is None or a.id != manifest.agreement_id:
            raise PackageRejected("The tables were sealed under an agreement this vault does not hold.")
        try:
            require_in_force(vault, a.id, today)
        except AgreementError as exc:
            raise PackageRejected(str(exc)) from exc
        if a.party(seen["sender"].fingerprint) is None or a.party(me.fingerprint()) is None:
            raise PackageRejected(
                f"The sender and this organization are not both parties to agreement {a.id}."
            )
        if me.age_recipient not in manifest.recipients:
            raise PackageRejected("The tables were not sealed for this organization.")
        seen["agreement"] = a

    opened = open_package(
        Path(package), age_identity(vault), Path(out_dir), verify_sender=verify_sender,
        check_manifest=check_manifest,
    )  # fmt: skip
    folder = opened.out_dir
    try:
        from deid import read_json_file

        doc = read_json_file(folder / "data" / "release.json", "release.json", what="a release of tables")
        agreement = seen["agreement"]
        min_cell = agreement.terms.policy.min_cell_size
        if not isinstance(doc, dict) or doc.get("agreement_id") != agreement.id:
            raise PackageRejected("The tables name another agreement than the package they came in.")
        problems = verify_published(doc["tables"], min_cell)
        if problems:
            raise PackageRejected(
                f"The tables are not safe to keep: {'; '.join(problems[:3])}; tell the sender."
            )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    vault.audit.append(
        "outcomes.received",
        agreement=agreement.id,
        partner=seen["sender"].fingerprint,
        package=opened.manifest.package_id,
        details={"disclosure": "aggregate", "release": doc.get("release_id"), "tables": len(doc["tables"])},
    )
    return ReceivedTables(
        folder, seen["sender"].card.org, agreement, str(doc.get("release_id")), len(doc["tables"])
    )
