"""Benchmark: linking a district's and a college's de-identified files (issue 8).

A PATHSHARE_BENCH_ROWS-row (default 1,000,000) synthetic K-12 extract and a college extract of as many
rows with the same seed (overlapping populations; the college side carries typos, nicknames, dropped
accents, split or re-joined surnames, swapped day and month, missing SSIDs) are tokenized under one
secret (link tokens, plus the Cal-PASS derived key for the baseline) and written as Parquet. Then,
each in a fresh subprocess (its own peak memory), two files are linked three ways and scored against
the generator's truth:

- ``id``: the state student ID token only;
- ``calpass``: the baseline — the ID token, then the Cal-PASS-style derived key (first three letters
  of first and last name, sex, birth date) for rows the ID did not link (exact, unambiguous keys);
- ``combined``: PathShare's several keyed tokens per student, the hand-set weights and one-to-one assignment;
- ``em``: the same tokens, weights estimated from the two files (Fellegi–Sunter, EM; deid/_fsem.py);
- ``splink defaults (raw)``: Splink (installed for the benchmark by the Makefile, not an app dependency)
  with its standard comparisons and training on the *raw* identifiers — the usual probabilistic-linkage
  baseline, which sees what PathShare's recipient never does (see _SPLINK).

Each runs on DuckDB (``link``'s default engine: the token join out of core, within 1 GB, spilling to
a folder beside the output; deid/_linkdb.py); ``combined`` runs a second time on the in-memory engine
(numpy, the path before issue 18), the baseline of the time and memory figures — and the two must
give the same pairs and scores.

Printed and written to bench-results/linkage.json: precision, recall, F1, wall and CPU time and peak
RSS (the child's own VmHWM) of each method, and of tokenizing. Nothing here asserts on speed; the
test asserts that both engines give the same links.

    make bench        # or: PATHSHARE_BENCH_ROWS=100000 .venv/bin/python -m pytest -s \\
                      #   tests/benchmarks/bench_linkage.py -o addopts="" -o python_files="bench_*.py"
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
SEED = 5
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "linkage.json"

_TOKENIZE = r"""
import json, resource, sys, time


def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss carries the parent's over exec on Linux).
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))) / 1024
from pathlib import Path
import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
from deid._linktokens import LinkFields, link_tokens
from deid._secrets import derive_key
from deid.synth import generate

rows, seed, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
key = derive_key(b"bench consortium secret, 32 byte", "link_tokens")
t0 = time.perf_counter()
k12 = generate("k12", rows, seed=seed)
col = generate("college", rows, seed=seed)
t_gen = time.perf_counter() - t0
sex = pc.take(pa.array(["F", "M", "X"]), pc.subtract(pc.cast(col.table["SEX"], pa.int64()), 1))
ct = col.table.set_column(col.table.column_names.index("SEX"), "SEX", sex)
sides = (
    (k12.table, LinkFields("SSID", "First Name", "Middle Name", "Last Name", "Birth Date", "Gender"),
     "Grade"),
    (ct, LinkFields("SSID", "STU_FIRST_NM", "STU_MID_NM", "STU_LAST_NM", "STU_BIRTH_DT", "SEX"), "TERM_CD"),
)
# The raw identifiers, for Splink's baseline (it compares values; PathShare links on keyed tokens).
pq.write_table(k12.table.select(["SSID", "First Name", "Middle Name", "Last Name", "Birth Date", "Gender"]),
               folder / "district_raw.parquet")
pq.write_table(ct.select(["SSID", "STU_FIRST_NM", "STU_MID_NM", "STU_LAST_NM", "STU_BIRTH_DT", "SEX"]),
               folder / "college_raw.parquet")
del k12.table, col.table
t1 = time.perf_counter()
for name, (table, fields, keep) in zip(("district", "college"), sides):
    tokens = link_tokens(table, fields, key, baseline=True)
    pq.write_table(pa.table({"link_tokens": tokens, keep: table.column(keep)}), folder / f"{name}.parquet")
t_tok = time.perf_counter() - t1
np.save(folder / "district_person.npy", k12.truth.person_id)
np.save(folder / "college_person.npy", col.truth.person_id)
print(json.dumps({
    "generate_s": t_gen, "tokenize_s": t_tok,
    "tokens_per_row": float(pc.mean(pc.divide(pc.add(pc.utf8_length(tokens), 1), 13)).as_py()),
    "file_bytes": sum((folder / f"{n}.parquet").stat().st_size for n in ("district", "college")),
    "peak_rss_mb": peak_mb(),
}))
"""

_LINK = r"""
import json, resource, sys, time


