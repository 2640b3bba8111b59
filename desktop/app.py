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
    sys.excepthook = unexpected_error_hook(window)
    from desktop.smoke import quit_after_shown  # packaging/smoke.sh: PATHSHARE_SMOKE_QUIT_MS

    quit_after_shown(app, window)
    return app.exec()


def unexpected_error_hook(window: object):  # -> the hook
    """What happens to an exception no screen caught (a bug): one sentence in the window, and its stack
    and type — never its message, which could quote a student's row — on stderr. Never a traceback
    dialog."""
    from deid.errors import PathShareError
    from desktop.ui.jobs import log_unexpected

    def hook(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        from PySide6.QtWidgets import QMessageBox

        if isinstance(exc, PathShareError):
            text = str(exc)
        else:
            log_unexpected(exc.with_traceback(tb))
            text = (
                f"Something unexpected went wrong ({exc_type.__name__}); nothing was written. "
                "Please report it to whoever supports PathShare for you."
            )
        QMessageBox.warning(window, "PathShare", text)  # type: ignore[arg-type]

    return hook
