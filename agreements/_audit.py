"""The audit log: append-only, hash-chained, with signed checkpoints and exportable bundles.

Each entry's ``hash`` is the SHA-256 (hex) of the RFC 8785 canonical JSON of::

    {"seq": n, "time": "…Z", "actor": "user (Org)", "action": "…", "agreement": id|null,
     "partner": fingerprint|null, "package": id|null, "details": {…}, "prev_hash": "<hash of entry n-1>"}

with ``prev_hash`` of entry 1 = 64 zeros. Editing, deleting, inserting or reordering entries breaks the
chain at the first bad entry, which :meth:`AuditLog.verify` names. Cutting entries off the *end* keeps
the chain intact, so the vault also records its head, and — against an attacker who can rewrite the whole
vault — **signed checkpoints** (C2SP signed-note format, https://c2sp.org/signed-note and
https://c2sp.org/tlog-checkpoint) that partners hold: a restored older copy of the vault is shorter
than, or differs from, a checkpoint it signed earlier.

Details never carry student data: names of files, counts, ids, reasons — never cell values.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._clock import utc_now
from agreements._merkle import EMPTY_ROOT, Frontier, Tree, leaf_hash, root_of, verify_consistency
from agreements._signing import canonical_json, load_public_key
from agreements.errors import AuditError
from deid import parse_json, read_json_file

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agreements._cards import Card
    from agreements._vault import Vault

GENESIS = "0" * 64
BUNDLE_VERSION = 1
MAX_BUNDLE_BYTES = 1 << 30  # a million entries take about 400 MB
MAX_DETAILS_BYTES = 16_384
_BATCH = 20_000

# json's C string encoder escapes exactly as RFC 8785 does (", \, control characters as \b \t \n \f \r
# or lowercase \u00xx; everything else as UTF-8), so the hot verification loop can build the canonical
# bytes without the pure-Python canonicalizer. tests/test_audit.py checks the two agree.
_enc: Callable[[str], str] = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring  # type: ignore[attr-defined]


# The same canonical JSON as entry_hash, built by SQLite (keys in RFC 8785 order).
_CANONICAL_SQL = (
    "SELECT seq, prev_hash, hash, "
    "'{\"action\":' || json_quote(action) || ',\"actor\":' || json_quote(actor) "
    "|| ',\"agreement\":' || json_quote(agreement) || ',\"details\":' || details "
    "|| ',\"package\":' || json_quote(package) || ',\"partner\":' || json_quote(partner) "
    "|| ',\"prev_hash\":' || json_quote(prev_hash) || ',\"seq\":' || seq "
    "|| ',\"time\":' || json_quote(time) || '}' "
    "FROM audit_log ORDER BY seq"
)


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the log."""

    seq: int
    time: str
    actor: str
    action: str
    agreement: str | None
    partner: str | None
    package: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: its deep copy dominated exporting a million entries.
        return {f: getattr(self, f) for f in _ENTRY_FIELDS}

    @property
    def user(self) -> str:
        """The OS user part of ``actor``."""
        return self.actor.split(" (", 1)[0]


_ENTRY_FIELDS = ("seq", "time", "actor", "action", "agreement", "partner", "package", "details", "prev_hash",
                 "hash")


@dataclass(frozen=True)
class AuditVerdict:
    """The result of verifying a log or a bundle."""

    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str = ""
    head_hash: str = GENESIS
    warnings: tuple[str, ...] = ()  # what could not be checked (the verdict stays ok)

    def __bool__(self) -> bool:
        return self.ok


def head_file(vault_path: Path) -> Path:
    """The signed head file kept beside a vault: ``NAME.head`` for ``NAME``."""
    return vault_path.with_name(vault_path.name + ".head")


def read_head_file(path: Path) -> tuple[int, str] | None:
    """(size, chain hash) a head file records, unchecked; None if absent or unreadable."""
    try:
        doc = read_json_file(path, what="a head file", error=AuditError, max_bytes=_MAX_HEAD_FILE_BYTES)
        return int(doc["size"]), str(doc["hash"])
    except (AuditError, ValueError, TypeError, KeyError):  # a file nested 200,000 deep included
        return None


_MAX_HEAD_FILE_BYTES = 1 << 16  # a head file is a few hundred bytes


@dataclass(frozen=True)
class Checkpoint:
    """A parsed, signature-checked checkpoint: the log's size and head hash, signed by its owner."""

    origin: str
    size: int
    hash: str  # hex
    text: str
    extensions: tuple[str, ...] = field(default=())


