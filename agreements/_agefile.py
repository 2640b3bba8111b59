"""The one place PathShare touches pyrage: streaming age encryption and decryption, errors translated.

Packages are standard age files (X25519 recipients, binary, the STREAM payload format), so a recipient
can always fall back to the stock ``age`` CLI. pyrage's ``encrypt_io`` / ``decrypt_io`` stream through
Python file-like objects in 8 KiB calls (measured: memory stays flat whatever the size), so:

* ``encrypt_chunks`` encrypts an iterator of byte chunks (the package tar, generated on the fly: never
  built in memory nor written to disk);
* ``open_decrypted`` yields a reader of the plaintext *while* it is decrypted, so the caller can parse
  the tar as it comes. age releases a chunk only after its tag verified, but releases earlier chunks
  before a later one fails (truncation, a flipped byte): everything read is provisional until
  ``finish()`` returned.

pyrage holds the GIL for its whole call (it never releases it while it works). To overlap our own work
(reading and hashing files, writing them out — which do release the GIL) with encryption, the other
side runs on a helper thread and the two meet in a small bounded queue of ~1 MiB pieces, so memory
stays bounded. Still, the calling thread is busy throughout: a GUI must run sealing and opening in a
worker *process*, not a thread of the UI process.

Every decryption failure comes out as :class:`AgeFailure` (a :class:`~agreements.errors.PackageRejected`)
whose ``kind`` says which stage failed — ``header``, ``no match``, ``hmac``, ``payload`` or ``armor`` —
and whose message is one plain sentence.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pyrage

from agreements.errors import AgreementError, IdentityError, PackageRejected

Identity = pyrage.x25519.Identity

# Failure kinds, as the C2SP age vectors name them.
HEADER = "header"
NO_MATCH = "no match"
HMAC = "hmac"
PAYLOAD = "payload"
ARMOR = "armor"

_PIECE = 1 << 20  # hand-off size between pyrage and our thread
_DEPTH = 16  # pieces in flight: bounds memory to ~16 MiB whatever the payload size
_END = object()


class AgeFailure(PackageRejected):
    """An age file could not be decrypted; ``kind`` is the stage that failed."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Stop(Exception):
    """Raised inside the helper thread when the other side gave up."""


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


def parse_identity(text: str) -> Identity:
    """An age X25519 identity from ``AGE-SECRET-KEY-1…`` (IdentityError if malformed; never echoed)."""
    try:
        return pyrage.x25519.Identity.from_str(text.strip())
    except (pyrage.IdentityError, ValueError, TypeError) as exc:
        raise IdentityError("The age identity is malformed (expected AGE-SECRET-KEY-1…).") from exc


class _Pipe:
    """A bounded queue of byte pieces between two threads, with cancellation from either end."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=_DEPTH)
        self.cancelled = threading.Event()
        self._view = memoryview(b"")
        self._pos = 0
        self._eof = False
        self.error: BaseException | None = None  # set by the producer when it failed

    # producer side
    def put(self, piece: object) -> None:
        while True:
            if self.cancelled.is_set():
                raise _Stop
            try:
                self._queue.put(piece, timeout=0.1)
                return
            except queue.Full:
                continue

    # consumer side
    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (short reads at piece boundaries); b"" at the end."""
        if size is None or size < 0:
            parts = []
            while piece := self.read(_PIECE):
                parts.append(piece)
            return b"".join(parts)
        while self._pos >= len(self._view):
            if self._eof:
                return b""
            piece = self._queue.get()
            if piece is _END:
                self._eof = True
                return b""
            self._view, self._pos = memoryview(piece), 0  # type: ignore[arg-type]
        out = self._view[self._pos : self._pos + size].tobytes()
        self._pos += len(out)
        return out

    def readable(self) -> bool:
        return True

    def cancel(self, thread: threading.Thread) -> None:
        """Consumer gives up: stop the producer and wait for it (draining so it cannot block)."""
        self.cancelled.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            thread.join(0.002)


