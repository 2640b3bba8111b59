"""Sealed packages: ``seal`` and ``open_package`` as recipes, plus receipts and destruction certificates.

A package is a standard age file (X25519 recipients = the agreement's recipients) whose plaintext is a
tar archive (PAX format)::

    manifest.json        canonical JSON (RFC 8785): ids, agreement, sender, recipients, created,
                         the sender's audit-log head, and each file's name, size, rows and SHA-256
    manifest.sig         base64 Ed25519 signature by the sender over manifest.json
    report.json          the de-identification report
    data/<name>          the de-identified files

The signed manifest comes *first*, so a recipient verifies the sender's signature and runs its checks
(agreement, recipients, replay) before a single byte of data is written: an unknown sender can make a
recipient hold at most the manifest's 16 MiB and the signature's 4 KiB in memory, nothing on disk.
A file whose SHA-256 was computed as it was written (``deid.write_release`` returns it; ``prepare``
passes it on) is read once, streamed into age and hashed on the way, and the package is discarded
unless the hash still matches; any other file is read twice (hashed for the manifest, then streamed).
Either way the file's size, inode and times must not change while sealing, and the tar is never
built in memory nor written to disk.

Opening decrypts the tar into a private (0700) staging folder beside the destination (age checks every
64 KiB chunk, but a damaged package releases its first chunks before it fails), verifies the manifest
as soon as it and its signature arrived, then vets every member (plain files and folders at expected,
safe names only; only files the manifest lists, at the size it lists) while unpacking it there, and
compares every file's SHA-256 with the manifest; only then are the files moved into the destination.
Every failure is :class:`~agreements.errors.PackageRejected` with one plain sentence, and the staging
folder is removed: nothing reaches the destination. ``on_staging`` lets the caller record the staging
folder first, so one left by a killed process is found and removed at the next start.

Callers make no crypto decisions. Sealing and opening keep two cores busy (hashing and framing on the
caller's thread, encryption on a helper thread) and hold the GIL only between those calls; the GUI
still runs them in a worker process so a slow disk never touches the window.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import queue
import shutil
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agreements import _agefile
from agreements._clock import utc_text
from agreements._signing import canonical_json, sha256_hex, sign_document, verify_document
from agreements.errors import PackageRejected
from deid import (
    EarlyWriteback,
    Recorded,
    atomic_open,
    check_output_path,
    open_flags,
    parse_json,
    read_json_file,
)
from deid.errors import InputError, OutputError, PathShareError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
REPORT_NAME = "report.json"
DATA_DIR = "data"

_CHUNK = 1 << 20
_DIRECT = 64 << 10  # unpacked data pieces this large are hashed and written without gathering
_MAX_MANIFEST = 16 << 20  # bytes; far above any real manifest, bounds memory for hostile input
_MAX_SIGNATURE = 4096
_MAX_REPORT = 64 << 20
_RECORD = tarfile.RECORDSIZE
_LIMITS = {MANIFEST_NAME: _MAX_MANIFEST, SIGNATURE_NAME: _MAX_SIGNATURE, REPORT_NAME: _MAX_REPORT}

_MANIFEST_KEYS = {
    "pathshare_package",
    "package_id",
    "agreement_id",
    "agreement_hash",
    "sender_fingerprint",
    "recipients",
    "created",
    "audit_head",
    "report",
    "files",
}
_RECEIPT_RESULTS = ("opened", "rejected")


# --------------------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class FileEntry:
    """One de-identified file in a package: its name under ``data/``, size, rows (if known), SHA-256."""

    name: str
    size: int
    sha256: str
    rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "rows": self.rows, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """What a package holds and who made it; signed by the sender inside the package."""

    package_id: str
    agreement_id: str
    agreement_hash: str
    sender_fingerprint: str
    recipients: tuple[str, ...]
    created: str
    audit_head: tuple[int, str]
    report_size: int
    report_sha256: str
    files: tuple[FileEntry, ...]
    # Consistency proofs (RFC 6962) from earlier heads of the sender's log to ``audit_head``:
    # ((earlier size, (hex hash, …)), …), so a recipient holding one of those heads can accept this one.
    audit_proofs: tuple[tuple[int, tuple[str, ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The manifest as the JSON document that is signed and stored as ``manifest.json``."""
        head: dict[str, Any] = {"seq": self.audit_head[0], "hash": self.audit_head[1]}
        if self.audit_proofs:
            head["proofs"] = [{"from": m, "hashes": list(path)} for m, path in self.audit_proofs]
        return {
            "pathshare_package": FORMAT_VERSION,
            "package_id": self.package_id,
            "agreement_id": self.agreement_id,
            "agreement_hash": self.agreement_hash,
            "sender_fingerprint": self.sender_fingerprint,
            "recipients": list(self.recipients),
            "created": self.created,
            "audit_head": head,
            "report": {"name": REPORT_NAME, "size": self.report_size, "sha256": self.report_sha256},
            "files": [f.to_json() for f in self.files],
        }

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical manifest: the package's identity in receipts and certificates."""
        return sha256_hex(canonical_json(self.to_json()))

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical manifest without its audit head: what the sender's log entry
        ``package.sealing`` records before the head that covers that entry is put into the manifest."""
        doc = self.to_json()
        del doc["audit_head"]
        return sha256_hex(canonical_json(doc))

    @classmethod
    def from_json(cls, doc: Any) -> Manifest:
        """Parse and validate a manifest document; PackageRejected if anything is malformed."""
        bad = PackageRejected("The package's manifest is malformed.")
        if not isinstance(doc, dict) or set(doc) != _MANIFEST_KEYS:
            raise bad
        if doc["pathshare_package"] != FORMAT_VERSION:
            raise PackageRejected(
                f"The package uses format version {doc['pathshare_package']!r}; this PathShare reads "
                f"version {FORMAT_VERSION}. Update PathShare."
            )
        strings = ("package_id", "agreement_id", "agreement_hash", "sender_fingerprint", "created")
        if not all(_nonempty_str(doc[k]) for k in strings):
            raise bad
        recipients = doc["recipients"]
        if not isinstance(recipients, list) or not recipients or not all(map(_nonempty_str, recipients)):
            raise bad
        head = doc["audit_head"]
        if not (
            isinstance(head, dict)
            and set(head) in ({"seq", "hash"}, {"seq", "hash", "proofs"})
            and _count(head["seq"])
            and isinstance(head["hash"], str)
        ):
            raise bad
        proofs = _audit_proofs(head.get("proofs", []))
        if proofs is None:
            raise bad
        report = doc["report"]
        if not (
            isinstance(report, dict)
            and set(report) == {"name", "size", "sha256"}
            and report["name"] == REPORT_NAME
            and _count(report["size"])
            and _is_sha(report["sha256"])
        ):
            raise bad
        files = doc["files"]
        if not isinstance(files, list):
            raise bad
        entries = []
        for item in files:
            if not (
                isinstance(item, dict)
                and set(item) == {"name", "size", "rows", "sha256"}
                and isinstance(item["name"], str)
                and _count(item["size"])
                and _is_sha(item["sha256"])
                and (item["rows"] is None or _count(item["rows"]))
            ):
                raise bad
            try:
                _check_data_name(item["name"])
            except ValueError as exc:
                raise PackageRejected(f"The manifest lists an unsafe file name: {exc}.") from exc
            entries.append(FileEntry(item["name"], item["size"], item["sha256"], item["rows"]))
        _check_unique([e.name for e in entries], PackageRejected)
        return cls(
            package_id=doc["package_id"],
            agreement_id=doc["agreement_id"],
            agreement_hash=doc["agreement_hash"],
            sender_fingerprint=doc["sender_fingerprint"],
            recipients=tuple(recipients),
            created=doc["created"],
            audit_head=(head["seq"], head["hash"]),
            report_size=report["size"],
            report_sha256=report["sha256"],
            files=tuple(entries),
            audit_proofs=proofs,
        )


@dataclass(frozen=True)
class OpenedPackage:
    """A package that verified and was written to ``out_dir``."""

    manifest: Manifest
    report: dict[str, Any]
    out_dir: Path
    files: tuple[Path, ...]  # the data files, in manifest order, under out_dir/data/

    @property
    def manifest_hash(self) -> str:
        return self.manifest.hash


_MAX_PROOFS = 64  # earlier heads a manifest proves against; the sender sends a handful


def _audit_proofs(value: Any) -> tuple[tuple[int, tuple[str, ...]], ...] | None:
    """The manifest's consistency proofs as ((size, (hash, …)), …), or None if malformed."""
    if not isinstance(value, list) or len(value) > _MAX_PROOFS:
        return None
    out = []
    for item in value:
        if not (
            isinstance(item, dict)
            and set(item) == {"from", "hashes"}
            and _count(item["from"])
            and isinstance(item["hashes"], list)
            and len(item["hashes"]) <= _MAX_PROOFS
            and all(_is_sha(h) for h in item["hashes"])
        ):
            return None
        out.append((item["from"], tuple(item["hashes"])))
    return tuple(out)


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_data_name(name: str) -> None:
    """A name under data/: relative, '/'-separated; no '..', '.', empty parts, backslashes or controls."""
    if not name or len(name) > 255:
        raise ValueError("a file name must be 1 to 255 characters")
    if name.startswith("/") or "\\" in name or ":" in name:
        raise ValueError(f"{name!r} is not a plain relative name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"{name!r} contains control characters")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{name!r} has an empty, '.' or '..' part")


