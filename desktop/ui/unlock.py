"""The unlock screen of later runs: one passphrase field; a wrong passphrase is a message here."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLineEdit, QProgressBar, QVBoxLayout, QWidget

from desktop.tasks import emit, run_task
from desktop.ui.widgets import MessageBar, button, heading, paragraph


class UnlockScreen(QWidget):
    """Emits ``unlocked(vault, passphrase)``."""

    unlocked = Signal(object, str)

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        box = QWidget()
        box.setMinimumWidth(440)
        box.setMaximumWidth(560)
        layout = QVBoxLayout(box)
        layout.setSpacing(12)
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setAccessibleName("Passphrase")
        self.passphrase.setPlaceholderText("Passphrase")
        self.show_pass = QCheckBox("&Show passphrase")
        self.show_pass.setAccessibleName("Show passphrase")
        self.show_pass.toggled.connect(
            lambda on: self.passphrase.setEchoMode(
                QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password
            )
        )
        self.unlock = button("&Unlock", "Unlock", default=True)
        self.unlock.clicked.connect(self._unlock)
        self.passphrase.returnPressed.connect(self._unlock)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setAccessibleName("Unlocking")
        self.busy.hide()
        self.message = MessageBar()
        where = paragraph(f"Vault: {session.vault_path}")
        where.setAccessibleName("Vault location")
        layout.addWidget(heading("Unlock PathShare", 1.8))
        layout.addWidget(
            paragraph("Enter the passphrase you chose when PathShare was set up on this computer.")
        )
        layout.addWidget(self.passphrase)
        layout.addWidget(self.show_pass)
        layout.addWidget(self.message)
        layout.addWidget(self.busy)
        layout.addWidget(self.unlock, 0, Qt.AlignmentFlag.AlignRight)
        layout.addWidget(where)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        # Centred by stretches, not by an alignment flag: an aligned item gets only its size hint's
        # height, so a two-line message (a wrong passphrase) was cut to one line.
        centre = QHBoxLayout()
        centre.addStretch(1)
        centre.addWidget(box, 3)
        centre.addStretch(1)
        outer.addLayout(centre)
        outer.addStretch(2)

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.passphrase.setFocus()

    def _unlock(self) -> None:
        if not self.unlock.isEnabled():
            return
        from agreements import Vault

        passphrase = self.passphrase.text()
        if not passphrase:
            self.message.show_error("Enter your passphrase.")
            return
        path = self.session.vault_path
        self.message.clear()
        self.unlock.setEnabled(False)
        self.busy.show()

        def done(vault: Any) -> None:
            self.busy.hide()
            self.unlock.setEnabled(True)
            self.passphrase.clear()
            emit(self.unlocked, vault, passphrase)

        def failed(error: Exception) -> None:
            self.busy.hide()
            self.unlock.setEnabled(True)
            self.message.show_problem(error)
            self.passphrase.selectAll()
            self.passphrase.setFocus()

        run_task(lambda: Vault.open(path, passphrase), done, failed, "vault", self.session.synchronous)
