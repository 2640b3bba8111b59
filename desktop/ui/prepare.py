"""Prepare (the district clerk's flow): agreement → extract → mapping → checks → preview → risk → seal.

Every decision is the libraries': the worker jobs in :mod:`desktop.ui.jobs` read the extract, suggest
the mapping, de-identify, check and seal. This screen collects choices and shows results.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import Job
from desktop.ui.filedialogs import open_file_name, save_file_name
from desktop.ui.widgets import DropZone, MessageBar, button, heading, paragraph, scrolling

if TYPE_CHECKING:  # the worker's result types (desktop/ui/jobs.py), for the annotations
    from desktop.ui.jobs import Inspection, Preview, SealedExtract

EXTRACT_TYPES = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".parquet", ".pq")
NOT_SHARED = "(not shared)"
KEEP_VALUE = "(keep as is)"
STEPS = (
    "Choose the agreement",
    "Choose the extract",
    "Match your columns",
    "Check the extract",
    "Preview the changes",
    "Check the risk",
    "Seal and save",
    "Done",
)


def _step_page(*widgets: QWidget, stretch: int | None = None) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.setSpacing(10)
    for i, w in enumerate(widgets):
        layout.addWidget(w, 1 if stretch == i else 0)
    if stretch is None:
        layout.addStretch(1)
    return page


def _table_view(name: str) -> QTableView:
    view = QTableView()
    view.setAccessibleName(name)
    view.setAlternatingRowColors(True)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
    view.setWordWrap(False)
    view.horizontalHeader().setDefaultSectionSize(120)
    view.verticalHeader().setDefaultSectionSize(view.fontMetrics().height() + 8)
    # Fixed row heights: the view never measures 1,000,000 rows.
    view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    return view


class PrepareScreen(QWidget):
    """The guided Prepare flow."""

    def __init__(self, workspace: Any) -> None:
        super().__init__()
        from desktop.ui.table_model import ArrowTableModel

        self.workspace = workspace
        self.session = workspace.session
        self.agreement: dict[str, Any] | None = None
        self.extract: str | None = None
        self.inspection: Inspection | None = None
        self.preview: Preview | None = None
        # the clerk's pick among the disclosure search's candidates (levels per column); None: the best
        self.choice: dict[str, str] | None = None
        self._back_to_risk = False
        self.validation: list[dict[str, Any]] = []
        self.sealed: SealedExtract | None = None
        self._shm: list[Any] = []
        self.before_model = ArrowTableModel()
        self.after_model = ArrowTableModel()

        self.title = heading("Prepare a package")
        self.step_label = QLabel()
        self.step_label.setAccessibleName("Current step")
        self.message = MessageBar()
        self.steps = QStackedWidget()
        # The steps first, then Back/Next: Tab goes through a step's controls before the buttons.
        for build in (
            self._build_agreement,
            self._build_extract,
            self._build_mapping,
            self._build_checks,
            self._build_preview,
            self._build_risk,
            self._build_seal,
            self._build_done,
        ):
            self.steps.addWidget(build())
        # Alt+N / Alt+B are actions on this screen (not mnemonics, which change with the button text).
        self.back = button("Back", "Back")
        self.next = button("Next", "Next", default=True)
        self.back.setToolTip("Previous step (Alt+B)")
        self.next.setToolTip("Next step (Alt+N)")
        for keys, slot in (("Alt+N", self.go_next), ("Alt+B", self.go_back)):
            action = QAction(self)
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
        self.back.clicked.connect(self.go_back)
        self.next.clicked.connect(self.go_next)
        nav = QHBoxLayout()
        nav.addStretch(1)
        nav.addWidget(self.back)
        nav.addWidget(self.next)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 8)
        layout.addWidget(self.title)
        layout.addWidget(self.step_label)
        layout.addWidget(self.message)
        layout.addWidget(self.steps, 1)
        layout.addLayout(nav)
        open_extract = QAction(self)
        open_extract.setShortcut(QKeySequence("Ctrl+Shift+O"))
        open_extract.triggered.connect(self.pick_extract)
        self.addAction(open_extract)
        self._loaded = False
        self._show_step(0)

    # -- building -----------------------------------------------------------------------------------
    def _build_agreement(self) -> QWidget:
        self.agreement_list = QListWidget()
        self.agreement_list.setAccessibleName("Agreements in force")
        self.agreement_list.setWordWrap(True)
        self.agreement_list.setSpacing(3)
        self.agreement_list.currentItemChanged.connect(self._agreement_chosen)
        self.agreement_list.itemDoubleClicked.connect(lambda _i: self.go_next())
        self.agreement_details = paragraph("")
        self.agreement_details.setTextFormat(Qt.TextFormat.RichText)
        self.agreement_details.setAccessibleName("Agreement details")
        self.agreement_details.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.no_agreement = paragraph("")
        split = QSplitter()
        split.addWidget(self.agreement_list)
        details_box = QWidget()
        box = QVBoxLayout(details_box)
        box.setContentsMargins(8, 0, 0, 0)
        box.addWidget(self.agreement_details)
        box.addStretch(1)
        split.addWidget(details_box)
        split.setSizes([320, 520])
        intro = paragraph(
            "Data leaves your organization only under an executed agreement that is in force. "
            "Choose the one this extract is for."
        )
        return _step_page(intro, self.no_agreement, split, stretch=2)

    def _build_extract(self) -> QWidget:
        self.drop = DropZone(
            "Drop your extract here (CSV, Excel .xlsx or Parquet),\nor choose it from a folder.",
            EXTRACT_TYPES,
            "&Choose extract…",
        )
        self.drop.file_dropped.connect(self.choose_extract)
        self.drop.choose_clicked.connect(self.pick_extract)
        self.extract_label = paragraph("")
        note = paragraph(
            "The extract is read on this computer only. Nothing is sent anywhere: at the end you "
            "choose where the sealed package is saved."
        )
        return _step_page(note, self.drop, self.extract_label)

    def _build_mapping(self) -> QWidget:
        self.mapping = QTableWidget(0, 4)
        self.mapping.setHorizontalHeaderLabels(["Your column", "Shared element", "Confidence", "Why"])
        self.mapping.setAccessibleName("Column mapping")
        self.mapping.verticalHeader().hide()
        self.mapping.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.mapping.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.mapping.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.mapping.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        # The element's words are long ("State student ID (SSID) — replace with a code…"): a fixed width
        # that elides (whole text in the item tooltips), so Confidence and Why stay in sight.
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        self.mapping.setColumnWidth(1, 300)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.mapping.currentCellChanged.connect(lambda r, *_: self._show_recodes(r))
        self.recodes = QTableWidget(0, 2)
        self.recodes.setHorizontalHeaderLabels(["Your value", "Shared code"])
        self.recodes.setAccessibleName("Value recodes")
        self.recodes.verticalHeader().hide()
        self.recodes.horizontalHeader().setStretchLastSection(True)
        self.recodes.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.recodes_box = QGroupBox("Value recodes")
        rb = QVBoxLayout(self.recodes_box)
        self.recodes_note = paragraph("Select a column mapped to a coded element to translate its values.")
        rb.addWidget(self.recodes_note)
        rb.addWidget(self.recodes)
        self.profile_name = QLineEdit()
        self.profile_name.setAccessibleName("Profile name")
        self.profile_name.setPlaceholderText("e.g. Aeries export")
        self.profile_name.textChanged.connect(lambda _t: self._update_next())
        profile_label = QLabel("Save these choices as &profile:")
        profile_label.setBuddy(self.profile_name)
        self.profile_note = paragraph(
            "Your choices are saved under this name when you go on, and offered again when the same "
            "export comes back."
        )
        intro = paragraph(
            "PathShare suggests which shared element each of your columns holds. Check each "
            "suggestion; choose “(not shared)” for anything that should not leave. Columns not "
            "matched to an element are dropped."
        )
        # Side by side: the mapping keeps the height for its rows, the recodes of the selected column
        # get a full-height list beside it.
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.mapping)
        split.addWidget(self.recodes_box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([600, 260])
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(profile_label)
        row.addWidget(self.profile_name, 1)
        bottom = QWidget()
        bottom.setLayout(row)
        return _step_page(intro, split, bottom, self.profile_note, stretch=1)

    def _build_checks(self) -> QWidget:
        self.findings = QListWidget()
        self.findings.setAccessibleName("Findings about the extract")
        self.findings.setWordWrap(True)
        intro = paragraph(
            "What PathShare noticed in your extract. Warnings do not stop you; read them before you go on. "
            "Next de-identifies the extract under the agreement and shows you the result."
        )
        return _step_page(intro, self.findings, stretch=1)

    def _build_preview(self) -> QWidget:
        self.before_view = _table_view("Before: your extract")
        self.before_view.setModel(self.before_model)
        self.after_view = _table_view("After: what will be shared")
        self.after_view.setModel(self.after_model)
        # Scroll the two sides together (rows line up one to one).
        self.before_view.verticalScrollBar().valueChanged.connect(self.after_view.verticalScrollBar().setValue)
        self.after_view.verticalScrollBar().valueChanged.connect(self.before_view.verticalScrollBar().setValue)
        split = QSplitter()
        sides = (
            ("Before — your extract", self.before_view),
            ("After — what will be shared", self.after_view),
        )
        for title, view in sides:
            box = QWidget()
            b = QVBoxLayout(box)
            b.setContentsMargins(0, 0, 0, 0)
            label = QLabel(f"<b>{title}</b>")
            b.addWidget(label)
            b.addWidget(view, 1)
            split.addWidget(box)
        self.preview_note = paragraph("")
        return _step_page(self.preview_note, split, stretch=1)

    def _build_risk(self) -> QWidget:
        self.risk_summary = paragraph("")
        self.risk_summary.setTextFormat(Qt.TextFormat.RichText)
        self.risk_summary.setAccessibleName("Risk summary")
        self.residual = QListWidget()
        self.residual.setAccessibleName("Possible personal information left")
        self.residual.currentRowChanged.connect(self._select_finding)
        self.residual.setMaximumHeight(160)
        self.risk_view = _table_view("What will be shared")
        self.risk_view.setModel(self.after_model)
        # Ways to share: the disclosure search's candidates side by side, one column each (what each
        # keeps of every detail, students losing a value, information lost, groups losing more than
        # others); the clerk picks a column the agreement allows
        self.choices = QTableWidget()
        self.choices.setAccessibleName("Ways to share, side by side")
        self.choices.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectColumns)
        self.choices.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.choices.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.choices.setWordWrap(True)
        self.choices.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.choices.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.choices.currentCellChanged.connect(lambda *_: self._update_choice_button())
        self.use_choice = button("&Use this way", "Share the selected way instead")
        self.use_choice.clicked.connect(self.use_selected_choice)
        self.choice_note = paragraph("")
        choice_page = QWidget()
        col = QVBoxLayout(choice_page)
        col.setContentsMargins(0, 4, 0, 0)
        col.addWidget(self.choices, 1)
        row = QHBoxLayout()
        row.addWidget(self.choice_note, 1)
        row.addWidget(self.use_choice, 0, Qt.AlignmentFlag.AlignTop)
        col.addLayout(row)
        self.charts = QLabel()
        self.charts.setAccessibleName("Charts: groups by size, information lost, students before and after")
        self.charts.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.risk_tabs = QTabWidget()
        self.risk_tabs.addTab(self.risk_view, "What will be shared")
        self.risk_tabs.addTab(choice_page, "Ways to share")
        self.risk_tabs.addTab(self.charts, "Charts")
        # The summary scrolls on its own: with several warnings it is taller than a small window, and
        # a layout that cannot fit its widgets' minimum heights draws them over one another.
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addWidget(scrolling(self.risk_summary), 2)
        layout.addWidget(self.residual)
        layout.addWidget(self.risk_tabs, 3)
        return page

    def _build_seal(self) -> QWidget:
        self.seal_summary = paragraph("")
        self.seal_summary.setTextFormat(Qt.TextFormat.RichText)
        self.seal_summary.setAccessibleName("What will leave your organization")
        self.seal_button = button("&Seal and save…", "Seal and save the package", default=True)
        self.seal_button.clicked.connect(self.seal)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.seal_button)
        holder = QWidget()
        holder.setLayout(row)
        return scrolling(_step_page(self.seal_summary, holder))

    def _build_done(self) -> QWidget:
        self.done_summary = paragraph("")
        self.done_summary.setTextFormat(Qt.TextFormat.RichText)
        self.done_summary.setAccessibleName("Summary of the package")
        self.again = button("Prepare &another package", "Prepare another package")
        self.again.clicked.connect(self.restart)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.again)
        holder = QWidget()
        holder.setLayout(row)
        return scrolling(_step_page(self.done_summary, holder))  # a long summary scrolls, never overlaps

    # -- navigation ---------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.load_agreements()

    def _show_step(self, index: int) -> None:
        self.steps.setCurrentIndex(index)
        self.step_label.setText(f"Step {index + 1} of {len(STEPS)}: {STEPS[index]}")
        self.back.setEnabled(0 < index < len(STEPS) - 1)
        self.back.setVisible(index < len(STEPS) - 1)
        self.next.setVisible(index < 6)
        self.next.setText("Next")
        if index == 3:
            self.next.setText("De-identify and preview")
        self._update_next()

    def _update_next(self) -> None:
        i = self.steps.currentIndex()
        ok = {
            0: self.agreement is not None,
            1: self.inspection is not None,
            2: self.inspection is not None and bool(self.profile_name.text().strip()),
            3: self.inspection is not None and not self._blocking_findings(),
            4: self.preview is not None,
            # the library's one sealing gate (agreements.sealing_problems), as the preview job ran it
            5: self.preview is not None and not self.preview.problems,
        }.get(i, False)
        self.next.setEnabled(ok and not self.workspace.busy())

    def _blocking_findings(self) -> list[dict[str, Any]]:
        return [f for f in self.validation if f.get("severity") == "error"]

    def go_back(self) -> None:
        """Alt+B: the previous step."""
        i = self.steps.currentIndex()
        if i > 0 and not self.workspace.busy():
            self.message.clear()
            self._show_step(i - 1)

    def go_next(self) -> None:
        """Alt+N: the next step (some steps first run a job)."""
        i = self.steps.currentIndex()
        if not self.next.isEnabled() or self.workspace.busy():
            return
        self.message.clear()
        if i == 1 and self.inspection is None:
            return
        if i == 2:
            self.run_validation()
            return
        if i == 3:
            self.run_preview()
            return
        if i == 5:
            self._fill_seal_summary()
        self._show_step(i + 1)

    def restart(self) -> None:
        """Start over with the same agreement."""
        self.release()
        self.extract = None
        self.inspection = None
        self.preview = None
        self.choice = None
        self.sealed = None
        self.extract_label.setText("")
        self._show_step(0)

    # -- step 1: agreement --------------------------------------------------------------------------
    def load_agreements(self) -> None:
        """List executed, in-force agreements under which this organization provides data."""
        from deid.errors import PathShareError
        from desktop.ui.jobs import provider_agreements

        self.agreement_list.clear()
        try:
            found = provider_agreements(self.session.vault)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        for a in found:
            item = QListWidgetItem(f"{a['title']}\nexpires {a['expires']}")
            item.setData(Qt.ItemDataRole.UserRole, a)
            item.setToolTip(a["purpose"])
            self.agreement_list.addItem(item)
        if not found:
            self.no_agreement.setText(
                "No agreement in force names your organization as a data provider. Draft one, or "
                "import the copy a partner sent, on the Agreements screen; data can be prepared once "
                "every party has signed it."
            )
        else:
            self.no_agreement.setText("")
            self.agreement_list.setCurrentRow(0)

    def _agreement_chosen(self, item: QListWidgetItem | None, _previous: Any = None) -> None:
        self.agreement = item.data(Qt.ItemDataRole.UserRole) if item else None
        if self.agreement:
            a = self.agreement
            recipients = "".join(f"<li>{escape(r)}</li>" for r in a["recipients"])
            self.agreement_details.setText(
                f"<h3>{escape(a['title'])}</h3>"
                f"<p><b>Purpose:</b> {escape(a['purpose'])}</p>"
                f"<p><b>Recipients</b> (the only ones who can open the package):</p><ul>{recipients}</ul>"
                f"<p><b>In force</b> from {a['effective']} until <b>{a['expires']}</b>; "
                f"recipients must destroy the data by {a['destruction']}.</p>"
                f"<p><b>Shared elements:</b> {len(a['elements'])} · "
                f"<b>minimum group size (k):</b> {a['k']}</p>"
            )
        else:
            self.agreement_details.setText("")
        self.inspection = None
        self.preview = None
        self.choice = None
        self._update_next()

    # -- step 2: extract ----------------------------------------------------------------------------
    def pick_extract(self) -> None:
        """Ask for an extract file (Ctrl+Shift+O)."""
        path, _ = open_file_name(
            self,
            "Choose the extract",
            self.session.settings.folder("extract"),
            "Extracts (*.csv *.txt *.tsv *.xlsx *.xlsm *.parquet *.pq);;All files (*)",
        )
        if path:
            self.choose_extract(path)

    def choose_extract(self, path: str) -> None:
        """Use ``path`` as the extract: read it in the worker, suggest the mapping."""
        if self.agreement is None or self.workspace.busy():
            return
        self.session.settings.set_folder("extract", path)
        self.extract = path
        self.inspection = None
        self.preview = None
        self.choice = None
        self.extract_label.setText(f"Reading {Path(path).name}…")
        self.message.clear()
        if self.steps.currentIndex() != 1:
            self._show_step(1)
        job = Job(
            "desktop.ui.jobs:inspect_extract",
            {"path": path, "agreement_id": self.agreement["id"]},
            vault_path=str(self.session.vault_path),
            title=f"Reading {Path(path).name}",
        )
        self.workspace.start_job(job, self._inspected, self._failed, self._cancelled)
        self._update_next()

    def _inspected(self, result: Inspection) -> None:
        self.inspection = result
        self.extract_label.setText(
            f"<b>{escape(Path(result.path).name)}</b>: {result.rows:,} rows, "
            f"{len(result.columns)} columns."
        )
        self._fill_mapping()
        self._show_step(2)

    def _failed(self, error: Exception) -> None:
        self.message.show_problem(error)
        if self.steps.currentIndex() == 1:
            self.extract_label.setText("")
        self._update_next()

    def _cancelled(self) -> None:
        self.message.show_info("Cancelled; nothing was written.")
        if self.steps.currentIndex() == 1:
            self.extract_label.setText("")
        self._update_next()

    # -- step 3: mapping ----------------------------------------------------------------------------
    def _fill_mapping(self) -> None:
        from agreements import TREATMENT_CHOICES

        assert self.inspection is not None
        elements = self.inspection.elements
        suggestions = self.inspection.suggestions
        self.mapping.setRowCount(len(self.inspection.columns))
        self._recode_choices: dict[str, dict[str, str]] = {}
        for r, column in enumerate(self.inspection.columns):
            self.mapping.setItem(r, 0, QTableWidgetItem(column))
            combo = QComboBox()
            combo.setAccessibleName(f"Shared element for column {column}")
            combo.addItem(NOT_SHARED, None)
            for e in elements:
                # The element as people call it, and what happens to it in words (not its name and
                # the treatment's: "state_student_id (record code)").
                treatment = TREATMENT_CHOICES.get(e.treatment, e.treatment)
                words = f"{e.label or e.name} — {treatment[0].lower()}{treatment[1:]}"
                combo.addItem(words, e.name)
                combo.setItemData(combo.count() - 1, f"{treatment} (shared as {e.name})",
                                  Qt.ItemDataRole.ToolTipRole)
            s = suggestions.get(column)
            if s is not None and s.element:
                combo.setCurrentIndex(max(0, combo.findData(s.element)))
            combo.currentIndexChanged.connect(lambda _i, r=r: self._mapping_changed(r))
            self.mapping.setCellWidget(r, 1, combo)
            shown = f"{s.confidence:.0%}" if s is not None and s.element else "—"
            self.mapping.setItem(r, 2, QTableWidgetItem(shown))
            why = QTableWidgetItem(s.why if s is not None else "")
            why.setToolTip(s.why if s is not None else "")
            self.mapping.setItem(r, 3, why)
        note = self.inspection.profile_note or (
            "Your choices are saved under this name when you go on, and offered again when the same "
            "export comes back."
        )
        self.profile_note.setText(note)
        self.profile_name.setText(
            self.inspection.profile or f"{Path(self.inspection.path).stem} export"
        )
        if self.mapping.rowCount():
            self.mapping.setCurrentCell(0, 0)

    def _mapping_changed(self, row: int) -> None:
        self.mapping.setItem(row, 2, QTableWidgetItem("your choice"))
        self.mapping.setItem(row, 3, QTableWidgetItem(""))
        self.preview = None
        self.choice = None
        self._show_recodes(row)

    def current_mapping(self) -> dict[str, str | None]:
        """{your column: element name or None} as chosen on the mapping step."""
        out: dict[str, str | None] = {}
        for r in range(self.mapping.rowCount()):
            combo = self.mapping.cellWidget(r, 1)
            out[self.mapping.item(r, 0).text()] = combo.currentData() if combo else None
        return out

    def set_element(self, column: str, element: str | None) -> None:
        """Choose ``element`` for ``column`` (as the user would in the combo box)."""
        for r in range(self.mapping.rowCount()):
            if self.mapping.item(r, 0).text() == column:
                combo = self.mapping.cellWidget(r, 1)
                combo.setCurrentIndex(combo.findData(element))
                return
        raise KeyError(column)

    def _show_recodes(self, row: int) -> None:
        from agreements import code_with_label

        self._store_recodes()
        self.recodes.setRowCount(0)
        self._recode_column = None
        if self.inspection is None or row < 0 or row >= self.mapping.rowCount():
            return
        column = self.mapping.item(row, 0).text()
        element = self.current_mapping().get(column)
        chosen_element = next((e for e in self.inspection.elements if e.name == element), None)
        codes = chosen_element.codes if chosen_element is not None else []
        labels = chosen_element.labels if chosen_element is not None else {}
        values = self.inspection.values.get(column, [])
        if not element or not codes:
            self.recodes_note.setText("Select a column mapped to a coded element to translate its values.")
            return
        if not values:
            self.recodes_note.setText(f"{column} has too many different values to recode here.")
            return
        self._recode_column = column
        chosen = self._recode_choices.get(column, {})
        suggested = self.inspection.recode_suggestions.get(column, {})
        self.recodes_note.setText(f"Translate the values of {column} into the codes of {element}.")
        self.recodes.setRowCount(len(values))
        for r, value in enumerate(values):
            self.recodes.setItem(r, 0, QTableWidgetItem(value))
            combo = QComboBox()
            combo.setAccessibleName(f"Code for value {value}")
            combo.addItem(KEEP_VALUE, None)
            for code in codes:
                combo.addItem(code_with_label(code, labels), code)  # "700 — White", not "700"
            pick = chosen.get(value, suggested.get(value))
            if pick is not None:
                combo.setCurrentIndex(max(0, combo.findData(pick)))
            self.recodes.setCellWidget(r, 1, combo)

    def _store_recodes(self) -> None:
        column = getattr(self, "_recode_column", None)
        if not column:
            return
        choice: dict[str, str | None] = {}
        for r in range(self.recodes.rowCount()):
            combo = self.recodes.cellWidget(r, 1)
            if combo is not None:
                # None = "(keep as is)", chosen explicitly: it overrides a suggested recode.
                choice[self.recodes.item(r, 0).text()] = combo.currentData()
        self._recode_choices[column] = choice

    def current_recodes(self) -> dict[str, dict[str, str]]:
        """{your column: {your value: code}} for columns mapped to coded elements."""
        self._store_recodes()
        mapping = self.current_mapping()
        out = {}
        suggested = self.inspection.recode_suggestions if self.inspection is not None else {}
        for column, element in mapping.items():
            if not element:
                continue
            chosen = dict(suggested.get(column, {}))
            chosen.update(getattr(self, "_recode_choices", {}).get(column, {}))
            chosen = {value: code for value, code in chosen.items() if code is not None}
            if chosen:
                out[column] = chosen
        return out

    # -- step 4: findings ---------------------------------------------------------------------------
    def run_validation(self) -> None:
        """Check the extract against the confirmed mapping in the worker; then show the findings."""
        assert self.agreement is not None and self.inspection is not None
        job = Job(
            "desktop.ui.jobs:confirm_mapping",
            {
                "path": self.extract,
                "agreement_id": self.agreement["id"],
                "profile_name": self.profile_name.text().strip(),
                "mapping": self.current_mapping(),
                "recodes": self.current_recodes(),
                "date_formats": self.inspection.date_formats,
            },
            vault_path=str(self.session.vault_path),
            title="Checking the extract",
        )
        self.workspace.start_job(job, self._validated, self._failed, self._cancelled)
        self._update_next()

    def _validated(self, findings: list[dict[str, Any]]) -> None:
        self.validation = findings
        self._fill_findings()
        self._show_step(3)

    def _fill_findings(self) -> None:
        assert self.inspection is not None
        self.findings.clear()
        for f in self.validation:
            prefix = {"error": "Problem", "warning": "Warning"}.get(f.get("severity", ""), "Note")
            item = QListWidgetItem(f"{prefix}: {f['message']}")
            self.findings.addItem(item)
        if not self.findings.count():
            self.findings.addItem(QListWidgetItem("Nothing to report: every column is mapped."))
        if self._blocking_findings():
            self.findings.insertItem(
                0,
                QListWidgetItem(
                    "Fix the problems below before de-identifying: go Back to change the mapping or "
                    "the value recodes, or correct the extract."
                ),
            )

    # -- step 5/6: preview and risk -----------------------------------------------------------------
    def run_preview(self) -> None:
        """De-identify in the worker; show before/after side by side."""
        assert self.agreement is not None and self.extract is not None
        if not self._back_to_risk:
            self.choice = None  # a new preview starts from the search's best way to share
        self.release()
        job = Job(
            "desktop.ui.jobs:preview_extract",
            {
                "path": self.extract,
                "agreement_id": self.agreement["id"],
                "profile_name": self.profile_name.text().strip(),
                "choice": self.choice,
            },
            vault_path=str(self.session.vault_path),
            title="De-identifying",
        )
        self.workspace.start_job(job, self._previewed, self._failed, self._cancelled)
        self._update_next()

    def _previewed(self, result: Preview) -> None:
        from desktop.ui.jobs import ShmTable
        from desktop.ui.table_model import changed_predicate

        before, after = ShmTable(result.before), ShmTable(result.after)
        self._shm = [before, after]
        self.before_model.set_table(before.table)
        self.after_model.set_table(after.table)
        changed = changed_predicate(self.before_model, self.after_model, result.sources)
        self.after_model.set_changed(changed)
        self.after_model.set_labels(result.code_labels)  # codes with what they mean
        names = after.table.column_names
        marked = {(f.row, names.index(f.column)) for f in result.residual if f.column in names}
        self.after_model.mark(marked)
        self.preview = result
        self.preview_note.setText(
            f"{result.rows_in:,} rows in your extract; {result.rows_out:,} rows and "
            f"{len(names)} columns will be shared. Highlighted cells were changed by de-identification; "
            "columns on the right have the agreement's element names."
        )
        self._fill_risk()
        # after the clerk picked another way to share, back on the Risk step to see what it does
        self._show_step(5 if self._back_to_risk else 4)
        self._back_to_risk = False

    def _fill_risk(self) -> None:
        assert self.preview is not None
        p = self.preview
        problems = p.problems
        k_ok = not any(problem.kind == "k" for problem in problems)
        k_line = (
            f"every combination of {', '.join(p.quasi_identifiers) or 'quasi-identifiers'} is shared by "
            f"at least <b>{p.k_achieved}</b> students (the agreement requires {p.k_required})"
            if p.k_achieved is not None
            else "no quasi-identifiers in this agreement"
        )
        lines = [
            f"<p><b>Group size (k-anonymity):</b> {k_line}{'' if k_ok else ' — NOT reached'}.</p>",
        ]
        if not p.disclosure:
            lines.append(f"<p><b>Cells blanked to reach it:</b> {p.suppressed_cells:,}.</p>")
        if p.redacted_kinds:
            lines.append(f"<p><b>Taken out of the notes:</b> {escape(p.redacted_kinds)}.</p>")
        if p.residual:
            total = p.residual_total or len(p.residual)
            kinds = f" ({escape(p.residual_kinds)})" if p.residual_kinds else ""
            lines.append(
                f"<p><b>Possible personal information left: {total:,}{kinds}.</b> Sealing is blocked "
                "until these are resolved (map the column as “(not shared)” or to a redacting element). "
                "Click a finding to see the cell.</p>"
            )
        else:
            lines.append("<p><b>Possible personal information left:</b> none found.</p>")
        if p.text_unchecked:
            lines.append(
                f"<p><b>Notes that cannot be checked:</b> {escape(', '.join(p.text_unchecked))}. The "
                "extract has no column of people's names, so a student's own name in a note cannot be "
                "told from an ordinary word. Sealing is blocked: include the name columns in the extract "
                "(they are never sent).</p>"
            )
        # the gate's other reasons (e.g. a column the agreement does not list), in its own words
        lines += [
            f"<p><b>{escape(problem.message)}.</b> Sealing is blocked.</p>"
            for problem in problems
            if problem.kind not in ("k", "residual", "unchecked_text")
        ]
        self._fill_disclosure(lines)
        self.risk_summary.setText("".join(lines))
        self.residual.clear()
        for f in p.residual:
            self.residual.addItem(QListWidgetItem(f"Row {f.row + 1}, column {f.column}: {f.kind}"))
        self.residual.setVisible(bool(p.residual))

    def _fill_disclosure(self, lines: list[str]) -> None:
        """The search's sentences, the ways to share it found, and its charts."""
        assert self.preview is not None
        d = self.preview.disclosure or {}
        candidates = d.get("candidates") or []
        self._fill_choices(d, candidates)
        self.risk_tabs.setTabVisible(self.risk_tabs.indexOf(self.choices.parentWidget()), bool(candidates))
        self._update_choice_button()
        if not d:
            self.charts.clear()
            return
        if len(candidates) > 1:
            lines.append(
                f"<p><b>Other ways to share:</b> {len(candidates) - 1} — compare them side by side under "
                "“Ways to share” below.</p>"
            )
        lines.append("<p><b>How the details that could identify a student are shared:</b></p><ul>")
        lines += [f"<li>{escape(sentence)}</li>" for sentence in d.get("sentences") or []]
        lines.append("</ul>")
        if d.get("warnings"):
            lines.append(
                f"<p><b>Groups losing more than others:</b> {escape('; '.join(d['warnings'][:5]))}"
                f"{'…' if len(d['warnings']) > 5 else ''}.</p>"
            )
        from desktop.ui.riskcharts import risk_pixmap

        self.charts.setPixmap(risk_pixmap(d))

    def _fill_choices(self, d: dict[str, Any], candidates: list[dict[str, Any]]) -> None:
        """One column per way to share, one row per detail; a cell that differs from the chosen way's is
        bold, and a way the agreement does not allow says so in its last row."""
        qis = list(d.get("quasi_identifiers") or [])
        names = d.get("names") or {}
        total = int(d.get("rows") or 0)
        labels = [
            *(names.get(q, q) for q in qis),
            "Students losing a value",
            "Information lost",
            "Groups losing twice as often",
            "Allowed by agreement",
        ]
        table = self.choices
        table.clear()
        table.setRowCount(len(labels))
        table.setColumnCount(len(candidates))
        table.setVerticalHeaderLabels(labels)
        columns = []
        for j, c in enumerate(candidates):
            cells = []
            for q in qis:
                if q in (c.get("removed") or []):
                    cells.append("left out")
                else:
                    words = str((c.get("words") or {}).get(q, "as it is"))
                    words = words if words == "as it is" else words.removeprefix("as ")
                    cells.append(f"{words}; {c['kept_share'].get(q, 0):.0%} keep it")
            withheld = int(c.get("rows_suppressed") or 0)
            cells.append(f"{withheld:,} of {total:,}" if total else f"{withheld:,}")
            cells.append(f"{float(c.get('loss') or 0):.0%}")
            warned = int(c.get("groups_warned") or 0)
            cells.append(f"{warned}" if warned else "none")
            cells.append("yes" if c.get("allowed", True) else "no")
            columns.append(cells)
            header = QTableWidgetItem("Chosen" if j == 0 else f"Way {j + 1}")
            header.setToolTip(str(c.get("sentence") or ""))
            table.setHorizontalHeaderItem(j, header)
        for j, cells in enumerate(columns):
            for i, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(str(candidates[j].get("sentence") or ""))
                if j and text != columns[0][i]:
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                table.setItem(i, j, item)
        self.choice_note.setText(
            "Select a column, then “Use this way”. Bold: not as in the chosen way."
            if len(candidates) > 1
            else "The search found no other way to share within the agreement."
        )
        self.use_choice.setVisible(len(candidates) > 1)

    def _selected_choice(self) -> int:
        """The column of the way to share the clerk selected (-1: none)."""
        selected = self.choices.selectionModel().selectedColumns() if self.choices.selectionModel() else []
        return selected[0].column() if selected else self.choices.currentColumn()

    def _update_choice_button(self) -> None:
        candidates = ((self.preview.disclosure if self.preview else None) or {}).get("candidates") or []
        col = self._selected_choice()
        allowed = 0 < col < len(candidates) and candidates[col].get("allowed", True)
        self.use_choice.setEnabled(bool(allowed) and not self.workspace.busy())

    def use_selected_choice(self) -> None:
        """De-identify again with the way to share the clerk selected (one the agreement allows)."""
        if self.preview is None:
            return
        candidates = (self.preview.disclosure or {}).get("candidates") or []
        col = self._selected_choice()
        if not 0 < col < len(candidates) or not candidates[col].get("allowed", True):
            return
        self.choice = dict(candidates[col]["levels"])
        self._back_to_risk = True
        self.run_preview()

    def _select_finding(self, index: int) -> None:
        if self.preview is None or index < 0:
            return
        f = self.preview.residual[index]
        names = self.after_model.table().column_names
        cell = self.after_model.index(f.row, names.index(f.column))
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.risk_view.selectionModel().setCurrentIndex(cell, flags)
        self.risk_view.scrollTo(cell, QAbstractItemView.ScrollHint.PositionAtCenter)

    # -- step 7/8: seal -----------------------------------------------------------------------------
    def _fill_seal_summary(self) -> None:
        assert self.preview is not None and self.agreement is not None
        a, p = self.agreement, self.preview
        from desktop.ui.jobs import OutputColumn

        details = p.column_details or [OutputColumn(c, None, "") for c in p.columns_out]
        cols = "".join(
            f"<li><b>{escape(c.name)}</b>"
            + (f" — {escape(c.treatment)}" if c.treatment else "")
            + (f", from your column {escape(c.source)}" if c.source else "")
            + "</li>"
            for c in details
        )
        to = ", ".join(escape(r) for r in a["recipients"])
        self.seal_summary.setText(
            f"<p>You are about to seal <b>{p.rows_out:,} rows</b> with these "
            f"<b>{len(p.columns_out)} columns</b>:</p><ul>{cols}</ul>"
            f"<p>Only <b>{to}</b> will be able to open it, under “{escape(a['title'])}” (in force until "
            f"{a['expires']}). Nothing is sent: you choose where the file is saved, then send it the usual "
            "way (SFTP, e-mail, shared drive).</p>"
        )

    def seal(self, out: str | None = None) -> None:
        """Ask where to save, then de-identify, check and seal in the worker (the CLI's prepare)."""
        if self.preview is None or self.agreement is None or self.workspace.busy():
            return
        if not out:
            name = f"{Path(self.extract or 'extract').stem}.age"
            start = Path(self.session.settings.folder("package_out")) / name
            out, _ = save_file_name(
                self, "Save the sealed package", str(start), "Packages (*.age)"
            )
        if not out:
            return
        if not out.endswith(".age"):
            out += ".age"
        from desktop.ui.partners_page import replace_choice

        force = replace_choice(self, out)
        if force is None:
            return
        self.session.settings.set_folder("package_out", out)
        job = Job(
            "desktop.ui.jobs:seal_extract",
            {
                "path": self.extract,
                "agreement_id": self.agreement["id"],
                "profile_name": self.profile_name.text().strip(),
                "out": out,
                "force": force,
                "choice": self.choice,  # the way to share the clerk chose in the Risk step
            },
            vault_path=str(self.session.vault_path),
            outputs=(out,),
            # prepare stages the de-identified file in a private folder beside the package; a killed
            # worker must not leave it behind.
            scratch=(str(Path(out).parent / ".pathshare-staging-*"),),
            title="Sealing the package",
        )
        self.workspace.start_job(job, self._sealed, self._failed, self._cancelled)

    def _sealed(self, result: SealedExtract) -> None:
        self.sealed = result
        lines = "".join(f"<p>{escape(line)}</p>" for line in result.summary.splitlines() if line.strip())
        self.done_summary.setText(
            f"<h3>The package is sealed.</h3>"
            f"<p>Saved as <b>{escape(result.out)}</b> ({result.bytes:,} bytes).</p>"
            f"<p><b>Exactly what leaves your organization, and to whom:</b></p>{lines}"
            "<p><b>Next:</b> send the file the usual way (SFTP, e-mail, shared drive). It is in your "
            "audit log.</p>"
        )
        self._show_step(7)

    def release(self) -> None:
        """Drop the preview tables and free their shared memory."""
        self.before_model.set_table(None)
        self.after_model.set_table(None)
        for block in self._shm:
            block.release()
        self._shm = []
