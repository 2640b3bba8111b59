"""Work off the UI thread: the one helper every screen uses (after Picard's ``run_task``).

Two kinds of work:

* **Long jobs** (de-identify, prepare, seal, open a package) run in a worker *process* started with the
  ``spawn`` context. pandas, pyarrow-heavy Python code and pyrage hold the GIL, so a thread would stall
  the window; a process cannot. The job (and the vault passphrase) goes to the worker over a pipe —
  never the command line or the environment. Progress comes back over the same pipe and is polled by
  a QTimer; the result is a small picklable object; an error comes back as (class name, message) and
  is raised again here as the matching PathShareError. Cancel terminates the process and deletes the
  temp files the libraries' atomic writes leave beside each declared output (``.NAME.*.partial``).
* **Short work** (opening or creating the vault: a key derivation) runs with :func:`run_task` on a
  named QThreadPool; ``"vault"`` is a one-thread pool so vault writes never race.

Tests swap :class:`ProcessRunner` for :class:`SyncRunner`, which runs the same job function in-process.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from deid.errors import Cancelled, PathShareError
from desktop.ui.problems import user_error

POLL_MS = 40


# PySide6 6.12 on Python 3.11 (where True and False are not immortal) returns the bool of
# SignalInstance.emit() without a reference of its own: every emit from Python takes one reference
# from True, and after a few thousand the interpreter aborts ("deallocating True or False"). emit()
# below gives that reference back when this build needs it (measured once, at first use).
_EMIT_STEALS: bool | None = None


class _Probe(QObject):
    ping = Signal()


def _emit_steals_a_bool() -> bool:
    probe = _Probe()
    before = sys.getrefcount(True) + sys.getrefcount(False)
    for _ in range(4):
        result = probe.ping.emit()
        del result
    return sys.getrefcount(True) + sys.getrefcount(False) <= before - 4


def emit(signal: Any, *args: Any) -> None:
    """``signal.emit(*args)``, safe from PySide6's stolen bool reference (see above)."""
    global _EMIT_STEALS
    if _EMIT_STEALS is None:
        _EMIT_STEALS = _emit_steals_a_bool()
    result = signal.emit(*args)
    if _EMIT_STEALS and isinstance(result, bool):
        import ctypes

        ctypes.pythonapi.Py_IncRef(ctypes.py_object(result))


@dataclass(frozen=True)
class Job:
    """A long job: ``func`` is ``"module:function"`` run in the worker (see desktop.ui.jobs)."""

    func: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    vault_path: str | None = None  # the worker opens this vault with the passphrase sent over the pipe
    outputs: tuple[str, ...] = ()  # files the job may write: their partial temp files go on cancel
    # Temp folders/files a library makes while working (glob patterns, e.g. "DIR/.pathshare-open-*"):
    # removed on cancel or failure when they appeared after the job started.
    scratch: tuple[str, ...] = ()
    # Folders in which the job's library makes its private run folders (deid.private_folder: DuckDB's
    # spill, with a note of the process that made it): once the worker is stopped, the run folders there
    # whose process is gone go — its own, never a concurrent job's beside the same output.
    run_folders: tuple[str, ...] = ()
    # Folders the job creates: removed on cancel or failure if they did not exist when it started.
    new_dirs: tuple[str, ...] = ()
    title: str = "Working"
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def shm_prefix(self) -> str:
        """Prefix of shared-memory blocks the job may create (removed on cancel)."""
        return f"ps_{self.job_id}_"


def error_from_wire(class_name: str, message: str, hint: str | None = None) -> PathShareError:
    """Rebuild a PathShareError subclass by name, with its hint (unknown names become PathShareError)."""
    from agreements import errors as a_errors
    from deid import errors as d_errors

    for module in (d_errors, a_errors):
        cls = getattr(module, class_name, None)
        if isinstance(cls, type) and issubclass(cls, PathShareError):
            try:
                return cls(message, hint=hint)
            except TypeError:  # a subclass with its own signature (VaultInUse): the sentence is what counts
                return cls(message)
    return PathShareError(message, hint)


