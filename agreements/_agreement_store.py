"""Agreements in the vault: drafting, signing, exchanging files, amending, terminating, joining, and
the compliance queries (expiring soon; ended with destruction due).

Every action is audited in the same transaction as the change it records (``agreement.created``,
``.signed``, ``.exported``, ``.imported``, ``.executed``, ``.amended``, ``.terminated``, ``.joined``);
every refusal is audited as ``agreement.<operation>.refused`` with its reason, and changes nothing.

Parties are checked against the vault: each must be this organization or a verified, unrevoked
partner whose card carries the same fingerprint, signing key and age recipient.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._agreement import (
    MAX_AGREEMENT_BYTES,
    UNSIGNED_KEYS,
    Agreement,
    amendment_terms,
    load_json,
    parse_agreement,
)
from agreements._clock import utc_now
from agreements._stored_agreements import (
    get_agreement,
    load_rows,
    pick,
    resolve_id,
)
from agreements.errors import AgreementError
from deid.errors import PathShareError

if TYPE_CHECKING:
    from agreements._cards import Card
    from agreements._vault import Vault



@dataclass(frozen=True)
class AgreementSummary:
    """One version of an agreement as the compliance view lists it."""

    id: str
    version: int
    title: str
    status: str
    in_force: bool
    effective: date
    expires: date
    destruction_deadline: date
    parties: list[str]
    signed_by: list[str]
    awaiting: list[str]
    general_offer: bool
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dates as YYYY-MM-DD)."""
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "status": self.status,
            "in_force": self.in_force,
            "effective": self.effective.isoformat(),
            "expires": self.expires.isoformat(),
            "destruction_deadline": self.destruction_deadline.isoformat(),
            "parties": self.parties,
            "signed_by": self.signed_by,
            "awaiting": self.awaiting,
            "general_offer": self.general_offer,
            "sha256": self.sha256,
        }


# --------------------------------------------------------------------------------------------------
# helpers


@contextlib.contextmanager
def _refusals(vault: Vault, operation: str, agreement: str | None = None) -> Iterator[None]:
    """Audit a refusal (after its transaction rolled back) and let the error go on to the user."""
    try:
        yield
    except PathShareError as exc:
        # The refusal is recorded even though nothing else changed; a failing log must not hide it.
        with contextlib.suppress(PathShareError):
            vault.audit.append(
                f"agreement.{operation}.refused", agreement=agreement, details={"reason": str(exc)}
            )
        raise


def _our_card(vault: Vault) -> Card:
    from agreements._identity import our_card

    return our_card(vault)


def _is_superseded(a: Agreement, versions: list[Agreement]) -> bool:
    return any(v.version > a.version and v.is_executed for v in versions)


def _status(a: Agreement, versions: list[Agreement], today: date | None) -> str:
    """A version's status in the light of its siblings: a later executed version supersedes it, and a
    termination of any version ends the whole agreement (drafts of amendments included)."""
    status = a.status(today, superseded=_is_superseded(a, versions))
    if status not in ("superseded", "terminated") and any(v.is_terminated for v in versions):
        return "terminated"
    return status


def _in_force(a: Agreement, versions: list[Agreement], today: date | None) -> bool:
    return (
        a.in_force(today, superseded=_is_superseded(a, versions))
        and _status(a, versions, today) == "executed"
    )


def _store(conn: Any, a: Agreement, *, authored: bool, now: str) -> None:
    conn.execute(
        "INSERT INTO agreements(id, version, sha256, title, effective, expires, destruction_deadline, "
        "document, authored, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(id, version) DO UPDATE SET document = excluded.document, updated = excluded.updated",
        (
            a.id,
            a.version,
            a.sha256,
            a.title,
            a.effective.isoformat(),
            a.expires.isoformat(),
            a.destruction_deadline.isoformat(),
            a.to_json_bytes().decode("utf-8"),
            int(authored),
            now,
            now,
        ),
    )


