"""The age v1 file format (https://age-encryption.org/v1), X25519 recipients, on ``cryptography``.

Why not pyrage for the bulk work: measured on this project's 2-core machine, pyrage's Rust
ChaCha20-Poly1305 alone (``encrypt_file`` / ``decrypt_file``, no Python in the loop) runs at 0.74x the
``age`` CLI, below the 0.8x the exchange needs, while OpenSSL's, through ``cryptography``, encrypts
64 KiB chunks at 2.4 GB/s and releases the GIL while it works (so hashing and encryption overlap on
two threads). The format is small and fully specified, and the C2SP conformance vectors
(``tests/test_age_vectors.py``) pin this reader to the reference implementation's behaviour, failure
class by failure class; pyrage and the ``age`` CLI decrypt what this writes and vice versa
(``tests/test_age_interop.py``). pyrage stays PathShare's key type (``Identity``, ``Recipient``) and
its key-string parser.

This module is the format only — parsing, key wrapping, the STREAM payload, the ASCII armor — with
errors as :class:`AgeError` carrying the reference's failure classes (``header``, ``no match``,
``hmac``, ``payload``, ``armor``). ``agreements._agefile`` is the front door the package code uses.
The parsing follows the reference Go implementation's rules (filippo.io/age ``internal/format``,
``armor``, ``internal/stream``) so that a file one accepts the other accepts.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import IO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Failure classes, as the C2SP age vectors name them.
HEADER = "header"
NO_MATCH = "no match"
HMAC = "hmac"
PAYLOAD = "payload"
ARMOR = "armor"

INTRO = b"age-encryption.org/v1\n"
_STANZA_PREFIX = b"-> "
_FOOTER_PREFIX = b"---"
_X25519_LABEL = b"age-encryption.org/v1/X25519"
_BYTES_PER_LINE = 48  # a full base64 body line: 64 columns
_COLUMNS = 64
_MAX_LINE = 1 << 16  # longer header lines are refused rather than buffered without end
_MAX_HEADER = 1 << 20  # bytes; a package's header is ~200 bytes per recipient, so this bounds hostile input
CHUNK = 64 * 1024  # STREAM plaintext chunk
_TAG = 16
ENCRYPTED_CHUNK = CHUNK + _TAG
_ZERO_NONCE = bytes(12)
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
ARMOR_END = b"-----END AGE ENCRYPTED FILE-----"
_MAX_ARMOR_WHITESPACE = 1024


class AgeError(Exception):
    """An age file could not be read; ``kind`` is the failure class and the message is for logs."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# ----------------------------------------------------------------------------------------- encodings


def _b64_raw_decode(text: bytes) -> bytes:
    """Strict, canonical, unpadded standard base64 (the header's encoding); ValueError otherwise."""
    if b"=" in text or b"\r" in text or b"\n" in text or len(text) % 4 == 1:
        raise ValueError("not canonical unpadded base64")
    data = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    if _b64_raw_encode(data) != text:  # stray low bits in the last character
        raise ValueError("not canonical base64")
    return data


def _b64_raw_encode(data: bytes) -> bytes:
    return base64.b64encode(data).rstrip(b"=")


def _b64_padded_decode(text: bytes) -> bytes:
    """Strict, canonical, padded standard base64 (the armor's encoding); ValueError otherwise."""
    data = base64.b64decode(text, validate=True)
    if base64.b64encode(data) != text:
        raise ValueError("not canonical base64")
    return data


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _bech32_polymod(values: Sequence[int]) -> int:
    generators = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for i, gen in enumerate(generators):
            if (top >> i) & 1:
                check ^= gen
    return check


