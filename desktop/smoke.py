"""Smoke-test support for the packaged app (packaging/smoke.sh): start, show the window, quit cleanly.

``PATHSHARE_SMOKE_QUIT_MS=N`` makes the app close its window and quit N milliseconds after the window
is shown: status 0, or 1 if the window was not visible by then or refused to close. Unset, nothing
changes. With ``PATHSHARE_SMOKE_JOB=1`` as well, the app first runs :func:`worker_check` as a real
background job (in the worker process a frozen app starts by re-running its own executable) and quits
with status 1 unless that job succeeded.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

SMOKE_QUIT_ENV = "PATHSHARE_SMOKE_QUIT_MS"
SMOKE_JOB_ENV = "PATHSHARE_SMOKE_JOB"
JOB_TIMEOUT_S = 120.0  # a cold worker start on a busy two-core machine takes seconds, not minutes


def _say(message: str) -> None:
    sys.stderr.write(f"pathshare: smoke: {message}\n")
    sys.stderr.flush()


def worker_check(ctx: Any) -> dict[str, Any]:
    """A background job that loads what real jobs load (pandas, pyarrow, presidio) and scans a note."""
    import pandas as pd
    import pyarrow as pa

    from deid import presidio_analyzer

    ctx.progress(0.5, "Loading the text scanner")
    findings = presidio_analyzer().analyze("Call 555-123-4567 or mail kim@example.org", language="en")
    table = pa.Table.from_pandas(pd.DataFrame({"n": [1, 2, 3]}))
    return {
        "frozen": bool(getattr(sys, "frozen", False)),
        "pid": os.getpid(),
        "entities": sorted({f.entity_type for f in findings}),
        "rows": table.num_rows,
    }


def quit_after_shown(app: Any, window: Any) -> None:
    """If ``PATHSHARE_SMOKE_QUIT_MS`` is set, close ``window`` and quit ``app`` that many ms from now.

    Call it right after ``window.show()``. The window is closed through its own ``close()`` (so its
    close handling runs, as when a user closes it) before the event loop is told to quit.
    """
    value = os.environ.get(SMOKE_QUIT_ENV, "").strip()
    if not value:
        return
    try:
        delay = max(0, int(value))
    except ValueError:
        _say(f"{SMOKE_QUIT_ENV} must be a number of milliseconds; ignored.")
        return
    from PySide6.QtCore import QTimer

    handle = None
    if os.environ.get(SMOKE_JOB_ENV, "").strip() not in ("", "0"):
        from desktop.tasks import Job, ProcessRunner

        handle = ProcessRunner().start(Job(func="desktop.smoke:worker_check", title="Smoke test"))
        handle.setParent(window)
    deadline = time.monotonic() + JOB_TIMEOUT_S

    def _quit() -> None:
        if handle is not None and not handle.finished and time.monotonic() < deadline:
            QTimer.singleShot(100, _quit)  # the job is still running: look again shortly
            return
        ok = True
        if handle is not None:
            if handle.finished and handle.error is None and handle.result:
                _say(f"background job ok: {handle.result}")
            else:
                reason = handle.error if handle.finished else f"no answer in {JOB_TIMEOUT_S:.0f} s"
                _say(f"background job failed: {reason}")
                ok = False
        shown = bool(window.isVisible())
        closed = bool(window.close())
        _say(f"window shown={shown} closed={closed}; quitting.")
        app.exit(0 if ok and shown and closed else 1)

    QTimer.singleShot(delay, _quit)
