"""What the analyst opens (issue 17 item 7): the data beside a Frictionless descriptor, the codebook, a
release report and load snippets — checked on a package the demo sealed and the college opened."""

from __future__ import annotations

import base64
import codecs
import csv
import html
import json
import re
import runpy
import shutil
import struct
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from agreements._demo import run_demo
from deid import MISSING_VALUES, suppression_by_group

PASS = "correct horse battery staple 42"
KIT = {
    "datapackage.json",
    "codebook.csv",
    "codebook.html",
    "release-report.html",
    "load_pandas.py",
    "load_r.R",
    "load_stata.do",
    "README.txt",
}


SAID: list[str] = []  # what the demo printed: the sender's prepare summary among it


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("kit") / "work"
    assert run_demo(folder, rows=600, passphrase=PASS, say=SAID.append).ok
    return folder


@pytest.fixture(scope="module")
def data(demo: Path) -> Path:
    return demo / "inbox" / "data"


@pytest.fixture(scope="module")
def descriptor(data: Path) -> dict:
    return json.loads((data / "datapackage.json").read_text(encoding="utf-8"))


@pytest.fixture
def frictionless():
    """The validator (test extras). Its CSV parser raises the process-wide csv.field_size_limit on first
    use; PathShare's reader refuses a header field over the stdlib default, so the limit is put back."""
    limit = csv.field_size_limit()
    import frictionless as validator  # in the test extras: a missing install fails, never skips

    yield validator
    csv.field_size_limit(limit)


def _data_file(data: Path, descriptor: dict) -> Path:
    (resource,) = descriptor["resources"]
    return data / resource["path"]


def _fields(descriptor: dict) -> list[dict]:
    return descriptor["resources"][0]["schema"]["fields"]


def test_every_opened_package_carries_the_kit_beside_the_data(data: Path, descriptor: dict):
    names = {p.name for p in data.iterdir()}
    assert names >= KIT
    data_file = _data_file(data, descriptor)
    assert names - KIT == {data_file.name}
    # the signed manifest lists every one of them (so open checked their hashes)
    manifest = json.loads((data.parent / "manifest.json").read_text(encoding="utf-8"))
    assert {f["name"] for f in manifest["files"]} == names


def test_the_shipped_pandas_snippet_keeps_leading_zeros(data: Path, descriptor: dict):
    data_file = _data_file(data, descriptor)
    with data_file.open(encoding="utf-8-sig", newline="") as fh:
        raw = list(csv.DictReader(fh))
    grades = [row["grade_level"] for row in raw]
    assert "09" in grades, "the demo's ninth graders are coded 09; the test needs some"
    # what the analyst got before: pandas' guess turns 09 (and 0109850) into a number
    naive = pd.read_csv(data_file)
    assert not pd.api.types.is_string_dtype(naive["grade_level"])

    df = runpy.run_path(str(data / "load_pandas.py"))["df"]  # the snippet as shipped, executed

    assert pd.api.types.is_string_dtype(df["grade_level"])
    assert sorted(df["grade_level"].dropna()) == sorted(g for g in grades if g)
    assert df["grade_level"].dropna().isin(["09", "10", "11", "12"]).all()
    if "school_id" in df.columns:  # the search may leave school out of a small cohort
        assert sorted(df["school_id"].dropna()) == sorted(r["school_id"] for r in raw if r["school_id"])
    assert len(df) == descriptor_rows(data)


