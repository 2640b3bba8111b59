"""`pathshare outcomes` and `pathshare metrics` on the demo's opened package, in the college's vault
(agreements/_outcomes.py): the files, the vault's record, the audit entry, and the refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from agreements import Vault, list_releases, release_outcomes, run_demo
from deid import CheckFailed, InputError

PASS = "outcomes-test-passphrase-4711"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("outcomes") / "demo"
    result = run_demo(folder, rows=900, passphrase=PASS, say=lambda _line: None)
    assert result.ok and result.outcomes is not None
    return folder


@pytest.fixture
def cli(run_cli, demo, monkeypatch):
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)

    def _run(*args: str) -> tuple[int, str, str]:
        return run_cli("--vault", demo / "college.vault", *args)

    return _run


def test_the_demo_releases_one_protected_table(demo: Path):
    out = demo / "outcomes"
    assert {p.name for p in out.iterdir()} == {
        "outcomes.xlsx", "outcomes.csv", "datapackage.json", "outcomes.html", "outcomes.pdf", "release.json",
    }  # fmt: skip
    from openpyxl import load_workbook

    wb = load_workbook(out / "outcomes.xlsx")
    assert wb.sheetnames == ["Notes", "Dual-enrollment participation"]
    notes = {r[0]: r[1] for r in wb["Notes"].iter_rows(values_only=True) if r and r[0]}
    assert str(notes["Hidden counts chosen"]).startswith(("by the optimizer", "by the simple rule"))
    cells = [c for row in wb["Dual-enrollment participation"].iter_rows(values_only=True) for c in row]
    release = json.loads((out / "release.json").read_text())
    hidden = sum(r[k] is None for t in release["tables"] for r in t["rows"] for k in ("cohort", "outcome"))
    assert hidden > 0  # 900 synthetic students: some group is small
    assert "*" in cells and any(isinstance(c, str) and c.startswith("* Hidden") for c in cells)
    with (out / "outcomes.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    descriptor = json.loads((out / "datapackage.json").read_text())
    fields = [f["name"] for f in descriptor["resources"][0]["schema"]["fields"]]
    assert fields == list(rows[0]) and descriptor["resources"][0]["schema"]["missingValues"] == ["*"]
    assert sum(r[k] == "*" for r in rows for k in ("cohort", "outcome")) == hidden
    page = (out / "outcomes.html").read_text()
    assert page.count("<img") == len(release["tables"]) and "Hidden to protect small groups" in page
    import re

    pdf = (out / "outcomes.pdf").read_bytes()  # a page of notes, then a page per table
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1 + len(release["tables"])
    with Vault.open(demo / "college.vault", PASS) as vault:
        (entry,) = vault.audit.entries(action="outcomes.released")
        stored = list_releases(vault)
    assert entry.details["disclosure"] == "aggregate" and entry.details["metrics"] == ["dual_enrollment"]
    # which way the hidden cells were chosen (and why, when the optimizer's answer was not kept)
    assert entry.details["protection_method"] in ("optimal", "mixed", "heuristic, then pruned")
    assert isinstance(entry.details["protection_note"], str)
    assert entry.agreement == release["agreement_id"]
    # The audit entry says what was released, never a count.
    assert not any(k in entry.details for k in ("cohort", "outcome", "rows", "tables_data"))
    assert [r.release_id for r in stored][:1] == [release["release_id"]]
    assert stored[0].document["tables"] == release["tables"]


def test_metrics_lists_the_catalog_and_checks_the_agreement(cli, demo: Path):
    code, out, err = cli("metrics")
    assert code == 0 and "dual_enrollment: Dual-enrollment participation" in out
    agreement = json.loads((demo / "inbox" / "manifest.json").read_text())["agreement_id"]
    code, out, err = cli("metrics", "--agreement", agreement)
    assert code == 0, err
    assert "dual_enrollment: Dual-enrollment participation: can be computed" in out
    assert "college_enrollment" in out and "does not share school_year" in out


def test_a_second_release_of_the_same_cohort_is_kept_and_hides_alike(cli, demo: Path):
    code, _, err = cli("outcomes", demo / "inbox", "--metric", "dual_enrollment", "--by", "sex",
                         "--by", "iep", "--out", demo / "second")  # fmt: skip
    assert code == 0, err
    first = json.loads((demo / "outcomes" / "release.json").read_text())
    second = json.loads((demo / "second" / "release.json").read_text())
    sex = [next(t for t in r["tables"] if t["by"] == "sex") for r in (first, second)]
    # What the first release hid in its sex table stays hidden in the second.
    for a, b in zip(sex[0]["rows"], sex[1]["rows"], strict=True):
        assert (a["outcome"] is None) <= (b["outcome"] is None)
        assert (a["cohort"] is None) <= (b["cohort"] is None)
    with Vault.open(demo / "college.vault", PASS) as vault:
        assert len(list_releases(vault)) >= 2


@pytest.mark.parametrize(
    "args, words",
    [
        (["--metric", "hs_graduation"], "needs high-school graduate"),
        (["--metric", "dual_enrollment", "--by", "gpa"], "cannot be broken down by gpa"),
        (["--metric", "no_such_metric"], "has no metric 'no_such_metric'"),
        (["--metric", "dual_enrollment", "--by", "sex", "--protection", "99999"], "released safely"),
        (["--metric", "dual_enrollment", "--protection", "3"], "cannot be less than"),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(cli, demo: Path, args, words):
    out = demo / "refused"
    code, _, err = cli("outcomes", demo / "inbox", *args, "--out", out)
    assert code == 1 and words in err and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) <= 2 and lines[0].startswith("pathshare: ") and words in lines[0]
    assert all(line.startswith("pathshare: hint: ") for line in lines[1:])  # what to do, on its own line
    assert not out.exists()
    # nor the private folder the packages were read, linked and counted in
    assert not [p for p in demo.iterdir() if p.name.startswith((".outcomes-", ".pathshare-spill-"))]


def test_a_folder_that_is_not_an_opened_package_is_refused(cli, demo: Path, tmp_path: Path):
    code, _, err = cli("outcomes", tmp_path, "--metric", "dual_enrollment", "--out", tmp_path / "x")
    assert code == 1 and "is not an opened package" in err


def test_packages_of_different_agreements_are_refused(demo: Path, tmp_path: Path, monkeypatch):
    import agreements._outcomes as workflow

    real = workflow.get_agreement
    calls = []

    class Other:
        id = "00000000-0000-4000-8000-000000000000"
        title = "Another agreement"

    def second_is_other(vault, aid):
        calls.append(aid)
        return real(vault, aid) if len(calls) == 1 else Other()

    monkeypatch.setattr(workflow, "get_agreement", second_is_other)
    vault = Vault.open(demo / "college.vault", PASS)
    with vault, pytest.raises(InputError, match="different agreements"):
        release_outcomes(vault, [demo / "inbox", demo / "inbox"], ["dual_enrollment"], [], tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_an_infeasible_release_records_nothing(demo: Path, tmp_path: Path):
    with Vault.open(demo / "college.vault", PASS) as vault:
        before = len(list_releases(vault))
        n_audit = len(vault.audit.entries(action="outcomes.released"))
        with pytest.raises(CheckFailed):
            release_outcomes(vault, [demo / "inbox"], ["dual_enrollment"], ["sex", "race"],
                             tmp_path / "x", protection=50_000)  # fmt: skip
        assert len(list_releases(vault)) == before
        assert len(vault.audit.entries(action="outcomes.released")) == n_audit
    assert list(tmp_path.iterdir()) == []


def test_packages_are_linked_on_their_link_tokens_before_counting():
    """Two packages: the district's (grade, school year) and the college's (first term, units), each
    with link tokens only. The college's outcomes reach the district's students they link to, and
    college-going is counted on the district's seniors."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    from linked_people import people_tokens

    from agreements._outcomes import link_frames
    from deid import compute_tables

    rng = np.random.default_rng(5)
    n = 40
    tokens = people_tokens(n)
    district = pd.DataFrame({
        "link_tokens": tokens,
        "grade_level": ["12"] * n,
        "school_year": ["2025-26"] * n,
        "school_id": rng.choice(["A", "B"], n),
    })  # fmt: skip
    went = list(range(0, n, 2))  # every other student enrolled at the college in fall 2026
    college = pd.DataFrame({
        "link_tokens": [tokens[i] for i in reversed(went)],  # another order: only the tokens link them
        "term": ["2026FA"] * len(went),
        "units_earned": ["15"] * len(went),
    })  # fmt: skip
    sides = [pa.Table.from_pandas(t, preserve_index=False) for t in (district, college)]
    merged, linked = link_frames(sides, ["district", "college"], {})  # on DuckDB, as `link` runs
    assert linked == len(went)
    assert merged["term"].notna().tolist() == [i in went for i in range(n)]
    # the counting needs no tokens, and each column is held as categories (a code per student)
    assert "link_tokens" not in merged.columns
    assert all(isinstance(merged[c].dtype, pd.CategoricalDtype) for c in merged.columns)
    # an element both packages hold: the first package's value wins, the other fills its blanks
    gaps = district.assign(school_id=["" if i % 4 == 0 else "A" for i in range(n)])
    linked_college = college.assign(school_id=["C"] * len(went))
    both = [pa.Table.from_pandas(t, preserve_index=False) for t in (gaps, linked_college)]
    filled, _ = link_frames(both, ["district", "college"], {})
    assert filled["school_id"].astype(str).tolist() == [
        ("C" if i in went else "") if i % 4 == 0 else "A" for i in range(n)
    ]
    # the in-memory engine links the same rows
    again, _ = link_frames(sides, ["district", "college"], {}, engine="memory")
    pd.testing.assert_frame_equal(again, merged)
    result = compute_tables(merged, ["college_enrollment", "units_12"], ["school_id"])
    overall = next(t for t in result.tables if t.metric == "college_enrollment" and not t.by)
    assert (overall.cohort[0], overall.outcome[0]) == (n, len(went))
    units = next(t for t in result.tables if t.metric == "units_12" and not t.by)
    assert (units.cohort[0], units.outcome[0]) == (len(went), len(went))


