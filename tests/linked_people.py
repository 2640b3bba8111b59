"""Synthetic students with link tokens, for the outcomes tests that link two partners' rows
(`from linked_people import people_tokens`; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import pyarrow as pa

from deid import LinkFields, link_tokens


def people_tokens(n: int, key: bytes = b"k" * 32) -> list[str]:
    """The link-token cells of ``n`` distinct students (SSID, name, birth date and sex), in row order."""
    people = pa.table({
        "ssid": [f"{1000000000 + i}" for i in range(n)],
        "first": [f"Name{chr(65 + i % 26)}{i}" for i in range(n)],
        "middle": [None] * n,
        "last": [f"Family{i * 7}" for i in range(n)],
        "birth": [f"2008-0{1 + i % 9}-1{i % 10}" for i in range(n)],
        "sex": ["F" if i % 2 else "M" for i in range(n)],
    })  # fmt: skip
    fields = LinkFields("ssid", "first", "middle", "last", "birth", "sex")
    return link_tokens(people, fields, key).to_pylist()
