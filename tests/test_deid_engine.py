"""End to end: `pathshare deid` on synthetic and hand-made extracts, bad input, cancel, secrets."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from deid import Cancelled, InputError, deidentify_file, load_policy, read_table

DONE_WHEN_POLICY = {
    "pathshare_policy": 1,
    "k": 5,
    "drop_unlisted": True,
    "columns": {
        "SSID": {"treatment": "record_code", "as": "student_code"},
        "Local ID": {"treatment": "token", "as": "local_token"},
        "First Name": {"treatment": "drop"},
        "Last Name": {"treatment": "drop"},
        "Birth Date": {
            "treatment": "generalize_date",
            "to": "year",
            "as": "birth_year",
            "quasi_identifier": True,
        },
        "Gender": {"treatment": "keep", "quasi_identifier": True},
        "ZIP": {"treatment": "zip3", "as": "zip3", "quasi_identifier": True},
        "Grade": {"treatment": "keep", "quasi_identifier": True},
        "School Code": {"treatment": "keep"},
        "Enroll Date": {"treatment": "date_shift", "by": "SSID", "max_days": 20},
        "EL Status": {"treatment": "recode_rare", "min_count": 5},
        "GPA": {"treatment": "bucket", "edges": [0, 1, 2, 3, 4.5]},
        "Credits Earned": {"treatment": "bucket", "edges": [0, 30, 60, 90, 120], "top": 120},
        "Counselor Notes": {"treatment": "redact_text"},
    },
}
SSN_RE = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE_RE = re.compile(r"\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b")


def _in_input_order(released: pd.DataFrame, original: pa.Table, secret_file: Path) -> pd.DataFrame:
    """The released rows (record-coded SSIDs, as ``student_code``) in the input's order, from the
    crosswalk kept beside ``secret_file``; the index keeps each row's place in the released file."""
    from deid import crosswalk_path, load_crosswalk, load_secret, normalize_ids

    cw = load_crosswalk(crosswalk_path(secret_file), load_secret(secret_file, create=False)[0])
    codes = cw.codes_for("student_code", normalize_ids(original.column("SSID")).combine_chunks())
    place = {code: i for i, code in enumerate(released["student_code"].tolist())}
    return released.iloc[[place[c] for c in codes.to_pylist()]]


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".partial")]


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    """`pathshare synth --kind k12 --messy` output and the generator's truth (planted PII spans)."""
    from deid.synth import load_truth
    from desktop.cli import main

    folder = tmp_path_factory.mktemp("synth")
    path, truth = folder / "district.csv", folder / "truth.json"
    args = ["synth", "--kind", "k12", "--rows", "3000", "--seed", "11", "--messy", "--out", path]
    assert main([str(a) for a in [*args, "--truth", truth]]) == 0
    return path, load_truth(truth)


