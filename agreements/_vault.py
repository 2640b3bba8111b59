"""The vault: one SQLCipher 4 database per installation, unlocked by a passphrase.

It is keyed with SQLCipher's own passphrase derivation (``PRAGMA key = 'passphrase'``), so an auditor who
knows the passphrase can open it with any SQLCipher 4 tool. The schema is versioned with
``PRAGMA user_version`` and the forward migrations registered in ``agreements._migrations``.

Durability: WAL journal with ``synchronous=FULL`` — a commit is on disk when it returns, and a killed
process leaves either the state before or after each transaction (tests/test_vault_kill.py proves it).
A new vault is built in a temporary file beside its destination and renamed into place, so a killed
``init`` never leaves half a vault under the real name.

One process at a time: :meth:`Vault.open` first takes PathShare's own lock on ``<vault>.lock``
(agreements._vaultlock), because SQLite's own locks vanish when anything else in the process closes the
vault's files. Another process waits for it (the app's is refused at once) and is told who holds it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import sqlcipher3

from agreements._migrations import MIGRATIONS
from agreements._vaultlock import VaultLock, read_only_sentence
from agreements.errors import NotAVault, VaultError, WeakPassphrase, WrongPassphrase
from deid import restrict_permissions, sync_folder

if TYPE_CHECKING:
    from agreements._audit import AuditLog

VAULT_FORMAT = "pathshare-vault"
MIN_PASSPHRASE_LENGTH = 12
# zxcvbn's strongest score, 4: "very unguessable" (more than 10^10 guesses, taking the organization's own
# name and contact into account). An offline guesser with a copy of the vault pays SQLCipher's KDF per
# guess (about 0.1 s per core here, docs/vault-and-audit.md), so 10^10 guesses cost some 30 core-years.
MIN_PASSPHRASE_SCORE = 4
# Words any guesser tries first against a PathShare vault, whatever the organization.
_ALWAYS_GUESSED = ("pathshare", "vault", "passphrase", "password")
_SQLITE_PLAIN_HEADER = b"SQLite format 3\x00"
# Test hook only: fewer KDF iterations make the kill test's hundreds of opens affordable. Production
# vaults always use SQLCipher 4's default (PBKDF2-HMAC-SHA512, 256,000 iterations).
_TEST_KDF_ITER: int | None = None


def default_vault_path() -> Path:
    """Where the vault lives when ``--vault`` is not given: the platform's user data folder."""
    from deid import user_data_folder

    return user_data_folder() / "pathshare.vault"


def guessable_words(*texts: str) -> list[str]:
    """What a guesser knows about this vault, as zxcvbn user inputs: "pathshare" and friends, and each
    given text (the organization's name, its contact) whole and word by word."""
    words = list(_ALWAYS_GUESSED)
    for text in texts:
        text = (text or "").strip().lower()
        if not text:
            continue
        words.append(text)
        words.extend(w for w in re.split(r"[^\w]+", text) if len(w) >= 3)
    return list(dict.fromkeys(words))


def passphrase_strength(passphrase: str, user_inputs: Sequence[str] = ()) -> tuple[int, str]:
    """Score a passphrase 0..4 (only 4 is accepted) with one plain hint, for the GUI's meter.

    ``user_inputs`` are what a guesser knows (the organization's name and contact): a passphrase built
    on them scores as low as one built on a dictionary word.
    """
    if not passphrase:
        return 0, "Enter a passphrase."
    from zxcvbn import zxcvbn

    known = guessable_words(*user_inputs)
    # zxcvbn is quadratic in length; the first 100 characters decide any realistic guess anyway.
    result = zxcvbn(passphrase[:100], user_inputs=known)
    score = int(result["score"])
    feedback = result.get("feedback") or {}
    hint = (feedback.get("warning") or "").strip()
    suggestions = [s.strip() for s in feedback.get("suggestions") or [] if s.strip()]
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        # Short passphrases never reach "accepted" on the meter, whatever zxcvbn thinks.
        return min(score, MIN_PASSPHRASE_SCORE - 1), (
            f"Use at least {MIN_PASSPHRASE_LENGTH} characters; a few unrelated words are easy to remember."
        )
    if score >= MIN_PASSPHRASE_SCORE:
        return score, "Strong enough."
    lowered = passphrase.lower()
    if any(len(w) >= 4 and w in lowered for w in known[len(_ALWAYS_GUESSED) :]):
        hint = "It contains your organization's name or contact, which anyone guessing tries first."
    elif not hint and any(w in lowered for w in _ALWAYS_GUESSED):
        hint = "It contains a word anyone guessing a PathShare passphrase tries first."
    if not hint:
        hint = suggestions[0] if suggestions else "This passphrase would be easy to guess."
    if not hint.endswith("."):
        hint += "."
    tip = "Add another word or two; uncommon words are better."
    return score, hint if tip.lower() in hint.lower() else f"{hint} {tip}"


