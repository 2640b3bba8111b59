"""Issue 14's "Bad input and faults": a full disk during an append, a vault on a read-only medium, a
vault copied while open, the -wal deleted by hand, two apps on one vault. One sentence each, and nothing
that was confirmed is lost. The disk is really full (a small tmpfs, when this user may mount one) or
the file size limit is reached (RLIMIT_FSIZE, anywhere)."""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import agreements._vault as vault_module
import agreements._vaultlock as lock_module
from agreements import Vault, VaultError, VaultInUse, create_identity

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)
    lock_module.identify_vault_user("program")


def _new_vault(path: Path) -> Path:
    with Vault.create(path, PASS) as v:
        create_identity(v, "Lakeview USD", "district")
    return path


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _fork(target) -> tuple[int, int]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            target(w)
        finally:
            os._exit(0)
    os.close(w)
    return pid, r


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def _append_until_it_fails(path: Path, limit_bytes: int | None) -> tuple[list[int], str]:
    """A child appends 8 KB entries until an append fails; returns (confirmed i's, the error's text)."""

    def child(w: int) -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        vault = Vault.open(path, PASS)
        if limit_bytes is not None:
            used = sum(os.path.getsize(p) for p in path.parent.iterdir() if p.is_file())
            resource.setrlimit(resource.RLIMIT_FSIZE, (used + limit_bytes, resource.RLIM_INFINITY))
        for i in range(10_000):
            try:
                vault.audit.append("test.fill", details={"i": i, "pad": "x" * 8000})
            except VaultError as exc:
                os.write(w, f"error {exc}\n".encode())
                break
            os.write(w, f"ok {i}\n".encode())
        vault.close()

    pid, r = _fork(child)
    text = _read_all(r)
    os.waitpid(pid, 0)
    oks = [int(line[3:]) for line in text.splitlines() if line.startswith("ok ")]
    errors = [line[6:] for line in text.splitlines() if line.startswith("error ")]
    assert errors, text[-300:]
    return oks, errors[0]


@pytest.mark.parametrize("how", ["file size limit", "full tmpfs"])
def test_full_disk_during_appends_is_one_sentence_and_loses_nothing_confirmed(tmp_path, how):
    folder = tmp_path / "disk"
    if how == "full tmpfs":
        if not _mount_tmpfs(folder, "3m"):
            pytest.skip("this user cannot mount a small tmpfs here; the file size limit case covers it")
    else:
        folder.mkdir()
    try:
        path = _new_vault(folder / "v.vault")
        oks, error = _append_until_it_fails(path, 400_000 if how == "file size limit" else None)
        assert len(oks) >= 10  # it wrote a while before the disk was full
        assert "\n" not in error and "Traceback" not in error
        assert error in (
            f"The disk holding the vault at {path} is full; nothing more was written.",
            f"The vault at {path} could not be read or written (a disk error).",
        ), error
        with Vault.open(path, PASS) as vault:
            assert vault.audit.verify().ok
            got = [e.details["i"] for e in vault.audit.entries(action="test.fill")]
        assert got[: len(oks)] == oks and len(got) - len(oks) in (0, 1)
    finally:
        if how == "full tmpfs":
            _umount(folder)


def test_vault_on_a_read_only_medium_is_one_sentence(tmp_path):
    folder = tmp_path / "stick"
    mounted = _mount_tmpfs(folder, "8m")
    try:
        path = _new_vault(folder / "v.vault")
        with Vault.open(path, PASS) as v:  # it has been opened before: its lock file is there
            v.audit.append("test.before")
        fresh = _new_vault(folder / "never-opened.vault")
        (folder / "never-opened.vault.lock").unlink()
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:  # not root: the folder and the files are made read-only instead
            for p in folder.iterdir():
                p.chmod(0o400)
            folder.chmod(0o500)
        for vault_path in (path, fresh):
            with pytest.raises(VaultError) as caught:
                Vault.open(vault_path, PASS)
            assert str(caught.value) == (
                f"The vault at {vault_path} is on a read-only disk or in a read-only folder; "
                "copy it to a folder you can write to and open it there."
            )
    finally:
        if mounted:
            _umount(folder)
        else:
            folder.chmod(0o700)