def test_done_when_messy_synth_to_deid(tmp_path, messy, run_cli):
    src, truth = messy
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(DONE_WHEN_POLICY))
    out, rep = tmp_path / "out.csv", tmp_path / "report.json"
    code, stdout, err = run_cli(
        "deid",
        src,
        "--policy",
        policy,
        "--out",
        out,
        "--secret-file",
        tmp_path / "secret.key",
        "--report",
        rep,
    )
    assert code == 0, err
    assert "created a new secret file" in err
    assert "columns kept" in stdout and "k = 5" in stdout

    original = read_table(src, duplicates="rename")
    released = pd.read_csv(out, dtype=str, keep_default_na=False, na_values=[""])
    assert len(released) == original.num_rows == 3000
    # The released rows are in a random order; the crosswalk (the sender's own) puts them back in the
    # extract's order for the row-by-row checks below.
    result = _in_input_order(released, original, tmp_path / "secret.key")
    assert result.index.tolist() != released.index.tolist()

    # No planted SSN, e-mail, phone, student ID or roster name survives in its row's notes.
    notes_in = original.column("Counselor Notes").to_pylist()
    notes_out = result["Counselor Notes"].fillna("").tolist()
    spans = truth.spans
    assert len(spans["row"]) > 1000
    kinds_checked = set()
    survived = []
    for i in range(len(spans["row"])):
        row = int(spans["row"][i])
        text = truth.span_text(notes_in, i)
        kinds_checked.add(str(spans["kind"][i]))
        if text in notes_out[row]:
            survived.append((row, str(spans["kind"][i])))
    assert survived == [], f"{len(survived)} planted spans survived (row, kind): {survived[:10]}"
    assert {"PERSON", "PHONE_NUMBER", "EMAIL_ADDRESS", "US_SSN"} <= kinds_checked
    whole = out.read_text(encoding="utf-8")
    assert not SSN_RE.search(whole) and not EMAIL_RE.search(whole) and not PHONE_RE.search(whole)
    # roster names: no student's full name appears anywhere in the output
    firsts = original.column("First Name").to_pylist()
    lasts = original.column("Last Name").to_pylist()
    for f, la, note in zip(firsts, lasts, notes_out, strict=True):
        assert f"{f} {la}" not in note
    # IDs only as codes: no SSID or Local ID value anywhere in the output
    ids = set(original.column("SSID").to_pylist()) | set(original.column("Local ID").to_pylist())
    cells = set(result.to_numpy().ravel().tolist())
    assert not ids & cells
    assert result["student_code"].str.fullmatch(r"[0-9A-Z]{12}").all()

    # Leading zeros of kept codes intact.
    assert result["School Code"].tolist() == original.column("School Code").to_pylist()
    assert result["School Code"].str.len().eq(7).all()
    assert (result["School Code"].str.startswith("0")).any() or (result["Grade"] == "09").any()
    assert set(result["Grade"].dropna()) <= {
        "KN",
        "01",
        "02",
        "03",
        "04",
        "05",
        "06",
        "07",
        "08",
        "09",
        "10",
        "11",
        "12",
    }

    # k_achieved equals a plain pandas groupby over the QI columns of the output.
    report = json.loads(rep.read_text())
    qis = report["quasi_identifiers"]
    assert qis == ["birth_year", "Gender", "zip3", "Grade"]
    assert report["k_achieved"] == int(result.groupby(qis).size().min())
    assert report["k_achieved"] >= 5
    # suppression is counted: every emptied QI cell of a non-empty input shows in the report
    emptied = sum(
        int((result[q].isna() & pd.Series(original.column(q).to_pylist()).notna()).sum())
        for q in ("Gender", "Grade")
    )
    assert emptied <= report["suppressed_cells"]
    assert report["rows_with_suppression"] <= report["rows_with_empty_qi"]
    for key in (
        "rows_in",
        "rows_out",
        "k_achieved",
        "quasi_identifiers",
        "suppressed_cells",
        "columns",
        "residual_findings",
        "dropped_columns",
        "output_sha256",
        "warnings",
        "timings",
    ):
        assert key in report
    assert report["residual_findings"] == []
    assert {c["name"]: c["treatment"] for c in report["columns"]}["student_code"] == "record_code"
    assert "Phone" in report["dropped_columns"] and "Phone_2" in report["dropped_columns"]
    import hashlib

    assert report["output_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert report["rows_out"] == len(released)
    # no student data in the report
    assert notes_in[0][:20] not in rep.read_text()
    assert _leftovers(tmp_path) == []


def test_record_codes_are_stable_across_runs_and_the_crosswalk_is_encrypted(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("SSID,Gender\n0012345678,F\n0000000009,M\n0012345678,F\n")
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "pathshare_policy": 1,
                "k": 1,
                "columns": {
                    "SSID": {"treatment": "record_code", "as": "code"},
                    "Gender": {"treatment": "keep"},
                },
            }
        )
    )
    secret = tmp_path / "s.key"
    r1 = deidentify_file(src, load_policy(policy), tmp_path / "a.csv", secret_file=secret)
    r2 = deidentify_file(src, load_policy(policy), tmp_path / "b.csv", secret_file=secret)
    # Rows are released in a random order: codes are compared by student (Gender tells the two apart).
    a, b = ({g: set(c) for g, c in pd.read_csv(tmp_path / n, dtype=str).groupby("Gender")["code"]}
            for n in ("a.csv", "b.csv"))  # fmt: skip
    assert a == b and len(a["F"]) == 1 and a["F"] != a["M"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    cw = tmp_path / "s.key.crosswalk"
    assert cw.exists() and b"0012345678" not in cw.read_bytes()
    assert any("new secret file" in n for n in r1.notes) and not any("new secret" in n for n in r2.notes)
    # a new student later gets a new code; the old ones stay
    src.write_text("SSID,Gender\n0012345678,F\n0000000077,M\n")
    deidentify_file(src, load_policy(policy), tmp_path / "c.csv", secret_file=secret)
    c = {g: set(x) for g, x in pd.read_csv(tmp_path / "c.csv", dtype=str).groupby("Gender")["code"]}
    assert c["F"] == a["F"] and not c["M"] & (a["F"] | a["M"])
    # another secret cannot read this crosswalk
    other = tmp_path / "other.key"
    other.write_text("x" * 40)
    with pytest.raises(InputError, match="does not belong to this secret"):
        deidentify_file(src, load_policy(policy), tmp_path / "d.csv", secret_file=other, crosswalk=cw)
    assert not (tmp_path / "d.csv").exists()


@pytest.mark.parametrize("stage", ["reading", "record_code", "checking k", "scanning", "writing", "saving"])
def test_cancel_at_any_stage_leaves_nothing(tmp_path, stage):
    src = tmp_path / "in.csv"
    src.write_text(
        "SSID,Gender,Notes\n" + "".join(f"{i:010d},{'MF'[i % 2]},call 408-555-{i:04d}\n" for i in range(50))
    )
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "pathshare_policy": 1,
                "k": 2,
                "columns": {
                    "SSID": {"treatment": "record_code"},
                    "Gender": {"treatment": "keep", "quasi_identifier": True},
                    "Notes": {"treatment": "redact_text"},
                },
            }
        )
    )
    seen: list[str] = []

    def progress(fraction: float, message: str) -> None:
        seen.append(message)
        assert 0.0 <= fraction <= 1.0
        if message.startswith(stage):
            raise Cancelled("cancelled; nothing was written.")

    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Cancelled):
        deidentify_file(
            src,
            load_policy(policy),
            tmp_path / "out.csv",
            secret_file=tmp_path / "new.key",  # created by the run, so removed by its cancel
            report_path=tmp_path / "r.json",
            progress=progress,
        )
    # no output, report, crosswalk, new secret or temp file
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_residual_findings_are_reported_without_values(tmp_path, run_cli):
    src = tmp_path / "in.csv"
    src.write_text(
        "ID,Phone,Email,Notes\n"
        + "".join(f"{i:06d},(408) 555-{i:04d},kid{i}@example.org,fine\n" for i in range(20))
    )
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "pathshare_policy": 1,
                "k": 1,
                "columns": {
                    "ID": {"treatment": "keep"},
                    "Phone": {"treatment": "keep"},
                    "Email": {"treatment": "keep"},
                    "Notes": {"treatment": "keep"},
                },
            }
        )
    )
    code, out, _ = run_cli(
        "deid", src, "--policy", policy, "--out", tmp_path / "o.parquet", "--report", tmp_path / "r.json"
    )
    assert code == 0 and "WARNING" in out and "prepare will refuse" in out
    report = json.loads((tmp_path / "r.json").read_text())
    kinds = {(f["column"], f["kind"]) for f in report["residual_findings"]}
    assert ("Phone", "PHONE_NUMBER") in kinds and ("Email", "EMAIL_ADDRESS") in kinds
    assert report["residual_findings_total"] >= 40
    assert (
        "555-" not in (tmp_path / "r.json").read_text()
        and "@example" not in (tmp_path / "r.json").read_text()
    )