def _check_known_party(vault: Vault, me: Card, party: Mapping[str, Any], where: str) -> None:
    """Refuse a party that is neither us nor a verified, unrevoked partner with the same keys."""
    from agreements._partners import find_partner

    fp, key, age = party.get("fingerprint"), party.get("signing_key"), party.get("age_recipient")
    if fp == me.fingerprint():
        card = me
    else:
        partner = find_partner(vault, fingerprint=fp) if fp else None
        if partner is None or not partner.verified or partner.revoked:
            raise AgreementError(
                f"{where} names {party.get('org', 'a party')} ({fp}), "
                "who is not among your verified partners; "
                "only verified, unrevoked partners can be parties to an agreement."
            )
        card = partner.card
    if key != card.signing_key or age != card.age_recipient:
        raise AgreementError(
            f"{where} gives keys for {card.org} that differ from its card ({card.fingerprint()}); "
            "ask them to confirm their card."
        )


def fill_parties(vault: Vault, me: Card, terms: dict[str, Any], source: str) -> None:
    """Complete each party entry of a draft from our card or a verified partner's card.

    A draft may name a party by ``fingerprint`` (or ``signing_key``) alone; org, kind, keys and age
    recipient are then taken from the card. Values the draft does give must match the card.
    """
    from agreements._cards import normalize_fingerprint
    from agreements._partners import find_partner, same_name

    parties = terms.get("parties")
    if not isinstance(parties, list):
        return  # the schema check names the problem
    for i, entry in enumerate(parties):
        if not isinstance(entry, dict):
            continue
        fp, key = entry.get("fingerprint"), entry.get("signing_key")
        if isinstance(fp, str) and fp:
            fp = entry["fingerprint"] = normalize_fingerprint(fp)
        # The fingerprint names the card when given; the signing key only when it is not.
        if fp == me.fingerprint() or (not fp and key and key == me.signing_key):
            card = me
        else:
            partner = None
            if isinstance(fp, str) and fp:
                partner = find_partner(vault, fingerprint=fp)
            elif isinstance(key, str) and key:
                partner = find_partner(vault, signing_key=key)
            if partner is None and isinstance(entry.get("org"), str) and same_name(entry["org"], me.org):
                raise AgreementError(
                    f"{source} names {me.org} with a fingerprint other than your card's "
                    f"({me.fingerprint()}); "
                    "name each party by its card fingerprint."
                )
            if partner is None or not partner.verified or partner.revoked:
                who = entry.get("org") or f"party {i + 1}"
                state = "is not one" if partner is None else f"is {partner.status}"
                raise AgreementError(
                    f"Only verified, unrevoked partners can be parties to a new agreement; {who} "
                    f"({fp or 'no fingerprint'}) in {source} {state} (import and verify its card first)."
                )
            card = partner.card
        for field, value in (
            ("org", card.org),
            ("kind", card.kind),
            ("fingerprint", card.fingerprint()),
            ("signing_key", card.signing_key),
            ("age_recipient", card.age_recipient),
        ):
            given = entry.get(field)
            if given in (None, ""):
                entry[field] = value
            elif given != value:
                raise AgreementError(
                    f"{source}: parties[{i}].{field} does not match the card of "
                    f"{card.org} ({card.fingerprint()})."
                )


def _read_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_AGREEMENT_BYTES:
            raise AgreementError(f"{path.name} is too large to be an agreement ({size} bytes).")
        return path.read_bytes()
    except FileNotFoundError:
        raise AgreementError(f"There is no file {path}.") from None
    except IsADirectoryError:
        raise AgreementError(f"{path} is a folder, not an agreement file.") from None
    except OSError as exc:
        raise AgreementError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _terms_from_file(path: Path) -> dict[str, Any]:
    data = _read_file(path)
    doc = load_json(data, path.name)
    if not isinstance(doc, dict):
        raise AgreementError(f"{path.name} is not a PathShare agreement (it is not a JSON object).")
    if any(doc.get(k) for k in UNSIGNED_KEYS):
        raise AgreementError(
            f"{path.name} already carries signatures.",
            "Import it as a signed agreement.",
            action="import_agreement",
        )
    return {k: v for k, v in doc.items() if k not in UNSIGNED_KEYS}


# --------------------------------------------------------------------------------------------------
# reading


def agreement_status(vault: Vault, agreement: Agreement, today: date | None = None) -> str:
    """The status of one version, knowing whether a later executed version superseded it."""
    versions = load_rows(vault, agreement.id)
    return _status(agreement, versions, today)