def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss carries the parent's over exec on Linux).
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))) / 1024
from pathlib import Path
import numpy as np
sys.path.insert(0, "tests")  # (run from the repository's root)
from linkscore import evaluate, truth_pairs
from deid._linkfiles import link

method, folder, engine = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
links = link(folder / "district.parquet", folder / "college.parquet",
             folder / f"linked_{method}_{engine}.parquet", method=method, engine=engine)
elapsed = time.perf_counter() - t0
peak = peak_mb()
ru = resource.getrusage(resource.RUSAGE_SELF)
cpu = ru.ru_utime + ru.ru_stime  # every thread of this process (DuckDB's too), start-up included
np.save(folder / f"pairs_{method}_{engine}.npy", np.stack([links.row_a, links.row_b, links.score]))
truth = truth_pairs(np.load(folder / "district_person.npy"), np.load(folder / "college_person.npy"))
score = evaluate(links.pairs(), truth)
p, r = score["precision"], score["recall"]
print(json.dumps({
    "seconds": elapsed, "cpu_s": cpu, "peak_rss_mb": peak, "engine": links.report.engine,
    **score, "f1": 2 * p * r / (p + r) if p + r else 0.0,
    "linked_by": links.report.linked_by, "candidate_pairs": links.report.candidate_pairs,
    "left_ambiguous": links.report.left_ambiguous, "estimated": links.report.estimated,
}))
"""

# Splink (5.x, on DuckDB) with its standard comparisons and training steps on the raw identifiers: the
# usual baseline of probabilistic linkage. Values cleaned as a Splink user would (upper case, no
# accents, blanks as NULL, ISO dates, sex F/M); comparisons NameComparison (first name, surname),
# DateOfBirthComparison, ExactMatch (sex, SSID); blocking on the SSID, first name + birth date,
# surname + birth date, first name + surname; λ from deterministic rules, u by random sampling (its
# default 1e6 pairs), m by EM in two sessions (blocked on the names, then on the SSID); predictions
# one-to-one by Splink's single best links at match probability 0.5. DuckDB within 1 GB, as PathShare.
_SPLINK = r"""
import json, resource, sys, time
from pathlib import Path


def peak_mb():
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:"))) / 1024
import duckdb
import numpy as np
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

folder = Path(sys.argv[1])
t0 = time.perf_counter()
(folder / "splink-spill").mkdir(exist_ok=True)
con = duckdb.connect(config={"memory_limit": "1024MB", "temp_directory": str(folder / "splink-spill")})


def clean(c):
    return f"NULLIF(trim(strip_accents(upper({c}))), '')"


for name, (ssid, first, mid, last, dob, fmt, sex) in {
    "district": ('"SSID"', '"First Name"', '"Middle Name"', '"Last Name"', '"Birth Date"', "%m/%d/%Y",
                 '"Gender"'),
    "college": ('"SSID"', '"STU_FIRST_NM"', '"STU_MID_NM"', '"STU_LAST_NM"', '"STU_BIRTH_DT"', "%Y%m%d",
                '"SEX"'),
}.items():
    path = folder / (name + "_raw.parquet")
    con.execute(
        f"CREATE TABLE {name} AS SELECT file_row_number AS unique_id, {clean(ssid)} AS ssid, "
        f"{clean(first)} AS first_name, {clean(mid)} AS middle_name, {clean(last)} AS surname, "
        f"strftime(try_strptime({dob}, '{fmt}'), '%Y-%m-%d') AS dob, "
        f"CASE WHEN upper({sex}) IN ('F', 'M') THEN upper({sex}) END AS sex "
        f"FROM read_parquet('{path}', file_row_number = true)"
    )
db = DuckDBAPI(con)
sdfs = [db.register(n, dataset_display_name=n) for n in ("district", "college")]
settings = SettingsCreator(
    link_type="link_only",
    comparisons=[cl.NameComparison("first_name"), cl.NameComparison("surname"),
                 cl.DateOfBirthComparison("dob", input_is_string=True), cl.ExactMatch("sex"),
                 cl.ExactMatch("ssid")],
    blocking_rules_to_generate_predictions=[block_on("ssid"), block_on("first_name", "dob"),
                                            block_on("surname", "dob"), block_on("first_name", "surname")],
)
linker = Linker(sdfs, settings, log_level=30)
linker.training.estimate_probability_two_random_records_match(
    [block_on("ssid"), block_on("first_name", "surname", "dob")], recall=0.7)
linker.training.estimate_u_using_random_sampling(max_pairs=1e6, seed=1)
linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
linker.training.estimate_parameters_using_expectation_maximisation(block_on("ssid"))
pred = linker.inference.predict()
clusters = linker.clustering.cluster_using_single_best_links(
    pred, duplicate_free_datasets=["district", "college"], threshold_match_probability=0.5)
