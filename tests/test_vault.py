"""The vault: create, open, wrong passphrase, not a vault, weak passphrase, rekey, migrations, CLI."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
import sqlcipher3

from agreements import (
    NotAVault,
    Vault,
    VaultError,
    WeakPassphrase,
    WrongPassphrase,
    _migrations,
    check_passphrase,
    passphrase_strength,
)

PASS = "correct horse battery staple"
PASS2 = "seven purple lanterns drifting"


@pytest.fixture(autouse=True)
def real_kdf(monkeypatch):
    """SQLCipher's own key derivation (256,000 iterations), not the suite's cheap one (tests/conftest.py):
    these tests open the vault with plain SQLCipher as an auditor would, and are about the vault itself."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", None)


@pytest.fixture
def vault_file(tmp_path):
    path = tmp_path / "v.vault"
    Vault.create(path, PASS).close()
    return path


def test_create_makes_a_private_single_file_and_reopens(tmp_path):
    path = tmp_path / "org.vault"
    v = Vault.create(path, PASS)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert v.schema_version == max(ver for ver, _ in _migrations.MIGRATIONS)
        v.set_setting("colour", "blue")
        assert v.get_setting("colour") == "blue"
        assert v.get_setting("missing") is None
    finally:
        v.close()
    # No temp files or WAL left next to it after close; only PathShare's lock file, private and
    # holding no secret (nor the name of who held it last).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["org.vault", "org.vault.lock"]
    lock = tmp_path / "org.vault.lock"
    assert stat.S_IMODE(os.stat(lock).st_mode) == 0o600 and not lock.read_bytes().strip()
    with Vault.open(path, PASS) as again:
        assert again.get_setting("colour") == "blue"
        assert [e.action for e in again.audit.entries()] == ["vault.create"]


def test_the_vault_is_really_encrypted_and_opens_with_plain_sqlcipher(vault_file):
    raw = vault_file.read_bytes()
    assert not raw.startswith(b"SQLite format 3")
    assert b"pathshare-vault" not in raw
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(vault_file).execute("SELECT * FROM sqlite_master").fetchall()
    # An auditor with the passphrase and any SQLCipher 4 tool can read it.
    conn = sqlcipher3.connect(str(vault_file))
    conn.execute(f"PRAGMA key = '{PASS}'")
    assert conn.execute("SELECT value FROM settings WHERE key='format'").fetchone() == ("pathshare-vault",)
    conn.close()


def test_create_refuses_an_existing_file_and_missing_folder(tmp_path, vault_file):
    with pytest.raises(VaultError, match="already exists"):
        Vault.create(vault_file, PASS)
    with pytest.raises(VaultError, match="does not exist"):
        Vault.create(tmp_path / "nope" / "v.vault", PASS)


def test_wrong_passphrase_is_one_sentence(vault_file):
    with pytest.raises(WrongPassphrase) as info:
        Vault.open(vault_file, "not the right passphrase")
    assert str(info.value) == f"The passphrase does not open the vault at {vault_file}."


def test_passphrase_with_quotes_works(tmp_path):
    odd = "it's a \"quoted\" pass; DROP TABLE x; --"
    path = tmp_path / "q.vault"
    Vault.create(path, odd).close()
    with Vault.open(path, odd) as v:
        assert v.audit.verify().ok
    with pytest.raises(WrongPassphrase):
        Vault.open(path, odd.replace("'", ""))


@pytest.mark.parametrize(
    "content, why",
    [
        (b"", "empty"),
        (b"SQLite format 3\x00" + b"\x00" * 4080, "plain"),
        (b"hello, this is a text file\n", "not an encrypted database"),
    ],
)
def test_not_a_vault(tmp_path, content, why):
    path = tmp_path / "x.vault"
    path.write_bytes(content)
    with pytest.raises(NotAVault, match=why):
        Vault.open(path, PASS)


def test_plain_sqlite_database_is_not_a_vault(tmp_path):
    path = tmp_path / "plain.db"
    sqlite3.connect(path).execute("CREATE TABLE t(x)").connection.commit()
    with pytest.raises(NotAVault, match="plain"):
        Vault.open(path, PASS)


