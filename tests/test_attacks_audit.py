"""Attacks on the audit log's evidence by an insider (issue 20 items 11 and 12, issue 14 item 4).

Each test performs the attack on real vaults and fails if it works again:
- a sender rewrites its log (dropping a disclosure) and launders it with one ordinary package;
- the head sent to partners must cover the record of the disclosure it travels with;
- an old page spliced into the vault restores a revoked partner (no passphrase needed);
- entries lost after they were appended (the head moved backwards) are reported by `audit verify`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlcipher3
from partners_setup import PASS, Org

from agreements import open_received, seal_for_agreement
from agreements._audit import GENESIS, entry_hash, head_file, partner_heads, partner_log_problems
from agreements._merkle import EMPTY_ROOT, Tree, consistency_proof, leaf_hash, root_of, verify_consistency

# Trillian's RFC 6962 test vectors (github.com/google/trillian, merkle/testonly/constants.go and
# merkle/logverifier/log_verifier_test.go; Copyright Google LLC, Apache License 2.0): eight leaf
# inputs, the roots of the trees of sizes 1..8, and three consistency proofs.
_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
_PROOFS = {
    (1, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (6, 8): [
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 5): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def test_merkle_tree_matches_the_published_rfc6962_vectors() -> None:
    leaves = [leaf_hash(bytes.fromhex(x)) for x in _LEAVES]
    assert root_of([]) == EMPTY_ROOT == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    for size, root in enumerate(_ROOTS, start=1):
        assert root_of(leaves[:size]).hex() == root
    for (m, n), proof in _PROOFS.items():
        assert [h.hex() for h in consistency_proof(leaves[:n], m)] == proof
        path = [bytes.fromhex(h) for h in proof]
        root_m, root_n = bytes.fromhex(_ROOTS[m - 1]), bytes.fromhex(_ROOTS[n - 1])
        assert verify_consistency(m, n, root_m, root_n, path)
        # Every corruption of a good proof fails (as Trillian's verifier tests probe).
        assert not verify_consistency(m, n, root_n, root_m, path)
        assert not verify_consistency(m + 1, n, root_m, root_n, path)
        assert not verify_consistency(m, n * 2, root_m, root_n, path)
        assert not verify_consistency(m, n // 2, root_m, root_n, path)
        assert not verify_consistency(m, n, root_m, root_n, path[:-1])
        assert not verify_consistency(m, n, root_m, root_n, [*path, root_n])
        assert not verify_consistency(m, n, root_m, root_n, [root_m, *path])
        for i in range(len(path)):
            bad = list(path)
            bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
            assert not verify_consistency(m, n, root_m, root_n, bad)


def test_merkle_consistency_proofs_between_every_pair_of_sizes() -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(70)]
    roots = [root_of(leaves[:n]) for n in range(71)]
    for n in range(71):
        for m in range(n + 1):
            proof = consistency_proof(leaves[:n], m)
            assert Tree(leaves[:n]).consistency_proof(m) == proof and Tree(leaves[:n]).root() == roots[n]
            assert verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if proof:
                assert not verify_consistency(m, n, roots[m], roots[n], proof[1:]), (m, n)


# -- 20.11: the head in a manifest covers the disclosure; a rewritten log is not laundered -------------


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    src = tmp_path / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    return src


def _seal(d: Org, agreement_id: str, extract: Path, out: Path):
    out.parent.mkdir(exist_ok=True)
    return seal_for_agreement(d.vault, agreement_id, [("students.csv", extract, 2)], {"rows_out": 2}, out)


def _raw(path: Path) -> sqlcipher3.Connection:
    """The vault opened with sqlcipher3 and the passphrase, as an insider would, triggers dropped."""
    import agreements._vault as vault_module

    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = '{PASS}'")
    if vault_module._TEST_KDF_ITER:
        conn.execute(f"PRAGMA kdf_iter = {vault_module._TEST_KDF_ITER}")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    return conn


def _rewrite_without(path: Path, package_id: str) -> None:
    """The insider's rewrite: drop every entry about one package, renumber and re-chain the rest, and
    fix the recorded head, so that `audit verify` on the vault alone passes."""
    conn = _raw(path)
    rows = conn.execute(
        "SELECT time, actor, action, agreement, partner, package, details FROM audit_log "
        "WHERE package IS NOT ? ORDER BY seq",
        (package_id,),
    ).fetchall()
    conn.execute("DELETE FROM audit_log")
    prev = GENESIS
    for seq, (time, actor, action, agreement, partner, package, details) in enumerate(rows, start=1):
        digest = entry_hash(seq, time, actor, action, agreement, partner, package, details, prev)
        conn.execute(
            "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seq, time, actor, action, agreement, partner, package, details, prev, digest),
        )
        prev = digest
    conn.execute("UPDATE settings SET value = ? WHERE key = 'audit_head'", (f"{len(rows)}:{prev}",))
    conn.execute("DELETE FROM packages WHERE package_id = ?", (package_id,))
    conn.close()
    head_file(path).unlink()  # (with the passphrase they could as well re-sign it)


def test_attack_manifest_head_predates_the_seal_entry(sides, tmp_path: Path, extract: Path) -> None:
    """The head a partner receives covers the sender's own record of that very package."""
    d, c, agreement_id = sides
    sealed = _seal(d, agreement_id, extract, tmp_path / "out" / "p1.age")
    size, root = sealed.manifest.audit_head
    entry = d.vault.audit.entries(package=sealed.manifest.package_id, action="package.sealing")[0]
    assert entry.seq == size and root == d.vault.audit.tree_head(size)[1]
    assert entry.details["content_sha256"] == sealed.manifest.content_hash
    assert entry.details["recipients"] == [c.fp]
    # The recorded package comes after, and the log verifies.
    assert d.last() == "package.sealed" and d.vault.audit.verify().ok


