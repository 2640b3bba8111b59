"""Attacks on the package unpacker by a hostile partner (issue 20 items 7, 8, 10, 15): each test
performs the attack and fails if it works again. See docs/security.md."""

from __future__ import annotations

import io
import tarfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from partners_setup import Org
from unpack_fuzz import OUTCOMES, Target, mutate, time_limit

from agreements import _agefile, open_received, seal_for_agreement
from agreements.errors import PackageRejected

BLOCK = tarfile.BLOCKSIZE


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    src = tmp_path / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    return src


def _plaintext(org: Org, package: Path) -> bytes:
    from agreements import age_identity

    plain = io.BytesIO()
    _agefile.decrypt_to(package, [age_identity(org.vault)], plain)
    return plain.getvalue()


def _reseal(plaintext: bytes, recipient: str, out: Path) -> Path:
    """What a hostile sender does: any plaintext, correctly encrypted to the recipient (2-3 KB here)."""
    with open(out, "wb") as fh:
        _agefile.encrypt_chunks(iter([plaintext]), fh, [recipient])
    return out


def _fix_checksum(tar: bytearray, at: int) -> None:
    block = tar[at : at + BLOCK]
    block[148:156] = b" " * 8
    tar[at + 148 : at + 156] = b"%06o\0 " % sum(block)


def _base256(value: int) -> bytes:
    return bytes([0xFF if value < 0 else 0x80]) + (value % (1 << 88)).to_bytes(11, "big")


def _refused_and_audited(org: Org, package: Path, out: Path, match: str, seconds: float = 20) -> None:
    before = len(org.vault.audit)
    started = time.perf_counter()
    with time_limit(seconds), pytest.raises(PackageRejected, match=match):
        open_received(org.vault, package, out)
    assert time.perf_counter() - started < seconds
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".pathshare-open-")]
    assert len(org.vault.audit) == before + 1 and org.last() == "package.rejected"


# ------------------------------------------------------------------------------------- item 7: sizes


@pytest.mark.parametrize(
    ("kind", "size"),
    [(b"x", -1024), (b"x", -(1 << 40)), (b"L", -513), (b"0", -1), (b"0", 1 << 70)],
    ids=["pax-minus-1024", "pax-minus-2^40", "gnu-longname-minus-513", "file-minus-1", "file-2^70"],
)
def test_attack_negative_tar_size_hangs_open(sides, tmp_path: Path, extract: Path, kind: bytes,
                                            size: int) -> None:
    """A header whose base-256 size is negative (or absurd) made the unpacker spin forever at 100% CPU,
    leaving a staging folder and no audit entry. Now: one sentence, audited, nothing left, at once."""
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    tar = bytearray(_plaintext(c, sealed.path))
    tar[124:136] = _base256(size)  # the first member's header
    tar[156:157] = kind
    _fix_checksum(tar, 0)
    body = bytes(tar).rstrip(b"\0")  # without tar's record padding: a package of a few KB
    body += b"\0" * (-len(body) % BLOCK + 2 * BLOCK)
    hostile = _reseal(body, c.card.age_recipient, tmp_path / "hostile.age")
    assert hostile.stat().st_size < 8192
    _refused_and_audited(c, hostile, tmp_path / "in", "impossible size|not contain a valid archive|malformed")


def test_attack_pax_header_of_digits_hangs_open(sides, tmp_path: Path, extract: Path) -> None:
    """tarfile's PAX parser searches a header for `\\d+ hdrcharset=` in quadratic time over a run of
    digits (64 KiB took ~5 s, 1 MiB ~20 min): extension headers are capped far below that."""
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    digits = b"1" * ((1 << 20) - 2 * BLOCK)  # under the old 1 MiB cap on extension headers
    header = bytearray(tarfile.TarInfo("././@PaxHeader").tobuf(format=tarfile.USTAR_FORMAT))
    header[124:136] = b"%011o\0" % len(digits)
    header[156:157] = b"x"
    _fix_checksum(header, 0)
    tar = bytes(header) + digits + _plaintext(c, sealed.path)
    hostile = _reseal(tar, c.card.age_recipient, tmp_path / "hostile.age")
    _refused_and_audited(c, hostile, tmp_path / "in", "malformed extended headers", seconds=10)


