"""The codebook: every element of an agreement's data dictionary, for the analysts who receive the data.

One row per element: the column name in the released file, the element, its label, type, description,
codes (``code = label``), the de-identification treatment in plain words, whether it is a
quasi-identifier, and its CEDS name. Written as CSV (for R/Stata/SPSS/Python), or as self-contained
HTML or Markdown; the desktop layer turns the HTML into PDF (``desktop/pdf.py``), since the library
does not draw.
"""

from __future__ import annotations

import csv
import html
import io
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agreements._measures import metrics_check
from deid import Element, Recorded, dictionary_elements, spreadsheet_safe, write_bytes_atomic
from deid.errors import OutputError

if TYPE_CHECKING:
    from agreements._agreement import Agreement
    from agreements._vault import Vault

COLUMNS = (
    "column",
    "element",
    "label",
    "type",
    "description",
    "codes",
    "treatment",
    "quasi_identifier",
    "ceds",
)
FORMATS = (".csv", ".html", ".htm", ".md")


@dataclass
class Codebook:
    """A codebook: a title, lines about its source, and one row per element (keys: :data:`COLUMNS`)."""

    title: str
    rows: list[dict[str, str]]
    about: list[str] = field(default_factory=list)


# What the person drafting an agreement chooses, said as what happens to the column (the form's choice
# list; describe_treatment says it again, with the parameters, for the analyst who receives the data).
TREATMENT_CHOICES: dict[str, str] = {
    "keep": "Share as it is",
    "drop": "Remove",
    "record_code": "Replace with a code that only we can look up",
    "token": "Replace with a link token (to match students across partners)",
    "link_tokens": "Add link tokens built from this and other columns",
    "generalize_date": "Keep part of the date (year, month or age)",
    "date_shift": "Move the date by a random number of days per student",
    "bucket": "Group into ranges",
    "zip3": "Keep the first 3 digits",
    "recode_rare": "Group rare values as “Other”",
    "redact_text": "Remove names, IDs and contact details from the text",
}
ELEMENT_TYPE_LABELS: dict[str, str] = {
    "string": "Text (short)",
    "text": "Free text (notes)",
    "integer": "Whole number",
    "decimal": "Number",
    "date": "Date",
    "boolean": "Yes / no",
    "code": "Code from a list",
}


# What the legal and privacy words on the agreement form mean, for their tooltips (plain words; the
# citations are what the agreement's legal basis names).
GLOSSARY: dict[str, str] = {
    "legal basis": (
        "The FERPA provision that lets the school share these records without each parent's consent. "
        "Studies exception (34 CFR 99.31(a)(6)): for organizations conducting studies for the school, to "
        "improve instruction or develop tests. Audit/evaluation exception (34 CFR 99.35): for evaluating "
        "federal- or state-supported education programs. Consent (34 CFR 99.30): parents or eligible "
        "students signed. De-identified (34 CFR 99.31(b)): nothing left can reasonably identify a student."
    ),
    "citation": "The exact provision relied on, as the agreement quotes it.",
    "authorized representative": (
        "The person who signs for the organization and answers for how the data are used (FERPA calls "
        "the recipient of an audit/evaluation disclosure an authorized representative)."
    ),
    "re-disclosure": (
        "Passing the data on. FERPA forbids the recipient to re-disclose personally identifiable "
        "information except as the agreement allows (34 CFR 99.33); say here what may be published."
    ),
    "destruction": (
        "The date by which every recipient must destroy the data and send back a signed destruction "
        "certificate (FERPA's written agreements must say when, 34 CFR 99.31(a)(6)(iii)(C)(4))."
    ),
    "could identify": (
        "A quasi-identifier: a column that, combined with the other ticked ones, could single out a "
        "student (birth year, school, ZIP…). Every combination must be shared by at least k students."
    ),
    "k-anonymity": (
        "k is the smallest group a released row may belong to: every combination of the columns that "
        "could identify a student is shared by at least k students, or values are blanked until it is."
    ),
    "smallest reported cell": (
        "Counts below this are not published (small-cell suppression), so a table cannot point at a few "
        "students."
    ),
    "linkage": (
        "Provider: each provider keeps its own secret, so records cannot be matched across providers. "
        "Consortium: providers share one secret, so the same student gets the same link tokens everywhere."
    ),
    "general offer": (
        "Further partners may join by signing the same terms, without a new agreement for each."
    ),
}


