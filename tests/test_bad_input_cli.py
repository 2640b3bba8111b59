"""Bad input through the real ``pathshare`` command line, for the vault, agreement, exchange, audit,
prepare and compliance commands: one sentence on stderr starting "pathshare: ", exit status 1, no
traceback, no file (final, temporary or staging) left behind, nothing changed in the vault but the
audit entry of the refusal, and no cell value of a student file in a message or audit entry."""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from partners_setup import PASS, TODAY, Org

import agreements._vault as vault_module
from agreements import seal_for_agreement

DEEP = b"[" * 200_000 + b"]" * 200_000
SECRET_CELL = "Zebediah-Quintessa-7731"  # a cell value that must never be echoed


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture(scope="module")
def _orgs(_executed_pair, tmp_path_factory) -> tuple[Path, Path, str, Path]:
    """The suite's district and college vaults (one executed agreement) with a package sealed under it."""
    mp = pytest.MonkeyPatch()
    mp.setattr(vault_module, "_TEST_KDF_ITER", 1000)
    base = tmp_path_factory.mktemp("orgs")
    d_path, c_path, live = _executed_pair
    for p in (d_path, c_path):  # the file and the signed head file beside it
        for f in (p, p.with_name(p.name + ".head")):
            if f.exists():
                shutil.copyfile(f, base / f.name)
    d = Org(base / d_path.name, new=False)
    src = base / "extract.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    (base / "outbox").mkdir()
    sealed = seal_for_agreement(
        d.vault, live, [("students.csv", src, 2)], {"rows_out": 2}, base / "outbox" / "p.age"
    )
    d.vault.close()
    mp.undo()
    return base / d_path.name, base / c_path.name, live, sealed.path


@pytest.fixture
def env(_orgs, tmp_path, monkeypatch):
    """Copies of both vaults in tmp_path/work (so each test starts clean), the passphrase in the env."""
    d_path, c_path, live, package = _orgs
    work = tmp_path / "work"
    work.mkdir()
    for p in (d_path, c_path, package):
        shutil.copyfile(p, work / p.name)
    for p in (d_path, c_path):  # a whole copy of a vault: the file and the signed head file beside it
        head = p.with_name(p.name + ".head")
        if head.exists():
            shutil.copyfile(head, work / head.name)
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    return {
        "district": work / d_path.name,
        "college": work / c_path.name,
        "live": live,
        "package": work / package.name,
        "work": work,
    }


def _tree(root: Path) -> set[str]:
    # `<vault>.lock` is made by the first opening of a copied vault (PathShare's own lock; see _vaultlock).
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.name.endswith(".vault.lock")}


def _audit(vault: Path) -> list[str]:
    from agreements import Vault

    with Vault.open(vault, PASS) as v:
        return [e.action for e in v.audit.entries()]


def refused(code: int, out: str, err: str, *, status: int = 1) -> str:
    """Assert the CLI refused in PathShare's voice; return the sentence."""
    assert "Traceback" not in err and "Traceback" not in out, err
    assert code == status, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    hints = [line for line in lines[1:] if line.startswith("pathshare: hint: ")]  # what to do, apart
    lines = [line for line in lines if line not in hints]
    if status == 2:
        lines = [line for line in lines if not line.startswith("usage:") and not line.startswith(" ")]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("pathshare: "), err
    assert line.rstrip().endswith("."), err
    return "\n".join([line, *hints])  # the sentence, then what to do


# --- hostile files ---------------------------------------------------------------------------------


def _hostile(kind: str, folder: Path) -> Path:
    p = folder / f"hostile-{kind}.json"
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "not-utf8":
        p.write_bytes(b'{"pathshare_agreement": "\xff\xfe\xfa"}')
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 8)
    elif kind == "deep":
        p.write_bytes(DEEP)
    elif kind == "list":
        p.write_bytes(b"[1, 2, 3]")
    elif kind == "huge":
        with p.open("wb") as fh:
            fh.write(b'{"x": "')
            chunk = b"a" * (1 << 20)
            for _ in range(50):
                fh.write(chunk)
            fh.write(b'"}')
    return p


KINDS = ["missing", "folder", "empty", "not-utf8", "binary", "deep", "list", "huge"]