def test_the_pandas_snippet_reads_school_id_as_0109850(demo: Path, tmp_path: Path):
    """school_id as the agreement defines it (a code kept as it is), in a kit made by the same function
    prepare uses, with the district's real school codes: the shipped snippet reads "0109850"."""
    from agreements import parse_agreement
    from agreements._release_kit import release_kit

    agreement = parse_agreement((demo / "agreement.json").read_bytes())
    report = {
        "columns": [
            {"name": "school_id", "source": "school_id", "treatment": "keep"},
            {"name": "birth_year", "source": "birth_date", "treatment": "generalize_date"},
        ],
        "policy": {"columns": {"birth_date": {"treatment": "generalize_date", "to": "year"}}},
    }
    kit = release_kit(agreement, report, "release.csv", sender="Lakeview USD", created="2026-12-05T00:00:00Z")
    for name, body in kit.items():
        (tmp_path / name).write_bytes(body)
    rows = [("0109850", "2008"), ("0112607", ""), ("1930049", "2009")]
    (tmp_path / "release.csv").write_text(
        '"school_id","birth_year"\n' + "".join(f'"{a}",{b}\n' for a, b in rows), encoding="utf-8-sig"
    )
    assert pd.read_csv(tmp_path / "release.csv")["school_id"].iloc[0] == 109850  # the bug

    df = runpy.run_path(str(tmp_path / "load_pandas.py"))["df"]

    assert df["school_id"].tolist() == ["0109850", "0112607", "1930049"]
    assert str(df["birth_year"].dtype) == "Int64" and df["birth_year"].isna().tolist() == [False, True, False]
    r = (tmp_path / "load_r.R").read_text(encoding="utf-8")
    assert '"school_id" = "character"' in r
    assert "stringcols(1)" in (tmp_path / "load_stata.do").read_text(encoding="utf-8")


def descriptor_rows(data: Path) -> int:
    manifest = json.loads((data.parent / "manifest.json").read_text(encoding="utf-8"))
    return next(f["rows"] for f in manifest["files"] if f["rows"] is not None)


def test_datapackage_validates_against_the_table_schema_and_its_data(
    data: Path, descriptor: dict, frictionless
):
    report = frictionless.validate(str(data / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])[:5]
    types = {f["name"]: f["type"] for f in _fields(descriptor)}
    assert types["student_code"] == types["grade_level"] == types["race"] == "string"
    from deid import SUPPRESSED_COLUMN

    assert types[SUPPRESSED_COLUMN] == "string"
    assert {types.get("school_id"), types.get("zip3")} <= {None, "string"}
    assert types.get("birth_year") in (None, "integer")
    sex = next(f for f in _fields(descriptor) if f["name"] == "sex")
    assert {"value": "F", "label": "Female"} in sex["categories"]
    missing = descriptor["resources"][0]["schema"]["missingValues"]
    assert [(m["value"], m["label"]) for m in missing] == list(MISSING_VALUES)
    assert descriptor["resources"][0]["encoding"] == "utf-8-sig"


def test_the_validator_catches_a_descriptor_that_lies_about_a_type(
    data: Path, descriptor: dict, tmp_path, frictionless
):
    """The check above could pass on anything if the validator never read the data: a code typed as an
    integer must fail (the codes carry letters in student_code)."""
    bad = json.loads(json.dumps(descriptor))
    next(f for f in _fields(bad) if f["name"] == "student_code")["type"] = "integer"
    shutil.copyfile(_data_file(data, descriptor), tmp_path / _data_file(data, descriptor).name)
    (tmp_path / "datapackage.json").write_text(json.dumps(bad), encoding="utf-8")
    report = frictionless.validate(str(tmp_path / "datapackage.json"))
    assert not report.valid
    assert "type-error" in {t for (t,) in report.flatten(["type"])}


def test_r_and_stata_snippets_declare_every_string_column_as_text(data: Path, descriptor: dict):
    fields = _fields(descriptor)
    strings = [f["name"] for f in fields if f["type"] == "string"]
    assert "grade_level" in strings and "student_code" in strings
    r = (data / "load_r.R").read_text(encoding="utf-8")
    declared = dict(re.findall(r'^\s+"([^"]+)" = "(\w+)"', r, re.M))
    assert set(declared) == {f["name"] for f in fields}
    assert all(declared[name] == "character" for name in strings)
    integers = [f["name"] for f in fields if f["type"] in ("integer", "number")]
    assert all(declared[name] in ("integer", "numeric") for name in integers)
    assert 'fileEncoding = "UTF-8-BOM"' in r and _data_file(data, descriptor).name in r
    stata = (data / "load_stata.do").read_text(encoding="utf-8")
    cols = [int(n) for n in re.search(r"stringcols\(([\d ]+)\)", stata).group(1).split()]
    assert [fields[i - 1]["name"] for i in cols] == strings
    numeric = re.search(r"numericcols\(([\d ]+)\)", stata)
    numbered = [fields[int(i) - 1]["name"] for i in numeric.group(1).split()] if numeric else []
    assert numbered == integers


