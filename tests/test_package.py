"""Sealing and opening packages: round trip, every refusal, and nothing left behind on failure."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agreements import (
    DestructionCertificate,
    FileEntry,
    Manifest,
    Receipt,
    _agefile,
    _receipts,
    make_destruction_certificate,
    make_receipt,
    open_package,
    seal,
    verify_destruction_certificate,
    verify_receipt,
)
from agreements import _seal as sealing
from agreements._signing import canonical_json, sha256_hex, sign_document
from agreements.errors import AgreementError, PackageRejected
from deid.errors import InputError, OutputError, OutputExists

NOW = datetime(2026, 9, 1, 12, 30, tzinfo=UTC)


class Party:
    """An organization for tests: a signing key and an age identity."""

    def __init__(self, fingerprint: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.identity = pyrage.x25519.Identity.generate()
        self.recipient = str(self.identity.to_public())
        self.fingerprint = fingerprint

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()


@pytest.fixture(scope="module")
def district() -> Party:
    return Party("DIST-1111")


@pytest.fixture(scope="module")
def college() -> Party:
    return Party("COLL-2222")


@pytest.fixture
def sources(tmp_path: Path) -> list[tuple[str, Path, int | None]]:
    src = tmp_path / "src"
    src.mkdir()
    a = src / "students.csv"
    a.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    b = src / "courses.parquet"
    b.write_bytes(os.urandom(150_000))  # more than two 64 KiB age STREAM chunks
    return [("students.csv", a, 2), ("extra/courses.parquet", b, None)]


def _seal(sender: Party, recipients: list[str], sources: list, out: Path, **kw: Any) -> Manifest:
    return seal(
        sources, {"rows_in": 2, "rows_out": 2, "k_achieved": 5},
        agreement_id="agr-1", agreement_hash="ab" * 32, sender_key=sender.key,
        sender_fingerprint=sender.fingerprint, recipients=recipients, audit_head=(7, "cd" * 32),
        out=out, now=NOW, **kw,
    )


def _trusting(party: Party):
    def verify_sender(manifest: Manifest) -> Ed25519PublicKey:
        if manifest.sender_fingerprint != party.fingerprint:
            raise PackageRejected("The package is signed by an unknown partner.")
        return party.public

    return verify_sender


def _nothing_left(parent: Path, out_dir: Path, before: set[str]) -> None:
    """out_dir absent (or empty), and no staging folder or temp file left beside it."""
    assert not out_dir.exists() or not any(out_dir.iterdir())
    assert {p.name for p in parent.iterdir()} - {out_dir.name} == before - {out_dir.name}


# ------------------------------------------------------------------------------------------ round trip


def test_round_trip(tmp_path: Path, district: Party, college: Party, sources: list) -> None:
    pkg = tmp_path / "p.age"
    manifest = _seal(district, [college.recipient, district.recipient], sources, pkg)
    assert manifest.package_id and manifest.created == "2026-09-01T12:30:00Z"
    assert [f.name for f in manifest.files] == ["students.csv", "extra/courses.parquet"]
    assert manifest.files[0].rows == 2 and manifest.files[1].rows is None
    assert manifest.files[1].sha256 == sha256_hex(sources[1][1].read_bytes())
    assert pkg.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert stat.S_IMODE(pkg.stat().st_mode) == 0o600

    seen: list[Manifest] = []
    opened = open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district),
                          check_manifest=seen.append)
    assert seen == [manifest] and opened.manifest == manifest
    assert opened.manifest_hash == sha256_hex(canonical_json(manifest.to_json()))
    assert opened.report == {"rows_in": 2, "rows_out": 2, "k_achieved": 5}
    for (name, src, _), path in zip(sources, opened.files, strict=True):
        assert path == tmp_path / "in" / "data" / name
        assert path.read_bytes() == src.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "in").stat().st_mode) == 0o700
    assert json.loads((tmp_path / "in" / "manifest.json").read_bytes()) == manifest.to_json()
    # The sender, also a recipient here, can open its own package too.
    open_package(pkg, district.identity, tmp_path / "mine", verify_sender=_trusting(district))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_opens_into_existing_empty_folder(tmp_path: Path, district: Party, college: Party, sources) -> None:
    pkg = tmp_path / "p.age"
    _seal(district, [college.recipient], sources, pkg)
    (tmp_path / "in").mkdir()
    opened = open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == [
        "data", "manifest.json", "manifest.sig", "report.json"]
    assert opened.files[0].read_bytes() == sources[0][1].read_bytes()


def test_manifest_json_round_trip_and_package_id(tmp_path: Path, district: Party, college: Party,
                                                 sources) -> None:
    manifest = _seal(district, [college.recipient], sources, tmp_path / "p.age", package_id="pkg-42")
    assert manifest.package_id == "pkg-42"
    assert Manifest.from_json(json.loads(json.dumps(manifest.to_json()))) == manifest
    assert manifest.to_json()["audit_head"] == {"seq": 7, "hash": "cd" * 32}


# --------------------------------------------------------------------------------------------- refusals


def test_addressed_to_someone_else(tmp_path: Path, district: Party, college: Party, sources) -> None:
    pkg = tmp_path / "p.age"
    _seal(district, [district.recipient], sources, pkg)
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(PackageRejected, match="not addressed to this organization") as info:
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert info.value.kind == _agefile.NO_MATCH
    _nothing_left(tmp_path, tmp_path / "in", before)


def test_unknown_signer(tmp_path: Path, district: Party, college: Party, sources) -> None:
    pkg = tmp_path / "p.age"
    _seal(district, [college.recipient], sources, pkg)
    before = {p.name for p in tmp_path.iterdir()}
    stranger = Party("STRANGER")
    with pytest.raises(PackageRejected, match="unknown partner"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(stranger))
    _nothing_left(tmp_path, tmp_path / "in", before)


def test_signature_by_another_key(tmp_path: Path, district: Party, college: Party, sources) -> None:
    """A manifest claiming to be the district's but signed with someone else's key."""
    impostor = Party(district.fingerprint)
    pkg = tmp_path / "p.age"
    _seal(impostor, [college.recipient], sources, pkg)
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(PackageRejected, match="signature does not verify"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    _nothing_left(tmp_path, tmp_path / "in", before)


def test_caller_checks_refuse_before_anything_is_written(tmp_path: Path, district: Party, college: Party,
                                                         sources) -> None:
    pkg = tmp_path / "p.age"
    _seal(district, [college.recipient], sources, pkg)
    before = {p.name for p in tmp_path.iterdir()}

    def check(manifest: Manifest) -> None:
        assert not (tmp_path / "in").exists()
        raise PackageRejected(f"The agreement {manifest.agreement_id} is not one we hold.")

    with pytest.raises(PackageRejected, match="agr-1 is not one we hold"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district),
                     check_manifest=check)
    _nothing_left(tmp_path, tmp_path / "in", before)


def test_not_an_age_file(tmp_path: Path, college: Party, district: Party) -> None:
    bogus = tmp_path / "p.age"
    bogus.write_bytes(b"student_code,birth_year\nA1,2008\n")
    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(PackageRejected, match="not a valid age package") as info:
        open_package(bogus, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert info.value.kind == _agefile.HEADER
    _nothing_left(tmp_path, tmp_path / "in", before)
    with pytest.raises(PackageRejected, match="is not a file"):
        open_package(tmp_path / "missing.age", college.identity, tmp_path / "in",
                     verify_sender=_trusting(district))


def test_age_file_without_a_tar_inside(tmp_path: Path, college: Party, district: Party) -> None:
    pkg = tmp_path / "p.age"
    pkg.write_bytes(pyrage.encrypt(b"just some text, not an archive" * 40, [college.identity.to_public()]))
    with pytest.raises(PackageRejected, match=r"valid archive|not a PathShare package"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert not (tmp_path / "in").exists()


def test_non_empty_out_dir_is_refused_and_untouched(tmp_path: Path, district: Party, college: Party,
                                                    sources) -> None:
    pkg = tmp_path / "p.age"
    _seal(district, [college.recipient], sources, pkg)
    out = tmp_path / "in"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not empty"):
        open_package(pkg, college.identity, out, verify_sender=_trusting(district))
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"
    with pytest.raises(OutputError, match="is a file"):
        open_package(pkg, college.identity, out / "keep.txt", verify_sender=_trusting(district))
    with pytest.raises(OutputError, match="does not exist"):
        open_package(pkg, college.identity, tmp_path / "no" / "such", verify_sender=_trusting(district))


# --------------------------------------------------------------------------- hand-built (hostile) packages


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tuple:
    return (name, data, kind, linkname)


def _raw_package(path: Path, members: list[tuple], recipient: Party) -> None:
    """Seal an arbitrary tar (built in memory: test inputs are tiny) as an age file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, kind, linkname in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = linkname
            if kind in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    path.write_bytes(pyrage.encrypt(buf.getvalue(), [recipient.identity.to_public()]))


