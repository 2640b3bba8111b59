"""The platform seam (deid/_platform.py), every branch exercised on Linux (issue 17 item 9).

Windows' and macOS' own APIs are stood in for (msvcrt, advapi32, the folder lookups), or the branch is
one that needs none (no chmod, no fadvise, no malloc_trim, no folder fsync). What this proves: each
branch does what it says given the platform's contract. What it does not: that the contract holds on a
real Windows or macOS machine — the suite has never run there (README's per-platform table).
"""

from __future__ import annotations

import ctypes
import errno
import os
import pwd
import stat
import sys
from pathlib import Path

import pytest

from deid import _platform as seam

# ------------------------------------------------------------------------------------- file locks


def test_posix_lock_is_per_open_file_description(tmp_path):
    path = tmp_path / "x.lock"
    a = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    b = os.open(path, os.O_RDWR)
    try:
        assert seam.try_lock_file(a, "linux")
        assert not seam.try_lock_file(b, "darwin")  # another description, even in this process
        os.close(os.open(path, os.O_RDONLY))  # closing a third descriptor does not release it
        assert not seam.try_lock_file(b, "linux")
        seam.unlock_file(a, "linux")
        assert seam.try_lock_file(b, "linux")
    finally:
        os.close(a)
        os.close(b)


class _FakeMsvcrt:
    """msvcrt.locking's contract: LK_NBLCK fails with EACCES when another handle holds the bytes."""

    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self, fail_with: int | None = None) -> None:
        self.owner: dict[int, int] = {}
        self.calls: list[tuple[int, int, int, int]] = []
        self.fail_with = fail_with

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        self.calls.append((fd, mode, offset, nbytes))
        if self.fail_with is not None:
            raise OSError(self.fail_with, os.strerror(self.fail_with))
        if mode == self.LK_NBLCK:
            if self.owner.get(offset, fd) != fd:
                raise OSError(errno.EACCES, "Permission denied")
            self.owner[offset] = fd
        elif mode == self.LK_UNLCK:
            self.owner.pop(offset, None)


def test_windows_lock_takes_one_far_byte_and_reports_a_held_lock_as_false(tmp_path, monkeypatch):
    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    path = tmp_path / "x.lock"
    a = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    b = os.open(path, os.O_RDWR)
    try:
        assert seam.try_lock_file(a, "win32")
        assert not seam.try_lock_file(b, "win32")
        seam.unlock_file(a, "win32")
        assert seam.try_lock_file(b, "win32")
    finally:
        os.close(a)
        os.close(b)
    # Always the same single byte, far beyond the holder's note (Windows region locks are mandatory).
    assert {(offset, n) for _, _, offset, n in fake.calls} == {(seam.WINDOWS_LOCK_OFFSET, 1)}


def test_windows_lock_failure_other_than_held_is_raised(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "msvcrt", _FakeMsvcrt(fail_with=errno.EBADF))
    fd = os.open(tmp_path / "x.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as info:
            seam.try_lock_file(fd, "win32")
        assert info.value.errno == errno.EBADF
    finally:
        os.close(fd)


def test_the_vault_lock_goes_through_the_seam(tmp_path, monkeypatch):
    """The vault's own lock uses the seam: with Windows injected, opening a vault takes msvcrt's byte."""
    from partners_setup import cheap_kdf

    from agreements import Vault

    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    real = seam.is_windows
    monkeypatch.setattr(seam, "is_windows", lambda system=None: True if system is None else real(system))
    monkeypatch.setattr(seam, "windows_account_name", lambda: "akim")  # advapi32 is not here
    with cheap_kdf(), Vault.create(tmp_path / "x.vault", "tidal mango quarry lantern") as vault:
        assert {e.user for e in vault.audit.entries()} == {"akim"}  # the Windows account branch, too
    modes = [mode for _, mode, offset, _ in fake.calls if offset == seam.WINDOWS_LOCK_OFFSET]
    assert fake.LK_NBLCK in modes and fake.LK_UNLCK in modes


def test_open_flags_are_binary_and_not_inherited_on_windows_only(monkeypatch):
    monkeypatch.setattr(os, "O_BINARY", 0x8000, raising=False)
    monkeypatch.setattr(os, "O_NOINHERIT", 0x80, raising=False)
    assert seam.open_flags(system="win32") == 0x8000
    assert seam.open_flags(inherit=False, system="win32") == 0x8080
    assert seam.open_flags(inherit=False, system="linux") == 0
    assert seam.open_flags(inherit=False, system="darwin") == 0


# --------------------------------------------------------------------------- writing and memory


def test_writeback_advice_on_linux_only(tmp_path, monkeypatch):
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, off, n, advice: calls.append((off, n, advice)),
                        raising=False)  # fmt: skip
    monkeypatch.setattr(os, "POSIX_FADV_DONTNEED", 4, raising=False)
    advise = seam.writeback_advisor("linux")
    assert advise is not None
    with open(tmp_path / "f", "wb") as fh:
        advise(fh.fileno(), 0, 10)
    assert calls == [(0, 10, 4)]
    assert seam.writeback_advisor("darwin") is None and seam.writeback_advisor("win32") is None


