"""Receive (the college analyst's flow): open a package, see who sent it and what it holds, save, receipt.

Opening (decrypt, verify sender, agreement and integrity, write the files, log it, sign a receipt) is
one library workflow run in the worker process; this screen asks where and shows what came back.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import Job
from desktop.ui.filedialogs import existing_directory, open_file_name
from desktop.ui.theme import monospace_font
from desktop.ui.widgets import DropZone, MessageBar, button, group_fingerprint, heading, paragraph, scrolling

if TYPE_CHECKING:  # the worker's result types (desktop/ui/jobs.py), for the annotations
    from desktop.ui.jobs import OpenedPackage


class ReceiveScreen(QWidget):
    """Open a package received from a partner."""

    def __init__(self, workspace: Any) -> None:
        super().__init__()
        self.workspace = workspace
        self.session = workspace.session
        # Set by Packages → Open again…: the next opening is of a package opened before (recorded).
        self.reopen_reason: str | None = None
        self.package: str | None = None
        self.result: OpenedPackage | None = None

        self.message = MessageBar()
        self.drop = DropZone(
            "Drop a package (.age) here, or choose it from a folder (Ctrl+O).", (".age",), "&Choose package…"
        )
        self.drop.setMinimumHeight(110)
        self.drop.file_dropped.connect(self.choose_package)
        self.drop.choose_clicked.connect(self.pick_package)
        self.package_label = paragraph("")
        self.package_label.setAccessibleName("Package chosen")

        self.out_dir = QLineEdit()
        self.out_dir.setAccessibleName("Folder to save the opened files in")
        self.out_dir.setPlaceholderText("a new, empty folder")
        self.change_out = button("Chan&ge…", "Choose the folder for the opened files")
        self.change_out.clicked.connect(self._pick_out_dir)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(self.change_out)
        self.write_receipt = QCheckBox("Write a signed &receipt for the sender")
        self.write_receipt.setChecked(True)
        self.write_receipt.setAccessibleName("Write a signed receipt for the sender")
        self.receipt_path = QLineEdit()
        self.receipt_path.setAccessibleName("Receipt file")
        self.write_receipt.toggled.connect(self.receipt_path.setEnabled)
        form = QFormLayout()
        out_label = QLabel("Save the files &in:")
        out_label.setBuddy(self.out_dir)
        form.addRow(out_label, out_row)
        form.addRow("", self.write_receipt)
        form.addRow("Receipt &file:", self.receipt_path)
        self.form_box = QWidget()
        self.form_box.setLayout(form)
        self.open_button = button("&Open package", "Open package", default=True)
        self.open_button.clicked.connect(self.open_package)
        self.open_button.setEnabled(False)
        self.form_box.setEnabled(False)

        self.result_view = paragraph("")
        self.result_view.setTextFormat(Qt.TextFormat.RichText)
        self.result_view.setAccessibleName("What the package holds")
        self.fingerprint = QLabel()
        self.fingerprint.setFont(monospace_font(self.font(), 1.6))
        self.fingerprint.setAccessibleName("Sender's verified fingerprint")
        self.fingerprint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fingerprint.hide()
        self.report_view = paragraph("")
        self.report_view.setTextFormat(Qt.TextFormat.RichText)
        self.report_view.setAccessibleName("De-identification report")

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(10)
        layout.addWidget(heading("Receive a package"))
        layout.addWidget(
            paragraph(
                "Open a package a partner sent you. PathShare checks who sealed it, that it is addressed "
                "to you under an agreement in force, and that nothing was changed on the way — before "
                "anything is written to your folder."
            )
        )
        layout.addWidget(self.message)
        layout.addWidget(self.drop)
        layout.addWidget(self.package_label)
        layout.addWidget(self.form_box)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.open_button)
        layout.addLayout(row)
        layout.addWidget(self.result_view)
        layout.addWidget(self.fingerprint)
        layout.addWidget(self.report_view)
        layout.addStretch(1)
        scroll = scrolling(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    # -- choosing -----------------------------------------------------------------------------------
    def pick_package(self) -> None:
        """Ask for a package file (Ctrl+O)."""
        path, _ = open_file_name(
            self,
            "Open a package",
            self.session.settings.folder("package_in"),
            "Packages (*.age);;All files (*)",
        )
        if path:
            self.choose_package(path)

    def choose_package(self, path: str) -> None:
        """Use ``path``: suggest a new folder beside it and a receipt name."""
        if self.workspace.busy():
            return
        p = Path(path)
        self.session.settings.set_folder("package_in", p)
        self.package = str(p)
        self.result = None
        self.message.clear()
        self.result_view.setText("")
        self.report_view.setText("")
        self.fingerprint.hide()
        self.package_label.setText(f"Package: <b>{escape(p.name)}</b> ({_size(p)})")
        base = Path(self.session.settings.folder("receive_out"))
        out = base / p.name.removesuffix(".age")
        n = 2
        while out.exists():
            out = base / f"{p.name.removesuffix('.age')}-{n}"
            n += 1
        self.out_dir.setText(str(out))
        self.receipt_path.setText(str(out.parent / f"{out.name}-receipt.json"))
        self.form_box.setEnabled(True)
        self.open_button.setEnabled(True)
        self.open_button.setFocus()

    def _pick_out_dir(self) -> None:
        folder = existing_directory(self, "Save the opened files in", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    # -- opening ------------------------------------------------------------------------------------
    def open_package(self) -> None:
        """Open the package in the worker: verify, decrypt, write, log, receipt."""
        if not self.package or self.workspace.busy():
            return
        out_dir = self.out_dir.text().strip()
        if not out_dir:
            self.message.show_error("Choose a folder to save the opened files in.")
            return
        receipt = self.receipt_path.text().strip() if self.write_receipt.isChecked() else None
        force = False
        if receipt:
            from desktop.ui.partners_page import replace_choice

            answer = replace_choice(self, receipt)
            if answer is None:
                return
            force = answer
        self.session.settings.set_folder("receive_out", Path(out_dir).parent)
        self.message.clear()
        self.open_button.setEnabled(False)
        job = Job(
            "desktop.ui.jobs:open_received_package",
            {
                "package": self.package,
                "out_dir": out_dir,
                "receipt": receipt,
                "force": force,
                "reopen_reason": self.reopen_reason,
            },
            vault_path=str(self.session.vault_path),
            outputs=(receipt,) if receipt else (),
            # A killed worker may leave the library's private staging folder (decrypted data) beside
            # the destination, or a half-filled destination it created: both go on cancel.
            scratch=(str(Path(out_dir).parent / ".pathshare-open-*"),),
            new_dirs=(out_dir,),
            title=f"Opening {Path(self.package).name}",
        )
        self.workspace.start_job(job, self._opened, self._failed, self._cancelled)

    def _failed(self, error: Exception) -> None:
        self.open_button.setEnabled(True)
        self.message.show_problem(error)

    def _cancelled(self) -> None:
        self.open_button.setEnabled(True)
        self.message.show_info("Cancelled; nothing was written.")

    def start_reopen(self, reason: str) -> None:
        """Open once more a package opened before whose folder was lost, for ``reason``."""
        self.reopen_reason = reason
        self.message.show_info(
            "Choose the package file again and a new folder: it is opened once more, with your reason "
            "recorded."
        )

    def _opened(self, r: OpenedPackage) -> None:
        self.reopen_reason = None
        self.result = r
        self.open_button.setEnabled(False)
        checks = "".join(f"<li>✔ {escape(c)}</li>" for c in r.checks)
        checks += "".join(f"<li><b>Warning:</b> {escape(w)}</li>" for w in r.warnings)
        from agreements import is_kit_file

        # The data with its rows; the analyst's kit beside it by name (a codebook has no "rows").
        kit = [f.name for f in r.files if is_kit_file(f.name)]
        files = "".join(
            f"<li><b>{escape(f.name)}</b>: {f.rows:,} rows, {f.bytes:,} bytes</li>"
            for f in r.files
            if not is_kit_file(f.name)
        ) + (
            f"<li>Beside it, to read and load the data: {escape(', '.join(kit))}.</li>" if kit else ""
        )
        receipt = (
            f"<p>A signed receipt is in <b>{escape(r.receipt)}</b>: send it back to "
            f"{escape(r.sender)} so their log shows delivery.</p>"
            if r.receipt
            else "<p>No receipt was written.</p>"
        )
        self.result_view.setText(
            f"<h3>Opened: from {escape(r.sender)}</h3>"
            f"<p><b>Agreement:</b> {escape(r.agreement_title)} "
            f"<span style='font-family:monospace'>({escape(r.agreement_id)})</span></p>"
            f"<p><b>Checks passed:</b></p><ul>{checks}</ul>"
            f"<p><b>Saved in</b> {escape(r.out_dir)}:</p><ul>{files}</ul>{receipt}"
            f"<p><b>Sender's fingerprint</b> (verified against the card you confirmed):</p>"
        )
        self.fingerprint.setText(group_fingerprint(r.sender_fingerprint))
        self.fingerprint.setAccessibleDescription(r.sender_fingerprint)
        self.fingerprint.show()
        rep = r.report
        k = rep.get("k_achieved")
        self.report_view.setText(
            "<h3>How the sender de-identified it</h3>"
            f"<p>{escape(r.report_summary)}</p>"
            f"<p><b>Rows:</b> {rep.get('rows_in', 0):,} in the sender's extract, "
            f"{rep.get('rows_out', 0):,} shared. "
            f"<b>Smallest group (k):</b> {k if k is not None else '—'} "
            f"(required {rep.get('k_required', '—')}). "
            f"<b>Cells blanked:</b> {rep.get('suppressed_cells', 0):,}. "
            f"<b>Possible personal information left:</b> {len(rep.get('residual_findings') or [])}.</p>"
        )


def _size(path: Path) -> str:
    try:
        n = path.stat().st_size
    except OSError:
        return "unreadable"
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
