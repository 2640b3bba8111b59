"""No student data in the clear outside the output file: canary values planted in every column of a
small extract, and in malformed inputs, must never show up in stdout/stderr, the JSON report, the
JSON of `map`, exception messages (and the exceptions they were raised from), or stray files.

The output file itself may of course hold what the policy keeps; nothing else may.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# Distinctive values no message, column name, code set or file name of PathShare would contain.
FIRST = "Zyxwvutsrq"
LAST = "Qjxvbnmkpl"
SSID = "7319468250"
SSN = "987-65-4329"
EMAIL = "zq.canary@examplezqx.org"
PHONE = "(213) 555-0147"
STREET = "4321 Canaryzq Lane"
BAD_ZIP = "9zq1x"
BAD_DOB = "1999-99-77"
GENDER = "Xqzgender"
GRADE = "Grade Zqw"
ETHNICITY = "Ethnozqv"
GPA = "gpazqx"
SCHOOL = "SCHZQ91"
NOTE = f"Met {FIRST} {LAST} and her mom; call {PHONE}, SSN {SSN}, mail {EMAIL}."
CANARIES = (FIRST, LAST, SSID, SSN, EMAIL, "555-0147", "Canaryzq", BAD_ZIP, BAD_DOB, GENDER, "Zqw",
            ETHNICITY, GPA, SCHOOL)  # fmt: skip

HEADER = [
    "SSID", "First Name", "Last Name", "Birth Date", "Gender", "Grade", "Ethnicity", "Email", "Phone",
    "Street Address", "ZIP", "GPA", "School Code", "Counselor Notes",
]  # fmt: skip
CANARY_ROW = [SSID, FIRST, LAST, BAD_DOB, GENDER, GRADE, ETHNICITY, EMAIL, PHONE, STREET, BAD_ZIP, GPA,
              SCHOOL, NOTE]  # fmt: skip
FIRSTS = ["Maria", "James", "Ana", "David", "Sofia", "Daniel", "Emma", "Luis"]
LASTS = ["Garcia", "Smith", "Nguyen", "Lopez", "Johnson", "Kim", "Brown", "Martinez"]

STRICT_POLICY = {
    "pathshare_policy": 1,
    "k": 3,
    "drop_unlisted": True,
    "columns": {
        "SSID": {"treatment": "record_code", "as": "student_code"},
        "First Name": {"treatment": "drop"},
        "Last Name": {"treatment": "drop"},
        "Birth Date": {"treatment": "generalize_date", "to": "year", "as": "birth_year",
                       "quasi_identifier": True},
        "Gender": {"treatment": "keep", "quasi_identifier": True},
        "Grade": {"treatment": "keep"},
        "Ethnicity": {"treatment": "recode_rare", "min_count": 3},
        "Email": {"treatment": "drop"},
        "ZIP": {"treatment": "zip3", "as": "zip3"},
        "GPA": {"treatment": "bucket", "edges": [0, 1, 2, 3, 4.5]},
        "School Code": {"treatment": "keep"},
        "Counselor Notes": {"treatment": "redact_text"},
    },
}  # fmt: skip
# Keeps identifying columns as they are: the output holds canaries, the report and summary must not.
LAX_POLICY = {
    "pathshare_policy": 1,
    "k": 2,
    "drop_unlisted": False,
    "columns": {
        "SSID": {"treatment": "token", "as": "ssid_token"},
        "Birth Date": {"treatment": "date_shift", "by": "SSID"},
        "Gender": {"treatment": "keep", "quasi_identifier": True},
    },
}


def rows(n: int = 30) -> list[list[str]]:
    out = []
    for i in range(n):
        out.append([
            f"{1000000000 + i * 7919:010d}",
            FIRSTS[i % 8],
            LASTS[(i * 3) % 8],
            f"2009-{1 + i % 12:02d}-{1 + i % 27:02d}",
            "MF"[i % 2],
            f"{9 + i % 4:02d}",
            ["Hispanic", "White", "Asian", "Black"][i % 4],
            f"student{i}@school.example.org",
            f"(626) 555-{1000 + i:04d}",
            f"{100 + i} Oak Street",
            f"9{1100 + i % 3:04d}",
            f"{(i % 40) / 10:.1f}",
            "0101",
            "Doing fine in class." if i % 3 else "",
        ])  # fmt: skip
    out.insert(7, list(CANARY_ROW))
    return out


def write_csv(path: Path, header: list[str], data: list[list[str]]) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(data)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    return path


def assert_clean(*texts: str, where: str = "") -> None:
    """No canary in any of ``texts`` (case-insensitive)."""
    blob = "\n".join(texts).lower()
    leaked = [c for c in CANARIES if c.lower() in blob]
    assert not leaked, f"{where}: student data leaked: {leaked}\n{blob[:3000]}"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        # what a traceback shows: the cause, else the context unless ``from None`` suppressed it
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)


def assert_clean_exception(exc: BaseException, where: str = "") -> None:
    """The message of ``exc`` and of every exception it was raised from (a traceback would show them)."""
    assert_clean(*(f"{type(e).__name__}: {e}" for e in exception_chain(exc)), where=where)


def listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


# ------------------------------------------------------------------------------------ deid (CLI)


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "district.csv", HEADER, rows())


def _policy(folder: Path, policy: dict) -> Path:
    p = folder / "policy.json"
    p.write_text(json.dumps(policy))
    return p


@pytest.mark.parametrize("policy", [STRICT_POLICY, LAX_POLICY], ids=["strict", "lax"])
def test_deid_summary_report_and_folder_hold_no_canary(tmp_path, extract, run_cli, policy) -> None:
    pol = _policy(tmp_path, policy)
    before = listing(tmp_path)
    out, rep, secret = tmp_path / "out.csv", tmp_path / "report.json", tmp_path / "secret.key"
    code, stdout, err = run_cli(
        "deid", extract, "--policy", pol, "--out", out, "--report", rep, "--secret-file", secret
    )
    assert code == 0, err
    report = rep.read_text(encoding="utf-8")
    assert_clean(stdout, err, report, where="deid")
    # the report did say something: the canary row's unreadable values are counted, not quoted
    data = json.loads(report)
    assert data["rows_in"] == 31
    expected = {"out.csv", "report.json", "secret.key"}
    if policy is STRICT_POLICY:
        expected.add("secret.key.crosswalk")
        assert any("could not be read as dates" in n for n in data["notes"])
        assert any("could not be read as numbers" in n for n in data["notes"])
    else:
        # identifying columns pass through: warned about by column name, without a value
        assert any("'Email'" in w for w in data["warnings"])
        assert data["residual_findings_total"] > 0
        assert FIRST in out.read_text(encoding="utf-8")  # the output itself keeps what the policy keeps
    assert listing(tmp_path) == before | expected
    # the crosswalk is encrypted: the canary ID is not in it in the clear
    if (tmp_path / "secret.key.crosswalk").exists():
        assert SSID.encode() not in (tmp_path / "secret.key.crosswalk").read_bytes()


def _big_cell(data: list[list[str]]) -> list[list[str]]:
    data[3][13] = (NOTE + " ") * (2_000_000 // len(NOTE))
    return data


def _malformed_csvs() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, a phrase of the expected message)."""
    head = ",".join(HEADER)

    def body(data: list[list[str]]) -> str:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(data)
        return buf.getvalue()

    good = body(rows(12))
    ragged = good + ",".join([*CANARY_ROW, FIRST, LAST]) + "\n"
    unclosed = good + ",".join(CANARY_ROW[:13]) + ',"' + NOTE + "\n" + body(rows(3))
    nul = (head + "\n" + good + ",".join(CANARY_ROW[:13]) + "," + FIRST + "\x00" + LAST + "\n").encode()
    bad_bytes = (head + "\n" + good).encode() + (",".join(CANARY_ROW[:13]) + ",").encode() + \
        b"\x81\x8d\x8f\x90\x9d" + FIRST.encode() + b"\n"  # fmt: skip
    dup_header = head.replace("Street Address", "Gender") + "\n" + good
    return {
        "big_cell": ((head + "\n" + body(_big_cell(rows(12)))).encode(), "larger than 1 MB"),
        "ragged": ((head + "\n" + ragged).encode(), "fields"),
        "unclosed_quote": ((head + "\n" + unclosed).encode(), "never closed"),
        "nul_bytes": (nul, "binary"),
        "undecodable": (bad_bytes, ""),
        "duplicate_header": (dup_header.encode(), "two columns named"),
        "header_only": (head.encode() + b"\n", "no data rows"),
        # the first row is a student's: refused, or the values would become column names (in messages,
        # the report and the mapping) and the student would be missing from the output
        "headerless": (good.encode(), "no header row"),
        # old Mac exports end rows with a lone CR: read, not a crash
        "cr_line_ends": ((head + "\n" + good).replace("\n", "\r").encode(), ""),
        # a header field over the csv module's 128 KB limit: one sentence, not a traceback
        "huge_header": ((head + "," + "x" * 200_000 + "\n" + good).encode(), "header row"),
    }


