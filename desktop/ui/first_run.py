"""First run: welcome → passphrase (strength meter, confirmation) → organization → the card's fingerprint.

The vault and the identity are created by ``agreements`` (``Vault.create``, ``create_identity``); this
screen only collects what they need and shows what they return.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QSizePolicy,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import emit, run_task
from desktop.ui.filedialogs import save_file_name
from desktop.ui.theme import monospace_font
from desktop.ui.widgets import FlowLayout, MessageBar, button, group_fingerprint, heading, paragraph, shown

KIND_LABELS = {
    "district": "School district (K-12)",
    "college": "College or university",
    "employer": "Employer",
    "intermediary": "Intermediary (e.g. a workforce board)",
}
STRENGTH_WORDS = ("Very weak", "Weak", "Fair", "Strong", "Very strong")


class RolesBox(QWidget):
    """Three ticks — sends, receives, oversees — in the users' words; the app opens on the screen that
    fits. The kind of organization ticks a first guess until the person ticks for themselves."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from agreements import ROLE_LABELS, ROLES

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.boxes: dict[str, QCheckBox] = {}
        for role in ROLES:
            box = QCheckBox(ROLE_LABELS[role])
            box.setAccessibleName(ROLE_LABELS[role])
            box.toggled.connect(self._ticked)
            layout.addWidget(box)
            self.boxes[role] = box
        self._touched = False
        self._guessing = False

    def _ticked(self, _on: bool) -> None:
        if not self._guessing:
            self._touched = True
        emit(self.changed)

    def guess_from_kind(self, kind: str) -> None:
        """Tick the usual roles of ``kind``, unless the person has already chosen."""
        from agreements import default_roles

        if not self._touched:
            self.set_chosen(default_roles(kind), guessed=True)

    def set_chosen(self, roles: Any, guessed: bool = False) -> None:
        self._guessing = guessed
        try:
            for role, box in self.boxes.items():
                box.setChecked(role in roles)
        finally:
            self._guessing = False

    def chosen(self) -> frozenset[str]:
        return frozenset(role for role, box in self.boxes.items() if box.isChecked())


def _page(*widgets: QWidget, stretch_last: bool = True) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(32, 28, 32, 24)
    layout.setSpacing(12)
    for w in widgets:
        layout.addWidget(w)
    if stretch_last:
        layout.addStretch(1)
    return page


def _nav(*buttons: QWidget) -> QWidget:
    bar = QWidget()
    layout = QHBoxLayout(bar)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addStretch(1)
    for b in buttons:
        layout.addWidget(b)
    return bar


