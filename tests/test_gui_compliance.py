"""The compliance officer's screens (pytest-qt, offscreen): partners, agreements and the form, dashboard,
audit (verify, tamper, CSV, bundle, PDF report checked with pdftotext).

The officer works in the GUI alone; the partner (a college) answers through the library in its own vault.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import unicodedata
from datetime import date, timedelta
from pathlib import Path
from typing import get_args

import pytest
import sqlcipher3
from PySide6.QtCore import QDate, QMimeData, QPoint, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from agreements import story

PASS = "correct horse battery staple"
TODAY = date.today()
LAKEVIEW = "Lakeview Unified School District"
RIVERBEND = "Riverbend Community College"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """Fewer SQLCipher KDF iterations (in the window's unlock too): nothing here is about the KDF."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


# ------------------------------------------------------------------------------------------ helpers


def make_orgs(tmp: Path):
    """A district (the officer's vault, closed) and a college (open, trusting the district's card).
    Returns (district vault path, college vault, college card file, district card)."""
    from agreements import Vault, create_identity, import_card

    d = Vault.create(tmp / "district.vault", PASS)
    dcard = create_identity(d, LAKEVIEW, "district", "privacy@lakeview.example")
    d.close()
    c = Vault.create(tmp / "college.vault", PASS)
    ccard = create_identity(c, RIVERBEND, "college", "ir@riverbend.example")
    import_card(c, dcard, verified=True)
    card_file = tmp / "riverbend-card.json"
    card_file.write_text(ccard.to_json(), encoding="utf-8")
    return tmp / "district.vault", c, card_file, dcard


def open_window(qtbot, tmp_path, vault_path):
    from desktop.tasks import SyncRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    session = Session(vault_path=vault_path, settings=Settings(qs), runner=SyncRunner(), synchronous=True)
    window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    window.unlock.passphrase.setText(PASS)
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=5_000)
    return window


def show(window, title: str):
    """Switch the sidebar to the section ``title``; return its page."""
    ws = window.workspace
    row = next(i for i in range(ws.sidebar.count()) if ws.sidebar.item(i).text() == title)
    ws.sidebar.setCurrentRow(row)
    return ws.stack.currentWidget()