@pytest.fixture(scope="module")
def target() -> Target:
    return Target()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_attack_fuzzed_package_never_hangs_crashes_or_is_accepted(
    target: Target, data: st.DataObject
) -> None:
    """Structure-aware mutations of a genuine signed package's tar (see tests/unpack_fuzz.py), each
    encrypted to the recipient as a hostile sender could: refused with PathShare's own error and
    nothing left behind, or — when only tar metadata PathShare ignores changed — opened with exactly
    the signed content. Never a hang (5 s per case), a crash or a forged content."""

    def pick(lo: int, hi: int) -> int:
        return data.draw(st.integers(min_value=lo, max_value=hi))

    mutant = mutate(target, pick)
    outcome, detail = target.open(mutant, timeout=5.0)
    assert outcome in OUTCOMES
    assert outcome in ("refused", "same"), f"{outcome}: {detail}"


# ------------------------------------------------------------------------- item 10: JSON from outside

DEEP = b"[" * 200_000 + b"]" * 200_000  # json's C parser recursed once per level: RecursionError
SHALLOW_BUT_OVER = b'{"a":' * 65 + b"1" + b"}" * 65  # 65 levels: parses in Python, refused by the bound


def _tar(members: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in members:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


@pytest.mark.parametrize("manifest", [DEEP, SHALLOW_BUT_OVER], ids=["200000-deep", "65-deep"])
def test_attack_deeply_nested_manifest_gives_recursion_error(sides, tmp_path: Path, extract: Path,
                                                             manifest: bytes) -> None:
    """A manifest nested 200,000 levels deep gave "unexpected RecursionError" and the refusal was not
    audited: now one sentence, audited, nothing left behind."""
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    with tarfile.open(fileobj=io.BytesIO(_plaintext(c, sealed.path)), mode="r:") as tar:
        members = [(m.name, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()
                   if m.isfile()]
    members = [(n, manifest if n == "manifest.json" else body) for n, body in members]
    hostile = _reseal(_tar(members), c.card.age_recipient, tmp_path / "deep.age")
    _refused_and_audited(c, hostile, tmp_path / "in", "manifest is nested too deeply")


def _readers(org: Org, tmp_path: Path):
    """Every place PathShare reads JSON from outside: (name, reader(path), error class, audit action)."""
    from agreements import (
        import_agreement,
        import_card,
        import_certificate_file,
        import_linkage_key,
        import_profile,
        import_receipt_file,
    )
    from agreements._audit import read_bundle
    from agreements.errors import AgreementError, AuditError, PartnerError
    from deid import load_elements, load_policy
    from deid.errors import InputError, PolicyError

    v = org.vault
    return [
        ("card", lambda p: import_card(v, p), PartnerError, "partner.import.refused"),
        ("agreement", lambda p: import_agreement(v, p), AgreementError, "agreement.import.refused"),
        ("receipt", lambda p: import_receipt_file(v, p), InputError, "package.receipt_rejected"),
        ("certificate", lambda p: import_certificate_file(v, p), InputError, "package.certificate_rejected"),
        ("audit bundle", read_bundle, AuditError, None),
        ("linkage key", lambda p: import_linkage_key(v, p), PackageRejected, None),
        ("mapping profile", lambda p: import_profile(v, p), InputError, None),
        ("policy", load_policy, PolicyError, None),
        ("element list", load_elements, InputError, None),
    ]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (DEEP, "nested too deeply"),
        (SHALLOW_BUT_OVER, "nested too deeply"),
        (b'{"a": ' + b'[{"b": ' * 32 + b"1" + b"}]" * 32 + b"}", "nested too deeply"),
        (b'{"pathshare_card": 1, "pathshare_card": 1}', "gives the key 'pathshare_card' twice"),
        (b'{"a": NaN}', "not valid JSON"),
    ],
    ids=["200000-deep", "65-deep", "65-deep-mixed", "duplicate-key", "nan"],
)
def test_attack_deeply_nested_json_everywhere(sides, tmp_path: Path, document: bytes, reason: str) -> None:
    """Cards, agreements, receipts, certificates, bundles, linkage keys, profiles, policies and element
    lists all go through one reader (deid.read_json_file): the same bounds, the same sentences, each in
    its own error class, and the partner-facing ones audited."""
    _, c, _ = sides
    path = tmp_path / "hostile.json"
    path.write_bytes(document)
    for name, read, error, action in _readers(c, tmp_path):
        before = len(c.vault.audit)
        with pytest.raises(error, match=reason) as caught:
            read(path)
        assert "hostile" in str(caught.value), name  # names the file
        if action is not None:
            assert len(c.vault.audit) == before + 1 and c.last() == action, name


