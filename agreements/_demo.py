"""The whole exchange between a district and a college, offline, in one folder (``pathshare demo``).

It runs the same workflow functions the app and the CLI use, in the order real partners would:
create vaults and identities → exchange and verify cards → draft, sign and countersign an agreement →
generate a synthetic extract → confirm the column mapping → prepare (de-identify, check, seal) → open
→ receipt back to the district → the college releases one table of pathway outcomes, protected →
verify both audit logs. Nothing here is demo-only logic.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pyarrow loads only when the demo runs
    import pyarrow as pa

from agreements._agreement_store import create_agreement, export_agreement, import_agreement, sign_agreement
from agreements._identity import create_identity
from agreements._outcomes import release_outcomes
from agreements._partners import import_card
from agreements._prepare import prepare
from agreements._profiles import save_profile
from agreements._vault import Vault
from agreements._workflows import import_receipt_file, open_received
from deid import write_bytes_atomic
from deid.errors import OutputError

Say = Callable[[str], None]

DISTRICT = ("Lakeview Unified School District", "district", "data-office@lakeviewusd.example")
COLLEGE = ("Riverbend Community College", "college", "ir@riverbend.example")


@dataclass(frozen=True)
class DemoResult:
    """What the demo left in its folder, and whether both audit logs verify."""

    workdir: Path
    passphrase_generated: bool
    package: Path
    inbox: Path
    agreement_id: str
    district_audit_ok: bool
    college_audit_ok: bool
    outcomes: Path | None = None

    @property
    def ok(self) -> bool:
        return self.district_audit_ok and self.college_audit_ok


def example_terms() -> dict[str, Any]:
    """The documented example agreement (docs/examples/agreement.json), as shipped with the app."""
    text = resources.files("agreements").joinpath("data/example_agreement.json").read_text("utf-8")
    return dict(json.loads(text))


def run_demo(
    workdir: str | Path,
    *,
    rows: int = 2000,
    passphrase: str | None = None,
    seed: int = 7,
    today: date | None = None,
    say: Say = print,
) -> DemoResult:
    """Run the exchange in ``workdir`` (absent or empty). Raises a PathShareError if a step is refused."""
    from deid.synth import generate, write_synth

    folder = Path(workdir)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(f"The demo folder {folder} is not empty; give a new or empty folder.")
    folder.mkdir(parents=True, exist_ok=True)
    generated = passphrase is None
    phrase = passphrase or "-".join(secrets.token_hex(3) for _ in range(4))
    today = today or date.today()

    say("1. Each organization creates its vault and identity.")
    district = Vault.create(folder / "district.vault", phrase, user_inputs=(DISTRICT[0], DISTRICT[2]))
    college = Vault.create(folder / "college.vault", phrase, user_inputs=(COLLEGE[0], COLLEGE[2]))
    try:
        d_card = create_identity(district, *DISTRICT)
        c_card = create_identity(college, *COLLEGE)
        write_bytes_atomic(folder / "district.card.json", d_card.to_json().encode("utf-8"), 0o644)
        write_bytes_atomic(folder / "college.card.json", c_card.to_json().encode("utf-8"), 0o644)
        say(f"   {d_card.org}: fingerprint {d_card.fingerprint()}")
        say(f"   {c_card.org}: fingerprint {c_card.fingerprint()}")

        say("2. They exchange cards and mark each other verified (after reading fingerprints by phone).")
        import_card(district, folder / "college.card.json", verified=True)
        import_card(college, folder / "district.card.json", verified=True)

        say(f"3. The district exports its high-school cohort from {rows:,} synthetic SIS records.")
        extract = folder / "district-extract.csv"
        cohort = _high_school(generate("k12", rows, seed=seed))
        write_synth(cohort, extract)

        say("4. The district drafts the agreement; both sign it by exchanging the file.")
        terms = example_terms()
        _use_local_codes(terms, cohort.table)
        terms.pop("id", None)
        for party, card in zip(terms["parties"], (d_card, c_card), strict=True):
            party.update(
                org=card.org,
                fingerprint=card.fingerprint(),
                signing_key=card.signing_key,
                age_recipient=card.age_recipient,
            )
        terms["effective"] = (today - timedelta(days=1)).isoformat()
        terms["expires"] = (today + timedelta(days=3 * 365)).isoformat()  # the example's three years
        terms["destruction"]["deadline"] = (today + timedelta(days=3 * 365 + 90)).isoformat()
        drafted = create_agreement(district, terms, source="the demo agreement")
        sign_agreement(district, drafted.id)
        export_agreement(district, drafted.id, folder / "agreement-proposed.json")
        import_agreement(college, folder / "agreement-proposed.json")
        sign_agreement(college, drafted.id)
        export_agreement(college, drafted.id, folder / "agreement.json")
        executed = import_agreement(district, folder / "agreement.json")
        (folder / "agreement-proposed.json").unlink()
        say(f'   Agreement {executed.id} is executed: "{executed.title}".')

        say("5. The district clerk confirms the suggested column mapping and saves it as a profile.")
        _confirm_mapping(district, executed, extract)

        say("6. The district prepares the package: de-identify, check, seal for the college.")
        (folder / "outbox").mkdir()
        package = folder / "outbox" / "district-to-college.age"
        prepared = prepare(
            district, extract, executed.id, package, profile="Synthetic SIS export", today=today
        )
        for line in prepared.summary().splitlines():
            say(f"   {line}")

        say("7. The college opens the package and sends a receipt back.")
        inbox = folder / "inbox"
        received = open_received(college, package, inbox, receipt=folder / "receipt.json", today=today)
        say(f"   Opened {len(received.files)} file(s) from {received.sender.org} into {inbox.name}/.")
        import_receipt_file(district, folder / "receipt.json")
        say("   The district's vault now shows the package delivered.")

        # Broken down by two of the quasi-identifiers the release carries: the disclosure search may leave
        # school or sex out of a small cohort (the agreement keeps race, generalized if need be).
        removed = set((prepared.report.disclosure or {}).get("removed") or ())
        by = [c for c in ("race", "sex", "school_id") if c not in removed][:2]
        say(f"8. The college computes dual-enrollment participation by {' and '.join(by)} and releases it.")
        outcomes = folder / "outcomes"
        released = release_outcomes(college, [inbox], ["dual_enrollment"], by, outcomes)
        say(f"   {released.summary()}.")
        say(f"   Wrote {', '.join(p.name for p in released.files)} in {outcomes.name}/.")

        say("9. Both sides verify their audit logs.")
        d_ok = district.audit.verify()
        c_ok = college.audit.verify()
        report = (
            f"district.vault: {'verified' if d_ok else 'FAILED'} ({d_ok.entries} entries)\n"
            f"college.vault: {'verified' if c_ok else 'FAILED'} ({c_ok.entries} entries)\n"
        )
        write_bytes_atomic(folder / "audit-verification.txt", report.encode("utf-8"), 0o644)
        for line in report.splitlines():
            say(f"   {line}")
    finally:
        district.close()
        college.close()
    if generated:
        say(f"The vaults' passphrase (set PATHSHARE_PASSPHRASE to choose one): {phrase}")
    return DemoResult(folder, generated, package, inbox, executed.id, bool(d_ok), bool(c_ok), outcomes)


def _high_school(result: Any) -> Any:
    """Only grades 9–12: the agreement's scope (its grade-level code set) covers nothing else."""
    import dataclasses

    import pyarrow as pa
    import pyarrow.compute as pc

    grades = result.table.column("Grade")
    keep = pc.is_in(grades, value_set=pa.array(["09", "10", "11", "12"]))
    return dataclasses.replace(result, table=result.table.filter(keep))


def _use_local_codes(terms: dict[str, Any], table: pa.Table) -> None:
    """The example lists a real district's school and pathway codes; the synthetic district has its own,
    and an agreement lists the provider's codes (the analysts' codebook shows them)."""
    import pyarrow.compute as pc

    local = {"school_id": ("School Code", "School"), "cte_pathway": ("CTE Pathway", "CTE pathway")}
    for element in terms["elements"]:
        if element["name"] in local:
            column, label = local[element["name"]]
            codes = sorted(v for v in pc.unique(table.column(column)).to_pylist() if v)
            element["code_set"] = {
                "name": f"Synthetic district {label.lower()} codes",
                "codes": {code: f"{label} {code}" for code in codes},
            }


def _confirm_mapping(vault: Vault, agreement: Any, extract: Path) -> None:
    """What the clerk does once per source system: accept the suggestions and save them as a profile."""
    from agreements._profiles import agreement_elements
    from deid import MappingProfile, read_table, suggest_mapping

    table = read_table(extract)
    profile = MappingProfile.from_suggestions(
        "Synthetic SIS export",
        suggest_mapping(table, agreement_elements(agreement)),
        source_system="PathShare synthetic K-12",
    )
    save_profile(vault, profile, replace=True)
