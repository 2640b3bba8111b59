"""Kill the writing process (SIGKILL) at random points, many times: the vault always opens, its audit
log verifies, and every change is there together with its audit entry or not at all.

The child is a fork of the test process (no interpreter start-up per kill) and the vaults use fewer
KDF iterations (``_TEST_KDF_ITER``): crash safety is about SQLite's journal and our transactions, not
about the key derivation, and this keeps ~40 kills within a few seconds.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import signal
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import agreements._vault as vault_module
from agreements import PartnerError, Vault, WrongPassphrase, create_identity, list_partners
from agreements._cards import make_card

PASS = "correct horse battery staple"
PASS2 = "seven purple lanterns drifting"
KILLS = int(os.environ.get("PATHSHARE_KILLS", "30"))


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


def _cards(n: int):
    import pyrage

    return [
        make_card(Ed25519PrivateKey.generate(), org=f"Partner {i}", kind="employer", contact="",
                  age_recipient=str(pyrage.x25519.Identity.generate().to_public()),
                  created="2026-01-01T00:00:00Z")
        for i in range(n)
    ]


def _writer(path, cards, ready_w: int, seed: int) -> None:
    """The child: open the vault and write forever (until killed)."""
    from agreements import import_card, revoke_partner, verify_partner

    rng = random.Random(seed)
    try:
        vault = Vault.open(path, PASS)
        current = PASS
    except WrongPassphrase:
        vault = Vault.open(path, PASS2)
        current = PASS2
    os.write(ready_w, b"r")
    os.close(ready_w)
    known = {p.fingerprint for p in list_partners(vault)}
    while True:
        roll = rng.random()
        if roll < 0.6:
            with vault.transaction() as conn:
                n = int(vault.get_setting("ticks") or 0) + 1
                conn.execute("INSERT INTO settings(key, value) VALUES ('ticks', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (str(n),))
                vault.audit.append("test.tick", details={"n": n}, conn=conn)
        elif roll < 0.85:
            card = rng.choice(cards)
            fp = card.fingerprint()
            if fp not in known:
                import_card(vault, card)
                known.add(fp)
            elif rng.random() < 0.5:
                with contextlib.suppress(PartnerError):  # a revoked partner cannot be verified
                    verify_partner(vault, fp)
            else:
                revoke_partner(vault, fp)
        elif roll < 0.97:
            vault.audit.append("test.note", details={"x": rng.random()})
        else:
            current = PASS2 if current == PASS else PASS
            vault.change_passphrase(current)


def _open_either(path) -> Vault:
    try:
        return Vault.open(path, PASS)
    except WrongPassphrase:
        return Vault.open(path, PASS2)


def _check_consistent(vault: Vault) -> tuple[int, int]:
    verdict = vault.audit.verify()
    assert verdict.ok, verdict.reason
    ticks = vault.audit.entries(action="test.tick")
    # The change and its audit entry commit together: the counter equals the entries recording it.
    assert int(vault.get_setting("ticks") or 0) == len(ticks)
    assert [e.details["n"] for e in ticks] == list(range(1, len(ticks) + 1))
    partners = list_partners(vault)
    assert len(partners) == len(vault.audit.entries(action="partner.import"))
    assert sum(p.verified for p in partners) == len(vault.audit.entries(action="partner.verify"))
    assert sum(p.revoked for p in partners) == len(vault.audit.entries(action="partner.revoke"))
    return verdict.entries, len(ticks)


def _fork_and_kill(target, delay: float) -> None:
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(ready_r)
        try:
            target(ready_w)
        finally:
            os._exit(0)
    os.close(ready_w)
    # Wait until the child has the vault open (or died trying), but never forever.
    started, _, _ = select.select([ready_r], [], [], 60)
    os.close(ready_r)
    if not started:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the writer process did not start within 60 s")
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_vault_survives_sigkill_during_writes(tmp_path):
    path = tmp_path / "kill.vault"
    v = Vault.create(path, PASS)
    create_identity(v, "Lakeview USD", "district")
    v.close()
    cards = _cards(12)
    rng = random.Random(1234)
    grew = 0
    last_entries = 0
    for i in range(KILLS):
        _fork_and_kill(lambda w, i=i: _writer(path, cards, w, seed=i), rng.uniform(0.005, 0.1))
        vault = _open_either(path)
        try:
            entries, _ = _check_consistent(vault)
        finally:
            vault.close()
        assert entries >= last_entries  # committed work is never lost
        grew += entries > last_entries
        last_entries = entries
    # The kills really landed while writing (the log grew across most rounds).
    assert grew >= KILLS // 2 and last_entries > KILLS


def test_killed_init_leaves_no_half_vault(tmp_path):
    rng = random.Random(99)
    outcomes = set()
    for i in range(12):
        path = tmp_path / f"v{i}.vault"

        def create(w, path=path):
            os.write(w, b"r")
            os.close(w)
            v = Vault.create(path, PASS)
            create_identity(v, "Lakeview USD", "district")
            v.close()

        _fork_and_kill(create, rng.uniform(0.0, 0.25))
        if path.exists():
            with Vault.open(path, PASS) as v:
                assert v.audit.verify().ok
            outcomes.add("complete")
        else:
            outcomes.add("absent")
        # Only hidden temp files may remain beside it, never a file under the vault's name.
        for leftover in tmp_path.iterdir():
            assert leftover.name.startswith((".", "v")), leftover.name
    # Each round ended with no vault file or a complete one that verifies; never a broken one.
    assert outcomes <= {"complete", "absent"}


def test_killed_export_leaves_no_partial_bundle(tmp_path):
    from agreements import our_card, verify_bundle

    path = tmp_path / "exp.vault"
    v = Vault.create(path, PASS)
    create_identity(v, "Lakeview USD", "district")
    with v.transaction() as conn:
        for i in range(3000):  # enough entries that the export takes a while
            v.audit.append("test.fill", details={"i": i}, conn=conn)
    card = our_card(v)
    v.close()
    rng = random.Random(5)
    outcomes = set()
    for i in range(8):
        out = tmp_path / f"bundle{i}.json"

        def export(w, out=out):
            vault = Vault.open(path, PASS)
            os.write(w, b"r")
            os.close(w)
            vault.audit.export_bundle(out)

        _fork_and_kill(export, rng.uniform(0.0, 0.15))
        if out.exists():
            assert verify_bundle(out, card).ok  # complete, never half a file
            outcomes.add("complete")
        else:
            outcomes.add("absent")
        with Vault.open(path, PASS) as vault:
            assert vault.audit.verify().ok
    assert outcomes <= {"complete", "absent"}


def test_two_processes_appending_at_once_keep_one_chain(tmp_path):
    path = tmp_path / "shared.vault"
    Vault.create(path, PASS).close()
    pids = []
    for who in ("a", "b"):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                with Vault.open(path, PASS) as vault:
                    for i in range(60):
                        vault.audit.append("test.concurrent", details={"who": who, "i": i})
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    assert statuses == [0, 0]
    with Vault.open(path, PASS) as vault:
        verdict = vault.audit.verify()
        entries = vault.audit.entries(action="test.concurrent")
    assert verdict.ok and len(entries) == 120
    for who in ("a", "b"):
        assert [e.details["i"] for e in entries if e.details["who"] == who] == list(range(60))
