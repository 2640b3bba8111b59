"""The de-identification report: what went in, what came out, what was done, what risk remains.

:class:`DeidReport` is plain data (JSON via :meth:`DeidReport.to_dict`) and never holds a cell value:
counts, column names, row numbers, kinds. :meth:`DeidReport.summary` says it in plain words for the
data clerk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from deid._atomic import write_bytes_atomic
from deid.errors import OutputError

REPORT_VERSION = 1
RECIPIENT_INPUT = "the extract"  # what a report that leaves calls the input (never its file name)

# What an empty cell of a released file means, for the analyst (a package's datapackage.json declares
# them as the Table Schema's missingValues, its codebook and report explain them). Releases made by the
# disclosure-control search carry a companion column (deid._disclosure.SUPPRESSED_COLUMN) naming, per
# row, the quasi-identifiers whose value was withheld; releases made by greedy suppression do not, and
# there an empty cell may be either.
MISSING_VALUES: tuple[tuple[str, str], ...] = (
    (
        "",
        "missing in the extract, or withheld to protect privacy: where the file has a qi_withheld "
        "column, it names the row's withheld columns (see the release report)",
    ),
)
_GROUPS_SHOWN = 25  # values per quasi-identifier in suppression_by_group (the most common first)


@dataclass
class ColumnReport:
    """One output column: where it came from, how it was treated, how many cells the treatment changed
    (``cells_changed``) and how many k-anonymity then emptied (``suppressed_cells``)."""

    name: str
    source: str
    treatment: str
    cells_changed: int
    quasi_identifier: bool = False
    suppressed_cells: int = 0
    redacted_by_kind: dict[str, int] = field(default_factory=dict)  # redact_text: pieces replaced per kind


@dataclass
class ResidualFinding:
    """Something that still looks identifying in the output: a place and a kind, never the value."""

    column: str
    # 1-based data row of the input extract (the header not counted). The output file's rows are in a
    # random order (deid._io.write_release), so this is where to look in the extract, not in the output.
    row: int
    kind: str


@dataclass
class DeidReport:
    """Everything a reviewer needs to judge a de-identified file (see docs/policy-format.md, "The report")."""

    input: str
    output: str | None
    rows_in: int
    rows_out: int
    k_required: int
    k_achieved: int | None
    quasi_identifiers: list[str]
    suppressed_cells: int
    rows_with_suppression: int
    columns: list[ColumnReport]
    dropped_columns: list[str]
    residual_findings: list[ResidualFinding]
    residual_findings_total: int = 0
    residual_findings_by_column: dict[str, int] = field(default_factory=dict)
    # per kind (PERSON, PHONE_NUMBER, …): what redaction replaced, and what the residual scan still found
    redacted_by_kind: dict[str, int] = field(default_factory=dict)
    residual_by_kind: dict[str, int] = field(default_factory=dict)
    # free-text output columns the scan could not check for the rows' own names (no name column in the
    # input): the seal gate refuses them
    text_unchecked: list[str] = field(default_factory=list)
    rows_fully_suppressed: int = 0
    rows_with_empty_qi: int = 0
    records_at_risk_before: int = 0
    equivalence_classes: int = 0
    passed_through: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    input_format: str | None = None
    input_encoding: str | None = None
    output_sha256: str | None = None
    reference_date: str | None = None
    created: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    policy: dict[str, Any] | None = None
    # Headers of the input columns whose values the notes were searched for ({"names": [...], "ids":
    # [...], "emails": [...], "phones": [...]}): the sender's schema, so it stays in the local report
    # (see :meth:`for_recipient`).
    roster_columns: dict[str, list[str]] = field(default_factory=dict)
    # The disclosure-control search's result (deid._disclosure.DisclosureResult.to_dict()): levels
    # chosen, loss, risk before/after, l and t, the fairness table, candidates. None: greedy suppression.
    disclosure: dict[str, Any] | None = None
    # Per quasi-identifier, per value it had before suppression (groups of at least k rows only):
    # {"rows", "rows_with_suppression", "share"} — who lost cells to k-anonymity (suppression_by_group).
    suppression_by_group: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # The extract's columns, and how many of them the release leaves out (never sent: names, IDs,
    # anything unmapped or dropped by the agreement) — the one count every screen and the recipient show
    # (describe_left_out). None when the caller did not map an extract (the engine alone).
    extract_columns: int | None = None
    extract_columns_left_out: int | None = None
    # Their headers: the sender's schema, so only in the local report (see for_recipient).
    left_out_headers: list[str] = field(default_factory=list)
    pathshare_report: int = REPORT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)

    def to_json(self) -> str:
        """The report as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def write(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the JSON report atomically (OutputError naming ``path`` if the system refuses; an
        existing file is replaced only with ``force``)."""
        try:
            write_bytes_atomic(path, self.to_json().encode("utf-8"), perm=0o644, force=force)
        except OSError as exc:
            raise OutputError(
                f"Cannot write the report {path}: {exc.strerror or 'the system refused'}."
            ) from None

    def for_recipient(self) -> dict[str, Any]:
        """The report as it may leave the organization (``report.json`` in a package): as
        :meth:`to_dict`, without what describes the sender's own extract beyond the released columns
        (the headers that fed the roster) and without anything about the sender's machine. The input
        is called "the extract" (its file name often holds a user's or a folder's name; a note or
        warning that quoted it is reworded); no timings (the machine's speed), no input format or
        encoding (a Windows code page says what made the file), no output hash (the manifest carries
        the hash of what is sealed). What remains is counts, column names, kinds, the policy, dates."""
        data = self.to_dict()
        data.pop("roster_columns", None)
        if data.get("disclosure"):
            # Per-group counts describe the sender's whole extract, small groups included: they stay home.
            # The recipient gets the levels, loss, risk, l, t and the suppression by column.
            data["disclosure"] = {
                key: value for key, value in data["disclosure"].items() if key not in ("groups", "warnings")
            }
        data.pop("left_out_headers", None)
        quoted = sorted({self.input, os.path.basename(self.input)} - {"", RECIPIENT_INPUT}, key=len)

        def reword(text: str) -> str:
            for name in reversed(quoted):  # the longest first: a path before the file name in it
                text = text.replace(name, RECIPIENT_INPUT)
            return text

        data.update(
            input=RECIPIENT_INPUT,
            timings={},
            input_format=None,
            input_encoding=None,
            output_sha256=None,
            notes=[reword(n) for n in self.notes],
            warnings=[reword(w) for w in self.warnings],
        )
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeidReport:
        """Rebuild a report from :meth:`to_dict` output (e.g. report.json inside a package)."""
        data = dict(data)
        data["columns"] = [ColumnReport(**c) for c in data.get("columns", [])]
        data["residual_findings"] = [ResidualFinding(**f) for f in data.get("residual_findings", [])]
        return cls(**data)

    @property
    def clean(self) -> bool:
        """True when the residual scan found nothing, could check every free-text column, and k holds."""
        k_ok = self.k_achieved is None or self.k_achieved >= self.k_required
        return self.residual_findings_total == 0 and not self.text_unchecked and k_ok

    def summary(self) -> str:
        """Plain-language sentences for the person running the job."""
        kept = len(self.columns)
        transformed = sum(1 for c in self.columns if c.treatment != "keep")
        parts = [
            f"Read {self.rows_in:,} rows from {self.input}; wrote {self.rows_out:,} rows"
            + (f" to {self.output}." if self.output else ".")
        ]
        if self.extract_columns is not None and self.extract_columns_left_out is not None:
            headers = self.left_out_headers
            left = describe_left_out(self.extract_columns, self.extract_columns_left_out, headers)
            parts.append(f"{kept} column{_s(kept)} shared, {transformed} of them recoded. {left}")
        else:
            parts.append(
                f"{kept} column{_s(kept)} kept, {len(self.dropped_columns)} dropped; {transformed} recoded."
            )
        if not self.quasi_identifiers:
            parts.append("No quasi-identifiers were named, so k-anonymity was not checked.")
        elif self.k_achieved is None:
            parts.append(
                f"k = {self.k_required} could only be reached by emptying every quasi-identifier "
                f"({self.suppressed_cells:,} cells suppressed)."
            )
        elif self.suppressed_cells:
            lost_all = (
                f"; {self.rows_fully_suppressed:,} of them lost every quasi-identifier"
                if self.rows_fully_suppressed
                else ""
            )
            parts.append(
                f"k = {self.k_required} reached by suppressing {self.suppressed_cells:,} "
                f"cell{_s(self.suppressed_cells)} in {self.rows_with_suppression:,} "
                f"row{_s(self.rows_with_suppression)} (smallest group: {self.k_achieved}{lost_all})."
            )
        else:
            parts.append(
                f"k = {self.k_required} holds without suppression (smallest group: {self.k_achieved})."
            )
        if self.disclosure:
            parts.extend(self.disclosure.get("sentences") or [])
        if self.roster_columns:
            parts.append(
                "Free text was searched for the names, IDs, e-mail addresses and phone numbers in "
                f"these columns of the input: {_describe_roster(self.roster_columns)}."
            )
        if any(c.treatment == "redact_text" for c in self.columns):
            parts.append(f"Redacted from free text: {describe_kinds(self.redacted_by_kind) or 'nothing'}.")
        if self.residual_findings_total:
            by_column = {c for c, n in (self.residual_findings_by_column or {}).items() if n}
            cols = sorted(by_column or {f.column for f in self.residual_findings})
            kinds = describe_kinds(self.residual_by_kind)
            parts.append(
                f"WARNING: {self.residual_findings_total:,} possible identifier"
                f"{_s(self.residual_findings_total)} remain in the output"
                + (f" ({kinds})" if kinds else "")
                + f" in column{_s(len(cols))} {', '.join(cols)}; review them before sharing — prepare "
                "will refuse to seal it."
            )
        else:
            parts.append("No identifying text found in the output.")
        for w in self.warnings:
            parts.append(f"Warning: {w}.")
        for n in self.notes:
            parts.append(f"Note: {n}.")
        return "\n".join(parts)


def describe_left_out(extract_columns: int, left_out: int, headers: Sequence[str] = ()) -> str:
    """The one sentence about the extract's columns that stay home, on every screen and in every report
    ("13 of the extract's 30 columns are not shared: First Name, …")."""
    if not left_out:
        return f"All {extract_columns} of the extract's columns are shared."
    what = f": {', '.join(headers)}." if headers else (
        " (names, IDs, contact details and anything else the agreement does not list)."
    )
    verb = "is" if left_out == 1 else "are"
    return f"{left_out} of the extract's {extract_columns} columns {verb} not shared{what}"


# What each scanner kind is, in the clerk's words (a kind not listed is shown in lower case).
KIND_WORDS = {
    "PERSON": ("name", "names"),
    "EMAIL_ADDRESS": ("e-mail address", "e-mail addresses"),
    "PHONE_NUMBER": ("phone number", "phone numbers"),
    "US_SSN": ("Social Security number", "Social Security numbers"),
    "US_ITIN": ("taxpayer ID (ITIN)", "taxpayer IDs (ITIN)"),
    "CREDIT_CARD": ("card number", "card numbers"),
    "IP_ADDRESS": ("IP address", "IP addresses"),
    "URL": ("web address", "web addresses"),
    "STUDENT_ID": ("student ID", "student IDs"),
    "ID_NUMBER": ("other ID number", "other ID numbers"),
    "DATE_OF_BIRTH": ("date of birth", "dates of birth"),
    "MAC_ADDRESS": ("device (MAC) address", "device (MAC) addresses"),
    "IBAN_CODE": ("bank account number (IBAN)", "bank account numbers (IBAN)"),
    "LOCATION": ("street address", "street addresses"),
    "ADDRESS": ("street address", "street addresses"),
    "STREET_ADDRESS": ("street address", "street addresses"),
}


def describe_kinds(counts: dict[str, int]) -> str:
    """{"PERSON": 12, "PHONE_NUMBER": 1} → "12 names, 1 phone number" (most first; "" when empty)."""
    parts = []
    for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n <= 0:
            continue
        one, many = KIND_WORDS.get(kind, (kind.lower().replace("_", " "),) * 2)
        parts.append(f"{n:,} {one if n == 1 else many}")
    return ", ".join(parts)


def _describe_roster(columns: dict[str, list[str]]) -> str:
    """ "names: First Name, Guardian Name; IDs: SSID; …" — headers only, never values."""
    words = {"names": "names", "ids": "IDs", "emails": "e-mail", "phones": "phone"}
    parts = [f"{words.get(k, k)}: {', '.join(v)}" for k, v in columns.items() if v]
    return "; ".join(parts) if parts else "none"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def suppression_by_group(
    before: Any, after: Any, qis: list[str], k: int, codes: Mapping[str, Collection[str]]
) -> dict[str, dict[str, dict[str, Any]]]:
    """For each quasi-identifier in ``codes``, each value it had before suppression: its rows, how many
    of them lost at least one quasi-identifier to suppression (and that share), and how many lost this
    one (``value_blanked``: a group whose own value is erased is invisible in the release). Counts only,
    and only values ``codes`` lists (the codes of a closed code set, published in the agreement): any
    other value is a cell value and is never named, it is counted in "(other values)". A group of
    fewer than ``k`` rows is folded into "(smaller groups)", so the report never sizes a group
    k-anonymity hides."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    def present(col: Any) -> np.ndarray:
        text = pc.cast(col, pa.string())
        return pc.and_(pc.is_valid(text), pc.not_equal(text, "")).fill_null(False).to_numpy(
            zero_copy_only=False
        )

    if not qis or before.num_rows == 0:
        return {}
    def kept(q: str) -> np.ndarray:  # a quasi-identifier the search left out is blank for everyone
        return present(after.column(q)) if q in after.column_names else np.zeros(after.num_rows, dtype=bool)

    blanked = {q: present(before.column(q)) & ~kept(q) for q in qis}
    lost = np.logical_or.reduce(list(blanked.values()))
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for q in qis:
        if q not in codes:
            continue
        named = set(codes[q])
        text = pc.cast(before.column(q), pa.string()).to_pylist()
        rows: dict[str, list[int]] = {}
        for value, hit, own in zip(text, lost.tolist(), blanked[q].tolist(), strict=True):
            key = (value if value in named else "(other values)") if value else "(empty in the extract)"
            counts = rows.setdefault(key, [0, 0, 0])
            counts[0] += 1
            counts[1] += int(hit)
            counts[2] += int(own)
        small = [0, 0, 0]
        groups: dict[str, dict[str, Any]] = {}
        for key, (n, hit, own) in sorted(rows.items(), key=lambda kv: (-kv[1][0], kv[0])):
            if n < k or len(groups) >= _GROUPS_SHOWN:
                small = [small[0] + n, small[1] + hit, small[2] + own]
                continue
            groups[key] = _group_counts(n, hit, own)
        if small[0]:
            groups["(smaller groups)"] = _group_counts(*small)
        out[q] = groups
    return out


def _group_counts(rows: int, lost: int, blanked: int) -> dict[str, Any]:
    """Rows; rows that lost any quasi-identifier (and the share); rows whose own value was blanked."""
    share = f"{lost / rows:.0%}"
    return {"rows": rows, "rows_with_suppression": lost, "share": share, "value_blanked": blanked}


def cells_changed(before: Any, after: Any) -> int:
    """Cells whose value differs between two columns (an emptied cell counts; two empty cells do not)."""
    import pyarrow.compute as pc

    if before.type != after.type:
        after = after.cast(before.type)
    same = pc.equal(before, after)
    both_null = pc.and_(pc.is_null(before), pc.is_null(after))
    unchanged = pc.or_kleene(same, both_null).fill_null(False)
    return int(len(before) - (pc.sum(unchanged).as_py() or 0))
