"""The trust layer's branch of PathShare's exception tree (the root lives in ``deid.errors``).

    PathShareError
    ├── InputError, PolicyError, OutputError, CheckFailed, Cancelled   (deid.errors)
    ├── VaultError                 the vault cannot be created, opened or written
    │   ├── WrongPassphrase        the passphrase does not open this vault
    │   ├── NotAVault              the file is not a PathShare vault
    │   └── WeakPassphrase         a new passphrase was refused, with the reason
    ├── IdentityError              no organization identity yet, or it is unusable
    ├── PartnerError               a partner card is invalid, unknown, unverified or revoked
    ├── AgreementError             an agreement is invalid, unsigned, not in force, or not ours
    ├── PackageRejected            a package failed verification (reason in the message)
    └── AuditError                 the audit log or an audit bundle does not verify
"""

from __future__ import annotations

from deid.errors import PathShareError


class VaultError(PathShareError):
    """The vault cannot be created, opened or written."""


class WrongPassphrase(VaultError):
    """The passphrase does not open this vault."""


class NotAVault(VaultError):
    """The file is not a PathShare vault."""


class WeakPassphrase(VaultError):
    """A new passphrase was refused; the message says why."""


class IdentityError(PathShareError):
    """No organization identity yet, or it is unusable."""


class PartnerError(PathShareError):
    """A partner card is invalid, unknown, unverified or revoked."""


class AgreementError(PathShareError):
    """An agreement is invalid, unsigned, not in force, or not one we are party to."""


class PackageRejected(PathShareError):
    """A package failed verification; the message names the reason."""


class AuditError(PathShareError):
    """The audit log or an audit bundle does not verify."""
