"""The metrics catalog, outcome tables and their protection (deid/_metrics.py, deid/_outcomes.py).

The attack tests perform the attack: they work hidden counts out of what is published (by subtraction
or with the LP), and the protection must leave nothing to recover."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from deid import CheckFailed, InputError, PolicyError
from deid._elements import load_elements
from deid._metrics import catalog_from_json, evaluate, load_catalog, metrics_named_in
from deid._outcomes import (
    ALL,
    EarlierRelease,
    _build,
    _intervals,
    check_computable,
    compute_tables,
    differencing_check,
    hidden_cells,
    hidden_count,
    protect,
    recheck,
)

M = 11  # the example agreement's smallest reported cell


def _frame(n: int = 900, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "grade_level": rng.choice(["09", "10", "11", "12"], n),
            "dual_enrollment": np.where(rng.random(n) < 0.12, "Y", "N"),
            "cte_concentrator": np.where(rng.random(n) < 0.3, "Y", "N"),
            "school_id": rng.choice(["A", "B", "C", "D", "E"], n, p=[0.35, 0.3, 0.2, 0.1, 0.05]),
            "sex": rng.choice(["F", "M", "X"], n, p=[0.49, 0.49, 0.02]),
            "race": rng.choice(["100", "600", "700", "400"], n, p=[0.02, 0.1, 0.6, 0.28]),
        }
    )


def _protected(frame: pd.DataFrame, method: str = "optimal"):
    result = compute_tables(frame, ["dual_enrollment", "cte_concentrators"], ["school_id", "sex", "race"])
    prot = protect(result.tables, result.metric_cohort, M, method=method)
    return result, prot


# ------------------------------------------------------------------------------------------ catalog


def test_catalog_metrics_use_library_elements_and_cover_the_issue():
    cat = load_catalog()
    library = {e.name for e in load_elements()}
    assert cat.version
    ids = set(cat.ids())
    for needed in ("dual_enrollment", "cte_concentrators", "cte_completers", "hs_graduation",
                   "college_enrollment", "persistence", "units_12", "units_24", "transfer_math_english",
                   "award_3yr", "employment_in_sector"):  # fmt: skip
        assert needed in ids
    for m in cat.metrics:
        assert set(m.requires) <= library and set(m.disaggregations) <= library
        assert m.elements() <= set(m.requires)
        assert m.definition and m.time_window
    for breakdown in ("school_id", "cte_pathway", "sex", "race", "english_learner_status",
                      "economically_disadvantaged", "iep"):  # fmt: skip
        assert breakdown in cat.get("dual_enrollment").disaggregations


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda m: m["numerator"]["where"].update(element="no_such"), "not in the element library"),
        (lambda m: m.update(requires=["grade_level"]), "without listing it in requires"),
        (lambda m: m["cohort"].update(where={"element": "grade_level", "in": []}), "not valid"),
        (lambda m: m.update(disaggregations=["shoe_size"]), "not in the element library"),
    ],
)
def test_a_broken_catalog_is_refused_in_one_sentence(change, words):
    from importlib import resources

    data = json.loads(resources.files("deid").joinpath("data/metrics.json").read_text("utf-8"))
    change(data["metrics"][0])
    with pytest.raises(PolicyError, match=words):
        catalog_from_json(data, "test catalog")


def test_the_example_purpose_names_its_metrics():
    purpose = json.loads(
        (__import__("pathlib").Path(__file__).parent.parent / "docs/examples/agreement.json").read_text()
    )["purpose"]
    named = {m.id for m in metrics_named_in(purpose)}
    assert {"dual_enrollment", "college_enrollment", "persistence", "award_3yr"} <= named
    assert "employment_in_sector" not in named


def test_conditions_read_buckets_terms_and_school_years():
    frame = pd.DataFrame(
        {
            "units_earned": ["12.5", "[12, 24)", "[0, 12)", ">= 24", None, "3"],
            "school_year": ["2025-26", "2025-26", "2025-26", "2025-26", "2025-26", "2024-25"],
            "term": ["2026FA", "2027SP", "2027FA", "2026SU", None, "2026FA"],
        }
    )
    got = evaluate({"element": "units_earned", "at_least": 12}, frame).tolist()
    assert got == [True, True, False, True, False, False]
    window = {"years_after": {"from": "school_year", "to": "term", "min": 0, "max": 1}}
    # 2026SU belongs to the 2025-26 academic year (before graduation ends): not after high school.
    assert evaluate(window, frame).tolist() == [True, True, False, False, False, False]
    with pytest.raises(InputError, match="ranges that do not say"):
        evaluate({"element": "units_earned", "at_least": 18}, frame)


def test_bad_input_metric_elements_and_breakdowns_refused():
    cat = load_catalog()
    frame = _frame()
    with pytest.raises(InputError, match="needs high-school graduate"):
        check_computable([cat.get("hs_graduation")], [], frame.columns)
    with pytest.raises(InputError, match="cannot be broken down by gpa"):
        check_computable([cat.get("dual_enrollment")], ["gpa"], frame.columns)
    with pytest.raises(InputError, match="agreement does not allow a breakdown by race"):
        check_computable([cat.get("dual_enrollment")], ["race"], frame.columns, allowed={"school_id"})


# ------------------------------------------------------------------------------------------ tables


def test_tables_count_cohort_and_outcome_by_group():
    frame = _frame()
    result = compute_tables(frame, ["dual_enrollment"], ["school_id"])
    overall, by_school = result.tables
    assert overall.groups == [ALL] and overall.cohort == [len(frame)]
    assert overall.outcome == [int((frame.dual_enrollment == "Y").sum())]
    for g, c, o in zip(by_school.groups[:-1], by_school.cohort, by_school.outcome, strict=False):
        sub = frame[frame.school_id == g]
        assert (c, o) == (len(sub), int((sub.dual_enrollment == "Y").sum()))
    assert sum(by_school.cohort[:-1]) == by_school.cohort[-1]


def test_every_small_count_is_hidden_and_the_attacker_recovers_none():
    result, prot = _protected(_frame())
    assert prot.primary > 0 and prot.complementary > 0
    for t in result.tables:
        for i in range(len(t.groups)):
            c, o = t.cohort[i], t.outcome[i]
            if 0 < c < M:
                assert t.hidden_cohort[i] and t.hidden_outcome[i]
            if c and (o < M or c - o < M):
                assert t.hidden_outcome[i]
    assert recheck(result.tables, result.metric_cohort, M) == []
    # The LP attack itself, on every hidden cell: no interval narrower than the protection.
    model, hidden = _hidden_of(result)
    widths = [hi - lo for lo, hi in _intervals(model, hidden, {}, [{c: 1.0} for c in sorted(hidden)])]
    assert min(widths) >= M


def test_primary_suppression_alone_is_recovered_by_subtraction():
    """Without complementary suppression a hidden count is the total minus the published ones: the
    attack by hand recovers it exactly, and the attacker check names it."""
    result, _ = _protected(_frame())
    table = next(t for t in result.tables if t.by == "sex" and t.metric == "dual_enrollment")
    # Show everything the threshold alone would show: hide only the cells under M.
    for t in result.tables:
        t.hidden_cohort = [0 < c < M for c in t.cohort]
        t.hidden_outcome = [c < M or o < M or c - o < M for c, o in zip(t.cohort, t.outcome, strict=True)]
        t.band = [""] * len(t.groups)
    i = table.groups.index("X")
    assert table.hidden_outcome[i] and sum(table.hidden_outcome[:-1]) == 1
    recovered = table.outcome[-1] - sum(o for k, o in enumerate(table.outcome[:-1]) if k != i)
    assert recovered == table.outcome[i]  # the attack works on the naive release
    exposed = recheck(result.tables, result.metric_cohort, M)
    assert any("sex = X" in e.cell for e in exposed)


def test_optimal_hides_no_more_cells_than_the_heuristic_at_equal_protection():
    for seed in (1, 2, 5):
        frame = _frame(seed=seed)
        best, _ = _protected(frame)
        simple, _ = _protected(frame, method="heuristic")
        assert recheck(best.tables, best.metric_cohort, M) == []
        assert recheck(simple.tables, simple.metric_cohort, M) == []
        assert hidden_count(best.tables) <= hidden_count(simple.tables)


def test_rates_near_0_or_100_are_coded_not_shown():
    rng = np.random.default_rng(0)
    n = 800
    frame = pd.DataFrame(
        {
            "grade_level": ["10"] * n,
            "dual_enrollment": np.where(np.arange(n) < 6, "Y", "N"),  # 6 of 800: under 1 %
            "school_id": rng.choice(["A", "B"], n),
        }
    )
    result = compute_tables(frame, ["dual_enrollment"], [])
    protect(result.tables, result.metric_cohort, M)
    (t,) = result.tables
    assert t.hidden_outcome == [True] and t.band == ["low"] and t.rate(0) == "≤ 5%"
    assert t.published(0) == (800, None)


def test_an_unprotectable_release_is_refused():
    result = compute_tables(_frame(60), ["dual_enrollment"], ["school_id", "sex"])
    with pytest.raises(CheckFailed, match="cannot be released safely"):
        protect(result.tables, result.metric_cohort, M, protection=10_000)


# ---------------------------------------------------------------------------------- differencing


def _release(frame: pd.DataFrame, by: list[str]):
    result = compute_tables(frame, ["dual_enrollment"], by)
    protect(result.tables, result.metric_cohort, M)
    return result


def _inputs(frame: pd.DataFrame, by: list[str]):
    groups = {b: frame[b].to_numpy(str) for b in by}
    reached = {"dual_enrollment": (frame.dual_enrollment == "Y").to_numpy()}
    return groups, reached


def test_a_second_release_over_a_shifted_cohort_is_refused():
    frame = _frame(600, seed=11)
    by = ["school_id", "sex"]
    # The one student the second cohort adds: in a large school, and took a college course.
    s = int(frame.index[(frame.school_id == "A") & (frame.dual_enrollment == "Y")][0])
    first = _release(frame.drop(index=s).reset_index(drop=True), by)
    second = _release(frame, by)
    # Both releases, alone, pass the attacker check.
    assert recheck(first.tables, first.metric_cohort, M) == []
    assert recheck(second.tables, second.metric_cohort, M) == []
    # The differencing attack: subtract the first release's published cells from the second's.
    t1 = next(t for t in first.tables if t.by == "school_id")
    t2 = next(t for t in second.tables if t.by == "school_id")
    a1, a2 = t1.published(t1.groups.index("A")), t2.published(t2.groups.index("A"))
    assert None not in (*a1, *a2)
    assert (a2[0] - a1[0], a2[1] - a1[1]) == (1, 1)  # one student added in school A, who took a course
    members = np.ones(len(frame), bool)
    members[s] = False
    tables = [t.to_dict() for t in first.tables]
    earlier = EarlierRelease("the first", tables, {"dual_enrollment": members}, {})
    groups, reached = _inputs(frame, by)
    found = differencing_check(second, groups, reached, [earlier], M, M)
    assert any("only the new cohort has, school_id = A" in cell for cell in found)


def test_the_same_cohort_hidden_differently_is_refused_and_hidden_alike_passes():
    """Two releases of one cohort whose sex tables hide different cells give each other away; hiding
    again what the first release hid (keep_hidden) makes the second safe to add."""
    frame = _frame(600, seed=11)
    first = _release(frame, ["school_id", "sex"])
    members = {"dual_enrollment": np.ones(len(frame), bool)}
    earlier = EarlierRelease("the first", [t.to_dict() for t in first.tables], members, {})
    groups, reached = _inputs(frame, ["sex", "race"])
    naive = _release(frame, ["sex", "race"])
    sex1 = next(t for t in first.tables if t.by == "sex")
    sex2 = next(t for t in naive.tables if t.by == "sex")
    # Another valid choice of the complementary cell (what another tool, or another day's MIP, picks):
    # hide M instead of F beside the small group X. Alone, this release passes the attacker check.
    f, m = sex2.groups.index("F"), sex2.groups.index("M")
    assert sex2.hidden_outcome[f] and not sex2.hidden_outcome[m]
    sex2.hidden_outcome[f], sex2.hidden_outcome[m] = False, True
    assert recheck(naive.tables, naive.metric_cohort, M) == []
    # The attack: a cell hidden in one release and published in the other is simply read off.
    i = next(k for k in range(len(sex1.groups)) if sex1.hidden_outcome[k] and not sex2.hidden_outcome[k])
    assert sex2.published(i)[1] == sex1.outcome[i]
    assert differencing_check(naive, groups, reached, [earlier], M, M) != []
    again = compute_tables(frame, ["dual_enrollment"], ["sex", "race"])
    protect(again.tables, again.metric_cohort, M, keep_hidden=hidden_cells(earlier.tables))
    assert differencing_check(again, groups, reached, [earlier], M, M) == []


def test_a_large_shift_passes_the_differencing_check():
    frame = _frame(900, seed=4)
    later = frame.index >= 300  # the second cohort adds 300 students: every part of a cell is large
    first = _release(frame[later].reset_index(drop=True), ["sex"])
    second = _release(frame, ["sex"])
    earlier = EarlierRelease("the first", [t.to_dict() for t in first.tables], {"dual_enrollment": later}, {})
    groups, reached = _inputs(frame, ["sex"])
    found = differencing_check(second, groups, reached, [earlier], M, M)
    assert not any("school" in f for f in found)
    assert all("X" in f for f in found)  # only the tiny group X can differ by fewer than M students


def test_hidden_bars_are_drawn_as_hidden_not_zero():
    """(moved from test_outcomes_workflow.py: a unit test of deid's chart, which needs no vault)"""
    from deid._outcome_files import _chart
    from deid._outcomes import OutcomeTable

    t = OutcomeTable("dual_enrollment", "sex", ["F", "X", "All students"], [500, 5, 505], [60, 1, 61])
    t.hidden_cohort, t.hidden_outcome, t.band = [False, True, False], [False, True, False], ["", "", ""]
    info = type("I", (), {"group": lambda self, by, g: g})()
    import base64

    png = base64.b64decode(_chart(t, info, "test"))
    assert png.startswith(b"\x89PNG")
    assert t.rate(1) == "*" and t.published(1) == (None, None)


def test_docs_show_the_catalog_as_shipped():
    from pathlib import Path

    from deid import catalog_markdown

    doc = (Path(__file__).parent.parent / "docs" / "outcomes.md").read_text(encoding="utf-8")
    assert catalog_markdown() in doc


def test_an_independent_integer_attacker_recovers_nothing():
    """Not the LP of deid._outcomes: enumerate every integer table consistent with what is published
    (each breakdown adds up to its total, outcome ≤ students, no negative count) and read off each
    hidden count's possible values. None may be pinned down, and no range may be narrower than the
    protection less the one student integrality can take off the LP's interval."""
    import itertools

    rng = np.random.default_rng(8)
    n = 140
    frame = pd.DataFrame(
        {
            "grade_level": ["11"] * n,
            "dual_enrollment": np.where(rng.random(n) < 0.2, "Y", "N"),
            "sex": rng.choice(["F", "M"], n),
            "school_id": rng.choice(["A", "B", "C"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    result = compute_tables(frame, ["dual_enrollment"], ["sex", "school_id"])
    protect(result.tables, result.metric_cohort, M)
    published = [t.to_dict() for t in result.tables]
    cells = []  # (table index, row index, "cohort" | "outcome") of every hidden count
    for k, t in enumerate(published):
        for i, r in enumerate(t["rows"]):
            cells += [(k, i, q) for q in ("cohort", "outcome") if r[q] is None]
    assert cells, "the example must hide something"
    assert all(r["cohort"] is not None for t in published for r in t["rows"])  # here only outcomes hide
    total = published[0]["rows"][0]["outcome"]
    ranges = [range(min(published[k]["rows"][i]["cohort"], total if total is not None else n) + 1)
              for k, i, _ in cells]  # fmt: skip
    seen: dict[tuple[int, int, str], set[int]] = {c: set() for c in cells}
    for values in itertools.product(*ranges):
        filled = json.loads(json.dumps(published))
        for (k, i, q), v in zip(cells, values, strict=True):
            filled[k]["rows"][i][q] = v
        tot = filled[0]["rows"][0]["outcome"]
        if all(sum(r["outcome"] for r in t["rows"][:-1]) == t["rows"][-1]["outcome"] == tot
               for t in filled[1:]):  # fmt: skip
            for c, v in zip(cells, values, strict=True):
                seen[c].add(v)
    for c, values in seen.items():
        t = published[c[0]]
        truth = next(x for x in result.tables if x.by == t["by"]).outcome[c[1]]
        assert truth in values
        assert max(values) - min(values) >= M - 1, (t["by"], t["rows"][c[1]]["group"], sorted(values))


# ------------------------------------------------------------------------------- two-way breakdowns


def _crossed(seed: int = 4, n: int = 1500) -> pd.DataFrame:
    return _frame(n, seed)


def test_a_two_way_table_publishes_its_margins_and_adds_up():
    frame = _crossed()
    result = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
    bys = [t.by for t in result.tables]
    assert bys == ["", "race", "sex", "race*sex"]  # the margins come first, asked for or not
    cross = next(t for t in result.tables if t.by == "race*sex")
    truth = frame[frame["grade_level"].isin(["09", "10", "11", "12"])]
    for i, g in enumerate(cross.groups[:-1]):
        race, sex = g.split(" × ")
        assert cross.cohort[i] == int(((truth["race"] == race) & (truth["sex"] == sex)).sum())
    assert sum(cross.cohort[:-1]) == cross.cohort[-1]
    # Bad breakdowns: one sentence each.
    for bad in ("race*race", "race*sex*school_id*grade_level", "race*", "gpa*sex"):
        with pytest.raises(InputError):
            compute_tables(frame, ["dual_enrollment"], [bad])


def test_a_two_way_cell_recovered_along_its_row_or_column_is_named_and_then_protected():
    """The attack on a naive two-way release: a cell hidden alone in its row is the row's margin less
    the shown cells. The attacker check names it; protect() leaves nothing narrower than M along rows,
    columns and the one-way tables at once."""
    frame = _crossed()
    result = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
    cross = next(t for t in result.tables if t.by == "race*sex")
    for t in result.tables:
        t.hidden_cohort = [0 < c < M for c in t.cohort]
        t.hidden_outcome = [c < M or o < M or c - o < M for c, o in zip(t.cohort, t.outcome, strict=True)]
        t.band = [""] * len(t.groups)
    race = next(t for t in result.tables if t.by == "race")
    # A row (one race) with exactly one hidden cohort cell: subtract the shown ones from the margin.
    for i, g in enumerate(cross.groups[:-1]):
        r = g.split(" × ")[0]
        row = [k for k, h in enumerate(cross.groups[:-1]) if h.split(" × ")[0] == r]
        if cross.hidden_cohort[i] and sum(cross.hidden_cohort[k] for k in row) == 1:
            margin = race.cohort[race.groups.index(r)]
            assert not race.hidden_cohort[race.groups.index(r)]
            recovered = margin - sum(cross.cohort[k] for k in row if k != i)
            assert recovered == cross.cohort[i]  # the attack works on the naive release
            break
    else:
        pytest.fail("the example must hide one cell alone in a row")
    exposed = recheck(result.tables, result.metric_cohort, M)
    assert any(f"race*sex = {cross.groups[i]}" in e.cell for e in exposed)
    prot = protect(result.tables, result.metric_cohort, M)
    assert prot.complementary > 0 and recheck(result.tables, result.metric_cohort, M) == []


def test_two_way_optimal_hides_fewer_cells_than_the_heuristic():
    """Where complementary suppression is a real choice (rows and columns), the MIP hides fewer cells
    than "also hide the smallest other cell of the row and column", both at equal protection, and
    neither leaves a recoverable cell."""
    for seed in (7, 8):
        frame = _crossed(seed)
        best = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
        simple = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
        protect(best.tables, best.metric_cohort, M)
        protect(simple.tables, simple.metric_cohort, M, method="heuristic")
        assert recheck(best.tables, best.metric_cohort, M) == []
        assert recheck(simple.tables, simple.metric_cohort, M) == []
        assert hidden_count(best.tables) < hidden_count(simple.tables)


def test_the_differencing_check_sees_a_shifted_two_way_release():
    frame = _crossed(5)
    first = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
    protect(first.tables, first.metric_cohort, M)
    earlier = EarlierRelease(
        "first", [t.to_dict() for t in first.tables],
        {"dual_enrollment": first.cohorts[first.metric_cohort["dual_enrollment"]]}, {},
    )  # fmt: skip
    # One more student of a small race × sex group arrives: the difference pins that student down.
    cross = next(t for t in first.tables if t.by == "race*sex")
    small = next(g for g, c in zip(cross.groups[:-1], cross.cohort[:-1], strict=True) if c >= M)
    race, sex = small.split(" × ")
    extra = frame.iloc[[0]].assign(race=race, sex=sex, grade_level="11", dual_enrollment="Y")
    shifted = pd.concat([frame, extra], ignore_index=True)
    second = compute_tables(shifted, ["dual_enrollment"], ["race*sex"])
    protect(second.tables, second.metric_cohort, M)
    then = np.append(earlier.members["dual_enrollment"], False)
    earlier = EarlierRelease(earlier.label, earlier.tables, {"dual_enrollment": then}, {})
    from deid import breakdown_groups

    groups = {b: breakdown_groups(shifted, b) for b in ("race", "sex", "race*sex")}
    reached = {"dual_enrollment": (shifted["dual_enrollment"] == "Y").to_numpy()}
    found = differencing_check(second, groups, reached, [earlier], M, M)
    assert any("race*sex" in f for f in found), found


def test_cells_an_earlier_release_published_are_never_hidden_to_protect_others():
    """A second release of the same cohort, with a two-way table: hiding a margin the first release
    published would protect nothing (everyone has it). The protection works inside the new table
    instead, and the two releases together pass the differencing check."""
    frame = _crossed(7)
    first = compute_tables(frame, ["dual_enrollment"], ["race", "sex"])
    protect(first.tables, first.metric_cohort, M)
    old = [t.to_dict() for t in first.tables]
    second = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
    protect(second.tables, second.metric_cohort, M,
            keep_hidden=hidden_cells(old), keep_shown=hidden_cells(old, shown=True))  # fmt: skip
    published = {(c[1], c[2], c[3]) for c in hidden_cells(old, shown=True)}
    for t in second.tables:
        for i, g in enumerate(t.groups):
            key = ("", "") if g == ALL else (t.by, g)
            if (*key, "outcome") in published:
                assert not t.hidden_outcome[i], (t.by, g)
            if (*key, "cohort") in published:
                assert not t.hidden_cohort[i], (t.by, g)
    assert recheck(second.tables, second.metric_cohort, M) == []
    mask = first.cohorts[first.metric_cohort["dual_enrollment"]]
    earlier = EarlierRelease("first", old, {"dual_enrollment": mask}, {})
    from deid import breakdown_groups

    groups = {b: breakdown_groups(frame, b) for b in ("race", "sex", "race*sex")}
    reached = {"dual_enrollment": (frame["dual_enrollment"] == "Y").to_numpy()}
    assert differencing_check(second, groups, reached, [earlier], M, M) == []


def test_when_the_mip_does_not_settle_the_heuristic_answer_is_pruned_and_still_safe(monkeypatch):
    """The fallback (no MIP round passed the attacker check within its rounds): the heuristic's safe
    answer, then every complementary cell it can spare shown again — never more cells than the
    heuristic, and nothing recoverable."""
    import deid._outcomes as outcomes

    frame = _crossed(8, 900)
    simple = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
    protect(simple.tables, simple.metric_cohort, M, method="heuristic")
    monkeypatch.setattr(outcomes, "MIP_ROUNDS", 0)
    monkeypatch.setattr(outcomes, "WEAK_ROUNDS", 0)
    fallback = compute_tables(frame, ["dual_enrollment"], ["race*sex"])
    prot = protect(fallback.tables, fallback.metric_cohort, M)
    assert prot.method == "heuristic, then pruned"
    assert recheck(fallback.tables, fallback.metric_cohort, M) == []
    assert hidden_count(fallback.tables) <= hidden_count(simple.tables)


def _full_lp_intervals(model, hidden: set[int], targets) -> list[tuple[float, float]]:
    """The attacker's intervals the plain way, as an independent reference: one LP over every cell
    of the model at once (published cells pinned by their bounds, hidden ones free, every equation
    and outcome ≤ cohort bound), no blocks, no reuse."""
    from scipy.optimize import linprog

    n = len(model.ids)
    bounds = [(0, None) if c in hidden else (model.values[c], model.values[c]) for c in range(n)]
    a_eq = np.zeros((len(model.equations), n))
    for k, (t, parts) in enumerate(model.equations):
        a_eq[k, t] -= 1
        for j in parts:
            a_eq[k, j] += 1
    a_ub = np.zeros((len(model.pairs), n))
    for k, (o, c) in enumerate(model.pairs):
        a_ub[k, o], a_ub[k, c] = 1, -1
    kw = {"A_eq": a_eq, "b_eq": np.zeros(len(a_eq)), "A_ub": a_ub, "b_ub": np.zeros(len(a_ub)),
          "bounds": bounds, "method": "highs"}  # fmt: skip
    out = []
    for coefs in targets:
        r = np.zeros(n)
        for c, w in coefs.items():
            r[c] += w
        lo, hi = linprog(r, **kw), linprog(-r, **kw)
        assert lo.status in (0, 3) and hi.status in (0, 3)
        out.append((lo.fun if lo.status == 0 else -np.inf, -hi.fun if hi.status == 0 else np.inf))
    return out


def _hidden_of(result) -> tuple:
    model, rows = _build(result.tables, result.metric_cohort)
    hidden = set()
    for t, here in zip(result.tables, rows, strict=True):
        for i, (c, o) in enumerate(here):
            if t.hidden_cohort[i]:
                hidden.add(c)
            if t.hidden_outcome[i]:
                hidden.add(o)
    return model, hidden


@pytest.mark.parametrize("seed", [4, 8, 11])
def test_the_attackers_blocks_and_shortcuts_agree_with_one_plain_lp(seed: int):
    """The attacker check splits the hidden cells into blocks, reuses solved blocks, and skips the LPs
    of a cell already seen to vary by the protection. On a naive two-way release (threshold only,
    cells recoverable) and after protection, the exact intervals equal those of one plain LP over
    every cell, and the cells it finds exposed are exactly those narrower than M by that LP."""
    from deid._outcomes import _primary, attack

    frame = _crossed(seed, 700)
    result = compute_tables(frame, ["dual_enrollment", "cte_concentrators"], ["race*sex", "school_id"])
    before, _ = _build(result.tables, result.metric_cohort)
    naive, _ = _primary(before, M)
    protect(result.tables, result.metric_cohort, M)
    for model, hidden in ((before, naive), _hidden_of(result)):
        cells = sorted(hidden)
        plain = _full_lp_intervals(model, hidden, [{c: 1.0} for c in cells])
        found = {model.ids[e.index] for e in attack(model, hidden, {}, [], M)}  # with its shortcuts
        exact = _intervals(model, hidden, {}, [{c: 1.0} for c in cells])
        assert np.allclose(np.array(plain), np.array(exact), atol=1e-6)
        narrow = {model.ids[c] for c, (lo, hi) in zip(cells, plain, strict=True) if hi - lo < M - 1e-6}
        assert found == narrow
        assert bool(narrow) == (hidden is naive)  # naive: cells exposed; protected: none


def _with_completers(frame: pd.DataFrame) -> pd.DataFrame:
    """A second cohort (grade-12 CTE concentrators) beside grades 9-12."""
    rng = np.random.default_rng(len(frame))
    return frame.assign(cte_completer=np.where(rng.random(len(frame)) < 0.6, "Y", "N"))


def test_out_of_budget_the_heuristics_safe_answer_is_kept_and_said():
    """The MIP's node budget: with none left, every cohort keeps the heuristic's safe answer, pruned
    (never more cells than the heuristic), the attacker check still recovers nothing, and the method
    and note say which way was taken and why."""
    frame = _with_completers(_crossed(8, 900))
    simple = compute_tables(frame, ["dual_enrollment", "cte_completers"], ["race*sex"])
    protect(simple.tables, simple.metric_cohort, M, method="heuristic")
    late = compute_tables(frame, ["dual_enrollment", "cte_completers"], ["race*sex"])
    prot = protect(late.tables, late.metric_cohort, M, nodes=0)
    assert prot.method == "heuristic, then pruned"
    assert "used up its search budget" in prot.note and "simple rule's safe answer was kept" in prot.note
    assert recheck(late.tables, late.metric_cohort, M) == []
    assert hidden_count(late.tables) <= hidden_count(simple.tables)
    assert prot.smallest_interval >= M


def test_a_slow_machine_hides_the_same_cells_as_a_fast_one(monkeypatch: pytest.MonkeyPatch):
    """The optimizer's budget is counted in branch-and-bound nodes, not seconds: with the clock jumping
    an hour at every reading (a machine as loaded as can be), the same tables hide the same cells by
    the same method as on an idle one — two partners re-running a release publish one pattern."""
    import time as clock

    frame = _with_completers(_crossed(7, 1200))
    metrics, by = ["dual_enrollment", "cte_completers"], ["school_id", "race*sex"]
    idle = compute_tables(frame, metrics, by)
    fast = protect(idle.tables, idle.metric_cohort, M)
    now = [clock.monotonic()]

    def slow() -> float:
        now[0] += 3600.0
        return now[0]

    monkeypatch.setattr(clock, "monotonic", slow)
    busy = compute_tables(frame, metrics, by)
    late = protect(busy.tables, busy.metric_cohort, M)
    assert late.method == fast.method and late.note == fast.note and fast.complementary > 0
    for a, b in zip(idle.tables, busy.tables, strict=True):
        assert (a.hidden_cohort, a.hidden_outcome, a.band) == (b.hidden_cohort, b.hidden_outcome, b.band)


@pytest.mark.parametrize("seed", [3, 7, 9])
def test_the_mip_per_cohort_never_hides_more_than_the_heuristic_and_leaves_nothing_recoverable(seed: int):
    """Two cohorts (grades 9-12; grade-12 concentrators), one-way and two-way tables: each cohort is
    its own MIP, bounded by the heuristic's answer. Whatever rule settles it, the release hides no more
    cells than the heuristic and the attacker check (one plain LP per cell, the independent reference
    above) finds every hidden cell at least M wide."""
    frame = _with_completers(_crossed(seed, 1200))
    metrics, by = ["dual_enrollment", "cte_completers"], ["school_id", "race*sex"]
    best, simple = compute_tables(frame, metrics, by), compute_tables(frame, metrics, by)
    prot = protect(best.tables, best.metric_cohort, M)
    protect(simple.tables, simple.metric_cohort, M, method="heuristic")
    assert len(set(best.metric_cohort.values())) == 2
    assert prot.method in ("optimal", "mixed", "heuristic, then pruned")
    assert hidden_count(best.tables) <= hidden_count(simple.tables)
    model, hidden = _hidden_of(best)
    cells = sorted(hidden)
    plain = _full_lp_intervals(model, hidden, [{c: 1.0} for c in cells])
    assert cells and all(hi - lo >= M - 1e-6 for lo, hi in plain)


def test_a_three_way_table_publishes_its_margins_and_adds_up_along_every_axis():
    frame = _crossed(6, 2500)
    result = compute_tables(frame, ["dual_enrollment"], ["race*sex*school_id"])
    assert [t.by for t in result.tables] == [
        "", "race", "sex", "school_id", "race*sex", "race*school_id", "sex*school_id", "race*sex*school_id",
    ]  # fmt: skip
    tab = {t.by: t for t in result.tables}
    three = tab["race*sex*school_id"]
    for by, axis in (("sex*school_id", 0), ("race*school_id", 1), ("race*sex", 2)):
        margin = tab[by]
        for g, c in zip(margin.groups[:-1], margin.cohort[:-1], strict=True):
            rest = g.split(" × ")
            line = [c3 for g3, c3 in zip(three.groups[:-1], three.cohort[:-1], strict=True)
                    if [x for j, x in enumerate(g3.split(" × ")) if j != axis] == rest]  # fmt: skip
            assert sum(line) == c
    # "sex*race" asked beside it: that margin is published once, under the asked name
    both = compute_tables(frame, ["dual_enrollment"], ["sex*race", "race*sex*school_id"])
    names = [t.by for t in both.tables]
    assert names.count("sex*race") == 1 and "race*sex" not in names
    with pytest.raises(InputError, match="two or three"):
        compute_tables(frame, ["dual_enrollment"], ["race*sex*school_id*grade_level"])


def test_a_three_way_cell_alone_in_its_line_is_recovered_then_protected():
    """The attack on a naive three-way release: a cell hidden alone in a line (two coordinates fixed)
    is its two-way margin less the shown cells. The check names such cells; after protect() no line of
    the three-way table along any axis holds exactly one hidden cell while its margin is shown, and
    one plain LP over every cell finds every hidden cell at least M wide."""
    from deid._outcomes import _primary, attack

    frame = _crossed(6, 6000)
    frame = frame.assign(iep=np.where(np.random.default_rng(1).random(len(frame)) < 0.15, "Y", "N"))
    result = compute_tables(frame, ["dual_enrollment"], ["race*sex*iep"])
    model, _ = _build(result.tables, result.metric_cohort)
    naive, _ = _primary(model, M)
    found = {model.ids[e.index] for e in attack(model, naive, {}, [], M)}
    assert any(cid[2] == "race*sex*iep" for cid in found)
    prot = protect(result.tables, result.metric_cohort, M)
    assert prot.complementary > 0 and recheck(result.tables, result.metric_cohort, M) == []
    tab = {t.by: t for t in result.tables}
    three = tab["race*sex*iep"]
    for by, axis in (("sex*iep", 0), ("race*iep", 1), ("race*sex", 2)):
        margin = tab[by]
        for i, g in enumerate(margin.groups[:-1]):
            line = [k for k, g3 in enumerate(three.groups[:-1])
                    if [x for j, x in enumerate(g3.split(" × ")) if j != axis] == g.split(" × ")]  # fmt: skip
            pairs = ((three.hidden_cohort, margin.hidden_cohort),
                     (three.hidden_outcome, margin.hidden_outcome))  # fmt: skip
            for hidden, shown in pairs:
                if not shown[i]:
                    assert sum(hidden[k] for k in line) != 1, (by, g)
    model, hidden = _hidden_of(result)
    plain = _full_lp_intervals(model, hidden, [{c: 1.0} for c in sorted(hidden)])
    assert all(hi - lo >= M - 1e-6 for lo, hi in plain)
