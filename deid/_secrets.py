"""The secret behind tokens, date shifts and record codes, and the encrypted record-code crosswalk.

- A **secret file** holds at least 16 bytes (a new one: 32 random bytes, hex, mode 0600). Its bytes
  (surrounding whitespace ignored, so an editor's newline changes nothing) are the input keying
  material; each use gets its own key by HKDF-SHA256 with a distinct ``info`` label, so a token key
  never equals a date-shift key.
- The **crosswalk** maps each (namespace, normalized source ID) to its random record code. It lives
  beside the secret file as ``<secret-file>.crosswalk``: ``PSXW1`` + a 12-byte nonce + AES-256-GCM of an
  Arrow IPC stream, under a key derived from the secret. It is written atomically and only when new
  codes were assigned. Two runs writing the same crosswalk at the same moment would lose one run's new
  codes: run them one after the other.
- The **padding key file** ``<secret-file>.padding`` (made like a secret file, on the first run whose
  policy has link tokens) keys the dummies that give every link-token cell one shape, so a record's
  dummies are the same in each release. The secret file is shared with partners for linkage; this
  file is made on each partner's own machine and must not be shared (shared, the dummies of two
  partners' identical records would agree).
"""

from __future__ import annotations

import os
import secrets as _secrets
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._atomic import write_bytes_atomic
from deid._strindex import StringIndex
from deid.errors import InputError, OutputError, PolicyError

MIN_SECRET_BYTES = 16
_MAGIC = b"PSXW1"
_AAD = b"pathshare crosswalk v1"
# Crockford's base32 without I, L, O, U: codes are read aloud and typed, so no look-alikes.
_ALPHABET = np.frombuffer(b"0123456789ABCDEFGHJKMNPQRSTVWXYZ", dtype=np.uint8)
CODE_LENGTH = 12


def load_secret(path: str | os.PathLike[str], *, create: bool = True) -> tuple[bytes, bool]:
    """Return (secret bytes, created). A missing file is created (32 random bytes, hex, 0600) when
    ``create`` is true; otherwise PolicyError."""
    p = Path(path)
    created = False
    if not p.exists():
        if not create:
            raise PolicyError(f"The secret file {p} does not exist.")
        try:
            write_bytes_atomic(p, _secrets.token_hex(32).encode("ascii") + b"\n", perm=0o600)
        except OSError as exc:
            raise OutputError(
                f"Cannot create the secret file {p}: {exc.strerror or 'the system refused'}."
            ) from None
        created = True
    try:
        data = p.read_bytes().strip()
    except OSError as exc:
        raise PolicyError(f"The secret file {p} cannot be read: {exc.strerror or exc}.") from exc
    if len(data) < MIN_SECRET_BYTES:
        raise PolicyError(f"The secret file {p} is too short (it needs at least {MIN_SECRET_BYTES} bytes).")
    return data, created


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose (``"token"``, ``"date_shift"``, ``"crosswalk"``) from the secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"pathshare/{purpose}/v1".encode()
    ).derive(secret)


def random_codes(n: int) -> pa.Array:
    """``n`` distinct random record codes (12 characters of Crockford base32: 60 random bits each)."""
    mask = np.uint64((1 << 60) - 1)
    while True:
        vals = np.frombuffer(_secrets.token_bytes(8 * n), dtype=np.uint64) & mask
        # A repeat among a million 60-bit draws has odds of about 1 in 2 million: draw again.
        if n == 0 or pc.count_distinct(pa.array(vals)).as_py() == n:
            break
    shifts = np.arange(CODE_LENGTH - 1, -1, -1, dtype=np.uint64) * np.uint64(5)
    chars = _ALPHABET[((vals[:, None] >> shifts) & np.uint64(31)).astype(np.uint8)]
    flat = np.ascontiguousarray(chars).reshape(-1)
    offsets = np.arange(0, (n + 1) * CODE_LENGTH, CODE_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(flat.tobytes()))


