"""The vault's schema, as forward migrations applied in order inside one transaction each.

Each module that stores something appends its own step here; a vault records the highest version
applied (``PRAGMA user_version``) and applies the rest on open. Never edit a released step: add one.

Versions are reserved by area so work in parallel does not collide:
    1–9    vault core: settings, identity, partners, audit log      (agreements/_vault.py, _audit.py)
    10–19  agreements and signatures                                (agreements/_agreement*.py)
    20–29  packages, receipts, destruction certificates            (agreements/_package*.py)
    30–39  mapping profiles                                         (mapping)
    40–49  linkage secrets and record-code crosswalks               (linkage)
"""

from __future__ import annotations

# (version, SQL script). Keep sorted by version.
MIGRATIONS: list[tuple[int, str]] = []