# (vault side, argv before the file, argv after the file)
FILE_COMMANDS = {
    "partner import": ("district", ["partner", "import"], []),
    "agreement new": ("district", ["agreement", "new"], []),
    "agreement import": ("district", ["agreement", "import"], []),
    "agreement amend": ("district", ["agreement", "amend", "{live}"], []),
    "receipt import": ("district", ["receipt", "import"], []),
    "certificate import": ("district", ["certificate", "import"], []),
    "audit verify --bundle": ("district", ["audit", "verify", "--bundle"], []),
    "audit verify --checkpoint": ("district", ["audit", "verify", "--checkpoint"], []),
    "linkage import-key": ("district", ["linkage", "import-key"], []),
    "open": ("college", ["open"], ["--out", "{work}/inbox"]),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("command", list(FILE_COMMANDS))
def test_hostile_input_files(env, run_cli, command, kind):
    side, before, after = FILE_COMMANDS[command]
    hostile = _hostile(kind, env["work"].parent)
    fmt = {"live": env["live"][:8], "work": env["work"]}
    argv = [a.format(**fmt) for a in before] + [str(hostile)] + [a.format(**fmt) for a in after]
    vault = env[side]
    tree = _tree(env["work"])
    audit = _audit(vault)
    code, out, err = run_cli("--vault", vault, *argv)
    line = refused(code, out, err)
    if kind != "folder" or command not in ("open",):
        assert hostile.name in line, line
    assert _tree(env["work"]) == tree
    after_audit = _audit(vault)
    assert after_audit[: len(audit)] == audit and len(after_audit) - len(audit) <= 1, after_audit[
        len(audit) :
    ]


def test_card_file_for_bundle_check_is_hostile(env, run_cli):
    """`audit verify --bundle B --card C` needs no vault: a hostile card file is one sentence too."""
    bundle = env["work"] / "bundle.json"
    code, _out, err = run_cli("--vault", env["district"], "audit", "export", bundle)
    assert code == 0, err
    for kind in ("missing", "folder", "empty", "binary", "deep", "huge"):
        card = _hostile(kind, env["work"].parent)
        line = refused(*run_cli("audit", "verify", "--bundle", bundle, "--card", card))
        assert card.name in line, line


# --- the vault itself --------------------------------------------------------------------------------


def _corrupt_vault(kind: str, env: dict) -> Path:
    p = env["work"] / f"{kind}.vault"
    if kind == "missing":
        return p
    if kind == "folder":
        p.mkdir()
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes(env["district"].read_bytes()[:5000])
    elif kind.startswith("pages"):  # cut at a page boundary: the first page(s) still decrypt
        p.write_bytes(env["district"].read_bytes()[: 4096 * int(kind[5:])])
    elif kind == "tail-lost":
        data = env["district"].read_bytes()
        p.write_bytes(data[: len(data) - 4096 * 3])
    elif kind == "garbage":
        p.write_bytes(bytes(range(256)) * 64)
    elif kind == "text":
        p.write_text("student_code,birth_year\nA1,2008\n", encoding="utf-8")
    return p


VAULT_COMMANDS = [
    ["card", "show"],
    ["partner", "list"],
    ["agreement", "list"],
    ["packages"],
    ["audit", "verify"],
    ["audit", "log"],
]


@pytest.mark.parametrize(
    "kind",
    ["missing", "folder", "empty", "truncated", "pages1", "pages2", "pages6", "tail-lost", "garbage", "text"],
)
@pytest.mark.parametrize("argv", VAULT_COMMANDS, ids=" ".join)
def test_bad_vault_files(env, run_cli, kind, argv):
    vault = _corrupt_vault(kind, env)
    before = vault.read_bytes() if vault.is_file() else None
    tree = _tree(env["work"])
    line = refused(*run_cli("--vault", vault, *argv))
    assert vault.name in line or "vault" in line.lower(), line
    assert _tree(env["work"]) == tree  # no vault created, no -wal/-journal left
    if before is not None:
        assert vault.read_bytes() == before


@pytest.mark.parametrize(
    "argv", [*VAULT_COMMANDS, ["init", "--org", "X", "--kind", "district"]], ids=" ".join
)
def test_wrong_or_empty_passphrase(env, run_cli, monkeypatch, argv):
    before = env["district"].read_bytes()
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "not the passphrase at all")
    line = refused(*run_cli("--vault", env["district"], *argv))
    assert "passphrase" in line.lower(), line
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", "")
    line = refused(*run_cli("--vault", env["district"], *argv))
    assert "PATHSHARE_PASSPHRASE" in line, line
    assert env["district"].read_bytes() == before


