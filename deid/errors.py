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

# What a hint can point the user at, named in neither face's words: the CLI adds the command or option
# that does it (desktop/cli.py, CLI_ACTIONS), the app its own button or page. A test keeps the lists equal.
ACTIONS = frozenset({
    "amend_agreement", "attest", "check_mapping", "create_identity", "destroy_package", "files_moved",
    "give_reason", "import_agreement", "import_linkage_key", "list_agreements", "list_packages",
    "name_sender", "name_token_column", "new_agreement", "raise_memory", "replace", "save_profile",
    "secret_file", "sign_agreement", "verify_audit_log", "verify_partner", "write_certificate",
})  # fmt: skip


class PathShareError(Exception):
    """Base of every error PathShare reports to a user.

    ``hint`` is what the user can do about it, kept apart from the message and in words that fit both
    faces (no command, no option): the CLI prints it on its own line, the app shows it its own way.
    ``action`` (one of :data:`ACTIONS`) names that step so each face can add how it is done there —
    the CLI the command or option (``pathshare agreement list``, ``--force``), the app its button;
    ``subject`` is the id it is about (an agreement's or a package's), when the step needs one.
    """

    def __init__(
        self, message: str, hint: str | None = None, *, action: str | None = None, subject: str | None = None
    ) -> None:
        if action is not None and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: add it to deid.errors.ACTIONS")
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.action = action
        self.subject = subject

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
        self,
        message: str,
        hint: str | None = None,
        *,
        path: str = "",
        recorded: bool = False,
        action: str | None = None,
    ) -> None:
        super().__init__(message, hint, action=action)
        self.path = path
        self.recorded = recorded


class CheckFailed(PathShareError):
    """The de-identified output fails a required check (k-anonymity, residual PII, elements)."""


class Cancelled(PathShareError):
    """The user cancelled a long-running job; nothing was written."""


def memory_too_small(doing: str, memory_mb: int | None = None) -> InputError:
    """The one refusal of a step that did not fit in the memory setting (``doing``: "to link these
    files"); nothing was written. The hint names no option: each face says how to raise the setting."""
    setting = f"The memory setting ({memory_mb:,} MB)" if memory_mb else "The memory setting"
    return InputError(
        f"{setting} is too small {doing}; nothing was written.",
        "Raise the memory setting, or free memory.",
        action="raise_memory",
    )

