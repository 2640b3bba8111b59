"""The bundled name lists the free-text scanner uses for names that are not on the file's roster.

Three lists ship in ``deid/data/names`` (sources, licences and how they were built:
``deid/data/names/SOURCES.md``):

- ``given_names.txt`` — 22,000 given names: the US Census Bureau's 1990 given-name lists and the
  given names of Faker's 80 locales (Latin script: Spanish, Vietnamese, Filipino, Armenian, Korean,
  Chinese and Japanese romanized, Indian, Arabic, Russian and Ukrainian romanized, African, European …);
- ``surnames.txt`` — 104,000 surnames: the Census Bureau's 1990 surname list (88,799) and Faker's;
- ``place_names.txt`` — the names in those lists that are also names of places (GeoNames: cities of
  15,000 people or more, countries, US states), less the Census Bureau's 1,000 most frequent given
  names of each sex: "London" or "Phoenix" alone is a place;
- ``english_words.txt`` — 64,000 lower-case English words (SCOWL, as in Debian's ``wamerican``): a
  name that is also an ordinary word ("Will", "Grace", "Young", "Hope") is never taken alone;
- ``demonyms.txt`` — 167 nationalities in lower case ("cambodian", "german"), counted as English
  words: "I am cambodian", "the film English graffiti", "a nice new German place" name no one.
"""

from __future__ import annotations

import functools
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc


def _read(name: str) -> list[str]:
    text = resources.files("deid").joinpath("data", "names", name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


@functools.lru_cache(maxsize=1)
def demonyms() -> frozenset[str]:
    """Nationalities in lower case ("cambodian", "german"): words, never a name alone."""
    return frozenset(_read("demonyms.txt"))


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    # (a nationality is an English word, though SCOWL lists most of them only capitalized)
    return frozenset(_read("english_words.txt")) | demonyms()


@functools.lru_cache(maxsize=1)
def english_words_array() -> pa.Array:
    return pa.array(sorted(english_words()), pa.string())


@functools.lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    return frozenset(_read("given_names.txt"))


@functools.lru_cache(maxsize=1)
def given_names_array() -> pa.Array:
    return pa.array(sorted(given_names()), pa.string())


@functools.lru_cache(maxsize=1)
def surnames() -> frozenset[str]:
    return frozenset(_read("surnames.txt"))


@functools.lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    return frozenset(_read("place_names.txt"))


_CALENDAR = frozenset(
    """January February March April May June July August September October November December
    Monday Tuesday Wednesday Thursday Friday Saturday Sunday""".split()  # noqa: SIM905
)


def _forms(names: pa.Array) -> pa.Array:
    """Each name as written and title-cased, and each of those without accents. (Not in capitals: a
    listed name in capitals is as often an acronym — "IBAN", "HA" — as a name.)"""
    titled = pc.utf8_title(names)
    forms = pa.concat_arrays([names, titled])
    plain = pc.replace_substring_regex(pc.utf8_normalize(forms, "NFD"), r"\p{Mn}+", "")
    return pc.unique(pa.concat_arrays([forms, plain]))


@functools.lru_cache(maxsize=1)
def name_sets() -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """(given, given_word, surname, ambiguous) token sets in every written form.

    *given*: given names of three letters or more that are not English words — a name alone.
    *given_word*: given names that are also English words ("Grace", "Will", "Hope") — title-cased
    only: a name mid-sentence, never at the start of a sentence or after an article.
    *surname*: surnames that are neither given names nor English words — a name beside a name.
    *ambiguous*: surnames that are also English words ("Young", "Brown") and names that are also
    places ("London", "Paris"; GeoNames) — a name beside a name.
    """
    english = english_words()
    places = place_names()
    # (a nationality is no given name alone: "German", "Irish" — beside a name it is a surname)
    given = given_names() - _CALENDAR - places - {d.title() for d in demonyms()}
    sur = surnames() - _CALENDAR - places
    strong = sorted(n for n in given if len(n) >= 3 and n.lower() not in english)
    given_word = sorted(n for n in given if len(n) >= 3 and n.lower() in english)
    surname = sorted(n for n in sur if n.lower() not in english and n not in given)
    ambiguous = sorted((sur - given) & {n for n in sur if n.lower() in english} | places)
    return (
        _not_words(_forms(pa.array(strong, pa.string()))),
        pc.utf8_title(pa.array(given_word, pa.string())),
        _not_words(_forms(pa.array(surname, pa.string()))),
        _forms(pa.array(ambiguous, pa.string())),
    )


def _not_words(forms: pa.Array) -> pa.Array:
    """``forms`` less those that are an English word or a place once their accents are gone: "Bót" and
    "Royál" are names, but "Bot" and "Royal" are words; "África" is a name, "Africa" a continent."""
    places = pa.array(sorted(place_names()), pa.string())
    word = pc.is_in(pc.utf8_lower(forms), value_set=english_words_array())
    return forms.filter(pc.invert(pc.or_(word, pc.is_in(forms, value_set=places))))
