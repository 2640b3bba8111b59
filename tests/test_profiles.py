"""Mapping profiles in the vault, the codebook, and the map/profile/codebook commands against a real
agreement in a real vault."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from agreements import (
    Vault,
    create_agreement,
    create_identity,
    delete_profile,
    export_profile,
    get_profile,
    import_card,
    import_profile,
    list_profiles,
    profile_for_headers,
    save_profile,
)
from agreements._codebook import agreement_codebook, build_codebook, codebook_html, codebook_markdown
from deid import MappingProfile, element_library
from deid.errors import InputError, PolicyError
from deid.synth import generate, write_synth

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "agreement.json"
PASS = "correct horse battery staple"
TODAY = date.today()


@pytest.fixture
def vault(tmp_path):
    v = Vault.create(tmp_path / "district.vault", PASS)
    yield v
    v.close()


@pytest.fixture
def with_agreement(tmp_path, monkeypatch):
    """A district vault holding the documented example agreement (a draft with a college partner)."""
    district = Vault.create(tmp_path / "district.vault", PASS)
    college = Vault.create(tmp_path / "college.vault", PASS)
    d_card = create_identity(district, "Lakeview Unified School District", "district", "d@example.org")
    c_card = create_identity(college, "Riverbend Community College", "college", "c@example.org")
    import_card(district, c_card, verified=True)
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body.pop("id")
    reps = [p["authorized_representative"] for p in body["parties"]]
    body["parties"] = [
        {"fingerprint": d_card.fingerprint(), "roles": ["provider"], "authorized_representative": reps[0]},
        {"fingerprint": c_card.fingerprint(), "roles": ["recipient"], "authorized_representative": reps[1]},
    ]
    body["effective"] = (TODAY - timedelta(days=30)).isoformat()
    body["expires"] = (TODAY + timedelta(days=365)).isoformat()
    body["destruction"]["deadline"] = (TODAY + timedelta(days=455)).isoformat()
    agreement = create_agreement(district, body)
    college.close()
    district.close()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    return tmp_path / "district.vault", agreement


def _profile(name: str = "Aeries export") -> MappingProfile:
    return MappingProfile(
        name,
        {"Stu ID": "local_student_id", "Gender": "sex", "Notes": None},
        source_system="Aeries",
        recodes={"Gender": {"Male": "M", "Female": "F"}},
    )


# ------------------------------------------------------------------------------------ the vault


def test_profiles_are_saved_listed_found_and_deleted(vault):
    assert vault.schema_version >= 30
    save_profile(vault, _profile())
    save_profile(vault, MappingProfile("Colleague MIS", {"STU_ID": "college_student_id", "SEX": "sex"}))
    assert [p.name for p in list_profiles(vault)] == ["Aeries export", "Colleague MIS"]
    got = get_profile(vault, "aeries EXPORT")  # names are case-insensitive
    assert got == _profile()
    assert profile_for_headers(vault, ["gender", "notes", "STU ID"]).name == "Aeries export"
    assert profile_for_headers(vault, ["SEX", "STU_ID"]).name == "Colleague MIS"
    assert profile_for_headers(vault, ["Other"]) is None
    with pytest.raises(PolicyError, match="already exists"):
        save_profile(vault, _profile())
    changed = _profile()
    changed.columns["Notes"] = "notes"
    save_profile(vault, changed, replace=True)
    assert get_profile(vault, "Aeries export").columns["Notes"] == "notes"
    delete_profile(vault, "Aeries export")
    with pytest.raises(PolicyError, match=r"no mapping profile called 'Aeries export'\. Saved profiles: C"):
        get_profile(vault, "Aeries export")
    actions = [e.action for e in vault.audit.entries()]
    assert actions.count("profile.save") == 3 and "profile.delete" in actions
    assert vault.audit.verify().ok


def test_profiles_survive_reopening(tmp_path):
    path = tmp_path / "v.vault"
    with Vault.create(path, PASS) as v:
        save_profile(v, _profile())
    with Vault.open(path, PASS) as v:
        assert get_profile(v, "Aeries export") == _profile()


def test_export_and_import_share_a_profile_between_vaults(vault, tmp_path):
    save_profile(vault, _profile())
    out = tmp_path / "aeries.json"
    export_profile(vault, "Aeries export", out)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["pathshare_mapping_profile"] == 1 and doc["columns"]["Gender"] == "sex"
    with Vault.create(tmp_path / "other.vault", PASS) as other:
        imported = import_profile(other, out)
        assert imported == _profile()
        import_profile(other, out, name="Aeries (copy)")
        assert [p.name for p in list_profiles(other)] == ["Aeries (copy)", "Aeries export"]
        with pytest.raises(PolicyError, match="already exists"):
            import_profile(other, out)


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"{not json", InputError, "not valid JSON"),
        (b'{"name": "x"}', PolicyError, "not a PathShare mapping profile"),
        (b'{"pathshare_mapping_profile": 1, "name": "x", "columns": {"a": 3}}', PolicyError, "columns"),
        (b"\xff\xfe\x00garbage", InputError, "is not UTF-8 text"),
    ],
)
def test_import_refuses_bad_files_with_one_sentence(vault, tmp_path, content, error, message):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(error, match=message):
        import_profile(vault, bad)
    assert list_profiles(vault) == []


# ------------------------------------------------------------------------------------ codebook


def test_codebook_rows_follow_the_agreement(with_agreement):
    path, agreement = with_agreement
    with Vault.open(path, PASS) as v:
        from agreements import get_agreement

        book = agreement_codebook(get_agreement(v, agreement.id))
    rows = {r["element"]: r for r in book.rows}
    assert list(rows) == [e["name"] for e in agreement.body["elements"]]
    assert rows["birth_date"]["column"] == "birth_year"
    assert rows["birth_date"]["treatment"] == "generalized to the year"
    assert rows["birth_date"]["quasi_identifier"] == "yes"
    assert rows["first_name"]["column"] == "" and rows["first_name"]["treatment"] == "not released"
    assert rows["sex"]["codes"].startswith("F = ")
    assert "M = " in rows["sex"]["codes"]
    assert rows["sex"]["ceds"] == "Sex"
    assert rows["gpa"]["treatment"] == "grouped into ranges with edges [0, 1.0, 2.0, 2.5, 3.0, 3.5, 4.01]"
    assert rows["state_student_id"]["column"] == "student_code"
    assert any(agreement.id in line for line in book.about)


def test_codebook_formats():
    els = [element_library()[n] for n in ("sex", "birth_date", "notes")]
    book = build_codebook(els, title="T <&>")
    html = codebook_html(book)
    assert "<script" not in html and "T &lt;&amp;&gt;" in html and "http" not in html
    md = codebook_markdown(book)
    assert md.count("\n|") == 2 + len(els)


def test_cli_codebook_csv_and_pdf(run_cli, with_agreement, tmp_path):
    path, agreement = with_agreement
    code, out, err = run_cli("--vault", path, "codebook", agreement.id, "--out", tmp_path / "cb.csv")
    assert code == 0, err
    assert "cb.csv" in out and f"{len(agreement.body['elements'])} elements" in out
    rows = list(csv.DictReader(io.StringIO((tmp_path / "cb.csv").read_text(encoding="utf-8"))))
    assert [r["element"] for r in rows] == [e["name"] for e in agreement.body["elements"]]
    code, _, err = run_cli("--vault", path, "codebook", agreement.id, "--out", tmp_path / "cb.pdf")
    assert code == 0, err
    pdf = (tmp_path / "cb.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 2000
    code, _, err = run_cli("--vault", path, "codebook", agreement.id, "--out", tmp_path / "cb.docx")
    assert code == 1 and "cb.docx" in err and not (tmp_path / "cb.docx").exists()
    code, _, err = run_cli("--vault", path, "codebook", agreement.id, "--out", tmp_path / "no" / "cb.csv")
    assert code == 1 and "does not exist" in err
    with Vault.open(path, PASS) as v:
        assert [e.action for e in v.audit.entries()].count("agreement.codebook") == 2


# ------------------------------------------------------------------------ map with an agreement


def test_cli_map_against_an_agreement_saves_and_reuses_a_profile(run_cli, with_agreement, tmp_path):
    path, agreement = with_agreement
    k12 = tmp_path / "district.csv"
    write_synth(generate("k12", 80, seed=5), k12)
    code, out, err = run_cli(
        "--vault",
        path,
        "map",
        k12,
        "--agreement",
        agreement.id,
        "--json",
        "--save-profile",
        "Aeries export",
        "--source-system",
        "Aeries",
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dictionary"].startswith(f"agreement {agreement.id}")
    mapped = {c["column"]: c["element"] for c in doc["columns"]}
    names = {e["name"] for e in agreement.body["elements"]}
    assert set(filter(None, mapped.values())) <= names  # only the agreement's elements
    assert (
        mapped["Gender"] == "sex"
        and mapped["Birth Date"] == "birth_date"
        and mapped["FRPM"] == "economically_disadvantaged"
    )
    assert mapped["Guardian Email"] is None  # not in the dictionary: dropped
    kinds = {(f["kind"], f["column"]) for f in doc["validation"]}
    assert ("outside_code_set", "School Code") in kinds  # the agreement lists 14-digit CDS codes only

    # The same export again: the saved profile is found by its headers and used.
    code, out, err = run_cli("--vault", path, "map", k12, "--agreement", agreement.id, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["profile"] == "Aeries export" and doc["mapping"].startswith("profile (headers match)")
    assert all(c["source"] == "profile" for c in doc["columns"])

    with Vault.open(path, PASS) as v:
        saved = get_profile(v, "Aeries export")
    assert saved.source_system == "Aeries" and saved.columns["Gender"] == "sex"


def test_cli_profile_commands(run_cli, with_agreement, tmp_path):
    path, _ = with_agreement
    with Vault.open(path, PASS) as v:
        save_profile(v, _profile())
    code, out, _ = run_cli("--vault", path, "profile", "list", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "Aeries export"
    assert json.loads(out)[0]["source_system"] == "Aeries"
    code, out, err = run_cli("--vault", path, "profile", "export", "Aeries export", tmp_path / "p.json")
    assert code == 0, err
    code, out, err = run_cli("--vault", path, "profile", "import", tmp_path / "p.json", "--name", "Copy")
    assert code == 0 and "Copy" in out
    code, out, _ = run_cli("--vault", path, "profile", "list")
    assert "Aeries export (Aeries)" in out and "Copy" in out
    code, out, _ = run_cli("--vault", path, "profile", "show", "Copy")
    assert code == 0 and "Gender" in out and "->  sex" in out and "'Male' -> 'M'" in out
    code, out, _ = run_cli("--vault", path, "profile", "show", "Copy", "--json")
    assert code == 0 and json.loads(out)["columns"]["Notes"] is None
    code, _, err = run_cli("--vault", path, "profile", "delete", "Nope")
    assert code == 1 and "no mapping profile called 'Nope'" in err


def test_cli_map_with_a_named_profile(run_cli, with_agreement, tmp_path):
    path, agreement = with_agreement
    with Vault.open(path, PASS) as v:
        save_profile(v, MappingProfile("MIS", {"STU_ID": "state_student_id"}))
        save_profile(v, MappingProfile("Mine", {"Gender": "sex", "SSID": "state_student_id"}))
    k12 = tmp_path / "district.csv"
    write_synth(generate("k12", 30, seed=5), k12)
    code, out, err = run_cli("--vault", path, "map", k12, "--agreement", agreement.id, "--profile", "Mine")
    assert code == 0, err
    assert "Mapping: profile: Mine" in out and "(not mapped: dropped)" in out
    code, out, err = run_cli("--vault", path, "map", k12, "--agreement", agreement.id, "--profile", "MIS")
    assert code == 1 and out == ""
    assert "'STU_ID'" in err and "MIS" in err


def test_cli_map_unknown_agreement(run_cli, with_agreement, tmp_path):
    path, _ = with_agreement
    k12 = tmp_path / "district.csv"
    write_synth(generate("k12", 30, seed=5), k12)
    code, _, err = run_cli("--vault", path, "map", k12, "--agreement", "no-such-agreement")
    assert code == 1 and err.startswith("pathshare: ")


# ---------------------------------------------------------------- the bridge for deid --agreement


def test_map_for_agreement_needs_a_confirmed_mapping_and_feeds_the_engine(with_agreement, tmp_path):
    from agreements import get_agreement, map_for_agreement
    from deid import Crosswalk, deidentify, suggest_mapping
    from deid.errors import CheckFailed

    path, agreement_ = with_agreement
    table = generate("k12", 120, seed=3).table
    with Vault.open(path, PASS) as v:
        agreement = get_agreement(v, agreement_.id)
        with pytest.raises(PolicyError, match=r"No saved mapping profile matches the columns of district"):
            map_for_agreement(v, agreement, table, input_name="district.csv")
        from agreements import agreement_elements

        suggestions = suggest_mapping(table, agreement_elements(agreement))
        save_profile(v, MappingProfile.from_suggestions("Aeries export", suggestions))
        # The example agreement lists 14-digit CDS school codes and grades 09-12 only; this export has
        # 7-digit school codes and a few younger students.
        with pytest.raises(CheckFailed, match=r"does not fit agreement .*outside the .*more problem"):
            map_for_agreement(v, agreement, table, input_name="district.csv")
        result = map_for_agreement(v, agreement, table, input_name="district.csv", refuse_errors=False)
        assert result.how == "profile (headers match)" and result.profile.name == "Aeries export"
        assert result.table.column_names == [e["name"] for e in agreement.body["elements"]]
        assert any(f.column == "School Code" for f in result.errors)
        out, report = deidentify(result.table, result.policy, secret=b"k" * 32, crosswalk=Crosswalk())
        assert "student_code" in out.column_names
        # birth_year is released, or (120 students at k = 11) left out by the search, which says so
        assert ("birth_year" in out.column_names) != ("birth_year" in report.disclosure["removed"])
        assert "first_name" not in out.column_names and "Gender" not in out.column_names
        assert report.rows_in == 120
        assert "mapping.apply" in [e.action for e in v.audit.entries()]


def test_done_when_both_exports_through_one_agreement_come_out_identical(tmp_path):
    """Issue 5's done-when through a real Agreement: one dictionary with the elements of both exports,
    suggestions alone, the agreement's policy; the de-identified outputs have the same columns and
    every coded column stays within the agreement's code sets."""
    from agreements import map_for_agreement
    from deid import Crosswalk, deidentify
    from deid.synth import column_elements

    lib = element_library()
    names = list(dict.fromkeys([*column_elements("k12").values(), *column_elements("college").values()]))
    district = Vault.create(tmp_path / "d.vault", PASS)
    college = Vault.create(tmp_path / "c.vault", PASS)
    d_card = create_identity(district, "Lakeview Unified School District", "district", "d@example.org")
    c_card = create_identity(college, "Riverbend Community College", "college", "c@example.org")
    import_card(district, c_card, verified=True)
    body = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    body.pop("id")
    reps = [p["authorized_representative"] for p in body["parties"]]
    body["parties"] = [
        {"fingerprint": d_card.fingerprint(), "roles": ["provider"], "authorized_representative": reps[0]},
        {
            "fingerprint": c_card.fingerprint(),
            "roles": ["provider", "recipient"],
            "authorized_representative": reps[1],
        },
    ]
    body["elements"] = []
    body["policy"]["parameters"] = {}
    body["policy"]["sensitive"], body["policy"]["hierarchies"] = [], {}  # the example's name other elements
    for n in names:
        el = lib[n]
        entry = {
            "name": n,
            # A code without a standard code set (school, term, TOP code) is a string here.
            "type": "string" if el.type == "code" and not el.code_set else el.type,
            "description": el.description,
            "treatment": el.treatment["treatment"],
            "code_set": None,
        }
        if el.code_set:
            entry["code_set"] = {
                "name": el.code_set_name or n,
                "codes": {c.code: c.label for c in el.code_set},
            }
        body["elements"].append(entry)
        params = {k: v for k, v in el.treatment.items() if k != "treatment"}
        if params:
            body["policy"]["parameters"][n] = params
    body["policy"]["k"] = 2
    body["policy"]["quasi_identifiers"] = ["birth_date", "sex", "zip"]
    agreement = create_agreement(district, body)

    outputs, removed = {}, {}
    for kind in ("k12", "college"):
        table = generate(kind, 100, seed=9).table
        mapping = map_for_agreement(
            district, agreement, table, input_name=f"{kind}.csv", require_confirmed=False
        )
        assert mapping.how == "suggested" and mapping.errors == []
        truth = column_elements(kind)
        right = sum(mapping.profile.columns[c] == e for c, e in truth.items()) / len(truth)
        assert right >= 0.9
        out, report = deidentify(
            mapping.table,
            mapping.policy,
            secret=b"s" * 32,
            crosswalk=Crosswalk(),
            reference_date=date(2026, 6, 30),
        )
        outputs[kind] = out
        removed[kind] = set(report.disclosure["removed"])
    district.close()
    college.close()
    # the same columns, but for a quasi-identifier the disclosure search left out of one (said in its report)
    gone = removed["k12"] | removed["college"]
    assert [c for c in outputs["k12"].column_names if c not in gone] == [
        c for c in outputs["college"].column_names if c not in gone
    ]
    assert "birth_year" in outputs["k12"].column_names or "birth_year" in removed["k12"]
    assert "first_name" not in outputs["k12"].column_names
    for entry in body["elements"]:
        if entry["code_set"] and entry["treatment"] == "keep":
            codes = set(entry["code_set"]["codes"])
            for kind, out in outputs.items():
                if entry["name"] in removed[kind]:  # left out by the disclosure search (its report says so)
                    assert entry["name"] not in out.column_names
                    continue
                values = {v for v in out.column(entry["name"]).to_pylist() if v is not None}
                assert values <= codes, (kind, entry["name"], values - codes)


