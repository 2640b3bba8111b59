"""The one place the app turns an exception into what the user sees.

Every page shows a refusal with ``MessageBar.show_problem(error)``, the worker process and the thread
pools hand errors back through :func:`user_error`, and all of them come here: a ``PathShareError`` is
shown as its sentence with its hint apart; anything else (a bug, not bad input) becomes a sentence that
names only the exception's type — a library's message can quote a row of the student file — and where it
happened goes to the terminal. No Qt here: the worker process uses it too.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass

from deid.errors import PathShareError

OUT_OF_MEMORY = "Out of memory; try a smaller file or close other programs."


@dataclass(frozen=True)
class Problem:
    """What the window shows: one sentence, and what to do about it (``None``: nothing to add)."""

    message: str
    hint: str | None = None


def app_hint(hint: str | None) -> str | None:
    """The hint as the app shows it. The libraries' hints are written for both faces, but some still name
    a command-line step (`pathshare packages`, --force); in the window the page's own buttons are the way
    to do it, so such a hint is left out rather than shown in words the user cannot act on."""
    if not hint or "`pathshare" in hint or "--" in hint:
        return None
    return hint


def problem_of(error: BaseException) -> Problem:
    """What the user sees for ``error``."""
    if isinstance(error, PathShareError):
        return Problem(str(error), app_hint(error.hint))
    if isinstance(error, MemoryError):
        return Problem(OUT_OF_MEMORY)
    log_unexpected(error)
    return Problem(
        f"Something unexpected went wrong ({type(error).__name__}); nothing was written. "
        "Please report it to whoever supports PathShare for you."
    )


def user_error(error: BaseException) -> PathShareError:
    """``error`` as a PathShareError that may cross a thread or the worker's pipe (its hint kept)."""
    if isinstance(error, PathShareError):
        return error
    problem = problem_of(error)
    return PathShareError(problem.message, problem.hint)


def log_unexpected(error: BaseException) -> None:
    """Print where an unexpected error happened — the stack and the exception's type, never its message:
    a library's message can quote a row of the student file (pyarrow's CSV errors do)."""
    frames = "".join(traceback.format_tb(error.__traceback__))
    sys.stderr.write(f"PathShare: unexpected {type(error).__name__}\n{frames}")
