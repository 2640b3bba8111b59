"""Issue 3's "Done when", through the command line: two organizations exchange cards, verify each other,
the district drafts an agreement from the documented example, both sign by exchanging files, both show it
executed, and every step is in both audit logs, which verify."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "agreement.json"
PASS = "correct horse battery staple"


def _cli(*args: object) -> tuple[int, str]:
    """Run the CLI outside a test (module fixtures cannot use capsys); return (status, stdout)."""
    import contextlib
    import io

    from desktop.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    assert code == 0, err.getvalue()
    return code, out.getvalue()


@pytest.fixture(scope="module")
def _pair(tmp_path_factory):
    """District and college vaults with identities, cards exchanged and verified — all via the CLI.
    Built once; each test gets fresh copies."""
    base = tmp_path_factory.mktemp("pair")
    vaults = {"district": base / "district.vault", "college": base / "college.vault"}
    names = {"district": "Lakeview Unified School District", "college": "Riverbend Community College"}
    cards: dict = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATHSHARE_PASSPHRASE", PASS)
        mp.delenv("PATHSHARE_VAULT", raising=False)
        for side in vaults:
            _cli("--vault", vaults[side], "init", "--org", names[side], "--kind", side)
            cards[side] = base / f"{side}-card.json"
            _cli("--vault", vaults[side], "card", "export", cards[side])
        for me, other in (("district", "college"), ("college", "district")):
            _cli("--vault", vaults[me], "partner", "import", cards[other])
            fingerprint = json.loads(_cli("--vault", vaults[other], "card", "show", "--json")[1])[
                "fingerprint"
            ]
            _cli("--vault", vaults[me], "partner", "verify", fingerprint)
            cards[other + "_fp"] = fingerprint
            cards[other + "_card"] = json.loads(cards[other].read_text())
    return vaults, cards


@pytest.fixture
def two_orgs(_pair, tmp_path, monkeypatch):
    vaults, cards = _pair
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    monkeypatch.delenv("PATHSHARE_VAULT", raising=False)
    copies = {}
    for side, path in vaults.items():
        copies[side] = tmp_path / path.name
        shutil.copyfile(path, copies[side])  # closed vaults are one file (the WAL is checkpointed)
    return copies, cards


def draft_from_example(tmp_path: Path, cards: dict) -> Path:
    """The documented example with the real parties' keys filled in (and dates around today)."""
    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    for party, side in zip(doc["parties"], ("district", "college"), strict=True):
        card = cards[side + "_card"]
        party["fingerprint"] = cards[side + "_fp"]
        party["signing_key"] = card["signing_key"]
        party["age_recipient"] = card["age_recipient"]
    today = date.today()
    doc["effective"] = (today - timedelta(days=1)).isoformat()
    doc["expires"] = (today + timedelta(days=3 * 365)).isoformat()
    doc["destruction"]["deadline"] = (today + timedelta(days=3 * 365 + 90)).isoformat()
    path = tmp_path / "draft.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def audit_actions(run_cli, vault: Path) -> list[dict]:
    code, out, err = run_cli("--vault", vault, "audit", "log", "--json")
    assert code == 0, err
    return json.loads(out)


def test_two_organizations_execute_the_documented_agreement_by_exchanging_files(tmp_path, run_cli, two_orgs):
    vaults, cards = two_orgs
    district, college = vaults["district"], vaults["college"]
    draft = draft_from_example(tmp_path, cards)

    code, out, err = run_cli("--vault", district, "agreement", "new", draft)
    assert code == 0, err
    agreement_id = out.splitlines()[0]
    assert len(agreement_id) == 36

    assert run_cli("--vault", district, "agreement", "sign", agreement_id)[0] == 0
    proposal = tmp_path / "outbox" / "proposal.json"
    proposal.parent.mkdir()
    code, out, err = run_cli("--vault", district, "agreement", "export", agreement_id, proposal)
    assert code == 0 and "signed by Lakeview Unified School District" in out, err

    code, out, err = run_cli("--vault", college, "agreement", "import", proposal)
    assert code == 0 and ": proposed." in out and "Still to sign: Riverbend Community College" in out, err
    code, out, err = run_cli("--vault", college, "agreement", "sign", agreement_id[:8])
    assert code == 0 and "is executed" in out, err
    countersigned = tmp_path / "countersigned.json"
    assert run_cli("--vault", college, "agreement", "export", agreement_id, countersigned)[0] == 0

    code, out, err = run_cli("--vault", district, "agreement", "import", countersigned)
    assert code == 0 and ": executed." in out, err

    for vault in (district, college):
        code, out, _ = run_cli("--vault", vault, "agreement", "show", agreement_id, "--json")
        shown = json.loads(out)
        assert code == 0 and shown["status"] == "executed"
        assert len(shown["agreement"]["signatures"]) == 2
        code, out, _ = run_cli("--vault", vault, "agreement", "list", "--json")
        assert [(r["id"], r["status"], r["in_force"]) for r in json.loads(out)] == [
            (agreement_id, "executed", True)
        ]
        code, out, err = run_cli("--vault", vault, "audit", "verify")
        assert code == 0, err

    # Both sides hold byte-identical terms.
    shas = {
        json.loads(run_cli("--vault", v, "agreement", "show", agreement_id, "--json")[1])["sha256"]
        for v in (district, college)
    }
    assert len(shas) == 1

    steps = {
        district: [
            "agreement.created",
            "agreement.signed",
            "agreement.exported",
            "agreement.imported",
            "agreement.executed",
        ],
        college: ["agreement.imported", "agreement.signed", "agreement.executed", "agreement.exported"],
    }
    for vault, expected in steps.items():
        entries = [e for e in audit_actions(run_cli, vault) if e["action"].startswith("agreement.")]
        assert [e["action"] for e in entries] == expected
        assert all(e["agreement"] == agreement_id for e in entries)
        # Card exchange and verification are on record as well.
        actions = [e["action"] for e in audit_actions(run_cli, vault)]
        assert any(a.startswith("partner.") and "verif" in a for a in actions), actions


