"""deid — PathShare's de-identification engine, usable on its own (e.g. in a notebook).

For most uses, call::

    from deid import load_policy, deidentify_file
    report = deidentify_file("extract.csv", load_policy("policy.json"), "out.csv", secret=b"...")

Everything else (readers and writers, treatments, PII scanning, risk) is reachable from here too;
modules whose names start with ``_`` are private.
"""

from deid.errors import (
    CheckFailed,
    InputError,
    OutputError,
    PathShareError,
    PolicyError,
)

__all__ = [
    "CheckFailed",
    "InputError",
    "OutputError",
    "PathShareError",
    "PolicyError",
]