def _check_unique(names: Sequence[str], error: type[PathShareError]) -> None:
    # Case-folded, because two names differing only in case collide on macOS and Windows.
    seen: set[str] = set()
    for name in names:
        key = name.casefold()
        if key in seen:
            raise error(f"The file name {name!r} appears twice in the package.")
        seen.add(key)




# ------------------------------------------------------------------------------------------------ seal

Progress = Callable[[float, str], None]
# (package id, content hash) -> ((size, root), ((earlier size, proof hashes), ...)); see seal().
CommitHead = Callable[[str, str], tuple[tuple[int, str], Sequence[tuple[int, tuple[str, ...]]]]]


class _Meter:
    """Reports progress about every 1% (and lets ``progress`` cancel by raising, e.g. Cancelled)."""

    def __init__(self, progress: Progress | None, total: int, message: str) -> None:
        self._progress = progress
        self._total = max(total, 1)
        self._message = message
        self._done = 0
        self._next = 0

    def add(self, n: int) -> None:
        if self._progress is None:
            return
        self._done += n
        if self._done >= self._next:
            self._next = self._done + self._total // 100 + 1
            self._progress(min(self._done / self._total, 1.0), self._message)


def seal(
    files: Sequence[
        tuple[str, Path] | tuple[str, Path, int | None] | tuple[str, Path, int | None, str | None]
    ],
    report: dict[str, Any],
    *,
    agreement_id: str,
    agreement_hash: str,
    sender_key: Ed25519PrivateKey,
    sender_fingerprint: str,
    recipients: Sequence[str],
    audit_head: tuple[int, str] | CommitHead,
    out: Path,
    now: datetime | None = None,
    package_id: str | None = None,
    progress: Progress | None = None,
    force: bool = False,
    recorded: Recorded | None = None,
) -> Manifest:
    """Seal ``files`` (``(name under data/, source path[, rows[, sha256]])``) and ``report`` into an age
    package.

    The package is encrypted to ``recipients`` (``age1…``) and written atomically to ``out``; memory
    stays bounded whatever the size of the files. Returns the signed manifest. Raises InputError
    (a source file is missing, unreadable or changed while sealing), OutputError (``out`` cannot be
    written) or AgreementError (a recipient is not an age X25519 recipient).
    ``progress(fraction, message)`` is called about every 1%; an exception it raises (e.g. Cancelled)
    stops sealing and leaves no output.

    ``audit_head`` is the sender's audit-log head, or a function ``(package id, content hash) ->
    (head, proofs)`` called once every file is hashed and before the manifest is signed: the sender logs
    the package there, so the head the manifest carries covers the record of this very disclosure.
    ``force``/``recorded``: deid's rule for replacing a file.

    A file given with its SHA-256 (hex; computed as it was written, e.g. by ``deid.write_release``) is
    read once: streamed into age and hashed on the way, and the package is refused and discarded
    (InputError) unless that hash is still the one given. Other files are read twice (hashed for the
    manifest, which comes first, then streamed).
    """
    specs: list[tuple[str, Path, int | None]] = []
    known: list[str | None] = []
    for spec in files:
        name, source = spec[0], Path(spec[1])
        rows = spec[2] if len(spec) > 2 else None  # type: ignore[misc]
        digest = spec[3] if len(spec) > 3 else None  # type: ignore[misc]
        if digest is not None and not _is_sha(digest):
            raise ValueError("a known SHA-256 must be 64 lowercase hex digits")
        known.append(digest)
        try:
            _check_data_name(name)
        except ValueError as exc:
            raise InputError(f"Cannot seal {source}: {exc}.") from exc
        if not source.is_file():
            raise InputError(f"Cannot seal {source}: it does not exist or is not a file.")
        specs.append((name, source, rows))
    if not specs:
        raise InputError("Nothing to seal: a package needs at least one data file.")
    _check_unique([s[0] for s in specs], InputError)
    try:
        report_bytes = canonical_json(report)
    except ValueError as exc:
        raise InputError(f"The de-identification report cannot be sealed: {exc}.") from exc
    created = utc_text(now)
    mtime = int(datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    pid = package_id or str(uuid.uuid4())
    _agefile.parse_recipients(recipients)  # fail before any output exists
    if Path(out).exists() and any(Path(out).resolve() == spec[1].resolve() for spec in specs):
        raise OutputError(f"Cannot write the package over {out}: it is one of the files being sealed.")
    out = check_output_path(out, force=force, recorded=recorded)
    result: list[Manifest] = []

    def finalize(entries: list[FileEntry]) -> tuple[bytes, bytes]:
        head, proofs = ((0, ""), ()) if callable(audit_head) else (audit_head, ())
        manifest = Manifest(
            package_id=pid,
            agreement_id=agreement_id,
            agreement_hash=agreement_hash,
            sender_fingerprint=sender_fingerprint,
            recipients=tuple(recipients),
            created=created,
            audit_head=(int(head[0]), str(head[1])),
            report_size=len(report_bytes),
            report_sha256=sha256_hex(report_bytes),
            files=tuple(entries),
        )
        if callable(audit_head):
            head, proofs = audit_head(pid, manifest.content_hash)
            manifest = dataclasses.replace(
                manifest, audit_head=(int(head[0]), str(head[1])), audit_proofs=tuple(proofs)
            )
        result.append(manifest)
        doc = manifest.to_json()
        return canonical_json(doc), sign_document(sender_key, doc).encode("ascii")

    # Files without a known hash are read twice (hashed, then sealed); the others once.
    total = sum(s[1].stat().st_size * (1 if d else 2) for s, d in zip(specs, known, strict=True)) or 1
    meter = _Meter(progress, total, "sealing")
    hashed = [
        _stat_source(name, source, rows, digest) if digest else _hash_source(name, source, rows, meter)
        for (name, source, rows), digest in zip(specs, known, strict=True)
    ]
    manifest_bytes, signature = finalize([entry for entry, _ in hashed])
    chunks = _tar_chunks(report_bytes, manifest_bytes, signature, specs, hashed, mtime, meter, known)
    try:
        with atomic_open(out, "wb", force=force, recorded=recorded) as fh:
            _agefile.encrypt_chunks(chunks, EarlyWriteback(fh), recipients)  # type: ignore[arg-type]
    except OSError as exc:
        raise OutputError(f"Cannot write the package {out}: {exc.strerror or exc}.") from exc
    return result[0]


def _member(name: str, size: int, mtime: int, kind: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o700 if kind == tarfile.DIRTYPE else 0o600
    info.type = kind
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)


def _identity(st: os.stat_result) -> tuple[int, ...]:
    # What changes when a file is written to or replaced between the two reads of sealing.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _hash_source(
    name: str, source: Path, rows: int | None, meter: _Meter
) -> tuple[FileEntry, tuple[int, ...]]:
    """First read of a source: its size and SHA-256 for the manifest, and what identifies its state."""
    try:
        with open(source, "rb") as fh:
            before = os.fstat(fh.fileno())
            digest = hashlib.sha256()
            seen = 0
            while chunk := fh.read(_CHUNK):
                seen += len(chunk)
                digest.update(chunk)
                meter.add(len(chunk))
            after = os.fstat(fh.fileno())
    except OSError as exc:
        raise InputError(f"Cannot read {source}: {exc.strerror or exc}.") from exc
    if seen != before.st_size or _identity(before) != _identity(after):
        raise InputError(f"{source} changed while it was being sealed; seal it again.")
    return FileEntry(name, seen, digest.hexdigest(), rows), _identity(after)


