"""PathShare's desktop application (PySide6). Widgets only: the work is done by library functions.

Launch stays fast: only Qt and the small screens load here; pandas, pyarrow, presidio and pyrage are
imported by the worker process or by a screen when it first needs them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence


def no_display_reason(environ: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why the window cannot open here, as one sentence, or None. Checked before Qt is imported: on Linux
    without a display Qt aborts the whole process with its own message (exit 134). Which platforms need
    a display is the platform seam's (``deid.display_missing``)."""
    from deid import display_missing

    if not display_missing(environ, platform):
        return None
    return (
        "No display was found, so the PathShare window cannot open here; "
        "use the command line instead ('pathshare --help' lists every command)."
    )


def run_app(argv: Sequence[str] = (), vault_path: str | os.PathLike[str] | None = None) -> int:
    """Start the application; ``argv`` may hold a package path (``*.age``) to open on the Receive screen;
    ``vault_path`` (from ``pathshare --vault X``) overrides PATHSHARE_VAULT and the platform default."""
    reason = no_display_reason()
    if reason:
        sys.stderr.write(f"pathshare: {reason}\n")
        return 1
    from pathlib import Path

    from PySide6.QtWidgets import QApplication

    from agreements import identify_vault_user
    from desktop.ui.main_window import MainWindow, Session, vault_path_from_env
    from desktop.ui.settings import Settings
    from desktop.ui.theme import apply_theme

    identify_vault_user("app")  # another process is refused at once, naming this one
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("PathShare")
    app.setOrganizationName("PathShare")
    app.setApplicationDisplayName("PathShare")
    apply_theme(app)  # type: ignore[arg-type]
    package = next((a for a in argv if a.endswith(".age")), None)
    vault = Path(vault_path).expanduser() if vault_path else vault_path_from_env()
    session = Session(vault_path=vault, settings=Settings())
    window = MainWindow(session, open_package=package)
    watch_file_open_events(app, window)
    window.show()
    sys.excepthook = unexpected_error_hook(window)
    from desktop.smoke import quit_after_shown  # packaging/smoke.sh: PATHSHARE_SMOKE_QUIT_MS

    quit_after_shown(app, window)
    return app.exec()


def watch_file_open_events(app: object, window: object, platform: str | None = None) -> object | None:
    """Where a double-clicked package arrives as an "open file" event rather than as an argument (macOS:
    Finder sends it to the running app, even at launch), hand it to the window. Returns the event filter
    (kept alive by the app), or None where packages come as arguments (the platform seam says which)."""
    from deid import file_association

    if file_association(platform).delivery != "open event":
        return None
    from PySide6.QtCore import QEvent, QObject

    class _FileOpen(QObject):
        def eventFilter(self, watched: object, event: object) -> bool:
            if event.type() == QEvent.Type.FileOpen:  # type: ignore[attr-defined]
                path = event.file()  # type: ignore[attr-defined]
                if path:
                    window.open_package_file(path)  # type: ignore[attr-defined]
                return True
            return False

    watcher = _FileOpen(app)  # type: ignore[arg-type]
    app.installEventFilter(watcher)  # type: ignore[attr-defined]
    return watcher


def unexpected_error_hook(window: object):  # -> the hook
    """What happens to an exception no screen caught (a bug): one sentence in the window, and its stack
    and type — never its message, which could quote a student's row — on stderr. Never a traceback
    dialog."""
    from desktop.ui.problems import problem_of

    def hook(exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        from PySide6.QtWidgets import QMessageBox

        problem = problem_of(exc.with_traceback(tb))
        text = problem.message if problem.hint is None else f"{problem.message}\n\n{problem.hint}"
        QMessageBox.warning(window, "PathShare", text)  # type: ignore[arg-type]

    return hook
