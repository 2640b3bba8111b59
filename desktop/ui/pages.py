"""The smaller screens: this organization's card, and read-only views of agreements, partners and the
audit log (part 2 of the app adds their actions; until then they say so)."""

from __future__ import annotations

import importlib
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.widgets import MessageBar, button, heading, paragraph


def _module(name: str) -> Any:
    """The library module ``name`` if it has landed, else None."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


class _ListPage(QWidget):
    """A heading, a note, a read-only table and a Refresh button."""

    title = ""
    note = ""
    headers: tuple[str, ...] = ()

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading(self.title))
        self.note_label = paragraph(self.note)
        layout.addWidget(self.note_label)
        self.message = MessageBar()
        layout.addWidget(self.message)
        self.table = QTableWidget(0, len(self.headers))
        self.table.setHorizontalHeaderLabels(list(self.headers))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setAccessibleName(self.title)
        layout.addWidget(self.table, 1)
        self.refresh_button = button("&Refresh", f"Refresh {self.title.lower()}")
        self.refresh_button.clicked.connect(self.refresh)
        layout.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignRight)
        self._loaded = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.refresh()

    def rows(self) -> list[tuple[str, ...]] | None:
        """The rows to show, or None when the library piece is not there yet."""
        return None

    def refresh(self) -> None:
        """Read the rows again (short vault reads run on the UI thread)."""
        from deid.errors import PathShareError

        self.message.clear()
        try:
            rows = self.rows()
        except PathShareError as exc:
            self.message.show_error(str(exc))
            return
        if rows is None:
            self.table.setRowCount(0)
            return
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(text))


class AgreementsPage(_ListPage):
    title = "Agreements"
    note = (
        "Coming next: drafting, signing and importing agreements in the app. For now this list is "
        "read-only; use `pathshare agreement …` on the command line to add or sign one."
    )
    headers = ("Title", "Status", "Parties", "Expires", "ID")

    def rows(self) -> list[tuple[str, ...]] | None:
        store = _module("agreements._agreement_store")
        if store is None or not hasattr(store, "list_agreements"):
            self.note_label.setText(self.note + " (The agreement store is not available in this build.)")
            return None
        return [
            (s.title, s.status, ", ".join(s.parties), s.expires.isoformat(), s.id)
            for s in store.list_agreements(self.session.vault)
        ]


class PartnersPage(_ListPage):
    title = "Partners"
    note = (
        "Coming next: importing cards and marking partners verified in the app. For now this list is "
        "read-only; use `pathshare partner import CARD.json` and `pathshare partner verify FINGERPRINT`."
    )
    headers = ("Organization", "Kind", "Status", "Fingerprint")

    def rows(self) -> list[tuple[str, ...]] | None:
        partners = _module("agreements._partners")
        if partners is None or not hasattr(partners, "list_partners"):
            self.note_label.setText(self.note + " (Partner cards are not available in this build.)")
            return None
        listed = partners.list_partners(self.session.vault)
        return [(p.org, p.card.kind, p.status, p.fingerprint) for p in listed]


class AuditPage(_ListPage):
    title = "Audit log"
    note = (
        "Coming next: filtering and exporting the log in the app. Below: the 500 most recent entries "
        "and whether the whole chain verifies."
    )
    headers = ("#", "Time", "Who", "Action", "Agreement", "Package")

    def rows(self) -> list[tuple[str, ...]] | None:
        audit = self.session.vault.audit
        verdict = audit.verify()
        state = (
            f"The log verifies: {verdict.entries} entries, unbroken."
            if verdict.ok
            else f"The log does NOT verify: {verdict.reason}"
        )
        self.note_label.setText(f"{self.note}\n{state}")
        return [
            (str(e.seq), e.time, e.user, e.action, e.agreement or "", e.package or "")
            for e in reversed(audit.entries(limit=500))
        ]


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
