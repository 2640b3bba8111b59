"""The main window: first run or unlock, then the workspace (a sidebar of screens and a progress panel)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.tasks import Job, ProcessRunner, SyncRunner, TaskHandle, pool, wait_pools
from desktop.ui.settings import Settings
from desktop.ui.widgets import ProgressPanel

# Seconds the window waits to take the vault back after a job (see Workspace._take_vault_back).
RESUME_WAIT = 10.0
# The window gives the vault up when it has not used it for this long (seconds), so that a command or
# a background job can open it (one process at a time; see agreements' vault lock); the next read takes
# it back in about a millisecond.
IDLE_RELEASE = 0.5


def vault_path_from_env() -> Path:
    """The vault this app opens: ``PATHSHARE_VAULT`` or the platform default."""
    env = os.environ.get("PATHSHARE_VAULT")
    if env:
        return Path(env).expanduser()
    from agreements import default_vault_path

    return default_vault_path()


@dataclass
class Session:
    """What the screens share: the vault (once unlocked), settings, and the job runner."""

    vault_path: Path
    settings: Settings
    runner: ProcessRunner | SyncRunner = field(default_factory=ProcessRunner)
    synchronous: bool = False  # run short vault work on the UI thread (tests)
    vault: Any = None
    # Held in memory only while unlocked, to hand to worker processes over their pipe.
    passphrase: str = field(default="", repr=False)


class Workspace(QWidget):
    """After unlock: the sidebar, the screens, and the progress panel of the running job."""

    def __init__(self, session: Session, open_package: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        from desktop.ui.agreements_page import AgreementsPage
        from desktop.ui.audit_page import AuditPage
        from desktop.ui.dashboard_page import DashboardPage
        from desktop.ui.link_page import LinkPage
        from desktop.ui.outcomes_page import OutcomesPage
        from desktop.ui.packages_page import PackagesPage
        from desktop.ui.pages import MyCardPage
        from desktop.ui.partners_page import PartnersPage
        from desktop.ui.prepare import PrepareScreen
        from desktop.ui.receive import ReceiveScreen

        self.session = session
        self.handle: TaskHandle | None = None
        self.sidebar = QListWidget()
        self.sidebar.setAccessibleName("Sections")
        self.sidebar.setIconSize(QSize(0, 0))
        self.sidebar.setSpacing(2)
        # Padding only: colours stay with the palette so the dark theme works.
        self.sidebar.setStyleSheet("QListWidget::item { padding: 7px 6px; }")
        self.sidebar.setMaximumWidth(230)
        self.sidebar.setMinimumWidth(180)
        self.stack = QStackedWidget()
        self.prepare = PrepareScreen(self)
        self.receive = ReceiveScreen(self)
        self.packages = PackagesPage(session, self)
        pages: list[tuple[str, QWidget]] = [
            ("Prepare a package", self.prepare),
            ("Receive a package", self.receive),
            ("Link two files", LinkPage(self)),
            ("Packages", self.packages),
            ("Dashboard", DashboardPage(session)),
            ("Agreements", AgreementsPage(session)),
            ("Partners", PartnersPage(session)),
            ("Audit log", AuditPage(session)),
            ("My organization's card", MyCardPage(session)),
            # Last, so the other screens keep their Ctrl+number and screenshot names.
            ("Outcomes", OutcomesPage(self)),
        ]
        for i, (title, page) in enumerate(pages):
            item = QListWidgetItem(title)
            item.setToolTip(f"{title} (Ctrl+{i + 1})")
            self.sidebar.addItem(item)
            self.stack.addWidget(page)
            action = QAction(self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(lambda _=False, i=i: self.sidebar.setCurrentRow(i))
            self.addAction(action)
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.sidebar.setCurrentRow(self.home_row())
        self.progress = ProgressPanel()
        self.progress.cancel_clicked.connect(self.cancel_job)
        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.stack, 1)
        right.addWidget(self.progress)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.sidebar)
        layout.addLayout(right, 1)
        self.setTabOrder(self.sidebar, self.stack)
        if open_package:
            self.show_receive(open_package)
        self._idle = QTimer(self)
        self._idle.setInterval(int(IDLE_RELEASE * 1000))
        self._idle.timeout.connect(self._release_vault_when_idle)
        self._idle.start()

    def _release_vault_when_idle(self) -> None:
        vault = self.session.vault
        # Never while a job runs (the worker has it) or while the vault thread is using the connection.
        if vault is not None and not self.busy() and pool("vault").activeThreadCount() == 0:
            vault.suspend(idle_for=IDLE_RELEASE)

    def home_row(self) -> int:
        """The screen this organization starts on: Prepare if it sends, else Receive if it receives,
        else the Dashboard (what it said at first run, changed on the card screen)."""
        from agreements import organization_roles
        from deid.errors import PathShareError

        try:
            roles = organization_roles(self.session.vault)
        except PathShareError:
            return 0
        if "send" in roles:
            return 0
        return 1 if "receive" in roles else self.row_of("Dashboard")

    def row_of(self, title: str) -> int:
        """The sidebar row of the screen called ``title``."""
        return next(i for i in range(self.sidebar.count()) if self.sidebar.item(i).text() == title)

    def show_receive(self, package: str | None = None) -> None:
        """Switch to Receive; open ``package`` there when given."""
        self.sidebar.setCurrentRow(1)
        if package:
            self.receive.choose_package(package)
        else:
            self.receive.pick_package()

    # -- long jobs ----------------------------------------------------------------------------------
    def start_job(
        self,
        job: Job,
        on_ok: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_cancel: Callable[[], None],
    ) -> TaskHandle:
        """Run ``job`` in the worker, with the progress panel; one job at a time."""
        if self.handle is not None and not self.handle.finished:
            raise RuntimeError("a job is already running")
        self.progress.start(job.title)
        self.sidebar.setEnabled(False)
        lent = bool(job.vault_path) and self.session.vault is not None
        if lent:
            # One process at a time has the vault open (agreements' lock): lend it to the worker, and
            # take it back before the screen's own handler reads what the job wrote.
            self.session.vault.suspend()
        handle = self.session.runner.start(job, self.session.passphrase if job.vault_path else None)
        self.handle = handle
        if lent:
            for signal in (handle.succeeded, handle.failed, handle.cancelled):
                signal.connect(self._take_vault_back)
        handle.progress.connect(self.progress.update_progress)
        handle.succeeded.connect(on_ok)
        handle.failed.connect(on_error)
        handle.cancelled.connect(on_cancel)
        handle.done.connect(self._job_done)
        return handle

    def _take_vault_back(self, *_: Any) -> None:
        from agreements import VaultInUse

        vault = self.session.vault
        if vault is not None:
            # A command that slipped in while the job ran holds it for seconds at most; if it is still
            # busy after that, the next read tries again (and says who has it).
            with contextlib.suppress(VaultInUse):
                vault.resume(wait=RESUME_WAIT)

    def busy(self) -> bool:
        """True while a job runs."""
        return self.handle is not None and not self.handle.finished

    def cancel_job(self) -> None:
        """Cancel the running job (nothing it was writing is left)."""
        if self.busy():
            self.progress.cancel.setEnabled(False)
            self.progress.stage.setText("Cancelling…")
            assert self.handle is not None
            self.handle.cancel()

    def _job_done(self) -> None:
        self.progress.finish()
        self.sidebar.setEnabled(True)


class MainWindow(QMainWindow):
    """PathShare's window."""

    def __init__(self, session: Session, open_package: str | None = None) -> None:
        super().__init__()
        from desktop.ui.first_run import FirstRunScreen
        from desktop.ui.unlock import UnlockScreen

        self.session = session
        self.open_package = open_package
        from desktop.ui.widgets import install_wheel_guard

        install_wheel_guard()  # a scroll over a form must not change the choice under the pointer
        self.workspace: Workspace | None = None
        # A window that goes away without closing (deleted by its owner) still gives its vault up:
        # while it has the vault open no other process can (agreements' vault lock).
        self.destroyed.connect(lambda *_: session.vault is not None and session.vault.close())
        self.setWindowTitle("PathShare")
        # 800×600, and 1920×1080 at 200% scaling (960×540 in Qt's units), must both fit every screen.
        self.setMinimumSize(780, 520)
        self.stack = QStackedWidget()
        self.setCentralWidget(self.stack)
        self.first_run: FirstRunScreen | None = None
        self.unlock: UnlockScreen | None = None
        self._entry_screen()
        self._build_menu()
        geometry = session.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1100, 740)

    def _entry_screen(self) -> None:
        """Unlock for a vault that exists, first run (set it up) for one that does not."""
        from desktop.ui.first_run import FirstRunScreen
        from desktop.ui.unlock import UnlockScreen

        for screen in (self.unlock, self.first_run):
            if screen is not None:
                self.stack.removeWidget(screen)
                screen.deleteLater()
        self.unlock = self.first_run = None
        if Path(self.session.vault_path).exists():
            self.unlock = UnlockScreen(self.session)
            self.unlock.unlocked.connect(self._unlocked)
            self.stack.addWidget(self.unlock)
            self.stack.setCurrentWidget(self.unlock)
        else:
            self.first_run = FirstRunScreen(self.session)
            self.first_run.completed.connect(self._unlocked)
            self.stack.addWidget(self.first_run)
            self.stack.setCurrentWidget(self.first_run)

    def switch_vault(self, path: str | Path) -> bool:
        """Leave this vault (locked, as Lock does) and go to ``path``: its unlock screen when it exists,
        setting it up when it does not. Refused while a job runs."""
        if self.workspace is not None and self.workspace.busy():
            QMessageBox.information(
                self, "PathShare", "Wait for the running job to finish (or cancel it) first."
            )
            return False
        if self.workspace is not None:
            self.lock()
        self.session.vault_path = Path(path)
        self._entry_screen()
        self.setWindowTitle("PathShare")
        return True

    def open_vault(self) -> None:
        """File → Open vault…: another vault file on this computer."""
        from desktop.ui.partners_page import ask_open

        path = ask_open(self, self.session, "vaults", "Open a vault", "PathShare vault (*.vault)")
        if path:
            self.switch_vault(path)

    def new_vault(self) -> None:
        """File → New vault…: a vault for another organization (or a test) in a file the user names."""
        from desktop.ui.partners_page import ask_save

        path = ask_save(
            self, self.session, "vaults", "Create a new vault", "pathshare.vault", "PathShare vault (*.vault)"
        )
        if not path:
            return
        if not path.endswith(".vault"):
            path += ".vault"
        if Path(path).exists():
            QMessageBox.information(
                self,
                "PathShare",
                f"{Path(path).name} already exists; open it with File → Open vault… instead.",
            )
            return
        self.switch_vault(path)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        current = str(Path(self.session.vault_path).resolve())
        paths = [p for p in self.session.settings.recent_vaults() if p != current]
        for p in paths:
            action = self.recent_menu.addAction(f"{Path(p).name} — {Path(p).parent}")
            action.triggered.connect(lambda _=False, p=p: self.switch_vault(p))
        if not paths:
            none = self.recent_menu.addAction("No other vault opened yet")
            none.setEnabled(False)

    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_vault = QAction("Open &vault…", self)
        open_vault.triggered.connect(self.open_vault)
        new_vault = QAction("&New vault…", self)
        new_vault.triggered.connect(self.new_vault)
        self.recent_menu = file_menu.addMenu("&Recent vaults")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.insertAction(self.recent_menu.menuAction(), open_vault)
        file_menu.insertAction(self.recent_menu.menuAction(), new_vault)
        file_menu.addSeparator()
        self.open_action = QAction("&Open package…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._open_package)
        self.open_action.setEnabled(False)
        self.lock_action = QAction("&Lock", self)
        self.lock_action.setShortcut(QKeySequence("Ctrl+L"))
        self.lock_action.triggered.connect(self.lock)
        self.lock_action.setEnabled(False)
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        for a in (self.open_action, self.lock_action):
            file_menu.addAction(a)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About PathShare", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _unlocked(self, vault: Any, passphrase: str) -> None:
        self.session.vault = vault
        self.session.passphrase = passphrase
        self.session.settings.add_recent_vault(self.session.vault_path)
        from agreements import our_card
        from deid.errors import PathShareError

        try:
            # Qt appends the application's display name to a title that does not already end with it
            # ("PathShare — Org — PathShare" on Linux), so the organization comes first.
            self.setWindowTitle(f"{our_card(vault).org} — PathShare")
        except PathShareError:
            self.setWindowTitle("PathShare")
        self.workspace = Workspace(self.session, self.open_package)
        self.open_package = None  # only the first unlock opens the package given on the command line
        self.stack.addWidget(self.workspace)
        self.stack.setCurrentWidget(self.workspace)
        self.workspace.sidebar.setFocus()  # keyboard users start in the list of sections
        self.open_action.setEnabled(True)
        self.lock_action.setEnabled(True)

    def _open_package(self) -> None:
        if self.workspace is not None and not self.workspace.busy():
            self.workspace.show_receive()

    def open_package_file(self, path: str) -> None:
        """A package handed to the running app (macOS's "open file" event, from a double click in
        Finder): shown on Receive now when unlocked and idle, else after the next unlock."""
        if self.workspace is not None and not self.workspace.busy():
            self.workspace.show_receive(path)
        else:
            self.open_package = path

    def lock(self) -> None:
        """Close the vault and forget the passphrase; back to the unlock screen."""
        from desktop.ui.unlock import UnlockScreen

        if self.workspace is None:
            return
        if self.workspace.busy():
            self.workspace.cancel_job()
        self.workspace.prepare.release()
        self.stack.removeWidget(self.workspace)
        self.workspace.deleteLater()
        self.workspace = None
        self._close_vault()
        if self.unlock is None:
            self.unlock = UnlockScreen(self.session)
            self.unlock.unlocked.connect(self._unlocked)
            self.stack.addWidget(self.unlock)
        self.stack.setCurrentWidget(self.unlock)
        self.open_action.setEnabled(False)
        self.lock_action.setEnabled(False)
        self.setWindowTitle("PathShare")

    def _close_vault(self) -> None:
        wait_pools()
        if self.session.vault is not None:
            self.session.vault.close()
        self.session.vault = None
        self.session.passphrase = ""

    def _about(self) -> None:
        from desktop import __version__

        QMessageBox.about(
            self,
            "About PathShare",
            f"PathShare {__version__}\n\nShare student data with consortium partners under signed "
            "agreements: de-identified on this computer, sealed for the named partners, audited.\n"
            "Works offline; never opens a network connection.",
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.workspace is not None and self.workspace.busy():
            answer = QMessageBox.question(
                self,
                "Quit PathShare",
                "A job is still running. Cancel it and quit? Nothing half-written is kept.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.workspace.cancel_job()
        if self.workspace is not None:
            self.workspace.prepare.release()
        self.session.settings.set_geometry(self.saveGeometry())
        self.session.settings.sync()
        self._close_vault()
        event.accept()

    def sizeHint(self) -> QSize:
        return QSize(1100, 740)