def _signed_members(sender: Party, recipient: Party, files: dict[str, bytes],
                    listed: dict[str, bytes] | None = None, report: bytes = b'{"rows_in":1}') -> list[tuple]:
    """A well-formed, correctly signed package's members; ``listed`` is what the manifest claims."""
    listed = files if listed is None else listed
    manifest = Manifest(
        package_id="pkg-raw", agreement_id="agr-1", agreement_hash="ab" * 32,
        sender_fingerprint=sender.fingerprint, recipients=(recipient.recipient,),
        created="2026-09-01T12:30:00Z", audit_head=(1, "ee" * 32), report_size=len(report),
        report_sha256=sha256_hex(report),
        files=tuple(FileEntry(n, len(d), sha256_hex(d)) for n, d in listed.items()),
    )
    doc = manifest.to_json()
    return [
        _member("manifest.json", canonical_json(doc)),
        _member("manifest.sig", sign_document(sender.key, doc).encode()),
        _member("report.json", report),
        *[_member(f"data/{n}", d) for n, d in files.items()],
    ]


def _open_raw(tmp_path: Path, members: list[tuple], sender: Party, recipient: Party) -> None:
    pkg = tmp_path / "raw.age"
    _raw_package(pkg, members, recipient)
    before = {p.name for p in tmp_path.iterdir()}
    try:
        open_package(pkg, recipient.identity, tmp_path / "in", verify_sender=_trusting(sender))
    finally:
        _nothing_left(tmp_path, tmp_path / "in", before)


