"""The ``pathshare`` command line (a stable contract; see docs/cli.md).

Exit status: 0 success, 1 a refused or failed operation (one sentence on stderr,
then what to do on a line of its own, ``pathshare: hint: …``, when there is advice), 2 a usage error.
Heavy libraries (pandas, pyarrow, presidio, Qt) are imported inside command handlers, never here,
so ``pathshare --help`` and the app's launch stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from desktop import __version__

if TYPE_CHECKING:
    from deid.errors import PathShareError

# Each module under desktop/commands registers its own sub-commands with ``register(subparsers)``.
COMMAND_MODULES = (
    "identity",  # init, card, identity, partner
    "agreement",  # agreement ...
    "mapping",  # map
    "deidentify",  # deid
    "prepare",  # prepare
    "exchange",  # open, receipt, destroy, packages
    "audit",  # audit ...
    "compliance",  # audit disclosures (after "audit": it adds to that command)
    "link",  # link
    "outcomes",  # metrics, outcomes
    "synth",  # synth
    "demo",  # demo
)


def say(message: str, hint: str | None = None) -> None:
    """Write a refusal or a warning to stderr in age's style: the sentence on one line, then what to do
    about it on its own line (``pathshare: hint: …``), so a script can take the first line as the reason."""
    sys.stderr.write(f"pathshare: {message}\n")
    if hint:
        sys.stderr.write(f"pathshare: hint: {hint}\n")


# How each step a library hint points at (deid.errors.ACTIONS) is done on the command line: the
# libraries say what to do in words for both faces; the CLI names the command or option.
CLI_ACTIONS = {
    "amend_agreement": "`pathshare agreement amend ID FILE.json`",
    "attest": '--attest "what you checked"',
    "check_mapping": "`pathshare map`",
    "create_identity": "`pathshare init --org NAME --kind KIND`",
    "destroy_package": "`pathshare destroy {subject}`",
    "files_moved": '--files-moved-to FOLDER, or --attest "what you checked"',
    "give_reason": "--reason TEXT",
    "import_agreement": "`pathshare agreement import FILE.json`",
    "import_linkage_key": "`pathshare linkage import-key FILE`",
    "list_agreements": "`pathshare agreement list`",
    "list_packages": "`pathshare packages`",
    "name_sender": "--sender FINGERPRINT",
    "name_token_column": "--column-a NAME (file A) or --column-b NAME (file B)",
    "new_agreement": "`pathshare agreement new`",
    "raise_memory": "--memory-mb MB",
    "replace": "--force",
    "save_profile": "`pathshare map INPUT --agreement {subject} --save-profile NAME`",
    "secret_file": "--secret-file FILE",
    "sign_agreement": "`pathshare agreement sign {subject}`",
    "verify_audit_log": "`pathshare audit verify`",
    "verify_partner": "`pathshare partner import` without --verified, then `pathshare partner verify`",
    "write_certificate": "`pathshare destroy {subject} --certificate FILE`",
}


def cli_hint(error: PathShareError) -> str | None:
    """The error's hint as the command line says it: the library's words, then the command or option
    that does it ("Sign it first: `pathshare agreement sign 3f2a9c1e`.")."""
    words = CLI_ACTIONS.get(error.action or "")
    if words is None:
        return error.hint
    words = words.format(subject=error.subject or "ID")
    return f"{error.hint.rstrip('.')}: {words}." if error.hint else f"{words}."


class _Parser(argparse.ArgumentParser):
    """argparse with PathShare's voice: one sentence, exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        sentence = message[:1].upper() + message[1:]
        sys.stderr.write(f"pathshare: {sentence}{'' if sentence.endswith('.') else '.'}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pathshare",
        description="Share student data safely with consortium partners.",
    )
    parser.add_argument("--version", action="version", version=f"pathshare {__version__}")
    parser.add_argument(
        "--vault",
        metavar="PATH",
        default=os.environ.get("PATHSHARE_VAULT"),
        help="the vault file (default: in the platform's user data folder)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"desktop.commands.{name}")
        module.register(sub)
    return parser


def reference_markdown() -> str:
    """docs/cli.md: every command's help, generated from the parser (a test keeps the file in step)."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; the document must not depend on it
    try:
        parts = [
            "# `pathshare` command-line reference\n\n"
            "Generated from the parser by `desktop.cli.reference_markdown()`; `pathshare COMMAND --help`\n"
            "shows the same. Scripts may rely on it: commands and options are only ever added.\n\n"
            "Exit status: 0 success, 1 refused or failed (one sentence on stderr; advice, if any, on a\n"
            "second line `pathshare: hint: …`), 2 usage error.\n"
            "Commands that use the vault take `--vault PATH` (default: the platform's user data folder;\n"
            "also `PATHSHARE_VAULT`) and read the passphrase from `PATHSHARE_PASSPHRASE` or prompt for it\n"
            "without echo.\n\n"
        ]

        def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if not subs:
                parts.append(f"## `{prefix}`\n\n```\n{parser.format_help().strip()}\n```\n\n")
            for action in subs:
                for name, child in action.choices.items():
                    walk(child, f"{prefix} {name}")

        walk(build_parser(), "pathshare")
        return "".join(parts).rstrip("\n") + "\n"
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


class DisplayStream:
    """``sys.stdout``/``sys.stderr`` while a command runs: the one place the CLI's text reaches the terminal.

    Every write goes through ``deid.display_text`` (line breaks and tabs kept), so nothing a partner's
    card, agreement, certificate, package or a user's extract holds — an escape sequence that erases a
    line, a carriage return, a bidi override — acts on the terminal: it is shown as its escape
    (``\\x1b``, ``\\u202e``). JSON output stays valid (json escapes control characters itself, and
    ``\\u202e`` in a JSON string is the same character). The program's own control output (the progress
    line's carriage returns) goes through :meth:`write_control`.
    """

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        from deid import display_text

        return self.raw.write(display_text(text, keep="\n\t"))

    def write_control(self, text: str) -> int:
        return self.raw.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, fileno, buffer …
        return getattr(self.raw, name)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``pathshare`` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    # `pathshare` alone, or `pathshare FILE.age` (a file manager's "Open with"), launches the app.
    if not args_list or (len(args_list) == 1 and args_list[0].endswith(".age")):
        from desktop.app import run_app

        return run_app(args_list)
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = DisplayStream(out), DisplayStream(err)
    try:
        return _run(args_list)
    finally:
        # Put back what we wrapped (unless a broken pipe already replaced stdout with devnull).
        if isinstance(sys.stdout, DisplayStream):
            sys.stdout = out
        if isinstance(sys.stderr, DisplayStream):
            sys.stderr = err


def _run(args_list: list[str]) -> int:
    from deid.errors import PathShareError

    parser = build_parser()
    args = parser.parse_args(args_list)
    from agreements import identify_vault_user

    identify_vault_user("command", on_wait=lambda sentence: sys.stderr.write(f"pathshare: {sentence}\n"))
    if not getattr(args, "func", None):
        if args.vault and any(a == "--vault" or a.startswith("--vault=") for a in args_list):
            # `pathshare --vault X` with no command: the app, on that vault (as PATHSHARE_VAULT does).
            from desktop.app import run_app

            return run_app([], vault_path=args.vault)
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except PathShareError as exc:
        say(str(exc), cli_hint(exc))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("pathshare: cancelled; nothing was written.\n")
        return 1
    except BrokenPipeError:
        # `pathshare audit log | head`: the reader went away; that is not an error worth a traceback.
        import contextlib

        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep interpreter shutdown from re-raising
        return 0
    except MemoryError:
        sys.stderr.write("pathshare: out of memory; try a smaller file or close other programs.\n")
        return 1
    except Exception as exc:
        # A bug, not bad input. Still one sentence and no traceback: a library's message can quote a row
        # of a student file. PATHSHARE_DEBUG=1 shows where it happened (stack and type, not the message).
        if os.environ.get("PATHSHARE_DEBUG"):
            import traceback

            sys.stderr.write("".join(traceback.format_tb(exc.__traceback__)))
        sys.stderr.write(
            f"pathshare: an unexpected {type(exc).__name__} stopped the command; nothing was written. "
            "Please report it (PATHSHARE_DEBUG=1 shows where it happened).\n"
        )
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
