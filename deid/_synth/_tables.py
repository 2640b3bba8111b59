"""Lookup tables for the synthetic generator (names, places, nicknames) and vectorized string helpers.

The word lists live in ``deid/data/synth/*.txt`` (plain text, one section per origin group, most
common first). They are loaded once and turned into pyarrow arrays plus cumulative weight tables, so
the generator picks millions of values with one ``searchsorted`` and one ``take`` per column.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATA = Path(__file__).resolve().parent.parent / "data" / "synth"

# Origin groups: share of the population (a Southern California public-school mix), the CALPADS race
# codes drawn for the group (with weights), and how often a student of the group carries a first name
# from the group's own list rather than the general ("white") list.
GROUPS: tuple[str, ...] = (
    "hispanic", "white", "black", "chinese", "vietnamese", "korean", "filipino", "indian", "japanese",
    "armenian", "seasian", "pacific", "native",
)  # fmt: skip
GROUP_SHARE = np.array([56.0, 25.3, 5.0, 3.0, 2.0, 1.2, 2.4, 1.5, 0.4, 1.5, 0.8, 0.4, 0.5])
GROUP_RACES: dict[str, tuple[tuple[str, float], ...]] = {
    "hispanic": (("700", 80), ("100", 12), ("600", 3), ("299", 1), ("", 4)),
    "white": (("700", 100),),
    "black": (("600", 100),),
    "chinese": (("201", 100),),
    "vietnamese": (("204", 100),),
    "korean": (("203", 100),),
    "filipino": (("400", 100),),
    "indian": (("205", 100),),
    "japanese": (("202", 100),),
    "armenian": (("700", 100),),
    "seasian": (("208", 50), ("207", 30), ("206", 15), ("299", 5)),
    "pacific": (("301", 35), ("303", 30), ("302", 15), ("304", 5), ("399", 15)),
    "native": (("100", 100),),
}
# Probability that the first name comes from the group's own list (else from the "white" list).
OWN_FIRST_NAME = {
    "hispanic": 0.8, "white": 1.0, "black": 0.65, "chinese": 0.3, "vietnamese": 0.45, "korean": 0.35,
    "filipino": 0.35, "indian": 0.85, "japanese": 0.4, "armenian": 0.75, "seasian": 0.6, "pacific": 0.5,
    "native": 0.0,
}  # fmt: skip
# Last names of the "native" group come from the white and hispanic lists.
LAST_NAME_GROUP = {"native": "white"}
# Probability that a name keeps its accents in the K-12 system (many SIS entries drop them).
KEEP_ACCENTS = {"hispanic": 0.6, "vietnamese": 0.3}
KEEP_ACCENTS_DEFAULT = 0.9


def _sections(name: str) -> dict[str, list[str]]:
    """Parse a ``[section]`` / comma-separated word list from deid/data/synth."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in (DATA / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = out.setdefault(line[1:-1].strip(), [])
            continue
        if current is None:
            raise ValueError(f"{name}: a word list line comes before any [section]")
        current.extend(w.strip() for w in line.split(",") if w.strip())
    return out


def fold(text: str) -> str:
    """Drop accents and letters outside ASCII (Nguyễn -> Nguyen, Đặng -> Dang, Müller -> Muller)."""
    text = text.replace("Đ", "D").replace("đ", "d").replace("ß", "ss")
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def email_part(text: str) -> str:
    """A name as it appears in an email address: folded, lower case, letters and digits only."""
    return "".join(c for c in fold(text).lower() if c.isascii() and c.isalnum())


def cp1252_safe(text: str) -> str:
    """The text as a Windows-1252 export writes it: letters cp1252 lacks lose their accents (Windows'
    "best fit": Nguyễn -> Nguyen, Đức -> Duc, while José keeps its é); anything else becomes '?'."""
    out = []
    for c in text:
        try:
            c.encode("cp1252")
            out.append(c)
        except UnicodeEncodeError:
            base = fold(c)
            out.append(base if len(base) == 1 and base.isascii() else "?")
    return "".join(out)


