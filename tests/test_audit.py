"""The audit log: chain hashing, tamper detection (edit, delete, insert, reorder), checkpoints and
rollback, bundles verified on another machine, filters, and the CLI."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil

import pytest
import sqlcipher3
from hypothesis import given, settings
from hypothesis import strategies as st

from agreements import (
    AuditError,
    Vault,
    create_identity,
    import_card,
    our_card,
    verify_bundle,
    verify_checkpoint,
    verify_partner,
)
from agreements._audit import (
    GENESIS,
    entry_hash,
    head_file,
    hold_partner_checkpoint,
    hold_partner_head,
    partner_heads,
    reference_entry_hash,
)
from agreements._merkle import consistency_proof
from agreements._signing import canonical_json

PASS = "correct horse battery staple"
N = 10  # entries in the fixture log


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """Fewer SQLCipher KDF iterations for speed: nothing here depends on the key derivation, which
    tests/test_vault.py exercises with SQLCipher's defaults."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


def _fill(vault: Vault, n: int) -> None:
    for i in range(n - len(vault.audit)):
        vault.audit.append("test.event", agreement=f"agr-{i % 3}", details={"i": i, "note": "ok"})


@pytest.fixture
def org(tmp_path):
    v = Vault.create(tmp_path / "org.vault", PASS)
    create_identity(v, "Lakeview USD", "district")
    _fill(v, N)
    yield v
    v.close()


class Raw:
    """The vault opened directly with sqlcipher3 and the passphrase, as a determined insider would."""

    def __init__(self, path):
        self.conn = sqlcipher3.connect(str(path), isolation_level=None)
        self.conn.execute(f"PRAGMA key = '{PASS}'")
        import agreements._vault as vault_module

        if vault_module._TEST_KDF_ITER:
            self.conn.execute(f"PRAGMA kdf_iter = {vault_module._TEST_KDF_ITER}")
        self.conn.execute("DROP TRIGGER audit_log_no_update")
        self.conn.execute("DROP TRIGGER audit_log_no_delete")

    def row(self, seq):
        return self.conn.execute("SELECT * FROM audit_log WHERE seq = ?", (seq,)).fetchone()

    def rehash(self, seq):
        """Recompute one entry's own hash so that only the link to the next entry breaks."""
        r = self.row(seq)
        digest = entry_hash(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8])
        self.conn.execute("UPDATE audit_log SET hash = ? WHERE seq = ?", (digest, seq))

    def close(self):
        self.conn.close()


def _tamper(vault: Vault, action) -> Vault:
    path = vault.path
    vault.close()
    raw = Raw(path)
    action(raw)
    raw.close()
    return Vault.open(path, PASS)


# -- the hash ---------------------------------------------------------------------------------------
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(min_value=1, max_value=10**12),
    time=text, actor=text, action=text,
    agreement=st.none() | text, partner=st.none() | text, package=st.none() | text,
    details=st.dictionaries(text, st.none() | st.booleans() | st.integers(-10**9, 10**9) | text, max_size=4),
)
def test_fast_hash_equals_the_canonical_json_definition(seq, time, actor, action, agreement, partner,
                                                        package, details):
    entry = {"seq": seq, "time": time, "actor": actor, "action": action, "agreement": agreement,
             "partner": partner, "package": package, "details": details, "prev_hash": GENESIS}
    fast = entry_hash(seq, time, actor, action, agreement, partner, package,
                      canonical_json(details).decode("utf-8"), GENESIS)
    assert fast == reference_entry_hash(entry)


def test_entries_chain_and_hash_by_definition(org):
    entries = org.audit.entries()
    assert [e.seq for e in entries] == list(range(1, N + 1))
    assert entries[0].prev_hash == GENESIS
    for a, b in itertools.pairwise(entries):
        assert b.prev_hash == a.hash
    for e in entries:
        assert e.hash == hashlib.sha256(canonical_json({k: v for k, v in e.to_dict().items()
                                                        if k != "hash"})).hexdigest()
    assert org.audit.head() == (N, entries[-1].hash)
    verdict = org.audit.verify()
    assert verdict.ok and verdict.entries == N and verdict.first_bad is None
    assert entries[1].actor.endswith("(Lakeview USD)") and entries[1].user == entries[1].actor.split(" (")[0]


