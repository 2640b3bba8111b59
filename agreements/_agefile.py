"""Streaming age encryption and decryption for packages, errors translated; the front door over
:mod:`agreements._age` (the format itself).

Packages are standard age files (X25519 recipients, binary, the STREAM payload format), so a recipient
can always fall back to the stock ``age`` CLI. Memory stays flat whatever the size:

* ``encrypt_chunks`` encrypts an iterator of byte chunks (the package tar, generated on the fly:
  never built in memory nor written to disk);
* ``decrypt_to`` decrypts into any writable. A 64 KiB chunk is released only after its tag verified,
  but earlier chunks are released before a later one fails (truncation, a flipped byte): callers
  decrypt into a private place and trust nothing until ``decrypt_to`` returned.

Two threads share the work: the caller's thread produces (sealing: reads the sources, hashes them,
frames the tar) or consumes (opening: unpacks, hashes, writes the files), and a helper thread encrypts
and writes, or reads and decrypts. Both sides spend their time in OpenSSL, hashlib or system calls,
which release the GIL, so they run in parallel on two cores (measured in ``make bench``); a bounded
queue between them keeps memory flat. Progress callbacks and cancels stay on the caller's thread.

Every decryption failure comes out as :class:`AgeFailure` (a :class:`~agreements.errors.PackageRejected`)
whose ``kind`` says which stage failed — ``header``, ``no match``, ``hmac``, ``payload`` or ``armor`` —
and whose message is one plain sentence.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO

import pyrage

from agreements import _age
from agreements._age import ARMOR, HEADER, HMAC, NO_MATCH, PAYLOAD, AgeError
from agreements.errors import AgreementError, PackageRejected

Identity = pyrage.x25519.Identity

__all__ = [
    "ARMOR",
    "HEADER",
    "HMAC",
    "NO_MATCH",
    "PAYLOAD",
    "AgeFailure",
    "Identity",
    "decrypt_to",
    "encrypt_chunks",
    "parse_recipients",
]

_SENTENCES = {
    ARMOR: "The package's ASCII armor is malformed.",
    NO_MATCH: "The package is not addressed to this organization's age identity.",
    HMAC: "The package header's authentication code does not match (tampered).",
    PAYLOAD: "The package's content is damaged or truncated.",
}


class AgeFailure(PackageRejected):
    """An age file could not be decrypted; ``kind`` is the stage that failed."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_recipients(recipients: Sequence[str]) -> list[bytes]:
    """The raw X25519 keys of ``age1…`` recipient strings (AgreementError naming a bad one)."""
    if not recipients:
        raise AgreementError("A package needs at least one recipient; the agreement names none.")
    parsed = []
    for text in recipients:
        try:
            pyrage.x25519.Recipient.from_str(text)  # the key library's own check, then ours
            parsed.append(_age.x25519_recipient(text))
        except (pyrage.RecipientError, ValueError, TypeError) as exc:
            raise AgreementError(f"The recipient {text!r} is not an age X25519 recipient (age1…).") from exc
    return parsed


def encrypt_chunks(chunks: Iterator[bytes], out: IO[bytes], recipients: Sequence[str]) -> None:
    """Encrypt the concatenation of ``chunks`` to ``out`` as a binary age file.

    An exception the iterator raises (a source changed while sealing, a cancel) is re-raised here
    unchanged; a failure to write ``out`` comes out as OSError. Either way ``out`` then holds a useless
    partial stream that the caller must discard.
    """
    publics = parse_recipients(recipients)
    try:
        stream = _age.StreamEncryptor(out, publics)
        _consume_in_thread(stream.write, chunks)
        stream.close()
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator closes the source files it holds open


