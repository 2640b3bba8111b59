"""PathShare's desktop application (PySide6). Widgets only: the work is done by workflow functions."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_app(argv: Sequence[str] = ()) -> int:
    """Start the application; ``argv`` may hold a package path to open on the Receive screen."""
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication([sys.argv[0], *argv])
    app.setApplicationName("PathShare")
    app.setOrganizationName("PathShare")
    window = QMainWindow()
    window.setWindowTitle("PathShare")
    label = QLabel(
        "PathShare — share student data safely with your consortium partners.\n\n"
        "The desktop screens are being built. Today the command line offers:\n"
        "  pathshare synth, pathshare deid (run `pathshare --help`)."
    )
    label.setMargin(24)
    window.setCentralWidget(label)
    window.resize(720, 420)
    window.show()
    return app.exec()