def test_details_must_be_small_plain_json(org):
    with pytest.raises(AuditError):
        org.audit.append("x", details={"bad": float("nan")})
    with pytest.raises(AuditError, match="too large"):
        org.audit.append("x", details={"rows": ["x" * 100] * 500})
    with pytest.raises(AuditError):
        org.audit.append("")


def test_the_log_refuses_update_and_delete_through_sql(org):
    with pytest.raises(sqlcipher3.DatabaseError, match="append-only"):
        org.db.execute("UPDATE audit_log SET action = 'x' WHERE seq = 2")
    with pytest.raises(sqlcipher3.DatabaseError, match="append-only"):
        org.db.execute("DELETE FROM audit_log WHERE seq = 2")


# -- tampering ------------------------------------------------------------------------------------
def test_edited_entry_is_named(org):
    v = _tamper(org, lambda r: r.conn.execute(
        "UPDATE audit_log SET details = '{\"i\":99,\"note\":\"ok\"}' WHERE seq = 5"))
    verdict = v.audit.verify()
    v.close()
    assert not verdict.ok and verdict.first_bad == 5 and "altered" in verdict.reason


@pytest.mark.parametrize("column, value", [("actor", "someone else"), ("time", "2020-01-01T00:00:00Z"),
                                           ("action", "nothing.happened"), ("agreement", None)])
def test_every_field_is_covered(org, column, value):
    v = _tamper(org, lambda r: r.conn.execute(f"UPDATE audit_log SET {column} = ? WHERE seq = 4", (value,)))
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 4


def test_edited_and_rehashed_entry_breaks_the_next_link(org):
    def act(r):
        r.conn.execute("UPDATE audit_log SET action = 'innocent' WHERE seq = 5")
        r.rehash(5)

    v = _tamper(org, act)
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 6 and "does not follow entry 5" in verdict.reason


def test_deleted_entry_is_named(org):
    v = _tamper(org, lambda r: r.conn.execute("DELETE FROM audit_log WHERE seq = 5"))
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 5 and "missing" in verdict.reason


def test_deleted_and_renumbered_entries_are_caught(org):
    def act(r):
        r.conn.execute("DELETE FROM audit_log WHERE seq = 5")
        r.conn.execute("UPDATE audit_log SET seq = seq - 1 WHERE seq > 5")

    v = _tamper(org, act)
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 5


def test_last_entry_deleted_is_caught_by_the_recorded_head(org):
    v = _tamper(org, lambda r: r.conn.execute("DELETE FROM audit_log WHERE seq = ?", (N,)))
    verdict = v.audit.verify()
    v.close()
    assert not verdict.ok and verdict.first_bad == N and "missing" in verdict.reason


def test_appending_after_a_truncation_keeps_the_evidence(org):
    v = _tamper(org, lambda r: r.conn.execute("DELETE FROM audit_log WHERE seq >= ?", (N - 1,)))
    assert v.audit.verify().first_bad == N - 1
    v.audit.append("audit.verify")  # as `pathshare audit verify` does after reporting
    verdict = v.audit.verify()
    assert not verdict.ok and "missing" in verdict.reason
    v.audit.append("something.else")  # back to the recorded length, but not the recorded entry
    verdict = v.audit.verify()
    v.close()
    assert not verdict.ok and verdict.first_bad == N and "differs" in verdict.reason


def test_inserted_entry_is_named(org):
    def act(r):
        r.conn.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
        r.conn.execute("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1005")
        prev = r.row(4)[9]
        r.conn.execute("INSERT INTO audit_log VALUES (5, '2026-01-01T00:00:00Z', 'mallory', 'forged', "
                       "NULL, NULL, NULL, '{}', ?, ?)", (prev, "f" * 64))

    v = _tamper(org, act)
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 5 and "altered" in verdict.reason


def test_inserted_entry_with_a_valid_hash_is_caught_at_the_next(org):
    def act(r):
        r.conn.execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
        r.conn.execute("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1005")
        prev = r.row(4)[9]
        r.conn.execute("INSERT INTO audit_log VALUES (5, '2026-01-01T00:00:00Z', 'mallory', 'forged', "
                       "NULL, NULL, NULL, '{}', ?, '')", (prev,))
        r.rehash(5)

    v = _tamper(org, act)
    verdict = v.audit.verify()
    v.close()
    # Entry 5 is self-consistent; entry 6 (the real old 5) no longer matches its hash (seq is hashed).
    assert verdict.first_bad == 6


