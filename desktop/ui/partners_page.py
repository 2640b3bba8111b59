"""Partners: import a partner's card (drop it or choose it), read its fingerprint, mark it verified after a
phone check, revoke it. A card for a known organization under another key is a loud red banner.

Also the small pieces the other compliance screens share (banner, confirmation, file dialogs, tables).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.filedialogs import open_file_name, save_file_name
from desktop.ui.theme import monospace_font
from desktop.ui.widgets import DropZone, MessageBar, button, group_fingerprint, heading, paragraph, shown

# --------------------------------------------------------------------------- shared by the screens


class Banner(QFrame):
    """A loud warning across the page (red in light and dark themes; text colour chosen for contrast)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.Box)
        self.setAutoFillBackground(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = QFont(self.label.font())
        font.setBold(True)
        self.label.setFont(font)
        self.label.setAccessibleName("Warning")
        layout.addWidget(self.label, 1)
        self.hide()

    def show_warning(self, text: str) -> None:
        """Show ``text`` (rich text allowed) on a strong red."""
        palette = self.palette()
        window = palette.color(QPalette.ColorRole.Window)
        a = 0.75
        red = QColor(
            round(190 * a + window.red() * (1 - a)),
            round(20 * a + window.green() * (1 - a)),
            round(20 * a + window.blue() * (1 - a)),
        )
        palette.setColor(QPalette.ColorRole.Window, red)
        palette.setColor(QPalette.ColorRole.WindowText, QColor(255, 255, 255))
        self.setPalette(palette)
        self.label.setPalette(palette)
        self.label.setText(text)
        self.setAccessibleDescription(self.label.text())
        self.show()

    def clear(self) -> None:
        self.label.clear()
        self.hide()

    def text(self) -> str:
        return self.label.text() if not self.isHidden() else ""


def confirm(parent: QWidget, title: str, text: str) -> bool:
    """Ask a yes/no question (No is the default: nothing happens by accident)."""
    answer = QMessageBox.question(
        parent,
        title,
        text,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def replace_choice(parent: QWidget, path: str | Path) -> bool | None:
    """Whether writing ``path`` may replace a file (the library's ``force``): False when there is none,
    True when the user said yes to replacing it, None when they said no (write nothing then).
    A file the vault recorded is refused by the library whatever is answered here."""
    import os

    target = Path(path)
    if not os.path.lexists(target):
        return False
    if confirm(
        parent,
        "Replace the file?",
        f"{target.name} already exists in {target.parent}. Replace it with the new file?",
    ):
        return True
    return None


def ask_open(parent: QWidget, session: Any, key: str, title: str, filters: str) -> str:
    """A file to open (remembering the folder per ``key``), or '' when cancelled."""
    path, _ = open_file_name(parent, title, session.settings.folder(key), filters)
    if path:
        session.settings.set_folder(key, Path(path).parent)
    return path


def ask_save(parent: QWidget, session: Any, key: str, title: str, name: str, filters: str) -> str:
    """A file name to write (remembering the folder per ``key``), or '' when cancelled."""
    start = str(Path(session.settings.folder(key)) / name)
    path, _ = save_file_name(parent, title, start, filters)
    if path:
        session.settings.set_folder(key, Path(path).parent)
    return path


def make_table(headers: Sequence[str], name: str) -> QTableWidget:
    """A read-only, row-selecting table with an accessible name."""
    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.verticalHeader().hide()
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.setAccessibleName(name)
    table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
    return table


def fit_columns(table: QTableWidget, stretch: int) -> None:
    """Columns as wide as their contents, and column ``stretch`` taking what is left (long titles elide
    instead of pushing the other columns out of sight)."""
    header = table.horizontalHeader()
    header.setStretchLastSection(False)
    for c in range(table.columnCount()):
        header.setSectionResizeMode(
            c, QHeaderView.ResizeMode.Stretch if c == stretch else QHeaderView.ResizeMode.ResizeToContents
        )
    table.setTextElideMode(Qt.TextElideMode.ElideRight)


def fit_height(table: QTableWidget, min_rows: int = 1, max_rows: int = 8) -> None:
    """Make a short table exactly as tall as its rows (between ``min_rows`` and ``max_rows``)."""
    rows = max(min_rows, min(max_rows, table.rowCount()))
    row_h = table.verticalHeader().defaultSectionSize()
    height = table.horizontalHeader().height() + rows * row_h + 2 * table.frameWidth()
    if table.horizontalScrollBar().isVisible():
        height += table.horizontalScrollBar().height()
    table.setFixedHeight(height)


def fill_table(table: QTableWidget, rows: Sequence[Sequence[Any]], keys: Sequence[Any] | None = None) -> None:
    """Replace the rows; ``keys`` (one per row) are kept in column 0's UserRole."""
    sorting = table.isSortingEnabled()
    table.setSortingEnabled(False)  # rows must not move while they are filled
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem()
            if isinstance(value, str):
                value = shown(value)
            item.setData(Qt.ItemDataRole.DisplayRole, value)
            if isinstance(value, str) and len(value) > 20:
                item.setToolTip(value)  # the whole text when the column elides it
            if c == 0 and keys is not None:
                item.setData(Qt.ItemDataRole.UserRole, keys[r])
            table.setItem(r, c, item)
    table.setSortingEnabled(sorting)


def _key(value: Any) -> Any:
    # Qt hands a stored tuple back as a list.
    return tuple(value) if isinstance(value, list) else value


def selected_key(table: QTableWidget) -> Any:
    """The UserRole key of the selected row (None when nothing is selected)."""
    rows = table.selectionModel().selectedRows() if table.selectionModel() else []
    if not rows:
        return None
    item = table.item(rows[0].row(), 0)
    return None if item is None else _key(item.data(Qt.ItemDataRole.UserRole))


def select_key(table: QTableWidget, key: Any) -> None:
    """Select the row whose key is ``key``."""
    for r in range(table.rowCount()):
        item = table.item(r, 0)
        if item is not None and _key(item.data(Qt.ItemDataRole.UserRole)) == _key(key):
            table.selectRow(r)
            return


def esc(text: Any) -> str:
    """``text`` for rich text: HTML-escaped and shown as the app shows all text (widgets.shown)."""
    import html

    return html.escape(shown(str(text)))


# ------------------------------------------------------------------------------------ the screen

KIND_LABELS = {
    "district": "School district",
    "college": "College",
    "employer": "Employer",
    "intermediary": "Intermediary",
}


class PartnersPage(QWidget):
    """Partner organizations: their cards, fingerprints and trust."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.confirm: Callable[[str, str], bool] = lambda title, text: confirm(self, title, text)
        self.partners: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Partners"))
        layout.addWidget(
            paragraph(
                "Import the card file a partner sent you. Then call them on a number you already know and "
                "read the fingerprints to each other; mark the partner verified only when every group "
                "matches. Only verified partners can be parties to an agreement."
            )
        )
        self.banner = Banner()
        layout.addWidget(self.banner)
        self.message = MessageBar()
        layout.addWidget(self.message)
        self.drop = DropZone("Drop a partner's card file (.json) here", [".json"], "&Choose card file…")
        self.drop.setMinimumHeight(84)
        self.drop.file_dropped.connect(self.import_card_file)
        self.drop.choose_clicked.connect(self.pick_card)
        layout.addWidget(self.drop)

        self.table = make_table(("Organization", "Kind", "Status", "Fingerprint"), "Partners")
        self.table.itemSelectionChanged.connect(self._show_selected)
        fit_columns(self.table, 0)
        details = QWidget()
        grid = QGridLayout(details)
        grid.setContentsMargins(12, 0, 0, 0)
        self.org = QLabel()
        self.org.setFont(heading(" ").font())
        self.org.setWordWrap(True)
        self.facts = paragraph()
        self.fingerprint = QLabel()
        self.fingerprint.setFont(monospace_font(self.font(), 1.3))
        self.fingerprint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fingerprint.setFrameShape(QFrame.Shape.StyledPanel)
        self.fingerprint.setAutoFillBackground(True)
        self.fingerprint.setBackgroundRole(QPalette.ColorRole.Base)
        self.fingerprint.setContentsMargins(10, 6, 10, 6)
        self.fingerprint.setAccessibleName("Partner's fingerprint")
        self.verify = button("Mark &verified…", "Mark the partner verified")
        self.verify.clicked.connect(self.mark_verified)
        self.revoke = button("Re&voke…", "Revoke the partner's card")
        self.revoke.clicked.connect(self.revoke_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.verify)
        buttons.addWidget(self.revoke)
        buttons.addStretch(1)
        grid.addWidget(self.org, 0, 0)
        grid.addWidget(self.facts, 1, 0)
        grid.addWidget(QLabel("Fingerprint (compare it by phone):"), 2, 0)
        grid.addWidget(self.fingerprint, 3, 0, Qt.AlignmentFlag.AlignLeft)
        grid.addLayout(buttons, 4, 0)
        grid.setRowStretch(5, 1)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([600, 330])
        layout.addWidget(splitter, 1)
        self.setTabOrder(self.drop.button, self.table)
        self.setTabOrder(self.table, self.verify)
        self.setTabOrder(self.verify, self.revoke)
        self._loaded = False
        self._show_selected()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.refresh()

    # -- reading --------------------------------------------------------------------------------
    def refresh(self, keep: str | None = None) -> None:
        """Read the partners again; warn about organizations known under two keys."""
        from agreements import key_conflicts, list_partners
        from deid.errors import PathShareError

        keep = keep or selected_key(self.table)
        try:
            partners = list_partners(self.session.vault)
            conflicts = key_conflicts(self.session.vault)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.partners = {p.fingerprint: p for p in partners}
        fill_table(
            self.table,
            [
                (p.org, KIND_LABELS.get(p.card.kind, p.card.kind), p.status, p.fingerprint)
                for p in partners
            ],
            [p.fingerprint for p in partners],
        )
        if conflicts:
            lines = []
            for org, ps in conflicts:
                fps = ", ".join(f"{p.fingerprint} ({p.status}, imported {p.imported[:10]})" for p in ps)
                lines.append(f"{esc(org)}: {esc(fps)}")
            self.banner.show_warning(
                "WARNING: a card arrived for an organization you already know under a different key. It may "
                "be an impersonation. Call them on a number you already know and compare fingerprints; "
                "revoke the key that is not theirs.<br>" + "<br>".join(lines)
            )
        else:
            self.banner.clear()
        if keep:
            select_key(self.table, keep)
        elif partners:
            self.table.selectRow(0)
        self._show_selected()

    def selected(self) -> Any:
        """The selected partner (or None)."""
        key = selected_key(self.table)
        return self.partners.get(key) if key else None

    def _show_selected(self) -> None:
        p = self.selected()
        self.verify.setEnabled(bool(p and not p.verified and not p.revoked))
        self.revoke.setEnabled(bool(p and not p.revoked))
        if p is None:
            self.org.setText("No partner selected")
            self.facts.setText("Import a card to add a partner.")
            self.fingerprint.setText("")
            self.fingerprint.hide()
            return
        self.fingerprint.show()
        self.org.setText(p.org)
        when = {
            "verified": f"verified on {(p.verified_at or '')[:10]}",
            "revoked": f"REVOKED on {(p.revoked_at or '')[:10]}",
            "unverified": "NOT verified yet — compare the fingerprint by phone",
        }[p.status]
        self.facts.setText(
            f"{esc(KIND_LABELS.get(p.card.kind, p.card.kind))} · contact {esc(p.card.contact or '—')}<br>"
            f"Status: <b>{esc(when)}</b> · card imported {esc(p.imported[:10])}"
        )
        self.fingerprint.setText(group_fingerprint(p.fingerprint))
        self.fingerprint.setAccessibleDescription(p.fingerprint)

    # -- actions --------------------------------------------------------------------------------
    def pick_card(self) -> None:
        path = ask_open(self, self.session, "cards", "Import a partner's card", "Card files (*.json)")
        if path:
            self.import_card_file(path)

    def import_card_file(self, path: str) -> None:
        """Import the card at ``path``; a changed key is a loud banner, not just a message."""
        from agreements import import_card
        from deid.errors import PathShareError

        self.message.clear()
        try:
            result = import_card(self.session.vault, Path(path))
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.refresh(keep=result.partner.fingerprint)
        # the library's sentence, and its hint on its own line (as the app shows every hint)
        from desktop.ui.problems import app_hint

        if result.key_changed:
            self.message.show_error(result.message, app_hint(result.hint))
        else:
            self.message.show_info(result.message, app_hint(result.hint))

    def mark_verified(self) -> None:
        """After a confirmation that asks for a phone check, mark the selected partner verified."""
        from agreements import verify_partner
        from deid.errors import PathShareError

        p = self.selected()
        if p is None:
            return
        others = [q for q in self.partners.values() if q.org.casefold() == p.org.casefold() and q is not p]
        warning = (
            f"\n\nCAUTION: {p.org} is also known under another key ({others[0].fingerprint}). "
            "Be sure this is the card they gave you."
            if any(not q.revoked for q in others)
            else ""
        )
        text = (
            f"Have you called {p.org} on a phone number you already know (not one from the card's e-mail) "
            f"and compared the fingerprint?\n\n{p.fingerprint}\n\n"
            "Mark verified only if they read you exactly these four groups." + warning
        )
        if not self.confirm("Mark partner verified", text):
            return
        try:
            verify_partner(self.session.vault, p.fingerprint)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.message.show_info(f"{p.org} is now a verified partner.")
        self.refresh(keep=p.fingerprint)

    def revoke_selected(self) -> None:
        """Revoke the selected partner's card after a confirmation."""
        from agreements import revoke_partner
        from deid.errors import PathShareError

        p = self.selected()
        if p is None:
            return
        text = (
            f"Revoke the card of {p.org} ({p.fingerprint})?\n\nThe card can then no longer be a party to "
            "agreements or send packages. This cannot be undone; a new card must be imported and verified."
        )
        if not self.confirm("Revoke partner", text):
            return
        try:
            revoke_partner(self.session.vault, p.fingerprint, "revoked in the app")
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.message.show_info(f"The card of {p.org} ({p.fingerprint}) was revoked.")
        self.refresh(keep=p.fingerprint)