def check_passphrase(passphrase: str, user_inputs: Sequence[str] = ()) -> None:
    """Refuse a new passphrase that is too weak, with the reason (WeakPassphrase).

    ``user_inputs``: the organization's name and contact, which a guesser would try first."""
    if "\x00" in passphrase:
        raise WeakPassphrase("The passphrase cannot contain a NUL character.")
    if passphrase != passphrase.strip() and not passphrase.strip():
        raise WeakPassphrase("The passphrase cannot be only spaces.")
    score, hint = passphrase_strength(passphrase, user_inputs)
    if len(passphrase) < MIN_PASSPHRASE_LENGTH or score < MIN_PASSPHRASE_SCORE:
        raise WeakPassphrase(f"That passphrase is too weak: {hint[:1].lower()}{hint[1:]}")


def _key_pragma(passphrase: str) -> str:
    # PRAGMA cannot take bound parameters: quote as an SQL string literal (doubling single quotes).
    if "\x00" in passphrase:
        raise WrongPassphrase("A passphrase cannot contain a NUL character.")
    return "'" + passphrase.replace("'", "''") + "'"


def _connect(path: Path, passphrase: str) -> sqlcipher3.Connection:
    conn = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    # SQLCipher logs failed HMAC checks to stderr by default; a wrong passphrase is reported by us.
    with contextlib.suppress(sqlcipher3.DatabaseError):
        conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f"PRAGMA key = {_key_pragma(passphrase)}")
    if _TEST_KDF_ITER:
        conn.execute(f"PRAGMA kdf_iter = {int(_TEST_KDF_ITER)}")
    return conn


def _raw_key(conn: sqlcipher3.Connection, passphrase: str) -> str:
    """SQLCipher's raw-key form of ``passphrase`` for the open vault: the key SQLCipher 4 derives
    (PBKDF2-HMAC-SHA512 over the passphrase and the database's 16-byte salt) and the salt, in hex.
    Re-opening with it skips the key derivation, so the app can give the vault up whenever it is idle."""
    import hashlib

    # From the connection, not the file: after a rekey the new first page may still be in the -wal.
    salt = bytes.fromhex(conn.execute("PRAGMA cipher_salt").fetchone()[0])
    iterations = _TEST_KDF_ITER or 256_000
    key = hashlib.pbkdf2_hmac("sha512", passphrase.encode("utf-8"), salt, iterations, 32)
    return f"x'{key.hex()}{salt.hex()}'"


def _connect_raw(path: Path, raw_key: str) -> sqlcipher3.Connection:
    conn = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    with contextlib.suppress(sqlcipher3.DatabaseError):
        conn.execute("PRAGMA cipher_log_level = NONE")
    conn.execute(f'PRAGMA key = "{raw_key}"')
    if _TEST_KDF_ITER:  # what a later rekey derives its key with
        conn.execute(f"PRAGMA kdf_iter = {int(_TEST_KDF_ITER)}")
    return conn


def _configure(conn: sqlcipher3.Connection) -> None:
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA secure_delete = ON")  # freed pages of deleted secrets are zeroed


