"""The roster: the input's own people (names), IDs, e-mail addresses and phone numbers.

This is the one place that decides which columns of an extract feed the free-text scanner and the
residual scan. Every path — ``deid --policy``, ``deid --agreement``, ``prepare``, the app's Prepare flow
and the demo — builds its roster here, from the *whole* input as read: a column feeds the roster
whether the policy releases it, drops it, or (under an agreement) never maps it. A guardian's name is
the guardian's name whether or not "Guardian Name" is in the agreement.

A column feeds the roster when

* the column classifier calls it a person's name, an SSID, a student ID, an SSN, an e-mail address or
  a phone number (by its header, by its values, or both);
* its header names a person's name in a role the classifier leaves out on purpose (it does not flag
  "Teacher Name" as a student identifier, but a teacher's name in a note still names a person):
  student, guardian, parent, emergency contact, teacher, counselor, advisor, case manager …;
* the policy replaces it by a record code or a token (its values are IDs), or drops or codes a column
  whose header says "name" (it was taken out because it names someone).

The roster never leaves the machine; reports name the *columns* that fed it (the sender's schema),
never a value.

A run that holds the input (deid._engine) keeps the roster's columns by reference. A streaming run
(deid._stream) collects it batch by batch with :class:`RosterBuilder` as keyed 64-bit hashes
(deid._strindex.HashSet) — the names' distinct words and, for every name, ID, e-mail address and
phone, 8 bytes — so a million students' roster takes tens of MB, not hundreds, and no value is kept as
text. Its look-ups give what the columns give, except that a value not on the roster may be taken for
one when it shares a 64-bit hash with one (one in ~10^13 look-ups for a million students: a
redaction too many, never one too few).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deid._strindex import HashSet, PairedHashSet, new_key
from deid.errors import PolicyError

if TYPE_CHECKING:
    from deid._policy import Policy
    from deid._textscan import TextScanner

__all__ = ["Roster", "RosterBuilder", "RosterColumns", "roster_columns"]

_ID_KINDS = ("ssid", "student_id", "ssn")
_CODED = ("drop", "record_code", "token")
_NAME_HEADER = re.compile(r"name|\bnm\b", re.IGNORECASE)
# A header naming a person in a role: "Teacher Name", "Counselor", "Emergency Contact", "Parent 2 Name".
_PERSON_ROLE = re.compile(
    r"\b(student|stu|pupil|guardian|parent|mother|mom|father|dad|caregiver|emergency|contact|teacher|tchr|"
    r"counselor|counsellor|advisor|adviser|mentor|coach|case ?manager|caseworker|social ?worker|"
    r"sibling|brother|sister|relative|nurse|principal|staff|homeroom|preferred|legal|nick|given|family)\b",
    re.IGNORECASE,
)
# Roles whose column holds a person's name even without the word "name": "Counselor", "Guardian 1".
_ROLE_ALONE = re.compile(
    r"^\s*(guardian|parent|mother|father|emergency contact|contact person|teacher|homeroom teacher|"
    r"counselor|counsellor|advisor|adviser|case ?manager|caseworker)(\s*\d)?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RosterColumns:
    """The columns (headers as the input has them) that feed the roster, by what they hold."""

    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.names, *self.ids, *self.emails, *self.phones)))

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "names": list(self.names),
            "ids": list(self.ids),
            "emails": list(self.emails),
            "phones": list(self.phones),
        }

    def describe(self) -> str:
        """One line for a report: which columns fed the roster (headers only, never values)."""
        parts = [
            f"{what}: {', '.join(cols)}"
            for what, cols in (
                ("names", self.names),
                ("IDs", self.ids),
                ("e-mail", self.emails),
                ("phone", self.phones),
            )
            if cols
        ]
        return "; ".join(parts) if parts else "no column"


def _kind(flag: Any) -> str:
    return (getattr(flag, "kind", "") or "").lower()


def roster_columns(
    table: pa.Table, flags: dict[str, Any] | None = None, policy: Policy | None = None
) -> RosterColumns:
    """Which columns of ``table`` (an input as read) feed the roster; see the module docstring.

    ``flags`` are the column classifier's (computed here when not given); ``policy``, when its rules
    name this table's columns, adds the columns it codes or tokenizes and the "…name…" columns it drops.
    """
    if flags is None:
        from deid._columns import classify_columns

        flags = classify_columns(table, sample_rows=2000)
    names: list[str] = []
    ids: list[str] = []
    emails: list[str] = []
    phones: list[str] = []
    for col in table.column_names:
        flag = flags.get(col)
        kind = _kind(flag)
        category = getattr(flag, "category", None)
        rule = policy.rule_for(col) if policy is not None else None
        if kind == "email":
            emails.append(col)
        elif kind == "phone":
            phones.append(col)
        elif kind in _ID_KINDS or (rule is not None and rule.treatment in ("record_code", "token")):
            ids.append(col)
        elif kind == "name":
            names.append(col)
        elif category == "free_text" or category == "sensitive":
            continue
        elif _is_person_header(col):
            names.append(col)
        else:
            # A column the policy takes out (drops, codes or tokenizes, or leaves unlisted to be
            # dropped) because it names someone must not reappear in the notes either.
            unlisted_dropped = bool(policy is not None and policy.drop_unlisted)
            treated = (rule.treatment in _CODED) if rule is not None else unlisted_dropped
            if treated and _NAME_HEADER.search(col):
                names.append(col)
    return RosterColumns(tuple(names), tuple(ids), tuple(emails), tuple(phones))


def _is_person_header(header: str) -> bool:
    """A header naming a person's name in some role ("Teacher Name", "Counselor", "Guardian 2")."""
    h = re.sub(r"[_\-.]+", " ", re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)).strip()
    if _ROLE_ALONE.match(h):
        return True
    return bool(_NAME_HEADER.search(h) and _PERSON_ROLE.search(h))