def _stat_source(
    name: str, source: Path, rows: int | None, digest: str
) -> tuple[FileEntry, tuple[int, ...]]:
    """A source whose SHA-256 is already known: its size and state now; the one read comes later."""
    try:
        st = os.stat(source)
    except OSError as exc:
        raise InputError(f"Cannot read {source}: {exc.strerror or exc}.") from exc
    return FileEntry(name, st.st_size, digest, rows), _identity(st)


def _tar_chunks(
    report_bytes: bytes,
    manifest_bytes: bytes,
    signature: bytes,
    specs: Sequence[tuple[str, Path, int | None]],
    hashed: Sequence[tuple[FileEntry, tuple[int, ...]]],
    mtime: int,
    meter: _Meter,
    known: Sequence[str | None],
) -> Iterator[bytes]:
    """The package tar, generated piece by piece, the signed manifest first (so a recipient verifies
    it before writing anything). Each source's size, inode and times must still be those the manifest
    was made from; a source whose hash was given (``known``) is hashed here, on its one read, and must
    match it (the package is discarded otherwise)."""
    written = 0

    def out(piece: bytes) -> bytes:
        nonlocal written
        written += len(piece)
        return piece

    first = ((MANIFEST_NAME, manifest_bytes), (SIGNATURE_NAME, signature), (REPORT_NAME, report_bytes))
    for name, body in first:
        yield out(_member(name, len(body), mtime) + body + _padding(len(body)))
    yield out(_member(DATA_DIR, 0, mtime, tarfile.DIRTYPE))
    for (name, source, _), (entry, state), given in zip(specs, hashed, known, strict=True):
        changed = InputError(f"{source} changed while it was being sealed; seal it again.")
        digest = hashlib.sha256() if given else None
        try:
            fh = open(source, "rb")  # noqa: SIM115 - closed below; a generator cannot use `with` across yields cleanly
        except OSError as exc:
            raise InputError(f"Cannot read {source}: {exc.strerror or exc}.") from exc
        with fh:
            if _identity(os.fstat(fh.fileno())) != state:
                raise changed
            yield out(_member(f"{DATA_DIR}/{name}", entry.size, mtime))
            seen = 0
            while True:
                try:
                    chunk = fh.read(min(_CHUNK, entry.size - seen + 1))
                except OSError as exc:
                    raise InputError(f"Cannot read {source}: {exc.strerror or exc}.") from exc
                if not chunk:
                    break
                seen += len(chunk)
                if seen > entry.size:
                    raise changed
                if digest is not None:
                    digest.update(chunk)  # on this thread, while the helper encrypts the last chunk
                meter.add(len(chunk))
                yield out(chunk)
            if seen != entry.size or _identity(os.fstat(fh.fileno())) != state:
                raise changed
            if digest is not None and digest.hexdigest() != given:
                raise InputError(
                    f"{source} is not the file that was written (it changed since, or was replaced); "
                    "nothing was sealed; prepare it again."
                )
        yield out(_padding(entry.size))
    # End of archive: two zero blocks, then pad to a whole record as tar(1) does.
    end = 2 * tarfile.BLOCKSIZE
    yield out(b"\0" * (end + (-(written + end) % _RECORD)))


