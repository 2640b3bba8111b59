"""The Prepare flow driven as a clerk would: pick the agreement, drop the extract, confirm the mapping
and recodes, see the findings (then preview, risk and seal once the prepare workflow is wired)."""

from __future__ import annotations

import csv
import json
import random
from datetime import date, timedelta
from html import escape
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDropEvent

ROOT = Path(__file__).resolve().parent.parent
PASS = "tidal mango quarry lantern"
ELEMENTS = {"state_student_id", "local_student_id", "first_name", "last_name", "birth_date", "sex", "race",
            "zip", "grade_level", "gpa", "notes"}


def make_orgs(tmp: Path, k: int = 3) -> tuple[Path, Path, str]:
    """Two vaults (a district provider, a college recipient) that executed the documented agreement,
    cut down to the elements of :func:`make_extract` — all through the library's own functions."""
    from agreements import (
        Vault,
        create_agreement,
        create_identity,
        export_agreement,
        import_agreement,
        import_card,
        sign_agreement,
    )

    d = Vault.create(tmp / "district.vault", PASS)
    dcard = create_identity(d, "Lakeview Unified School District", "district", "data@lakeview.example")
    c = Vault.create(tmp / "college.vault", PASS)
    ccard = create_identity(c, "Riverbend Community College", "college", "ir@riverbend.example")
    import_card(d, ccard, verified=True)
    import_card(c, dcard, verified=True)
    body = json.loads((ROOT / "docs/examples/agreement.json").read_text(encoding="utf-8"))
    body.pop("id")
    reps = [p["authorized_representative"] for p in body["parties"]]
    body["parties"] = [
        {"fingerprint": dcard.fingerprint(), "roles": ["provider"], "authorized_representative": reps[0]},
        {"fingerprint": ccard.fingerprint(), "roles": ["recipient"], "authorized_representative": reps[1]},
    ]
    today = date.today()
    body["effective"] = (today - timedelta(days=30)).isoformat()
    body["expires"] = (today + timedelta(days=365)).isoformat()
    body["destruction"]["deadline"] = (today + timedelta(days=455)).isoformat()
    body["policy"]["k"] = k
    body["elements"] = [e for e in body["elements"] if e["name"] in ELEMENTS]
    body["policy"]["quasi_identifiers"] = [q for q in body["policy"]["quasi_identifiers"] if q in ELEMENTS]
    body["policy"]["parameters"] = {n: v for n, v in body["policy"]["parameters"].items() if n in ELEMENTS}
    body["policy"]["sensitive"] = [s for s in body["policy"]["sensitive"] if s in ELEMENTS]
    body["policy"]["hierarchies"] = {n: v for n, v in body["policy"]["hierarchies"].items() if n in ELEMENTS}
    draft = create_agreement(d, body)
    sign_agreement(d, draft.id)
    export_agreement(d, draft.id, tmp / "proposal.json")
    import_agreement(c, tmp / "proposal.json")
    sign_agreement(c, draft.id)
    export_agreement(c, draft.id, tmp / "executed.json")
    import_agreement(d, tmp / "executed.json")
    d.close()
    c.close()
    return tmp / "district.vault", tmp / "college.vault", draft.id


def make_extract(path: Path, rows: int = 60, seed: int = 7) -> Path:
    """A small SIS-style export with its own header names and values (Male/Female, not M/F)."""
    rng = random.Random(seed)
    header = ["SSID", "Local ID", "First Name", "Last Name", "Birth Date", "Gender", "Race", "Zip", "Grade",
              "GPA", "Counselor Notes"]
    firsts = ["Maria", "James", "Ana", "Luis", "Emily", "Kevin", "Sofia", "Daniel"]
    lasts = ["Garcia", "Smith", "Nguyen", "Lopez", "Johnson", "Patel"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(rows):
            first, last = rng.choice(firsts), rng.choice(lasts)
            note = rng.choice(["Met with counselor.", f"Call {first} at 555-201-{1000 + i}.", ""])
            w.writerow([
                f"{1000000000 + i * 7919}", f"L{i:05d}", first, last,
                f"{rng.choice([2007, 2008])}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                rng.choice(["Male", "Female"]), rng.choice(["700", "700", "600"]),
                rng.choice(["92501", "92503"]), rng.choice(["11", "12"]),
                f"{rng.uniform(1.5, 4.0):.2f}", note,
            ])
    return path


@pytest.fixture(scope="module")
def orgs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("orgs")
    district, college, agreement_id = make_orgs(tmp)
    return {"district": district, "college": college, "agreement": agreement_id, "dir": tmp}


def open_window(qtbot, tmp_path, vault_path, runner=None):
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = Session(vault_path=vault_path, settings=Settings(qs), runner=runner or SyncRunner(),
                      synchronous=True)
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2_000)  # shortcuts of the window need it active
    qtbot.keyClicks(window.unlock.passphrase, PASS)
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    assert window.workspace is not None
    return window


