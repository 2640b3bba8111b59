"""Attacks on what a release carries (issue 20, items 1–3), each performed against real releases.

A curious analyst — a legitimate recipient — holds the released file and public information (a
directory list of names and grades, which FERPA lets a district publish). These tests do what such an
analyst would do and assert it no longer works.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from agreements import Vault, deidentify_for_agreement, open_received, prepare, run_demo
from deid import (
    Crosswalk,
    deidentify_file,
    load_crosswalk,
    load_policy,
    load_secret,
    normalize_ids,
    release_order,
)

PASS = "correct horse battery staple 42"
PROFILE = "Synthetic SIS export"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:  # released files start with a BOM
        return list(csv.DictReader(fh))


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("attack-demo") / "work"
    assert run_demo(folder, rows=2500, passphrase=PASS, say=lambda _line: None).ok
    return folder


@pytest.fixture(scope="module")
def sorted_extract(demo: Path) -> Path:
    """The demo's extract as a student information system exports it: sorted by grade, then name."""
    rows = _rows(demo / "district-extract.csv")
    rows.sort(key=lambda r: (r["Grade"], r["Last Name"], r["First Name"], r["SSID"]))
    path = demo.parent / "sis-export-sorted.csv"
    _write_rows(path, rows)
    return path


def _agreement_id(vault: Vault) -> str:
    return str(vault.db.execute("SELECT id FROM agreements LIMIT 1").fetchone()[0])


def _vault_crosswalk(vault: Vault) -> Crosswalk:
    secret, blob = vault.db.execute("SELECT secret, crosswalk FROM release_secrets").fetchone()
    return Crosswalk.from_bytes(bytes(blob), bytes(secret))


def _ssid_of_codes(crosswalk: Crosswalk, ssids: list[str]) -> dict[str, str]:
    """record code → SSID, from the sender's own crosswalk (the ground truth the attacker lacks)."""
    codes = crosswalk.codes_for("student_code", normalize_ids(pa.array(ssids, pa.string())))
    assert crosswalk.new_codes == 0, "every SSID of the extract already has its code"
    return dict(zip(codes.to_pylist(), ssids, strict=True))


def _positions(released_ssids: list[str], input_ssids: list[str]) -> np.ndarray:
    """For each input row (in input order), its place in the released file."""
    place = {s: i for i, s in enumerate(released_ssids)}
    assert len(place) == len(released_ssids) == len(input_ssids)
    return np.array([place[s] for s in input_ssids])


def _rank_correlation(positions: np.ndarray) -> float:
    """Spearman's rank correlation between input position and released position (both already
    ranks, so Pearson's r of the two)."""
    return float(np.corrcoef(np.arange(len(positions)), positions)[0, 1])


def directory_list_attack(
    released: list[dict[str, str]], directory: list[tuple[str, str]]
) -> list[str | None]:
    """The attack: the k-th released row of grade g is taken to be the k-th name of grade g on the
    public directory list (``[(grade, student)]`` in the export's order). Returns the guess per row."""
    names: dict[str, list[str]] = defaultdict(list)
    for grade, student in directory:
        names[grade].append(student)
    seen: Counter[str] = Counter()
    guesses: list[str | None] = []
    for row in released:
        grade = row["grade_level"]
        guesses.append(names[grade][seen[grade]] if grade and seen[grade] < len(names[grade]) else None)
        seen[grade] += 1
    return guesses


def test_attack_row_order_directory_list_reidentification(demo: Path, sorted_extract: Path, tmp_path: Path):
    extract = _rows(sorted_extract)
    directory = [(r["Grade"], r["SSID"]) for r in extract]  # name and grade: directory information
    district = Vault.open(demo / "district.vault", PASS)
    try:
        agreement = _agreement_id(district)
        package = prepare(district, sorted_extract, agreement, tmp_path / "release.age", profile=PROFILE).path
        truth = _ssid_of_codes(_vault_crosswalk(district), [r["SSID"] for r in extract])
    finally:
        district.close()
    college = Vault.open(demo / "college.vault", PASS)
    try:
        data = open_received(college, package, tmp_path / "inbox").files[0]  # the kit follows it
    finally:
        college.close()
    released = _rows(data)
    assert len(released) == len(extract) > 1500
    guesses = directory_list_attack(released, directory)
    pairs = zip(guesses, released, strict=True)
    named = [r for g, r in pairs if g is not None and g == truth[r["student_code"]]]
    hits = len(named)
    iep = sum(r["iep"] == "Y" for r in named)
    # Chance: a random order within a grade puts about one student per grade in the guessed place
    # (the expected number of fixed points of a random permutation is 1), so ~4 over four grades.
    # Before the shuffle this attack named every student (1,845 of 1,845 on the demo).
    assert hits <= 15, f"{hits} of {len(released)} released rows re-identified by their order"
    assert iep <= 15


