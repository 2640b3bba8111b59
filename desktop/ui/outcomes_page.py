"""Outcomes (the analyst's flow after opening packages): count the consortium's measures on opened
packages and save tables that are safe to share.

The same library call as ``pathshare outcomes`` (``agreements.release_outcomes``) runs in the worker
process; this screen only lists the opened packages, the measures and the breakdowns, asks where to
save, and shows the library's summary. Every rule (what may be broken down, what is hidden, the
check against earlier tables) is the library's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import Job
from desktop.ui.filedialogs import existing_directory
from desktop.ui.widgets import MessageBar, button, heading, paragraph, scrolling

ROLE = Qt.ItemDataRole.UserRole


def _checklist(name: str) -> QListWidget:
    box = QListWidget()
    box.setAccessibleName(name)
    box.setMinimumHeight(110)
    return box


def _add(box: QListWidget, text: str, key: str, tip: str = "", checked: bool = False) -> None:
    item = QListWidgetItem(text)
    item.setData(ROLE, key)
    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
    if tip:
        item.setToolTip(tip)
    box.addItem(item)


def _checked(box: QListWidget) -> list[str]:
    return [
        str(box.item(i).data(ROLE))
        for i in range(box.count())
        if box.item(i).checkState() == Qt.CheckState.Checked
    ]


class OutcomesPage(QWidget):
    """Pick opened packages, measures and breakdowns; save the protected tables to a new folder."""

    def __init__(self, workspace: Any) -> None:
        super().__init__()
        self.workspace = workspace
        self.session = workspace.session
        self.result: dict[str, Any] | None = None
        self.message = MessageBar()
        self.packages = _checklist("Opened packages")
        self.packages.setMaximumHeight(120)  # a few packages; the measures and the button stay in view
        self.measures = _checklist("Measures")
        self.breakdowns = _checklist("Break down by")
        self.measures.itemChanged.connect(lambda _item: self._fill_breakdowns())
        # One two-way table (for example race by sex), with its rows' and columns' totals.
        self.cross_a, self.cross_b = QComboBox(), QComboBox()
        self.cross_a.setAccessibleName("Cross table: rows")
        self.cross_b.setAccessibleName("Cross table: columns")
        self.out_path = QLineEdit()
        self.out_path.setAccessibleName("New folder for the tables")
        self.out_path.setPlaceholderText("a new folder, e.g. outcomes-2026")
        self.change_out = button("Choose &folder…", "Choose where the new folder goes")
        self.change_out.clicked.connect(self._pick_out)
        self.make_button = button("&Make the tables", "Make the tables and save them", default=True)
        self.make_button.clicked.connect(self.run_outcomes)
        self.summary = paragraph("")
        self.summary.setAccessibleName("Result")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Outcomes"))
        layout.addWidget(
            paragraph(
                "Count how students did (dual enrollment, college-going, persistence, completion …) in "
                "the packages you opened, and save tables that are safe to share: every count under the "
                "agreement's smallest group is hidden, and so is any count that would let a reader work "
                "a hidden one out, also together with the tables you shared before."
            )
        )
        for title, box, hint in (
            ("Opened packages", self.packages, "Packages of one agreement; several are linked by student."),
            ("Measures", self.measures, "Hover over a measure for its definition."),
            ("Break down by", self.breakdowns, "Only the breakdowns every chosen measure allows are listed."),
        ):
            group = QGroupBox(title)
            inner = QVBoxLayout(group)
            inner.addWidget(paragraph(hint))
            inner.addWidget(box)
            if box is self.breakdowns:
                cross = QHBoxLayout()
                label = QLabel("Also one table of every combination of")
                label.setBuddy(self.cross_a)
                cross.addWidget(label)
                cross.addWidget(self.cross_a)
                cross.addWidget(QLabel("by"))
                cross.addWidget(self.cross_b)
                cross.addStretch(1)
                inner.addLayout(cross)
            layout.addWidget(group)
        row = QHBoxLayout()
        label = QLabel("Save the tables in:")
        label.setBuddy(self.out_path)
        row.addWidget(label)
        row.addWidget(self.out_path, 1)
        row.addWidget(self.change_out)
        layout.addLayout(row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.make_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addWidget(self.message)
        layout.addWidget(self.summary)
        layout.addStretch(1)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scrolling(body))
        self._fill_measures()

    # -- lists ------------------------------------------------------------------------------------
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh_packages()

    def refresh_packages(self) -> None:
        """The opened packages that were not destroyed, newest first (from the vault's records)."""
        from agreements import RECEIVED, list_packages
        from deid.errors import PathShareError

        chosen = set(_checked(self.packages))
        self.packages.clear()
        vault = self.session.vault
        if vault is None:
            return
        try:
            records = [r for r in list_packages(vault, RECEIVED) if not r.destroyed_at and r.location]
            names = self._partner_names()
        except PathShareError as exc:
            self.message.show_problem(exc)
            return
        if not records:
            empty = QListWidgetItem("No opened packages yet: open one on “Receive a package” first.")
            empty.setFlags(Qt.ItemFlag.NoItemFlags)
            self.packages.addItem(empty)
        for r in reversed(records):
            where = Path(r.location)
            text = f"From {names.get(r.sender, 'a partner')}, opened {r.recorded[:10]} — {where.name}"
            _add(self.packages, text, str(where), str(where), checked=str(where) in chosen)

    def _partner_names(self) -> dict[str, str]:
        from agreements import list_partners

        return {p.fingerprint: p.card.org for p in list_partners(self.session.vault)}

    def _fill_measures(self) -> None:
        from deid import load_catalog

        for m in load_catalog().metrics:
            tip = f"{m.definition} Time window: {m.time_window}."
            _add(self.measures, m.label, m.id, tip, checked=m.id == "dual_enrollment")
        self._fill_breakdowns()

    def _fill_breakdowns(self) -> None:
        from deid import load_catalog, load_elements

        catalog = load_catalog()
        chosen = [catalog.get(i) for i in _checked(self.measures)]
        before = set(_checked(self.breakdowns))
        self.breakdowns.blockSignals(True)
        self.breakdowns.clear()
        if chosen:
            labels = {e.name: e.label for e in load_elements()}
            allowed = [d for d in chosen[0].disaggregations if all(d in m.disaggregations for m in chosen)]
            for d in allowed:
                _add(self.breakdowns, labels.get(d, d), d, checked=d in before)
        self.breakdowns.blockSignals(False)
        for combo in (self.cross_a, self.cross_b):
            was = combo.currentData()
            combo.clear()
            combo.addItem("(none)", "")
            for d in allowed if chosen else []:
                combo.addItem(labels.get(d, d), d)
            combo.setCurrentIndex(max(0, combo.findData(was)))

    def breakdowns_chosen(self) -> list[str]:
        """The ticked breakdowns, and the cross table as "a*b" when two different ones are picked."""
        from deid import CROSS

        by = _checked(self.breakdowns)
        a, b = self.cross_a.currentData(), self.cross_b.currentData()
        if a and b and a != b:
            by.append(f"{a}{CROSS}{b}")
        return by

    def _pick_out(self) -> None:
        start = self.session.settings.folder("outcomes")
        folder = existing_directory(self, "Where the new folder goes", start)
        if folder:
            self.session.settings.set_folder("outcomes", folder)
            name = Path(self.out_path.text().strip() or "outcomes").name
            self.out_path.setText(str(Path(folder) / name))

    # -- the job ----------------------------------------------------------------------------------
    def run_outcomes(self) -> None:
        """Compute and save the tables in the worker (``agreements.release_outcomes``)."""
        if self.workspace.busy():
            return
        packages, measures = _checked(self.packages), _checked(self.measures)
        out = self.out_path.text().strip()
        if not packages:
            self.message.show_error("Tick at least one opened package.")
            return
        if not measures:
            self.message.show_error("Tick at least one measure.")
            return
        if not out:
            self.message.show_error("Choose a new folder to save the tables in.")
            return
        a, b = self.cross_a.currentData(), self.cross_b.currentData()
        if bool(a) != bool(b) or (a and a == b):
            self.message.show_error("For a table of combinations, pick two different breakdowns.")
            return
        self.message.clear()
        self.summary.setText("")
        self.make_button.setEnabled(False)
        job = Job(
            "desktop.ui.jobs:release_outcome_tables",
            {"packages": packages, "metrics": measures, "by": self.breakdowns_chosen(), "out": out},
            vault_path=str(self.session.vault_path),
            scratch=(str(Path(out).parent / ".outcomes-*"),),
            # the library reads, links and counts in a private folder beside the output: a cancel
            # removes it (deid.sweep_left_behind, once the worker is gone)
            run_folders=(str(Path(out).parent),),
            title="Making the outcome tables",
        )
        self.workspace.start_job(job, self._done, self._failed, self._cancelled)

    def _failed(self, error: Exception) -> None:
        self.make_button.setEnabled(True)
        self.message.show_problem(error)

    def _cancelled(self) -> None:
        self.make_button.setEnabled(True)
        self.message.show_info("Cancelled; nothing was saved.")

    def _done(self, r: dict[str, Any]) -> None:
        self.result = r
        self.make_button.setEnabled(True)
        self.message.show_info(f"Saved {', '.join(r['files'])} in {r['folder']}.")
        self.summary.setText(r["summary"] + ".")
