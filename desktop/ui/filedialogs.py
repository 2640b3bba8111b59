"""File dialogs that only list a folder, never open its files.

Qt's dialogs (and the platform's, which run inside our process) read files to choose their icons and
types: the vault, its ``-wal`` and ``-shm`` included. Closing such a file drops every POSIX lock this
process holds on it. PathShare's own vault lock does not depend on those (see agreements' vault lock),
but nothing here needs to read a file to list it: these dialogs are Qt's own widgets with an icon
provider that looks only at whether an entry is a folder.
"""

from __future__ import annotations

from PySide6.QtCore import QFileInfo
from PySide6.QtGui import QAbstractFileIconProvider, QIcon
from PySide6.QtWidgets import QApplication, QFileDialog, QStyle, QWidget


class QuietIconProvider(QAbstractFileIconProvider):
    """Folder or file icon, from the directory listing alone (no MIME sniffing, no reading)."""

    def icon(self, what):  # type: ignore[no-untyped-def, override]
        style = QApplication.style()
        if isinstance(what, QFileInfo):
            kind = QStyle.StandardPixmap.SP_DirIcon if what.isDir() else QStyle.StandardPixmap.SP_FileIcon
            return style.standardIcon(kind)
        return QIcon(style.standardIcon(QStyle.StandardPixmap.SP_FileIcon))

    def type(self, info: QFileInfo) -> str:  # type: ignore[override]
        return "Folder" if info.isDir() else "File"


_PROVIDER: QuietIconProvider | None = None


def make_dialog(parent: QWidget | None, caption: str, folder: str, filters: str = "") -> QFileDialog:
    """A Qt (not native) file dialog whose listing never opens a file."""
    global _PROVIDER
    dialog = QFileDialog(parent, caption, folder, filters)
    dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
    dialog.setOption(QFileDialog.Option.DontUseCustomDirectoryIcons, True)
    if _PROVIDER is None:
        _PROVIDER = QuietIconProvider()
    dialog.setIconProvider(_PROVIDER)
    return dialog


def _run(dialog: QFileDialog) -> str:
    return dialog.selectedFiles()[0] if dialog.exec() and dialog.selectedFiles() else ""


def open_file_name(parent: QWidget | None, caption: str, folder: str, filters: str = "") -> tuple[str, str]:
    """Like ``QFileDialog.getOpenFileName``."""
    dialog = make_dialog(parent, caption, folder, filters)
    dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
    return _run(dialog), dialog.selectedNameFilter()


def save_file_name(parent: QWidget | None, caption: str, folder: str, filters: str = "") -> tuple[str, str]:
    """Like ``QFileDialog.getSaveFileName``. It does not ask before replacing a file: the caller asks
    once, where the file is written (``replace_choice``), because the library must be told ``force``."""
    dialog = make_dialog(parent, caption, folder, filters)
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setOption(QFileDialog.Option.DontConfirmOverwrite, True)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    return _run(dialog), dialog.selectedNameFilter()


def existing_directory(parent: QWidget | None, caption: str, folder: str) -> str:
    """Like ``QFileDialog.getExistingDirectory``."""
    dialog = make_dialog(parent, caption, folder)
    dialog.setFileMode(QFileDialog.FileMode.Directory)
    dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
    return _run(dialog)
