"""Generalization hierarchies: how a quasi-identifier's released value can be made coarser, step by step.

A hierarchy is data (``"hierarchy"`` of an element in ``deid/data/elements.json``, or given by an agreement
or a policy file). Level 0 is the value as the element's treatment releases it (a birth year, a ZIP3, a
CALPADS race code); each defined level is coarser than the one before; the last level, ``removed``,
takes the quasi-identifier out of the release (unless the hierarchy says it may not be removed).

Kinds of levels:

* ``map``: groups of codes — ``{"name": "federal", "groups": {"Asian": ["201", "202", …]}, "default":
  "Other"}``: each listed code becomes its group's label, any other value ``default`` (or itself).
  Every level lists groups of the *original* codes, so they are easy to read and to restrict.
* ``date``: ``month``, ``quarter``, ``year`` or bands of years (``{"name": "2_years", "years": 2}``);
  works on ``YYYY-MM-DD``, ``YYYY-MM`` and ``YYYY`` values, and bands ages (whole numbers) the same way.
* ``prefix``: keep the first ``keep`` characters (``917`` → ``91x`` → ``9xx``): ZIP codes.
* ``number``: bands of ``width`` (``15`` → ``14-15``), aligned at 0.
* ``rare`` (as the last defined level of any kind): values held by fewer than ``min_count`` rows
  (default: the agreement's k) become ``Other``.

A hierarchy must be **monotone**: two values that share a group at one level share it at every coarser
level (otherwise the search's pruning would be wrong and a "coarser" level could reveal more).
:func:`hierarchy_from_dict` checks it and says in one sentence which element and which codes break it.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from deid.errors import PolicyError

KINDS = ("map", "date", "prefix", "number")
REMOVED = "removed"
ORIGINAL = "as released"
OTHER = "Other"
_DATE_STEPS = {"month": 1, "quarter": 2, "year": 3}
_LEVEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class Level:
    """One coarser step of a hierarchy (see the module docstring for the keys of each kind)."""

    name: str
    label: str = ""
    groups: Mapping[str, str] = field(default_factory=dict)  # map: code -> group label
    default: str | None = None  # map: the label of any value no group lists (None: kept as it is)
    keep: int = 0  # prefix
    width: int = 0  # number, date bands (years)
    date_step: str = ""  # date: month / quarter / year / band
    rare: bool = False  # values with fewer than min_count rows become Other
    min_count: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.label:
            out["label"] = self.label
        if self.rare:
            out["rare"] = True
            if self.min_count:
                out["min_count"] = self.min_count
            return out
        if self.groups:
            grouped: dict[str, list[str]] = {}
            for code, label in self.groups.items():
                grouped.setdefault(label, []).append(code)
            out["groups"] = grouped
        if self.default is not None:
            out["default"] = self.default
        if self.keep:
            out["keep"] = self.keep
        if self.width:
            out["years" if self.date_step else "width"] = self.width
        return out


@dataclass(frozen=True)
class Hierarchy:
    """A quasi-identifier's generalization levels (level 0, the defined levels, then ``removed``)."""

    element: str
    kind: str
    levels: tuple[Level, ...] = ()
    removable: bool = True

    @property
    def level_names(self) -> list[str]:
        """``as released``, each defined level's name, and ``removed`` when allowed."""
        return [ORIGINAL, *(lv.name for lv in self.levels), *([REMOVED] if self.removable else [])]

    def describe(self) -> str:
        """The hierarchy in plain words, for the codebook."""
        steps = [lv.label or lv.name.replace("_", " ") for lv in self.levels]
        if self.removable:
            steps.append("left out of the release")
        return " → ".join(["as released", *steps])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "levels": [lv.to_dict() for lv in self.levels],
            **({} if self.removable else {"removable": False}),
        }

    def restricted(self, allowed: Sequence[str] | None, removable: bool | None) -> Hierarchy:
        """The hierarchy with only the ``allowed`` level names (an agreement's restriction; a chain's
        sub-chain stays monotone) and ``removable`` when given. PolicyError names an unknown level."""
        levels = self.levels
        if allowed is not None:
            known = {lv.name for lv in self.levels}
            unknown = [a for a in allowed if a not in known]
            if unknown:
                raise PolicyError(
                    f"The hierarchy of element {self.element} has no level {unknown[0]!r} "
                    f"(it has {', '.join(sorted(known)) or 'no levels'})."
                )
            levels = tuple(lv for lv in self.levels if lv.name in set(allowed))
        return Hierarchy(self.element, self.kind, levels, self.removable if removable is None else removable)

    # ---- applying a level to the distinct values of a column

    def generalize(self, values: Sequence[str], counts: Sequence[int], level: int, k: int) -> list[str]:
        """The label of each distinct released value (``values``, held by ``counts`` rows) at ``level``
        (1 … len(levels)); ``k`` is the default ``min_count`` of a ``rare`` level."""
        lv = self.levels[level - 1]
        if lv.rare:
            base = self.generalize(values, counts, level - 1, k) if level > 1 else list(values)
            totals: dict[str, int] = {}
            for b, c in zip(base, counts, strict=True):
                totals[b] = totals.get(b, 0) + int(c)
            need = lv.min_count or k
            return [OTHER if totals[b] < need else b for b in base]
        return [_apply(self.kind, lv, v) for v in values]