def _looks_like_not_a_vault(path: Path) -> str | None:
    """A reason why ``path`` is certainly not an encrypted vault, or None when it might be one."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise VaultError(f"Cannot read the vault at {path}: {exc.strerror or exc}.") from exc
    if size == 0:
        return "it is empty"
    if head == _SQLITE_PLAIN_HEADER:
        return "it is a plain (unencrypted) SQLite database"
    if size % 512:
        # SQLCipher files are whole pages, and pages are at least 512 bytes.
        return "it is not an encrypted database (or it was truncated)"
    return None


def _is_damage(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "malformed" in text or "corrupt" in text


def _cannot_open(path: Path, exc: BaseException) -> VaultError:
    """One sentence for a vault SQLCipher could decrypt but not read: say it is damaged, not why in SQL."""
    if _is_damage(exc):
        return NotAVault(
            f"The vault at {path} is damaged (truncated or corrupted); restore it from your backup copy."
        )
    return database_failure(path, exc) or VaultError(f"Cannot open the vault at {path}: {exc}.")


def database_failure(path: Path, exc: BaseException) -> VaultError | None:
    """The sentence for an SQLite failure that is about the vault file, not about PathShare's code
    (damaged, locked, disk full or read-only), or None for any other exception."""
    if not isinstance(exc, sqlcipher3.DatabaseError):
        return None
    text = str(exc).lower()
    if _is_damage(exc) or "not a database" in text:
        return NotAVault(
            f"The vault at {path} is damaged (truncated or corrupted); restore it from your backup copy."
        )
    if "locked" in text or "busy" in text:
        return VaultError(f"The vault at {path} is in use by another PathShare; close it and try again.")
    if "full" in text:
        return VaultError(f"The disk holding the vault at {path} is full; nothing more was written.")
    if "readonly" in text or "read-only" in text:
        return VaultError(f"The vault at {path} cannot be written (it or its folder is read-only).")
    if "disk i/o" in text:
        return VaultError(f"The vault at {path} could not be read or written (a disk error).")
    return None


def _max_version() -> int:
    return max((v for v, _ in MIGRATIONS), default=0)


class Vault:
    """An open vault. Create with :meth:`create`, open with :meth:`open`; close when done.

    One connection serves the whole process; writes go through :meth:`transaction` (``BEGIN IMMEDIATE``,
    so concurrent writers wait instead of failing half-way). ``vault.audit`` is its audit log.
    """

    path: Path
    audit: AuditLog

    def __init__(self, path: Path, conn: sqlcipher3.Connection, hold: VaultLock | None = None) -> None:
        from agreements._audit import AuditLog

        self.path = path
        self._conn: sqlcipher3.Connection | None = conn
        self._hold = hold
        # Kept only to re-open after :meth:`suspend` (the app gives the vault up while idle and to its
        # background jobs); the raw key is derived from it once, at the first suspend.
        self._passphrase: str | None = None
        self._raw: str | None = None
        self._suspended = False
        self._last_use = 0.0
        self._lock = threading.RLock()
        self._depth = 0
        self.audit = AuditLog(self)
        # Where the security state disagreed with the audit log when the vault was opened (tampering).
        self.tampering: list[str] = []
        # What the start found of openings a killed process left unfinished (see sweep_staging).
        self.staging_notes: list[str] = []

    # -- life cycle -------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, passphrase: str, *, user_inputs: Sequence[str] = ()) -> Vault:
        """Create a new vault at ``path`` (mode 0600) and return it open.

        Raises WeakPassphrase (with the reason) for a weak passphrase — judged knowing ``user_inputs``,
        the organization's name and contact — and VaultError when something already exists at ``path``
        or its folder cannot be written.
        """
        dest = Path(path)
        check_passphrase(passphrase, user_inputs)
        if dest.exists():
            raise VaultError(f"A vault (or another file) already exists at {dest}; choose another path.")
        parent = dest.parent if str(dest.parent) else Path(".")
        if not parent.is_dir():
            if dest == default_vault_path():
                parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            else:
                raise VaultError(f"Cannot create the vault at {dest}: the folder {parent} does not exist.")
        _remove_stale_partials(dest)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".partial", dir=parent)
        except OSError as exc:
            raise VaultError(f"Cannot create the vault at {dest}: {exc.strerror or exc}.") from exc
        os.close(fd)
        tmp = Path(tmp_name)
        restrict_permissions(tmp, 0o600)
        vault: Vault | None = None
        try:
            try:
                conn = _connect(tmp, passphrase)
                _configure(conn)
                vault = cls(tmp, conn)
                vault._migrate(audit_upgrade=False)
                vault.audit.append("vault.create", details={"schema": _max_version()})
                vault.close()  # checkpoints and removes the WAL, so the single file is the whole vault
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            except (sqlcipher3.Error, OSError) as exc:
                raise VaultError(f"Cannot create the vault at {dest}: {exc}.") from exc
            _publish(tmp, dest)
        except BaseException:
            if vault is not None:
                vault.close()
            for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm"), Path(f"{tmp}-journal")):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()
            raise
        return cls.open(dest, passphrase)

    @classmethod
    def open(cls, path: str | Path, passphrase: str, *, wait: float | None = None) -> Vault:
        """Open the vault at ``path``; apply pending migrations.

        Waits up to ``wait`` seconds (default 30) while another process has it open, and then raises
        VaultInUse naming that process. Raises WrongPassphrase when the
        passphrase does not open it, NotAVault when the file is not a PathShare vault, VaultError when
        there is no file or it was made by a newer PathShare.
        """
        p = Path(path)
        if not p.exists():
            raise VaultError(
                f"There is no vault at {p}.", "Create one.", action="create_identity"
            )
        if p.is_dir():
            raise NotAVault(f"{p} is a folder, not a PathShare vault.")
        hold = VaultLock.acquire(p, wait)
        try:
            vault = cls._open_locked(p, passphrase, hold)
        except BaseException:
            hold.release()
            raise
        vault._passphrase = passphrase
        return vault

    @classmethod
    def _open_locked(cls, p: Path, passphrase: str, hold: VaultLock) -> Vault:
        reason = _looks_like_not_a_vault(p)
        if reason:
            raise NotAVault(f"{p} is not a PathShare vault: {reason}.")
        try:
            conn = _connect(p, passphrase)
        except sqlcipher3.Error as exc:
            raise VaultError(f"Cannot open the vault at {p}: {exc}.") from exc
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlcipher3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "encrypted" in str(exc):
                raise WrongPassphrase(f"The passphrase does not open the vault at {p}.") from exc
            raise _cannot_open(p, exc) from exc
        try:
            _configure(conn)
        except sqlcipher3.Error as exc:  # e.g. a read-only file or folder
            conn.close()
            if _is_damage(exc):
                raise _cannot_open(p, exc) from exc
            if "readonly" in str(exc).lower() or "read-only" in str(exc).lower():
                raise VaultError(read_only_sentence(p)) from exc
            raise VaultError(f"Cannot open the vault at {p} for writing: {exc}.") from exc
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                raise NotAVault(f"{p} is an encrypted database but not a PathShare vault.")
            if version > _max_version():
                raise VaultError(
                    f"The vault at {p} was written by a newer PathShare (schema {version}); update PathShare."
                )
            marker = conn.execute("SELECT value FROM settings WHERE key = 'format'").fetchone()
            if not marker or marker[0] != VAULT_FORMAT:
                raise NotAVault(f"{p} is an encrypted database but not a PathShare vault.")
        except sqlcipher3.DatabaseError as exc:
            conn.close()
            if _is_damage(exc):
                raise _cannot_open(p, exc) from exc
            raise NotAVault(f"{p} is an encrypted database but not a PathShare vault.") from exc
        except BaseException:
            conn.close()
            raise
        vault = cls(p, conn, hold)
        try:
            vault._migrate(audit_upgrade=True)
            from agreements._integrity import check_security_state

            vault.tampering = check_security_state(vault)  # old pages spliced in: reported, not obeyed
            from agreements._staging import sweep_staging

            vault.staging_notes = sweep_staging(vault)  # decrypted data left by a killed `open`
        except BaseException as exc:
            vault._hold = None  # open() releases it
            vault.close()
            failure = database_failure(p, exc)
            if failure is not None:
                raise failure from exc
            raise
        return vault

    def close(self) -> None:
        """Close the vault (idempotent). The WAL is checkpointed into the main file."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(sqlcipher3.Error):
                    self._conn.close()
                self._conn = None
            self._suspended = False
            self._passphrase = self._raw = None
            if self._hold is not None:
                # Only after the connection is closed: its checkpoint runs while we still hold the lock.
                self._hold.release()
                self._hold = None

    def suspend(self, idle_for: float | None = None) -> bool:
        """Close the connection and give the lock up for a while, so that another process (a command,
        the app's background job) can open the vault; the next use re-opens it (:meth:`resume`).

        With ``idle_for``, only when the vault has not been used for that many seconds (the app's idle
        timer). Returns whether it is suspended now."""
        with self._lock:
            if self._depth:
                if idle_for is not None:
                    return False
                raise VaultError("The vault cannot be given up inside a transaction.")
            if self._conn is None:
                return self._suspended
            if idle_for is not None and time.monotonic() - self._last_use < idle_for:
                return False
            if self._raw is None and self._passphrase is not None:
                self._raw = _raw_key(self._conn, self._passphrase)
            with contextlib.suppress(sqlcipher3.Error):
                self._conn.close()
            self._conn = None
            self._suspended = True
            if self._hold is not None:
                self._hold.release()
                self._hold = None
            return True

    def resume(self, wait: float | None = None) -> None:
        """Re-open a suspended vault (waiting up to ``wait`` seconds for the process it was lent to);
        VaultInUse when that process still has it. Nothing to do when it is open."""
        with self._lock:
            if not self._suspended:
                return
            if self._passphrase is None:
                raise VaultError(f"The vault at {self.path} is closed.")
            hold = VaultLock.acquire(self.path, wait)
            try:
                if self._raw is not None:
                    conn = _connect_raw(self.path, self._raw)
                else:
                    conn = _connect(self.path, self._passphrase)
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                _configure(conn)
            except sqlcipher3.Error as exc:
                hold.release()
                raise database_failure(self.path, exc) or VaultError(
                    f"Cannot open the vault at {self.path}: {exc}."
                ) from exc
            except BaseException:
                hold.release()
                raise
            self._conn, self._hold, self._suspended = conn, hold, False

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        failure = database_failure(self.path, exc) if exc is not None else None
        if failure is not None:
            # A page that fails its check mid-command (a damaged file), a locked or full disk: one
            # sentence for the user instead of SQLite's exception.
            raise failure from exc

    @property
    def closed(self) -> bool:
        return self._conn is None and not self._suspended

    @property
    def db(self) -> sqlcipher3.Connection:
        """The open connection, for reads. Write through :meth:`transaction`."""
        with self._lock:
            if self._conn is None and self._suspended:
                self.resume()
            if self._conn is None:
                raise VaultError(f"The vault at {self.path} is closed.")
            self._last_use = time.monotonic()
            return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlcipher3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on any exception).

        Nested use joins the outer transaction, so a helper that writes (like ``audit.append``) can be
        called inside a caller's transaction and commits atomically with it.
        """
        conn = self.db
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield conn
                finally:
                    self._depth -= 1
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlcipher3.OperationalError as exc:
                raise VaultError(f"The vault at {self.path} is busy; try again in a moment.") from exc
            self._depth = 1
            try:
                yield conn
            except BaseException:
                self._depth = 0
                with contextlib.suppress(sqlcipher3.Error):
                    conn.execute("ROLLBACK")
                self.audit.after_rollback()
                raise
            try:
                conn.execute("COMMIT")
            except sqlcipher3.Error as exc:
                with contextlib.suppress(sqlcipher3.Error):
                    conn.execute("ROLLBACK")
                self.audit.after_rollback()
                raise database_failure(self.path, exc) or VaultError(
                    f"Cannot write to the vault at {self.path}: {exc}."
                ) from exc
            finally:
                self._depth = 0
            self._keep_wal_reachable(conn)
            self.audit.after_commit()  # the signed head file beside the vault (audit verify's reference)

    def _keep_wal_reachable(self, conn: sqlcipher3.Connection) -> None:
        """If someone deleted ``-wal`` by hand while we have the vault open, the commits since live only
        in a file no name points to, and would be lost with this process. Fold them into the vault file
        now and start a new ``-wal`` (we are the only process with the vault open: see _vaultlock)."""
        if self._hold is None or os.path.exists(f"{self.path}-wal"):
            return
        try:
            conn.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        except sqlcipher3.Error as exc:
            raise database_failure(self.path, exc) or VaultError(
                f"Cannot write to the vault at {self.path}: {exc}."
            ) from exc
        # Leaving WAL mode and entering it again makes SQLite create a new -wal under the real name.
        # Another Vault object of this process on the same file makes it fail; then the next commit
        # comes here again and folds its changes in the same way.
        with contextlib.suppress(sqlcipher3.Error):
            conn.execute("PRAGMA journal_mode = DELETE").fetchone()
            conn.execute("PRAGMA journal_mode = WAL").fetchone()

    # -- settings ---------------------------------------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        """A value from the vault's key/value settings, or None."""
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str) -> None:
        """Store a setting (joins the caller's transaction when there is one)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(value)),
            )

    # -- passphrase -------------------------------------------------------------------------------
    def change_passphrase(self, new: str) -> None:
        """Re-encrypt the vault under a new passphrase (``PRAGMA rekey``); audited."""
        row = self.db.execute("SELECT org, contact FROM identity WHERE id = 1").fetchone()
        check_passphrase(new, tuple(row) if row is not None else ())
        with self._lock:
            if self._depth:
                raise VaultError("The passphrase cannot be changed inside a transaction.")
            try:
                self.db.execute(f"PRAGMA rekey = {_key_pragma(new)}")
            except sqlcipher3.Error as exc:
                raise VaultError(f"Cannot change the passphrase of the vault at {self.path}: {exc}.") from exc
            self._passphrase, self._raw = new, None
        # Logged after the rekey: a kill in between leaves a consistent vault under the new passphrase.
        self.audit.append("vault.passphrase_change")

    # -- schema -----------------------------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self, *, audit_upgrade: bool) -> None:
        """Apply every migration step this vault has not had yet, each in its own transaction.

        Steps are numbered by area (see _migrations.py), so a step can land with a lower number than
        one already released; a ledger of applied steps (not just ``user_version``, the highest) makes
        sure such a step still reaches vaults created before it."""
        conn = self.db
        start = self.schema_version
        with self._lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                if not conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_steps'"
                ).fetchone():
                    conn.execute("CREATE TABLE schema_steps (version INTEGER PRIMARY KEY)")
                    # A vault from before the ledger had every step up to its user_version.
                    conn.executemany(
                        "INSERT INTO schema_steps(version) VALUES (?)",
                        [(v,) for v, _ in MIGRATIONS if v <= start],
                    )
                conn.execute("COMMIT")
            except sqlcipher3.Error as exc:
                with contextlib.suppress(sqlcipher3.Error):
                    conn.execute("ROLLBACK")
                raise VaultError(f"Cannot upgrade the vault at {self.path}: {exc}.") from exc
        done = {row[0] for row in conn.execute("SELECT version FROM schema_steps")}
        applied: list[int] = []
        for version, step in sorted(MIGRATIONS, key=lambda m: m[0]):
            if version in done:
                continue
            with self._lock:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    if callable(step):
                        step(conn)
                    else:
                        for statement in _split_sql(step):
                            conn.execute(statement)
                    conn.execute("INSERT INTO schema_steps(version) VALUES (?)", (version,))
                    conn.execute(f"PRAGMA user_version = {int(max(version, self.schema_version))}")
                    conn.execute("COMMIT")
                except sqlcipher3.Error as exc:
                    with contextlib.suppress(sqlcipher3.Error):
                        conn.execute("ROLLBACK")
                    raise VaultError(
                        f"Cannot upgrade the vault at {self.path} to schema {version}: {exc}."
                    ) from exc
            applied.append(version)
        if audit_upgrade and applied:
            self.audit.append(
                "vault.upgrade", details={"from": start, "to": self.schema_version, "steps": applied}
            )


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (triggers' inner semicolons kept together)."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlcipher3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements


def _remove_stale_partials(dest: Path) -> None:
    """Remove what an earlier, killed ``create`` of this vault left (older than ten minutes)."""
    import time

    cutoff = time.time() - 600
    for leftover in dest.parent.glob(f".{dest.name}.*.partial*"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def _publish(tmp: Path, dest: Path) -> None:
    """Move the finished vault into place without ever overwriting an existing file."""
    try:
        os.link(tmp, dest)  # fails if dest appeared meanwhile, unlike rename
    except FileExistsError as exc:
        raise VaultError(f"A vault (or another file) already exists at {dest}; choose another path.") from exc
    except OSError:
        os.replace(tmp, dest)  # filesystems without hard links
    else:
        tmp.unlink()
    sync_folder(dest.parent)
