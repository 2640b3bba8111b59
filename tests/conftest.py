"""Suite-wide fixtures. Network access is blocked for the whole suite by pytest-socket
(``--disable-socket --allow-unix-socket`` in pyproject's addopts); a test below proves it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Nothing in the suite may reach the network: also make libraries that honour these refuse.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_CACHE", str(Path(__file__).parent / ".no-tldextract-cache"))

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture
def run_cli(capsys):
    """Run ``pathshare`` in-process; return (exit status, stdout, stderr)."""
    from desktop.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors and --version
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def python_exe() -> str:
    return sys.executable
