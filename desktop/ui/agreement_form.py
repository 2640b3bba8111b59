"""The agreement form: every field of the agreement schema (docs/agreement-schema.md), elements picked from
the element library with their treatments, and validation as you type by the library's own checks
(``agreements.check_draft``): the first problem is shown in the message line and its field
is marked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, get_args

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from agreements import Element as _SchemaElement
from desktop.tasks import emit
from desktop.ui.theme import finding_cell_brush
from desktop.ui.widgets import MessageBar, button, heading, paragraph, scrolling

# The schema's own choices (agreements._agreement), so a treatment added there appears here too.
TYPES: tuple[str, ...] = get_args(_SchemaElement.model_fields["type"].annotation)
TREATMENTS: tuple[str, ...] = get_args(_SchemaElement.model_fields["treatment"].annotation)
# Element table columns.
E_NAME, E_TYPE, E_TREATMENT, E_PARAMS, E_QI, E_CODES, E_DESC = range(7)
# Party table columns.
P_ORG, P_PROVIDER, P_RECIPIENT, P_NAME, P_TITLE, P_EMAIL = range(6)


def _text_edit(name: str, lines: int = 3, placeholder: str = "") -> QPlainTextEdit:
    w = QPlainTextEdit()
    w.setAccessibleName(name)
    w.setTabChangesFocus(True)  # Tab moves on, as in every other field
    w.setPlaceholderText(placeholder)
    w.setFixedHeight(w.fontMetrics().lineSpacing() * lines + 14)
    return w


def _line(name: str, placeholder: str = "") -> QLineEdit:
    w = QLineEdit()
    w.setAccessibleName(name)
    w.setPlaceholderText(placeholder)
    return w


def _date(name: str) -> QDateEdit:
    w = QDateEdit()
    w.setCalendarPopup(True)
    w.setDisplayFormat("yyyy-MM-dd")
    w.setAccessibleName(name)
    return w


def _lines(widget: QPlainTextEdit) -> list[str]:
    return [line.strip() for line in widget.toPlainText().splitlines() if line.strip()]


class ElementPicker(QDialog):
    """Choose elements from the element library (search, tick, OK); shows each default treatment."""

    def __init__(self, taken: set[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from agreements import ELEMENT_TYPE_LABELS, TREATMENT_CHOICES, library_elements

        self.setWindowTitle("Add elements from the library")
        self.resize(860, 520)
        layout = QVBoxLayout(self)
        layout.addWidget(
            paragraph(
                "Tick the elements the agreement shares. Each comes with the library's type, code set and "
                "default treatment, which you can change in the form."
            )
        )
        self.search = _line("Search elements", "Search by name, label or category…")
        self.search.textChanged.connect(self._filter)
        layout.addWidget(self.search)
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            ["Element", "Label", "Kind of value", "Category", "What happens to it", "Settings"]
        )
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setAccessibleName("Element library")
        self.table.setTabKeyNavigation(False)
        rows = library_elements()
        self.table.setRowCount(len(rows))
        for r, el in enumerate(rows):
            values = (
                el["name"],
                el["label"],
                ELEMENT_TYPE_LABELS.get(el["type"], el["type"]),
                el["category"],
                TREATMENT_CHOICES.get(el["treatment"], el["treatment"]),
                el["parameters"],
            )
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if c == 0:
                    flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
                    item.setFlags(flags)
                    item.setCheckState(Qt.CheckState.Unchecked)
                    if el["name"] in taken:
                        item.setFlags(flags & ~Qt.ItemFlag.ItemIsEnabled)
                        item.setToolTip("Already in the agreement")
                if c in (0, 1):
                    item.setToolTip(el["description"])
                self.table.setItem(r, c, item)
        self.table.cellActivated.connect(self._toggle)
        layout.addWidget(self.table, 1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _toggle(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsEnabled:
            checked = item.checkState() == Qt.CheckState.Checked
            item.setCheckState(Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        for r in range(self.table.rowCount()):
            hay = " ".join(self.table.item(r, c).text().lower() for c in (0, 1, 3))
            self.table.setRowHidden(r, bool(needle) and needle not in hay)

    def check(self, names: list[str]) -> None:
        """Tick ``names`` (as a person would)."""
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item.text() in names and item.flags() & Qt.ItemFlag.ItemIsEnabled:
                item.setCheckState(Qt.CheckState.Checked)

    def chosen(self) -> list[str]:
        """The ticked element names, in library order."""
        return [
            self.table.item(r, 0).text()
            for r in range(self.table.rowCount())
            if self.table.item(r, 0).checkState() == Qt.CheckState.Checked
        ]


class RangeEditor(QWidget):
    """Increasing numbers, one per row (where each range or age band starts), with Add and Remove."""

    def __init__(self, name: str, values: list[Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 1)
        self.table.setHorizontalHeaderLabels(["Starts at"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAccessibleName(name)
        self.table.setMinimumHeight(120)
        for v in values or []:
            self.add(str(v))
        add = button("Add", f"Add a row to {name}")
        add.clicked.connect(lambda: self.add(""))
        remove = button("Remove", f"Remove the selected row of {name}")
        remove.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        buttons = QVBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(remove)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    def add(self, text: str) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, 0, QTableWidgetItem(text))

    def values(self) -> list[float | int]:
        """The numbers in order; ValueError names a row that is not a number or out of order."""
        out: list[float | int] = []
        for r in range(self.table.rowCount()):
            text = (self.table.item(r, 0).text() if self.table.item(r, 0) else "").strip().replace(",", ".")
            if not text:
                continue
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"Row {r + 1} is not a number: {text}.") from None
            value: float | int = int(number) if number.is_integer() else number
            if out and value <= out[-1]:
                raise ValueError(f"Row {r + 1} ({text}) must be larger than the row above it.")
            out.append(value)
        return out


class SettingsDialog(QDialog):
    """A treatment's settings as widgets (agreements.treatment_settings says which): a date's precision
    from a list, ranges in a table, counts in spin boxes — never ``name=value`` text."""

    def __init__(
        self, element: str, treatment: str, params: dict[str, Any], parent: QWidget | None = None
    ) -> None:
        from agreements import TREATMENT_CHOICES, treatment_settings

        super().__init__(parent)
        self.setWindowTitle(f"Settings of {element}")
        self.settings = treatment_settings(treatment)
        self.kept = {k: v for k, v in params.items() if k not in {s.key for s in self.settings}}
        self.widgets: dict[str, Any] = {}
        layout = QVBoxLayout(self)
        layout.addWidget(paragraph(f"{element}: {TREATMENT_CHOICES.get(treatment, treatment)}."))
        form = QFormLayout()
        for setting in self.settings:
            widget = self._widget(setting, params.get(setting.key))
            if setting.help:
                widget.setToolTip(setting.help)
            self.widgets[setting.key] = widget
            form.addRow(f"{setting.label}:", widget)
        layout.addLayout(form)
        self.message = MessageBar()
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def _widget(self, setting: Any, value: Any) -> QWidget:
        name = setting.label
        if setting.kind == "choice":
            combo = QComboBox()
            combo.setAccessibleName(name)
            if not setting.required:
                combo.addItem("(not set)", None)
            for key, words in setting.choices:
                combo.addItem(words, key)
            combo.setCurrentIndex(max(0, combo.findData(value)))
            return combo
        if setting.kind == "date":
            box = QGroupBox()
            box.setCheckable(True)
            box.setChecked(bool(value))
            box.setAccessibleName(name)
            edit = QDateEdit()
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDate(QDate.fromString(str(value), "yyyy-MM-dd") if value else QDate.currentDate())
            inner = QHBoxLayout(box)
            inner.addWidget(edit)
            box.setProperty("edit", edit)
            return box
        if setting.kind == "ranges":
            return RangeEditor(name, list(value) if isinstance(value, list) else [])
        if setting.kind == "count":
            spin = QSpinBox()
            spin.setRange(0, 10_000_000)
            spin.setSpecialValueText("default")
            spin.setValue(int(value) if isinstance(value, int | float) else 0)
            spin.setAccessibleName(name)
            return spin
        line = QLineEdit("" if value is None else str(value))
        line.setAccessibleName(name)
        return line

    def params(self) -> dict[str, Any]:
        """The settings as the agreement stores them (ValueError with a sentence for a bad entry)."""
        out = dict(self.kept)
        for setting in self.settings:
            w = self.widgets[setting.key]
            value: Any = None
            if setting.kind == "choice":
                value = w.currentData()
            elif setting.kind == "date":
                value = w.property("edit").date().toString("yyyy-MM-dd") if w.isChecked() else None
            elif setting.kind == "ranges":
                value = w.values() or None
                if value is not None and len(value) < 2:
                    raise ValueError(f"{setting.label}: give at least two numbers.")
            elif setting.kind == "count":
                value = w.value() or None
            elif setting.kind == "number":
                text = w.text().strip().replace(",", ".")
                try:
                    number = float(text) if text else None
                except ValueError:
                    raise ValueError(f"{setting.label}: {text} is not a number.") from None
                value = None if number is None else (int(number) if number.is_integer() else number)
            else:
                value = w.text().strip() or None
            if value is None and setting.required:
                raise ValueError(f"{setting.label}: this setting is needed.")
            if value is not None:
                out[setting.key] = value
        return out

    def _accept(self) -> None:
        try:
            self.params()
        except ValueError as exc:
            self.message.show_error(str(exc))  # the form's own sentence about a cell
            return
        self.accept()


class CodeSetDialog(QDialog):
    """A code set as a table a person edits: its name, then one row per code with its label. (The form
    used to take "Name: CODE=Label; CODE=Label" typed in a cell, which a label holding ";" broke.)"""

    def __init__(self, element: str, code_set: dict[str, Any] | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Codes of {element}")
        self.resize(560, 460)
        layout = QVBoxLayout(self)
        layout.addWidget(
            paragraph(
                "The values this column may hold, each with the words people read. Values outside the "
                "list are reported when an extract is checked."
            )
        )
        self.name = _line("Name of the code set", "e.g. CALPADS Race Code")
        self.name.setText((code_set or {}).get("name", ""))
        form = QFormLayout()
        form.addRow("&Name:", self.name)
        layout.addLayout(form)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Code", "Label"])
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setAccessibleName("Codes and labels")
        for code, label in dict((code_set or {}).get("codes") or {}).items():
            self.add_row(str(code), str(label))
        layout.addWidget(self.table, 1)
        self.add_button = button("&Add code", "Add a code")
        self.add_button.clicked.connect(lambda: self.add_row("", ""))
        self.remove_button = button("&Remove code", "Remove the selected code")
        self.remove_button.clicked.connect(lambda: self.table.removeRow(self.table.currentRow()))
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.message = MessageBar()
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def add_row(self, code: str, label: str) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, 0, QTableWidgetItem(code))
        self.table.setItem(r, 1, QTableWidgetItem(label))

    def code_set(self) -> dict[str, Any] | None:
        """The table as a code set (None when it holds no code); ValueError names a repeated code."""
        codes: dict[str, str] = {}
        for r in range(self.table.rowCount()):
            code = (self.table.item(r, 0).text() if self.table.item(r, 0) else "").strip()
            label = (self.table.item(r, 1).text() if self.table.item(r, 1) else "").strip()
            if not code:
                if label:
                    raise ValueError(f"Row {r + 1} has a label but no code.")
                continue
            if code in codes:
                raise ValueError(f"The code {code} is listed twice.")
            codes[code] = label or code
        if not codes:
            return None
        return {"name": self.name.text().strip() or "Codes", "codes": codes}

    def _accept(self) -> None:
        try:
            self.code_set()
        except ValueError as exc:
            self.message.show_error(str(exc))  # the form's own sentence about a cell
            return
        self.accept()


def code_set_summary(code_set: dict[str, Any] | None) -> str:
    """What the Codes cell shows: how many codes, or an invitation (the set's name is in the tooltip:
    names like "CALPADS Race Code" do not fit the column at 800×600)."""
    if not code_set:
        return "Add codes…"
    n = len(code_set.get("codes") or {})
    return f"{n} code{'s' if n != 1 else ''}…"


def code_set_tooltip(code_set: dict[str, Any] | None) -> str:
    """The Codes button's tooltip: the set's name, then what the button does."""
    what = "The values this column may hold, with their labels"
    name = (code_set or {}).get("name")
    return f"{name}: {what.lower()}" if name else what


class AgreementForm(QWidget):
    """Create a draft, correct an unsigned draft, or amend an agreement (a new version)."""

    saved = Signal(object)  # the stored Agreement
    cancelled = Signal()

    def __init__(self, session: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.mode = "new"
        self.agreement_id: str | None = None
        self.base: dict[str, Any] = {}
        self.problem: Any = None
        self._loading = False
        self._snapshot: str | None = None
        self._marked: list[tuple[QWidget, QPalette]] = []
        from desktop.ui.partners_page import confirm

        # Replaced in tests by a scripted answer, as the pages' own confirm is.
        self.confirm: Callable[[str, str], bool] = lambda title, text: confirm(self, title, text)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)  # validate once typing pauses, not on every key
        # Only while the vault is open: a window locked (or closed) just after a key press must not
        # validate against no vault.
        self._timer.timeout.connect(lambda: self.session.vault is not None and self.validate())

        outer = QVBoxLayout(self)
        outer.setContentsMargins(16, 12, 16, 12)
        self.title_label = heading("New agreement")
        outer.addWidget(self.title_label)
        self.intro = paragraph()
        outer.addWidget(self.intro)
        body = QWidget()
        col = QVBoxLayout(body)
        col.setContentsMargins(0, 0, 12, 0)
        col.setSpacing(10)

        # -- title and parties
        box, form = self._group("Title and parties")
        self.title = _line("Title", "A short title people recognize")
        form.addRow("&Title:", self.title)
        self.parties = QTableWidget(0, 6)
        self.parties.setHorizontalHeaderLabels(
            ["Organization", "Provider", "Recipient", "Signs: name", "Title", "E-mail"]
        )
        self.parties.verticalHeader().hide()
        self.parties.setAccessibleName("Parties")
        self.parties.setTabKeyNavigation(False)
        self.parties.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.parties.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for c in range(6):  # everything visible at any width: the text columns share the space
            header.setSectionResizeMode(
                c,
                QHeaderView.ResizeMode.ResizeToContents
                if c in (P_PROVIDER, P_RECIPIENT)
                else QHeaderView.ResizeMode.Stretch,
            )
        self.parties.setMinimumHeight(110)
        self.parties.itemChanged.connect(self._changed)
        self.add_party_button = button("Add &party", "Add a party")
        self.add_party_button.clicked.connect(lambda: self.add_party())
        self.remove_party_button = button("Remove party", "Remove the selected party")
        self.remove_party_button.clicked.connect(self.remove_party)
        row = QHBoxLayout()
        row.addWidget(self.add_party_button)
        row.addWidget(self.remove_party_button)
        row.addStretch(1)
        form.addRow("Parties:", self.parties)
        form.addRow("", row)
        col.addWidget(box)

        # -- legal basis, purpose, scope
        from agreements import LEGAL_BASES

        box, form = self._group("Legal basis, purpose and scope")
        self.basis = QComboBox()
        self.basis.setAccessibleName("Legal basis")
        for code, text in LEGAL_BASES.items():
            self.basis.addItem(text, code)
        self.basis.currentIndexChanged.connect(self._basis_changed)
        # A long citation elides instead of widening the form past 800×600.
        self.basis.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.basis.setMinimumContentsLength(24)
        self.citation = _line("Citation", "The provision relied on")
        self.purpose = _text_edit("Purpose", 3, "Why the data are disclosed")
        self.activity = _text_edit("Activity", 3, "What the recipient will do with the data")
        self.cohorts = _text_edit("Cohorts", 2, "One cohort per line, e.g. Grade 9 entry cohort of fall 2024")
        self.school_years = _line("School years", "e.g. 2024-25, 2025-26")
        self.scope_description = _line("Scope description", "Optional")
        form.addRow("&Legal basis:", self.basis)
        form.addRow("Citation:", self.citation)
        form.addRow("P&urpose:", self.purpose)
        form.addRow("Acti&vity:", self.activity)
        form.addRow("Cohorts:", self.cohorts)
        form.addRow("School &years:", self.school_years)
        form.addRow("Scope description:", self.scope_description)
        col.addWidget(box)

        # -- dates and destruction
        box, form = self._group("Dates and destruction")
        self.effective = _date("Effective from")
        self.expires = _date("Expires on")
        self.deadline = _date("Destruction deadline")
        # One row each: side by side they made the form wider than the window at 800×600.
        form.addRow("In effect from:", self.effective)
        form.addRow("Until:", self.expires)
        for w in (self.effective, self.expires):
            w.setMaximumWidth(self.effective.sizeHint().width() + 20)
        self.method = _text_edit("Destruction method", 2, "How recipients destroy the data")
        self.deadline.setMaximumWidth(self.effective.sizeHint().width() + 20)
        form.addRow("Destroy &by:", self.deadline)
        form.addRow("Destruction &method:", self.method)
        col.addWidget(box)

        # -- elements and policy
        box, form = self._group("Data elements and de-identification")
        self.elements = QTableWidget(0, 7)
        self.elements.setHorizontalHeaderLabels(
            ["Element", "Kind of value", "What happens to it", "Settings", "Could identify", "Codes",
             "Description"]
        )
        self.elements.verticalHeader().hide()
        self.elements.setAccessibleName("Data elements")
        self.elements.setTabKeyNavigation(False)
        self.elements.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.elements.setMinimumHeight(280)
        eh = self.elements.horizontalHeader()
        eh.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        eh.setStretchLastSection(True)
        for c, w in (
            (E_NAME, 130),
            (E_TYPE, 82),
            (E_TREATMENT, 136),
            (E_PARAMS, 140),
            (E_QI, 36),
            (E_CODES, 130),
        ):
            self.elements.setColumnWidth(c, w)
        self.elements.itemChanged.connect(self._changed)
        self.add_library_button = button("Add from &library…", "Add elements from the element library")
        self.add_library_button.clicked.connect(self.pick_elements)
        self.add_custom_button = button("Add &custom element", "Add a custom element")
        self.add_custom_button.clicked.connect(lambda: self.add_element({}))
        self.remove_element_button = button("Remove element", "Remove the selected element")
        self.remove_element_button.clicked.connect(self.remove_element)
        row = QHBoxLayout()
        for b in (self.add_library_button, self.add_custom_button, self.remove_element_button):
            row.addWidget(b)
        row.addStretch(1)
        form.addRow(
            paragraph(
                "Settings: click the cell to choose what is kept (a date's precision, a number's ranges, "
                "the column's name in the file). Codes: click the cell to list the values and their labels."
            )
        )
        form.addRow(self.elements)
        form.addRow(row)
        self.k = QSpinBox()
        self.k.setRange(2, 1000)
        self.k.setAccessibleName("Minimum k")
        self.min_cell = QSpinBox()
        self.min_cell.setRange(1, 1000)
        self.min_cell.setAccessibleName("Minimum cell size")
        self.linkage = QComboBox()
        self.linkage.setAccessibleName("Linkage scope")
        self.linkage.addItem("provider — the token secret stays with each provider", "provider")
        self.linkage.addItem("consortium — providers share it, so records link", "consortium")
        self.release_format = QComboBox()
        self.release_format.setAccessibleName("Released data as")
        self.release_format.addItem("CSV file (Excel keeps the accents)", "csv")
        self.release_format.addItem("Excel workbook (codes stay text, 0109850 keeps its zero)", "xlsx")
        self.release_format.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.release_format.setMinimumContentsLength(24)
        self.drop_unlisted = QCheckBox("Drop columns not listed here (always)")
        self.drop_unlisted.setToolTip(
            "Every column of an extract that is not one of these elements is left out."
        )
        self.drop_unlisted.setAccessibleName("Drop unlisted columns (always on)")
        self.drop_unlisted.setChecked(True)
        self.drop_unlisted.setEnabled(False)
        # One row each (side by side they widened the form past 800×600).
        form.addRow("Smallest group (k):", self.k)
        form.addRow("Smallest reported cell:", self.min_cell)
        form.addRow("Lin&kage:", self.linkage)
        self.linkage.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.linkage.setMinimumContentsLength(24)
        form.addRow("Released data as:", self.release_format)
        form.addRow("", self.drop_unlisted)
        # Disclosure control (schema version 2, docs/disclosure-control.md): how many students may be
        # withheld to reach k, and the diversity of sensitive values. The sensitive elements and the
        # generalization hierarchies an agreement names are kept as loaded.
        self.suppression = QDoubleSpinBox()
        self.suppression.setRange(0, 50)
        self.suppression.setDecimals(1)
        self.suppression.setSuffix(" %")
        self.suppression.setValue(5.0)
        self.suppression.setAccessibleName("Students that may be withheld")
        self.l_div = QSpinBox()
        self.l_div.setRange(0, 100)
        self.l_div.setSpecialValueText("not required")
        self.l_div.setAccessibleName("Distinct sensitive values per group (l)")
        self.l_kind = QComboBox()
        self.l_kind.addItem("distinct values", "distinct")
        self.l_kind.addItem("entropy", "entropy")
        self.l_kind.setAccessibleName("Kind of l-diversity")
        self.t_close = QDoubleSpinBox()
        self.t_close.setRange(0, 0.99)
        self.t_close.setDecimals(2)
        self.t_close.setSingleStep(0.05)
        self.t_close.setSpecialValueText("not required")
        self.t_close.setAccessibleName("Closeness to the whole (t)")
        # fairness "require": the release must not make any group of students (a race, a birth year…) lose
        # values more than twice as often as its column; otherwise it is only preferred
        self.fairness = QCheckBox("required for every group of students")
        self.fairness.setAccessibleName("Fairness required")
        self.fairness.setToolTip(
            "When ticked, no group of students (for example a race or a birth year) may lose its values "
            "more than twice as often as everyone else; the release leaves a column out rather than that."
        )
        self._v2_kept: dict[str, Any] = {"sensitive": [], "hierarchies": {}}
        form.addRow("Students that may be withheld:", self.suppression)
        l_row = QHBoxLayout()
        l_row.addWidget(self.l_div)
        l_row.addWidget(self.l_kind)
        l_row.addStretch(1)
        form.addRow("Sensitive values per group (l):", l_row)
        form.addRow("Closeness to the whole (t):", self.t_close)
        form.addRow("Fairness:", self.fairness)
        for w in (self.suppression, self.l_div, self.t_close):
            w.valueChanged.connect(self._changed)
        self.l_kind.currentIndexChanged.connect(self._changed)
        self.fairness.toggled.connect(self._changed)
        col.addWidget(box)

        # -- obligations
        box, form = self._group("Re-disclosure, security and breach notice")
        self.redisclosure = _text_edit(
            "Re-disclosure prohibition", 3, "What the recipient may not re-disclose"
        )
        self.security = _text_edit("Security requirements", 3, "One requirement per line")
        self.breach_name = _line("Breach contact name", "Name or office")
        self.breach_email = _line("Breach contact e-mail", "name@example.org")
        self.breach_phone = _line("Breach contact phone", "Phone (optional)")
        form.addRow("&Re-disclosure:", self.redisclosure)
        form.addRow("&Security:", self.security)
        contact = QHBoxLayout()
        for w in (self.breach_name, self.breach_email, self.breach_phone):
            contact.addWidget(w)
        form.addRow("Breach notice to:", contact)
        col.addWidget(box)

        # -- general offer
        box, form = self._group("General offer")
        self.general_offer = QCheckBox("Others may join on these terms")
        self.general_offer.setAccessibleName("General offer")
        self.join_provider = QCheckBox("as provider")
        self.join_provider.setAccessibleName("Joining partners are providers")
        self.join_recipient = QCheckBox("as recipient")
        self.join_recipient.setAccessibleName("Joining partners are recipients")
        self.general_offer.toggled.connect(self._offer_toggled)
        form.addRow(self.general_offer)
        join = QHBoxLayout()
        join.addWidget(QLabel("They join:"))
        join.addWidget(self.join_provider)
        join.addWidget(self.join_recipient)
        join.addStretch(1)
        form.addRow(join)
        col.addWidget(box)
        col.addStretch(1)

        scroll = scrolling(body)
        self.scroll = scroll
        outer.addWidget(scroll, 1)
        self.explain_terms()
        self.message = MessageBar()
        self.message.label.setAccessibleName("First problem of the draft")
        outer.addWidget(self.message)
        self.save_button = button("&Save draft", "Save the draft", default=True)
        self.save_button.clicked.connect(self.save)
        self.cancel_button = button("Cancel", "Cancel and go back to the list")
        self.cancel_button.clicked.connect(self.cancel)
        bar = QHBoxLayout()
        bar.addStretch(1)
        bar.addWidget(self.cancel_button)
        bar.addWidget(self.save_button)
        outer.addLayout(bar)

        for w in (
            self.title,
            self.citation,
            self.school_years,
            self.scope_description,
            self.breach_name,
            self.breach_email,
            self.breach_phone,
        ):
            w.textChanged.connect(self._changed)
        for t in (self.purpose, self.activity, self.cohorts, self.method, self.redisclosure, self.security):
            t.textChanged.connect(self._changed)
        for d in (self.effective, self.expires, self.deadline):
            d.dateChanged.connect(self._changed)
        for s in (self.k, self.min_cell):
            s.valueChanged.connect(self._changed)
        self.linkage.currentIndexChanged.connect(self._changed)
        self.release_format.currentIndexChanged.connect(self._changed)
        for c in (self.general_offer, self.join_provider, self.join_recipient):
            c.toggled.connect(self._changed)
        self._fields = {
            "title": self.title,
            "parties": self.parties,
            "legal_basis": self.citation,
            "purpose": self.purpose,
            "activity": self.activity,
            "scope.cohorts": self.cohorts,
            "scope.school_years": self.school_years,
            "scope": self.cohorts,
            "effective": self.effective,
            "expires": self.expires,
            "destruction.deadline": self.deadline,
            "destruction": self.method,
            "elements": self.elements,
            "policy.quasi_identifiers": self.elements,
            "policy.parameters": self.elements,
            "policy.k": self.k,
            "policy.min_cell_size": self.min_cell,
            "policy": self.elements,
            "redisclosure": self.redisclosure,
            "security_requirements": self.security,
            "breach_notice_contact.email": self.breach_email,
            "breach_notice_contact": self.breach_name,
            "join_as": self.general_offer,
            "general_offer": self.general_offer,
        }

    def explain_terms(self) -> None:
        """Tooltips from the library's glossary on the legal and privacy words of the form (label and
        field), the legal bases and the "Could identify" column."""
        from agreements import GLOSSARY, LEGAL_BASES

        by_label = {
            "legal basis": "legal basis",
            "citation": "citation",
            "re-disclosure": "re-disclosure",
            "destroy by": "destruction",
            "smallest group (k)": "k-anonymity",
            "smallest reported cell": "smallest reported cell",
            "linkage": "linkage",
            "parties": "authorized representative",
        }
        for layout in self.findChildren(QFormLayout):
            for i in range(layout.rowCount()):
                label = layout.itemAt(i, QFormLayout.ItemRole.LabelRole)
                field = layout.itemAt(i, QFormLayout.ItemRole.FieldRole)
                if label is None or not isinstance(label.widget(), QLabel):
                    continue
                key = by_label.get(label.widget().text().replace("&", "").rstrip(":").strip().lower())
                if key is None:
                    continue
                label.widget().setToolTip(GLOSSARY[key])
                if field is not None and field.widget() is not None:
                    field.widget().setToolTip(GLOSSARY[key])
        for i in range(len(LEGAL_BASES)):
            self.basis.setItemData(i, GLOSSARY["legal basis"], Qt.ItemDataRole.ToolTipRole)
        self.general_offer.setToolTip(GLOSSARY["general offer"])
        self.elements.horizontalHeaderItem(E_QI).setToolTip(GLOSSARY["could identify"])

    def _group(self, title: str) -> tuple[QGroupBox, QFormLayout]:
        box = QGroupBox(title)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        return box, form

    # -- loading --------------------------------------------------------------------------------
    def _party_choices(self) -> list[tuple[str, str]]:
        """(label, fingerprint): this organization and every verified, unrevoked partner."""
        from agreements import list_partners, our_card

        me = our_card(self.session.vault)
        out = [(f"{me.org} (us)", me.fingerprint())]
        out += [(p.org, p.fingerprint) for p in list_partners(self.session.vault) if p.trusted]
        return out

    def load(self, terms: dict[str, Any], mode: str = "new", agreement_id: str | None = None) -> None:
        """Show ``terms`` for a new draft (``new``), a correction of an unsigned draft (``edit``) or an
        amendment (``amend``)."""
        self._loading = True
        self.mode, self.agreement_id, self.base = mode, agreement_id, dict(terms)
        self.title_label.setText(
            {"new": "New agreement", "edit": "Edit the draft", "amend": "Amend the agreement"}[mode]
        )
        self.intro.setText(
            {
                "new": "Fill in every section; the line at the bottom names the first thing still missing. "
                "Saved drafts can be corrected until someone signs them.",
                "edit": "Nobody has signed this draft yet, so saving replaces its terms.",
                "amend": "Saving stores a new version (an amendment); the current version stays in force "
                "until every party has signed the new one.",
            }[mode]
        )
        self.save_button.setText("&Save amendment" if mode == "amend" else "&Save draft")
        self.title.setText(terms.get("title", ""))
        self.parties.setRowCount(0)
        for p in terms.get("parties", []):
            self.add_party(p)
        lb = terms.get("legal_basis") or {}
        i = self.basis.findData(lb.get("basis"))
        self.basis.setCurrentIndex(max(0, i))
        self.citation.setText(lb.get("citation", ""))
        self.purpose.setPlainText(terms.get("purpose", ""))
        self.activity.setPlainText(terms.get("activity", ""))
        scope = terms.get("scope") or {}
        self.cohorts.setPlainText("\n".join(scope.get("cohorts") or []))
        self.school_years.setText(", ".join(scope.get("school_years") or []))
        self.scope_description.setText(scope.get("description") or "")
        for w, key in ((self.effective, "effective"), (self.expires, "expires")):
            w.setDate(QDate.fromString(str(terms.get(key, date.today().isoformat())), "yyyy-MM-dd"))
        destruction = terms.get("destruction") or {}
        self.deadline.setDate(QDate.fromString(str(destruction.get("deadline", "")), "yyyy-MM-dd"))
        self.method.setPlainText(destruction.get("method", ""))
        policy = terms.get("policy") or {}
        params = policy.get("parameters") or {}
        qis = set(policy.get("quasi_identifiers") or [])
        self.elements.setRowCount(0)
        for e in terms.get("elements", []):
            self.add_element(e, params.get(e.get("name"), {}), e.get("name") in qis)
        self.k.setValue(int(policy.get("k", 11)))
        self.min_cell.setValue(int(policy.get("min_cell_size", 11)))
        self.linkage.setCurrentIndex(max(0, self.linkage.findData(policy.get("linkage_scope", "provider"))))
        self.release_format.setCurrentIndex(
            max(0, self.release_format.findData(policy.get("release_format", "csv")))
        )
        self.suppression.setValue(100 * float(policy.get("suppression_limit", 0.05)))
        self.l_div.setValue(int(policy.get("l") or 0))
        self.l_kind.setCurrentIndex(max(0, self.l_kind.findData(policy.get("l_kind", "distinct"))))
        self.t_close.setValue(float(policy.get("t") or 0))
        self.fairness.setChecked(policy.get("fairness") == "require")
        self._v2_kept = {
            "sensitive": list(policy.get("sensitive") or []),
            "hierarchies": dict(policy.get("hierarchies") or {}),
        }
        self.redisclosure.setPlainText(terms.get("redisclosure", ""))
        self.security.setPlainText("\n".join(terms.get("security_requirements") or []))
        contact = terms.get("breach_notice_contact") or {}
        self.breach_name.setText(contact.get("name", ""))
        self.breach_email.setText(contact.get("email", ""))
        self.breach_phone.setText(contact.get("phone") or "")
        self.general_offer.setChecked(bool(terms.get("general_offer")))
        join_as = terms.get("join_as") or []
        self.join_provider.setChecked("provider" in join_as)
        self.join_recipient.setChecked("recipient" in join_as)
        self._offer_toggled(self.general_offer.isChecked())
        self._loading = False
        self.scroll.verticalScrollBar().setValue(0)
        self._snapshot = self._state()
        self.validate()

    def _state(self) -> str:
        """What the widgets hold, comparable: the terms as JSON, or the raw error when a cell does not
        parse (still compared, so an edit that breaks a cell counts as a change)."""
        import json

        from agreements.errors import AgreementError

        try:
            return json.dumps(self.terms(), sort_keys=True, default=str)
        except AgreementError as exc:
            return f"unparsed: {exc}"

    def has_unsaved_changes(self) -> bool:
        return self._state() != self._snapshot

    def cancel(self) -> None:
        """Back to the list; asks first when something was changed (Cancel used to discard silently)."""
        if self.has_unsaved_changes() and not self.confirm(
            "Discard your changes?",
            "You changed this agreement and have not saved it. Discard the changes?",
        ):
            return
        emit(self.cancelled)

    # -- parties --------------------------------------------------------------------------------
    def add_party(self, party: dict[str, Any] | None = None) -> int:
        """Add a party row (a choice of this organization or a verified partner, roles, who signs)."""
        party = party or {}
        r = self.parties.rowCount()
        self.parties.insertRow(r)
        combo = QComboBox()
        combo.setAccessibleName(f"Party {r + 1} organization")
        for label, fp in self._party_choices():
            combo.addItem(label, fp)
        fp = party.get("fingerprint")
        if fp and combo.findData(fp) < 0:
            combo.addItem(f"{party.get('org', fp)} (not a verified partner)", fp)
        if fp:
            combo.setCurrentIndex(combo.findData(fp))
        elif combo.count() > 1:
            combo.setCurrentIndex(min(r, combo.count() - 1))
        combo.currentIndexChanged.connect(self._changed)
        self.parties.setCellWidget(r, P_ORG, combo)
        roles = party.get("roles") or ([] if party else ["recipient"])
        for c, role in ((P_PROVIDER, "provider"), (P_RECIPIENT, "recipient")):
            item = QTableWidgetItem()
            item.setFlags(
                Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
            )
            item.setCheckState(Qt.CheckState.Checked if role in roles else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{role} role")
            self.parties.setItem(r, c, item)
        rep = party.get("authorized_representative") or {}
        for c, key in ((P_NAME, "name"), (P_TITLE, "title"), (P_EMAIL, "email")):
            self.parties.setItem(r, c, QTableWidgetItem(rep.get(key, "")))
        self._changed()
        return r

    def set_party(
        self, row: int, fingerprint: str, roles: list[str], name: str, title: str, email: str
    ) -> None:
        """Fill a party row (what a person does with the combo, checkboxes and cells)."""
        combo = self.parties.cellWidget(row, P_ORG)
        combo.setCurrentIndex(combo.findData(fingerprint))
        for c, role in ((P_PROVIDER, "provider"), (P_RECIPIENT, "recipient")):
            self.parties.item(row, c).setCheckState(
                Qt.CheckState.Checked if role in roles else Qt.CheckState.Unchecked
            )
        for c, value in ((P_NAME, name), (P_TITLE, title), (P_EMAIL, email)):
            self.parties.item(row, c).setText(value)

    def remove_party(self) -> None:
        r = self.parties.currentRow()
        if r >= 0:
            self.parties.removeRow(r)
            self._changed()

    # -- elements -------------------------------------------------------------------------------
    def pick_elements(self) -> None:
        """Open the element library picker and add the ticked elements."""
        picker = ElementPicker(set(self.element_names()), self)
        if picker.exec() == QDialog.DialogCode.Accepted:
            self.add_library_elements(picker.chosen())

    def add_library_elements(self, names: list[str]) -> None:
        """Add library elements with their default treatment, parameters and quasi-identifier flag."""
        from agreements import library_entry

        taken = set(self.element_names())
        for name in names:
            if name in taken:
                continue
            entry = library_entry(name)
            self.add_element(entry.element, entry.parameters, entry.quasi_identifier)

    def element_names(self) -> list[str]:
        return [
            (self.elements.item(r, E_NAME).text() if self.elements.item(r, E_NAME) else "")
            for r in range(self.elements.rowCount())
        ]

    def add_element(
        self, element: dict[str, Any], params: dict[str, Any] | None = None, quasi_identifier: bool = False
    ) -> int:
        """Add an element row."""
        blocked = self.elements.blockSignals(True)
        r = self.elements.rowCount()
        self.elements.insertRow(r)
        self.elements.setItem(r, E_NAME, QTableWidgetItem(element.get("name", "")))
        from agreements import ELEMENT_TYPE_LABELS, TREATMENT_CHOICES

        for c, values, labels, key, default in (
            (E_TYPE, TYPES, ELEMENT_TYPE_LABELS, "type", "string"),
            (E_TREATMENT, TREATMENTS, TREATMENT_CHOICES, "treatment", "keep"),
        ):
            combo = QComboBox()
            for value in values:  # the person reads what it does; the agreement stores the name
                combo.addItem(labels.get(value, value), value)
            combo.setCurrentIndex(max(0, combo.findData(element.get(key, default))))
            combo.setAccessibleName(f"Element {r + 1} {key}")
            combo.currentIndexChanged.connect(self._changed)
            self.elements.setCellWidget(r, c, combo)
        settings = QPushButton()
        settings.setAccessibleName(f"Element {r + 1} settings")
        settings.clicked.connect(lambda _=False, b=settings: self.edit_settings(b))
        self.elements.setCellWidget(r, E_PARAMS, settings)
        self._show_settings(settings, element.get("treatment", "keep"), dict(params or {}))
        treatment_combo = self.elements.cellWidget(r, E_TREATMENT)
        treatment_combo.currentIndexChanged.connect(
            lambda _i, b=settings, c=treatment_combo: self._treatment_changed(b, c)
        )
        qi = QTableWidgetItem()
        qi.setFlags(
            Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        )
        qi.setCheckState(Qt.CheckState.Checked if quasi_identifier else Qt.CheckState.Unchecked)
        self.elements.setItem(r, E_QI, qi)
        codes = QPushButton(code_set_summary(element.get("code_set")))
        codes.setAccessibleName(f"Element {r + 1} codes")
        codes.setToolTip(code_set_tooltip(element.get("code_set")))
        codes.setProperty("code_set", element.get("code_set"))
        codes.clicked.connect(lambda _=False, b=codes: self.edit_codes(b))
        self.elements.setCellWidget(r, E_CODES, codes)
        self.elements.setItem(r, E_DESC, QTableWidgetItem(element.get("description", "")))
        self.elements.blockSignals(blocked)
        self._changed()
        return r

    def _show_settings(self, widget: QPushButton, treatment: str, params: dict[str, Any]) -> None:
        from agreements import describe_treatment, settings_summary

        widget.setProperty("params", params)
        widget.setText(settings_summary(treatment, params))
        widget.setEnabled(bool(widget.text()))
        name = params.get("as")
        widget.setToolTip(
            describe_treatment(treatment, {k: v for k, v in params.items() if k != "as"}).capitalize()
            + (f"; the column is called {name} in the file" if name else "")
            + ". Click to change."
        )

    def _treatment_changed(self, widget: QPushButton, combo: QComboBox) -> None:
        from agreements import keep_settings

        treatment = combo.currentData()
        self._show_settings(widget, treatment, keep_settings(treatment, self._params(widget)))
        self._changed()

    @staticmethod
    def _params(widget: QWidget | None) -> dict[str, Any]:
        value = widget.property("params") if widget is not None else None
        return dict(value) if value else {}

    def params_of(self, row: int) -> dict[str, Any]:
        """Element ``row``'s treatment settings as the agreement stores them."""
        return self._params(self.elements.cellWidget(row, E_PARAMS))

    def set_params(self, row: int, params: dict[str, Any]) -> None:
        """Give element ``row`` these settings (what the Settings dialog does on OK)."""
        treatment = self.elements.cellWidget(row, E_TREATMENT).currentData()
        self._show_settings(self.elements.cellWidget(row, E_PARAMS), treatment, dict(params))
        self._changed()

    def settings_dialog(self, row: int) -> SettingsDialog:
        name = self.elements.item(row, E_NAME).text() or f"element {row + 1}"
        treatment = self.elements.cellWidget(row, E_TREATMENT).currentData()
        return SettingsDialog(name, treatment, self.params_of(row), self)

    def edit_settings(self, widget: QPushButton) -> None:
        for r in range(self.elements.rowCount()):
            if self.elements.cellWidget(r, E_PARAMS) is widget:
                dialog = self.settings_dialog(r)
                if dialog.exec() == QDialog.DialogCode.Accepted:
                    self.set_params(r, dialog.params())
                return

    def code_set_of(self, row: int) -> dict[str, Any] | None:
        widget = self.elements.cellWidget(row, E_CODES)
        value = widget.property("code_set") if widget is not None else None
        return dict(value) if value else None

    def set_code_set(self, row: int, code_set: dict[str, Any] | None) -> None:
        """Give element ``row`` this code set (what the Codes dialog does on OK)."""
        widget = self.elements.cellWidget(row, E_CODES)
        widget.setProperty("code_set", code_set)
        widget.setText(code_set_summary(code_set))
        widget.setToolTip(code_set_tooltip(code_set))
        self._changed()

    def edit_codes(self, widget: QPushButton) -> None:
        for r in range(self.elements.rowCount()):
            if self.elements.cellWidget(r, E_CODES) is widget:
                name = self.elements.item(r, E_NAME).text() or f"element {r + 1}"
                dialog = CodeSetDialog(name, self.code_set_of(r), self)
                if dialog.exec() == QDialog.DialogCode.Accepted:
                    self.set_code_set(r, dialog.code_set())
                return

    def remove_element(self) -> None:
        r = self.elements.currentRow()
        if r >= 0:
            self.elements.removeRow(r)
            self._changed()

    # -- the terms ------------------------------------------------------------------------------
    def _basis_changed(self) -> None:
        from agreements import LEGAL_BASES

        # Suggest the provision's text when the citation is empty or still another basis's suggestion.
        if not self.citation.text().strip() or self.citation.text() in LEGAL_BASES.values():
            self.citation.setText(LEGAL_BASES[self.basis.currentData()])
        self._changed()

    def _offer_toggled(self, on: bool) -> None:
        self.join_provider.setEnabled(on)
        self.join_recipient.setEnabled(on)

    def _changed(self, *_args: Any) -> None:
        if not self._loading:
            self._timer.start()

    def terms(self) -> dict[str, Any]:
        """The terms as the widgets hold them."""

        parties = []
        for r in range(self.parties.rowCount()):
            combo = self.parties.cellWidget(r, P_ORG)
            roles = [
                role
                for c, role in ((P_PROVIDER, "provider"), (P_RECIPIENT, "recipient"))
                if self.parties.item(r, c).checkState() == Qt.CheckState.Checked
            ]
            parties.append(
                {
                    "fingerprint": combo.currentData(),
                    "roles": roles,
                    "authorized_representative": {
                        key: (self.parties.item(r, c).text().strip() if self.parties.item(r, c) else "")
                        for c, key in ((P_NAME, "name"), (P_TITLE, "title"), (P_EMAIL, "email"))
                    },
                }
            )
        elements, params, qis = [], {}, []
        for r in range(self.elements.rowCount()):
            name = self.elements.item(r, E_NAME).text().strip()
            p = self.params_of(r)
            code_set = self.code_set_of(r)
            elements.append(
                {
                    "name": name,
                    "type": self.elements.cellWidget(r, E_TYPE).currentData(),
                    "code_set": code_set,
                    "description": self.elements.item(r, E_DESC).text().strip(),
                    "treatment": self.elements.cellWidget(r, E_TREATMENT).currentData(),
                }
            )
            if p:
                params[name] = p
            if self.elements.item(r, E_QI).checkState() == Qt.CheckState.Checked:
                qis.append(name)
        terms: dict[str, Any] = {
            "pathshare_agreement": 2,  # the disclosure-control settings below are version 2's
            "title": self.title.text().strip(),
            "parties": parties,
            "legal_basis": {"basis": self.basis.currentData(), "citation": self.citation.text().strip()},
            "purpose": self.purpose.toPlainText().strip(),
            "activity": self.activity.toPlainText().strip(),
            "scope": {
                "cohorts": _lines(self.cohorts),
                "school_years": [y.strip() for y in self.school_years.text().split(",") if y.strip()],
                "description": self.scope_description.text().strip() or None,
            },
            "effective": self.effective.date().toString("yyyy-MM-dd"),
            "expires": self.expires.date().toString("yyyy-MM-dd"),
            "elements": elements,
            "policy": {
                "k": self.k.value(),
                "quasi_identifiers": qis,
                "min_cell_size": self.min_cell.value(),
                "drop_unlisted": True,
                "linkage_scope": self.linkage.currentData(),
                "release_format": self.release_format.currentData(),
                "sensitive": list(self._v2_kept["sensitive"]),
                "l": self.l_div.value() or None,
                "l_kind": self.l_kind.currentData(),
                "t": self.t_close.value() or None,
                "suppression_limit": round(self.suppression.value() / 100, 4),
                "hierarchies": dict(self._v2_kept["hierarchies"]),
                "fairness": "require" if self.fairness.isChecked() else "prefer",
                "parameters": params,
            },
            "destruction": {
                "deadline": self.deadline.date().toString("yyyy-MM-dd"),
                "method": self.method.toPlainText().strip(),
            },
            "redisclosure": self.redisclosure.toPlainText().strip(),
            "security_requirements": _lines(self.security),
            "breach_notice_contact": {
                "name": self.breach_name.text().strip(),
                "email": self.breach_email.text().strip(),
                "phone": self.breach_phone.text().strip() or None,
            },
            "general_offer": self.general_offer.isChecked(),
        }
        if self.general_offer.isChecked():
            terms["join_as"] = [
                role
                for box, role in ((self.join_provider, "provider"), (self.join_recipient, "recipient"))
                if box.isChecked()
            ]
        if self.mode != "new" and self.agreement_id:
            terms["id"] = self.agreement_id
        return terms

    # -- validation -----------------------------------------------------------------------------
    def validate(self) -> Any:
        """Check the draft with the library; show the first problem and mark its field. Returns it."""
        from agreements import DraftProblem, check_draft
        from deid.errors import PathShareError

        self._timer.stop()
        try:
            problem = check_draft(self.session.vault, self.terms())
        except PathShareError as exc:  # a term the library names, else the data dictionary
            problem = DraftProblem(getattr(exc, "field", "") or "elements", str(exc))
        self.problem = problem
        self._unmark()
        if problem is None:
            self.message.show_info("✓ The draft is complete and consistent; it can be saved.")
            return None
        # Save stays enabled (a click right after the last key must not be lost): it validates first.
        self.message.show_error(problem.message)
        widget = self.field_widget(problem.field)
        if widget is not None:
            self._mark(widget, problem.message)
        return problem

    def field_widget(self, path: str) -> QWidget | None:
        """The widget that holds the field at ``path`` (longest known prefix)."""
        plain = path.split("[", 1)[0] if path.startswith(("parties", "elements", "security")) else path
        parts = plain.split(".")
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in self._fields:
                return self._fields[key]
        return None

    def _mark(self, widget: QWidget, message: str) -> None:
        palette = widget.palette()
        self._marked.append((widget, QPalette(palette)))
        palette.setColor(QPalette.ColorRole.Base, finding_cell_brush(widget.palette()))
        widget.setPalette(palette)
        widget.setToolTip(message)
        widget.setAccessibleDescription(message)

    def _unmark(self) -> None:
        for widget, palette in self._marked:
            widget.setPalette(palette)
            widget.setToolTip("")
            widget.setAccessibleDescription("")
        self._marked = []

    def marked_widgets(self) -> list[QWidget]:
        """The widgets currently marked as holding the first problem."""
        return [w for w, _ in self._marked]

    # -- saving ---------------------------------------------------------------------------------
    def save(self) -> None:
        """Store the draft (or the amendment) through the library; emit ``saved``."""
        from agreements import amend_agreement, create_agreement
        from deid.errors import PathShareError

        if self.validate() is not None:
            widget = self.field_widget(self.problem.field)
            if widget is not None:  # take the person to the field that needs them
                self.scroll.ensureWidgetVisible(widget)
                widget.setFocus()
            return
        try:
            terms = self.terms()
            if self.mode == "new":
                agreement = create_agreement(self.session.vault, terms, source="the draft")
            else:
                source = "the amendment" if self.mode == "amend" else "the draft"
                agreement = amend_agreement(self.session.vault, self.agreement_id or "", terms, source=source)
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        emit(self.saved, agreement)