def test_oversized_json_is_refused_before_it_is_read(sides, tmp_path: Path) -> None:
    _, c, _ = sides
    path = tmp_path / "hostile.json"
    with open(path, "wb") as fh:
        fh.truncate((1 << 30) + 1)  # sparse: 1 GiB + 1 byte of nothing, above every reader's bound
    for name, read, error, _ in _readers(c, tmp_path):
        with pytest.raises(error, match="too large to be"):
            read(path)
        assert name


# ------------------------------------------------------------------ item 8: work before trust, staging


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes of data files the unpacker hands to the disk (its only writer of package data)."""
    from agreements import _open_package

    counts: list[int] = []
    real = _open_package._FileWriter.write

    def counting(self, data) -> None:  # type: ignore[no-untyped-def]
        counts.append(len(data))
        real(self, data)

    monkeypatch.setattr(_open_package._FileWriter, "write", counting)
    return counts


def _big(tmp_path: Path, mb: int = 6) -> Path:
    import os

    src = tmp_path / "big.csv"
    src.write_bytes(os.urandom(mb << 20))
    return src


def test_attack_unknown_sender_makes_recipient_write_before_trust(sides, tmp_path: Path,
                                                                   written: list[int]) -> None:
    """An organization the recipient never verified sends a 6 MB package: before, every byte was
    decrypted to disk before the signature was looked at. Now the signed manifest comes first and is
    checked first: refused with nothing written."""
    from agreements import require_in_force, seal, signing_key

    d, c, agreement_id = sides
    stranger = Org(tmp_path / "stranger.vault", "Harbor Logistics", "employer")
    try:
        agreement = require_in_force(d.vault, agreement_id)
        hostile = tmp_path / "stranger.age"
        seal([("big.csv", _big(tmp_path))], {}, agreement_id=agreement.id, agreement_hash=agreement.sha256,
             sender_key=signing_key(stranger.vault), sender_fingerprint=stranger.fp,
             recipients=[c.card.age_recipient], audit_head=(0, "0" * 64), out=hostile)
    finally:
        stranger.vault.close()
    _refused_and_audited(c, hostile, tmp_path / "in", "does not know")
    assert sum(written) == 0


def test_attack_old_order_package_writes_data_before_the_signature(sides, tmp_path: Path, extract: Path,
                                                                   written: list[int]) -> None:
    """A package whose data comes before its manifest (how PathShare used to seal) cannot be checked
    before it is unpacked: refused as a whole, nothing written, even when signed by a trusted partner.
    (docs/package-format.md: no packages of the old order are in use.)"""
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    with tarfile.open(fileobj=io.BytesIO(_plaintext(c, sealed.path)), mode="r:") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
    assert [n for n, _ in members[:2]] == ["manifest.json", "manifest.sig"]  # how PathShare seals now
    old_order = members[2:] + members[:2]
    hostile = _reseal(_tar(old_order), c.card.age_recipient, tmp_path / "old.age")
    _refused_and_audited(c, hostile, tmp_path / "in", "does not begin with its signed manifest")
    assert sum(written) == 0


def test_attack_data_larger_than_the_signed_manifest_says(sides, tmp_path: Path, extract: Path,
                                                          written: list[int]) -> None:
    """After the manifest verified, a member larger than the size it lists is refused at its header:
    what is written is bounded by what the sender signed."""
    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    with tarfile.open(fileobj=io.BytesIO(_plaintext(c, sealed.path)), mode="r:") as tar:
        members = [(m.name, tar.extractfile(m).read()) for m in tar.getmembers() if m.isfile()]
    members = [(n, body + b"9" * (5 << 20) if n.startswith("data/") else body) for n, body in members]
    hostile = _reseal(_tar(members), c.card.age_recipient, tmp_path / "fat.age")
    _refused_and_audited(c, hostile, tmp_path / "in", "different size than the manifest says")
    assert sum(written) == 0


_KILLED_OPEN = """
import os, signal, sys
from agreements import Vault
from agreements._workflows import open_received

