"""agreements — PathShare's trust layer: the vault, identities and partner cards, signed
agreements, the audit log, sealed packages, receipts, and the workflows the app and CLI share.

For most uses, open a vault and call a workflow (documented as they land).
"""

from agreements.errors import (
    AgreementError,
    AuditError,
    IdentityError,
    NotAVault,
    PackageRejected,
    PartnerError,
    VaultError,
    WeakPassphrase,
    WrongPassphrase,
)

__all__ = [
    "AgreementError",
    "AuditError",
    "IdentityError",
    "NotAVault",
    "PackageRejected",
    "PartnerError",
    "VaultError",
    "WeakPassphrase",
    "WrongPassphrase",
]