def test_reordered_entries_are_named(org):
    def act(r):
        r.conn.execute("UPDATE audit_log SET seq = -1 WHERE seq = 3")
        r.conn.execute("UPDATE audit_log SET seq = 3 WHERE seq = 4")
        r.conn.execute("UPDATE audit_log SET seq = 4 WHERE seq = -1")

    v = _tamper(org, act)
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 3


# -- checkpoints and rollback ---------------------------------------------------------------------
def test_checkpoint_is_a_c2sp_signed_note(org):
    cp = org.audit.checkpoint()
    body, sig = cp.split("\n\n")
    origin, size, b64hash = body.split("\n")
    card = our_card(org)
    assert origin == f"pathshare.audit/{card.fingerprint()}" and size == str(N)
    import base64

    # tlog-checkpoint: the hash is the RFC 6962 Merkle root over the entries (their chain hashes as leaves)
    assert base64.b64decode(b64hash).hex() == org.audit.tree_head()[1] != org.audit.head()[1]
    assert sig.startswith(f"\u2014 {origin} ") and sig.endswith("\n")
    parsed = verify_checkpoint(cp, card)
    assert (parsed.size, parsed.hash) == org.audit.tree_head()
    with pytest.raises(AuditError, match="not signed"):
        verify_checkpoint(cp.replace(f"\n{N}\n", f"\n{N + 1}\n"), card)
    assert verify_checkpoint(cp.replace("\n", "\r\n"), card).size == N
    for broken in ("", "just text", cp.replace(f"\n{N}\n", "\n\u00b2\n"), cp.split("\n\n")[0] + "\n\n"):
        with pytest.raises(AuditError):
            verify_checkpoint(broken, card)


def test_restoring_an_older_vault_is_caught_against_a_checkpoint(org, tmp_path):
    path = org.path
    org.close()
    shutil.copy(path, tmp_path / "backup.vault")
    shutil.copy(head_file(path), tmp_path / "backup.vault.head")
    v = Vault.open(path, PASS)
    _fill(v, N + 5)
    checkpoint = v.audit.checkpoint()  # a partner holds this (e.g. from a bundle or a package)
    assert v.audit.verify_against_checkpoint(checkpoint).ok
    v.close()
    shutil.copy(tmp_path / "backup.vault", path)  # the rollback, head file beside the vault included
    shutil.copy(tmp_path / "backup.vault.head", head_file(path))
    v = Vault.open(path, PASS)
    assert v.audit.verify().ok  # the chain alone cannot tell
    verdict = v.audit.verify_against_checkpoint(checkpoint)
    assert not verdict.ok and "older copy" in verdict.reason and verdict.first_bad == N + 1
    # Rewriting history to the same length is caught too.
    _fill(v, N + 5)
    verdict = v.audit.verify_against_checkpoint(checkpoint)
    v.close()
    assert not verdict.ok and verdict.first_bad == N + 5 and "rewritten" in verdict.reason


# -- bundles --------------------------------------------------------------------------------------
@pytest.fixture
def college(tmp_path, org):
    c = Vault.create(tmp_path / "college.vault", PASS)
    create_identity(c, "Riverside College", "college")
    verify_partner(c, import_card(c, our_card(org)).partner.fingerprint)
    yield c
    c.close()


