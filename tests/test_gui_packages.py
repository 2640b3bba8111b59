"""The jobs that were command-line only, in the app: the Packages screen (import a receipt and a
destruction certificate, destroy a received package and certify it, void one that never left), the
linkage key on the Agreements screen, and File → Open vault…, New vault…, Recent vaults. Each goes through
the library's workflow and leaves its audit entry."""

from __future__ import annotations

import pytest
from partners_setup import PASS as ORG_PASS
from partners_setup import Org, execute_agreement
from PySide6.QtCore import QSettings, Qt
from test_gui_prepare import PASS, make_extract, make_orgs


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


def window_on(qtbot, tmp_path, vault_path, passphrase=PASS):
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = Session(vault_path=vault_path, settings=Settings(qs), runner=SyncRunner(), synchronous=True)
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    if passphrase:
        unlock(qtbot, window, passphrase)
    return window


def unlock(qtbot, window, passphrase=PASS):
    window.unlock.passphrase.setText(passphrase)
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=5_000)


def show(window, title):
    ws = window.workspace
    ws.sidebar.setCurrentRow(ws.row_of(title))
    return ws.stack.currentWidget()


def actions(vault):
    return [e.action for e in vault.audit.entries()]


def test_destroy_certify_import_and_void_in_the_app(qtbot, tmp_path):
    from agreements import Vault, open_received, seal_for_agreement

    district, college, aid = make_orgs(tmp_path)
    data = make_extract(tmp_path / "extract.csv", rows=5)
    with Vault.open(district, PASS) as d:
        report = {"rows_in": 5, "rows_out": 5}
        sent = seal_for_agreement(d, aid, [("extract.csv", data, 5)], report, tmp_path / "pkg.age")
        never = seal_for_agreement(d, aid, [("extract.csv", data, 5)], report, tmp_path / "unsent.age")
    with Vault.open(college, PASS) as c:
        open_received(c, tmp_path / "pkg.age", tmp_path / "inbox", receipt=tmp_path / "receipt.json")
    assert (tmp_path / "inbox").is_dir()

    # The college destroys what it received and certifies it, in its window.
    window = window_on(qtbot, tmp_path, college)
    page = show(window, "Packages")
    assert page.table.rowCount() == 1 and page.table.item(0, 4).text() == "Opened, not yet destroyed"
    page.table.selectRow(0)
    assert page.destroy_button.isEnabled() and not page.void_button.isEnabled()
    asked = []
    page.confirm = lambda title, text: asked.append(text) or True
    assert page.destroy_selected(str(tmp_path / "certificate.json")), page.message.text()
    assert "inbox" in asked[0] and not (tmp_path / "inbox").exists()
    assert (tmp_path / "certificate.json").is_file() and "Send certificate.json" in page.message.text()
    assert actions(window.session.vault)[-1] == "package.destroyed"
    assert page.table.item(0, 4).text() == "Destroyed"
    window.close()

    # The district imports the receipt and the certificate, and voids the package it never sent.
    window = window_on(qtbot, tmp_path, district)
    page = show(window, "Packages")
    assert page.import_returned(str(tmp_path / "receipt.json")), page.message.text()
    assert "Riverbend Community College" in page.message.text()
    assert page.import_returned(str(tmp_path / "certificate.json")), page.message.text()
    vault = window.session.vault
    assert actions(vault)[-2:] == ["package.delivered", "package.destruction_certified"]
    page.select(sent.manifest.package_id)
    assert page.selected().state_label == "Closed: every recipient destroyed it"
    assert not page.void_button.isEnabled()  # it left: a receipt came back
    page.select(never.manifest.package_id)
    assert page.void_button.isEnabled()
    page.confirm = lambda title, text: True
    page.ask_text = lambda title, label: None  # cancelled: nothing happens
    assert not page.void_selected() and (tmp_path / "unsent.age").is_file()
    page.ask_text = lambda title, label: "addressed to the wrong college"
    assert page.void_selected(), page.message.text()
    assert not (tmp_path / "unsent.age").exists() and "sealed file is deleted" in page.message.text()
    last = vault.audit.entries()[-1]
    assert last.action == "package.voided" and last.details["reason"] == "addressed to the wrong college"
    assert page.selected().state_label == "Void: never sent"
    # A refusal is one sentence in the window: a file that is not there.
    assert not page.import_returned(str(tmp_path / "nothing.json"))
    assert page.message.isVisible() and "nothing.json" in page.message.text()

    # The dashboard counts what happened, as bars: one package destroyed, one void, one agreement in force.
    board = show(window, "Dashboard")
    assert board.sent_chart.rows == [("No receipt yet", 0), ("Delivered", 0), ("Refused", 0),
                                     ("Destroyed", 1), ("Void", 1)]
    assert ("In force", 1) in board.agreements_chart.rows and board.received_chart.rows == [
        ("Not yet destroyed", 0), ("Destroyed", 0)]
    assert "Destroyed: 1" in board.sent_chart.accessibleDescription()
    chart = board.sent_chart
    qtbot.waitUntil(lambda: chart.height() >= chart.sizeHint().height(), timeout=2_000)  # laid out
    image = chart.grab().toImage()
    highlight = board.sent_chart.palette().highlight().color().rgb()
    colours = {image.pixel(x, y) for x in range(image.width()) for y in range(image.height())}
    assert highlight in colours  # the bars are drawn