def test_csv_files_start_with_a_bom_for_excel(data: Path, descriptor: dict):
    for path in (_data_file(data, descriptor), data / "codebook.csv"):
        head = path.read_bytes()[:3]
        assert head == codecs.BOM_UTF8, path.name
    header = _data_file(data, descriptor).read_text(encoding="utf-8-sig").splitlines()[0]
    assert header.startswith('"student_code"')


def test_release_report_says_what_was_done_and_what_to_do(demo: Path, data: Path):
    page = (data / "release-report.html").read_text(encoding="utf-8")
    report = json.loads((demo / "inbox" / "report.json").read_text(encoding="utf-8"))
    agreement = json.loads((demo / "agreement.json").read_text(encoding="utf-8"))
    assert agreement["purpose"].split(".")[0].replace("'", "&#x27;") in page
    assert agreement["destruction"]["deadline"] in page
    for column in report["columns"]:
        assert f"<td>{column['name']}</td>" in page
        if column["suppressed_cells"]:
            assert f"<td>{column['name']}</td><td>{column['suppressed_cells']:,}</td>" in page
    assert report["suppressed_cells"] > 0
    assert "Suppression by group" in page and report["suppression_by_group"]
    for sentence in report["disclosure"]["sentences"]:  # what the search generalized or left out
        assert html.escape(sentence) in page
    for warning in report["warnings"]:
        assert warning.replace("'", "&#x27;").replace('"', "&quot;") in page
    # the Risk step's charts, embedded (no file beside the page, no link out)
    pngs = re.findall(r'<img alt="Charts: [^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)">', page)
    assert len(pngs) == 1
    chart = base64.b64decode(pngs[0])
    assert chart.startswith(b"\x89PNG") and struct.unpack(">II", chart[16:24]) == (900, 260)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "<script" not in text and "http" not in text.replace("https://datapackage.org", "")


def test_nothing_in_the_kit_names_the_senders_extract_or_folders(demo: Path, data: Path):
    for path in [*data.iterdir(), demo / "inbox" / "report.json"]:
        if path.suffix == ".csv" and path.name != "codebook.csv":
            continue
        text = path.read_text(encoding="utf-8-sig")
        assert "district-extract" not in text, path.name
        assert str(demo) not in text and str(demo.parent) not in text, path.name
    report = json.loads((demo / "inbox" / "report.json").read_text(encoding="utf-8"))
    assert report["input"] == "the extract" and report["timings"] == {}


def test_suppression_by_group_counts_who_lost_cells_and_hides_small_groups():
    before = pa.table({"race": ["700"] * 6 + ["201"] * 4 + ["100"], "sex": ["F", "M"] * 5 + ["F"]})
    after = pa.table({"race": ["700"] * 6 + [None] * 4 + [None], "sex": ["F", "M"] * 5 + ["F"]})
    codes = {"race": ["700", "201", "100"], "sex": ["F"]}
    groups = suppression_by_group(before, after, ["race", "sex"], 3, codes)
    assert groups["race"]["700"] == {"rows": 6, "rows_with_suppression": 0, "share": "0%", "value_blanked": 0}
    assert groups["race"]["201"] == {
        "rows": 4,
        "rows_with_suppression": 4,
        "share": "100%",
        "value_blanked": 4,
    }
    assert "100" not in groups["race"]  # one student: folded away
    assert groups["race"]["(smaller groups)"]["rows"] == 1
    assert groups["sex"]["F"]["rows_with_suppression"] == 3  # rows 7, 9 and 11 lost their race
    assert groups["sex"]["F"]["value_blanked"] == 0
    # a value that is not a published code is a cell value: counted, never named
    assert "M" not in groups["sex"] and groups["sex"]["(other values)"]["rows"] == 5
    unchanged = suppression_by_group(before, before, ["race"], 3, codes)
    assert unchanged["race"]["201"]["rows_with_suppression"] == 0
    assert suppression_by_group(before, after, ["race"], 3, {}) == {}


