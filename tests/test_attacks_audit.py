"""Attacks on the audit log's evidence by an insider (issue 20 items 11 and 12, issue 14 item 4).

Each test performs the attack on real vaults and fails if it works again:
- a sender rewrites its log (dropping a disclosure) and launders it with one ordinary package;
- the head sent to partners must cover the record of the disclosure it travels with;
- an old page spliced into the vault restores a revoked partner (no passphrase needed);
- entries lost after they were appended (the head moved backwards) are reported by `audit verify`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlcipher3
from partners_setup import PASS, Org

from agreements._audit import GENESIS, entry_hash, partner_heads, partner_log_problems
from agreements._merkle import EMPTY_ROOT, consistency_proof, leaf_hash, root_of, verify_consistency
from agreements._workflows import open_received, seal_for_agreement

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
    from agreements._compliance import dashboard

    assert {p.partner for p in dashboard(c.vault).partner_logs} == {d.fp}
    c.vault.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, _ = run_cli("--vault", c.vault.path, "audit", "verify")
    assert code == 0 and "rewritten" in out and d.card.org in out


def test_attack_rewritten_log_caught_by_the_next_bundle(sides, tmp_path: Path, extract: Path) -> None:
    """With the whole log (an audit bundle), a rewrite before any head we hold is named as such."""
    from agreements._compliance import check_bundle

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