def decrypt_to(source: Path, identities: Sequence[Identity], sink: IO[bytes]) -> None:
    """Decrypt the age file ``source`` into ``sink``; raise AgeFailure unless all of it authenticated.

    This is the one decrypt path (packages and the conformance vectors both use it). Whatever reached
    ``sink`` before a failure was authenticated chunk by chunk, but the caller must still discard it.
    An exception raised by ``sink`` (OSError when it cannot be written, or its own refusal of the
    content) is re-raised as it was.
    """
    keys = [str(identity) for identity in identities]
    try:
        raw = open(source, "rb")  # noqa: SIM115 - closed below; open errors are the caller's to word
    except OSError as exc:
        raise PackageRejected(f"Cannot read the package {source}: {exc.strerror or exc}.") from exc
    with raw:
        src = _Source(raw)
        try:
            head = src.read(1024)
            src.seek(0)
            if _age.looks_armored(head):
                src = _age.ArmorReader(src)  # type: ignore[assignment]
            stanzas, covered, mac = _age.read_header(src)  # type: ignore[arg-type]
            file_key = _age.unwrap_file_key(stanzas, covered, mac, keys)
            for piece in _produce_in_thread(_age.decrypt_payload(src, file_key)):  # type: ignore[arg-type]
                sink.write(piece)  # type: ignore[arg-type]
        except AgeError as exc:
            sentence = _SENTENCES.get(exc.kind) or (
                f"{Path(source).name} is not a valid age package (its header is malformed)."
            )
            raise AgeFailure(sentence, exc.kind) from exc
        except _SourceError as exc:
            raise PackageRejected(f"Cannot read the package {source}: {exc.args[0]}.") from exc


class _SourceError(Exception):
    """Reading the package failed (an OSError), as distinct from the sink's own OSError."""


class _Source:
    """The package file, with its read errors told apart from the sink's (a full disk, say)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        try:
            return self._raw.read(size)
        except OSError as exc:
            raise _SourceError(exc.strerror or str(exc)) from exc

    def readline(self, limit: int = -1) -> bytes:
        try:
            return self._raw.readline(limit)
        except OSError as exc:
            raise _SourceError(exc.strerror or str(exc)) from exc

    def seek(self, offset: int) -> None:
        try:
            self._raw.seek(offset)
        except OSError as exc:
            raise _SourceError(exc.strerror or str(exc)) from exc


# ------------------------------------------------------------------------------- the helper thread

_DEPTH = 4  # items in flight between the two threads: 4 MiB at most either way
_DONE = object()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    """Put ``item`` unless the other side has stopped listening; False if it has."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


def _consume_in_thread(consume: Callable[[bytes], None], items: Iterable[bytes]) -> None:
    """Call ``consume(item)`` on a helper thread for each item the caller's thread produces.

    The first exception on either side stops both and is re-raised here (the producer's first).
    """
    q: queue.Queue[object] = queue.Queue(_DEPTH)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            while (item := q.get()) is not _DONE:
                if not stop.is_set():
                    consume(item)  # type: ignore[arg-type]
        except BaseException as exc:
            failure.append(exc)
            stop.set()

    worker = threading.Thread(target=run, name="pathshare-age", daemon=True)
    worker.start()
    try:
        for item in items:
            if not _put(q, item, stop):
                break  # the consumer failed
    except BaseException:
        stop.set()  # the consumer skips whatever is still queued
        raise
    finally:
        while worker.is_alive():  # a live consumer drains the queue, so this put gets through
            try:
                q.put(_DONE, timeout=0.05)
                break
            except queue.Full:
                continue
        worker.join()
    if failure:
        raise failure[0]


def _produce_in_thread(items: Iterator[object]) -> Iterator[object]:
    """Yield ``items`` on the caller's thread while a helper thread computes them ahead."""
    q: queue.Queue[object] = queue.Queue(_DEPTH)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in items:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as exc:
            _put(q, _Raised(exc), stop)

    worker = threading.Thread(target=run, name="pathshare-age", daemon=True)
    worker.start()
    try:
        while (item := q.get()) is not _DONE:
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()