def summarize(a: Agreement, versions: list[Agreement], today: date | None = None) -> AgreementSummary:
    parties = a.all_parties()
    return AgreementSummary(
        id=a.id,
        version=a.version,
        title=a.title,
        status=_status(a, versions, today),
        in_force=_in_force(a, versions, today),
        effective=a.effective,
        expires=a.expires,
        destruction_deadline=a.destruction_deadline,
        parties=[p.org for p in parties],
        signed_by=[p.org for p in parties if a.signed_by(p.fingerprint) or p not in a.terms.parties],
        awaiting=[p.org for p in a.missing_signers()],
        general_offer=a.general_offer,
        sha256=a.sha256,
    )


def list_agreements(
    vault: Vault, today: date | None = None, *, include_superseded: bool = False
) -> list[AgreementSummary]:
    """Every agreement version in the vault (superseded ones only on request), by expiry date."""
    ids = [r[0] for r in vault.db.execute("SELECT DISTINCT id FROM agreements").fetchall()]
    out: list[AgreementSummary] = []
    for aid in ids:
        versions = load_rows(vault, aid)
        for a in versions:
            s = summarize(a, versions, today)
            if s.status != "superseded" or include_superseded:
                out.append(s)
    return sorted(out, key=lambda s: (s.expires, s.title, s.version))


def expiring_agreements(vault: Vault, days: int, today: date | None = None) -> list[AgreementSummary]:
    """Agreements in force today whose last day is within ``days`` days (compliance: renew or wind down)."""
    today = today or date.today()
    if days < 0:
        raise AgreementError("The number of days must be zero or more.")
    # Past the last representable date every agreement in force qualifies (and timedelta would overflow).
    horizon = today + timedelta(days=min(days, (date.max - today).days))
    return [s for s in list_agreements(vault, today) if s.in_force and s.expires <= horizon]


def destruction_due(vault: Vault, today: date | None = None) -> list[AgreementSummary]:
    """Executed agreements that have ended (expired or terminated): recipients must destroy the data by
    the destruction deadline. Sorted by deadline; a deadline before ``today`` is overdue."""
    today = today or date.today()
    out = []
    for s in list_agreements(vault, today):
        if s.status not in ("expired", "terminated"):
            continue
        a = get_agreement(vault, s.id, s.version)
        if a.is_executed:
            out.append(s)
    return sorted(out, key=lambda s: s.destruction_deadline)


def require_in_force(vault: Vault, agreement_id: str, today: date | None = None) -> Agreement:
    """The executed, in-force version of an agreement, or AgreementError saying why there is none.

    This is the check that gates sealing data under an agreement (fail closed).
    """
    aid = resolve_id(vault, agreement_id)
    versions = load_rows(vault, aid)
    from agreements._integrity import logged_termination

    if logged_termination(vault.db, aid) is not None and not any(v.is_terminated for v in versions):
        # The log says terminated, the stored agreement does not (an old page spliced in): terminated.
        raise AgreementError(f"Agreement {aid} is not in force: it was terminated.")
    for a in reversed(versions):
        if _in_force(a, versions, today):
            return a
    latest = versions[-1]
    status = _status(latest, versions, today)
    hint = {
        "draft": "it is an unsigned draft",
        "proposed": "not every party has signed it yet ("
        + ", ".join(p.org for p in latest.missing_signers())
        + " still to sign)",
        "expired": f"it expired on {latest.expires}",
        "terminated": "it was terminated",
        "executed": f"it takes effect on {latest.effective}",
    }.get(status, status)
    raise AgreementError(f"Agreement {aid} is not in force: {hint}.")


# --------------------------------------------------------------------------------------------------
# writing


