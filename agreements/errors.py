"""The trust layer's branch of PathShare's exception tree (the root lives in ``deid.errors``).

PathShareError
├── InputError, PolicyError, OutputError, CheckFailed, Cancelled   (deid.errors)
├── VaultError                 the vault cannot be created, opened or written
│   ├── WrongPassphrase        the passphrase does not open this vault
│   ├── NotAVault              the file is not a PathShare vault
│   ├── VaultInUse             another process has the vault open (the message names it)
│   └── WeakPassphrase         a new passphrase was refused, with the reason
├── IdentityError              no organization identity yet, or it is unusable
├── PartnerError               a partner card is invalid, unknown, unverified or revoked
├── AgreementError             an agreement is invalid, unsigned, not in force, or not ours
├── PackageRejected            a package failed verification (reason in the message)
└── AuditError                 the audit log or an audit bundle does not verify
"""

from __future__ import annotations

import os

from deid.errors import PathShareError


def _one_line(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\x0a``, ``\\udcff``)."""
    from deid import display_text

    return display_text(text)


class _OneLine(PathShareError):
    """Base of this package's errors. Their messages quote what partners' files say (ids, fingerprints,
    versions): a line break or a control character in such a value must not split the one sentence the
    user reads (or forge a second "pathshare:" line), so the message is kept on one printable line."""

    def __init__(
        self, message: str, hint: str | None = None, *, action: str | None = None, subject: str | None = None
    ) -> None:
        hint, subject = (None if s is None else _one_line(s) for s in (hint, subject))
        super().__init__(_one_line(message), hint, action=action, subject=subject)


class VaultError(_OneLine):
    """The vault cannot be created, opened or written."""


class WrongPassphrase(VaultError):
    """The passphrase does not open this vault."""


class NotAVault(VaultError):
    """The file is not a PathShare vault."""


class VaultInUse(VaultError):
    """Another process has the vault open; the message names it (``pid`` when known)."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class WeakPassphrase(VaultError):
    """A new passphrase was refused; the message says why."""


class IdentityError(_OneLine):
    """No organization identity yet, or it is unusable."""


class PartnerError(_OneLine):
    """A partner card is invalid, unknown, unverified or revoked."""


class AgreementError(_OneLine):
    """An agreement is invalid, unsigned, not in force, or not one we are party to.

    ``field`` names the term the problem is about, as a dotted path into the agreement (``expires``,
    ``policy.parameters.gpa``, ``elements[2].code_set``; ``""`` when it is about no one term), so a form
    can point at the field that needs changing without reading the sentence.
    """

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        field: str = "",
        action: str | None = None,
        subject: str | None = None,
    ) -> None:
        super().__init__(message, hint, action=action, subject=subject)
        self.field = field


class PackageRejected(_OneLine):
    """A package failed verification; the message names the reason.

    ``receipt`` is the path of the signed ``rejected`` receipt written for the sender, when the
    refusal came after the sender's signature verified and a receipt was asked for.
    """

    receipt: os.PathLike[str] | None = None


class OpenedFilesMissing(PackageRejected):
    """Destroying a received package found its files gone from the folder it was opened into (or the
    folder the user said they were moved to); nothing was deleted or certified. ``folder`` is where it
    looked: the app then asks where the files are now, or what the user checked to certify by hand."""

    def __init__(
        self, message: str, hint: str | None = None, *, folder: str = "", action: str | None = None
    ) -> None:
        super().__init__(message, hint, action=action)
        self.folder = folder


class AuditError(_OneLine):
    """The audit log or an audit bundle does not verify."""
