"""The app shell: first run creates the vault and identity and shows the fingerprint; unlock; lock."""

from __future__ import annotations

import os

import pytest
from PySide6.QtCore import QSettings, Qt

PASSPHRASE = "tidal mango quarry lantern"


@pytest.fixture
def session_factory(tmp_path):
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import Session
    from desktop.ui.settings import Settings

    def make(vault_path, synchronous=True):
        qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        return Session(
            vault_path=vault_path, settings=Settings(qs), runner=SyncRunner(), synchronous=synchronous
        )

    return make


def _first_run(qtbot, session):
    from desktop.ui.main_window import MainWindow

    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    fr = window.first_run
    assert fr is not None and window.unlock is None
    qtbot.mouseClick(fr.start, Qt.LeftButton)
    assert fr.pages.currentIndex() == 1
    qtbot.keyClicks(fr.passphrase, "short")
    assert not fr.pass_next.isEnabled()
    assert fr.meter.value() < 3 and "12 characters" in fr.hint.text()
    fr.passphrase.clear()
    qtbot.keyClicks(fr.passphrase, PASSPHRASE)
    qtbot.keyClicks(fr.confirm, PASSPHRASE[:-1])
    assert not fr.pass_next.isEnabled() and "not the same" in fr.match.text()
    qtbot.keyClicks(fr.confirm, PASSPHRASE[-1])
    assert fr.pass_next.isEnabled()
    fr.show_pass.click()
    assert fr.passphrase.echoMode() == fr.passphrase.EchoMode.Normal
    qtbot.mouseClick(fr.pass_next, Qt.LeftButton)
    assert fr.pages.currentIndex() == 2
    qtbot.keyClicks(fr.org_name, "Riverside Unified")
    fr.kind.setCurrentIndex(fr.kind.findData("district"))
    qtbot.keyClicks(fr.contact, "data@riverside.example")
    qtbot.mouseClick(fr.create, Qt.LeftButton)
    qtbot.waitUntil(lambda: fr.pages.currentIndex() == 3, timeout=10_000)
    return window


def test_first_run_creates_vault_identity_and_shows_fingerprint(qtbot, tmp_path, session_factory):
    from agreements import Vault, our_card

    vault_path = tmp_path / "org.vault"
    window = _first_run(qtbot, session_factory(vault_path))
    assert vault_path.is_file()
    with Vault.open(vault_path, PASSPHRASE) as vault:
        card = our_card(vault)
        actions = [e.action for e in vault.audit.entries()]
    assert card.org == "Riverside Unified" and card.kind == "district"
    shown = window.first_run.card_panel.fingerprint.text()
    groups = card.fingerprint().split("-")
    assert all(g in shown for g in groups)
    assert "identity.create" in actions
    # Export card writes the public card JSON.
    out = tmp_path / "card.json"
    window.first_run.card_panel.export_card(str(out))
    assert card.fingerprint() in out.read_text() or '"signing_key"' in out.read_text()
    qtbot.mouseClick(window.first_run.done, Qt.LeftButton)
    assert window.workspace is not None and window.session.vault is not None
    # A district sends: its roles were guessed from the kind, and it starts on Prepare.
    from agreements import organization_roles

    assert organization_roles(window.session.vault) == {"send"}
    assert window.workspace.stack.currentWidget() is window.workspace.prepare
    # No secret in settings.
    window.close()
    settings_text = (tmp_path / "settings.ini").read_text()
    assert PASSPHRASE not in settings_text and "geometry" in settings_text


def test_wrong_passphrase_message_is_whole_at_the_smallest_window(qtbot, tmp_path, session_factory):
    """Issue 17's bug: the wrong-passphrase message was cut off. With a long vault path, at the window's
    smallest size, the message shows every word: the label has the lines its text needs and no visible
    button or label of the window is clipped."""
    from agreements import Vault, create_identity
    from desktop.screenshots import clipped
    from desktop.ui.main_window import MainWindow

    folder = tmp_path / ("district-data-" * 4) / "pathshare vaults for the dual enrollment study"
    folder.mkdir(parents=True)
    vault_path = folder / "lakeview-unified-school-district.vault"
    with Vault.create(vault_path, PASSPHRASE) as vault:
        create_identity(vault, "Valley College", "college")
    window = MainWindow(session_factory(vault_path))
    qtbot.addWidget(window)
    window.show()
    window.resize(window.minimumSize())
    qtbot.keyClicks(window.unlock.passphrase, "not the passphrase at all")
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    label = window.unlock.message.label
    qtbot.waitUntil(lambda: label.isVisible() and label.height() >= label.heightForWidth(label.width()),
                    timeout=2_000)
    assert str(vault_path) in label.text().replace("\u200b", "")
    assert label.height() >= label.heightForWidth(label.width()) > label.fontMetrics().height()
    assert label.geometry().right() <= window.unlock.width()
    assert clipped(window) == []


