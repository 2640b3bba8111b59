"""Benchmark: what the audit heads cost (issue 20 items 11-12, issue 14 item 4).

- the Merkle root of the whole log (a checkpoint) and a package's head with its consistency proofs
  (``commit_package``), against the baseline of reading every entry's hash through the same encrypted
  connection (what any head computation cannot avoid);
- one durable append with the signed head file written after the commit, against the same append with
  the head file switched off (the ratio is the head file's cost);
- the security-state check every open runs, against opening without it.

Printed and written to bench-results/auditheads.json. Rows: PATHSHARE_BENCH_HEAD_ROWS (default 200,000).

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_auditheads.py \\
        -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench_audit import _bulk_fill
from timing import best

from agreements import Vault, create_identity
from agreements._integrity import security_findings

ROWS = int(os.environ.get("PATHSHARE_BENCH_HEAD_ROWS", "200000"))
PASS = "correct horse battery staple"
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "auditheads.json"


def _appends(vault: Vault, k: int) -> float:
    t0 = time.perf_counter()
    for i in range(k):
        vault.audit.append("bench.single", details={"i": i})
    return (time.perf_counter() - t0) / k


def test_bench_audit_heads(tmp_path: Path) -> None:
    vault = Vault.create(tmp_path / "bench.vault", PASS)
    create_identity(vault, "Bench District", "district")

    # Head file: the same durable appends with and without it, interleaved to share the disk's mood.
    with_file, without_file = [], []
    real = vault.audit._write_head_file
    for _ in range(3):
        with_file.append(_appends(vault, 60))
        vault.audit._write_head_file = lambda size, digest: None  # type: ignore[method-assign]
        without_file.append(_appends(vault, 60))
        vault.audit._write_head_file = real  # type: ignore[method-assign]
    append_with, append_without = min(with_file), min(without_file)

    _bulk_fill(vault, ROWS - len(vault.audit))
    for i in range(12):  # heads given out earlier, so the package carries proofs as it would
        vault.audit.append("package.sealing", package=f"p{i}", details={"recipients": ["X"]})
    n = len(vault.audit)

    baseline = best(lambda: vault.db.execute("SELECT hash FROM audit_log ORDER BY seq").fetchall())
    root_s = best(vault.audit.tree_head)
    head, proofs = vault.audit.commit_package("pkg", "agr-1", "ab" * 32, ["X"])
    commit_s = best(lambda: vault.audit.commit_package("pkg", "agr-1", "ab" * 32, ["X"]))
    proof_hashes = max(len(p) for _, p in proofs)
    findings_s = best(lambda: security_findings(vault))
    vault.close()
    open_s = best(lambda: Vault.open(tmp_path / "bench.vault", PASS).close())

    figures = {
        "entries": n,
        "select_hashes_s": round(baseline, 3),
        "merkle_root_s": round(root_s, 3),
        "merkle_root_over_select": round(root_s / baseline, 2),
        "package_head_with_proofs_s": round(commit_s, 3),
        "package_head_over_select": round(commit_s / baseline, 2),
        "proofs_in_manifest": len(proofs),
        "hashes_per_proof_max": proof_hashes,
        "append_with_head_file_ms": round(append_with * 1000, 2),
        "append_without_head_file_ms": round(append_without * 1000, 2),
        "append_head_file_ratio": round(append_with / append_without, 2),
        "append_head_file_added_ms": round((append_with - append_without) * 1000, 2),
        "security_check_s": round(findings_s, 4),
        "open_s": round(open_s, 3),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    assert head[0] == n + 1 and proofs and proof_hashes <= 2 * n.bit_length()
    # The head file adds a lock, a small write and a rename after the commit (ext4 flushes a renamed-over
    # file's data): a fixed cost per committing action, whatever the disk's fsync costs the commit.
    assert append_with - append_without < 0.005
    assert findings_s < 0.5 * open_s + 0.05