def bech32_decode(text: str, hrp: str) -> bytes:
    """The payload of a Bech32 string (BIP 173, without its length limit, as age uses it)."""
    if text.lower() != text and text.upper() != text:
        raise ValueError("mixed case")
    text = text.lower()
    cut = text.rfind("1")
    if text[:cut] != hrp or len(text) - cut - 1 < 6:
        raise ValueError(f"not a {hrp} key")
    try:
        data = [_BECH32.index(c) for c in text[cut + 1 :]]
    except ValueError as exc:
        raise ValueError("invalid character") from exc
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if _bech32_polymod(expanded + data) != 1:
        raise ValueError("bad checksum")
    acc, bits, out = 0, 0, bytearray()
    for value in data[:-6]:
        acc, bits = (acc << 5) | value, bits + 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5 or acc & ((1 << bits) - 1):
        raise ValueError("bad padding")
    return bytes(out)


def x25519_identity(identity_text: str) -> X25519PrivateKey:
    """The private key in an ``AGE-SECRET-KEY-1…`` string."""
    return X25519PrivateKey.from_private_bytes(bech32_decode(identity_text, "age-secret-key-"))


def x25519_recipient(recipient_text: str) -> bytes:
    """The 32-byte public key in an ``age1…`` string."""
    raw = bech32_decode(recipient_text, "age")
    if len(raw) != 32:
        raise ValueError("not an X25519 public key")
    return raw


