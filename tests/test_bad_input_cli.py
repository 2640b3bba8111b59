"""Bad input through the real ``pathshare`` command line, for the vault, agreement, exchange, audit,
prepare and compliance commands: one sentence on stderr starting "pathshare: ", exit status 1, no
traceback, no file (final, temporary or staging) left behind, nothing changed in the vault but the
audit entry of the refusal, and no cell value of a student file in a message or audit entry."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from partners_setup import PASS, TODAY, Org, execute_agreement

import agreements._vault as vault_module
from agreements._workflows import seal_for_agreement

DEEP = b"[" * 200_000 + b"]" * 200_000
SECRET_CELL = "Zebediah-Quintessa-7731"  # a cell value that must never be echoed


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    monkeypatch.setattr(vault_module, "_TEST_KDF_ITER", 1000)


@pytest.fixture(scope="module")
def _orgs(tmp_path_factory) -> tuple[Path, Path, str, Path]:
    """District and college vaults with an executed agreement, an expired one, and a sealed package."""
    mp = pytest.MonkeyPatch()
    mp.setattr(vault_module, "_TEST_KDF_ITER", 1000)
    base = tmp_path_factory.mktemp("orgs")
    d = Org(base / "district.vault", "Lakeview Unified School District", "district")
    c = Org(base / "college.vault", "Riverbend Community College", "college")
    live = execute_agreement(
        [d, c],
        [["provider"], ["recipient"]],
        base,
        expires=TODAY + timedelta(days=365),
        deadline=TODAY + timedelta(days=455),
    )
    src = base / "extract.csv"
    src.write_text("student_code,birth_year\nA1,2008\nB2,2009\n", encoding="utf-8")
    (base / "outbox").mkdir()
    sealed = seal_for_agreement(
        d.vault, live, [("students.csv", src, 2)], {"rows_out": 2}, base / "outbox" / "p.age"
    )
    d.vault.close()
    c.vault.close()
    mp.undo()
    return base / "district.vault", base / "college.vault", live, sealed.path


@pytest.fixture
def env(_orgs, tmp_path, monkeypatch):
    """Copies of both vaults in tmp_path/work (so each test starts clean), the passphrase in the env."""
    d_path, c_path, live, package = _orgs
    work = tmp_path / "work"
    work.mkdir()
    for p in (d_path, c_path, package):
        shutil.copyfile(p, work / p.name)
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    return {
        "district": work / d_path.name,
        "college": work / c_path.name,
        "live": live,
        "package": work / package.name,
        "work": work,
    }


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _audit(vault: Path) -> list[str]:
    from agreements import Vault

    with Vault.open(vault, PASS) as v:
        return [e.action for e in v.audit.entries()]


def refused(code: int, out: str, err: str, *, status: int = 1) -> str:
    """Assert the CLI refused in PathShare's voice; return the sentence."""
    assert "Traceback" not in err and "Traceback" not in out, err
    assert code == status, (code, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    if status == 2:
        lines = [line for line in lines if not line.startswith("usage:") and not line.startswith(" ")]
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("pathshare: "), err
    assert line.rstrip().endswith("."), err
    return line


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