def test_hand_built_valid_package_opens(tmp_path: Path, district: Party, college: Party) -> None:
    """The helper itself makes acceptable packages, so the refusals below are about one defect each."""
    members = _signed_members(district, college, {"a.csv": b"x\n1\n"})
    pkg = tmp_path / "raw.age"
    _raw_package(pkg, members, college)
    opened = open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert opened.files[0].read_bytes() == b"x\n1\n"


@pytest.mark.parametrize(
    ("files", "listed", "reason"),
    [
        ({"a.csv": b"1", "b.csv": b"2"}, {"a.csv": b"1"}, "does not list"),
        ({"a.csv": b"1"}, {"a.csv": b"1", "b.csv": b"2"}, "missing from the package"),
        ({"a.csv": b"12"}, {"a.csv": b"1"}, "different size"),
        ({"a.csv": b"2"}, {"a.csv": b"1"}, "SHA-256"),
    ],
    ids=["extra-file", "missing-file", "different-size", "different-hash"],
)
def test_manifest_must_match_archive(tmp_path: Path, district: Party, college: Party, files, listed,
                                     reason) -> None:
    with pytest.raises(PackageRejected, match=reason):
        _open_raw(tmp_path, _signed_members(district, college, files, listed), district, college)


def test_report_must_match_manifest(tmp_path: Path, district: Party, college: Party) -> None:
    members = _signed_members(district, college, {"a.csv": b"1"})
    members[2] = _member("report.json", b'{"rows_in":999}')
    with pytest.raises(PackageRejected, match="report does not match"):
        _open_raw(tmp_path, members, district, college)