def test_release_order_carries_no_information_about_input_order(tmp_path: Path):
    """Over repeated runs of `deid` on a sorted file: the rank correlation between a row's place in
    the input and in the output stays near 0, no run keeps the input's order, and no two runs agree."""
    n = 2000
    src = tmp_path / "sorted.csv"
    src.write_text("SSID,Grade\n" + "".join(f"{1000000000 + i},{9 + i * 4 // n:02d}\n" for i in range(n)))
    policy = tmp_path / "p.json"
    columns = {"SSID": {"treatment": "record_code", "as": "student_code"}, "Grade": {"treatment": "keep"}}
    policy.write_text(json.dumps({"pathshare_policy": 1, "k": 1, "columns": columns}))
    secret = tmp_path / "s.key"
    ssids = [str(1000000000 + i) for i in range(n)]
    orders, rhos = [], []
    for run in range(6):
        out = tmp_path / f"out{run}.csv"
        deidentify_file(src, load_policy(policy), out, secret_file=secret)
        crosswalk = load_crosswalk(tmp_path / "s.key.crosswalk", load_secret(secret, create=False)[0])
        truth = _ssid_of_codes(crosswalk, ssids)
        positions = _positions([truth[r["student_code"]] for r in _rows(out)], ssids)
        orders.append(positions)
        rhos.append(_rank_correlation(positions))
        # no row is where it was, beyond chance (a random permutation keeps ~1 row in place)
        assert int((positions == np.arange(n)).sum()) <= 10
    # |rho| of a random order has a standard deviation of 1/sqrt(n-1) ≈ 0.022 here.
    assert max(abs(r) for r in rhos) < 0.12, rhos
    assert abs(float(np.mean(rhos))) < 0.06, rhos
    assert len({o.tobytes() for o in orders}) == len(orders)


def test_release_order_is_a_fresh_uniform_permutation():
    """The permutation itself: every row exactly once, a new one each call, and each position
    equally likely for each row (a chi-square check of where row 0 lands over many draws)."""
    first = release_order(1000)
    assert sorted(first.tolist()) == list(range(1000))
    assert not np.array_equal(first, release_order(1000))
    assert release_order(0).tolist() == [] and release_order(1).tolist() == [0]
    lands = np.bincount([int(np.flatnonzero(release_order(10) == 0)[0]) for _ in range(5000)], minlength=10)
    chi2 = float(((lands - 500) ** 2 / 500).sum())
    assert chi2 < 30, lands  # 9 degrees of freedom: p ≈ 0.0005 at 30


def _check_shuffled(released_ssids: list[str], input_ssids: list[str]) -> None:
    positions = _positions(released_ssids, input_ssids)
    assert sorted(positions.tolist()) == list(range(len(input_ssids)))
    assert int((positions == np.arange(len(positions))).sum()) <= 10
    assert abs(_rank_correlation(positions)) < 0.12