def _hkdf(key: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(key)


def _raw_public(key: X25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# -------------------------------------------------------------------------------------------- header


@dataclass(frozen=True)
class Stanza:
    type: str
    args: tuple[str, ...]
    body: bytes


def _encode_stanza(stanza: Stanza) -> bytes:
    out = [_STANZA_PREFIX + " ".join((stanza.type, *stanza.args)).encode("ascii") + b"\n"]
    encoded = _b64_raw_encode(stanza.body)
    for i in range(0, len(encoded), _COLUMNS):
        out.append(encoded[i : i + _COLUMNS] + b"\n")
    if len(encoded) % _COLUMNS == 0:
        out.append(b"\n")  # a body always ends with a short line, empty if need be
    return b"".join(out)


def _readline(src: IO[bytes]) -> bytes:
    line = src.readline(_MAX_LINE)
    if not line.endswith(b"\n"):
        raise AgeError(HEADER, "the header ends early or has an overlong line")
    return line


def _valid_arg(arg: bytes) -> bool:
    return bool(arg) and all(33 <= c <= 126 for c in arg)


def read_header(src: IO[bytes]) -> tuple[list[Stanza], bytes, bytes]:
    """Parse the header at the start of ``src`` (a binary reader with ``readline``).

    Returns the stanzas, the bytes the MAC covers (everything up to and including ``---``) and the
    MAC; ``src`` is left at the start of the payload. Raises AgeError(HEADER) on any deviation from
    the canonical encoding.
    """
    first = src.readline(len(INTRO))
    if first != INTRO:
        if not first:
            raise AgeError(HEADER, "the file is empty")
        raise AgeError(HEADER, "not an age v1 file")
    covered = [first]
    stanzas: list[Stanza] = []
    total = len(first)
    while True:
        line = _readline(src)
        total += len(line)
        if total > _MAX_HEADER:
            raise AgeError(HEADER, "the header is implausibly large")
        if line.startswith(_FOOTER_PREFIX):
            prefix, *args = line[:-1].split(b" ")
            if prefix != _FOOTER_PREFIX or len(args) != 1:
                raise AgeError(HEADER, "malformed closing line")
            try:
                mac = _b64_raw_decode(args[0])
            except (ValueError, binascii.Error) as exc:
                raise AgeError(HEADER, "malformed MAC") from exc
            if len(mac) != 32:
                raise AgeError(HEADER, "malformed MAC")
            covered.append(_FOOTER_PREFIX)
            return stanzas, b"".join(covered), mac
        covered.append(line)
        if not line.startswith(_STANZA_PREFIX):
            raise AgeError(HEADER, "malformed stanza opening line")
        prefix, *args = line[:-1].split(b" ")
        if prefix != _STANZA_PREFIX.strip() or not args or not all(_valid_arg(a) for a in args):
            raise AgeError(HEADER, "malformed stanza")
        body = bytearray()
        while True:
            line = _readline(src)
            covered.append(line)
            total += len(line)
            if total > _MAX_HEADER:
                raise AgeError(HEADER, "the header is implausibly large")
            try:
                piece = _b64_raw_decode(line[:-1])
            except (ValueError, binascii.Error) as exc:
                raise AgeError(HEADER, "malformed stanza body line") from exc
            if len(piece) > _BYTES_PER_LINE:
                raise AgeError(HEADER, "stanza body line too long")
            body += piece
            if len(piece) < _BYTES_PER_LINE:
                break
        stanzas.append(
            Stanza(args[0].decode("ascii"), tuple(a.decode("ascii") for a in args[1:]), bytes(body))
        )


def _unwrap_x25519(key: X25519PrivateKey, ours: bytes, stanza: Stanza) -> bytes | None:
    """The file key if ``stanza`` is addressed to ``key``; None if it is not; AgeError if malformed."""
    if stanza.type != "X25519":
        return None
    if len(stanza.args) != 1:
        raise AgeError(HEADER, "invalid X25519 stanza")
    try:
        share = _b64_raw_decode(stanza.args[0].encode("ascii"))
    except (ValueError, binascii.Error) as exc:
        raise AgeError(HEADER, "invalid X25519 stanza") from exc
    if len(share) != 32:
        raise AgeError(HEADER, "invalid X25519 stanza")
    try:
        shared = key.exchange(X25519PublicKey.from_public_bytes(share))
    except ValueError as exc:  # a low-order point gives the all-zero secret
        raise AgeError(HEADER, "invalid X25519 share") from exc
    wrap = _hkdf(shared, share + ours, _X25519_LABEL)
    if len(stanza.body) != 16 + _TAG:
        raise AgeError(HEADER, "invalid X25519 stanza: wrong file key size")
    try:
        return ChaCha20Poly1305(wrap).decrypt(_ZERO_NONCE, stanza.body, None)
    except InvalidTag:
        return None


def unwrap_file_key(
    stanzas: Sequence[Stanza], covered: bytes, mac: bytes, identities: Sequence[str]
) -> bytes:
    """The file key, from the first stanza one of ``identities`` (``AGE-SECRET-KEY-1…``) unwraps.

    Then checks the header MAC. Raises AgeError: NO_MATCH, HMAC, or HEADER for a malformed stanza.
    """
    if any(s.type == "scrypt" for s in stanzas) and len(stanzas) != 1:
        raise AgeError(HEADER, "an scrypt stanza must be the only one")
    file_key = None
    for text in identities:
        key = x25519_identity(text)
        ours = _raw_public(key)
        for stanza in stanzas:
            file_key = _unwrap_x25519(key, ours, stanza)
            if file_key is not None:
                break
        if file_key is not None:
            break
    if file_key is None:
        raise AgeError(NO_MATCH, "no identity matches any recipient stanza")
    expected = hmac.new(_hkdf(file_key, None, b"header"), covered, sha256).digest()
    if not hmac.compare_digest(expected, mac):
        raise AgeError(HMAC, "bad header MAC")
    return file_key


# ------------------------------------------------------------------------------------------- payload


def _nonce(counter: int, last: bool) -> bytes:
    return counter.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


class StreamEncryptor:
    """Writes an age file: the header for ``recipients`` at once, then the STREAM payload.

    ``write`` takes any amount; whole chunks are encrypted as soon as a later byte proves they are not
    the last. ``close`` encrypts the final (possibly short) chunk. Chunks are encrypted by OpenSSL
    without the GIL, so a caller can hash or read on another thread meanwhile.
    """

    def __init__(self, out: IO[bytes], recipients: Sequence[bytes]) -> None:
        if not recipients:
            raise ValueError("at least one recipient is needed")
        file_key = os.urandom(16)
        header = [INTRO]
        for public in recipients:
            ephemeral = X25519PrivateKey.generate()
            share = _raw_public(ephemeral)
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(public))
            wrap = _hkdf(shared, share + public, _X25519_LABEL)
            body = ChaCha20Poly1305(wrap).encrypt(_ZERO_NONCE, file_key, None)
            header.append(_encode_stanza(Stanza("X25519", (_b64_raw_encode(share).decode("ascii"),), body)))
        header.append(_FOOTER_PREFIX)
        covered = b"".join(header)
        mac = hmac.new(_hkdf(file_key, None, b"header"), covered, sha256).digest()
        nonce = os.urandom(16)
        self._out = out
        self._aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
        self._counter = 0
        self._pending = bytearray()
        out.write(covered + b" " + _b64_raw_encode(mac) + b"\n" + nonce)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        pending = self._pending
        if pending:
            take = min(len(view), CHUNK - len(pending))
            pending += view[:take]
            view = view[take:]
            if not view:
                return  # the pending chunk may still be the last one
            self._emit([bytes(pending)])
            pending.clear()
        # Encrypt whole chunks straight from the caller's buffer, keeping at least one byte back:
        # the final chunk must be flagged as such, and only close() knows which one that is.
        whole = (len(view) - 1) // CHUNK
        if whole:
            self._emit([view[i * CHUNK : (i + 1) * CHUNK] for i in range(whole)])
        pending += view[whole * CHUNK :]

    def _emit(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Encrypt ``chunks`` (none of them the last) into one buffer and write it at once."""
        out = bytearray(len(chunks) * ENCRYPTED_CHUNK)
        with memoryview(out) as target:
            for i, chunk in enumerate(chunks):
                nonce = _nonce(self._counter, False)
                self._aead.encrypt_into(
                    nonce, chunk, None, target[i * ENCRYPTED_CHUNK : (i + 1) * ENCRYPTED_CHUNK]
                )
                self._counter += 1
        self._out.write(out)

    def close(self) -> None:
        self._out.write(self._aead.encrypt(_nonce(self._counter, True), bytes(self._pending), None))
        self._pending.clear()


def decrypt_payload(src: IO[bytes], file_key: bytes, chunks_per_piece: int = 16) -> Iterator[bytearray]:
    """Yield the payload's plaintext, up to ``chunks_per_piece`` chunks at a time, each piece only
    after every chunk in it verified.

    Raises AgeError(HEADER) if the nonce is missing, AgeError(PAYLOAD) for a damaged, truncated or
    extended payload — after yielding every chunk that authenticated before the damage, as the
    reference implementation releases them.
    """
    nonce = src.read(16)
    if len(nonce) != 16:
        raise AgeError(HEADER, "the payload nonce is missing")
    aead = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    counter = 0
    piece = bytearray(chunks_per_piece * CHUNK)
    filled = 0
    while True:
        chunk = src.read(ENCRYPTED_CHUNK)
        failure = None
        last = len(chunk) < ENCRYPTED_CHUNK
        if not chunk:
            failure = "the payload ends without its final chunk (truncated)"
        elif last and counter and len(chunk) == _TAG:
            failure = "the final chunk is empty"
        elif len(chunk) < _TAG:
            failure = "the final chunk is shorter than its tag"
        else:
            size = len(chunk) - _TAG
            with memoryview(piece) as view:
                target = view[filled : filled + size]
                try:
                    aead.decrypt_into(_nonce(counter, last), chunk, None, target)
                except InvalidTag:
                    failure = "a payload chunk failed authentication (damaged or tampered)"
                    if not last:  # a full-length final chunk?
                        try:
                            aead.decrypt_into(_nonce(counter, True), chunk, None, target)
                            last, failure = True, None
                        except InvalidTag:
                            pass
                finally:
                    target.release()
            if failure is None:
                filled += size
        if failure is not None:
            if filled:
                yield piece[:filled]  # what authenticated before the damage
            raise AgeError(PAYLOAD, failure)
        if last:
            if filled:
                yield piece[:filled]
            if src.read(1):
                raise AgeError(PAYLOAD, "data follows the final chunk")
            return
        counter += 1
        if filled == len(piece):
            yield piece
            piece, filled = bytearray(chunks_per_piece * CHUNK), 0


# --------------------------------------------------------------------------------------------- armor


def _blank(data: bytes) -> bool:
    """Whether ``data`` is only whitespace, Unicode whitespace included (as Go's bytes.TrimSpace)."""
    try:
        return not data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


def looks_armored(head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` (1 KiB is enough) is meant as ASCII armor.

    Generous on purpose: a damaged armor then fails as armor (naming the real problem) rather than
    as a binary header.
    """
    return not head.startswith(INTRO) and (head.lstrip().startswith(b"-----") or ARMOR_BEGIN in head)


class ArmorReader:
    """A ``read``/``readline`` face over the binary content of an ASCII-armored age file.

    Decodes line by line (memory stays flat) with the reference's rules: LF or CRLF line ends,
    whitespace only around the armor, 64-column padded canonical base64, a short last line, the END
    line, nothing but whitespace after it. Violations raise AgeError(ARMOR).
    """

    def __init__(self, src: IO[bytes]) -> None:
        self._src = src
        self._buf = bytearray()
        self._started = False
        self._ended = False

    def _line(self) -> bytes:
        line = self._src.readline(_MAX_LINE)
        if not line:
            raise AgeError(ARMOR, "the armor ends without its END line")
        if len(line) == _MAX_LINE and not line.endswith(b"\n"):
            raise AgeError(ARMOR, "an armor line is too long")
        return line.removesuffix(b"\n").removesuffix(b"\r")

    def _fill(self, want: int) -> None:
        while not self._ended and len(self._buf) < want:
            if not self._started:
                skipped = 0
                while True:
                    line = self._line()
                    if not _blank(line):
                        break
                    skipped += len(line) + 1
                    if skipped > _MAX_ARMOR_WHITESPACE:
                        raise AgeError(ARMOR, "too much whitespace before the armor")
                if line != ARMOR_BEGIN:
                    raise AgeError(ARMOR, "the armor's BEGIN line is wrong")
                self._started = True
            line = self._line()
            if line == ARMOR_END:
                self._finish()
                return
            if not line:
                raise AgeError(ARMOR, "an empty line inside the armor")
            if len(line) > _COLUMNS:
                raise AgeError(ARMOR, "an armor line is too long")
            try:
                data = _b64_padded_decode(line)
            except (ValueError, binascii.Error) as exc:
                raise AgeError(ARMOR, "invalid base64 inside the armor") from exc
            self._buf += data
            if len(data) < _BYTES_PER_LINE:
                if self._line() != ARMOR_END:
                    raise AgeError(ARMOR, "a short line that is not the armor's last")
                self._finish()

    def _finish(self) -> None:
        rest = self._src.read(_MAX_ARMOR_WHITESPACE)
        if not _blank(rest):
            raise AgeError(ARMOR, "data follows the armor")
        if len(rest) == _MAX_ARMOR_WHITESPACE:
            raise AgeError(ARMOR, "too much whitespace after the armor")
        self._ended = True

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            while not self._ended:
                self._fill(len(self._buf) + (1 << 20))
            size = len(self._buf)
        self._fill(size)
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def readline(self, limit: int = -1) -> bytes:
        cap = limit if limit is not None and limit >= 0 else _MAX_LINE
        while True:
            end = self._buf.find(b"\n", 0, cap)
            if end >= 0:
                return self.read(end + 1)
            if self._ended or len(self._buf) >= cap:
                return self.read(cap)
            self._fill(len(self._buf) + _COLUMNS)