def test_bundle_verifies_on_another_machine(org, college, tmp_path):
    org.audit.append("test.unicode", agreement="agr-\u00e9", details={"file": "r\u00e9sum\u00e9\n\"x\".csv",
                                                                    "nested": {"n": [1, 2]}})
    out = tmp_path / "audit.json"
    org.audit.export_bundle(out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["entries"][-1]["action"] == "audit.export"
    assert data["entries"][-2]["details"]["file"] == "r\u00e9sum\u00e9\n\"x\".csv"
    from agreements import find_partner

    held = find_partner(college, signing_key=data["card"]["signing_key"]).card
    verdict = verify_bundle(out, held)
    assert verdict.ok and verdict.entries == N + 2
    # Signed by someone else than the card we hold: refused.
    assert not verify_bundle(out, our_card(college)).ok


@pytest.mark.parametrize("tamper, reason", [
    (lambda d: d["entries"][3]["details"].update(i=42), "entry 4 was altered"),
    (lambda d: d["entries"].pop(3), "entry 4 is missing"),
    (lambda d: d["entries"].pop(), "do not end at the signed checkpoint"),
    (lambda d: d.update(checkpoint=d["checkpoint"].replace("\n11\n", "\n10\n")), "not signed"),
    (lambda d: d["entries"].insert(2, dict(d["entries"][2])), "entry 3|entry 4"),
])
def test_tampered_bundle_is_refused(org, tmp_path, tamper, reason):
    out = tmp_path / "audit.json"
    org.audit.export_bundle(out)
    data = json.loads(out.read_text())
    tamper(data)
    out.write_text(json.dumps(data))
    verdict = verify_bundle(out, our_card(org))
    assert not verdict.ok
    assert __import__("re").search(reason, verdict.reason), verdict.reason


def test_not_a_bundle(tmp_path, org):
    bad = tmp_path / "x.json"
    bad.write_text("{")
    with pytest.raises(AuditError, match="not valid JSON"):
        verify_bundle(bad, our_card(org))
    bad.write_text("{}")
    with pytest.raises(AuditError, match="not a PathShare audit bundle"):
        verify_bundle(bad, our_card(org))


def test_partner_heads_are_all_kept_and_a_new_one_needs_a_proof(org, college, tmp_path):
    card = our_card(org)
    first = org.audit.checkpoint()
    assert hold_partner_checkpoint(college, first, card).ok  # the first head we see is kept
    _fill(org, N + 3)
    size, root = org.audit.tree_head()
    # A longer head with nothing proving it extends the one we hold is not kept.
    verdict = hold_partner_head(college, card, size, root)
    assert not verdict.ok and "cannot be checked" in verdict.reason
    assert [h.size for h in partner_heads(college, card.signing_key)] == [N]
    assert college.audit.entries()[-1].action == "audit.partner_head_unconfirmed"
    proof = [h.hex() for h in consistency_proof(org.audit.leaves(), N)]
    assert hold_partner_head(college, card, size, root, proofs=[(N, proof)]).ok
    assert [h.size for h in partner_heads(college, card.signing_key)] == [N, size]
    assert hold_partner_checkpoint(college, first, card).ok  # a head we hold, shown again
    # Their log went backwards: a shorter head that is not one we hold.
    verdict = hold_partner_head(college, card, N + 1, org.audit.tree_head(N + 1)[1])
    assert not verdict.ok and "older copy" in verdict.reason
    assert college.audit.entries()[-1].action == "audit.partner_rollback"
    # Same size, other history; and a proof that does not hold.
    verdict = hold_partner_head(college, card, size, "0" * 64)
    assert not verdict.ok and "rewritten" in verdict.reason
    _fill(org, N + 5)
    size2, root2 = org.audit.tree_head()
    verdict = hold_partner_head(college, card, size2, root2, proofs=[(size, proof)])
    assert not verdict.ok and "rewritten" in verdict.reason
    assert college.audit.entries()[-1].action == "audit.partner_rewritten"
    assert [h.size for h in partner_heads(college, card.signing_key)] == [N, size]


# -- reading --------------------------------------------------------------------------------------
def test_filters(org):
    org.audit.append("partner.import", partner="AAAAA-BBBBB-CCCCC-DDDDD")
    org.audit.append("package.seal", agreement="agr-x", package="pkg-1")
    assert [e.action for e in org.audit.entries(action="partner.")] == ["partner.import"]
    assert [e.package for e in org.audit.entries(agreement="agr-x")] == ["pkg-1"]
    assert len(org.audit.entries(partner="AAAAA-BBBBB-CCCCC-DDDDD")) == 1
    me = org.audit.entries()[0].user
    assert len(org.audit.entries(user=me)) == N + 2 and org.audit.entries(user="nobody") == []
    assert org.audit.entries(since="2999-01-01") == []
    today = org.audit.entries()[-1].time[:10]
    assert len(org.audit.entries(until=today)) == N + 2
    first = org.audit.entries()[0].time
    assert org.audit.entries(since=first)[0].seq == 1
    assert org.audit.entries(until=first.replace("Z", "+00:00"))[-1].seq == 1
    with pytest.raises(AuditError, match="not a date"):
        org.audit.entries(since="yesterday")
    with pytest.raises(AuditError, match="YYYY-MM-DD"):
        org.audit.entries(until="2026-13-45")
    last2 = org.audit.entries(limit=2)
    assert [e.action for e in last2] == ["partner.import", "package.seal"]


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_audit_commands(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    d, c = tmp_path / "d.vault", tmp_path / "c.vault"
    assert run_cli("--vault", d, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
    assert run_cli("--vault", c, "init", "--org", "Riverside College", "--kind", "college")[0] == 0
    assert run_cli("--vault", d, "card", "export", tmp_path / "d.json")[0] == 0
    code, out, _ = run_cli("--vault", d, "audit", "verify")
    assert code == 0 and "verifies: 3 entries" in out
    code, out, _ = run_cli("--vault", d, "audit", "log", "--json", "--action", "card.export")
    assert code == 0 and [e["action"] for e in json.loads(out)] == ["card.export"]
    code, out, _ = run_cli("--vault", d, "audit", "log")
    assert code == 0 and "identity.create" in out
    code, _, err = run_cli("--vault", d, "audit", "log", "--since", "yesterday")
    assert code == 1 and err.startswith("pathshare: 'yesterday' is not a date")
    raw = Raw(d)  # a tampered vault: `audit verify` names the entry
    raw.conn.execute("UPDATE audit_log SET actor = 'nobody' WHERE seq = 2")
    raw.close()
    code, _, err = run_cli("--vault", d, "audit", "verify")
    assert code == 1 and err == "pathshare: The audit log does not verify: entry 2 was altered: its " \
        "contents do not match its hash.\n"
    code, _, err = run_cli("--vault", d, "audit", "export", tmp_path / "no.json")
    assert code == 1 and "was not exported" in err and not (tmp_path / "no.json").exists()


def test_cli_bundle_verified_by_a_partner(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    d, c = tmp_path / "d.vault", tmp_path / "c.vault"
    assert run_cli("--vault", d, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
    assert run_cli("--vault", c, "init", "--org", "Riverside College", "--kind", "college")[0] == 0
    assert run_cli("--vault", d, "card", "export", tmp_path / "d.json")[0] == 0
    bundle = tmp_path / "audit.json"
    assert run_cli("--vault", d, "audit", "export", bundle)[0] == 0
    code, _, err = run_cli("--vault", c, "audit", "verify", "--bundle", bundle)
    assert code == 1 and "whose card this vault does not hold" in err
    assert run_cli("--vault", c, "partner", "import", tmp_path / "d.json", "--verified")[0] == 0
    code, out, _ = run_cli("--vault", c, "audit", "verify", "--bundle", bundle)
    assert code == 0 and "Lakeview USD" in out and "verifies" in out
    code, out, _ = run_cli("audit", "verify", "--bundle", bundle, "--card", tmp_path / "d.json")
    assert code == 0
    data = json.loads(bundle.read_text())
    data["entries"][1]["action"] = "nothing"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(data))
    code, _, err = run_cli("--vault", c, "audit", "verify", "--bundle", forged)
    assert code == 1 and "entry 2 was altered" in err and err.count("\n") == 1


def test_cli_checkpoint_and_rollback_caught_by_both_sides(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    d, c = tmp_path / "d.vault", tmp_path / "c.vault"
    assert run_cli("--vault", d, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
    assert run_cli("--vault", c, "init", "--org", "Riverside College", "--kind", "college")[0] == 0
    assert run_cli("--vault", d, "card", "export", tmp_path / "d.json")[0] == 0
    assert run_cli("--vault", c, "partner", "import", tmp_path / "d.json", "--verified")[0] == 0
    backup = tmp_path / "backup.vault"
    shutil.copy(d, backup)
    shutil.copy(head_file(d), head_file(backup))  # a whole copy: the vault and the head file beside it
    assert run_cli("--vault", d, "audit", "verify")[0] == 0  # itself an entry the backup lacks
    cp = tmp_path / "cp.txt"
    assert run_cli("--vault", d, "audit", "checkpoint", "--out", cp)[0] == 0
    assert run_cli("--vault", d, "audit", "verify", "--checkpoint", cp)[0] == 0
    forged_cp = tmp_path / "forged-cp.txt"
    forged_cp.write_text(cp.read_text().replace("\n4\n", "\n3\n"))
    code, _, err = run_cli("--vault", d, "audit", "verify", "--checkpoint", forged_cp)
    assert code == 1 and "forged-cp.txt" in err and "not signed" in err
    bundle2 = tmp_path / "audit2.json"
    assert run_cli("--vault", d, "audit", "export", bundle2)[0] == 0
    assert run_cli("--vault", c, "audit", "verify", "--bundle", bundle2)[0] == 0
    shutil.copy(backup, d)
    shutil.copy(head_file(backup), head_file(d))
    code, _, err = run_cli("--vault", d, "audit", "verify", "--checkpoint", cp)
    assert code == 1 and "older copy of the vault" in err
    bundle3 = tmp_path / "audit3.json"
    assert run_cli("--vault", d, "audit", "export", bundle3)[0] == 0
    code, _, err = run_cli("--vault", c, "audit", "verify", "--bundle", bundle3)
    assert code == 1 and "older copy" in err



@settings(max_examples=150, deadline=None)
@given(values=st.lists(text, min_size=5, max_size=5), details=st.dictionaries(text, text, max_size=3))
def test_sqlite_built_canonical_json_matches_the_definition(values, details):
    """The fast verification lets SQLite's json_quote build the canonical JSON; it must equal RFC 8785."""
    import sqlcipher3 as sc

    from agreements._audit import _CANONICAL_SQL

    conn = sc.connect(":memory:")
    conn.execute("CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, time, actor, action, agreement, partner, "
                 "package, details, prev_hash, hash)")
    time_, actor, action, agreement, package = values
    details_json = canonical_json(details).decode("utf-8")
    conn.execute("INSERT INTO audit_log VALUES (7, ?, ?, ?, ?, NULL, ?, ?, ?, '')",
                 (time_, actor, action, agreement, package, details_json, GENESIS))
    text_ = conn.execute(_CANONICAL_SQL).fetchone()[3]
    entry = {"seq": 7, "time": time_, "actor": actor, "action": action, "agreement": agreement,
             "partner": None, "package": package, "details": details, "prev_hash": GENESIS}
    assert hashlib.sha256(text_.encode("utf-8")).hexdigest() == reference_entry_hash(entry)


def test_a_blob_planted_in_the_log_is_named(org):
    v = _tamper(org, lambda r: r.conn.execute("UPDATE audit_log SET actor = x'00ff' WHERE seq = 3"))
    verdict = v.audit.verify()
    v.close()
    assert verdict.first_bad == 3


@settings(max_examples=200, deadline=None)
@given(details=st.dictionaries(
    st.text(max_size=8),
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | text
    | st.lists(st.integers(0, 9), max_size=2),
    max_size=5,
))
def test_fast_details_canonicalization_equals_rfc8785(details):
    from agreements._audit import _details_canonical

    assert _details_canonical(details) == canonical_json(details).decode("utf-8")


def test_bundle_with_a_non_integer_seq_is_refused(org, tmp_path):
    out = tmp_path / "audit.json"
    org.audit.export_bundle(out)
    data = json.loads(out.read_text())
    data["entries"][0]["seq"] = True  # equal to 1 in Python, but not what was hashed
    out.write_text(json.dumps(data))
    assert verify_bundle(out, our_card(org)).first_bad == 1


def test_filter_entries_means_what_the_vaults_filters_mean(tmp_path):
    """A partner's bundle is filtered by the same SQL as the vault's own log (agreements.filter_entries),
    not by a second copy of the rules in the Audit page."""
    from agreements import Vault, filter_entries

    with Vault.create(tmp_path / "f.vault", "tidal mango quarry lantern") as vault:
        for action, partner in (("partner.import", "P1"), ("partner.verify", "P1"), ("agreement.sign", "P2")):
            vault.audit.append(action, partner=partner)
        everything = vault.audit.entries()
        for filters in (
            {"action": "partner."},
            {"action": "partner.verify"},
            {"partner": "P2"},
            {"since": everything[0].time[:10]},
            {"until": "2000-01-01"},
            {"user": everything[-1].user},
            {"action": "partner.", "partner": "P1"},
        ):
            assert filter_entries(everything, **filters) == vault.audit.entries(**filters), filters
        assert [e.action for e in filter_entries(everything, action="partner.")] == [
            "partner.import",
            "partner.verify",
        ]