@dataclass
class Roster:
    """The input's own names, IDs, e-mail addresses and phone numbers — what the scanner searches the
    notes for, and what the residual scan looks for in whole cells of the output.

    The columns are kept by reference (the input's own buffers), row-aligned with the table being
    de-identified: in row *i* the names of row *i* are found even when they are ordinary words.
    Lookups go from an output column's (few) distinct values into the input columns, so no set of a
    million IDs is ever built for them.
    """

    columns: RosterColumns = field(default_factory=RosterColumns)
    _data: dict[str, pa.ChunkedArray] = field(default_factory=dict)
    _scanner: Any = None
    _hashed: _HashedRoster | None = None  # a streaming run's roster (RosterBuilder) instead of _data

    @classmethod
    def from_table(
        cls, table: pa.Table, policy: Policy | None = None, flags: dict[str, Any] | None = None
    ) -> Roster:
        """The roster of ``table`` (the input as read, every column); see :func:`roster_columns`."""
        cols = roster_columns(table, flags, policy)
        return cls(cols, {c: table.column(c) for c in cols.all()})

    def merged(self, other: Roster) -> Roster:
        """This roster and ``other`` (of a table with the same rows) together; columns of the same
        header are kept once."""
        if self._hashed is not None or other._hashed is not None:
            raise ValueError("a roster collected batch by batch is not merged with another")
        data = {**other._data, **self._data}
        merge = lambda a, b: tuple(dict.fromkeys((*a, *b)))  # noqa: E731
        cols = RosterColumns(
            merge(self.columns.names, other.columns.names),
            merge(self.columns.ids, other.columns.ids),
            merge(self.columns.emails, other.columns.emails),
            merge(self.columns.phones, other.columns.phones),
        )
        return Roster(cols, data)

    @property
    def num_rows(self) -> int | None:
        if self._hashed is not None:
            return None  # (no rows: distinct values only)
        lengths = {len(c) for c in self._data.values()}
        return lengths.pop() if len(lengths) == 1 else None

    def _cols(self, headers: Sequence[str]) -> list[pa.ChunkedArray]:
        return [self._data[h] for h in headers]

    def scanner(self) -> TextScanner:
        """The free-text scanner for this roster (built once, on first use)."""
        if self._scanner is None and self._hashed is not None:
            from deid._textscan import TextScanner

            h = self._hashed
            self._scanner = TextScanner(
                h.name_words, h.ids.normalized, roster_emails=h.emails.normalized,
                roster_phones=h.phones.normalized,
            )
        if self._scanner is None:
            from deid._textscan import TextScanner

            names = self._cols(self.columns.names)
            self._scanner = TextScanner(
                _concat(names),
                _concat(self._cols(self.columns.ids)),
                row_names=names,
                roster_emails=_concat(self._cols(self.columns.emails)),
                roster_phones=_concat(self._cols(self.columns.phones)),
            )
        return self._scanner

    def ids_among(self, values: pa.Array) -> pa.Array:
        """Those of ``values`` (normalized: trimmed, uppercase) found in the input's ID columns."""
        if self._hashed is not None:
            return _among_set(values, [self._hashed.ids.raw], spellings=False)
        return _among(values, self._cols(self.columns.ids), spellings=False)

    def names_among(self, values: pa.Array) -> pa.Array:
        """Those of ``values`` (normalized) found in the input's name columns."""
        if self._hashed is not None:
            return _among_set(values, [self._hashed.names], spellings=True)
        return _among(values, self._cols(self.columns.names), spellings=True)

    def contacts_among(self, values: pa.Array) -> pa.Array:
        """Those of ``values`` (normalized) found in the input's e-mail or phone columns."""
        if self._hashed is not None:
            sets = [self._hashed.emails.raw, self._hashed.phones.raw]
            return _among_set(values, sets, spellings=True)
        return _among(values, self._cols((*self.columns.emails, *self.columns.phones)), spellings=True)

    @property
    def nbytes(self) -> int:
        """The memory the roster holds of its own (a roster of columns shares the input's buffers)."""
        return self._hashed.nbytes() if self._hashed is not None else 0


