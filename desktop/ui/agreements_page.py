"""Agreements: the list with status and filters, and the actions of the agreement lifecycle — new, edit a
draft, amend, sign, export for countersignature, import a countersigned copy, terminate, join a general
offer. The form (agreement_form.py) covers every field of the schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.agreement_form import AgreementForm
from desktop.ui.partners_page import (
    ask_open,
    ask_save,
    confirm,
    esc,
    fill_table,
    fit_columns,
    make_table,
    replace_choice,
    select_key,
    selected_key,
)
from desktop.ui.widgets import DropZone, FlowLayout, MessageBar, button, heading, paragraph

FILTER_LABELS = {
    "all": "All agreements",
    "draft": "Drafts",
    "awaiting": "Awaiting signatures",
    "executed": "Executed",
    "expiring": "Expiring within 60 days",
    "expired": "Expired",
    "terminated": "Terminated",
    "superseded": "Superseded versions",
}


class JoinDialog(QDialog):
    """Who signs for us when joining a general offer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Join the general offer")
        form = QFormLayout(self)
        form.addRow(paragraph("Your organization signs the same terms as a further party. Who signs for it?"))
        self.name = QLineEdit()
        self.title = QLineEdit()
        self.email = QLineEdit()
        for label, w in (("&Name:", self.name), ("&Title:", self.title), ("&E-mail:", self.email)):
            w.setAccessibleName(label.replace("&", "").rstrip(":"))
            form.addRow(label, w)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def representative(self) -> dict[str, str]:
        return {
            "name": self.name.text().strip(),
            "title": self.title.text().strip(),
            "email": self.email.text().strip(),
        }