def test_attack_rewritten_log_is_not_laundered_by_an_ordinary_package(
    sides, tmp_path: Path, extract: Path, run_cli, monkeypatch
) -> None:
    d, c, agreement_id = sides
    first = _seal(d, agreement_id, extract, tmp_path / "out" / "p1.age")
    assert not open_received(c.vault, first.path, tmp_path / "in1").warnings
    second = _seal(d, agreement_id, extract, tmp_path / "out" / "p2.age")
    got = open_received(c.vault, second.path, tmp_path / "in2")
    assert not got.warnings  # an honest sender proves its new head extends the one we held
    held = [h.size for h in partner_heads(c.vault, d.card.signing_key)]
    assert held == [first.manifest.audit_head[0], second.manifest.audit_head[0]]

    # The insider at the district erases the second disclosure and re-chains the log: alone, it verifies.
    d.vault.close()
    _rewrite_without(d.vault.path, second.manifest.package_id)
    d = Org(d.vault.path, new=False)
    assert d.vault.audit.verify().ok
    third = _seal(d, agreement_id, extract, tmp_path / "out" / "p3.age")
    got = open_received(c.vault, third.path, tmp_path / "in3")
    # Not laundered: the held heads stay as they were, the new head is not kept, and the college is told.
    assert [h.size for h in partner_heads(c.vault, d.card.signing_key)] == held
    assert got.warnings and got.warnings[0].startswith(d.card.org)
    assert c.last() in ("audit.partner_rewritten", "audit.partner_head_unconfirmed")

    # A sender that sends a proof from the held head cannot make it verify against a rewritten log.
    leaves = d.vault.audit.leaves()
    m = held[-1]
    forged = [h.hex() for h in consistency_proof(leaves, min(m, len(leaves)))]
    from agreements._audit import hold_partner_head

    verdict = hold_partner_head(c.vault, d.card, len(leaves), root_of(leaves).hex(), proofs=[(m, forged)])
    assert not verdict.ok and "rewritten" in verdict.reason
    problems = partner_log_problems(c.vault)
    assert problems and problems[-1].partner == d.fp and problems[-1].action == "audit.partner_rewritten"

    # The compliance officer sees it: on the dashboard and in `audit verify`.
    from agreements import dashboard

    assert {p.partner for p in dashboard(c.vault).partner_logs} == {d.fp}
    c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, _ = run_cli("--vault", c.vault.path, "audit", "verify")
    assert code == 0 and "rewritten" in out and d.card.org in out


