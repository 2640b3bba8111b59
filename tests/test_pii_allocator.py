"""The text scanner and the engine run their column work on Arrow's system allocator (deid/_arrowmem.py):
mimalloc's purging of the scanner's freed column-sized buffers cost ~20 % of its CPU time in the kernel."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from deid import TextScanner
from deid._arrowmem import system_allocator


@pytest.fixture
def cached_allocator():
    """The process's default pool set to a caching allocator (mimalloc or jemalloc) for the test."""
    name = next(b for b in ("mimalloc", "jemalloc") if b in pa.supported_memory_backends())
    before = pa.default_memory_pool()
    pool = getattr(pa, f"{name}_memory_pool")()
    pa.set_memory_pool(pool)
    try:
        yield pool
    finally:
        pa.set_memory_pool(before)


def test_the_block_runs_on_the_system_allocator_and_gives_the_previous_one_back(cached_allocator):
    with system_allocator():
        assert pa.default_memory_pool().backend_name == "system"
        with system_allocator():  # nested
            assert pa.default_memory_pool().backend_name == "system"
        assert pa.default_memory_pool().backend_name == "system"
    assert pa.default_memory_pool().backend_name == cached_allocator.backend_name


def test_overlapping_blocks_in_two_threads_give_the_previous_allocator_back_only_at_the_end(cached_allocator):
    inside, leave, seen = threading.Event(), threading.Event(), []

    def other() -> None:
        with system_allocator():
            inside.set()
            leave.wait(5)

    t = threading.Thread(target=other)
    with system_allocator():
        t.start()
        inside.wait(5)
    # this thread's block ended first: the other's still runs, on the system allocator
    seen.append(pa.default_memory_pool().backend_name)
    leave.set()
    t.join(5)
    assert seen == ["system"]
    assert pa.default_memory_pool().backend_name == cached_allocator.backend_name


def test_an_error_inside_the_block_still_gives_the_previous_allocator_back(cached_allocator):
    with pytest.raises(ValueError), system_allocator():
        raise ValueError("boom")
    assert pa.default_memory_pool().backend_name == cached_allocator.backend_name


def test_the_scanner_builds_its_output_on_the_system_allocator(cached_allocator):
    notes = pa.array([f"Called home, left message for Maria Lopez about row {i}." for i in range(20_000)])
    scanner = TextScanner(["Maria Lopez"])
    system = pa.system_memory_pool()
    before = system.bytes_allocated()
    redacted, changed = scanner.redact(notes)
    assert changed == 20_000
    out_bytes = sum(b.size for c in redacted.chunks for b in c.buffers() if b is not None)
    # the redacted column (still held) lives on the system allocator, not on the caching one
    assert system.bytes_allocated() - before >= out_bytes
    assert pa.default_memory_pool().backend_name == cached_allocator.backend_name
    assert "<PERSON>" in redacted[0].as_py() and "Maria" not in redacted[0].as_py()