vault = Vault.open(sys.argv[1], sys.argv[2])

def progress(fraction, message):
    if fraction > 0.6:  # well into the data: decrypted files sit in the staging folder
        os.kill(os.getpid(), signal.SIGKILL)

open_received(vault, sys.argv[3], sys.argv[4], progress=progress)
"""


def test_attack_killed_open_leaves_decrypted_data_in_staging(sides, tmp_path: Path, python_exe: str) -> None:
    """`open` killed halfway left decrypted student data in a `.pathshare-open-*` folder that nothing
    recorded or removed. Now the folder is recorded before anything is decrypted into it, and the next
    start removes it and audits that (package.staging_removed)."""
    import subprocess

    from partners_setup import PASS

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("big.csv", _big(tmp_path, 12))], {},
                                tmp_path / "p.age")
    vault_path = c.vault.path
    c.vault.close()
    inbox = tmp_path / "inbox"
    args = [python_exe, "-c", _KILLED_OPEN, str(vault_path), PASS, str(sealed.path), str(inbox)]
    done = subprocess.run(args, capture_output=True, timeout=120)
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".pathshare-open-")]
    assert len(left) == 1 and list(left[0].rglob("big.csv")), "the kill should leave decrypted data behind"

    again = Org(vault_path, new=False)  # the next start
    try:
        assert not left[0].exists()
        assert again.last() == "package.staging_removed"
        assert again.vault.audit.entries()[-1].details["folder"] == str(left[0].resolve())
        assert again.vault.staging_notes and "interrupted" in again.vault.staging_notes[0]
        assert not inbox.exists()
    finally:
        again.vault.close()
    reopened = Org(vault_path, new=False)  # swept once: nothing more to say
    try:
        assert reopened.vault.staging_notes == []
    finally:
        reopened.vault.close()


# ------------------------------------------------------------- item 15: replay list, rejected receipts


def test_attack_another_senders_package_id_collides_with_a_received_package(
    tmp_path: Path, extract: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vault recorded received packages by id alone: a second provider that learned a package id
    (say, from a shared report) could seal its own package with that id, and the recipient either
    refused it (once as a "replay", later asking for a re-seal) or would have recorded one over the
    other. Now packages are keyed by (sender, id): the true replay is still refused, the other sender's
    package opens and is recorded beside the first, and each is destroyed on its own."""
    import uuid

    from partners_setup import execute_agreement

    from agreements import RECEIVED, _seal, destroy, get_package

    d = Org(tmp_path / "d.vault", "Riverbend Unified", "district")
    e = Org(tmp_path / "e.vault", "Hillcrest Charter", "district")
    c = Org(tmp_path / "c.vault", "Lakeside College", "college")
    agreement_id = execute_agreement([d, e, c], [["provider"], ["provider"], ["recipient"]], tmp_path)
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "d.age")
    pid = sealed.manifest.package_id
    open_received(c.vault, sealed.path, tmp_path / "from-d")
    with pytest.raises(PackageRejected, match=r"a second copy is refused \(replay\)"):
        open_received(c.vault, sealed.path, tmp_path / "again")

    # The other provider reuses the id (its sealing draws this UUID).
    monkeypatch.setattr(_seal.uuid, "uuid4", lambda: uuid.UUID(pid))
    squat = seal_for_agreement(e.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "e.age")
    monkeypatch.undo()
    assert squat.manifest.package_id == pid
    opened = open_received(c.vault, squat.path, tmp_path / "from-e")
    assert opened.manifest.sender_fingerprint == e.fp
    mine, theirs = get_package(c.vault, pid, RECEIVED, d.fp), get_package(c.vault, pid, RECEIVED, e.fp)
    assert (mine.sender, theirs.sender) == (d.fp, e.fp)
    assert mine.location.endswith("from-d") and theirs.location.endswith("from-e")
    with pytest.raises(PackageRejected, match="say which sender's is meant"):
        get_package(c.vault, pid, RECEIVED)
    with pytest.raises(PackageRejected, match="say which sender's is meant"):
        destroy(c.vault, pid, tmp_path / "cert.json")
    done = destroy(c.vault, pid, tmp_path / "cert-e.json", sender=e.fp)
    assert done.certificate["package_id"] == pid
    assert not (tmp_path / "from-e" / "data" / "students.csv").exists()
    assert (tmp_path / "from-d" / "data" / "students.csv").exists()  # the other package is untouched
    assert get_package(c.vault, pid, RECEIVED, e.fp).destroyed_at is not None
    assert get_package(c.vault, pid, RECEIVED, d.fp).destroyed_at is None
    destroy(c.vault, pid, tmp_path / "cert-d.json", sender=d.fp)
    assert get_package(c.vault, pid, RECEIVED, d.fp).destroyed_at is not None
    from agreements._integrity import security_findings

    assert security_findings(c.vault) == []  # both openings in the log match a stored record
    for org in (d, e, c):
        org.vault.close()


