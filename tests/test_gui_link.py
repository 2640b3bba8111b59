"""The Link page driven as a college analyst would: drop the district's and the college's de-identified
files (each with a link_tokens column made from deid.synth data under one secret), click Link, read the
counts; the linked file on disk matches them and holds no identities; bad input is one sentence."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from partners_setup import cheap_kdf
from PySide6.QtCore import QSettings, Qt
from test_gui_prepare import drop_file

PASS = "tidal mango quarry lantern"
ROWS = 200  # both synthetic populations: ~30 students in common, half linked only by derived keys
IDENTIFYING = {"SSID", "STU_ID", "Local ID", "First Name", "Middle Name", "Last Name", "Birth Date",
               "STU_FIRST_NM", "STU_MID_NM", "STU_LAST_NM", "STU_BIRTH_DT", "link_tokens", "link_tokens_b"}


@pytest.fixture(autouse=True)
def _cheap_kdf(request):
    """Fewer SQLCipher KDF iterations: nothing here is about the KDF (but the spawned worker, which
    opens the vault to audit the link, derives the key as the app does: that test keeps the real KDF)."""
    if "worker_vault_file" in request.fixturenames:
        yield
        return
    with cheap_kdf():
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A district's CSV and a college's Parquet, de-identified to link tokens + one attribute each."""
    from deid import LinkFields, link_tokens
    from deid._secrets import derive_key
    from deid.synth import generate

    tmp = tmp_path_factory.mktemp("link-inputs")
    key = derive_key(b"gui test consortium secret 32 by", "link_tokens")
    k12, college = generate("k12", ROWS, seed=5), generate("college", ROWS, seed=5)
    codes = pc.subtract(pc.cast(college.table["SEX"], pa.int64()), 1)
    ct = college.table.set_column(college.table.column_names.index("SEX"), "SEX",
                                  pc.take(pa.array(["F", "M", "X"]), codes))  # fmt: skip
    ta = link_tokens(k12.table, LinkFields("SSID", "First Name", "Middle Name", "Last Name", "Birth Date",
                                           "Gender"), key, baseline=True)  # fmt: skip
    tb = link_tokens(ct, LinkFields("SSID", "STU_FIRST_NM", "STU_MID_NM", "STU_LAST_NM", "STU_BIRTH_DT",
                                    "SEX"), key, baseline=True)  # fmt: skip
    district = tmp / "district.csv"
    pcsv.write_csv(pa.table({"Grade": k12.table["Grade"], "link_tokens": ta}), district)
    college_file = tmp / "college.parquet"
    pq.write_table(pa.table({"link_tokens": tb, "TERM_CD": ct["TERM_CD"]}), college_file)
    no_tokens = tmp / "no-tokens.csv"
    pcsv.write_csv(pa.table({"Grade": k12.table["Grade"]}), no_tokens)
    bad_tokens = tmp / "bad-tokens.csv"
    bad_tokens.write_text("Grade,link_tokens\n11,Ana Soto\n", encoding="utf-8")
    return {"district": district, "college": college_file, "no_tokens": no_tokens, "bad_tokens": bad_tokens}


@pytest.fixture(scope="module")
def vault_file(tmp_path_factory):
    from agreements import Vault, create_identity

    path = tmp_path_factory.mktemp("link-vault") / "college.vault"
    with cheap_kdf(), Vault.create(path, PASS) as vault:
        create_identity(vault, "Riverbend Community College", "college")
    return path


@pytest.fixture(scope="module")
def worker_vault_file(tmp_path_factory):
    """A vault with the real KDF, for the test whose spawned worker opens it."""
    from agreements import Vault, create_identity

    path = tmp_path_factory.mktemp("link-worker-vault") / "college.vault"
    with Vault.create(path, PASS) as vault:
        create_identity(vault, "Riverbend Community College", "college")
    return path


