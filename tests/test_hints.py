"""Hints in words for both faces (issue 15 item 4): a library error says what to do without naming a
command or an option; ``action`` names the step, and the CLI adds its command (desktop/cli.py,
CLI_ACTIONS) while the app shows the sentence as it is."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agreements.errors import AgreementError, PackageRejected
from deid.errors import ACTIONS, OutputExists, PathShareError
from desktop.cli import CLI_ACTIONS, cli_hint
from desktop.ui.problems import problem_of

ROOT = Path(__file__).resolve().parent.parent
# A command ("`pathshare packages`") or an option ("--force") in a library's hint.
CLI_WORDS = re.compile(r"`pathshare|pathshare [a-z]+ [a-z]|(^|[\s(\"'])--[a-z]")


def _raised_errors(path: Path):
    """(line, hint text, action) of every ``raise SomeError(message, hint, …)`` whose hint is written out."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        call = node.exc
        hints = call.args[1:2] + [k.value for k in call.keywords if k.arg == "hint"]
        action = next((k.value for k in call.keywords if k.arg == "action"), None)
        for hint in hints:
            text = "".join(
                part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "{}"
                for part in ast.walk(hint)
                if isinstance(part, ast.Constant)
            )
            yield node.lineno, text, action


def _library_files() -> list[Path]:
    return sorted(p for top in ("deid", "agreements") for p in (ROOT / top).rglob("*.py"))


def test_the_checker_finds_a_command_in_a_hint(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        'raise PackageRejected("No id.", "`pathshare packages` lists them.")\n'
        'raise OutputExists("It exists.", "Add --force to replace it.")\n'
        'raise PackageRejected("No id.", "The list of packages shows them.", action="list_packages")\n',
        encoding="utf-8",
    )
    found = [(line, bool(CLI_WORDS.search(text))) for line, text, _ in _raised_errors(sample)]
    assert found == [(1, True), (2, True), (3, False)]


def test_library_hints_name_no_command_and_no_option():
    bad = []
    for path in _library_files():
        for line, text, _ in _raised_errors(path):
            if CLI_WORDS.search(text):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {text}")
    # Hints built apart from the raise (a constant, a conditional) are checked by their value too.
    identity = (ROOT / "agreements" / "_identity.py").read_text(encoding="utf-8")
    assert '_NO_IDENTITY_HINT = "Create it first."' in identity
    # deid/_stream.py (the stream area's file) still says --secret-file / --memory-mb in two messages.
    bad = [b for b in bad if not b.startswith("deid/_stream.py")]
    assert bad == [], "hints in the CLI's voice (say what to do; name the step, action=):\n" + "\n".join(bad)


def test_every_action_has_its_command_line_words_and_every_raise_uses_a_known_action():
    assert set(CLI_ACTIONS) == set(ACTIONS)
    used = set()
    for path in _library_files():
        for _line, _text, action in _raised_errors(path):
            if isinstance(action, ast.Constant):
                used.add(action.value)
    assert used and used <= ACTIONS
    with pytest.raises(ValueError, match="unknown action"):
        PathShareError("x", "y", action="no_such_step")


def test_the_cli_adds_the_command_and_the_app_shows_the_sentence():
    error = AgreementError(
        "Agreement 3f2a has no signature yet.", "Sign it first.", action="sign_agreement", subject="3f2a9c1e"
    )
    assert cli_hint(error) == "Sign it first: `pathshare agreement sign 3f2a9c1e`."
    assert problem_of(error).hint == "Sign it first."  # the app: its own words, no command
    exists = OutputExists("card.json already exists.", "Choose another file name, or replace the file.",
                          action="replace")  # fmt: skip
    assert cli_hint(exists) == "Choose another file name, or replace the file: --force."
    assert cli_hint(PackageRejected("Nope.", "Ask the sender.")) == "Ask the sender."  # no action: as it is
    assert cli_hint(PackageRejected("Nope.")) is None


def test_a_refusal_on_the_command_line_ends_with_the_command(run_cli, cli_vault):
    code, _out, err = run_cli("agreement", "show", "ffffffff")
    lines = err.splitlines()
    assert code == 1 and lines[0].startswith("pathshare: There is no agreement ffffffff")
    assert lines[1] == "pathshare: hint: The list of agreements shows them: `pathshare agreement list`."


# Messages that still name an option: the synthetic-data writer's "--messy" (a developer tool). (The
# secret-file refusal is one rule now, deid._treatments.require_secret, and linkage's token-column
# refusal names its step as an action, not the option "--column" — which did not even exist.)
MESSAGES_IN_THE_CLIS_VOICE = {
    "deid/_synth/_write.py": 1,
}


def test_library_messages_name_no_command_beyond_the_known_few():
    found: dict[str, int] = {}
    for path in _library_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                parts = [c for c in ast.walk(node.exc.args[0]) if isinstance(c, ast.Constant)]
                text = "".join(c.value for c in parts if isinstance(c.value, str))
                if CLI_WORDS.search(text):
                    where = path.relative_to(ROOT).as_posix()
                    found[where] = found.get(where, 0) + 1
    assert all(found.get(where, 0) <= n for where, n in MESSAGES_IN_THE_CLIS_VOICE.items())
    assert set(found) <= set(MESSAGES_IN_THE_CLIS_VOICE), found


def test_a_step_that_does_not_fit_in_memory_says_so_once_and_each_face_adds_how():
    """One sentence for every step that ran out of its memory setting (deid.errors.memory_too_small):
    the library names no option; the CLI adds --memory-mb, the app shows the hint as it is."""
    from deid.errors import memory_too_small

    error = memory_too_small("to count these packages", 2048)
    said = "The memory setting (2,048 MB) is too small to count these packages; nothing was written."
    assert str(error) == said
    assert "--" not in (error.hint or "") and "pathshare" not in (error.hint or "")
    assert cli_hint(error) == "Raise the memory setting, or free memory: --memory-mb MB."
    assert problem_of(error).hint == "Raise the memory setting, or free memory."