def remove_partials(outputs: tuple[str, ...] | list[str]) -> list[Path]:
    """Delete the atomic-write temp files (``.NAME.*.partial``) beside each output; return them."""
    removed: list[Path] = []
    for out in outputs:
        dest = Path(out)
        folder = dest.parent if str(dest.parent) else Path(".")
        if not folder.is_dir():
            continue
        for tmp in folder.glob(f".{dest.name}.*.partial"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def remove_shared_memory(prefix: str) -> None:
    """Remove the shared-memory blocks a cancelled or killed worker may have left (``prefix*``)."""
    shm_dir = Path("/dev/shm")
    if shm_dir.is_dir():
        for block in shm_dir.glob(f"{prefix}*"):
            with contextlib.suppress(FileNotFoundError):
                block.unlink()
        return
    from multiprocessing import shared_memory

    for suffix in ("before", "after"):  # elsewhere names cannot be listed: try the ones jobs use
        try:
            block = shared_memory.SharedMemory(name=prefix + suffix)
        except (FileNotFoundError, OSError):
            continue
        block.close()
        with contextlib.suppress(FileNotFoundError):
            block.unlink()


def _snapshot(job: Job) -> tuple[float, set[str]]:
    """What existed before the job started (so cleanup never touches anything older)."""
    return time.time(), {d for d in job.new_dirs if Path(d).exists()}


def remove_scratch(job: Job, started: float, existed: set[str]) -> None:
    """Remove the job's scratch paths made since ``started`` and the new folders it created."""
    import glob
    import shutil

    for pattern in job.scratch:
        for name in glob.glob(pattern):
            p = Path(name)
            try:
                if p.lstat().st_mtime < started - 1:
                    continue
            except FileNotFoundError:
                continue
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
    for d in job.new_dirs:
        if d not in existed and Path(d).is_dir():
            shutil.rmtree(d, ignore_errors=True)
    if job.run_folders:
        from deid import sweep_left_behind

        for parent in job.run_folders:
            if Path(parent).is_dir():
                sweep_left_behind(parent)


class TaskHandle(QObject):
    """One running job. Signals arrive on the UI thread."""

    progress = Signal(float, str)  # fraction 0..1, stage (a short phrase)
    succeeded = Signal(object)  # the job's small result
    failed = Signal(object)  # a PathShareError (show str(error))
    cancelled = Signal()
    done = Signal()  # after any of the three above

    def __init__(self, job: Job, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self._started, self._existed = _snapshot(job)
        self.finished = False
        self.result: Any = None
        self.error: PathShareError | None = None

    def cancel(self) -> None:
        """Stop the job; nothing it was writing is left behind."""
        raise NotImplementedError

    def _finish(self, kind: str, value: Any = None) -> None:
        if self.finished:
            return
        self.finished = True
        if kind == "ok":
            self.result = value
            emit(self.succeeded, value)
        elif kind == "error":
            self.error = value
            emit(self.failed, value)
        else:
            emit(self.cancelled)
        emit(self.done)


class _ProcessHandle(TaskHandle):
    def __init__(self, job: Job, passphrase: str | None, parent: QObject | None = None) -> None:
        super().__init__(job, parent)
        from desktop.ui.jobs import worker_main

        ctx = multiprocessing.get_context("spawn")
        self._conn, child_conn = ctx.Pipe(duplex=True)
        self._process = ctx.Process(target=worker_main, args=(child_conn,), daemon=True, name="pathshare-job")
        with _main_not_reimported():
            self._process.start()
        child_conn.close()
        # The passphrase travels only over this pipe (never argv or the environment).
        self._conn.send(
            {
                "func": job.func,
                "kwargs": job.kwargs,
                "vault_path": job.vault_path,
                "passphrase": passphrase,
                "shm_prefix": job.shm_prefix,
            }
        )
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def _poll(self) -> None:
        try:
            while self._conn.poll():
                message = self._conn.recv()
                kind = message[0]
                if kind == "progress":
                    emit(self.progress, float(message[1]), str(message[2]))
                elif kind == "ok":
                    self._stop()
                    self._finish("ok", message[1])
                    return
                elif kind == "error":
                    self._stop()
                    self._cleanup()
                    error = error_from_wire(*message[1:])
                    self._finish("cancel" if isinstance(error, Cancelled) else "error", error)
                    return
        except (EOFError, OSError):
            pass
        if not self._process.is_alive():
            code = self._process.exitcode
            self._stop()
            self._cleanup()
            message = f"The background job stopped unexpectedly (exit code {code})."
            self._finish("error", PathShareError(message))

    def _stop(self) -> None:
        # The worker has sent its last word; its interpreter may take a few hundred ms to shut down
        # (pandas, pyarrow). Never wait for that on the UI thread: reap it later.
        self._timer.stop()
        with contextlib.suppress(OSError):
            self._conn.close()
        _reap_later(self._process)

    def _cleanup(self) -> None:
        remove_partials(self.job.outputs)
        remove_scratch(self.job, self._started, self._existed)
        remove_shared_memory(self.job.shm_prefix)

    def cancel(self) -> None:
        if self.finished:
            return
        self._timer.stop()
        self._process.terminate()
        self._process.join(timeout=3)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=3)
        with contextlib.suppress(OSError):
            self._conn.close()
        self._cleanup()
        self._finish("cancel")


_EXITING: list[Any] = []
_REAPER: QTimer | None = None


def _reap_later(process: Any) -> None:
    """Join finished workers without blocking: poll them from a timer; kill one that lingers."""
    global _REAPER
    process._ps_deadline = time.monotonic() + 10  # type: ignore[attr-defined]
    _EXITING.append(process)
    if _REAPER is None:
        _REAPER = QTimer()
        _REAPER.setInterval(200)
        _REAPER.timeout.connect(_reap)
    _REAPER.start()


def _reap() -> None:
    for process in list(_EXITING):
        if not process.is_alive():
            process.join(timeout=0)
            _EXITING.remove(process)
        elif time.monotonic() > process._ps_deadline:
            process.kill()
    if not _EXITING and _REAPER is not None:
        _REAPER.stop()


@contextlib.contextmanager
def _main_not_reimported() -> Any:
    """Start a spawn child without it re-running ``__main__`` (a script, pytest, the console script):
    the worker needs only desktop.ui.jobs, and re-running a main script could start another app."""
    main = sys.modules.get("__main__")
    saved: dict[str, Any] = {}
    if main is not None:
        for name in ("__file__", "__spec__"):
            if hasattr(main, name):
                saved[name] = getattr(main, name)
        main.__spec__ = None
        if "__file__" in saved:
            del main.__file__
    try:
        yield
    finally:
        if main is not None:
            for name, value in saved.items():
                setattr(main, name, value)


class _SyncHandle(TaskHandle):
    """Runs the job function in this process on the next event-loop turn (tests)."""

    def __init__(self, job: Job, passphrase: str | None, parent: QObject | None = None) -> None:
        super().__init__(job, parent)
        self._passphrase = passphrase
        self._cancel_requested = False
        QTimer.singleShot(0, self._run)

    def _run(self) -> None:
        from desktop.ui.jobs import run_job

        def progress(fraction: float, stage: str) -> None:
            emit(self.progress, float(fraction), stage)
            if self._cancel_requested:
                raise Cancelled("Cancelled; nothing was written.")

        spec = {
            "func": self.job.func,
            "kwargs": self.job.kwargs,
            "vault_path": self.job.vault_path,
            "passphrase": self._passphrase,
            "shm_prefix": self.job.shm_prefix,
        }
        try:
            result = run_job(spec, progress)
        except Cancelled:
            remove_partials(self.job.outputs)
            remove_scratch(self.job, self._started, self._existed)
            self._finish("cancel")
        except Exception as exc:  # as in the worker: one sentence for the window (problems.py)
            remove_partials(self.job.outputs)
            remove_scratch(self.job, self._started, self._existed)
            self._finish("error", user_error(exc))
        else:
            self._finish("ok", result)

    def cancel(self) -> None:
        if self.finished:
            return
        self._cancel_requested = True
        remove_partials(self.job.outputs)
        self._finish("cancel")


class ProcessRunner:
    """Starts each job in a fresh worker process (the application's runner)."""

    def start(self, job: Job, passphrase: str | None = None) -> TaskHandle:
        """Start ``job``; connect to the returned handle's signals."""
        return _ProcessHandle(job, passphrase)


class SyncRunner:
    """Runs jobs in-process, on the event loop (for tests: same job functions, no process)."""

    def start(self, job: Job, passphrase: str | None = None) -> TaskHandle:
        """Start ``job`` on the next event-loop turn."""
        return _SyncHandle(job, passphrase)


# --- short work on thread pools (Picard's run_task) ------------------------------------------------


class _Relay(QObject):
    done = Signal(object, object)  # result, error


_POOLS: dict[str, QThreadPool] = {}
_LIVE: dict[int, _Relay] = {}
_COUNTER = itertools.count()


def pool(name: str) -> QThreadPool:
    """The named pool; ``"vault"`` has one thread that never expires (one vault connection, no races)."""
    if name not in _POOLS:
        p = QThreadPool()
        if name == "vault":
            p.setMaxThreadCount(1)
            p.setExpiryTimeout(-1)
        _POOLS[name] = p
    return _POOLS[name]


class _Runnable(QRunnable):
    def __init__(self, func: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self._func = func
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._func()
        except Exception as exc:  # never let a raw exception cross threads
            emit(self._relay.done, None, user_error(exc))
        else:
            emit(self._relay.done, result, None)


def run_task(
    func: Callable[[], Any],
    on_done: Callable[[Any], None],
    on_error: Callable[[PathShareError], None],
    pool_name: str = "default",
    synchronous: bool = False,
) -> None:
    """Run ``func`` on a pool thread; call ``on_done(result)`` or ``on_error(error)`` on the UI thread."""
    if synchronous or os.environ.get("PATHSHARE_SYNC_TASKS") == "1":
        try:
            result = func()
        except Exception as exc:  # as on a pool thread
            on_error(user_error(exc))
        else:
            on_done(result)
        return
    key = next(_COUNTER)
    relay = _Relay()
    _LIVE[key] = relay  # keep the relay alive until it has delivered

    def deliver(result: Any, error: PathShareError | None) -> None:
        _LIVE.pop(key, None)
        if error is not None:
            on_error(error)
        else:
            on_done(result)

    relay.done.connect(deliver)
    pool(pool_name).start(_Runnable(func, relay))


def wait_pools(timeout_ms: int = 10_000) -> None:
    """Wait for every pool to drain (at quit, and in tests)."""
    deadline = time.monotonic() + timeout_ms / 1000
    for p in _POOLS.values():
        p.waitForDone(max(0, int((deadline - time.monotonic()) * 1000)))
