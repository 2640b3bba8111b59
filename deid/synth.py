"""Synthetic student extracts with known truth, for tests, benchmarks and demos.

For most uses, call::

    from deid.synth import generate, write_synth
    result = generate("k12", 10_000, seed=7)          # SynthResult(table, truth)
    write_synth(result, "district.csv")               # .csv, .parquet or .xlsx
    result.truth.save("district.truth.json")

Two kinds of export describe ONE population (same seed → same people; independent of ``rows``):

``k12`` — a student-information-system extract, these 30 columns in this order (``K12_HEADERS``)::

    SSID, Local ID, First Name, Middle Name, Last Name, Birth Date (MM/DD/YYYY), Gender (M/F/X),
    Hispanic (Y/N), Race Code (CALPADS: 100, 201-208, 299, 301-304, 399, 400, 600, 700; empty for a few
    Hispanic students), Address, City, ZIP, Phone ("(626) 555-0123"), Guardian Name, Guardian Email,
    Student Email, Grade (KN, 01 … 12; mostly 09-12), School Code (7 digits), Enroll Date,
    EL Status (EO/IFEP/EL/RFEP/TBD), IEP, 504 Plan, FRPM, CTE Pathway (3 digits or empty),
    Dual Enrollment, Credits Earned, GPA (0.00-4.00), Attendance Rate (0.873), Discipline Count,
    Counselor Notes

Counselor Notes hold 0-4 sentences (about 15% empty) mentioning the student (first name alone, full
name, or last name alone), guardians, other students of the same file, staff ("Ms. Nguyen"), phone
numbers, emails, sometimes an SSN or the student's SSID / local ID — all recorded in the truth — and
innocuous look-alikes (dates, "MATH 101", "Room 214", "Ext. 2231", a CDS code) for precision.

K-12 row ``i`` is person ``i``: the file of N rows is the first N rows of any larger file with the
same seed. Ages follow grade at the fixed reference date 2026-06-30 (end of school year 2025-26).

``college`` — a community-college MIS extract, one row per student (``COLLEGE_HEADERS``)::

    STU_ID ("A" + 8 digits), SSID (10 digits, present for ~60% of K-12 students and ~45% of others),
    STU_LAST_NM, STU_FIRST_NM, STU_MID_NM, STU_BIRTH_DT (YYYYMMDD),
    SEX (1 female, 2 male, 3 nonbinary or unknown), ETHNICITY (one letter: H Hispanic/Latino of any
    race, N American Indian/Alaska Native, A Asian, P Pacific Islander, F Filipino, B Black, W White,
    T two or more, X unknown/declined), ZIP_CD (5 digits or ZIP+4 "91770-1234"), EMAIL_ADDR,
    PHONE_NBR (10 digits, some "626-555-0123"), TERM_CD ("2025FA", "2026SP", …), UNITS_ATT,
    UNITS_ERN, TOP_CD (6 digits, e.g. "094800"), AWARD_CD (MIS SP02: A, S, Y, Z, E, B, L, T or empty),
    CUM_GPA (3 decimals or empty), DUAL_ENRL_FLG (Y/N)

The overlap rule: the college file made with seed S and ``rows`` M holds every person among the first
M people of the K-12 population of seed S who is in grade 11 or 12 and dual-enrolled, or a senior
headed to the college (about a sixth of M), plus college-only people for the remaining rows, shuffled.
So a K-12 file with the same seed and at least M rows contains all of the college file's K-12 students.
Their college rows carry realistic noise, recorded per row in ``truth.noise`` (bit flags named in
``NOISE_FLAGS``): nicknames and other name forms (Robert→Bob, José→Jose), one-character typos,
accents dropped, a compound surname cut to one half or re-joined, a middle name missing or cut to its
initial, the middle name used as the first, day and month swapped, sex unknown, a new ZIP, no SSID,
names in capitals. (Nickname groups: deid/data/synth/nicknames.txt.)

Names: curated lists per origin group (deid/data/synth/first_names.txt, last_names.txt: accents,
hyphens, apostrophes, Hispanic double surnames) with a long tail from Faker's person lists
(more_*.txt, MIT), weighted 1/(rank + 8) so a few names are common and most are rare.

``messy=True`` makes the file look like real exports (CSV only):

* K-12: Windows-1252 bytes without a byte-order mark; letters cp1252 lacks lose their accents as
  Windows' "best fit" conversion does (Nguyễn → Nguyen, Đức → Duc; José keeps its é), in the table
  as in the file. College: UTF-8 with a byte-order mark (a BOM and cp1252 do not mix).
* CRLF row ends; K-12 notes with newlines inside quoted cells (LF) and curly apostrophes / en dashes
  (the college export has no free-text column).
* Dates in mixed spreadsheet formats: the usual one, M/D/YY, YYYY-MM-DD, and Excel serial numbers.
* A second column under the same header (K-12 "Phone", college "PHONE_NBR": an alternate phone,
  often empty), placed after the last real column; a reader can repair it by renaming the second
  occurrence (e.g. "Phone_2").
* Two trailing columns with empty names (the header ends in ",,"), their cells empty.
* Three ragged rows (files of 20 rows or more), listed in ``truth.ragged_rows``: two lack the last
  (empty) field, one has an extra empty field.

Truth (``Truth``, saved by ``--truth FILE`` as compact JSON): ``person_id`` per row, planted PII spans
in the notes (row, kind, start, end, source; kinds PERSON, PHONE_NUMBER, EMAIL_ADDRESS, US_SSN,
STUDENT_ID; sources in ``SPAN_SOURCES`` say whose value it is: the student's own, another person in
the file (guardian, other student), or staff, whose names appear nowhere else in the file), and
``columns``: (header, element) pairs naming each column's data-dictionary element.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from deid._synth import _exports as ex
from deid._synth import _notes
from deid._synth import _people as pp
from deid._synth._truth import Truth
from deid._synth._write import XLSX_MAX_ROWS, output_format, write_messy_csv, write_table
from deid.errors import InputError, OutputError

__all__ = [
    "COLLEGE_HEADERS",
    "COLLEGE_ONLY_BASE",
    "ETHNICITY_CODES",
    "K12_HEADERS",
    "KINDS",
    "MAX_ROWS",
    "NOISE_FLAGS",
    "REFERENCE_DATE",
    "SPAN_KINDS",
    "SPAN_SOURCES",
    "XLSX_MAX_ROWS",
    "SynthResult",
    "Truth",
    "column_elements",
    "generate",
    "load_truth",
    "synth_file",
    "write_synth",
]

KINDS = ("k12", "college")
K12_HEADERS: tuple[str, ...] = tuple(h for h, _ in ex.K12_COLUMNS)
COLLEGE_HEADERS: tuple[str, ...] = tuple(h for h, _ in ex.COLLEGE_COLUMNS)
NOISE_FLAGS = ex.NOISE_FLAGS
ETHNICITY_CODES = ex.ETHNICITY_CODES
SPAN_KINDS = _notes.SPAN_KINDS
SPAN_SOURCES = _notes.SPAN_SOURCES
REFERENCE_DATE = pp.REFERENCE_DATE
MAX_ROWS = pp.MAX_ROWS
COLLEGE_ONLY_BASE = pp.COLLEGE_ONLY_BASE
_MESSY_ENCODING = {"k12": "cp1252", "college": "utf-8-sig"}


@dataclass
class SynthResult:
    """A generated table (every column text) and what is known about it."""

    table: pa.Table
    truth: Truth


def column_elements(kind: str) -> dict[str, str]:
    """Header → data-dictionary element for a clean export of ``kind``."""
    _check_kind(kind)
    return dict(ex.K12_COLUMNS if kind == "k12" else ex.COLLEGE_COLUMNS)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"Unknown kind of synthetic export {kind!r}: use k12 or college.")


def _check_rows(rows: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int | np.integer) or not 1 <= rows <= MAX_ROWS:
        raise InputError(f"The number of rows must be a whole number from 1 to {MAX_ROWS:,}.")


def generate(kind: str, rows: int, seed: int = 0, messy: bool = False) -> SynthResult:
    """Generate ``rows`` rows of a ``kind`` ("k12" or "college") export, reproducibly from ``seed``."""
    _check_kind(kind)
    _check_rows(rows)
    seed = int(seed)
    if seed < 0:
        raise InputError("The seed must be zero or a positive whole number.")
    if kind == "k12":
        return _generate_k12(rows, seed, messy)
    return _generate_college(rows, seed, messy)


def _messy_layout(columns: dict[str, pa.Array], kind: str, n: int) -> tuple[list[str], list[pa.Array]]:
    """Headers and arrays in file order; the messy extra column gets its duplicate name back."""
    names, arrays = [], []
    for name, arr in columns.items():
        names.append(name.rstrip())  # "Phone " → "Phone": the duplicate header
        arrays.append(arr)
    for _ in range(ex.TRAILING_EMPTY_COLUMNS):
        names.append("")
        arrays.append(pa.nulls(n, pa.string()))
    return names, arrays


def _ragged(seed: int, rows: int, width: int) -> list[dict[str, int]]:
    if rows < 20:
        return []
    rng = np.random.default_rng(np.random.SeedSequence([seed, pp.MESSY, rows, 1]))
    picked = sorted(int(r) for r in rng.choice(np.arange(10, rows), 3, replace=False))
    return [
        {"row": picked[0], "fields": width - 1},
        {"row": picked[1], "fields": width + 1},
        {"row": picked[2], "fields": width - 1},
    ]


def _generate_k12(rows: int, seed: int, messy: bool) -> SynthResult:
    chunks: dict[str, list[pa.Array]] = {}
    span_parts: list[dict[str, np.ndarray]] = []
    blocks = range(-(-rows // pp.BLOCK))
    ex.load_tables()  # once, before the threads share them
    # Blocks are independent (each has its own random streams), so they can be made side by side:
    # pyarrow and numpy release the GIL for most of the work. Results are taken in block order.
    with ThreadPoolExecutor(max_workers=min(len(blocks), os.cpu_count() or 1)) as pool:
        made = pool.map(lambda b: ex.k12_block(seed, b, messy), blocks)
        results = list(made)
    for block, (columns, spans) in zip(blocks, results, strict=True):
        start = block * pp.BLOCK
        keep = min(pp.BLOCK, rows - start)
        for name, arr in columns.items():
            chunks.setdefault(name, []).append(arr.slice(0, keep))
        inside = spans["row"] < keep
        span_parts.append({k: v[inside] for k, v in spans.items()})
        span_parts[-1]["row"] = span_parts[-1]["row"] + start
    columns = {name: pa.chunked_array(parts) for name, parts in chunks.items()}
    spans = {k: np.concatenate([p[k] for p in span_parts]) for k in ("row", "kind", "start", "end", "source")}
    spans["kind"] = np.asarray(SPAN_KINDS, dtype=object)[spans["kind"]]
    spans["source"] = np.asarray(_notes.SPAN_SOURCES, dtype=object)[spans["source"]]
    mapping: list[tuple[str, str | None]] = list(ex.K12_COLUMNS)
    if messy:
        names, arrays = _messy_layout(columns, "k12", rows)
        mapping += [ex.MESSY_EXTRA["k12"]] + [("", None)] * ex.TRAILING_EMPTY_COLUMNS
    else:
        names, arrays = list(columns), list(columns.values())
    table = pa.Table.from_arrays(arrays, names=names)
    truth = Truth(
        kind="k12",
        seed=seed,
        rows=rows,
        messy=messy,
        person_id=np.arange(rows, dtype=np.int64),
        columns=mapping,
        notes_column="Counselor Notes",
        spans=spans,
        ragged_rows=_ragged(seed, rows, len(names)) if messy else [],
        encoding=_MESSY_ENCODING["k12"] if messy else "utf-8",
    )
    return SynthResult(table, truth)


def _generate_college(rows: int, seed: int, messy: bool) -> SynthResult:
    columns, person_id, noise = ex.college(seed, rows, messy)
    mapping: list[tuple[str, str | None]] = list(ex.COLLEGE_COLUMNS)
    if messy:
        names, arrays = _messy_layout(columns, "college", rows)
        mapping += [ex.MESSY_EXTRA["college"]] + [("", None)] * ex.TRAILING_EMPTY_COLUMNS
    else:
        names, arrays = list(columns), list(columns.values())
    empty = np.zeros(0, dtype=np.int64)
    truth = Truth(
        kind="college",
        seed=seed,
        rows=rows,
        messy=messy,
        person_id=person_id,
        columns=mapping,
        notes_column=None,
        spans={
            "row": empty,
            "kind": np.zeros(0, dtype=object),
            "start": empty,
            "end": empty,
            "source": np.zeros(0, dtype=object),
        },
        noise=noise,
        noise_flags=NOISE_FLAGS,
        ragged_rows=_ragged(seed, rows, len(names)) if messy else [],
        encoding=_MESSY_ENCODING["college"] if messy else "utf-8",
    )
    return SynthResult(pa.Table.from_arrays(arrays, names=names), truth)


def write_synth(
    result: SynthResult, path: str | os.PathLike[str], messy: bool | None = None, *, force: bool = False
) -> None:
    """Write a generated table to ``path`` (.csv, .parquet or .xlsx; messy results: .csv only), atomically.

    A result is written messy exactly when it was generated with ``messy=True`` (its truth describes
    the file); ``messy``, when given, must agree. Raises OutputError (one sentence) for an unsupported
    name, a missing folder, a messy result to a non-CSV file, or more rows than an Excel sheet holds.
    """
    if messy is not None and bool(messy) != result.truth.messy:
        raise OutputError(
            f"Cannot write {path} {'messy' if messy else 'clean'}: the data was generated "
            f"{'clean' if messy else 'messy'}; generate it again with messy={bool(messy)}."
        )
    fmt = output_format(path, result.table.num_rows, result.truth.messy, force=force)
    if result.truth.messy:
        write_messy_csv(result.table, path, result.truth.encoding, result.truth.ragged_rows, force=force)
    else:
        write_table(result.table, path, fmt, force=force)


def synth_file(
    kind: str,
    rows: int,
    out: str | os.PathLike[str],
    seed: int = 0,
    messy: bool = False,
    truth_path: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
) -> SynthResult:
    """Generate and write in one step (what ``pathshare synth`` does); checks the paths before generating.
    Existing files are replaced only with ``force``."""
    _check_kind(kind)
    _check_rows(rows)
    output_format(out, rows, messy, force=force)
    if truth_path is not None:
        from deid._atomic import check_output_path
        from deid._io import check_distinct_files

        check_output_path(truth_path, force=force)
        check_distinct_files([], [("the extract", out), ("the truth file", truth_path)])
    result = generate(kind, rows, seed=seed, messy=messy)
    write_synth(result, out, force=force)
    if truth_path is not None:
        result.truth.save(truth_path, force=force)
    return result


def load_truth(path: str | os.PathLike[str]) -> Truth:
    """Read a truth file written by ``Truth.save`` (``pathshare synth --truth``)."""
    return Truth.load(path)
