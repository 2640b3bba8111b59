"""The one clock of the trust layer, and its two written forms.

- ``utc_now()``: what the vault records (audit entries, stored agreements, partners, packages, profiles,
  linkage secrets): ISO 8601 UTC with microseconds and a ``Z`` — one format in every table, so times
  sort and compare as text.
- ``utc_text(now)``: what signed documents say (signatures, terminations, joinders, manifests,
  receipts, certificates): ISO 8601 UTC to the second with a ``Z``, as docs/package-format.md and
  docs/agreement-schema.md define it. ``now`` lets a caller (or a test) give the moment.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds and a ``Z`` (the vault's format)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def utc_text(now: datetime | None = None) -> str:
    """``now`` (default: the current time; a naive time is taken as UTC) as ISO 8601 UTC to the second
    with a ``Z`` (the signed documents' format)."""
    moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
