"""The roster (deid/_roster.py): every name, ID, e-mail and phone column of the input feeds the free-text
scanner on every path, released, dropped or never mapped; and the demo's released notes hold no name of
the row's own student or guardian (checked row by row against the synthetic truth)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest

from agreements import Vault, run_demo
from agreements._prepare import _release_secret, deidentify_for_agreement
from deid import Policy, Roster, TextScanner, deidentify, roster_columns
from deid.errors import CheckFailed, PolicyError

PASS = "correct horse battery staple 42"
DEMO_ROWS = 2000
DEMO_SEED = 7
# truth span sources (deid.synth.SPAN_SOURCES) that are the row's own student or guardian
OWN_NAME_SOURCES = {"student_first_name", "student_full_name", "student_last_name", "guardian_name"}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:  # released files start with a BOM
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("roster-demo") / "work"
    result = run_demo(folder, rows=DEMO_ROWS, seed=DEMO_SEED, passphrase=PASS, say=lambda _line: None)
    assert result.ok
    return folder


def _agreement_id(vault: Vault) -> str:
    return str(vault.db.execute("SELECT id FROM agreements LIMIT 1").fetchone()[0])


def test_demo_released_notes_hold_no_name_of_the_rows_own_student_or_guardian(demo: Path):
    from agreements import get_agreement
    from deid import normalize_ids
    from deid.synth import SPAN_SOURCES, generate

    assert set(SPAN_SOURCES) >= OWN_NAME_SOURCES

    # The synthetic truth of the population the demo exported (same rows, same seed).
    synth = generate("k12", DEMO_ROWS, seed=DEMO_SEED)
    people = synth.table.to_pylist()
    truth = synth.truth
    notes_col = [p["Counselor Notes"] or "" for p in people]
    row_of_ssid = {p["SSID"]: i for i, p in enumerate(people)}
    own_spans: dict[int, list[str]] = {}
    for r, s, e, src in zip(
        truth.spans["row"], truth.spans["start"], truth.spans["end"], truth.spans["source"], strict=True
    ):
        if str(src) in OWN_NAME_SOURCES:
            own_spans.setdefault(int(r), []).append(notes_col[int(r)][int(s) : int(e)])

    # Released rows are matched to the truth through the district's crosswalk (student_code → SSID),
    # not by position: the release order need not be the extract's.
    manifest = json.loads((demo / "inbox" / "manifest.json").read_text(encoding="utf-8"))
    data_file = demo / "inbox" / "data" / manifest["files"][0]["name"]  # the analyst's kit follows it
    released = _rows(data_file)
    extract = _rows(demo / "district-extract.csv")
    district = Vault.open(demo / "district.vault", PASS)
    try:
        agreement = get_agreement(district, _agreement_id(district))
        _secret, crosswalk, _new = _release_secret(district, agreement)
    finally:
        district.close()
    ssids = [r["SSID"] for r in extract]
    codes = crosswalk.codes_for("student_code", normalize_ids(pa.array(ssids, pa.string()))).to_pylist()
    assert crosswalk.new_codes == 0  # every extract row already had its code: the lookup is the release's
    ssid_of_code = dict(zip(codes, ssids, strict=True))
    assert len(ssid_of_code) == len(released)

    checked_spans = 0
    leaks: list[tuple[int, str]] = []
    for out_row, row in enumerate(released, start=1):
        person = row_of_ssid[ssid_of_code[row["student_code"]]]
        note = row["notes"]
        p = people[person]
        # every planted mention of the row's own student or guardian is gone …
        for text in own_spans.get(person, []):
            checked_spans += 1
            if text in note:
                leaks.append((out_row, "planted span"))
        # … and so is every word of their names, however the note wrote it
        for column in ("First Name", "Middle Name", "Last Name", "Guardian Name"):
            for token in (p[column] or "").split():
                if len(token) > 2 and re.search(rf"(?<!\w){re.escape(token)}(?!\w)", note):
                    leaks.append((out_row, column))
    # the check is not vacuous: the demo's notes mention hundreds of own students and guardians
    assert checked_spans > 500
    assert not leaks, f"{len(leaks)} released rows still name their own student or guardian: {leaks[:5]}"


def test_agreement_paths_feed_dropped_and_unmapped_columns_and_say_so(demo: Path, tmp_path: Path):
    district = Vault.open(demo / "district.vault", PASS)
    try:
        agreement_id = _agreement_id(district)
        report = deidentify_for_agreement(
            district, demo / "district-extract.csv", agreement_id, tmp_path / "out.csv"
        )
        audit = [e for e in district.audit.entries() if e.action in ("package.prepared", "deid.agreement")]
    finally:
        district.close()
    # "Guardian Name", "Guardian Email", "Phone" are not elements of the agreement: never mapped
    assert report.roster_columns["names"] == ["First Name", "Middle Name", "Last Name", "Guardian Name"]
    assert {"Guardian Email", "Student Email"} <= set(report.roster_columns["emails"])
    assert "Phone" in report.roster_columns["phones"]
    assert {"SSID", "Local ID"} <= set(report.roster_columns["ids"])
    assert "Guardian Name" in report.summary()
    # both the prepare of the demo and this run audit which columns fed the roster (headers only)
    assert {e.action for e in audit} == {"package.prepared", "deid.agreement"}
    for entry in audit:
        assert "Guardian Name" in entry.details["roster_columns"]["names"]
    # what leaves (the sealed report) does not describe the sender's extract beyond what it releases
    shipped = json.loads((demo / "inbox" / "report.json").read_text(encoding="utf-8"))
    assert "roster_columns" not in shipped
    # per-kind counts travel (counts only): what was redacted, and that nothing was found afterwards
    assert shipped["redacted_by_kind"]["PERSON"] > 500 and shipped["redacted_by_kind"]["PHONE_NUMBER"] > 0
    assert shipped["residual_by_kind"] == {} and shipped["text_unchecked"] == []
    assert report.redacted_by_kind["PERSON"] > 500 and report.residual_by_kind == {}
    assert "Guardian Name" not in json.dumps(shipped)


def test_roster_columns_take_every_person_id_and_contact_column():
    n = 40
    first = ["Maria", "James", "Linh", "Arman", "Priya", "Jose", "Emily", "Omar"] * 5
    last = ["Lopez", "Smith", "Nguyen", "Petrosyan", "Singh", "Garcia", "Chen", "Haddad"] * 5
    table = pa.table(
        {
            "Student First": first,
            "Student Last": last,
            "Parent/Guardian": [f"{a} {b}" for a, b in zip(reversed(first), last, strict=True)],
            "Emergency Contact Name": [f"{b}, {a}" for a, b in zip(first, reversed(last), strict=True)],
            "Teacher Name": [f"Ms. {b}" for b in reversed(last)],
            "Counselor": [f"Mr. {b}" for b in last],
            "Perm ID": [f"{100000 + i}" for i in range(n)],
            "SSID": [f"{1234500000 + i}" for i in range(n)],
            "Parent 2 Email": [f"p{i}@example.org" for i in range(n)],
            "Home Phone": [f"(626) 555-{1000 + i}" for i in range(n)],
            "School Name": ["Lincoln High"] * n,
            "GPA": ["3.1"] * n,
            "Notes": ["Met with the student about the college application essay."] * n,
        }
    )
    cols = roster_columns(table)
    assert set(cols.names) == {
        "Student First",
        "Student Last",
        "Parent/Guardian",
        "Emergency Contact Name",
        "Teacher Name",
        "Counselor",
    }
    assert set(cols.ids) == {"Perm ID", "SSID"}
    assert cols.emails == ("Parent 2 Email",)
    assert cols.phones == ("Home Phone",)
    assert "School Name" not in cols.all() and "Notes" not in cols.all() and "GPA" not in cols.all()


def test_policy_path_roster_holds_released_and_unlisted_columns():
    table = pa.table(
        {
            "Local ID": ["A100234", "A100235"],
            "Guardian Name": ["Dolores Umbridge-Fenwick", "Xiomara Castellanos"],
            "Teacher Name": ["Ms. Okonkwo", "Mr. Vasquez-Reyes"],
            "Notes": [
                "Called Dolores, left message for Castellanos; Okonkwo says A100235 improved.",
                "Xiomara asked Ms. Okonkwo about Umbridge-Fenwick.",
            ],
        }
    )
    policy = Policy.from_dict(
        {
            "pathshare_policy": 1,
            "k": 1,
            "drop_unlisted": True,
            "columns": {"Notes": {"treatment": "redact_text"}},
        }
    )
    out, report = deidentify(table, policy)
    notes = " ".join(out.column("Notes").to_pylist())
    for word in ("Dolores", "Castellanos", "Okonkwo", "Xiomara", "Umbridge", "A100235"):
        assert word not in notes
    assert report.roster_columns["names"] == ["Guardian Name", "Teacher Name"]
    assert report.roster_columns["ids"] == ["Local ID"]


def test_a_roster_from_other_rows_is_refused():
    table = pa.table({"Notes": ["nothing here"] * 3})
    other = Roster.from_table(pa.table({"First Name": ["Maria", "Jose"], "Last Name": ["Lopez", "Cruz"]}))
    policy = Policy.from_dict(
        {"pathshare_policy": 1, "k": 1, "columns": {"Notes": {"treatment": "redact_text"}}}
    )
    with pytest.raises(PolicyError, match="roster has 2 rows but the table has 3"):
        deidentify(table, policy, roster=other)


def test_roster_emails_and_phones_are_caught_whatever_their_shape():
    notes = pa.array(
        [
            "Mom wrote from sethh545@lakeviewusd.example about the form.",
            "Dad's number is 5621840226 (cell).",
            "Unrelated: nobody@lakeviewusd.example",
        ]
    )
    plain = TextScanner(common_names=False)
    roster = TextScanner(
        common_names=False, roster_emails=["SethH545@LakeviewUSD.example"], roster_phones=["(562) 184-0226"]
    )
    before = plain.redact(notes)[0].to_pylist()
    after = roster.redact(notes)[0].to_pylist()
    # an internal domain has no public top-level domain: only the roster knows it is an address
    assert "sethh545@lakeviewusd.example" in before[0]
    assert after[0] == "Mom wrote from <EMAIL_ADDRESS> about the form."
    assert after[1] == "Dad's number is <PHONE_NUMBER> (cell)."
    assert after[2] == notes[2].as_py()  # an address not on the roster stays a pattern question


# --- the residual gate and the report's per-kind counts ------------------------------------------

NOTES = [
    "Spoke with Dolores Castellanos at 626-555-0142 about Xiomara.",
    "Xiomara emailed xiomara.castellanos@gmail.com; SSID 1234567890 on file.",
    "Nothing to add.",
]
COMMENTS = [
    "Dolores Castellanos will pick her up.",
    "Write to xiomara.castellanos@gmail.com.",
    "Fine.",
]


def _two_text_columns() -> pa.Table:
    return pa.table(
        {
            "SSID": ["1234567890", "1234567891", "1234567892"],
            "First Name": ["Xiomara", "Bartholomew", "Guadalupe"],
            "Last Name": ["Castellanos", "Okonkwo", "Vasquez"],
            "Guardian Name": ["Dolores Castellanos", "Ifeoma Okonkwo", "Rafael Vasquez"],
            "Notes": NOTES,
            "Comments": COMMENTS,
        }
    )


def _notes_redacted_comments_kept() -> Policy:
    return Policy.from_dict(
        {
            "pathshare_policy": 1,
            "k": 1,
            "drop_unlisted": True,
            "columns": {
                "Notes": {"treatment": "redact_text"},
                "Comments": {"treatment": "keep"},
            },
        }
    )


def test_report_counts_what_was_redacted_and_what_was_found_afterwards_per_kind():
    table = _two_text_columns()
    out, report = deidentify(table, _notes_redacted_comments_kept())
    assert out.column("Notes").to_pylist()[0] == "Spoke with <PERSON> at <PHONE_NUMBER> about <PERSON>."
    assert report.redacted_by_kind == {
        "PERSON": 3,
        "PHONE_NUMBER": 1,
        "EMAIL_ADDRESS": 1,
        "STUDENT_ID": 1,
    }
    (notes_col,) = [c for c in report.columns if c.name == "Notes"]
    assert notes_col.redacted_by_kind == report.redacted_by_kind
    # the kept free-text column still holds a name and an address: found, by kind
    assert report.residual_by_kind == {"PERSON": 1, "EMAIL_ADDRESS": 1}
    assert {(f.kind, f.column, f.row) for f in report.residual_findings} == {
        ("PERSON", "Comments", 1),
        ("EMAIL_ADDRESS", "Comments", 2),
    }
    summary = report.summary()
    assert (
        "Redacted from free text: 3 names, 1 e-mail address, 1 phone number, 1 student ID." in summary
    )
    assert "remain in the output (1 e-mail address, 1 name) in column Comments" in summary
    assert not report.clean
    # counts, kinds, columns and rows only: no text of a cell in the report
    text = report.to_json()
    for secret in ("Castellanos", "Xiomara", "gmail", "626-555", "1234567890"):
        assert secret not in text


def test_gate_names_each_kind_column_and_rows_never_the_text():
    from agreements._prepare import _gate

    table = pa.table(
        {
            "First Name": ["Xiomara"] * 12 + ["Bartholomew"],
            "Last Name": ["Castellanos"] * 12 + ["Okonkwo"],
            "Comments": ["Xiomara Castellanos called."] * 12 + ["Write to bart@gmail.com today."],
        }
    )
    policy = Policy.from_dict(
        {"pathshare_policy": 1, "k": 1, "drop_unlisted": True, "columns": {"Comments": {"treatment": "keep"}}}
    )
    _out, report = deidentify(table, policy)
    agreement = SimpleNamespace(id="a1", terms=SimpleNamespace(policy=SimpleNamespace(k=1)))
    with pytest.raises(CheckFailed) as refused:
        _gate(agreement, policy, ["Comments"], report)
    message = str(refused.value)
    assert message.startswith("The residual scan found 13 piece(s) of identifying text in the output: ")
    assert "PERSON in column Comments, data rows 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2 more" in message
    assert "EMAIL_ADDRESS in column Comments, data row 13 of the extract" in message
    assert message.endswith("nothing was sealed.") and "\n" not in message
    for secret in ("Xiomara", "Castellanos", "bart", "gmail"):
        assert secret not in message


def test_gate_refuses_free_text_it_cannot_check_for_the_rows_own_names():
    from agreements._prepare import _gate

    table = pa.table(
        {
            "Local ID": ["A100234", "A100235", "A100236"],
            "Notes": ["Hope met with me today.", "Will follow up.", "Grace asked about the form."],
        }
    )
    policy = Policy.from_dict(
        {
            "pathshare_policy": 1,
            "k": 1,
            "drop_unlisted": True,
            "columns": {"Notes": {"treatment": "redact_text"}},
        }
    )
    _out, report = deidentify(table, policy)
    assert report.text_unchecked == ["Notes"] and not report.clean
    assert "could not be checked for the students' and guardians' own names" in report.summary()
    agreement = SimpleNamespace(id="a1", terms=SimpleNamespace(policy=SimpleNamespace(k=1)))
    with pytest.raises(CheckFailed, match="cannot be checked for the students' own names"):
        _gate(agreement, policy, ["Notes"], report)
    # with the name column in the extract (dropped all the same) the same notes can be checked
    named = table.append_column("First Name", pa.array(["Hope", "Maria", "Grace"]))
    out, report = deidentify(named, policy)
    assert report.text_unchecked == []
    assert out.column("Notes").to_pylist() == ["<PERSON> met with me today.", "Will follow up.",
                                               "<PERSON> asked about the form."]  # fmt: skip
    _gate(agreement, policy, ["Notes"], report)
