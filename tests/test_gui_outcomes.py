"""The Outcomes screen: the demo college's opened package, measures and breakdowns in the users' words,
the release through the library (files, audit entry), and a refusal shown in the window."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_gui_packages import show, window_on

PASS = "gui-outcomes-passphrase-8812"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture
def demo(_demo_template, tmp_path) -> Path:
    """A fresh copy of the demo for one test (the demo itself is run once per module)."""
    import shutil

    folder = tmp_path / "demo"
    shutil.copytree(_demo_template, folder)
    return folder


@pytest.fixture(scope="module")
def _demo_template(tmp_path_factory) -> Path:
    from partners_setup import cheap_kdf

    from agreements import run_demo

    folder = tmp_path_factory.mktemp("outcomes-demo") / "demo"
    with cheap_kdf():  # as the tests open it (their autouse fixture comes after this module's)
        assert run_demo(folder, rows=600, passphrase=PASS, say=lambda _line: None).ok
    return folder


def _tick(box, text: str) -> None:
    for i in range(box.count()):
        if box.item(i).text() == text:
            box.item(i).setCheckState(Qt.CheckState.Checked)
            return
    raise AssertionError(f"{text!r} not in {[box.item(i).text() for i in range(box.count())]}")


def _texts(box) -> list[str]:
    return [box.item(i).text() for i in range(box.count())]


def test_make_outcome_tables_in_the_app(qtbot, tmp_path, demo):
    from desktop.ui.outcomes_page import OutcomesPage

    window = window_on(qtbot, tmp_path, demo / "college.vault", PASS)
    page = show(window, "Outcomes")
    assert isinstance(page, OutcomesPage)
    assert len(_texts(page.packages)) == 1 and "Lakeview Unified School District" in _texts(page.packages)[0]
    # The app's words: measure and breakdown names, never the catalog's ids or element names.
    assert "Dual-enrollment participation" in _texts(page.measures)
    for text in _texts(page.measures) + _texts(page.breakdowns):
        assert "_" not in text, text
    assert "Sex / gender" in _texts(page.breakdowns)
    page.packages.item(0).setCheckState(Qt.CheckState.Checked)
    _tick(page.breakdowns, "Sex / gender")
    page.out_path.setText(str(tmp_path / "tables"))
    # A table of combinations needs two different breakdowns: said in the window, nothing started.
    page.cross_a.setCurrentIndex(page.cross_a.findText("Race"))
    page.make_button.click()
    assert "two different breakdowns" in page.message.text() and page.result is None
    page.cross_b.setCurrentIndex(page.cross_b.findText("Sex / gender"))
    page.make_button.click()
    qtbot.waitUntil(lambda: page.result is not None, timeout=60_000)
    assert (tmp_path / "tables" / "outcomes.xlsx").is_file()
    import csv

    with open(tmp_path / "tables" / "outcomes.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    crossed = [r for r in rows if r["breakdown"] == "race*sex"]
    assert crossed and all(" × " in r["group_label"] for r in crossed[:-1])
    assert crossed[0]["breakdown_label"] == "Race × Sex / gender"
    assert {r["breakdown"] for r in rows} >= {"race", "sex"}  # the cross table's totals come with it
    assert "outcomes.xlsx" in page.message.text() and "hidden" in page.summary.text()
    actions = [e.action for e in window.session.vault.audit.entries()]
    assert actions.count("outcomes.released") == 2  # the demo's, and this one
    window.close()


def test_a_measure_the_packages_cannot_give_is_refused_in_the_window(qtbot, tmp_path, demo):
    window = window_on(qtbot, tmp_path, demo / "college.vault", PASS)
    page = show(window, "Outcomes")
    page.packages.item(0).setCheckState(Qt.CheckState.Checked)
    page.measures.item(0).setCheckState(Qt.CheckState.Unchecked)  # dual enrollment
    _tick(page.measures, "High-school graduation")
    page.out_path.setText(str(tmp_path / "refused"))
    page.make_button.click()
    qtbot.waitUntil(lambda: bool(page.message.text()), timeout=60_000)
    assert "needs high-school graduate" in page.message.text()
    assert "Traceback" not in page.message.text() and not (tmp_path / "refused").exists()
    window.close()


def test_a_cancelled_release_names_where_its_private_folder_is(qtbot, tmp_path, demo, monkeypatch):
    """The release reads, links and counts in a private folder beside the output (names and tokens
    of the packages pass through it): the job names that place, so a cancel sweeps the folder."""
    from desktop.ui.outcomes_page import OutcomesPage

    window = window_on(qtbot, tmp_path, demo / "college.vault", PASS)
    page = show(window, "Outcomes")
    assert isinstance(page, OutcomesPage)
    started = []
    monkeypatch.setattr(page.workspace, "start_job", lambda job, *_a: started.append(job))
    page.packages.item(0).setCheckState(Qt.CheckState.Checked)
    page.out_path.setText(str(tmp_path / "place" / "tables"))
    page.make_button.click()
    (job,) = started
    assert job.run_folders == (str(tmp_path / "place"),)
