"""PathShare's exceptions: one tree, every message one plain sentence for the user.

    PathShareError                 anything PathShare refuses or cannot do
    ├── InputError                 an input file is unreadable, malformed or not what it claims
    ├── PolicyError                a de-identification policy is invalid or does not fit the input
    ├── OutputError                an output cannot be written where the user asked
    ├── CheckFailed                the de-identified output fails a required check (k, residual PII)
    └── (agreements.errors adds)   VaultError, IdentityError, PartnerError, AgreementError,
                                   PackageRejected, AuditError

Errors of libraries underneath (pandas, pyarrow, sqlcipher3, pyrage, …) are translated into these
where they enter, with ``raise ... from exc``; the CLI and the GUI show ``str(error)`` and nothing else.
A message never contains student data (no cell values): name the file, the column, the row number.
"""

from __future__ import annotations


class PathShareError(Exception):
    """Base of every error PathShare reports to a user.

    ``hint`` is what the user can do about it, kept apart from the message: the CLI prints it after
    the sentence, the app may offer the action instead (a confirm dialog rather than "use --force").
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(PathShareError):
    """An input file is unreadable, malformed, or not what it claims to be."""


class PolicyError(PathShareError):
    """A de-identification policy is invalid or does not fit the input."""


class OutputError(PathShareError):
    """An output cannot be written where the user asked."""


class OutputExists(OutputError):
    """The output file already exists. ``recorded`` says the vault recorded it (a sealed package, a
    receipt, a certificate…): such a file is never replaced; any other only when the user said so."""

    def __init__(
        self, message: str, hint: str | None = None, *, path: str = "", recorded: bool = False
    ) -> None:
        super().__init__(message, hint)
        self.path = path
        self.recorded = recorded


class CheckFailed(PathShareError):
    """The de-identified output fails a required check (k-anonymity, residual PII, elements)."""


class Cancelled(PathShareError):
    """The user cancelled a long-running job; nothing was written."""