_PRE_22 = """
CREATE TABLE packages_old (
    package_id TEXT NOT NULL, direction TEXT NOT NULL, agreement_id TEXT NOT NULL,
    agreement_hash TEXT NOT NULL, manifest_hash TEXT NOT NULL, sender TEXT NOT NULL,
    recipients TEXT NOT NULL, created TEXT NOT NULL, recorded TEXT NOT NULL, files INTEGER NOT NULL,
    bytes INTEGER NOT NULL, location TEXT NOT NULL, manifest TEXT NOT NULL, destroyed_at TEXT,
    voided_at TEXT, void_reason TEXT, reopened_at TEXT, reopen_reason TEXT,
    PRIMARY KEY (package_id, direction));
INSERT INTO packages_old SELECT package_id, direction, agreement_id, agreement_hash, manifest_hash, sender,
    recipients, created, recorded, files, bytes, location, manifest, destroyed_at, voided_at, void_reason,
    reopened_at, reopen_reason FROM packages;
DROP TABLE packages;
ALTER TABLE packages_old RENAME TO packages;
CREATE TABLE certs_old (
    package_id TEXT NOT NULL, recipient TEXT NOT NULL, destroyed_at TEXT NOT NULL, method TEXT NOT NULL,
    certificate TEXT NOT NULL, recorded TEXT NOT NULL, PRIMARY KEY (package_id, recipient));
INSERT INTO certs_old SELECT package_id, recipient, destroyed_at, method, certificate, recorded
    FROM destruction_certificates;
DROP TABLE destruction_certificates;
ALTER TABLE certs_old RENAME TO destruction_certificates;
DELETE FROM schema_steps WHERE version = 22
"""


def test_vaults_from_before_sender_keyed_packages_stay_readable(sides, tmp_path: Path, extract: Path) -> None:
    """Migration 22 rebuilds the packages and certificates tables keyed by sender: vaults in the
    previous shape (tables as migrations 20-21 made them) keep every package, the certificate that
    closes a sent one and the destruction of a received one."""
    from agreements import RECEIVED, SENT, destroy, get_package, import_certificate_file

    d, c, agreement_id = sides  # the suite's two organizations (tests/conftest.py)
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    pid = sealed.manifest.package_id
    open_received(c.vault, sealed.path, tmp_path / "inbox")
    destroy(c.vault, pid, tmp_path / "cert.json")
    import_certificate_file(d.vault, tmp_path / "cert.json")
    for org in (d, c):  # back to the shape a vault had before migration 22
        with org.vault.transaction() as conn:
            for statement in _PRE_22.strip().split(";\n"):
                conn.execute(statement)
        org.vault.close()

    d, c = Org(d.vault.path, new=False), Org(c.vault.path, new=False)
    for org in (d, c):
        assert org.last() == "vault.upgrade" and org.vault.audit.entries()[-1].details["steps"] == [22]
        pk = [r[1] for r in org.vault.db.execute("PRAGMA table_info(packages)") if r[5]]
        assert sorted(pk) == ["direction", "package_id", "sender"]
    sent, got = get_package(d.vault, pid, SENT), get_package(c.vault, pid, RECEIVED)
    assert sent.destroyed_by == (c.fp,) and sent.closed  # the recipient's certificate still closes it
    assert got.sender == d.fp and got.destroyed_at is not None
    for org in (d, c):  # each certificate is filed under the package's sender
        keys = org.vault.db.execute("SELECT package_id, sender, recipient FROM destruction_certificates")
        assert keys.fetchall() == [(pid, d.fp, c.fp)]
    for org in (d, c):
        org.vault.close()