MALFORMED = _malformed_csvs()


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_deid_fails_cleanly_or_succeeds_without_leaks(tmp_path, run_cli, name) -> None:
    data, phrase = MALFORMED[name]
    src = tmp_path / "bad.csv"
    src.write_bytes(data)
    pol = _policy(tmp_path, STRICT_POLICY)
    before = listing(tmp_path)
    out, rep = tmp_path / "out.csv", tmp_path / "report.json"
    code, stdout, err = run_cli(
        "deid", src, "--policy", pol, "--out", out, "--report", rep, "--secret-file", tmp_path / "s.key"
    )
    report = rep.read_text(encoding="utf-8") if rep.exists() else ""
    assert_clean(stdout, err, report, where=name)
    if code:
        assert code == 1
        assert err.startswith("pathshare: ") and err.count("\n") == 1, err
        assert phrase in err, err
        assert listing(tmp_path) == before, "a failed run left files behind"
    else:
        assert name in ("undecodable", "cr_line_ends"), f"{name} should have been refused"


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_map_json_has_no_canary(tmp_path, run_cli, name) -> None:
    data, _phrase = MALFORMED[name]
    src = tmp_path / "bad.csv"
    src.write_bytes(data)
    before = listing(tmp_path)
    code, stdout, err = run_cli("map", src, "--json")
    assert code in (0, 1)
    assert_clean(stdout, err, where=name)
    assert listing(tmp_path) == before


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_read_table_exception_has_no_canary(tmp_path, name) -> None:
    from deid import read_table
    from deid.errors import PathShareError

    src = tmp_path / "bad.csv"
    src.write_bytes(MALFORMED[name][0])
    try:
        read_table(src)
    except PathShareError as exc:
        assert_clean_exception(exc, where=name)
    assert listing(tmp_path) == {"bad.csv"}


