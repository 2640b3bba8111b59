"""What the analyst opens beside the data: a Frictionless Data Package descriptor, the agreement's codebook,
a readable release report, and load snippets for pandas, R and Stata.

A package's data file alone does not say that ``school_id`` 0109850 is a code (``pd.read_csv`` makes it
109850.0), which values are codes for what, why a cell is blank, or what was done to the data. So every
package sealed by ``prepare`` (the CLI, the app, the demo) carries these files in ``data/``, beside the
data file, all derived from two things the recipient is entitled to: the agreement (its data dictionary,
purpose and destruction date) and the report that leaves (``DeidReport.for_recipient``: counts, column
names, treatments; nothing about the sender's machine):

    datapackage.json      Frictionless Data Package (v2) with a Table Schema: each column's type (codes and
                          identifiers as strings), its codes with labels, the missing values with why
    codebook.csv/.html    the agreement's codebook (agreements._codebook), as ``pathshare codebook`` writes it
    release-report.html   what was done to each column, suppression by column and by group, warnings, the
                          agreement's purpose and destruction date
    load_pandas.py        ready-to-run loaders that read every string column as text (leading zeros kept)
    load_r.R, load_stata.do
    README.txt            which file is which

The column types are decided once, here (:func:`field_types`), and every file above is written from them,
so the snippets and the descriptor cannot disagree.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agreements._codebook import agreement_codebook, codebook_csv, codebook_html, describe_treatment

if TYPE_CHECKING:
    from agreements._agreement import Agreement

DATAPACKAGE = "datapackage.json"
REPORT_HTML = "release-report.html"
CODEBOOK_CSV = "codebook.csv"
CODEBOOK_HTML = "codebook.html"
PANDAS = "load_pandas.py"
R_SCRIPT = "load_r.R"
STATA = "load_stata.do"
README = "README.txt"
KIT_FILES = (DATAPACKAGE, CODEBOOK_CSV, CODEBOOK_HTML, REPORT_HTML, PANDAS, R_SCRIPT, STATA, README)


XLSX_MEDIATYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _sheet() -> str:
    """The one sheet of a released workbook, as deid's writer names it (loaded when needed: deid's I/O
    module brings pyarrow, which ``import agreements`` does not)."""
    from deid import XLSX_SHEET

    return str(XLSX_SHEET)


def is_workbook(data_name: str) -> bool:
    """True when the released data is an Excel workbook (the agreement's ``release_format`` xlsx)."""
    return data_name.lower().endswith(".xlsx")


def is_kit_file(name: str) -> bool:
    """True for a file of the analyst's kit (under data/ beside the data), False for a data file: the
    data is named <organization>-<date>.csv and never collides with these names."""
    return name in KIT_FILES


_DP_PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
_TS_PROFILE = "https://datapackage.org/profiles/2.0/tableschema.json"
_TD_PROFILE = "https://datapackage.org/profiles/2.0/tabledialect.json"

# Treatments whose output is text whatever the element was (codes, hashes, ranges, placeholders).
_TEXT_TREATMENTS = {"record_code", "token", "link_tokens", "redact_text", "zip3", "bucket", "recode_rare"}
# Element types of the data dictionary → Table Schema types, for columns released as they are.
_KEEP_TYPES = {
    "code": "string",  # a code is a label, never a number: 0109850 keeps its zero
    "string": "string",
    "text": "string",
    "integer": "integer",
    "decimal": "number",
    "date": "date",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class Field:
    """One released column as the analyst's tools should read it."""

    name: str
    type: str  # Table Schema type: string, integer, number, date, yearmonth, boolean
    title: str
    description: str
    codes: tuple[tuple[str, str], ...] = ()  # (code, label); documentation, not a closed list
    format: str = ""

    @property
    def text(self) -> bool:
        """Read as text (every identifier and code: leading zeros and letters kept)."""
        return self.type in ("string", "yearmonth")


def _released_type(element_type: str, treatment: str, params: Mapping[str, Any]) -> tuple[str, str]:
    """(Table Schema type, format) of a column after its treatment."""
    if treatment in _TEXT_TREATMENTS:
        return "string", ""
    if treatment == "generalize_date":
        to = params.get("to", "year")
        if to in ("year", "age"):
            return "integer", ""
        if to == "year_month":
            return "yearmonth", ""
        return "string", ""
    if treatment == "date_shift":
        return "date", ""
    return _KEEP_TYPES.get(element_type, "string"), ""


def field_types(agreement: Agreement, report: Mapping[str, Any]) -> list[Field]:
    """The released columns (the report's, in file order) with their types, labels and codes."""
    from deid import SUPPRESSED_COLUMN, dictionary_elements

    elements = {e.name: e for e in dictionary_elements(agreement.body.get("elements") or [])}
    treatments = agreement.element_treatments()
    policy_columns = ((report.get("policy") or {}).get("columns") or {}) if report else {}
    chosen = _chosen_levels(report) if report else {}
    fields = []
    for col in report.get("columns") or []:
        name, source, treatment = str(col["name"]), str(col.get("source") or ""), str(col.get("treatment"))
        if name == SUPPRESSED_COLUMN:
            fields.append(_marker_field(name))
            continue
        el = elements.get(source)
        params = _params(source, treatments, policy_columns)
        kind, fmt = _released_type(el.type if el else "string", treatment, params)
        codes: tuple[tuple[str, str], ...] = ()
        if el is not None and el.code_set and treatment in ("keep", "recode_rare"):
            codes = tuple((c.code, c.label) for c in el.code_set)
            other = params.get("other")
            if treatment == "recode_rare" and other and other not in {c for c, _ in codes}:
                codes += ((str(other), "Other (values too rare to release on their own)"),)
        title = el.label if el and el.label else source or name
        how = _how(treatment, params, chosen.get(name))
        about = f"{el.description} " if el and el.description else ""
        fields.append(Field(name, kind, title, f"{about}({how})".strip(), codes, fmt))
    return fields


def _params(source: str, treatments: Mapping[str, Any], policy_columns: Mapping[str, Any]) -> dict[str, Any]:
    """A released column's treatment parameters: the agreement's, as the run's policy set them."""
    params = dict((treatments.get(source) or {}).get("params") or {})
    params.update({k: v for k, v in (policy_columns.get(source) or {}).items() if k != "treatment"})
    return params


def treatment_words(agreement: Agreement, report: Mapping[str, Any]) -> dict[str, str]:
    """{released column: what was done to its values, in words} for a run's report (the words the
    release report and the codebook use), so a screen never shows a treatment's internal name."""
    from deid import SUPPRESSED_COLUMN

    treatments = agreement.element_treatments()
    policy_columns = (report.get("policy") or {}).get("columns") or {}
    chosen = _chosen_levels(report)
    out = {}
    for col in report.get("columns") or []:
        name, source = str(col["name"]), str(col.get("source") or "")
        if name == SUPPRESSED_COLUMN:
            out[name] = "which values were withheld on the row to protect privacy (empty: none)"
        else:
            treatment = str(col.get("treatment"))
            params = _params(source, treatments, policy_columns)
            out[name] = _how(treatment, params, chosen.get(name))
    return out


def _chosen_levels(report: Mapping[str, Any]) -> dict[str, str]:
    """{column: the level the privacy check chose, in words} ("as federal race categories")."""
    return dict(((report.get("disclosure") or {}).get("level_words")) or {})


def _how(treatment: str, params: Mapping[str, Any], level: str | None) -> str:
    """What was done to a column's values: its treatment, then the privacy check's generalization."""
    how = describe_treatment(treatment, params)
    if not level or level in ("as it is", "left out"):
        return how
    if treatment == "keep":
        return f"shared {level} (the privacy check's choice)"
    return f"{how}, then shared {level} (the privacy check's choice)"


def _marker_field(name: str) -> Field:
    """The companion column that tells a withheld cell from one missing in the source."""
    return Field(
        name,
        "string",
        "Quasi-identifiers withheld",
        "The quasi-identifier columns whose value was withheld on this row to protect privacy, separated "
        "by ';' (for example race;zip3): an empty cell in one of them is not missing data. Empty when "
        "nothing was withheld.",
    )


def _missing_values() -> list[dict[str, str]]:
    from deid import MISSING_VALUES

    return [{"value": value, "label": label} for value, label in MISSING_VALUES]


def datapackage(
    agreement: Agreement,
    report: Mapping[str, Any],
    data_name: str,
    fields: Sequence[Field],
    *,
    created: str,
    sender: str,
    rows: int | None,
) -> dict[str, Any]:
    """The Frictionless Data Package (v2) descriptor of the released file (``path`` relative to it)."""
    schema_fields = []
    for f in fields:
        entry: dict[str, Any] = {
            "name": f.name,
            "type": f.type,
            "title": f.title,
            "description": f.description,
        }
        if f.codes:
            entry["categories"] = [{"value": code, "label": label} for code, label in f.codes]
        schema_fields.append(entry)
    deadline = (agreement.body.get("destruction") or {}).get("deadline", "")
    dialect: dict[str, Any] = {"$schema": _TD_PROFILE, "header": True}
    resource: dict[str, Any] = {"name": "data", "type": "table", "path": data_name,
                                "title": f"Released by {sender}"}  # fmt: skip
    if is_workbook(data_name):
        resource["format"] = "xlsx"
        resource["mediatype"] = XLSX_MEDIATYPE
        dialect["sheetName"] = _sheet()
    else:
        resource["format"] = "csv"
        resource["mediatype"] = "text/csv"
        resource["encoding"] = "utf-8-sig"  # the BOM is there for Excel
        dialect.update(delimiter=",", quoteChar='"')
    resource["dialect"] = dialect
    resource["schema"] = {"$schema": _TS_PROFILE, "fields": schema_fields, "missingValues": _missing_values()}
    if rows is not None:
        resource["description"] = f"{rows:,} rows, in a random order drawn for this package."
    return {
        "$schema": _DP_PROFILE,
        "name": "pathshare-release",
        "title": agreement.title,
        "description": (
            f"{agreement.body.get('purpose', '')} Released under the data-sharing agreement "
            f"{agreement.id} (version {agreement.version}); destroy by {deadline}."
        ).strip(),
        "created": created,
        "version": str(agreement.version),
        "contributors": [{"title": sender, "roles": ["publisher"]}],
        "resources": [resource],
    }


# ----------------------------------------------------------------------------------------- snippets


def _missing_texts() -> list[str]:
    from deid import MISSING_VALUES

    return [value for value, _ in MISSING_VALUES]


def pandas_snippet(data_name: str, fields: Sequence[Field]) -> str:
    """A Python script that loads the file with pandas, every string column as text."""
    pandas_types = {"integer": "Int64", "number": "Float64", "boolean": "boolean"}
    # dates are read as text, then parsed (below): a blank or marked cell becomes NaT
    dtypes = {f.name: pandas_types.get(f.type, "string") for f in fields}
    dates = [f.name for f in fields if f.type == "date"]
    lines = [
        '"""Load the released file with pandas, as its datapackage.json describes it.',
        "",
        "Codes and identifiers are read as text, so 0109850 keeps its leading zero. Run it",
        f"(python {PANDAS}) or copy it into a notebook; `df` is the table.",
        '"""',
        "",
        "from pathlib import Path",
        "",
        "import pandas as pd",
        "",
        'HERE = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()',
        f"DATA = HERE / {data_name!r}",
        f"MISSING = {_missing_texts()!r}  # what each one means: datapackage.json, missingValues",
        f"DTYPES = {json.dumps(dtypes, indent=4)}",
        "",
    ]
    if is_workbook(data_name):
        lines += [
            "# An Excel workbook: pandas reads it with openpyxl (pip install openpyxl).",
            "df = pd.read_excel(",
            f'    DATA, sheet_name="{_sheet()}", engine="openpyxl", dtype=DTYPES, keep_default_na=False,',
            "    na_values=MISSING,",
            ")",
        ]
    else:
        lines += [
            "df = pd.read_csv(",
            '    DATA, encoding="utf-8-sig", dtype=DTYPES, keep_default_na=False, na_values=MISSING',
            ")",
        ]
    for name in dates:
        lines.append(f'df[{name!r}] = pd.to_datetime(df[{name!r}], format="%Y-%m-%d", errors="coerce")')
    lines += ["", 'if __name__ == "__main__":', "    print(df.dtypes)", "    print(df.head())", ""]
    return "\n".join(lines)


def _r_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid R string literal


def r_snippet(data_name: str, fields: Sequence[Field]) -> str:
    """An R script (base R only) that loads the file, every string column as character."""
    na = ", ".join(_r_string(v) for v in _missing_texts())
    if is_workbook(data_name):
        return _r_workbook_snippet(data_name, fields, na)
    r_types = {"integer": "integer", "number": "numeric", "boolean": "logical"}
    classes = ",\n".join(
        f"  {_r_string(f.name)} = {_r_string(r_types.get(f.type, 'character'))}" for f in fields
    )
    lines = [
        "# Load the released file in R, as its datapackage.json describes it (base R, no packages).",
        "# Codes and identifiers are read as character, so 0109850 keeps its leading zero.",
        '# Run it from this folder: source("load_r.R"); `df` is the table.',
        f"col_classes <- c(\n{classes}\n)",
        f'df <- read.csv({_r_string(data_name)}, fileEncoding = "UTF-8-BOM", colClasses = col_classes,',
        f"               na.strings = c({na}), check.names = FALSE, stringsAsFactors = FALSE)",
    ]
    for f in fields:
        if f.type == "date":
            lines.append(f"df[[{_r_string(f.name)}]] <- as.Date(df[[{_r_string(f.name)}]])")
    lines.append("str(df)")
    return "\n".join(lines) + "\n"


def _r_workbook_snippet(data_name: str, fields: Sequence[Field], na: str) -> str:
    """The R loader for a workbook: readxl (base R reads no .xlsx), every string column as text."""
    r_types = {"integer": "numeric", "number": "numeric", "boolean": "logical"}
    types = ", ".join(_r_string(r_types.get(f.type, "text")) for f in fields)
    lines = [
        "# Load the released workbook in R, as its datapackage.json describes it (needs readxl:",
        '# install.packages("readxl")). Codes and identifiers are read as text, so 0109850 keeps its',
        '# leading zero. Run it from this folder: source("load_r.R"); `df` is the table.',
        f"# Columns, in order: {', '.join(f.name for f in fields)}",
        f"df <- readxl::read_excel({_r_string(data_name)}, sheet = {_r_string(_sheet())},",
        f"                         col_types = c({types}), na = c({na}, \"\"))",
        "df <- as.data.frame(df, check.names = FALSE)",
    ]
    for f in fields:
        if f.type == "integer":
            lines.append(f"df[[{_r_string(f.name)}]] <- as.integer(df[[{_r_string(f.name)}]])")
        if f.type == "date":
            lines.append(f"df[[{_r_string(f.name)}]] <- as.Date(df[[{_r_string(f.name)}]])")
    lines.append("str(df)")
    return "\n".join(lines) + "\n"


def stata_snippet(data_name: str, fields: Sequence[Field]) -> str:
    """A Stata do-file (Stata 16+) that imports the file, every string column as a string variable."""
    if is_workbook(data_name):
        numbers = [f.name for f in fields if f.type in ("integer", "number")]
        return (
            "* Load the released workbook in Stata 16 or later, as its datapackage.json describes it.\n"
            "* Every column is imported as a string (allstring), so 0109850 keeps its leading zero; the\n"
            "* numeric columns are then made numbers.\n"
            f"* Columns, in order: {' '.join(f.name for f in fields)}\n"
            "* Run it from this folder: do load_stata.do\n"
            f'import excel using "{data_name}", sheet("{_sheet()}") firstrow case(preserve) '
            "allstring clear\n"
            + (f"destring {' '.join(numbers)}, replace\n" if numbers else "")
            + "describe\n"
        )
    strings = [str(i) for i, f in enumerate(fields, 1) if f.type not in ("integer", "number")]
    numbers = [str(i) for i, f in enumerate(fields, 1) if f.type in ("integer", "number")]
    opts = ['encoding("utf-8")', "varnames(1)", "bindquote(strict)", "case(preserve)"]
    if strings:
        opts.append(f"stringcols({' '.join(strings)})")
    if numbers:
        opts.append(f"numericcols({' '.join(numbers)})")
    names = " ".join(f.name for f in fields)
    return (
        "* Load the released file in Stata 16 or later, as its datapackage.json describes it.\n"
        "* Codes and identifiers are imported as strings (stringcols), so 0109850 keeps its leading zero.\n"
        f"* Columns, in order: {names}\n"
        "* Run it from this folder: do load_stata.do\n"
        f'import delimited using "{data_name}", {" ".join(opts)} clear\n'
        "describe\n"
    )


# ----------------------------------------------------------------------------------------- report


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    e = html.escape
    th = "".join(f"<th>{e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def release_report_html(
    agreement: Agreement,
    report: Mapping[str, Any],
    data_name: str,
    fields: Sequence[Field],
    *,
    sender: str,
    created: str,
) -> str:
    """The release report for the analyst: one self-contained HTML page (no scripts, no links out)."""
    from deid import DeidReport

    e = html.escape
    body = agreement.body
    destruction = body.get("destruction") or {}
    parts = [
        f"<h1>{e(agreement.title)}</h1>",
        f"<p>Released by <b>{e(sender)}</b> on {e(created)} under agreement {e(agreement.id)} "
        f"(version {agreement.version}), in force until {e(agreement.expires.isoformat())}.</p>",
        f"<h2>Purpose</h2><p>{e(str(body.get('purpose', '')))}</p>",
        "<h2>Destruction</h2>"
        f"<p>Destroy every copy of this data by <b>{e(str(destruction.get('deadline', '')))}</b> "
        f"({e(str(destruction.get('method', '')))}), then send the sender a destruction certificate.</p>",
    ]
    try:
        summary = DeidReport.from_dict(dict(report)).summary() if report else ""
    except (TypeError, ValueError):  # a report of another version: the tables below still show
        summary = ""
    if summary:
        parts.append("<h2>In short</h2>" + "".join(f"<p>{e(line)}</p>" for line in summary.splitlines()))
    by_name = {f.name: f for f in fields}
    rows = []
    for col in report.get("columns") or []:
        f = by_name.get(col["name"])
        rows.append(
            (
                col["name"],
                f.title if f else "",
                f.description.rsplit("(", 1)[-1].rstrip(")") if f else col.get("treatment", ""),
                f"{int(col.get('cells_changed') or 0):,}",
                "yes" if col.get("quasi_identifier") else "",
                f"{int(col.get('suppressed_cells') or 0):,}",
            )
        )
    parts.append(f"<h2>What was done to each column of {e(data_name)}</h2>")
    parts.append(
        _table(
            (
                "column",
                "element",
                "what was done",
                "cells changed",
                "quasi-identifier",
                "cells blanked for privacy",
            ),
            rows,
        )
    )
    parts.append(_privacy_html(report))
    parts.append(_groups_html(report))
    warnings = list(report.get("warnings") or [])
    parts.append("<h2>Warnings</h2>")
    parts.append(
        "<ul>" + "".join(f"<li>{e(w)}</li>" for w in warnings) + "</ul>" if warnings else "<p>None.</p>"
    )
    notes = list(report.get("notes") or [])
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("<h2>Blank cells</h2>")
    parts.append(
        _table(("value", "means"), [(v["value"] or "(empty)", v["label"]) for v in _missing_values()])
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>Release report: {e(agreement.title)}</title>"
        "<style>body{font-family:sans-serif;font-size:10pt;max-width:60em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:3px;vertical-align:top;text-align:left}"
        "th{background:#eee}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _privacy_html(report: Mapping[str, Any]) -> str:
    e = html.escape
    qis = list(report.get("quasi_identifiers") or [])
    lines = ["<h2>Privacy protection</h2>"]
    if qis:
        k = report.get("k_achieved")
        lines.append(
            f"<p>Quasi-identifiers: {e(', '.join(qis))}. Every combination of them is shared by at least "
            f"{e(str(k if k is not None else report.get('k_required')))} students (the agreement requires "
            f"{e(str(report.get('k_required')))}). To get there, "
            f"{int(report.get('suppressed_cells') or 0):,} "
            f"cells were blanked in {int(report.get('rows_with_suppression') or 0):,} of "
            f"{int(report.get('rows_out') or 0):,} rows.</p>"
        )
    else:
        lines.append("<p>The agreement names no quasi-identifiers, so no cells were blanked for privacy.</p>")
    disclosure = report.get("disclosure") or {}
    sentences = disclosure.get("sentences") or []
    if sentences:  # the disclosure-control search: generalization levels, what was left out, and why
        lines.append("<ul>" + "".join(f"<li>{e(str(t))}</li>" for t in sentences) + "</ul>")
    if disclosure.get("class_sizes") or disclosure.get("loss_by_column"):
        lines.append(_charts_html(report))
    by_column = [
        (c["name"], f"{int(c.get('suppressed_cells') or 0):,}")
        for c in report.get("columns") or []
        if c.get("suppressed_cells")
    ]
    if by_column:
        lines.append("<h3>Suppression by column</h3>" + _table(("column", "cells blanked"), by_column))
    return "\n".join(lines)


def _charts_html(report: Mapping[str, Any]) -> str:
    """The Risk step's charts (deid.risk_chart_png), embedded as a PNG: the before/after chart is drawn
    from the suppression by group, the only counts by group that leave the sender."""
    import base64

    from deid import risk_chart_png

    groups = [
        {
            "attribute": column,
            "group": value,
            "students": c.get("rows", 0),
            "suppressed": c.get("value_blanked", 0),
        }
        for column, values in (report.get("suppression_by_group") or {}).items()
        for value, c in values.items()
        if not value.startswith("(")  # "(smaller groups)", "(other values)", "(empty in the extract)"
    ]
    png = base64.b64encode(risk_chart_png(report["disclosure"], groups=groups)).decode("ascii")
    alt = "Charts: groups of students by size, information lost per column, students before and after"
    return f'<h3>Charts</h3><p><img alt="{html.escape(alt)}" src="data:image/png;base64,{png}"></p>'


def _groups_html(report: Mapping[str, Any]) -> str:
    groups = report.get("suppression_by_group") or {}
    if not groups:
        return ""
    rows = []
    for column, values in groups.items():
        for value, counts in values.items():
            rows.append(
                (
                    column,
                    value,
                    f"{counts.get('rows', 0):,}",
                    f"{counts.get('value_blanked', 0):,}",
                    f"{counts.get('rows_with_suppression', 0):,}",
                    counts.get("share", ""),
                )
            )
    return (
        "<h3>Suppression by group</h3><p>For each group of students (by the code a quasi-identifier had "
        "before suppression): its rows, how many lost that code, and how many lost at least one "
        "quasi-identifier. Groups smaller than k, and values that are not published codes, are not "
        "named.</p>"
        + _table(("column", "group", "rows", "own value blanked", "rows with a blanked cell", "share"), rows)
    )


def _readme(data_name: str, sender: str) -> str:
    return (
        f"This folder holds the data {sender} released to you, and what you need to use it.\n\n"
        f"{data_name}\n"
        "    the data (CSV, UTF-8 with a byte-order mark: Excel opens it with accents intact).\n"
        f"    In Excel, use Data > From Text/CSV and set code columns to Text to keep leading zeros,\n"
        f"    or load it with one of the scripts below.\n"
        f"{REPORT_HTML}\n"
        "    what was done to the data, why cells are blank, warnings, and when to destroy it.\n"
        f"{CODEBOOK_HTML}, {CODEBOOK_CSV}\n    every element of the agreement, its codes and labels.\n"
        f"{DATAPACKAGE}\n    the same, machine-readable (Frictionless Data Package with a Table Schema).\n"
        f"{PANDAS}, {R_SCRIPT}, {STATA}\n    load the data in Python, R or Stata with codes kept as text.\n"
    )


def release_kit(
    agreement: Agreement,
    report: Mapping[str, Any],
    data_name: str,
    *,
    sender: str,
    created: str,
    rows: int | None = None,
) -> dict[str, bytes]:
    """The files that travel beside ``data_name`` in a package: {file name under data/: bytes}.

    ``report`` is the report as it leaves (``DeidReport.for_recipient()``), so nothing here can name the
    sender's extract or machine."""
    fields = field_types(agreement, report)
    book = agreement_codebook(agreement)
    book.about.extend(
        f"Blank cell: {label}" if not value else f"Cell {value}: {label}"
        for value, label in ((v["value"], v["label"]) for v in _missing_values())
    )
    descriptor = datapackage(agreement, report, data_name, fields, created=created, sender=sender, rows=rows)
    texts = {
        DATAPACKAGE: json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n",
        CODEBOOK_CSV: "\ufeff" + codebook_csv(book),  # with a BOM, for Excel
        CODEBOOK_HTML: codebook_html(book),
        REPORT_HTML: release_report_html(
            agreement, report, data_name, fields, sender=sender, created=created
        ),
        PANDAS: pandas_snippet(data_name, fields),
        R_SCRIPT: r_snippet(data_name, fields),
        STATA: stata_snippet(data_name, fields),
        README: _readme(data_name, sender),
    }
    return {name: text.encode("utf-8") for name, text in texts.items()}
