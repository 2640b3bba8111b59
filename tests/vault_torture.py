"""The vault torture run, shared by tests/test_vault_torture.py (seconds) and
tests/benchmarks/bench_vault_torture.py (longer): several processes — library writers, ``pathshare``
commands and (with ``app=True``) the real app offscreen — append to one vault while a thread in each
writer and in the app opens and closes the vault's files in a loop (what a file dialog does) and random
processes are SIGKILLed. The app is PathShare's own window, unlocked on the vault, running its Audit log
page's jobs in its vault thread (Verify, which appends ``audit.verify``; Export CSV) and giving the vault
up when idle as it does for the user. Every append that returned is
recorded by its process in a report file *after* it returned; afterwards each recorded entry must be in
the vault, the chain must verify, and the count must match (an entry may be there unrecorded only when
its process was killed between the commit and the report).

Processes are forks of the caller (the vault uses the caller's KDF setting).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PASS = "correct horse battery staple"


@dataclass
class TortureResult:
    processes: int  # started, over the whole run
    confirmed: int  # appends that returned (library writers) or commands that exited 0
    kills: int
    lost: int  # confirmed but not in the vault
    unconfirmed_present: int  # in the vault, their process killed before it could say so
    refusals: int  # opens that gave up with the sentence naming the holder
    entries: int  # the log's length afterwards
    verified: bool
    app_confirmed: int = 0  # the app's jobs that reported success in its window
    app_started: int = 0


def _churn(path: Path, stop: threading.Event) -> None:
    """Open and close the vault's files (and take and drop a POSIX lock on them) in a loop."""
    import fcntl

    names = [str(path), f"{path}-wal", f"{path}-shm", f"{path}.lock"]
    while not stop.is_set():
        for name in names:
            try:
                fd = os.open(name, os.O_RDONLY)
            except OSError:
                continue
            with contextlib.suppress(OSError):
                fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            os.close(fd)
        time.sleep(0.001)


def _writer(path: Path, who: str, report: Path, seed: int) -> None:
    from agreements import Vault, VaultInUse

    rng = random.Random(seed)
    stop = threading.Event()
    threading.Thread(target=_churn, args=(path, stop), daemon=True).start()
    out = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    i = 0
    while True:
        try:
            vault = Vault.open(path, PASS, wait=20)
        except VaultInUse:
            os.write(out, b"refused\n")
            continue
        try:
            for _ in range(rng.randint(1, 6)):
                vault.audit.append("torture.append", details={"who": who, "i": i})
                os.write(out, f"ok {i}\n".encode())  # only after the append returned
                i += 1
                if rng.random() < 0.3:
                    time.sleep(rng.uniform(0, 0.01))
        finally:
            vault.close()
        time.sleep(rng.uniform(0, 0.02))


def _command(path: Path, report: Path) -> None:
    import io
    import sys

    from desktop.cli import main

    os.environ["PATHSHARE_PASSPHRASE"] = PASS
    sys.stdout = io.StringIO()
    sys.stderr = io.StringIO()
    code = main(["--vault", str(path), "audit", "checkpoint"])
    out = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    text = sys.stderr.getvalue().strip().splitlines()
    refused = bool(text) and "This vault is" in text[-1]
    os.write(out, b"ok\n" if code == 0 else (b"refused\n" if refused else b"failed\n"))


APP = """
import sys
sys.path.insert(0, sys.argv[1])
from vault_torture import app_main
app_main(sys.argv[2], sys.argv[3], int(sys.argv[4]))
"""