def test_every_release_path_shuffles_rows(
    demo: Path, sorted_extract: Path, tmp_path: Path, run_cli, monkeypatch
) -> None:
    """`deid --agreement`, `prepare`, the app's Prepare job and the demo all write released rows in
    a random order (`deid --policy` is covered above)."""
    from desktop.ui.jobs import run_job

    extract = [r["SSID"] for r in _rows(sorted_extract)]
    district = Vault.open(demo / "district.vault", PASS)
    try:
        agreement = _agreement_id(district)
        truth = _ssid_of_codes(_vault_crosswalk(district), extract)
        deidentify_for_agreement(district, sorted_extract, agreement, tmp_path / "mine.csv", profile=PROFILE)
        prepared = prepare(district, sorted_extract, agreement, tmp_path / "lib.age", profile=PROFILE).path
    finally:
        district.close()
    _check_shuffled([truth[r["student_code"]] for r in _rows(tmp_path / "mine.csv")], extract)

    monkeypatch.setenv("PATHSHARE_PASSPHRASE", PASS)
    code, _, err = run_cli(
        "--vault", demo / "district.vault", "deid", sorted_extract, "--agreement", agreement[:8],
        "--out", tmp_path / "cli.csv",
    )  # fmt: skip
    assert code == 0, err
    _check_shuffled([truth[r["student_code"]] for r in _rows(tmp_path / "cli.csv")], extract)

    job = {
        "func": "desktop.ui.jobs:seal_extract",
        "vault_path": str(demo / "district.vault"),
        "passphrase": PASS,
        "kwargs": {
            "path": str(sorted_extract),
            "agreement_id": agreement,
            "profile_name": PROFILE,
            "out": str(tmp_path / "app.age"),
        },
    }
    assert run_job(job, lambda _f, _m: None).rows == len(extract)

    college = Vault.open(demo / "college.vault", PASS)
    try:
        for package, folder in ((prepared, "lib"), (tmp_path / "app.age", "app")):
            data = open_received(college, package, tmp_path / folder).files[0]
            _check_shuffled([truth[r["student_code"]] for r in _rows(data)], extract)
    finally:
        college.close()

    # The demo's own release, against the extract it was made from.
    demo_extract = [r["SSID"] for r in _rows(demo / "district-extract.csv")]
    manifest = json.loads((demo / "inbox" / "manifest.json").read_text(encoding="utf-8"))
    demo_data = demo / "inbox" / "data" / manifest["files"][0]["name"]  # the kit follows it
    _check_shuffled([truth[r["student_code"]] for r in _rows(demo_data)], demo_extract)


def test_write_release_keeps_every_row_in_csv_and_parquet(tmp_path: Path):
    """The shuffled writer loses, repeats and alters nothing, over several write batches."""
    import pyarrow.parquet as pq

    from deid import write_release
    from deid._io import _WRITE_BATCH

    n = 2 * _WRITE_BATCH + 17
    table = pa.table({"id": pa.array([str(i) for i in range(n)]), "note": pa.array(["=1+1"] * n)})
    write_release(table, tmp_path / "out.parquet")
    got = pq.read_table(tmp_path / "out.parquet").column("id").to_pylist()
    assert sorted(got, key=int) == [str(i) for i in range(n)] and got != sorted(got, key=int)
    write_release(table, tmp_path / "out.csv")
    rows = _rows(tmp_path / "out.csv")
    assert sorted(int(r["id"]) for r in rows) == list(range(n))
    assert {r["note"] for r in rows} == {"'=1+1"}  # formulas still neutralized in every batch


# ------------------------------------------------------------------ item 2: the link-token cell's shape


def _token_release(table: pa.Table, *, dummy_secret: bytes | None) -> pa.Table:
    """A release with link tokens, sex and birth year, as a provider under a consortium agreement makes
    it (``dummy_secret``: the provider's own release secret; None: a standalone `deid --policy` run)."""
    from deid import Policy, deidentify

    rule = {
        "treatment": "link_tokens",
        "as": "link_tokens",
        "from": ["First Name", "Middle Name", "Last Name", "Birth Date", "Gender"],
    }
    policy = Policy.from_dict({
        "pathshare_policy": 1, "k": 1, "drop_unlisted": True,
        "columns": {
            "SSID": rule,
            "Gender": {"treatment": "keep", "as": "sex"},
            "Birth Date": {"treatment": "generalize_date", "to": "year", "as": "birth_year"},
        },
    })  # fmt: skip
    out, _ = deidentify(table, policy, secret=b"consortium linkage secret, 32 by", dummy_secret=dummy_secret)
    return out


def _count_signatures(cells: list[list[str]]) -> list[tuple[int, ...]]:
    """Per row, how many tokens of each kind its cell holds (what the attacker counts)."""
    from deid._tokenkinds import KINDS

    return [tuple(sum(t[0] == k for t in cell) for k in KINDS) for cell in cells]


def _unique_share(keys: list[tuple]) -> float:
    """Share of rows whose key no other row has (singled out)."""
    seen = Counter(keys)
    return sum(seen[k] == 1 for k in keys) / len(keys)


