"""A structure-aware fuzzer of the package unpacker, shared by the attack suite (hypothesis, a few
seconds) and ``make bench`` (tests/benchmarks/bench_fuzz_unpack.py, a fixed time).

A hostile sender can put any plaintext inside a correctly encrypted age file, so the fuzzer mutates
the *plaintext tar* of a genuine, signed package — bit flips, header fields rewritten with negative
or absurd base-256 numbers (checksums fixed so the header parses), member types and names, forged
PAX extension headers, truncations, insertions, spliced and duplicated blocks — encrypts it to the
recipient and opens it. Every case ends in one of:

``refused``          the project's refusal (PackageRejected) and nothing left behind: fine;
``same``             accepted, and what reached the destination is byte for byte what the sender
                     signed (the mutation touched only tar metadata PathShare ignores, e.g. an mtime);
``accepted``         accepted with content that differs from what was signed: a forgery (must be 0);
``crash``            any other exception (must be 0);
``hang``             the case outran its time limit (must be 0);
``leftover``         refused, but a staging folder or a file was left behind (must be 0).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import signal
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyrage
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements import _agefile, open_package, seal
from agreements.errors import PackageRejected

Pick = Callable[[int, int], int]  # an integer in [lo, hi], from hypothesis or from a seeded RNG

OUTCOMES = ("refused", "same", "accepted", "crash", "hang", "leftover")
BLOCK = tarfile.BLOCKSIZE


class Hang(BaseException):
    """Raised in the main thread by the per-case alarm (a BaseException: nothing may swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Hang in the calling (main) thread if the block runs longer than ``seconds``."""

    def alarm(_signum: int, _frame: object) -> None:
        raise Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


class Target:
    """A genuine signed package (sealed by PathShare itself) and the keys to open it."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.identity = pyrage.x25519.Identity.generate()
        self.recipient = self.identity.to_public()
        work = Path(tempfile.mkdtemp(prefix="fuzz-target-"))
        try:
            (work / "a.csv").write_bytes(b"student_code,grade\nA1,9\nB2,10\n" * 30)
            (work / "b.csv").write_bytes(bytes(range(256)) * 3)
            seal(
                [("students.csv", work / "a.csv", 60), ("more/extra.bin", work / "b.csv")],
                {"rows_in": 60, "rows_out": 60},
                agreement_id="agr-fuzz", agreement_hash="ab" * 32, sender_key=self.key,
                sender_fingerprint="FUZZ-SENDER", recipients=[str(self.recipient)],
                audit_head=(3, "cd" * 32), out=work / "p.age",
                now=datetime(2026, 9, 1, 12, 0, tzinfo=UTC),
            )
            plain = io.BytesIO()
            _agefile.decrypt_to(work / "p.age", [self.identity], plain)
            self.tar = plain.getvalue()
            open_package(work / "p.age", self.identity, work / "in", verify_sender=self._sender)
            self.expected = _tree(work / "in")
        finally:
            shutil.rmtree(work)
        self.headers: list[int] = []  # offsets of every header block (extension headers included)
        self.members: list[tuple[int, int]] = []  # (start, end) of each member, header to padding
        with tarfile.open(fileobj=io.BytesIO(self.tar), mode="r:") as tar:
            for m in tar.getmembers():
                self.headers.extend(range(m.offset, m.offset_data, BLOCK))
                end = m.offset_data + m.size + (-m.size % BLOCK)
                self.members.append((m.offset, end))

    def _sender(self, _manifest: object) -> object:
        return self.key.public_key()

    def open(self, plaintext: bytes, timeout: float = 5.0) -> tuple[str, str]:
        """Encrypt ``plaintext`` to the recipient and open it; (outcome, detail)."""
        work = Path(tempfile.mkdtemp(prefix="fuzz-case-"))
        try:
            pkg = work / "p.age"
            pkg.write_bytes(pyrage.encrypt(plaintext, [self.recipient]))
            try:
                with time_limit(timeout):
                    open_package(pkg, self.identity, work / "in", verify_sender=self._sender)
            except Hang:
                return "hang", ""
            except PackageRejected as exc:
                left = sorted(p.name for p in work.iterdir() if p.name != "p.age")
                return ("leftover", f"{left} after: {exc}") if left else ("refused", str(exc))
            except Exception as exc:  # the point: anything else is a crash
                return "crash", f"{type(exc).__name__}: {exc}"
            got = _tree(work / "in")
            return ("same", "") if got == self.expected else ("accepted", sorted(got))
        finally:
            shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------------------------------------- mutators


def _fix_checksum(tar: bytearray, at: int) -> None:
    block = tar[at : at + BLOCK]
    if len(block) < BLOCK:
        return
    block[148:156] = b" " * 8
    tar[at + 148 : at + 156] = b"%06o\0 " % sum(block)


def _base256(value: int, width: int) -> bytes:
    """tar's base-256 number: first byte 0x80 (positive) or 0xff (negative), two's complement."""
    raw = (value % (1 << (8 * width))).to_bytes(width, "big")
    return bytes([0xFF if value < 0 else 0x80]) + raw[1:]


_FIELDS = ((124, 12), (100, 8), (108, 8), (116, 8), (136, 12), (148, 8))  # size mode uid gid mtime chksum
_TYPES = b"0125x gLKS3467\xff"
_NAMES = (b"../evil.csv", b"/etc/evil", b"data/../../evil", b"data/a\x01.csv", b"manifest.json",
          b"report.json", b"manifest.sig", b"data/students.csv", b"data/STUDENTS.CSV", b"data", b"data/",
          b"other/x", b"data/more", b"", b"data/" + b"n" * 95)
_PAX = (b"path=data/../../evil", b"path=report.json", b"size=-1", b"size=99999999999999999999",
        b"size=-99999", b"GNU.sparse.map=0,1", b"GNU.sparse.size=4096", b"linkpath=/etc/passwd",
        b"hdrcharset=BINARY", b"path=data/\xff\xfe", b"mtime=nan", b"uid=-5", b"path=" + b"x" * 300)


def _number(pick: Pick, width: int) -> bytes:
    kind = pick(0, 5)
    if kind == 0:
        return _base256(-pick(1, 1 << 64), width)
    if kind == 1:
        return _base256(pick(1 << 33, 1 << 80), width)
    if kind == 2:
        return (b"%0*o" % (width - 1, pick(0, 8 ** (width - 1) - 1))) + b"\0"
    if kind == 3:
        return bytes(pick(0, 255) for _ in range(width))
    if kind == 4:
        return b"\0" * width
    return b" " * (width - 1) + b"\0"


def _pax_header(pick: Pick) -> bytes:
    records = b""
    for _ in range(pick(1, 3)):
        choice = pick(0, len(_PAX))
        body = b"1" * pick(1, 4000) if choice == len(_PAX) else _PAX[choice]
        record = b" " + body + b"\n"
        length = len(record) + len(str(len(record)))  # the length counts its own digits
        if len(str(length)) != len(str(len(record))):
            length = len(record) + len(str(length))
        if not pick(0, 3):
            length += pick(-3, 3)  # and sometimes lies
        records += str(length).encode() + record
    header = bytearray(BLOCK)
    header[0:16] = b"././@PaxHeader\0\0"
    header[100:108] = b"0000644\0"
    header[124:136] = b"%011o\0" % len(records)
    header[156:157] = b"x" if pick(0, 3) else b"g"
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    _fix_checksum(header, 0)
    return bytes(header) + records + b"\0" * (-len(records) % BLOCK)


def mutate(target: Target, pick: Pick) -> bytes:
    """One to three random mutations of the target's plaintext tar."""
    tar = bytearray(target.tar)
    for _ in range(pick(1, 3)):
        if not tar:
            break
        op = pick(0, 10)
        pos = pick(0, len(tar) - 1)
        head = target.headers[pick(0, len(target.headers) - 1)]
        if op == 0:
            tar[pos] ^= 1 << pick(0, 7)
        elif op == 1:
            tar[pos] = pick(0, 255)
        elif op in (2, 3):  # a numeric field (size most often) rewritten, checksum fixed or not
            offset, width = _FIELDS[0] if op == 2 else _FIELDS[pick(0, len(_FIELDS) - 1)]
            if head + offset + width <= len(tar):
                tar[head + offset : head + offset + width] = _number(pick, width)
                if op == 2 and not pick(0, 2):  # ...on an extension header (PAX, GNU long name)
                    tar[head + 156] = b"xgLK"[pick(0, 3)]
                if pick(0, 3):
                    _fix_checksum(tar, head)
        elif op == 4:  # the member's type
            if head + 157 <= len(tar):
                tar[head + 156] = _TYPES[pick(0, len(_TYPES) - 1)]
                _fix_checksum(tar, head)
        elif op == 5:  # the member's name
            if head + BLOCK <= len(tar):
                name = _NAMES[pick(0, len(_NAMES) - 1)]
                tar[head : head + 100] = name[:100].ljust(100, b"\0")
                _fix_checksum(tar, head)
        elif op == 6:  # a forged PAX extension header before a member
            at = min(head, len(tar))
            tar[at:at] = _pax_header(pick)
        elif op == 7:
            del tar[pos:]
        elif op == 8:  # bytes removed or inserted (whole blocks or not)
            n = BLOCK * pick(1, 4) if pick(0, 1) else pick(1, 700)
            if pick(0, 1):
                del tar[pos : pos + n]
            else:
                tar[pos:pos] = bytes(pick(0, 255) for _ in range(min(n, 64))) * (n // min(n, 64))
        elif op == 9:  # a member duplicated, moved or dropped
            start, end = target.members[pick(0, len(target.members) - 1)]
            piece = bytes(tar[start:end])
            way = pick(0, 2)
            if way == 0:
                tar[start:start] = piece
            elif way == 1:
                del tar[start:end]
            else:
                del tar[start:end]
                at = pick(0, len(tar)) // BLOCK * BLOCK
                tar[at:at] = piece
        else:  # one block replaced by another
            src = target.headers[pick(0, len(target.headers) - 1)]
            blk = pick(0, len(tar) // BLOCK)
            tar[blk * BLOCK : blk * BLOCK + BLOCK] = target.tar[src : src + BLOCK]
    return bytes(tar)


@dataclass
class Tally:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    examples: dict[str, list[str]] = field(default_factory=dict)
    identical: int = 0  # mutations that happened to give back the original bytes (not counted)
    seconds: float = 0.0

    def add(self, outcome: str, detail: str) -> None:
        self.counts[outcome] += 1
        if outcome not in ("refused", "same"):
            self.examples.setdefault(outcome, [])
            if len(self.examples[outcome]) < 5:
                self.examples[outcome].append(str(detail)[:300])

    @property
    def cases(self) -> int:
        return sum(self.counts.values())


def run(target: Target, pick: Pick, seconds: float, timeout: float = 5.0) -> Tally:
    """Fuzz for ``seconds`` of wall time."""
    tally = Tally()
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        mutant = mutate(target, pick)
        if mutant == target.tar:
            tally.identical += 1
            continue
        tally.add(*target.open(mutant, timeout))
    tally.seconds = time.perf_counter() - start
    return tally
