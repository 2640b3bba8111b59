"""The Receive flow in the college's vault: a package the district sealed through the library is dropped
on the window, verified, opened into a new folder, with a receipt; tampering is one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_gui_prepare import PASS, drop_file, make_extract, make_orgs, open_window


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """The district seals a small file for the college (the library's seal_for_agreement)."""
    from agreements import Vault, seal_for_agreement

    tmp = tmp_path_factory.mktemp("exchange")
    district, college, agreement_id = make_orgs(tmp)
    data = make_extract(tmp / "extract.csv", rows=25)
    report = {"rows_in": 25, "rows_out": 25, "k_required": 3, "k_achieved": 4, "quasi_identifiers": [],
              "suppressed_cells": 2, "columns": [], "residual_findings": []}
    with Vault.open(district, PASS) as vault:
        sealed = seal_for_agreement(vault, agreement_id, [("extract.csv", data, 25)], report, tmp / "pkg.age")
    import shutil

    shutil.copy(college, tmp / "college-unopened.vault")  # for a second, independent opening
    return {"college": college, "package": tmp / "pkg.age", "agreement": agreement_id,
            "college_unopened": tmp / "college-unopened.vault",
            "package_id": sealed.manifest.package_id, "dir": tmp}


def _open(qtbot, window, package: Path, out_dir: Path, receipt: Path):
    ws = window.workspace
    qtbot.keyClick(ws, Qt.Key_2, Qt.ControlModifier)
    receive = ws.receive
    assert ws.stack.currentWidget() is receive
    drop_file(receive.drop, package)
    assert receive.package == str(package) and receive.open_button.isEnabled()
    receive.out_dir.setText(str(out_dir))
    receive.receipt_path.setText(str(receipt))
    qtbot.mouseClick(receive.open_button, Qt.LeftButton)
    return receive


def test_receive_opens_verifies_and_writes_a_receipt(qtbot, tmp_path, sealed):
    from agreements import list_packages

    window = open_window(qtbot, tmp_path, sealed["college"])
    out_dir, receipt = tmp_path / "inbox" / "lakeview", tmp_path / "inbox" / "receipt.json"
    (tmp_path / "inbox").mkdir()
    receive = _open(qtbot, window, sealed["package"], out_dir, receipt)
    qtbot.waitUntil(lambda: receive.result is not None or receive.message.isVisible(), timeout=20_000)
    assert receive.result is not None, receive.message.label.text()
    shown = receive.result_view.text()
    assert "Lakeview Unified School District" in shown and "25 rows" in shown
    assert "signature" in shown and sealed["agreement"] in shown
    fingerprint = receive.result.sender_fingerprint
    from desktop.ui.jobs import OpenedFile, OpenedPackage

    # a typed result from the worker, not a dict of thirteen keys
    assert isinstance(receive.result, OpenedPackage) and receive.result.package_id == sealed["package_id"]
    assert receive.result.files == [OpenedFile("extract.csv", 25, receive.result.files[0].bytes,
                                               str(out_dir / "data" / "extract.csv"))]  # fmt: skip
    assert all(group in receive.fingerprint.text() for group in fingerprint.split("-"))
    # the analyst's kit is named beside the data, not counted as files of "0 rows"
    import dataclasses

    kit = [OpenedFile(n, 0, 10, str(out_dir / "data" / n)) for n in ("codebook.csv", "load_pandas.py")]
    receive._opened(dataclasses.replace(receive.result, files=[*receive.result.files, *kit]))
    shown = receive.result_view.text()
    assert "25 rows" in shown and "0 rows" not in shown and "codebook.csv, load_pandas.py" in shown
    assert "k" in receive.report_view.text() and "25" in receive.report_view.text()
    assert (out_dir / "data" / "extract.csv").is_file() and receipt.is_file()
    assert sealed["package_id"] in receipt.read_text()
    vault = window.session.vault
    actions = [e.action for e in vault.audit.entries()]
    assert "package.opened" in actions and "package.receipt_written" in actions
    assert any(p.package_id == sealed["package_id"] for p in list_packages(vault))


def test_tampered_package_is_one_sentence_and_nothing_is_written(qtbot, tmp_path, sealed):
    bad = tmp_path / "tampered.age"
    data = bytearray(sealed["package"].read_bytes())
    data[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(data))
    window = open_window(qtbot, tmp_path, sealed["college"])
    out_dir = tmp_path / "inbox"
    receive = _open(qtbot, window, bad, out_dir, tmp_path / "receipt.json")
    qtbot.waitUntil(lambda: receive.message.isVisible(), timeout=20_000)
    text = receive.message.label.text()
    assert text and "Traceback" not in text and "\n" not in text
    assert receive.result is None and not out_dir.exists()
    assert not (tmp_path / "receipt.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".pathshare-open-")] == []
    assert "package.rejected" in [e.action for e in window.session.vault.audit.entries()]


def test_receive_in_the_real_worker_process(qtbot, tmp_path, sealed):
    """Once with the app's own runner: the passphrase goes over the pipe, the result comes back."""
    import shutil

    from desktop.tasks import ProcessRunner

    # A copy of the college vault from before any test opened the package (a second opening is a replay).
    college = tmp_path / "college.vault"
    shutil.copy(sealed["college_unopened"], college)
    window = open_window(qtbot, tmp_path, college, runner=ProcessRunner())
    out_dir = tmp_path / "inbox"
    receive = _open(qtbot, window, sealed["package"], out_dir, tmp_path / "receipt.json")
    assert window.workspace.progress.isVisible()
    qtbot.waitUntil(lambda: receive.result is not None or receive.message.isVisible(), timeout=60_000)
    assert receive.result is not None, receive.message.label.text()
    assert (out_dir / "data" / "extract.csv").is_file()
    assert not window.workspace.progress.isVisible()


def test_package_prepared_in_the_gui_opens_in_the_partners_gui(qtbot, tmp_path):
    """The issue's "done when": the district seals in the app, the college opens it in the app."""
    district, college, _agreement = make_orgs(tmp_path)
    extract = make_extract(tmp_path / "sis-export.csv", rows=40)
    sender = open_window(qtbot, tmp_path, district)
    prep = sender.workspace.prepare
    prep.go_next()
    drop_file(prep.drop, extract)
    qtbot.waitUntil(lambda: prep.steps.currentIndex() == 2, timeout=10_000)
    prep.set_element("Counselor Notes", None)
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
    sender.close()

    recipient = open_window(qtbot, tmp_path, college)
    inbox = tmp_path / "inbox"
    receive = _open(qtbot, recipient, package, inbox, tmp_path / "receipt.json")
    qtbot.waitUntil(lambda: receive.result is not None or receive.message.isVisible(), timeout=20_000)
    assert receive.result is not None, receive.message.label.text()
    assert receive.result.sender == "Lakeview Unified School District"
    assert receive.result.files[0].rows == 40
    data = Path(receive.result.files[0].path)  # the data file; the analyst's kit follows it
    header = data.read_text(encoding="utf-8-sig").splitlines()[0]
    assert "student_code" in header and "SSID" not in header and "First Name" not in header


def test_refused_package_says_a_rejected_receipt_was_written(qtbot, tmp_path, sealed):
    """A package the sender signed but whose file was changed on the way: refused in one message that
    also says a signed 'rejected' receipt for the sender was saved."""
    import io
    import json
    import shutil
    import tarfile

    from agreements import Vault, _agefile, age_identity, our_card

    college = tmp_path / "college.vault"
    shutil.copy(sealed["college_unopened"], college)
    with Vault.open(college, PASS) as vault:
        identity, recipient = age_identity(vault), our_card(vault).age_recipient
    plain = io.BytesIO()
    _agefile.decrypt_to(sealed["package"], [identity], plain)
    tar = bytearray(plain.getvalue())
    with tarfile.open(fileobj=io.BytesIO(bytes(tar))) as archive:
        start = archive.getmember("data/extract.csv").offset_data
    tar[start] ^= 0x01  # one byte of the data file: the manifest's SHA-256 no longer matches
    changed = tmp_path / "changed.age"
    with open(changed, "wb") as fh:
        _agefile.encrypt_chunks(iter([bytes(tar)]), fh, [recipient])

    window = open_window(qtbot, tmp_path, college)
    receipt = tmp_path / "receipt.json"
    receive = _open(qtbot, window, changed, tmp_path / "inbox", receipt)
    qtbot.waitUntil(lambda: receive.message.isVisible(), timeout=20_000)
    text = receive.message.label.text()
    assert "extract.csv" in text and "receipt.json" in text and "refused" in text
    assert "Traceback" not in text and "\n" not in text
    assert receive.result is None and not (tmp_path / "inbox").exists()
    doc = json.loads(receipt.read_text())
    assert doc["result"] == "rejected" and doc["package_id"] == sealed["package_id"]
    assert "extract.csv" in doc["reason"]
