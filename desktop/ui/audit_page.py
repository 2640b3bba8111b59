"""Audit: the log in a filterable, sortable table; Verify with a plain verdict naming the first bad entry;
export as CSV, as a signed bundle and as a PDF report (with the Ed Code 49064 record of disclosures);
import a bundle from another machine and verify it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from deid.errors import PathShareError
from desktop.tasks import emit, run_task
from desktop.ui.partners_page import ask_open, ask_save, replace_choice
from desktop.ui.theme import finding_cell_brush
from desktop.ui.widgets import FlowLayout, MessageBar, button, heading, paragraph, shown

MAX_ROWS = 5_000  # the table shows the latest this many matching entries (0.3 s); exports take them all
HEADERS = ("#", "When", "Who", "What happened", "Agreement", "Organization")


class EntriesModel(QAbstractTableModel):
    """The log as lines (one per action of a person, told by agreements.story), sortable by any column;
    the line holding the first bad entry is tinted."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.lines: list[Any] = []
        self.bad: int | None = None

    def set_lines(self, lines: list[Any], bad: int | None, column: int, order: Qt.SortOrder) -> None:
        self.beginResetModel()
        self.lines, self.bad = lines, bad
        self._sort(column, order)
        self.endResetModel()

    def line(self, row: int) -> Any:
        return self.lines[row]

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.lines)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal and section == 1:
            return "This computer's local time"
        return None

    def _has_bad(self, line: Any) -> bool:
        return self.bad is not None and line.first <= self.bad <= line.last

    def value(self, line: Any, column: int) -> Any:
        """The sortable value of a cell."""
        values = (line.first, line.when, line.who, line.sentence, line.agreement_title, line.partner_name)
        return values[column]

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if not index.isValid():
            return None
        line, c = self.lines[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == 0:
                text = str(line.first) if line.first == line.last else f"{line.first}–{line.last}"
                return f"{text} ✗" if self._has_bad(line) else text
            return shown(str(self.value(line, c))[:300])
        if role == Qt.ItemDataRole.UserRole:
            return self.bad if c == 0 and self._has_bad(line) else self.value(line, c)
        if role == Qt.ItemDataRole.ToolTipRole:
            if c == 0 and self._has_bad(line):
                return "Holds the first bad entry"
            if c >= 3:
                return shown(str(self.value(line, c))[:2000]) or None
        if role == Qt.ItemDataRole.BackgroundRole and self._has_bad(line):
            return finding_cell_brush(QApplication.palette())
        if role == Qt.ItemDataRole.AccessibleDescriptionRole and c == 0 and self._has_bad(line):
            return "first bad entry"
        return None

    def _sort(self, column: int, order: Qt.SortOrder) -> None:
        if 0 <= column < len(HEADERS):
            reverse = order == Qt.SortOrder.DescendingOrder
            self.lines.sort(key=lambda x: (self.value(x, column), x.first), reverse=reverse)

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        emit(self.layoutAboutToBeChanged)  # through tasks.emit: PySide6 6.12's stolen-bool bug
        self._sort(column, order)
        emit(self.layoutChanged)


class AuditPage(QWidget):
    """The audit log screen."""

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.entries: list[Any] = []  # what the table shows
        self.bundle: Any = None  # a BundleCheck while an imported bundle is shown
        self.last_verdict: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Audit log"))
        layout.addWidget(
            paragraph(
                "Everything done with agreements, keys and packages, one line per action, in this computer's "
                "local time. The entries are chained: changing, removing or reordering any of them shows up "
                "when the log is verified."
            )
        )
        self.verdict = MessageBar()
        self.verdict.label.setAccessibleName("Verification verdict")
        layout.addWidget(self.verdict)
        self.message = MessageBar()
        layout.addWidget(self.message)

        # Filters (Enter in any field applies them).
        self.since = QLineEdit()
        self.since.setPlaceholderText("YYYY-MM-DD")
        self.since.setAccessibleName("From date")
        self.until = QLineEdit()
        self.until.setPlaceholderText("YYYY-MM-DD")
        self.until.setAccessibleName("Until date")
        self.agreement = QComboBox()
        self.agreement.setAccessibleName("Agreement filter")
        self.partner = QComboBox()
        self.partner.setAccessibleName("Partner filter")
        self.action = QComboBox()
        self.action.setAccessibleName("Action filter")
        self.user = QComboBox()
        self.user.setEditable(True)
        self.user.setAccessibleName("User filter")
        for combo in (self.agreement, self.partner, self.action, self.user):
            combo.setMinimumContentsLength(14)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.apply = button("&Apply filters", "Apply the filters")
        self.apply.clicked.connect(self.refresh)
        self.clear_filters = button("C&lear", "Clear the filters")
        self.clear_filters.clicked.connect(self._clear_filters)
        for w in (self.since, self.until):
            w.returnPressed.connect(self.refresh)
            w.setMaximumWidth(120)
        line = self.user.lineEdit()
        if line is not None:
            line.returnPressed.connect(self.refresh)
        form = QHBoxLayout()
        left, right = QFormLayout(), QFormLayout()
        for f in (left, right):
            f.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        dates = QHBoxLayout()
        dates.addWidget(self.since)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.until)
        dates.addStretch(1)
        dates_label = QLabel("&Dates:")
        dates_label.setBuddy(self.since)
        left.addRow(dates_label, dates)
        left.addRow("A&greement:", self.agreement)
        left.addRow("&Partner:", self.partner)
        right.addRow("Ac&tion:", self.action)
        right.addRow("&User:", self.user)
        filter_buttons = QHBoxLayout()
        filter_buttons.addWidget(self.apply)
        filter_buttons.addWidget(self.clear_filters)
        filter_buttons.addStretch(1)
        right.addRow("", filter_buttons)
        for f in (left, right):
            for i in range(f.rowCount()):
                label = f.itemAt(i, QFormLayout.ItemRole.LabelRole)
                field = f.itemAt(i, QFormLayout.ItemRole.FieldRole)
                if label and field and isinstance(label.widget(), QLabel) and field.widget():
                    label.widget().setBuddy(field.widget())
        form.addLayout(left, 1)
        form.addSpacing(16)
        form.addLayout(right, 1)
        layout.addLayout(form)

        self.source = QLabel()
        self.source.setAccessibleName("What the table shows")
        layout.addWidget(self.source)
        # A lazy model: cells are made when drawn, so thousands of entries show at once.
        self.proxy = EntriesModel(self)
        self._sized = False
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAccessibleName("Audit entries")
        self.table.setTabKeyNavigation(False)
        layout.addWidget(self.table, 1)
        self.entry_details = paragraph()
        self.entry_details.setAccessibleName("The selected entry")
        self.entry_details.setTextFormat(Qt.TextFormat.RichText)
        self.entry_details.hide()  # until an entry is selected
        layout.addWidget(self.entry_details)
        # The entries exactly as recorded (JSON, hashes), only when asked for.
        self.technical_button = button("Show &technical details", "Show the entries as recorded")
        self.technical_button.setCheckable(True)
        self.technical_button.toggled.connect(self._technical_toggled)
        self.technical_button.hide()
        self.technical = QPlainTextEdit()
        self.technical.setReadOnly(True)
        self.technical.setAccessibleName("The entries as recorded")
        self.technical.setMaximumHeight(160)
        self.technical.hide()
        tech_row = QHBoxLayout()
        tech_row.addWidget(self.technical_button)
        tech_row.addStretch(1)
        layout.addLayout(tech_row)
        layout.addWidget(self.technical)
        self.table.selectionModel().selectionChanged.connect(self._show_entry)

        self.verify_button = button("&Verify", "Verify the audit log")
        self.verify_button.clicked.connect(self.verify)
        self.csv_button = button("Export &CSV…", "Export the shown entries as CSV")
        self.csv_button.clicked.connect(lambda: self.export_csv())
        self.bundle_button = button("Export signed &bundle…", "Export the log as a signed bundle")
        self.bundle_button.clicked.connect(lambda: self.export_bundle())
        self.pdf_button = button("Export PDF &report…", "Export a PDF audit report")
        self.disclosures_button = button(
            "D&isclosures (CSV)…", "Export the record of disclosures of pupil records as CSV"
        )
        self.disclosures_button.setToolTip(
            "The record California Education Code 49064 asks for: who received what, when, under which "
            "agreement"
        )
        self.disclosures_button.clicked.connect(lambda: self.export_disclosures())
        self.pdf_button.clicked.connect(lambda: self.export_pdf())
        self.import_button = button("&Import bundle…", "Import and verify an audit bundle")
        self.import_button.clicked.connect(lambda: self.import_bundle())
        self.own_button = button("&Show this vault's log", "Show this vault's log again")
        self.own_button.clicked.connect(self.show_own_log)
        self.own_button.hide()
        row = FlowLayout()  # wraps at 800×600 or 200% scaling instead of clipping the labels
        for b in (
            self.verify_button,
            self.csv_button,
            self.bundle_button,
            self.pdf_button,
            self.disclosures_button,
        ):
            row.addWidget(b)
        row.add_right(self.own_button)
        row.add_right(self.import_button)
        layout.addLayout(row)
        self._loaded = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._loaded:
            self._loaded = True
            self.load_choices()
            self.refresh()

    # -- filters --------------------------------------------------------------------------------
    def load_choices(self) -> None:
        """Fill the filter lists from the vault (agreements, partners, actions, users)."""
        from agreements import audit_choices, list_agreements, list_partners
        from deid.errors import PathShareError

        vault = self.session.vault
        try:
            agreements = list_agreements(vault, include_superseded=True)
            partners = list_partners(vault)
            choices = audit_choices(vault)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.agreement.clear()
        self.agreement.addItem("Any agreement", None)
        seen: set[str] = set()
        for s in agreements:
            if s.id not in seen:
                seen.add(s.id)
                self.agreement.addItem(f"{s.title} ({s.id[:8]})", s.id)
        self.partner.clear()
        self.partner.addItem("Any partner", None)
        for p in partners:
            self.partner.addItem(f"{p.org} ({p.fingerprint[:11]})", p.fingerprint)
        from agreements import action_label

        self.action.clear()
        self.action.addItem("Any action", None)
        for label, action in sorted((action_label(a), a) for a in choices["actions"]):
            self.action.addItem(label, action)
        self.user.clear()
        self.user.addItem("")
        self.user.addItems(choices["users"])

    def filters(self) -> dict[str, Any]:
        """The filters as ``AuditLog.entries`` takes them."""
        return {
            "since": self.since.text().strip() or None,
            "until": self.until.text().strip() or None,
            "agreement": self.agreement.currentData(),
            "partner": self.partner.currentData(),
            "action": self.action.currentData(),
            "user": self.user.currentText().strip() or None,
        }

    def filters_text(self) -> str:
        f = self.filters()
        shown_as = {"agreement": self.agreement.currentText(), "partner": self.partner.currentText(),
                    "action": self.action.currentText()}
        parts = [f"{k} {shown_as.get(k, v)}" for k, v in f.items() if v]
        return ", ".join(parts) if parts else "none (the whole log)"

    def _clear_filters(self) -> None:
        self.since.clear()
        self.until.clear()
        for combo in (self.agreement, self.partner, self.action, self.user):
            combo.setCurrentIndex(0)
        self.user.setCurrentText("")
        self.refresh()

    # -- the table ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show this vault's entries matching the filters (the latest MAX_ROWS)."""
        from deid.errors import PathShareError

        self.message.clear()
        if self.bundle is not None:
            self._show_entries(self._filter_bundle(self.bundle.entries))
            return
        try:
            total = len(self.session.vault.audit)
            # Only the latest MAX_ROWS are read: a log of a million entries stays quick to show.
            entries = self.session.vault.audit.entries(**self.filters(), limit=MAX_ROWS)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.entries = entries
        self._show_entries(entries)
        n = self.proxy.rowCount()
        actions = f"{n:,} action{'s' if n != 1 else ''}"
        if len(entries) >= MAX_ROWS:
            text = (f"This vault's log has {total:,} entries; showing the latest {MAX_ROWS:,} that match "
                    f"({actions}).")
        else:
            text = f"This vault's log: {actions} ({len(entries):,} of {total:,} entries match)."
        self.source.setText(text)

    def _filter_bundle(self, entries: Sequence[Any]) -> list[Any]:
        """A bundle's entries through the same filters as the vault's log (agreements.filter_entries)."""
        from agreements import filter_entries

        self.entries = filter_entries(entries, **self.filters())
        return self.entries

    def _show_entries(self, entries: Sequence[Any]) -> None:
        from agreements import story, story_names

        bad = (
            self.last_verdict.first_bad
            if self.last_verdict is not None and not self.last_verdict.ok
            else None
        )
        header = self.table.horizontalHeader()
        try:
            known = story_names(self.session.vault)
        except PathShareError:
            known = None
        self.proxy.set_lines(
            story(None, list(entries), known=known),
            bad,
            header.sortIndicatorSection(),
            header.sortIndicatorOrder(),
        )
        self._show_entry()
        if not self._sized:
            # Widths once, from the first rows (sizing to every row of a long log is slow).
            self._sized = True
            self.table.resizeColumnsToContents()
            caps = (70, 130, 80, 0, 120, 120)  # the sentence takes the rest; titles elide (whole in tips)
            for c, cap in enumerate(caps):
                if cap:
                    self.table.setColumnWidth(c, max(min(self.table.columnWidth(c), cap), 56))
            header.setStretchLastSection(False)
            header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
            # The sentence names the agreement and the organization already; their columns stay in the
            # model (sorting, the filters) but would only squeeze the sentence at 800×600.
            for c in (4, 5):
                self.table.setColumnHidden(c, True)

    def selected_line(self) -> Any:
        """The StoryLine of the selected row (None when nothing is selected)."""
        rows = self.table.selectionModel().selectedRows()
        return self.proxy.line(rows[0].row()) if rows else None

    def _show_entry(self, *_args: Any) -> None:
        """The selected action as a readable form; the entries as recorded behind "Show technical
        details"."""
        import html

        line = self.selected_line()
        if line is None:
            self.entry_details.setText("")
            for w in (self.entry_details, self.technical_button, self.technical):
                w.hide()
            return
        rows = "".join(
            f"<tr><td style='padding-right:12px'><b>{html.escape(label)}</b></td>"
            f"<td>{html.escape(shown(value))}</td></tr>"
            for label, value in line.details
        )
        self.entry_details.show()
        self.entry_details.setText(
            f"<b>{html.escape(shown(line.sentence))}</b><br>{html.escape(line.when)} · "
            f"{html.escape(shown(line.who))}" + (f"<table>{rows}</table>" if rows else "")
        )
        self.technical_button.show()
        self.technical.setPlainText(shown(line.technical()))
        self.technical.setVisible(self.technical_button.isChecked())

    def _technical_toggled(self, on: bool) -> None:
        self.technical_button.setText("Hide &technical details" if on else "Show &technical details")
        self.technical.setVisible(on and self.selected_line() is not None)

    def row_of(self, seq: int) -> int:
        """The table (view) row whose line tells entry ``seq``, or -1."""
        for r in range(self.proxy.rowCount()):
            line = self.proxy.line(r)
            if line.first <= seq <= line.last:
                return r
        return -1

    def shown_seqs(self) -> list[int]:
        """The first entry number of each line, in the order the table shows them."""
        return [self.proxy.line(r).first for r in range(self.proxy.rowCount())]

    # -- verify ---------------------------------------------------------------------------------
    def verify(self) -> None:
        """Recompute the chain (off the UI thread: a long log takes seconds) and show the verdict."""
        from agreements import verify_log
        from desktop.tasks import run_task

        vault = self.session.vault
        self.verify_button.setEnabled(False)
        self.verdict.show_info("Verifying the audit log…")
        run_task(
            lambda: verify_log(vault),
            self._verified,
            self._failed,
            pool_name="vault",
            synchronous=self.session.synchronous,
        )

    def _verified(self, verdict: Any) -> None:
        from agreements import verdict_sentence

        self.verify_button.setEnabled(True)
        self.last_verdict = verdict
        text = verdict_sentence(verdict)
        if verdict.ok:
            self.verdict.show_info("✓ " + text)
        else:
            self.verdict.show_error("✗ " + text)
        self.show_own_log()
        if not verdict.ok and verdict.first_bad:
            r = self.row_of(verdict.first_bad)
            if r >= 0:
                self.table.selectRow(r)
                self.table.scrollTo(self.proxy.index(r, 0), QAbstractItemView.ScrollHint.PositionAtCenter)

    def _failed(self, error: Exception) -> None:
        self.verify_button.setEnabled(True)
        self.verdict.clear()
        self.message.show_problem(error)

    # -- export ---------------------------------------------------------------------------------
    def export_csv(self, path: str | None = None) -> None:
        """The entries the filters select (all of them, not only the shown ones) as CSV."""
        from agreements import write_audit_csv

        path = path or ask_save(
            self, self.session, "audit", "Export audit entries", "audit-log.csv", "CSV (*.csv)"
        )
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        vault, filters = self.session.vault, self.filters()

        def work() -> int:
            # Every matching entry (not only the shown ones), read and written off the UI thread.
            return write_audit_csv(vault, vault.audit.entries(**filters), path, force=force)

        def done(n: int) -> None:
            self.csv_button.setEnabled(True)
            self.refresh()  # the export is itself an entry
            self.message.show_info(f"Wrote {n:,} audit entries to {Path(path).name}.")

        self.csv_button.setEnabled(False)
        self.message.show_info("Writing the CSV…")
        run_task(work, done, self._export_failed, pool_name="vault", synchronous=self.session.synchronous)

    def _export_failed(self, error: PathShareError) -> None:
        for b in (self.csv_button, self.pdf_button, self.verify_button):
            b.setEnabled(True)
        self.message.show_problem(error)

    def export_disclosures(self, path: str | None = None) -> None:
        """The record of disclosures of pupil records (Ed Code 49064) as CSV."""
        from agreements import write_disclosures_csv

        path = path or ask_save(
            self, self.session, "audit", "Export the disclosure record", "disclosures.csv", "CSV (*.csv)"
        )
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        try:
            n = write_disclosures_csv(self.session.vault, path, force=force)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.refresh()
        self.message.show_info(
            f"Wrote {n:,} disclosure record{'s' if n != 1 else ''} (who received what, when, under which "
            f"agreement) to {Path(path).name}."
        )

    def export_bundle(self, path: str | None = None) -> None:
        """The whole log with a signed checkpoint and our card, for verification on another machine."""
        from agreements import our_card
        from deid.errors import PathShareError

        path = path or ask_save(
            self,
            self.session,
            "audit",
            "Export signed audit bundle",
            "audit-bundle.json",
            "Audit bundle (*.json)",
        )
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        try:
            verdict = self.session.vault.audit.export_bundle(Path(path), force=force)
            card = our_card(self.session.vault)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.refresh()
        self.message.show_info(
            f"Wrote {verdict.entries:,} entries and a signed checkpoint to {Path(path).name}. Whoever checks "
            f"it needs your card (fingerprint {card.fingerprint()})."
        )

    def export_pdf(self, path: str | None = None) -> None:
        """A PDF report: organization, verdict, the Ed Code 49064 disclosure record and the entries."""
        from agreements import audit_report_html, disclosure_record, output_rule, record_report, verify_log
        from deid.errors import PathShareError
        from desktop.pdf import html_to_pdf

        path = path or ask_save(
            self, self.session, "audit", "Export audit report", "audit-report.pdf", "PDF (*.pdf)"
        )
        if not path:
            return
        force = replace_choice(self, path)
        if force is None:
            return
        vault, filters, filters_text = self.session.vault, self.filters(), self.filters_text()

        def work() -> tuple[Any, int, str]:
            # The slow part (verify, read, build the HTML) off the UI thread; Qt lays out the pages here.
            verdict = verify_log(vault)
            entries = vault.audit.entries(**filters)
            html = audit_report_html(
                vault,
                verdict=verdict,
                entries=entries,
                disclosures=disclosure_record(vault),
                filters=filters_text,
            )
            return verdict, len(entries), html

        def done(result: tuple[Any, int, str]) -> None:
            verdict, n, html = result
            self.pdf_button.setEnabled(True)
            try:
                html_to_pdf(
                    html, path, title="PathShare audit report", force=force, recorded=output_rule(vault)
                )
                record_report(vault, path, n, verdict.ok)
            except PathShareError as exc:
                self.message.show_problem(exc)
                return
            self._verified(verdict)
            self.message.show_info(f"Wrote the audit report to {Path(path).name}.")

        self.pdf_button.setEnabled(False)
        self.message.show_info("Verifying the log and writing the report…")
        run_task(work, done, self._export_failed, pool_name="vault", synchronous=self.session.synchronous)

    # -- bundles from elsewhere -----------------------------------------------------------------
    def import_bundle(self, path: str | None = None) -> None:
        """Verify a bundle exported on another machine and show its entries."""
        from agreements import check_bundle
        from deid.errors import PathShareError

        path = path or ask_open(
            self, self.session, "audit", "Import an audit bundle", "Audit bundle (*.json)"
        )
        if not path:
            return
        self.message.clear()
        try:
            check = check_bundle(self.session.vault, path)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        self.bundle = check
        self.last_verdict = check.verdict
        if check.verdict.ok:
            self.verdict.show_info("✓ " + check.sentence)
        else:
            self.verdict.show_error("✗ " + check.sentence)
        self.source.setText(
            f"Showing the audit bundle {check.file} from {check.org} ({check.fingerprint}): "
            f"{len(check.entries):,} entries."
        )
        self.own_button.show()
        for b in (self.csv_button, self.pdf_button, self.disclosures_button):
            b.setEnabled(False)  # these export this vault's own log
        self._show_entries(self._filter_bundle(check.entries)[-MAX_ROWS:])
        if not check.verdict.ok and check.verdict.first_bad:
            r = self.row_of(check.verdict.first_bad)
            if r >= 0:
                self.table.selectRow(r)

    def show_own_log(self) -> None:
        """Back from a bundle to this vault's own log."""
        if self.bundle is not None:
            self.bundle = None
            self.last_verdict = None
        self.own_button.hide()
        for b in (self.csv_button, self.pdf_button, self.disclosures_button):
            b.setEnabled(True)
        self.load_choices_keep()
        self.refresh()

    def load_choices_keep(self) -> None:
        """Reload the filter choices, keeping what is selected."""
        state = (
            self.agreement.currentData(),
            self.partner.currentData(),
            self.action.currentText(),
            self.user.currentText(),
        )
        self.load_choices()
        for combo, value in ((self.agreement, state[0]), (self.partner, state[1])):
            i = combo.findData(value)
            combo.setCurrentIndex(max(0, i))
        self.action.setCurrentIndex(max(0, self.action.findText(state[2])))
        self.user.setCurrentText(state[3])