def test_report_must_be_a_json_object(tmp_path: Path, district: Party, college: Party) -> None:
    for report, reason in ((b"not json", "not valid JSON"), (b"[1, 2]", "not a JSON object")):
        members = _signed_members(district, college, {"a.csv": b"1"}, report=report)
        with pytest.raises(PackageRejected, match=reason):
            _open_raw(tmp_path, members, district, college)


def test_missing_signature_or_manifest(tmp_path: Path, district: Party, college: Party) -> None:
    for drop in (1, 0):
        members = _signed_members(district, college, {"a.csv": b"1"})
        del members[drop]
        with pytest.raises(PackageRejected, match="does not begin with its signed manifest"):
            _open_raw(tmp_path, members, district, college)


def test_tampered_manifest_fails_signature(tmp_path: Path, district: Party, college: Party) -> None:
    members = _signed_members(district, college, {"a.csv": b"1"})
    doc = json.loads(members[0][1])
    doc["agreement_id"] = "agr-OTHER"  # a valid signature, but over another agreement's manifest
    members[0] = _member("manifest.json", canonical_json(doc))
    with pytest.raises(PackageRejected, match="signature does not verify"):
        _open_raw(tmp_path, members, district, college)


def test_malformed_manifest(tmp_path: Path, district: Party, college: Party) -> None:
    members = _signed_members(district, college, {"a.csv": b"1"})
    members[0] = _member("manifest.json", b'{"pathshare_package": 1, "package_id": "x", "package_id": "y"}')
    with pytest.raises(PackageRejected, match="gives the key 'package_id' twice"):
        _open_raw(tmp_path, members, district, college)
    members[0] = _member("manifest.json", b'{"pathshare_package": 1}')
    with pytest.raises(PackageRejected, match="malformed"):
        _open_raw(tmp_path, members, district, college)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_member("data/../../evil.csv", b"x"), "climbs out"),
        (_member("../evil.csv", b"x"), "climbs out"),
        (_member("/etc/evil.csv", b"x"), "absolute path"),
        (_member("data/link.csv", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "a link"),
        (_member("data/hard.csv", kind=tarfile.LNKTYPE, linkname="report.json"), "a link"),
        (_member("data/tty", kind=tarfile.CHRTYPE), "a device"),
        (_member("data/disk", kind=tarfile.BLKTYPE), "a device"),
        (_member("data/fifo", kind=tarfile.FIFOTYPE), "a special file"),
        (_member("data/a.csv", b"1"), "appears twice"),
        (_member("data/A.CSV", b"1"), "does not list"),  # refused as unlisted before it could collide
        (_member("notes.txt", b"x"), "unexpected member"),
        (_member("other", kind=tarfile.DIRTYPE), "unexpected folder"),
        (_member("data/empty", kind=tarfile.DIRTYPE), "folder the manifest does not list"),
        (_member("data/a\x01.csv", b"x"), "control characters"),
    ],
    ids=["dotdot-inside", "dotdot", "absolute", "symlink", "hardlink", "chardev", "blockdev", "fifo",
         "duplicate", "duplicate-case", "unexpected-file", "unexpected-dir", "unlisted-dir", "control-char"],
)
def test_hostile_members(tmp_path: Path, district: Party, college: Party, bad: tuple, reason: str) -> None:
    members = _signed_members(district, college, {"a.csv": b"1"})
    members.insert(2, bad)
    with pytest.raises(PackageRejected, match=reason):
        _open_raw(tmp_path, members, district, college)
    assert not (tmp_path.parent / "evil.csv").exists()


def test_data_after_end_of_archive(tmp_path: Path, district: Party, college: Party) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, _, _ in _signed_members(district, college, {"a.csv": b"1"}):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pkg = tmp_path / "raw.age"
    pkg.write_bytes(pyrage.encrypt(buf.getvalue() + b"hidden rows", [college.identity.to_public()]))
    with pytest.raises(PackageRejected, match="after the end of its archive"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert not (tmp_path / "in").exists()


# ------------------------------------------------------------------------------------------ seal refusals


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".partial")]


