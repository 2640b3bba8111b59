"""One process at a time has a vault open (agreements/_vaultlock.py): the lock survives whatever else the
holder does to the vault's files, a second process waits or is told who has the vault, and the app gives
the vault up while idle and to its own background job.

Children are forks of the test process (cheap KDF via ``_TEST_KDF_ITER``); each reports over a pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import pytest

import agreements._vault as vault_module
import agreements._vaultlock as lock_module
from agreements import Vault, VaultError, VaultInUse

PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture(autouse=True)
def as_a_program():
    lock_module.identify_vault_user("program")  # an earlier in-process CLI run said "command"
    yield
    lock_module.identify_vault_user("program")


@pytest.fixture
def vault_file(tmp_path):
    from agreements import create_identity

    path = tmp_path / "v.vault"
    with Vault.create(path, PASS) as v:
        create_identity(v, "Lakeview USD", "district")
    return path


def _child(target) -> tuple[int, int]:
    """Fork ``target(write_fd)``; return (pid, read end of its pipe)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        code = 1
        try:
            target(w)
            code = 0
        except BaseException as exc:  # report, never run the parent's pytest in the child
            with contextlib.suppress(OSError):
                os.write(w, f"!{type(exc).__name__}: {exc}\n".encode())
        finally:
            os._exit(code)
    os.close(w)
    return pid, r


def _read_line(fd: int, timeout: float = 30.0) -> str:
    import select

    buf = b""
    deadline = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError("the child did not answer")
        chunk = os.read(fd, 1)
        if not chunk:
            break
        buf += chunk
    return buf.decode().strip()


def _hold_in_child(path, program: str, release_after: float | None = None):
    """A child that opens the vault as ``program`` and says so; it closes after ``release_after`` s or
    when killed."""

    def hold(w: int) -> None:
        lock_module.identify_vault_user(program)
        vault = Vault.open(path, PASS)
        os.write(w, b"open\n")
        if release_after is None:
            while True:
                time.sleep(1)
        time.sleep(release_after)
        vault.audit.append("test.child", details={"program": program})
        vault.close()

    pid, r = _child(hold)
    assert _read_line(r) == "open"
    return pid, r


def _reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _close_every_file_of(path) -> int:
    """What a file dialog, an icon provider or a thumbnailer does: open and close the vault's files
    (and take and drop a POSIX lock on them, which releases every lock of the process on the file)."""
    import fcntl

    done = 0
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}.lock"):
        try:
            fd = os.open(name, os.O_RDWR)
        except OSError:
            continue
        with contextlib.suppress(OSError):
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.lockf(fd, fcntl.LOCK_UN)
        os.read(fd, 100)
        os.close(fd)
        with open(name, "rb") as fh:
            fh.read(16)
        done += 1
    return done


def test_lock_survives_the_holder_closing_the_vaults_files(vault_file):
    vault = Vault.open(vault_file, PASS)
    vault.audit.append("test.before")
    assert _close_every_file_of(vault_file) >= 3  # vault, -wal, -shm and .lock were all there

    def try_open(w: int) -> None:
        try:
            Vault.open(vault_file, PASS, wait=0.3)
        except VaultInUse as exc:
            os.write(w, f"{exc}\n".encode())
        else:
            os.write(w, b"opened\n")

    pid, r = _child(try_open)
    answer = _read_line(r)
    os.waitpid(pid, 0)
    assert answer == (
        f"This vault is in use by another program (process {os.getpid()}); try again when it has finished."
    )
    vault.audit.append("test.after")  # still ours, still the same -wal
    vault.close()
    with Vault.open(vault_file, PASS) as again:
        assert [e.action for e in again.audit.entries()][-2:] == ["test.before", "test.after"]
        assert again.audit.verify().ok


def test_the_app_is_named_in_one_sentence(vault_file, run_cli, monkeypatch):
    pid, _ = _hold_in_child(vault_file, "app")
    try:
        monkeypatch.setattr(lock_module, "DEFAULT_WAIT", 0.5)
        started = time.monotonic()
        with pytest.raises(VaultInUse) as caught:
            Vault.open(vault_file, PASS)
        assert str(caught.value) == f"This vault is open in PathShare (process {pid}); close it there first."
        assert caught.value.pid == pid and time.monotonic() - started < 5
        monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
        code, out, err = run_cli("--vault", str(vault_file), "audit", "verify")
        assert code == 1 and out == ""
        assert err.strip().splitlines()[-1] == (
            f"pathshare: This vault is open in PathShare (process {pid}); close it there first."
        )
    finally:
        _reap(pid)


def test_a_second_command_waits_for_the_first_and_both_entries_are_kept(vault_file, run_cli, monkeypatch):
    pid, _ = _hold_in_child(vault_file, "command", release_after=1.5)
    try:
        monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
        started = time.monotonic()
        code, _, err = run_cli("--vault", str(vault_file), "audit", "checkpoint")
        waited = time.monotonic() - started
        assert code == 0, err
        # It said why it was waiting, naming the other command, and then did its work.
        said = f"pathshare: Waiting for the vault: it is in use by another pathshare command (process {pid})."
        assert said in err
        assert waited >= 1.0
    finally:
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with Vault.open(vault_file, PASS) as vault:
        actions = [e.action for e in vault.audit.entries()]
        assert vault.audit.verify().ok
    assert actions.index("test.child") < actions.index("audit.checkpoint")


