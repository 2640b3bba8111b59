"""The agreement's choice of format for released data (issue 17 item 7): CSV with a BOM (the default), or
an Excel workbook whose text columns are typed as text, so a code like 0109850 stays "0109850" in Excel
and in the analyst's loaders — written by deid's one writer for released rows, described by the kit."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pandas as pd
import pyarrow as pa

from agreements import (
    Vault,
    create_agreement,
    export_agreement,
    import_agreement,
    open_received,
    parse_agreement,
    prepare,
    sign_agreement,
)
from agreements._demo import run_demo
from agreements._release_kit import release_kit
from deid import write_release

PASS = "correct horse battery staple 42"


def _example_agreement():
    root = Path(__file__).resolve().parent.parent
    return parse_agreement((root / "docs/examples/agreement.json").read_bytes())


def test_the_kit_of_a_workbook_loads_school_id_as_0109850(tmp_path: Path):
    """The shipped pandas loader reads the workbook with every code as text; the R and Stata loaders
    read it as text too; the descriptor says it is a workbook and names its sheet."""
    report = {
        "columns": [
            {"name": "school_id", "source": "school_id", "treatment": "keep"},
            {"name": "birth_year", "source": "birth_date", "treatment": "generalize_date"},
        ],
        "policy": {"columns": {"birth_date": {"treatment": "generalize_date", "to": "year"}}},
    }
    kit = release_kit(_example_agreement(), report, "release.xlsx", sender="Lakeview USD",
                      created="2026-12-05T00:00:00Z")  # fmt: skip
    for name, body in kit.items():
        (tmp_path / name).write_bytes(body)
    rows = pa.table({"school_id": ["0109850", "0112607", "1930049"], "birth_year": ["2008", None, "2009"]})
    write_release(rows, tmp_path / "release.xlsx")
    # pandas' own guess turns even a text cell that looks like a number into one: the loader matters
    naive = pd.read_excel(tmp_path / "release.xlsx", engine="openpyxl")
    assert 109850 in naive["school_id"].tolist()

    df = runpy.run_path(str(tmp_path / "load_pandas.py"))["df"]

    assert sorted(df["school_id"]) == ["0109850", "0112607", "1930049"]
    assert str(df["birth_year"].dtype) == "Int64" and df["birth_year"].isna().sum() == 1
    (resource,) = json.loads(kit["datapackage.json"])["resources"]
    assert resource["format"] == "xlsx" and resource["dialect"]["sheetName"] == "data"
    assert "encoding" not in resource
    r = kit["load_r.R"].decode("utf-8")
    assert "readxl::read_excel" in r and 'col_types = c("text", "numeric"' in r
    stata = kit["load_stata.do"].decode("utf-8")
    assert 'import excel using "release.xlsx", sheet("data")' in stata and "allstring" in stata
    assert "destring birth_year, replace" in stata


def test_an_agreement_that_chooses_xlsx_gets_a_workbook_in_the_package(tmp_path: Path):
    """End to end: the district and the college execute an agreement whose policy says xlsx; prepare
    seals a workbook (no CSV), the college opens it, and the shipped loader reads grade 09 as "09"."""
    demo = tmp_path / "demo"
    assert run_demo(demo, rows=200, passphrase=PASS, say=lambda _line: None).ok
    executed = parse_agreement((demo / "agreement.json").read_bytes())
    terms = json.loads(json.dumps(executed.body))
    terms.pop("id")
    terms["title"] += " (workbook)"
    terms["policy"]["release_format"] = "xlsx"
    with (
        Vault.open(demo / "district.vault", PASS) as district,
        Vault.open(demo / "college.vault", PASS) as college,
    ):
        draft = create_agreement(district, terms)
        sign_agreement(district, draft.id)
        export_agreement(district, draft.id, tmp_path / "proposed.json")
        import_agreement(college, tmp_path / "proposed.json")
        sign_agreement(college, draft.id)
        export_agreement(college, draft.id, tmp_path / "executed.json")
        import_agreement(district, tmp_path / "executed.json")
        prepared = prepare(district, demo / "district-extract.csv", draft.id, tmp_path / "book.age")
        assert prepared.data_name.endswith(".xlsx")
        open_received(college, tmp_path / "book.age", tmp_path / "inbox")
    data = tmp_path / "inbox" / "data"
    # the workbook is the package's one data file (codebook.csv is the kit's)
    assert [p.name for p in data.iterdir() if p.suffix == ".xlsx"] == [Path(prepared.data_name).name]
    assert not [p for p in data.iterdir() if p.suffix == ".csv" and p.name != "codebook.csv"]
    df = runpy.run_path(str(data / "load_pandas.py"))["df"]
    assert pd.api.types.is_string_dtype(df["grade_level"])
    grades = df["grade_level"].dropna()
    assert grades.isin(["09", "10", "11", "12"]).all() and (grades == "09").any()