# --- outputs -----------------------------------------------------------------------------------------


def _outputs(env: dict) -> dict[str, tuple[str, list[str]]]:
    """Commands writing one output file: (side, argv with {out} where the output goes)."""
    return {
        "card export": ("district", ["card", "export", "{out}"]),
        "identity export-age": ("district", ["identity", "export-age", "{out}", "--yes"]),
        "agreement export": ("district", ["agreement", "export", env["live"][:8], "{out}"]),
        "audit export": ("district", ["audit", "export", "{out}"]),
        "audit checkpoint": ("district", ["audit", "checkpoint", "--out", "{out}"]),
        "audit disclosures": ("district", ["audit", "disclosures", "--out", "{out}"]),
        "audit report": ("district", ["audit", "report", "{out}"]),
        "open": ("college", ["open", str(env["package"]), "--out", "{out}"]),
        "open --receipt": ("college", ["open", str(env["package"]), "--out", "{dir}", "--receipt", "{out}"]),
        "prepare": (
            "district",
            ["prepare", "{extract}", "--agreement", env["live"][:8], "--out", "{out}", "--accept-suggested"],
        ),
        "prepare --report": (
            "district",
            [
                "prepare",
                "{extract}",
                "--agreement",
                env["live"][:8],
                "--out",
                str(env["work"] / "p.age"),
                "--accept-suggested",
                "--report",
                "{out}",
            ],
        ),
    }


OUTPUT_COMMANDS = [
    "card export",
    "identity export-age",
    "agreement export",
    "audit export",
    "audit checkpoint",
    "audit disclosures",
    "audit report",
    "open",
    "open --receipt",
    "prepare",
    "prepare --report",
]


def _extract(folder: Path, rows: int = 60) -> Path:
    src = folder / "extract.csv"
    lines = ["student_id,first_name,birth_date,gender,grade_level"]
    for i in range(rows):
        name = SECRET_CELL if i == 7 else f"Name{i}"
        lines.append(f"S{100000 + i},{name},2008-0{1 + i % 9}-1{i % 10},{'FM'[i % 2]},{9 + i % 4}")
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return src


@pytest.mark.parametrize("where", ["no-folder", "is-folder"])
@pytest.mark.parametrize("command", OUTPUT_COMMANDS)
def test_output_path_refused(env, run_cli, command, where):
    side, argv = _outputs(env)[command]
    extract = _extract(env["work"].parent)
    out = env["work"] / "nowhere" / "out.file" if where == "no-folder" else env["work"] / "a-folder"
    if where == "is-folder":
        out.mkdir()
        (out / "keep.txt").write_text("keep", encoding="utf-8")
    fmt = {"out": out, "dir": env["work"] / "inbox", "extract": extract}
    argv = [a.format(**fmt) for a in argv]
    tree = _tree(env["work"])
    audit = _audit(env[side])
    line = refused(*run_cli("--vault", env[side], *argv))
    assert str(out.name) in line or str(out.parent.name) in line, line
    assert _tree(env["work"]) == tree
    after = _audit(env[side])
    assert after[: len(audit)] == audit and len(after) - len(audit) <= 1, after[len(audit) :]
    assert SECRET_CELL not in line
    # a refusal is never recorded as the thing it refused
    assert not any(a in after[len(audit) :] for a in ("identity.export_age", "card.export", "package.opened"))


