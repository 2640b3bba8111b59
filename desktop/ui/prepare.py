"""Prepare (placeholder while the flow is written)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.ui.widgets import heading


class PrepareScreen(QWidget):
    def __init__(self, workspace: Any) -> None:
        super().__init__()
        self.workspace = workspace
        layout = QVBoxLayout(self)
        layout.addWidget(heading("Prepare a package"))
        layout.addStretch(1)

    def release(self) -> None:
        """Drop preview tables."""