def test_foreign_encrypted_database_is_not_a_vault(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlcipher3.connect(str(path))
    conn.execute(f"PRAGMA key = '{PASS}'")
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    with pytest.raises(NotAVault, match="not a PathShare vault"):
        Vault.open(path, PASS)


def test_missing_vault_says_how_to_create_one(tmp_path):
    with pytest.raises(VaultError, match="There is no vault at") as info:
        Vault.open(tmp_path / "none.vault", PASS)
    assert info.value.hint == "Create one." and info.value.action == "create_identity"
    assert "pathshare" not in info.value.message + info.value.hint


@pytest.mark.parametrize(
    "weak, reason",
    [
        ("short", "at least 12 characters"),
        ("password1234", "common"),
        ("aaaaaaaaaaaaaaaa", "[Rr]epeats"),
        ("abcdefghijklmnop", "Sequences|guess|word"),
    ],
)
def test_weak_passphrases_are_refused_with_a_reason(tmp_path, weak, reason):
    with pytest.raises(WeakPassphrase, match=reason):
        Vault.create(tmp_path / "w.vault", weak)
    assert not (tmp_path / "w.vault").exists()
    assert list(tmp_path.iterdir()) == []


def test_strength_meter():
    assert passphrase_strength("")[0] == 0
    short = passphrase_strength("Zq#8")
    assert short[0] <= 2 and "12" in short[1]
    score, hint = passphrase_strength(PASS)
    assert score >= 3 and hint
    check_passphrase(PASS)  # no exception


def test_change_passphrase_rekeys_and_is_audited(vault_file):
    with Vault.open(vault_file, PASS) as v:
        with pytest.raises(WeakPassphrase):
            v.change_passphrase("123")
        v.change_passphrase(PASS2)
    with pytest.raises(WrongPassphrase):
        Vault.open(vault_file, PASS)
    with Vault.open(vault_file, PASS2) as v:
        assert v.audit.entries()[-1].action == "vault.passphrase_change"
        assert v.audit.verify().ok


def test_transaction_rolls_back_everything_on_error(vault_file):
    with Vault.open(vault_file, PASS) as v:
        before = v.audit.head()
        with pytest.raises(RuntimeError), v.transaction():
            v.set_setting("k", "v")
            v.audit.append("test.inside")
            raise RuntimeError("boom")
        assert v.get_setting("k") is None
        assert v.audit.head() == before
        with v.transaction() as conn:
            conn.execute("INSERT INTO settings VALUES ('a', '1')")
            v.audit.append("test.together", conn=conn)
        assert v.get_setting("a") == "1" and v.audit.head()[0] == before[0] + 1


def test_pending_migrations_apply_on_open_and_are_audited(vault_file, monkeypatch):
    extra = (99, "CREATE TABLE test_extra (x INTEGER);")
    monkeypatch.setattr(_migrations, "MIGRATIONS", [*_migrations.MIGRATIONS, extra])
    import agreements._vault as vmod

    monkeypatch.setattr(vmod, "MIGRATIONS", _migrations.MIGRATIONS)
    with Vault.open(vault_file, PASS) as v:
        assert v.schema_version == 99
        v.db.execute("SELECT x FROM test_extra").fetchall()
        last = v.audit.entries()[-1]
        assert last.action == "vault.upgrade" and last.details["to"] == 99


def test_a_vault_from_a_newer_pathshare_is_refused(vault_file):
    conn = sqlcipher3.connect(str(vault_file))
    conn.execute(f"PRAGMA key = '{PASS}'")
    conn.execute("PRAGMA user_version = 9999")
    conn.close()
    with pytest.raises(VaultError, match="newer PathShare"):
        Vault.open(vault_file, PASS)


def test_a_failing_migration_leaves_the_vault_as_it_was(vault_file, monkeypatch):
    import agreements._vault as vmod

    bad = [*_migrations.MIGRATIONS, (98, "CREATE TABLE ok_one (x);\nCREATE TABLE settings (dup);")]
    monkeypatch.setattr(vmod, "MIGRATIONS", bad)
    with pytest.raises(VaultError, match="schema 98"):
        Vault.open(vault_file, PASS)
    monkeypatch.setattr(vmod, "MIGRATIONS", _migrations.MIGRATIONS)
    with Vault.open(vault_file, PASS) as v:
        assert v.db.execute("SELECT name FROM sqlite_master WHERE name='ok_one'").fetchone() is None


# -- CLI ------------------------------------------------------------------------------------------
def test_cli_wrong_passphrase_and_not_a_vault(run_cli, tmp_path, monkeypatch):
    path = tmp_path / "v.vault"
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    assert run_cli("--vault", path, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "definitely the wrong one")
    code, _, err = run_cli("--vault", path, "audit", "verify")
    assert code == 1 and err == f"pathshare: The passphrase does not open the vault at {path}.\n"
    notvault = tmp_path / "notes.txt"
    notvault.write_text("hello\n")
    code, _, err = run_cli("--vault", notvault, "audit", "verify")
    assert code == 1 and "is not a PathShare vault" in err and "Traceback" not in err


def test_cli_weak_passphrase_at_init(run_cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "password")
    code, _, err = run_cli("--vault", tmp_path / "v.vault", "init", "--org", "X", "--kind", "college")
    assert code == 1 and "too weak" in err
    assert not (tmp_path / "v.vault").exists()


def test_cli_without_passphrase_and_no_terminal(run_cli, tmp_path, monkeypatch):
    monkeypatch.delenv("PATHSHARE_PASSPHRASE", raising=False)
    code, _, err = run_cli("--vault", tmp_path / "v.vault", "init", "--org", "X", "--kind", "college")
    assert code == 1 and "PATHSHARE_PASSPHRASE" in err


def test_cli_change_passphrase(run_cli, tmp_path, monkeypatch):
    path = tmp_path / "v.vault"
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    assert run_cli("--vault", path, "init", "--org", "Lakeview USD", "--kind", "district")[0] == 0
    monkeypatch.setenv("PATHSHARE_NEW_PASSPHRASE", PASS2)
    code, out, _ = run_cli("--vault", path, "identity", "change-passphrase")
    assert code == 0 and "new passphrase" in out
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS2)
    assert run_cli("--vault", path, "audit", "verify")[0] == 0