def test_writeback_advice_is_a_hint_a_file_system_may_refuse(tmp_path, monkeypatch):
    def refuse(*_args):
        raise OSError(errno.ENOSYS, "not supported")

    monkeypatch.setattr(os, "posix_fadvise", refuse, raising=False)
    monkeypatch.setattr(os, "POSIX_FADV_DONTNEED", 4, raising=False)
    with open(tmp_path / "f", "wb") as fh:
        seam.writeback_advisor("linux")(fh.fileno(), 0, 10)  # no error


def test_early_writeback_uses_the_seam(tmp_path, monkeypatch):
    """Sealing's writer asks the seam: where it says "none" (macOS, Windows), it only counts."""
    from deid import EarlyWriteback

    monkeypatch.setattr(seam, "writeback_advisor", lambda system=None: None)
    with open(tmp_path / "out.bin", "wb") as fh:
        out = EarlyWriteback(fh, window=16)
        assert out.write(b"x" * 100) == 100
    assert (tmp_path / "out.bin").read_bytes() == b"x" * 100


def test_heap_trimmer_is_glibc_on_linux_and_nothing_elsewhere():
    assert seam.heap_trimmer("darwin") is None and seam.heap_trimmer("win32") is None
    libc = seam.heap_trimmer("linux")
    assert libc is not None and hasattr(libc, "malloc_trim")  # this machine runs glibc


def test_permissions_are_set_on_posix_and_left_to_the_profile_folder_on_windows(tmp_path, monkeypatch):
    f = tmp_path / "secret"
    f.write_bytes(b"s")
    os.chmod(f, 0o644)
    seam.restrict_permissions(f, 0o600, "linux")
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    os.chmod(f, 0o644)
    calls: list[object] = []
    monkeypatch.setattr(os, "chmod", lambda *a, **k: calls.append(a))
    seam.restrict_permissions(f, 0o600, "win32")
    assert calls == []  # Windows: chmod would only set the read-only flag


def test_the_vault_file_is_private_through_the_seam(tmp_path):
    from partners_setup import cheap_kdf

    from agreements import Vault

    with cheap_kdf(), Vault.create(tmp_path / "x.vault", "tidal mango quarry lantern"):
        pass
    assert stat.S_IMODE((tmp_path / "x.vault").stat().st_mode) == 0o600


def test_folder_sync_on_posix_and_not_on_windows(tmp_path, monkeypatch):
    assert seam.sync_folder(tmp_path, "linux") is True
    assert seam.sync_folder(tmp_path / "gone", "linux") is False  # a refusal is not an error
    opened: list[object] = []
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a))
    assert seam.sync_folder(tmp_path, "win32") is False and opened == []


# ------------------------------------------------------------------------------------- folders