def test_passthrough_when_drop_unlisted_is_false(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("A,B,C\n1,2,=1+1\n")
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {"pathshare_policy": 1, "k": 1, "drop_unlisted": False, "columns": {"A": {"treatment": "drop"}}}
        )
    )
    r = deidentify_file(src, load_policy(policy), tmp_path / "o.csv")
    assert r.passed_through == ["B", "C"] and r.dropped_columns == ["A"]
    assert (tmp_path / "o.csv").read_text().splitlines()[1] == '"2","\'=1+1"'


def _bad_inputs(tmp: Path) -> list[tuple[str, list[str], str]]:
    """(input file name, extra CLI args, phrase expected in the one-line error)."""
    import openpyxl

    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "header.csv").write_text("SSID,Gender\n")
    (tmp / "ragged.csv").write_text("SSID,Gender\n1,F\n2,M,x,y\n")
    (tmp / "latin.csv").write_bytes(b"SSID,Gender\n" + bytes(range(0x80, 0x100)) * 80)
    (tmp / "dup.csv").write_text("SSID,SSID\n1,2\n")
    (tmp / "blank.csv").write_text("SSID,,Gender\n1,2,F\n")
    (tmp / "big.csv").write_text("SSID,Gender\n1," + "x" * (10 << 20) + "\n")
    (tmp / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(512))
    wb = openpyxl.Workbook()
    wb.active.title = "One"
    wb.active.append(["SSID", "Gender"])
    wb.create_sheet("Two")
    wb.save(tmp / "sheets.xlsx")
    (tmp / "good.csv").write_text("SSID,Gender\n1,F\n2,M\n")
    pol = {"pathshare_policy": 1, "k": 1, "columns": {"SSID": {"treatment": "keep"}}}
    (tmp / "ok.json").write_text(json.dumps(pol))
    (tmp / "missing.json").write_text(json.dumps({**pol, "columns": {"Zip": {"treatment": "keep"}}}))
    (tmp / "unknown.json").write_text(json.dumps({**pol, "columns": {"SSID": {"treatment": "hash"}}}))
    (tmp / "notjson.json").write_text("{'k': 5")
    (tmp / "code.json").write_text(json.dumps({**pol, "columns": {"SSID": {"treatment": "record_code"}}}))
    (tmp / "token.json").write_text(json.dumps({**pol, "columns": {"SSID": {"treatment": "token"}}}))
    return [
        ("empty.csv", [], "empty.csv is empty"),
        ("header.csv", [], "header but no data rows"),
        ("ragged.csv", [], "row 3 has 4 fields, the header has 2"),
        ("latin.csv", [], "latin.csv"),
        ("dup.csv", [], "dup.csv"),
        ("blank.csv", [], "column 2 has no name"),
        ("big.csv", [], "larger than 1 MB"),
        ("binary.csv", [], "binary"),
        ("sheets.xlsx", [], "2 sheets (One, Two)"),
        ("good.csv", ["--policy", "missing.json"], "names column 'Zip'"),
        ("good.csv", ["--policy", "unknown.json"], "unknown treatment 'hash'"),
        ("good.csv", ["--policy", "notjson.json"], "not valid JSON"),
        ("good.csv", ["--policy", "code.json"], "--secret-file"),
        ("good.csv", ["--policy", "token.json"], "--secret-file"),
        ("good.csv", ["--out", "nowhere/out.csv"], "does not exist"),
        ("good.csv", ["--out", "out.xlsx"], ".csv or .parquet"),
    ]


