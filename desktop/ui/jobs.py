"""Job functions run in the worker process (no Qt here), and the worker's entry point.

Each job is a thin adapter: it calls one library function (``deid`` / ``agreements``) and reduces the
result to a small picklable summary for the window — never the whole table. Tables the window must
show (the before/after preview) cross as Arrow IPC in shared memory, which the window maps without a
copy (see :func:`table_to_shm` / :func:`table_from_shm`).
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Progress = Callable[[float, str], None]


@dataclass
class JobContext:
    """What every job gets besides its own arguments."""

    progress: Progress
    vault: Any = None  # an open agreements Vault when the job named one
    shm_prefix: str = "ps_"


def run_job(spec: dict[str, Any], progress: Progress) -> Any:
    """Resolve ``spec["func"]``, open the vault if asked, and run the job."""
    module_name, _, func_name = spec["func"].partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    vault = None
    if spec.get("vault_path"):
        from agreements._vault import Vault

        vault = Vault.open(spec["vault_path"], spec.get("passphrase") or "")
    ctx = JobContext(progress=progress, vault=vault, shm_prefix=spec.get("shm_prefix") or "ps_")
    try:
        return func(ctx, **spec.get("kwargs", {}))
    finally:
        close = getattr(vault, "close", None)
        if close:
            close()


def worker_main(conn: Any) -> None:
    """Entry point of the worker process: read one job from the pipe, run it, send the outcome."""
    from deid.errors import PathShareError

    spec = conn.recv()
    last = [0.0]

    def progress(fraction: float, stage: str) -> None:
        # Throttle: the window polls every 40 ms; more messages would only fill the pipe.
        now = time.monotonic()
        if now - last[0] >= 0.03 or fraction >= 1.0:
            last[0] = now
            conn.send(("progress", float(fraction), str(stage)))

    try:
        result = run_job(spec, progress)
    except PathShareError as exc:
        conn.send(("error", type(exc).__name__, str(exc)))
    except MemoryError:
        conn.send(("error", "PathShareError", "Out of memory; try a smaller file or close other programs."))
    except Exception as exc:
        # A bug, not a user error: the traceback goes to the terminal only, the window gets a sentence.
        traceback.print_exc(file=sys.stderr)
        message = f"Unexpected failure in the background job ({type(exc).__name__})."
        conn.send(("error", "PathShareError", message))
    else:
        conn.send(("ok", result))
    conn.close()


# --- tables through shared memory ------------------------------------------------------------------


def table_to_shm(table: Any, name: str) -> str:
    """Write a pyarrow Table as Arrow IPC into a new shared-memory block ``name``; return the name."""
    from multiprocessing import shared_memory

    import pyarrow as pa

    sink = pa.MockOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    size = max(1, sink.size())
    block = shared_memory.SharedMemory(name=name, create=True, size=size)
    stream = pa.FixedSizeBufferWriter(pa.py_buffer(block.buf))
    with pa.ipc.new_stream(stream, table.schema) as writer:
        writer.write_table(table)
    # Closing our mapping is safe; the block lives until the window unlinks it.
    del stream
    block.close()
    return name


class ShmTable:
    """A pyarrow Table mapped from shared memory without a copy; ``release()`` unlinks it."""

    def __init__(self, name: str) -> None:
        from multiprocessing import shared_memory

        import pyarrow as pa

        self.name = name
        self._block = shared_memory.SharedMemory(name=name)
        reader = pa.ipc.open_stream(pa.py_buffer(self._block.buf))
        self.table = reader.read_all()

    def release(self) -> None:
        """Drop the table and remove the shared-memory block."""
        import contextlib

        self.table = None
        import gc

        gc.collect()  # buffers exported from the block must go before it can close
        with contextlib.suppress(BufferError):
            self._block.close()
        with contextlib.suppress(FileNotFoundError):
            self._block.unlink()


# --- the jobs ---------------------------------------------------------------------------------------


def selftest(ctx: JobContext, out: str, steps: int = 20, delay: float = 0.05) -> dict[str, Any]:
    """A job that writes ``out`` atomically in ``steps`` slow steps (for tests of cancel and progress)."""
    from deid._atomic import atomic_open

    with atomic_open(out, "wb") as fh:
        for i in range(steps):
            fh.write(b"x" * 1024)
            fh.flush()
            ctx.progress((i + 1) / steps, f"step {i + 1} of {steps}")
            time.sleep(delay)
    return {"out": out, "steps": steps}