def test_wrong_passphrase_is_a_message_in_the_window(qtbot, tmp_path, session_factory):
    from agreements import Vault, create_identity
    from desktop.ui.main_window import MainWindow

    vault_path = tmp_path / "org.vault"
    with Vault.create(vault_path, PASSPHRASE) as vault:
        create_identity(vault, "Valley College", "college")
    window = MainWindow(session_factory(vault_path))
    qtbot.addWidget(window)
    window.show()
    assert window.first_run is None and window.unlock is not None
    qtbot.keyClicks(window.unlock.passphrase, "not the passphrase at all")
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    assert window.unlock.message.isVisible()
    assert "passphrase does not open" in window.unlock.message.label.text()
    assert "Traceback" not in window.unlock.message.label.text()
    assert window.workspace is None
    qtbot.keyClicks(window.unlock.passphrase, PASSPHRASE)
    qtbot.mouseClick(window.unlock.unlock, Qt.LeftButton)
    assert window.workspace is not None
    titles = [window.workspace.sidebar.item(i).text() for i in range(window.workspace.sidebar.count())]
    assert titles[:2] == ["Prepare a package", "Receive a package"]
    # Lock forgets the vault and the passphrase.
    window.lock()
    assert window.session.vault is None and window.session.passphrase == ""
    assert window.stack.currentWidget() is window.unlock


def test_unlock_on_the_vault_thread(qtbot, tmp_path, session_factory):
    """The real path: the key derivation runs on the one-thread vault pool, not the UI thread."""
    from agreements import Vault, create_identity
    from desktop.ui.main_window import MainWindow

    vault_path = tmp_path / "org.vault"
    with Vault.create(vault_path, PASSPHRASE) as vault:
        create_identity(vault, "Valley College", "college")
    window = MainWindow(session_factory(vault_path, synchronous=False))
    qtbot.addWidget(window)
    window.show()
    window.unlock.passphrase.setText(PASSPHRASE)
    window.unlock.unlock.click()
    assert window.workspace is None  # not yet: the work is on the pool
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=10_000)
    ws = window.workspace
    titles = [ws.sidebar.item(i).text() for i in range(ws.sidebar.count())]
    ws.sidebar.setCurrentRow(titles.index("My organization's card"))
    assert ws.stack.currentWidget().panel.card.org == "Valley College"
    window.close()


def test_vault_path_from_environment(monkeypatch, tmp_path):
    from desktop.ui.main_window import vault_path_from_env

    monkeypatch.setenv("PATHSHARE_VAULT", str(tmp_path / "x.vault"))
    assert vault_path_from_env() == tmp_path / "x.vault"
    monkeypatch.delenv("PATHSHARE_VAULT")
    assert vault_path_from_env().name.endswith(".vault")
    assert os.environ.get("QT_QPA_PLATFORM") == "offscreen"