def test_a_copy_taken_while_open_is_a_consistent_older_vault_and_the_original_keeps_everything(tmp_path):
    path = _new_vault(tmp_path / "v.vault")
    vault = Vault.open(path, PASS)
    for i in range(20):
        vault.audit.append("test.n", details={"i": i})
    copy = tmp_path / "copy.vault"
    shutil.copy(path, copy)  # only the main file: the last commits are in -wal beside the original
    with_wal = tmp_path / "copy-with-wal.vault"
    shutil.copy(path, with_wal)
    shutil.copy(f"{path}-wal", f"{with_wal}-wal")
    vault.audit.append("test.n", details={"i": 20})
    vault.close()
    with Vault.open(copy, PASS) as c:
        assert c.audit.verify().ok
        older = [e.details["i"] for e in c.audit.entries(action="test.n")]
    assert older == list(range(len(older)))
    with Vault.open(with_wal, PASS) as c:
        assert [e.details["i"] for e in c.audit.entries(action="test.n")] == list(range(20))
    with Vault.open(path, PASS) as v:
        assert [e.details["i"] for e in v.audit.entries(action="test.n")] == list(range(21))
        assert v.audit.verify().ok


def test_wal_deleted_by_hand_while_open_loses_nothing_even_when_the_process_is_then_killed(tmp_path):
    path = _new_vault(tmp_path / "v.vault")

    def child(w: int) -> None:
        vault = Vault.open(path, PASS)
        for i in range(5):
            vault.audit.append("test.n", details={"i": i})
            os.write(w, f"ok {i}\n".encode())
        os.unlink(f"{path}-wal")  # someone "cleans up" the folder
        for i in range(5, 10):
            vault.audit.append("test.n", details={"i": i})
            os.write(w, f"ok {i}\n".encode())
        os.write(w, b"done\n")
        time.sleep(60)  # killed here, without closing

    pid, r = _fork(child)
    text = ""
    deadline = time.monotonic() + 30
    while "done" not in text and time.monotonic() < deadline:
        text += os.read(r, 4096).decode()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(r)
    assert "done" in text
    assert os.path.exists(f"{path}-wal")  # a new -wal under the real name
    with Vault.open(path, PASS) as vault:
        assert [e.details["i"] for e in vault.audit.entries(action="test.n")] == list(range(10))
        assert vault.audit.verify().ok


def test_a_second_app_on_the_same_vault_says_who_has_it_in_the_window(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QSettings, Qt

    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    path = _new_vault(tmp_path / "v.vault")

    def first_app(w: int) -> None:
        lock_module.identify_vault_user("app")
        Vault.open(path, PASS)
        os.write(w, b"open\n")
        time.sleep(60)

    pid, r = _fork(first_app)
    try:
        assert os.read(r, 5) == b"open\n"
        monkeypatch.setattr(lock_module, "DEFAULT_WAIT", 0.5)
        qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        session = Session(vault_path=path, settings=Settings(qs), runner=SyncRunner(), synchronous=True)
        window = MainWindow(session)
        qtbot.addWidget(window)
        window.show()
        window.unlock.passphrase.setText(PASS)
        qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
        qtbot.waitUntil(lambda: window.unlock.message.isVisible(), timeout=10_000)
        assert window.unlock.message.label.text() == (
            f"This vault is open in PathShare (process {pid}); close it there first."
        )
        assert window.workspace is None and session.vault is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
    # The first app is gone: the second one opens the vault.
    window.unlock.passphrase.setText(PASS)
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=10_000)
    with pytest.raises(VaultInUse):  # and now it is the one that has it
        _other_process_opens(path)
    window.close()


def _other_process_opens(path: Path) -> None:
    def child(w: int) -> None:
        try:
            Vault.open(path, PASS, wait=0.3).close()
            os.write(w, b"opened")
        except VaultInUse as exc:
            os.write(w, str(exc).encode())

    pid, r = _fork(child)
    answer = _read_all(r)
    os.waitpid(pid, 0)
    if answer != "opened":
        raise VaultInUse(answer)