# ------------------------------------------------------------------------------------- map (CLI)


@pytest.fixture
def messy_extract(tmp_path: Path) -> Path:
    """Duplicate IDs, values outside code sets, impossible dates, non-numbers: validation findings."""
    data = rows(40)
    data[20][0] = SSID  # the canary ID twice
    data.insert(30, list(CANARY_ROW))
    data[12][3] = "02/30/2031"
    data[13][4] = ETHNICITY  # an unexpected value in the gender column
    return write_csv(tmp_path / "export.csv", HEADER, data)


def test_map_json_and_text_hold_no_canary(tmp_path, messy_extract, run_cli) -> None:
    before = listing(tmp_path)
    code, stdout, err = run_cli("map", messy_extract, "--json")
    assert code == 0, err
    assert_clean(stdout, err, where="map --json")
    result = json.loads(stdout)
    kinds = {f["kind"] for f in result["validation"]}
    # the problems are reported, by column and row, without their values
    assert {"duplicate_id", "outside_code_set", "bad_date"} <= kinds, kinds
    by_col = {c["column"]: c for c in result["columns"]}
    assert by_col["Gender"]["element"] == "sex"
    code, stdout, err = run_cli("map", messy_extract)
    assert code == 0, err
    assert_clean(stdout, err, where="map")
    assert "duplicate" in stdout.lower() or "repeats" in stdout
    assert listing(tmp_path) == before


