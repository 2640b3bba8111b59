"""The vault's own lock: at most one process has a vault open at a time.

Why not SQLite's locks alone: on Linux and macOS they are POSIX advisory (``fcntl``) locks, which belong
to the *process* and are all released by *any* ``close()`` of the file in that process — a file dialog
listing the vault's folder, an icon provider, a thumbnailer, Python code that opens the path. With them
gone, another process that closes its connection believes it is alone, checkpoints and deletes the WAL
under the first one, and whatever the first one writes afterwards is lost (the audit chain cannot see
entries that never reached it). See docs/vault-and-audit.md, "One process at a time".

So PathShare takes a lock of its own on ``<vault>.lock`` before it opens the vault and holds it until it
closes it (the platform's lock calls are in the platform seam, deid/_platform.py). The lock is an
``flock()`` lock on POSIX — it belongs to the open file *description*, so
another descriptor of the same file being closed (even ``<vault>.lock`` itself) does not release it — and
a ``msvcrt.locking`` region lock on Windows (per handle, released only with it). The kernel drops it
when the holder dies, so a killed process never leaves a stale lock. While one process holds it, no
other process has an SQLite connection to the vault at all, so nothing SQLite's own locks forget can
fork or delete anything. The holder writes its process id and what it is (the app, a command, a
background job) into the lock file, so a refusal can name it.

Within one process several :class:`Vault` objects may share the lock (SQLite coordinates connections of
one process itself, without file locks); a forked child never inherits it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agreements.errors import VaultError, VaultInUse
from deid import open_flags, try_lock_file, unlock_file

LOCK_SUFFIX = ".lock"
# How long a process waits for another one to close the vault before it gives up (seconds). Commands
# and background jobs hold the vault for seconds; the app gives it up whenever it is idle.
DEFAULT_WAIT = 30.0
_NOTE_LIMIT = 4096

# Who this process is, written into the lock file for the refusal sentence: "app", "command", "job"
# or "program" (library use). Set once at start-up by the app, the CLI and the worker.
_program = "program"
_on_wait: Callable[[str], None] | None = None


def identify_vault_user(program: str, on_wait: Callable[[str], None] | None = None) -> None:
    """Say what this process is ("app", "command", "job") for other processes' refusals, and give a
    callback that is told, once, when opening the vault has to wait for another process."""
    global _program, _on_wait
    _program = program
    _on_wait = on_wait


# --- the lock ----------------------------------------------------------------------------------------


@dataclass
class _Held:
    fd: int
    users: int


_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _after_fork_in_child() -> None:
    # The child shares the parent's open file descriptions, so it would share the lock too: forget it
    # (closing the child's copies leaves the parent's lock in place) and take its own when it opens.
    for held in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(held.fd)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def lock_path(vault_path: Path) -> Path:
    """``<vault>.lock`` beside the vault."""
    return vault_path.with_name(vault_path.name + LOCK_SUFFIX)


def read_only_sentence(vault_path: Path) -> str:
    return (
        f"The vault at {vault_path} is on a read-only disk or in a read-only folder; "
        "copy it to a folder you can write to and open it there."
    )


def _open_lock_file(path: Path, vault_path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | open_flags(inherit=False)
    try:
        return os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise VaultError(read_only_sentence(vault_path)) from exc
        raise VaultError(f"Cannot open the vault at {vault_path}: {exc.strerror or exc}.") from exc


def _write_note(fd: int) -> None:
    note = json.dumps({"pid": os.getpid(), "program": _program}).encode()
    with contextlib.suppress(OSError):
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, note.ljust(_NOTE_LIMIT // 16))  # spaces pad over a longer, older note
        os.lseek(fd, 0, os.SEEK_SET)


def _clear_note(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, b" " * (_NOTE_LIMIT // 16))


def _read_note(path: Path) -> tuple[int | None, str]:
    """(pid, program) of the holder, as far as its note says."""
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(_NOTE_LIMIT // 16).decode() or "{}")
        pid = data.get("pid")
        program = str(data.get("program") or "program")
        return (int(pid) if isinstance(pid, int) and pid > 0 else None), program
    except (OSError, ValueError, AttributeError):
        return None, "program"


def _who(pid: int | None, program: str) -> str:
    if pid is None:
        return "another PathShare"
    what = {"app": "PathShare", "command": "another pathshare command", "job": "a PathShare background job"}
    return f"{what.get(program, 'another program')} (process {pid})"


def in_use_sentence(pid: int | None, program: str) -> str:
    """The one sentence that names who has the vault open."""
    if pid is not None and program == "app":
        return f"This vault is open in {_who(pid, program)}; close it there first."
    return f"This vault is in use by {_who(pid, program)}; try again when it has finished."


class VaultLock:
    """This process's hold on one vault (see the module's docstring). Release with :meth:`release`."""

    def __init__(self, key: str, path: Path) -> None:
        self._key = key
        self.path = path
        self._released = False

    @classmethod
    def acquire(cls, vault_path: Path, wait: float | None = None) -> VaultLock:
        """Take the vault's lock, waiting up to ``wait`` seconds (default :data:`DEFAULT_WAIT`) for
        another process to close it.

        Raises VaultInUse naming the holder, or VaultError when the lock file cannot be made."""
        path = lock_path(Path(os.path.realpath(vault_path)))
        key = str(path)
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None:
                held.users += 1
                return cls(key, path)
        fd = _open_lock_file(path, Path(vault_path))
        deadline = time.monotonic() + (DEFAULT_WAIT if wait is None else max(0.0, wait))
        told = False
        started = time.monotonic()
        try:
            while not try_lock_file(fd):
                with _HELD_GUARD:
                    held = _HELD.get(key)
                    if held is not None:  # another thread of this process took it meanwhile: share it
                        held.users += 1
                        os.close(fd)
                        return cls(key, path)
                pid, program = _read_note(path)
                if pid == os.getpid():  # another thread of ours is between its check and its lock
                    pid = None
                if time.monotonic() >= deadline:
                    raise VaultInUse(in_use_sentence(pid, program), pid=pid)
                if not told and _on_wait is not None and time.monotonic() - started > 1.0:
                    told = True
                    _on_wait(f"Waiting for the vault: it is in use by {_who(pid, program)}.")
                time.sleep(random.uniform(0.02, 0.08))
        except BaseException:
            os.close(fd)
            raise
        _write_note(fd)
        with _HELD_GUARD:
            other = _HELD.get(key)
            if other is not None:  # another thread of this process got there first: share its lock
                other.users += 1
                os.close(fd)
            else:
                _HELD[key] = _Held(fd, 1)
        return cls(key, path)

    def __del__(self) -> None:
        # A Vault dropped without close() (its connection goes with it) must not keep others out.
        with contextlib.suppress(Exception):
            self.release()

    def release(self) -> None:
        """Give the lock up (idempotent); the last user in this process unlocks the file."""
        if self._released:
            return
        self._released = True
        with _HELD_GUARD:
            held = _HELD.get(self._key)
            if held is None:
                return
            held.users -= 1
            if held.users > 0:
                return
            del _HELD[self._key]
            _clear_note(held.fd)
            with contextlib.suppress(OSError):
                unlock_file(held.fd)
            os.close(held.fd)