def test_seal_refuses_bad_input(tmp_path: Path, district: Party, college: Party, sources) -> None:
    out = tmp_path / "p.age"
    with pytest.raises(InputError, match="does not exist"):
        _seal(district, [college.recipient], [("x.csv", tmp_path / "nope.csv")], out)
    with pytest.raises(InputError, match=r"'\.\.'"):
        _seal(district, [college.recipient], [("../x.csv", sources[0][1])], out)
    with pytest.raises(InputError, match="appears twice"):
        _seal(district, [college.recipient], [("a.csv", sources[0][1]), ("A.csv", sources[0][1])], out)
    with pytest.raises(InputError, match="at least one"):
        _seal(district, [college.recipient], [], out)
    with pytest.raises(AgreementError, match="not an age X25519 recipient"):
        _seal(district, ["age1notarecipient"], sources, out)
    with pytest.raises(AgreementError, match="names none"):
        _seal(district, [], sources, out)
    with pytest.raises(OutputError, match="does not exist"):
        _seal(district, [college.recipient], sources, tmp_path / "no" / "p.age")
    assert not out.exists() and not _partials(tmp_path)
    with pytest.raises(OutputError, match="one of the files being sealed"):
        _seal(district, [college.recipient], sources, sources[0][1])
    assert sources[0][1].read_bytes().startswith(b"student_code")


