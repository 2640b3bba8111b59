"""No lock-in: packages round-trip with the stock ``age`` CLI (Debian's ``age`` package in CI).

Without ``age`` on PATH these tests fail under CI (the env var CI is set) and skip, saying why,
elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements import _agefile, open_package, seal
from agreements._signing import canonical_json, verify_document


@pytest.fixture
def identity_file(tmp_path: Path) -> tuple[pyrage.x25519.Identity, Path]:
    identity = pyrage.x25519.Identity.generate()
    path = tmp_path / "identity.txt"
    path.write_text(f"# created by a PathShare test\n# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    return identity, path


def test_age_cli_decrypts_a_sealed_package(tmp_path: Path, age_cli: str, identity_file) -> None:
    identity, id_path = identity_file
    key = Ed25519PrivateKey.generate()
    data = tmp_path / "students.csv"
    data.write_bytes(b"student_code,birth_year\n" + b"A1,2008\n" * 20_000)
    manifest = seal([("students.csv", data, 20_000)], {"rows_in": 20_000}, agreement_id="agr-1",
                    agreement_hash="ab" * 32, sender_key=key, sender_fingerprint="DIST",
                    recipients=[str(identity.to_public())], audit_head=(3, "cd" * 32), out=tmp_path / "p.age")

    plain = tmp_path / "p.tar"
    subprocess.run([age_cli, "-d", "-i", str(id_path), "-o", str(plain), str(tmp_path / "p.age")],
                   check=True, capture_output=True, timeout=60)
    out = tmp_path / "untarred"
    with tarfile.open(plain) as tar:
        assert sorted(tar.getnames()) == ["data", "data/students.csv", "manifest.json", "manifest.sig",
                                          "report.json"]
        tar.extractall(out, filter="data")
    doc = json.loads((out / "manifest.json").read_bytes())
    assert (out / "manifest.json").read_bytes() == canonical_json(doc)
    assert doc == manifest.to_json()
    assert verify_document(key.public_key(), doc, (out / "manifest.sig").read_text())
    assert json.loads((out / "report.json").read_bytes()) == {"rows_in": 20_000}
    assert (out / "data" / "students.csv").read_bytes() == data.read_bytes()


def test_pathshare_decrypts_what_age_cli_encrypted(tmp_path: Path, age_cli: str, identity_file) -> None:
    identity, _ = identity_file
    payload = tmp_path / "plain.bin"
    payload.write_bytes(os.urandom(200_000))
    encrypted = tmp_path / "x.age"
    subprocess.run([age_cli, "-r", str(identity.to_public()), "-o", str(encrypted), str(payload)],
                   check=True, capture_output=True, timeout=60)
    with open(tmp_path / "back.bin", "wb") as sink:
        _agefile.decrypt_to(encrypted, [identity], sink)
    assert (tmp_path / "back.bin").read_bytes() == payload.read_bytes()


def test_package_built_by_age_cli_and_tar_opens(tmp_path: Path, age_cli: str, identity_file) -> None:
    """A package assembled with tar + age by hand (same layout) opens with open_package."""
    identity, _ = identity_file
    key = Ed25519PrivateKey.generate()
    data = tmp_path / "students.csv"
    data.write_bytes(b"student_code\nA1\n")
    ours = tmp_path / "p.age"
    seal([("students.csv", data)], {}, agreement_id="agr-1", agreement_hash="ab" * 32, sender_key=key,
         sender_fingerprint="DIST", recipients=[str(identity.to_public())], audit_head=(0, ""), out=ours)
    with open(tmp_path / "p.tar", "wb") as sink:
        _agefile.decrypt_to(ours, [identity], sink)
    # Re-encrypt the same tar with the age CLI: PathShare must not depend on who did the encryption.
    theirs = tmp_path / "theirs.age"
    subprocess.run([age_cli, "-r", str(identity.to_public()), "-o", str(theirs), str(tmp_path / "p.tar")],
                   check=True, capture_output=True, timeout=60)
    opened = open_package(theirs, identity, tmp_path / "in", verify_sender=lambda m: key.public_key())
    assert opened.files[0].read_bytes() == b"student_code\nA1\n"
