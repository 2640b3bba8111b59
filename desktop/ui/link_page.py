"""Link two files (the college analyst's flow): join two de-identified files on their link tokens.

The same library workflow as ``pathshare link`` (``agreements.link_files``: it links and writes the
audit entry) runs in the worker process on the unlocked vault; this screen only asks for the two files,
the method and where to save, and shows the report's counts. It never
sees a name or an ID: the files carry keyed tokens, and the report holds only counts and rates.
"""

from __future__ import annotations

import glob
import itertools
from html import escape
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import Job, run_task
from desktop.ui.filedialogs import open_file_name, save_file_name
from desktop.ui.widgets import DropZone, MessageBar, button, heading, paragraph, scrolling

EXTENSIONS = (".csv", ".tsv", ".txt", ".parquet", ".xlsx")
# The library's methods (deid._linkmatch.METHODS), as the window names them.
METHOD_LABELS = (
    ("combined", "Combined: state ID and derived-key tokens (recommended)"),
    ("em", "Combined, with match weights estimated from these two files"),
    ("id", "State ID only"),
    ("calpass", "Cal-PASS-style baseline: state ID, then the derived key"),
)
SHORTCUT = "Ctrl+Shift+L"  # Ctrl+L is the window's Lock


class _FileSide:
    """One input file: its drop zone, the line under it, and what the library found in it."""

    def __init__(self, letter: str) -> None:
        self.letter = letter
        self.path: str | None = None
        self.info: dict[str, Any] | None = None  # rows, token_column (None: no link tokens)
        self.generation = 0  # a newer choice makes an older inspection's answer stale
        self.drop = DropZone(
            f"Drop file {letter} here (CSV or Parquet)", EXTENSIONS, f"Choose file &{letter}…"
        )
        self.drop.setMinimumHeight(96)
        self.drop.setAccessibleName(f"Drop area for file {letter}")
        self.drop.button.setAccessibleName(f"Choose file {letter}")
        self.line = paragraph(f"No file {letter} yet.")
        self.line.setAccessibleName(f"File {letter}")

    def ready(self) -> bool:
        return bool(self.info and self.info.get("token_column"))