def test_attack_link_token_counts_single_out_students() -> None:
    """The attack: count each kind's tokens in a row's cell (surname length, middle name, birth day ≤
    12 showed through) and add sex and birth year. Every cell now has the same counts, so the tokens
    single out nobody that sex and birth year alone do not."""
    from deid.synth import generate

    table = generate("k12", 6000, seed=3).table
    out = _token_release(table, dummy_secret=b"the district's own release secret")
    cells = [c.split() for c in out.column("link_tokens").to_pylist()]
    counts = _count_signatures(cells)
    assert len(set(counts)) == 1, "every row's cell has the same number of tokens of each kind"
    demo = list(zip(out.column("sex").to_pylist(), out.column("birth_year").to_pylist(), strict=True))
    with_tokens = [(*c, *d) for c, d in zip(counts, demo, strict=True)]
    assert _unique_share(with_tokens) == _unique_share(demo)


def test_attack_two_releases_intersected_recover_real_tokens() -> None:
    """A recipient who gets two releases of the same students (fall and spring) links them and keeps
    the tokens that recur: with fresh random dummies those are exactly the real ones, and their counts
    single students out again. Under an agreement the dummies are keyed by the provider's own release
    secret, so a record's cell is the same in both releases and the intersection keeps everything."""
    from deid.synth import generate

    table = generate("k12", 6000, seed=3).table
    demo = list(zip(table.column("Gender").to_pylist(), table.column("Birth Date").to_pylist(), strict=True))
    years = [(sex, (birth or "")[-4:]) for sex, birth in demo]

    def intersected(dummy_secret: bytes | None) -> list[list[str]]:
        fall = _token_release(table, dummy_secret=dummy_secret).column("link_tokens").to_pylist()
        spring = _token_release(table, dummy_secret=dummy_secret).column("link_tokens").to_pylist()
        # rows come back in input order from the engine: row i of each release is the same student
        return [sorted(set(a.split()) & set(b.split())) for a, b in zip(fall, spring, strict=True)]

    own = intersected(b"the district's own release secret")
    assert len(set(_count_signatures(own))) == 1
    assert _unique_share([(*c, *y) for c, y in zip(_count_signatures(own), years, strict=True)]) == (
        _unique_share(years)
    )
    # The measurement is live: the real tokens' counts (what cells showed before, and what two
    # standalone releases with random dummies still give) single out far more students.
    real = _count_signatures(intersected(None))
    assert len(set(real)) > 50
    assert _unique_share([(*c, *y) for c, y in zip(real, years, strict=True)]) > 3 * _unique_share(years)


def test_agreement_releases_key_dummies_with_the_providers_own_secret(
    demo: Path, tmp_path: Path, monkeypatch
) -> None:
    """prepare / deid --agreement hand the engine the agreement's own release secret (never a shared
    one) for link-token dummies: what makes a record's dummies repeat across this provider's releases."""
    import deid
    import deid._engine as engine

    seen: list[bytes | None] = []
    real = engine.deidentify

    def spy(*args, **kwargs):
        seen.append(kwargs.get("dummy_secret"))
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "deidentify", spy)
    monkeypatch.setattr(deid, "deidentify", spy, raising=False)
    district = Vault.open(demo / "district.vault", PASS)
    try:
        agreement = _agreement_id(district)
        deidentify_for_agreement(
            district, demo / "district-extract.csv", agreement, tmp_path / "mine.csv", profile=PROFILE
        )
        (own,) = district.db.execute(
            "SELECT secret FROM release_secrets WHERE agreement_id = ?", (agreement,)
        ).fetchone()
    finally:
        district.close()
    assert seen == [bytes(own)] and len(bytes(own)) == 32


# ---------------------------------------------------- item 3: nothing about the sender's machine leaves

USER_LIKE = "zqxjsmithqz"  # a distinctive user name, as a home folder and in the environment
FOLDER_LIKE = "Quarterly Zorblax Exports"
FILE_LIKE = "Vorpal_Roster_Export_QWERTY_2026"