def test_rejected_receipt_closes_only_its_signers_obligation_for_that_manifest(sides, tmp_path: Path,
                                                                             extract: Path) -> None:
    """Decision (docs/security.md): a signed `rejected` receipt closes the recipient's destruction
    obligation, on its word, exactly as a destruction certificate does — both are the recipient's signed
    statements and PathShare cannot see another machine's disk. It closes nothing else: not another
    recipient's, not another version of the package, not after an `opened` receipt, not unsigned."""
    import dataclasses

    from agreements import SENT, get_package, import_receipt, make_receipt, signing_key

    d, c, agreement_id = sides
    sealed = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "p.age")
    pid = sealed.manifest.package_id
    other_version = dataclasses.replace(sealed.manifest, created="2020-01-01T00:00:00Z")
    forged = make_receipt(other_version, signing_key(c.vault), c.fp, "rejected", reason="Damaged.")
    with pytest.raises(PackageRejected, match="different version"):
        import_receipt(d.vault, forged)
    by_sender = make_receipt(sealed.manifest, signing_key(d.vault), c.fp, "rejected", reason="Refused.")
    with pytest.raises(PackageRejected, match="signature does not verify"):
        import_receipt(d.vault, by_sender)  # the sender cannot close its own obligation in c's name
    assert not get_package(d.vault, pid, SENT).closed

    genuine = make_receipt(sealed.manifest, signing_key(c.vault), c.fp, "rejected", reason="Refused.")
    import_receipt(d.vault, genuine)
    record = get_package(d.vault, pid, SENT)
    assert record.closed and record.refused_by == (c.fp,) and record.destroyed_by == ()
    assert d.last() == "package.refused_by_recipient"

    opened = seal_for_agreement(d.vault, agreement_id, [("students.csv", extract)], {}, tmp_path / "q.age")
    import_receipt(d.vault, make_receipt(opened.manifest, signing_key(c.vault), c.fp, "opened"))
    late = make_receipt(opened.manifest, signing_key(c.vault), c.fp, "rejected", reason="Refused.")
    with pytest.raises(PackageRejected, match="cannot replace it"):
        import_receipt(d.vault, late)
    assert not get_package(d.vault, opened.manifest.package_id, SENT).closed


def test_attack_head_file_nested_deep_crashes_verify(tmp_path: Path, run_cli, monkeypatch) -> None:
    """The signed head file beside the vault is JSON an insider can replace: nested 200,000 deep it must
    read as not signed by this organization (one sentence, exit 1), not as a RecursionError."""
    from partners_setup import PASS

    from agreements._audit import head_file

    path = tmp_path / "d.vault"
    org = Org(path, "Lakeview USD", "district")
    org.vault.audit.append("thing.done")
    org.vault.close()
    head_file(path).write_bytes(DEEP)
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, _, err = run_cli("--vault", path, "audit", "verify")
    assert code == 1 and "not one this organization signed" in err and "Traceback" not in err


def test_cli_says_what_the_start_removed(sides, tmp_path: Path, run_cli, monkeypatch) -> None:
    """The sweep's sentence reaches the user of the command line at the next start, not only the log."""
    from partners_setup import PASS

    from agreements._staging import record_staging

    _, c, _ = sides
    left = tmp_path / ".pathshare-open-x"
    (left / "package" / "data").mkdir(parents=True)
    (left / "package" / "data" / "s.csv").write_text("A1,2008\n", encoding="utf-8")
    record_staging(c.vault, left, tmp_path / "inbox", tmp_path / "p.age")
    c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, _, err = run_cli("--vault", c.vault.path, "packages")
    assert code == 0 and f"pathshare: note: Removed {left.resolve()}" in err and not left.exists()