class AgreementsPage(QWidget):
    """The agreements screen: a list (with details) and the form, in a stack."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.confirm: Callable[[str, str], bool] = lambda title, text: confirm(self, title, text)
        self.summaries: dict[tuple[str, int], Any] = {}
        self.stack = QStackedWidget()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.stack)

        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Agreements"))
        layout.addWidget(
            paragraph(
                "Draft an agreement, sign it, and export it for the other parties to countersign; import "
                "the copy they send back. An agreement carries data only once every party has signed it."
            )
        )
        self.message = MessageBar()
        layout.addWidget(self.message)
        filters = QHBoxLayout()
        self.filter = QComboBox()
        self.filter.setAccessibleName("Show agreements")
        for key, label in FILTER_LABELS.items():
            self.filter.addItem(label, key)
        self.filter.currentIndexChanged.connect(lambda _i: self.refresh())
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search title, party or id…")
        self.search.setAccessibleName("Search agreements")
        self.search.textChanged.connect(lambda _t: self.refresh())
        show = QLabel("S&how:")
        show.setBuddy(self.filter)
        filters.addWidget(show)
        filters.addWidget(self.filter)
        filters.addWidget(self.search, 1)
        layout.addLayout(filters)
        self.drop = DropZone(
            "Drop a signed agreement file (.json) here to import it", [".json"], "&Import signed copy…"
        )
        self.drop.setMinimumHeight(64)
        self.drop.layout().setDirection(QVBoxLayout.Direction.LeftToRight)
        self.drop.file_dropped.connect(self.import_file)
        self.drop.choose_clicked.connect(lambda: self.import_file())
        layout.addWidget(self.drop)

        self.table = make_table(("Title", "Status", "Version", "Expires", "ID"), "Agreements")
        fit_columns(self.table, 0)
        # Status can be long ("awaiting signatures — …"): a fixed share, elided, full text in the tooltip.
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(1, 250)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.doubleClicked.connect(lambda _i: self.edit_selected())
        self.details = paragraph()
        self.details.setTextFormat(Qt.TextFormat.RichText)
        details_box = QWidget()
        dl = QVBoxLayout(details_box)
        dl.setContentsMargins(12, 0, 0, 0)
        dl.addWidget(self.details)
        dl.addStretch(1)
        splitter = QSplitter()
        splitter.addWidget(self.table)
        splitter.addWidget(details_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([700, 300])
        layout.addWidget(splitter, 1)

        self.new_button = button("&New agreement…", "Draft a new agreement")
        self.new_button.clicked.connect(self.new_agreement)
        self.edit_button = button("&Edit draft…", "Edit the draft")
        self.edit_button.clicked.connect(self.edit_selected)
        self.sign_button = button("&Sign", "Sign the agreement")
        self.sign_button.clicked.connect(self.sign_selected)
        self.export_button = button("E&xport for countersignature…", "Export for countersignature")
        self.export_button.clicked.connect(lambda: self.export_selected())
        self.terminate_button = button("&Terminate…", "Terminate the agreement")
        self.terminate_button.clicked.connect(lambda: self.terminate_selected())
        self.join_button = button("&Join general offer…", "Join the general offer")
        self.join_button.clicked.connect(lambda: self.join_selected())
        self.codebook_button = button("&Codebook…", "Save the agreement's codebook for the analysts")
        self.codebook_button.setToolTip(
            "Every shared column with its meaning, codes and how it is de-identified (web page, Excel "
            "CSV, PDF or Markdown)"
        )
        self.codebook_button.clicked.connect(lambda: self.codebook_selected())
        # The consortium's linkage secret travels between providers as a key file (agreements'
        # export_linkage_key / import_linkage_key); a menu, since the two go in opposite directions.
        self.linkage_button = button("&Linkage key…", "Send or import the consortium's linkage key")
        self.linkage_button.setToolTip(
            "Under a consortium agreement, every provider makes link tokens with one shared secret: the "
            "provider that holds it saves a key file for each other provider, who imports it"
        )
        linkage_menu = QMenu(self.linkage_button)
        linkage_menu.addAction("Save the key for a provider…", lambda: self.export_linkage_selected())
        linkage_menu.addAction("Import a key a provider sent…", lambda: self.import_linkage_key())
        self.linkage_button.setMenu(linkage_menu)
        row = FlowLayout()  # wraps at 800×600 or 200% scaling instead of clipping the labels
        for b in (
            self.new_button,
            self.edit_button,
            self.sign_button,
            self.export_button,
            self.codebook_button,
            self.linkage_button,
        ):
            row.addWidget(b)
        row.add_right(self.join_button)
        row.add_right(self.terminate_button)
        layout.addLayout(row)
        self.stack.addWidget(page)
        self.list_page = page

        self.form = AgreementForm(session)
        self.form.saved.connect(self._saved)
        self.form.cancelled.connect(self.show_list)
        self.stack.addWidget(self.form)
        self._loaded = False
        self._selection_changed()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.refresh()

    # -- the list -------------------------------------------------------------------------------
    def refresh(self, keep: tuple[str, int] | None = None) -> None:
        """Read the agreements again and apply the filter and search."""
        from agreements import list_agreements, status_key, status_label
        from deid.errors import PathShareError

        keep = keep or selected_key(self.table)
        try:
            summaries = list_agreements(self.session.vault, include_superseded=True)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        wanted = self.filter.currentData() or "all"
        needle = self.search.text().strip().lower()
        shown = []
        for s in summaries:
            key = status_key(s)
            if wanted == "all" and key == "superseded":
                continue
            if wanted != "all" and key != wanted and not (wanted == "executed" and key == "expiring"):
                continue
            if needle and needle not in " ".join([s.title, s.id, *s.parties]).lower():
                continue
            shown.append(s)
        self.summaries = {(s.id, s.version): s for s in summaries}
        fill_table(
            self.table,
            [
                (
                    s.title,
                    status_label(s),
                    s.version,
                    s.expires.isoformat(),
                    s.id[:8],
                )
                for s in shown
            ],
            [(s.id, s.version) for s in shown],
        )
        if keep:
            select_key(self.table, keep)
        if selected_key(self.table) is None and shown:
            self.table.selectRow(0)
        self._selection_changed()

    def selected(self) -> tuple[Any, Any]:
        """(summary, Agreement) of the selected row, or (None, None)."""
        from agreements import get_agreement

        key = selected_key(self.table)
        if key is None:
            return None, None
        key = tuple(key)
        summary = self.summaries.get(key)
        if summary is None:
            return None, None
        return summary, get_agreement(self.session.vault, summary.id, summary.version)

    def status_of(self, agreement_id: str) -> str:
        """The list's status text of the latest version of ``agreement_id`` (for tests and screen readers)."""
        from agreements import status_label

        versions = [s for (aid, _v), s in self.summaries.items() if aid == agreement_id]
        return status_label(max(versions, key=lambda s: s.version)) if versions else ""

    def _selection_changed(self) -> None:
        from agreements import (
            LEGAL_BASES,
            can_amend,
            can_join,
            can_sign,
            can_terminate,
            our_card,
            status_label,
        )
        from deid.errors import PathShareError

        for b in (
            self.edit_button,
            self.sign_button,
            self.export_button,
            self.terminate_button,
            self.join_button,
            self.codebook_button,
        ):
            b.setEnabled(False)
        try:
            summary, a = self.selected()
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        if summary is None:
            self.details.setText("No agreement selected. Choose <i>New agreement…</i> to draft one.")
            return
        me = our_card(self.session.vault).fingerprint()
        latest = max(v for (aid, v) in self.summaries if aid == summary.id) == summary.version
        status = summary.status
        self.edit_button.setText("&Edit draft…" if status == "draft" else "&Amend…")
        # who may do what: the library's rules (agreements.can_*), the buttons only follow them
        self.edit_button.setEnabled(can_amend(a, status, me, latest=latest))
        self.sign_button.setEnabled(can_sign(a, status, me))
        self.export_button.setEnabled(bool(a.signatures))
        self.codebook_button.setEnabled(True)
        self.terminate_button.setEnabled(can_terminate(a, status, me))
        self.join_button.setEnabled(can_join(a, summary.in_force, me))
        lb = a.terms.legal_basis
        signed = [p.org for p in a.all_parties() if a.signed_by(p.fingerprint)]
        parties = "".join(
            f"<li>{esc(p.org)} — {esc(', '.join(p.roles))}; signs: {esc(p.authorized_representative.name)}"
            f"{' ✓ signed' if a.signed_by(p.fingerprint) or p not in a.terms.parties else ''}</li>"
            for p in a.all_parties()
        )
        self.details.setText(
            f"<b>{esc(a.title)}</b><br>Version {a.version} · <b>{esc(status_label(summary))}</b><br>"
            f"In effect {a.effective.isoformat()} to {a.expires.isoformat()}; data destroyed by "
            f"{a.destruction_deadline.isoformat()}<br>"
            f"<b>Legal basis:</b> {esc(LEGAL_BASES.get(lb.basis, lb.basis))}<br>"
            f"<b>Purpose:</b> {esc(a.terms.purpose[:400])}<br>"
            f"<b>Parties</b><ul>{parties}</ul>"
            f"{len(a.terms.elements)} data elements · k ≥ {a.terms.policy.k}"
            f"{' · general offer' if a.general_offer else ''}<br>"
            f"<span>Signed by: {esc(', '.join(signed) or 'nobody yet')}</span><br>"
            f"<small>ID {esc(a.id)}</small>"
        )

    # -- actions --------------------------------------------------------------------------------
    def new_agreement(self) -> None:
        """Open the form on a blank draft."""
        from agreements import blank_terms
        from deid.errors import PathShareError

        try:
            terms = blank_terms(self.session.vault)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.form.load(terms, "new")
        self.stack.setCurrentWidget(self.form)
        self.form.title.setFocus()

    def edit_selected(self) -> None:
        """Correct the unsigned draft, or amend a signed agreement (a new version)."""
        from agreements import terms_of

        summary, a = self.selected()
        if a is None or not self.edit_button.isEnabled():
            return
        self.form.load(terms_of(a), "edit" if summary.status == "draft" else "amend", a.id)
        self.stack.setCurrentWidget(self.form)
        self.form.title.setFocus()

    def show_list(self) -> None:
        self.stack.setCurrentWidget(self.list_page)
        self.table.setFocus()

    def _saved(self, agreement: Any) -> None:
        self.show_list()
        self.refresh(keep=(agreement.id, agreement.version))
        self.message.show_info(
            f"Saved “{agreement.title}” (version {agreement.version}) as a draft. Sign it, then export it "
            "for the other parties to countersign."
        )

    def _act(self, action: Callable[[], Any], done: str, keep: tuple[str, int] | None = None) -> bool:
        from deid.errors import PathShareError

        self.message.clear()
        try:
            result = action()
        except PathShareError as exc:
            self.message.show_problem(exc)
            return False
        self.refresh(keep=keep or ((result.id, result.version) if hasattr(result, "version") else None))
        self.message.show_info(done)
        return True

    def sign_selected(self) -> None:
        """Sign the selected version with this organization's key (after a confirmation)."""
        from agreements import sign_agreement

        _summary, a = self.selected()
        if a is None:
            return
        if not self.confirm(
            "Sign the agreement",
            f"Sign “{a.title}” (version {a.version}) for your organization?\n\nYour signature commits your "
            "organization to these exact terms.",
        ):
            return

        def go() -> Any:
            return sign_agreement(self.session.vault, a.id, version=a.version)

        signed_text = "Signed."
        if self._act(go, signed_text, (a.id, a.version)):
            status = self.status_of(a.id)
            self.message.show_info(
                "Signed. Every party has signed: the agreement is executed."
                if status.startswith(("executed", "expiring"))
                else f"Signed. Now export it for countersignature ({status})."
            )

    def export_selected(self, path: str | None = None) -> None:
        """Write the agreement with every signature we hold, for the other parties."""
        from agreements import export_agreement

        _summary, a = self.selected()
        if a is None:
            return
        name = f"agreement-{a.id[:8]}-v{a.version}.json"
        path = path or ask_save(
            self, self.session, "agreements", "Export for countersignature", name, "Agreement files (*.json)"
        )
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        waiting = ", ".join(p.org for p in a.missing_signers())
        self._act(
            lambda: export_agreement(self.session.vault, a.id, path, version=a.version, force=force),
            f"Wrote {Path(path).name}. "
            + (f"Send it to {waiting} to countersign." if waiting else "Send it to the other parties."),
            (a.id, a.version),
        )

    def codebook_selected(self, path: str | None = None) -> None:
        """Save the selected version's codebook (the file type follows the name chosen)."""
        from agreements import export_codebook
        from desktop.pdf import html_to_pdf

        _summary, a = self.selected()
        if a is None:
            return
        path = path or ask_save(
            self,
            self.session,
            "codebooks",
            "Save the codebook",
            f"codebook-{a.id[:8]}-v{a.version}.html",
            "Web page (*.html);;Excel CSV (*.csv);;PDF (*.pdf);;Markdown (*.md)",
        )
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        holder: dict[str, Any] = {}

        def go() -> Any:
            holder["book"] = export_codebook(
                self.session.vault, a.id, path, version=a.version, render_pdf=html_to_pdf, force=force
            )
            return a

        if self._act(go, "", (a.id, a.version)):
            self.message.show_info(
                f"Wrote the codebook of “{a.title}” ({len(holder['book'].rows)} columns) to "
                f"{Path(path).name}; send it to the analysts with the data."
            )

    def export_linkage_selected(self, fingerprint: str | None = None, path: str | None = None) -> bool:
        """Save the selected consortium agreement's linkage key file for one other provider (the
        library checks that this vault holds the secret and that the partner is a provider; audited)."""
        from agreements import export_linkage_key, organization_names, our_card

        _summary, a = self.selected()
        if a is None:
            return False
        names = organization_names(self.session.vault)
        if fingerprint is None:
            me = our_card(self.session.vault).fingerprint()
            others = [(names.get(p.fingerprint, p.fingerprint), p.fingerprint) for p in a.providers()
                      if p.fingerprint != me]
            if not others:
                self.message.show_error(
                    "This agreement has no other provider to send its linkage key to."
                )
                return False
            if len(others) == 1:
                fingerprint = others[0][1]
            else:
                label, ok = QInputDialog.getItem(
                    self, "Linkage key", "Which provider is the key for?", [n for n, _ in others], 0, False
                )
                if not ok:
                    return False
                fingerprint = dict(others)[label]
        path = path or ask_save(
            self,
            self.session,
            "linkage",
            "Save the linkage key",
            f"linkage-key-{a.id[:8]}.json",
            "Linkage key (*.json)",
        )
        if not path:
            return False
        force = replace_choice(self, path)
        if force is None:
            return False
        to = names.get(fingerprint, fingerprint)
        return self._act(
            lambda: export_linkage_key(self.session.vault, a.id, fingerprint, path, force=force) and a,
            f"Saved the linkage key of “{a.title}” for {to} to {Path(path).name}. It can only be opened by "
            f"{to}; send it to them.",
            (a.id, a.version),
        )

    def import_linkage_key(self, path: str | None = None) -> bool:
        """Import a linkage key file another provider sent (checked and audited by the library)."""
        from agreements import import_linkage_key

        path = path or ask_open(self, self.session, "linkage", "Import a linkage key", "Linkage key (*.json)")
        if not path:
            return False
        holder: dict[str, Any] = {}

        def go() -> Any:
            holder["a"] = import_linkage_key(self.session.vault, path)
            return holder["a"]

        ok = self._act(go, "")
        if ok:
            self.message.show_info(
                f"Imported the linkage key of “{holder['a'].title}”: your link tokens now match the other "
                "providers'."
            )
        return ok

    def import_file(self, path: str | None = None) -> None:
        """Import a signed agreement file: a proposal, a countersigned copy, a joinder or a termination."""
        from agreements import import_agreement, status_label

        path = path or ask_open(
            self, self.session, "agreements", "Import a signed agreement", "Agreement files (*.json)"
        )
        if not path:
            return
        holder: dict[str, Any] = {}

        def go() -> Any:
            holder["a"] = import_agreement(self.session.vault, path)
            return holder["a"]

        if self._act(go, "Imported."):
            a = holder["a"]
            summary = self.summaries.get((a.id, a.version))
            state = status_label(summary) if summary else ""
            self.message.show_info(f"Imported {Path(path).name}: “{a.title}” is now {state}.")

    def terminate_selected(self, reason: str | None = None) -> None:
        """Attach our signed termination notice (asks for the reason)."""
        from agreements import terminate_agreement

        _summary, a = self.selected()
        if a is None:
            return
        if reason is None:
            reason, ok = QInputDialog.getText(
                self,
                "Terminate the agreement",
                f"Why is “{a.title}” ending? The reason goes into the signed termination notice.",
            )
            if not ok:
                return
        self._act(
            lambda: terminate_agreement(self.session.vault, a.id, reason or ""),
            "Terminated. Export the agreement so the other parties import the notice; recipients must "
            f"destroy the data by {a.destruction_deadline.isoformat()}.",
            (a.id, a.version),
        )

    def join_selected(self, representative: dict[str, str] | None = None) -> None:
        """Join a general offer as a further party (asks who signs)."""
        from agreements import join_agreement

        _summary, a = self.selected()
        if a is None:
            return
        if representative is None:
            dialog = JoinDialog(self)
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            representative = dialog.representative()
        self._act(
            lambda: join_agreement(self.session.vault, a.id, representative),
            "Joined. Export the agreement so the offering parties import your joinder.",
            (a.id, a.version),
        )

    def today(self) -> date:
        return date.today()
