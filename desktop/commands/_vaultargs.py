"""The one way every vault-using command finds, unlocks and opens the vault.

Path: ``--vault PATH`` (or ``PATHSHARE_VAULT``), else the platform's user data folder.
Passphrase: ``PATHSHARE_PASSPHRASE``, else a prompt without echo.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from agreements import Vault, VaultError, default_vault_path

PASSPHRASE_ENV = "PATHSHARE_PASSPHRASE"
NEW_PASSPHRASE_ENV = "PATHSHARE_NEW_PASSPHRASE"


def vault_path(args: argparse.Namespace) -> Path:
    """The vault file this command works on."""
    given = getattr(args, "vault", None)
    return Path(given).expanduser() if given else default_vault_path()


def read_passphrase(
    prompt: str = "Vault passphrase: ", *, env: str = PASSPHRASE_ENV, confirm: bool = False
) -> str:
    """The passphrase from ``env`` or a no-echo prompt (asked twice when ``confirm``)."""
    value = os.environ.get(env)
    if value:
        return value
    if not sys.stdin or not sys.stdin.isatty():
        raise VaultError(f"No passphrase: set {env} or run the command in a terminal.")
    try:
        first = getpass.getpass(prompt)
        if confirm and getpass.getpass("Repeat it: ") != first:
            raise VaultError("The two passphrases differ; nothing was changed.")
    except EOFError as exc:
        raise VaultError(f"No passphrase: set {env} or run the command in a terminal.") from exc
    return first


def add_force(parser: argparse.ArgumentParser) -> None:
    """``--force``: the one way a command is told it may replace an existing output file."""
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an output file that already exists (never a file the vault recorded: a sealed "
        "package, a receipt, a certificate, an opened package's files)",
    )


# The arguments through which commands name a file they write.
_OUTPUT_ARGS = ("out", "certificate", "receipt", "report")


def refuse_output_over_vault(args: argparse.Namespace, path: Path) -> None:
    """OutputError when a file this command would write is the vault itself (`audit report VAULT`
    would replace the vault with a PDF: every key and agreement lost)."""
    from deid.errors import OutputError

    for name in _OUTPUT_ARGS:
        value = getattr(args, name, None)
        if not isinstance(value, str | os.PathLike) or not str(value):
            continue
        out = Path(value).expanduser()
        try:
            same = out.samefile(path) if out.exists() and path.exists() else out.resolve() == path.resolve()
        except OSError:
            same = False
        if same:
            raise OutputError(f"Cannot write {out}: it is the vault itself; choose another file name.")


def open_vault(args: argparse.Namespace) -> Vault:
    """Open the vault named by ``args`` (WrongPassphrase / NotAVault / VaultError are shown by the CLI)."""
    path = vault_path(args)
    refuse_output_over_vault(args, path)
    vault = Vault.open(path, read_passphrase())
    _warn_tampering(vault)
    return vault


def _warn_tampering(vault: Vault) -> None:
    """Say at once when opening found the vault's state disagreeing with its audit log (tampering)."""
    import sys

    for finding in vault.tampering:
        sys.stderr.write(
            f"pathshare: warning: this vault was tampered with: {finding}; PathShare follows the audit log "
            "(see `pathshare audit verify`).\n"
        )
    for note in vault.staging_notes:  # what opening found left by an `open` that was killed
        sys.stderr.write(f"pathshare: note: {note}\n")


def open_or_create_vault(args: argparse.Namespace, user_inputs: Sequence[str] = ()) -> tuple[Vault, bool]:
    """Open the vault, or create it when there is none yet (for `init`). Returns (vault, created).

    ``user_inputs`` (the organization's name and contact) are what a guesser would try first: a new
    passphrase built on them is refused."""
    path = vault_path(args)
    refuse_output_over_vault(args, path)
    if path.exists():
        vault = Vault.open(path, read_passphrase())
        _warn_tampering(vault)
        return vault, False
    passphrase = read_passphrase("New vault passphrase: ", confirm=True)
    return Vault.create(path, passphrase, user_inputs=user_inputs), True
