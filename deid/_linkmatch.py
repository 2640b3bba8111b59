"""The matcher: which rows of two files are one student, from the kinds of link tokens they share.

:func:`link_tables` (and deid._linkfiles.link for files) has an engine join the two token sets
(deid._linkmemory: a numpy sort-merge join; deid._linkdb: DuckDB, out of core), scores each
candidate pair by which kinds agree (:data:`WEIGHTS`), keeps pairs at or above :data:`THRESHOLD`,
and assigns one-to-one by mutual best score (rows whose best score is tied stay unlinked, rather
than guessed). One-to-one is between *students*, not rows: a file's
rows of one student (several enrollments; :func:`person_groups`) are grouped first, and every row of a
linked student is paired with every row of the other's. Whether a row has an ID or a middle name is
hidden by the fixed shape, so there is no rule on a *disagreeing* ID or middle initial (it cannot be
told from an absent one); agreeing middle initials (M) add a little evidence instead. On the benchmark
this kept precision and raised recall (docs/linkage-threat-model.md). ``method="id"`` links on the ID
token alone; ``"calpass"`` links on the ID token, then on the Cal-PASS derived key (exact, unambiguous
keys only) — the baselines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from deid._linkdb import DEFAULT_MEMORY_MB
from deid._linkmemory import MemoryEngine
from deid._tokenkinds import GROUPING_KINDS, GUARD_KINDS, KINDS, TOKEN_COLUMN
from deid.errors import InputError

if TYPE_CHECKING:
    from deid._treatments import Column

# Evidence each agreeing kind adds (a hand-set Fellegi-Sunter-style weight: the rarer a chance
# agreement of that combination, the higher). A pair is linked at THRESHOLD or more: any kind with a
# full name and birth date, or two partial kinds (e.g. E + P: a surname typo), but never C alone
# (twins share surname, birth date and often sex), nor C with a middle initial (M counts towards the
# score, not towards the threshold). Partial agreements that chance gives as often as a match at the
# size of the files are refused besides (chance_links).
WEIGHTS: dict[str, int] = {
    "I": 20, "A": 8, "M": 1, "W": 9, "B": 6, "C": 6, "E": 5, "G": 4, "P": 3, "Q": 3, "K": 0,
}  # fmt: skip
THRESHOLD = 7
METHODS = ("combined", "em", "id", "calpass")
MAX_SHARED = 50  # a token shared by more students than this on either side is not specific: not joined
MAX_ENROLLMENTS = 1000  # rows of one student in one file (terms × courses) that are still grouped


@dataclass
class LinkReport:
    """What a link run found: counts and rates by method, never identities."""

    file_a: str
    file_b: str
    method: str
    rows_a: int
    rows_b: int
    linked: int
    linked_by: dict[str, int]
    rate_a: float
    rate_b: float
    candidate_pairs: int
    below_threshold: int
    left_ambiguous: int
    threshold: int
    weights: dict[str, int] = field(default_factory=lambda: dict(WEIGHTS))
    token_columns: tuple[str, str] = (TOKEN_COLUMN, TOKEN_COLUMN)
    output: str | None = None
    notes: list[str] = field(default_factory=list)
    # The token kinds each file carries (kind letters, see the module docstring): pairs can agree only
    # on kinds both files have, so a difference is warned about in ``notes``.
    kinds_a: str = ""
    kinds_b: str = ""
    # Students found in each file (rows of one student grouped; see person_groups): ``linked`` counts
    # pairs of rows, so a student with three enrollments linked to one row of the other file counts 3.
    students_a: int = 0
    students_b: int = 0
    # method "em": the fitted Fellegi–Sunter model (λ, threshold, per kind m, u and weight; deid._fsem)
    estimated: dict[str, Any] | None = None
    # where the token join ran: "duckdb" (out of core) or "memory" (deid._linkdb)
    engine: str = "memory"
    # methods combined and em: candidate pairs of students by score (rounded), for the analyst's chart of
    # the score distribution (deid._linkcharts) — counts only
    score_counts: dict[str, int] = field(default_factory=dict)
    # methods combined and em: candidate pairs of students kept apart by a conflict (different IDs, see
    # conflicts), whatever their score — counted in below_threshold too
    kept_apart: int = 0
    # method combined: candidate pairs of students not linked because their kinds of agreement are, at
    # these sizes of files, as often by chance as a match (chance_links) — counted in below_threshold too
    below_chance: int = 0
    # whether that check ran (it needs pairs sharing an ID token; without, the weights alone decide)
    chance_checked: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON data."""
        return asdict(self)

    def write(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the report as JSON, atomically (an existing file is replaced only with ``force``)."""
        from deid._atomic import write_bytes_atomic

        write_bytes_atomic(path, json.dumps(self.to_dict(), indent=2).encode("utf-8") + b"\n", force=force)


@dataclass
class Links:
    """The linked pairs: 0-based rows of A and B, the method that linked them (``id`` or ``derived``)
    and the score."""

    row_a: np.ndarray
    row_b: np.ndarray
    method: np.ndarray  # "id" | "derived"
    score: np.ndarray
    report: LinkReport

    def pairs(self) -> set[tuple[int, int]]:
        """The pairs as a set of (row_a, row_b)."""
        return set(zip(self.row_a.tolist(), self.row_b.tolist(), strict=True))


def person_groups(side: Any, n: int, engine: Any = None) -> np.ndarray:
    """For each of a file's ``n`` rows, the number of the student it belongs to: rows that share
    their state ID token, or a name-and-birth-date token (A) *and* a first-name, birth-date and sex
    token (E) without a :func:`conflicts` (two different IDs), are one
    student's several rows (one per term, course or enrollment). Twins share neither (different first
    names; opposite-sex twins whose names share a nickname group differ in E). Numbers are 0.. in
    order of each student's first row. ``side`` is one of ``engine``'s sides (deid._linkdb; default:
    parsed tokens in memory)."""
    if engine is None:
        engine = MemoryEngine()
    bit = {k: np.uint32(1 << KINDS.index(k)) for k in GROUPING_KINDS}
    ra, rb, mask = engine.self_pairs(side, {KINDS.index(k) for k in bit}, MAX_ENROLLMENTS)
    same = ((mask & bit["I"]) != 0) | (
        ((mask & bit["A"]) != 0) & ((mask & bit["E"]) != 0) & ~conflicts(mask)
    )
    return _components(n, ra[same], rb[same])


def conflicts(mask: np.ndarray) -> np.ndarray:
    """Pairs that are two students whatever else they share: both carry an ID and not the same one
    (they share N or S — first name or surname, birth date and sex of a row with an ID — but no ID
    token). The fixed shape of the cells hides whether a row has an ID; the guards tell it for these
    pairs only. (A guard on
    middle names — both have one, the initials differ — was measured and not kept: at 200,000 a side
    precision +0.0001, recall -0.0027, a middle name cut to an initial disagreeing with its nickname
    group's.)"""
    def has(kind: str) -> np.ndarray:
        return (mask & np.uint32(1 << KINDS.index(kind))) != 0

    return (has("N") | has("S")) & ~has("I")


def chance_links(
    ga: np.ndarray, gb: np.ndarray, mask: np.ndarray, score: np.ndarray, ok: np.ndarray,
    students: tuple[int, int], scoring: Sequence[str],
) -> np.ndarray | None:
    """Candidate pairs of students (a mask over them) whose pattern of agreement — which scoring kinds
    agree, the ID aside — gives, at the size of these two files, at least as many links between
    different students by chance as it gives links at all: no evidence here, whatever its weight. None
    when no pair shares an ID token (then chance cannot be measured, and the weights alone decide).

    Why: a partial agreement (name and birth year with day and month swapped; surname, birth date and a
    middle initial) is strong evidence among 50,000 students and weak among a million — the unrelated
    students who agree so by chance grow with the files, a fixed weight does not (at 1M a side most
    remaining false links were such). Chance is measured, not assumed: a student of B who shares an ID
    token with one of A is that student, so what would link that student if their match were not in A
    is a link by chance. For each such student, the unique best of their *other* candidates (at or
    above the threshold) is taken, and kept when it would be mutual — the student of A has no candidate
    scoring as much; counted by pattern, per such student, and scaled to the students of B that are
    left unlinked, that is how many false links each pattern makes at this size (the same from A's
    side; the two averaged). A pattern whose expected chance links are half its links or more is
    refused: Fellegi–Sunter's decision at posterior 1/2, on links rather than on every pair. (Students
    with an ID are the ones in both files, born in the years both cover: chance is if anything
    overstated, which errs towards refusing.)"""
    id_bit = np.uint32(1 << KINDS.index("I"))
    has_id = (mask & id_bit) != 0
    if not has_id.any():
        return None
    bits = np.uint32(sum(1 << KINDS.index(k) for k in scoring if k != "I"))
    values, inverse = np.unique(mask & bits, return_inverse=True)
    idx = np.flatnonzero(ok)
    kept, _ = _one_to_one(ga[idx], gb[idx], score[idx])
    linked = idx[kept]
    links = np.bincount(inverse[linked[~has_id[linked]]], minlength=len(values)).astype(np.float64)
    chance = np.zeros(len(values))
    weak = ~ok & ~has_id & ~conflicts(mask)  # pairs below the threshold: chance agreements, near all
    for mine, theirs, n in ((gb, ga, students[1]), (ga, gb, students[0])):
        known = np.zeros(n, bool)
        known[mine[has_id]] = True  # students whose match is known (the ID)
        left = np.ones(n, bool)
        left[mine[linked]] = False  # students of this side left without a link
        others = np.flatnonzero(ok & ~has_id & known[mine])
        best = others[_unique_best(mine[others], score[others])]
        # the other side's best score without this pair (its match's, when it has one)
        rival = _best_without(theirs[idx], score[idx], idx, best, theirs)
        by_chance = best[score[best] > rival]
        # Students left unlinked meet fewer namesakes than those in both files (other birth years, other
        # places): scaled by how many chance agreements below the threshold each group has per student.
        weak_per = np.bincount(mine[weak], minlength=n)
        density = weak_per[left].mean() / weak_per[known].mean() if weak_per[known].any() else 1.0
        per_known = np.bincount(inverse[by_chance], minlength=len(values)) / known.sum()
        chance += per_known * left.sum() * density / 2
    refused = chance >= links / 2
    refused &= (chance > 0)
    return refused[inverse] & ~has_id


def _best_without(group: np.ndarray, score: np.ndarray, where: np.ndarray, pairs: np.ndarray,
                  group_of: np.ndarray) -> np.ndarray:  # fmt: skip
    """For each pair in ``pairs`` (indices of candidate pairs), the highest score of its ``group_of``
    student's other pairs among ``where`` (-1 when it has none)."""
    n = int(group.max()) + 1 if len(group) else 0
    order = np.lexsort((-score, group))
    g, s, e = group[order], score[order], where[order]
    first = np.r_[True, g[1:] != g[:-1]] if len(g) else np.zeros(0, bool)
    top1 = np.full(n, -1, np.int64)
    top1_pair = np.full(n, -1, np.int64)
    top2 = np.full(n, -1, np.int64)
    top1[g[first]] = s[first]
    top1_pair[g[first]] = e[first]
    second = np.r_[False, ~first[1:]] & np.r_[False, first[:-1]]  # the entry right after a group's first
    top2[g[second]] = s[second]
    if not len(pairs):
        return np.zeros(0, np.int64)
    st = group_of[pairs]
    if n == 0:
        return np.full(len(pairs), -1, np.int64)
    inside = st < n
    out = np.full(len(pairs), -1, np.int64)
    out[inside] = np.where(top1_pair[st[inside]] == pairs[inside], top2[st[inside]], top1[st[inside]])
    return out


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of the graph on ``n`` nodes with edges (i, j): each node's component,
    numbered 0.. by first node (label propagation with pointer jumping; a few passes)."""
    label = np.arange(n, dtype=np.int64)
    while len(i):
        low = np.minimum(label[i], label[j])
        before = label.copy()
        np.minimum.at(label, i, low)
        np.minimum.at(label, j, low)
        while True:  # pointer jumping: every node to its root
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped
        if np.array_equal(label, before):
            break
    _, first, inverse = np.unique(label, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse]


def _expand(ga: np.ndarray, gb: np.ndarray, groups_a: np.ndarray, groups_b: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Linked students (ga[k], gb[k]) → every (row of A, row of B) pair of theirs, and for each pair
    the index k of the students' link."""

    def members(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.argsort(groups, kind="stable")
        counts = np.bincount(groups, minlength=int(groups.max()) + 1 if len(groups) else 0)
        return order, np.cumsum(counts) - counts, counts

    (oa, sa, ca), (ob, sb, cb) = members(groups_a), members(groups_b)
    na, nb = ca[ga], cb[gb]
    per = na * nb
    k = np.repeat(np.arange(len(ga)), per)
    t = np.arange(int(per.sum()), dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
    return oa[sa[ga[k]] + t // nb[k]], ob[sb[gb[k]] + t % nb[k]], k


def _score(mask: np.ndarray, kinds: Sequence[str]) -> np.ndarray:
    score = np.zeros(len(mask), np.int64)
    for i, k in enumerate(KINDS):
        if k in kinds:
            score += np.where(mask & np.uint32(1 << i), WEIGHTS[k], 0)
    return score


def _one_to_one(ra: np.ndarray, rb: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, int]:
    """Indices of the pairs kept by rounds of mutual best (unique best on both sides), and how many
    rows were left because their best was tied."""
    alive = np.ones(len(ra), bool)
    kept: list[np.ndarray] = []
    while alive.any():
        idx = np.flatnonzero(alive)
        best_a = _unique_best(ra[idx], score[idx])
        best_b = _unique_best(rb[idx], score[idx])
        mutual = idx[best_a & best_b]
        if len(mutual) == 0:
            break
        kept.append(mutual)
        done_a, done_b = np.unique(ra[mutual]), np.unique(rb[mutual])
        alive &= ~(np.isin(ra, done_a) | np.isin(rb, done_b))
    left = len(np.unique(ra[alive])) if alive.any() else 0
    return (np.concatenate(kept) if kept else np.zeros(0, np.int64)), left


def _unique_best(group: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask: the entry holds its group's highest score, and no other entry of the group ties it."""
    if not len(group):
        return np.zeros(0, bool)
    order = np.lexsort((-score, group))
    g, s = group[order], score[order]
    first = np.r_[True, g[1:] != g[:-1]]
    second_same = np.r_[g[1:] == g[:-1], False]
    second_ties = np.r_[s[1:] == s[:-1], False]
    best = first & ~(second_same & second_ties)
    out = np.zeros(len(group), bool)
    out[order[best]] = True
    return out


def link_tables(
    tokens_a: Column,
    tokens_b: Column,
    *,
    method: str = "combined",
    names: tuple[str, str] = ("file A", "file B"),
    threshold: int = THRESHOLD,
    engine: str = "memory",
    memory_mb: int | None = None,
    spill_dir: str | os.PathLike[str] | None = None,
) -> Links:
    """Link two link-tokens columns (rows of A to rows of B, one-to-one); see the module docstring.

    ``engine``: "memory" (numpy) or "duckdb" (out of core within ``memory_mb``, spilling into a
    private folder made in ``spill_dir`` and removed afterwards; deid._linkdb) — the same links."""
    if method not in METHODS:
        raise InputError(f"Unknown linkage method {method!r}: use {', '.join(METHODS)}.")
    eng = make_engine(engine, memory_mb or DEFAULT_MEMORY_MB, spill_dir)
    try:
        a = eng.side(tokens_a, names[0], len(tokens_a))
        b = eng.side(tokens_b, names[1], len(tokens_b))
        return link_sides(eng, a, b, len(tokens_a), len(tokens_b), method, names, threshold)
    finally:
        eng.close()


def link_sides(
    eng: Any, a: Any, b: Any, n_a: int, n_b: int, method: str, names: tuple[str, str], threshold: int
) -> Links:
    """The matcher on either engine's sides (deid._linkdb): the engine joins the tokens; the scores,
    the EM fit and the one-to-one assignment run here on the candidate pairs."""
    id_kind = KINDS.index("I")
    report_notes: list[str] = []
    kinds_a, kinds_b = eng.kinds(a), eng.kinds(b)
    if kinds_a != kinds_b:
        only = [(names[0], kinds_a - kinds_b), (names[1], kinds_b - kinds_a)]
        what = "; ".join(f"only {name} has {', '.join(_KIND_NAMES[k] for k in sorted(ks, key=KINDS.index))}"
                         for name, ks in only if ks)  # fmt: skip
        report_notes.append(
            f"the two files carry different kinds of link tokens ({what}): pairs can agree only on the "
            "kinds both have, so fewer link (were both made with the same identifier columns?)"
        )
    students = (n_a, n_b)
    fitted: dict[str, Any] | None = None
    score_counts: dict[str, int] = {}
    refused = 0
    below_chance = 0
    chance_checked = False
    if method in ("combined", "em"):
        # One row per student is not assumed: a file's rows of one student (several enrollments) are
        # grouped first, students are linked one-to-one, and every row of a linked student is paired.
        groups_a, groups_b = person_groups(a, n_a, eng), person_groups(b, n_b, eng)
        students = (int(groups_a.max()) + 1 if n_a else 0, int(groups_b.max()) + 1 if n_b else 0)
        use = [k for k in KINDS if k != "K" and k not in GUARD_KINDS]  # the kinds that score
        join = {KINDS.index(k) for k in (*use, *GUARD_KINDS)}
        ga, gb, mask = eng.candidates(a, b, join, MAX_SHARED, (groups_a, groups_b))
        # Two students, however much else agrees (same name, birth date and sex): never linked.
        apart = conflicts(mask)
        if method == "em":
            # Weights from the data (deid._fsem): Fellegi–Sunter, EM on the agreement patterns of every
            # pair of students; a pair is kept at posterior match probability 1/2 or more.
            from deid._fsem import estimate, patterns_from_masks

            bits = {k: KINDS.index(k) for k in use if k in (kinds_a & kinds_b)}
            fit = estimate(*patterns_from_masks(mask, students[0] * students[1], bits))
            exact = fit.score(mask, bits)
            ok = (exact >= fit.threshold) & ~apart
            score = np.round(exact).astype(np.int64)
            fitted = fit.to_dict()
            kept, left = _one_to_one(ga[ok], gb[ok], np.round(exact[ok] * 1000).astype(np.int64))
        else:
            score = _score(mask, use)
            # Agreeing middle initials (M) add to a pair's score but never bring it to the threshold:
            # twins share surname, birth date and often sex (C), and a middle initial by chance often
            # enough (at 1M a side 238 of 322 links on C and M alone were two different students).
            ok = (score - _score(mask, ["M"]) >= threshold) & ~apart
            # A pattern of agreement that links by chance as often as it links a match, at this size of
            # files, is no evidence.
            chance = chance_links(ga, gb, mask, score, ok, students, use)
            chance_checked = chance is not None
            if chance is not None:
                chance &= ok
                below_chance = int(chance.sum())
                ok &= ~chance
            elif {"I"} <= kinds_a & kinds_b:
                report_notes.append(
                    "no pair of students shares a state ID token, so how often unrelated students agree by "
                    "chance could not be measured: weak partial agreements were linked on their weights alone"
                )
            kept, left = _one_to_one(ga[ok], gb[ok], score[ok])
        sel = np.flatnonzero(ok)[kept]
        row_a, row_b, k = _expand(ga[sel], gb[sel], groups_a, groups_b)
        by_id = (mask[sel] & np.uint32(1 << id_kind)) != 0
        out = (row_a, row_b, np.where(by_id, "id", "derived")[k], score[sel][k])
        stats = (len(ga), int((~ok).sum()), left)
        refused = int(apart.sum())
        values, counts = np.unique(score, return_counts=True)
        score_counts = {str(int(v)): int(c) for v, c in zip(values, counts, strict=True)}
        for name, rows, count in ((names[0], n_a, students[0]), (names[1], n_b, students[1])):
            if count < rows:
                report_notes.append(
                    f"{name} has {rows:,} rows for {count:,} students (several rows of one student, such as "
                    "one per term, are linked together to the same student of the other file)"
                )
    else:
        ra, rb, mask = eng.candidates(a, b, {id_kind}, MAX_SHARED)
        kept, left = _one_to_one(ra, rb, np.ones(len(ra), np.int64))
        parts = [(ra[kept], rb[kept], np.full(len(kept), "id", object), np.full(len(kept), WEIGHTS["I"]))]
        n_cand, n_left = len(ra), left
        if method == "calpass":
            # Cal-PASS style: rows the ID did not link are joined on the derived key (exact and unique).
            free_a = np.ones(n_a, bool)
            free_a[ra[kept]] = False
            free_b = np.ones(n_b, bool)
            free_b[rb[kept]] = False
            ka = eng.only_rows(a, KINDS.index("K"), free_a)
            kb = eng.only_rows(b, KINDS.index("K"), free_b)
            if not eng.kinds(ka) and not eng.kinds(kb):
                report_notes.append(
                    "the files carry no Cal-PASS derived-key tokens (made with baseline: true)"
                )
            r2a, r2b, _ = eng.candidates(ka, kb, {KINDS.index("K")}, MAX_SHARED)
            k2, left2 = _one_to_one(r2a, r2b, np.ones(len(r2a), np.int64))
            parts.append((r2a[k2], r2b[k2], np.full(len(k2), "derived", object), np.zeros(len(k2), np.int64)))
            n_cand, n_left = n_cand + len(r2a), n_left + left2
        out = tuple(np.concatenate(x) for x in zip(*parts, strict=True))  # type: ignore[assignment]
        stats = (n_cand, 0, n_left)
    order = np.argsort(out[0], kind="stable")
    row_a, row_b, how, score_out = (np.asarray(x)[order] for x in out)
    linked = len(row_a)
    report = LinkReport(
        file_a=names[0],
        file_b=names[1],
        method=method,
        rows_a=n_a,
        rows_b=n_b,
        linked=linked,
        linked_by={"id": int((how == "id").sum()), "derived": int((how == "derived").sum())},
        rate_a=round(len(np.unique(row_a)) / n_a, 4) if n_a else 0.0,
        rate_b=round(len(np.unique(row_b)) / n_b, 4) if n_b else 0.0,
        candidate_pairs=int(stats[0]),
        below_threshold=int(stats[1]),
        left_ambiguous=int(stats[2]),
        kept_apart=refused,
        below_chance=below_chance,
        chance_checked=chance_checked,
        threshold=threshold,
        notes=report_notes,
        kinds_a=" ".join(sorted(kinds_a, key=KINDS.index)),
        kinds_b=" ".join(sorted(kinds_b, key=KINDS.index)),
        students_a=students[0],
        students_b=students[1],
        estimated=fitted,
        engine=eng.name,
        score_counts=score_counts,
    )
    if fitted is not None:
        report.weights = {k: v["weight"] for k, v in fitted["kinds"].items()}  # type: ignore[index]
        report.threshold = fitted["threshold"]  # type: ignore[assignment]
    return Links(row_a.astype(np.int64), row_b.astype(np.int64), how.astype(str), score_out.astype(np.int64),
                 report)  # fmt: skip


_KIND_NAMES = {
    "I": "the state ID (I)", "A": "name and birth date (A)", "M": "middle initials (M)",
    "W": "middle name (W)", "B": "day/month swaps (B)", "C": "surname, birth date and sex (C)",
    "E": "first name, birth date and sex (E)", "G": "name and birth year (G)", "P": "surname typos (P)",
    "Q": "first-name typos (Q)", "K": "the Cal-PASS key (K)",
    "N": "first name, birth date and sex with an ID (N)", "S": "surname, birth date and sex with an ID (S)",
}  # fmt: skip


def make_engine(
    engine: str, memory_mb: int = DEFAULT_MEMORY_MB, spill_dir: str | os.PathLike[str] | None = None
) -> Any:
    """The engine named ``engine`` ("duckdb" or "memory")."""
    if engine == "memory":
        return MemoryEngine()
    if engine == "duckdb":
        from deid._linkdb import DuckEngine

        return DuckEngine(memory_mb, spill_dir)
    raise InputError(f"Unknown linkage engine {engine!r}: use duckdb or memory.")
