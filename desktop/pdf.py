"""HTML to PDF with Qt (QTextDocument + QPdfWriter): how the codebook becomes a PDF.

The library writes the codebook as self-contained HTML (agreements/_codebook.py); drawing pages is the
desktop layer's job. Works headless: without a running application one offscreen ``QApplication``
is created for the fonts (a widgets application, not a bare QGuiApplication: the same process may
later open windows — the app, or tests — and widgets refuse to live under a QGuiApplication).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from deid import Recorded, atomic_path
from deid.errors import OutputError

_APP: Any = None  # the offscreen application made here, kept for the life of the process


def _ensure_gui_app() -> None:
    global _APP
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        # Qt needs one application object per process for fonts and layout; no window is shown.
        _APP = QApplication(["pathshare", "-platform", "offscreen"])


def html_to_pdf(
    html_text: str,
    path: str | os.PathLike[str],
    *,
    title: str = "",
    force: bool = False,
    recorded: Recorded | None = None,
) -> Path:
    """Lay out ``html_text`` on landscape Letter pages and write the PDF to ``path`` atomically (an
    existing file replaced only with ``force``, never one ``recorded`` names)."""
    _ensure_gui_app()
    from PySide6.QtCore import QMarginsF
    from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

    dest = Path(path)
    with atomic_path(dest, 0o644, force=force, recorded=recorded) as tmp:
        writer = QPdfWriter(str(tmp))
        writer.setTitle(title)
        writer.setCreator("PathShare")
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.Letter))
        writer.setPageOrientation(QPageLayout.Orientation.Landscape)
        writer.setPageMargins(QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter)
        doc = QTextDocument()
        doc.setHtml(html_text)
        doc.print_(writer)
        del writer  # finishes the file
        if tmp.stat().st_size == 0:
            raise OutputError(f"Cannot write {dest}: Qt produced an empty PDF.")
    return dest
