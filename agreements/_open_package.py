"""Opening a package: decrypt, verify and unpack it, and nothing reaches the destination unless all of
it checks out (the layout: :mod:`agreements._manifest`).

An unknown sender can make a recipient hold at most the manifest's 16 MiB and the signature's 4 KiB
in memory, nothing on disk. Opening decrypts the tar into a private (0700) staging folder beside the
destination (age checks every 64 KiB chunk, but a damaged package releases its first chunks before it
fails), verifies the manifest as soon as it and its signature arrived, then vets every member (plain
files and folders at expected, safe names only; only files the manifest lists, at the size it lists)
while unpacking it there, and compares every file's SHA-256 with the manifest; only then are the files
moved into the destination. Every failure is :class:`~agreements.errors.PackageRejected` with one plain
sentence, and the staging folder is removed: nothing reaches the destination. ``on_staging`` lets the
caller record the staging folder first, so one left by a killed process is found and removed at the
next start.

Opening keeps two cores busy (decryption on a helper thread, framing, hashing and writing here); the
GUI still runs it in a worker process so a slow disk never touches the window.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agreements import _agefile
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
)
from agreements._signing import sha256_hex, verify_document
from agreements.errors import PackageRejected
from deid import (
    EarlyWriteback,
    open_flags,
    parse_json,
)
from deid.errors import OutputError

_DIRECT = 64 << 10  # unpacked data pieces this large are hashed and written without gathering
_MAX_MANIFEST = 16 << 20  # bytes; far above any real manifest, bounds memory for hostile input
_MAX_SIGNATURE = 4096
_MAX_REPORT = 64 << 20
_RECORD = tarfile.RECORDSIZE
_LIMITS = {MANIFEST_NAME: _MAX_MANIFEST, SIGNATURE_NAME: _MAX_SIGNATURE, REPORT_NAME: _MAX_REPORT}


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
        meter = Meter(progress, size, "decrypting and checking")

        def trust(manifest_bytes: bytes, signature_bytes: bytes) -> Manifest:
            return _trust(manifest_bytes, signature_bytes, verify_sender, check_manifest)

        manifest, found, small = _unpack(path, identity, tree, meter, size, trust)
        _check_contents(manifest, found, small)
        report = parse_json(
            small[REPORT_NAME],
            "The package's report",
            what="a report",
            error=PackageRejected,
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
    meter: Meter,
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
        self, tree: Path, meter: Meter, package_size: int, trust: Callable[[bytes, bytes], Manifest]
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
                        if len(self._pending) >= CHUNK:
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
        check_unique(self._names, PackageRejected)
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
                    self._file = EarlyWriteback(os.fdopen(arg, "wb", buffering=CHUNK))
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
        check_data_name(rel)
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
        manifest_bytes,
        "The package's manifest",
        what="a manifest",
        error=PackageRejected,
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
