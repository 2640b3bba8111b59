"""The synthetic population: who the students are, independent of how a system exports them.

People are generated in fixed blocks of ``BLOCK`` persons, each block from its own random stream
``SeedSequence([seed, population, block])``. So person *i* of a seed is the same person whatever
``--rows`` is: a K-12 file of 1,000 rows is the first 1,000 rows of the file of 1,000,000, and the
college export made with the same seed finds its K-12 students among the same people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deid._synth import _tables as t

BLOCK = 1 << 14
REFERENCE_DATE = "2026-06-30"  # ages and school years are relative to this, never to "today"
REFERENCE_DAYS = t.days_of(2026, 6, 30)
MAX_ROWS = 5_000_000  # local IDs are unique below 9,900,000 people; SSID keys below 50,000,000

# Random streams (the second entry of each SeedSequence).
K12_PEOPLE, COLLEGE_ONLY_PEOPLE, K12_EXPORT, COLLEGE_EXPORT, MESSY = 1, 2, 3, 4, 5

# Person ids in the truth: K-12 person i is i; the j-th college-only person is COLLEGE_ONLY_BASE + j.
COLLEGE_ONLY_BASE = 1_000_000_000
# Identifier keys (for SSIDs and college IDs) of college-only people start here, so they never
# collide with a K-12 person's (MAX_ROWS keeps K-12 keys below it).
COLLEGE_ONLY_KEY = 50_000_000

AREA_CODES = ("213", "323", "310", "562", "626", "818", "747", "909", "951", "714", "657", "661")
AREA_WEIGHTS = (10, 14, 8, 12, 16, 10, 3, 12, 8, 6, 2, 5)
STREET_SUFFIXES = ("St", "Ave", "Blvd", "Dr", "Way", "Ct", "Pl", "Ln", "Rd")
STREET_SUFFIX_WEIGHTS = (30, 30, 8, 12, 6, 4, 3, 4, 3)
DIRECTIONS = ("", "N ", "S ", "E ", "W ")
DIRECTION_WEIGHTS = (80, 5, 5, 5, 5)
GRADES = ("KN", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
GRADE_WEIGHTS = (0.15, 0.15, 0.15, 0.15, 0.15, 0.15, 0.2, 3, 4, 24, 23.5, 22.5, 21.7)
RACE_CODES = (
    "", "100", "201", "202", "203", "204", "205", "206", "207", "208", "299",
    "301", "302", "303", "304", "399", "400", "600", "700",
)  # fmt: skip


def _ssid_params(seed: int) -> tuple[int, int]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 99]))
    # An affine map mod 10**10 is a bijection when the multiplier is coprime with 10.
    a = int(rng.integers(10**8, 10**10)) | 1
    if a % 5 == 0:
        a += 2
    return a, int(rng.integers(0, 10**10))


def ssid_of(seed: int, keys: np.ndarray) -> np.ndarray:
    """10-digit state student IDs: unique per key (a bijection of the key), scrambled per seed."""
    a, c = _ssid_params(seed)
    # a < 10**10 and keys < 10**8, so a * key + c stays below 2**63.
    return (keys.astype(np.int64) * a + c) % 10**10


def local_id_of(seed: int, keys: np.ndarray) -> np.ndarray:
    """6- or 7-digit local (district) IDs, unique per key."""
    c = int(np.random.default_rng(np.random.SeedSequence([seed, 98])).integers(0, 9_900_000))
    # 1,234,567 is coprime with 9,900,000 = 2^5 3^2 5^5 11, so the map is a bijection.
    return (keys.astype(np.int64) * 1_234_567 + c) % 9_900_000 + 100_000


def college_id_of(seed: int, keys: np.ndarray) -> np.ndarray:
    """8-digit college ID numbers, unique per key."""
    c = int(np.random.default_rng(np.random.SeedSequence([seed, 97])).integers(0, 10**8))
    return (keys.astype(np.int64) * 7_654_321 + c) % 10**8


@dataclass
class People:
    """Column arrays describing persons (one entry per person)."""

    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["key"])

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["cols"][name]
        except KeyError:
            raise AttributeError(name) from None

    def take(self, idx: np.ndarray | slice) -> People:
        """A subset (by index array, boolean mask or slice)."""
        return People({k: v[idx] for k, v in self.cols.items()})

    @staticmethod
    def concat(parts: list[People]) -> People:
        """Persons of several parts, in order."""
        return People({k: np.concatenate([p.cols[k] for p in parts]) for k in parts[0].cols})


def group_pick(u: np.ndarray, keys: list[str], pools: dict, row_keys: np.ndarray) -> np.ndarray:
    """Per row, a name index from the pool named ``keys[row_keys[row]]``."""
    out = np.zeros(len(u), dtype=np.int32)
    for i, key in enumerate(keys):
        mask = row_keys == i
        if mask.any():
            out[mask] = pools[key].pick(u[mask])
    return out


def people_block(seed: int, block: int, population: int) -> People:
    """``BLOCK`` persons of one population (K12_PEOPLE or COLLEGE_ONLY_PEOPLE), deterministically."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, population, block]))
    n = BLOCK
    first, last = t.first_names(), t.last_names()
    groups = list(t.GROUPS)

    group = t.choice_index(rng, t.GROUP_SHARE, n).astype(np.int8)
    sex = t.choice_index(rng, [49.6, 49.6, 0.8], n).astype(np.int8)  # F, M, X
    name_sex = np.where(sex == 2, rng.integers(0, 2, n), sex)  # an X student's name is F or M

    # First and middle names: the group's own list, or the general list.
    own = rng.random(n) < np.array([t.OWN_FIRST_NAME[g] for g in groups])[group]
    fgroup = np.where(own, group, groups.index("white"))
    fkeys = [f"{g} {s}" for g in groups for s in ("F", "M")]
    fkey_of_row = np.asarray(fgroup, dtype=np.int64) * 2 + name_sex
    # "native" has no first-name list of its own; OWN_FIRST_NAME sends it to "white" above.
    fkeys = [k if k in first.pools else f"white {k[-1]}" for k in fkeys]
    first_idx = group_pick(rng.random(n), fkeys, first.pools, fkey_of_row)
    has_middle = rng.random(n) < 0.62
    middle_idx = np.where(has_middle, group_pick(rng.random(n), fkeys, first.pools, fkey_of_row), -1)

    lkeys = [t.LAST_NAME_GROUP.get(g, g) for g in groups]
    last_idx = group_pick(rng.random(n), lkeys, last.pools, group)
    compound_p = np.where(group == groups.index("hispanic"), 0.10, 0.02)
    compound = rng.random(n) < compound_p
    last2_idx = np.where(compound, group_pick(rng.random(n), lkeys, last.pools, group), -1)
    last2_idx = np.where(last2_idx == last_idx, -1, last2_idx)
    joiner = (rng.random(n) < 0.35).astype(np.int8)  # 0: hyphen, 1: space (Hispanic double surname)

    keep_p = np.array([t.KEEP_ACCENTS.get(g, t.KEEP_ACCENTS_DEFAULT) for g in groups])[group]
    accents = rng.random(n) < keep_p  # one habit per record: accents kept in all its names or none

    hispanic = group == groups.index("hispanic")
    race = np.zeros(n, dtype=np.int8)
    u_race = rng.random(n)
    for gi, g in enumerate(groups):
        mask = group == gi
        codes, weights = zip(*t.GROUP_RACES[g], strict=True)
        cdf = np.cumsum(weights) / np.sum(weights)
        pos = np.searchsorted(cdf, u_race[mask], side="right").clip(0, len(codes) - 1)
        race[mask] = np.array([RACE_CODES.index(c) for c in codes])[pos]
    # A few students of every group report a second race; the export shows the first only, so
    # some non-Hispanic students of mixed background carry "700" or "600".
    mixed = (rng.random(n) < 0.03) & ~hispanic
    race = np.where(
        mixed, np.where(rng.random(n) < 0.6, RACE_CODES.index("700"), RACE_CODES.index("600")), race
    )

    if population == K12_PEOPLE:
        grade = t.choice_index(rng, GRADE_WEIGHTS, n).astype(np.int8)
        # Born between Sep 2 of (2019 - grade) and Sep 1 of (2020 - grade); a few were held back.
        held_back = rng.random(n) < 0.03
        start_year = 2019 - grade.astype(np.int64) - held_back
        base = np.array([t.days_of(y, 9, 2) for y in range(1990, 2021)])
        birth = base[start_year - 1990] + rng.integers(0, 365, n)
    else:
        grade = np.full(n, -1, dtype=np.int8)
        # College-only students: mostly 18-24, a long tail of older students, a few young dual-enrollees.
        age = np.where(
            rng.random(n) < 0.72,
            rng.uniform(17.5, 24.5, n),
            np.minimum(17.5 + rng.gamma(2.0, 7.0, n), 66.0),
        )
        young = rng.random(n) < 0.03
        age = np.where(young, rng.uniform(15.2, 17.9, n), age)
        birth = REFERENCE_DAYS - (age * 365.25).astype(np.int64)
        held_back = np.zeros(n, dtype=bool)

    place = t.places().pick(rng.random(n))
    house = np.where(rng.random(n) < 0.7, rng.integers(100, 20000, n), rng.integers(1, 100, n))
    street = rng.integers(0, len(t.streets()), n)
    suffix = t.choice_index(rng, STREET_SUFFIX_WEIGHTS, n)
    direction = t.choice_index(rng, DIRECTION_WEIGHTS, n)
    unit_kind = t.choice_index(rng, [78, 12, 6, 4], n)  # none, "Apt 12", "#5", "Unit 3B"
    unit_no = rng.integers(1, 300, n)
    area = t.choice_index(rng, AREA_WEIGHTS, n)
    exch = rng.integers(200, 1000, n)
    line = rng.integers(0, 10000, n)

    g_sex = (rng.random(n) < 0.3).astype(np.int8)  # guardian: 70% mothers
    gkey = np.asarray(group, dtype=np.int64) * 2 + g_sex
    gkeys = [f"{g} {s}" for g in groups for s in ("F", "M")]
    gkeys = [k if k in first.pools else f"white {k[-1]}" for k in gkeys]
    g_first = group_pick(rng.random(n), gkeys, first.pools, gkey)
    g_last = np.where(rng.random(n) < 0.78, -1, group_pick(rng.random(n), lkeys, last.pools, group))
    email_n = rng.integers(0, 100, n)
    g_email_style = rng.integers(0, 4, n)
    g_email_n = rng.integers(1, 1000, n)
    g_email_domain = t.choice_index(rng, [45, 20, 12, 12, 8, 3], n)

    # Dual enrollment and who later appears in the college's records.
    dual_p = np.select([grade >= 11, grade >= 9], [0.22, 0.06], 0.0)
    dual = rng.random(n) < dual_p
    u_college = rng.random(n)
    in_college = (grade >= 11) & dual | (grade == 12) & (u_college < 0.35)
    gpa = np.clip(rng.normal(2.95, 0.72, n), 0.0, 4.0)
    gpa_c = np.round(gpa * 100).astype(np.int64)

    keys = np.arange(block * n, (block + 1) * n, dtype=np.int64)
    return People(
        {
            "key": keys,
            "group": group,
            "sex": sex,
            "name_sex": name_sex.astype(np.int8),
            "first": first_idx,
            "middle": middle_idx.astype(np.int32),
            "last": last_idx,
            "last2": last2_idx.astype(np.int32),
            "joiner": joiner,
            "accents": accents,
            "hispanic": hispanic,
            "race": race,
            "grade": grade,
            "held_back": held_back,
            "birth": birth.astype(np.int64),
            "place": place,
            "house": house,
            "street": street,
            "suffix": suffix,
            "direction": direction,
            "unit_kind": unit_kind,
            "unit_no": unit_no,
            "area": area,
            "exch": exch,
            "line": line,
            "g_sex": g_sex,
            "g_first": g_first,
            "g_last": g_last.astype(np.int32),
            "email_n": email_n,
            "g_email_style": g_email_style,
            "g_email_n": g_email_n,
            "g_email_domain": g_email_domain,
            "dual": dual,
            "in_college": in_college,
            "gpa_c": gpa_c,
        }
    )


def people(seed: int, count: int, population: int, only_in_college: bool = False) -> People:
    """The first ``count`` persons of a population; with ``only_in_college``, just those among them
    who appear in the college's records (selected block by block, to keep memory small)."""
    parts = []
    for b in range(-(-count // BLOCK)):
        block = people_block(seed, b, population).take(slice(0, count - b * BLOCK))
        parts.append(block.take(block.in_college) if only_in_college else block)
    if not parts:
        return people_block(seed, 0, population).take(slice(0, 0))
    return People.concat(parts)
