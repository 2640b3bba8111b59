"""The one rule for a CSV cell a spreadsheet would run as a formula (CSV injection).

Text starting with ``= + - @``, a tab or a carriage return gets a leading ``'``, so Excel and
LibreOffice show it as text instead of running it (``=HYPERLINK(…)``, ``@SUM(…)``, ``-2+3``). Plain
numbers (``-5``, ``+3.2``, ``-1e3``) start the same way but cannot run, and stay numbers. Every CSV
PathShare writes goes through it: released data (vectorized, deid/_io.py), outcome tables, the
codebook, the audit log and the disclosure record. There were three copies; the compliance and
outcome CSVs quoted negative numbers too, turning them into text, and the codebook had none.
"""

from __future__ import annotations

import re

# RE2 patterns for pyarrow's vectorized form (deid/_io.py neutralize_formulas).
FORMULA_START = r"^[=+\-@\t\r]"
PLAIN_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_safe(value: object) -> object:
    """``value`` as it may be written to a CSV cell: text that would run as a formula quoted with a
    leading ``'``; anything else (numbers, plain text, None) unchanged."""
    if isinstance(value, str) and value.startswith(_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value