def test_map_derived_values_list_no_value_from_the_file(tmp_path, run_cli) -> None:
    """An ethnicity column fills hispanic_latino: only recognized spellings are listed, not an odd
    value of the file (a profile is exported to partners)."""
    header = ["SSID", "Ethnicity"]
    data = [[f"{1000000000 + i:010d}", ["Hispanic", "White", "Asian", "Black"][i % 4]] for i in range(40)]
    data[5][1] = ETHNICITY
    data[6][1] = FIRST
    src = write_csv(tmp_path / "eth.csv", header, data)
    code, stdout, err = run_cli("map", src, "--json")
    assert code == 0, err
    assert_clean(stdout, err, where="map derives")
    cols = {c["column"]: c for c in json.loads(stdout)["columns"]}
    derives = cols["Ethnicity"]["derives"]
    assert derives.get("hispanic_latino", {}).get("Hispanic") == "Y", derives
    assert derives["hispanic_latino"].get("White") == "N"


# ---------------------------------------------------------------------------------- library calls


def test_library_mapping_classifier_and_report_hold_no_canary(messy_extract) -> None:
    from deid import (
        MappingProfile,
        Policy,
        classify_columns,
        deidentify,
        read_table,
        suggest_mapping,
        validate,
    )

    table = read_table(messy_extract)
    suggestions = suggest_mapping(table)
    profile = MappingProfile.from_suggestions("p", suggestions)
    findings = validate(table, profile)
    flags = classify_columns(table)
    assert findings and flags
    assert_clean(
        json.dumps([s.to_dict() for s in suggestions]),
        profile.to_json(),
        json.dumps([f.to_dict() for f in findings]),
        json.dumps([f.reason for f in flags.values()]),
        where="mapping",
    )
    for policy in (STRICT_POLICY, LAX_POLICY):
        _out, report = deidentify(table, Policy.from_dict(policy), secret=b"s" * 32, crosswalk=_crosswalk())
        assert_clean(report.to_json(), report.summary(), where="deidentify")


def _crosswalk():
    from deid import Crosswalk

    return Crosswalk()


def test_exceptions_from_bad_data_hold_no_canary(tmp_path) -> None:
    """Errors raised on data, through the library: the message and its causes."""
    import openpyxl

    from deid import deidentify_file, load_policy, read_table
    from deid.errors import PathShareError

    # XLSX: a value beyond the header's columns
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SSID", "First Name"])
    ws.append([SSID, FIRST])
    ws.append([SSID, FIRST, LAST, EMAIL])
    wb.save(tmp_path / "bad.xlsx")
    with pytest.raises(PathShareError) as info:
        read_table(tmp_path / "bad.xlsx")
    assert_clean_exception(info.value, "xlsx")

    # Parquet with typed columns, a canary in each; a policy naming a missing column
    pq.write_table(
        pa.table({"SSID": [SSID, "1"], "First Name": [FIRST, "Ann"], "Birth": pa.array([1, 2], pa.int64())}),
        tmp_path / "in.parquet",
    )
    pol = _policy(tmp_path, STRICT_POLICY)
    with pytest.raises(PathShareError) as info:
        deidentify_file(tmp_path / "in.parquet", load_policy(pol), tmp_path / "o.csv",
                        secret_file=tmp_path / "p.key")  # fmt: skip
    assert_clean_exception(info.value, "parquet")
    assert "names column" in str(info.value)
    # the whole extract as typed Parquet: dates, numbers; the run succeeds and its report is clean
    data = rows()
    cols = {h: [r[i] for r in data] for i, h in enumerate(HEADER)}
    typed = pa.table({
        **{h: pa.array(v, pa.string()) for h, v in cols.items()},
        "Birth Date": pa.array([None if v == BAD_DOB else dt.date.fromisoformat(v)
                                for v in cols["Birth Date"]]),
        "GPA": pa.array([None if v == GPA else float(v) for v in cols["GPA"]]),
    })  # fmt: skip
    pq.write_table(typed, tmp_path / "typed.parquet")
    report = deidentify_file(tmp_path / "typed.parquet", load_policy(pol), tmp_path / "typed.csv",
                             secret_file=tmp_path / "p.key")  # fmt: skip
    assert_clean(report.to_json(), report.summary(), where="parquet report")
    assert report.rows_out == 31

    # a crosswalk of another secret
    src = write_csv(tmp_path / "x.csv", HEADER, rows())
    deidentify_file(src, load_policy(pol), tmp_path / "o1.csv", secret_file=tmp_path / "a.key")
    (tmp_path / "b.key").write_bytes(b"b" * 32)
    (tmp_path / "b.key.crosswalk").write_bytes((tmp_path / "a.key.crosswalk").read_bytes())
    before = listing(tmp_path)
    with pytest.raises(PathShareError) as info:
        deidentify_file(src, load_policy(pol), tmp_path / "o2.csv", secret_file=tmp_path / "b.key")
    assert_clean_exception(info.value, "crosswalk")
    assert listing(tmp_path) == before