def drop_file(widget, path: Path) -> None:
    """Simulate dropping ``path`` from a file manager onto ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.rect().center())
    from PySide6.QtGui import QDragEnterEvent

    enter = QDragEnterEvent(QPoint(int(pos.x()), int(pos.y())), Qt.CopyAction, mime, Qt.LeftButton,
                            Qt.NoModifier)
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    widget.dropEvent(drop)


def test_prepare_agreement_drop_mapping_and_findings(qtbot, tmp_path, orgs):
    window = open_window(qtbot, tmp_path, orgs["district"])
    prep = window.workspace.prepare
    assert window.workspace.stack.currentWidget() is prep
    # Step 1: the executed agreement is listed with its purpose, recipients and expiry.
    assert prep.agreement_list.count() == 1
    details = prep.agreement_details.text()
    assert "Riverbend Community College" in details and "Purpose" in details and "until" in details
    qtbot.mouseClick(prep.next, Qt.LeftButton)
    assert prep.steps.currentIndex() == 1
    # Step 2: a dropped file of the wrong kind is refused; the extract is accepted.
    extract = make_extract(tmp_path / "export.csv")
    wrong = tmp_path / "notes.docx"
    wrong.write_text("x")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(wrong))])
    from PySide6.QtGui import QDragEnterEvent

    enter = QDragEnterEvent(QPoint(5, 5), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    prep.drop.dragEnterEvent(enter)
    assert not enter.isAccepted()
    drop_file(prep.drop, extract)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=10_000)
    # Step 3: suggestions from the library's mapping engine, shown in editable combo boxes.
    mapping = prep.current_mapping()
    assert mapping["SSID"] == "state_student_id" and mapping["Gender"] == "sex" and mapping["Zip"] == "zip"
    assert "60 rows" in prep.extract_label.text()
    # Value recodes: Gender's values are offered with the element's codes, suggested by the library.
    row = next(r for r in range(prep.mapping.rowCount()) if prep.mapping.item(r, 0).text() == "Gender")
    prep.mapping.setCurrentCell(row, 0)
    values = {prep.recodes.item(r, 0).text(): prep.recodes.cellWidget(r, 1).currentData()
              for r in range(prep.recodes.rowCount())}
    assert values == {"Female": "F", "Male": "M"}
    # The shared codes are offered with their labels, not as bare codes.
    assert prep.recodes.cellWidget(0, 1).currentText() in ("F — Female", "M — Male")
    # The clerk decides the notes column does not leave.
    prep.set_element("Counselor Notes", None)
    assert prep.current_mapping()["Counselor Notes"] is None
    assert prep.current_recodes()["Gender"] == {"Female": "F", "Male": "M"}
    assert prep.profile_name.text() == "export export"  # confirmed mappings are saved for reuse
    qtbot.keyClick(prep, Qt.Key_N, Qt.AltModifier)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 3, timeout=10_000)
    texts = [prep.findings.item(i).text() for i in range(prep.findings.count())]
    # the library's one count: names mapped onto elements the agreement drops are in it too
    (left,) = [t for t in texts if "columns are not shared" in t]
    assert "of the extract's 11 columns" in left
    assert all(h in left for h in ("Counselor Notes", "First Name", "Last Name")), left
    assert not any("outside" in t for t in texts), texts  # the recodes were applied before checking
    assert prep.back.isEnabled() and prep.back.isVisible()
    qtbot.keyClick(prep, Qt.Key_B, Qt.AltModifier)
    assert prep.steps.currentIndex() == 2
    qtbot.keyClick(prep, Qt.Key_N, Qt.AltModifier)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 3, timeout=10_000)
    # Step 4 -> 5: de-identify (the worker job) and preview before/after side by side.
    qtbot.mouseClick(prep.next, Qt.LeftButton)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 4 or prep.message.isVisible(), timeout=20_000)
    assert prep.steps.currentIndex() == 4, prep.message.label.text()
    before, after = prep.before_model, prep.after_model
    assert before.rowCount() == 60 and after.rowCount() == 60
    after_cols = after.table().column_names
    assert "student_code" in after_cols and "SSID" not in after_cols
    # Not shared: the element stays (files line up across partners) but holds nothing.
    assert all(after.cell(r, after_cols.index("notes")) in (None, "") for r in range(60))
    code_col, sex_col = after_cols.index("student_code"), after_cols.index("sex")
    assert after.data(after.index(0, code_col), Qt.BackgroundRole) is not None  # changed: highlighted
    assert after.cell(0, sex_col) in ("M", "F", "")  # recoded from Male/Female
    # Codes are shown with their labels ("700 — White"); the cell itself keeps the code.
    shown_sex = {after.data(after.index(r, sex_col)) for r in range(60)} - {""}
    assert shown_sex <= {"M — Male", "F — Female"} and shown_sex
    race_col = after_cols.index("race")
    assert any(" — " in (after.data(after.index(r, race_col)) or "") for r in range(60))
    assert before.data(before.index(0, 0)) == "1000000000"
    assert "60 rows" in prep.preview_note.text()
    # The worker's result is typed (desktop.ui.jobs.Preview), not a dict of twenty keys.
    from desktop.ui.jobs import ColumnGuess, Inspection, OutputColumn, Preview

    assert isinstance(prep.inspection, Inspection) and prep.inspection.rows == 60
    assert all(isinstance(s, ColumnGuess) for s in prep.inspection.suggestions.values())

    assert isinstance(prep.preview, Preview) and prep.preview.rows_in == 60 == prep.preview.rows_out
    assert all(isinstance(c, OutputColumn) for c in prep.preview.column_details)
    assert {"student_code", "sex"} <= {c.name for c in prep.preview.column_details}
    assert prep.preview.k_required >= 1 and prep.preview.problems == []
    # The tables crossed through shared memory, already unlinked: nothing is left behind by name.
    assert not list(Path("/dev/shm").glob("ps_*")) if Path("/dev/shm").is_dir() else True
    # Step 6: the risk panel.
    qtbot.mouseClick(prep.next, Qt.LeftButton)
    assert prep.steps.currentIndex() == 5
    assert "at least" in prep.risk_summary.text() and "none found" in prep.risk_summary.text()
    # The disclosure search in the clerk's words, its ways to share, and its charts.
    d = prep.preview.disclosure
    assert "How the details that could identify a student are shared" in prep.risk_summary.text()
    assert all(escape(sentence) in prep.risk_summary.text() for sentence in d["sentences"])
    # The ways to share side by side: a column each, a row per detail in the clerk's words.
    table = prep.choices
    assert table.columnCount() == len(d["candidates"]) >= 1
    assert table.horizontalHeaderItem(0).text() == "Chosen"
    assert table.horizontalHeaderItem(0).toolTip() == d["candidates"][0]["sentence"]
    rows = [table.verticalHeaderItem(i).text() for i in range(table.rowCount())]
    assert rows[: len(d["quasi_identifiers"])] == [d["names"][q] for q in d["quasi_identifiers"]]
    assert "Information lost" in rows and "Groups losing twice as often" in rows
    chosen = d["candidates"][0]
    for i, q in enumerate(d["quasi_identifiers"]):
        cell = table.item(i, 0).text()
        kept = f"{chosen['kept_share'][q]:.0%} keep it"
        assert cell == "left out" if q in chosen["removed"] else cell.endswith(kept)
    assert table.item(rows.index("Information lost"), 0).text() == f"{chosen['loss']:.0%}"
    assert not prep.charts.pixmap().isNull() and prep.charts.pixmap().width() > 400
    assert all("_" not in c["sentence"] for c in d["candidates"])  # no internal names ("2_years")
    cells = [table.item(i, j).text() for i in range(table.rowCount()) for j in range(table.columnCount())]
    assert all("_" not in text for text in cells)
    # A way the agreement does not allow (a group losing values twice as often, fairness required) is
    # shown to compare, never offered: its column says so and "Use this way" stays off.
    unfair = {**d["levels"], "birth_year": "removed"}
    d["candidates"].append({**chosen, "levels": unfair, "allowed": False, "groups_warned": 2})
    prep._fill_risk()
    table.selectColumn(table.columnCount() - 1)
    assert not prep.use_choice.isEnabled()
    last = table.columnCount() - 1
    assert table.item(rows.index("Allowed by agreement"), last).text().startswith("no")
    assert table.item(rows.index("Groups losing twice as often"), last).font().bold()
    d["candidates"].pop()
    # The clerk picks another way to share (here: one that also leaves out sex, which the agreement
    # allows): de-identified again with it, back on the Risk step, and that is what gets sealed.
    wanted = {**d["levels"], "sex": "removed"}
    d["candidates"].append({**d["candidates"][0], "levels": wanted, "sentence": "Leaves out Sex / gender."})
    prep._fill_risk()
    table.selectColumn(table.columnCount() - 1)
    assert prep.use_choice.isEnabled()
    qtbot.mouseClick(prep.use_choice, Qt.LeftButton)
    qtbot.waitUntil(lambda: prep.preview is not None and prep.preview.choice == wanted, timeout=20_000)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 5, timeout=5_000)
    assert prep.preview.disclosure["levels"] == wanted and prep.choice == wanted
    assert "sex" not in prep.after_model.table().column_names
    # Step 7: what leaves, to whom; then seal to a file the clerk chose.
    qtbot.mouseClick(prep.next, Qt.LeftButton)
    assert prep.steps.currentIndex() == 6
    assert "Riverbend Community College" in prep.seal_summary.text()
    assert "student_code" in prep.seal_summary.text() and "SSID" in prep.seal_summary.text()
    # what is done to each column, in words: never a treatment's internal name
    from agreements._agreement import TREATMENT_TYPES

    seal_text = prep.seal_summary.text()
    assert not [t for t in (*TREATMENT_TYPES, "suppression marker", "recode rare", "redact text")
                if f"— {t.replace('_', ' ')}," in seal_text or f"— {t}," in seal_text]  # fmt: skip
    assert "grouped into ranges" in seal_text or "released as is" in seal_text
    out = tmp_path / "outbox" / "lakeview.age"
    out.parent.mkdir()
    prep.seal(str(out))
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 7 or prep.message.isVisible(), timeout=20_000)
    assert prep.steps.currentIndex() == 7, prep.message.label.text()
    assert out.is_file() and out.read_bytes().startswith(b"age-encryption.org/v1")
    assert list(out.parent.iterdir()) == [out]  # no staging or partial file left
    done = prep.done_summary.text()
    assert "Riverbend Community College" in done and "60 rows" in done.replace(",", "")
    actions = [e.action for e in window.session.vault.audit.entries()]
    assert "package.prepared" in actions and "package.sealed" in actions and "profile.save" in actions
    (prepared,) = window.session.vault.audit.entries(action="package.prepared")
    assert prepared.details["levels"] == prep.preview.disclosure["levels"]  # what the clerk saw is sealed
    assert prepared.details["chosen_by_clerk"] and "sex" not in prepared.details["columns"]
    assert window.session.vault.audit.verify()


def test_bad_extract_is_one_sentence_in_the_window(qtbot, tmp_path, orgs):
    window = open_window(qtbot, tmp_path, orgs["district"])
    prep = window.workspace.prepare
    prep.go_next()
    bad = tmp_path / "broken.xlsx"
    bad.write_bytes(b"this is not a spreadsheet")
    prep.choose_extract(str(bad))
    qtbot.waitUntil(lambda: prep.message.isVisible(), timeout=10_000)
    text = prep.message.label.text()
    assert "broken.xlsx" in text and "Traceback" not in text and "\n" not in text
    assert prep.steps.currentIndex() == 1 and not prep.next.isEnabled()


def test_lazy_model_reads_only_what_is_painted(qtbot):
    import pyarrow as pa
    from PySide6.QtWidgets import QTableView

    from desktop.ui.table_model import ArrowTableModel, changed_predicate

    n = 200_000
    before = pa.table({"Name": [f"n{i}" for i in range(n)], "ZIP": ["92501"] * n})
    after = pa.table({"zip3": ["925"] * (n - 1) + [None], "code": ["x"] * n})
    bm, am = ArrowTableModel(), ArrowTableModel()
    bm.set_table(before)
    am.set_table(after)
    am.set_changed(changed_predicate(bm, am, {"zip3": "ZIP", "code": None}))
    view = QTableView()
    qtbot.addWidget(view)
    view.setModel(am)
    view.resize(600, 400)
    view.show()
    qtbot.waitExposed(view)
    assert am.rowCount() == n and am.headerData(0, Qt.Horizontal) == "zip3"
    assert am.headerData(0, Qt.Vertical) == "1"  # rows counted from 1, as in Excel
    assert am.block_reads <= 4  # a screenful, not 200,000 rows
    view.scrollToBottom()
    qtbot.wait(10)
    assert am.block_reads <= 8
    last = am.index(n - 1, 0)
    assert am.data(last) == "" and am.data(am.index(0, 0)) == "925"
    assert am.data(am.index(0, 0), Qt.BackgroundRole) is not None  # 92501 -> 925 changed
    assert am.data(am.index(0, 1), Qt.BackgroundRole) is not None  # a new column: all new
    am.mark({(5, 0)})
    assert "blocks sealing" in am.data(am.index(5, 0), Qt.ToolTipRole)


def test_saved_profile_is_reused_for_the_same_export(qtbot, tmp_path, orgs):
    from agreements import delete_profile, list_profiles

    window = open_window(qtbot, tmp_path, orgs["district"])
    prep = window.workspace.prepare
    prep.go_next()
    extract = make_extract(tmp_path / "export.csv")
    prep.choose_extract(str(extract))
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=10_000)
    prep.set_element("Counselor Notes", None)
    prep.profile_name.clear()
    assert not prep.next.isEnabled()  # a confirmed mapping needs a name to be saved under
    qtbot.keyClicks(prep.profile_name, "Aeries export")
    qtbot.mouseClick(prep.next, Qt.LeftButton)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 3, timeout=10_000)
    vault = window.session.vault
    try:
        saved = {p.name: p for p in list_profiles(vault)}
        assert saved["Aeries export"].columns["Counselor Notes"] is None
        assert saved["Aeries export"].recodes["Gender"] == {"Female": "F", "Male": "M"}
        # The same export again: the profile's choices come back, and say where they came from.
        prep.restart()
        prep.go_next()
        prep.choose_extract(str(extract))
        qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=10_000)
        assert prep.current_mapping()["Counselor Notes"] is None
        assert "Aeries export" in prep.profile_note.text() and prep.profile_name.text() == "Aeries export"
    finally:
        delete_profile(vault, "Aeries export")


def test_risk_panel_finding_selects_its_cell_and_blocks_sealing(qtbot, tmp_path, orgs):
    """A residual-PII finding (column + row from the report) selects that cell of the output."""
    from dataclasses import replace

    import pyarrow as pa

    from agreements import SealingProblem
    from desktop.ui.jobs import FlaggedCell, Preview

    window = open_window(qtbot, tmp_path, orgs["district"])
    prep = window.workspace.prepare
    after = pa.table({"student_code": [f"C{i}" for i in range(500)], "notes": ["ok"] * 500})
    prep.after_model.set_table(after)
    flagged = [FlaggedCell("notes", 411, "phone number")]
    prep.preview = Preview(
        before=None, after=None, sources={}, code_labels={}, rows_in=500, rows_out=500,
        columns_out=after.column_names, column_details=[], k_required=3, k_achieved=5,
        quasi_identifiers=["sex"], suppressed_cells=0, residual=flagged, residual_total=1,
        redacted_kinds="", residual_kinds="", text_unchecked=[],
        problems=[SealingProblem("residual", "The residual scan found 1 piece")], summary="",
        disclosure=None, choice=None,
    )  # fmt: skip
    prep.after_model.mark({(411, 1)})
    prep._fill_risk()
    prep._show_step(5)
    assert "blocked" in prep.risk_summary.text() and not prep.next.isEnabled()
    assert prep.residual.item(0).text() == "Row 412, column notes: phone number"
    prep.residual.setCurrentRow(0)
    current = prep.risk_view.currentIndex()
    assert (current.row(), current.column()) == (411, 1)
    assert "blocks sealing" in prep.after_model.data(current, Qt.ToolTipRole)
    # k not reached also keeps Next (to sealing) disabled.
    k_short = SealingProblem("k", "k-anonymity is 2 but agreement a requires 3")
    prep.preview = replace(prep.preview, residual=[], residual_total=0, k_achieved=2, problems=[k_short])
    prep._fill_risk()
    prep._show_step(5)
    assert "NOT reached" in prep.risk_summary.text() and not prep.next.isEnabled()
    # Per-kind counts in the clerk's words: what redaction took out, what is still there.
    prep.preview = replace(prep.preview, k_achieved=5, residual_total=1, redacted_kinds="3 names",
                           residual_kinds="1 phone number", residual=flagged)  # fmt: skip
    prep._fill_risk()
    text = prep.risk_summary.text()
    assert "Taken out of the notes:</b> 3 names" in text and "left: 1 (1 phone number)" in text
    # Notes the scan cannot check for the students' own names (no name column) block sealing too.
    unchecked = SealingProblem("unchecked_text", "The notes in notes cannot be checked")
    prep.preview = replace(prep.preview, residual=[], residual_total=0, text_unchecked=["notes"],
                           problems=[unchecked])  # fmt: skip
    prep._fill_risk()
    prep._show_step(5)
    assert "cannot be checked" in prep.risk_summary.text() and not prep.next.isEnabled()
    # A reason the gate gives that has no line of its own is shown in its words, and blocks too.
    extra = "The output holds columns agreement a does not list (ssn)"
    prep.preview = replace(prep.preview, text_unchecked=[], problems=[SealingProblem("columns", extra)])
    prep._fill_risk()
    prep._show_step(5)
    assert "does not list (ssn)" in prep.risk_summary.text() and not prep.next.isEnabled()
    # Next follows the gate's list alone: k_achieved None (every row had a quasi-identifier blanked) is
    # no problem for the gate, and so none here (the page once kept Next disabled then; prepare sealed).
    prep.preview = replace(prep.preview, k_achieved=None, problems=[])
    prep._fill_risk()
    prep._show_step(5)
    assert prep.next.isEnabled() and "NOT reached" not in prep.risk_summary.text()
    prep.release()


def test_cancelling_the_seal_in_the_worker_leaves_nothing(qtbot, tmp_path, orgs):
    """Cancel during sealing (real worker process): no package, no partial file, no staging folder."""
    from desktop.tasks import ProcessRunner

    window = open_window(qtbot, tmp_path, orgs["district"])  # the steps before sealing run in-process
    prep = window.workspace.prepare
    prep.go_next()
    extract = make_extract(tmp_path / "export.csv", rows=3000)
    prep.choose_extract(str(extract))
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=30_000)
    prep.set_element("Counselor Notes", None)
    prep.go_next()
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 3, timeout=30_000)
    prep.go_next()
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 4 or prep.message.isVisible(), timeout=30_000)
    assert prep.steps.currentIndex() == 4, prep.message.label.text()
    assert window.session.settings.folder("extract") == str(tmp_path)  # last folder remembered
    prep.go_next()
    prep.go_next()
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    window.session.runner = ProcessRunner()  # sealing in the real worker process, which Cancel kills
    prep.seal(str(outbox / "package.age"))
    handle = window.workspace.handle
    assert str(outbox / ".pathshare-staging-*") in handle.job.scratch
    qtbot.waitUntil(lambda: window.workspace.progress.bar.value() > 0, timeout=30_000)
    qtbot.mouseClick(window.workspace.progress.cancel, Qt.LeftButton)
    qtbot.waitUntil(lambda: handle.finished, timeout=10_000)
    assert list(outbox.iterdir()) == []
    assert "Cancelled" in prep.message.label.text() and prep.steps.currentIndex() == 6


def test_validation_errors_block_deidentifying_until_fixed(qtbot, tmp_path, orgs):
    window = open_window(qtbot, tmp_path, orgs["district"])
    prep = window.workspace.prepare
    prep.go_next()
    prep.choose_extract(str(make_extract(tmp_path / "export.csv")))
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=10_000)
    # The clerk undoes the Gender recodes: Male/Female are not codes of the sex element.
    row = next(r for r in range(prep.mapping.rowCount()) if prep.mapping.item(r, 0).text() == "Gender")
    prep.mapping.setCurrentCell(row, 0)
    for r in range(prep.recodes.rowCount()):
        prep.recodes.cellWidget(r, 1).setCurrentIndex(0)  # "(keep as is)"
    assert "Gender" not in prep.current_recodes()
    prep.go_next()
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 3, timeout=10_000)
    texts = [prep.findings.item(i).text() for i in range(prep.findings.count())]
    assert texts[0].startswith("Fix the problems") and any("Gender" in t and "outside" in t for t in texts)
    assert not prep.next.isEnabled()


def test_tab_order_goes_through_the_step_before_its_buttons(qtbot, tmp_path, orgs):
    from PySide6.QtWidgets import QWidget

    window = open_window(qtbot, tmp_path, orgs["district"])
    ws = window.workspace

    def focusable_after(w: QWidget) -> QWidget:
        w = w.nextInFocusChain()
        while not (w.focusPolicy() & Qt.TabFocus) or not w.isVisible() or not w.isEnabled():
            w = w.nextInFocusChain()
        return w

    first = focusable_after(ws.sidebar)
    second = focusable_after(first)
    assert (first.accessibleName(), second.accessibleName()) == ("Agreements in force", "Next")
