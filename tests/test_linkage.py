"""Link tokens and the matcher (deid/_linknorm.py, _linktokens.py, _linkmatch.py): normalization,
nickname equivalence, typo tolerance, the keyed tokens, the match rule and one-to-one assignment, the
treatment, the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from deid import Policy, deidentify
from deid._linkmatch import link_tables, person_groups
from deid._linknorm import first_name_keys, letters, surname_parts
from deid._linktokens import SLOTS, LinkFields, link_tokens
from deid._secrets import derive_key
from deid._tokenkinds import KINDS, parse_tokens
from deid.errors import InputError, PolicyError

KEY = derive_key(b"k" * 32, "link_tokens")
FIELDS = LinkFields("ssid", "first", "middle", "last", "birth", "sex")
COLS = ("ssid", "first", "middle", "last", "birth", "sex")


def table(*rows: tuple[str | None, ...]) -> pa.Table:
    return pa.table({c: pa.array([r[i] for r in rows], pa.string()) for i, c in enumerate(COLS)})


def kinds_shared(a: pa.Table, b: pa.Table, key: bytes = KEY) -> set[str]:
    ta, tb = link_tokens(a, FIELDS, key), link_tokens(b, FIELDS, key)
    _, ka, va = parse_tokens(ta)
    _, _, vb = parse_tokens(tb)
    common = set(va.tolist()) & set(vb.tolist())
    return {KINDS[k] for k, v in zip(ka.tolist(), va.tolist(), strict=True) if v in common}


def test_names_fold_case_accents_punctuation_and_spacing() -> None:
    got = letters(pa.array(["  María-José O'Neil ", "MARIA JOSE ONEIL", "Nguyễn", "Łukasz", "", None]))
    assert got.to_pylist() == ["MARIAJOSEONEIL", "MARIAJOSEONEIL", "NGUYEN", "LUKASZ", None, None]


def test_compound_surnames_give_their_parts_and_skip_particles() -> None:
    whole, first, last = surname_parts(pa.array(["García-López", "De La Cruz Ortiz", "Smith", "de la Rosa"]))
    assert whole.to_pylist() == ["GARCIALOPEZ", "DELACRUZORTIZ", "SMITH", "DELAROSA"]
    assert first.to_pylist() == ["GARCIA", "CRUZ", None, "ROSA"]
    assert last.to_pylist() == ["LOPEZ", "ORTIZ", None, None]


def test_nicknames_share_a_canonical_name_and_a_name_in_two_groups_carries_both() -> None:
    slots = [s.to_pylist() for s in first_name_keys(pa.array(["Bob", "Robert", "Bobby", "Alex", "Zyx"]))]
    assert slots[0][:3] == ["ROBERT"] * 3
    alex = {slots[0][3], slots[1][3], slots[2][3]}
    assert {"ALEXANDER", "ALEJANDRO"} <= alex
    assert slots[0][4] == "ZYX" and slots[1][4] is None


def test_same_student_written_differently_gets_the_same_tokens() -> None:
    a = table(("1234567890", "José", "Luis", "García-López", "03/04/2008", "M"))
    b = table(("12345 67890", "JOSE", "LUIS", "garcia lopez", "2008-03-04", "m"))
    ta, tb = link_tokens(a, FIELDS, KEY), link_tokens(b, FIELDS, KEY)
    # every real token agrees; the dummies (fresh random without a dummy key) never do
    shared = set(ta[0].as_py().split()) & set(tb[0].as_py().split())
    assert 20 <= len(shared) < len(ta[0].as_py().split())
    # with the provider's dummy key, the same record gets the same cell, dummies and all
    mine = derive_key(b"provider's own secret", "link_tokens/dummy")
    assert link_tokens(a, FIELDS, KEY, dummy_key=mine).to_pylist() == link_tokens(
        b, FIELDS, KEY, dummy_key=mine
    ).to_pylist()
    assert "JOSE" not in ta[0].as_py().upper() and "2008" not in ta[0].as_py()
    # Another secret: no token in common.
    other = link_tokens(b, FIELDS, derive_key(b"other secret 1234", "link_tokens"))
    assert not set(ta[0].as_py().split()) & set(other[0].as_py().split())


def test_each_kind_survives_the_noise_it_is_for() -> None:
    base = ("", "Robert", "James", "Granados", "04/14/2008", "M")
    assert {"A", "C", "E", "G", "P", "Q", "M", "W"} <= kinds_shared(table(base), table(base))
    nick = ("", "Bob", "James", "Granados", "04/14/2008", "M")
    assert {"A", "E", "G"} <= kinds_shared(table(base), table(nick))
    typo_last = ("", "Robert", "James", "Garnados", "04/14/2008", "M")
    assert kinds_shared(table(base), table(typo_last)) >= {"E", "P"}
    typo_first = ("", "Robret", "James", "Granados", "04/14/2008", "M")
    assert kinds_shared(table(base), table(typo_first)) >= {"C", "Q"}
    swapped = ("", "Robert", "James", "Granados", "14/04/2008", "M")  # unreadable as M/D → no date
    assert "B" not in kinds_shared(table(base), table(swapped))
    swap = ("", "Robert", "", "Granados", "2008-04-03", "M")
    assert kinds_shared(table(("", "Robert", "", "Granados", "2008-03-04", "M")), table(swap)) == {"B", "G"}
    by_middle = ("", "James", "Robert", "Granados", "04/14/2008", "M")
    assert {"W", "M", "C"} <= kinds_shared(table(base), table(by_middle))
    half = ("", "Robert", "James", "Granados", "04/14/2008", "M")
    assert "A" in kinds_shared(
        table(("", "Robert", "James", "Granados Ruiz", "04/14/2008", "M")), table(half)
    )


def _tokens(*rows: tuple[str | None, ...]) -> pa.ChunkedArray:
    return link_tokens(table(*rows), FIELDS, KEY)


def test_match_rule_one_to_one_and_ties() -> None:
    a = _tokens(
        ("1111111111", "Ana", "", "Soto", "2008-01-20", "F"),  # 0: same ID as b0, names differ
        ("", "Luis", "", "Vega", "2008-02-21", "M"),  # 1: exact match of b1 (no IDs)
        ("", "Mia", "", "Ortiz", "2008-05-22", "F"),  # 2: twin sister of b2: only surname/date/sex
        # 3: same names, birth date and sex as b3, another ID: two students (the guard N), not linked
        ("2222222222", "Eva", "", "Ruiz", "2008-06-23", "F"),
        ("", "Tom", "", "Lara", "2008-07-24", "M"),  # 4 and 5: one student's two enrollments: both link b4
        ("", "Tom", "", "Lara", "2008-07-24", "M"),
        ("", "Tim", "", "Mora", "2009-08-25", "M"),  # 6 and 7: twins, each one edit from b5: a tie
        ("", "Tam", "", "Mora", "2009-08-25", "M"),
        # 8: same names as b6, which has no ID: linked on the names (a missing ID is no conflict)
        ("4444444444", "Ivy", "", "Cruz", "2008-09-26", "F"),
    )
    b = _tokens(
        ("1111111111", "Anna", "", "Sotto", "2008-01-21", "F"),
        ("", "Luis", "", "Vega", "2008-02-21", "M"),
        ("", "Zoe", "", "Ortiz", "2008-05-22", "F"),
        ("3333333333", "Eva", "", "Ruiz", "2008-06-23", "F"),
        ("", "Tom", "", "Lara", "2008-07-24", "M"),
        ("", "Tem", "", "Mora", "2009-08-25", "M"),
        ("", "Ivy", "", "Cruz", "2008-09-26", "F"),
    )
    links = link_tables(a, b)
    assert links.pairs() == {(0, 0), (1, 1), (4, 4), (5, 4), (8, 6)}
    methods = dict(zip(links.row_a.tolist(), links.method.tolist(), strict=True))
    assert methods == {0: "id", 1: "derived", 4: "derived", 5: "derived", 8: "derived"}
    r = links.report
    assert r.kept_apart == 1  # a3 and b3
    assert r.left_ambiguous == 2 and r.linked == 5 and (r.students_a, r.students_b) == (8, 7)
    assert r.linked_by == {"id": 1, "derived": 4}
    assert r.rate_b == round(4 / 7, 4) and r.rate_a == round(5 / 9, 4)
    assert link_tables(a, b, method="id").pairs() == {(0, 0)}


def test_same_name_birth_date_and_sex_with_two_different_ids_are_two_students(tmp_path: Path) -> None:
    """The guards N and S: rows that agree on first name (or surname), birth date and sex but carry
    two different IDs are two students — not grouped as one student's enrollments, not linked across
    files, on either engine; when one of them has no ID they are still one (a missing ID is no
    conflict)."""
    rows = (
        ("2222222222", "Eva", "", "Ruiz", "2008-06-23", "F"),
        ("3333333333", "Eva", "", "Ruiz", "2008-06-23", "F"),
        ("", "Eva", "", "Ruiz", "2008-06-23", "F"),
    )
    assert person_groups(parse_tokens(_tokens(*rows[:2])), 2).tolist() == [0, 1]
    assert person_groups(parse_tokens(_tokens(rows[0], rows[2])), 2).tolist() == [0, 0]
    a, b = _tokens(rows[0]), _tokens(rows[1])
    for engine in ("memory", "duckdb"):
        links = link_tables(a, b, engine=engine, spill_dir=tmp_path)
        assert links.pairs() == set() and links.report.kept_apart == 1 and links.report.candidate_pairs == 1
        assert link_tables(a, _tokens(rows[2]), engine=engine, spill_dir=tmp_path).pairs() == {(0, 0)}
    # files made before the guards (no N or S tokens) link as they did: on the names
    old = [" ".join(t for t in c[0].as_py().split() if t[0] not in "NS") for c in (a, b)]
    assert link_tables(pa.array([old[0]]), pa.array([old[1]])).pairs() == {(0, 0)}


def test_agreeing_middle_initials_count_for_a_match() -> None:
    a = _tokens(("", "Daniel", "Sergio", "Perez", "2008-09-20", "M"))
    b = _tokens(("", "Daniel", "Miguel", "Perez", "2008-09-20", "M"))
    c = _tokens(("", "Daniel", "S", "Perez", "2008-09-20", "M"))
    assert link_tables(a, b).score[0] < link_tables(a, c).score[0]


def test_bad_token_cells_are_refused_with_the_row() -> None:
    good = _tokens(("", "Luis", "", "Vega", "2008-02-21", "M"))
    bad = pa.chunked_array([pa.array([good[0].as_py(), "Luis Vega"], pa.string())])
    with pytest.raises(InputError, match="row 3 does not hold link tokens"):
        link_tables(good, bad, names=("a.csv", "b.csv"))
    with pytest.raises(InputError, match="method"):
        link_tables(good, good, method="fuzzy")


def test_the_treatment_in_a_policy() -> None:
    rule = {
        "treatment": "link_tokens",
        "as": "link_tokens",
        "from": ["first", "middle", "last", "birth", "sex"],
        "baseline": True,
    }
    policy = Policy.from_dict({"pathshare_policy": 1, "k": 1, "columns": {"ssid": rule}})
    src = table(("1234567890", "Ana", "", "Soto", "2008-01-20", "F"), ("", "Luis", "", "Vega", "", "M"))
    out, report = deidentify(src, policy, secret=b"s" * 32)
    assert out.column_names == ["link_tokens"]
    cells = out.column("link_tokens").to_pylist()
    assert "K" in {t[0] for t in cells[0].split()}
    # one shape for every row, even one with nothing to link on (no ID, no birth date): dummies only
    assert len(cells[0].split()) == len(cells[1].split()) == sum(SLOTS.values())
    assert any("link to nothing" in n for n in report.notes)
    again = link_tokens(src.slice(0, 1), FIELDS, derive_key(b"s" * 32, "link_tokens"), baseline=True)
    assert len(set(cells[0].split()) & set(again[0].as_py().split())) >= 12  # the real ones
    second, _ = deidentify(src, policy, secret=b"s" * 32)  # another release of the same rows
    links = link_tables(out.column("link_tokens"), second.column("link_tokens"))
    assert links.pairs() == {(0, 0)}  # the dummy-only row links to nothing, not even its own record
    for bad, match in (
        ({"from": ["first", "last"]}, "needs the first name, last name and birth date"),
        ({"from": ["first", "last", "birth"], "fields": ["first", "last", "zip"]}, "'fields'"),
        ({"from": "first"}, "must list input column names"),
        ({"from": ["first", "last", "birth"], "id": "yes"}, "true or false"),
    ):
        with pytest.raises(PolicyError, match=match):
            Policy.from_dict(
                {"pathshare_policy": 1, "columns": {"ssid": {"treatment": "link_tokens", **bad}}}
            )
    with pytest.raises(PolicyError, match="secret"):
        deidentify(src, policy)


def _write(path: Path, tokens: pa.ChunkedArray, extra: list[str]) -> Path:
    pcsv.write_csv(pa.table({"grade": pa.array(extra), "link_tokens": tokens}), path)
    return path


def test_cli_link_writes_joined_rows_and_a_report_without_identities(
    run_cli, tmp_path: Path, cli_vault: Path
) -> None:
    a = _write(
        tmp_path / "a.csv",
        _tokens(
            ("1111111111", "Ana", "", "Soto", "2008-01-20", "F"), ("", "Luis", "", "Vega", "2008-02-21", "M")
        ),
        ["11", "12"],
    )
    b = _write(
        tmp_path / "b.csv",
        _tokens(
            ("", "Luiz", "", "Vega", "2008-02-21", "M"),
            ("1111111111", "Ann", "", "Soto", "2008-01-20", "F"),
            ("", "Kim", "", "Lee", "2001-01-01", "F"),
        ),
        ["A", "B", "C"],
    )
    code, out, err = run_cli("link", a, b, "--out", tmp_path / "linked.csv", "--report", tmp_path / "r.json")
    assert code == 0, err
    assert "linked 2 rows (1 by state ID, 1 by derived keys)" in out
    linked = pcsv.read_csv(
        tmp_path / "linked.csv",
        convert_options=pcsv.ConvertOptions(
            column_types={c: pa.string() for c in ("a_row", "b_row", "grade", "grade_b")}
        ),
    ).to_pylist()
    assert [(r["a_row"], r["b_row"], r["link_method"], r["grade"], r["grade_b"]) for r in linked] == [
        ("1", "2", "id", "11", "B"),
        ("2", "1", "derived", "12", "A"),
    ]
    assert "link_tokens" not in linked[0]
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["linked"] == 2 and report["rows_b"] == 3 and report["linked_by"] == {"id": 1, "derived": 1}
    assert "Soto" not in (tmp_path / "r.json").read_text()
    # The vault's audit log says what was linked, how, and how many: names of files and counts only.
    from agreements import Vault

    passphrase = os.environ["PATHSHARE_PASSPHRASE"]  # set by the cli_vault fixture
    with Vault.open(cli_vault, passphrase) as vault:
        entry = vault.audit.entries()[-1]
        count = len(vault.audit)
    assert entry.action == "linkage.linked" and entry.agreement is None
    assert entry.details == {
        "file_a": "a.csv", "file_b": "b.csv", "packages": [], "agreements": [], "method": "combined",
        "rows_a": 2, "rows_b": 3, "linked": 2, "linked_by": {"id": 1, "derived": 1}, "output": "linked.csv",
    }  # fmt: skip

    (tmp_path / "bad.csv").write_text("grade,link_tokens\n11,Ana Soto\n", encoding="utf-8")
    code, out, err = run_cli("link", a, tmp_path / "bad.csv", "--out", tmp_path / "x.csv")
    assert code == 1 and "bad.csv: row 2 does not hold link tokens" in err and "Traceback" not in err
    assert not (tmp_path / "x.csv").exists()
    (tmp_path / "none.csv").write_text("grade\n11\n", encoding="utf-8")
    code, _, err = run_cli("link", a, tmp_path / "none.csv", "--out", tmp_path / "x.csv")
    assert code == 1 and "no link-tokens column" in err and not (tmp_path / "x.csv").exists()
    # the hint names the options that exist (--column-a/--column-b), added by the CLI to the library's words
    assert "hint: De-identify it under an agreement that shares link tokens" in err
    assert "--column-b NAME" in err
    with Vault.open(cli_vault, passphrase) as vault:
        assert len(vault.audit) == count  # a refused link wrote nothing, so it records nothing


def test_matching_is_vectorized_at_scale() -> None:
    """Not a benchmark: 10,000 rows link one-to-one back to a shuffled copy of themselves."""
    rng = np.random.default_rng(3)
    n = 10_000
    first = rng.choice(["Ana", "Luis", "Mia", "Tom", "Eva", "Juan", "Rosa", "Omar"], n)
    letters_ = np.array(list("abcdefghijklmnoprstuvz"))
    last = np.array(["".join(w) for w in letters_[rng.integers(0, len(letters_), (n, 6))]])
    birth = (np.datetime64("2006-01-01") + rng.integers(0, 1500, n)).astype(str)
    t = pa.table(
        {
            "ssid": [""] * n,
            "first": first,
            "middle": [""] * n,
            "last": last,
            "birth": birth,
            "sex": rng.choice(["F", "M"], n),
        }
    )
    perm = rng.permutation(n)
    links = link_tables(link_tokens(t, FIELDS, KEY), link_tokens(t.take(perm), FIELDS, KEY))
    found = dict(zip(links.row_b.tolist(), links.row_a.tolist(), strict=True))
    assert sum(found.get(j) == int(perm[j]) for j in range(n)) >= 0.99 * n
    assert all(found[j] == int(perm[j]) for j in found)


def test_cli_deid_with_a_shared_secret_file_then_link(run_cli, tmp_path: Path, cli_vault: Path) -> None:
    """Two providers holding the same secret file de-identify with `deid --policy`; `link` joins them.
    Each has its copy of the secret file on its own machine (its own folder here), where each run makes
    its own padding key file: the two files' dummies never agree, so Ana Soto (no ID on either side,
    every real token the same) links by her derived keys, not by an ID she does not have."""
    rule = {"treatment": "link_tokens", "from": ["First", "Last", "DOB", "Sex"]}
    for name, rows in (
        (
            "district",
            [
                ("1234567890", "Robert", "Nuñez", "03/04/2008", "M", "11"),
                ("", "Ana", "Soto", "01/20/2008", "F", "12"),
            ],
        ),
        (
            "college",
            [("", "ANA", "SOTO", "20080120", "F", "2026SP"), ("", "Bob", "Nunez", "20080304", "M", "2025FA")],
        ),
    ):
        (tmp_path / name).mkdir()
        secret = tmp_path / name / "shared.secret"
        secret.write_text("ab" * 32 + "\n")
        lines = ["SSID,First,Last,DOB,Sex,Term"] + [",".join(r) for r in rows]
        (tmp_path / f"{name}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        policy = {"pathshare_policy": 1, "k": 1, "columns": {"SSID": rule, "Term": {"treatment": "keep"}}}
        (tmp_path / f"{name}.json").write_text(json.dumps(policy))
        code, _, err = run_cli(
            "deid",
            tmp_path / f"{name}.csv",
            "--policy",
            tmp_path / f"{name}.json",
            "--out",
            tmp_path / f"{name}_deid.csv",
            "--secret-file",
            secret,
        )
        assert code == 0, err
        assert (tmp_path / name / "shared.secret.padding").is_file()
        assert "Soto" not in (tmp_path / f"{name}_deid.csv").read_text(encoding="utf-8").title()
    code, out, err = run_cli(
        "link",
        tmp_path / "district_deid.csv",
        tmp_path / "college_deid.csv",
        "--out",
        tmp_path / "linked.csv",
    )
    assert code == 0 and "linked 2 rows (0 by state ID, 2 by derived keys)" in out, err


def test_twins_agreeing_on_a_middle_initial_are_not_linked() -> None:
    """C (surname, birth date, sex) with agreeing middle initials (M) is what twins share: M adds to a
    linked pair's score but does not bring a pair to the threshold."""
    a = _tokens(("", "Mia", "Rosa", "Ortiz", "2008-05-22", "F"))
    twin = _tokens(("", "Zoe", "Ruth", "Ortiz", "2008-05-22", "F"))
    links = link_tables(a, twin)
    assert links.pairs() == set() and links.report.candidate_pairs == 1
    same = _tokens(("", "Mia", "R", "Ortiz", "2008-05-22", "F"))
    assert link_tables(a, same).pairs() == {(0, 0)}


