"""Property test: any flipped byte or truncation of a package is refused and leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agreements import open_package, seal
from agreements.errors import PackageRejected

SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Sealed:
    """One small package (three age STREAM chunks) and what is needed to open it."""

    def __init__(self, folder: Path) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.identity = pyrage.x25519.Identity.generate()
        src = folder / "students.csv"
        src.write_bytes(b"student_code,grade\n" + os.urandom(140_000))
        self.path = folder / "p.age"
        seal([("students.csv", src)], {"rows_in": 1}, agreement_id="agr-1", agreement_hash="ab" * 32,
             sender_key=self.key, sender_fingerprint="DIST", recipients=[str(self.identity.to_public())],
             audit_head=(1, "cd" * 32), out=self.path)
        self.data = self.path.read_bytes()

    def refuses(self, damaged: bytes) -> None:
        """Open ``damaged``: it must be refused, with no output folder and no staging left."""
        work = Path(tempfile.mkdtemp(prefix="tamper-"))
        try:
            pkg = work / "p.age"
            pkg.write_bytes(damaged)
            with pytest.raises(PackageRejected):
                open_package(pkg, self.identity, work / "in", verify_sender=lambda m: self.key.public_key())
            assert sorted(p.name for p in work.iterdir()) == ["p.age"]
        finally:
            shutil.rmtree(work)


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Sealed:
    return Sealed(tmp_path_factory.mktemp("sealed"))


def test_the_untouched_package_opens(sealed: Sealed, tmp_path: Path) -> None:
    opened = open_package(sealed.path, sealed.identity, tmp_path / "in",
                          verify_sender=lambda m: sealed.key.public_key())
    assert opened.files[0].stat().st_size == 140_000 + len(b"student_code,grade\n")


@SETTINGS
@given(position=st.data(), mask=st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_refused(sealed: Sealed, position: st.DataObject, mask: int) -> None:
    at = position.draw(st.integers(min_value=0, max_value=len(sealed.data) - 1))
    damaged = bytearray(sealed.data)
    damaged[at] ^= mask
    sealed.refuses(bytes(damaged))


@SETTINGS
@given(position=st.data())
def test_any_truncation_is_refused(sealed: Sealed, position: st.DataObject) -> None:
    length = position.draw(st.integers(min_value=0, max_value=len(sealed.data) - 1))
    sealed.refuses(sealed.data[:length])


def test_every_header_byte_flipped_is_refused(sealed: Sealed) -> None:
    """Deterministic sweep of the whole age header, where parsing (not the AEAD) must catch damage."""
    header_end = sealed.data.index(b"\n---") + 48  # through the header MAC line
    for at in range(header_end):
        damaged = bytearray(sealed.data)
        damaged[at] ^= 0x01
        sealed.refuses(bytes(damaged))


def test_appended_bytes_are_refused(sealed: Sealed) -> None:
    sealed.refuses(sealed.data + b"\0")
    sealed.refuses(sealed.data + os.urandom(100))


class Plain:
    """A valid package's plaintext tar, to damage *inside* the encryption (as a hostile sender could)."""

    def __init__(self) -> None:
        import io
        import tarfile

        from agreements import FileEntry, Manifest
        from agreements._signing import canonical_json, sha256_hex, sign_document

        self.key = Ed25519PrivateKey.generate()
        self.identity = pyrage.x25519.Identity.generate()
        report, data = b'{"rows_in":2}', b"student_code,grade\nA1,9\nB2,10\n" * 40
        doc = Manifest(
            package_id="p", agreement_id="a", agreement_hash="ab" * 32, sender_fingerprint="S",
            recipients=(str(self.identity.to_public()),), created="2026-01-01T00:00:00Z", audit_head=(1, "h"),
            report_size=len(report), report_sha256=sha256_hex(report),
            files=(FileEntry("s.csv", len(data), sha256_hex(data)),),
        ).to_json()
        signature = sign_document(self.key, doc).encode()
        members = [("manifest.json", canonical_json(doc)), ("manifest.sig", signature),
                   ("report.json", report), ("data/s.csv", data)]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, body in members:
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
        self.tar = buf.getvalue()

    def check(self, plaintext: bytes) -> None:
        """Opening never fails with anything but a PathShareError, and a failure leaves nothing."""
        from deid.errors import PathShareError

        work = Path(tempfile.mkdtemp(prefix="plain-"))
        try:
            pkg = work / "p.age"
            pkg.write_bytes(pyrage.encrypt(plaintext, [self.identity.to_public()]))
            try:
                open_package(pkg, self.identity, work / "in", verify_sender=lambda m: self.key.public_key())
            except PathShareError:
                assert sorted(p.name for p in work.iterdir()) == ["p.age"]
        finally:
            shutil.rmtree(work)


@pytest.fixture(scope="module")
def plain() -> Plain:
    return Plain()


@settings(SETTINGS, max_examples=75)  # two openings per example
@given(data=st.data(), mask=st.integers(min_value=1, max_value=255))
def test_damaged_archive_inside_valid_encryption(plain: Plain, data: st.DataObject, mask: int) -> None:
    at = data.draw(st.integers(min_value=0, max_value=len(plain.tar) - 1))
    damaged = bytearray(plain.tar)
    damaged[at] ^= mask
    plain.check(bytes(damaged))
    plain.check(plain.tar[: data.draw(st.integers(min_value=0, max_value=len(plain.tar)))])
