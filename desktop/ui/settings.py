"""Typed settings over QSettings: window state and last folders only — never a passphrase or a key.

Versioned: ``upgrade()`` runs hooks when the stored version is older than :data:`VERSION`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

VERSION = 1
MAX_RECENT = 6  # vaults listed under File → Recent vaults
FOLDER_KEYS = (
    "extract",
    "package_out",
    "package_in",
    "receive_out",
    "card",
    "receipt",
    "link_in",
    "link_out",
    "vaults",
)


class Settings:
    """Window geometry and the last folder used per purpose (``FOLDER_KEYS``)."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._s = qsettings or QSettings("PathShare", "PathShare")
        self.upgrade()

    def upgrade(self) -> None:
        """Bring stored settings up to :data:`VERSION` (no older versions exist yet)."""
        stored = int(self._s.value("settings_version", 0) or 0)
        if stored < VERSION:
            self._s.setValue("settings_version", VERSION)

    def geometry(self) -> QByteArray | None:
        """The main window's saved geometry, if any."""
        value = self._s.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, value: QByteArray) -> None:
        """Remember the main window's geometry."""
        self._s.setValue("window/geometry", value)

    def folder(self, key: str) -> str:
        """The last folder used for ``key`` (the user's Documents folder, else home, when unknown or gone:
        the platform seam's ``documents_folder``)."""
        from deid import documents_folder

        value = str(self._s.value(f"folders/{key}", "") or "")
        return value if value and Path(value).is_dir() else str(documents_folder())

    def set_folder(self, key: str, path: str | Path) -> None:
        """Remember the folder of ``path`` (a file or a folder) for ``key``."""
        p = Path(path)
        self._s.setValue(f"folders/{key}", str(p if p.is_dir() else p.parent))

    def recent_vaults(self) -> list[str]:
        """The vaults opened last, newest first (those still on disk)."""
        value = self._s.value("vaults/recent", []) or []
        paths = [value] if isinstance(value, str) else [str(v) for v in value]
        return [p for p in paths if p and Path(p).is_file()]

    def add_recent_vault(self, path: str | Path) -> None:
        """Put ``path`` first in the recent vaults (at most ``MAX_RECENT``)."""
        p = str(Path(path).resolve())
        paths = [p] + [q for q in self.recent_vaults() if q != p]
        self._s.setValue("vaults/recent", paths[:MAX_RECENT])

    def sync(self) -> None:
        """Write to disk now."""
        self._s.sync()