# --------------------------------------------------------------------- counts computed once (issue 17)


def test_left_out_columns_are_counted_once_and_shown_the_same_everywhere(demo: Path):
    """The app's step 4, prepare's summary (the CLI and the app's Done), the sender's report and the
    recipient's report all say how many of the extract's columns stay home with the same numbers."""
    from types import SimpleNamespace

    from agreements import Vault, get_profile, list_agreements
    from deid import DeidReport
    from desktop.ui.jobs import confirm_mapping

    received = json.loads((demo / "inbox" / "report.json").read_text(encoding="utf-8"))
    with (demo / "district-extract.csv").open(encoding="utf-8-sig", newline="") as fh:
        headers = next(csv.reader(fh))
    assert received["extract_columns"] == len(headers) == 30
    left = received["extract_columns_left_out"]
    assert left == 13  # names, IDs, contact details and columns the agreement does not list
    sentence = f"{left} of the extract's {len(headers)} columns are not shared"
    assert sentence in DeidReport.from_dict(received).summary()  # what the recipient reads
    assert "left_out_headers" not in received  # the sender's headers stay home
    sender = "\n".join(SAID)
    assert f"Not included: {sentence}: " in sender  # prepare's summary: the CLI, the app's Done step
    assert "First Name" in sender.split(sentence, 1)[1].splitlines()[0]
    page = (demo / "inbox" / "data" / "release-report.html").read_text(encoding="utf-8")
    assert html.escape(sentence) in page

    vault = Vault.open(demo / "district.vault", PASS)
    try:
        profile = get_profile(vault, "Synthetic SIS export")
        agreement_id = list_agreements(vault)[0].id
        findings = confirm_mapping(
            SimpleNamespace(vault=vault, progress=lambda *_: None),
            str(demo / "district-extract.csv"),
            agreement_id,
            "Synthetic SIS export",
            dict(profile.columns),
            dict(profile.recodes),
            dict(profile.date_formats),
        )
    finally:
        vault.close()
    (step4,) = [f["message"] for f in findings if f.get("kind") == "left_out"]
    assert step4.startswith(sentence + ": ")
    # names and IDs mapped onto elements the agreement drops are counted too (step 4 used to omit them)
    assert "First Name" in step4 and "Last Name" in step4


def test_the_sender_sees_every_warning_the_recipient_sees(demo: Path):
    received = json.loads((demo / "inbox" / "report.json").read_text(encoding="utf-8"))
    assert received["warnings"], "the demo's release carries warnings; the test needs some"
    sender = "\n".join(SAID)
    for warning in received["warnings"]:
        assert f"Warning: {warning}." in sender


def test_what_was_done_to_a_column_includes_the_privacy_checks_generalization(demo: Path):
    """A column kept "as is" by the agreement but generalized by the privacy check is not described as
    "released as is" (on the seal step or in the codebook the analyst reads)."""
    from agreements import parse_agreement, treatment_words

    agreement = parse_agreement((demo / "agreement.json").read_bytes())
    report = {
        "columns": [
            {"name": "race", "source": "race", "treatment": "keep"},
            {"name": "sex", "source": "sex", "treatment": "keep"},
            {"name": "birth_year", "source": "birth_date", "treatment": "generalize_date"},
        ],
        "policy": {"columns": {"birth_date": {"treatment": "generalize_date", "to": "year"}}},
        "disclosure": {"level_words": {"race": "as federal race categories", "sex": "as it is",
                                       "birth_year": "as 10-year bands"}},
    }  # fmt: skip
    words = treatment_words(agreement, report)
    assert words["race"] == "shared as federal race categories (the privacy check's choice)"
    assert words["sex"] == "released as is"
    assert words["birth_year"].startswith("generalized to the year, then shared as 10-year bands")