@dataclass(frozen=True)
class Pool:
    """Indices into a name table with their cumulative weights (1/rank)."""

    index: np.ndarray
    cdf: np.ndarray

    def pick(self, u: np.ndarray) -> np.ndarray:
        """Map uniform draws in [0, 1) to table indices."""
        return self.index[np.searchsorted(self.cdf, u, side="right").clip(0, len(self.index) - 1)]


def _pool(indices: list[int], offset: float, exponent: float = 1.0) -> Pool:
    # 1/(rank + offset): the offset flattens the head so the first name is not a quarter of the group.
    w = 1.0 / (np.arange(1, len(indices) + 1) + offset) ** exponent
    return Pool(np.asarray(indices, dtype=np.int32), np.cumsum(w) / w.sum())


@dataclass(frozen=True)
class NameTable:
    """One list of names (first or last) with its variants, as numpy/pyarrow arrays."""

    names: list[str]
    exact: pa.Array  # as spelled in the list (accents kept)
    folded: pa.Array  # accents dropped
    email: pa.Array  # for email addresses
    cp1252: pa.Array  # as a Windows-1252 export shows it ('?' for what it cannot encode)
    cp1252_folded: pa.Array
    pools: dict[str, Pool]  # key: "group" or "group sex"

    def strings(self, idx: np.ndarray, keep_accents: np.ndarray, cp1252: bool = False) -> pa.Array:
        """The names at ``idx``; where ``keep_accents`` is false, their folded spelling."""
        n = len(self.names)
        table = (
            pa.concat_arrays([self.cp1252, self.cp1252_folded])
            if cp1252
            else pa.concat_arrays([self.exact, self.folded])
        )
        return table.take(pa.array(idx.astype(np.int64) + np.where(keep_accents, 0, n)))


def _name_table(names: list[str], pools: dict[str, Pool]) -> NameTable:
    return NameTable(
        names=names,
        exact=pa.array(names, pa.string()),
        folded=pa.array([fold(x) for x in names], pa.string()),
        email=pa.array([email_part(x) for x in names], pa.string()),
        cp1252=pa.array([cp1252_safe(x) for x in names], pa.string()),
        cp1252_folded=pa.array([cp1252_safe(fold(x)) for x in names], pa.string()),
        pools=pools,
    )


def _merged(curated: str, more: str) -> dict[str, list[str]]:
    """Curated sections, each followed by the long tail from ``more`` (names not already listed)."""
    out = _sections(curated)
    for key, words in _sections(more).items():
        section = out.setdefault(key, [])
        seen = set(section)
        section.extend(w for w in words if w not in seen)
    return out


@functools.cache
def first_names() -> NameTable:
    """First names with pools keyed "group F" / "group M"."""
    names: list[str] = []
    pools: dict[str, Pool] = {}
    for key, words in _merged("first_names.txt", "more_first_names.txt").items():
        start = len(names)
        names.extend(words)
        pools[key] = _pool(list(range(start, len(names))), offset=8.0)
    return _name_table(names, pools)


@functools.cache
def last_names() -> NameTable:
    """Last names with pools keyed by group."""
    names: list[str] = []
    pools: dict[str, Pool] = {}
    for key, words in _merged("last_names.txt", "more_last_names.txt").items():
        start = len(names)
        names.extend(words)
        # Surnames are more concentrated in some groups (Nguyễn, Kim) than in others.
        concentrated = key in ("vietnamese", "korean")
        pools[key] = _pool(list(range(start, len(names))), offset=0.5 if concentrated else 8.0)
    return _name_table(names, pools)


@functools.cache
def streets() -> pa.Array:
    """Street names."""
    words: list[str] = []
    for raw in (DATA / "streets.txt").read_text(encoding="utf-8").splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            words.extend(w.strip() for w in raw.split(",") if w.strip())
    return pa.array(words, pa.string())


@dataclass(frozen=True)
class Places:
    """Cities and their ZIP codes, flattened: one entry per ZIP."""

    city: pa.Array  # per ZIP entry
    zip: pa.Array
    zip_int: np.ndarray
    cdf: np.ndarray  # cumulative weight per ZIP entry (a city's weight is split over its ZIPs)

    def pick(self, u: np.ndarray) -> np.ndarray:
        """Map uniform draws to ZIP entries."""
        return np.searchsorted(self.cdf, u, side="right").clip(0, len(self.zip_int) - 1)


