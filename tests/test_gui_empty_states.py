"""Issue 17: empty states say what to do next *in the app*, never "run `pathshare …`" on a command line.

A fresh vault — first run done, no partner, no agreement, no package — and every screen of the window
walked: the first-run pages, then each screen in the sidebar and the File menu. All the text each
screen holds (labels, buttons, tooltips, placeholders, group titles, list and table cells, headers) is
gathered, shown or not, and no line of it may name a command (``pathshare …``) or a command-line flag
(``--force``). The library's hints that name a command stay on the command line (the app leaves them
out); its messages are in the app's words.
"""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QSettings, Qt

PASSPHRASE = "tidal mango quarry lantern"
# A command ("pathshare packages", "`pathshare") or a flag ("--force", "--reason") in what the user reads.
CLI_WORDS = re.compile(r"pathshare\s|`pathshare|(?<![\w-])--[a-z]")


@pytest.fixture(autouse=True)
def _cheap_kdf():
    from partners_setup import cheap_kdf

    with cheap_kdf():
        yield


def _plain(text: str) -> str:
    """Rich text as the eye reads it."""
    return re.sub(r"<[^>]+>", " ", text or "").replace("&nbsp;", " ")


def texts(root) -> list[str]:
    """Every text ``root`` and its children hold for the user to read."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QAbstractItemView,
        QComboBox,
        QGroupBox,
        QLabel,
        QLineEdit,
        QPlainTextEdit,
        QTabWidget,
        QTextEdit,
        QWidget,
    )

    found: list[str] = []
    for w in [root, *root.findChildren(QWidget)]:
        found += [w.toolTip(), w.whatsThis(), w.accessibleName(), w.accessibleDescription()]
        if isinstance(w, QLabel | QAbstractButton):
            found.append(w.text())
        elif isinstance(w, QLineEdit):
            found += [w.text(), w.placeholderText()]
        elif isinstance(w, QTextEdit | QPlainTextEdit):
            found += [w.toPlainText(), w.placeholderText()]
        elif isinstance(w, QGroupBox):
            found.append(w.title())
        elif isinstance(w, QComboBox):
            found += [w.itemText(i) for i in range(w.count())]
        elif isinstance(w, QTabWidget):
            found += [w.tabText(i) for i in range(w.count())]
        if isinstance(w, QAbstractItemView) and w.model() is not None:
            found += _model_texts(w.model())
        for action in w.actions():
            found += [action.text(), action.toolTip(), action.statusTip()]
    return [_plain(t) for t in found if t]


def _model_texts(m) -> list[str]:
    """A view's cells and column headers (a list model's counts are private in PySide: walk the indexes)."""
    rows = 0
    while rows < 10_000 and m.index(rows, 0).isValid():
        rows += 1
    columns = 0
    while columns < 100 and (m.index(0, columns).isValid() or (
            rows == 0 and m.headerData(columns, Qt.Orientation.Horizontal) not in (None, "", columns + 1))):
        columns += 1
    found = [str(m.index(r, c).data() or "") for r in range(rows) for c in range(columns)]
    return found + [str(m.headerData(c, Qt.Orientation.Horizontal) or "") for c in range(columns)]


def cli_lines(found: list[str]) -> list[str]:
    return [t for t in found if CLI_WORDS.search(t)]


def test_every_screen_of_a_fresh_vault_speaks_of_the_app_not_the_command_line(qtbot, tmp_path):
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = Session(vault_path=tmp_path / "fresh.vault", settings=Settings(qs), runner=SyncRunner(),
                      synchronous=True)  # fmt: skip
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    seen: dict[str, list[str]] = {}

    # The first run, page by page (every role chosen, so that every screen is in the sidebar after).
    fr = window.first_run
    assert fr is not None
    for i in range(fr.pages.count()):
        seen[f"first run, page {i + 1}"] = texts(fr.pages.widget(i))
    fr._go(2)
    qtbot.keyClicks(fr.org_name, "Valley College")
    fr.kind.setCurrentIndex(fr.kind.findData("college"))
    for box in fr.roles.boxes.values():
        box.setChecked(True)
    fr.passphrase.setText(PASSPHRASE)
    qtbot.mouseClick(fr.create, Qt.LeftButton)
    qtbot.waitUntil(lambda: fr.pages.currentIndex() == 3, timeout=10_000)
    seen["first run, done"] = texts(fr)
    qtbot.mouseClick(fr.done, Qt.LeftButton)

    # Each screen of the sidebar, empty, and the window's menus.
    ws = window.workspace
    assert ws is not None
    titles = [ws.sidebar.item(i).text() for i in range(ws.sidebar.count())]
    for row, title in enumerate(titles):
        ws.sidebar.setCurrentRow(row)
        page = ws.stack.currentWidget()
        if hasattr(page, "refresh"):
            page.refresh()
        seen[title] = texts(page)
    seen["menus"] = [_plain(a.text()) for menu in window.menuBar().findChildren(type(window.menuBar()))
                     for a in menu.actions()] + texts(window.menuBar())  # fmt: skip

    # The walk reached every screen (a walk that stopped early would pass otherwise) and each says
    # something.
    for expected in ("Prepare a package", "Receive a package", "Link two files", "Packages", "Agreements",
                     "Partners", "Audit log", "Dashboard", "My organization's card"):  # fmt: skip
        assert expected in titles, titles
    empty = [name for name, found in seen.items() if not "".join(found).strip()]
    assert not empty
    # The empty states point to the screen that does the next step.
    assert any("No packages yet. Seal one for a partner on “Prepare a package”" in t
               for t in seen["Packages"])
    assert any("open one on “Receive a package” first" in t for t in seen["Outcomes"])
    offending = {name: cli_lines(found) for name, found in seen.items() if cli_lines(found)}
    assert not offending, offending


def test_the_check_sees_a_command_and_a_flag():
    """The check itself: a command and a flag are caught; the product's name and a dash are not."""
    bad = ["Run `pathshare packages` to see it.", "Add --force to replace it.", "Use pathshare open FILE."]
    assert cli_lines(bad) == bad
    assert cli_lines(["PathShare opens on the screen that fits.", "2026-12-05 -- 2027", "x — y"]) == []