def drop_file(widget, path: Path) -> None:
    """Drop ``path`` from a file manager onto ``widget``."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    pos = QPointF(widget.rect().center())
    enter = QDragEnterEvent(QPoint(int(pos.x()), int(pos.y())), Qt.CopyAction, mime, Qt.LeftButton,
                            Qt.NoModifier)
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    widget.dropEvent(QDropEvent(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier))


def import_and_verify_partner(qtbot, window, card_file: Path) -> list[str]:
    """Partners: drop the card, then Mark verified (the confirmation is answered Yes). Returns the
    confirmation texts shown."""
    page = show(window, "Partners")
    asked: list[str] = []
    page.confirm = lambda title, text: asked.append(text) or True
    drop_file(page.drop, card_file)
    assert page.table.rowCount() == 1 and page.table.item(0, 2).text() == "unverified"
    assert "Imported Riverbend" in page.message.text()
    qtbot.mouseClick(page.verify, Qt.LeftButton)
    assert page.table.item(0, 2).text() == "verified"
    return asked


def fill_form(qtbot, form, college_fp: str, expires_in: int = 30) -> None:
    """Everything a person types into a new agreement."""
    qtbot.keyClicks(form.title, "Dual enrollment outcomes study")
    form.parties.item(0, 3).setText("Maria Delgado")
    form.parties.item(0, 4).setText("Assistant Superintendent")
    form.parties.item(0, 5).setText("mdelgado@lakeview.example")
    qtbot.mouseClick(form.add_party_button, Qt.LeftButton)
    form.set_party(1, college_fp, ["recipient"], "James Okafor", "Dean of IR", "jokafor@riverbend.example")
    qtbot.keyClicks(form.purpose, "Evaluate whether dual enrollment improves college-going.")
    qtbot.keyClicks(form.activity, "Link records by record code and report aggregates.")
    qtbot.keyClicks(form.cohorts, "Grade 9 entry cohort of fall 2024")
    qtbot.keyClicks(form.school_years, "2024-25, 2025-26")
    form.effective.setDate(QDate(TODAY - timedelta(days=1)))
    form.expires.setDate(QDate(TODAY + timedelta(days=expires_in)))
    form.deadline.setDate(QDate(TODAY + timedelta(days=expires_in + 90)))
    qtbot.keyClicks(form.method, "Delete every copy (NIST SP 800-88 Clear).")
    form.add_library_elements(["state_student_id", "birth_date", "sex"])
    qtbot.keyClicks(form.redisclosure, "No re-disclosure; only aggregates of 11 or more may be published.")
    qtbot.keyClicks(form.security, "Encrypted storage")
    qtbot.keyClick(form.security, Qt.Key_Return)
    qtbot.keyClicks(form.security, "Access limited to named staff")
    qtbot.keyClicks(form.breach_name, "Lakeview Privacy Officer")
    qtbot.keyClicks(form.breach_email, "privacy@lakeview.example")


def countersign(college, proposal: Path, out: Path) -> None:
    """The college (library only): import the proposal, sign, export the executed copy."""
    from agreements import export_agreement, import_agreement, sign_agreement

    a = import_agreement(college, proposal)
    sign_agreement(college, a.id)
    export_agreement(college, a.id, out)


def draft_sign_export(qtbot, window, college_fp: str, tmp: Path, expires_in: int = 30):
    """Agreements: New → form → Save → Sign → Export. Returns (page, agreement id, proposal file)."""
    page = show(window, "Agreements")
    page.confirm = lambda title, text: True
    qtbot.mouseClick(page.new_button, Qt.LeftButton)
    form = page.form
    assert page.stack.currentWidget() is form
    fill_form(qtbot, form, college_fp, expires_in)
    assert form.validate() is None
    qtbot.mouseClick(form.save_button, Qt.LeftButton)
    assert page.stack.currentWidget() is page.list_page
    summary, a = page.selected()
    assert a.title == "Dual enrollment outcomes study" and summary.status == "draft"
    qtbot.mouseClick(page.sign_button, Qt.LeftButton)
    assert page.status_of(a.id) == f"awaiting signatures — {RIVERBEND}"
    proposal = tmp / "proposal.json"
    page.export_selected(str(proposal))
    assert proposal.is_file() and f"Send it to {RIVERBEND}" in page.message.text()
    return page, a.id, proposal


def seal_package(vault, agreement_id: str, tmp: Path, name: str = "pkg"):
    from agreements import seal_for_agreement

    src = tmp / f"{name}.csv"
    src.write_text("student_code,sex\nC1,F\nC2,M\n", encoding="utf-8")
    files = [("extract.csv", src, 2)]
    return seal_for_agreement(vault, agreement_id, files, {"rows_out": 2}, tmp / f"{name}.age")


def tamper(vault_path: Path, seq: int) -> None:
    """Edit one audit entry in place with sqlcipher3, as an insider with the passphrase could."""
    import agreements._vault as vault_module

    conn = sqlcipher3.connect(str(vault_path), isolation_level=None)
    conn.execute(f"PRAGMA key = '{PASS}'")
    conn.execute(f"PRAGMA kdf_iter = {vault_module._TEST_KDF_ITER}")
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    conn.execute("UPDATE audit_log SET details = '{\"edited\":true}' WHERE seq = ?", (seq,))
    conn.close()


# -------------------------------------------------------------------------------------------- tests


def test_officer_drafts_countersigns_watches_and_audits_in_the_gui(qtbot, tmp_path):
    district_path, college, card_file, _dcard = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    asked = import_and_verify_partner(qtbot, window, card_file)
    from agreements import our_card

    college_fp = our_card(college).fingerprint()
    assert "phone" in asked[0] and college_fp in asked[0]
    page, aid, proposal = draft_sign_export(qtbot, window, college_fp, tmp_path)

    # The partner countersigns; the officer drops the executed copy on the Agreements screen.
    countersign(college, proposal, tmp_path / "executed.json")
    drop_file(page.drop, tmp_path / "executed.json")
    assert page.status_of(aid) == "expiring soon — in 30 days"
    assert "is now expiring soon" in page.message.text()
    page.filter.setCurrentIndex(page.filter.findData("expiring"))
    assert page.table.rowCount() == 1
    page.filter.setCurrentIndex(page.filter.findData("draft"))
    assert page.table.rowCount() == 0
    page.filter.setCurrentIndex(0)
    with_vault = window.session.vault
    assert "agreement.executed" in [e.action for e in with_vault.audit.entries(agreement=aid)]

    # A package goes out; no receipt comes back. The dashboard shows both things to watch.
    seal_package(with_vault, aid, tmp_path)
    board = show(window, "Dashboard")
    assert board.expiring.rowCount() == 1
    assert board.expiring.item(0, 0).text() == "Dual enrollment outcomes study"
    assert board.expiring.item(0, 2).data(Qt.DisplayRole) == 30
    assert board.unreceipted.rowCount() == 1 and board.unreceipted.item(0, 0).text() == "pkg.age"
    assert board.unreceipted.item(0, 3).text() == RIVERBEND
    assert board.unreceipted.item(0, 4).text() == "no receipt yet"  # not refused: no receipt at all
    assert board.past.rowCount() == 0 and "2 items need attention" in board.summary.text()

    # Audit: verify, then the PDF report with the Ed Code 49064 record of disclosures.
    audit = show(window, "Audit log")
    qtbot.mouseClick(audit.verify_button, Qt.LeftButton)
    assert "The audit log verifies" in audit.verdict.text()
    pdf = tmp_path / "report.pdf"
    audit.export_pdf(str(pdf))
    assert pdf.is_file() and pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    text = unicodedata.normalize("NFKC", text)  # the PDF's fonts use ligatures (fi -> U+FB01)
    assert f"Audit report — {LAKEVIEW}" in text
    assert "The audit log verifies" in text
    assert "Education Code 49064" in text
    # The disclosure row: recipient, agreement, package file, rows, no receipt yet.
    row = next(line for line in text.splitlines() if "pkg.age" in line)
    assert "Riverbend" in row and " 2 " in row and "none" in row
    flowing = unicodedata.normalize("NFKC", subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout)
    assert "Dual enrollment outcomes study" in " ".join(flowing.split())
    assert "package.sealed" in text
    assert with_vault.audit.entries(action="audit.report")[-1].details["file"] == "report.pdf"
    audit.export_disclosures(str(tmp_path / "disclosures.csv"))
    with open(tmp_path / "disclosures.csv", encoding="utf-8-sig", newline="") as fh:
        [disclosed] = list(csv.DictReader(fh))
    assert (disclosed["recipient"], disclosed["file"], disclosed["rows"]) == (RIVERBEND, "pkg.age", "2")
    assert disclosed["agreement_id"] == aid and "1 disclosure record" in audit.message.text()
    # The PDF renders to an image (poppler), i.e. it is a real, drawable document.
    subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    assert any(tmp_path.glob("page*.png"))

    # An insider edits entry 5 in the database: Verify names it, and the table selects it.
    tamper(district_path, 5)
    qtbot.mouseClick(audit.verify_button, Qt.LeftButton)
    verdict = audit.verdict.text()
    assert "does NOT verify" in verdict and "entry 5 was altered" in verdict
    assert "first bad entry is #5" in verdict
    selected = audit.table.selectionModel().selectedRows()
    assert selected and audit.proxy.index(selected[0].row(), 0).data(Qt.UserRole) == 5
    assert 5 in audit.selected_line().seqs and "✗" in audit.proxy.index(selected[0].row(), 0).data()
    college.close()


def test_form_validates_as_you_type_and_marks_the_field(qtbot, tmp_path):
    district_path, college, card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    page = show(window, "Agreements")
    qtbot.mouseClick(page.new_button, Qt.LeftButton)
    form = page.form
    # Blank: the title is the first thing missing, and the title field is marked.
    assert "the title must be filled in" in form.message.text()
    assert form.marked_widgets() == [form.title]
    qtbot.mouseClick(form.save_button, Qt.LeftButton)  # refused: the form stays, nothing is stored
    assert page.stack.currentWidget() is form and not page.summaries
    from agreements import our_card

    fill_form(qtbot, form, our_card(college).fingerprint())
    # Typing schedules validation (debounced); it runs by itself.
    qtbot.waitUntil(lambda: "complete and consistent" in form.message.text(), timeout=2_000)
    form.breach_email.setText("privacy-at-lakeview")
    qtbot.waitUntil(lambda: form.problem is not None, timeout=2_000)
    assert "the breach-notice contact's e-mail is not an e-mail address" in form.message.text()
    assert form.marked_widgets() == [form.breach_email]
    form.breach_email.setText("privacy@lakeview.example")
    form.expires.setDate(QDate(TODAY - timedelta(days=10)))
    assert form.validate().field == "expires" and form.marked_widgets() == [form.expires]
    form.expires.setDate(QDate(TODAY + timedelta(days=30)))
    # A treatment that cannot apply to the element's type is named (bucket on a date).
    row = form.element_names().index("birth_date")
    treatment = form.elements.cellWidget(row, 2)
    assert treatment.currentText() == "Keep part of the date (year, month or age)"  # words, not names
    treatment.setCurrentIndex(treatment.findData("bucket"))
    problem = form.validate()
    assert problem.field == f"elements[{row}].type" and "birth_date" in problem.message
    assert form.marked_widgets() == [form.elements]
    treatment.setCurrentIndex(treatment.findData("generalize_date"))
    # Settings are widgets, never name=value text: the date's precision from a list, ranges in a table.
    form.set_params(row, {})
    dialog = form.settings_dialog(row)
    precision = dialog.widgets["to"]
    assert [precision.itemText(i) for i in range(precision.count())] == [
        "The year", "The year and month", "The age in whole years", "An age band"]
    precision.setCurrentIndex(precision.findData("age_band"))
    bands = dialog.widgets["edges"]
    for value in ("0", "5", "14"):
        bands.add(value)
    dialog.widgets["as"].setText("age_band")
    assert dialog.params() == {"to": "age_band", "edges": [0, 5, 14], "as": "age_band"}
    bands.add("3")  # out of order: one sentence in the dialog, nothing taken
    dialog._accept()
    assert "Row 4 (3) must be larger" in dialog.message.text() and dialog.result() == 0
    form.set_params(row, {"to": "year", "as": "birth_year"})
    assert form.elements.cellWidget(row, 3).text() == "Year → birth_year"
    tip = form.elements.cellWidget(row, 3).toolTip()
    assert tip.startswith("Generalized to the year; the column is called")
    assert form.validate() is None
    # Another treatment keeps the column name and drops what no longer applies.
    treatment.setCurrentIndex(treatment.findData("date_shift"))
    assert form.params_of(row) == {"as": "birth_year"}
    treatment.setCurrentIndex(treatment.findData("generalize_date"))
    form.set_params(row, {"to": "year", "as": "birth_year"})
    assert form.validate() is None
    # FERPA's words explained where they are used (the glossary is the library's).
    from agreements import GLOSSARY

    assert form.basis.toolTip() == GLOSSARY["legal basis"] and "34 CFR 99.31(a)(6)" in form.basis.toolTip()
    assert form.redisclosure.toolTip() == GLOSSARY["re-disclosure"]
    assert form.k.toolTip() == GLOSSARY["k-anonymity"]
    assert form.elements.horizontalHeaderItem(4).toolTip() == GLOSSARY["could identify"]
    # Disclosure control (schema version 2): the withheld share and l-diversity as widgets; l needs
    # sensitive elements, which the library says in one sentence.
    form.suppression.setValue(2.5)
    assert form.terms()["policy"]["suppression_limit"] == 0.025 and form.terms()["pathshare_agreement"] == 2
    form.fairness.setChecked(True)  # fairness required: no group loses values twice as often as its column
    assert form.terms()["policy"]["fairness"] == "require" and form.validate() is None
    form.fairness.setChecked(False)
    assert form.terms()["policy"]["fairness"] == "prefer"
    form.l_div.setValue(3)
    problem = form.validate()
    assert problem is not None and "sensitive" in problem.message
    form.l_div.setValue(0)
    assert form.validate() is None
    # Nothing in the form is wider than the window at 800×600 (it scrolls down, never sideways).
    assert form.scroll.widget().minimumSizeHint().width() <= 520
    # The form covers every field of the schema (a field added to the model must appear here too).
    from agreements._agreement import CodeSet, Contact, Destruction, Element, Policy, Scope, Terms
    from desktop.ui.agreement_form import TREATMENTS

    form.general_offer.setChecked(True)
    form.join_recipient.setChecked(True)
    terms = form.terms()
    assert set(Terms.model_fields) - {"id", "version", "previous"} <= set(terms)
    nested = (
        (Policy, terms["policy"]),
        (Scope, terms["scope"]),
        (Destruction, terms["destruction"]),
        (Contact, terms["breach_notice_contact"]),
        (Element, terms["elements"][0]),
    )
    for model, value in nested:
        assert set(model.model_fields) <= set(value), model.__name__
    assert set(CodeSet.model_fields) <= set(terms["elements"][form.element_names().index("sex")]["code_set"])
    assert terms["join_as"] == ["recipient"] and form.validate() is None
    assert set(TREATMENTS) == set(get_args(Element.model_fields["treatment"].annotation))
    form.general_offer.setChecked(False)
    # The library picker offers every library element with its default treatment; ticking adds it.
    from desktop.ui.agreement_form import ElementPicker

    picker = ElementPicker(set(form.element_names()), form)
    assert picker.table.rowCount() >= 40
    picker.search.setText("gpa")
    visible = [picker.table.item(r, 0).text() for r in range(picker.table.rowCount())
               if not picker.table.isRowHidden(r)]
    assert visible == ["gpa"]
    picker.check(["gpa", "sex"])  # sex is already in the agreement: not ticked twice
    assert picker.chosen() == ["gpa"]
    form.add_library_elements(picker.chosen())
    assert form.element_names()[-1] == "gpa"
    # Cancel (the discard question answered Yes) goes back to the list and stores nothing.
    form.confirm = lambda title, text: True
    qtbot.mouseClick(form.cancel_button, Qt.LeftButton)
    assert page.stack.currentWidget() is page.list_page and page.table.rowCount() == 0
    college.close()


def test_amend_terminate_and_join_a_general_offer(qtbot, tmp_path):
    from agreements import (
        Vault,
        create_agreement,
        create_identity,
        export_agreement,
        import_agreement,
        import_card,
        our_card,
        sign_agreement,
    )

    district_path, college, card_file, _dcard = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    cfp = our_card(college).fingerprint()
    page, aid, proposal = draft_sign_export(qtbot, window, cfp, tmp_path, expires_in=200)
    countersign(college, proposal, tmp_path / "executed.json")
    page.import_file(str(tmp_path / "executed.json"))
    assert page.status_of(aid) == "executed"

    # Amend: the form opens on the executed terms; saving stores version 2 as a draft.
    assert page.edit_button.text() == "&Amend…"
    qtbot.mouseClick(page.edit_button, Qt.LeftButton)
    form = page.form
    assert form.mode == "amend" and form.title.text() == "Dual enrollment outcomes study"
    form.title.setText("Dual enrollment outcomes study (extended)")
    qtbot.mouseClick(form.save_button, Qt.LeftButton)
    summary, a = page.selected()
    assert (a.version, summary.status, a.previous is not None) == (2, "draft", True)
    assert page.status_of(aid) == "draft (unsigned)"

    # Terminate the agreement (version 1 is the signed one).
    page.terminate_selected("The study ended early.")
    assert page.status_of(aid) == "terminated"
    assert "destroy the data by" in page.message.text()
    page.filter.setCurrentIndex(page.filter.findData("terminated"))
    assert page.table.rowCount() >= 1
    college.close()

    # A general offer between two other organizations; a third (the employer) joins it in the GUI.
    a_vault = Vault.create(tmp_path / "a.vault", PASS)
    acard = create_identity(a_vault, "Coastline Intermediary", "intermediary")
    b_vault = Vault.create(tmp_path / "b.vault", PASS)
    bcard = create_identity(b_vault, "Harbor College", "college")
    e_path = tmp_path / "employer.vault"
    e_vault = Vault.create(e_path, PASS)
    ecard = create_identity(e_vault, "Delta Employers Council", "employer")
    for v, cards in ((a_vault, (bcard, ecard)), (b_vault, (acard, ecard)), (e_vault, (acard, bcard))):
        for card in cards:
            import_card(v, card, verified=True)
    e_vault.close()
    body = json.loads((Path(__file__).resolve().parent.parent / "docs/examples/agreement.json").read_text())
    body.pop("id")
    reps = [p["authorized_representative"] for p in body["parties"]]
    body["parties"] = [
        {"fingerprint": acard.fingerprint(), "roles": ["provider"], "authorized_representative": reps[0]},
        {"fingerprint": bcard.fingerprint(), "roles": ["recipient"], "authorized_representative": reps[1]},
    ]
    body["effective"] = (TODAY - timedelta(days=1)).isoformat()
    body["expires"] = (TODAY + timedelta(days=300)).isoformat()
    body["destruction"]["deadline"] = (TODAY + timedelta(days=400)).isoformat()
    body["general_offer"], body["join_as"] = True, ["recipient"]
    offer = create_agreement(a_vault, body)
    sign_agreement(a_vault, offer.id)
    export_agreement(a_vault, offer.id, tmp_path / "offer-1.json")
    import_agreement(b_vault, tmp_path / "offer-1.json")
    sign_agreement(b_vault, offer.id)
    export_agreement(b_vault, offer.id, tmp_path / "offer.json")
    a_vault.close()
    b_vault.close()
    window.lock()
    window.close()
    employer = open_window(qtbot, tmp_path, e_path)
    epage = show(employer, "Agreements")
    epage.import_file(str(tmp_path / "offer.json"))
    summary, a = epage.selected()
    assert a.id == offer.id and epage.join_button.isEnabled() and not epage.sign_button.isEnabled()
    epage.join_selected({"name": "Pat Lee", "title": "Director", "email": "pat@delta.example"})
    summary, a = epage.selected()
    assert "Delta Employers Council" in summary.parties and "Joined" in epage.message.text()
    assert not epage.join_button.isEnabled()


def test_partner_key_change_is_a_red_banner_and_revoke(qtbot, tmp_path):
    from agreements import Vault, create_identity

    district_path, college, card_file, _ = make_orgs(tmp_path)
    college.close()
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    page = show(window, "Partners")
    assert page.banner.isHidden()
    impostor = Vault.create(tmp_path / "impostor.vault", PASS)
    fake = create_identity(impostor, RIVERBEND, "college")
    impostor.close()
    fake_file = tmp_path / "fake.json"
    fake_file.write_text(fake.to_json(), encoding="utf-8")
    page.import_card_file(str(fake_file))
    assert not page.banner.isHidden()
    assert "WARNING" in page.banner.text() and "impersonation" in page.banner.text()
    assert fake.fingerprint() in page.banner.text()
    assert "different key" in page.message.text()
    # The fingerprint is shown in readable groups.
    assert page.fingerprint.text() == "   ".join(fake.fingerprint().split("-"))
    # Refusing the confirmation changes nothing; confirming revokes, and the banner goes.
    page.confirm = lambda title, text: False
    qtbot.mouseClick(page.revoke, Qt.LeftButton)
    assert page.selected().status == "unverified"
    texts: list[str] = []
    page.confirm = lambda title, text: texts.append(text) or True
    qtbot.mouseClick(page.revoke, Qt.LeftButton)
    assert page.selected().status == "revoked" and "cannot be undone" in texts[0]
    assert page.banner.isHidden() and not page.revoke.isEnabled() and not page.verify.isEnabled()


def test_audit_filters_sort_csv_bundle_and_import(qtbot, tmp_path):
    district_path, college, card_file, _ = make_orgs(tmp_path)
    college_bundle = tmp_path / "college-bundle.json"
    college.audit.export_bundle(college_bundle)
    college.close()
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    audit = show(window, "Audit log")
    audit.load_choices()
    audit.refresh()
    entries = window.session.vault.audit.entries()
    total = len(entries)
    # One line per action of a person (the sentences come from agreements.story), newest first; sorting
    # by the # column ascending puts entry 1 first.
    lines = story(window.session.vault, entries)
    assert audit.proxy.rowCount() == len(lines) and sum(len(x.entries) for x in lines) == total
    assert audit.shown_seqs()[0] == lines[-1].first
    audit.table.sortByColumn(0, Qt.AscendingOrder)
    assert audit.shown_seqs()[:2] == [1, 2]
    assert audit.proxy.index(0, 3).data() == "Created this vault."
    # No internal action names, ids or raw JSON in the table.
    cells = [audit.proxy.index(r, c).data() for r in range(audit.proxy.rowCount()) for c in range(6)]
    assert not any("partner.import" in str(c) or "{" in str(c) for c in cells)
    # Filter by action (offered by what it means) and by partner.
    audit.action.setCurrentIndex(audit.action.findData("partner.verify"))
    assert audit.action.currentText() == "Marked a partner verified after comparing fingerprints"
    qtbot.mouseClick(audit.apply, Qt.LeftButton)
    assert [audit.proxy.index(r, 3).data() for r in range(audit.proxy.rowCount())] == [
        f"Marked {RIVERBEND} verified after comparing fingerprints."
    ]
    audit.action.setCurrentIndex(0)
    audit.partner.setCurrentIndex(1)
    audit.refresh()
    assert audit.proxy.rowCount() == 2 and audit.proxy.index(0, 5).data() == RIVERBEND
    # The selected action as a readable form; the JSON only behind "Show technical details".
    audit.table.selectRow(0)
    assert "Organization" in audit.entry_details.text() and RIVERBEND in audit.entry_details.text()
    assert "{" not in audit.entry_details.text() and audit.technical.isHidden()
    qtbot.mouseClick(audit.technical_button, Qt.LeftButton)
    assert audit.technical.isVisible() and '"action": "partner.import"' in audit.technical.toPlainText()
    audit.since.setText("not a date")
    audit.refresh()
    assert "not a date" in audit.message.text()
    qtbot.mouseClick(audit.clear_filters, Qt.LeftButton)
    assert audit.message.text() == "" and sum(
        len(audit.proxy.line(r).entries) for r in range(audit.proxy.rowCount())
    ) == len(window.session.vault.audit)
    # CSV of the filtered entries.
    out = tmp_path / "audit.csv"
    audit.export_csv(str(out))
    with open(out, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["action"] for r in rows[:2]] == ["vault.create", "identity.create"]
    assert "Wrote" in audit.message.text()
    # Our own signed bundle, then the college's bundle imported from another machine.
    audit.export_bundle(str(tmp_path / "ours.json"))
    assert (tmp_path / "ours.json").is_file()
    audit.import_bundle(str(college_bundle))
    assert f"The audit bundle college-bundle.json from {RIVERBEND} (verified partner) verifies" in \
        audit.verdict.text()
    assert "Showing the audit bundle" in audit.source.text() and not audit.pdf_button.isEnabled()
    # A tampered copy names its first bad entry.
    data = json.loads(college_bundle.read_text(encoding="utf-8"))
    data["entries"][1]["actor"] = "someone else"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    audit.import_bundle(str(bad))
    assert "does NOT verify" in audit.verdict.text() and "#2" in audit.verdict.text()
    qtbot.mouseClick(audit.own_button, Qt.LeftButton)
    assert "This vault's log" in audit.source.text() and audit.pdf_button.isEnabled()


def test_pdftotext_is_available():
    """CI installs poppler-utils; without it the report test above could not check the PDF."""
    assert shutil.which("pdftotext") and shutil.which("pdftoppm")


def test_draft_correction_refusals_and_overdue_destruction_in_the_window(qtbot, tmp_path):
    """An unsigned draft is corrected in place; bad files are one sentence in the window; a package past
    its destruction deadline without a certificate is on the dashboard."""
    district_path, college, card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    # A file that is not a card: a sentence in the Partners screen, nothing imported.
    page = show(window, "Partners")
    bad = tmp_path / "not-a-card.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    drop_file(page.drop, bad)
    assert "not a PathShare card" in page.message.text() and page.table.rowCount() == 0
    import_and_verify_partner(qtbot, window, card_file)
    from agreements import our_card

    agreements, aid, proposal = draft_sign_export(qtbot, window, our_card(college).fingerprint(), tmp_path)
    # An unsigned copy is refused with one sentence.
    unsigned = json.loads(proposal.read_text(encoding="utf-8"))
    unsigned["signatures"] = []
    (tmp_path / "unsigned.json").write_text(json.dumps(unsigned), encoding="utf-8")
    agreements.import_file(str(tmp_path / "unsigned.json"))
    assert "carries no signature" in agreements.message.text()
    # A second draft, corrected before anyone signs it: still version 1, new title.
    qtbot.mouseClick(agreements.new_button, Qt.LeftButton)
    fill_form(qtbot, agreements.form, our_card(college).fingerprint())
    agreements.form.title.setText("Second study")
    qtbot.mouseClick(agreements.form.save_button, Qt.LeftButton)
    assert agreements.stack.currentWidget() is agreements.list_page, agreements.form.message.text()
    summary, draft = agreements.selected()
    assert summary.status == "draft" and agreements.edit_button.text() == "&Edit draft…"
    qtbot.mouseClick(agreements.edit_button, Qt.LeftButton)
    assert agreements.form.mode == "edit" and agreements.form.title.text() == "Second study"
    agreements.form.title.setText("Second study, corrected")
    qtbot.mouseClick(agreements.form.save_button, Qt.LeftButton)
    summary, corrected = agreements.selected()
    assert (corrected.id, corrected.version, corrected.title) == (draft.id, 1, "Second study, corrected")
    # Executed, a package sent; long after the deadline no certificate has come back.
    countersign(college, proposal, tmp_path / "executed.json")
    agreements.import_file(str(tmp_path / "executed.json"))
    seal_package(window.session.vault, aid, tmp_path)
    board = show(window, "Dashboard")
    board.refresh(today=TODAY + timedelta(days=200))
    assert not board.past.isHidden() and board.past.rowCount() == 1
    assert board.past.item(0, 0).text() == "pkg.age" and board.past.item(0, 3).text() == RIVERBEND
    assert board.past.item(0, 2).text() == (TODAY + timedelta(days=120)).isoformat()
    assert board.expiring.isHidden() and "No agreement in force ends" in board.expiring_note.text()
    college.close()


def test_verify_runs_off_the_ui_thread_and_unknown_bundles_are_refused(qtbot, tmp_path):
    """As in the app (not the tests' synchronous mode): Verify runs on the vault's worker thread and the
    verdict arrives in the window; a bundle from an organization whose card we lack is one sentence."""
    from agreements import Vault, create_identity

    district_path, college, _card, _ = make_orgs(tmp_path)
    college.close()
    window = open_window(qtbot, tmp_path, district_path)
    window.session.synchronous = False
    audit = show(window, "Audit log")
    qtbot.mouseClick(audit.verify_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "The audit log verifies" in audit.verdict.text(), timeout=10_000)
    assert audit.verify_button.isEnabled()
    stranger = Vault.create(tmp_path / "stranger.vault", PASS)
    create_identity(stranger, "Unknown Academy", "college")
    stranger.audit.export_bundle(tmp_path / "stranger.json")
    stranger.close()
    audit.import_bundle(str(tmp_path / "stranger.json"))
    assert "Unknown Academy, whose card this vault does not hold" in audit.message.text()
    assert audit.bundle is None and "This vault's log" in audit.source.text()
    from desktop.tasks import wait_pools

    wait_pools()


def test_mouse_wheel_over_an_unfocused_choice_does_not_change_it(qtbot, tmp_path):
    """Scrolling down the agreement form switched the legal basis under the pointer (issue 17)."""
    from PySide6.QtCore import QPoint, QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    district_path, college, _card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    page = show(window, "Agreements")
    qtbot.mouseClick(page.new_button, Qt.LeftButton)
    form = page.form
    combo = form.basis
    assert combo.count() > 2

    def wheel(widget, steps: int) -> None:
        centre = QPointF(widget.rect().center())
        event = QWheelEvent(
            centre, QPointF(widget.mapToGlobal(QPoint(centre.toPoint()))), QPoint(0, 0),
            QPoint(0, -120 * steps), Qt.NoButton, Qt.NoModifier, Qt.NoScrollPhase, False,
        )
        QApplication.sendEvent(widget, event)

    form.title.setFocus()
    before = combo.currentIndex()
    wheel(combo, 1)
    assert combo.currentIndex() == before  # ignored: it has no focus
    combo.setFocus()
    qtbot.waitUntil(combo.hasFocus, timeout=2_000)
    wheel(combo, 1)
    assert combo.currentIndex() != before  # the guard must not break a deliberate, focused scroll
    college.close()


def test_officer_imports_a_receipt_and_a_certificate_in_the_window(qtbot, tmp_path):
    """The Dashboard's import button takes either document a recipient sends back (it was CLI-only), the
    lists follow, the sentence names the partner and the agreement, and both are in the audit log."""
    district_path, college, card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    from agreements import destroy, open_received, our_card

    agreements, aid, proposal = draft_sign_export(qtbot, window, our_card(college).fingerprint(), tmp_path)
    countersign(college, proposal, tmp_path / "executed.json")
    agreements.import_file(str(tmp_path / "executed.json"))
    sealed = seal_package(window.session.vault, aid, tmp_path)
    board = show(window, "Dashboard")
    assert board.unreceipted.rowCount() == 1 and not board.unreceipted.isHidden()
    # Something that is neither: one sentence, nothing recorded.
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}', encoding="utf-8")
    assert board.import_returned(str(other)) is False
    assert board.message.text() == "other.json is neither a PathShare receipt nor a destruction certificate."
    # The college opens the package and sends its receipt back.
    open_received(college, sealed.path, tmp_path / "inbox", receipt=tmp_path / "receipt.json")
    assert board.import_returned(str(tmp_path / "receipt.json")) is True
    assert board.message.text().startswith(f"{RIVERBEND} opened package {sealed.manifest.package_id[:8]}")
    assert "(Dual enrollment outcomes study)" in board.message.text()
    assert board.unreceipted.isHidden() and "Every package sent has come back opened" in (
        board.unreceipted_note.text()
    )
    # The college destroys what it opened and certifies it; the certificate closes the obligation.
    destroy(college, sealed.manifest.package_id, tmp_path / "certificate.json")
    assert board.import_returned(str(tmp_path / "certificate.json")) is True
    assert board.message.text().startswith(f"{RIVERBEND} certified that it destroyed the data of package")
    pid = sealed.manifest.package_id
    actions = [e.action for e in window.session.vault.audit.entries(package=pid)]
    assert "package.delivered" in actions and "package.destruction_certified" in actions
    # A file that fails verification (the certificate altered) is one sentence, and nothing changes.
    forged = json.loads((tmp_path / "certificate.json").read_text(encoding="utf-8"))
    forged["method"] = "kept a copy"
    (tmp_path / "forged.json").write_text(json.dumps(forged), encoding="utf-8")
    assert board.import_returned(str(tmp_path / "forged.json")) is False
    assert board.message.text() and "\n" not in board.message.text()
    college.close()


def test_codebook_is_saved_from_the_agreements_screen_and_audited(qtbot, tmp_path):
    """Exporting a codebook was CLI-only; the app and the CLI now call one audited library function."""
    district_path, college, card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    from agreements import our_card

    page, _aid, _proposal = draft_sign_export(qtbot, window, our_card(college).fingerprint(), tmp_path)
    assert page.codebook_button.isEnabled()
    page.codebook_selected(str(tmp_path / "book.csv"))
    assert "Wrote the codebook of “Dual enrollment outcomes study”" in page.message.text()
    rows = list(csv.DictReader((tmp_path / "book.csv").open(encoding="utf-8")))
    assert {"birth_date", "sex"} <= {r["element"] for r in rows}
    page.codebook_selected(str(tmp_path / "book.pdf"))
    assert (tmp_path / "book.pdf").read_bytes().startswith(b"%PDF")
    page.codebook_selected(str(tmp_path / "book.docx"))  # a type we do not write: one sentence
    assert page.message.text() == (
        "Cannot write the codebook as book.docx: use a .csv, .pdf, .html or .md file name."
    )
    assert not (tmp_path / "book.docx").exists()
    files = [e.details["file"] for e in window.session.vault.audit.entries(action="agreement.codebook")]
    assert files == ["book.csv", "book.pdf"]
    college.close()


def test_dashboard_names_a_rewritten_partner_log_and_tampering_with_this_vault(qtbot, tmp_path):
    """Issue 20 items 11-12: what the library detects (a partner's log rewritten, old pages spliced into
    this vault) is in front of the compliance officer, in words, on the Dashboard."""
    from agreements import Vault, import_card
    from agreements._audit import hold_partner_head
    from agreements._integrity import TAMPERING

    district_path, college, card_file, _ = make_orgs(tmp_path)
    from agreements import Card

    ccard = Card.from_json(card_file.read_bytes(), "card")
    size, root = college.audit.tree_head()
    college.close()
    d = Vault.open(district_path, PASS)
    import_card(d, ccard, verified=True)
    assert hold_partner_head(d, ccard, size, root).ok
    assert not hold_partner_head(d, ccard, size, "0" * 64).ok  # the same size, another history
    d.audit.append(TAMPERING, details={"findings": ["the log records that package P1 was opened here"]})
    d.close()

    window = open_window(qtbot, tmp_path, district_path)
    board = show(window, "Dashboard")
    assert board.partner_logs.isVisibleTo(board) and board.partner_logs.rowCount() == 1
    assert board.partner_logs.item(0, 0).text() == RIVERBEND
    assert "rewritten" in board.partner_logs.item(0, 2).text()
    assert board.tampering_title.isVisibleTo(board)
    assert "package P1 was opened here" in board.tampering_note.text()
    assert "2 items need attention" in board.summary.text()


def test_codes_are_a_table_and_a_label_with_a_semicolon_survives(qtbot, tmp_path):
    """The library's race element failed the form's code-set check: its label holds ';' and the codes
    were typed as 'Name: CODE=Label; CODE=Label' text. Codes now come from a table."""
    from desktop.ui.agreement_form import E_CODES, CodeSetDialog

    district_path, college, card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    import_and_verify_partner(qtbot, window, card_file)
    from agreements import our_card

    page = show(window, "Agreements")
    qtbot.mouseClick(page.new_button, Qt.LeftButton)
    form = page.form
    fill_form(qtbot, form, our_card(college).fingerprint())
    form.add_library_elements(["race"])
    row = form.element_names().index("race")
    assert form.validate() is None, form.validate()
    race = next(e for e in form.terms()["elements"] if e["name"] == "race")
    assert any(";" in label for label in race["code_set"]["codes"].values())
    button = form.elements.cellWidget(row, E_CODES)
    assert button.text() == f"{len(race['code_set']['codes'])} codes…"
    assert button.toolTip().startswith("CALPADS Race Code:")
    # The dialog edits the table; a repeated code is one sentence and the dialog stays open.
    dialog = CodeSetDialog("race", form.code_set_of(row), form)
    qtbot.addWidget(dialog)
    n = dialog.table.rowCount()
    dialog.add_row("999", "Declined; not reported")
    assert dialog.code_set()["codes"]["999"] == "Declined; not reported"
    dialog.add_row("999", "again")
    dialog._accept()
    assert dialog.result() == 0 and dialog.message.text() == "The code 999 is listed twice."
    dialog.table.removeRow(n + 1)
    dialog._accept()
    assert dialog.result() == 1
    form.set_code_set(row, dialog.code_set())
    race = next(e for e in form.terms()["elements"] if e["name"] == "race")
    assert race["code_set"]["codes"]["999"] == "Declined; not reported"
    assert form.validate() is None
    college.close()


def test_cancel_asks_before_discarding_changes(qtbot, tmp_path):
    """Cancel in the editor used to discard the changes without asking (issue 17)."""
    district_path, college, _card_file, _ = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district_path)
    page = show(window, "Agreements")
    qtbot.mouseClick(page.new_button, Qt.LeftButton)
    form = page.form
    asked: list[str] = []
    form.confirm = lambda title, text: asked.append(title) or False
    qtbot.mouseClick(form.cancel_button, Qt.LeftButton)  # untouched: no question
    assert asked == [] and page.stack.currentWidget() is page.list_page
    qtbot.mouseClick(page.new_button, Qt.LeftButton)
    qtbot.keyClicks(form.title, "Half-written")
    qtbot.mouseClick(form.cancel_button, Qt.LeftButton)  # answered No: the form stays
    assert asked == ["Discard your changes?"] and page.stack.currentWidget() is form
    assert form.title.text() == "Half-written"
    form.confirm = lambda title, text: asked.append(title) or True
    qtbot.mouseClick(form.cancel_button, Qt.LeftButton)  # answered Yes: back to the list
    assert len(asked) == 2 and page.stack.currentWidget() is page.list_page
    college.close()
