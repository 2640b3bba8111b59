"""The vault's security state checked against its audit log (issue 20 item 12).

SQLCipher authenticates every page but not its *version*: a page copied from an earlier copy of the
same vault file decrypts and authenticates, no passphrase needed. Splicing in the old page that holds a
partner's row undoes its revocation; the old page of the packages table empties the replay list; the
old page of an agreement forgets its termination. The audit log records each of these decisions, and
an old log page cannot be spliced in unnoticed (the chain breaks, or the log ends before the signed head
file beside the vault — see ``AuditLog.verify``). So the log is the reference: on every open and every
``audit verify`` the state is compared with it, a mismatch is reported as tampering (``vault.tampering``),
and the decisions hold whatever the tables say:

- a revocation the log records is restored (the partner's card revoked again, as of the logged time);
- a package the log records as opened is refused as a replay (``received_on`` reads the log too);
- an agreement the log records as terminated is not in force (``require_in_force`` reads the log too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agreements._vault import Vault

TAMPERING = "vault.tampering"


def logged_revocations(db: Any) -> dict[str, str]:
    """Fingerprint -> first time the log records its revocation."""
    return {
        str(fp): str(t)
        for fp, t in db.execute(
            "SELECT partner, MIN(time) FROM audit_log WHERE action = 'partner.revoke' "
            "AND partner IS NOT NULL GROUP BY partner"
        )
    }


def logged_opening(db: Any, package_id: str, sender: str | None = None) -> str | None:
    """When the log records that the package with this id (from ``sender``, if given) was opened here."""
    sql = "SELECT MIN(time) FROM audit_log WHERE action = 'package.opened' AND package = ?"
    args: tuple[str, ...] = (package_id,)
    if sender is not None:
        sql, args = sql + " AND partner = ?", (package_id, sender)
    row = db.execute(sql, args).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def logged_termination(db: Any, agreement_id: str) -> str | None:
    """When the log records that this agreement was terminated, or None."""
    row = db.execute(
        "SELECT MIN(time) FROM audit_log WHERE action = 'agreement.terminated' AND agreement = ?",
        (agreement_id,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def security_findings(vault: Vault) -> list[str]:
    """Where the vault's security state disagrees with its audit log, one sentence each."""
    from agreements._stored_agreements import load_rows

    db = vault.db
    findings: list[str] = []
    for fp, when in sorted(logged_revocations(db).items()):
        row = db.execute("SELECT org, revoked_at FROM partners WHERE fingerprint = ?", (fp,)).fetchone()
        if row is not None and row[1] is None:
            findings.append(
                f"the log records that the card of {row[0]} ({fp}) was revoked on {when[:10]}, but the "
                "partner list shows it as not revoked"
            )
    for (aid,) in db.execute(
        "SELECT DISTINCT agreement FROM audit_log WHERE action = 'agreement.terminated' "
        "AND agreement IS NOT NULL"
    ).fetchall():
        held = db.execute("SELECT 1 FROM agreements WHERE id = ?", (aid,)).fetchone()
        versions = load_rows(vault, str(aid)) if held else []
        if versions and not any(v.is_terminated for v in versions):
            when = logged_termination(db, str(aid)) or ""
            findings.append(
                f"the log records that agreement {aid} was terminated on {when[:10]}, but the stored "
                "agreement has no termination"
            )
    for pid, when in db.execute(
        "SELECT package, MIN(time) FROM audit_log WHERE action = 'package.opened' AND package IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM packages p WHERE p.package_id = audit_log.package "
        "AND p.direction = 'received' AND p.sender IS audit_log.partner) GROUP BY package, partner "
        "ORDER BY package"
    ).fetchall():
        findings.append(
            f"the log records that package {pid} was opened here on {str(when)[:10]}, but the list of "
            "received packages does not have it"
        )
    return findings


def check_security_state(vault: Vault) -> list[str]:
    """On open: compare the security state with the log; report a mismatch as tampering (audited once
    per distinct finding set) and restore what the log can restore (revocations). Returns the findings."""
    findings = security_findings(vault)
    if not findings:
        return []
    revoked = logged_revocations(vault.db)
    with vault.transaction() as conn:
        last = conn.execute(
            "SELECT details FROM audit_log WHERE action = ? ORDER BY seq DESC LIMIT 1", (TAMPERING,)
        ).fetchone()
        if last is None or json.loads(last[0]).get("findings") != findings:
            vault.audit.append(TAMPERING, details={"findings": findings}, conn=conn)
        for fp, when in revoked.items():
            conn.execute(
                "UPDATE partners SET revoked_at = ? WHERE fingerprint = ? AND revoked_at IS NULL", (when, fp)
            )
    return findings


def past_tampering(vault: Vault) -> list[str]:
    """Every time tampering was found on opening this vault: "DATE: finding", oldest first."""
    out = []
    for time, details in vault.db.execute(
        "SELECT time, details FROM audit_log WHERE action = ? ORDER BY seq", (TAMPERING,)
    ):
        try:
            findings = json.loads(details).get("findings", [])
        except (ValueError, AttributeError):
            findings = []
        out += [f"{str(time)[:10]}: {f}" for f in findings if isinstance(f, str)]
    return out