def app_main(path: str, report: str, kdf_iter: int) -> None:
    """The real app, offscreen, in its own process: unlock the vault in the window, then run the Audit
    log page's Verify (and now and then Export CSV) again and again through the window's own task
    machinery, with a thread opening and closing the vault's files. A job is reported ``ok`` only after
    the window showed its success."""
    import sys

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import agreements._vault as vault_module

    vault_module._TEST_KDF_ITER = kdf_iter
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from desktop.tasks import ProcessRunner
    from desktop.ui.main_window import MainWindow, Session
    from desktop.ui.settings import Settings

    app = QApplication.instance() or QApplication([sys.argv[0]])
    out = os.open(report, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    stop = threading.Event()
    threading.Thread(target=_churn, args=(Path(path), stop), daemon=True).start()
    settings = Settings(QSettings(f"{report}.ini", QSettings.Format.IniFormat))
    window = MainWindow(Session(vault_path=Path(path), settings=settings, runner=ProcessRunner()))
    window.show()

    def wait(condition, seconds: float = 60.0) -> bool:
        end = time.monotonic() + seconds
        while not condition() and time.monotonic() < end:
            app.processEvents()
            time.sleep(0.002)
        return condition()

    while window.workspace is None:  # another process may hold the vault: the window says so; retry
        window.unlock.passphrase.setText(PASS)
        window.unlock.unlock.click()
        wait(lambda: window.workspace is not None or window.unlock.unlock.isEnabled())
    ws = window.workspace
    ws.sidebar.setCurrentRow(ws.row_of("Audit log"))
    page = ws.stack.currentWidget()
    rng = random.Random(os.getpid())
    n = 0
    while True:
        n += 1
        if n % 5 == 0:
            # Export CSV: the page reads and writes in its vault thread, then refreshes.
            target = f"{report}-{n}.csv"
            page.export_csv(target)
            wait(lambda: page.csv_button.isEnabled())
            os.write(out, b"csv\n" if os.path.exists(target) else b"csv-failed\n")
            continue
        before = page.last_verdict
        page.verify()
        wait(lambda: page.verify_button.isEnabled())
        if page.last_verdict is not before and page.last_verdict is not None and page.last_verdict.ok:
            os.write(out, b"ok\n")  # only after the window showed the verdict
        else:
            os.write(out, b"refused\n" if "This vault is" in page.message.text() else b"failed\n")
        # Idle now and then, so the window gives the vault up and takes it back (as for the user).
        end = time.monotonic() + rng.uniform(0, 0.8)
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)


def _fork(target) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            target()
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    return pid