def test_every_bad_input_is_one_sentence_exit_1_and_no_output(tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, extra, phrase in _bad_inputs(tmp_path):
        args = ["deid", name, "--policy", "ok.json", "--out", "out.csv", *extra]
        # later options win in argparse, so the extra --policy/--out replace the defaults
        code, _out, err = run_cli(*args)
        assert code == 1, (name, extra, err)
        assert err.startswith("pathshare: ") and err.count("\n") == 1, err
        assert phrase in err, (phrase, err)
        assert "Traceback" not in err
        assert not (tmp_path / "out.csv").exists() and _leftovers(tmp_path) == []
        assert not (tmp_path / "out.xlsx").exists()


def test_table_api_in_memory():
    from deid import ColumnRule, Policy, deidentify

    t = pa.table({"g": ["M", "F", "M", "F", "X"], "n": ["a", "b", "c", "d", "e"]})
    pol = Policy.from_rules([ColumnRule("g", "keep", quasi_identifier=True)], k=2)
    out, report = deidentify(t, pol)
    assert out.column_names == ["g"] and report.dropped_columns == ["n"]
    assert out.column("g").to_pylist() == ["M", "F", "M", "F", None]
    assert report.k_achieved == 2 and report.suppressed_cells == 1 and report.rows_fully_suppressed == 1
    assert "k = 2 reached by suppressing 1 cell in 1 row (smallest group: 2; 1 of them lost every" in (
        report.summary()
    )


def test_residual_scan_samples_redacted_columns_and_maps_rows_back():
    from deid import Finding, residual_scan

    class EveryTenth:
        def find(self, column, limit=None):
            # a "finding" in every cell whose text ends in 0: rows are positions within `column`
            return [Finding(i, "PERSON", 0, 1) for i, v in enumerate(column.to_pylist()) if v.endswith("0")]

    out = pa.table({"notes": [f"n{i}" for i in range(100)], "code": ["x"] * 100})
    scanner = EveryTenth()
    full, by_column, sampled = residual_scan(out, lambda: scanner, {"notes"}, None)
    assert (
        by_column == {"notes": 10}
        and sampled == {}
        and [f.row for f in full] == [i + 1 for i in range(0, 100, 10)]
    )
    part, _by_column, sampled = residual_scan(
        out, lambda: scanner, {"notes"}, None, sample_columns={"notes"}, sample_rows=12
    )
    assert sampled == {"notes": (12, 100)}
    assert all(f.row - 1 in range(0, 100, 10) for f in part) and part  # rows map back to the output


def test_full_rescan_and_sample_note(tmp_path, monkeypatch):
    import deid._residual as residual

    monkeypatch.setattr(residual, "RESCAN_SAMPLE_ROWS", 5)
    src = tmp_path / "in.csv"
    src.write_text("Name,Notes\n" + "".join(f"Kid{i},saw Kid{i} today\n" for i in range(20)))
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps({"pathshare_policy": 1, "k": 1, "columns": {"Notes": {"treatment": "redact_text"}}})
    )
    r = deidentify_file(src, load_policy(policy), tmp_path / "o.csv", full_rescan=False)
    assert any("re-checked 5 evenly spaced rows of the 20 in 'Notes'" in n for n in r.notes)
    r = deidentify_file(src, load_policy(policy), tmp_path / "o2.csv")  # full re-scan by default
    assert not any("re-checked" in n for n in r.notes) and r.residual_findings_total == 0


