"""Issue 8's "Done when": a district and a college de-identify their own synthetic extracts under ONE
consortium agreement whose secret reached both providers (and never the analyst, a recipient only);
the analyst links the two outputs; combined linkage beats the Cal-PASS-style baseline measured in the
same run, with precision >= 0.995 and recall >= 0.98 against the generator's truth.
Also: the linkage key file's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from linkscore import evaluate, truth_pairs
from partners_setup import PASS, Org, execute_agreement

from agreements import (
    ensure_linkage_secret,
    export_linkage_key,
    import_linkage_key,
    linkage_secret,
    linkage_summary,
)
from agreements.errors import AgreementError, PackageRejected
from deid import Policy, deidentify, write_table
from deid._linkfiles import link
from deid.synth import generate

ROWS = 3000
SEED = 8


@pytest.fixture(scope="module")
def consortium(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("consortium")
    district = Org(tmp / "district.vault", "Lakeview Unified School District", "district")
    college = Org(tmp / "college.vault", "Riverbend Community College", "college")
    analyst = Org(tmp / "analyst.vault", "Regional Pathways Research", "intermediary")
    agreement_id = execute_agreement(
        [district, college, analyst], [["provider"], ["provider"], ["recipient"]], tmp, scope="consortium"
    )
    yield tmp, district, college, analyst, agreement_id
    for o in (district, college, analyst):
        o.vault.close()


def _agreement(org: Org, agreement_id: str):
    from agreements import get_agreement

    return get_agreement(org.vault, agreement_id)


def _deidentify(table: pa.Table, cols: dict[str, str], secret: bytes, out: Path) -> Path:
    """A provider's own run: link tokens from its identifiers, grade/term kept, everything else dropped."""
    rule = {
        "treatment": "link_tokens",
        "as": "link_tokens",
        "from": [cols["first"], cols["middle"], cols["last"], cols["birth"], cols["sex"]],
        "baseline": True,  # also the Cal-PASS key, to measure the baseline on the same files
    }
    policy = Policy.from_dict(
        {"pathshare_policy": 1, "k": 1, "columns": {cols["ssid"]: rule, cols["keep"]: {"treatment": "keep"}}}
    )
    output, report = deidentify(table, policy, secret=secret)
    assert output.column_names == ["link_tokens", cols["keep"]] and report.residual_findings == []
    write_table(output, out)
    return out