# ------------------------------------------------------------------------------------------------ open


def open_package(
    path: Path,
    identity: _agefile.Identity,
    out_dir: Path,
    *,
    verify_sender: Callable[[Manifest], Ed25519PublicKey],
    check_manifest: Callable[[Manifest], None] | None = None,
    progress: Progress | None = None,
    on_staging: Callable[[Path], None] | None = None,
) -> OpenedPackage:
    """Decrypt, verify and unpack the package at ``path`` into ``out_dir`` (which must be empty or absent).

    ``verify_sender(manifest)`` returns the verified sender's Ed25519 public key or raises
    PackageRejected; ``check_manifest(manifest)`` runs the caller's checks (agreement held and in
    force, we are a recipient, not a replay) and raises to refuse. Both run as soon as the manifest and
    its signature (the archive's first two members) are decrypted, before any data is written.
    ``on_staging(folder)`` is called with the private staging folder before anything is decrypted into
    it (the vault records it, so one left by a killed process is removed at the next start). On
    success ``out_dir`` holds ``data/…``, ``report.json``, ``manifest.json`` and ``manifest.sig``
    (private: 0700 folders, 0600 files). Raises PackageRejected (with the reason) for
    any problem with the package, OutputError when ``out_dir`` is not empty or cannot be written.
    ``progress(fraction, message)`` is called about every 1% of the package read; an exception it
    raises (e.g. Cancelled) stops opening and leaves nothing behind.
    """
    path, out_dir = Path(path), Path(out_dir)
    _check_destination(out_dir)
    if not path.exists():
        raise PackageRejected(f"{path} is not a file (there is nothing there).")
    if not path.is_file():
        raise PackageRejected(f"{path} is not a file.")
    try:
        staging = Path(tempfile.mkdtemp(prefix=".pathshare-open-", dir=out_dir.parent))  # 0700
    except OSError as exc:
        raise OutputError(f"Cannot write into {out_dir.parent}: {exc.strerror or exc}.") from exc
    try:
        if on_staging is not None:
            on_staging(staging)  # before anything is decrypted into it
        tree = staging / "package"
        tree.mkdir(mode=0o700)
        size = path.stat().st_size
        meter = _Meter(progress, size, "decrypting and checking")

        def trust(manifest_bytes: bytes, signature_bytes: bytes) -> Manifest:
            return _trust(manifest_bytes, signature_bytes, verify_sender, check_manifest)

        manifest, found, small = _unpack(path, identity, tree, meter, size, trust)
        _check_contents(manifest, found, small)
        report = parse_json(
            small[REPORT_NAME], "The package's report", what="a report", error=PackageRejected,
            max_bytes=_MAX_REPORT,
        )
        if not isinstance(report, dict):
            raise PackageRejected("The package's report is not a JSON object.")
        for name in (MANIFEST_NAME, SIGNATURE_NAME, REPORT_NAME):
            _write_private(tree / name, small[name])
        _move_into(tree, out_dir)
        files = tuple(out_dir / DATA_DIR / e.name for e in manifest.files)
        return OpenedPackage(manifest=manifest, report=report, out_dir=out_dir, files=files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_destination(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise OutputError(f"Cannot open the package into {out_dir}: it is a file, not a folder.")
        if any(out_dir.iterdir()):
            raise OutputError(
                f"Cannot open the package into {out_dir}: the folder is not empty. "
                "Choose an empty or new folder."
            )
    elif not out_dir.parent.is_dir():
        raise OutputError(
            f"Cannot open the package into {out_dir}: the folder {out_dir.parent} does not exist."
        )


def _unpack(
    path: Path,
    identity: _agefile.Identity,
    tree: Path,
    meter: _Meter,
    package_size: int,
    trust: Callable[[bytes, bytes], Manifest],
) -> tuple[Manifest, dict[str, tuple[int, str]], dict[str, bytes]]:
    """Decrypt ``path`` and unpack its tar into ``tree`` as it decrypts; return the trusted manifest, the
    data files {name: (size, sha256)} and the small members' bytes."""
    unpacker = _Unpacker(tree, meter, package_size, trust)
    try:
        _agefile.decrypt_to(path, [identity], unpacker)  # type: ignore[arg-type]
        unpacker.close(complete=True)
    except OSError as exc:
        raise OutputError(
            f"Cannot unpack the package beside {tree.parent.parent}: {exc.strerror or exc}."
        ) from exc
    finally:
        unpacker.close(complete=False)
    extra_dirs = {
        d
        for d in unpacker.dirs
        if d != DATA_DIR and not any(n.startswith(d[len(DATA_DIR) + 1 :] + "/") for n in unpacker.found)
    }
    if extra_dirs:
        raise PackageRejected(
            f"The package holds a folder the manifest does not list: {sorted(extra_dirs)[0]}."
        )
    if unpacker.manifest is None:
        raise PackageRejected("The package does not contain a valid archive (it ends too early).")
    return unpacker.manifest, unpacker.found, unpacker.small


_EXTENSION_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
# PAX/GNU extension headers of one member. Ours are at most ~1.1 KiB (a 255-character name in UTF-8);
# the cap also bounds tarfile's PAX parsing, whose `\d+ hdrcharset=` search is quadratic in a run of
# digits (1 MiB of digits took ~20 minutes; 8 KiB takes ~0.07 s).
_MAX_HEADER_GROUP = 8 << 10


class _Unpacker:
    """Receives the decrypted tar as the age reader releases it and unpacks it into ``tree`` on the fly.

    The reader pushes plaintext (up to 1 MiB at a time, each piece already authenticated); Python's tarfile
    only pulls, so this class frames the stream itself — 512-byte header blocks, member data, padding —
    and hands each member's header blocks (with any PAX or GNU extension headers) to ``tarfile`` to
    parse. Every member is vetted before anything of it is written. Writing each file once, straight
    from the decryption, keeps opening close to the speed of decryption alone.
    """

    def __init__(
        self, tree: Path, meter: _Meter, package_size: int, trust: Callable[[bytes, bytes], Manifest]
    ) -> None:
        self.tree = tree
        self._meter = meter
        self._trust = trust
        self.manifest: Manifest | None = None  # set once the manifest and its signature verified
        self._listed: dict[str, FileEntry] = {}
        # No member can hold more bytes than the encrypted package itself: a larger size is a lie.
        self._max_size = package_size
        self.found: dict[str, tuple[int, str]] = {}
        self.small: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        self._names: list[str] = []
        self._state = "header"  # header -> (extension ->)* header -> data -> padding -> header ... end
        self._block = bytearray()  # a header block or extension data being collected
        self._need = tarfile.BLOCKSIZE
        self._group = bytearray()  # the current member's header blocks, extensions included
        self._remaining = 0  # data bytes of the current member still to come
        self._size = 0  # the current member's size
        self._padding = 0  # zero bytes after the current member's data
        self._name = ""
        self._writer = _FileWriter()  # writes the data files on a helper thread
        self._out = False  # whether a data member's file is open (on the writer)
        self._parts: list[bytes] | None = None  # bytes of the current small member
        self._digest: Any = None
        self._pending = bytearray()  # data of the current file not yet hashed and written

    # the decrypting side
    def write(self, data: bytes) -> int:
        self._meter.add(len(data))
        view = memoryview(data)
        while view:  # every pass consumes at least one byte (checked), so this loop ends
            if self._state == "data":
                take = min(len(view), self._remaining)
                if take <= 0:
                    raise PackageRejected("The package does not contain a valid archive.")
                piece = view[:take]
                if self._out:
                    if not self._pending and take >= _DIRECT:
                        self._digest.update(piece)  # large pieces go straight through, uncopied
                        self._writer.write(piece)
                    else:
                        # Small pieces are gathered: hashing 1 MiB at once is ~1.7x faster than 8 KiB.
                        self._pending += piece
                        if len(self._pending) >= _CHUNK:
                            self._flush()
                elif self._parts is not None:
                    self._parts.append(piece.tobytes())
                self._remaining -= take
                view = view[take:]
                if not self._remaining:
                    self._end_member()
            elif self._state == "end":
                if bytes(view).strip(b"\0"):
                    raise PackageRejected("The package has data after the end of its archive.")
                view = view[len(view) :]
            else:  # header, extension or padding: collect a fixed number of bytes first
                take = min(len(view), self._need - len(self._block))
                if take <= 0:
                    raise PackageRejected("The package does not contain a valid archive.")
                self._block += view[:take]
                view = view[take:]
                if len(self._block) == self._need:
                    block, self._block = bytes(self._block), bytearray()
                    self._on_block(block)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def _on_block(self, block: bytes) -> None:
        if self._state == "padding":
            self._expect_header()
            return
        if self._state == "extension":
            self._group += block
            self._expect_header()
            return
        if not self._group and not block.strip(b"\0"):
            self._state = "end"  # end-of-archive marker; only zeros may follow
            return
        self._group += block
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
        except (tarfile.HeaderError, UnicodeError, ValueError, OverflowError) as exc:
            raise PackageRejected("The package does not contain a valid archive.") from exc
        if info.type in _EXTENSION_TYPES:
            size = info.size + (-info.size % tarfile.BLOCKSIZE)
            # A negative size (tar's base-256 encoding allows one) once made this loop forever.
            if info.size <= 0 or len(self._group) + size > _MAX_HEADER_GROUP:
                raise PackageRejected("The package's archive has malformed extended headers.")
            self._state, self._need = "extension", size
            return
        member = self._parse_group()
        self._start_member(member)

    def _parse_group(self) -> tarfile.TarInfo:
        # tarfile does the parsing (PAX records, GNU long names); we only gathered the blocks.
        group, self._group = bytes(self._group), bytearray()
        try:
            with tarfile.open(fileobj=io.BytesIO(group), mode="r:", encoding="utf-8", errors="strict") as tar:
                member = tar.firstmember
        except (tarfile.TarError, UnicodeError, EOFError, ValueError, OverflowError) as exc:
            raise PackageRejected("The package does not contain a valid archive.") from exc
        if member is None:
            raise PackageRejected("The package does not contain a valid archive.")
        if member.sparse is not None or any(k.startswith("GNU.sparse") for k in member.pax_headers):
            raise PackageRejected(
                f"The package holds a sparse file ({member.name!r}); only plain files are allowed."
            )
        return member

    def _start_member(self, member: tarfile.TarInfo) -> None:
        name = _vet_member(member)
        if not 0 <= member.size <= self._max_size:
            raise PackageRejected(
                f"The package's archive gives {name!r} an impossible size ({member.size} bytes)."
            )
        self._check_order(name, member)
        self._names.append(name)
        _check_unique(self._names, PackageRejected)
        self._name = name
        if member.isdir():
            self.dirs.add(name)  # a folder has no data, whatever its header's size field says
            self._expect_header()
            return
        if name in _LIMITS:
            if member.size > _LIMITS[name]:
                raise PackageRejected(f"The package's {name} is implausibly large.")
            self._parts = []
        else:
            rel = name[len(DATA_DIR) + 1 :]
            target = self.tree.joinpath(DATA_DIR, *rel.split("/"))
            try:
                target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | open_flags(), 0o600)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise PackageRejected(
                    f"The package's file {rel!r} clashes with another of its files."
                ) from exc
            self._writer.open(fd)
            self._out = True
            self._digest = hashlib.sha256()
        self._remaining = self._size = member.size
        self._padding = -member.size % tarfile.BLOCKSIZE
        self._state = "data"
        if not self._remaining:
            self._end_member()

    def _check_order(self, name: str, member: tarfile.TarInfo) -> None:
        """The signed manifest and its signature come first, and nothing is written before they
        verified; after that, only what the manifest lists, at exactly the size it lists."""
        position = len(self._names)
        if position < 2:
            if name != (MANIFEST_NAME, SIGNATURE_NAME)[position]:
                raise PackageRejected(
                    "The package does not begin with its signed manifest, so it cannot be checked before "
                    "it is unpacked (an older PathShare sealed it, or it was built by hand); ask the "
                    "sender to seal it again with this version."
                )
            return
        if self.manifest is None:  # only when the signature member was refused: unreachable, kept safe
            raise PackageRejected("The package's manifest was not verified.")
        if member.isdir():
            return
        if name == REPORT_NAME:
            if member.size != self.manifest.report_size:
                raise PackageRejected("The package's report does not match the manifest.")
        elif name in (MANIFEST_NAME, SIGNATURE_NAME):
            raise PackageRejected(f"The file name {name!r} appears twice in the package.")
        else:
            rel = name[len(DATA_DIR) + 1 :]
            entry = self._listed.get(rel)
            if entry is None:
                raise PackageRejected(f"The package holds a file the manifest does not list: {rel!r}.")
            if member.size != entry.size:
                raise PackageRejected(f"The file {rel!r} has a different size than the manifest says.")

    def _flush(self) -> None:
        data, self._pending = self._pending, bytearray()  # handed over: the writer owns it now
        self._digest.update(data)
        self._writer.write(data)

    def _end_member(self) -> None:
        name = self._name
        if self._out:
            self._flush()
            self._writer.close_file()
            self._out = False
            rel = name[len(DATA_DIR) + 1 :]
            self.found[rel] = (self._size, self._digest.hexdigest())
        elif self._parts is not None:
            self.small[name] = b"".join(self._parts)
            self._parts = None
            if name == SIGNATURE_NAME:
                self.manifest = self._trust(self.small[MANIFEST_NAME], self.small[SIGNATURE_NAME])
                self._listed = {e.name: e for e in self.manifest.files}
        if self._padding:
            self._state, self._need = "padding", self._padding
        else:
            self._expect_header()

    def _expect_header(self) -> None:
        self._state, self._need = "header", tarfile.BLOCKSIZE

    def close(self, *, complete: bool) -> None:
        """Finish writing (every file durable) and, with ``complete``, refuse an archive that stopped
        before its end; without it, abandon whatever is still being written."""
        if not complete:
            self._writer.abort()
            return
        self._writer.finish()
        if self._state != "end":
            raise PackageRejected("The package does not contain a valid archive (it ends too early).")


class _FileWriter:
    """Writes the unpacked data files on a helper thread, in order, while the caller's thread parses
    the tar and hashes: the two together kept the caller's thread busy 95% of opening, so the writes
    (system calls that release the GIL) move here. A queue of four pieces (4 MiB at most) keeps memory
    flat; a write error comes back as the same OSError at the next call or at ``finish``.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(4)
        self._error: BaseException | None = None
        self._file: EarlyWriteback | None = None
        self._thread = threading.Thread(target=self._run, name="pathshare-unpack", daemon=True)
        self._thread.start()

    def open(self, fd: int) -> None:
        self._submit("open", fd)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._submit("write", data)

    def close_file(self) -> None:
        """Flush, fsync (durable before it can be moved where the user looks) and close the file."""
        self._submit("close", None)

    def finish(self) -> None:
        """Wait for every queued write; raise the first write error, if any."""
        self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        """Stop after the queued operations (skipping them once anything failed); close the file."""
        if self._error is None:
            self._error = PackageRejected("Opening stopped.")  # skip the rest, quietly
        self._stop()

    def _submit(self, op: str, arg: Any) -> None:
        if self._error is not None:
            if op == "open":
                os.close(arg)
            raise self._error
        self._queue.put((op, arg))

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(("stop", None))
            self._thread.join()
        self._drop_file()

    def _drop_file(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None

    def _run(self) -> None:
        while True:
            op, arg = self._queue.get()
            if op == "stop":
                return
            if self._error is not None:
                if op == "open":
                    os.close(arg)
                continue
            try:
                if op == "open":
                    self._file = EarlyWriteback(os.fdopen(arg, "wb", buffering=_CHUNK))
                elif op == "write":
                    self._file.write(arg)  # type: ignore[union-attr]
                else:
                    self._file.flush()  # type: ignore[union-attr]
                    os.fsync(self._file.fileno())  # type: ignore[union-attr]
                    self._file.close()  # type: ignore[union-attr]
                    self._file = None
            except BaseException as exc:
                self._error = exc
                self._drop_file()


def _vet_member(member: tarfile.TarInfo) -> str:
    """The member's name if it is a regular file or folder at an allowed, safe place; else refuse."""
    name = member.name
    if member.isdir():
        name = name.rstrip("/")
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        raise PackageRejected(f"The package holds a member with an absolute path ({name!r}).")
    if ".." in name.replace("\\", "/").split("/"):
        raise PackageRejected(f"The package holds a member whose path climbs out of its folder ({name!r}).")
    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE):
        kind = (
            "a link"
            if (member.issym() or member.islnk())
            else ("a device" if (member.ischr() or member.isblk()) else "a special file")
        )
        raise PackageRejected(f"The package holds {kind} ({name!r}); only plain files are allowed.")
    if member.isdir():
        if name == DATA_DIR or name.startswith(DATA_DIR + "/"):
            if name != DATA_DIR:
                _safe_data_name(name[len(DATA_DIR) + 1 :])
            return name
        raise PackageRejected(f"The package holds an unexpected folder ({name!r}).")
    if name in (MANIFEST_NAME, SIGNATURE_NAME, REPORT_NAME):
        return name
    if name.startswith(DATA_DIR + "/"):
        _safe_data_name(name[len(DATA_DIR) + 1 :])
        return name
    raise PackageRejected(f"The package holds an unexpected member ({name!r}).")