class CardPanel(QWidget):
    """This organization's fingerprint, large, with instructions and an "Export card…" button."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.card: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(12)
        self.org = paragraph()
        self.fingerprint = QLabel()
        self.fingerprint.setFont(monospace_font(self.font(), 2.0))
        self.fingerprint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fingerprint.setAccessibleName("Fingerprint of your card")
        self.fingerprint.setContentsMargins(12, 8, 12, 8)
        self.instructions = paragraph(
            "<b>How partners trust each other</b><ol>"
            "<li>Export your card (the <i>Export card…</i> button) and send the file to each partner "
            "by e-mail, or however you usually exchange files. The card holds no secrets.</li>"
            "<li>Then call that partner. Read these characters to each other: your fingerprint as "
            "they see it in PathShare, and theirs as you see it. If every group matches, the card "
            "really came from them.</li>"
            "<li>Only then mark the partner verified. A mismatch means the card was changed on the "
            "way: do not use it, and ask for it again.</li></ol>"
        )
        self.instructions.setTextFormat(Qt.TextFormat.RichText)
        self.export = button("&Export card…", "Export card")
        self.export.clicked.connect(self.export_card)
        self.message = MessageBar()
        self.fingerprint.setFrameShape(QLabel.Shape.StyledPanel)
        self.fingerprint.setAutoFillBackground(True)
        self.fingerprint.setBackgroundRole(QPalette.ColorRole.Base)
        # Never narrower than its text (a cut fingerprint cannot be read aloud); Export wraps below it
        # when the window is narrow.
        self.fingerprint.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        row = FlowLayout(spacing=16)
        row.addWidget(self.fingerprint)
        row.addWidget(self.export)
        layout.addWidget(self.org)
        layout.addLayout(row)
        layout.addWidget(self.instructions)
        layout.addWidget(self.message)

    def show_card(self, card: Any) -> None:
        """Show ``card`` (an agreements Card)."""
        self.card = card
        kind = KIND_LABELS.get(card.kind, card.kind)
        self.org.setText(f"<b>{_esc(card.org)}</b> — {_esc(kind)}. Your card's fingerprint:")
        self.fingerprint.setText(group_fingerprint(card.fingerprint()))
        self.fingerprint.setAccessibleDescription(card.fingerprint())

    def export_card(self, path: str | None = None) -> None:
        """Save the card as JSON (asks where unless ``path`` is given)."""
        if self.card is None:
            return
        from desktop.ui.partners_page import replace_choice

        if not path:
            start = Path(self.session.settings.folder("card")) / f"{_slug(self.card.org)}-card.json"
            path, _ = save_file_name(self, "Export card", str(start), "Card files (*.json)")
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        from agreements import export_card
        from deid import write_bytes_atomic
        from deid.errors import PathShareError

        try:
            if self.session.vault is not None:
                export_card(self.session.vault, path, force=force)
            else:
                # Right after the vault was made (closed again, in the worker): it has recorded no file
                # yet, so the plain rule is the whole rule.
                write_bytes_atomic(path, self.card.to_json().encode("utf-8"), perm=0o644, force=force)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        except OSError as exc:
            self.message.show_error(f"Cannot write {path}: {exc.strerror or exc}.")
            return
        self.session.settings.set_folder("card", path)
        self.message.show_info(f"Card saved to {path}. Send this file to your partners.")


def _esc(text: str) -> str:
    from html import escape

    return escape(shown(text))


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "organization"


class FirstRunScreen(QWidget):
    """The first-run flow. Emits ``completed(vault, passphrase)`` when the user continues."""

    completed = Signal(object, str)

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.vault: Any = None
        self.pages = QStackedWidget()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.pages)
        self._build_welcome()
        self._build_passphrase()
        self._build_org()
        self._build_card()

    # -- pages ------------------------------------------------------------------------------------
    def _build_welcome(self) -> None:
        self.start = start = button("&Get started", "Get started", default=True)
        start.clicked.connect(lambda: self._go(1))
        text = paragraph(
            "PathShare lets your organization share student records with consortium partners "
            "safely: under a signed agreement, de-identified on this computer, sealed so only the "
            "named partners can open it, and every step written to an audit log.<br><br>"
            "First you will choose a passphrase that protects this computer's PathShare vault, "
            "then name your organization."
        )
        text.setTextFormat(Qt.TextFormat.RichText)
        where = paragraph(f"Your vault will be created at: {self.session.vault_path}")
        where.setAccessibleName("Vault location")
        self.pages.addWidget(_page(heading("Welcome to PathShare", 1.8), text, where, _nav(start)))

    def _build_passphrase(self) -> None:
        self.passphrase = QLineEdit()
        self.passphrase.setEchoMode(QLineEdit.EchoMode.Password)
        self.passphrase.setAccessibleName("New passphrase")
        self.passphrase.setPlaceholderText("A few unrelated words work well")
        self.confirm = QLineEdit()
        self.confirm.setEchoMode(QLineEdit.EchoMode.Password)
        self.confirm.setAccessibleName("Confirm passphrase")
        self.show_pass = QCheckBox("&Show passphrase")
        self.show_pass.setAccessibleName("Show passphrase")
        self.show_pass.toggled.connect(self._toggle_echo)
        self.meter = QProgressBar()
        self.meter.setRange(0, 4)
        self.meter.setTextVisible(True)
        self.meter.setFormat("")
        self.meter.setAccessibleName("Passphrase strength")
        self.hint = paragraph("")
        self.hint.setAccessibleName("Passphrase advice")
        self.match = paragraph("")
        form = QFormLayout()
        form.addRow("&Passphrase:", self.passphrase)
        form.addRow("", self.meter)
        form.addRow("", self.hint)
        form.addRow("&Confirm:", self.confirm)
        form.addRow("", self.match)
        form.addRow("", self.show_pass)
        form_box = QWidget()
        form_box.setLayout(form)
        form_box.setMaximumWidth(620)
        self.pass_back = button("&Back", "Back")
        self.pass_next = button("&Next", "Next", default=True)
        self.pass_back.clicked.connect(lambda: self._go(0))
        self.pass_next.clicked.connect(lambda: self._go(2))
        self.pass_next.setEnabled(False)
        self.passphrase.textChanged.connect(self._check_passphrase)
        self.confirm.textChanged.connect(self._check_passphrase)
        self.confirm.returnPressed.connect(self.pass_next.click)
        explain = paragraph(
            "This passphrase unlocks PathShare on this computer. Nobody can recover it for you: "
            "write it down and keep it somewhere safe. It is never stored or sent anywhere."
        )
        self.pages.addWidget(
            _page(heading("Choose a passphrase"), explain, form_box, _nav(self.pass_back, self.pass_next))
        )

    def _build_org(self) -> None:
        self.org_name = QLineEdit()
        self.org_name.setAccessibleName("Organization name")
        self.org_name.setPlaceholderText("e.g. Riverside Unified School District")
        self.kind = QComboBox()
        self.kind.setAccessibleName("Organization kind")
        from agreements import ORG_KINDS

        for k in ORG_KINDS:
            self.kind.addItem(KIND_LABELS.get(k, k.title()), k)
        self.contact = QLineEdit()
        self.contact.setAccessibleName("Contact")
        self.contact.setPlaceholderText("name and e-mail or phone of who partners should call")
        form = QFormLayout()
        form.addRow("Organization &name:", self.org_name)
        form.addRow("&Kind:", self.kind)
        form.addRow("C&ontact:", self.contact)
        self.roles = RolesBox()
        form.addRow("What you do:", self.roles)
        self.kind.currentIndexChanged.connect(lambda _i: self.roles.guess_from_kind(self.kind.currentData()))
        self.roles.guess_from_kind(self.kind.currentData())
        self.roles.changed.connect(self._roles_changed)
        form_box = QWidget()
        form_box.setLayout(form)
        form_box.setMaximumWidth(620)
        self.org_back = button("&Back", "Back")
        self.create = button("&Create vault", "Create vault", default=True)
        self.org_back.clicked.connect(lambda: self._go(1))
        self.create.clicked.connect(self._create)
        self.create.setEnabled(False)
        self.org_name.textChanged.connect(lambda _t: self._roles_changed())
        self.org_name.returnPressed.connect(self.create.click)
        # The meter on the passphrase page judges it knowing the name and contact (after "Back").
        self.org_name.textChanged.connect(self._check_passphrase)
        self.contact.textChanged.connect(self._check_passphrase)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setAccessibleName("Creating the vault")
        self.busy.hide()
        self.org_message = MessageBar()
        explain = paragraph(
            "Partners see this name on your card and on every package you send. "
            "PathShare creates your organization's keys now; they never leave this vault."
        )
        self.pages.addWidget(
            _page(
                heading("Your organization"),
                explain,
                form_box,
                self.org_message,
                self.busy,
                _nav(self.org_back, self.create),
            )
        )

    def _build_card(self) -> None:
        self.card_panel = CardPanel(self.session)
        self.done = button("Co&ntinue to PathShare", "Continue to PathShare", default=True)
        self.done.clicked.connect(self._finish)
        self.pages.addWidget(
            _page(heading("Your organization is set up"), self.card_panel, _nav(self.done))
        )

    # -- behaviour --------------------------------------------------------------------------------
    def _go(self, index: int) -> None:
        self.pages.setCurrentIndex(index)
        focus = {0: None, 1: self.passphrase, 2: self.org_name, 3: self.done}.get(index)
        if focus is not None:
            focus.setFocus()

    def _roles_changed(self) -> None:
        self.create.setEnabled(bool(self.org_name.text().strip()) and bool(self.roles.chosen()))

    def _toggle_echo(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.passphrase.setEchoMode(mode)
        self.confirm.setEchoMode(mode)

    def _check_passphrase(self) -> None:
        from agreements import MIN_PASSPHRASE_SCORE, passphrase_strength

        text = self.passphrase.text()
        # The organization's name and contact count as known to a guesser once they are filled in.
        score, hint = passphrase_strength(text, (self.org_name.text(), self.contact.text()))
        self.meter.setValue(score if text else 0)
        self.meter.setFormat(STRENGTH_WORDS[score] if text else "")
        self.hint.setText(hint if text else "")
        confirm = self.confirm.text()
        matches = bool(text) and confirm == text
        if confirm and not matches:
            self.match.setText("The two passphrases are not the same yet.")
        elif matches:
            self.match.setText("The passphrases match.")
        else:
            self.match.setText("")
        self.pass_next.setEnabled(score >= MIN_PASSPHRASE_SCORE and matches)

    def _create(self) -> None:
        from agreements import Vault, create_identity, set_organization_roles

        path = self.session.vault_path
        passphrase = self.passphrase.text()
        org, kind = self.org_name.text().strip(), self.kind.currentData()
        contact = self.contact.text().strip()
        roles = self.roles.chosen()
        self.org_message.clear()
        self.create.setEnabled(False)
        self.org_back.setEnabled(False)
        self.busy.show()

        def work() -> tuple[Any, Any]:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            vault = Vault.create(path, passphrase, user_inputs=(org, contact))
            try:
                card = create_identity(vault, org, kind, contact=contact)
                set_organization_roles(vault, roles)
            except BaseException:
                vault.close()
                raise
            return vault, card

        run_task(work, self._created, self._failed, pool_name="vault", synchronous=self.session.synchronous)

    def _created(self, result: tuple[Any, Any]) -> None:
        self.vault, card = result
        self.busy.hide()
        self.card_panel.show_card(card)
        self._go(3)

    def _failed(self, error: Exception) -> None:
        self.busy.hide()
        self.create.setEnabled(True)
        self.org_back.setEnabled(True)
        from agreements import WeakPassphrase

        if isinstance(error, WeakPassphrase):  # the app's own way to act on it: the Back button
            self.org_message.show_error(str(error), "Go back and choose another passphrase.")
        else:
            self.org_message.show_problem(error)

    def _finish(self) -> None:
        passphrase = self.passphrase.text()
        self.passphrase.clear()
        self.confirm.clear()
        emit(self.completed, self.vault, passphrase)