@dataclass(frozen=True)
class TreatmentSetting:
    """One setting of a treatment as the agreement form asks for it: its parameter ``key``, the words
    beside the widget, and the widget ``kind`` — ``choice`` (from ``choices``: value, words), ``date``,
    ``ranges`` (increasing numbers: the edges of the groups), ``number``, ``count`` (a whole number),
    ``text``, or ``name`` (a column name)."""

    key: str
    label: str
    kind: str
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""


DATE_PRECISIONS: tuple[tuple[str, str], ...] = (
    ("year", "The year"),
    ("year_month", "The year and month"),
    ("age", "The age in whole years"),
    ("age_band", "An age band"),
)
OUTPUT_NAME = TreatmentSetting(
    "as", "Column name in the file", "name", help="Leave empty to keep the element's own name."
)
# The settings each treatment takes, in the order the form shows them (every treatment but drop also
# takes OUTPUT_NAME). Parameters not listed (the link-token sources) are kept as the agreement has them.
TREATMENT_SETTINGS: dict[str, tuple[TreatmentSetting, ...]] = {
    "generalize_date": (
        TreatmentSetting("to", "Keep", "choice", True, DATE_PRECISIONS),
        TreatmentSetting("reference_date", "Age on", "date",
                         help="The day ages are counted at (default: the day the data are prepared)."),
        TreatmentSetting("edges", "Age bands start at", "ranges", help="For an age band: e.g. 0, 5, 14, 18."),
    ),
    "bucket": (
        TreatmentSetting("edges", "Ranges start at", "ranges", True,
                         help="Each number starts a range that ends where the next starts: 0, 1, 2, 3, 4.5."),
        TreatmentSetting("bottom", "Everything below is grouped at", "number"),
        TreatmentSetting("top", "Everything above is grouped at", "number"),
    ),
    "date_shift": (
        TreatmentSetting("max_days", "Move by at most (days)", "count", help="Default: 30 days."),
    ),
    "zip3": (
        TreatmentSetting("min_count", "Blank areas with fewer people than", "count",
                         help="Default: 20,000 (HIPAA Safe Harbor)."),
    ),
    "recode_rare": (
        TreatmentSetting("min_count", "Group values seen fewer times than", "count", True),
        TreatmentSetting("other", "Show them as", "text", help="Default: Other."),
    ),
    "record_code": (
        TreatmentSetting("namespace", "Code family", "text",
                         help="Elements with the same code family get the same code for the same student."),
    ),
}


def treatment_settings(treatment: str) -> tuple[TreatmentSetting, ...]:
    """What the form asks for a treatment (its own settings, then the column name)."""
    own = TREATMENT_SETTINGS.get(treatment, ())
    return own if treatment == "drop" else (*own, OUTPUT_NAME)