def test_seal_source_changing_leaves_nothing(tmp_path: Path, district: Party, college: Party, sources,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that is not the size it was when sealing started: refused, no package, no temp file."""
    real_fstat = os.fstat

    def growing(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid,
                               st.st_size + 10, st.st_atime, st.st_mtime, st.st_ctime))

    monkeypatch.setattr(sealing.os, "fstat", growing)
    out = tmp_path / "p.age"
    with pytest.raises(InputError, match="changed while it was being sealed"):
        _seal(district, [college.recipient], sources, out)
    assert not out.exists() and not _partials(tmp_path)


def test_seal_replaces_atomically(tmp_path: Path, district: Party, college: Party, sources) -> None:
    out = tmp_path / "p.age"
    out.write_bytes(b"old")
    with pytest.raises(OutputExists, match="already exists"):
        _seal(district, [college.recipient], sources, out)  # only when told to (force)
    assert out.read_bytes() == b"old" and not _partials(tmp_path)
    _seal(district, [college.recipient], sources, out, force=True)
    assert out.read_bytes().startswith(b"age-encryption.org/v1") and not _partials(tmp_path)


def test_seal_with_known_hash_reads_each_file_once(tmp_path: Path, district: Party, college: Party,
                                                  sources, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file given with the SHA-256 computed as it was written (deid.write_release) is not read in a
    separate hashing pass: one read streams and hashes it, and the package opens with that hash."""
    import hashlib

    reads: list[str] = []
    real_open = open

    def counting(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if "r" in mode and "b" in mode and Path(file).parent == sources[0][1].parent:
            reads.append(Path(file).name)
        return real_open(file, mode, *args, **kw)

    monkeypatch.setattr("builtins.open", counting)
    given = [(name, path, rows, hashlib.sha256(path.read_bytes()).hexdigest())
             for name, path, rows in sources]
    reads.clear()
    manifest = _seal(district, [college.recipient], given, tmp_path / "p.age")
    assert sorted(reads) == sorted(p.name for _, p, _ in sources)  # once each, not twice
    reads.clear()
    _seal(district, [college.recipient], sources, tmp_path / "q.age")
    assert sorted(reads) == sorted(2 * [p.name for _, p, _ in sources])  # unknown hash: hashed first
    monkeypatch.undo()
    opened = open_package(tmp_path / "p.age", college.identity, tmp_path / "out",
                          verify_sender=_trusting(district))
    assert [e.sha256 for e in manifest.files] == [g[3] for g in given]
    assert [f.read_bytes() for f in opened.files] == [p.read_bytes() for _, p, _ in sources]


def test_seal_with_a_stale_known_hash_leaves_nothing(tmp_path: Path, district: Party, college: Party,
                                                    sources) -> None:
    """The file was replaced by one of the same size after it was written and hashed: the hash taken
    on the one read does not match the one given, so the package (whose manifest would lie) is
    discarded."""
    name, path, rows = sources[1]
    stale = hashlib_hex(path.read_bytes())
    path.write_bytes(os.urandom(path.stat().st_size))  # same size, other bytes
    out = tmp_path / "p.age"
    with pytest.raises(InputError, match="is not the file that was written"):
        _seal(district, [college.recipient], [(*sources[0], None), (name, path, rows, stale)], out)
    assert not out.exists() and not _partials(tmp_path)


def hashlib_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ receipts and certificates


def test_receipt(tmp_path: Path, district: Party, college: Party, sources) -> None:
    manifest = _seal(district, [college.recipient], sources, tmp_path / "p.age")
    receipt = make_receipt(manifest, college.key, college.fingerprint, "opened", now=NOW)
    assert receipt["manifest_hash"] == manifest.hash and receipt["time"] == "2026-09-01T12:30:00Z"
    _receipts.write_json_document(tmp_path / "r.json", receipt)
    loaded = _receipts.load_json_document(tmp_path / "r.json", "receipt")
    assert verify_receipt(loaded, college.public) == Receipt(
        manifest.package_id, manifest.hash, "agr-1", college.fingerprint, "2026-09-01T12:30:00Z", "opened")
    with pytest.raises(PackageRejected, match="does not verify"):
        verify_receipt(loaded, district.public)
    forged = dict(loaded, result="rejected")
    with pytest.raises(PackageRejected, match="does not verify"):
        verify_receipt(forged, college.public)
    with pytest.raises(PackageRejected, match="malformed"):
        verify_receipt({"package_id": "x"}, college.public)
    with pytest.raises(ValueError, match="result"):
        make_receipt(manifest, college.key, college.fingerprint, "maybe")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match=r"The receipt file .*bad\.json is not valid JSON \(line 1\)"):
        _receipts.load_json_document(tmp_path / "bad.json", "receipt")


def test_destruction_certificate(district: Party, college: Party) -> None:
    cert = make_destruction_certificate(
        package_id="pkg-1", manifest_hash="ab" * 32, agreement_id="agr-1", recipient_key=college.key,
        recipient_fingerprint=college.fingerprint, method="NIST 800-88 clear",
        statement="All copies were deleted.", destroyed_at=NOW,
    )
    assert verify_destruction_certificate(cert, college.public) == DestructionCertificate(
        "pkg-1", "ab" * 32, "agr-1", college.fingerprint, "2026-09-01T12:30:00Z", "NIST 800-88 clear",
        "All copies were deleted.")
    with pytest.raises(PackageRejected, match="does not verify"):
        verify_destruction_certificate(dict(cert, package_id="pkg-2"), college.public)
    with pytest.raises(PackageRejected, match="does not verify"):
        verify_destruction_certificate(cert, district.public)
    with pytest.raises(ValueError, match="method"):
        make_destruction_certificate(package_id="p", manifest_hash="h", agreement_id="a",
                                     recipient_key=college.key, recipient_fingerprint="f", method=" ",
                                     statement="s")


# ------------------------------------------------------------------------------ archive framing details


def test_long_unicode_empty_and_block_sized_files(tmp_path: Path, district: Party, college: Party) -> None:
    """PAX headers (long and non-ASCII names), empty files and files of exactly one tar block."""
    src = tmp_path / "src"
    src.mkdir()
    files = {"x" * 150 + ".csv": b"a,b\n1,2\n", "élèves.csv": "nom\nÉlodie\n".encode(), "empty.csv": b"",
             "block.bin": os.urandom(512), "deep/er/file.csv": b"z\n"}
    specs = []
    for i, (name, data) in enumerate(files.items()):
        (src / f"{i}").write_bytes(data)
        specs.append((name, src / f"{i}"))
    _seal(district, [college.recipient], specs, tmp_path / "p.age")
    opened = open_package(tmp_path / "p.age", college.identity, tmp_path / "in",
                          verify_sender=_trusting(district))
    assert {str(p.relative_to(tmp_path / "in" / "data")): p.read_bytes() for p in opened.files} == files


def test_gnu_format_archive_opens(tmp_path: Path, district: Party, college: Party) -> None:
    """Archives from other tar writers (GNU long-name headers) are parsed by tarfile, not by us."""
    long = "n" * 120 + ".csv"
    members = _signed_members(district, college, {long: b"1\n"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data, _, _ in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pkg = tmp_path / "gnu.age"
    pkg.write_bytes(pyrage.encrypt(buf.getvalue(), [college.identity.to_public()]))
    opened = open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert opened.files[0].name == long and opened.files[0].read_bytes() == b"1\n"


def test_sparse_member_is_refused(tmp_path: Path, district: Party, college: Party) -> None:
    members = _signed_members(district, college, {"a.csv": b"1"})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, _, _ in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            if name == "data/a.csv":
                info.pax_headers = {"GNU.sparse.size": "4096", "GNU.sparse.map": "0,1"}
            tar.addfile(info, io.BytesIO(data))
    pkg = tmp_path / "sparse.age"
    pkg.write_bytes(pyrage.encrypt(buf.getvalue(), [college.identity.to_public()]))
    with pytest.raises(PackageRejected, match="sparse"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert not (tmp_path / "in").exists()


def test_archive_without_end_marker_is_refused(tmp_path: Path, district: Party, college: Party) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, _, _ in _signed_members(district, college, {"a.csv": b"1"}):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        end = buf.tell()
    pkg = tmp_path / "cut.age"
    pkg.write_bytes(pyrage.encrypt(buf.getvalue()[:end], [college.identity.to_public()]))
    with pytest.raises(PackageRejected, match="ends too early"):
        open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district))
    assert not (tmp_path / "in").exists()


# -------------------------------------------------------------------------------------- progress, cancel


def test_progress_and_cancel(tmp_path: Path, district: Party, college: Party, sources) -> None:
    from deid.errors import Cancelled

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))  # progress steps follow the 1 MiB reads
    sources = [*sources, ("big.bin", big, None)]
    seen: list[float] = []
    pkg = tmp_path / "p.age"
    _seal(district, [college.recipient], sources, pkg, progress=lambda f, m: seen.append(f))
    assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)

    opened: list[float] = []
    open_package(pkg, college.identity, tmp_path / "in", verify_sender=_trusting(district),
                 progress=lambda f, m: opened.append(f))
    # Opening reads up to 1 MiB at a time too: a step per read at least.
    assert len(opened) >= 3 and opened == sorted(opened) and opened[-1] > 0.95

    def cancel_halfway(fraction: float, message: str) -> None:
        if fraction > 0.5:
            raise Cancelled("Cancelled; nothing was written.")

    before = {p.name for p in tmp_path.iterdir()}
    with pytest.raises(Cancelled):
        _seal(district, [college.recipient], sources, tmp_path / "q.age", progress=cancel_halfway)
    with pytest.raises(Cancelled):
        open_package(pkg, college.identity, tmp_path / "in2", verify_sender=_trusting(district),
                     progress=cancel_halfway)
    assert {p.name for p in tmp_path.iterdir()} == before


def test_memory_stays_bounded(tmp_path: Path, district: Party, college: Party) -> None:
    """Neither sealing nor opening holds the payload in Python memory (the benchmark measures RSS)."""
    import tracemalloc

    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(big, "wb") as fh:
        for i in range(40):
            fh.write(i.to_bytes(4, "little") + block[4:])
    tracemalloc.start()
    try:
        _seal(district, [college.recipient], [("big.bin", big)], tmp_path / "p.age")
        sealing_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        open_package(tmp_path / "p.age", college.identity, tmp_path / "in", verify_sender=_trusting(district))
        opening_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # What is in flight between the threads, nothing that grows with the 40 MiB payload. Sealing: four
    # 1 MiB tar pieces queued, one being encrypted. Opening: four decrypted pieces queued, one being
    # hashed, four queued for the file writer and one being written: 11 MiB at most when the disk lags.
    assert sealing_peak < 12 << 20 and opening_peak < 16 << 20, (sealing_peak, opening_peak)
    assert (tmp_path / "in" / "data" / "big.bin").read_bytes() == big.read_bytes()
