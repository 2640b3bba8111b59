"""desktop.tasks: long jobs in a worker process (progress, result, errors, cancel), short ones on pools."""

from __future__ import annotations


def test_worker_process_reports_progress_and_result(qtbot, tmp_path):
    from desktop.tasks import Job, ProcessRunner

    out = tmp_path / "out.bin"
    handle = ProcessRunner().start(
        Job("desktop.ui.jobs:selftest", {"out": str(out), "steps": 5, "delay": 0.01}, outputs=(str(out),))
    )
    seen = []
    handle.progress.connect(lambda f, s: seen.append((f, s)))
    with qtbot.waitSignal(handle.succeeded, timeout=30_000) as blocker:
        pass
    assert blocker.args[0] == {"out": str(out), "steps": 5}
    assert out.stat().st_size == 5 * 1024
    assert seen and seen[-1][0] == 1.0


def test_worker_error_comes_back_as_the_same_pathshare_error(qtbot, tmp_path):
    from deid.errors import OutputError
    from desktop.tasks import Job, ProcessRunner

    out = tmp_path / "missing-folder" / "out.bin"
    handle = ProcessRunner().start(Job("desktop.ui.jobs:selftest", {"out": str(out)}))
    with qtbot.waitSignal(handle.failed, timeout=30_000) as blocker:
        pass
    error = blocker.args[0]
    assert isinstance(error, OutputError) and "does not exist" in str(error)


def test_cancel_kills_the_worker_and_leaves_no_file(qtbot, tmp_path):
    from desktop.tasks import Job, ProcessRunner

    out = tmp_path / "out.bin"
    handle = ProcessRunner().start(
        Job("desktop.ui.jobs:selftest", {"out": str(out), "steps": 400, "delay": 0.05}, outputs=(str(out),))
    )
    # Wait until the worker is writing its temp file, then cancel.
    with qtbot.waitSignal(handle.progress, timeout=30_000):
        pass
    assert list(tmp_path.glob(".out.bin.*.partial"))
    with qtbot.waitSignal(handle.cancelled, timeout=10_000):
        handle.cancel()
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []
    assert not handle._process.is_alive()


def test_sync_runner_runs_the_same_job(qtbot, tmp_path):
    from desktop.tasks import Job, SyncRunner

    out = tmp_path / "out.bin"
    handle = SyncRunner().start(Job("desktop.ui.jobs:selftest", {"out": str(out), "steps": 2, "delay": 0}))
    with qtbot.waitSignal(handle.succeeded, timeout=5_000):
        pass
    assert out.stat().st_size == 2048


def test_passphrase_never_on_the_command_line(qtbot, tmp_path):
    """The worker gets the job over a pipe: its argv holds no passphrase."""
    from pathlib import Path

    from desktop.tasks import Job, ProcessRunner

    out = tmp_path / "out.bin"
    secret = "very secret passphrase words"
    handle = ProcessRunner().start(
        Job("desktop.ui.jobs:selftest", {"out": str(out), "steps": 100, "delay": 0.05}, outputs=(str(out),)),
        passphrase=secret,
    )
    with qtbot.waitSignal(handle.progress, timeout=30_000):
        pass
    pid = handle._process.pid
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    assert secret not in cmdline and secret not in environ
    handle.cancel()


def test_run_task_delivers_result_and_error_on_the_ui_thread(qtbot):
    from PySide6.QtCore import QThread

    from deid.errors import InputError
    from desktop.tasks import run_task

    got = {}
    main = QThread.currentThread()

    def ok(result):
        got["ok"] = (result, QThread.currentThread() is main)

    def err(error):
        got["err"] = (error, QThread.currentThread() is main)

    def boom():
        raise InputError("The file x.csv is empty.")

    run_task(lambda: 41 + 1, ok, err, "vault")
    run_task(boom, ok, err, "vault")
    qtbot.waitUntil(lambda: "ok" in got and "err" in got, timeout=5_000)
    assert got["ok"] == (42, True)
    assert isinstance(got["err"][0], InputError) and got["err"][1]


def test_remove_partials_only_touches_temp_files_of_the_outputs(tmp_path):
    from desktop.tasks import remove_partials

    keep = tmp_path / ".other.csv.abc.partial"
    keep.write_text("x")
    gone = tmp_path / ".pkg.age.k2j3.partial"
    gone.write_text("x")
    removed = remove_partials([str(tmp_path / "pkg.age")])
    assert removed == [gone] and keep.exists() and not gone.exists()


