"""The package format: its layout, the signed manifest, the rules for the names it holds, and what
sealing (:mod:`agreements._seal`) and opening (:mod:`agreements._open_package`) share.

A package is a standard age file (X25519 recipients = the agreement's recipients) whose plaintext is a
tar archive (PAX format)::

    manifest.json        canonical JSON (RFC 8785): ids, agreement, sender, recipients, created,
                         the sender's audit-log head, and each file's name, size, rows and SHA-256
    manifest.sig         base64 Ed25519 signature by the sender over manifest.json
    report.json          the de-identification report
    data/<name>          the de-identified files

The signed manifest comes *first*, so a recipient verifies the sender's signature and runs its checks
(agreement, recipients, replay) before a single byte of data is written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agreements._signing import canonical_json, sha256_hex
from agreements.errors import PackageRejected
from deid.errors import PathShareError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
REPORT_NAME = "report.json"
DATA_DIR = "data"

CHUNK = 1 << 20

_MANIFEST_KEYS = {
    "pathshare_package",
    "package_id",
    "agreement_id",
    "agreement_hash",
    "sender_fingerprint",
    "recipients",
    "created",
    "audit_head",
    "report",
    "files",
}

# --------------------------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class FileEntry:
    """One de-identified file in a package: its name under ``data/``, size, rows (if known), SHA-256."""

    name: str
    size: int
    sha256: str
    rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "rows": self.rows, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    """What a package holds and who made it; signed by the sender inside the package."""

    package_id: str
    agreement_id: str
    agreement_hash: str
    sender_fingerprint: str
    recipients: tuple[str, ...]
    created: str
    audit_head: tuple[int, str]
    report_size: int
    report_sha256: str
    files: tuple[FileEntry, ...]
    # Consistency proofs (RFC 6962) from earlier heads of the sender's log to ``audit_head``:
    # ((earlier size, (hex hash, …)), …), so a recipient holding one of those heads can accept this one.
    audit_proofs: tuple[tuple[int, tuple[str, ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The manifest as the JSON document that is signed and stored as ``manifest.json``."""
        head: dict[str, Any] = {"seq": self.audit_head[0], "hash": self.audit_head[1]}
        if self.audit_proofs:
            head["proofs"] = [{"from": m, "hashes": list(path)} for m, path in self.audit_proofs]
        return {
            "pathshare_package": FORMAT_VERSION,
            "package_id": self.package_id,
            "agreement_id": self.agreement_id,
            "agreement_hash": self.agreement_hash,
            "sender_fingerprint": self.sender_fingerprint,
            "recipients": list(self.recipients),
            "created": self.created,
            "audit_head": head,
            "report": {"name": REPORT_NAME, "size": self.report_size, "sha256": self.report_sha256},
            "files": [f.to_json() for f in self.files],
        }

    @property
    def hash(self) -> str:
        """SHA-256 (hex) of the canonical manifest: the package's identity in receipts and certificates."""
        return sha256_hex(canonical_json(self.to_json()))

    @property
    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical manifest without its audit head: what the sender's log entry
        ``package.sealing`` records before the head that covers that entry is put into the manifest."""
        doc = self.to_json()
        del doc["audit_head"]
        return sha256_hex(canonical_json(doc))

    @classmethod
    def from_json(cls, doc: Any) -> Manifest:
        """Parse and validate a manifest document; PackageRejected if anything is malformed."""
        bad = PackageRejected("The package's manifest is malformed.")
        if not isinstance(doc, dict) or set(doc) != _MANIFEST_KEYS:
            raise bad
        if doc["pathshare_package"] != FORMAT_VERSION:
            raise PackageRejected(
                f"The package uses format version {doc['pathshare_package']!r}; this PathShare reads "
                f"version {FORMAT_VERSION}. Update PathShare."
            )
        strings = ("package_id", "agreement_id", "agreement_hash", "sender_fingerprint", "created")
        if not all(nonempty_str(doc[k]) for k in strings):
            raise bad
        recipients = doc["recipients"]
        if not isinstance(recipients, list) or not recipients or not all(map(nonempty_str, recipients)):
            raise bad
        head = doc["audit_head"]
        if not (
            isinstance(head, dict)
            and set(head) in ({"seq", "hash"}, {"seq", "hash", "proofs"})
            and _count(head["seq"])
            and isinstance(head["hash"], str)
        ):
            raise bad
        proofs = _audit_proofs(head.get("proofs", []))
        if proofs is None:
            raise bad
        report = doc["report"]
        if not (
            isinstance(report, dict)
            and set(report) == {"name", "size", "sha256"}
            and report["name"] == REPORT_NAME
            and _count(report["size"])
            and is_sha(report["sha256"])
        ):
            raise bad
        files = doc["files"]
        if not isinstance(files, list):
            raise bad
        entries = []
        for item in files:
            if not (
                isinstance(item, dict)
                and set(item) == {"name", "size", "rows", "sha256"}
                and isinstance(item["name"], str)
                and _count(item["size"])
                and is_sha(item["sha256"])
                and (item["rows"] is None or _count(item["rows"]))
            ):
                raise bad
            try:
                check_data_name(item["name"])
            except ValueError as exc:
                raise PackageRejected(f"The manifest lists an unsafe file name: {exc}.") from exc
            entries.append(FileEntry(item["name"], item["size"], item["sha256"], item["rows"]))
        check_unique([e.name for e in entries], PackageRejected)
        return cls(
            package_id=doc["package_id"],
            agreement_id=doc["agreement_id"],
            agreement_hash=doc["agreement_hash"],
            sender_fingerprint=doc["sender_fingerprint"],
            recipients=tuple(recipients),
            created=doc["created"],
            audit_head=(head["seq"], head["hash"]),
            report_size=report["size"],
            report_sha256=report["sha256"],
            files=tuple(entries),
            audit_proofs=proofs,
        )


_MAX_PROOFS = 64  # earlier heads a manifest proves against; the sender sends a handful


def _audit_proofs(value: Any) -> tuple[tuple[int, tuple[str, ...]], ...] | None:
    """The manifest's consistency proofs as ((size, (hash, …)), …), or None if malformed."""
    if not isinstance(value, list) or len(value) > _MAX_PROOFS:
        return None
    out = []
    for item in value:
        if not (
            isinstance(item, dict)
            and set(item) == {"from", "hashes"}
            and _count(item["from"])
            and isinstance(item["hashes"], list)
            and len(item["hashes"]) <= _MAX_PROOFS
            and all(is_sha(h) for h in item["hashes"])
        ):
            return None
        out.append((item["from"], tuple(item["hashes"])))
    return tuple(out)


def nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def check_data_name(name: str) -> None:
    """A name under data/: relative, '/'-separated; no '..', '.', empty parts, backslashes or controls."""
    if not name or len(name) > 255:
        raise ValueError("a file name must be 1 to 255 characters")
    if name.startswith("/") or "\\" in name or ":" in name:
        raise ValueError(f"{name!r} is not a plain relative name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"{name!r} contains control characters")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{name!r} has an empty, '.' or '..' part")


def check_unique(names: Sequence[str], error: type[PathShareError]) -> None:
    # Case-folded, because two names differing only in case collide on macOS and Windows.
    seen: set[str] = set()
    for name in names:
        key = name.casefold()
        if key in seen:
            raise error(f"The file name {name!r} appears twice in the package.")
        seen.add(key)


# ------------------------------------------------------------------------- progress, sealing and opening

Progress = Callable[[float, str], None]


class Meter:
    """Reports progress about every 1% (and lets ``progress`` cancel by raising, e.g. Cancelled)."""

    def __init__(self, progress: Progress | None, total: int, message: str) -> None:
        self._progress = progress
        self._total = max(total, 1)
        self._message = message
        self._done = 0
        self._next = 0

    def add(self, n: int) -> None:
        if self._progress is None:
            return
        self._done += n
        if self._done >= self._next:
            self._next = self._done + self._total // 100 + 1
            self._progress(min(self._done / self._total, 1.0), self._message)