def test_attack_package_metadata_names_the_senders_machine(
    demo: Path, tmp_path: Path, monkeypatch
) -> None:
    """Seal a package from a file with a distinctive name, in a distinctive folder, under a distinctive
    user name (home folder, environment, working folder); open it; grep every byte of the package,
    of its decrypted tar (headers included), of every member and of every file `open` writes."""
    import io
    import os
    import shutil
    import socket
    import tarfile

    import pyrage

    from agreements import age_identity

    folder = tmp_path / "home" / USER_LIKE / FOLDER_LIKE
    folder.mkdir(parents=True)
    src = folder / f"{FILE_LIKE}.csv"
    shutil.copyfile(demo / "district-extract.csv", src)
    for var in ("USER", "LOGNAME", "USERNAME"):
        monkeypatch.setenv(var, USER_LIKE)
    monkeypatch.setenv("HOME", str(tmp_path / "home" / USER_LIKE))
    monkeypatch.chdir(folder)
    district = Vault.open(demo / "district.vault", PASS)
    try:
        package = prepare(district, src, _agreement_id(district), folder / "out.age", profile=PROFILE).path
    finally:
        district.close()
    college = Vault.open(demo / "college.vault", PASS)
    try:
        plain = pyrage.decrypt(package.read_bytes(), [age_identity(college)])
        opened = open_received(college, package, tmp_path / "inbox")
    finally:
        college.close()

    secrets = [USER_LIKE, FOLDER_LIKE, FILE_LIKE, "Zorblax", "Vorpal", "QWERTY", str(tmp_path)]
    machine = [socket.gethostname(), os.path.expanduser("~"), str(demo)]
    blobs: dict[str, bytes] = {"the package": package.read_bytes(), "the tar": plain}
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        members = tar.getmembers()
        assert {m.name for m in members} >= {"report.json", "manifest.json", "manifest.sig"}
        for m in members:
            assert (m.uname, m.gname, m.uid, m.gid) == ("", "", 0, 0), m.name
            data = tar.extractfile(m)
            blobs[m.name] = data.read() if data else b""
    for path in (tmp_path / "inbox").rglob("*"):
        if path.is_file():
            blobs[f"opened {path.name}"] = path.read_bytes()
    for where, blob in blobs.items():
        text = blob.decode("utf-8", "replace").lower()
        for s in secrets + [m for m in machine if len(m) >= 6]:
            assert s.lower() not in text, f"{s!r} found in {where}"
    report = json.loads(blobs["report.json"])
    assert report["timings"] == {} and report["input_encoding"] is None and report["input_format"] is None
    assert opened.report["input"] == report["input"] == "the extract"


def test_attack_two_standalone_releases_intersected(tmp_path: Path, run_cli) -> None:
    """The same intersection against `deid --policy` (no vault): two releases made with one secret file
    give each record the same cell (the padding key file made beside it on first use keys the dummies),
    so recurring tokens are whole cells; a partner holding a copy of the secret file on its own machine
    makes its own padding key, and its cells share only real tokens with ours."""
    from deid.synth import generate

    table = generate("k12", 1500, seed=4).table
    src = tmp_path / "extract.csv"
    names = ["First Name", "Middle Name", "Last Name", "Birth Date", "Gender"]
    pcsv.write_csv(table.select(["SSID", *names]), src)
    rule = {"treatment": "link_tokens", "as": "link_tokens", "from": names}
    policy = tmp_path / "p.json"
    doc = {"pathshare_policy": 1, "k": 1, "drop_unlisted": True, "columns": {"SSID": rule}}
    policy.write_text(json.dumps(doc))

    def release(folder: str, name: str) -> list[str]:
        (tmp_path / folder).mkdir(exist_ok=True)
        secret = tmp_path / folder / "consortium.secret"
        secret.write_text("cd" * 32 + "\n")
        out = tmp_path / folder / name
        code, _, err = run_cli("deid", src, "--policy", policy, "--out", out, "--secret-file", secret)
        assert code == 0, err
        return [r["link_tokens"] for r in _rows(out)]

    # a refused run leaves no padding key behind (nor a secret file it made)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "columns": {"SSID": {**rule, "from": ["Nickname", *names[1:]]}}}))
    (tmp_path / "refused").mkdir()
    secret = tmp_path / "refused" / "new.secret"
    code, _, _ = run_cli("deid", src, "--policy", bad, "--out", tmp_path / "x.csv", "--secret-file", secret)
    assert code == 1 and list((tmp_path / "refused").iterdir()) == []

    fall, spring = release("district", "fall.csv"), release("district", "spring.csv")
    assert fall != spring and sorted(fall) == sorted(spring)  # new row order, the same cells
    assert len(set(_count_signatures([c.split() for c in fall]))) == 1
    partner = release("college", "college.csv")
    ours = {t for c in fall for t in c.split()}
    shared = [set(c.split()) & ours for c in partner]
    assert not set(fall) & set(partner)  # no whole cell in common: the padding differs
    assert 0 < sum(map(len, shared)) < sum(len(c.split()) for c in partner) // 2