def test_existing_outputs(env, run_cli):
    """A secret key file is never overwritten, not even with --force; a public card is replaced only
    with --force (the user said so), and then atomically."""
    key = env["work"] / "age.key"
    key.write_text("someone else's key\n", encoding="utf-8")
    line = refused(*run_cli("--vault", env["district"], "identity", "export-age", key, "--yes"))
    assert key.name in line and "already exists" in line
    assert key.read_text(encoding="utf-8") == "someone else's key\n"
    assert _audit(env["district"])[-1] == "identity.export_age.refused"
    assert "--force" not in line  # no hint at a way to replace it: there is none

    card = env["work"] / "card.json"
    card.write_text("old", encoding="utf-8")
    line = refused(*run_cli("--vault", env["district"], "card", "export", card))
    assert "already exists" in line and "--force" in line and card.read_text(encoding="utf-8") == "old"
    code, _, err = run_cli("--vault", env["district"], "card", "export", card, "--force")
    assert code == 0, err
    assert json.loads(card.read_text(encoding="utf-8"))["pathshare_card"] == 1
    assert not [p for p in env["work"].iterdir() if p.name.endswith(".partial")]


def test_open_refuses_a_non_empty_folder_and_leaves_it_as_it_was(env, run_cli):
    inbox = env["work"] / "inbox"
    inbox.mkdir()
    (inbox / "mine.csv").write_text("x\n", encoding="utf-8")
    line = refused(*run_cli("--vault", env["college"], "open", env["package"], "--out", inbox))
    assert "not empty" in line and inbox.name in line
    assert [p.name for p in inbox.iterdir()] == ["mine.csv"]
    # and the package still opens into a new folder afterwards: the refusal did not mark it as seen
    code, _, err = run_cli("--vault", env["college"], "open", env["package"], "--out", env["work"] / "new")
    assert code == 0, err


def test_destroy_unknown_package_and_log_filters(env, run_cli):
    cert = env["work"] / "cert.json"
    line = refused(*run_cli("--vault", env["college"], "destroy", "no-such-package", "--certificate", cert))
    assert "no-such-package" in line
    assert not cert.exists()
    for flag in ("--since", "--until"):
        line = refused(*run_cli("--vault", env["district"], "audit", "log", flag, "notadate"))
        assert "notadate" in line, line
    line = refused(*run_cli("--vault", env["district"], "audit", "disclosures", "--since", "notadate"))
    assert "notadate" in line, line
    code, _out, err = run_cli("--vault", env["district"], "audit", "log", "--limit", "notanumber")
    assert code == 2 and "Traceback" not in err and "notanumber" in err


# --- prepare ----------------------------------------------------------------------------------------


def _prepare(run_cli, env, extract, agreement=None, *extra):
    return run_cli(
        "--vault",
        env["district"],
        "prepare",
        extract,
        "--agreement",
        agreement or env["live"][:8],
        "--out",
        env["work"] / "p2.age",
        "--accept-suggested",
        *extra,
    )


def _check_prepare_refused(env, run_cli, extract, agreement=None) -> str:
    tree = _tree(env["work"])
    audit = _audit(env["district"])
    line = refused(*_prepare(run_cli, env, extract, agreement))
    assert _tree(env["work"]) == tree
    after = _audit(env["district"])
    # the refusal is on record (a mapping applied before it may be too); nothing else was made
    assert after[: len(audit)] == audit and after[-1] == "package.prepare_refused", after[len(audit) :]
    assert set(after[len(audit) :]) <= {"mapping.apply", "package.prepare_refused"}, after[len(audit) :]
    assert SECRET_CELL not in line
    from agreements import Vault

    with Vault.open(env["district"], PASS) as v:
        assert SECRET_CELL not in json.dumps([e.to_dict() for e in v.audit.entries()])
    return line


def test_prepare_works_with_the_test_extract(env, run_cli):
    """The refusals below are about the bad input, not about this extract."""
    code, out, err = _prepare(run_cli, env, _extract(env["work"].parent))
    assert code == 0, err
    assert (env["work"] / "p2.age").is_file()
    # the names column is left out; the output's empty columns for elements the extract lacks are not
    # counted against the extract (this once said "-12 of the extract's 5 columns")
    assert re.search(r"Not included: [12] of the extract's 5 columns", out), out


