"""Issue 17 item 9: a documented way to run PathShare without make — ``python -m desktop``."""

from __future__ import annotations

import os
import subprocess
import sys


def test_python_m_desktop_runs_the_command_line(tmp_path):
    env = {**os.environ, "PATHSHARE_PASSPHRASE": "correct horse battery staple 42"}
    done = subprocess.run(
        [sys.executable, "-m", "desktop", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "prepare" in done.stdout and "open" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "desktop", "--vault", str(tmp_path / "none.vault"), "open",
         str(tmp_path / "missing.age"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and bad.stderr.strip()
