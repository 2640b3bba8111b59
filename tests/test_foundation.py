"""The project's foundation: layering, offline suite, CLI contract basics."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest


def test_library_layers_never_import_qt():
    code = (
        "import sys, deid, agreements, desktop.cli\n"
        "import importlib, pkgutil\n"
        "for pkg in (deid, agreements):\n"
        "    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.startswith('PySide6')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_network_is_blocked_in_the_suite():
    with pytest.raises(Exception) as info:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert "Socket" in type(info.value).__name__ or "socket" in str(info.value).lower()


def test_version_and_usage_errors(run_cli):
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("pathshare ")
    code, _, err = run_cli("no-such-command")
    assert code == 2 and "pathshare:" in err


def test_front_doors_export_what_they_say():
    import agreements
    import deid

    for pkg in (deid, agreements):
        for name in pkg.__all__:
            assert hasattr(pkg, name), f"{pkg.__name__}.{name} is in __all__ but missing"
        assert pkg.__doc__ and "For most uses" in pkg.__doc__


def test_cli_reference_is_in_step_with_the_parser():
    from pathlib import Path

    from desktop.cli import reference_markdown

    doc = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
    assert doc.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/cli.md is stale: regenerate it with "
        "python -c 'from desktop.cli import reference_markdown as r; open(\"docs/cli.md\",\"w\").write(r())'"
    )
    for command in ("init", "agreement sign", "deid", "prepare", "open", "audit verify", "synth", "demo"):
        assert f"## `pathshare {command}`" in doc.read_text(encoding="utf-8")


def test_an_unexpected_error_is_one_sentence_without_the_message(run_cli, monkeypatch):
    """A bug (not bad input) still gets one sentence, never a traceback nor the exception's text, which
    a library may have filled with a row of the student file."""
    import argparse

    import desktop.cli as cli

    def boom(_args):
        row = " ".join(["Maria Lopez", "123-45-6789"])
        raise ValueError(f"row 3: {row}")

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="pathshare")
        parser.add_subparsers().add_parser("boom").set_defaults(func=boom)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    code, _, err = run_cli("boom")
    assert code == 1 and err.count("\n") == 1 and "unexpected ValueError" in err
    assert "Maria" not in err and "Traceback" not in err


def test_a_refusal_prints_its_hint_on_its_own_line(run_cli, monkeypatch):
    """age's style: the sentence on the first line, what to do on the next (``pathshare: hint: …``); a
    refusal without a hint stays one line."""
    import argparse

    import desktop.cli as cli
    from deid.errors import InputError

    def refuse(args):
        hint = "Add the column names as the first row." if args.hint else None
        raise InputError("students.csv has no header row.", hint)

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="pathshare")
        command = parser.add_subparsers().add_parser("refuse")
        command.add_argument("--hint", action="store_true")
        command.set_defaults(func=refuse)
        return parser

    monkeypatch.setattr(cli, "build_parser", build)
    code, out, err = run_cli("refuse", "--hint")
    assert code == 1 and out == ""
    assert err.splitlines() == [
        "pathshare: students.csv has no header row.",
        "pathshare: hint: Add the column names as the first row.",
    ]
    code, _, err = run_cli("refuse")
    assert code == 1 and err == "pathshare: students.csv has no header row.\n"


def test_the_suite_and_its_children_derive_vault_keys_cheaply(python_exe):
    """tests/conftest.py: 1,000 KDF iterations in the test process and, through tests/kdfhook on
    PYTHONPATH, in every Python process it starts — set when agreements._vault loads, without loading it
    in a child that does not ask for it."""
    from conftest import SUITE_KDF_ITER

    import agreements._vault as vault_module

    assert vault_module._TEST_KDF_ITER == SUITE_KDF_ITER == 1000
    code = (
        "import sys\n"
        "before = 'agreements._vault' in sys.modules\n"
        "import agreements._vault as v\n"
        "print(before, v._TEST_KDF_ITER)\n"
    )
    child = subprocess.run([python_exe, "-c", code], capture_output=True, text=True, timeout=120)
    assert child.stdout.split() == ["False", "1000"], child.stderr