def test_xlsx_sheet_and_parquet_inputs_through_the_cli(tmp_path, run_cli):
    import openpyxl
    import pyarrow.parquet as pq

    wb = openpyxl.Workbook()
    wb.active.title = "Readme"
    ws = wb.create_sheet("Students")
    ws.append(["SSID", "Grade"])
    ws.append(["0012", "09"])
    ws.append(["0013", "10"])
    wb.save(tmp_path / "in.xlsx")
    pq.write_table(pa.table({"SSID": ["0012", "0013"], "Grade": ["09", "10"]}), tmp_path / "in.parquet")
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps({"pathshare_policy": 1, "k": 1, "columns": {"Grade": {"treatment": "keep"}}})
    )
    code, out, err = run_cli(
        "deid", tmp_path / "in.xlsx", "--sheet", "Students", "--policy", policy, "--out", tmp_path / "a.csv"
    )
    assert code == 0, err
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0] == '"Grade"' and sorted(lines[1:]) == ['"09"', '"10"']  # rows in a random order
    code, out, err = run_cli(
        "deid", tmp_path / "in.parquet", "--policy", policy, "--out", tmp_path / "b.parquet"
    )
    assert code == 0, err
    assert sorted(pq.read_table(tmp_path / "b.parquet").column("Grade").to_pylist()) == ["09", "10"]
    assert "1 column kept, 1 dropped" in out