def test_the_codebook_defines_the_measures_the_purpose_names(demo: Path):
    from agreements import agreement_codebook, get_agreement

    agreement_id = json.loads((demo / "inbox" / "manifest.json").read_text())["agreement_id"]
    with Vault.open(demo / "college.vault", PASS) as vault:
        book = agreement_codebook(get_agreement(vault, agreement_id))
    lines = [line for line in book.about if line.startswith("Outcome measure:")]
    assert any(line.startswith("Outcome measure: Dual-enrollment participation. Of the") for line in lines)
    assert any("College enrollment within one year" in line and "needs school_year" in line for line in lines)


def test_tables_sealed_back_to_the_district_open_and_verify(cli, run_cli, demo: Path, tmp_path: Path):
    code, out, err = cli("tables", "seal", demo / "outcomes", "--out", tmp_path / "tables.age")
    assert code == 0, err
    assert "Lakeview Unified School District" in out
    code, out, err = run_cli("--vault", demo / "district.vault", "tables", "open", tmp_path / "tables.age",
                             "--out", tmp_path / "got")  # fmt: skip
    assert code == 0, err
    got = tmp_path / "got" / "data"
    assert (got / "outcomes.xlsx").is_file()
    sent = json.loads((demo / "outcomes" / "release.json").read_text())
    assert json.loads((got / "release.json").read_text()) == sent
    with Vault.open(demo / "district.vault", PASS) as vault:
        received = vault.audit.entries(action="outcomes.received")
    assert [e.details["disclosure"] for e in received] == ["aggregate"]
    with Vault.open(demo / "college.vault", PASS) as vault:
        sealed = vault.audit.entries(action="outcomes.sealed")[-1]
    assert sealed.details["disclosure"] == "aggregate"