def test_cancel_button_in_the_window_stops_the_worker_and_leaves_nothing(qtbot, tmp_path):
    """The progress panel's Cancel (and Esc) ends a real worker process; its partial file is removed."""
    from PySide6.QtCore import QSettings, Qt

    from agreements import Vault, create_identity
    from desktop.tasks import Job, ProcessRunner
    from desktop.ui.main_window import Session, Workspace
    from desktop.ui.settings import Settings

    vault = Vault.create(tmp_path / "v.vault", "tidal mango quarry lantern")
    create_identity(vault, "Lakeview USD", "district")
    session = Session(
        vault_path=tmp_path / "v.vault",
        settings=Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)),
        runner=ProcessRunner(),
        vault=vault,
        passphrase="tidal mango quarry lantern",
    )
    workspace = Workspace(session)
    qtbot.addWidget(workspace)
    workspace.show()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "package.age"
    events = []
    handle = workspace.start_job(
        Job(
            "desktop.ui.jobs:selftest",
            {"out": str(out), "steps": 400, "delay": 0.05},
            outputs=(str(out),),
            title="Sealing",
        ),
        lambda r: events.append("ok"),
        lambda e: events.append("error"),
        lambda: events.append("cancelled"),
    )
    assert workspace.progress.isVisible() and not workspace.sidebar.isEnabled()
    qtbot.waitUntil(lambda: workspace.progress.bar.value() > 0, timeout=30_000)
    assert "step" in workspace.progress.stage.text().lower()
    assert list(out_dir.iterdir())  # the worker is writing its temp file
    qtbot.mouseClick(workspace.progress.cancel, Qt.LeftButton)
    qtbot.waitUntil(lambda: handle.finished, timeout=10_000)
    assert events == ["cancelled"]
    assert list(out_dir.iterdir()) == []
    assert not workspace.progress.isVisible() and workspace.sidebar.isEnabled()
    vault.close()


def test_scratch_and_new_folders_go_but_older_things_stay(tmp_path):
    import os
    import time

    from desktop.tasks import Job, TaskHandle, remove_scratch

    old = tmp_path / ".pathshare-open-old"
    old.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    existing = tmp_path / "existing"
    existing.mkdir()
    job = Job(
        "x:y",
        scratch=(str(tmp_path / ".pathshare-open-*"),),
        new_dirs=(str(tmp_path / "inbox"), str(existing)),
    )
    handle = TaskHandle(job)  # snapshots what exists now
    (tmp_path / ".pathshare-open-new").mkdir()
    (tmp_path / ".pathshare-open-new" / "data.csv").write_text("decrypted")
    (tmp_path / "inbox").mkdir()
    remove_scratch(job, handle._started, handle._existed)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pathshare-open-old", "existing"]


def test_many_progress_signals_do_not_exhaust_true(qtbot):
    """PySide6 6.12 on Python 3.11 steals a reference to True on every emit from Python; a long job
    sends thousands of progress messages. emit() must leave True's reference count where it was."""
    import sys

    from PySide6.QtCore import QObject, Signal

    from desktop.tasks import emit

    class Source(QObject):
        progress = Signal(float, str)

    source = Source()
    got = []
    source.progress.connect(lambda f, s: got.append(f))
    emit(source.progress, 0.0, "warm up")
    before = sys.getrefcount(True)
    for i in range(5000):
        emit(source.progress, i / 5000, "working")
    assert len(got) == 5001
    assert abs(sys.getrefcount(True) - before) < 50


def test_qt_binding_keeps_none_alive_across_slot_calls(qtbot):
    """The window polls its worker 25 times a second: a binding that drops a reference to None per
    Python slot call (PySide6 6.12.0 on Python 3.11) aborts the app within minutes. pyproject pins it out."""
    import sys

    from PySide6.QtCore import QTimer

    calls = []
    timer = QTimer()
    timer.setInterval(0)
    timer.timeout.connect(lambda: calls.append(1))
    before = sys.getrefcount(None)
    timer.start()
    qtbot.waitUntil(lambda: len(calls) >= 3000, timeout=10_000)
    timer.stop()
    assert sys.getrefcount(None) >= before - 100


