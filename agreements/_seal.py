"""Sealing a package: the de-identified files and the report, with the signed manifest first, into an
age file encrypted to the agreement's recipients (the layout: :mod:`agreements._manifest`).

A file whose SHA-256 was computed as it was written (``deid.write_release`` returns it; ``prepare``
passes it on) is read once, streamed into age and hashed on the way, and the package is discarded
unless the hash still matches; any other file is read twice (hashed for the manifest, then streamed).
Either way the file's size, inode and times must not change while sealing, and the tar is never
built in memory nor written to disk.

Callers make no crypto decisions. Sealing keeps two cores busy (hashing and framing on the caller's
thread, encryption on a helper thread) and holds the GIL only between those calls; the GUI still runs
it in a worker process so a slow disk never touches the window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tarfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements import _agefile
from agreements._clock import utc_text
from agreements._manifest import (
    CHUNK,
    DATA_DIR,
    MANIFEST_NAME,
    REPORT_NAME,
    SIGNATURE_NAME,
    FileEntry,
    Manifest,
    Meter,
    Progress,
    check_data_name,
    check_unique,
    is_sha,
)
from agreements._signing import canonical_json, sha256_hex, sign_document
from deid import (
    EarlyWriteback,
    Recorded,
    atomic_open,
    check_output_path,
)
from deid.errors import InputError, OutputError

_RECORD = tarfile.RECORDSIZE
# (package id, content hash) -> ((size, root), ((earlier size, proof hashes), ...)); see seal().
CommitHead = Callable[[str, str], tuple[tuple[int, str], Sequence[tuple[int, tuple[str, ...]]]]]


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
        if digest is not None and not is_sha(digest):
            raise ValueError("a known SHA-256 must be 64 lowercase hex digits")
        known.append(digest)
        try:
            check_data_name(name)
        except ValueError as exc:
            raise InputError(f"Cannot seal {source}: {exc}.") from exc
        if not source.is_file():
            raise InputError(f"Cannot seal {source}: it does not exist or is not a file.")
        specs.append((name, source, rows))
    if not specs:
        raise InputError("Nothing to seal: a package needs at least one data file.")
    check_unique([s[0] for s in specs], InputError)
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
    meter = Meter(progress, total, "sealing")
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
    name: str, source: Path, rows: int | None, meter: Meter
) -> tuple[FileEntry, tuple[int, ...]]:
    """First read of a source: its size and SHA-256 for the manifest, and what identifies its state."""
    try:
        with open(source, "rb") as fh:
            before = os.fstat(fh.fileno())
            digest = hashlib.sha256()
            seen = 0
            while chunk := fh.read(CHUNK):
                seen += len(chunk)
                digest.update(chunk)
                meter.add(len(chunk))
            after = os.fstat(fh.fileno())
    except OSError as exc:
        raise InputError(f"Cannot read {source}: {exc.strerror or exc}.") from exc
    if seen != before.st_size or _identity(before) != _identity(after):
        raise InputError(f"{source} changed while it was being sealed; seal it again.")
    return FileEntry(name, seen, digest.hexdigest(), rows), _identity(after)


def _stat_source(name: str, source: Path, rows: int | None, digest: str) -> tuple[FileEntry, tuple[int, ...]]:
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
    meter: Meter,
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
                    chunk = fh.read(min(CHUNK, entry.size - seen + 1))
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
