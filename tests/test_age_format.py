"""PathShare's own age implementation (``agreements._age`` / ``agreements._agefile``) against two
independent ones: pyrage (rage, Rust) and the ``age`` CLI (the Go reference).

Covers the chunk boundaries of the STREAM payload, arbitrary write splits, several recipients, the
Bech32 key strings, every kind of damage (header, payload, truncation, appended bytes) and what reaches
the sink before it is detected, ASCII-armor variants judged as the CLI judges them, the two helper
threads (exceptions from either side come back unchanged and promptly, no thread is left behind) and
flat memory.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import os
import random
import subprocess
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agreements import _age, _agefile
from agreements._agefile import AgeFailure
from agreements.errors import AgreementError, PackageRejected

CHUNK = _age.CHUNK
TAG = 16
NONCE = 16
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK + 1]
THREAD_NAME = "pathshare-age"
PROMPT = 20.0  # seconds: far above what any call here needs; reaching it means a hang


# ------------------------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class Key:
    identity: pyrage.x25519.Identity
    recipient: str
    file: Path  # an identity file the age CLI reads


def _make_key(folder: Path, name: str) -> Key:
    identity = pyrage.x25519.Identity.generate()
    path = folder / f"{name}.txt"
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    return Key(identity, str(identity.to_public()), path)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("age-format")


@pytest.fixture(scope="module")
def key(scratch: Path) -> Key:
    return _make_key(scratch, "main")


@pytest.fixture(autouse=True)
def _no_stray_threads() -> Iterator[None]:
    before = {t for t in threading.enumerate() if t.name == THREAD_NAME}
    yield
    stray = [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive() and t not in before]
    assert not stray, f"helper threads left running: {stray}"


def _seal(chunks: Iterable[bytes], recipients: Sequence[str]) -> bytes:
    out = io.BytesIO()
    _agefile.encrypt_chunks(iter(chunks), out, recipients)
    return out.getvalue()


def _open(path: Path, identities: Sequence[pyrage.x25519.Identity]) -> bytes:
    sink = io.BytesIO()
    _agefile.decrypt_to(path, identities, sink)
    return sink.getvalue()


def _open_bytes(folder: Path, ciphertext: bytes, identities: Sequence[pyrage.x25519.Identity]) -> bytes:
    path = folder / "in.age"
    path.write_bytes(ciphertext)
    return _open(path, identities)


def _failure(path: Path, identities: Sequence[pyrage.x25519.Identity]) -> tuple[AgeFailure, bytes]:
    """The AgeFailure decrypting ``path`` raises, and what reached the sink before it."""
    sink = io.BytesIO()
    with pytest.raises(AgeFailure) as info:
        _agefile.decrypt_to(path, identities, sink)
    assert isinstance(info.value, PackageRejected)
    return info.value, sink.getvalue()


def _cli_decrypt(age_cli: str, ciphertext: bytes, identity_file: Path) -> bytes:
    done = subprocess.run([age_cli, "-d", "-i", str(identity_file)], input=ciphertext,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def _cli_encrypt(age_cli: str, plaintext: bytes, recipient: str, *, armor: bool = False) -> bytes:
    args = [age_cli, "-r", recipient] + (["-a"] if armor else [])
    done = subprocess.run(args, input=plaintext, capture_output=True, timeout=60, check=True)
    return done.stdout


def _header_end(ciphertext: bytes) -> int:
    """Offset of the payload nonce (the end of the header's MAC line)."""
    src = io.BytesIO(ciphertext)
    _age.read_header(src)
    return src.tell()


def _expected_length(header: int, size: int) -> int:
    """A canonical age file's length: full chunks, one short (or full) final chunk, never an empty one
    unless the whole payload is empty."""
    chunks = max(1, -(-size // CHUNK))
    return header + NONCE + size + TAG * chunks


def _plaintext(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _run_with_deadline(call: Callable[[], None]) -> BaseException | None:
    """Run ``call`` on a thread; the exception it raised (None if none). Fails if it does not return."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=target, name="test-runner", daemon=True)
    runner.start()
    runner.join(PROMPT)
    assert not runner.is_alive(), f"the call did not return within {PROMPT} s (a hang)"
    return outcome[0]


# --------------------------------------------------------------------------- round trip and interop


@pytest.mark.parametrize("size", SIZES)
def test_ours_is_read_by_pyrage_and_the_age_cli(size: int, key: Key, age_cli: str, tmp_path: Path) -> None:
    data = _plaintext(size, size)
    ciphertext = _seal([data], [key.recipient])
    assert len(ciphertext) == _expected_length(_header_end(ciphertext), size)
    assert pyrage.decrypt(ciphertext, [key.identity]) == data
    assert _cli_decrypt(age_cli, ciphertext, key.file) == data
    assert _open_bytes(tmp_path, ciphertext, [key.identity]) == data


@pytest.mark.parametrize("size", SIZES)
def test_we_read_pyrage_and_the_age_cli(size: int, key: Key, age_cli: str, tmp_path: Path) -> None:
    data = _plaintext(size, size + 1)
    from_pyrage = pyrage.encrypt(data, [key.identity.to_public()])
    assert _open_bytes(tmp_path, from_pyrage, [key.identity]) == data

    binary = _cli_encrypt(age_cli, data, key.recipient)
    assert binary.startswith(_age.INTRO)
    assert _open_bytes(tmp_path, binary, [key.identity]) == data

    armored = _cli_encrypt(age_cli, data, key.recipient, armor=True)
    assert armored.startswith(_age.ARMOR_BEGIN + b"\n")
    assert _open_bytes(tmp_path, armored, [key.identity]) == data
    # The reference also accepts CRLF line ends inside the armor, so must we.
    assert _open_bytes(tmp_path, armored.replace(b"\n", b"\r\n"), [key.identity]) == data


@pytest.mark.parametrize("size", [16 * CHUNK - 1, 16 * CHUNK, 16 * CHUNK + 1, 32 * CHUNK])
def test_output_piece_boundaries_round_trip(size: int, key: Key, tmp_path: Path) -> None:
    # decrypt_to hands the sink 16 chunks at a time: a full final chunk can end a piece exactly.
    data = _plaintext(size, size)
    ciphertext = _seal([data], [key.recipient])
    assert len(ciphertext) == _expected_length(_header_end(ciphertext), size)
    assert pyrage.decrypt(ciphertext, [key.identity]) == data
    assert _open_bytes(tmp_path, ciphertext, [key.identity]) == data
    from_pyrage = pyrage.encrypt(data, [key.identity.to_public()])
    assert _open_bytes(tmp_path, from_pyrage, [key.identity]) == data


def test_pyrage_grease_stanzas_are_skipped(key: Key, tmp_path: Path) -> None:
    # rage adds a random "<junk>-grease" stanza to every header; the reader must pass over any of them.
    data = b"student_code,birth_year\n"
    for _ in range(30):
        ciphertext = pyrage.encrypt(data, [key.identity.to_public()])
        stanzas, _, _ = _age.read_header(io.BytesIO(ciphertext))
        assert any(s.type != "X25519" for s in stanzas)
        assert _open_bytes(tmp_path, ciphertext, [key.identity]) == data


_ARMOR_VARIANTS: dict[str, tuple[bool, Callable[[bytes], bytes]]] = {
    # name: (accepted by the reference, how to derive it from the CLI's armored output)
    "as written": (True, lambda a: a),
    "blank lines after": (True, lambda a: a + b"\n\n"),
    "spaces after": (True, lambda a: a + b"   "),
    "form feed after": (True, lambda a: a + b"\x0c"),
    "no final newline": (True, lambda a: a.rstrip(b"\n")),
    "CRLF": (True, lambda a: a.replace(b"\n", b"\r\n")),
    "CRLF on two lines only": (True, lambda a: a.replace(b"\n", b"\r\n", 2)),
    "bare CR": (False, lambda a: a.replace(b"\n", b"\r")),
    "lowercase BEGIN": (False, lambda a: a.replace(b"BEGIN", b"begin")),
    "space after BEGIN": (False, lambda a: a.replace(_age.ARMOR_BEGIN, _age.ARMOR_BEGIN + b" ")),
    "space after END": (False, lambda a: a.replace(_age.ARMOR_END, _age.ARMOR_END + b" ")),
    "space after a base64 line": (False, lambda a: a.replace(b"\n", b" \n", 2).replace(b" \n", b"\n", 1)),
    "blank line inside": (False, lambda a: a.replace(b"\n", b"\n\n", 2).replace(b"\n\n", b"\n", 1)),
    "data after END": (False, lambda a: a + b"x"),
    "2 KiB of whitespace after": (False, lambda a: a + b"\n" * 2048),
}


@pytest.mark.parametrize("name", list(_ARMOR_VARIANTS))
def test_armor_variants_are_judged_as_the_age_cli_judges_them(
    name: str, key: Key, age_cli: str, tmp_path: Path
) -> None:
    accepted, derive = _ARMOR_VARIANTS[name]
    data = _plaintext(3 * 48 + 5, 21)  # a few full armor lines and a short one
    variant = derive(_cli_encrypt(age_cli, data, key.recipient, armor=True))
    cli = subprocess.run([age_cli, "-d", "-i", str(key.file)], input=variant, capture_output=True, timeout=60)
    assert (cli.returncode == 0 and cli.stdout == data) is accepted  # the premise, from the reference
    path = tmp_path / "armored.age"
    path.write_bytes(variant)
    if accepted:
        assert _open(path, [key.identity]) == data
    else:
        failure, reached = _failure(path, [key.identity])
        assert (failure.kind, reached) == (_agefile.ARMOR, b"")


@pytest.mark.parametrize("space", ["\u00a0", "\u0085", "\u3000"])
def test_unicode_whitespace_after_the_armor_is_accepted_as_the_reference_does(
    space: str, key: Key, age_cli: str, tmp_path: Path
) -> None:
    data = b"x" * 100
    variant = _cli_encrypt(age_cli, data, key.recipient, armor=True) + space.encode()
    assert _cli_decrypt(age_cli, variant, key.file) == data  # the reference accepts it
    path = tmp_path / "armored.age"
    path.write_bytes(variant)
    assert _open(path, [key.identity]) == data


_BOUNDARY_SIZES = st.sampled_from([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 1])


@settings(max_examples=15, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(0, 4 * CHUNK + 7) | _BOUNDARY_SIZES,
    cuts=st.lists(st.integers(0, 4 * CHUNK + 7) | _BOUNDARY_SIZES, max_size=10),
    seed=st.integers(0, 2**32),
)
def test_any_write_split_gives_one_file_every_implementation_reads(
    size: int, cuts: list[int], seed: int, key: Key, age_cli: str, scratch: Path
) -> None:
    data = _plaintext(size, seed)
    # Duplicate cut points make empty writes; the pieces alternate bytes, bytearray and memoryview.
    bounds = [0, *sorted(min(c, size) for c in cuts), size]
    out = io.BytesIO()
    stream = _age.StreamEncryptor(out, [_age.x25519_recipient(key.recipient)])
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        kind = i % 3
        if kind == 0:
            stream.write(data[a:b])
        elif kind == 1:
            buffer = bytearray(data[a:b])
            stream.write(buffer)
            buffer[:] = bytes(len(buffer))  # the caller may reuse its buffer once write returned
        else:
            stream.write(memoryview(data)[a:b])
    stream.close()
    ciphertext = out.getvalue()

    assert len(ciphertext) == _expected_length(_header_end(ciphertext), size)
    assert pyrage.decrypt(ciphertext, [key.identity]) == data
    assert _cli_decrypt(age_cli, ciphertext, key.file) == data
    assert _open_bytes(scratch, ciphertext, [key.identity]) == data


def test_encrypt_chunks_takes_any_chunking(key: Key, tmp_path: Path) -> None:
    data = _plaintext(5 * CHUNK + 123, 7)
    pieces = [data[:0], data[:1], data[1 : CHUNK + 5], data[CHUNK + 5 : 4 * CHUNK], data[4 * CHUNK :], b""]
    assert b"".join(pieces) == data
    ciphertext = _seal(pieces, [key.recipient])
    assert len(ciphertext) == _expected_length(_header_end(ciphertext), len(data))
    assert pyrage.decrypt(ciphertext, [key.identity]) == data
    assert _open_bytes(tmp_path, ciphertext, [key.identity]) == data


# ------------------------------------------------------------------------------- several recipients


def test_every_recipient_decrypts_and_a_stranger_does_not(age_cli: str, tmp_path: Path) -> None:
    keys = [_make_key(tmp_path, f"r{i}") for i in range(3)]
    stranger = _make_key(tmp_path, "stranger")
    data = _plaintext(CHUNK + 999, 3)
    ciphertext = _seal([data], [k.recipient for k in keys])
    stanzas, _, _ = _age.read_header(io.BytesIO(ciphertext))
    assert [s.type for s in stanzas] == ["X25519"] * 3
    assert len({s.args for s in stanzas}) == 3  # one fresh ephemeral share per recipient

    path = tmp_path / "multi.age"
    path.write_bytes(ciphertext)
    for k in keys:
        assert _open(path, [k.identity]) == data
        assert pyrage.decrypt(ciphertext, [k.identity]) == data
        assert _cli_decrypt(age_cli, ciphertext, k.file) == data
    assert _open(path, [stranger.identity, keys[2].identity]) == data  # any matching identity will do

    failure, reached = _failure(path, [stranger.identity])
    assert failure.kind == _agefile.NO_MATCH
    assert reached == b""
    with pytest.raises(pyrage.DecryptError):
        pyrage.decrypt(ciphertext, [stranger.identity])


# ------------------------------------------------------------------------------------------- bech32

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    """BIP 173's checksum, written out here independently of the code under test."""
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            chk ^= gen[i] if ((b >> i) & 1) else 0
    return chk


def _bech32_five(hrp: str, five: list[int]) -> str:
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + five + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[v] for v in five + checksum)


def _to_five(data: bytes) -> list[int]:
    acc = bits = 0
    five = []
    for byte in data:
        acc, bits = (acc << 8) | byte, bits + 8
        while bits >= 5:
            bits -= 5
            five.append((acc >> bits) & 31)
    if bits:
        five.append((acc << (5 - bits)) & 31)
    return five


def _bech32(hrp: str, data: bytes) -> str:
    return _bech32_five(hrp, _to_five(data))


def _raw_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes_raw()


def test_bech32_keys_match_pyrage() -> None:
    for _ in range(25):
        identity = pyrage.x25519.Identity.generate()
        private = _age.x25519_identity(str(identity))
        public = _age.x25519_recipient(str(identity.to_public()))
        assert len(public) == 32
        assert _raw_public(private) == public
        # The independent encoder reproduces both strings, so the decoder returned the true payloads.
        assert _bech32("age", public) == str(identity.to_public())
        assert _bech32("age-secret-key-", private.private_bytes_raw()).upper() == str(identity)
        # All one case is fine, either case.
        assert _age.x25519_identity(str(identity).lower()).private_bytes_raw() == private.private_bytes_raw()
        assert _age.x25519_recipient(str(identity.to_public()).upper()) == public
        assert _agefile.parse_recipients([str(identity.to_public())]) == [public]


def test_bech32_refuses_every_single_character_change() -> None:
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    secret = str(identity)
    for i, ch in enumerate(recipient):
        other = _CHARSET[(_CHARSET.index(ch) + 1) % 32] if ch in _CHARSET else "q"
        if other == ch:
            other = "p"
        changed = recipient[:i] + other + recipient[i + 1 :]
        with pytest.raises(ValueError):
            _age.x25519_recipient(changed)
    for i, ch in enumerate(secret):
        other = "Q" if ch != "Q" else "P"
        changed = secret[:i] + other + secret[i + 1 :]
        with pytest.raises(ValueError):
            _age.x25519_identity(changed)


def test_bech32_refuses_mixed_case_wrong_hrp_length_and_padding() -> None:
    identity = pyrage.x25519.Identity.generate()
    recipient = str(identity.to_public())
    secret = str(identity)
    public = _age.x25519_recipient(recipient)
    letter = max(i for i, ch in enumerate(secret) if ch.isalpha())
    bad = {
        "mixed case recipient": (_age.x25519_recipient, recipient[:10] + recipient[10:].upper()),
        "mixed case identity": (_age.x25519_identity, secret[:letter] + secret[letter].lower()
                                + secret[letter + 1 :]),
        "identity as recipient": (_age.x25519_recipient, secret),
        "recipient as identity": (_age.x25519_identity, recipient),
        "other hrp": (_age.x25519_recipient, _bech32("age2", public)),
        "no hrp": (_age.x25519_recipient, _bech32("", public)),
        "31 bytes": (_age.x25519_recipient, _bech32("age", public[:31])),
        "33 bytes": (_age.x25519_recipient, _bech32("age", public + b"\0")),
        "31-byte secret": (_age.x25519_identity, _bech32("age-secret-key-", public[:31]).upper()),
        "nonzero padding": (_age.x25519_recipient, _bech32_five("age", [*_to_five(public)[:-1],
                                                                       _to_five(public)[-1] | 1])),
        "extra padding group": (_age.x25519_recipient, _bech32_five("age", [*_to_five(public), 0])),
        "bad character": (_age.x25519_recipient, recipient[:-8] + "b" + recipient[-7:]),
        "no checksum": (_age.x25519_recipient, "age1" + "q" * 5),
        "empty": (_age.x25519_recipient, ""),
    }
    accepted = []
    for label, (parse, text) in bad.items():
        try:
            parse(text)
        except ValueError:
            continue
        accepted.append(label)
    assert accepted == []
    assert _age.x25519_recipient(_bech32("age", public)) == public  # the control


def test_parse_recipients_refuses_bad_ones_as_agreement_errors() -> None:
    good = str(pyrage.x25519.Identity.generate().to_public())
    flipped = good[:-1] + ("q" if good[-1] != "q" else "p")
    for bad in (flipped, "age1", "", "not a key", str(pyrage.x25519.Identity.generate()), good + " "):
        with pytest.raises(AgreementError, match="not an age X25519 recipient"):
            _agefile.parse_recipients([good, bad])
    with pytest.raises(AgreementError):
        _agefile.parse_recipients([])
    with pytest.raises(AgreementError):  # encrypt_chunks refuses before writing anything
        _agefile.encrypt_chunks(iter([b"x"]), io.BytesIO(), [flipped])


# -------------------------------------------------------------------------------------------- damage


@pytest.fixture(scope="module")
def sealed(key: Key, scratch: Path) -> tuple[bytes, bytes, int]:
    """(plaintext, ciphertext, header length) for a ~200 KiB payload: 3 full chunks and a short one."""
    data = _plaintext(200 * 1024, 11)
    ciphertext = _seal([data], [key.recipient])
    return data, ciphertext, _header_end(ciphertext)


def _flip(data: bytes, at: int, mask: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ mask]) + data[at + 1 :]


def test_a_header_too_large_to_be_real_is_refused_without_reading_on(key: Key, tmp_path: Path) -> None:
    """A hostile header (an endless stanza body, or endless stanzas) stops at 1 MiB, not at memory's end."""
    full_line = b"A" * 64 + b"\n"  # 48 bytes of body: a full line, so the stanza goes on
    endless_body = _age.INTRO + b"-> X25519 abc\n" + full_line * 40_000  # 2.6 MB, never a short line
    many = _age.INTRO + b"-> grease x\n\n" * 200_000  # 2.6 MB of well-formed empty stanzas
    for name, data in (("body.age", endless_body), ("stanzas.age", many)):
        path = tmp_path / name
        path.write_bytes(data)
        with open(path, "rb") as src:
            with pytest.raises(_age.AgeError, match="implausibly large") as info:
                _age.read_header(src)
            assert src.tell() <= (1 << 20) + 64  # it stopped reading at the limit
        assert info.value.kind == _age.HEADER
        failure, reached = _failure(path, [key.identity])
        assert (failure.kind, reached) == (_agefile.HEADER, b"")


def test_every_header_byte_flip_is_refused_before_any_output(sealed, key: Key, tmp_path: Path) -> None:
    _, ciphertext, header = sealed
    path = tmp_path / "bad.age"
    kinds = {}
    for at in range(header):
        path.write_bytes(_flip(ciphertext, at))
        failure, reached = _failure(path, [key.identity])
        assert reached == b"", at
        kinds[at] = failure.kind
        assert failure.kind in {_agefile.HEADER, _agefile.HMAC, _agefile.NO_MATCH}, (at, failure.kind)
    # The reference's classes where they are unambiguous: the intro line is a header failure, the
    # stanza body (the wrapped file key) no match, a canonical change of the MAC an HMAC failure.
    assert all(kinds[at] == _agefile.HEADER for at in range(len(_age.INTRO)))
    stanza_end = ciphertext.index(b"\n---")
    body_line = ciphertext.rindex(b"\n", 0, stanza_end) + 1
    # (The body's last character also carries padding bits, so a flip there may be non-canonical.)
    assert all(kinds[at] == _agefile.NO_MATCH for at in range(body_line, stanza_end - 1)
               if chr(ciphertext[at] ^ 1).isalnum())
    mac_at = stanza_end + len(b"\n--- ")
    path.write_bytes(ciphertext[:mac_at] + (b"B" if ciphertext[mac_at] != ord("B") else b"C")
                     + ciphertext[mac_at + 1 :])
    failure, reached = _failure(path, [key.identity])
    assert (failure.kind, reached) == (_agefile.HMAC, b"")


def test_a_damaged_payload_nonce_releases_nothing(sealed, key: Key, tmp_path: Path) -> None:
    _, ciphertext, header = sealed
    path = tmp_path / "bad.age"
    for at in (header, header + 7, header + NONCE - 1):
        path.write_bytes(_flip(ciphertext, at))
        failure, reached = _failure(path, [key.identity])
        assert (failure.kind, reached) == (_agefile.PAYLOAD, b"")


@pytest.mark.parametrize("where", ["start", "middle", "tag"])
def test_a_damaged_chunk_releases_exactly_the_authenticated_prefix(
    sealed, key: Key, tmp_path: Path, where: str
) -> None:
    data, ciphertext, header = sealed
    path = tmp_path / "bad.age"
    chunks = -(-len(data) // CHUNK)
    for index in range(chunks):
        start = header + NONCE + index * (CHUNK + TAG)
        end = min(start + CHUNK + TAG, len(ciphertext))
        at = {"start": start, "middle": (start + end) // 2, "tag": end - 1}[where]
        damaged = _flip(ciphertext, at, 0x80)
        path.write_bytes(damaged)
        failure, reached = _failure(path, [key.identity])
        assert failure.kind == _agefile.PAYLOAD
        assert reached == data[: index * CHUNK], (index, len(reached))
        with pytest.raises(pyrage.DecryptError):
            pyrage.decrypt(damaged, [key.identity])


def test_the_prefix_is_exact_across_output_pieces(key: Key, tmp_path: Path) -> None:
    # 40 chunks: pieces of 16 chunks reach the sink in turn; damage in chunk 35 (the third piece).
    data = _plaintext(40 * CHUNK - 5, 12)
    ciphertext = _seal([data], [key.recipient])
    header = _header_end(ciphertext)
    path = tmp_path / "bad.age"
    for index in (16, 35):
        path.write_bytes(_flip(ciphertext, header + NONCE + index * (CHUNK + TAG) + 100))
        failure, reached = _failure(path, [key.identity])
        assert failure.kind == _agefile.PAYLOAD
        assert reached == data[: index * CHUNK]


def test_truncation_is_always_refused(sealed, key: Key, tmp_path: Path) -> None:
    data, ciphertext, header = sealed
    path = tmp_path / "short.age"
    payload = header + NONCE
    full = CHUNK + TAG
    cuts = {
        0: _agefile.HEADER,
        10: _agefile.HEADER,
        header // 2: _agefile.HEADER,
        header - 1: _agefile.HEADER,
        header: _agefile.HEADER,  # the nonce is missing
        header + 5: _agefile.HEADER,
        payload: _agefile.PAYLOAD,  # no chunk at all
        payload + 10: _agefile.PAYLOAD,  # shorter than a tag
        payload + full: _agefile.PAYLOAD,  # a chunk boundary: the file looks complete but is not
        payload + full + CHUNK // 2: _agefile.PAYLOAD,
        payload + 2 * full: _agefile.PAYLOAD,
        payload + 3 * full: _agefile.PAYLOAD,  # the whole final chunk is gone
        payload + 3 * full + TAG - 1: _agefile.PAYLOAD,
        len(ciphertext) - 1: _agefile.PAYLOAD,
    }
    for cut, kind in cuts.items():
        path.write_bytes(ciphertext[:cut])
        failure, reached = _failure(path, [key.identity])
        assert failure.kind == kind, (cut, failure.kind)
        assert reached != data
        assert data.startswith(reached) and len(reached) % CHUNK == 0, (cut, len(reached))
        # Every whole chunk that arrived was authenticated and released; nothing else was.
        assert len(reached) == max(0, cut - payload) // full * CHUNK, (cut, len(reached))


def test_appended_bytes_are_refused(sealed, key: Key, tmp_path: Path) -> None:
    _, ciphertext, _ = sealed
    exact = _seal([_plaintext(CHUNK, 13)], [key.recipient])  # a full final chunk
    path = tmp_path / "long.age"
    for original in (ciphertext, exact):
        for extra in (b"\0", b"x" * TAG, b"y" * (TAG + 1), os.urandom(CHUNK + TAG)):
            path.write_bytes(original + extra)
            failure, _ = _failure(path, [key.identity])
            assert failure.kind == _agefile.PAYLOAD, (len(original), len(extra))
            with pytest.raises(pyrage.DecryptError):
                pyrage.decrypt(original + extra, [key.identity])


# --------------------------------------------------------------------------------- helper threads


class SinkRefused(Exception):
    """A sink's own refusal of the content (not an OSError, not an age failure)."""


class FailingSink:
    def __init__(self, fail_on: int, exc: BaseException) -> None:
        self.fail_on, self.exc, self.writes, self.received = fail_on, exc, 0, 0

    def write(self, data: bytes) -> int:
        self.writes += 1
        if self.writes >= self.fail_on:
            raise self.exc
        self.received += len(data)
        return len(data)


@pytest.fixture(scope="module")
def big_file(key: Key, scratch: Path) -> tuple[Path, int]:
    """An 8 MiB package: eight 1 MiB output pieces, more than the queue between the threads holds."""
    size = 8 * 1024 * 1024
    path = scratch / "big.age"
    path.write_bytes(_seal([_plaintext(size, 14)], [key.recipient]))
    return path, size


@pytest.mark.parametrize("fail_on", [1, 2, 8])
@pytest.mark.parametrize("exc_type", [OSError, SinkRefused])
def test_a_failing_sink_is_re_raised_unchanged_and_promptly(
    big_file, key: Key, fail_on: int, exc_type: type
) -> None:
    path, _ = big_file
    exc = OSError(28, "disk full") if exc_type is OSError else SinkRefused("not a tar")
    sink = FailingSink(fail_on, exc)
    raised = _run_with_deadline(lambda: _agefile.decrypt_to(path, [key.identity], sink))
    assert raised is exc
    assert not isinstance(raised, PackageRejected)
    assert sink.writes == fail_on
    assert sink.received == (fail_on - 1) * 16 * CHUNK


def test_an_unreadable_package_is_a_package_rejected_error(key: Key, tmp_path: Path) -> None:
    with pytest.raises(PackageRejected, match="Cannot read the package"):
        _agefile.decrypt_to(tmp_path / "missing.age", [key.identity], io.BytesIO())


class _FailingFile(io.FileIO):
    """A package file whose reads fail (EIO: a failing USB stick or network share) from byte ``limit`` on."""

    limit = 0

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self.tell() >= self.limit:
            raise OSError(errno.EIO, "Input/output error")
        with memoryview(buffer) as view:
            return super().readinto(view[: self.limit - self.tell()])


def _open_failing_after(limit: int) -> Callable[..., IO[bytes]]:
    def fake_open(path: Path, mode: str = "rb") -> IO[bytes]:
        assert mode == "rb"
        raw = _FailingFile(path, "r")
        raw.limit = limit
        return io.BufferedReader(raw, buffer_size=512)

    return fake_open


def test_a_package_read_failure_in_the_payload_is_a_package_rejected_error(
    sealed, key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, ciphertext, header = sealed
    path = tmp_path / "flaky.age"
    path.write_bytes(ciphertext)
    monkeypatch.setattr(_agefile, "open", _open_failing_after(header + NONCE + 2 * (CHUNK + TAG) + 7),
                        raising=False)
    sink = io.BytesIO()
    with pytest.raises(PackageRejected, match=r"Cannot read the package .*Input/output error") as info:
        _agefile.decrypt_to(path, [key.identity], sink)
    assert not isinstance(info.value, AgeFailure)
    assert data.startswith(sink.getvalue()) and len(sink.getvalue()) % CHUNK == 0  # authenticated only


@pytest.mark.parametrize("limit", [0, 100])
def test_a_package_read_failure_in_the_header_is_a_package_rejected_error(
    limit: int, sealed, key: Key, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ciphertext, _ = sealed
    path = tmp_path / "flaky.age"
    path.write_bytes(ciphertext)
    monkeypatch.setattr(_agefile, "open", _open_failing_after(limit), raising=False)
    with pytest.raises(PackageRejected, match="Cannot read the package"):
        _agefile.decrypt_to(path, [key.identity], io.BytesIO())


def _tracked_chunks(count: int, fail_at: int | None, closed: list[bool]) -> Iterator[bytes]:
    """``count`` chunks of 256 KiB (raising SinkRefused before chunk ``fail_at``); records close()."""
    try:
        for i in range(count):
            if i == fail_at:
                raise SinkRefused("the source changed while sealing")
            yield bytes([i % 256]) * (256 * 1024)
    finally:
        closed.append(True)


def test_an_iterator_failure_comes_back_from_encrypt_chunks(key: Key) -> None:
    closed: list[bool] = []
    out = io.BytesIO()
    chunks = _tracked_chunks(40, 20, closed)
    raised = _run_with_deadline(lambda: _agefile.encrypt_chunks(chunks, out, [key.recipient]))
    assert isinstance(raised, SinkRefused) and str(raised) == "the source changed while sealing"
    assert closed == [True]
    with pytest.raises(pyrage.DecryptError):  # what was written is not a complete file
        pyrage.decrypt(out.getvalue(), [key.identity])


class FailingOutput(io.BytesIO):
    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.fail_on, self.writes = fail_on, 0

    def write(self, data) -> int:  # type: ignore[override]
        self.writes += 1
        if self.writes >= self.fail_on:
            raise OSError(28, "No space left on device")
        return super().write(data)


@pytest.mark.parametrize("fail_on", [1, 2, 5])
def test_an_output_failure_comes_back_from_encrypt_chunks_as_oserror(key: Key, fail_on: int) -> None:
    closed: list[bool] = []

    def endless() -> Iterator[bytes]:  # the producer would never stop on its own
        try:
            while True:
                yield os.urandom(CHUNK * 3)
        finally:
            closed.append(True)

    out = FailingOutput(fail_on)
    source = endless()
    raised = _run_with_deadline(lambda: _agefile.encrypt_chunks(source, out, [key.recipient]))
    assert isinstance(raised, OSError) and raised.errno == 28
    assert out.writes == fail_on
    assert source.gi_frame is None  # the source generator was closed, its files released
    assert closed == ([True] if fail_on > 1 else [])  # (at 1 the header write failed: never started)


def test_no_helper_thread_outlives_many_calls(big_file, key: Key, tmp_path: Path) -> None:
    path, _ = big_file
    for i in range(10):
        sink = FailingSink(1 + i % 3, SinkRefused())
        raised = _run_with_deadline(lambda sink=sink: _agefile.decrypt_to(path, [key.identity], sink))
        assert raised is sink.exc
        assert pyrage.decrypt(_seal([b"a" * 1000] * 5, [key.recipient]), [key.identity]) == b"a" * 5000
    alive = [t for t in threading.enumerate() if t.name == THREAD_NAME]
    assert alive == []


# ------------------------------------------------------------------------------------------- memory


class SlowWriter:
    """A writer slower than the other thread (a busy disk), so that only back-pressure between the
    threads keeps memory flat: an unbounded queue would fill with the whole payload."""

    def __init__(self, target: IO[bytes] | None = None) -> None:
        self.target, self.digest, self.size = target, hashlib.sha256(), 0

    def write(self, data) -> int:
        time.sleep(0.003)
        if self.target is not None:
            self.target.write(data)
        else:
            self.digest.update(data)
        self.size += len(data)
        return len(data)


def test_memory_stays_flat_both_ways(key: Key, tmp_path: Path) -> None:
    total = 32 * 1024 * 1024
    piece = 1024 * 1024
    block = os.urandom(piece)
    plain = hashlib.sha256()

    def chunks() -> Iterator[bytes]:
        for i in range(total // piece):
            chunk = i.to_bytes(8, "big") + block[8:]  # a fresh object each time, as a file read gives
            plain.update(chunk)
            yield chunk

    path = tmp_path / "big.age"
    tracemalloc.start()
    try:
        with open(path, "wb") as out:
            tracemalloc.reset_peak()
            _agefile.encrypt_chunks(chunks(), SlowWriter(out), [key.recipient])  # type: ignore[arg-type]
            _, seal_peak = tracemalloc.get_traced_memory()
        sink = SlowWriter()
        tracemalloc.reset_peak()
        _agefile.decrypt_to(path, [key.identity], sink)
        _, open_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with open(path, "rb") as fh:
        header = _header_end(fh.read(4096))
    assert path.stat().st_size == _expected_length(header, total)
    assert (sink.size, sink.digest.hexdigest()) == (total, plain.hexdigest())
    assert piece <= seal_peak < 12 * 1024 * 1024, seal_peak  # tracing saw the chunks, and no more
    assert piece <= open_peak < 12 * 1024 * 1024, open_peak
