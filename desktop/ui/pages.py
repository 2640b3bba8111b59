"""This organization's card as a screen of the workspace (the compliance screens live in their own
modules: dashboard_page, agreements_page, partners_page, audit_page)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.widgets import FlowLayout, MessageBar, button, heading, paragraph, scrolling


class MyCardPage(QWidget):
    """This organization's card and fingerprint, with Export."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from desktop.ui.first_run import CardPanel, RolesBox

        self.session = session
        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        outer.addWidget(heading("My organization's card"))
        # Scrolls at 800×600 instead of squeezing the instructions under the sections below them.
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 8, 0)
        scroll = scrolling(body)
        # Nothing here is wider than the page at 800×600 (the fingerprint, the widest, needs ~460 px);
        # a sideways bar only appeared from the wrapped paragraphs' first guess at their height.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll, 1)
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
        # Keys and passphrase: what the command line's identity commands do.
        layout.addWidget(heading("Keys and passphrase", 1.15))
        self.keys_message = MessageBar()
        layout.addWidget(self.keys_message)
        self.passphrase_button = button("Change &passphrase…", "Change the vault's passphrase")
        self.passphrase_button.clicked.connect(lambda: self.change_passphrase())
        self.age_button = button("Save the &decryption key…", "Save the key that opens packages sent to you")
        self.age_button.setToolTip(
            "For opening packages without PathShare (age -d -i FILE): anyone with this file can read "
            "every package sent to your organization. Keep it like the vault."
        )
        self.age_button.clicked.connect(lambda: self.export_age_key())
        keys = FlowLayout()
        keys.addWidget(self.passphrase_button)
        keys.addWidget(self.age_button)
        layout.addLayout(keys)
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
                self.panel.message.show_problem(exc)

    def store_roles(self) -> bool:
        """Save the ticks to the vault (audited by the library)."""
        from agreements import set_organization_roles
        from deid.errors import PathShareError

        try:
            set_organization_roles(self.session.vault, self.roles.chosen())
        except PathShareError as exc:
            self.roles_message.show_problem(exc)
            return False
        self.roles_message.show_info("Saved. PathShare will open on the screen that fits next time.")
        return True

    def change_passphrase(self, current: str | None = None, new: str | None = None) -> bool:
        """Re-encrypt the vault under a new passphrase (the library checks its strength and audits it);
        asks for the current one first and the new one twice."""
        from deid.errors import PathShareError

        if current is None or new is None:
            dialog = PassphraseDialog(self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return False
            current, new = dialog.current.text(), dialog.new.text()
        if current != self.session.passphrase:
            self.keys_message.show_error("That is not the vault's current passphrase; nothing was changed.")
            return False
        try:
            self.session.vault.change_passphrase(new)
        except PathShareError as exc:
            self.keys_message.show_problem(exc)
            return False
        self.session.passphrase = new  # the background jobs open the vault with it from now on
        self.keys_message.show_info("The vault's passphrase is changed; use the new one from now on.")
        return True

    def export_age_key(self, path: str | None = None) -> bool:
        """Save the organization's age identity (mode 0600) for the standard age tool; audited."""
        from agreements import export_age_identity
        from deid.errors import PathShareError
        from desktop.ui.partners_page import ask_save

        path = path or ask_save(
            self,
            self.session,
            "card",
            "Save the decryption key",
            "pathshare-age-identity.txt",
            "Key file (*.txt)",
        )
        if not path:
            return False
        try:
            export_age_identity(self.session.vault, path)
        except PathShareError as exc:
            self.keys_message.show_problem(exc)
            return False
        self.keys_message.show_info(
            f"Saved the decryption key to {path} (readable by you only). Anyone with it can open every "
            "package sent to you: keep it safe, delete it when done."
        )
        return True


class PassphraseDialog(QDialog):
    """The current passphrase, and the new one twice."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Change the passphrase")
        layout = QVBoxLayout(self)
        layout.addWidget(
            paragraph("The vault is re-encrypted under the new passphrase. It cannot be recovered if lost.")
        )
        form = QFormLayout()
        self.current, self.new, self.again = (QLineEdit() for _ in range(3))
        for w, label in ((self.current, "Current passphrase"), (self.new, "New passphrase"),
                         (self.again, "New passphrase again")):
            w.setEchoMode(QLineEdit.EchoMode.Password)
            w.setAccessibleName(label)
            form.addRow(f"{label}:", w)
        layout.addLayout(form)
        self.message = MessageBar()
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _accept(self) -> None:
        if self.new.text() != self.again.text():
            self.message.show_error("The two new passphrases differ.")
            return
        self.accept()
