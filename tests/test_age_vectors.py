"""C2SP age conformance vectors (CCTV), run through the decrypt path ``open_package`` uses.

Each vector names the result class an implementation must give; ``agreements._agefile`` reports the
failing stage as ``AgeFailure.kind``. The vectors are copied into ``tests/vectors/cctv-age`` (C2SP
CCTV; 0BSD, CC0 or Unlicense: see the README there), so a clean clone has them; a missing folder fails
the suite rather than skipping it.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path

import pyrage
import pytest

from agreements import _agefile, open_package
from agreements.errors import PackageRejected

VECTORS = Path(__file__).resolve().parent / "vectors" / "cctv-age"

# The AgeFailure kind each expected class must show: PathShare's reader tells every class apart.
EXPECTED_KINDS = {
    "no match": {_agefile.NO_MATCH},
    "HMAC failure": {_agefile.HMAC},
    "header failure": {_agefile.HEADER},
    "payload failure": {_agefile.PAYLOAD},
    "armor failure": {_agefile.ARMOR},
}


def _vector_names() -> list[str]:
    if not VECTORS.is_dir():
        return ["<missing>"]
    return sorted(p.name for p in VECTORS.iterdir() if p.is_file() and p.name != "README.md")


def _parse(path: Path) -> tuple[dict[str, list[str]], bytes]:
    raw = path.read_bytes()
    head, _, body = raw.partition(b"\n\n")
    meta: dict[str, list[str]] = {}
    for line in head.decode("utf-8").splitlines():
        key, _, value = line.partition(": ")
        meta.setdefault(key, []).append(value)
    if meta.get("compressed") == ["zlib"]:
        body = zlib.decompress(body)
    return meta, body


def test_vectors_are_present() -> None:
    assert VECTORS.is_dir(), f"the C2SP age vectors are missing: expected them in {VECTORS}"
    assert len(_vector_names()) > 100


@pytest.mark.parametrize("name", _vector_names())
def test_vector(name: str, tmp_path: Path) -> None:
    assert VECTORS.is_dir(), f"the C2SP age vectors are missing: expected them in {VECTORS}"
    meta, body = _parse(VECTORS / name)
    identities = meta.get("identity", [])
    if name.startswith("hybrid") or any(i.startswith("AGE-SECRET-KEY-PQ") for i in identities):
        pytest.skip("post-quantum hybrid (ML-KEM-768 + X25519) recipients: PathShare keys are X25519 only")
    if "passphrase" in meta:
        pytest.skip("passphrase (scrypt) recipients: PathShare's decrypt path takes X25519 identities only")
    expect = meta["expect"][0]
    keys = [pyrage.x25519.Identity.from_str(i) for i in identities] or [pyrage.x25519.Identity.generate()]
    source = tmp_path / "vector.age"
    source.write_bytes(body)

    released = io.BytesIO()
    failure: _agefile.AgeFailure | None = None
    try:
        _agefile.decrypt_to(source, keys, released)
    except _agefile.AgeFailure as exc:
        failure = exc
    released_hash = hashlib.sha256(released.getvalue()).hexdigest()

    if expect == "success":
        assert failure is None, f"expected success, got {failure.kind}: {failure}"
        assert released_hash == meta["payload"][0]
        return
    assert failure is not None, f"expected {expect}, but the file decrypted"
    assert failure.kind in EXPECTED_KINDS[expect], f"expected {expect}, got {failure.kind}: {failure}"
    if "payload" in meta:
        # What was released before the failure is exactly the authenticated prefix, no more.
        assert released_hash == meta["payload"][0]
    else:
        assert released.getvalue() == b""
    # And the package opener refuses it leaving nothing behind.
    with pytest.raises(PackageRejected):
        open_package(source, keys[0], tmp_path / "out", verify_sender=lambda m: pytest.fail("not reached"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vector.age"]
