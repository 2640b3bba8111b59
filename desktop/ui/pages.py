"""This organization's card as a screen of the workspace (the compliance screens live in their own
modules: dashboard_page, agreements_page, partners_page, audit_page)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from desktop.ui.widgets import MessageBar, button, heading, paragraph


class MyCardPage(QWidget):
    """This organization's card and fingerprint, with Export."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from desktop.ui.first_run import CardPanel, RolesBox

        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("My organization's card"))
        self.panel = CardPanel(session)
        layout.addWidget(self.panel)
        layout.addWidget(heading("What your organization does", 1.15))
        layout.addWidget(
            paragraph("PathShare opens on the screen that fits; every screen stays in the list on the left.")
        )
        self.roles = RolesBox()
        layout.addWidget(self.roles)
        self.roles_message = MessageBar()
        layout.addWidget(self.roles_message)
        self.save_roles = button("&Save", "Save what your organization does")
        self.save_roles.clicked.connect(self.store_roles)
        self.roles.changed.connect(lambda: self.save_roles.setEnabled(bool(self.roles.chosen())))
        row = QHBoxLayout()
        row.addWidget(self.save_roles)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        self._loaded = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            from agreements import our_card
            from deid.errors import PathShareError

            self._loaded = True
            from agreements import organization_roles

            try:
                self.panel.show_card(our_card(self.session.vault))
                self.roles.set_chosen(organization_roles(self.session.vault))
            except PathShareError as exc:
                self.panel.message.show_error(str(exc))

    def store_roles(self) -> bool:
        """Save the ticks to the vault (audited by the library)."""
        from agreements import set_organization_roles
        from deid.errors import PathShareError

        try:
            set_organization_roles(self.session.vault, self.roles.chosen())
        except PathShareError as exc:
            self.roles_message.show_error(str(exc))
            return False
        self.roles_message.show_info("Saved. PathShare will open on the screen that fits next time.")
        return True
