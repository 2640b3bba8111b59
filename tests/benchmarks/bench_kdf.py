"""Benchmark: what an offline guesser pays per passphrase guess against a copied vault.

A guess costs one SQLCipher key derivation (PBKDF2-HMAC-SHA512, 256,000 iterations, SQLCipher 4's
default) plus reading page 1, whose HMAC then fails. Measured by opening a real vault with wrong
passphrases through sqlcipher3, the way a guessing script would. Baseline in the same run: the same
attempt with the KDF cut to 1 iteration (what the guess costs without the KDF). Printed and written to
bench-results/kdf.json; docs/vault-and-audit.md quotes the figure.

    .venv/bin/python -m pytest -q -s tests/benchmarks/bench_kdf.py -o python_files="bench_*.py" -o addopts=""
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import sqlcipher3

from agreements import Vault

PASS = "tidal mango quarry lantern"
GUESSES = 8
RESULTS = Path(__file__).resolve().parents[2] / "bench-results" / "kdf.json"


def _seconds_per_guess(path: Path, kdf_iter: int | None) -> float:
    t0 = time.perf_counter()
    for i in range(GUESSES):
        conn = sqlcipher3.connect(str(path))
        try:
            conn.execute(f"PRAGMA key = 'wrong guess {i}'")
            if kdf_iter is not None:
                conn.execute(f"PRAGMA kdf_iter = {kdf_iter}")
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlcipher3.DatabaseError:
                pass  # the wrong key: what every failed guess sees
            else:
                raise AssertionError("a wrong passphrase opened the vault")
        finally:
            conn.close()
    return (time.perf_counter() - t0) / GUESSES


def test_bench_kdf(tmp_path):
    vault = Vault.create(tmp_path / "guess.vault", PASS)  # SQLCipher's default KDF
    vault.close()
    per_guess = _seconds_per_guess(tmp_path / "guess.vault", None)
    baseline = _seconds_per_guess(tmp_path / "guess.vault", 1)
    ratio = per_guess / baseline
    # 10^10 guesses: what zxcvbn's score 4 (the only one accepted) means at the least.
    core_years = 1e10 * per_guess / (365.25 * 24 * 3600)
    out = {
        "seconds_per_guess_per_core": round(per_guess, 4),
        "baseline_seconds_without_kdf": round(baseline, 6),
        "ratio": round(ratio, 1),
        "core_years_for_1e10_guesses": round(core_years, 1),
    }
    print(f"\nKDF: {per_guess:.3f} s per guess per core ({ratio:,.0f}x the same guess without the KDF); "
          f"10^10 guesses = {core_years:,.0f} core-years")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    assert ratio > 50, "the KDF no longer slows guessing down"