class LinkPage(QWidget):
    """Link two de-identified files on their link tokens; save the linked rows and the report."""

    def __init__(self, workspace: Any) -> None:
        super().__init__()
        self.workspace = workspace
        self.session = workspace.session
        self.result: dict[str, Any] | None = None

        self.message = MessageBar()
        self.side_a, self.side_b = _FileSide("A"), _FileSide("B")
        for side in (self.side_a, self.side_b):
            side.drop.file_dropped.connect(lambda path, s=side: self.choose_file(s.letter, path))
            side.drop.choose_clicked.connect(lambda s=side: self.pick_file(s.letter))

        self.method = QComboBox()
        self.method.setAccessibleName("Linkage method")
        for key, label in METHOD_LABELS:
            self.method.addItem(label, key)
        self.out_path = QLineEdit()
        self.out_path.setAccessibleName("File to save the linked rows in")
        self.out_path.setPlaceholderText("linked.csv or linked.parquet")
        self.change_out = button("Chan&ge…", "Choose the file for the linked rows")
        self.change_out.clicked.connect(self._pick_out)
        self.report_path = QLineEdit()
        self.report_path.setAccessibleName("File to save the report in")
        self.report_path.setPlaceholderText("linked-report.json")
        self.change_report = button("Choose…", "Choose the file for the report")
        self.change_report.clicked.connect(self._pick_report)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        method_label = QLabel("&Method:")
        method_label.setBuddy(self.method)
        form.addRow(method_label, self.method)
        out_label = QLabel("Save linked rows &to:")
        out_label.setBuddy(self.out_path)
        form.addRow(out_label, _row(self.out_path, self.change_out))
        report_label = QLabel("Save the &report to:")
        report_label.setBuddy(self.report_path)
        form.addRow(report_label, _row(self.report_path, self.change_report))

        self.link_button = button("&Link", "Link the two files", default=True)
        self.link_button.setToolTip(f"Link the two files ({SHORTCUT})")
        self.link_button.setEnabled(False)
        self.link_button.clicked.connect(self.run_link)
        action = QAction(self)
        action.setShortcut(QKeySequence(SHORTCUT))
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(self.run_link)
        self.addAction(action)

        self.results = QGroupBox("Result")
        self.results.setAccessibleName("Linkage result")
        # A grid rather than a form: each name sits on the first line of its (wrapping) value.
        results_grid = QGridLayout(self.results)
        results_grid.setVerticalSpacing(6)
        results_grid.setHorizontalSpacing(12)
        results_grid.setColumnStretch(1, 1)
        self.values: dict[str, QLabel] = {}
        for i, (key, label) in enumerate(
            (
                ("rows", "Rows:"),
                ("linked", "Pairs linked:"),
                ("rate", "Rate:"),
                ("method", "Method:"),
                ("by_method", "Linked by:"),
                ("candidates", "Candidates:"),
                ("notes", "Notes:"),
                ("written", "Written:"),
            )
        ):
            value = paragraph("")
            value.setTextFormat(Qt.TextFormat.RichText)
            value.setAccessibleName(label.rstrip(":"))
            self.values[key] = value
            results_grid.addWidget(
                QLabel(label), i, 0, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
            )
            results_grid.addWidget(value, i, 1, Qt.AlignmentFlag.AlignTop)
        # The library draws the charts (deid.link_chart_png); this label only shows the image.
        self.chart = QLabel()
        self.chart.setAccessibleName("Charts of the match weights and of the candidate pairs by score")
        self.chart.setAlignment(Qt.AlignmentFlag.AlignLeft)
        results_grid.addWidget(self.chart, len(self.values), 0, 1, 2)
        self.results.hide()

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.setSpacing(10)
        layout.addWidget(heading("Link two files"))
        layout.addWidget(
            paragraph(
                "Follow students across partners without seeing who they are: join two de-identified "
                "files (for example a district's and the college's) on their link tokens. Both must have "
                "been de-identified under the same agreement's linkage secret. Only counts are shown."
            )
        )
        layout.addWidget(self.message)
        # A grid, so both drop zones stay the same size whichever line under them wraps.
        files = QGridLayout()
        files.setHorizontalSpacing(12)
        files.setVerticalSpacing(4)
        for i, side in enumerate((self.side_a, self.side_b)):
            files.addWidget(side.drop, 0, i)
            files.addWidget(side.line, 1, i, Qt.AlignmentFlag.AlignTop)
            files.setColumnStretch(i, 1)
        layout.addLayout(files)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.link_button)
        layout.addLayout(row)
        layout.addWidget(self.results)
        layout.addStretch(1)
        scroll = scrolling(body)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        chain = [self.side_a.drop.button, self.side_b.drop.button, self.method, self.out_path,
                 self.change_out, self.report_path, self.change_report, self.link_button]  # fmt: skip
        for first, second in itertools.pairwise(chain):
            self.setTabOrder(first, second)

    # -- choosing -----------------------------------------------------------------------------------
    def _side(self, letter: str) -> _FileSide:
        return self.side_a if letter == "A" else self.side_b

    def pick_file(self, letter: str) -> None:
        """Ask for file A or B."""
        path, _ = open_file_name(
            self,
            f"Choose file {letter}",
            self.session.settings.folder("link_in"),
            "De-identified files (*.csv *.tsv *.txt *.parquet *.xlsx);;All files (*)",
        )
        if path:
            self.choose_file(letter, path)

    def choose_file(self, letter: str, path: str) -> None:
        """Use ``path`` as file A or B: read it (on a thread) for its rows and link-tokens column."""
        if self.workspace.busy():
            return
        from desktop.ui.jobs import describe_link_file

        side = self._side(letter)
        p = Path(path)
        self.session.settings.set_folder("link_in", p)
        side.path, side.info = str(p), None
        side.generation += 1
        generation = side.generation
        side.line.setText(f"<b>{escape(p.name)}</b>: reading…")
        self.message.clear()
        self.results.hide()
        self.result = None
        if letter == "A" and not self.out_path.text().strip():
            self._set_out(str(p.parent / "linked.csv"))
        self._update_button()

        def stale() -> bool:
            # Another file was chosen since, or the window was locked (the page is gone) while reading.
            return side.generation != generation or not shiboken6.isValid(self.message)

        def done(info: dict[str, Any]) -> None:
            if stale():
                return
            side.info = info
            rows = f"{info['rows']:,} row{'s' if info['rows'] != 1 else ''}"
            if info["token_column"]:
                side.line.setText(f"<b>{escape(p.name)}</b>: {rows}; link tokens in column "
                                  f"<b>{escape(info['token_column'])}</b>.")  # fmt: skip
            else:
                side.line.setText(f"<b>{escape(p.name)}</b>: {rows}; <b>no single link-tokens column</b>.")
                self.message.show_error(
                    f"{p.name} does not have exactly one column of link tokens: link files that were "
                    "de-identified under an agreement that shares link tokens (its linkage secret)."
                )
            self._update_button()

        def failed(error: Exception) -> None:
            if stale():
                return
            side.info = None
            side.line.setText(f"<b>{escape(p.name)}</b>: cannot be read.")
            self.message.show_problem(error)
            self._update_button()

        sync = self.session.synchronous
        run_task(lambda: describe_link_file(str(p)), done, failed, "files", synchronous=sync)

    def _set_out(self, out: str) -> None:
        self.out_path.setText(out)
        self.report_path.setText(str(_report_for(Path(out))))

    def _pick_out(self) -> None:
        folder = Path(self.session.settings.folder("link_out"))
        start = self.out_path.text().strip() or str(folder / "linked.csv")
        path, _ = save_file_name(
            self, "Save the linked rows", start, "CSV (*.csv);;Parquet (*.parquet)"
        )
        if path:
            self.session.settings.set_folder("link_out", Path(path))
            self._set_out(path)

    def _pick_report(self) -> None:
        start = self.report_path.text().strip() or str(Path(self.session.settings.folder("link_out")))
        path, _ = save_file_name(self, "Save the report", start, "JSON (*.json)")
        if path:
            self.report_path.setText(path)

    def _update_button(self) -> None:
        self.link_button.setEnabled(self.side_a.ready() and self.side_b.ready() and not self.workspace.busy())

    # -- linking ------------------------------------------------------------------------------------
    def run_link(self) -> None:
        """Link the two files in the worker (``agreements.link_files``, as ``pathshare link``)."""
        if not self.link_button.isEnabled() or self.workspace.busy():
            return
        assert self.side_a.path and self.side_b.path
        out = self.out_path.text().strip()
        report = self.report_path.text().strip()
        if not out or not report:
            self.message.show_error("Choose where to save the linked rows and the report.")
            return
        inputs = {str(Path(self.side_a.path).resolve()), str(Path(self.side_b.path).resolve())}
        if str(Path(out).resolve()) in inputs or str(Path(report).resolve()) in inputs:
            self.message.show_error("Save the linked rows and the report to new files, not over file A or B.")
            return
        if Path(out).resolve() == Path(report).resolve():
            self.message.show_error("The linked rows and the report need two different files.")
            return
        from desktop.ui.partners_page import replace_choice

        force = False
        for target in (out, report):
            answer = replace_choice(self, target)
            if answer is None:
                return
            force = force or answer
        self.session.settings.set_folder("link_out", Path(out))
        self.message.clear()
        self.results.hide()
        self.result = None
        self.link_button.setEnabled(False)
        job = Job(
            "desktop.ui.jobs:link_files",
            {
                "file_a": self.side_a.path,
                "file_b": self.side_b.path,
                "out": out,
                "report": report,
                "method": self.method.currentData(),
                "force": force,
            },
            outputs=(out, report),
            vault_path=str(self.session.vault_path),
            # The library writes the linked file, then the report: a cancel between the two must not
            # leave one without the other, so both go when the job does not finish (if made by it).
            scratch=(glob.escape(out), glob.escape(report)),
            # The token join's spill folder (beside the output) goes too when the worker is stopped:
            # its own only, by the folder's owner note — another link beside the same output keeps its.
            run_folders=(str(Path(out).parent),),
            title=f"Linking {Path(self.side_a.path).name} and {Path(self.side_b.path).name}",
        )
        self.workspace.start_job(job, self._linked, self._failed, self._cancelled)

    def _failed(self, error: Exception) -> None:
        self._update_button()
        self.message.show_problem(error)

    def _cancelled(self) -> None:
        self._update_button()
        self.message.show_info("Cancelled; nothing was written.")

    def _linked(self, r: dict[str, Any]) -> None:
        self.result = r
        self._update_button()
        name_a, name_b = escape(Path(r["file_a"]).name), escape(Path(r["file_b"]).name)
        v = self.values
        v["rows"].setText(f"{r['rows_a']:,} in A ({name_a}), {r['rows_b']:,} in B ({name_b})")
        v["linked"].setText(f"<b>{r['linked']:,}</b>")
        v["rate"].setText(f"<b>{r['rate_a']:.1%}</b> of A's rows, <b>{r['rate_b']:.1%}</b> of B's rows")
        by = r["linked_by"]
        v["method"].setText(escape(dict(METHOD_LABELS).get(r["method"], r["method"])))
        v["by_method"].setText(
            f"{by.get('id', 0):,} by the state ID token, {by.get('derived', 0):,} by derived-key tokens"
        )
        v["candidates"].setText(
            f"{r['candidate_pairs']:,} pairs considered; {r['below_threshold']:,} below the match threshold "
            f"({r['threshold']}); "
            f"{r['left_ambiguous']:,} row(s) left unlinked because their best candidates tied"
            + (f"; {r['kept_apart']:,} pair(s) not linked: same name, birth date and sex but two different "
               "state IDs" if r.get("kept_apart") else "")
        )
        notes = r.get("notes") or []
        v["notes"].setText("; ".join(escape(n) for n in notes) if notes else "none")
        v["written"].setText(
            f"linked rows in <b>{escape(r.get('output') or self.out_path.text())}</b><br>"
            f"report in <b>{escape(self.report_path.text())}</b>"
        )
        pixmap = QPixmap()
        if r.get("chart_png") and pixmap.loadFromData(r["chart_png"], "PNG"):
            self.chart.setPixmap(pixmap)
            self.chart.show()
        else:
            self.chart.clear()
            self.chart.hide()
        self.results.show()


def _row(edit: QLineEdit, change: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(change)
    return row


def _report_for(out: Path) -> Path:
    return out.parent / f"{out.stem}-report.json"