def test_a_command_that_keeps_the_vault_is_named_after_the_wait(vault_file):
    pid, _ = _hold_in_child(vault_file, "job")
    try:
        started = time.monotonic()
        expected = rf"^This vault is in use by a PathShare background job \(process {pid}\); try again"
        with pytest.raises(VaultInUse, match=expected + r" when it has finished\.$"):
            Vault.open(vault_file, PASS, wait=0.6)
        assert 0.5 <= time.monotonic() - started < 5
    finally:
        _reap(pid)
    # The holder was killed: the kernel dropped its lock, nothing stale is left to wait for.
    with Vault.open(vault_file, PASS, wait=0) as vault:
        assert vault.audit.verify().ok


def test_one_process_may_open_a_vault_twice_but_a_forked_child_may_not_use_its_lock(vault_file):
    a = Vault.open(vault_file, PASS)
    b = Vault.open(vault_file, PASS, wait=0)  # same process: shares the lock
    b.audit.append("test.b")
    b.close()

    def try_open(w: int) -> None:
        try:
            Vault.open(vault_file, PASS, wait=0.2)
        except VaultInUse:
            os.write(w, b"refused\n")
        else:
            os.write(w, b"opened\n")

    pid, r = _child(try_open)  # forked while `a` is open: it inherits our lock's file description
    assert _read_line(r) == "refused"
    os.waitpid(pid, 0)
    a.audit.append("test.a")  # the child closing its copies did not release ours
    pid, r = _child(try_open)
    assert _read_line(r) == "refused"
    os.waitpid(pid, 0)
    a.close()
    pid, r = _child(try_open)
    assert _read_line(r) == "opened"
    os.waitpid(pid, 0)


def test_suspend_lends_the_vault_to_another_process_and_the_next_read_takes_it_back(vault_file):
    vault = Vault.open(vault_file, PASS)
    vault.audit.append("test.mine")
    assert not vault.suspend(idle_for=60)  # just used: an idle timer leaves it
    assert vault.suspend()
    assert not vault.closed

    def write(w: int) -> None:
        with Vault.open(vault_file, PASS, wait=5) as other:
            other.audit.append("test.lent")
        os.write(w, b"done\n")

    pid, r = _child(write)
    assert _read_line(r) == "done"
    os.waitpid(pid, 0)
    # The next use re-opens (with the raw key: no key derivation) and sees what the other process wrote.
    assert [e.action for e in vault.audit.entries()][-2:] == ["test.mine", "test.lent"]
    vault.audit.append("test.mine_again")
    assert vault.audit.verify().ok
    # While it is ours again, nobody else gets in.
    with pytest.raises(VaultInUse):
        _other_process_opens(vault_file)
    vault.close()
    assert vault.closed
    with pytest.raises(VaultError, match="is closed"):
        vault.db  # noqa: B018 - a closed vault does not re-open itself


def test_resume_names_the_process_that_still_has_the_vault(vault_file):
    vault = Vault.open(vault_file, PASS)
    vault.suspend()
    pid, _ = _hold_in_child(vault_file, "job")
    try:
        with pytest.raises(VaultInUse, match=f"process {pid}"):
            vault.resume(wait=0.3)
    finally:
        _reap(pid)
    vault.resume(wait=5)
    assert vault.audit.verify().ok
    vault.close()


def test_changed_passphrase_is_used_to_take_the_vault_back(vault_file):
    new = "seven purple lanterns drifting"
    vault = Vault.open(vault_file, PASS)
    vault.suspend()  # the raw key of the old passphrase is derived here
    vault.change_passphrase(new)
    vault.suspend()
    assert vault.audit.entries()[-1].action == "vault.passphrase_change"
    vault.close()
    with Vault.open(vault_file, new) as again:
        assert again.audit.verify().ok


def _other_process_opens(path) -> None:
    def try_open(w: int) -> None:
        try:
            Vault.open(path, PASS, wait=0.2).close()
            os.write(w, b"opened\n")
        except VaultInUse as exc:
            os.write(w, f"refused {exc}\n".encode())

    pid, r = _child(try_open)
    answer = _read_line(r)
    os.waitpid(pid, 0)
    if answer.startswith("refused"):
        raise VaultInUse(answer[len("refused "):])


def test_two_threads_of_one_process_share_the_lock(vault_file):
    vaults: list[Vault] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            vaults.append(Vault.open(vault_file, PASS, wait=5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(vaults) == 4
    for v in vaults:
        v.audit.append("test.thread")
        v.close()
    assert not lock_module._HELD  # the last one unlocked the file
    with Vault.open(vault_file, PASS) as v:
        assert len(v.audit.entries(action="test.thread")) == 4
