"""What the generator knows about what it made: who each row is, where PII was planted, what each
column holds. Written as one compact JSON document, read back with ``Truth.load``.

The JSON (format 1)::

    {"pathshare_synth_truth": 1, "kind": "k12", "seed": 0, "rows": N, "messy": false,
     "encoding": "utf-8" | "cp1252" | "utf-8-sig", "reference_date": "2026-06-30",
     "columns": [[header, element or null], ...],          # file order
     "notes_column": "Counselor Notes" | null,
     "person_id": [N ints],
     "span_kinds": ["PERSON", ...], "span_sources": ["", "student_first_name", ...],
     "spans": {"row": [...], "kind": [index into span_kinds], "start": [...], "end": [...],
               "source": [index into span_sources]},
     "noise": [N ints] | null, "noise_flags": ["nickname", ...],   # college only
     "ragged_rows": [{"row": r, "fields": f}, ...]}                # messy only
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from deid._atomic import atomic_open
from deid._synth._notes import SPAN_KINDS, SPAN_SOURCES
from deid.errors import InputError

TRUTH_FORMAT = 1


def _codes(values: list[str], names: tuple[str, ...]) -> list[int]:
    index = {name: i for i, name in enumerate(names)}
    return [index[v] for v in values]


@dataclass
class Truth:
    """The generator's truth for one synthetic file.

    - ``person_id[i]``: the person in data row ``i`` (0-based, header not counted). K-12 person ``p`` has
      id ``p`` (so in a K-12 file ``person_id[i] == i``); college-only people have ids from 1,000,000,000.
      A college row and a K-12 row with the same id are the same student.
    - ``spans``: planted PII in the notes column: parallel arrays ``row``, ``kind`` (one of
      PERSON, PHONE_NUMBER, EMAIL_ADDRESS, US_SSN, STUDENT_ID), ``start``, ``end`` (character offsets,
      end exclusive, in the cell's text as the file decodes), ``source`` (whose value: e.g.
      student_first_name, guardian_name, staff_last_name, ssn; see deid.synth.SPAN_SOURCES), sorted
      by row then start.
    - ``columns``: (header, element) for every column in file order; a messy file's duplicate header
      appears twice and its trailing empty-named columns map to ``None``.
    - ``noise``: college files only: per row, a bit set over ``noise_flags`` (what was changed from the
      K-12 record of the same person); 0 for college-only people.
    - ``ragged_rows``: messy files only: data rows written with ``fields`` cells instead of the header's.
    """

    kind: str
    seed: int
    rows: int
    messy: bool
    person_id: np.ndarray
    columns: list[tuple[str, str | None]]
    notes_column: str | None = None
    spans: dict[str, np.ndarray] = field(default_factory=dict)
    noise: np.ndarray | None = None
    noise_flags: tuple[str, ...] = ()
    ragged_rows: list[dict[str, int]] = field(default_factory=list)
    encoding: str = "utf-8"
    reference_date: str = "2026-06-30"

    def span_text(self, notes: list[str] | np.ndarray, i: int) -> str:
        """The text of span ``i`` given the notes column."""
        return str(notes[int(self.spans["row"][i])])[int(self.spans["start"][i]) : int(self.spans["end"][i])]

    def column_elements(self) -> dict[str, str]:
        """Header → element for the named columns (first occurrence of a duplicate header)."""
        out: dict[str, str] = {}
        for header, element in self.columns:
            if header and element and header not in out:
                out[header] = element
        return out

    def to_dict(self) -> dict:
        """The JSON-ready document."""
        return {
            "pathshare_synth_truth": TRUTH_FORMAT,
            "kind": self.kind,
            "seed": self.seed,
            "rows": self.rows,
            "messy": self.messy,
            "encoding": self.encoding,
            "reference_date": self.reference_date,
            "columns": [[h, e] for h, e in self.columns],
            "notes_column": self.notes_column,
            "person_id": self.person_id.tolist(),
            # Kinds and sources as indices into these lists keep a million-row truth small.
            "span_kinds": list(SPAN_KINDS),
            "span_sources": list(SPAN_SOURCES),
            "spans": {
                "row": self._list("row"),
                "kind": _codes(self._list("kind"), SPAN_KINDS),
                "start": self._list("start"),
                "end": self._list("end"),
                "source": _codes(self._list("source"), SPAN_SOURCES),
            },
            "noise": None if self.noise is None else self.noise.tolist(),
            "noise_flags": list(self.noise_flags),
            "ragged_rows": self.ragged_rows,
        }

    def _list(self, key: str) -> list:
        return self.spans[key].tolist() if key in self.spans else []

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the truth as compact JSON, atomically (an existing file is replaced only with ``force``)."""
        with atomic_open(path, "w", 0o600, force=force) as fh:
            json.dump(self.to_dict(), fh, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Truth:
        """Read a truth file written by ``save``."""
        try:
            with open(path, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            raise InputError(f"Cannot read the truth file {path}: {exc.__class__.__name__}.") from exc
        if not isinstance(doc, dict) or doc.get("pathshare_synth_truth") != TRUTH_FORMAT:
            raise InputError(f"{path} is not a PathShare synthetic-data truth file.")
        spans = doc["spans"]
        kinds = np.asarray(doc.get("span_kinds", SPAN_KINDS), dtype=object)
        sources = np.asarray(doc.get("span_sources", SPAN_SOURCES), dtype=object)
        return cls(
            kind=doc["kind"],
            seed=doc["seed"],
            rows=doc["rows"],
            messy=doc["messy"],
            person_id=np.asarray(doc["person_id"], dtype=np.int64),
            columns=[(h, e) for h, e in doc["columns"]],
            notes_column=doc["notes_column"],
            spans={
                "row": np.asarray(spans["row"], dtype=np.int64),
                "kind": kinds[np.asarray(spans["kind"], dtype=np.int64)],
                "start": np.asarray(spans["start"], dtype=np.int64),
                "end": np.asarray(spans["end"], dtype=np.int64),
                "source": sources[np.asarray(spans["source"], dtype=np.int64)],
            },
            noise=None if doc["noise"] is None else np.asarray(doc["noise"], dtype=np.int64),
            noise_flags=tuple(doc["noise_flags"]),
            ragged_rows=list(doc["ragged_rows"]),
            encoding=doc.get("encoding", "utf-8"),
            reference_date=doc.get("reference_date", "2026-06-30"),
        )
