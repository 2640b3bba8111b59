"""Row numbers for messages: how many rows a check flags and the first few (counted from 1, the first
data row), never their values.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

MAX_ROWS_LISTED = 5


def first_rows_where(mask: pa.ChunkedArray | pa.Array) -> tuple[int, tuple[int, ...]]:
    mask = pc.fill_null(mask, False)
    count = pc.sum(mask).as_py() or 0
    if not count:
        return 0, ()
    if isinstance(mask, pa.ChunkedArray):
        mask = mask.combine_chunks()
    idx = pc.indices_nonzero(mask).slice(0, MAX_ROWS_LISTED).to_pylist()
    return count, tuple(i + 1 for i in idx)


def rows_text(rows: tuple[int, ...], count: int) -> str:
    listed = ", ".join(str(r) for r in rows)
    more = f" and {count - len(rows)} more" if count > len(rows) else ""
    return f"data row{'s' if count > 1 else ''} {listed}{more}"
