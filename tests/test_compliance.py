"""The compliance library (agreements/_compliance.py): dashboard, Ed Code 49064 disclosure record, audit
CSV and report HTML, bundle checks, drafting helpers, and `pathshare audit disclosures`.

Two real vaults (a district provider, a college recipient) execute an agreement through the library;
the district seals small packages with the real sealing workflow."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

PASS = "correct horse battery staple"
ROOT = Path(__file__).resolve().parent.parent
TODAY = date.today()


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """Fewer SQLCipher KDF iterations: nothing here is about the key derivation."""
    import agreements._vault as vault_module

    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


def example_terms(provider_fp: str, recipient_fp: str, *, expires_in: int = 30) -> dict:
    """The documented example agreement between two cards, ending ``expires_in`` days from today."""
    body = json.loads((ROOT / "docs/examples/agreement.json").read_text(encoding="utf-8"))
    body.pop("id")
    reps = [p["authorized_representative"] for p in body["parties"]]
    body["parties"] = [
        {"fingerprint": provider_fp, "roles": ["provider"], "authorized_representative": reps[0]},
        {"fingerprint": recipient_fp, "roles": ["recipient"], "authorized_representative": reps[1]},
    ]
    body["effective"] = (TODAY - timedelta(days=30)).isoformat()
    body["expires"] = (TODAY + timedelta(days=expires_in)).isoformat()
    body["destruction"]["deadline"] = (TODAY + timedelta(days=expires_in + 60)).isoformat()
    return body


def make_pair(tmp: Path, *, execute: bool = True, expires_in: int = 30):
    """District and college vaults that trust each other; optionally an executed agreement.
    Returns (district vault, college vault, agreement id or None)."""
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
    if not execute:
        return d, c, None
    a = create_agreement(d, example_terms(dcard.fingerprint(), ccard.fingerprint(), expires_in=expires_in))
    sign_agreement(d, a.id)
    export_agreement(d, a.id, tmp / "proposal.json")
    import_agreement(c, tmp / "proposal.json")
    sign_agreement(c, a.id)
    export_agreement(c, a.id, tmp / "executed.json")
    import_agreement(d, tmp / "executed.json")
    return d, c, a.id


def seal_one(vault, agreement_id: str, tmp: Path, name: str = "pkg1", rows: int = 3):
    """Seal a tiny de-identified CSV under the agreement with the real workflow."""
    from agreements import seal_for_agreement

    src = tmp / f"{name}.csv"
    src.write_text("student_code,sex\n" + "".join(f"C{i},F\n" for i in range(rows)), encoding="utf-8")
    return seal_for_agreement(vault, agreement_id, [("extract.csv", src, rows)], {"rows_out": rows},
                              tmp / f"{name}.age")


def deliver(sender, recipient, sealed) -> None:
    """The recipient's signed receipt, imported by the sender."""
    from agreements import import_receipt, make_receipt, our_card, signing_key

    receipt = make_receipt(sealed.manifest, signing_key(recipient), our_card(recipient).fingerprint())
    import_receipt(sender, receipt)


@pytest.fixture
def pair(tmp_path):
    d, c, aid = make_pair(tmp_path)
    yield d, c, aid, tmp_path
    d.close()
    c.close()


def test_dashboard_expiring_and_packages_without_receipt(pair):
    from agreements import dashboard

    d, c, aid, tmp = pair
    first = seal_one(d, aid, tmp, "a")
    second = seal_one(d, aid, tmp, "b")
    deliver(d, c, first)
    board = dashboard(d)
    assert [s.id for s in board.expiring] == [aid]
    # Only the second package lacks its receipt; the missing recipient is named by organization.
    assert [p.package_id for p in board.without_receipt] == [second.manifest.package_id]
    assert board.without_receipt[0].missing == ("Riverbend Community College",)
    assert board.without_receipt[0].file == "b.age"
    assert board.past_deadline == []
    # Beyond the destruction deadline, both packages are outstanding (no destruction certificates).
    later = dashboard(d, today=TODAY + timedelta(days=200))
    assert {p.package_id for p in later.past_deadline} == {
        first.manifest.package_id,
        second.manifest.package_id,
    }
    assert all(p.deadline == (TODAY + timedelta(days=90)).isoformat() for p in later.past_deadline)
    assert later.expiring == []  # expired by then
    json.dumps(board.to_dict())  # JSON-ready


