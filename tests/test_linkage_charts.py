"""The analyst's charts of a link run (deid/_linkcharts.py): drawn from the report's counts only —
the weight of each kind of token and the candidate pairs by score — as PNG by the library."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from deid import link_chart_data, link_chart_png
from deid._linkmatch import link_tables
from deid._linktokens import LinkFields, link_tokens
from deid._secrets import derive_key
from deid.synth import generate

KEY = derive_key(b"charts test secret, 32 bytes....", "link_tokens")
FIELDS = LinkFields("SSID", "First Name", None, "Last Name", "Birth Date", "Gender")


def _pair() -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    district = generate("k12", 200, seed=21).table
    rows = np.random.default_rng(2).choice(200, 120, replace=False)
    college = district.take(pa.array(rows))
    college = college.set_column(college.column_names.index("SSID"), "SSID", pa.nulls(120, pa.string()))
    return link_tokens(district, FIELDS, KEY), link_tokens(college, FIELDS, KEY)


def test_chart_data_are_the_reports_weights_and_scores_and_the_png_draws_them() -> None:
    a, b = _pair()
    for method in ("combined", "em"):
        report = link_tables(a, b, method=method).report
        d = link_chart_data(report)
        assert d["threshold"] == report.threshold and d["estimated"] == (method == "em")
        assert sum(d["score_counts"].values()) == report.candidate_pairs > 0
        assert {k: d["agree"][k] for k in ("A", "E")} == {k: float(report.weights[k]) for k in ("A", "E")}
        if method == "em":  # estimated: not agreeing on the name-and-birth-date kind counts against
            assert d["disagree"]["A"] < 0
        # Pairs at or above the threshold are at least the linked students (one-to-one keeps fewer).
        linked = sum(n for s, n in d["score_counts"].items() if s >= round(report.threshold))
        assert linked >= report.linked > 100
        png = link_chart_png(report, width_px=800, height_px=300)
        image = mpimg.imread(io.BytesIO(png), format="png")
        assert image.shape[:2] == (300, 800) and image[..., :3].std() > 0.05  # drawn, not blank
        assert json.dumps(d).isascii() and "link_tokens" not in json.dumps(d)


def test_cli_link_writes_the_chart_and_refuses_a_chart_that_is_not_png(
    run_cli, tmp_path: Path, cli_vault: Path
) -> None:
    a, b = _pair()
    pcsv.write_csv(pa.table({"link_tokens": a}), tmp_path / "a.csv")
    pcsv.write_csv(pa.table({"link_tokens": b}), tmp_path / "b.csv")
    args = ["link", tmp_path / "a.csv", tmp_path / "b.csv", "--out", tmp_path / "l.csv"]
    code, out, err = run_cli(*args, "--report", tmp_path / "r.json", "--chart", tmp_path / "c.png")
    assert code == 0, err
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "c.png" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["engine"] == "duckdb" and sum(report["score_counts"].values()) == report["candidate_pairs"]
    code, out, err = run_cli(*args[:-1], tmp_path / "l2.csv", "--chart", tmp_path / "c.jpg")
    assert code == 1 and "PNG" in err and not (tmp_path / "l2.csv").exists()
    assert not list(tmp_path.glob(".pathshare-spill-*"))