def test_attack_rewritten_log_caught_by_the_next_bundle(sides, tmp_path: Path, extract: Path) -> None:
    """With the whole log (an audit bundle), a rewrite before any head we hold is named as such."""
    from agreements import check_bundle

    d, c, agreement_id = sides
    first = _seal(d, agreement_id, extract, tmp_path / "out" / "p1.age")
    open_received(c.vault, first.path, tmp_path / "in1")
    d.vault.close()
    _rewrite_without(d.vault.path, first.manifest.package_id)
    d = Org(d.vault.path, new=False)
    d.vault.audit.export_bundle(tmp_path / "bundle.json")
    check = check_bundle(c.vault, tmp_path / "bundle.json")
    assert not check.verdict.ok and "rewritten" in check.verdict.reason
    assert partner_log_problems(c.vault)[-1].action == "audit.partner_rewritten"
    held = partner_heads(c.vault, d.card.signing_key)
    assert [h.size for h in held] == [first.manifest.audit_head[0]]


# -- 14.4: a head that moved backwards -------------------------------------------------------------


def test_attack_entries_lost_after_append_head_moved_backwards(tmp_path: Path, run_cli, monkeypatch) -> None:
    """Entries whose append returned, then lost outside the chain's sight (the WAL reset by another
    process, as in issue 14): the chain verifies, the signed head file beside the vault does not agree."""
    path = tmp_path / "d.vault"
    Org(path, "Lakeview USD", "district").vault.close()
    vault = Org(path, new=False).vault
    before = len(vault.audit)
    for i in range(12):
        vault.audit.append("thing.done", details={"i": i})
    # What is left when the WAL holding those 12 commits is thrown away: the main file as it is now.
    shutil.copyfile(path, tmp_path / "as-left.vault")
    vault.close()
    shutil.copyfile(tmp_path / "as-left.vault", path)
    vault = Org(path, new=False).vault
    assert len(vault.audit) == before  # the 12 entries are gone
    verdict = vault.audit.verify()
    assert not verdict.ok and "moved backwards" in verdict.reason and f"shows {before + 12} entries" in (
        verdict.reason
    )
    # Appending more does not erase the evidence, even once the log is longer than the file says.
    for i in range(15):
        vault.audit.append("thing.again", details={"i": i})
    verdict = vault.audit.verify()
    assert not verdict.ok and f"entry {before + 12} differs from the head file" in verdict.reason
    vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, _, err = run_cli("--vault", path, "audit", "verify")
    assert code == 1 and "the log was rewritten" in err


def test_attack_head_file_forged_or_removed(tmp_path: Path, run_cli, monkeypatch) -> None:
    """Without the passphrase the head file cannot be re-signed; removing it is reported, not hidden."""
    path = tmp_path / "d.vault"
    org = Org(path, "Lakeview USD", "district")
    org.vault.audit.append("thing.done")
    assert org.vault.audit.verify().ok and not org.vault.audit.verify().warnings
    org.vault.close()
    text = head_file(path).read_text(encoding="ascii")
    import json

    doc = json.loads(text)
    head_file(path).write_text(json.dumps({**doc, "size": doc["size"] - 1}), encoding="ascii")
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, _, err = run_cli("--vault", path, "audit", "verify")
    assert code == 1 and "not one this organization signed" in err
    head_file(path).unlink()
    code, out, _ = run_cli("--vault", path, "audit", "verify")
    assert code == 0 and "Note: There is no head file d.vault.head" in out
    assert head_file(path).exists()  # written again by the verification's own entry


# -- 20.12: an old page spliced into the vault ------------------------------------------------------


