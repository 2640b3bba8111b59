"""Issue 17's "done when": each role does its whole job in the app alone, and the audit log shows it.

* the district clerk: the window opens on Prepare; map the extract, prepare, seal;
* the college analyst: the window opens on Receive; open the package (with the receipt for the sender),
  link the opened package's file with the college's own; nothing imported by hand, nothing voided;
* the compliance officer: says the organization oversees (the window then opens on the Dashboard);
  drafts and signs an agreement, imports the countersigned copy, imports a receipt and a destruction
  certificate, verifies the log and writes the report.

Each walk asserts the audit entries its actions produced, and the sentence the Audit log page shows.
Tiny data, synchronous jobs: a few seconds each.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from test_gui_link import files  # noqa: F401  (the two token files, a module fixture)
from test_gui_prepare import drop_file, make_extract, make_orgs, open_window


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


def show(window, title):
    ws = window.workspace
    ws.sidebar.setCurrentRow(ws.row_of(title))
    return ws.stack.currentWidget()


def new_actions(vault, since: int) -> list[str]:
    return [e.action for e in vault.audit.entries() if e.seq > since]


def audit_sentences(window) -> list[str]:
    page = show(window, "Audit log")
    page.refresh()
    return [page.proxy.line(r).sentence for r in range(page.proxy.rowCount())]


def test_clerk_maps_prepares_and_seals_in_the_app(qtbot, tmp_path):
    district, _college, _aid = make_orgs(tmp_path)
    window = open_window(qtbot, tmp_path, district)
    ws = window.workspace
    assert ws.stack.currentWidget() is ws.prepare  # a district sends: it opens on Prepare
    vault = window.session.vault
    start = len(vault.audit)
    prep = ws.prepare
    prep.go_next()  # the agreement (the only one) is chosen
    drop_file(prep.drop, make_extract(tmp_path / "sis-export.csv", rows=30))
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=10_000)
    prep.set_element("Counselor Notes", None)  # the clerk's one decision on the mapping
    for step in (3, 4):
        prep.go_next()
        qtbot.waitUntil(lambda step=step: prep.steps.currentIndex() == step or prep.message.isVisible(),
                        timeout=20_000)
        assert prep.steps.currentIndex() == step, prep.message.label.text()
    prep.go_next()
    prep.go_next()
    package = tmp_path / "outbox.age"
    prep.seal(str(package))
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 7 or prep.message.isVisible(), timeout=20_000)
    assert package.is_file(), prep.message.label.text()

    actions = new_actions(vault, start)
    # The mapping saved as a profile, checked at each preview (the first makes the link-token secret),
    # then the seal.
    assert actions[0] == "profile.save" and actions[-3:] == ["package.sealing", "package.sealed",
                                                             "package.prepared"]
    assert set(actions[1:-3]) == {"mapping.apply", "secret.created"} and actions.count("mapping.apply") >= 2
    # The audit log tells it as one action of the clerk, by name.
    audit_sentences(window)
    page = show(window, "Audit log")
    newest = page.proxy.line(0)
    assert newest.first == start + 1 and newest.last == start + len(actions)
    assert newest.sentence.startswith(
        "Prepared and sealed the package outbox.age for Riverbend Community College under “")
    packages = show(window, "Packages")
    assert packages.table.item(0, 0).text() == "outbox.age"
    assert packages.table.item(0, 4).text() == "Sent: no receipt yet"


def test_analyst_opens_and_links_in_the_app(qtbot, tmp_path, files):  # noqa: F811
    from agreements import Vault, seal_for_agreement

    district, college, aid = make_orgs(tmp_path)
    # The district's release carries link tokens (made under the agreement's secret): the analyst links
    # the opened package's file with the college's own de-identified file.
    rows = sum(1 for _ in files["district"].open(encoding="utf-8")) - 1
    with Vault.open(district, "tidal mango quarry lantern") as d:
        seal_for_agreement(d, aid, [("district.csv", files["district"], rows)],
                           {"rows_in": rows, "rows_out": rows}, tmp_path / "from-lakeview.age")
    window = open_window(qtbot, tmp_path, college)
    ws = window.workspace
    assert ws.stack.currentWidget() is ws.receive  # a college receives: it opens on Receive
    vault = window.session.vault
    start = len(vault.audit)

    # Open: drop the package, choose the folder, keep the receipt for the sender.
    receive = ws.receive
    drop_file(receive.drop, tmp_path / "from-lakeview.age")
    receive.out_dir.setText(str(tmp_path / "inbox"))
    receive.receipt_path.setText(str(tmp_path / "receipt.json"))
    qtbot.mouseClick(receive.open_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: receive.result is not None or receive.message.isVisible(), timeout=20_000)
    assert receive.result is not None, receive.message.label.text()
    opened = tmp_path / "inbox" / "data" / "district.csv"
    assert (tmp_path / "receipt.json").is_file() and opened.is_file()
    assert new_actions(vault, start) == ["package.opened", "package.receipt_written"]
    package_id = receive.result.package_id

    # Link: the opened package's file and the college's own, each with link tokens, dropped on the Link
    # screen.
    link = show(window, "Link two files")
    drop_file(link.side_a.drop, opened)
    drop_file(link.side_b.drop, files["college"])
    link.out_path.setText(str(tmp_path / "linked.csv"))
    link.report_path.setText(str(tmp_path / "linked-report.json"))
    qtbot.mouseClick(link.link_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: link.result is not None or link.message.isVisible(), timeout=20_000)
    assert link.result is not None, link.message.label.text()
    assert (tmp_path / "linked.csv").is_file() and link.result["linked"] > 0

    # The log holds the opening and the link — nothing imported by hand, nothing voided. The link's
    # entry says what was linked (the package and its agreement, the other file by name), how, and how
    # many rows: counts, never a token or a value.
    r = link.result
    actions = new_actions(vault, start)
    assert actions == ["package.opened", "package.receipt_written", "linkage.linked"]
    entry = vault.audit.entries()[-1]
    assert entry.agreement == aid
    assert entry.details == {
        "file_a": "district.csv", "file_b": "college.parquet", "packages": [package_id], "agreements": [aid],
        "method": "combined", "rows_a": r["rows_a"], "rows_b": r["rows_b"], "linked": r["linked"],
        "linked_by": r["linked_by"], "output": "linked.csv",
    }  # fmt: skip
    title = vault.db.execute("SELECT title FROM agreements").fetchone()[0]
    sentences = audit_sentences(window)
    assert sentences[:2] == [
        f"Linked district.csv and college.parquet on their link tokens ({r['linked']} rows linked).",
        f"Opened a package from Lakeview Unified School District under “{title}”.",
    ]
    page = show(window, "Audit log")
    details = dict(page.proxy.line(0).details)
    assert details["Agreement"] == title and details["Rows linked"] == str(r["linked"])
    assert details["Packages"] == "opened into the folder inbox"  # the package as this vault knows it
    by = r["linked_by"]
    assert details["Linked by"] == f"{by['id']:,} by the state ID, {by['derived']:,} by name and birth date"
    packages = show(window, "Packages")
    assert packages.table.item(0, 4).text() == "Opened, not yet destroyed"


def test_compliance_officer_drafts_signs_imports_verifies_and_reports_in_the_app(qtbot, tmp_path):
    import subprocess

    from test_gui_compliance import (
        RIVERBEND,
        countersign,
        draft_sign_export,
        import_and_verify_partner,
    )
    from test_gui_compliance import drop_file as drop_json
    from test_gui_compliance import make_orgs as make_officer_orgs
    from test_gui_compliance import open_window as open_officer_window

    from agreements import destroy, open_received, our_card, seal_for_agreement

    district_path, college, card_file, _ = make_officer_orgs(tmp_path)
    window = open_officer_window(qtbot, tmp_path, district_path)
    vault = window.session.vault
    start = len(vault.audit)

    # The officer says the organization oversees; from the next unlock the window opens on the Dashboard.
    card = show(window, "My organization's card")
    card.roles.set_chosen({"oversee"})
    assert card.store_roles()
    assert window.workspace.row_of("Dashboard") == window.workspace.home_row()

    # Draft, sign, export; the partner countersigns; the officer imports the executed copy.
    import_and_verify_partner(qtbot, window, card_file)
    page, aid, proposal = draft_sign_export(qtbot, window, our_card(college).fingerprint(), tmp_path)
    countersign(college, proposal, tmp_path / "executed.json")
    drop_json(page.drop, tmp_path / "executed.json")
    assert page.status_of(aid).startswith("expiring soon")

    # The clerk seals (their walk); the college opens it and later destroys it (theirs).
    src = tmp_path / "extract.csv"
    src.write_text("student_code,sex\nC1,F\nC2,M\n", encoding="utf-8")
    seal_for_agreement(vault, aid, [("extract.csv", src, 2)], {"rows_out": 2}, tmp_path / "pkg.age")
    open_received(college, tmp_path / "pkg.age", tmp_path / "inbox", receipt=tmp_path / "receipt.json")
    opened = [e for e in college.audit.entries() if e.action == "package.opened"][-1]
    destroy(college, opened.package, tmp_path / "certificate.json")
    college.close()

    # The officer imports the receipt (Dashboard) and the certificate (Packages).
    board = show(window, "Dashboard")
    assert board.unreceipted.rowCount() == 1
    assert board.import_returned(str(tmp_path / "receipt.json")), board.message.text()
    assert board.unreceipted.rowCount() == 0
    packages = show(window, "Packages")
    assert packages.import_returned(str(tmp_path / "certificate.json")), packages.message.text()
    assert packages.table.item(0, 4).text() == "Closed: every recipient destroyed it"

    # Verify and report.
    audit = show(window, "Audit log")
    qtbot.mouseClick(audit.verify_button, Qt.LeftButton)
    assert "The audit log verifies" in audit.verdict.text()
    report = tmp_path / "audit-report.pdf"
    audit.export_pdf(str(report))
    assert report.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", str(report), "-"], capture_output=True, text=True, check=True).stdout
    assert "49064" in text and RIVERBEND in " ".join(text.split())

    actions = new_actions(vault, start)
    for expected in ("organization.roles", "partner.import", "partner.verify", "agreement.created",
                     "agreement.signed", "agreement.exported", "agreement.imported", "agreement.executed",
                     "package.sealed", "package.delivered", "package.destruction_certified",
                     "audit.verify", "audit.report"):
        assert expected in actions, expected
    assert actions.index("package.delivered") < actions.index("package.destruction_certified")
    sentences = audit_sentences(window)
    assert f"{RIVERBEND} certified that the package pkg.age is destroyed." in sentences
    assert f"{RIVERBEND} opened the package pkg.age and sent a receipt." in sentences
    assert "Wrote the audit report." in sentences and "Verified the audit log." in sentences
    window.lock()
    window.unlock.passphrase.setText("correct horse battery staple")
    qtbot.keyClick(window.unlock.passphrase, Qt.Key_Return)
    qtbot.waitUntil(lambda: window.workspace is not None, timeout=5_000)
    assert window.workspace.stack.currentWidget() is window.workspace.stack.widget(
        window.workspace.row_of("Dashboard"))
