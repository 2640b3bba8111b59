"""Benchmark: `audit verify` over 1,000,000 entries (budget: under 10 s) and the append rate.

Baseline in the same run: a plain ``SELECT`` of every audit row through the same encrypted connection
(what verification cannot avoid: decrypting and reading the pages). Printed and written to
bench-results/audit.json. Rows: PATHSHARE_BENCH_ROWS (default 1,000,000).

    make bench        # or: PATHSHARE_BENCH_ROWS=20000 .venv/bin/python -m pytest -s \\
                      #   tests/benchmarks/bench_audit.py -o addopts="" -o python_files="bench_*.py"
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

from agreements import Vault, create_identity, our_card, verify_bundle
from agreements._audit import entry_hash
from agreements._signing import canonical_json

ROWS = int(os.environ.get("PATHSHARE_BENCH_ROWS", "1000000"))
BUNDLE_ROWS = min(ROWS, int(os.environ.get("PATHSHARE_BENCH_BUNDLE_ROWS", "100000")))
PASS = "correct horse battery staple"
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "audit.json"


def _bulk_fill(vault: Vault, n: int) -> float:
    """Append n realistic entries in large transactions; return entries per second."""
    seq, prev = vault.audit.head()
    actor = vault.audit.entries()[-1].actor
    t0 = time.perf_counter()
    batch = []
    for i in range(n):
        seq += 1
        details = canonical_json({"file": f"extract-{i % 97}.csv", "rows": i % 5000, "ok": True}).decode()
        time_s = f"2026-11-28T03:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000000:06d}Z"
        agreement = f"agr-{i % 13}"
        action = ("package.seal", "package.open", "agreement.sign", "partner.verify")[i % 4]
        digest = entry_hash(seq, time_s, actor, action, agreement, None, None, details, prev)
        batch.append((seq, time_s, actor, action, agreement, None, None, details, prev, digest))
        prev = digest
        if len(batch) == 50_000 or i == n - 1:
            with vault.transaction() as conn:
                conn.executemany("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", batch)
                conn.execute("UPDATE settings SET value = ? WHERE key = 'audit_head'", (f"{seq}:{prev}",))
            batch = []
    return n / (time.perf_counter() - t0)


def test_bench_audit(tmp_path):
    vault = Vault.create(tmp_path / "bench.vault", PASS)
    create_identity(vault, "Bench District", "district")

    # Append rate, one durable transaction per entry (what each real action costs).
    k = 300
    t0 = time.perf_counter()
    for i in range(k):
        vault.audit.append("bench.single", details={"i": i})
    single_rate = k / (time.perf_counter() - t0)
    # Append rate through the API inside one transaction (CPU cost of hashing + inserting).
    k2 = 20_000
    t0 = time.perf_counter()
    with vault.transaction() as conn:
        for i in range(k2):
            vault.audit.append("bench.batched", details={"i": i}, conn=conn)
    batched_rate = k2 / (time.perf_counter() - t0)

    fill_rate = _bulk_fill(vault, ROWS - len(vault.audit))
    vault.close()
    size_mb = (tmp_path / "bench.vault").stat().st_size / 1e6
    vault = Vault.open(tmp_path / "bench.vault", PASS)
    n = len(vault.audit)

    # Baseline: read every row, nothing else.
    t0 = time.perf_counter()
    count = sum(1 for _ in vault.audit.iter_rows())
    select_s = time.perf_counter() - t0
    assert count == n

    t0 = time.perf_counter()
    verdict = vault.audit.verify()
    verify_s = time.perf_counter() - t0
    assert verdict.ok and verdict.entries == n

    # Bundle export + verification elsewhere, on a slice-sized log.
    bundle_vault = Vault.create(tmp_path / "b.vault", PASS)
    create_identity(bundle_vault, "Bundle District", "district")
    _bulk_fill(bundle_vault, BUNDLE_ROWS - len(bundle_vault.audit))
    t0 = time.perf_counter()
    bundle_vault.audit.export_bundle(tmp_path / "bundle.json")
    export_s = time.perf_counter() - t0
    card = our_card(bundle_vault)
    t0 = time.perf_counter()
    bundle_ok = verify_bundle(tmp_path / "bundle.json", card).ok
    bundle_verify_s = time.perf_counter() - t0
    bundle_mb = (tmp_path / "bundle.json").stat().st_size / 1e6
    bundle_vault.close()
    vault.close()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures = {
        "entries": n,
        "vault_mb": round(size_mb, 1),
        "verify_s": round(verify_s, 3),
        "verify_entries_per_s": round(n / verify_s),
        "baseline_select_s": round(select_s, 3),
        "verify_over_select": round(verify_s / select_s, 2),
        "budget_s": 10.0,
        "append_single_tx_per_s": round(single_rate, 1),
        "append_batched_per_s": round(batched_rate),
        "bulk_fill_per_s": round(fill_rate),
        "bundle_entries": BUNDLE_ROWS + 1,
        "bundle_mb": round(bundle_mb, 1),
        "bundle_export_s": round(export_s, 3),
        "bundle_verify_s": round(bundle_verify_s, 3),
        "bundle_ok": bundle_ok,
        "peak_rss_mb": round(peak_mb),
    }
    print("\naudit benchmark")
    for key, value in figures.items():
        print(f"  {key:<24} {value}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
