"""PathShare's desktop application (PySide6). Widgets only: the work is done by library functions.

Launch stays fast: only Qt and the small screens load here; pandas, pyarrow, presidio and pyrage are
imported by the worker process or by a screen when it first needs them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def run_app(argv: Sequence[str] = ()) -> int:
    """Start the application; ``argv`` may hold a package path (``*.age``) to open on the Receive screen."""
    from PySide6.QtWidgets import QApplication

    from desktop.ui.main_window import MainWindow, Session, vault_path_from_env
    from desktop.ui.settings import Settings
    from desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("PathShare")
    app.setOrganizationName("PathShare")
    app.setApplicationDisplayName("PathShare")
    apply_theme(app)  # type: ignore[arg-type]
    package = next((a for a in argv if a.endswith(".age")), None)
    session = Session(vault_path=vault_path_from_env(), settings=Settings())
    window = MainWindow(session, open_package=package)
    window.show()
    from desktop.smoke import quit_after_shown  # packaging/smoke.sh: PATHSHARE_SMOKE_QUIT_MS

    quit_after_shown(app, window)
    return app.exec()