def encrypt_chunks(chunks: Iterator[bytes], out: IO[bytes], recipients: Sequence[str]) -> None:
    """Encrypt the concatenation of ``chunks`` to ``out`` as a binary age file.

    The iterator runs on a helper thread (so reading and hashing sources overlaps with encryption).
    An exception it raises (a source changed while sealing, a cancel) is re-raised here unchanged;
    ``out`` then holds a useless truncated stream that the caller must discard.
    """
    parsed = parse_recipients(recipients)
    pipe = _Pipe()

    def produce() -> None:
        try:
            for chunk in chunks:
                pipe.put(chunk)
        except _Stop:
            pass
        except BaseException as exc:
            pipe.error = exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()  # closes the source files a generator holds open
            with contextlib.suppress(_Stop):
                pipe.put(_END)

    thread = threading.Thread(target=produce, name="pathshare-age-encrypt", daemon=True)
    thread.start()
    try:
        pyrage.encrypt_io(pipe, out, parsed)
    except Exception as exc:
        pipe.cancel(thread)
        if pipe.error is not None:
            raise pipe.error from None
        if isinstance(exc.__cause__, OSError) or "os error" in str(exc).lower():
            raise OSError(str(exc)) from exc
        raise PackageRejected(f"Encryption failed: {exc}.") from exc
    pipe.cancel(thread)
    if pipe.error is not None:
        raise pipe.error


def _classify(exc: BaseException) -> AgeFailure:
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
        return AgeFailure("The file is not a valid age package (its header is malformed).", HEADER)
    # rage reports a bad STREAM chunk, a truncation or trailing data as an I/O error from its copy loop.
    return AgeFailure("The package's content is damaged or truncated.", PAYLOAD)


class DecryptingReader:
    """Plaintext of an age file, readable as it is decrypted; call :meth:`finish` after reading.

    Reading may end early (EOF) because decryption failed: nothing read is trustworthy until
    ``finish()`` returned without raising.
    """

    def __init__(self, source: Path, identities: Sequence[Identity]) -> None:
        self._source = source
        self._identities = list(identities)
        self._pipe = _Pipe()
        self._pending = bytearray()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pathshare-age-decrypt", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with open(self._source, "rb") as src:
                pyrage.decrypt_io(src, _Sink(self), self._identities)
        except BaseException as exc:
            self._error = exc
        finally:
            # Release what was authenticated so far, even after a failure: the caller decides (and
            # the conformance vectors check exactly what an implementation releases).
            with contextlib.suppress(_Stop):
                self._flush()
            with contextlib.suppress(_Stop):
                self._pipe.put(_END)

    def _write(self, data: bytes) -> int:
        # pyrage writes 8 KiB at a time; hand over ~1 MiB pieces to keep the queue cheap.
        self._pending += data
        if len(self._pending) >= _PIECE:
            self._flush()
        return len(data)

    def _flush(self) -> None:
        if self._pending:
            piece = bytes(self._pending)
            self._pending.clear()
            self._pipe.put(piece)

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of plaintext; b"" at the end (of the data, or of what decrypted)."""
        return self._pipe.read(size)

    def readable(self) -> bool:
        return True

    def finish(self) -> None:
        """Wait for decryption to end; raise AgeFailure unless the whole file decrypted and authenticated.

        Any unread plaintext is drained and discarded first (so trailing data is still authenticated).
        """
        while self._pipe.read(_PIECE):
            pass
        self._thread.join()
        if self._error is not None:
            raise _classify(self._error) from self._error

    def abort(self) -> None:
        """Stop early and wait for the decrypting thread to end."""
        self._pipe.cancel(self._thread)


class _Sink:
    def __init__(self, owner: DecryptingReader) -> None:
        self._owner = owner

    def write(self, data: bytes) -> int:
        return self._owner._write(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def open_decrypted(source: Path, identities: Sequence[Identity]) -> Iterator[DecryptingReader]:
    """Decrypt ``source`` while the caller reads; the caller must call ``finish()`` before trusting data.

    Leaving the block without ``finish()`` (an exception) stops the decryption and discards the rest.
    """
    if not Path(source).is_file():
        raise PackageRejected(f"{source} is not a file.")
    reader = DecryptingReader(Path(source), identities)
    try:
        yield reader
    finally:
        reader.abort()


def decrypt_to(source: Path, identities: Sequence[Identity], sink: IO[bytes]) -> None:
    """Decrypt ``source`` into ``sink`` through the same path packages use; raise AgeFailure on failure.

    Whatever reached ``sink`` before a failure was authenticated chunk by chunk, but the caller must
    still discard it.
    """
    with open_decrypted(source, identities) as reader:
        while chunk := reader.read(_PIECE):
            sink.write(chunk)
        reader.finish()
