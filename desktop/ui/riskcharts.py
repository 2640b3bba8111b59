"""The Risk step's charts on screen: the library draws them (deid.risk_figure, the same figure the
release report embeds), this turns the figure into an image the window shows. It loads only when the
Risk step is first filled."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QImage, QPixmap


def risk_pixmap(disclosure: dict[str, Any], width_px: int = 900, height_px: int = 260) -> QPixmap:
    """Classes by size, information lost per column, students before and after (see deid.risk_figure)."""
    from deid import risk_figure

    return QPixmap.fromImage(_render(risk_figure(disclosure, width_px, height_px)))


def _render(fig: Any) -> QImage:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width, height = canvas.get_width_height()
    buffer = bytes(canvas.buffer_rgba())
    return QImage(buffer, width, height, QImage.Format.Format_RGBA8888).copy()
