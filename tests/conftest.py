"""Suite-wide fixtures. Network access is blocked for the whole suite by pytest-socket
(``--disable-socket --allow-unix-socket`` in pyproject's addopts); a test below proves it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Nothing in the suite may reach the network: also make libraries that honour these refuse.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TLDEXTRACT_CACHE", str(Path(__file__).parent / ".no-tldextract-cache"))

ROOT = Path(__file__).resolve().parent.parent

# Vault keys: the suite derives them with 1,000 PBKDF2 iterations instead of SQLCipher's 256,000
# (0.2 s per open and 0.6 s per new vault on this machine, hundreds of times over), in this process and —
# through tests/kdfhook/sitecustomize.py on PYTHONPATH — in every Python process it starts (the app's
# worker, CLI children), so a vault made in one opens in the other. Tests about the key derivation
# itself set ``_TEST_KDF_ITER`` back to None for their module (tests/test_vault.py).
SUITE_KDF_ITER = 1000
os.environ["PATHSHARE_SUITE_KDF_ITER"] = str(SUITE_KDF_ITER)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(Path(__file__).parent / "kdfhook"), *filter(None, [os.environ.get("PYTHONPATH")])]
)
sys.path.insert(0, str(Path(__file__).parent / "kdfhook"))
import sitecustomize  # noqa: E402,F401  (this process: the same hook, before anything imports the vault)

sys.path.remove(str(Path(__file__).parent / "kdfhook"))
if "agreements._vault" in sys.modules:  # loaded before the hook could see it
    sys.modules["agreements._vault"]._TEST_KDF_ITER = SUITE_KDF_ITER


@pytest.fixture
def run_cli(capsys):
    """Run ``pathshare`` in-process; return (exit status, stdout, stderr)."""
    from desktop.cli import main

    def _run(*args: str) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors and --version
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def python_exe() -> str:
    return sys.executable


@pytest.fixture(scope="session")
def _executed_pair(tmp_path_factory) -> tuple[Path, Path, str]:
    """District and college vaults that trust each other and hold one executed agreement (built once)."""
    from partners_setup import Org, execute_agreement

    base = tmp_path_factory.mktemp("orgs")
    d = Org(base / "district.vault", "Lakeview Unified School District", "district")
    c = Org(base / "college.vault", "Riverbend Community College", "college")
    agreement_id = execute_agreement([d, c], [["provider"], ["recipient"]], base)
    d.vault.close()
    c.vault.close()
    return base / "district.vault", base / "college.vault", agreement_id


@pytest.fixture
def sides(_executed_pair, tmp_path):
    """Fresh copies of the executed pair for one test: (district Org, college Org, agreement id)."""
    import shutil

    from partners_setup import Org

    d_path, c_path, agreement_id = _executed_pair
    orgs = []
    for path in (d_path, c_path):
        shutil.copyfile(path, tmp_path / path.name)
        head = path.with_name(path.name + ".head")  # the signed head file beside the vault goes along
        if head.exists():
            shutil.copyfile(head, tmp_path / head.name)
        orgs.append(Org(tmp_path / path.name, new=False))
    yield orgs[0], orgs[1], agreement_id
    for org in orgs:
        org.vault.close()


@pytest.fixture(scope="session")
def age_cli() -> str:
    """The stock ``age`` CLI (interop tests): a failure in CI, which installs it; a skip elsewhere."""
    import shutil

    path = shutil.which("age")
    if path is None:
        message = "the age CLI is not on PATH (install the apt package 'age')"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def _no_unanswered_dialogs(request, monkeypatch):
    """A modal question nobody answers would hang the suite until CI's timeout: fail the test at once.

    Tests that expect a question answer it themselves (their own monkeypatch runs later and wins)."""
    if "qtbot" not in request.fixturenames:
        return
    from PySide6.QtWidgets import QDialog, QMessageBox

    def unanswered(*_args, **_kwargs):
        raise AssertionError("the app opened a modal dialog that this test does not answer")

    for name in ("question", "warning", "information", "critical"):
        monkeypatch.setattr(QMessageBox, name, unanswered)
    monkeypatch.setattr(QMessageBox, "exec", unanswered)
    monkeypatch.setattr(QDialog, "exec", unanswered)


CLI_VAULT_PASSPHRASE = "tidal mango quarry lantern"


@pytest.fixture(scope="session")
def _cli_vault_file(tmp_path_factory) -> Path:
    from partners_setup import cheap_kdf

    from agreements import Vault

    path = tmp_path_factory.mktemp("cli-vault") / "analyst.vault"
    with cheap_kdf(), Vault.create(path, CLI_VAULT_PASSPHRASE):
        pass
    return path


@pytest.fixture
def cli_vault(_cli_vault_file, monkeypatch) -> Path:
    """A vault the in-process CLI uses (PATHSHARE_VAULT, PATHSHARE_PASSPHRASE), outside the test's
    tmp_path so listings of it stay exact: for commands such as ``link`` that audit in the vault."""
    from partners_setup import cheap_kdf

    monkeypatch.setenv("PATHSHARE_VAULT", str(_cli_vault_file))
    monkeypatch.setenv("PATHSHARE_PASSPHRASE", CLI_VAULT_PASSPHRASE)
    with cheap_kdf():
        yield _cli_vault_file