def _concat(columns: list[pa.ChunkedArray]) -> pa.Array:
    """The non-null values of ``columns`` as one string array."""
    arrays: list[pa.Array] = []
    for col in columns:
        for chunk in col.chunks:
            if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
                chunk = pc.cast(chunk, pa.string())
            arrays.append(pc.drop_null(chunk).cast(pa.string()))
    return pa.concat_arrays(arrays) if arrays else pa.array([], pa.string())


def _among(values: pa.Array, columns: list[pa.ChunkedArray], *, spellings: bool) -> pa.Array:
    if not len(values) or not columns:
        return pa.array([], pa.string())
    # Input cells are compared as written (IDs: in capitals) and, for names, as usually spelled.
    variants = (
        pc.unique(pa.concat_arrays([values, pc.utf8_title(values), pc.utf8_lower(values)]))
        if spellings
        else values
    )
    found = []
    for col in columns:
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            col = pc.cast(col, pa.string())
        hits = pc.filter(col, pc.is_in(col, value_set=variants))
        if len(hits):
            found.append(pc.unique(pc.utf8_upper(pc.utf8_trim_whitespace(hits))).cast(pa.string()))
    if not found:
        return pa.array([], pa.string())
    return pc.unique(pa.concat_arrays(found))


def _spellings(values: pa.Array) -> pa.Array:
    # Input cells are compared as written (IDs: in capitals) and, for names, as usually spelled.
    return pc.unique(pa.concat_arrays([values, pc.utf8_title(values), pc.utf8_lower(values)]))


def _among_set(values: pa.Array, sets: list[Any], *, spellings: bool) -> pa.Array:
    """:func:`_among` on hashed sets: a spelling of a value that is on the roster *is* the cell as the
    input wrote it, so what it returns — the cell trimmed, in capitals — comes from the spelling."""
    if not len(values) or not sets:
        return pa.array([], pa.string())
    variants = _spellings(values) if spellings else values
    variants = variants.cast(pa.string())
    hit = np.zeros(len(variants), dtype=bool)
    for s in sets:
        hit |= s.contains(variants)
    if not hit.any():
        return pa.array([], pa.string())
    hits = variants.filter(pa.array(hit))
    return pc.unique(pc.utf8_upper(pc.utf8_trim_whitespace(hits))).cast(pa.string())


@dataclass
class _HashedRoster:
    names: HashSet  # name cells as written (the residual scan's "a column of names")
    name_words: pa.Array  # the names' distinct words (the scanner's name tokens come from them)
    ids: PairedHashSet  # as written (residual) and as the scanner searches for them
    emails: PairedHashSet
    phones: PairedHashSet

    def nbytes(self) -> int:
        sets = [self.names, *(getattr(p, n) for p in (self.ids, self.emails, self.phones)
                              for n in ("_same", "_formed", "_written"))]
        return sum(s.nbytes for s in sets) + self.name_words.nbytes


class RosterBuilder:
    """The roster of an input read in batches (a streaming run's pass 3): :meth:`add` each batch (its
    roster columns at least), then :meth:`finish`. Keeps keyed hashes and the names' distinct words,
    never the values (module docstring); the hashes take 8 bytes a distinct value, whatever its
    length, and each batch adds only its own distinct values."""

    def __init__(self, columns: RosterColumns) -> None:
        from deid._textscan import roster_email_forms, roster_id_forms, roster_phone_forms

        self.columns = columns
        key = new_key()  # one per roster: its sets are never compared with another run's
        self._names = HashSet(key)
        self._words: list[pa.Array] = []
        self._words_n = 0
        self._ids = PairedHashSet(roster_id_forms, key)
        self._emails = PairedHashSet(roster_email_forms, key)
        self._phones = PairedHashSet(roster_phone_forms, key)

    def add(self, batch: pa.Table) -> None:
        for what, cols in (
            (self._ids, self.columns.ids),
            (self._emails, self.columns.emails),
            (self._phones, self.columns.phones),
        ):
            for c in cols:
                what.add(_distinct_text(batch.column(c)))
        for c in self.columns.names:
            cells = _distinct_text(batch.column(c))
            self._names.add(cells)
            words = pc.unique(pc.utf8_split_whitespace(cells).flatten()).cast(pa.string())
            self._words.append(words)
            self._words_n += len(words)
            if len(self._words) > 1 and self._words_n > 1 << 18:  # merge as we go: words recur
                self._words = [pc.unique(pa.concat_arrays(self._words))]
                self._words_n = len(self._words[0])

    def finish(self) -> Roster:
        for p in (self._ids, self._emails, self._phones):
            p.finish()
        words = pc.unique(pa.concat_arrays(self._words)) if self._words else pa.array([], pa.string())
        hashed = _HashedRoster(self._names, words, self._ids, self._emails, self._phones)
        return Roster(self.columns, {}, None, hashed)


def _distinct_text(col: pa.ChunkedArray) -> pa.Array:
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return pc.drop_null(pc.unique(col)).cast(pa.string())


def check_aligned(roster: Roster, rows: int) -> None:
    """A roster given with a table must come from the same rows (the per-row name rule needs it)."""
    n = roster.num_rows
    if n is not None and n != rows:
        raise PolicyError(
            f"The roster has {n:,} rows but the table has {rows:,}; build it from the same extract."
        )
