"""This organization's card as a screen of the workspace (the compliance screens live in their own
modules: dashboard_page, agreements_page, partners_page, audit_page)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget

from desktop.ui.widgets import heading


class MyCardPage(QWidget):
    """This organization's card and fingerprint, with Export."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from desktop.ui.first_run import CardPanel

        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("My organization's card"))
        self.panel = CardPanel(session)
        layout.addWidget(self.panel)
        layout.addStretch(1)
        self._loaded = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            from agreements._identity import our_card
            from deid.errors import PathShareError

            self._loaded = True
            try:
                self.panel.show_card(our_card(self.session.vault))
            except PathShareError as exc:
                self.panel.message.show_error(str(exc))