def test_default_vault_path_is_in_the_user_data_folder(monkeypatch, tmp_path):
    from agreements import default_vault_path
    from desktop.commands._vaultargs import vault_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = default_vault_path()
    assert path.name == "pathshare.vault" and "PathShare" in str(path)

    class Args:
        vault = None

    assert vault_path(Args()) == path


def test_stale_partials_of_a_killed_create_are_swept(tmp_path):
    import time

    stale, fresh = tmp_path / ".v.vault.abc123.partial", tmp_path / ".v.vault.def456.partial"
    for f in (stale, fresh):
        f.write_bytes(b"\0" * 4096)
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    Vault.create(tmp_path / "v.vault", PASS).close()
    assert not stale.exists()
    assert fresh.exists()  # may belong to a create still running



def test_create_where_the_folder_is_a_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(VaultError, match="does not exist"):
        Vault.create(blocker / "v.vault", PASS)


def test_a_step_numbered_below_the_vaults_version_still_reaches_it(tmp_path, monkeypatch):
    """Migration numbers are reserved by area, so a later release can add step 15 after 50 exists:
    the ledger of applied steps (not just the highest) makes an existing vault get it."""
    import agreements._vault as vault_module

    path = tmp_path / "old.vault"
    Vault.create(path, PASS).close()
    late = (15, "CREATE TABLE late_step (x TEXT);")
    monkeypatch.setattr(vault_module, "MIGRATIONS", sorted([*vault_module.MIGRATIONS, late]))
    with Vault.open(path, PASS) as vault:
        assert vault.db.execute("SELECT count(*) FROM late_step").fetchone() == (0,)
        upgrade = [e for e in vault.audit.entries() if e.action == "vault.upgrade"]
        assert upgrade and upgrade[-1].details["steps"] == [15]
        assert vault.audit.verify()
    with Vault.open(path, PASS) as vault:  # applied once only
        assert len([e for e in vault.audit.entries() if e.action == "vault.upgrade"]) == 1
