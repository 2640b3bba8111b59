"""The one place PathShare touches pyrage: streaming age encryption and decryption, errors translated.

Packages are standard age files (X25519 recipients, binary, the STREAM payload format), so a recipient
can always fall back to the stock ``age`` CLI. pyrage's ``encrypt_io`` / ``decrypt_io`` stream through
Python file-like objects in 8 KiB calls (measured: memory stays flat whatever the size), so:

* ``encrypt_chunks`` encrypts an iterator of byte chunks (the package tar, generated on the fly as
  pyrage asks for it: never built in memory nor written to disk);
* ``decrypt_to`` decrypts into any writable. age releases a 64 KiB chunk only after its tag verified,
  but releases earlier chunks before a later one fails (truncation, a flipped byte): callers decrypt
  into a private place and trust nothing until ``decrypt_to`` returned.

pyrage holds the GIL for its whole call (it never releases it while it works), so a GUI must run
sealing and opening in a worker *process*, not a thread of the UI process. Everything here runs on
the calling thread: overlapping our hashing with pyrage on a helper thread was measured (a bounded
queue between the two) and lost as soon as the machine was busy, because the threads then wait on
each other for the GIL.

Every decryption failure comes out as :class:`AgeFailure` (a :class:`~agreements.errors.PackageRejected`)
whose ``kind`` says which stage failed — ``header``, ``no match``, ``hmac``, ``payload`` or ``armor`` —
and whose message is one plain sentence.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pyrage

from agreements.errors import AgreementError, PackageRejected

Identity = pyrage.x25519.Identity

# Failure kinds, as the C2SP age vectors name them.
HEADER = "header"
NO_MATCH = "no match"
HMAC = "hmac"
PAYLOAD = "payload"
ARMOR = "armor"


class AgeFailure(PackageRejected):
    """An age file could not be decrypted; ``kind`` is the stage that failed."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def parse_recipients(recipients: Sequence[str]) -> list[pyrage.x25519.Recipient]:
    """age X25519 recipients from their ``age1…`` strings (AgreementError naming a bad one)."""
    if not recipients:
        raise AgreementError("A package needs at least one recipient; the agreement names none.")
    parsed = []
    for text in recipients:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(text))
        except (pyrage.RecipientError, ValueError, TypeError) as exc:
            raise AgreementError(f"The recipient {text!r} is not an age X25519 recipient (age1…).") from exc
    return parsed


class _ChunkReader:
    """A ``read(n)`` face over an iterator of byte chunks, keeping an exception it raises for later.

    Short reads at chunk boundaries avoid re-copying large chunks; pyrage asks for 8 KiB at a time.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")
        self._pos = 0
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            if size is None or size < 0:
                rest = [self._view[self._pos :].tobytes(), *self._chunks]
                self._view, self._pos = memoryview(b""), 0
                return b"".join(rest)
            while self._pos >= len(self._view):
                chunk = next(self._chunks, None)
                if chunk is None:
                    return b""
                self._view, self._pos = memoryview(chunk), 0
            piece = self._view[self._pos : self._pos + size].tobytes()
            self._pos += len(piece)
            return piece
        except BaseException as exc:
            self.error = exc
            raise

    def readable(self) -> bool:
        return True


def encrypt_chunks(chunks: Iterator[bytes], out: IO[bytes], recipients: Sequence[str]) -> None:
    """Encrypt the concatenation of ``chunks`` to ``out`` as a binary age file.

    An exception the iterator raises (a source changed while sealing, a cancel) is re-raised here
    unchanged; a failure to write ``out`` comes out as OSError. Either way ``out`` then holds a useless
    partial stream that the caller must discard.
    """
    parsed = parse_recipients(recipients)
    reader = _ChunkReader(chunks)
    try:
        pyrage.encrypt_io(reader, out, parsed)
    except Exception as exc:
        if reader.error is not None:
            raise reader.error from None
        if isinstance(exc, OSError) or "os error" in str(exc).lower():
            raise OSError(str(exc)) from exc
        raise PackageRejected(f"Encryption failed: {exc}.") from exc
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # a generator closes the source files it holds open


def _classify(exc: BaseException, source: Path | None = None) -> AgeFailure:
    """Map a rage error (its Display text is all pyrage exposes) to a failure kind and a plain sentence."""
    low = str(exc).lower()
    if "armor" in low or "decodeerror" in low:
        return AgeFailure("The package's ASCII armor is malformed.", ARMOR)
    if isinstance(exc, pyrage.DecryptError):
        if "no matching keys" in low:
            return AgeFailure("The package is not addressed to this organization's age identity.", NO_MATCH)
        if "mac" in low:
            return AgeFailure("The package header's authentication code does not match (tampered).", HMAC)
        if "decryption failed" in low:
            return AgeFailure("The package's content is damaged or truncated.", PAYLOAD)
        name = source.name if source is not None else "The file"
        return AgeFailure(f"{name} is not a valid age package (its header is malformed).", HEADER)
    # rage reports a bad STREAM chunk, a truncation or trailing data as an I/O error from its copy loop.
    return AgeFailure("The package's content is damaged or truncated.", PAYLOAD)


class _Sink:
    """Wraps the destination so its own failure (disk full, content refused) is not mistaken for a
    damaged package."""

    def __init__(self, sink: IO[bytes]) -> None:
        self._sink = sink
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            # rage flushes its buffer once more after a failed write: keep the first failure, and
            # never feed the sink again once it has refused something.
            raise OSError("the destination already failed")
        try:
            written = self._sink.write(data)
        except BaseException as exc:
            self.error = exc
            raise
        return len(data) if written is None else written

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


def decrypt_to(source: Path, identities: Sequence[Identity], sink: IO[bytes]) -> None:
    """Decrypt the age file ``source`` into ``sink``; raise AgeFailure unless all of it authenticated.

    This is the one decrypt path (packages and the conformance vectors both use it). Whatever reached
    ``sink`` before a failure was authenticated chunk by chunk, but the caller must still discard it.
    An exception raised by ``sink`` (OSError when it cannot be written, or its own refusal of the
    content) is re-raised as it was.
    """
    box = _Sink(sink)
    try:
        src = open(source, "rb")  # noqa: SIM115 - closed below; open errors are the caller's to word
    except OSError as exc:
        raise PackageRejected(f"Cannot read the package {source}: {exc.strerror or exc}.") from exc
    try:
        with src:
            pyrage.decrypt_io(src, box, list(identities))
    except Exception as exc:
        if box.error is not None:
            raise box.error from None
        raise _classify(exc, Path(source)) from exc