def test_default_vault_folder_per_platform(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert seam.user_data_folder("linux") == tmp_path / "xdg" / "PathShare"
    monkeypatch.delenv("XDG_DATA_HOME")  # platformdirs honours it on macOS too
    assert seam.user_data_folder("darwin") == Path.home() / "Library" / "Application Support" / "PathShare"
    # Windows: %LOCALAPPDATA% (not the roaming profile: the vault stays on this computer). platformdirs
    # asks Windows' shell for the folder; its documented override stands in for it here.
    monkeypatch.setenv("WIN_PD_OVERRIDE_LOCAL_APPDATA", r"C:\Users\akim\AppData\Local")
    monkeypatch.setenv("WIN_PD_OVERRIDE_APPDATA", r"C:\Users\akim\AppData\Roaming")
    assert str(seam.user_data_folder("win32")).replace("/", "\\") == r"C:\Users\akim\AppData\Local\PathShare"


def test_the_default_vault_path_comes_from_the_seam(monkeypatch, tmp_path):
    from agreements import default_vault_path

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_vault_path() == tmp_path / "xdg" / "PathShare" / "pathshare.vault"


def test_documents_folder_or_home(monkeypatch, tmp_path):
    docs = tmp_path / "Documents"
    monkeypatch.setenv("XDG_DOCUMENTS_DIR", str(docs))
    assert seam.documents_folder("linux") == Path.home()  # not there: home
    docs.mkdir()
    assert seam.documents_folder("linux") == docs
    # Windows: the shell's Documents folder (its documented override stands in for the shell), which
    # does not exist on this machine, so home.
    monkeypatch.setenv("WIN_PD_OVERRIDE_PERSONAL", r"C:\Users\akim\Documents")
    assert seam.documents_dir("win32").replace("/", "\\") == r"C:\Users\akim\Documents"
    assert seam.documents_folder("win32") == Path.home()
    monkeypatch.delenv("XDG_DOCUMENTS_DIR")
    assert seam.documents_dir("darwin") == str(Path.home() / "Documents")


# ---------------------------------------------------------------------------- file associations


def test_file_association_per_platform():
    mac = seam.file_association("darwin")
    assert mac.delivery == "open event" and "Info.plist" in mac.registered_by
    linux = seam.file_association("linux")
    assert linux.delivery == "argument" and "pathshare.desktop" in linux.registered_by
    win = seam.file_association("win32")
    assert win.delivery == "argument" and win.registered_by.startswith("nothing yet")
    root = Path(__file__).resolve().parent.parent
    # What each says registers the type is in the repository.
    assert (root / "packaging/linux/pathshare.desktop").is_file()
    assert (root / "packaging/linux/pathshare-mime.xml").is_file()
    assert "CFBundleDocumentTypes" in (root / "packaging/pathshare.spec").read_text(encoding="utf-8")


# ----------------------------------------------------------------------- the user and the screen


def test_account_name_posix_branch_reads_the_account_database(monkeypatch):
    monkeypatch.setenv("LOGNAME", "jsmith")
    assert seam.account_name("linux") == pwd.getpwuid(os.getuid()).pw_name
    assert seam.posix_account_name() == pwd.getpwuid(os.getuid()).pw_name


def test_account_name_posix_branch_without_a_passwd_entry(monkeypatch):
    """A uid the account database does not know (some containers) is logged as its number."""

    def no_entry(uid: int) -> None:
        raise KeyError(uid)

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setenv("LOGNAME", "jsmith")
    assert seam.posix_account_name() == f"uid {os.getuid()}"


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
    assert seam.windows_account_name(dll) == "akim"
    assert dll.calls == 1


def test_account_name_windows_branch_failure_is_unknown_not_the_environment(monkeypatch):
    monkeypatch.setenv("USERNAME", "jsmith")
    assert seam.windows_account_name(_FakeAdvapi32(None)) == "unknown"


def test_account_name_dispatches_windows_to_getusernamew(monkeypatch):
    monkeypatch.setattr(seam, "windows_account_name", lambda: "from-windows")
    monkeypatch.setattr(seam, "posix_account_name", lambda: "from-posix")
    assert seam.account_name("win32") == "from-windows"
    assert seam.account_name("darwin") == "from-posix"
    assert seam.account_name("linux") == "from-posix"


def test_the_audit_log_records_the_seams_account(monkeypatch, tmp_path):
    from partners_setup import cheap_kdf

    from agreements import Vault

    monkeypatch.setattr(seam, "posix_account_name", lambda: "akim-from-the-seam")
    with cheap_kdf(), Vault.create(tmp_path / "x.vault", "tidal mango quarry lantern") as vault:
        vault.audit.append("test.event")
        assert {e.user for e in vault.audit.entries()} == {"akim-from-the-seam"}


@pytest.mark.parametrize(
    ("environ", "system", "missing"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "freebsd14", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_display_missing_per_platform(environ, system, missing):
    assert seam.display_missing(environ, system) is missing


def test_a_package_double_clicked_on_macos_reaches_the_window_as_an_open_event(qtbot, tmp_path):
    """macOS hands a double-clicked .age to the running app as a QFileOpenEvent, not as an argument:
    the app watches for it there (and only there) and the window takes the package — shown on Receive
    once unlocked."""
    from PySide6.QtCore import QCoreApplication, QSettings
    from PySide6.QtGui import QFileOpenEvent

    from desktop.app import watch_file_open_events
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(Session(vault_path=tmp_path / "new.vault", settings=Settings(qs), runner=SyncRunner(),
                                synchronous=True))  # fmt: skip
    qtbot.addWidget(window)
    app = QCoreApplication.instance()
    assert watch_file_open_events(app, window, platform="linux") is None  # an argument there
    assert watch_file_open_events(app, window, platform="win32") is None
    watcher = watch_file_open_events(app, window, platform="darwin")
    assert watcher is not None
    try:
        package = str(tmp_path / "from-lakeview.age")
        QCoreApplication.sendEvent(app, QFileOpenEvent(package))
        assert window.open_package == package  # not unlocked yet: opened after the unlock
    finally:
        app.removeEventFilter(watcher)


def test_whether_a_process_runs_is_never_asked_with_a_signal_on_windows(monkeypatch):
    """POSIX: kill(pid, 0) tells a finished process from a running one. Windows: signal 0 is CTRL_C_EVENT,
    so nothing is sent and the answer is 'may be running' (what a run left is then left alone)."""
    import subprocess
    import sys

    from deid._platform import process_running

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert process_running(os.getpid(), "linux") and not process_running(int(done.stdout), "linux")
    sent = []
    monkeypatch.setattr(os, "kill", lambda *a: sent.append(a))
    assert process_running(int(done.stdout), "win32") and sent == []
