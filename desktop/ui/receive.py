"""Receive (placeholder while the flow is written)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.ui.widgets import heading


class ReceiveScreen(QWidget):
    def __init__(self, workspace: Any) -> None:
        super().__init__()
        self.workspace = workspace
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Receive a package"))
        layout.addStretch(1)

    def choose_package(self, path: str) -> None:
        """Open ``path``."""

    def pick_package(self) -> None:
        """Ask for a package."""
