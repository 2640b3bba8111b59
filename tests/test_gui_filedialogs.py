"""The app's file dialogs list a folder without opening its files (issue 14 item 1): a dialog that reads
the vault, its -wal and -shm to pick their icons closes them again, which drops the process's POSIX
locks on them. Watched with inotify (IN_OPEN) while the dialog lists a folder holding a vault."""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")

IN_OPEN = 0x20
VAULT_FILES = ("v.vault", "v.vault-wal", "v.vault-shm", "v.vault.lock")


def _opened_while_listing(qtbot, folder, dialog) -> set[str]:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_NONBLOCK)
    assert fd >= 0 and libc.inotify_add_watch(fd, str(folder).encode(), IN_OPEN) >= 0
    try:
        qtbot.addWidget(dialog)
        dialog.show()
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            qtbot.wait(20)
        names: set[str] = set()
        try:
            buf = os.read(fd, 1 << 16)
        except BlockingIOError:
            buf = b""
        i = 0
        while i < len(buf):
            _, _, _, length = struct.unpack_from("iIII", buf, i)
            names.add(buf[i + 16 : i + 16 + length].rstrip(b"\0").decode())
            i += 16 + length
        return names - {""}  # "" is the folder itself being listed
    finally:
        dialog.close()
        os.close(fd)


@pytest.fixture
def folder(tmp_path):
    for name in (*VAULT_FILES, "extract.csv"):
        (tmp_path / name).write_bytes(os.urandom(4096))
    return tmp_path


def test_qts_own_dialog_opens_the_vaults_files_so_the_watch_can_see_it(qtbot, folder):
    from PySide6.QtWidgets import QFileDialog

    dialog = QFileDialog(None, "Plain", str(folder))
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    assert set(VAULT_FILES) & _opened_while_listing(qtbot, folder, dialog)


@pytest.mark.parametrize("mode", ["open", "save", "folder"])
def test_the_apps_dialogs_never_open_a_file_they_list(qtbot, folder, mode):
    from PySide6.QtWidgets import QFileDialog

    from desktop.ui.filedialogs import make_dialog

    dialog = make_dialog(None, "Choose", str(folder), "All files (*)")
    if mode == "save":
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    elif mode == "folder":
        dialog.setFileMode(QFileDialog.FileMode.Directory)
    assert _opened_while_listing(qtbot, folder, dialog) == set()
    assert dialog.testOption(QFileDialog.Option.DontUseNativeDialog)