def _pages_of(path: Path, table: str) -> tuple[list[int], int]:
    """(root page numbers of a table and its indexes, page size), read with the passphrase (the attacker
    needs neither: they could as well try the earlier copy's pages one by one)."""
    import agreements._vault as vault_module

    conn = sqlcipher3.connect(str(path), isolation_level=None)
    conn.execute(f"PRAGMA key = '{PASS}'")
    if vault_module._TEST_KDF_ITER:
        conn.execute(f"PRAGMA kdf_iter = {vault_module._TEST_KDF_ITER}")
    pages = [r[0] for r in conn.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = ?", (table,))]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return pages, int(size)


def _splice(earlier: Path, current: Path, pages: list[int], size: int) -> None:
    """Copy pages, byte for byte, from an earlier copy of the vault file into the current one."""
    changed = 0
    for page in pages:
        with open(earlier, "rb") as fh:
            fh.seek((page - 1) * size)
            old = fh.read(size)
        with open(current, "r+b") as fh:
            fh.seek((page - 1) * size)
            changed += fh.read(size) != old
            fh.seek((page - 1) * size)
            fh.write(old)
    assert changed  # the pages did change since the earlier copy


def test_attack_spliced_old_page_undoes_a_revocation(tmp_path: Path, run_cli, monkeypatch) -> None:
    from agreements import find_partner, import_card, revoke_partner, trusted_partner
    from agreements.errors import PartnerError

    path = tmp_path / "d.vault"
    d = Org(path, "Lakeview USD", "district")
    c = Org(tmp_path / "c.vault", "Riverside College", "college")
    import_card(d.vault, c.card, verified=True)
    d.vault.close()
    shutil.copyfile(path, tmp_path / "earlier.vault")  # e.g. last week's backup, or a stolen copy
    d = Org(path, new=False)
    revoke_partner(d.vault, c.fp, reason="age key compromised")
    d.vault.close()
    pages, size = _pages_of(path, "partners")
    _splice(tmp_path / "earlier.vault", path, pages, size)
    conn = _raw(path)  # the attack worked on the table: the revocation is gone from it
    revoked = conn.execute("SELECT revoked_at FROM partners WHERE fingerprint = ?", (c.fp,)).fetchone()
    assert revoked == (None,)
    conn.close()

    d = Org(path, new=False)
    assert d.vault.tampering and "was revoked" in d.vault.tampering[0] and c.fp in d.vault.tampering[0]
    assert d.last() == "vault.tampering"
    assert find_partner(d.vault, fingerprint=c.fp).revoked  # the log's decision holds
    with pytest.raises(PartnerError, match="revoked"):
        trusted_partner(d.vault, fingerprint=c.fp)
    d.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, _ = run_cli("--vault", path, "audit", "verify")
    assert code == 0 and "Tampering was found on opening the vault" in out and "was revoked" in out


def test_attack_spliced_old_page_reopens_a_replay(
    sides, tmp_path: Path, extract: Path, run_cli, monkeypatch
) -> None:
    from agreements.errors import PackageRejected

    d, c, agreement_id = sides
    sealed = _seal(d, agreement_id, extract, tmp_path / "out" / "p1.age")
    path = c.vault.path
    c.vault.close()
    shutil.copyfile(path, tmp_path / "earlier.vault")
    c = Org(path, new=False)
    open_received(c.vault, sealed.path, tmp_path / "in1")
    c.vault.close()
    pages, size = _pages_of(path, "packages")
    _splice(tmp_path / "earlier.vault", path, pages, size)
    conn = _raw(path)
    assert conn.execute("SELECT package_id FROM packages").fetchall() == []  # the replay list is empty
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)  # and the file is consistent
    conn.close()

    c = Org(path, new=False)
    try:
        assert c.vault.tampering and sealed.manifest.package_id in c.vault.tampering[0]
        with pytest.raises(PackageRejected, match="replay"):
            open_received(c.vault, sealed.path, tmp_path / "in2")
        verdict = c.vault.audit.verify()
        assert not verdict.ok and "tampered" in verdict.reason
    finally:
        c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, _, err = run_cli("--vault", path, "audit", "verify")
    assert code == 1 and "the vault was tampered with" in err and sealed.manifest.package_id in err
    assert err.startswith("pathshare: warning: this vault was tampered with: the log records that package")


def test_head_file_keeps_up_with_two_processes_appending(tmp_path: Path) -> None:
    """The head file is written under the vault's write lock: with two processes appending at once it
    ends at the log's head, never behind it from an interleaved read-compare-write."""
    import subprocess
    import sys

    import agreements._vault as vault_module

    path = tmp_path / "d.vault"
    Org(path, "Lakeview USD", "district").vault.close()
    code = (
        "import sys, agreements._vault as m\n"
        f"m._TEST_KDF_ITER = {vault_module._TEST_KDF_ITER!r}\n"
        "from agreements import Vault\n"
        f"v = Vault.open(sys.argv[1], {PASS!r})\n"
        "for i in range(40):\n"
        "    v.audit.append('thing.done', details={'writer': sys.argv[2], 'i': i})\n"
        "v.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), str(k)]) for k in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    vault = Org(path, new=False).vault
    try:
        from agreements._audit import read_head_file

        assert read_head_file(head_file(path)) == vault.audit.head()
        verdict = vault.audit.verify()
        assert verdict.ok and not verdict.warnings and verdict.entries >= 80
    finally:
        vault.close()
