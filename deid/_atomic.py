"""Output files: the one rule for replacing a file, and atomic writes (temp file in the destination
folder, fsync, rename).

A failure, a cancel or a kill leaves either the old file or the new one, never half of one, and no
stray temp file after a failure that Python sees.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from deid._platform import open_flags, restrict_permissions, sync_folder, writeback_advisor
from deid.errors import OutputError, OutputExists

# What a vault recorded at a path ("the sealed package 3f2a…"), or None: supplied by ``agreements``
# so that this module, which knows no vault, still applies the whole rule in one place.
Recorded = Callable[[Path], str | None]


# The two files ``pathshare open`` writes at the top of every folder it opens a package into
# (agreements._manifest.MANIFEST_NAME and SIGNATURE_NAME; a test keeps them equal). A folder holding
# both is an opened package even for commands that use no vault (synth, deid --policy, link).
OPENED_PACKAGE_MARKERS = ("manifest.json", "manifest.sig")


def opened_package_folder(path: Path) -> Path | None:
    """The opened-package folder ``path`` lies in, or None."""
    for folder in Path(path).resolve().parents:
        if all((folder / name).is_file() for name in OPENED_PACKAGE_MARKERS):
            return folder
    return None


def output_exists(path: Path, what: str | None = None) -> OutputExists:
    """The error for an output that would replace ``path`` (``what`` = what the vault recorded there)."""
    if what is not None:
        return OutputExists(
            f"Cannot write {path}: it is {what}, which the vault recorded; such a file is never replaced.",
            "Choose another file name.",
            path=str(path),
            recorded=True,
        )
    return OutputExists(
        f"{path} already exists; nothing was written.",
        "Choose another file name, or replace the file.",
        action="replace",
        path=str(path),
    )


def check_output_path(
    path: str | os.PathLike[str], *, force: bool = False, recorded: Recorded | None = None
) -> Path:
    """``path`` as a Path if an output may be written there, else OutputError.

    The one rule for every file PathShare writes for the user: the folder must exist; an existing
    file is replaced only with ``force`` (the user said so: ``--force``, or yes in the app's confirm
    dialog); and a file the vault recorded (``recorded`` names it) is never replaced, even with force.
    Callers check before the slow work, and :func:`atomic_path` checks again when it renames.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"Cannot write {p}: the folder {parent} does not exist.")
    if p.is_dir():
        raise OutputError(f"Cannot write {p}: it is a folder, not a file name.")
    if os.path.lexists(p):
        what = recorded(p) if recorded is not None else None
        if what is None and (folder := opened_package_folder(p)) is not None:
            what = f"a file of a package opened into {folder}"
        if what is not None or not force:
            raise output_exists(p, what)
    return p


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    mode: int = 0o600,
    *,
    force: bool = False,
    recorded: Recorded | None = None,
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success fsync it and move it to ``path``.

    ``force`` and ``recorded`` as in :func:`check_output_path`, checked first and again at the move:
    without ``force`` the move never replaces a file that appeared meanwhile. The temp file is created
    with ``mode`` (private by default) so data is never world-readable while it is being written.
    """
    dest = check_output_path(path, force=force, recorded=recorded)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent or ".")
    os.close(fd)
    restrict_permissions(tmp, mode)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        check_output_path(dest, force=force, recorded=recorded)
        _move(tmp_path, dest, replace=force)
        _fsync_dir(dest.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def _move(tmp: Path, dest: Path, *, replace: bool) -> None:
    """Move ``tmp`` to ``dest``; unless ``replace``, never over a file that exists by then."""
    if replace:
        os.replace(tmp, dest)
        return
    try:
        os.link(tmp, dest)  # atomic and fails if dest exists: no window between check and move
    except FileExistsError as exc:
        raise output_exists(dest) from exc
    except OSError:
        # No hard links on this file system (FAT on a USB stick, some shares): check, then rename.
        if os.path.lexists(dest):
            raise output_exists(dest) from None
        os.replace(tmp, dest)
    else:
        tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "wb",
    perm: int = 0o600,
    *,
    force: bool = False,
    recorded: Recorded | None = None,
) -> Iterator[IO]:
    """Open a temp file beside ``path`` for writing; move it into place on success (see atomic_path)."""
    with atomic_path(path, perm, force=force, recorded=recorded) as tmp:
        # The temp file exists and is empty: open it without O_TRUNC. Truncating an existing file
        # makes ext4 flush it synchronously on close (its replace-by-truncate safeguard,
        # auto_da_alloc), which cost a 512 MB package 0.19 s on top of the fsync that follows.
        fd = os.open(tmp, os.O_WRONLY | open_flags())
        with open(fd, mode) as fh:
            yield fh
            fh.flush()


def write_bytes_atomic(
    path: str | os.PathLike[str],
    data: bytes,
    perm: int = 0o600,
    *,
    force: bool = False,
    recorded: Recorded | None = None,
) -> None:
    """Write ``data`` to ``path`` atomically (``force``/``recorded`` as in check_output_path)."""
    with atomic_open(path, "wb", perm, force=force, recorded=recorded) as fh:
        fh.write(data)


def _fsync_dir(folder: Path) -> None:
    sync_folder(folder)  # make the rename itself durable (the platform seam knows where it can)


class EarlyWriteback:
    """A binary file wrapper that has the kernel start writing the data to disk as it goes.

    Durable writes end with an fsync, which otherwise waits for the whole file to reach the disk at
    once: 0.22 s for a 512 MB package here, a third of sealing it. Every ``window`` bytes this asks
    the kernel (``posix_fadvise(DONTNEED)``, which starts writeback without waiting for it) to begin
    writing what came before, so the disk works while the caller computes and the final fsync finds
    little left to do. Where ``posix_fadvise`` does not exist (Windows, macOS) it only counts (the
    platform seam, :func:`deid._platform.writeback_advisor`, says which).
    """

    def __init__(self, fh: IO[bytes], window: int = 16 << 20) -> None:
        self._fh = fh
        self._window = window
        self._written = 0
        self._started = 0
        self._hint = writeback_advisor()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = self._fh.write(data)
        self._written += len(data) if n is None else n
        if self._hint is not None and self._written - self._started >= self._window:
            self._fh.flush()
            self._hint(self._fh.fileno(), self._started, self._written - self._started)
            self._started = self._written
        return len(data) if n is None else n

    def flush(self) -> None:
        self._fh.flush()

    def fileno(self) -> int:
        return self._fh.fileno()

    def close(self) -> None:
        self._fh.close()