def test_cli_refusals_are_one_sentence_and_change_nothing(tmp_path, run_cli, two_orgs):
    vaults, cards = two_orgs
    district, college = vaults["district"], vaults["college"]
    draft = draft_from_example(tmp_path, cards)
    code, out, _ = run_cli("--vault", district, "agreement", "new", draft)
    agreement_id = out.splitlines()[0]
    run_cli("--vault", district, "agreement", "sign", agreement_id)
    proposal = tmp_path / "proposal.json"
    run_cli("--vault", district, "agreement", "export", agreement_id, proposal)

    bad = tmp_path / "bad.json"
    cases = []
    bad_dates = json.loads(draft.read_text())
    bad_dates["effective"], bad_dates["expires"] = bad_dates["expires"], bad_dates["effective"]
    cases.append(("new", bad_dates, "dates are out of order"))
    bad_qi = json.loads(draft.read_text())
    bad_qi["policy"]["quasi_identifiers"].append("email")
    cases.append(("new", bad_qi, "quasi-identifier email is not an element"))
    tampered = json.loads(proposal.read_text())
    tampered["redisclosure"] = "Anything goes."
    cases.append(("import", tampered, "bad signature by Lakeview Unified School District"))
    for command, doc, message in cases:
        bad.write_text(json.dumps(doc))
        before = run_cli("--vault", college, "agreement", "list", "--json")[1]
        code, out, err = run_cli(
            "--vault", college if command == "import" else district, "agreement", command, bad
        )
        assert code == 1 and message in err and err.startswith("pathshare: ") and err.count("\n") == 1, err
        assert "Traceback" not in err and out == ""
        assert run_cli("--vault", college, "agreement", "list", "--json")[1] == before

    bad.write_text("{ not json")
    code, _, err = run_cli("--vault", college, "agreement", "import", bad)
    assert code == 1 and "bad.json is not valid JSON" in err
    code, _, err = run_cli("--vault", college, "agreement", "show", "ffffffff")
    assert code == 1 and "no agreement ffffffff" in err
    code, _, err = run_cli(
        "--vault", district, "agreement", "export", agreement_id, tmp_path / "nowhere" / "x.json"
    )
    assert code == 1 and "does not exist" in err
    refusals = [e["action"] for e in audit_actions(run_cli, college) if e["action"].endswith(".refused")]
    assert refusals.count("agreement.import.refused") == 2


