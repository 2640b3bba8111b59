"""The platform seam: every difference between Linux, macOS and Windows that PathShare's code knows.

One module, at the bottom of the stack (the engine ``deid``; ``agreements`` and ``desktop`` reach it
through ``deid``'s front door), so that no other module reads ``sys.platform`` or ``os.name`` or calls a
platform's own API. Each function takes ``system`` (a ``sys.platform`` value: ``"linux"``,
``"darwin"``, ``"win32"``) defaulting to the running one, so the tests exercise every branch on Linux
(tests/test_platform.py: the Windows APIs are stood in for; the suite has never run on Windows or
macOS — README says what has and has not been run where).

What differs:

- **file locks** (the vault's lock file): ``flock`` on Linux and macOS — owned by the open file
  description, not the process; ``msvcrt.locking`` on one byte far past the end on Windows — owned by
  the handle. Both are dropped by the kernel when the process dies.
- **open flags**: Windows needs ``O_BINARY`` (or it translates newlines) and ``O_NOINHERIT`` (or a child
  process inherits the handle, and with it the vault's lock).
- **early writeback**: ``posix_fadvise(DONTNEED)`` exists on Linux only; elsewhere sealing just writes.
- **giving memory back**: glibc's ``malloc_trim`` (Linux) after a large batch; nothing elsewhere.
- **durable renames**: a folder is fsynced after a rename into it on POSIX; Windows cannot open a
  folder as a file, and NTFS journals the rename itself.
- **file permissions**: 0600/0700 modes on Linux and macOS. On Windows ``chmod`` only sets the read-only
  flag, so it is not called: there a file is private because it lies in the user's profile folder,
  whose access list admits only that user (the default vault folder, under ``%LOCALAPPDATA%``).
- **folders**: the default vault folder and the folder file dialogs start in, from ``platformdirs``.
- **file associations**: how a double-clicked ``.age`` package reaches the app — as an argument on Linux
  (the ``.desktop`` entry) and Windows, as an "open file" event on macOS (Info.plist's document types)
  — and what registers the association.
- **the account name** the audit log records: the account database on POSIX (``pwd``), the token's
  account on Windows (``GetUserNameW``); never an environment variable (``LOGNAME=jsmith`` would lie).
- **a display**: Linux and the BSDs need X11 or Wayland for the window; Windows and macOS always have one.
- **whether a process still runs** (to remove what a killed run left): ``kill(pid, 0)`` on POSIX; on
  Windows signal 0 is CTRL_C_EVENT, so it is never sent there and the answer is "maybe" (left alone).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WINDOWS, MACOS, LINUX = "win32", "darwin", "linux"
# The Windows lock is a one-byte region far beyond the holder's note in the lock file, so the note stays
# readable (Windows region locks are mandatory: a locked byte cannot be read by anyone else).
WINDOWS_LOCK_OFFSET = 1 << 30


def current_system(system: str | None = None) -> str:
    """``system`` when given, else the running platform (``sys.platform``): the one place it is read."""
    return sys.platform if system is None else system


def is_windows(system: str | None = None) -> bool:
    return current_system(system) == WINDOWS


def _is_linux(system: str | None) -> bool:
    return current_system(system).startswith(LINUX)


# --- file locks ------------------------------------------------------------------------------------


def try_lock_file(fd: int, system: str | None = None) -> bool:
    """Take an exclusive lock on the open file ``fd`` without waiting: True if taken, False if another
    holder has it; any other failure raises OSError."""
    if is_windows(system):
        import msvcrt

        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def unlock_file(fd: int, system: str | None = None) -> None:
    """Give up the lock :func:`try_lock_file` took on ``fd``."""
    if is_windows(system):
        import msvcrt

        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


def open_flags(*, inherit: bool = True, system: str | None = None) -> int:
    """Flags to add to ``os.open``: binary mode on Windows, and not inherited by child processes there
    when ``inherit`` is False (elsewhere Python's descriptors are not inherited anyway)."""
    if not is_windows(system):
        return 0
    flags = getattr(os, "O_BINARY", 0)
    if not inherit:
        flags |= getattr(os, "O_NOINHERIT", 0)
    return flags


# --- writing and memory ----------------------------------------------------------------------------


def writeback_advisor(system: str | None = None) -> Callable[[int, int, int], None] | None:
    """A function ``(fd, offset, length)`` asking the kernel to start writing that range to disk now
    (``posix_fadvise(DONTNEED)``), or None where there is none (Windows, macOS)."""
    fadvise = getattr(os, "posix_fadvise", None)
    if not _is_linux(system) or fadvise is None:
        return None
    advice = os.POSIX_FADV_DONTNEED

    def advise(fd: int, offset: int, length: int) -> None:
        with contextlib.suppress(OSError):  # a hint only: a file system may not support it
            fadvise(fd, offset, length, advice)

    return advise


_TRIMMER: dict[str, Any] = {}


def heap_trimmer(system: str | None = None) -> Any:
    """glibc (a ``ctypes`` handle with ``malloc_trim``) on Linux, set to keep fewer malloc arenas; None
    elsewhere or when it cannot be loaded. Loaded once."""
    if not _is_linux(system):
        return None
    if "libc" not in _TRIMMER:
        lib = None
        import ctypes
        import ctypes.util

        with contextlib.suppress(OSError, AttributeError, TypeError):
            name = ctypes.util.find_library("c")
            candidate = ctypes.CDLL(name) if name else None
            if candidate is not None and hasattr(candidate, "malloc_trim"):
                candidate.mallopt(-8, 2)  # M_ARENA_MAX: fewer arenas keep fewer freed blocks
                lib = candidate
        _TRIMMER["libc"] = lib
    return _TRIMMER["libc"]


def sync_folder(folder: str | os.PathLike[str], system: str | None = None) -> bool:
    """Make a rename into ``folder`` durable (fsync the folder). Windows cannot open a folder as a file
    (NTFS makes the rename durable itself): nothing to do there. Returns whether the folder was synced;
    a file system that refuses is not an error."""
    if is_windows(system):
        return False
    try:
        fd = os.open(os.fspath(folder) or ".", os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fsync(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    return True


def restrict_permissions(path: str | os.PathLike[str], mode: int, system: str | None = None) -> None:
    """Give ``path`` the POSIX ``mode`` (0o600: only the owner reads and writes). Not on Windows, where
    ``chmod`` sets only the read-only flag and privacy comes from the profile folder's access list."""
    if is_windows(system):
        return
    os.chmod(path, mode)


# --- folders ---------------------------------------------------------------------------------------


def _dirs(system: str | None) -> Any:
    from platformdirs.macos import MacOS
    from platformdirs.unix import Unix
    from platformdirs.windows import Windows

    kind = {WINDOWS: Windows, MACOS: MacOS}.get(current_system(system), Unix)
    return kind(appname="PathShare", appauthor=False)


def user_data_folder(system: str | None = None) -> Path:
    """Where PathShare keeps the vault by default: ``~/.local/share/PathShare`` (Linux, or
    ``$XDG_DATA_HOME``), ``~/Library/Application Support/PathShare`` (macOS),
    ``%LOCALAPPDATA%\\PathShare`` (Windows: not roaming, so the vault stays on this computer)."""
    return Path(_dirs(system).user_data_dir)


def documents_dir(system: str | None = None) -> str:
    """The user's Documents folder as the platform names it (it may not exist)."""
    return str(_dirs(system).user_documents_dir)


def documents_folder(system: str | None = None) -> Path:
    """The folder file dialogs start in before the user has chosen one: the user's Documents folder
    when it exists, else the home folder."""
    with contextlib.suppress(Exception):  # a Windows registry or a Linux user-dirs file may be missing
        docs = Path(documents_dir(system))
        if docs.is_dir():
            return docs
    return Path.home()


# --- file associations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FileAssociation:
    """How a double-clicked package reaches the app on one platform, and what registers the type."""

    delivery: str  # "argument": the path is on the command line; "open event": Qt's QFileOpenEvent
    registered_by: str  # what tells the desktop that PathShare opens *.age (None registered: says so)


def file_association(system: str | None = None) -> FileAssociation:
    """The ``.age`` association of ``system``."""
    s = current_system(system)
    if s == MACOS:
        return FileAssociation("open event", "the app bundle's Info.plist (CFBundleDocumentTypes, "
                               "packaging/pathshare.spec)")  # fmt: skip
    if s == WINDOWS:
        return FileAssociation("argument", "nothing yet: the one-folder build has no installer to write "
                               "the registry keys; use Open with… or File → Open package")  # fmt: skip
    return FileAssociation("argument", "packaging/linux/pathshare.desktop and pathshare-mime.xml "
                           "(packaging/linux/install.sh)")  # fmt: skip


# --- the user and the screen -----------------------------------------------------------------------


def account_name(system: str | None = None) -> str:
    """The name of the operating-system account this process runs as: the audit log's actor.

    Asked of the OS's account database, never of environment variables: ``getpass.getuser()`` reads
    LOGNAME, USER, LNAME and USERNAME first, so ``LOGNAME=jsmith pathshare …`` would be logged as jsmith.
    """
    if is_windows(system):
        return windows_account_name()
    return posix_account_name()


def posix_account_name() -> str:
    import pwd

    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (some containers): the number is still the truth
        return f"uid {uid}"


def windows_account_name(advapi32: Any = None) -> str:
    """GetUserNameW: the account of the calling thread's security token (not %USERNAME%).

    ``advapi32`` is the DLL (``ctypes.windll.advapi32``); tests pass a stand-in. If the call fails there
    is no trustworthy name, and "unknown" is recorded rather than an environment variable.
    """
    import ctypes

    if advapi32 is None:
        advapi32 = ctypes.windll.advapi32  # type: ignore[attr-defined]
    size = ctypes.c_ulong(257)  # UNLEN + 1
    buffer = ctypes.create_unicode_buffer(size.value)
    if not advapi32.GetUserNameW(buffer, ctypes.byref(size)) or not buffer.value:
        return "unknown"
    return str(buffer.value)


def display_missing(environ: Mapping[str, str] | None = None, system: str | None = None) -> bool:
    """True when a window cannot open: on Linux and the BSDs Qt needs an X11 or Wayland display (without
    one it aborts the process, exit 134). Windows and macOS always have a screen session for a desktop
    user, and an explicit QT_QPA_PLATFORM (offscreen in tests, or the user's choice) is respected."""
    env = os.environ if environ is None else environ
    if current_system(system).startswith(("win", "darwin")) or env.get("QT_QPA_PLATFORM"):
        return False
    return not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def process_running(pid: int, system: str | None = None) -> bool:
    """Whether process ``pid`` of this machine may still be running: False only when it surely is not.
    On Windows ``os.kill(pid, 0)`` would send CTRL_C_EVENT, so the answer there is always True (what a
    run there leaves behind is left alone rather than risk another run's files)."""
    if is_windows(system):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # (another user's process: it exists)
    return True