def test_progress_line_only_draws_on_a_terminal(capsys):
    from desktop.commands.deidentify import ProgressLine

    bar = ProgressLine()
    bar(0.5, "redact_text: Counselor Notes")
    bar.close()
    err = capsys.readouterr().err
    assert "50%" in err and "redact_text" in err and err.endswith("\r")


def test_classifier_flags_become_warnings(tmp_path, messy):
    src, _truth = messy
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "pathshare_policy": 1,
                "k": 1,
                "drop_unlisted": False,
                "columns": {
                    "SSID": {"treatment": "token"},
                    "IEP": {"treatment": "keep"},
                    "Phone": {"treatment": "drop"},
                    "Phone_2": {"treatment": "drop"},
                },
            }
        )
    )
    r = deidentify_file(src, load_policy(policy), tmp_path / "o.parquet", secret=b"s" * 32)
    text = "\n".join(r.warnings)
    assert "column 'IEP' is kept as it is and looks sensitive" in text
    for col in ("First Name", "Student Email", "Birth Date", "Counselor Notes"):
        assert f"column '{col}' is not in the policy and passes through unchanged" in text
    assert "Warning: column 'IEP'" in r.summary()
    # the notes passed through unredacted, so the residual scan finds the planted PII in them
    assert r.residual_findings_total > 0
    assert {f.column for f in r.residual_findings} >= {"Counselor Notes", "Student Email"}
    assert r.residual_findings_by_column["Student Email"] == 3000
    assert r.residual_findings_by_column["Local ID"] == 3000  # raw roster IDs, whole cells
    assert r.residual_findings_by_column["First Name"] >= 2900  # a column of roster names
    assert "Gender" not in r.residual_findings_by_column and "Grade" not in r.residual_findings_by_column
    assert sum(1 for f in r.residual_findings if f.column == "Student Email") == 100  # listed per column


def test_output_over_its_own_input_is_refused_and_notes_are_printed(tmp_path, run_cli):
    src = tmp_path / "in.csv"
    src.write_text("DOB,Grade\n03/05/2008,09\nsoon,10\n")
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "pathshare_policy": 1,
                "k": 1,
                "columns": {
                    "DOB": {"treatment": "generalize_date", "to": "year"},
                    "Grade": {"treatment": "keep"},
                },
            }
        )
    )
    code, _, err = run_cli("deid", src, "--policy", policy, "--out", src)
    assert code == 1 and "it is the input file" in err
    assert src.read_text().startswith("DOB,Grade")
    code, out, err = run_cli("deid", src, "--policy", policy, "--out", tmp_path / "o.csv")
    assert code == 0, err
    assert "Note: 1 value(s) of 'DOB' could not be read as dates and were left empty." in out


def test_report_round_trips_through_json(tmp_path):
    from deid import DeidReport

    src = tmp_path / "in.csv"
    src.write_text("Gender,Grade\n" + "M,09\nF,10\n" * 5 + "X,11\n")
    policy = tmp_path / "p.json"
    policy.write_text(
        json.dumps(
            {
                "pathshare_policy": 1,
                "k": 3,
                "columns": {
                    "Gender": {"treatment": "keep", "quasi_identifier": True},
                    "Grade": {"treatment": "keep"},
                },
            }
        )
    )
    pool = pa.default_memory_pool().backend_name
    r = deidentify_file(src, load_policy(policy), tmp_path / "o.csv", report_path=tmp_path / "r.json")
    assert pa.default_memory_pool().backend_name == pool  # the run's allocator switch is undone
    data = json.loads((tmp_path / "r.json").read_text())
    back = DeidReport.from_dict(data)
    assert back == r and back.to_dict() == data
    assert data["k_achieved"] == 5 and data["suppressed_cells"] == 1 and data["rows_fully_suppressed"] == 1
    assert data["columns"][0] == {
        "name": "Gender",
        "source": "Gender",
        "treatment": "keep",
        "cells_changed": 0,
        "quasi_identifier": True,
        "suppressed_cells": 1,
        "redacted_by_kind": {},
    }
    assert data["policy"]["k"] == 3 and data["pathshare_report"] == 1