def test_cli_amend_terminate_and_compliance_queries(tmp_path, run_cli, two_orgs):
    vaults, cards = two_orgs
    district, college = vaults["district"], vaults["college"]
    draft = draft_from_example(tmp_path, cards)
    agreement_id = run_cli("--vault", district, "agreement", "new", draft)[1].splitlines()[0]
    run_cli("--vault", district, "agreement", "sign", agreement_id)
    run_cli("--vault", district, "agreement", "export", agreement_id, tmp_path / "p.json")
    run_cli("--vault", college, "agreement", "import", tmp_path / "p.json")
    run_cli("--vault", college, "agreement", "sign", agreement_id)
    run_cli("--vault", college, "agreement", "export", agreement_id, tmp_path / "c.json")
    run_cli("--vault", district, "agreement", "import", tmp_path / "c.json")

    code, out, _ = run_cli("--vault", district, "agreement", "list", "--expiring-days", "4000", "--json")
    assert [r["id"] for r in json.loads(out)] == [agreement_id]
    code, out, _ = run_cli("--vault", district, "agreement", "list", "--expiring-days", "30", "--json")
    assert json.loads(out) == []

    amended = json.loads(draft.read_text())
    amended["policy"]["k"] = 20
    amended.pop("id")  # an amendment file names no other agreement (its id would have to be this one)
    (tmp_path / "v2.json").write_text(json.dumps(amended))
    code, out, err = run_cli("--vault", district, "agreement", "amend", agreement_id, tmp_path / "v2.json")
    assert code == 0 and "version 2" in out, err
    code, out, _ = run_cli("--vault", district, "agreement", "show", agreement_id)
    assert "version 2  status draft" in out and "amends the version" in out and "(k = 20," in out

    code, out, err = run_cli(
        "--vault", college, "agreement", "terminate", agreement_id, "--reason", "Study ended."
    )
    assert code == 0, err
    run_cli("--vault", college, "agreement", "export", agreement_id, tmp_path / "t.json")
    code, out, err = run_cli("--vault", district, "agreement", "import", tmp_path / "t.json")
    assert code == 0 and "terminated" in out, err
    # The termination ends the whole agreement: the pending amendment can no longer be signed.
    code, out, _ = run_cli("--vault", district, "agreement", "show", agreement_id)
    assert "version 2  status terminated" in out
    code, _, err = run_cli("--vault", district, "agreement", "sign", agreement_id)
    assert code == 1 and "terminated; it can no longer be signed" in err
    code, out, _ = run_cli("--vault", district, "agreement", "list", "--destruction-due", "--json")
    assert [(r["id"], r["status"]) for r in json.loads(out)] == [(agreement_id, "terminated")]
    assert json.loads(out)[0]["days_to_destruction_deadline"] == 3 * 365 + 90
    code, out, _ = run_cli("--vault", district, "agreement", "list", "--destruction-due")
    assert "terminated" in out and agreement_id[:8] in out and f"(in {3 * 365 + 90} days)" in out
    # A file is a template: drafting from it again gives another agreement, not a clash.
    code, out, err = run_cli("--vault", district, "agreement", "new", draft)
    assert code == 0 and out.splitlines()[0] not in (agreement_id, json.loads(draft.read_text())["id"]), err


def test_cli_general_offer_joined_by_a_further_district(tmp_path, run_cli, two_orgs):
    vaults, cards = two_orgs
    district, college = vaults["district"], vaults["college"]
    hill = tmp_path / "hill.vault"
    assert run_cli("--vault", hill, "init", "--org", "Hillcrest Unified", "--kind", "district")[0] == 0
    run_cli("--vault", hill, "card", "export", tmp_path / "hill-card.json")
    hill_fp = json.loads(run_cli("--vault", hill, "card", "show", "--json")[1])["fingerprint"]
    for vault in (district, college):
        run_cli("--vault", vault, "partner", "import", tmp_path / "hill-card.json")
        assert run_cli("--vault", vault, "partner", "verify", hill_fp)[0] == 0
    for side in ("district", "college"):
        run_cli("--vault", hill, "partner", "import", cards[side], "--verified")

    offer = json.loads(draft_from_example(tmp_path, cards).read_text())
    offer["general_offer"], offer["join_as"] = True, ["provider"]
    (tmp_path / "offer.json").write_text(json.dumps(offer))
    agreement_id = run_cli("--vault", college, "agreement", "new", tmp_path / "offer.json")[1].splitlines()[0]
    run_cli("--vault", college, "agreement", "sign", agreement_id)
    run_cli("--vault", college, "agreement", "export", agreement_id, tmp_path / "p.json")
    run_cli("--vault", district, "agreement", "import", tmp_path / "p.json")
    run_cli("--vault", district, "agreement", "sign", agreement_id)
    run_cli("--vault", district, "agreement", "export", agreement_id, tmp_path / "executed.json")

    code, out, err = run_cli("--vault", hill, "agreement", "import", tmp_path / "executed.json")
    assert code == 0 and "general offer" in out, err
    code, _, err = run_cli("--vault", hill, "agreement", "sign", agreement_id)
    assert code == 1 and "not a party" in err
    code, out, err = run_cli(
        "--vault",
        hill,
        "agreement",
        "join",
        agreement_id,
        "--name",
        "Pat Lee",
        "--title",
        "Superintendent",
        "--email",
        "plee@hillcrest.example",
    )
    assert code == 0, err
    run_cli("--vault", hill, "agreement", "export", agreement_id, tmp_path / "joined.json")
    code, out, err = run_cli("--vault", college, "agreement", "import", tmp_path / "joined.json")
    assert code == 0, err
    code, out, _ = run_cli("--vault", college, "agreement", "show", agreement_id)
    assert "Hillcrest Unified (provider) — Pat Lee, Superintendent: joined" in out
    shown = json.loads(run_cli("--vault", college, "agreement", "show", agreement_id, "--json")[1])
    assert (
        shown["status"] == "executed" and shown["agreement"]["joinders"][0]["party"]["fingerprint"] == hill_fp
    )
    assert run_cli("--vault", college, "audit", "verify")[0] == 0