class Crosswalk:
    """Source ID → record code, per namespace; new IDs get fresh random codes (never derived from
    the ID). Load and save with :meth:`from_bytes` / :meth:`to_bytes`, or the file helpers below."""

    def __init__(self) -> None:
        self._maps: dict[str, tuple[pa.Array, pa.Array]] = {}
        # per namespace, the IDs' and the codes' look-up prepared once (deid._strindex): kept while
        # batches of a streaming run come in, so none re-hashes every ID known so far
        self._indexes: dict[str, tuple[StringIndex, StringIndex]] = {}
        self.new_codes = 0

    def codes_for(self, namespace: str, ids: pa.Array | pa.ChunkedArray) -> pa.Array:
        """Codes for ``ids`` (already normalized, distinct or not; nulls stay null), assigning new codes
        to IDs not seen before."""
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        known_ids, known_codes = self._maps.get(
            namespace, (pa.array([], pa.string()), pa.array([], pa.string()))
        )
        uniq = pc.drop_null(pc.unique(ids))
        if namespace not in self._indexes and len(known_ids) <= 2 * len(uniq):
            # a look-up as large as what is known (the in-memory run's one call): a hash set of the
            # known IDs costs no more than the look-up itself
            return self._codes_hashed(namespace, ids, uniq, known_ids, known_codes)
        if namespace not in self._indexes:
            self._indexes[namespace] = (StringIndex(known_ids), StringIndex(known_codes))
        id_index, code_index = self._indexes[namespace]
        missing = uniq.filter(pa.array(id_index.positions(uniq) < 0))
        if len(missing):
            fresh = random_codes(len(missing))
            while (code_index.positions(fresh) >= 0).any():  # astronomically rare; draw the batch again
                fresh = random_codes(len(missing))
            id_index.extend(missing)
            code_index.extend(fresh)
            self._maps[namespace] = (id_index.values, code_index.values)
            self.new_codes += len(missing)
        valid = pc.is_valid(ids)
        at = np.full(len(ids), -1, dtype=np.int64)
        mask = valid.to_numpy(zero_copy_only=False).astype(bool)
        at[mask] = id_index.positions(ids.filter(valid))
        return code_index.values.take(pa.array(at, mask=~mask))

    def _codes_hashed(
        self, namespace: str, ids: pa.Array, uniq: pa.Array, known_ids: pa.Array, known_codes: pa.Array
    ) -> pa.Array:
        missing = pc.filter(uniq, pc.invert(pc.is_in(uniq, value_set=known_ids)))
        if len(missing):
            fresh = random_codes(len(missing))
            taken = pc.is_in(fresh, value_set=known_codes)
            while pc.any(taken).as_py():  # astronomically rare; regenerate the whole batch
                fresh = random_codes(len(missing))
                taken = pc.is_in(fresh, value_set=known_codes)
            known_ids = pa.concat_arrays([known_ids, missing.cast(pa.string())])
            known_codes = pa.concat_arrays([known_codes, fresh])
            self._maps[namespace] = (known_ids, known_codes)
            self.new_codes += len(missing)
        idx = pc.index_in(ids, value_set=known_ids)
        return pc.take(known_codes, idx)

    def size(self, namespace: str | None = None) -> int:
        """How many IDs are mapped (in one namespace, or in all)."""
        if namespace is not None:
            return len(self._maps.get(namespace, ([],))[0])
        return sum(len(ids) for ids, _ in self._maps.values())

    def to_bytes(self, secret: bytes) -> bytes:
        """Encrypt the crosswalk (AES-256-GCM, key from the secret)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        ns, ids, codes = [], [], []
        for name, (i, c) in self._maps.items():
            ns.append(pa.array([name] * len(i), pa.string()))
            ids.append(i)
            codes.append(c)
        table = pa.table(
            {
                "namespace": pa.concat_arrays(ns) if ns else pa.array([], pa.string()),
                "id": pa.concat_arrays(ids) if ids else pa.array([], pa.string()),
                "code": pa.concat_arrays(codes) if codes else pa.array([], pa.string()),
            }
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        nonce = _secrets.token_bytes(12)
        ct = AESGCM(derive_key(secret, "crosswalk")).encrypt(nonce, sink.getvalue().to_pybytes(), _AAD)
        return _MAGIC + nonce + ct

    @classmethod
    def from_bytes(cls, data: bytes, secret: bytes, *, name: str = "the crosswalk") -> Crosswalk:
        """Decrypt a crosswalk made by :meth:`to_bytes` with the same secret."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 12 + 16:
            raise InputError(f"{name} is not a PathShare crosswalk file.")
        nonce, ct = data[len(_MAGIC) : len(_MAGIC) + 12], data[len(_MAGIC) + 12 :]
        try:
            plain = AESGCM(derive_key(secret, "crosswalk")).decrypt(nonce, ct, _AAD)
        except InvalidTag as exc:
            raise InputError(f"{name} does not belong to this secret file, or it was altered.") from exc
        table = pa.ipc.open_stream(plain).read_all()
        cw = cls()
        namespaces = table.column("namespace")
        for ns in pc.unique(namespaces).to_pylist():
            part = table.filter(pc.equal(namespaces, ns))
            cw._maps[ns] = (part.column("id").combine_chunks(), part.column("code").combine_chunks())
        return cw


def crosswalk_path(secret_file: str | os.PathLike[str]) -> Path:
    """Where the crosswalk for a secret file lives: beside it, ``<secret-file>.crosswalk``."""
    p = Path(secret_file)
    return p.with_name(p.name + ".crosswalk")


def padding_key_path(secret_file: str | os.PathLike[str]) -> Path:
    """Where this machine's link-token padding key for a secret file lives: ``<secret-file>.padding``."""
    p = Path(secret_file)
    return p.with_name(p.name + ".padding")


def load_crosswalk(path: str | os.PathLike[str], secret: bytes) -> Crosswalk:
    """Load the crosswalk at ``path``; an absent file is an empty crosswalk."""
    p = Path(path)
    if not p.exists():
        return Crosswalk()
    return Crosswalk.from_bytes(p.read_bytes(), secret, name=f"The crosswalk {p}")


def save_crosswalk(path: str | os.PathLike[str], crosswalk: Crosswalk, secret: bytes) -> None:
    """Write the crosswalk atomically (mode 0600)."""
    # force: the crosswalk is PathShare's own file of the codes given so far, updated in place.
    write_bytes_atomic(path, crosswalk.to_bytes(secret), perm=0o600, force=True)