def test_district_and_college_link_under_one_consortium_agreement(consortium) -> None:
    tmp, district, college, analyst, agreement_id = consortium
    agreement = _agreement(district, agreement_id)
    assert agreement.is_executed

    # The secret: made by the key holder (the first provider) as the agreement became executed there,
    # awaited by the other provider, never the analyst's.
    made = ensure_linkage_secret(district.vault, agreement)
    assert made.state == "held" and made.key_holder == district.fp and made.dual_role == ()
    assert [e.action for e in district.vault.audit.entries() if e.action == "linkage.secret_created"] == [
        "linkage.secret_created"
    ]
    assert ensure_linkage_secret(college.vault, _agreement(college, agreement_id)).state == "awaiting"
    assert ensure_linkage_secret(analyst.vault, _agreement(analyst, agreement_id)).state == "not_a_provider"
    with pytest.raises(AgreementError, match="not a provider"):
        export_linkage_key(district.vault, agreement_id, analyst.fp, tmp / "analyst.key")
    assert not (tmp / "analyst.key").exists()
    export_linkage_key(district.vault, agreement_id, college.fp, tmp / "college.key")
    assert import_linkage_key(college.vault, tmp / "college.key").id == agreement_id
    import_linkage_key(college.vault, tmp / "college.key")  # again: nothing changes
    shared = linkage_secret(district.vault, agreement)
    assert shared is not None and len(shared) == 32
    assert linkage_secret(college.vault, _agreement(college, agreement_id)) == shared
    assert shared.hex() not in (tmp / "college.key").read_text() and b"\x00" * 4 not in shared
    for org, action in ((district, "linkage.secret_created"), (district, "linkage.key_exported"),
                        (college, "linkage.key_imported")):  # fmt: skip
        assert action in org.actions()
    assert [r["origin"] for r in linkage_summary(college.vault)] == ["imported"]

    # Each provider de-identifies its own extract (same seed: overlapping populations).
    k12 = generate("k12", ROWS, seed=SEED)
    col = generate("college", ROWS, seed=SEED)
    # The college's mapping recodes MIS sex codes to the agreement's code set (F, M, X).
    sex = pc.take(pa.array(["F", "M", "X"]), pc.subtract(pc.cast(col.table["SEX"], pa.int64()), 1))
    college_table = col.table.set_column(col.table.column_names.index("SEX"), "SEX", sex)
    a = _deidentify(
        k12.table,
        {
            "ssid": "SSID",
            "first": "First Name",
            "middle": "Middle Name",
            "last": "Last Name",
            "birth": "Birth Date",
            "sex": "Gender",
            "keep": "Grade",
        },
        linkage_secret(district.vault, agreement),
        tmp / "district_deid.csv",
    )
    b = _deidentify(
        college_table,
        {
            "ssid": "SSID",
            "first": "STU_FIRST_NM",
            "middle": "STU_MID_NM",
            "last": "STU_LAST_NM",
            "birth": "STU_BIRTH_DT",
            "sex": "SEX",
            "keep": "TERM_CD",
        },
        linkage_secret(college.vault, _agreement(college, agreement_id)),
        tmp / "college_deid.csv",
    )

    # The analyst — a recipient only — links the two outputs and never held the secret.
    assert linkage_secret(analyst.vault, _agreement(analyst, agreement_id)) is None
    assert linkage_summary(analyst.vault) == []
    assert analyst.vault.db.execute("SELECT COUNT(*) FROM linkage_secrets").fetchone()[0] == 0
    truth = truth_pairs(k12.truth.person_id, col.truth.person_id)
    assert len(truth) > 300
    results = {}
    for method in ("id", "calpass", "combined"):
        links = link(a, b, tmp / f"linked_{method}.csv", report=tmp / f"{method}.json", method=method)
        results[method] = evaluate(links.pairs(), truth)
    combined, baseline = results["combined"], results["calpass"]
    print({m: (round(r["precision"], 4), round(r["recall"], 4)) for m, r in results.items()})
    assert combined["precision"] >= 0.995 and combined["recall"] >= 0.98
    assert combined["recall"] > baseline["recall"] > results["id"]["recall"]
    assert combined["precision"] >= baseline["precision"] - 0.002
    report = json.loads((tmp / "combined.json").read_text(encoding="utf-8"))
    assert report["linked"] == combined["found"] and report["linked_by"]["id"] > 0
    assert report["linked_by"]["derived"] > 0
    text = (tmp / "linked_combined.csv").read_text(encoding="utf-8")
    assert k12.table["Last Name"][0].as_py() not in text and k12.table["SSID"][0].as_py() not in text


def test_key_files_are_refused_when_wrong(consortium, tmp_path: Path) -> None:
    _, district, college, analyst, agreement_id = consortium
    ensure_linkage_secret(district.vault, _agreement(district, agreement_id))
    key = export_linkage_key(district.vault, agreement_id, college.fp, tmp_path / "college.key")

    # Only the addressee can import it.
    for org in (analyst, district):
        with pytest.raises(PackageRejected, match=r"not to this organization|not a provider"):
            import_linkage_key(org.vault, key)
        assert org.actions()[-1] == "linkage.key_rejected"
    assert linkage_summary(analyst.vault) == []

    # Altered: another ciphertext, or another sender.
    data = json.loads(key.read_text())
    for field, value in (("to", analyst.fp), ("from", college.fp), ("agreement_sha256", "0" * 64)):
        bad = json.loads(json.dumps(data))
        bad["document"][field] = value
        (tmp_path / "bad.key").write_text(json.dumps(bad))
        with pytest.raises(PackageRejected):
            import_linkage_key(college.vault, tmp_path / "bad.key")
    (tmp_path / "junk.key").write_text("not json")
    with pytest.raises(PackageRejected, match=r"junk\.key is not valid JSON \(line 1\)"):
        import_linkage_key(college.vault, tmp_path / "junk.key")