@functools.cache
def places() -> Places:
    """Cities and ZIP codes (see places.txt)."""
    cities: list[str] = []
    zips: list[str] = []
    weights: list[float] = []
    for raw in (DATA / "places.txt").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        city, weight, zip_list = raw.split("|")
        codes = zip_list.split()
        for code in codes:
            cities.append(city.strip())
            zips.append(code)
            weights.append(float(weight) / len(codes))
    w = np.asarray(weights)
    return Places(
        city=pa.array(cities, pa.string()),
        zip=pa.array(zips, pa.string()),
        zip_int=np.asarray([int(z) for z in zips]),
        cdf=np.cumsum(w) / w.sum(),
    )


@functools.cache
def nickname_groups() -> dict[str, tuple[str, ...]]:
    """For each name in nicknames.txt, the other forms of the same name."""
    out: dict[str, list[str]] = {}
    for raw in (DATA / "nicknames.txt").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        forms = [w.strip() for w in raw.split(",") if w.strip()]
        for form in forms:
            alts = out.setdefault(form, [])
            alts.extend(f for f in forms if f != form and f not in alts)
    return {k: tuple(v) for k, v in out.items()}


# --- vectorized string helpers -------------------------------------------------------------------


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate arrays (and literal strings) element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def digits(values: np.ndarray, width: int) -> pa.Array:
    """Non-negative integers as zero-padded text (leading zeros are the point)."""
    return pc.utf8_lpad(pc.cast(pa.array(values.astype(np.int64)), pa.string()), width=width, padding="0")


def text(values: np.ndarray) -> pa.Array:
    """Integers as text without padding."""
    return pc.cast(pa.array(values.astype(np.int64)), pa.string())


def decimal(values: np.ndarray, places_: int) -> pa.Array:
    """Non-negative fixed-point integers (value * 10**places_) as "12.345" text."""
    scale = 10**places_
    v = values.astype(np.int64)
    return join(text(v // scale), ".", digits(v % scale, places_))


def pick(options: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    """Element-wise choice from a short list of strings."""
    return pa.array(list(options), pa.string()).take(pa.array(idx.astype(np.int64)))


def choice_index(rng: np.random.Generator, weights: list[float] | np.ndarray, size: int) -> np.ndarray:
    """Indices drawn with the given relative weights (one uniform per row, so the draw count is fixed)."""
    w = np.asarray(weights, dtype=float)
    cdf = np.cumsum(w) / w.sum()
    return np.searchsorted(cdf, rng.random(size), side="right").clip(0, len(w) - 1)


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of days since 1970-01-01."""
    d = days.astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def days_of(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a calendar date."""
    return int(np.datetime64(f"{year:04d}-{month:02d}-{day:02d}", "D").astype(np.int64))


def days_from_ymd(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of element-wise calendar dates (month and day 1-based)."""
    months = ((year - 1970) * 12 + (month - 1)).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64) + (day - 1)


def mdy(days: np.ndarray) -> pa.Array:
    """MM/DD/YYYY."""
    y, m, d = ymd(days)
    return join(digits(m, 2), "/", digits(d, 2), "/", text(y))


def yyyymmdd(days: np.ndarray) -> pa.Array:
    """YYYYMMDD."""
    y, m, d = ymd(days)
    return join(text(y), digits(m, 2), digits(d, 2))


EXCEL_EPOCH_OFFSET = 25569  # Excel's serial number of 1970-01-01


def messy_dates(rng: np.random.Generator, days: np.ndarray, usual: pa.Array) -> pa.Array:
    """Dates as a hand-kept spreadsheet has them: mostly ``usual``, some M/D/YY, ISO, or Excel serials."""
    y, m, d = ymd(days)
    forms = [
        usual,
        join(text(m), "/", text(d), "/", digits(y % 100, 2)),
        join(text(y), "-", digits(m, 2), "-", digits(d, 2)),
        text(days + EXCEL_EPOCH_OFFSET),
    ]
    which = choice_index(rng, [82, 10, 6, 2], len(days))
    stacked = pa.concat_arrays(forms)
    return stacked.take(pa.array(which * len(days) + np.arange(len(days))))