def _json_copy(terms: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A private deep copy of terms given as Python values; they must be plain JSON."""
    try:
        return dict(json.loads(json.dumps(dict(terms), allow_nan=False)))
    except (TypeError, ValueError) as exc:
        raise AgreementError(f"{source} is not plain JSON ({exc}).") from None


def create_agreement(vault: Vault, terms: Mapping[str, Any], *, source: str = "the draft") -> Agreement:
    """Store a new draft (version 1) from its terms; parties are completed from cards. Audited.

    ``id`` is generated when the terms have none; ``version`` and ``previous`` default to 1 and null.
    """
    given_id = terms.get("id")
    aid = given_id if isinstance(given_id, str) else None
    # One transaction from reading to writing: a concurrent writer cannot interleave.
    with _refusals(vault, "create", aid), vault.transaction():
        body = _json_copy(terms, source)
        me = _our_card(vault)
        if body.get("id") is None:
            body["id"] = str(uuid.uuid4())
        body.setdefault("version", 1)
        body.setdefault("previous", None)
        if body.get("version") != 1 or body.get("previous") is not None:
            raise AgreementError(
                f"{source} is version {body.get('version')} of an agreement; a new agreement is version 1.",
                "A new version of an agreement is an amendment.",
                action="amend_agreement",
            )
        fill_parties(vault, me, body, source)
        a = Agreement.from_terms(body, source=source)
        if a.party(me.fingerprint()) is None:
            raise AgreementError(
                f"{source} does not name your organization as a party; you can only draft your own."
            )
        with vault.transaction() as conn:
            if conn.execute("SELECT 1 FROM agreements WHERE id = ?", (a.id,)).fetchone():
                raise AgreementError(
                    f"Agreement {a.id} is already in this vault.",
                    f"Remove the id from {source} to draft a new one, or amend it.",
                    action="amend_agreement",
                )
            _store(conn, a, authored=True, now=utc_now())
            vault.audit.append(
                "agreement.created",
                agreement=a.id,
                details={"version": a.version, "sha256": a.sha256, "title": a.title, "source": source},
                conn=conn,
            )
    return a


def create_agreement_from_file(vault: Vault, path: str | os.PathLike[str]) -> Agreement:
    """``pathshare agreement new FILE.json``: a draft from an unsigned agreement file.

    The draft always gets a fresh id (an ``id`` in the file is replaced): files are templates, and two
    agreements drafted from one template must never share an id at a partner that receives both."""
    p = Path(path)
    with _refusals(vault, "create"):
        terms = _terms_from_file(p)
    terms.pop("id", None)
    return create_agreement(vault, terms, source=p.name)


# --- Who may do what to an agreement (the app's buttons ask these; the workflows below refuse the rest).
# ``status`` is the selected version's status (agreement_status / AgreementSummary.status); ``us`` is our
# card's fingerprint.

SIGNABLE = ("draft", "proposed")
AMENDABLE = ("draft", "proposed", "executed", "expired")


def can_sign(agreement: Agreement, status: str, us: str) -> bool:
    """We may sign: the terms name us as a party, we have not signed yet, and it is still being signed."""
    named = any(p.fingerprint == us for p in agreement.terms.parties)
    return named and not agreement.signed_by(us) and status in SIGNABLE


def can_amend(agreement: Agreement, status: str, us: str, *, latest: bool) -> bool:
    """We may amend (or, for an unsigned draft, correct): the latest version, of an agreement we are a
    party to, that was not terminated."""
    return latest and agreement.party(us) is not None and status in AMENDABLE


def can_terminate(agreement: Agreement, status: str, us: str) -> bool:
    """We may end it: a signed agreement we are a party to, not terminated already."""
    return bool(agreement.signatures) and agreement.party(us) is not None and status != "terminated"


def can_join(agreement: Agreement, in_force: bool, us: str) -> bool:
    """We may join: a general offer in force that does not name us yet."""
    return agreement.general_offer and in_force and agreement.party(us) is None


def sign_agreement(
    vault: Vault,
    agreement_id: str,
    *,
    version: int | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> Agreement:
    """Sign (the latest version of) an agreement with this organization's key. Audited; when our
    signature completes it, ``agreement.executed`` is recorded too."""
    from agreements._identity import signing_key

    # One transaction from reading to writing: a concurrent writer cannot interleave.
    with _refusals(vault, "sign", agreement_id), vault.transaction():
        aid = resolve_id(vault, agreement_id)
        versions = load_rows(vault, aid)
        a = pick(versions, version, aid)
        status = _status(a, versions, today)
        if status in ("terminated", "expired", "superseded"):
            raise AgreementError(
                f"Agreement {aid} version {a.version} is {status}; it can no longer be signed."
            )
        me = _our_card(vault)
        # Signing commits us to these partners: refuse if one was revoked (or its card changed) since.
        for party in a.all_parties():
            _check_known_party(vault, me, party.model_dump(), f"Agreement {aid}")
        signed = a.sign(signing_key(vault), now=now)
        if signed is a:
            return a
        with vault.transaction() as conn:
            _store(conn, signed, authored=False, now=utc_now())
            vault.audit.append(
                "agreement.signed",
                agreement=aid,
                partner=me.fingerprint(),
                details={"version": a.version, "sha256": a.sha256},
                conn=conn,
            )
            if signed.is_executed:
                vault.audit.append(
                    "agreement.executed",
                    agreement=aid,
                    details={"version": a.version, "sha256": a.sha256},
                    conn=conn,
                )
    _after_execution(vault, signed)
    return signed


def export_agreement(
    vault: Vault,
    agreement_id: str,
    out: str | os.PathLike[str],
    *,
    version: int | None = None,
    force: bool = False,
) -> Agreement:
    """Write an agreement file (terms + every signature we hold) for partners to import. Audited.
    An existing file is replaced only with ``force``, never one the vault recorded."""
    from agreements._recorded import output_rule
    from deid import check_output_path, write_bytes_atomic

    with _refusals(vault, "export", agreement_id):
        aid = resolve_id(vault, agreement_id)
        a = pick(load_rows(vault, aid), version, aid)
        if not a.signatures:
            raise AgreementError(
                f"Agreement {aid} has no signature yet; partners can only countersign a signed file.",
                "Sign it first.",
                action="sign_agreement",
                subject=aid[:8],
            )
        rule = output_rule(vault)
        dest = check_output_path(out, force=force, recorded=rule)
        with vault.transaction() as conn:
            vault.audit.append(
                "agreement.exported",
                agreement=aid,
                details={
                    "version": a.version,
                    "sha256": a.sha256,
                    "file": dest.name,
                    "signatures": len(a.signatures),
                },
                conn=conn,
            )
            # Written inside the transaction: if writing fails, the "exported" entry is rolled back.
            write_bytes_atomic(dest, a.to_json_bytes(), perm=0o644, force=force, recorded=rule)
    return a


def import_agreement(vault: Vault, path: str | os.PathLike[str]) -> Agreement:
    """Import a signed agreement file: a partner's proposal, a countersigned copy, a joinder or a
    termination. Signatures are merged into the version we hold. Audited (and ``agreement.executed`` /
    ``.terminated`` / ``.joined`` when the file brings those about).

    Refused, with nothing changed: a file that is not a valid signed agreement; one naming a party that
    is not a verified partner; one we are not a party to (unless it is a general offer); and one whose
    terms differ from the version we hold or signed.
    """
    p = Path(path)
    with _refusals(vault, "import"):
        data = _read_file(p)
        doc = load_json(data, p.name)
        if isinstance(doc, dict) and doc.get("pathshare_agreement") in (1, 2) and not doc.get("signatures"):
            # Say this before any schema detail: an unsigned draft is the likely mistake here.
            raise AgreementError(
                f"{p.name} carries no signature; ask the sender to sign the agreement before exporting it.",
                "A draft of your own is stored as a new agreement.",
                action="new_agreement",
            )
        incoming = parse_agreement(data, source=p.name)
    # One transaction from reading to writing: a concurrent writer cannot interleave.
    with _refusals(vault, "import", incoming.id), vault.transaction():
        if not incoming.signatures:
            raise AgreementError(
                f"{p.name} carries no signature; ask the sender to sign the agreement before exporting it."
            )
        me = _our_card(vault)
        my_fp = me.fingerprint()
        for party in incoming.all_parties():
            _check_known_party(vault, me, party.model_dump(), p.name)
        if incoming.party(my_fp) is None and not incoming.general_offer:
            raise AgreementError(
                f"{p.name} is an agreement between other organizations; you are not a party to it."
            )
        versions = load_rows(vault, incoming.id)
        held = next((v for v in versions if v.version == incoming.version), None)
        if held is not None:
            if held.sha256 != incoming.sha256:
                if held.signed_by(my_fp):
                    raise AgreementError(
                        f"The agreement in {p.name} differs from the version you signed "
                        f"(agreement {incoming.id} version {incoming.version}); nothing was imported."
                    )
                raise AgreementError(
                    f"The agreement in {p.name} differs from version {incoming.version} of agreement "
                    f"{incoming.id} in your vault; changes must come as an amendment (a new version)."
                )
            merged = held.merged_with(incoming)
        else:
            if incoming.signed_by(my_fp):
                raise AgreementError(
                    f"{p.name} carries your signature on terms your vault has no record of signing; "
                    "nothing was imported."
                )
            if versions:
                before = next((v for v in versions if v.version == incoming.version - 1), None)
                if before is None or before.sha256 != incoming.previous:
                    raise AgreementError(
                        f"{p.name} is version {incoming.version} of agreement {incoming.id}, but it does not "
                        "follow the previous version in your vault."
                    )
            merged = incoming
        new_sigs = [s for s in merged.signatures if held is None or not held.signed_by(s.signer_fingerprint)]
        with vault.transaction() as conn:
            _store(conn, merged, authored=False, now=utc_now())
            vault.audit.append(
                "agreement.imported",
                agreement=merged.id,
                details={
                    "version": merged.version,
                    "sha256": merged.sha256,
                    "file": p.name,
                    "new_signatures": [s.signer_fingerprint for s in new_sigs],
                },
                conn=conn,
            )
            if merged.is_executed and (held is None or not held.is_executed):
                vault.audit.append(
                    "agreement.executed",
                    agreement=merged.id,
                    details={"version": merged.version, "sha256": merged.sha256},
                    conn=conn,
                )
            old_terms = {t.signature for t in held.terminations} if held else set()
            for t in merged.terminations:
                if t.signature not in old_terms:
                    vault.audit.append(
                        "agreement.terminated",
                        agreement=merged.id,
                        partner=t.terminated_by,
                        details={"version": merged.version, "reason": t.reason, "by": t.terminated_by},
                        conn=conn,
                    )
            old_joins = {j.fingerprint for j in held.joinders} if held else set()
            for j in merged.joinders:
                if j.fingerprint not in old_joins:
                    vault.audit.append(
                        "agreement.joined",
                        agreement=merged.id,
                        partner=j.fingerprint,
                        details={"version": merged.version, "roles": list(j.party.get("roles", []))},
                        conn=conn,
                    )
    _after_execution(vault, merged)
    return merged


def _after_execution(vault: Vault, agreement: Agreement) -> None:
    """Once an agreement is executed, a consortium-scope agreement's key holder makes the shared
    linkage secret (a no-op otherwise, and on every later call)."""
    if agreement.is_executed:
        from agreements._linkage_store import ensure_linkage_secret  # imports this module

        ensure_linkage_secret(vault, agreement)


def amend_agreement(
    vault: Vault, agreement_id: str, terms: Mapping[str, Any], *, source: str = "the amendment"
) -> Agreement:
    """Store a new draft version of an agreement, linked to the latest by its hash. Audited.

    When the latest version is still an unsigned draft (nobody else can hold it), its terms are
    replaced instead: that is how a draft is corrected before anyone signs it."""
    # One transaction from reading to writing: a concurrent writer cannot interleave.
    with _refusals(vault, "amend", agreement_id), vault.transaction():
        aid = resolve_id(vault, agreement_id)
        versions = load_rows(vault, aid)
        latest = versions[-1]
        if any(v.is_terminated for v in versions):
            raise AgreementError(
                f"Agreement {aid} was terminated; it cannot be amended. Draft a new agreement."
            )
        replace = not latest.signatures
        base = versions[-2] if replace and len(versions) > 1 else None
        me = _our_card(vault)
        body = _json_copy(terms, source)
        if replace and base is None:
            # Correcting an unsigned version 1: same id, still version 1.
            if body.get("id") not in (None, aid):
                raise AgreementError(f"{source} names another agreement than {aid}.")
            body.update(id=aid, version=1, previous=None)
        else:
            body = amendment_terms(base or latest, body)
        fill_parties(vault, me, body, source)
        a = Agreement.from_terms(body, source=source)
        if a.party(me.fingerprint()) is None:
            raise AgreementError(
                f"{source} does not name your organization as a party; you can only amend your own."
            )
        with vault.transaction() as conn:
            if replace:
                conn.execute("DELETE FROM agreements WHERE id = ? AND version = ?", (aid, latest.version))
            _store(conn, a, authored=True, now=utc_now())
            details = {"version": a.version, "sha256": a.sha256, "previous": a.previous, "source": source}
            if replace:
                details["replaces_unsigned_draft"] = latest.sha256
            vault.audit.append("agreement.amended", agreement=aid, details=details, conn=conn)
    return a


def amend_agreement_from_file(vault: Vault, agreement_id: str, path: str | os.PathLike[str]) -> Agreement:
    """``pathshare agreement amend ID FILE.json``."""
    p = Path(path)
    with _refusals(vault, "amend", agreement_id):
        terms = _terms_from_file(p)
    return amend_agreement(vault, agreement_id, terms, source=p.name)


def terminate_agreement(
    vault: Vault, agreement_id: str, reason: str, *, now: datetime | None = None
) -> Agreement:
    """Add our signed termination notice to (the latest signed version of) an agreement. Audited.

    Export the agreement afterwards so the other parties import the notice."""
    from agreements._identity import signing_key

    # One transaction from reading to writing: a concurrent writer cannot interleave.
    with _refusals(vault, "terminate", agreement_id), vault.transaction():
        aid = resolve_id(vault, agreement_id)
        versions = load_rows(vault, aid)
        signed = [v for v in versions if v.signatures]
        if not signed:
            raise AgreementError(f"Agreement {aid} is an unsigned draft; there is nothing to terminate.")
        a = signed[-1]
        if any(v.is_terminated for v in versions):
            raise AgreementError(f"Agreement {aid} is already terminated.")
        ended = a.terminated_by(signing_key(vault), reason, now=now)
        me = _our_card(vault)
        with vault.transaction() as conn:
            _store(conn, ended, authored=False, now=utc_now())
            vault.audit.append(
                "agreement.terminated",
                agreement=aid,
                partner=me.fingerprint(),
                details={
                    "version": a.version,
                    "reason": ended.terminations[-1].reason,
                    "by": me.fingerprint(),
                },
                conn=conn,
            )
    return ended


def join_agreement(
    vault: Vault,
    agreement_id: str,
    representative: Mapping[str, str],
    *,
    roles: list[str] | None = None,
    now: datetime | None = None,
) -> Agreement:
    """Join a general offer we imported: sign the same terms as a further party. Audited.

    ``representative`` is who signs for us (name, title, email); ``roles`` default to the offer's
    ``join_as``. Export the agreement afterwards so the offering parties import the joinder."""
    from agreements._identity import signing_key

    # One transaction from reading to writing: a concurrent writer cannot interleave.
    with _refusals(vault, "join", agreement_id), vault.transaction():
        aid = resolve_id(vault, agreement_id)
        versions = load_rows(vault, aid)
        a = versions[-1]
        if not _in_force(a, versions, None):
            raise AgreementError(
                f"Agreement {aid} is not in force; only an executed general offer can be joined."
            )
        me = _our_card(vault)
        if a.party(me.fingerprint()) is not None:
            raise AgreementError(f"Your organization is already a party to agreement {aid}.")
        entry = {
            "org": me.org,
            "kind": me.kind,
            "roles": list(roles or a.terms.join_as or []),
            "fingerprint": me.fingerprint(),
            "signing_key": me.signing_key,
            "age_recipient": me.age_recipient,
            "authorized_representative": dict(representative),
        }
        joined = a.joined_by(signing_key(vault), entry, now=now)
        with vault.transaction() as conn:
            _store(conn, joined, authored=False, now=utc_now())
            vault.audit.append(
                "agreement.joined",
                agreement=aid,
                partner=me.fingerprint(),
                details={"version": a.version, "sha256": a.sha256, "roles": entry["roles"]},
                conn=conn,
            )
    return joined