def test_a_provider_that_is_also_a_recipient_is_flagged(tmp_path: Path) -> None:
    d = Org(tmp_path / "d.vault", "Lakeview Unified School District", "district")
    c = Org(tmp_path / "c.vault", "Riverbend Community College", "college")
    try:
        agreement_id = execute_agreement(
            [d, c], [["provider"], ["provider", "recipient"]], tmp_path, scope="consortium"
        )
        status = ensure_linkage_secret(d.vault, _agreement(d, agreement_id))
        assert status.state in ("created", "held") and status.dual_role == (c.fp,)
    finally:
        d.vault.close()
        c.vault.close()


def test_provider_scope_never_shares_a_secret(sides, tmp_path: Path) -> None:
    d, c, agreement_id = sides  # the suite's two organizations: provider scope, the default
    agreement = _agreement(d, agreement_id)
    assert agreement.terms.policy.linkage_scope == "provider"
    assert ensure_linkage_secret(d.vault, agreement).state == "not_consortium"
    assert linkage_secret(d.vault, agreement) is None
    with pytest.raises(AgreementError, match="never shared"):
        export_linkage_key(d.vault, agreement_id, c.fp, tmp_path / "k.key")


def test_cli_linkage_status_export_and_import(consortium, run_cli, monkeypatch, tmp_path: Path) -> None:
    tmp, _, college, analyst, agreement_id = consortium
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, out, err = run_cli("--vault", tmp / "analyst.vault", "linkage", "status", agreement_id)
    assert code == 0 and "not a provider: it never holds the linkage secret" in out, err
    code, out, _ = run_cli("--vault", tmp / "district.vault", "linkage", "status", agreement_id, "--json")
    assert code == 0 and json.loads(out)["state"] in ("created", "held")
    key = tmp_path / "analyst.key"
    code, _, err = run_cli(
        "--vault", tmp / "district.vault", "linkage", "export-key", agreement_id, "--for", analyst.fp,
        "--out", key,
    )  # fmt: skip
    assert code == 1 and "only providers receive the linkage secret" in err and not key.exists()
    key = tmp_path / "college.key"
    code, out, err = run_cli(
        "--vault", tmp / "district.vault", "linkage", "export-key", agreement_id, "--for", college.fp,
        "--out", key,
    )  # fmt: skip
    assert code == 0 and key.exists(), err
    code, out, err = run_cli("--vault", tmp / "college.vault", "linkage", "import-key", key)
    assert code == 0 and "imported the linkage secret" in out, err
    code, out, err = run_cli("--vault", tmp / "analyst.vault", "linkage", "import-key", key)
    assert code == 1 and "not to this organization" in err and "Traceback" not in err


def test_prepare_refuses_a_consortium_agreement_until_the_linkage_key_is_imported(tmp_path: Path) -> None:
    from agreements import prepare

    d = Org(tmp_path / "d.vault", "Lakeview Unified School District", "district")
    c = Org(tmp_path / "c.vault", "Riverbend Community College", "college")
    a = Org(tmp_path / "a.vault", "Regional Pathways Research", "intermediary")
    try:
        agreement_id = execute_agreement(
            [d, c, a], [["provider"], ["provider"], ["recipient"]], tmp_path, scope="consortium"
        )
        extract = tmp_path / "extract.csv"
        extract.write_text("SSID\n0000000001\n", encoding="utf-8")
        with pytest.raises(AgreementError, match="does not hold its linkage key"):
            prepare(c.vault, extract, agreement_id, tmp_path / "out.age", accept_suggested=True)
        assert not (tmp_path / "out.age").exists()
        assert "package.prepare_refused" in c.actions()
    finally:
        for o in (d, c, a):
            o.vault.close()