def run_torture(folder: Path, *, seconds: float, writers: int, seed: int = 7,
                kill_every: tuple[float, float] = (0.2, 0.6), app: bool = False) -> TortureResult:
    import subprocess
    import sys

    import agreements._vault as vault_module
    from agreements import Vault, create_identity

    path = folder / "torture.vault"
    with Vault.create(path, PASS) as v:
        create_identity(v, "Lakeview USD", "district")
    rng = random.Random(seed)
    reports = folder / "reports"
    reports.mkdir()
    started = 0
    kills = 0
    live: dict[int, tuple[str, Path]] = {}  # pid -> (kind, report)
    apps: dict[int, subprocess.Popen] = {}
    generation = 0
    app_started = 0

    def spawn_app() -> None:
        # A fresh interpreter, not a fork: Qt cannot start in a fork of a process that already has it.
        nonlocal started, generation, app_started
        generation += 1
        report = reports / f"app{generation}.txt"
        proc = subprocess.Popen(
            [sys.executable, "-c", APP, str(Path(__file__).parent), str(path), str(report),
             str(getattr(vault_module, "_TEST_KDF_ITER", None) or 256000)],
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            stdout=subprocess.DEVNULL, stderr=open(f"{report}.err", "wb"),  # noqa: SIM115 (the child owns it)
        )
        apps[proc.pid] = proc
        live[proc.pid] = ("app", report)
        started += 1
        app_started += 1

    def spawn_writer(slot: int) -> None:
        nonlocal started, generation
        generation += 1
        who = f"w{slot}g{generation}"
        report = reports / f"{who}.txt"
        pid = _fork(lambda: _writer(path, who, report, rng.randint(0, 1 << 30)))
        live[pid] = ("writer", report)
        started += 1

    def spawn_command() -> None:
        nonlocal started, generation
        generation += 1
        report = reports / f"cli{generation}.txt"
        pid = _fork(lambda: _command(path, report))
        live[pid] = ("command", report)
        started += 1

    for slot in range(writers):
        spawn_writer(slot)
    if app:
        spawn_app()
    deadline = time.monotonic() + seconds
    next_kill = time.monotonic() + rng.uniform(*kill_every)
    next_command = time.monotonic()
    killed_reports: set[Path] = set()
    while time.monotonic() < deadline:
        # Reap what ended by itself (commands).
        for pid in list(live):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                kind, _report = live.pop(pid)
                if kind == "app":  # the app never ends by itself: it failed to start
                    apps.pop(pid)
                    spawn_app()
        now = time.monotonic()
        if now >= next_command and sum(k == "command" for k, _ in live.values()) < 2:
            spawn_command()
            next_command = now + rng.uniform(0.1, 0.4)
        # The app takes a second or two to start: it is killed only once it has run a job, so that each
        # of its lives does something before it dies.
        targets = [p for p, (kind, report) in live.items()
                   if kind != "app" or (report.exists() and b"ok" in report.read_bytes())]
        if now >= next_kill and targets:
            pid = rng.choice(targets)
            kind, report = live.pop(pid)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            kills += 1
            killed_reports.add(report)
            if kind == "writer":
                spawn_writer(int(report.stem[1:].split("g")[0]))
            elif kind == "app":
                apps.pop(pid)
                spawn_app()
            next_kill = now + rng.uniform(*kill_every)
        time.sleep(0.01)
    for pid in list(live):  # the end of the run: stop everyone (not counted as kills)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        killed_reports.add(live.pop(pid)[1])

    confirmed = 0
    refusals = 0
    lost = 0
    extra = 0
    command_ok = 0
    app_ok = 0
    with Vault.open(path, PASS, wait=30) as vault:
        verdict = vault.audit.verify()
        entries = vault.audit.entries(action="torture.append")
        checkpoints = len(vault.audit.entries(action="audit.checkpoint"))
        verifies = len(vault.audit.entries(action="audit.verify"))
        total = len(vault.audit.entries())
    present: dict[str, list[int]] = {}
    for e in entries:
        present.setdefault(e.details["who"], []).append(e.details["i"])
    for report in sorted(r for r in reports.iterdir() if r.suffix == ".txt"):
        lines = report.read_text().split("\n") if report.exists() else []
        refusals += sum(line == "refused" for line in lines)
        if report.stem.startswith("cli"):
            command_ok += sum(line == "ok" for line in lines)
            continue
        if report.stem.startswith("app"):
            app_ok += sum(line == "ok" for line in lines)
            continue
        oks = [int(line.split()[1]) for line in lines if line.startswith("ok ")]
        confirmed += len(oks)
        got = present.pop(report.stem, [])
        # In order, no gaps, nothing confirmed missing; one more only if its process was killed.
        assert got[: len(oks)] == oks == list(range(len(oks))), (report.stem, oks[-3:], got[-3:])
        lost += len(set(oks) - set(got))
        surplus = len(got) - len(oks)
        assert surplus in ((0, 1) if report in killed_reports else (0,)), (report.stem, surplus)
        extra += surplus
    assert not present, f"entries from writers that never reported: {sorted(present)}"
    # Each command that exited 0 left its entry; a killed one may have left one too.
    lost += max(0, command_ok - checkpoints)
    extra += checkpoints - min(checkpoints, command_ok)
    # Each Verify the app's window showed left its entry (only the app verifies here).
    lost += max(0, app_ok - verifies)
    extra += verifies - min(verifies, app_ok)
    return TortureResult(
        processes=started, confirmed=confirmed + command_ok + app_ok, kills=kills, lost=lost,
        unconfirmed_present=extra, refusals=refusals, entries=total, verified=verdict.ok,
        app_confirmed=app_ok, app_started=app_started,
    )