def test_changed_tables_are_not_sealed(cli, demo: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "changed"
    shutil.copytree(demo / "outcomes", copy)
    doc = json.loads((copy / "release.json").read_text())
    row = next(r for t in doc["tables"] for r in t["rows"] if r["outcome"] is None)
    row["outcome"] = 3  # shows a hidden count
    (copy / "release.json").write_text(json.dumps(doc))
    code, _, err = cli("tables", "seal", copy, "--out", tmp_path / "t.age")
    assert code == 1 and "not a release this vault made" in err and not (tmp_path / "t.age").exists()


def test_the_receiver_refuses_tables_that_give_a_small_count_away(demo: Path, tmp_path: Path):
    """A partner's tool that skipped the protection: its tables, sealed properly, are opened, checked
    from what they publish, and refused (nothing kept). The check performs the attack: unhiding the
    complementary cell lets the hidden one be read by subtraction."""
    import shutil

    from agreements import get_agreement, open_outcomes
    from agreements._identity import our_card, signing_key
    from agreements._seal import seal
    from agreements.errors import PackageRejected
    from deid import verify_published

    doc = json.loads((demo / "outcomes" / "release.json").read_text())
    table = next(t for t in doc["tables"] if any(r["outcome"] is None for r in t["rows"]))
    hidden = [r for r in table["rows"] if r["outcome"] is None]
    assert len(hidden) >= 2  # a hidden count never stands alone
    assert verify_published(doc["tables"], 11) == []
    truth = {}
    with Vault.open(demo / "college.vault", PASS) as vault:  # the releaser's own counts
        from agreements._outcomes import load_opened

        data = load_opened(vault, [demo / "inbox"])
    col = data.frame[table["by"]].astype("string").fillna("(not recorded)")
    for r in hidden:
        truth[r["group"]] = int(((col == r["group"]) & (data.frame["dual_enrollment"] == "Y")).sum())
    for r in hidden[1:]:  # the careless tool shows the complementary cells
        r["outcome"] = truth[r["group"]]
    total = table["rows"][-1]["outcome"]
    shown = sum(r["outcome"] for r in table["rows"][:-1] if r["outcome"] is not None)
    assert total - shown == truth[hidden[0]["group"]]  # the attack: the hidden count, by subtraction
    assert verify_published(doc["tables"], 11) != []
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "release.json").write_text(json.dumps(doc))
    with Vault.open(demo / "college.vault", PASS) as vault:
        agreement = get_agreement(vault, doc["agreement_id"])
        district = next(p for p in agreement.all_parties() if p.fingerprint != our_card(vault).fingerprint())
        seal([("release.json", bad / "release.json")], {"aggregate": True}, agreement_id=agreement.id,
             agreement_hash=agreement.sha256, sender_key=signing_key(vault),
             sender_fingerprint=our_card(vault).fingerprint(), recipients=[district.age_recipient],
             audit_head=vault.audit.head(), out=tmp_path / "bad.age")  # fmt: skip
    shutil.rmtree(bad)
    with Vault.open(demo / "district.vault", PASS) as vault, pytest.raises(PackageRejected, match="not safe"):
        open_outcomes(vault, tmp_path / "bad.age", tmp_path / "opened")
    assert not (tmp_path / "opened").exists() or not any((tmp_path / "opened").iterdir())