def _safe_data_name(rel: str) -> None:
    try:
        _check_data_name(rel)
    except ValueError as exc:
        raise PackageRejected(f"The package holds an unsafe file name: {exc}.") from exc


def _trust(
    manifest_bytes: bytes,
    signature_bytes: bytes,
    verify_sender: Callable[[Manifest], Ed25519PublicKey],
    check_manifest: Callable[[Manifest], None] | None,
) -> Manifest:
    """The signed manifest, verified (sender, signature, the caller's checks) before any data is written."""
    doc = parse_json(
        manifest_bytes, "The package's manifest", what="a manifest", error=PackageRejected,
        max_bytes=_MAX_MANIFEST,
    )
    manifest = Manifest.from_json(doc)
    public_key = verify_sender(manifest)
    try:
        signature = signature_bytes.decode("ascii").strip()
    except UnicodeError as exc:
        raise PackageRejected("The package's manifest signature is malformed.") from exc
    if not verify_document(public_key, doc, signature):
        raise PackageRejected(
            "The manifest's signature does not verify against the sender's key (tampered or forged)."
        )
    if check_manifest is not None:
        check_manifest(manifest)
    return manifest


def _check_contents(manifest: Manifest, found: dict[str, tuple[int, str]], small: dict[str, bytes]) -> None:
    """Everything the manifest lists arrived, with its size and SHA-256 (unlisted files and wrong sizes
    were refused at their headers already)."""
    listed = {e.name: e for e in manifest.files}
    for name in found:
        if name not in listed:
            raise PackageRejected(f"The package holds a file the manifest does not list: {name!r}.")
    for entry in manifest.files:
        if entry.name not in found:
            raise PackageRejected(
                f"The file {entry.name!r} listed in the manifest is missing from the package."
            )
        size, digest = found[entry.name]
        if size != entry.size:
            raise PackageRejected(f"The file {entry.name!r} has a different size than the manifest says.")
        if digest != entry.sha256:
            raise PackageRejected(f"The file {entry.name!r} does not match the manifest's SHA-256.")
    report = small.get(REPORT_NAME)
    if report is None:
        raise PackageRejected(f"The package has no {REPORT_NAME}; it is not a PathShare package.")
    if len(report) != manifest.report_size or sha256_hex(report) != manifest.report_sha256:
        raise PackageRejected("The package's report does not match the manifest.")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | open_flags(), 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    from deid import sync_folder

    sync_folder(folder)  # make a rename durable (the platform seam knows where it can)