# ------------------------------------------------------------------------------------ link (CLI)


def test_link_with_bad_token_cells_names_the_row_not_the_value(tmp_path, run_cli, cli_vault) -> None:
    from deid import Policy, deidentify, write_table

    people = pa.table({
        "ssid": [f"{1000000000 + i:010d}" for i in range(12)],
        "first": FIRSTS + FIRSTS[:4],
        "last": LASTS + LASTS[:4],
        "birth": [f"2008-0{1 + i % 9}-1{i % 9}" for i in range(12)],
        "school": ["0101"] * 12,
    })  # fmt: skip
    policy = Policy.from_dict({
        "pathshare_policy": 1, "k": 1, "drop_unlisted": True,
        "columns": {
            "ssid": {"treatment": "link_tokens", "as": "link_tokens",
                     "from": ["first", "last", "birth"]},
            "school": {"treatment": "keep"},
        },
    })  # fmt: skip
    out, _report = deidentify(people, policy, secret=b"k" * 32)
    write_table(out, tmp_path / "a.csv")
    tokens = out.column("link_tokens").to_pylist()
    for bad in (f"{FIRST} {LAST}", SSN, "Zyxwvutsrq!!" + tokens[0][12:], tokens[1] + " " + EMAIL):
        b = out.set_column(0, "link_tokens", pa.array([*tokens[:5], bad, *tokens[6:]], pa.string()))
        write_table(b, tmp_path / "b.csv", force=True)  # the next bad file replaces the last
        before = listing(tmp_path)
        code, stdout, err = run_cli("link", tmp_path / "a.csv", tmp_path / "b.csv", "--out",
                                    tmp_path / "linked.csv", "--report", tmp_path / "r.json")  # fmt: skip
        assert code == 1, err
        assert_clean(stdout, err, where="link")
        assert "row 7" in err and "b.csv" in err, err
        assert listing(tmp_path) == before


def test_link_report_that_cannot_be_written_leaves_no_linked_file(
    tmp_path, run_cli, cli_vault, monkeypatch
) -> None:
    from deid import LinkReport, Policy, deidentify, write_table

    people = pa.table({"ssid": [f"{1000000000 + i:010d}" for i in range(6)], "first": FIRSTS[:6],
                       "last": LASTS[:6], "birth": [f"2008-01-1{i}" for i in range(6)]})  # fmt: skip
    rule = {"treatment": "link_tokens", "as": "link_tokens", "from": ["first", "last", "birth"]}
    policy = Policy.from_dict({"pathshare_policy": 1, "k": 1, "drop_unlisted": True,
                               "columns": {"ssid": rule}})  # fmt: skip
    out, _report = deidentify(people, policy, secret=b"k" * 32)
    write_table(out, tmp_path / "a.csv")
    write_table(out, tmp_path / "b.csv")

    def refuse(self, path, **_options):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(LinkReport, "write", refuse)
    before = listing(tmp_path)
    code, _stdout, err = run_cli("link", tmp_path / "a.csv", tmp_path / "b.csv", "--out",
                                 tmp_path / "linked.csv", "--report", tmp_path / "r.json")  # fmt: skip
    assert code == 1 and "r.json" in err and "Permission denied" in err, err
    assert listing(tmp_path) == before