def test_file_menu_opens_creates_and_remembers_vaults(qtbot, tmp_path):
    district, college, _aid = make_orgs(tmp_path)
    window = window_on(qtbot, tmp_path, district)
    assert window.windowTitle().startswith("Lakeview")
    # Open another vault: the window locks this one and asks for the other's passphrase.
    assert window.switch_vault(college)
    assert window.workspace is None and window.session.vault is None
    assert window.stack.currentWidget() is window.unlock and window.session.vault_path == college
    unlock(qtbot, window)
    assert window.windowTitle().startswith("Riverbend")
    # Both vaults are in Recent vaults, newest first; the menu lists the other one.
    recent = window.session.settings.recent_vaults()
    assert recent[:2] == [str(college.resolve()), str(district.resolve())]
    window._fill_recent()
    labels = [a.text() for a in window.recent_menu.actions()]
    assert labels == [f"district.vault — {tmp_path.resolve()}"]
    window.recent_menu.actions()[0].trigger()
    assert window.unlock is not None and window.session.vault_path.resolve() == district.resolve()
    # New vault: a file that does not exist yet opens the set-up screens.
    assert window.switch_vault(tmp_path / "new.vault")
    assert window.first_run is not None and window.unlock is None
    assert window.stack.currentWidget() is window.first_run


def test_linkage_key_sent_and_imported_in_the_app(qtbot, tmp_path):
    a = Org(tmp_path / "a.vault", "Lakeview Unified School District", "district")
    b = Org(tmp_path / "b.vault", "Hillcrest Unified School District", "district")
    c = Org(tmp_path / "c.vault", "Riverbend Community College", "college")
    roles = [["provider"], ["provider"], ["recipient"]]
    aid = execute_agreement([a, b, c], roles, tmp_path, scope="consortium")
    for org in (a, b, c):
        org.vault.close()

    window = window_on(qtbot, tmp_path, tmp_path / "a.vault", ORG_PASS)
    page = show(window, "Agreements")
    page.table.selectRow(0)
    key = tmp_path / "key-for-hillcrest.json"
    assert page.export_linkage_selected(path=str(key)), page.message.text()  # the only other provider
    assert key.is_file() and "Hillcrest Unified School District" in page.message.text()
    last = window.session.vault.audit.entries()[-1]
    assert last.action == "linkage.key_exported" and last.agreement == aid
    window.close()

    window = window_on(qtbot, tmp_path, tmp_path / "b.vault", ORG_PASS)
    page = show(window, "Agreements")
    assert page.import_linkage_key(str(key)), page.message.text()
    assert "Imported the linkage key" in page.message.text()
    assert window.session.vault.audit.entries()[-1].action == "linkage.key_imported"
    # The recipient has no secret to send: one sentence, nothing written.
    window.close()
    window = window_on(qtbot, tmp_path, tmp_path / "c.vault", ORG_PASS)
    page = show(window, "Agreements")
    page.table.selectRow(0)
    out = tmp_path / "from-college.json"
    assert not page.export_linkage_selected(fingerprint=a.fp, path=str(out))
    assert page.message.isVisible() and not out.exists()