def test_partial_agreements_that_chance_gives_as_often_at_this_size_are_refused() -> None:
    """chance_links: the students linked by their ID show what links by chance — their other
    candidates. A weak pattern that would link a known student to someone else as often as it links at
    all is refused; a pattern never seen by chance is kept; with no ID pair nothing is measured."""
    from deid._linkmatch import THRESHOLD, WEIGHTS, chance_links

    def bits(kinds: str) -> int:
        return sum(1 << KINDS.index(k) for k in kinds)

    strong, weak_link, clean, chance_only = bits("IACEGPQ"), bits("BG"), bits("EP"), bits("G")
    ga, gb, mask = [], [], []
    for i in range(100):  # students 0..99 of each side: linked by their ID
        ga.append(i), gb.append(i), mask.append(strong)
    for i in range(30):  # a third of them meet, by chance, another student on BG (whose match is not in A)
        ga.append(100 + i), gb.append(i), mask.append(weak_link)
    for i in range(300):  # every student agrees by chance on G alone with a few others (below the threshold)
        ga.append(i % 250), gb.append((i * 7) % 250), mask.append(chance_only)
    for i in range(20):  # students without an ID: 20 BG links and 20 EP links
        ga.append(130 + i), gb.append(100 + i), mask.append(weak_link)
        ga.append(150 + i), gb.append(120 + i), mask.append(clean)
    ga_, gb_, mask_ = np.array(ga), np.array(gb), np.array(mask, np.uint32)
    use = [k for k in KINDS if k not in "KNS"]
    score = np.array([sum(WEIGHTS[k] for k in use if m & bits(k)) for m in mask], np.int64)
    ok = score >= THRESHOLD
    refused = chance_links(ga_, gb_, mask_, score, ok, (250, 250), use)
    assert refused is not None
    assert refused[mask_ == weak_link].all() and not refused[mask_ == clean].any()
    assert not refused[mask_ == strong].any()
    assert chance_links(ga_, gb_, mask_ & ~np.uint32(bits("I")), score, ok, (250, 250), use) is None
    # through the matcher: the report says the check ran (an ID pair) and counts what it refused
    a = _tokens(("1111111111", "Ana", "", "Soto", "2008-01-20", "F"))
    assert link_tables(a, a).report.chance_checked
    assert not link_tables(_tokens(("", "Luis", "", "Vega", "2008-02-21", "M")),
                           _tokens(("", "Luis", "", "Vega", "2008-02-21", "M"))).report.chance_checked