def test_an_unexpected_error_is_logged_without_its_message(capsys):
    """A library's exception text can quote a student's row: stderr gets the stack and the type only."""
    from desktop.ui.problems import log_unexpected

    row = ",".join(["Maria Lopez", "123-45-6789"])  # as a library would quote it from the file
    try:
        raise ValueError(f"row 7: {row}")
    except ValueError as exc:
        log_unexpected(exc)
    err = capsys.readouterr().err
    assert "ValueError" in err and "test_gui_tasks.py" in err
    assert "Maria" not in err and "123-45-6789" not in err


def test_one_place_turns_an_exception_into_what_the_user_sees(capsys):
    """desktop/ui/problems.py: a refusal is its sentence and its hint apart (a hint in command-line words
    is left out: the window has buttons for that); a bug is a sentence naming only the type."""
    from deid.errors import InputError, OutputExists
    from desktop.ui.problems import Problem, problem_of, user_error

    assert problem_of(InputError("a.csv is empty.", "Export it again.")) == Problem(
        "a.csv is empty.", "Export it again."
    )
    refused = OutputExists(
        "card.json already exists.", "Choose another file name, or add --force to replace it."
    )
    assert problem_of(refused) == Problem("card.json already exists.", None)
    row = ",".join(["Maria Lopez", "123-45-6789"])
    bug = problem_of(KeyError(f"row 3: {row}"))
    assert bug.message.startswith("Something unexpected went wrong (KeyError); nothing was written.")
    assert "Maria" not in bug.message and "Maria" not in capsys.readouterr().err
    assert problem_of(MemoryError()).message.startswith("Out of memory")
    assert user_error(refused) is refused  # a PathShareError crosses threads as it is
    crossed = user_error(ValueError(row))
    assert type(crossed).__name__ == "PathShareError" and "Maria" not in str(crossed)


def test_an_error_crosses_the_worker_pipe_with_its_class_and_hint():
    from agreements.errors import VaultInUse
    from deid.errors import PolicyError
    from desktop.tasks import error_from_wire

    error = error_from_wire("PolicyError", "The policy names no column.", "Add a column.")
    assert isinstance(error, PolicyError) and str(error) == "The policy names no column."
    assert error.hint == "Add a column."
    in_use = error_from_wire("VaultInUse", "This vault is open in PathShare.", None)
    assert isinstance(in_use, VaultInUse) and in_use.pid is None
    assert type(error_from_wire("NoSuchError", "Refused.", "Try again.")).__name__ == "PathShareError"


def test_every_page_shows_a_refusal_through_the_message_bar(qtbot):
    """The message bar shows the sentence and, on its own line below, what to do; the pages hand it the
    exception (show_problem), never a hand-made str(exc)."""
    from pathlib import Path

    from deid.errors import InputError
    from desktop.ui.widgets import MessageBar

    bar = MessageBar()
    qtbot.addWidget(bar)
    bar.show_problem(InputError("a.csv is empty.", "Export it again."))
    assert bar.text() == "a.csv is empty." and bar.hint() == "Export it again."
    bar.show_error("Choose a folder.")
    assert bar.text() == "Choose a folder." and bar.hint() == ""
    # A page's own sentences (a form cell that does not parse) go to show_error; a caught library
    # error goes to show_problem, so the sentence and the hint are decided in one place.
    import ast

    import agreements.errors
    import deid.errors

    library_errors = {name for module in (deid.errors, agreements.errors) for name in dir(module)}
    pages = Path(__file__).parent.parent / "desktop" / "ui"
    for page in pages.glob("*.py"):
        for node in ast.walk(ast.parse(page.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ExceptHandler) or node.type is None or node.name is None:
                continue
            caught = {n.id for n in ast.walk(node.type) if isinstance(n, ast.Name)}
            if not caught & (library_errors | {"Exception", "BaseException"}):
                continue
            for call in ast.walk(ast.Module(body=node.body, type_ignores=[])):
                if isinstance(call, ast.Call) and getattr(call.func, "attr", "") == "show_error":
                    text = ast.unparse(call)
                    assert node.name not in text, f"{page.name}:{call.lineno}: {text}; use show_problem"