def test_reopen_a_lost_folder_change_passphrase_and_save_the_key_in_the_app(qtbot, tmp_path):
    import shutil
    import stat

    from agreements import Vault, open_received, seal_for_agreement

    district, college, aid = make_orgs(tmp_path)
    data = make_extract(tmp_path / "extract.csv", rows=5)
    with Vault.open(district, PASS) as d:
        seal_for_agreement(d, aid, [("extract.csv", data, 5)], {"rows_in": 5, "rows_out": 5},
                           tmp_path / "pkg.age")
    with Vault.open(college, PASS) as c:
        open_received(c, tmp_path / "pkg.age", tmp_path / "inbox")
    shutil.rmtree(tmp_path / "inbox")  # the folder is lost

    window = window_on(qtbot, tmp_path, college)
    vault = window.session.vault
    page = show(window, "Packages")
    page.table.selectRow(0)
    assert page.reopen_button.isEnabled() and page.destroy_button.isEnabled()
    assert page.reopen_selected("the laptop holding the folder was stolen", str(tmp_path / "pkg.age"))
    receive = window.workspace.receive
    assert window.workspace.stack.currentWidget() is receive and receive.package == str(tmp_path / "pkg.age")
    receive.out_dir.setText(str(tmp_path / "inbox-again"))
    receive.write_receipt.setChecked(False)
    qtbot.mouseClick(receive.open_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: receive.result is not None or receive.message.isVisible(), timeout=20_000)
    assert receive.result is not None, receive.message.label.text()
    last = vault.audit.entries()[-1]
    assert last.action == "package.reopened"
    assert last.details["reason"] == "the laptop holding the folder was stolen"
    page = show(window, "Packages")
    page.table.selectRow(0)
    assert not page.reopen_button.isEnabled()  # once only

    # Keys and passphrase, on the card screen.
    card = show(window, "My organization's card")
    assert not card.change_passphrase("not it", "a brand new passphrase for the vault 42")
    assert "not the vault's current passphrase" in card.keys_message.text()
    assert not card.change_passphrase(PASS, "short")  # the library's strength rule: one sentence
    assert card.keys_message.isVisible() and "vault.passphrase_change" not in [
        e.action for e in vault.audit.entries()]
    new = "orchid kettle glacier sparrow 1927"
    assert card.change_passphrase(PASS, new), card.keys_message.text()
    assert vault.audit.entries()[-1].action == "vault.passphrase_change"
    key = tmp_path / "age-identity.txt"
    assert card.export_age_key(str(key)), card.keys_message.text()
    assert "AGE-SECRET-KEY-1" in key.read_text()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert vault.audit.entries()[-1].action == "identity.export_age"
    window.close()
    with Vault.open(college, new) as reopened:  # the vault opens with the new passphrase only
        assert reopened.audit.verify()


def test_locking_while_the_agreement_form_waits_to_validate_is_quiet(qtbot, tmp_path):
    """Seen on the screenshots: a key press in the agreement form starts a short validation timer; a
    window locked (or closed) before it fired validated against no vault (AttributeError)."""
    district, _college, _aid = make_orgs(tmp_path)
    window = window_on(qtbot, tmp_path, district)
    page = show(window, "Agreements")
    page.new_agreement()
    qtbot.keyClicks(page.form.title, "Draft")  # starts the timer
    assert page.form._timer.isActive()
    form = page.form
    window.lock()
    assert window.session.vault is None
    form._timer.timeout.emit()  # as if it fired now: nothing happens, no exception
    qtbot.wait(300)
    assert window.unlock is not None and window.stack.currentWidget() is window.unlock


def test_destroy_in_the_app_when_the_files_were_moved_or_are_gone(qtbot, tmp_path):
    """The files are not where the package was opened: the app asks where they are now (and deletes them
    there), or what the user checked (and certifies by hand) — never a command-line flag in a message."""
    import shutil

    from agreements import Vault, open_received, seal_for_agreement

    district, college, aid = make_orgs(tmp_path)
    data = make_extract(tmp_path / "extract.csv", rows=5)
    with Vault.open(district, PASS) as d:
        report = {"rows_in": 5, "rows_out": 5}
        seal_for_agreement(d, aid, [("extract.csv", data, 5)], report, tmp_path / "one.age")
        seal_for_agreement(d, aid, [("extract.csv", data, 5)], report, tmp_path / "two.age")
    with Vault.open(college, PASS) as c:
        open_received(c, tmp_path / "one.age", tmp_path / "inbox1")
        open_received(c, tmp_path / "two.age", tmp_path / "inbox2")
    shutil.move(tmp_path / "inbox1", tmp_path / "moved")  # the analyst moved the first package's folder
    shutil.rmtree(tmp_path / "inbox2")  # and deleted the second by hand

    window = window_on(qtbot, tmp_path, college)
    page = show(window, "Packages")
    vault = window.session.vault
    asked: list[tuple[str, str]] = []

    def answer(yes_to_moved: bool):
        def confirm(title, text):
            asked.append((title, text))
            return yes_to_moved if title == "The files have moved" else True

        return confirm

    assert len(page.records) == 2
    for record_id, record in list(page.records.items()):
        page.select(record_id)
        moved = record.location.endswith("inbox1")
        page.confirm = answer(yes_to_moved=moved)
        page.ask_folder = lambda caption, start: str(tmp_path / "moved")
        page.ask_text = lambda title, label: "the folder inbox2 is gone; checked the recycle bin and backups"
        certificate = tmp_path / f"certificate-{'moved' if moved else 'by-hand'}.json"
        assert page.destroy_selected(str(certificate)), page.message.text()
        assert certificate.is_file()
        said = [text for title, text in asked if title == "The files have moved"][-1]
        assert "are not in" in said and "--" not in said  # the app's words, no flags
        entry = vault.audit.entries()[-1]
        assert entry.action == "package.destroyed"
        assert entry.details["verified"] == ("deleted" if moved else "attested")
        if moved:
            assert not (tmp_path / "moved").exists()  # deleted where the files are now
        else:
            assert "certified by hand" in page.message.text()