def open_link_page(qtbot, tmp_path, vault_file, runner=None, synchronous=True):
    """The unlocked window on "Link two files" (reached with its sidebar shortcut, Ctrl+3)."""
    from desktop.tasks import SyncRunner
    from desktop.ui.link_page import LinkPage
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = Session(vault_path=vault_file, settings=Settings(qs), runner=runner or SyncRunner(),
                      synchronous=synchronous)  # fmt: skip
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2_000)
    qtbot.keyClicks(window.unlock.passphrase, PASS)
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=10_000)
    ws = window.workspace
    assert ws is not None
    titles = [ws.sidebar.item(i).text() for i in range(ws.sidebar.count())]
    assert titles[:3] == ["Prepare a package", "Receive a package", "Link two files"]
    qtbot.keyClick(ws, Qt.Key_3, Qt.ControlModifier)
    page = ws.stack.currentWidget()
    assert isinstance(page, LinkPage)
    return window, page


def test_link_two_dropped_files_shows_counts_and_writes_the_linked_file(qtbot, tmp_path, files, vault_file):
    from deid import link

    window, page = open_link_page(qtbot, tmp_path, vault_file)
    assert not page.link_button.isEnabled()
    drop_file(page.side_a.drop, files["district"])
    drop_file(page.side_b.drop, files["college"])
    assert f"{ROWS} rows" in page.side_a.line.text() and "link_tokens" in page.side_a.line.text()
    assert f"{ROWS} rows" in page.side_b.line.text() and "college.parquet" in page.side_b.line.text()
    assert page.method.currentData() == "combined" and page.link_button.isEnabled()
    # Suggested beside file A; the report beside the linked file.
    assert page.out_path.text() == str(files["district"].parent / "linked.csv")
    out, report = tmp_path / "linked.csv", tmp_path / "linked-report.json"
    page.out_path.setText(str(out))
    page.report_path.setText(str(report))
    qtbot.mouseClick(page.link_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: page.result is not None or page.message.isVisible(), timeout=10_000)
    assert page.result is not None, page.message.label.text()

    # The window shows what the library (the function `pathshare link` calls) finds on the same files.
    expected = link(files["district"], files["college"], tmp_path / "cli.csv").report
    assert expected.linked > 0 and expected.linked_by["id"] > 0 and expected.linked_by["derived"] > 0
    assert page.values["linked"].text() == f"<b>{expected.linked:,}</b>"
    rate = page.values["rate"].text()
    assert f"{expected.rate_a:.1%}" in rate and f"{expected.rate_b:.1%}" in rate
    by = page.values["by_method"].text()
    assert f"{expected.linked_by['id']:,} by the state ID token" in by
    assert f"{expected.linked_by['derived']:,} by derived-key tokens" in by
    assert f"{ROWS:,} in A (district.csv)" in page.values["rows"].text()
    written = page.values["written"].text()
    # Both drop zones stay the same size whichever line under them wraps (seen on a screenshot).
    assert page.side_a.drop.height() == page.side_b.drop.height()
    assert not page.grab().isNull()
    assert str(out) in written and str(report) in written and page.results.isVisible()
    # The analyst's charts, drawn by the library from the same counts the CLI's report holds.
    from deid import link_chart_data

    assert page.chart.isVisible() and page.chart.pixmap().width() > 500
    assert link_chart_data(page.result) == link_chart_data(expected) and expected.score_counts

    # On disk: one row per reported pair, the two files' attributes, no names, IDs or tokens.
    linked = pcsv.read_csv(out)
    assert linked.num_rows == expected.linked
    assert {"a_row", "b_row", "link_method", "Grade", "TERM_CD"} <= set(linked.column_names)
    assert not IDENTIFYING & set(linked.column_names)
    doc = json.loads(report.read_text())
    assert doc["linked"] == expected.linked and doc["method"] == "combined"
    assert doc["linked_by"] == expected.linked_by
    # Last folder remembered; nothing secret in settings.
    window.close()
    settings = (tmp_path / "settings.ini").read_text()
    assert "link_in" in settings and PASS not in settings