@pytest.mark.parametrize(
    "kind", ["missing", "folder", "empty", "binary", "fake-xlsx", "fake-parquet", "header-only", "ragged"]
)
def test_prepare_unreadable_extracts(env, run_cli, kind):
    folder = env["work"].parent
    src = folder / ("extract." + {"fake-xlsx": "xlsx", "fake-parquet": "parquet"}.get(kind, "csv"))
    if kind == "folder":
        src.mkdir()
    elif kind == "empty":
        src.write_bytes(b"")
    elif kind == "binary":
        src.write_bytes(bytes(range(256)) * 40)
    elif kind in ("fake-xlsx", "fake-parquet"):
        src.write_bytes(b"PK\x03\x04 not really " + SECRET_CELL.encode())
    elif kind == "header-only":
        src.write_text("student_id,first_name,birth_date\n", encoding="utf-8")
    elif kind == "ragged":
        src.write_text(f"student_id,first_name\nS1,{SECRET_CELL},extra,more\nS2\n", encoding="utf-8")
    line = _check_prepare_refused(env, run_cli, src)
    assert src.name in line or "extract" in line.lower(), line


@pytest.mark.parametrize("bad_cells", [True, False])
def test_prepare_refusals_never_echo_cell_values(env, run_cli, bad_cells):
    """Values that do not fit their element, or identifying text in a kept column: the refusal (or the
    report) names the column and rows, never the value."""
    src = env["work"].parent / "leaky.csv"
    lines = ["student_id,birth_date,gpa,zip,cte_pathway"]
    for i in range(60):
        bad = bad_cells and i % 7 == 3
        lines.append(
            f"S{100 + i},{SECRET_CELL if bad else '2008-01-0' + str(1 + i % 9)},"
            f"{SECRET_CELL if bad else '3.1'},{SECRET_CELL if bad else '94110'},"
            f"Call {SECRET_CELL} at 555-867-5309"
        )
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tree = _tree(env["work"])
    code, out, err = _prepare(run_cli, env, src)
    assert SECRET_CELL not in err and SECRET_CELL not in out and "555-867" not in err
    if code != 0:
        refused(code, out, err)
        assert _tree(env["work"]) == tree
    from agreements import Vault

    with Vault.open(env["district"], PASS) as v:
        text = json.dumps([e.to_dict() for e in v.audit.entries()])
    assert SECRET_CELL not in text and "555-867" not in text


def _draft_with_id(env, aid: str) -> None:
    from partners_setup import EXAMPLE

    from agreements import Vault, create_agreement, get_agreement

    with Vault.open(env["district"], PASS) as v:
        live = get_agreement(v, env["live"])
        terms = json.loads(EXAMPLE.read_text(encoding="utf-8"))
        reps = [p["authorized_representative"] for p in terms["parties"]]
        terms["parties"] = [
            {"fingerprint": p.fingerprint, "roles": list(p.roles), "authorized_representative": reps[i]}
            for i, p in enumerate(live.all_parties())
        ]
        for key in ("effective", "expires"):
            terms[key] = getattr(live.terms, key).isoformat()
        terms["destruction"]["deadline"] = live.terms.destruction.deadline.isoformat()
        terms["id"] = aid
        create_agreement(v, terms)


def test_prepare_ambiguous_unknown_and_short_agreement_ids(env, run_cli):
    _draft_with_id(env, "abcd0000-0000-4000-8000-000000000001")
    _draft_with_id(env, "abcd0000-0000-4000-8000-000000000002")
    extract = _extract(env["work"].parent)
    line = _check_prepare_refused(env, run_cli, extract, "abcd0000")
    assert "abcd0000" in line and "more than one" in line
    line = _check_prepare_refused(env, run_cli, extract, "abcd0000-0000-4000-8000-000000000001")
    assert "draft" in line
    line = _check_prepare_refused(env, run_cli, extract, "ffffffff")
    assert "ffffffff" in line
    line = _check_prepare_refused(env, run_cli, extract, "ab")
    assert "too short" in line
    for argv in (["agreement", "show", "abcd0000"], ["agreement", "sign", "abcd0000"]):
        assert "more than one" in refused(*run_cli("--vault", env["district"], *argv))