def test_a_release_over_a_shifted_cohort_is_refused_with_the_cell_named(demo: Path, tmp_path: Path):
    """The issue's differencing test, end to end on DuckDB: the demo's package again with one more
    student (a copy of a student in grades 9-12 under a new record code). Released by sex, its table
    minus the demo's earlier one pins that student down: refused, the cell named, nothing written or
    recorded, no private folder left."""
    import shutil

    import pandas as pd
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from deid import read_table

    shifted = tmp_path / "shifted"
    shutil.copytree(demo / "inbox", shifted)
    manifest = json.loads((shifted / "manifest.json").read_text())
    data = next(shifted / "data" / f["name"] for f in manifest["files"] if f["name"].endswith(".csv")
                and (shifted / "data" / f["name"]).is_file() and "codebook" not in f["name"])  # fmt: skip
    frame = read_table(data).to_pandas()
    keys = [c for c in frame.columns if frame[c].nunique() == len(frame)]
    assert keys  # the record code (and the link tokens) tell students apart
    row = frame[frame["grade_level"].isin(["09", "10", "11", "12"])].iloc[[0]].copy()
    for c in keys:
        row[c] = "NEW" + str(row[c].iloc[0])
    grown = pd.concat([frame, row], ignore_index=True)
    pcsv.write_csv(pa.Table.from_pandas(grown, preserve_index=False), data)
    with Vault.open(demo / "college.vault", PASS) as vault:
        before = len(list_releases(vault))
        release_outcomes(vault, [demo / "inbox"], ["dual_enrollment"], ["sex"], tmp_path / "first")
        with pytest.raises(CheckFailed, match="earlier release") as err:
            release_outcomes(vault, [shifted], ["dual_enrollment"], ["sex"], tmp_path / "second")
        assert "students only the new cohort has, sex = " in str(err.value)
        assert len(list_releases(vault)) == before + 1
    assert not (tmp_path / "second").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".outcomes-", ".pathshare-spill-"))]