def _apply(kind: str, lv: Level, value: str) -> str:
    if kind == "map":
        got = lv.groups.get(value)
        if got is not None:
            return got
        return value if lv.default is None else lv.default
    if kind == "prefix":
        return value[: lv.keep] + "x" * max(0, len(value) - lv.keep)
    if kind == "number":
        return _band(value, lv.width)
    return _date(value, lv)


def _band(value: str, width: int) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    lo = int(number // width) * width
    return f"{lo}-{lo + width - 1}"


_YMD = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def _date(value: str, lv: Level) -> str:
    m = _YMD.match(value)
    if m is None:
        if re.fullmatch(r"\d{1,3}", value) and lv.width:  # an age in years
            return _band(value, lv.width)
        return value
    year, month = int(m.group(1)), m.group(2)
    if lv.date_step == "month":
        return value[:7]
    if lv.date_step == "quarter":
        return f"{year}-Q{(int(month) - 1) // 3 + 1}" if month else value
    if lv.date_step == "year":
        return str(year)
    lo = year // lv.width * lv.width
    return f"{lo}-{lo + lv.width - 1}"


# ------------------------------------------------------------------------------------- parsing


def hierarchy_from_dict(element: str, data: Any, *, where: str = "") -> Hierarchy:
    """A validated hierarchy from its JSON form; PolicyError (one sentence naming the element)."""
    about = f"The hierarchy of element {element}{' in ' + where if where else ''}"
    if not isinstance(data, Mapping):
        raise PolicyError(f"{about} must be an object with a kind and levels.")
    unknown = set(data) - {"kind", "levels", "removable"}
    if unknown:
        raise PolicyError(f"{about} has an unknown setting {sorted(unknown)[0]!r}.")
    kind = data.get("kind")
    if kind not in KINDS:
        raise PolicyError(f"{about} has kind {kind!r}; use one of {', '.join(KINDS)}.")
    raw_levels = data.get("levels", [])
    if not isinstance(raw_levels, list):
        raise PolicyError(f"{about} must list its levels.")
    removable = data.get("removable", True)
    if not isinstance(removable, bool):
        raise PolicyError(f"{about}: 'removable' must be true or false.")
    levels = [_level(kind, raw, about) for raw in raw_levels]
    names = [lv.name for lv in levels]
    if len(set(names)) != len(names):
        raise PolicyError(f"{about} names a level twice.")
    for i, lv in enumerate(levels):
        if lv.rare and i != len(levels) - 1:
            raise PolicyError(
                f"{about}: the level {lv.name!r} that makes rare values Other must be the last."
            )
    hierarchy = Hierarchy(element, kind, tuple(levels), removable)
    _check_monotone(hierarchy, about)
    return hierarchy


def _level(kind: str, raw: Any, about: str) -> Level:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"{about}: each level must be an object with a name.")
    name = raw.get("name")
    if not isinstance(name, str) or not _LEVEL_NAME.match(name) or name == REMOVED:
        raise PolicyError(
            f"{about} has a level with an invalid name {name!r} (lower-case letters, digits, _)."
        )
    label = str(raw.get("label", ""))
    if raw.get("rare"):
        mc = raw.get("min_count")
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, int) or mc < 1):
            raise PolicyError(f"{about}: 'min_count' of level {name!r} must be a whole number of at least 1.")
        return Level(name, label or "rare values grouped as Other", rare=True, min_count=mc)
    if kind == "map":
        groups = raw.get("groups")
        if not isinstance(groups, Mapping) or not groups:
            raise PolicyError(f"{about}: level {name!r} needs 'groups' (group label: list of codes).")
        by_code: dict[str, str] = {}
        for group, codes in groups.items():
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise PolicyError(f"{about}: group {group!r} of level {name!r} must list codes.")
            for code in codes:
                if code in by_code:
                    raise PolicyError(
                        f"{about}: code {code!r} is in two groups of level {name!r} "
                        f"({by_code[code]!r} and {group!r})."
                    )
                by_code[code] = str(group)
        default = raw.get("default")
        if default is not None and not isinstance(default, str):
            raise PolicyError(f"{about}: 'default' of level {name!r} must be a label.")
        return Level(name, label, groups=by_code, default=default)
    if kind == "prefix":
        keep = raw.get("keep")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 0:
            raise PolicyError(f"{about}: level {name!r} needs 'keep', a number of leading characters.")
        return Level(name, label, keep=keep)
    if kind == "number":
        width = raw.get("width")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise PolicyError(f"{about}: level {name!r} needs 'width', a whole number of at least 1.")
        return Level(name, label, width=width)
    if name in _DATE_STEPS and "years" not in raw:
        return Level(name, label, date_step=name)
    years = raw.get("years")
    if isinstance(years, bool) or not isinstance(years, int) or years < 2:
        raise PolicyError(
            f"{about}: level {name!r} must be month, quarter or year, or give 'years' (a band of 2 or more)."
        )
    return Level(name, label, width=years, date_step="band")