def test_prepare_under_an_expired_agreement(env, run_cli, monkeypatch):
    import agreements._agreement as agreement_module
    import agreements._agreement_store as store_module

    class _Later(date):
        @classmethod
        def today(cls) -> date:  # type: ignore[override]
            return TODAY + timedelta(days=400)  # past the agreement's end, before its destruction deadline

    monkeypatch.setattr(agreement_module, "date", _Later)
    monkeypatch.setattr(store_module, "date", _Later)
    line = _check_prepare_refused(env, run_cli, _extract(env["work"].parent))
    assert "expired" in line, line


@pytest.mark.parametrize(
    "argv", [["audit", "verify"], ["agreement", "list"], ["partner", "list"]], ids=" ".join
)
def test_vault_damaged_inside(env, run_cli, argv):
    """A page damaged in the middle of the file passes the open and fails its check mid-command: still
    one sentence (SQLCipher's page check turns it into a 'malformed' error), never a traceback."""
    data = env["district"].read_bytes()
    pages = len(data) // 4096
    messages = set()
    for page in range(1, pages, max(1, pages // 30)):
        bad = bytearray(data)
        bad[page * 4096 + 2000 : page * 4096 + 2016] = b"\xaa" * 16
        vault = env["work"] / "damaged.vault"
        vault.write_bytes(bytes(bad))
        code, out, err = run_cli("--vault", vault, *argv)
        if code != 0:
            messages.add(refused(code, out, err).replace(str(vault), "V"))
        for suffix in ("-wal", "-shm"):
            Path(f"{vault}{suffix}").unlink(missing_ok=True)
    assert (
        "pathshare: The vault at V is damaged (truncated or corrupted); restore it from your backup copy."
        in messages
    )


def test_prepare_headerless_extract_does_not_echo_its_first_row(env, run_cli):
    """A file without a header row: its first data row is read as column names. Whatever the outcome,
    those values must not reach the message or the audit log."""
    src = env["work"].parent / "headerless.csv"
    rows = [
        f"S{100000 + i},{SECRET_CELL if i == 0 else 'Name' + str(i)},2008-01-0{1 + i % 9}" for i in range(60)
    ]
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = _prepare(run_cli, env, src)
    assert SECRET_CELL not in err and SECRET_CELL not in out
    if code == 0:
        assert re.search(r"Not included: [0-3] of the extract's 3 columns", out), out
    else:
        refused(code, out, err)
    from agreements import Vault

    with Vault.open(env["district"], PASS) as v:
        assert SECRET_CELL not in json.dumps([e.to_dict() for e in v.audit.entries()])


def test_a_file_name_that_is_not_utf8_is_audited_escaped(tmp_path, python_exe):
    """`card export $'card\\xff.json'`: the card is written and the audit entry records the name escaped
    (it once refused the entry after writing the file: exit 1 with the file left behind). A real process:
    its console streams carry such names as Python does (surrogateescape), which capsys cannot."""
    import subprocess

    env = {**os.environ, "PATHSHARE_PASSPHRASE": PASS}
    vault = tmp_path / "v.vault"
    out = os.fsencode(tmp_path) + b"/card\xff.json"

    def cli(*args: str | bytes) -> subprocess.CompletedProcess[bytes]:
        argv = [python_exe, "-m", "desktop.cli", "--vault", str(vault), *args]
        return subprocess.run(
            argv, env=env, capture_output=True, timeout=60, cwd=Path(__file__).parent.parent
        )

    assert cli("init", "--org", "Test District", "--kind", "district").returncode == 0
    done = cli("card", "export", out)
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(out)
    log = cli("audit", "log", "--json")
    assert json.loads(log.stdout)[-1]["details"] == {"file": "card\\udcff.json"}
    assert cli("audit", "verify").returncode == 0


def test_numbers_and_ids_out_of_range(env, run_cli):
    """Numbers past what dates can hold, negative limits and empty ids: a sentence or a plain answer."""
    code, out, err = run_cli(
        "--vault", env["district"], "agreement", "list", "--expiring-days", "99999999999"
    )
    assert code == 0 and env["live"][:8] in out, err  # once an OverflowError
    line = refused(*run_cli("--vault", env["district"], "audit", "log", "--limit", "-3"))
    assert "-3" in line
    cert = env["work"] / "c.json"
    line = refused(*run_cli("--vault", env["college"], "destroy", " ", "--certificate", cert))
    assert "No package id" in line and not cert.exists()


@pytest.mark.parametrize("command", ["receipt", "certificate"])
def test_a_line_break_in_a_partner_file_cannot_forge_a_second_message(env, run_cli, command):
    forged = "x\npathshare: The package was delivered."
    doc = env["work"].parent / "forged.json"
    doc.write_text(
        json.dumps({"package_id": forged, "recipient": "AAAAA-AAAAA-AAAAA-AAAAA"}), encoding="utf-8"
    )
    line = refused(*run_cli("--vault", env["district"], command, "import", doc))
    assert "x\\npathshare: The package was delivered." in line


def test_destroy_certificate_is_never_lost(env, run_cli, monkeypatch):
    """The disk fills while the certificate is written, after the destruction was recorded: one sentence
    saying to run destroy again, which then writes the very certificate the vault holds."""
    import agreements._workflows as workflows

    code, out, err = run_cli(
        "--vault", env["college"], "open", env["package"], "--out", env["work"] / "inbox"
    )
    assert code == 0, err
    package_id = out.split()[2]
    cert = env["work"] / "cert.json"
    real = workflows.write_json_document

    def full_disk(path, doc, **_options):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(workflows, "write_json_document", full_disk)
    line = refused(*run_cli("--vault", env["college"], "destroy", package_id, "--certificate", cert))
    assert "No space left" in line and "again" in line and not cert.exists()
    monkeypatch.setattr(workflows, "write_json_document", real)
    code, _out, err = run_cli("--vault", env["college"], "destroy", package_id, "--certificate", cert)
    assert code == 0, err
    written = json.loads(cert.read_text(encoding="utf-8"))
    assert written["package_id"] == package_id and written["signature"]
    assert _audit(env["college"])[-2:] == ["package.destroyed", "package.certificate_rewritten"]
    # and the provider accepts it
    code, _out, err = run_cli("--vault", env["district"], "certificate", "import", cert)
    assert code == 0, err


@pytest.mark.parametrize("target", ["extract", "report"])
def test_prepare_never_writes_over_its_extract(env, run_cli, target):
    extract = _extract(env["work"])
    before = extract.read_bytes()
    out = extract if target == "extract" else env["work"] / "p3.age"
    report = ["--report", extract] if target == "report" else []
    argv = ["prepare", extract, "--agreement", env["live"][:8], "--out", out, "--accept-suggested", *report]
    line = refused(*run_cli("--vault", env["district"], *argv))
    assert extract.name in line
    assert extract.read_bytes() == before
    assert not (env["work"] / "p3.age").exists()


def test_deid_under_an_agreement_never_writes_over_its_extract(env):
    from agreements import Vault, deidentify_for_agreement
    from deid.errors import OutputError

    extract = _extract(env["work"])
    before = extract.read_bytes()
    with Vault.open(env["district"], PASS) as v, pytest.raises(OutputError, match="over the extract"):
        deidentify_for_agreement(v, extract, env["live"], env["work"] / ".." / "work" / extract.name)
    assert extract.read_bytes() == before


@pytest.mark.parametrize("command", [*OUTPUT_COMMANDS, "destroy"])
def test_no_command_writes_over_the_vault(env, run_cli, command):
    """`pathshare audit report VAULT` once replaced the vault with a PDF: every key and agreement lost."""
    side, argv = _outputs(env).get(command, ("college", ["destroy", "some-id", "--certificate", "{out}"]))
    vault = env[side]
    before = vault.read_bytes()
    fmt = {"out": vault, "dir": env["work"] / "inbox", "extract": _extract(env["work"].parent)}
    line = refused(*run_cli("--vault", vault, *[a.format(**fmt) for a in argv]))
    assert "the vault itself" in line and vault.name in line
    assert vault.read_bytes() == before


def test_open_never_writes_the_receipt_over_the_package(env, run_cli):
    before = env["package"].read_bytes()
    inbox = env["work"] / "inbox"
    argv = ["open", env["package"], "--out", inbox, "--receipt", env["package"]]
    line = refused(*run_cli("--vault", env["college"], *argv))
    assert "over the package" in line
    assert env["package"].read_bytes() == before and not inbox.exists()
