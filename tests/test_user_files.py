"""The user's files stay whole (issue 14, items 5–7), through the real ``pathshare`` command line.

5. Every command that writes a file refuses an existing one unless ``--force`` is given, and never
   replaces a file the vault recorded (a sealed package, a receipt, a certificate, an opened package's
   files), not even with ``--force``; writes are atomic (no partial file left behind).
6. ``destroy`` deletes what ``open`` wrote, confirms it is gone, and only then signs the certificate;
   moved files are deleted where the user says they went; otherwise the user certifies by hand and
   the certificate says so.
7. A sealed package that never left can be voided; a recipient who lost the opened folder may open
   its own package once more, with a recorded reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from partners_setup import PASS

import agreements._vault as vault_module
from agreements import Vault, get_package, list_packages, run_demo, seal_for_agreement

OLD = b"the user's own file\n"


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture(scope="module")
def _demo(tmp_path_factory) -> tuple[Path, str]:
    """The demo's two vaults: an executed agreement, a saved profile, a sealed package the college opened
    (its receipt recorded on the college side), plus files for the vault-less commands."""
    mp = pytest.MonkeyPatch()
    mp.setattr(vault_module, "_TEST_KDF_ITER", 1000)
    folder = tmp_path_factory.mktemp("demo") / "work"
    result = run_demo(folder, rows=300, passphrase=PASS, say=lambda _line: None)
    assert result.ok
    _link_inputs(folder)
    (folder / "policy.json").write_text(
        json.dumps({"pathshare_policy": 1, "k": 1, "columns": {"Grade": {"treatment": "keep"}}}),
        encoding="utf-8",
    )
    (folder / "small.csv").write_text("Grade\n09\n10\n", encoding="utf-8")
    mp.undo()
    return folder, result.agreement_id


def _link_inputs(folder: Path) -> None:
    import pyarrow as pa

    from deid import Policy, deidentify, write_table

    people = pa.table({
        "ssid": [f"{1000000000 + i:010d}" for i in range(6)],
        "first": ["Ana", "Ben", "Cy", "Dee", "Eli", "Fay"],
        "last": ["Ames", "Bell", "Cole", "Dunn", "Eng", "Fox"],
        "birth": [f"2008-01-1{i}" for i in range(6)],
    })  # fmt: skip
    rule = {"treatment": "link_tokens", "as": "link_tokens", "from": ["first", "last", "birth"]}
    policy = Policy.from_dict(
        {"pathshare_policy": 1, "k": 1, "drop_unlisted": True, "columns": {"ssid": rule}}
    )
    out, _report = deidentify(people, policy, secret=b"k" * 32)
    write_table(out, folder / "link-a.csv")
    write_table(out, folder / "link-b.csv")


@pytest.fixture
def env(_demo, tmp_path, monkeypatch) -> dict:
    """Copies of both vaults for one test (the folders they recorded stay in the demo's folder)."""
    folder, agreement_id = _demo
    work = tmp_path / "work"
    work.mkdir()
    for name in ("district.vault", "college.vault"):
        shutil.copyfile(folder / name, work / name)
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    return {
        "demo": folder,
        "work": work,
        "district": work / "district.vault",
        "college": work / "college.vault",
        "aid": agreement_id,
    }


def _new_package(env: dict, name: str = "p2.age") -> tuple[Path, str]:
    """A second package sealed by the district copy (not opened yet)."""
    src = env["work"] / "students.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    with Vault.open(env["district"], PASS) as v:
        sealed = seal_for_agreement(
            v, env["aid"], [("students.csv", src, 2)], {"rows_out": 2}, env["work"] / name
        )
    return sealed.path, sealed.manifest.package_id


def _opened_package(env: dict, run_cli) -> tuple[Path, str]:
    """A second package the college copy opened into work/inbox2; returns (folder, package id)."""
    package, pid = _new_package(env)
    inbox = env["work"] / "inbox2"
    code, _, err = run_cli("--vault", env["college"], "open", package, "--out", inbox)
    assert code == 0, err
    return inbox, pid


def refused(code: int, out: str, err: str) -> str:
    assert "Traceback" not in err and code == 1, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    hints = [line for line in lines[1:] if line.startswith("pathshare: hint: ")]  # what to do, apart
    lines = [line for line in lines if line not in hints]
    assert len(lines) == 1 and lines[0].startswith("pathshare: "), err
    return "\n".join([lines[0], *hints])  # the sentence, then what to do


def _audit(vault: Path) -> list[str]:
    with Vault.open(vault, PASS) as v:
        return [e.action for e in v.audit.entries()]


def _no_partials(*folders: Path) -> None:
    for folder in folders:
        assert not [p for p in folder.rglob("*") if p.name.endswith(".partial")], folder


# command: (side whose vault it uses, or None; its arguments, {out} the file it writes; that file's name)
WRITERS: dict[str, tuple[str | None, str, str]] = {
    "card export": ("district", "card export {out}", "card.json"),
    "agreement export": ("district", "agreement export {aid} {out}", "agreement.json"),
    "agreement codebook": ("district", "agreement codebook {aid} --out {out}", "book.csv"),
    "codebook": ("district", "codebook {aid} --out {out}", "book.md"),
    "codebook (PDF)": ("district", "codebook {aid} --out {out}", "book.pdf"),
    "profile export": ("district", "profile export {profile} {out}", "profile.json"),
    "audit export": ("district", "audit export {out}", "bundle.json"),
    "audit checkpoint": ("district", "audit checkpoint --out {out}", "checkpoint.txt"),
    "audit disclosures": ("district", "audit disclosures --out {out}", "disclosures.csv"),
    "audit report": ("district", "audit report {out}", "report.pdf"),
    "prepare": ("district", "prepare {extract} --agreement {aid} --out {out}", "release.age"),
    "prepare --report": (
        "district",
        "prepare {extract} --agreement {aid} --out {work}/new.age --report {out}",
        "prepare-report.json",
    ),
    "deid --agreement": (
        "district",
        "deid {extract} --agreement {aid} --profile {profile} --out {out}",
        "shareable.csv",
    ),
    "deid --report": (
        None,
        "deid {demo}/small.csv --policy {demo}/policy.json --out {work}/o.csv --report {out}",
        "deid-report.json",
    ),
    "deid --policy": (None, "deid {demo}/small.csv --policy {demo}/policy.json --out {out}", "o.csv"),
    "open --receipt": ("college", "open {package} --out {work}/in --receipt {out}", "r.json"),
    "destroy --certificate": ("college", "destroy {pid} --certificate {out}", "cert.json"),
    "link": ("college", "link {demo}/link-a.csv {demo}/link-b.csv --out {out}", "linked.csv"),
    "link --report": (
        "college",
        "link {demo}/link-a.csv {demo}/link-b.csv --out {work}/l.csv --report {out}",
        "link-report.json",
    ),
    "synth": (None, "synth --kind k12 --rows 20 --out {out}", "synth.csv"),
    "synth --truth": (None, "synth --kind k12 --rows 20 --out {work}/s.csv --truth {out}", "truth.json"),
}


def _argv(env: dict, command: str, out: Path, run_cli) -> list[str]:
    side, template, _name = WRITERS[command]
    fields = {
        "out": out,
        "aid": env["aid"][:8],
        "demo": env["demo"],
        "work": env["work"],
        "extract": env["demo"] / "district-extract.csv",
        "profile": "Synthetic SIS export",
    }
    if command == "open --receipt":
        fields["package"] = _new_package(env)[0]
    if command == "destroy --certificate":
        fields["pid"] = _opened_package(env, run_cli)[1][:8]  # an id prefix, as other commands take
    argv = [a.format(**fields) for a in template.split()]  # split first: the profile's name has spaces
    return ["--vault", str(env[side]), *argv] if side else argv


@pytest.mark.parametrize("command", list(WRITERS))
def test_every_writer_refuses_an_existing_file_unless_forced(env, run_cli, command):
    target = env["work"] / WRITERS[command][2]
    target.write_bytes(OLD)
    argv = _argv(env, command, target, run_cli)
    line = refused(*run_cli(*argv))
    assert "already exists" in line and "--force" in line and target.name in line, line
    assert target.read_bytes() == OLD
    _no_partials(env["work"])

    code, _out, err = run_cli(*argv, "--force")
    assert code == 0, err
    assert target.read_bytes() != OLD and target.stat().st_size > 0
    _no_partials(env["work"])


def _recorded_target(env: dict, side: str, name: str, run_cli) -> Path:
    """A file named ``name`` that the vault of ``side`` recorded: a package the district sealed there,
    or a receipt the college wrote there on opening a package."""
    if side == "district":
        return _new_package(env, name)[0]
    package, _pid = _new_package(env, "for-the-receipt.age")
    target = env["work"] / name
    opened = env["work"] / "in0"
    code, _, err = run_cli("--vault", env["college"], "open", package, "--out", opened, "--receipt", target)
    assert code == 0, err
    return target


@pytest.mark.parametrize("command", [c for c, (side, _a, _n) in WRITERS.items() if side])
def test_no_writer_replaces_a_file_the_vault_recorded_even_with_force(env, run_cli, command):
    side, _argv_template, name = WRITERS[command]
    assert side is not None
    target = _recorded_target(env, side, name, run_cli)
    before = target.read_bytes()
    line = refused(*run_cli(*_argv(env, command, target, run_cli), "--force"))
    assert "which the vault recorded" in line and "never replaced" in line, line
    assert "--force" not in line  # no hint at a way round it: there is none
    assert target.read_bytes() == before


def test_a_second_package_is_never_sealed_over_the_first(env, run_cli):
    """The issue's case: `prepare --out` replaced a recorded package, and `packages` still listed the
    old one at that path."""
    first, first_id = _new_package(env, "release.age")
    before = first.read_bytes()
    argv = ["--vault", env["district"], "prepare", env["demo"] / "district-extract.csv", "--agreement",
            env["aid"][:8], "--out", first, "--force"]  # fmt: skip
    line = refused(*run_cli(*argv))
    assert f"the sealed package {first_id}" in line
    assert first.read_bytes() == before
    assert _audit(env["district"])[-1] == "package.prepare_refused"


def test_a_receipt_for_another_package_is_never_replaced(env, run_cli):
    """The issue's case: `open --receipt` replaced another package's receipt before it was imported."""
    receipt = env["work"] / "receipt.json"
    first, _ = _new_package(env, "first.age")
    argv = ["--vault", env["college"], "open", first, "--out", env["work"] / "a", "--receipt", receipt]
    code, _, err = run_cli(*argv)
    assert code == 0, err
    kept = receipt.read_bytes()
    second, _ = _new_package(env, "second.age")
    line = refused(*run_cli("--vault", env["college"], "open", second, "--out", env["work"] / "b",
                            "--receipt", receipt, "--force"))  # fmt: skip
    assert "the receipt for package" in line
    assert receipt.read_bytes() == kept
    assert not (env["work"] / "b").exists()  # refused before anything was opened


def test_files_of_an_opened_package_are_never_written_over(env, run_cli):
    inbox, _pid = _opened_package(env, run_cli)
    data = next((inbox / "data").iterdir())
    before = data.read_bytes()
    line = refused(*run_cli("synth", "--kind", "k12", "--rows", "20", "--out", data, "--force"))
    assert "a file of a package opened into" in line  # no vault here: the folder says what it is
    line = refused(*run_cli("--vault", env["college"], "card", "export", data, "--force"))
    assert "a file of package" in line
    assert data.read_bytes() == before


def test_the_move_into_place_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    """No window between the check and the rename: a file made while the output was being written
    stays, the new output is refused, and no temporary file is left."""
    from deid import OutputExists, atomic_open

    target = tmp_path / "out.csv"
    with pytest.raises(OutputExists), atomic_open(target, "wb") as fh:
        fh.write(b"new data")
        target.write_bytes(OLD)  # someone else's file appears before the rename
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_write_leaves_the_old_file_whole(tmp_path):
    from deid import atomic_open

    target = tmp_path / "out.csv"
    target.write_bytes(OLD)
    with pytest.raises(RuntimeError), atomic_open(target, "wb", force=True) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("disk gone")
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_the_opened_folder_markers_are_the_files_open_writes():
    from agreements._manifest import MANIFEST_NAME, SIGNATURE_NAME
    from deid import OPENED_PACKAGE_MARKERS

    assert set(OPENED_PACKAGE_MARKERS) == {MANIFEST_NAME, SIGNATURE_NAME}


def test_the_app_asks_before_replacing_and_never_replaces_a_recorded_file(qtbot, tmp_path, monkeypatch):
    """The app's writers call the same library rule: an existing file is replaced only after the user
    says yes in a confirm dialog, and a file the vault recorded is refused whatever the answer."""
    from PySide6.QtWidgets import QMessageBox
    from test_gui_compliance import make_orgs, open_window, show

    district_path, college, _card_file, _ = make_orgs(tmp_path)
    college.close()
    window = open_window(qtbot, tmp_path, district_path)
    audit = show(window, "Audit log")
    answers: list[str] = []

    def answer(choice):
        def ask(_parent, title, text, *_buttons):
            answers.append(text)
            return choice

        return ask

    out = tmp_path / "disclosures.csv"
    out.write_bytes(OLD)
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    audit.export_disclosures(str(out))
    assert out.read_bytes() == OLD and answers and "disclosures.csv already exists" in answers[-1]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    audit.export_disclosures(str(out))
    assert out.read_bytes() != OLD and "Wrote" in audit.message.text()

    # A file the vault recorded (here noted as a receipt it wrote) is never replaced, even after a yes.
    from agreements._recorded import record_file

    with window.session.vault.transaction() as conn:
        record_file(conn, out, "receipt", "p-1")
    before = out.read_bytes()
    audit.export_disclosures(str(out))
    assert out.read_bytes() == before
    assert "which the vault recorded" in audit.message.text() and "--force" not in audit.message.text()


# ---------------------------------------------------------------------- 6. "destroyed" means destroyed


def _certificate(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_destroy_deletes_the_opened_folder_confirms_it_and_only_then_certifies(env, run_cli):
    inbox, pid = _opened_package(env, run_cli)
    assert (inbox / "data").is_dir()
    cert = env["work"] / "cert.json"
    code, out, err = run_cli("--vault", env["college"], "destroy", pid[:6], "--certificate", cert)
    assert code == 0, err
    assert not inbox.exists()  # what open wrote is gone, folder included
    assert "none is left" in out
    method = _certificate(cert)["method"]
    assert method.startswith("deleted by PathShare") and "confirmed gone" in method and str(inbox) in method
    with Vault.open(env["college"], PASS) as v:
        assert get_package(v, pid, "received").destroyed_at is not None
        entry = v.audit.entries(action="package.destroyed")[-1]
        assert entry.details["verified"] == "deleted" and entry.details["missing"] == 0


def test_destroy_refuses_and_deletes_nothing_when_copies_sit_beside_the_data(env, run_cli):
    inbox, pid = _opened_package(env, run_cli)
    (inbox / "data" / "my-analysis.csv").write_text("copied rows\n", encoding="utf-8")
    before = sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*"))
    cert = env["work"] / "cert.json"
    line = refused(*run_cli("--vault", env["college"], "destroy", pid, "--certificate", cert))
    assert "did not write" in line and "my-analysis.csv" in line and "Nothing was deleted" in line
    assert sorted(p.relative_to(inbox).as_posix() for p in inbox.rglob("*")) == before
    assert not cert.exists()
    with Vault.open(env["college"], PASS) as v:
        assert get_package(v, pid, "received").destroyed_at is None


def test_moved_files_are_deleted_where_the_user_says_they_went(env, run_cli):
    inbox, pid = _opened_package(env, run_cli)
    moved = env["work"] / "moved"
    shutil.move(inbox, moved)
    cert = env["work"] / "cert.json"
    line = refused(*run_cli("--vault", env["college"], "destroy", pid, "--certificate", cert))
    assert "are not in" in line and "--files-moved-to" in line and "--attest" in line
    assert not cert.exists() and (moved / "data").is_dir()  # nothing certified, nothing deleted

    argv = ["--vault", env["college"], "destroy", pid, "--certificate", cert, "--files-moved-to", moved]
    code, _out, err = run_cli(*argv)
    assert code == 0, err
    assert not (moved / "data").exists() and not (moved / "manifest.json").exists()
    assert str(moved) in _certificate(cert)["method"]


def test_files_gone_some_other_way_are_certified_by_hand_and_the_certificate_says_so(env, run_cli):
    inbox, pid = _opened_package(env, run_cli)
    shutil.rmtree(inbox / "data")  # e.g. deleted by hand, or the laptop was wiped
    cert = env["work"] / "cert.json"
    statement = "IT wiped the laptop's disk on 2026-11-30; no backup holds the folder"
    argv = ["--vault", env["college"], "destroy", pid, "--certificate", cert, "--attest", statement]
    code, out, err = run_cli(*argv)
    assert code == 0, err
    method = _certificate(cert)["method"]
    assert method.startswith("certified by hand") and "not checked by PathShare" in method
    assert statement in method and "were not there" in method
    assert not inbox.exists()  # what was still there (report, manifest) was deleted all the same
    assert "certified it by hand" in out
    with Vault.open(env["college"], PASS) as v:
        assert v.audit.entries(action="package.destroyed")[-1].details["verified"] == "attested"


def test_destroy_takes_an_id_prefix_and_refuses_an_ambiguous_or_short_one(env, run_cli):
    _inbox, pid = _opened_package(env, run_cli)
    cert = env["work"] / "cert.json"
    line = refused(*run_cli("--vault", env["college"], "destroy", pid[:3], "--certificate", cert))
    assert "too short" in line
    line = refused(*run_cli("--vault", env["college"], "destroy", "ffffffff", "--certificate", cert))
    assert "no record" in line
    assert not cert.exists()


def test_a_certified_package_writes_its_certificate_again_without_deleting_anything(env, run_cli):
    _inbox, pid = _opened_package(env, run_cli)
    first = env["work"] / "cert.json"
    assert run_cli("--vault", env["college"], "destroy", pid, "--certificate", first)[0] == 0
    again = env["work"] / "again.json"
    code, out, err = run_cli("--vault", env["college"], "destroy", pid, "--certificate", again)
    assert code == 0 and "already certified" in out, err
    assert _certificate(again) == _certificate(first)
    # the first certificate is a recorded file: it is never replaced, even with --force
    line = refused(*run_cli("--vault", env["college"], "destroy", pid, "--certificate", first, "--force"))
    assert "never replaced" in line


# ------------------------------------------------------------- 7. packages that never left, lost folders


def test_a_package_that_never_left_is_voided_out_of_the_obligations(env, run_cli):
    from agreements import dashboard, disclosure_record

    package, pid = _new_package(env, "never-sent.age")
    with Vault.open(env["district"], PASS) as v:
        assert pid in {p.package_id for p in dashboard(v).without_receipt}
        assert pid in {d.package_id for d in disclosure_record(v)}
    line = refused(*run_cli("--vault", env["district"], "void", pid[:8], "--reason", "  "))
    assert "why" in line and package.exists()
    code, out, err = run_cli("--vault", env["district"], "void", pid[:8], "--reason", "wrong extract chosen")
    assert code == 0 and "void" in out, err
    assert not package.exists()  # deleted, so it cannot be sent by mistake
    with Vault.open(env["district"], PASS) as v:
        record = get_package(v, pid, "sent")
        assert record.voided and record.void_reason == "wrong extract chosen" and record.closed
        assert pid not in {p.package_id for p in dashboard(v).without_receipt}
        assert pid not in {d.package_id for d in disclosure_record(v)}
        entry = v.audit.entries(action="package.voided")[-1]
        assert entry.package == pid and entry.details["reason"] == "wrong extract chosen"
        assert entry.details["sealed_file"] == "deleted"
    code, out, _ = run_cli("--vault", env["district"], "packages", "--sent")
    assert code == 0 and any(pid in row and "void" in row for row in out.splitlines())
    line = refused(*run_cli("--vault", env["district"], "void", pid, "--reason", "again"))
    assert "already voided" in line


def test_a_package_with_a_receipt_cannot_be_voided(env, run_cli):
    """The demo's package was opened and its receipt imported: it left, so it stays on record."""
    with Vault.open(env["district"], PASS) as v:
        pid = next(p.package_id for p in list_packages(v, "sent") if p.delivered_to)
    line = refused(*run_cli("--vault", env["district"], "void", pid, "--reason", "oops"))
    assert "cannot be voided" in line
    with Vault.open(env["district"], PASS) as v:
        assert not get_package(v, pid, "sent").voided


def test_a_lost_folder_is_opened_once_more_with_a_recorded_reason(env, run_cli):
    package, pid = _new_package(env)
    inbox = env["work"] / "inbox2"
    assert run_cli("--vault", env["college"], "open", package, "--out", inbox)[0] == 0
    again = env["work"] / "again"
    # still there: use it (or destroy it) rather than make a second copy
    line = refused(*run_cli("--vault", env["college"], "open", package, "--out", again, "--reopen",
                            "--reason", "lost"))  # fmt: skip
    assert "still open in" in line and not again.exists()
    shutil.rmtree(inbox)  # the folder is lost
    line = refused(*run_cli("--vault", env["college"], "open", package, "--out", again))
    assert "replay" in line  # without --reopen it is a replay, as before
    line = refused(*run_cli("--vault", env["college"], "open", package, "--out", again, "--reopen"))
    assert "--reason" in line
    reason = "the laptop holding the folder was stolen; police report 26-1142"
    argv = ["--vault", env["college"], "open", package, "--out", again, "--reopen", "--reason", reason]
    code, out, err = run_cli(*argv)
    assert code == 0 and "once more" in out, err
    assert (again / "data" / "students.csv").is_file()
    with Vault.open(env["college"], PASS) as v:
        record = get_package(v, pid, "received")
        assert record.reopen_reason == reason and Path(record.location) == again.resolve()
        entry = v.audit.entries(action="package.reopened")[-1]
        assert entry.details["reason"] == reason and entry.details["previous_folder"] == str(inbox.resolve())
    # once more means once: a second loss needs a new package from the sender
    shutil.rmtree(again)
    line = refused(*run_cli("--vault", env["college"], "open", package, "--out", env["work"] / "third",
                            "--reopen", "--reason", "lost again"))  # fmt: skip
    assert "already opened once more" in line


def test_reopen_is_no_replay_of_someone_elses_package(env, run_cli):
    """--reopen only re-opens a package this vault opened before: a package never opened here (the
    sender's other package, or a copy meant for someone else) is refused as it would be anyway."""
    package, _pid = _new_package(env)
    out = env["work"] / "x"
    argv = ["--vault", env["college"], "open", package, "--out", out, "--reopen", "--reason", "r"]
    line = refused(*run_cli(*argv))
    assert "never opened here" in line and not out.exists()
    with Vault.open(env["college"], PASS) as v:
        assert v.audit.entries()[-1].action == "package.rejected"


def test_reopen_refuses_a_different_package_under_the_same_id(env, run_cli):
    """Same package id, other content (a forged or re-sealed copy): the manifest hash differs."""
    from agreements import get_agreement, our_card, seal, signing_key

    first, pid = _new_package(env, "first.age")
    src = env["work"] / "other.csv"
    src.write_text("student_code,birth_year\nZ9,2007\n", encoding="utf-8")
    with Vault.open(env["district"], PASS) as v:
        agreement = get_agreement(v, env["aid"])
        other = env["work"] / "other.age"
        seal(
            [("students.csv", src, 1)],
            {"rows_out": 1},
            agreement_id=agreement.id,
            agreement_hash=agreement.sha256,
            sender_key=signing_key(v),
            sender_fingerprint=our_card(v).fingerprint(),
            recipients=[p.age_recipient for p in agreement.recipients()],
            audit_head=v.audit.head(),
            out=other,
            package_id=pid,
        )
    inbox = env["work"] / "inbox"
    assert run_cli("--vault", env["college"], "open", first, "--out", inbox)[0] == 0
    shutil.rmtree(inbox)
    argv = ["--vault", env["college"], "open", other, "--out", env["work"] / "y", "--reopen", "--reason", "r"]
    line = refused(*run_cli(*argv))
    assert "manifest differs" in line and not (env["work"] / "y").exists()
