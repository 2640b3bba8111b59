"""One rule for CSV cells a spreadsheet would run as a formula (deid/_csvsafe.py): the vectorized form
for released data and the scalar form for every other CSV agree, plain numbers stay numbers, and the
codebook — whose labels come from a partner's file — is covered too (it had no protection)."""

from __future__ import annotations

import csv
import io

import pyarrow as pa

from agreements._codebook import COLUMNS, Codebook, codebook_csv
from deid import spreadsheet_safe, write_table

SAMPLES = [
    "=1+1", "+1", "-5", "-5\n", "+3.2", "-1e3", ".5", "@SUM(A1)", "\tx", "\rx", "-2+3", "- bullet", "plain",
    "", "'quoted", "1-2", "=HYPERLINK(\"http://x\")", "+", "-",
]  # fmt: skip


def test_the_scalar_and_the_vectorized_rule_agree(tmp_path):
    """Released data is written with the vectorized form (deid.write_table); read back, each cell is
    what the scalar form gives."""
    out = tmp_path / "out.csv"
    write_table(pa.table({"v": pa.array(SAMPLES, pa.string())}), out)
    with open(out, encoding="utf-8-sig", newline="") as fh:
        written = [row["v"] for row in csv.DictReader(fh)]
    assert written == [spreadsheet_safe(s) or "" for s in SAMPLES]


def test_formulas_are_quoted_and_numbers_are_not():
    assert spreadsheet_safe("=1+1") == "'=1+1" and spreadsheet_safe("@SUM(A1)") == "'@SUM(A1)"
    assert spreadsheet_safe("-2+3") == "'-2+3" and spreadsheet_safe("\tx") == "'\tx"
    # plain numbers cannot run: they stay numbers (the audit and outcome CSVs used to quote "-5")
    assert [spreadsheet_safe(s) for s in ("-5", "+3.2", "-1e3")] == ["-5", "+3.2", "-1e3"]
    assert spreadsheet_safe(7) == 7 and spreadsheet_safe(None) is None and spreadsheet_safe("a=b") == "a=b"


def test_the_codebook_csv_does_not_carry_a_formula():
    row = dict.fromkeys(COLUMNS, "")
    row.update(column="gpa", element="gpa", label='=HYPERLINK("http://evil.example","GPA")')
    text = codebook_csv(Codebook("Codebook", [row]))
    (parsed,) = list(csv.DictReader(io.StringIO(text)))
    assert parsed["label"] == "'" + row["label"] and parsed["column"] == "gpa"
