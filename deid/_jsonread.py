"""The one reader of JSON that comes from outside: cards, agreements, receipts, certificates, audit
bundles, package manifests and reports, linkage key files, mapping profiles, policies, element lists.

Every such document is bounded the same way before it is used:

* **size** — refused above ``max_bytes`` before it is read into memory;
* **depth** — refused when arrays and objects nest more than ``max_depth`` (64) levels, *before*
  parsing: json's C parser recurses once per level, and a file nested 200,000 deep used to surface
  as "unexpected RecursionError" (or, just under the limit, could exhaust the stack of later code);
* **duplicate keys** — refused: a signer and a verifier must never read two different values for one
  key;
* **NaN and Infinity** — refused: they are not JSON (and canonical JSON cannot sign them);
* **text** — UTF-8, with or without a byte-order mark (Excel and Notepad write one).

Each refusal is one sentence naming the document, raised as the caller's error class (InputError,
PolicyError, PartnerError, AgreementError, PackageRejected, AuditError) so it lands in the right
branch of the exception tree and in the right audit entry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from deid.errors import InputError, PathShareError

MAX_DEPTH = 64  # the deepest document PathShare writes nests 6 levels
DEFAULT_MAX_BYTES = 16 << 20

_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_PIECE = 1 << 20
_SMALL = 16 << 10  # brackets; below this, regex passes (worst case ~10 ms) beat importing numpy
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


class _Duplicate(ValueError):
    pass


class _Constant(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def _constant(name: str) -> Any:
    raise _Constant(name)


def nesting_exceeds(data: bytes, max_depth: int) -> bool:
    """Whether arrays/objects in the JSON text ``data`` nest deeper than ``max_depth``."""
    # Drop escaped backslashes, then escaped quotes (left to right, as JSON reads them): every quote left
    # opens or closes a string, so the pieces between them alternate outside / inside a string.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= max_depth:
        return False  # every real card and receipt ends here
    if len(brackets) <= _SMALL:
        # Each pass removes the innermost pairs, exactly one level (a regex scan never sees the pairs it
        # just exposed), so after max_depth passes only what nests deeper is left. All in C: an
        # agreement takes microseconds, where numpy's import alone cost `open` a tenth of a second.
        for _ in range(max_depth):
            brackets = _EMPTY_PAIR.sub(b"", brackets)
            if not brackets:
                return False
        # Anything still paired nests deeper; unpaired brackets are malformed, for json to refuse.
        return _EMPTY_PAIR.search(brackets) is not None
    import numpy as np  # large documents (manifests of many files, bundles): a running sum, linear

    level = 0
    for at in range(0, len(brackets), _PIECE):  # pieces bound the memory of the running sum
        piece = np.frombuffer(brackets, dtype=np.uint8, count=min(_PIECE, len(brackets) - at), offset=at)
        steps = np.where((piece == ord("[")) | (piece == ord("{")), 1, -1).astype(np.int32)
        running = np.cumsum(steps, dtype=np.int64) + level
        if int(running.max()) > max_depth:
            return True
        level = int(running[-1])
    return False


def parse_json(
    data: bytes | str,
    source: str,
    *,
    what: str = "a PathShare document",
    error: type[PathShareError] = InputError,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse JSON text from outside; ``error`` with one sentence naming ``source`` if it is refused.

    ``what`` completes "too large to be …" (e.g. ``"a card"``).
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    if len(raw) > max_bytes:
        raise error(f"{source} is too large to be {what} (over {_size(max_bytes)}).")
    if nesting_exceeds(raw, max_depth):
        raise error(f"{source} is nested too deeply to be {what} (more than {max_depth} levels).")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(f"{source} is not UTF-8 text, so it cannot be {what}.") from None
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except _Duplicate as exc:
        raise error(f"{source} gives the key {exc.args[0]!r} twice in one object.") from None
    except _Constant as exc:
        raise error(f"{source} is not valid JSON ({exc.args[0]} is not a JSON number).") from None
    except json.JSONDecodeError as exc:
        raise error(f"{source} is not valid JSON (line {exc.lineno}).") from None
    except (ValueError, RecursionError):  # e.g. a number with more than 4,300 digits
        raise error(f"{source} is not valid JSON.") from None


def read_json_file(
    path: str | Path,
    source: str | None = None,
    *,
    what: str = "a PathShare document",
    error: type[PathShareError] = InputError,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Read and parse a JSON file from outside (see :func:`parse_json`); ``source`` names it in messages
    (default: the path). A missing, unreadable or oversized file is ``error`` too, with one sentence."""
    p = Path(path)
    source = source or str(p)
    try:
        if p.stat().st_size > max_bytes:
            raise error(f"{source} is too large to be {what} (over {_size(max_bytes)}).")
        with open(p, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # a file that grew since stat() is still bounded
    except FileNotFoundError:
        raise error(f"{source} does not exist.") from None
    except IsADirectoryError:
        raise error(f"{source} is a folder, not a file.") from None
    except OSError as exc:
        raise error(f"Cannot read {source}: {exc.strerror or exc}.") from None
    return parse_json(raw, source, what=what, error=error, max_bytes=max_bytes, max_depth=max_depth)


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):g} MiB"
    return f"{n / (1 << 10):g} KiB"
