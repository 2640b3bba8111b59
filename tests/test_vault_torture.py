"""Issue 14's torture test, in seconds: writers, commands and the real app offscreen append to one vault
while a thread in each writer and in the app opens and closes the vault's files (as a file dialog does)
and random processes — the app among them — are SIGKILLed.
Every append that returned is in the vault, the chain verifies, the count matches (see vault_torture.py;
the longer run is tests/benchmarks/bench_vault_torture.py)."""

from __future__ import annotations

import pytest
from vault_torture import run_torture

import agreements._vault as vault_module


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


def test_torture_every_confirmed_append_survives(tmp_path):
    result = run_torture(tmp_path, seconds=6, writers=3, app=True)
    print(result)
    assert result.verified
    assert result.app_confirmed >= 1  # the app's window ran jobs on the vault and showed them done
    assert result.lost == 0
    assert result.kills >= 5  # the kills really happened …
    assert result.confirmed >= 50  # … while the writers really wrote
    assert result.unconfirmed_present <= result.kills
