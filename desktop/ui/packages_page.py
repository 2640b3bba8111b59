"""Packages: what this organization sealed and what it opened, where each stands, and what to do next —
void a package that never left, destroy what was received and write the signed certificate, import the
receipts and certificates recipients send back. Each is the library's workflow (agreements.void_package,
agreements.destroy, agreements.import_returned_file), which records its own audit entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from desktop.ui.partners_page import (
    ask_open,
    ask_save,
    confirm,
    fill_table,
    fit_columns,
    make_table,
    replace_choice,
    select_key,
    selected_key,
)
from desktop.ui.widgets import FlowLayout, MessageBar, button, heading, paragraph

HEADERS = ("File or folder", "", "Partner", "Date", "Where it stands")


def _ask_folder(parent: QWidget, caption: str, start: str) -> str | None:
    """A folder from the user, or None when cancelled."""
    from desktop.ui.filedialogs import existing_directory

    return existing_directory(parent, caption, start) or None


def _ask_text(parent: QWidget, title: str, label: str) -> str | None:
    """One line of text from the user, or None when cancelled."""
    text, ok = QInputDialog.getText(parent, title, label)
    return text if ok else None


class PackagesPage(QWidget):
    """Every package this vault recorded, with the actions its state allows."""

    def __init__(self, session: Any, workspace: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.workspace = workspace
        self.records: dict[str, Any] = {}
        self.titles: dict[str, str] = {}
        # Seams for tests (the real ones ask in a dialog).
        self.confirm = lambda title, text: confirm(self, title, text)
        self.ask_text = lambda title, label: _ask_text(self, title, label)
        self.ask_folder = lambda caption, start: _ask_folder(self, caption, start)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Packages"))
        layout.addWidget(
            paragraph(
                "The packages you sealed for partners and the ones you opened. Import the receipts and "
                "destruction certificates recipients send back; destroy what you received once the work "
                "is done and send the certificate to the sender; void a package that was never sent."
            )
        )
        self.message = MessageBar()
        layout.addWidget(self.message)
        show = QHBoxLayout()
        self.filter = QComboBox()
        self.filter.setAccessibleName("Which packages")
        for label, key in (("All packages", None), ("Sent", "sent"), ("Received", "received")):
            self.filter.addItem(label, key)
        self.filter.currentIndexChanged.connect(lambda _i: self.refresh())
        show_label = QLabel("S&how:")
        show_label.setBuddy(self.filter)
        show.addWidget(show_label)
        show.addWidget(self.filter)
        show.addStretch(1)
        layout.addLayout(show)
        self.empty = paragraph()
        self.empty.setAccessibleName("No packages")
        layout.addWidget(self.empty)
        self.table = make_table(HEADERS, "Packages")
        fit_columns(self.table, 4)
        header = self.table.horizontalHeader()
        for c in (0, 2):  # titles and names elide (whole in the tooltip) so the state stays in sight
            header.setSectionResizeMode(c, QHeaderView.ResizeMode.Interactive)
            self.table.setColumnWidth(c, 120)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        layout.addWidget(self.table, 1)
        self.details = paragraph()
        self.details.setAccessibleName("The selected package")
        layout.addWidget(self.details)

        self.import_button = button(
            "&Import a receipt or certificate…",
            "Import a receipt or a destruction certificate a recipient sent back",
        )
        self.import_button.clicked.connect(lambda: self.import_returned())
        self.destroy_button = button("&Destroy and certify…", "Destroy the package and sign a certificate")
        self.destroy_button.setToolTip(
            "Deletes the files this package was opened into, checks that they are gone, and writes the "
            "signed destruction certificate to send to the sender"
        )
        self.destroy_button.clicked.connect(lambda: self.destroy_selected())
        self.void_button = button("&Void…", "Void a package that was never sent")
        self.void_button.setToolTip("For a package sealed but never sent: deletes the sealed file; recorded")
        self.void_button.clicked.connect(lambda: self.void_selected())
        self.reopen_button = button("Open &again…", "Open once more a package whose folder was lost")
        self.reopen_button.setToolTip(
            "For a package you opened whose folder was lost: it can be opened once more from its file, "
            "with the reason recorded"
        )
        self.reopen_button.clicked.connect(lambda: self.reopen_selected())
        self.refresh_button = button("&Refresh", "Read the packages again")
        self.refresh_button.clicked.connect(self.refresh)
        row = FlowLayout()
        for b in (self.import_button, self.destroy_button, self.void_button, self.reopen_button):
            row.addWidget(b)
        row.add_right(self.refresh_button)
        layout.addLayout(row)
        self._selection_changed()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()  # other screens seal and open packages

    # -- the list -------------------------------------------------------------------------------
    def refresh(self) -> None:
        from agreements import list_packages, story_names
        from deid.errors import PathShareError

        keep = selected_key(self.table)
        try:
            records = list_packages(self.session.vault, self.filter.currentData())
            known = story_names(self.session.vault)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.records = {r.package_id: r for r in records}
        self.titles = {r.package_id: known.title(r.agreement_id) for r in records}
        rows = []
        for r in reversed(records):  # newest first
            partners = r.recipients if r.direction == "sent" else (r.sender,)
            rows.append(
                (
                    Path(r.location).name,
                    "Sent" if r.direction == "sent" else "Received",
                    ", ".join(known.org(fp) for fp in partners),
                    r.recorded[:10],
                    r.state_label,
                )
            )
        fill_table(self.table, rows, [r.package_id for r in reversed(records)])
        self.table.setVisible(bool(records))
        self.empty.setVisible(not records)
        self.empty.setText(
            "No packages yet. Seal one for a partner on “Prepare a package”, or open one a partner sent "
            "you on “Receive a package”; both appear here."
        )
        if keep is not None:
            select_key(self.table, keep)
        self._selection_changed()

    def selected(self) -> Any:
        """The selected PackageRecord, or None."""
        key = selected_key(self.table)
        return None if key is None else self.records.get(key)

    def select(self, package_id: str) -> None:
        select_key(self.table, package_id)

    def _selection_changed(self) -> None:
        r = self.selected()
        self.destroy_button.setEnabled(r is not None and r.can_destroy)
        self.void_button.setEnabled(r is not None and r.can_void)
        self.reopen_button.setEnabled(r is not None and r.can_reopen and self.workspace is not None)
        if r is None:
            self.details.setText("Select a package to see what can be done with it.")
            return
        where = "Sealed into" if r.direction == "sent" else "Opened into"
        text = (
            f"Under “{self.titles.get(r.package_id, '')}” · {where} {r.location} · {r.files} "
            f"file{'s' if r.files != 1 else ''} · {r.state_label}."
        )
        if r.void_reason:
            text += f" Void because: {r.void_reason}"
        for _fp, reason in r.refused:
            text += f" Refused: {reason}"
        self.details.setText(text)

    # -- actions --------------------------------------------------------------------------------
    def import_returned(self, path: str | None = None) -> bool:
        """Import a receipt or destruction certificate a recipient sent back (verified and recorded by
        the library)."""
        from agreements import import_returned_file
        from deid.errors import PathShareError

        path = path or ask_open(
            self, self.session, "returned", "Import a receipt or destruction certificate", "JSON (*.json)"
        )
        if not path:
            return False
        try:
            returned = import_returned_file(self.session.vault, path)
        except PathShareError as exc:
            self.refresh()
            self.message.show_problem(exc)
            return False
        self.refresh()
        self.message.show_info(returned.sentence)
        return True

    def reopen_selected(self, reason: str | None = None, package: str | None = None) -> bool:
        """Open the selected received package once more (its folder was lost): asks why, then the
        Receive screen opens it in the worker, the library checking it is the same package, once."""
        r = self.selected()
        if r is None or not r.can_reopen or self.workspace is None:
            return False
        if reason is None:
            reason = self.ask_text(
                "Open the package again", "Why is it opened again? (Recorded in the audit log.)"
            )
        if not reason or not reason.strip():
            return False
        self.workspace.receive.start_reopen(reason.strip())
        self.workspace.sidebar.setCurrentRow(self.workspace.row_of("Receive a package"))
        if package:
            self.workspace.receive.choose_package(package)
        else:
            self.workspace.receive.pick_package()
        return True

    def void_selected(self, reason: str | None = None) -> bool:
        """Void the selected sent package (it never left): asks why, then the library deletes the sealed
        file and records it."""
        from agreements import void_package
        from deid.errors import PathShareError

        r = self.selected()
        if r is None or not r.can_void:
            return False
        if reason is None:
            reason = self.ask_text(
                "Void the package",
                f"Why was {Path(r.location).name} never sent? (Recorded in the audit log.)",
            )
            if reason is None:
                return False
        if not self.confirm(
            "Void the package",
            f"Void {Path(r.location).name}? Its sealed file is deleted so that it cannot be sent by "
            "mistake. This cannot be undone.",
        ):
            return False
        try:
            voided = void_package(self.session.vault, r.package_id, reason)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return False
        self.refresh()
        self.message.show_info(
            f"Voided {voided.file.name}"
            + (
                ": its sealed file is deleted."
                if voided.deleted
                else "; its sealed file was not found where it was written."
            )
        )
        return True

    def destroy_selected(
        self,
        certificate: str | None = None,
        *,
        moved_to: str | None = None,
        attest: str | None = None,
    ) -> bool:
        """Destroy the selected received package: the library deletes the files it was opened into,
        checks they are gone and only then signs the certificate, written where the user says."""
        from agreements import OpenedFilesMissing, destroy
        from deid.errors import PathShareError

        r = self.selected()
        if r is None or not r.can_destroy:
            return False
        certificate = certificate or ask_save(
            self,
            self.session,
            "certificates",
            "Save the destruction certificate",
            f"destruction-certificate-{r.package_id[:8]}.json",
            "Destruction certificate (*.json)",
        )
        if not certificate:
            return False
        force = replace_choice(self, certificate)
        if force is None:
            return False
        folder = moved_to or r.location
        if not self.confirm(
            "Destroy the package",
            f"Delete the files of this package in {folder} and sign a certificate saying they are "
            "destroyed? Copies elsewhere (backups, other folders) must be destroyed too.",
        ):
            return False
        try:
            done = destroy(
                self.session.vault,
                r.package_id,
                certificate,
                files_moved_to=moved_to,
                attest=attest,
                force=force,
            )
        except OpenedFilesMissing as exc:
            if moved_to is not None or attest is not None:
                self.message.show_problem(exc)
                return False
            return self._destroy_elsewhere(exc, certificate)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return False
        self.refresh()
        how = (
            f"deleted {len(done.deleted)} file{'s' if len(done.deleted) != 1 else ''} and checked they are "
            "gone"
            if done.verified == "deleted"
            else "certified by hand"
        )
        self.message.show_info(
            f"Destroyed: PathShare {how}. Send {Path(certificate).name} to the sender; it closes the package "
            "on their side."
        )
        return True

    def _destroy_elsewhere(self, missing: Exception, certificate: str) -> bool:
        """The files are not where the package was opened: destroy them in the folder they were moved
        to, or — when they are gone some other way — certify by hand, saying what was checked (the
        certificate quotes it). Either is the library's destroy, as ``--files-moved-to`` and ``--attest``."""
        if self.confirm(
            "The files have moved",
            f"{missing} Were they moved to another folder? Yes: choose that folder, and PathShare deletes "
            "them there. No: certify by hand instead, saying what you checked.",
        ):
            folder = self.ask_folder("The folder the package's files are in now", str(Path.home()))
            if folder:
                return self.destroy_selected(certificate, moved_to=folder)
            return False
        statement = self.ask_text(
            "Certify by hand",
            "What did you check to know every copy is destroyed? The certificate quotes it.",
        )
        if statement and statement.strip():
            return self.destroy_selected(certificate, attest=statement.strip())
        return False