def test_the_app_and_the_cli_propose_one_mapping(run_cli, with_agreement, tmp_path, monkeypatch):
    """Mapping is one workflow (agreements.propose_mapping): `pathshare map --agreement` and the app's
    Map step (the inspect_extract job) read the export the same way and propose the same mapping. Where
    the two copies disagreed: a repeated header is read as NAME_2 (as prepare reads it; the app refused
    the file), and a column a saved profile maps to an element the dictionary lacks gets the suggestion
    (the CLI showed the foreign element)."""
    import agreements
    from agreements import get_agreement, propose_mapping
    from desktop.ui.jobs import JobContext, inspect_extract

    path, agreement = with_agreement
    plain = tmp_path / "plain.csv"
    write_synth(generate("k12", 30, seed=5), plain)
    rows = list(csv.reader(io.StringIO(plain.read_text(encoding="utf-8-sig"))))
    rows = [[*row, row[rows[0].index("Gender")]] for row in rows]  # Gender again, at the end
    rows[1][-1] = "X" if rows[1][-1] != "X" else "F"  # differing: read as Gender_2, not refused
    k12 = tmp_path / "district.csv"
    with k12.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    code, out, err = run_cli(
        "--vault", path, "map", k12, "--agreement", agreement.id, "--save-profile", "Aeries"
    )
    assert code == 0, err
    with Vault.open(path, PASS) as v:
        saved = get_profile(v, "Aeries")
        saved.columns["Guardian Email"] = "guardian_email"  # an element of another dictionary
        save_profile(v, saved, replace=True)

    code, out, err = run_cli("--vault", path, "map", k12, "--agreement", agreement.id, "--json")
    assert code == 0, err
    cli = {c["column"]: c["element"] for c in json.loads(out)["columns"]}
    # The job needs an agreement in force; this one is a signed-by-nobody draft, which does not matter
    # to the mapping being compared.
    monkeypatch.setattr(agreements, "require_in_force", lambda vault, aid: get_agreement(vault, aid))
    ctx = JobContext(progress=lambda f, m: None)
    with Vault.open(path, PASS) as ctx.vault:
        shown = inspect_extract(ctx, str(k12), agreement.id)
        proposal = propose_mapping(ctx.vault, k12, agreements.agreement_elements(agreement))
    app = {column: s.element for column, s in shown.suggestions.items()}
    assert app == cli and "Gender_2" in app and shown.profile == "Aeries"
    assert cli["Guardian Email"] is None and "Guardian Email" not in proposal.from_profile
    assert proposal.how == "profile (headers match)" and proposal.profile.columns == cli
    assert shown.recode_suggestions == proposal.profile.recodes