def keep_settings(treatment: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that still apply when an element's treatment changes to ``treatment`` (the column
    name always; a date's precision does not carry over to ranges)."""
    from agreements._agreement import TREATMENT_PARAMETERS

    required, optional = TREATMENT_PARAMETERS.get(treatment, (frozenset(), frozenset()))
    allowed = set(required) | set(optional) | ({"as"} if treatment != "drop" else set())
    return {k: v for k, v in params.items() if k in allowed}


def settings_summary(treatment: str, params: Mapping[str, Any]) -> str:
    """A treatment's settings in a few words for the form's cell ("Year → birth_year"); the whole
    sentence is ``describe_treatment``."""
    p = dict(params)
    name = p.pop("as", None)
    words = ""
    if treatment == "generalize_date":
        words = {"year": "Year", "year_month": "Year and month", "age": "Age", "age_band": "Age bands"}.get(
            str(p.get("to")), ""
        )
    elif treatment == "bucket" and isinstance(p.get("edges"), list):
        words = f"{max(0, len(p['edges']) - 1)} ranges"
    elif treatment in ("recode_rare", "zip3") and p.get("min_count"):
        words = f"Under {p['min_count']:,}"
    elif treatment == "date_shift" and p.get("max_days"):
        words = f"Up to {p['max_days']} days"
    elif treatment == "record_code" and p.get("namespace"):
        words = str(p["namespace"])
    parts = [w for w in (words, f"→ {name}" if name else "") if w]
    return " ".join(parts) if parts else ("Settings…" if treatment_settings(treatment) else "")


def describe_treatment(treatment: str, params: Mapping[str, Any]) -> str:
    """A treatment in the analyst's words (what happened to the values in the file)."""
    p = dict(params)
    if treatment == "keep":
        return "released as is"
    if treatment == "drop":
        return "not released"
    if treatment == "record_code":
        return "replaced by a random record code (the same student keeps the same code in every release)"
    if treatment == "token":
        src = f" of {', '.join(p['from'])}" if p.get("from") else ""
        return f"replaced by a keyed hash{src} (a linkage token; equal tokens are the same student)"
    if treatment == "generalize_date":
        to = p.get("to", "year")
        words = {
            "year": "the year",
            "year_month": "the year and month (YYYY-MM)",
            "age": "the age in whole years",
            "age_band": "an age band",
        }.get(to, str(to))
        ref = f" at {p['reference_date']}" if p.get("reference_date") else ""
        return f"generalized to {words}{ref}"
    if treatment == "date_shift":
        return "shifted by a random number of days, the same for each student"
    if treatment == "bucket":
        edges = p.get("edges")
        return f"grouped into ranges with edges {edges}" if edges else "grouped into ranges"
    if treatment == "zip3":
        return "truncated to the first 3 digits; small ZIP3 areas suppressed"
    if treatment == "recode_rare":
        n = p.get("min_count")
        return f"values seen fewer than {n} times recoded to Other" if n else "rare values recoded to Other"
    if treatment == "redact_text":
        return "free text with names, IDs and contact details replaced by placeholders"
    return treatment


def build_codebook(
    elements: Sequence[Element],
    treatments: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    title: str = "Codebook",
    about: Sequence[str] = (),
) -> Codebook:
    """A codebook for ``elements``; ``treatments`` as ``Agreement.element_treatments()`` gives them
    (``{treatment, params, as, quasi_identifier}``), else each element's default treatment."""
    rows = []
    for el in elements:
        spec = dict((treatments or {}).get(el.name) or el.treatment)
        if isinstance(spec.get("params"), Mapping):  # Agreement.element_treatments() nests them
            params = dict(spec["params"])
        else:  # an element's default treatment carries them beside "treatment"
            params = {k: v for k, v in spec.items() if k not in ("treatment", "as", "quasi_identifier")}
        treatment = str(spec.get("treatment", "keep"))
        qi = spec.get("quasi_identifier")
        if qi is None:
            qi = el.quasi_identifier
        column = "" if treatment == "drop" else str(spec.get("as") or el.name)
        codes = "; ".join(f"{c.code} = {c.label}" for c in el.code_set)
        rows.append(
            {
                "column": column,
                "element": el.name,
                "label": el.label,
                "type": el.type,
                "description": el.description,
                "codes": codes,
                "treatment": describe_treatment(treatment, params),
                "quasi_identifier": "yes" if qi and treatment != "drop" else "no",
                "ceds": el.ceds + ("" if el.ceds_exact or not el.ceds else " (closest)"),
            }
        )
    return Codebook(title=title, rows=rows, about=list(about))


def code_labels(agreement: Agreement) -> dict[str, dict[str, str]]:
    """The labels of the codes in each column an agreement releases: {column in the file: {code:
    label}} for the elements with a code set (race 700 -> "White"), so a screen that shows codes can
    say what they mean."""
    elements = {e.name: e for e in dictionary_elements(agreement.body.get("elements") or [])}
    out: dict[str, dict[str, str]] = {}
    for name, spec in agreement.element_treatments().items():
        el = elements.get(name)
        if el is None or not el.code_set or spec.get("as") is None:
            continue
        out[str(spec["as"])] = {str(c.code): str(c.label) for c in el.code_set}
    return out


def agreement_codebook(agreement: Agreement) -> Codebook:
    """The codebook of an agreement's data dictionary and de-identification policy."""
    elements = dictionary_elements(agreement.body.get("elements") or [])
    policy = agreement.terms.policy
    about = [
        f"Agreement {agreement.id}, version {agreement.version}",
        f"Effective {agreement.effective.isoformat()} to {agreement.expires.isoformat()}",
        f"k-anonymity: every combination of quasi-identifiers occurs at least {policy.k} times; "
        f"smallest reported cell {policy.min_cell_size}",
        "Columns not in this codebook are never released.",
    ]
    # The outcome measures the agreement's purpose names, in plain words (the metrics catalog).
    for metric, lack in metrics_check(agreement):
        needs = f" (needs {', '.join(lack)}, which this agreement does not share)" if lack else ""
        about.append(
            f"Outcome measure: {metric.label}. {metric.definition} Time window: {metric.time_window}.{needs}"
        )
    return build_codebook(
        elements, agreement.element_treatments(), title=f"Codebook: {agreement.title}", about=about
    )


def codebook_csv(book: Codebook) -> str:
    """The codebook as CSV text (a header row, then one row per element)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    # The terms come from a partner's signed file: a label starting like a formula must not run when
    # the codebook is opened in a spreadsheet (deid's one rule for CSV cells).
    writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in book.rows)
    return buf.getvalue()


def codebook_html(book: Codebook) -> str:
    """The codebook as one self-contained HTML page (no scripts, no external resources)."""
    e = html.escape
    head = "".join(f"<th>{e(c.replace('_', ' '))}</th>" for c in COLUMNS)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{e(row[c])}</td>" for c in COLUMNS) + "</tr>" for row in book.rows
    )
    about = "".join(f"<p>{e(line)}</p>" for line in book.about)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{e(book.title)}</title>"
        "<style>body{font-family:sans-serif;font-size:9pt}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:3px;vertical-align:top;text-align:left}"
        "th{background:#eee}</style></head><body>\n"
        f"<h1>{e(book.title)}</h1>\n{about}\n"
        f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>\n</body></html>\n"
    )


def codebook_markdown(book: Codebook) -> str:
    """The codebook as a Markdown table."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = [f"# {book.title}", "", *[f"{line}  " for line in book.about], ""]
    lines.append("| " + " | ".join(c.replace("_", " ") for c in COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    lines.extend("| " + " | ".join(cell(row[c]) for c in COLUMNS) + " |" for row in book.rows)
    return "\n".join(lines) + "\n"


def write_codebook(
    book: Codebook, path: str | os.PathLike[str], *, force: bool = False, recorded: Recorded | None = None
) -> Path:
    """Write the codebook as .csv, .html or .md (by extension), atomically; an existing file is
    replaced only with ``force``, never one the vault recorded. PDF: see desktop/pdf.py."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        text = codebook_csv(book)
    elif suffix in (".html", ".htm"):
        text = codebook_html(book)
    elif suffix == ".md":
        text = codebook_markdown(book)
    else:
        raise OutputError(f"Cannot write the codebook as {p.name}: use a .csv, .pdf, .html or .md file name.")
    write_bytes_atomic(p, text.encode("utf-8"), perm=0o644, force=force, recorded=recorded)
    return p


CODEBOOK_SUFFIXES = (".csv", ".pdf", ".html", ".htm", ".md")
# Draws the codebook's HTML as a PDF (desktop.pdf.html_to_pdf): the library does not draw.
PdfRenderer = Callable[..., Any]


def codebook_path(
    out: str | os.PathLike[str], *, pdf: bool, force: bool = False, recorded: Recorded | None = None
) -> Path:
    """``out`` checked as a codebook file name (its folder exists, the suffix is one we write, deid's
    rule for replacing a file), before anything is read: OutputError otherwise."""
    from deid import check_output_path

    p = check_output_path(out, force=force, recorded=recorded)
    if p.suffix.lower() not in CODEBOOK_SUFFIXES or (p.suffix.lower() == ".pdf" and not pdf):
        kinds = ".csv, .pdf, .html or .md" if pdf else ".csv, .html or .md"
        raise OutputError(f"Cannot write the codebook as {p.name}: use a {kinds} file name.")
    return p


def export_codebook(
    vault: Vault,
    agreement_id: str,
    out: str | os.PathLike[str],
    *,
    version: int | None = None,
    render_pdf: PdfRenderer | None = None,
    force: bool = False,
) -> Codebook:
    """``pathshare codebook`` and the app's Codebook button: write an agreement's codebook as .csv,
    .html, .md or (with ``render_pdf``) .pdf, and audit it (``agreement.codebook``). Returns the book.
    An existing file is replaced only with ``force``, never one the vault recorded."""
    from agreements._recorded import output_rule
    from agreements._stored_agreements import get_agreement

    rule = output_rule(vault)
    p = codebook_path(out, pdf=render_pdf is not None, force=force, recorded=rule)
    agreement = get_agreement(vault, agreement_id, version)
    book = agreement_codebook(agreement)
    if render_pdf is not None and p.suffix.lower() == ".pdf":
        render_pdf(codebook_html(book), p, title=book.title, force=force, recorded=rule)
    else:
        write_codebook(book, p, force=force, recorded=rule)
    vault.audit.append(
        "agreement.codebook", agreement=agreement.id, details={"file": p.name, "elements": len(book.rows)}
    )
    return book
