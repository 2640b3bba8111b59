"""The vault's schema, as forward migrations applied in order inside one transaction each.

Each module that stores something appends its own step here; a vault records the highest version
applied (``PRAGMA user_version``) and applies the rest on open. Never edit a released step: add one.

Versions are reserved by area so work in parallel does not collide:
    1–9    vault core: settings, identity, partners, audit log      (agreements/_vault.py, _audit.py)
    10–19  agreements and signatures                                (agreements/_agreement*.py)
    20–29  packages, receipts, destruction certificates            (agreements/_package_store.py)
    30–39  mapping profiles                                         (mapping)
    40–49  linkage secrets and record-code crosswalks               (linkage)
    50–59  release secrets: per-agreement provider secret + crosswalk (agreements/_prepare.py)
    60–69  releases of outcome tables                               (agreements/_outcomes.py)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

# (version, SQL script or a function of the connection). Keep sorted by version.
MIGRATIONS: list[tuple[int, str | Callable[[Any], None]]] = []

# -- 1–9: vault core (settings, identity, partners, audit log) — agreements/_vault.py and friends --------
MIGRATIONS.extend(
    [
        (
            1,
            """
            CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO settings(key, value) VALUES ('format', 'pathshare-vault');
            """,
        ),
        (
            2,
            """
            -- The one organization identity of this installation; secret keys never leave the vault
            -- except through `identity export-age` (audited).
            CREATE TABLE identity (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                org TEXT NOT NULL,
                kind TEXT NOT NULL,
                contact TEXT NOT NULL,
                created TEXT NOT NULL,
                signing_secret BLOB NOT NULL,
                age_secret TEXT NOT NULL,
                card TEXT NOT NULL
            );
            """,
        ),
        (
            3,
            """
            CREATE TABLE partners (
                fingerprint TEXT PRIMARY KEY,
                org TEXT NOT NULL,
                kind TEXT NOT NULL,
                signing_key TEXT NOT NULL,
                age_recipient TEXT NOT NULL,
                card TEXT NOT NULL,
                imported TEXT NOT NULL,
                verified_at TEXT,
                revoked_at TEXT
            );
            CREATE INDEX partners_org ON partners(org COLLATE NOCASE);
            CREATE INDEX partners_signing_key ON partners(signing_key);
            """,
        ),
        (
            4,
            """
            -- Append-only, hash-chained; see agreements/_audit.py for the hash definition.
            CREATE TABLE audit_log (
                seq INTEGER PRIMARY KEY,
                time TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                agreement TEXT,
                partner TEXT,
                package TEXT,
                details TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            );
            CREATE INDEX audit_log_action ON audit_log(action);
            CREATE INDEX audit_log_time ON audit_log(time);
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
            """,
        ),
        (
            5,
            """
            -- The highest signed checkpoint we hold of each partner's audit log (rollback detection).
            CREATE TABLE partner_checkpoints (
                signing_key TEXT PRIMARY KEY,
                size INTEGER NOT NULL,
                hash TEXT NOT NULL,
                checkpoint TEXT NOT NULL,
                received TEXT NOT NULL
            );
            """,
        ),
        (
            6,
            """
            -- Every head of each partner's audit log we accepted (size, RFC 6962 Merkle root), so a new
            -- one is checked against all of them (agreements/_audit.py: hold_partner_head). Replaces
            -- partner_checkpoints, whose chain hashes cannot be checked by a consistency proof.
            CREATE TABLE partner_heads (
                signing_key TEXT NOT NULL,
                size INTEGER NOT NULL,
                root TEXT NOT NULL,
                source TEXT NOT NULL,
                evidence TEXT NOT NULL,
                received TEXT NOT NULL,
                PRIMARY KEY (signing_key, size)
            );
            """,
        ),
    ]
)

# -- 10–19: agreements and signatures — agreements/_agreement_store.py ---------------------------------
MIGRATIONS.append(
    (
        10,
        """
        -- One row per agreement version. `document` is the agreement file (the signed terms plus the
        -- signatures, joinders and terminations we hold); status is derived from it, never stored.
        CREATE TABLE agreements (
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            title TEXT NOT NULL,
            effective TEXT NOT NULL,
            expires TEXT NOT NULL,
            destruction_deadline TEXT NOT NULL,
            document TEXT NOT NULL,
            authored INTEGER NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL,
            PRIMARY KEY (id, version)
        );
        CREATE INDEX agreements_expires ON agreements(expires);
        """,
    )
)

# -- 20–29: packages, receipts, destruction certificates — agreements/_package_store.py ----------------
MIGRATIONS.append(
    (
        20,
        """
        -- One row per package this vault sealed ('sent') or opened ('received'). `manifest` is the
        -- canonical signed manifest; `recipients` the JSON list of the recipients' card fingerprints
        -- (or age recipients we hold no card for). A received package id seen twice is a replay.
        CREATE TABLE packages (
            package_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
            agreement_id TEXT NOT NULL,
            agreement_hash TEXT NOT NULL,
            manifest_hash TEXT NOT NULL,
            sender TEXT NOT NULL,
            recipients TEXT NOT NULL,
            created TEXT NOT NULL,
            recorded TEXT NOT NULL,
            files INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            location TEXT NOT NULL,
            manifest TEXT NOT NULL,
            destroyed_at TEXT,
            PRIMARY KEY (package_id, direction)
        );
        CREATE INDEX packages_agreement ON packages(agreement_id);
        -- Signed receipts partners sent back for packages we sealed.
        CREATE TABLE package_receipts (
            package_id TEXT NOT NULL,
            recipient TEXT NOT NULL,
            result TEXT NOT NULL,
            time TEXT NOT NULL,
            receipt TEXT NOT NULL,
            imported TEXT NOT NULL,
            PRIMARY KEY (package_id, recipient)
        );
        -- Signed destruction certificates: from recipients (for packages we sent) and our own.
        CREATE TABLE destruction_certificates (
            package_id TEXT NOT NULL,
            recipient TEXT NOT NULL,
            destroyed_at TEXT NOT NULL,
            method TEXT NOT NULL,
            certificate TEXT NOT NULL,
            recorded TEXT NOT NULL,
            PRIMARY KEY (package_id, recipient)
        );
        """,
    )
)

MIGRATIONS.append(
    (
        21,
        """
        -- A sealed package that never left can be voided (reason kept); a recipient that lost the
        -- opened folder may open its own package once more (when, why, and where it went before).
        ALTER TABLE packages ADD COLUMN voided_at TEXT;
        ALTER TABLE packages ADD COLUMN void_reason TEXT;
        ALTER TABLE packages ADD COLUMN reopened_at TEXT;
        ALTER TABLE packages ADD COLUMN reopen_reason TEXT;
        -- Files this vault wrote and answers for (receipts, destruction certificates), by absolute
        -- path: no command ever writes over one of them, even when told to replace files.
        CREATE TABLE recorded_files (
            path TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            package_id TEXT,
            recorded TEXT NOT NULL
        );
        """,
    )
)

def _key_packages_by_sender(conn: Any) -> None:
    """22: packages and destruction certificates keyed by (package id, sender), not by id alone.

    A package id is its sender's random UUID: another organization may send one carrying an id already
    used here (by chance, or because it learned it). The replay list was keyed (sender, id) already;
    now the records are too, so such a package opens and is recorded beside the other. Old rows keep
    everything; a certificate's sender is the sender of the package it certifies (for a package we
    sent, the certificate is from one of its recipients; otherwise it is our own, for one we opened).
    """
    conn.execute(
        """
        CREATE TABLE packages_new (
            package_id TEXT NOT NULL,
            direction TEXT NOT NULL CHECK (direction IN ('sent', 'received')),
            agreement_id TEXT NOT NULL,
            agreement_hash TEXT NOT NULL,
            manifest_hash TEXT NOT NULL,
            sender TEXT NOT NULL,
            recipients TEXT NOT NULL,
            created TEXT NOT NULL,
            recorded TEXT NOT NULL,
            files INTEGER NOT NULL,
            bytes INTEGER NOT NULL,
            location TEXT NOT NULL,
            manifest TEXT NOT NULL,
            destroyed_at TEXT,
            voided_at TEXT,
            void_reason TEXT,
            reopened_at TEXT,
            reopen_reason TEXT,
            PRIMARY KEY (package_id, direction, sender)
        )
        """
    )
    columns = (
        "package_id, direction, agreement_id, agreement_hash, manifest_hash, sender, recipients, created, "
        "recorded, files, bytes, location, manifest, destroyed_at, voided_at, void_reason, reopened_at, "
        "reopen_reason"
    )
    conn.execute(f"INSERT INTO packages_new({columns}) SELECT {columns} FROM packages")
    conn.execute("DROP TABLE packages")
    conn.execute("ALTER TABLE packages_new RENAME TO packages")
    conn.execute("CREATE INDEX packages_agreement ON packages(agreement_id)")
    conn.execute(
        """
        CREATE TABLE destruction_certificates_new (
            package_id TEXT NOT NULL,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            destroyed_at TEXT NOT NULL,
            method TEXT NOT NULL,
            certificate TEXT NOT NULL,
            recorded TEXT NOT NULL,
            PRIMARY KEY (package_id, sender, recipient)
        )
        """
    )
    rows = conn.execute(
        "SELECT package_id, recipient, destroyed_at, method, certificate, recorded "
        "FROM destruction_certificates"
    ).fetchall()
    for package_id, recipient, *rest in rows:
        sender = ""
        for direction, who, recipients in conn.execute(
            "SELECT direction, sender, recipients FROM packages WHERE package_id = ? ORDER BY direction DESC",
            (package_id,),
        ):  # 'sent' first: one id had at most one sent and one received row before this step
            if direction == "received" or recipient in json.loads(recipients):
                sender = who
                break
        conn.execute(
            "INSERT INTO destruction_certificates_new(package_id, sender, recipient, destroyed_at, method, "
            "certificate, recorded) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (package_id, sender, recipient, *rest),
        )
    conn.execute("DROP TABLE destruction_certificates")
    conn.execute("ALTER TABLE destruction_certificates_new RENAME TO destruction_certificates")


MIGRATIONS.append((22, _key_packages_by_sender))


# -- 30–39: mapping profiles — agreements/_profiles.py --------------------------------------------------
MIGRATIONS.append(
    (
        30,
        """
        -- One row per saved mapping profile (column -> element, recodes, date formats) for a source
        -- system. `document` is the profile's JSON; `signature` fingerprints its header set.
        CREATE TABLE mapping_profiles (
            name TEXT PRIMARY KEY COLLATE NOCASE,
            source_system TEXT NOT NULL,
            signature TEXT NOT NULL,
            document TEXT NOT NULL,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE INDEX mapping_profiles_signature ON mapping_profiles(signature);
        """,
    )
)

# -- 40–49: consortium linkage secrets — agreements/_linkage_store.py ---------------------------------
MIGRATIONS.append(
    (
        40,
        """
        -- Per agreement version with linkage scope "consortium", the secret its providers share to key
        -- link tokens: made by the key holder (origin 'generated') or imported from a linkage key
        -- file (origin 'imported', source = the sender). Only provider vaults ever hold a row.
        CREATE TABLE linkage_secrets (
            agreement_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            agreement_sha256 TEXT NOT NULL,
            secret BLOB NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('generated', 'imported')),
            source TEXT NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (agreement_id, version)
        );
        """,
    )
)

# -- 50–59: release secrets — agreements/_prepare.py -----------------------------------------------------
MIGRATIONS.append(
    (
        50,
        """
        -- Per agreement, the provider's own secret (keys tokens and date shifts when linkage scope is
        -- "provider") and its record-code crosswalk (encrypted under a key derived from the secret).
        -- Both stay in this vault: recipients never see them (FERPA 99.31(b)(2)).
        CREATE TABLE release_secrets (
            agreement_id TEXT PRIMARY KEY,
            secret BLOB NOT NULL,
            crosswalk BLOB,
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        """,
    )
)

# -- 60–69: releases of outcome tables — agreements/_outcomes.py -------------------------------------------
MIGRATIONS.append(
    (
        60,
        """
        -- Every release of outcome tables made under an agreement: the published tables (document,
        -- JSON) and, per metric, keyed digests of the cohort's record codes (members, zlib JSON), so a
        -- new release can be checked against all earlier ones (differencing). Never the codes.
        CREATE TABLE outcome_releases (
            release_id TEXT PRIMARY KEY,
            agreement_id TEXT NOT NULL,
            created TEXT NOT NULL,
            document TEXT NOT NULL,
            members BLOB NOT NULL
        );
        CREATE INDEX outcome_releases_agreement ON outcome_releases(agreement_id, created);
        """,
    )
)