def test_method_choice_and_shortcut_run_the_id_only_method(qtbot, tmp_path, files, vault_file):
    from deid import link

    _, page = open_link_page(qtbot, tmp_path, vault_file)
    drop_file(page.side_a.drop, files["district"])
    drop_file(page.side_b.drop, files["college"])
    page.method.setCurrentIndex(page.method.findData("id"))
    page.out_path.setText(str(tmp_path / "linked.parquet"))
    page.report_path.setText(str(tmp_path / "r.json"))
    page.link_button.setFocus()
    qtbot.keyClick(page.link_button, Qt.Key_L, Qt.ControlModifier | Qt.ShiftModifier)
    qtbot.waitUntil(lambda: page.result is not None or page.message.isVisible(), timeout=10_000)
    assert page.result is not None, page.message.label.text()
    expected = link(files["district"], files["college"], method="id").report
    assert page.result["method"] == "id" and page.result["linked"] == expected.linked
    assert expected.linked_by["derived"] == 0 and "0 by derived-key tokens" in page.values["by_method"].text()
    assert pq.read_table(tmp_path / "linked.parquet").num_rows == expected.linked


def test_a_file_without_link_tokens_is_one_sentence_and_writes_nothing(qtbot, tmp_path, files, vault_file):
    _, page = open_link_page(qtbot, tmp_path, vault_file)
    out, report = tmp_path / "out" / "linked.csv", tmp_path / "out" / "linked-report.json"
    out.parent.mkdir()
    drop_file(page.side_a.drop, files["district"])
    drop_file(page.side_b.drop, files["no_tokens"])
    assert "no single link-tokens column" in page.side_b.line.text()
    text = page.message.label.text()
    assert page.message.isVisible() and "no-tokens.csv" in text and "\n" not in text and text.count(". ") == 0
    assert not page.link_button.isEnabled()
    page.run_link()  # the shortcut's path too: refused while a file has no tokens
    assert page.result is None

    # A link_tokens column whose cells are not tokens: the library's sentence, and nothing written.
    drop_file(page.side_b.drop, files["bad_tokens"])
    assert not page.message.isVisible() and page.link_button.isEnabled()
    page.out_path.setText(str(out))
    page.report_path.setText(str(report))
    qtbot.mouseClick(page.link_button, Qt.LeftButton)
    qtbot.waitUntil(page.message.isVisible, timeout=10_000)
    text = page.message.label.text()
    assert "bad-tokens.csv" in text and "row 2" in text and "Traceback" not in text and "\n" not in text
    assert "Ana" not in text  # never a cell value
    assert page.result is None and not page.results.isVisible()
    assert list(out.parent.iterdir()) == []


def test_cancel_before_writing_leaves_nothing(qtbot, tmp_path, files, vault_file):
    _, page = open_link_page(qtbot, tmp_path, vault_file)
    drop_file(page.side_a.drop, files["district"])
    drop_file(page.side_b.drop, files["college"])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    page.out_path.setText(str(out_dir / "linked.csv"))
    page.report_path.setText(str(out_dir / "linked-report.json"))
    ws = page.workspace
    qtbot.mouseClick(page.link_button, Qt.LeftButton)
    assert ws.busy() and ws.progress.isVisible() and not page.link_button.isEnabled()
    qtbot.mouseClick(ws.progress.cancel, Qt.LeftButton)
    qtbot.waitUntil(lambda: not ws.busy(), timeout=5_000)
    qtbot.wait(50)  # the synchronous job's turn: it stops at its first progress report
    assert page.message.label.text() == "Cancelled; nothing was written."
    assert list(out_dir.iterdir()) == [] and page.result is None and page.link_button.isEnabled()


def test_link_in_the_real_worker_process(qtbot, tmp_path, files, worker_vault_file):
    """Once as the app runs: the files are read on a pool thread, the job runs in a spawned worker (on
    the vault the window lends it) and its report comes back; the window has the vault back, with the
    worker's audit entry."""
    from desktop.tasks import ProcessRunner

    window, page = open_link_page(qtbot, tmp_path, worker_vault_file, runner=ProcessRunner(),
                                  synchronous=False)  # fmt: skip
    drop_file(page.side_a.drop, files["district"])
    drop_file(page.side_b.drop, files["college"])
    assert "reading" in page.side_b.line.text() or page.side_b.info is not None
    qtbot.waitUntil(page.link_button.isEnabled, timeout=10_000)
    assert f"{ROWS} rows" in page.side_b.line.text()
    page.out_path.setText(str(tmp_path / "linked.csv"))
    page.report_path.setText(str(tmp_path / "linked-report.json"))
    qtbot.mouseClick(page.link_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: page.result is not None or page.message.isVisible(), timeout=30_000)
    assert page.result is not None, page.message.label.text()
    assert pcsv.read_csv(tmp_path / "linked.csv").num_rows == page.result["linked"] > 0
    assert (tmp_path / "linked-report.json").is_file()
    qtbot.waitUntil(lambda: not window.workspace.busy(), timeout=10_000)
    entry = window.session.vault.audit.entries()[-1]
    assert entry.action == "linkage.linked" and entry.details["linked"] == page.result["linked"]
    assert (entry.details["file_a"], entry.details["file_b"]) == ("district.csv", "college.parquet")