def test_deid_report_that_cannot_be_written_names_it_and_leaves_nothing(tmp_path, extract, run_cli,
                                                                      monkeypatch) -> None:  # fmt: skip
    import deid._report

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(deid._report, "write_bytes_atomic", refuse)
    pol = _policy(tmp_path, STRICT_POLICY)
    before = listing(tmp_path)
    code, _stdout, err = run_cli(
        "deid", extract, "--policy", pol, "--out", tmp_path / "out.csv", "--report", tmp_path / "report.json",
        "--secret-file", tmp_path / "s.key",
    )  # fmt: skip
    assert code == 1 and "the report" in err and "report.json" in err, err
    assert listing(tmp_path) == before


def test_secret_file_that_cannot_be_created_is_one_sentence(tmp_path, extract, run_cli, monkeypatch) -> None:
    import deid._secrets

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(deid._secrets, "write_bytes_atomic", refuse)
    pol = _policy(tmp_path, STRICT_POLICY)
    before = listing(tmp_path)
    code, _stdout, err = run_cli("deid", extract, "--policy", pol, "--out", tmp_path / "out.csv",
                                 "--secret-file", tmp_path / "s.key")  # fmt: skip
    assert code == 1 and err.startswith("pathshare: Cannot create the secret file") and "s.key" in err, err
    assert listing(tmp_path) == before


@pytest.mark.parametrize("fmt", ["xlsx", "parquet"])
def test_workbook_and_parquet_inputs_hold_no_canary_outside_the_output(tmp_path, run_cli, fmt) -> None:
    data = rows()
    if fmt == "xlsx":
        import openpyxl

        wb = openpyxl.Workbook()
        ws = wb.active
        ws.title = "Roster"
        ws.append(HEADER)
        for r in data:
            # typed cells too: a real date and a number, as Excel keeps them
            cells: list[object] = list(r)
            if r[3] != BAD_DOB:
                cells[3] = dt.date.fromisoformat(r[3])
            if r[11] != GPA:
                cells[11] = float(r[11])
            ws.append(cells)
        src = tmp_path / "district.xlsx"
        wb.save(src)
    else:
        src = tmp_path / "district.parquet"
        pq.write_table(pa.table({h: [r[i] for r in data] for i, h in enumerate(HEADER)}), src)
    pol = _policy(tmp_path, STRICT_POLICY)
    before = listing(tmp_path)
    code, stdout, err = run_cli("map", src, "--json")
    assert code == 0, err
    assert_clean(stdout, err, where=f"map {fmt}")
    assert json.loads(stdout)["rows"] == 31
    out, rep = tmp_path / "out.parquet", tmp_path / "report.json"
    code, stdout, err = run_cli("deid", src, "--policy", pol, "--out", out, "--report", rep,
                                "--secret-file", tmp_path / "s.key")  # fmt: skip
    assert code == 0, err
    assert_clean(stdout, err, rep.read_text(encoding="utf-8"), where=f"deid {fmt}")
    assert listing(tmp_path) == before | {"out.parquet", "report.json", "s.key", "s.key.crosswalk"}
    assert pq.read_table(out).num_rows == 31


def test_workbook_warnings_never_print_a_cell_value(tmp_path) -> None:
    """openpyxl warns, quoting the number, about a date-formatted cell beyond Excel's dates: the
    warning is not let through, and the cell is refused by its place."""
    import warnings

    import openpyxl

    from deid import read_table
    from deid.errors import InputError

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SSID", "Birth Date"])
    ws.append(["1000000001", dt.date(2009, 3, 14)])
    ws.append(["1000000002", 9876543219])
    ws["B3"].number_format = "yyyy-mm-dd"
    wb.save(tmp_path / "dates.xlsx")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as info:
            read_table(tmp_path / "dates.xlsx")
    assert "cell B3" in str(info.value) and "9876543219" not in str(info.value)
    assert not [w for w in caught if "9876543219" in str(w.message)], [str(w.message) for w in caught]


def test_unreadable_input_is_one_sentence(tmp_path, extract, run_cli, monkeypatch) -> None:
    import deid._io

    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(deid._io, "detect_encoding", refuse)
    code, _stdout, err = run_cli("map", extract, "--json")
    assert code == 1 and err == f"pathshare: Cannot read {extract}: Permission denied.\n", err