c = clusters.physical_name
pairs = con.sql(
    f"SELECT a.unique_id AS ra, b.unique_id AS rb FROM {c} a JOIN {c} b USING (cluster_id) "
    "WHERE a.source_dataset = 'district' AND b.source_dataset = 'college'"
).to_arrow_table()
n_pred = con.execute(f"SELECT count(*) FROM {pred.physical_name}").fetchall()[0][0]
elapsed = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
np.save(folder / "pairs_splink.npy",
        np.stack([pairs.column("ra").to_numpy(), pairs.column("rb").to_numpy()]).astype(np.int64))
print(json.dumps({"seconds": elapsed, "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_mb": peak_mb(),
                  "predicted_pairs": int(n_pred)}))
"""


def _run(script: str, *args: object) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bench_linkage(tmp_path: Path) -> None:
    tok = _run(_TOKENIZE, ROWS, SEED, tmp_path)
    methods = {m: _run(_LINK, m, tmp_path, "duckdb") for m in ("id", "calpass", "combined", "em")}
    methods["combined in memory"] = _run(_LINK, "combined", tmp_path, "memory")
    import numpy as np
    from linkscore import evaluate, truth_pairs

    splink = _run(_SPLINK, tmp_path)
    found = np.load(tmp_path / "pairs_splink.npy")
    truth = truth_pairs(np.load(tmp_path / "district_person.npy"), np.load(tmp_path / "college_person.npy"))
    score = evaluate(set(zip(found[0].tolist(), found[1].tolist(), strict=True)), truth)
    p, r = score["precision"], score["recall"]
    methods["splink defaults (raw)"] = {**splink, **score, "f1": 2 * p * r / (p + r) if p + r else 0.0}

    same = np.array_equal(
        np.load(tmp_path / "pairs_combined_duckdb.npy"), np.load(tmp_path / "pairs_combined_memory.npy")
    )
    base, ours, mem = methods["calpass"], methods["combined"], methods["combined in memory"]
    figures = {
        "rows_per_file": ROWS,
        "seed": SEED,
        "true_pairs": ours["true"],
        "tokenize": {k: round(v, 3) if isinstance(v, float) else v for k, v in tok.items()},
        "methods": {
            m: {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items() if k != "estimated"}
            for m, r in methods.items()
        },
        "combined_vs_calpass": {
            "recall_gain": round(ours["recall"] - base["recall"], 4),
            "precision_gain": round(ours["precision"] - base["precision"], 4),
            "missed_pairs_ratio": round(
                (ours["true"] - ours["true_positives"]) / max(1, base["true"] - base["true_positives"]), 3
            ),
            "time_ratio": round(ours["seconds"] / base["seconds"], 2),
        },
        "rows_per_second_combined": round(2 * ROWS / ours["seconds"]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "duckdb_vs_memory": {
            "same_links": bool(same),
            "time_ratio": round(ours["seconds"] / mem["seconds"], 2),
            "cpu_ratio": round(ours["cpu_s"] / mem["cpu_s"], 2),
            "peak_ratio": round(ours["peak_rss_mb"] / mem["peak_rss_mb"], 2),
        },
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nlinkage, two files of {ROWS:,} rows, {ours['true']:,} true pairs (seed {SEED})")
    print(
        f"  tokenize both (incl. Cal-PASS key): {tok['tokenize_s']:.1f} s, {tok['tokens_per_row']:.1f} "
        f"tokens/row, peak {tok['peak_rss_mb']:,.0f} MB"
    )
    for m, r in methods.items():
        print(
            f"  {m:21s} precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}  "
            f"{r['seconds']:.1f} s (CPU {r['cpu_s']:.1f} s)  peak {r['peak_rss_mb']:,.0f} MB  "
            f"linked {r['found']:,}"
        )
    figures["em_model"] = methods["em"]["estimated"]
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    em = figures["em_model"]
    print(
        f"  em: match share {em['match_share']:.2e}, threshold {em['threshold']}, weights "
        + ", ".join(f"{k} {v['weight']}" for k, v in em["kinds"].items())
    )
    d = figures["duckdb_vs_memory"]
    print(
        f"  combined on DuckDB vs in memory: same links {d['same_links']}, time x{d['time_ratio']}, "
        f"CPU x{d['cpu_ratio']}, peak memory x{d['peak_ratio']}"
    )
    c = figures["combined_vs_calpass"]
    print(
        f"  combined vs Cal-PASS baseline: recall {c['recall_gain']:+.4f}, "
        f"precision {c['precision_gain']:+.4f}, missed pairs x{c['missed_pairs_ratio']}, "
        f"time x{c['time_ratio']}"
    )
    assert same, "the DuckDB and in-memory engines linked differently"
