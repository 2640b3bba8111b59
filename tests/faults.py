"""Faults the streaming tests inject (`from faults import ...`: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import errno

import pyarrow as pa
import pytest


def disk_full_on_arrow_write(monkeypatch: pytest.MonkeyPatch, at: int = 3) -> list[int]:
    """Every Arrow IPC file written from now on finds the disk full at its ``at``-th table written (counted
    across files). Returns the list of rows each write held, for the test to check how far it got."""
    real = pa.ipc.new_file
    writes: list[int] = []

    class Full:
        def __init__(self, writer) -> None:
            self.writer = writer

        def write_table(self, table):
            writes.append(table.num_rows)
            if len(writes) == at:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.writer.write_table(table)

        def __getattr__(self, name: str):
            return getattr(self.writer, name)

    monkeypatch.setattr(pa.ipc, "new_file", lambda *a, **kw: Full(real(*a, **kw)))
    return writes