CLASHES = ["report_is_input", "report_is_output", "secret_is_output", "secret_is_input", "crosswalk_is_input"]


@pytest.mark.parametrize("clash", CLASHES)
def test_deid_never_writes_one_file_over_another(tmp_path, extract, run_cli, clash) -> None:
    """A report or secret named like the extract would replace the students' file: refused first."""
    pol = _policy(tmp_path, STRICT_POLICY)
    out, rep, secret = tmp_path / "out.csv", tmp_path / "report.json", tmp_path / "s.key"
    if clash == "report_is_input":
        rep = extract
    elif clash == "report_is_output":
        rep = out
    elif clash == "secret_is_output":
        secret = out
    elif clash == "secret_is_input":
        secret = extract
    else:
        secret = tmp_path / "district"
        assert extract.name == "district.csv"
        (tmp_path / "district").write_bytes(b"s" * 32)  # its crosswalk would be district.crosswalk
        extract = extract.rename(tmp_path / "district.crosswalk")
    original = extract.read_bytes()
    before = listing(tmp_path)
    code, _stdout, err = run_cli("deid", extract, "--policy", pol, "--out", out, "--report", rep,
                                 "--secret-file", secret)  # fmt: skip
    assert code == 1 and "cannot be both" in err, err
    assert extract.read_bytes() == original
    assert listing(tmp_path) == before


def test_link_never_writes_over_its_inputs(tmp_path, run_cli, cli_vault) -> None:
    from deid import Policy, deidentify, write_table

    people = pa.table({"ssid": [f"{1000000000 + i:010d}" for i in range(6)], "first": FIRSTS[:6],
                       "last": LASTS[:6], "birth": [f"2008-01-1{i}" for i in range(6)]})  # fmt: skip
    rule = {"treatment": "link_tokens", "as": "link_tokens", "from": ["first", "last", "birth"]}
    policy = Policy.from_dict({"pathshare_policy": 1, "k": 1, "drop_unlisted": True,
                               "columns": {"ssid": rule}})  # fmt: skip
    out, _report = deidentify(people, policy, secret=b"k" * 32)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_table(out, a)
    write_table(out, b)
    original = a.read_bytes()
    for args in (["--out", a], ["--out", tmp_path / "l.csv", "--report", b], ["--out", b, "--report", b]):
        code, _stdout, err = run_cli("link", a, b, *args)
        assert code == 1 and "cannot be both" in err, err
        assert a.read_bytes() == original and b.read_bytes() == original
        assert listing(tmp_path) == {"a.csv", "b.csv"}


def test_synth_truth_named_like_the_extract_is_refused(tmp_path, run_cli) -> None:
    out = tmp_path / "x.csv"
    code, _stdout, err = run_cli("synth", "--kind", "k12", "--rows", "5", "--out", out, "--truth", out)
    assert code == 1 and "cannot be both the extract and the truth file" in err, err
    assert listing(tmp_path) == set()


def test_a_quote_inside_an_unquoted_value_is_a_character_not_an_unclosed_quote(tmp_path) -> None:
    from deid import read_table
    from deid.errors import InputError

    (tmp_path / "h.csv").write_bytes(b"id,note\n1,height 5'10\" now\n2,fine\n3,ok\n")
    assert read_table(tmp_path / "h.csv").column("note").to_pylist() == ["height 5'10\" now", "fine", "ok"]
    # a quote that opens a value and is never closed still swallows the rows after it: refused
    (tmp_path / "u.csv").write_bytes(b'id,note\n1,"height 5\n2,fine\n3,ok\n')
    with pytest.raises(InputError, match="never closed"):
        read_table(tmp_path / "u.csv")


def test_rows_swallowed_into_a_cell_are_refused_even_with_a_stray_inch_mark(tmp_path) -> None:
    from deid import read_table
    from deid.errors import InputError

    (tmp_path / "s.csv").write_bytes(b'id,note\n1,"abc\n2,x\n3,y"\n4,5\'10"\n')
    with pytest.raises(InputError, match="never closed"):
        read_table(tmp_path / "s.csv")
