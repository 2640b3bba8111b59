"""Look and feel: Fusion style with palette roles only (light or dark), so every colour follows the theme.

``PATHSHARE_THEME=dark|light`` forces a theme; otherwise the system's colour scheme decides.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def wants_dark() -> bool:
    """True when the dark theme should be used."""
    forced = os.environ.get("PATHSHARE_THEME", "").lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    return bool(scheme and scheme() == Qt.ColorScheme.Dark)


def dark_palette() -> QPalette:
    """A calm dark palette (every widget reads colours from roles, so this is all a theme needs)."""
    p = QPalette()
    window, base, text = QColor(38, 40, 44), QColor(28, 30, 33), QColor(230, 232, 235)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(44, 46, 51),
        QPalette.ColorRole.ToolTipBase: QColor(55, 58, 64),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(52, 55, 60),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 120, 120),
        QPalette.ColorRole.Link: QColor(120, 170, 255),
        QPalette.ColorRole.Highlight: QColor(66, 120, 200),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.PlaceholderText: QColor(150, 152, 158),
        QPalette.ColorRole.Mid: QColor(70, 73, 80),
        QPalette.ColorRole.Dark: QColor(20, 21, 23),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 122, 128))
    return p


def apply_theme(app: QApplication) -> bool:
    """Style ``app``; return True when the dark theme is on."""
    app.setStyle("Fusion")
    dark = wants_dark()
    if dark:
        app.setPalette(dark_palette())
    font = app.font()
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
        app.setFont(font)
    return dark


def changed_cell_brush(palette: QPalette) -> QColor:
    """Background for a changed cell: the theme's highlight blended into its base (works light and dark)."""
    hi, base = palette.color(QPalette.ColorRole.Highlight), palette.color(QPalette.ColorRole.Base)
    a = 0.30
    return QColor(
        round(hi.red() * a + base.red() * (1 - a)),
        round(hi.green() * a + base.green() * (1 - a)),
        round(hi.blue() * a + base.blue() * (1 - a)),
    )


def finding_cell_brush(palette: QPalette) -> QColor:
    """Background for a cell with a residual-PII finding: BrightText blended into the base."""
    hot, base = palette.color(QPalette.ColorRole.BrightText), palette.color(QPalette.ColorRole.Base)
    if hot.lightness() > 200 and base.lightness() > 200:  # the light palette's BrightText is white
        hot = QColor(220, 60, 60)
    a = 0.35
    return QColor(
        round(hot.red() * a + base.red() * (1 - a)),
        round(hot.green() * a + base.green() * (1 - a)),
        round(hot.blue() * a + base.blue() * (1 - a)),
    )


def heading_font(base: QFont, scale: float = 1.5, bold: bool = True) -> QFont:
    """A larger font for headings, derived from the widget's own font (so it follows DPI and size)."""
    f = QFont(base)
    f.setPointSizeF(base.pointSizeF() * scale)
    f.setBold(bold)
    return f


def monospace_font(base: QFont, scale: float = 1.0) -> QFont:
    """The system's fixed-width font at ``scale`` times ``base``'s size (for fingerprints)."""
    from PySide6.QtGui import QFontDatabase

    f = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    f.setPointSizeF(base.pointSizeF() * scale)
    return f