def _move_into(tree: Path, out_dir: Path) -> None:
    """Move the verified tree into out_dir: one rename when out_dir is absent, else entry by entry."""
    try:
        if not out_dir.exists():
            os.rename(tree, out_dir)
            _fsync_dir(out_dir.parent)
            return
        _check_destination(out_dir)
        moved: list[Path] = []
        try:
            for entry in sorted(tree.iterdir()):
                dest = out_dir / entry.name
                os.rename(entry, dest)
                moved.append(dest)
            _fsync_dir(out_dir)
        except OSError:
            for dest in moved:  # put the destination back as it was: empty
                if dest.is_dir():
                    shutil.rmtree(dest, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        dest.unlink()
            raise
    except OSError as exc:
        raise OutputError(f"Cannot write into {out_dir}: {exc.strerror or exc}.") from exc


# ---------------------------------------------------------------------------- receipts and certificates


@dataclass(frozen=True)
class Receipt:
    """A recipient's signed statement that it opened (or rejected) a package."""

    package_id: str
    manifest_hash: str
    agreement_id: str
    recipient_fingerprint: str
    time: str
    result: str
    reason: str = ""  # why a ``rejected`` package was refused (the recipient's one sentence)


@dataclass(frozen=True)
class DestructionCertificate:
    """A recipient's signed statement that it destroyed a package's data."""

    package_id: str
    manifest_hash: str
    agreement_id: str
    recipient_fingerprint: str
    destroyed_at: str
    method: str
    statement: str


_RECEIPT_KEYS = {
    "pathshare_receipt",
    "package_id",
    "manifest_hash",
    "agreement_id",
    "recipient",
    "time",
    "result",
    "signature",
}
_CERT_KEYS = {
    "pathshare_destruction_certificate",
    "package_id",
    "manifest_hash",
    "agreement_id",
    "recipient",
    "destroyed_at",
    "method",
    "statement",
    "signature",
}


_MAX_REASON = 500  # characters: a refusal is one sentence


def make_receipt(
    manifest: Manifest,
    recipient_key: Ed25519PrivateKey,
    recipient_fingerprint: str,
    result: str = "opened",
    now: datetime | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """A signed receipt (JSON-ready dict) for ``manifest``; ``result`` is ``opened`` or ``rejected``.

    A ``rejected`` receipt carries ``reason``, the recipient's refusal sentence (it never holds
    student data: refusals name files, agreements and dates, never values).
    """
    if result not in _RECEIPT_RESULTS:
        raise ValueError(f"result must be one of {_RECEIPT_RESULTS}")
    if (result == "rejected") != bool(reason):
        raise ValueError("a rejected receipt needs a reason, and only a rejected one has one")
    doc: dict[str, Any] = {
        "pathshare_receipt": 1,
        "package_id": manifest.package_id,
        "manifest_hash": manifest.hash,
        "agreement_id": manifest.agreement_id,
        "recipient": recipient_fingerprint,
        "time": utc_text(now),
        "result": result,
    }
    if reason:
        doc["reason"] = reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
    doc["signature"] = sign_document(recipient_key, doc)
    return doc


def verify_receipt(receipt: Any, public_key: Ed25519PublicKey | str) -> Receipt:
    """The receipt's content if its signature verifies under ``public_key``; else PackageRejected."""
    keys = _RECEIPT_KEYS | {"reason"} if isinstance(receipt, dict) and "reason" in receipt else _RECEIPT_KEYS
    doc = _signed(receipt, keys, "pathshare_receipt", public_key, "receipt")
    if doc["result"] not in _RECEIPT_RESULTS or (doc["result"] == "rejected") != ("reason" in doc):
        raise PackageRejected("The receipt is malformed.")
    reason = doc.get("reason", "")
    if len(reason) > _MAX_REASON or not reason.isprintable():
        # make_receipt writes one printable sentence; a line break or a terminal control character here
        # would reach `pathshare packages` and `receipt import` output as it is (a forged second line).
        raise PackageRejected("The receipt is malformed.")
    return Receipt(
        doc["package_id"],
        doc["manifest_hash"],
        doc["agreement_id"],
        doc["recipient"],
        doc["time"],
        doc["result"],
        doc.get("reason", ""),
    )


def make_destruction_certificate(
    *,
    package_id: str,
    manifest_hash: str,
    agreement_id: str,
    recipient_key: Ed25519PrivateKey,
    recipient_fingerprint: str,
    method: str,
    statement: str,
    destroyed_at: datetime | None = None,
) -> dict[str, Any]:
    """A destruction certificate (JSON-ready dict) signed by the recipient that held the package."""
    if not method.strip() or not statement.strip():
        raise ValueError("a destruction certificate needs a method and a statement")
    doc: dict[str, Any] = {
        "pathshare_destruction_certificate": 1,
        "package_id": package_id,
        "manifest_hash": manifest_hash,
        "agreement_id": agreement_id,
        "recipient": recipient_fingerprint,
        "destroyed_at": utc_text(destroyed_at),
        "method": method,
        "statement": statement,
    }
    doc["signature"] = sign_document(recipient_key, doc)
    return doc


def verify_destruction_certificate(
    certificate: Any, public_key: Ed25519PublicKey | str
) -> DestructionCertificate:
    """The certificate's content if its signature verifies under ``public_key``; else PackageRejected."""
    doc = _signed(
        certificate, _CERT_KEYS, "pathshare_destruction_certificate", public_key, "destruction certificate"
    )
    return DestructionCertificate(
        doc["package_id"],
        doc["manifest_hash"],
        doc["agreement_id"],
        doc["recipient"],
        doc["destroyed_at"],
        doc["method"],
        doc["statement"],
    )


def _signed(
    doc: Any, keys: set[str], marker: str, public_key: Ed25519PublicKey | str, what: str
) -> dict[str, Any]:
    if not isinstance(doc, dict) or set(doc) != keys or doc[marker] != 1:
        raise PackageRejected(f"The {what} is malformed.")
    if not all(_nonempty_str(doc[k]) for k in keys - {marker}):
        raise PackageRejected(f"The {what} is malformed.")
    from deid import unsafe_characters

    if any(unsafe_characters(doc[k], keep="\n\t") for k in keys - {marker}):
        # Its text is printed and shown (`packages`, the dashboard): an escape sequence or a bidi
        # override there would act on the reader's terminal or pass for other text.
        raise PackageRejected(
            f"The {what} is malformed: it holds control, text-direction or invisible characters."
        )
    body = {k: v for k, v in doc.items() if k != "signature"}
    if not verify_document(public_key, body, doc["signature"]):
        raise PackageRejected(
            f"The {what}'s signature does not verify (tampered, or signed by someone else)."
        )
    return body


# A receipt or certificate is under a kilobyte; a file far larger is refused before it is read.
_MAX_RETURNED_DOCUMENT_BYTES = 1 << 20


def load_json_document(path: Path, what: str) -> Any:
    """Read a receipt or certificate file; InputError naming the file if it is not JSON."""
    source = f"The {what} file {path}"
    return read_json_file(path, source, what=f"a {what}", max_bytes=_MAX_RETURNED_DOCUMENT_BYTES)


def write_json_document(
    path: Path, doc: dict[str, Any], *, force: bool = False, recorded: Recorded | None = None
) -> None:
    """Write a receipt or certificate as pretty JSON, atomically (0644: it holds no secrets);
    ``force``/``recorded``: deid's rule for replacing a file."""
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode("utf-8")
    with atomic_open(path, "wb", 0o644, force=force, recorded=recorded) as fh:
        fh.write(data)