def test_every_control_has_an_accessible_name(qtbot, tmp_path, session_factory):
    """Screen readers get a name for every input, list, table and button on every screen."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QComboBox,
        QLineEdit,
        QProgressBar,
        QWidget,
    )

    from agreements import Vault, create_identity
    from desktop.ui.first_run import FirstRunScreen
    from desktop.ui.main_window import MainWindow

    vault_path = tmp_path / "org.vault"
    with Vault.create(vault_path, PASSPHRASE) as vault:
        create_identity(vault, "Valley College", "college")
    window = MainWindow(session_factory(vault_path))
    qtbot.addWidget(window)
    window.show()
    window.unlock.passphrase.setText(PASSPHRASE)
    window.unlock.unlock.click()
    first_run = FirstRunScreen(window.session)
    qtbot.addWidget(first_run)

    def internal(w: QWidget) -> bool:
        # Qt's own parts of composite widgets (a combo box's popup, a view's scroll bars and corner).
        p = w.parentWidget()
        while p is not None:
            if isinstance(p, QComboBox | QAbstractItemView) and p is not w:
                return True
            p = p.parentWidget()
        return False

    missing = []
    ws = window.workspace
    # This screens (the compliance pages of part 2 carry their own test).
    for root in (first_run, window.unlock, ws.sidebar, ws.prepare, ws.receive, ws.progress):
        for w in root.findChildren(QWidget):
            if internal(w) or not isinstance(w, QLineEdit | QComboBox | QAbstractItemView | QProgressBar
                                                | QAbstractButton):
                continue
            if w.objectName().startswith("qt_"):  # Qt's own (the menu bar's overflow button)
                continue
            if not w.accessibleName():
                missing.append(f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}")
    assert not missing, missing


def test_package_given_on_the_command_line_opens_on_receive(qtbot, tmp_path, session_factory):
    from agreements import Vault, create_identity
    from desktop.ui.main_window import MainWindow

    vault_path = tmp_path / "org.vault"
    with Vault.create(vault_path, PASSPHRASE) as vault:
        create_identity(vault, "Valley College", "college")
    package = tmp_path / "from-lakeview.age"
    package.write_bytes(b"age-encryption.org/v1\n")
    window = MainWindow(session_factory(vault_path), open_package=str(package))
    qtbot.addWidget(window)
    window.show()
    window.unlock.passphrase.setText(PASSPHRASE)
    window.unlock.unlock.click()
    # Qt appends the display name to a title not ending with it: the organization comes first, once.
    assert window.windowTitle() == "Valley College — PathShare"
    receive = window.workspace.receive
    assert window.workspace.stack.currentWidget() is receive
    assert receive.package == str(package) and receive.open_button.isEnabled()
    assert receive.out_dir.text().endswith("from-lakeview")
    window.lock()
    assert window.windowTitle() == "PathShare"


def test_an_uncaught_error_is_a_sentence_in_the_window_not_a_traceback(qtbot, monkeypatch, capsys):
    from PySide6.QtWidgets import QMessageBox, QWidget

    from desktop.app import unexpected_error_hook

    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda _parent, _title, text: shown.append(text))
    window = QWidget()
    qtbot.addWidget(window)
    hook = unexpected_error_hook(window)
    row = " ".join(["Maria Lopez", "123-45-6789"])
    try:
        raise ValueError(f"row 3: {row}")
    except ValueError as exc:
        hook(ValueError, exc, exc.__traceback__)
    assert shown == [
        "Something unexpected went wrong (ValueError); nothing was written. "
        "Please report it to whoever supports PathShare for you."
    ]
    err = capsys.readouterr().err
    assert "ValueError" in err and "Maria" not in err and "123-45-6789" not in err


# ------------------------------------------------------------------ launching: --vault, and no display


def test_pathshare_vault_x_without_a_command_opens_the_app_on_x(run_cli, monkeypatch, tmp_path):
    """`pathshare --vault X` used to print usage; it opens the app on X (as PATHSHARE_VAULT does)."""
    import desktop.app

    seen: list[object] = []
    monkeypatch.setattr(desktop.app, "run_app", lambda argv, vault_path=None: seen.append(vault_path) or 0)
    monkeypatch.setenv("PATHSHARE_VAULT", str(tmp_path / "from-env.vault"))
    assert run_cli("--vault", tmp_path / "other.vault")[0] == 0
    assert seen == [str(tmp_path / "other.vault")]
    # An unknown option with no command is still a usage error, not the app.
    assert run_cli("--vault-typo", "x")[0] == 2
    assert len(seen) == 1


def test_run_app_on_a_given_vault_shows_that_vault(tmp_path):
    """The whole launch (command line → app) on a chosen vault, in a child process: run_app styles the
    application globally, which must not leak into the other GUI tests."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from PySide6.QtCore import QStandardPaths\n"
        "from PySide6.QtWidgets import QApplication, QLabel\n"
        "QStandardPaths.setTestModeEnabled(True)\n"  # settings in a test folder, not the user's
        "QApplication.exec = lambda self: 0\n"  # build and show the window, then return at once
        "from desktop.cli import main\n"
        "from desktop.ui.main_window import MainWindow\n"
        "assert main(['--vault', sys.argv[1]]) == 0\n"
        "w = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]\n"
        "print(len(w), w[0].session.vault_path)\n"
        "print('\\n'.join(label.text() for label in w[0].findChildren(QLabel)))\n"
    )
    target = tmp_path / "chosen.vault"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PATHSHARE_VAULT=str(tmp_path / "from-env.vault"))
    proc = subprocess.run(
        [sys.executable, "-c", code, str(target)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, _, labels = proc.stdout.partition("\n")
    assert first == f"1 {target}"
    assert str(target) in labels  # the first-run screen names the chosen vault
    assert "from-env.vault" not in labels


@pytest.mark.parametrize(
    ("environ", "platform", "opens"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({}, "freebsd14", False),
        ({}, "win32", True),
        ({}, "darwin", True),
    ],
)
def test_no_display_reason_per_platform(environ, platform, opens):
    from desktop.app import no_display_reason

    reason = no_display_reason(environ, platform)
    assert (reason is None) is opens
    if reason:
        assert "pathshare --help" in reason and "\n" not in reason


def test_pathshare_without_a_display_says_so_in_one_sentence_and_exits_1():
    """Before: Qt aborted the process with its own message (exit 134)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from desktop.cli import main; sys.exit(main([]))"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("pathshare: No display was found")
    assert "qt." not in proc.stderr.lower()


# ------------------------------------------------------------------ roles: what the organization does


def test_roles_at_first_run_choose_the_home_screen_and_can_be_changed(qtbot, tmp_path, session_factory):
    """A college that only receives used to land on Prepare like everyone else (issue 17)."""
    from agreements import Vault, organization_roles
    from desktop.ui.main_window import MainWindow

    vault_path = tmp_path / "college.vault"
    window = MainWindow(session_factory(vault_path))
    qtbot.addWidget(window)
    window.show()
    fr = window.first_run
    fr._go(2)
    fr.kind.setCurrentIndex(fr.kind.findData("college"))
    assert fr.roles.chosen() == {"receive"}  # the kind's first guess
    fr.roles.boxes["oversee"].setChecked(True)  # the person's own choice…
    fr.kind.setCurrentIndex(fr.kind.findData("employer"))
    assert fr.roles.chosen() == {"receive", "oversee"}  # …is kept when the kind changes
    for box in fr.roles.boxes.values():
        box.setChecked(False)
    qtbot.keyClicks(fr.org_name, "Valley College")
    assert not fr.create.isEnabled()  # at least one role
    fr.roles.boxes["receive"].setChecked(True)
    fr.roles.boxes["oversee"].setChecked(True)
    assert fr.create.isEnabled()
    fr.passphrase.setText(PASSPHRASE)
    qtbot.mouseClick(fr.create, Qt.LeftButton)
    qtbot.waitUntil(lambda: fr.pages.currentIndex() == 3, timeout=10_000)
    qtbot.mouseClick(fr.done, Qt.LeftButton)
    ws = window.workspace
    assert ws.stack.currentWidget() is ws.receive  # receives (and oversees), sends nothing
    assert organization_roles(window.session.vault) == {"receive", "oversee"}
    # Changed later on the card screen: only oversight → the Dashboard on the next unlock.
    titles = [ws.sidebar.item(i).text() for i in range(ws.sidebar.count())]
    ws.sidebar.setCurrentRow(titles.index("My organization's card"))
    card_page = ws.stack.currentWidget()
    assert card_page.roles.chosen() == {"receive", "oversee"}
    card_page.roles.boxes["receive"].setChecked(False)
    assert card_page.store_roles() and "Saved" in card_page.roles_message.text()
    card_page.roles.boxes["oversee"].setChecked(False)
    assert not card_page.save_roles.isEnabled()
    window.lock()
    window.unlock.passphrase.setText(PASSPHRASE)
    window.unlock.unlock.click()
    ws = window.workspace
    assert ws.stack.currentWidget() is ws.stack.widget(titles.index("Dashboard"))
    window.close()
    with Vault.open(vault_path, PASSPHRASE) as vault:
        logged = [e.details["roles"] for e in vault.audit.entries(action="organization.roles")]
    assert logged == [["receive", "oversee"], ["oversee"]]


def test_organization_roles_in_the_library(tmp_path):
    import pytest as _pytest

    from agreements import Vault, create_identity, default_roles, organization_roles, set_organization_roles
    from deid.errors import InputError

    assert default_roles("district") == {"send"} and default_roles("college") == {"receive"}
    assert default_roles("intermediary") == {"oversee"} and default_roles("unknown") == {
        "send", "receive", "oversee"
    }
    with Vault.create(tmp_path / "v.vault", PASSPHRASE) as vault:
        create_identity(vault, "Plains Workforce Board", "intermediary")
        assert organization_roles(vault) == {"oversee"}
        with _pytest.raises(InputError, match="at least one"):
            set_organization_roles(vault, [])
        with _pytest.raises(InputError, match="'publish' is not a role"):
            set_organization_roles(vault, ["send", "publish"])
        assert organization_roles(vault) == {"oversee"}  # nothing stored by a refusal
        set_organization_roles(vault, ["send", "oversee"])
        assert organization_roles(vault) == {"send", "oversee"}


def test_an_unanswered_modal_question_fails_the_test_instead_of_hanging(qtbot):
    """The suite's guard (conftest): a modal dialog a test does not answer raises at once."""
    from PySide6.QtWidgets import QMessageBox, QWidget

    parent = QWidget()
    qtbot.addWidget(parent)
    with pytest.raises(AssertionError, match="does not answer"):
        QMessageBox.question(parent, "Replace the file?", "x.csv already exists.")
    with pytest.raises(AssertionError, match="does not answer"):
        QMessageBox(parent).exec()