def _check_monotone(h: Hierarchy, about: str) -> None:
    """Two values grouped together at one level must stay together at every coarser level."""
    levels = [lv for lv in h.levels if not lv.rare]  # a rare level groups by its predecessor: monotone
    for a, b in itertools.pairwise(levels):
        problem = _split(h.kind, a, b)
        if problem:
            raise PolicyError(
                f"{about} is not monotone between levels {a.name!r} and {b.name!r} ({problem}); make each "
                "level group whole groups of the level before it."
            )


def _split(kind: str, a: Level, b: Level) -> str:
    if kind == "map":
        codes = set(a.groups) | set(b.groups)
        together: dict[str, str] = {}
        for code in sorted(codes):
            ga, gb = _apply(kind, a, code), _apply(kind, b, code)
            if a.default is not None and code not in a.groups:
                ga = "\0default"
            if ga in together and together[ga] != gb:
                return f"codes grouped as {_shown(ga, a)} are split into {together[ga]!r} and {gb!r}"
            together[ga] = gb
        # a value listed nowhere at a but grouped at b: the default group of a would be split
        if a.default is not None and b.default is None and any(c not in a.groups for c in b.groups):
            return f"values grouped as {a.default!r} are not all grouped together"
        return ""
    if kind == "prefix":
        return (
            ""
            if b.keep < a.keep
            else f"keeping {a.keep} characters groups values that keeping {b.keep} does not"
        )
    if kind == "number":
        return (
            "" if b.width % a.width == 0 else f"bands of {a.width} are not whole parts of bands of {b.width}"
        )
    rank = {"month": 0, "quarter": 1, "year": 2, "band": 3}
    if rank[a.date_step] > rank[b.date_step]:
        return f"{a.name} is finer than {b.name}"
    if a.date_step == b.date_step == "band" and b.width % a.width:
        return f"bands of {a.width} years are not whole parts of bands of {b.width} years"
    if a.date_step == b.date_step != "band":
        return f"{a.name} and {b.name} are the same step"
    return ""


def _shown(group: str, lv: Level) -> str:
    return repr(lv.default) if group == "\0default" else repr(group)