def entry_hash(
    seq: int,
    time: str,
    actor: str,
    action: str,
    agreement: str | None,
    partner: str | None,
    package: str | None,
    details_json: str,
    prev_hash: str,
) -> str:
    """The chain hash of one entry; ``details_json`` must be the canonical JSON text of the details.

    Equal to ``sha256(canonical_json({...}))`` (the definition), built faster: keys in RFC 8785 order.
    """
    text = (
        '{"action":'
        + _enc(action)
        + ',"actor":'
        + _enc(actor)
        + ',"agreement":'
        + ("null" if agreement is None else _enc(agreement))
        + ',"details":'
        + details_json
        + ',"package":'
        + ("null" if package is None else _enc(package))
        + ',"partner":'
        + ("null" if partner is None else _enc(partner))
        + ',"prev_hash":'
        + _enc(prev_hash)
        + ',"seq":'
        + str(int(seq))
        + ',"time":'
        + _enc(time)
        + "}"
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def reference_entry_hash(entry: dict[str, Any]) -> str:
    """The chain hash by its definition (slow; used by tests and documentation)."""
    body = {
        k: entry[k]
        for k in ("seq", "time", "actor", "action", "agreement", "partner", "package", "details", "prev_hash")
    }
    return hashlib.sha256(canonical_json(body)).hexdigest()


def os_account_name(platform: str | None = None) -> str:
    """The name of the operating-system account this process runs as: the audit log's actor (asked of
    the OS's account database, never of environment variables; the platform seam,
    ``deid.account_name``, knows how on each platform)."""
    from deid import account_name

    return account_name(platform)


class AuditLog:
    """The vault's audit log (``vault.audit``)."""

    def __init__(self, vault: Vault, clock: Callable[[], str] = utc_now) -> None:
        self._vault = vault
        self.clock = clock
        self._user = os_account_name()
        self._org: str | None = None
        self._pending: tuple[int, str] | None = None  # the head appended in the open transaction
        self._head_signer: tuple[Ed25519PrivateKey, str] | None = None

    # -- writing ----------------------------------------------------------------------------------
    def _actor(self, conn: sqlite3.Connection) -> str:
        if self._org is None:
            row = conn.execute("SELECT org FROM identity WHERE id = 1").fetchone()
            if row is None:
                return self._user
            self._org = str(row[0])
        return f"{self._user} ({self._org})"

    def forget_actor(self) -> None:
        """Re-read the organization name for the actor (after the identity is created)."""
        self._org = None
        self._head_signer = None

    # -- the head file beside the vault (issue 14: a head that moved backwards) ------------------------
    # Entries can be lost after their append returned without the chain showing it: another process
    # that resets the WAL, an old copy of the last pages spliced in. The vault cannot notice from the
    # inside, so after every commit that appended, the new head (size and chain hash, signed with our
    # key) goes to a small file beside the vault — outside the database and its WAL. It only moves
    # forward, and `verify` reports a log shorter than it, or different at its size.
    def after_commit(self) -> None:
        """Called by the vault after a transaction committed: write the head file if the log grew.

        Written under SQLite's write lock, with the log's head as it is then: two processes cannot
        interleave read-compare-write and leave the file at the smaller head. If another writer holds
        the lock, this one skips: that writer writes a head at least as far after its own commit."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        import sqlcipher3

        conn = self._vault.db
        try:
            wait = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute(f"PRAGMA busy_timeout = {wait}")
        except sqlcipher3.Error:
            return
        try:
            row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            if row is not None:
                self._write_head_file(int(row[0]), str(row[1]))
        finally:
            conn.execute("ROLLBACK")

    def after_rollback(self) -> None:
        """Called by the vault after a transaction rolled back: nothing was appended."""
        self._pending = None

    def _signer(self) -> tuple[Ed25519PrivateKey, str] | None:
        if self._head_signer is None:
            from agreements._identity import has_identity, our_card, signing_key

            if not has_identity(self._vault):
                return None
            self._head_signer = (signing_key(self._vault), our_card(self._vault).fingerprint())
        return self._head_signer

    def _write_head_file(self, size: int, digest: str) -> None:
        from agreements._signing import sign_document

        try:
            signer = self._signer()
            if signer is None:
                return
            path = head_file(self._vault.path)
            current = read_head_file(path)
            if current is not None and current[0] >= size:
                return  # another process got further; the file only moves forward
            if current is not None and current[0]:
                row = self._vault.db.execute(
                    "SELECT hash FROM audit_log WHERE seq = ?", (current[0],)
                ).fetchone()
                if row is None or row[0] != current[1]:
                    return  # the log lost or changed what the file recorded: keep that evidence
            doc = {"pathshare_vault_head": 1, "signer": signer[1], "size": size, "hash": digest}
            text = json.dumps({**doc, "signature": sign_document(signer[0], doc)}) + "\n"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "w", encoding="ascii") as fh:
                fh.write(text)
            # No fsync: the vault's commit is already durable, so after a crash this file can only lag
            # behind the log (never claim entries the log does not have), which verify accepts.
            os.replace(tmp, path)
        except Exception:  # the entry is committed; verify reports a head file that lags or is missing
            return

    def append(
        self,
        action: str,
        *,
        agreement: str | None = None,
        partner: str | None = None,
        package: str | None = None,
        details: dict[str, Any] | None = None,
        conn: Any = None,
    ) -> AuditEntry:
        """Append one entry and return it.

        Inside ``vault.transaction()`` pass its connection as ``conn`` (or just call this: the vault's
        transactions nest), so the entry commits atomically with the change it records.
        """
        if not isinstance(action, str) or not action.strip() or len(action) > 100:
            raise AuditError("An audit action must be a short non-empty text.")
        for name, value in (("agreement", agreement), ("partner", partner), ("package", package)):
            if value is not None and not isinstance(value, str):
                raise AuditError(f"The audit field {name} must be text.")
        details = {} if details is None else details
        if not isinstance(details, dict):
            raise AuditError("Audit details must be a JSON object.")
        # A file name from the command line may hold bytes that are not UTF-8 (Python keeps them as lone
        # surrogates): record them escaped rather than refuse the entry after the action was done.
        agreement, partner, package = (_printable(v) for v in (agreement, partner, package))
        details = _printable(details)
        try:
            details_json = canonical_json(details).decode("utf-8")
        except ValueError as exc:
            raise AuditError(f"Audit details are not plain JSON: {exc}.") from exc
        if len(details_json) > MAX_DETAILS_BYTES:
            # A guard against dumping data into the log: details are ids, counts and reasons.
            raise AuditError("Audit details are too large; record ids and counts, not data.")
        if conn is not None:
            return self._append(conn, action, agreement, partner, package, details, details_json)
        with self._vault.transaction() as c:
            return self._append(c, action, agreement, partner, package, details, details_json)

    def _append(
        self,
        c: Any,
        action: str,
        agreement: str | None,
        partner: str | None,
        package: str | None,
        details: dict[str, Any],
        details_json: str,
    ) -> AuditEntry:
        row = c.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
        time = self.clock()
        actor = self._actor(c)
        digest = entry_hash(seq, time, actor, action, agreement, partner, package, details_json, prev)
        c.execute(
            "INSERT INTO audit_log(seq, time, actor, action, agreement, partner, package, details, "
            "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, time, actor, action, agreement, partner, package, details_json, prev, digest),
        )
        # The recorded head catches entries cut off the end, which leaves the chain itself intact. It
        # only moves forward: appending after a truncation must not erase the evidence of it.
        self._pending = (seq, digest)
        c.execute(
            "INSERT INTO settings(key, value) VALUES ('audit_head', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value "
            "WHERE CAST(substr(settings.value, 1, instr(settings.value, ':') - 1) AS INTEGER) < ?",
            (f"{seq}:{digest}", seq),
        )
        return AuditEntry(seq, time, actor, action, agreement, partner, package, details, prev, digest)

    # -- reading ----------------------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """(sequence number, hash) of the last entry; (0, 64 zeros) for an empty log."""
        row = self._vault.db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, GENESIS)

    def __len__(self) -> int:
        return int(self._vault.db.execute("SELECT count(*) FROM audit_log").fetchone()[0])

    def entries(
        self,
        *,
        since: str | date | None = None,
        until: str | date | None = None,
        action: str | None = None,
        agreement: str | None = None,
        partner: str | None = None,
        user: str | None = None,
        package: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries in order, filtered. ``since``/``until`` are dates or ISO times (a bare date for
        ``until`` includes that whole day); ``action`` matches exactly or as a prefix ending in ``.``
        (``"partner."``); ``user`` is the OS user name."""
        where, params = _filter_where(since, until, action, agreement, partner, user, package)
        sql = (
            "SELECT seq, time, actor, action, agreement, partner, package, details, prev_hash, hash "
            "FROM audit_log"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        if limit is not None and limit < 0:
            raise AuditError(f"The limit must be zero or more entries, not {limit}.")
        if limit is not None:
            # The most recent `limit` entries, still in order.
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {int(limit)})"
        sql += " ORDER BY seq"
        return [_row_entry(r) for r in self._vault.db.execute(sql, params)]

    def iter_rows(self) -> Iterator[tuple]:
        """All raw rows in order, fetched in batches (for verification and export)."""
        cur = self._vault.db.execute(
            "SELECT seq, time, actor, action, agreement, partner, package, details, prev_hash, hash "
            "FROM audit_log ORDER BY seq"
        )
        while True:
            rows = cur.fetchmany(_BATCH)
            if not rows:
                return
            yield from rows

    # -- verification -----------------------------------------------------------------------------
    def verify(self) -> AuditVerdict:
        """Recompute the chain; name the first bad entry if one was edited, deleted, inserted or moved."""
        with self._vault._lock:
            verdict = self._verify_fast()
            if verdict is None:
                # Something is wrong: the precise row-by-row pass names the entry and the reason.
                verdict = verify_rows(self.iter_rows())
            if not verdict.ok:
                return verdict
            recorded = self._vault.get_setting("audit_head")
        if recorded:
            size_text, _, digest = recorded.partition(":")
            size = int(size_text) if size_text.isdigit() else -1
            if size > verdict.entries:
                return AuditVerdict(
                    False,
                    verdict.entries,
                    verdict.entries + 1,
                    f"entries are missing from the end: the vault recorded {size} entries but the log has "
                    f"{verdict.entries} (later entries may have been replaced too; a checkpoint tells which)",
                    verdict.head_hash,
                )
            if size == verdict.entries and digest != verdict.head_hash:
                return AuditVerdict(
                    False,
                    verdict.entries,
                    size,
                    f"entry {size} differs from the one the vault recorded",
                    verdict.head_hash,
                )
        verdict = self._check_head_file(verdict)
        if not verdict.ok:
            return verdict
        from agreements._integrity import past_tampering, security_findings

        findings = security_findings(self._vault)
        if findings:
            return AuditVerdict(
                False,
                verdict.entries,
                None,
                f"the vault was tampered with: {findings[0]}"
                + (f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""),
                verdict.head_hash,
            )
        past = [f"tampering was found on opening the vault on {p}" for p in past_tampering(self._vault)]
        return dataclasses.replace(verdict, warnings=verdict.warnings + tuple(past)) if past else verdict

    def _check_head_file(self, verdict: AuditVerdict) -> AuditVerdict:
        """The verdict, failed if the head file beside the vault shows more entries than the log has or
        another entry at its size; with a warning if there is no head file to compare with."""
        from agreements._identity import has_identity, our_card
        from agreements._signing import verify_document

        if not has_identity(self._vault):
            return verdict
        path = head_file(self._vault.path)
        card = our_card(self._vault)
        try:
            raw = path.read_text(encoding="ascii")
        except FileNotFoundError:
            return dataclasses.replace(
                verdict,
                warnings=(
                    f"there is no head file {path.name} beside the vault, so entries lost after they were "
                    "written could not be checked for (it is written again at the next change)",
                ),
            )
        except (OSError, UnicodeDecodeError):
            raw = ""
        try:
            doc = parse_json(
                raw, path.name, what="a head file", error=AuditError, max_bytes=_MAX_HEAD_FILE_BYTES
            )
            signature = doc.pop("signature")
            good = (
                doc.get("pathshare_vault_head") == 1
                and doc.get("signer") == card.fingerprint()
                and verify_document(card.signing_key, doc, signature)
            )
            size, digest = int(doc["size"]), str(doc["hash"])
        except (AuditError, ValueError, TypeError, KeyError, AttributeError):
            good = False
        if not good:
            return AuditVerdict(
                False,
                verdict.entries,
                None,
                f"the head file {path.name} beside the vault is not one this organization signed (it was "
                "altered or replaced)",
                verdict.head_hash,
            )
        if size > verdict.entries:
            return AuditVerdict(
                False,
                verdict.entries,
                verdict.entries + 1,
                f"the log moved backwards: the head file beside the vault shows {size} entries but the log "
                f"has {verdict.entries} (entries written were lost, or an older copy or older pages of the "
                "vault were put back)",
                verdict.head_hash,
            )
        row = self._vault.db.execute("SELECT hash FROM audit_log WHERE seq = ?", (size,)).fetchone()
        if size and (row is None or row[0] != digest):
            return AuditVerdict(
                False,
                verdict.entries,
                size,
                f"entry {size} differs from the head file beside the vault: the log was rewritten",
                verdict.head_hash,
            )
        return verdict

    def _verify_fast(self) -> AuditVerdict | None:
        """The whole chain in one pass with SQLite building each entry's canonical JSON (its
        ``json_quote`` escapes exactly as RFC 8785 does; tests/test_audit.py checks it), so Python only
        hashes one string per row. Returns None at the first doubt."""
        sha = hashlib.sha256
        expected, prev = 1, GENESIS
        try:
            cur = self._vault.db.execute(_CANONICAL_SQL)
            while True:
                rows = cur.fetchmany(_BATCH)
                if not rows:
                    break
                for seq, prev_hash, digest, text in rows:
                    if seq != expected or prev_hash != prev:
                        return None
                    if sha(text.encode("utf-8")).hexdigest() != digest:
                        return None
                    prev = digest
                    expected += 1
        except Exception:  # e.g. a BLOB planted in a text column: the precise pass reports it
            return None
        n = expected - 1
        return AuditVerdict(True, n, None, f"all {n} entries verify", prev)

    def checkpoint(self) -> str:
        """A signed checkpoint of the current head (C2SP signed-note text; its hash is the Merkle root)."""
        from agreements._identity import our_card, signing_key

        card = our_card(self._vault)
        size, root = self.tree_head()
        return make_checkpoint(signing_key(self._vault), card, size, root)

    # -- Merkle tree (RFC 6962) over the entries' chain hashes ----------------------------------------
    def leaves(self, size: int | None = None, conn: Any = None) -> list[bytes]:
        """The RFC 6962 leaf hashes of the first ``size`` entries (all by default)."""
        db = conn or self._vault.db
        sql = "SELECT hash FROM audit_log" + ("" if size is None else " WHERE seq <= ?") + " ORDER BY seq"
        try:
            return [leaf_hash(bytes.fromhex(h)) for (h,) in db.execute(sql, () if size is None else (size,))]
        except (TypeError, ValueError) as exc:
            raise AuditError(
                "The audit log holds a malformed entry hash.",
                "Verifying the audit log finds the entry.",
                action="verify_audit_log",
            ) from exc

    def tree_head(self, size: int | None = None) -> tuple[int, str]:
        """(size, Merkle root in hex) of the log's first ``size`` entries (all by default)."""
        leaves = self.leaves(size)
        return len(leaves), root_of(leaves).hex()

    def commit_package(
        self, package_id: str, agreement_id: str, content_hash: str, recipients: list[str]
    ) -> tuple[tuple[int, str], list[tuple[int, tuple[str, ...]]]]:
        """Log ``package.sealing`` (the package id, agreement, recipients and content hash) and return
        the head that covers that entry with consistency proofs from the heads these recipients (and
        anyone else lately) were given, for the manifest of the package being sealed.

        The head is taken in the same transaction as the entry, so it is exactly the entry's size."""
        with self._vault.transaction() as conn:
            entry = self.append(
                "package.sealing",
                agreement=agreement_id,
                package=package_id,
                details={"content_sha256": content_hash, "recipients": sorted(recipients)},
                conn=conn,
            )
            earlier = _given_out_sizes(conn, entry.seq, recipients)
            leaves = self.leaves(entry.seq, conn=conn)
        tree = Tree(leaves)
        proofs = [(m, tuple(h.hex() for h in tree.consistency_proof(m))) for m in earlier]
        return (entry.seq, tree.root().hex()), proofs

    def verify_against_checkpoint(
        self, checkpoint_text: str, signer_card: Card | None = None
    ) -> AuditVerdict:
        """Verify the log, then check it still contains the state a checkpoint vouched for.

        A log shorter than the checkpoint, or whose entry at the checkpoint's size has another hash,
        was rolled back (an older copy of the vault restored) or rewritten.
        """
        from agreements._identity import our_card

        card = signer_card or our_card(self._vault)
        cp = verify_checkpoint(checkpoint_text, card)
        verdict = self.verify()
        if not verdict.ok:
            return verdict
        if cp.size > verdict.entries:
            return AuditVerdict(
                False,
                verdict.entries,
                verdict.entries + 1,
                f"the log has {verdict.entries} entries but a checkpoint signed by {card.org} shows "
                f"{cp.size}: an older copy of the vault may have been restored",
                verdict.head_hash,
            )
        if cp.size and self.tree_head(cp.size)[1] != cp.hash:
            return AuditVerdict(
                False,
                verdict.entries,
                cp.size,
                f"entry {cp.size} differs from the checkpoint signed by {card.org}: the log was rewritten",
                verdict.head_hash,
            )
        return verdict

    # -- export -----------------------------------------------------------------------------------
    def export_bundle(self, out: Path | str, *, force: bool = False) -> AuditVerdict:
        """Write every entry, a signed checkpoint of the last one and our card to ``out`` (atomically).

        The export is itself logged first, so the bundle contains its own record. Refuses (AuditError)
        to export a log that does not verify; an existing file is replaced only with ``force``, never
        one the vault recorded (checked before the export is logged).
        """
        from agreements._identity import our_card, signing_key
        from agreements._recorded import output_rule
        from deid import atomic_open, check_output_path

        rule = output_rule(self._vault)
        out = check_output_path(out, force=force, recorded=rule)
        card = our_card(self._vault)
        key = signing_key(self._vault)
        self.append("audit.export", details={"file": out.name})
        with self._vault._lock:
            verdict = self.verify()
            if not verdict.ok:
                raise AuditError(f"The audit log does not verify: {verdict.reason}; it was not exported.")
            dump = json.dumps
            q = json.encoder.encode_basestring_ascii  # the C string encoder, as json.dumps uses

            def opt(value: str | None) -> str:
                return "null" if value is None else q(value)

            with atomic_open(out, "wb", 0o600, force=force, recorded=rule) as fh:
                head_json = (
                    f'{{"pathshare_audit_bundle": {BUNDLE_VERSION},\n"exported": {dump(utc_now())},\n'
                    f'"card": {dump(card.to_dict())},\n"entries": [\n'
                )
                fh.write(head_json.encode("utf-8"))
                size, tree = 0, Frontier()
                sep = ""
                for seq, time, actor, action, agreement, partner, package, details, prev, digest in (
                    self.iter_rows()
                ):
                    # One entry per line; details go out as the canonical JSON text that was hashed.
                    line = (
                        f'{sep}{{"seq": {int(seq)}, "time": {q(time)}, "actor": {q(actor)}, '
                        f'"action": {q(action)}, "agreement": {opt(agreement)}, "partner": '
                        f'{opt(partner)}, "package": {opt(package)}, "details": {details}, '
                        f'"prev_hash": {q(prev)}, "hash": {q(digest)}}}'
                    )
                    fh.write(line.encode("utf-8"))
                    sep = ",\n"
                    size = seq
                    tree.append(leaf_hash(bytes.fromhex(digest)))
                checkpoint = make_checkpoint(key, card, size, tree.root().hex())
                fh.write(f'\n],\n"checkpoint": {dump(checkpoint)}}}\n'.encode())
        return verdict


def verify_rows(rows: Iterator[tuple] | list[tuple]) -> AuditVerdict:
    """Verify raw rows (seq, time, actor, action, agreement, partner, package, details_json, prev, hash)."""
    expected, prev = 1, GENESIS
    n = 0
    for row in rows:
        seq, time, actor, action, agreement, partner, package, details, prev_hash, digest = row
        if seq != expected:
            if isinstance(seq, int) and seq > expected:
                return AuditVerdict(
                    False,
                    n,
                    expected,
                    f"entry {expected} is missing (deleted, or the entries were renumbered)",
                    prev,
                )
            return AuditVerdict(False, n, expected, f"entry {expected} has a malformed sequence number", prev)
        if prev_hash != prev:
            return AuditVerdict(
                False,
                n,
                seq,
                f"entry {seq} does not follow entry {seq - 1} (its previous-entry hash "
                "does not match): an entry was inserted, removed or rewritten",
                prev,
            )
        try:
            ok = (
                entry_hash(seq, time, actor, action, agreement, partner, package, details, prev_hash)
                == digest
            )
        except (TypeError, ValueError, UnicodeEncodeError):
            ok = False
        if not ok:
            return AuditVerdict(
                False, n, seq, f"entry {seq} was altered: its contents do not match its hash", prev
            )
        prev = digest
        expected += 1
        n += 1
    return AuditVerdict(True, n, None, f"all {n} entries verify", prev)


# -- checkpoints (C2SP signed note) ---------------------------------------------------------------
def _origin(card: Card) -> str:
    return f"pathshare.audit/{card.fingerprint()}"


def _key_id(name: str, public_raw: bytes) -> bytes:
    # C2SP signed-note: key ID = SHA-256(name || 0x0A || 0x01 (Ed25519) || public key)[:4]
    return hashlib.sha256(name.encode("utf-8") + b"\n\x01" + public_raw).digest()[:4]


def make_checkpoint(key: Ed25519PrivateKey, card: Card, size: int, head_hash: str) -> str:
    """A C2SP checkpoint (origin, size, base64 hash) signed as a note by ``key``."""
    from cryptography.hazmat.primitives import serialization

    origin = _origin(card)
    body = f"{origin}\n{int(size)}\n{base64.b64encode(bytes.fromhex(head_hash)).decode('ascii')}\n"
    public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    sig = key.sign(body.encode("utf-8"))
    return f"{body}\n\u2014 {origin} {base64.b64encode(_key_id(origin, public_raw) + sig).decode('ascii')}\n"


def verify_checkpoint(text: str, signer_card: Card) -> Checkpoint:
    """Parse a checkpoint and check its signature by ``signer_card``'s key; AuditError otherwise."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization

    if isinstance(text, str):
        text = text.replace("\r\n", "\n")  # a checkpoint that travelled through a Windows editor
    if not isinstance(text, str) or "\n\n" not in text:
        raise AuditError("The checkpoint is malformed (no signature block).")
    body, _, sigblock = text.partition("\n\n")
    body += "\n"
    lines = body.split("\n")[:-1]
    if len(lines) < 3 or not (lines[1].isascii() and lines[1].isdigit()):
        raise AuditError("The checkpoint is malformed (expected origin, size and hash lines).")
    origin, size_text, hash_b64 = lines[0], lines[1], lines[2]
    try:
        head = base64.b64decode(hash_b64, validate=True)
    except ValueError as exc:
        raise AuditError("The checkpoint's hash line is not base64.") from exc
    if len(head) != 32:
        raise AuditError("The checkpoint's hash is not a SHA-256 hash.")
    if origin != _origin(signer_card):
        raise AuditError(f"The checkpoint is for another log ({origin}), not {signer_card.org}'s.")
    pub = load_public_key(signer_card.signing_key)
    public_raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    want_id = _key_id(origin, public_raw)
    for line in sigblock.splitlines():
        if not line.startswith("\u2014 "):
            continue
        parts = line[2:].split(" ")
        if len(parts) != 2 or parts[0] != origin:
            continue
        try:
            raw = base64.b64decode(parts[1], validate=True)
        except ValueError:
            continue
        if len(raw) != 68 or raw[:4] != want_id:
            continue
        try:
            pub.verify(raw[4:], body.encode("utf-8"))
        except InvalidSignature:
            break
        return Checkpoint(origin, int(size_text), head.hex(), text, tuple(lines[3:]))
    raise AuditError(f"The checkpoint is not signed by {signer_card.org} (bad or missing signature).")


def _printable(value: Any) -> Any:
    """``value`` with every text that cannot be encoded as UTF-8 (lone surrogates) backslash-escaped."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


# -- bundles --------------------------------------------------------------------------------------
def read_bundle(path: Path | str) -> dict[str, Any]:
    """Load an audit bundle file (AuditError if unreadable or not a bundle)."""
    p = Path(path)
    data = read_json_file(
        p, f"The audit bundle {p}", what="an audit bundle", error=AuditError, max_bytes=MAX_BUNDLE_BYTES
    )
    if not isinstance(data, dict) or data.get("pathshare_audit_bundle") is None:
        raise AuditError(f"{p} is not a PathShare audit bundle.")
    if data["pathshare_audit_bundle"] != BUNDLE_VERSION:
        raise AuditError(
            f"The audit bundle {p} has version {data['pathshare_audit_bundle']!r}, "
            "which this PathShare does not know."
        )
    if not isinstance(data.get("entries"), list) or not isinstance(data.get("checkpoint"), str):
        raise AuditError(f"The audit bundle {p} is incomplete (no entries or no checkpoint).")
    data[_NAME] = p.name
    return data


_NAME = "\x00file"  # where a loaded bundle keeps its file name (not a JSON key one could send)


def _loaded(bundle: Path | str | dict[str, Any]) -> dict[str, Any]:
    """A bundle given as a path (read it) or as what :func:`read_bundle` returned (read once, reuse)."""
    return bundle if isinstance(bundle, dict) else read_bundle(bundle)


def bundle_card(bundle: Path | str | dict[str, Any]) -> Card:
    """The card a bundle claims to come from (not yet trusted: compare with the one you hold)."""
    from agreements._cards import Card
    from agreements.errors import PartnerError

    data = _loaded(bundle)
    try:
        return Card.from_dict(data.get("card"), f"The card inside the audit bundle {data[_NAME]}")
    except PartnerError as exc:
        raise AuditError(str(exc)) from exc


_SAFE_INT = 2**53


def _details_canonical(details: dict[str, Any]) -> str:
    """RFC 8785 text of a details object; for the usual flat object of ASCII keys and text, whole
    numbers, booleans and nulls, json.dumps with sorted keys produces the same bytes much faster."""
    flat = all(
        isinstance(k, str) and k.isascii()
        and (v is None or isinstance(v, str | bool) or (type(v) is int and -_SAFE_INT < v < _SAFE_INT))
        for k, v in details.items()
    )
    if flat:
        return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return canonical_json(details).decode("utf-8")


def _bundle_rows(entries: list[Any]) -> Iterator[tuple]:
    for e in entries:
        if not isinstance(e, dict):
            yield (None,) * 10
            continue
        details = e.get("details")
        try:
            details_json = _details_canonical(details) if isinstance(details, dict) else None
        except ValueError:
            details_json = None
        seq = e.get("seq")
        yield (
            seq if type(seq) is int else None,  # not True, not 1.0: exactly what was hashed
            e.get("time"),
            e.get("actor"),
            e.get("action"),
            e.get("agreement"),
            e.get("partner"),
            e.get("package"),
            details_json,
            e.get("prev_hash"),
            e.get("hash"),
        )


def verify_bundle(bundle: Path | str | dict[str, Any], signer_card: Card) -> AuditVerdict:
    """Verify an exported bundle against the exporter's card, as held by the verifier.

    Checks the checkpoint's signature by ``signer_card``, the chain of every entry, and that the entries
    end exactly at the signed checkpoint. Returns a verdict; raises AuditError if the file is not a bundle.
    ``bundle`` is a path, or what :func:`read_bundle` returned (to read a large bundle only once).
    """
    data = _loaded(bundle)
    p = Path(data[_NAME])
    claimed = data.get("card")
    if not isinstance(claimed, dict) or claimed.get("signing_key") != signer_card.signing_key:
        who = claimed.get("org") if isinstance(claimed, dict) else "an unknown organization"
        return AuditVerdict(
            False,
            0,
            None,
            f"the bundle {p.name} was made by {who}, not by {signer_card.org} ({signer_card.fingerprint()})",
        )
    try:
        cp = verify_checkpoint(data["checkpoint"], signer_card)
    except AuditError as exc:
        return AuditVerdict(False, 0, None, f"the bundle {p.name}: {str(exc)[0].lower()}{str(exc)[1:-1]}")
    verdict = verify_rows(_bundle_rows(data["entries"]))
    if not verdict.ok:
        return verdict
    if verdict.entries != cp.size or bundle_root_at(data, cp.size) != cp.hash:
        return AuditVerdict(
            False,
            verdict.entries,
            min(verdict.entries, cp.size) + 1 if verdict.entries != cp.size else cp.size,
            f"the entries do not end at the signed checkpoint ({cp.size} entries); the "
            "bundle was cut or extended",
            verdict.head_hash,
        )
    return verdict


def bundle_hash_at(bundle: Path | str | dict[str, Any], size: int) -> str | None:
    """The hash of entry ``size`` in a bundle (None if absent)."""
    entries = _loaded(bundle)["entries"]
    if 1 <= size <= len(entries) and isinstance(entries[size - 1], dict):
        return entries[size - 1].get("hash")
    return None


def bundle_roots(bundle: Path | str | dict[str, Any], sizes: set[int]) -> dict[int, str]:
    """The Merkle root (hex) of a bundle's first n entries for each n in ``sizes`` it reaches; call
    only for a bundle whose chain verified."""
    entries = _loaded(bundle)["entries"]
    out: dict[int, str] = {}
    if 0 in sizes:
        out[0] = EMPTY_ROOT.hex()
    tree = Frontier()
    for e in entries:
        try:
            tree.append(leaf_hash(bytes.fromhex(e["hash"])))
        except (TypeError, ValueError, KeyError):
            break
        if tree.size in sizes:
            out[tree.size] = tree.root().hex()
    return out


def bundle_root_at(bundle: Path | str | dict[str, Any], size: int) -> str | None:
    """The Merkle root (hex) of a bundle's first ``size`` entries, None if it has fewer."""
    return bundle_roots(bundle, {size}).get(size)


# -- partners' heads ------------------------------------------------------------------------------
# Every head a partner signed for us is kept (table partner_heads), and a new one is accepted only when
# it provably extends them: a consistency proof from the newest head we hold (in a package manifest), or
# the whole log (an audit bundle). A head that cannot be checked is not kept, so one ordinary package
# cannot replace the evidence we hold with the head of a rewritten log.

REWRITTEN = "audit.partner_rewritten"
ROLLED_BACK = "audit.partner_rollback"
UNCONFIRMED = "audit.partner_head_unconfirmed"
PARTNER_LOG_ACTIONS = (REWRITTEN, ROLLED_BACK)
_PROOFS_SENT = 8  # besides each recipient's own last head: the most recent heads given to anyone


def _given_out_sizes(conn: Any, size: int, recipients: list[str]) -> list[int]:
    """Sizes of heads of ours a partner may hold, below ``size``: the last package head sent to each
    of ``recipients`` and the most recent heads given to anyone (packages, bundles, checkpoints)."""
    sizes: set[int] = set()
    for fp in recipients:
        row = conn.execute(
            "SELECT max(seq) FROM audit_log WHERE action = 'package.sealing' AND seq < ? AND EXISTS "
            "(SELECT 1 FROM json_each(audit_log.details, '$.recipients') WHERE value = ?)",
            (size, fp),
        ).fetchone()
        if row and row[0]:
            sizes.add(int(row[0]))
    rows = conn.execute(
        "SELECT n FROM (SELECT seq AS n FROM audit_log WHERE action IN ('package.sealing', 'audit.export') "
        "UNION SELECT CAST(json_extract(details, '$.size') AS INTEGER) FROM audit_log "
        "WHERE action = 'audit.checkpoint') WHERE n > 0 AND n < ? ORDER BY n DESC LIMIT ?",
        (size, _PROOFS_SENT),
    ).fetchall()
    sizes.update(int(r[0]) for r in rows)
    return sorted(sizes)


@dataclass(frozen=True)
class HeldHead:
    """A head of a partner's log that we hold: its size, Merkle root, where it came from and when."""

    size: int
    root: str
    source: str
    received: str


def partner_heads(vault: Vault, signing_key: str) -> list[HeldHead]:
    """Every head of this partner's log we hold, smallest first."""
    return [
        HeldHead(int(r[0]), str(r[1]), str(r[2]), str(r[3]))
        for r in vault.db.execute(
            "SELECT size, root, source, received FROM partner_heads WHERE signing_key = ? ORDER BY size",
            (signing_key,),
        )
    ]


def hold_partner_checkpoint(
    vault: Vault,
    checkpoint_text: str,
    signer_card: Card,
    roots_at: Callable[[set[int]], dict[int, str]] | None = None,
    source: str = "checkpoint",
) -> AuditVerdict:
    """Check a partner's signed checkpoint against every head of theirs we hold; keep it if it extends
    them. ``roots_at(sizes)`` gives the roots at those sizes of the log the checkpoint came with (an
    audit bundle); without it, the checkpoint is kept only if it equals or is our first."""
    cp = verify_checkpoint(checkpoint_text, signer_card)
    return hold_partner_head(vault, signer_card, cp.size, cp.hash, checkpoint_text, (), roots_at, source)


def hold_partner_head(
    vault: Vault,
    signer_card: Card,
    size: int,
    root: str,
    evidence: str = "",
    proofs: Sequence[tuple[int, Sequence[str]]] = (),
    roots_at: Callable[[set[int]], dict[int, str]] | None = None,
    source: str = "package",
) -> AuditVerdict:
    """Check a head (``size`` entries, Merkle ``root``) a partner signed against every head of theirs
    we hold, and keep it when it provably extends them.

    The caller must already have checked the partner's signature over ``size`` and ``root``;
    ``evidence`` (the signed text) is stored with it. ``proofs`` are RFC 6962 consistency proofs
    ``(earlier size, hashes)`` to this head; ``roots_at`` gives the roots of the partner's full log (a
    bundle). A log that no longer contains a head we hold is reported (``audit.partner_rewritten``,
    or ``audit.partner_rollback`` when it is shorter); a newer head that nothing proves consistent with
    the newest one we hold is not kept (``audit.partner_head_unconfirmed``).
    """
    org, partner = signer_card.org, signer_card.fingerprint()
    held = {h.size: h.root for h in partner_heads(vault, signer_card.signing_key)}
    if not isinstance(size, int) or size < 0 or not isinstance(root, str):
        raise AuditError(f"{org}'s audit head is malformed.")
    action = problem = None
    held_size = max(held) if held else 0
    checked: set[int] = set()
    if size in held:
        checked.add(size)
        if held[size] != root:
            action, problem = REWRITTEN, (
                f"{org}'s audit log was rewritten: its head at entry {size} differs from the one they signed "
                "for us earlier"
            )
    if problem is None and roots_at is not None and held:
        got = roots_at(set(held))
        for m in sorted(held):
            if got.get(m) == held[m]:
                checked.add(m)
                continue
            if m > size:
                action, problem = ROLLED_BACK, (
                    f"{org}'s audit log is shorter ({size} entries) than a head they signed for us earlier "
                    f"({m}): an older copy of their vault may have been restored"
                )
            else:
                action, problem = REWRITTEN, (
                    f"{org}'s audit log was rewritten at or before entry {m}: it no longer holds the head "
                    "they signed for us then"
                )
            break
    if problem is None:
        for m, path in proofs:
            if m not in held or m >= size:
                continue  # a proof from a head we never held proves nothing to us
            try:
                hashes = [bytes.fromhex(h) for h in path]
            except (TypeError, ValueError):
                hashes = []
            if not verify_consistency(m, size, bytes.fromhex(held[m]), bytes.fromhex(root), hashes):
                action, problem = REWRITTEN, (
                    f"{org}'s audit log was rewritten: their new head does not extend the head at entry {m} "
                    "they signed for us earlier"
                )
                break
            checked.add(m)
    if problem is None and held and size < held_size and size not in held:
        action, problem = ROLLED_BACK, (
            f"{org}'s audit head ({size} entries) is older than one they signed for us earlier "
            f"({held_size}): an older copy of their vault may have been restored, or this was sealed "
            "before something opened earlier"
        )
    if problem is None and held and size > held_size and held_size not in checked:
        action, problem = UNCONFIRMED, (
            f"{org}'s new audit head ({size} entries) cannot be checked against the one we hold "
            f"({held_size}): nothing proves their log still contains it; it was not kept (ask them for an "
            "audit bundle)"
        )
    if problem is not None:
        vault.audit.append(
            action or REWRITTEN,
            partner=partner,
            details={"held_size": held_size, "new_size": size, "source": source, "reason": problem},
        )
        return AuditVerdict(False, size, min(held_size, size + 1) or None, problem, root)
    if size in held:
        return AuditVerdict(True, size, None, "the same head we hold", root)
    with vault.transaction() as c:
        c.execute(
            "INSERT INTO partner_heads(signing_key, size, root, source, evidence, received) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(signing_key, size) DO NOTHING",
            (signer_card.signing_key, int(size), root, source, evidence, utc_now()),
        )
    return AuditVerdict(
        True, size, None, "consistent with every head we hold" if held else "first head held", root
    )


@dataclass(frozen=True)
class PartnerLogProblem:
    """A partner's log found rewritten or rolled back (from our audit entries)."""

    time: str
    partner: str  # fingerprint
    action: str
    reason: str
    org: str = ""  # the partner's organization, as its card in this vault names it


def partner_log_problems(vault: Vault) -> list[PartnerLogProblem]:
    """Every time a partner's log was found rewritten or rolled back, oldest first."""
    out = []
    for e in vault.audit.entries(action=REWRITTEN) + vault.audit.entries(action=ROLLED_BACK):
        row = vault.db.execute("SELECT org FROM partners WHERE fingerprint = ?", (e.partner,)).fetchone()
        org = str(row[0]) if row else (e.partner or "")
        out.append(
            PartnerLogProblem(e.time, e.partner or "", e.action, str(e.details.get("reason", "")), org)
        )
    return sorted(out, key=lambda p: p.time)


def _filter_where(
    since: str | date | None,
    until: str | date | None,
    action: str | None,
    agreement: str | None,
    partner: str | None,
    user: str | None,
    package: str | None,
) -> tuple[list[str], list[Any]]:
    """The audit filters as SQL conditions on audit_log (the one place they are written)."""
    where: list[str] = []
    params: list[Any] = []
    if since is not None:
        where.append("time >= ?")
        params.append(_time_bound(since, end=False))
    if until is not None:
        where.append("time <= ?")
        params.append(_time_bound(until, end=True))
    if action:
        if action.endswith("."):
            where.append("substr(action, 1, ?) = ?")
            params += [len(action), action]
        else:
            where.append("action = ?")
            params.append(action)
    for column, value in (("agreement", agreement), ("partner", partner), ("package", package)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if user:
        where.append("(actor = ? OR substr(actor, 1, ?) = ?)")
        params += [user, len(user) + 2, user + " ("]
    return where, params


def filter_entries(
    entries: Sequence[AuditEntry],
    *,
    since: str | date | None = None,
    until: str | date | None = None,
    action: str | None = None,
    agreement: str | None = None,
    partner: str | None = None,
    user: str | None = None,
    package: str | None = None,
) -> list[AuditEntry]:
    """The filters of :meth:`AuditLog.entries` on entries from elsewhere (a partner's audit bundle):
    the same SQL, run over an in-memory table, so a filter means the same on either."""
    where, params = _filter_where(since, until, action, agreement, partner, user, package)
    con = sqlite3.connect(":memory:")
    try:
        con.execute(
            "CREATE TABLE audit_log(i INTEGER, time TEXT, actor TEXT, action TEXT, agreement TEXT, "
            "partner TEXT, package TEXT)"
        )
        con.executemany(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (i, e.time, e.actor, e.action, e.agreement, e.partner, e.package)
                for i, e in enumerate(entries)
            ],
        )
        sql = "SELECT i FROM audit_log" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY i"
        return [entries[i] for (i,) in con.execute(sql, params)]
    finally:
        con.close()


def _row_entry(r: tuple) -> AuditEntry:
    try:
        details = json.loads(r[7])
    except (TypeError, ValueError):
        details = {"_unreadable": True}
    return AuditEntry(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], details, r[8], r[9])


def _time_bound(value: str | date, *, end: bool) -> str:
    if isinstance(value, datetime):
        v = value if value.tzinfo else value.replace(tzinfo=UTC)
        return v.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        value = value.isoformat()
    text = str(value).strip()
    if len(text) == 10:
        try:
            date.fromisoformat(text)
        except ValueError as exc:
            raise AuditError(f"{text!r} is not a date; write it as YYYY-MM-DD.") from exc
        return text + ("T23:59:59.999999Z" if end else "")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise AuditError(f"{text!r} is not a date or time; write YYYY-MM-DD or an ISO 8601 time.") from exc
    # Compare in the log's own form: UTC with microseconds and a Z.
    return _time_bound(parsed, end=end)