def test_disclosure_record_names_recipient_agreement_and_receipt(pair):
    from agreements._compliance import DISCLOSURE_FIELDS, disclosure_record, write_disclosures_csv

    d, c, aid, tmp = pair
    first = seal_one(d, aid, tmp, "a", rows=4)
    seal_one(d, aid, tmp, "b", rows=2)
    deliver(d, c, first)
    rows = disclosure_record(d)
    assert len(rows) == 2
    r = rows[0]
    assert r.recipient == "Riverbend Community College" and r.rows == 4 and r.file == "a.age"
    assert r.agreement_id == aid and r.agreement_version == 1
    assert r.agreement_title.startswith("Lakeview USD")
    assert "34 CFR 99.31(a)(6)" in r.legal_basis and "dual enrollment" in r.purpose
    assert r.delivered and rows[1].delivered == ""
    assert r.disclosed_by.endswith("(Lakeview Unified School District)")
    out = tmp / "disclosures.csv"
    assert write_disclosures_csv(d, out) == 2
    with open(out, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert tuple(table[0]) == DISCLOSURE_FIELDS
    assert table[0]["recipient"] == "Riverbend Community College" and table[1]["rows"] == "2"
    assert d.audit.entries(action="audit.disclosures_exported")[-1].details == {"file": out.name, "rows": 2}
    # The recipient side made no disclosure.
    assert disclosure_record(c) == []


def test_audit_csv_neutralizes_formulas_and_report_html(pair):
    from agreements import audit_report_html, disclosure_record, verify_log, write_audit_csv

    d, _c, aid, tmp = pair
    seal_one(d, aid, tmp, "a")
    d.audit.append("test.note", details={"reason": "=HYPERLINK(\"x\")"})
    d.audit.append("=cmd", details={})
    out = tmp / "audit.csv"
    entries = d.audit.entries()
    assert write_audit_csv(d, entries, out) == len(entries)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert table[-1]["action"] == "'=cmd"  # shown as text in Excel, not run
    assert [int(r["seq"]) for r in table] == [e.seq for e in entries]
    verdict = verify_log(d)
    assert verdict.ok and d.audit.entries()[-1].action == "audit.verify"
    text = audit_report_html(d, verdict=verdict, entries=d.audit.entries(), disclosures=disclosure_record(d))
    assert "Lakeview Unified School District" in text and "Education Code 49064" in text
    assert "Riverbend Community College" in text and "verifies" in text and "&lt;" not in text[:50]


def test_verdict_sentence_names_first_bad_entry():
    from agreements import AuditVerdict, verdict_sentence

    bad = AuditVerdict(False, 6, 7, "entry 7 was altered: its contents do not match its hash")
    text = verdict_sentence(bad)
    assert "does NOT verify" in text and "first bad entry is #7" in text
    assert "verifies: all 3 entries" in verdict_sentence(AuditVerdict(True, 3, None, "", "ab" * 32))


def test_check_bundle_from_partner_and_refusals(pair):
    from agreements import AuditError, check_bundle

    d, c, _aid, tmp = pair
    out = tmp / "college-bundle.json"
    c.audit.export_bundle(out)
    check = check_bundle(d, out)
    assert check.verdict.ok and check.org == "Riverbend Community College"
    assert check.signer == "verified partner" and "verifies" in check.sentence
    assert check.entries and check.entries[0].seq == 1
    # A tampered copy: the verdict names the first bad entry.
    data = json.loads(out.read_text(encoding="utf-8"))
    data["entries"][2]["action"] = "something.else"
    bad = tmp / "tampered.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    check = check_bundle(d, bad)
    assert not check.verdict.ok and check.verdict.first_bad == 3 and "#3" in check.sentence
    with pytest.raises(AuditError, match="not a PathShare audit bundle"):
        (tmp / "x.json").write_text("{}")
        check_bundle(d, tmp / "x.json")


def test_library_entry_and_parameters_round_trip():
    from agreements import format_parameters, library_elements, library_entry, parse_parameters

    birth = library_entry("birth_date")
    assert birth.element["treatment"] == "generalize_date"
    assert birth.parameters == {"to": "year", "as": "birth_year"}
    assert birth.quasi_identifier
    sex = library_entry("sex")
    assert sex.element["type"] == "code" and sex.element["code_set"]["codes"]["F"]
    assert library_entry("school_id").element["type"] == "string"  # a code without a closed code set
    assert not library_entry("first_name").quasi_identifier
    names = {e["name"] for e in library_elements()}
    assert {"birth_date", "notes", "state_student_id"} <= names
    params = parse_parameters("edges=0, 1, 2.5; top=4; as=gpa_band")
    assert params == {"edges": [0, 1, 2.5], "top": 4, "as": "gpa_band"}
    assert parse_parameters(format_parameters(params)) == params
    from agreements import AgreementError

    with pytest.raises(AgreementError, match="name=value"):
        parse_parameters("year")


def test_check_draft_points_at_the_field(pair):
    from agreements import DraftProblem, blank_terms, check_draft, library_entry, list_partners, our_card

    d, _c, _aid, _tmp = pair
    terms = blank_terms(d)
    problem = check_draft(d, terms)
    assert problem == DraftProblem("title", "The draft is not complete: the title must be filled in.")
    terms.update(title="Study", purpose="Evaluate.", activity="Analyse.", redisclosure="No redisclosure.")
    terms["scope"] = {"cohorts": ["Grade 9"], "school_years": ["2024-25"], "description": None}
    terms["destruction"]["method"] = "Delete."
    terms["security_requirements"] = ["Encrypt."]
    terms["breach_notice_contact"] = {"name": "DPO", "email": "dpo@l.example", "phone": None}
    terms["parties"][0]["authorized_representative"] = {"name": "M", "title": "Supt", "email": "m@l.example"}
    problem = check_draft(d, terms)
    assert problem.field == "parties" and "at least 2" in problem.message  # a recipient is missing
    college = list_partners(d)[0]
    terms["parties"].append({"fingerprint": college.fingerprint, "roles": ["recipient"],
                             "authorized_representative": {"name": "J", "title": "Dean", "email": "j@r"}})
    problem = check_draft(d, terms)
    assert problem.field == "parties[1].authorized_representative.email"
    terms["parties"][1]["authorized_representative"]["email"] = "j@r.example"
    problem = check_draft(d, terms)
    assert problem is not None and problem.field == "elements"
    entry = library_entry("birth_date")
    terms["elements"] = [entry.element]
    terms["policy"]["parameters"] = {"birth_date": entry.parameters}
    terms["policy"]["quasi_identifiers"] = ["birth_date"]
    assert check_draft(d, terms) is None
    expires = terms["expires"]
    terms["expires"] = "2000-01-01"
    problem = check_draft(d, terms)
    assert problem is not None and problem.field == "expires" and "out of order" in problem.message
    terms["expires"] = "2000-13-01"
    assert check_draft(d, terms).field == "expires"
    terms["expires"] = expires
    # The field comes with the problem, not from the words of the sentence: an element whose name holds
    # "effective" used to send the person to the expiry date.
    terms["elements"][0]["name"] = "effective_grade"
    terms["elements"][0]["type"] = "code"
    terms["policy"]["parameters"] = {"effective_grade": entry.parameters}
    terms["policy"]["quasi_identifiers"] = ["effective_grade"]
    problem = check_draft(d, terms)
    assert problem is not None and problem.field == "elements[0].code_set" and "code_set" in problem.message
    assert our_card(d).fingerprint() in json.dumps(terms)


def test_status_labels_and_key_conflicts(pair, tmp_path):
    from agreements import (
        Vault,
        create_identity,
        import_card,
        key_conflicts,
        list_agreements,
        status_key,
        status_label,
    )

    d, _c, _aid, _tmp = pair
    [s] = list_agreements(d)
    assert status_label(s).startswith("expiring soon — in 30 days") and status_key(s) == "expiring"
    early = TODAY - timedelta(days=100)
    assert status_label(s, today=early) == "executed, in effect from " + s.effective.isoformat()
    assert key_conflicts(d) == []
    other = Vault.create(tmp_path / "impostor.vault", PASS)
    fake = create_identity(other, "Riverbend Community College", "college")
    other.close()
    result = import_card(d, fake)
    assert result.key_changed
    [(org, partners)] = key_conflicts(d)
    assert org == "Riverbend Community College" and len(partners) == 2
    assert partners[0].fingerprint == fake.fingerprint()  # newest first


def test_cli_audit_disclosures(pair, run_cli, monkeypatch):
    d, _c, aid, tmp = pair
    seal_one(d, aid, tmp, "a", rows=5)
    path = d.path
    d.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, err = run_cli("--vault", path, "audit", "disclosures")
    assert code == 0, err
    assert "Riverbend Community College" in out and "5 rows" in out and "no receipt yet" in out
    code, out, err = run_cli("--vault", path, "audit", "disclosures", "--json")
    assert code == 0 and json.loads(out)[0]["rows"] == 5
    code, out, err = run_cli("--vault", path, "audit", "disclosures", "--out", tmp / "d.csv")
    assert code == 0 and "Wrote 1 disclosure record to" in out and (tmp / "d.csv").is_file()
    code, out, err = run_cli("--vault", path, "audit", "disclosures", "--out", tmp / "nowhere" / "d.csv")
    assert code == 1 and "does not exist" in err and "Traceback" not in err
    code, out, err = run_cli("--vault", path, "audit", "disclosures", "--since", "not-a-date")
    assert code == 1 and "not a date" in err
    code, out, err = run_cli("--vault", path, "audit", "report", tmp / "report.pdf")
    assert code == 0, err
    assert "Wrote the audit report" in out and "verifies" in out
    assert (tmp / "report.pdf").read_bytes().startswith(b"%PDF")
    code, out, err = run_cli("--vault", path, "audit", "report", tmp / "nowhere" / "r.pdf")
    assert code == 1 and "does not exist" in err
    from agreements import Vault

    pair_reopened = Vault.open(path, PASS)  # the fixture closes it again
    monkeypatch.setattr(pair[0], "close", pair_reopened.close)


def test_verify_log_is_the_one_verify_workflow_with_a_checkpoint(tmp_path, run_cli, monkeypatch):
    """`audit verify --checkpoint` is the library's verify_log (the CLI no longer re-implements it):
    a good checkpoint verifies and is recorded, a bad one is refused and recorded as refused."""
    from agreements import AuditError, Vault, create_identity, verify_log, write_checkpoint

    path = tmp_path / "v.vault"
    with Vault.create(path, "tidal mango quarry lantern") as vault:
        create_identity(vault, "Lakeview USD", "district")
        checkpoint = tmp_path / "head.checkpoint"
        text = write_checkpoint(vault, checkpoint)  # the checkpoint workflow: written and recorded
        assert checkpoint.read_text(encoding="utf-8") == text
        assert vault.audit.entries()[-1].action == "audit.checkpoint"
        verdict = verify_log(vault, checkpoint=checkpoint)
        assert verdict.ok
        bad = tmp_path / "bad.checkpoint"
        bad.write_text("not a checkpoint", encoding="utf-8")
        with pytest.raises(AuditError, match=r"The checkpoint file bad\.checkpoint is malformed"):
            verify_log(vault, checkpoint=bad)
        actions = [e.action for e in vault.audit.entries()][-2:]
        assert actions == ["audit.verify", "audit.verify.refused"]
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "tidal mango quarry lantern")
    code, out, _ = run_cli("--vault", path, "audit", "verify", "--checkpoint", checkpoint)
    assert code == 0 and "The audit log verifies" in out
