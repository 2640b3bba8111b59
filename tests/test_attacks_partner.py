"""Attacks from issue 20 that concern partners, names, passphrases and the audit actor (items 4, 5, 6, 9,
13, 14). Each test performs the attack and fails if it works again."""

from __future__ import annotations

import ctypes
import os
import pwd

import pytest

from agreements import Vault, create_identity
from agreements._audit import _posix_account_name, _windows_account_name, os_account_name

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """Fewer SQLCipher KDF iterations for speed (tests/test_vault.py covers the real KDF)."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


# ------------------------------------------------------------------ 14: the audit actor from the OS


def test_attack_logname_spoofs_the_audit_actor(tmp_path, monkeypatch):
    """`LOGNAME=jsmith pathshare …` must not put jsmith in the log: the actor is the OS account."""
    real = pwd.getpwuid(os.getuid()).pw_name
    for var in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(var, "jsmith")
    vault = Vault.create(tmp_path / "org.vault", PASS)
    try:
        create_identity(vault, "Lakeview USD", "district")
        vault.audit.append("test.event")
        users = {e.user for e in vault.audit.entries()}
    finally:
        vault.close()
    assert users == {real}
    assert real != "jsmith"


def test_account_name_posix_branch_reads_the_account_database(monkeypatch):
    monkeypatch.setenv("LOGNAME", "jsmith")
    assert os_account_name("linux") == pwd.getpwuid(os.getuid()).pw_name
    assert _posix_account_name() == pwd.getpwuid(os.getuid()).pw_name


def test_account_name_posix_branch_without_a_passwd_entry(monkeypatch):
    """A uid the account database does not know (some containers) is logged as its number."""

    def no_entry(uid: int) -> None:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setenv("LOGNAME", "jsmith")
    assert _posix_account_name() == f"uid {os.getuid()}"


class _FakeAdvapi32:
    """Stands in for advapi32.dll: GetUserNameW fills the buffer it is given, like Windows does."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.calls = 0

    def GetUserNameW(self, buffer, size_ref) -> int:  # the Win32 name
        self.calls += 1
        if self.name is None:
            return 0
        buffer.value = self.name
        ctypes.cast(size_ref, ctypes.POINTER(ctypes.c_ulong)).contents.value = len(self.name) + 1
        return 1


def test_account_name_windows_branch_asks_getusernamew(monkeypatch):
    monkeypatch.setenv("USERNAME", "jsmith")
    dll = _FakeAdvapi32("akim")
    assert _windows_account_name(dll) == "akim"
    assert dll.calls == 1


def test_account_name_windows_branch_failure_is_unknown_not_the_environment(monkeypatch):
    monkeypatch.setenv("USERNAME", "jsmith")
    assert _windows_account_name(_FakeAdvapi32(None)) == "unknown"


def test_account_name_dispatches_windows_to_getusernamew(monkeypatch):
    import agreements._audit as audit_module

    monkeypatch.setattr(audit_module, "_windows_account_name", lambda: "from-windows")
    monkeypatch.setattr(audit_module, "_posix_account_name", lambda: "from-posix")
    assert audit_module.os_account_name("win32") == "from-windows"
    assert audit_module.os_account_name("darwin") == "from-posix"


# ------------------------------------------------------------------ 13: weak passphrases


@pytest.mark.parametrize(
    "weak",
    [
        "Password2026!!",  # a common word, a year, punctuation: zxcvbn 3, accepted before
        "Riverbend2026!!",  # the organization's own name: scored 4 when the name was not given
        "Community2026!!",  # a word of the name
        "ir@riverbend.example 1",  # the contact
        "PathShare2026!!",  # what anyone attacking a PathShare vault tries first
    ],
)
def test_attack_guessable_passphrase_is_accepted(tmp_path, weak):
    from agreements import WeakPassphrase

    with pytest.raises(WeakPassphrase, match="too weak"):
        Vault.create(
            tmp_path / "college.vault",
            weak,
            user_inputs=("Riverbend Community College", "ir@riverbend.example"),
        )
    assert list(tmp_path.iterdir()) == []


def test_attack_org_name_passphrase_at_init_is_refused(run_cli, tmp_path, monkeypatch):
    """`pathshare init` gives the organization's name and contact to the strength check."""
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "Riverbend2026!!")
    code, _out, err = run_cli(
        "--vault", tmp_path / "c.vault", "init", "--org", "Riverbend Community College", "--kind", "college"
    )
    assert code == 1 and "too weak" in err and "organization's name" in err
    assert not (tmp_path / "c.vault").exists()


def test_attack_org_name_passphrase_on_change_is_refused(tmp_path):
    from agreements import WeakPassphrase

    vault = Vault.create(tmp_path / "org.vault", PASS)
    try:
        create_identity(vault, "Riverbend Community College", "college", "ir@riverbend.example")
        with pytest.raises(WeakPassphrase, match="organization's name"):
            vault.change_passphrase("Riverbend2026!!")
    finally:
        vault.close()


def test_strong_passphrase_still_accepted_with_the_name_known(tmp_path):
    vault = Vault.create(
        tmp_path / "org.vault",
        "tidal mango quarry lantern",
        user_inputs=("Riverbend Community College", "ir@riverbend.example"),
    )
    vault.close()
