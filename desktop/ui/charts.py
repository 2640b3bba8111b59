"""A small horizontal bar chart painted with Qt (no plotting library): one bar per (label, count), the
count written after the bar. Colours come from the palette, so the dark theme works."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QSizePolicy, QWidget


class BarChart(QWidget):
    """Bars for ``(label, count)`` rows under a title; its accessible description reads the counts."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.rows: list[tuple[str, int]] = []
        self.setAccessibleName(title)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_rows(self, rows: Sequence[tuple[str, int]]) -> None:
        self.rows = [(label, int(n)) for label, n in rows]
        self.setAccessibleDescription("; ".join(f"{label}: {n}" for label, n in self.rows))
        self.setToolTip("\n".join(f"{label}: {n}" for label, n in self.rows))
        self.updateGeometry()
        self.update()

    def _line(self) -> int:
        return self.fontMetrics().height() + 6

    def label_width(self) -> int:
        fm = self.fontMetrics()
        return max([fm.horizontalAdvance(label) for label, _ in self.rows] + [40]) + 12

    def sizeHint(self) -> QSize:
        return QSize(self.label_width() + 160, self._line() * (len(self.rows) + 1) + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.label_width() + 60, self.sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        line = self._line()
        bold = self.font()
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        painter.drawText(QRectF(0, 0, self.width(), line), Qt.AlignmentFlag.AlignVCenter, self.title)
        painter.setFont(self.font())
        label_w = self.label_width()
        count_w = self.fontMetrics().horizontalAdvance("0000") + 8
        bar_room = max(10, self.width() - label_w - count_w)
        top = max([n for _, n in self.rows] + [1])
        for i, (label, n) in enumerate(self.rows):
            y = line * (i + 1)
            painter.setPen(palette.color(QPalette.ColorRole.WindowText))
            painter.drawText(QRectF(0, y, label_w - 8, line), Qt.AlignmentFlag.AlignVCenter, label)
            width = bar_room * n / top
            if n:
                painter.fillRect(QRectF(label_w, y + 3, max(2.0, width), line - 6),
                                 palette.color(QPalette.ColorRole.Highlight))
            count = QRectF(label_w + width + 4, y, count_w, line)
            painter.drawText(count, Qt.AlignmentFlag.AlignVCenter, str(n))
        painter.end()