def test_every_control_has_an_accessible_name_and_tab_order_follows_the_page(qtbot, tmp_path, vault_file):
    from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QWidget

    _, page = open_link_page(qtbot, tmp_path, vault_file)
    missing = [type(w).__name__ for w in page.findChildren(QWidget)
               if isinstance(w, QLineEdit | QComboBox | QAbstractButton) and w.parent() is not None
               and not isinstance(w.parent(), QComboBox) and not w.accessibleName()]  # fmt: skip
    assert not missing
    order = [page.side_a.drop.button]
    while len(order) < 8:
        order.append(order[-1].nextInFocusChain())
        while order[-1].focusPolicy() & Qt.FocusPolicy.TabFocus != Qt.FocusPolicy.TabFocus:
            order[-1] = order[-1].nextInFocusChain()
    assert order == [page.side_a.drop.button, page.side_b.drop.button, page.method, page.out_path,
                     page.change_out, page.report_path, page.change_report, page.link_button]  # fmt: skip


def test_a_failure_after_the_linked_file_is_written_takes_it_away_too(qtbot, tmp_path, files, vault_file,
                                                                      monkeypatch):  # fmt: skip
    """The library writes the linked rows, then the report: if the report fails (or the job is cancelled
    between the two) the linked file it just wrote goes too, and an older file beside it stays."""
    from deid import LinkReport
    from deid.errors import OutputError

    def refuse(self, path, **_options):
        raise OutputError(f"Cannot write {path}: the disk is full.")

    monkeypatch.setattr(LinkReport, "write", refuse)
    _, page = open_link_page(qtbot, tmp_path, vault_file)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    older = out_dir / "earlier-linked.csv"
    older.write_text("a_row,b_row\n", encoding="utf-8")
    import os
    import time

    os.utime(older, (time.time() - 600, time.time() - 600))
    drop_file(page.side_a.drop, files["district"])
    drop_file(page.side_b.drop, files["college"])
    page.out_path.setText(str(out_dir / "linked.csv"))
    page.report_path.setText(str(out_dir / "linked-report.json"))
    qtbot.mouseClick(page.link_button, Qt.LeftButton)
    qtbot.waitUntil(page.message.isVisible, timeout=10_000)
    assert "the disk is full" in page.message.label.text() and page.result is None
    assert [p.name for p in out_dir.iterdir()] == ["earlier-linked.csv"]


def test_a_cancelled_link_removes_its_own_spill_folder_and_not_a_concurrent_links(qtbot, tmp_path):
    """The worker's spill folder beside the output goes when its job is cancelled; another link running
    beside the same output keeps its folder (the cancel used to remove every folder of the spill's
    prefix made since the job started). Whose a folder is, its owner note says (deid.private_folder)."""
    from deid import SPILL_FOLDER_PREFIX, private_folder
    from desktop.tasks import Job, ProcessRunner

    out = tmp_path / "linked.csv"
    kwargs = {"out": str(out), "steps": 400, "delay": 0.05, "run_folder": str(tmp_path)}
    job = Job("desktop.ui.jobs:selftest", kwargs, outputs=(str(out),), run_folders=(str(tmp_path),))
    handle = ProcessRunner().start(job)
    with qtbot.waitSignal(handle.progress, timeout=30_000):
        pass
    (ours,) = tmp_path.glob(SPILL_FOLDER_PREFIX + "*")  # the worker's, made before its first step
    concurrent = private_folder(tmp_path)  # another link's, in a process that is still running (this one)
    with qtbot.waitSignal(handle.cancelled, timeout=10_000):
        handle.cancel()
    assert not ours.exists() and not out.exists()
    assert list(tmp_path.iterdir()) == [concurrent] and (concurrent / "owner").is_file()
