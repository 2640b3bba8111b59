"""A lazy Qt table model over a pyarrow Table: cells are read on demand, a block of rows at a time.

Nothing is copied into widgets: a view over 1,000,000 rows asks only for the rows it paints, and the
model converts just those (``BLOCK`` rows of one column per cache entry, a bounded LRU cache).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from desktop.tasks import emit
from desktop.ui.theme import changed_cell_brush, finding_cell_brush
from desktop.ui.widgets import shown

BLOCK = 256
CACHE_BLOCKS = 512

Index = QModelIndex | QPersistentModelIndex


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    return shown(str(value))


class ArrowTableModel(QAbstractTableModel):
    """Read-only model of a pyarrow Table (or anything with ``num_rows``, ``column_names``, ``column``)."""

    def __init__(self, table: Any = None, parent: Any = None) -> None:
        super().__init__(parent)
        self._table = table
        self._cache: OrderedDict[tuple[int, int], list[Any]] = OrderedDict()
        self._changed: Callable[[int, int], bool] | None = None
        self._marked: set[tuple[int, int]] = set()
        self._labels: dict[int, dict[str, str]] = {}  # column -> {code: label}
        self._changed_brush = QColor()
        self._finding_brush = QColor()
        self.refresh_colours()
        self.block_reads = 0  # how many blocks were converted (tests: proves laziness)

    # -- data ---------------------------------------------------------------------------------------
    def set_table(self, table: Any) -> None:
        """Show ``table`` (None: empty)."""
        self.beginResetModel()
        self._table = table
        self._cache.clear()
        self._marked.clear()
        self._labels = {}
        self._changed = None
        self.endResetModel()

    def set_labels(self, labels: dict[str, dict[str, str]]) -> None:
        """Show the codes of these columns with their labels ("700 — White"), by column name."""
        names = self._table.column_names if self._table is not None else []
        self._labels = {names.index(c): dict(v) for c, v in labels.items() if c in names}

    def table(self) -> Any:
        """The table shown."""
        return self._table

    def set_changed(self, predicate: Callable[[int, int], bool] | None) -> None:
        """Highlight cells for which ``predicate(row, column)`` is true (evaluated only when painted)."""
        self._changed = predicate
        if self.rowCount() and self.columnCount():
            last = self.index(self.rowCount() - 1, self.columnCount() - 1)
            emit(self.dataChanged, self.index(0, 0), last)

    def mark(self, cells: set[tuple[int, int]]) -> None:
        """Mark cells with a finding (a stronger highlight)."""
        self._marked = set(cells)

    def refresh_colours(self) -> None:
        """Recompute highlight colours from the application palette (after a theme change)."""
        palette = QApplication.palette() if QApplication.instance() else QPalette()
        self._changed_brush = changed_cell_brush(palette)
        self._finding_brush = finding_cell_brush(palette)

    def cell(self, row: int, column: int) -> Any:
        """The Python value at (row, column), converted lazily with its block."""
        start = (row // BLOCK) * BLOCK
        key = (column, start)
        block = self._cache.get(key)
        if block is None:
            col = self._table.column(column)
            block = col.slice(start, BLOCK).to_pylist()
            self.block_reads += 1
            self._cache[key] = block
            if len(self._cache) > CACHE_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return block[row - start]

    # -- Qt model API ---------------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        if parent.isValid() or self._table is None:
            return 0
        return int(self._table.num_rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        if parent.isValid() or self._table is None:
            return 0
        return len(self._table.column_names)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._table is None:
            return None
        row, col = index.row(), index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            text = _text(self.cell(row, col))
            if role == Qt.ItemDataRole.ToolTipRole:
                if (row, col) in self._marked:
                    return "Possible personal information found here: it blocks sealing."
                if self._changed and self._changed(row, col):
                    return "Changed by de-identification."
                return None
            if col in self._labels:
                from agreements import code_with_label

                return code_with_label(text, self._labels[col])
            return text
        if role == Qt.ItemDataRole.BackgroundRole:
            if (row, col) in self._marked:
                return self._finding_brush
            if self._changed and self._changed(row, col):
                return self._changed_brush
        if role == Qt.ItemDataRole.AccessibleDescriptionRole and self._changed and self._changed(row, col):
            return "changed"
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role != Qt.ItemDataRole.DisplayRole or self._table is None:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self._table.column_names[section]
        return str(section + 1)  # row numbers as a clerk counts them (1-based, like Excel)


def changed_predicate(before: ArrowTableModel, after: ArrowTableModel, sources: dict[str, str | None]):
    """A predicate for ``after``: a cell changed when it differs from its source column's cell in ``before``.

    ``sources`` maps each output column to its input column (from the de-identification report); rows
    are compared by position, which holds because suppression blanks cells rather than dropping rows.
    """
    before_index = {name: i for i, name in enumerate(before.table().column_names)}
    after_names = after.table().column_names
    source_col = [before_index.get(sources.get(name) or "", -1) for name in after_names]
    same_rows = before.rowCount() == after.rowCount()

    def predicate(row: int, column: int) -> bool:
        src = source_col[column]
        if src < 0 or not same_rows:
            return True  # a new column (a code, a token) or reshaped output: all of it is new
        return _text(before.cell(row, src)) != _text(after.cell(row, column))

    return predicate
