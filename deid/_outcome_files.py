"""The files of a release of outcome tables, for the people who read them.

* ``outcomes.xlsx`` — one sheet per metric (every breakdown one under the other), a Notes sheet with
  the definitions and the protection; hidden counts shown as "*", explained in a footnote.
* ``outcomes.csv`` + ``datapackage.json`` — one long table (metric, breakdown, group, counts, rate)
  and its Frictionless Tabular Data Package descriptor ("*" declared a missing value).
* ``outcomes.html`` — a report with a bar chart of the rate by group for every breakdown (matplotlib);
  a hidden bar is drawn as hatched and labelled, never as a zero.
* ``outcomes.pdf`` — the same report as pages to print or attach (matplotlib's PDF backend: no
  browser, no Qt): a first page of notes, then per breakdown its chart and its table.

:func:`write_release_files` writes them all into a folder; the caller makes the folder appear whole.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deid._metrics import Catalog
from deid._outcomes import ALL, BAND, CROSS_GROUP, OutcomeTable, breakdown_parts

HIDDEN = "*"
FOOTNOTE = (
    "* Hidden to protect small groups: a count under {m} students, or a count that would let a reader "
    "work one out from the totals, is not shown. Rates shown as ≤ {low} or ≥ {high} are near 0 % or 100 % "
    "and are coded so that the few students on the other side cannot be counted."
)
FORMATS = ("xlsx", "csv", "html", "pdf")
OUTCOME_FORMATS = FORMATS


@dataclass(frozen=True)
class ReleaseInfo:
    """What the notes say about a release."""

    title: str
    agreement: str
    catalog_version: str
    min_cell: int
    protection: int
    created: str
    labels: Mapping[str, Mapping[str, str]]  # breakdown element -> code -> label
    element_labels: Mapping[str, str]  # breakdown element -> its label
    chosen: str = ""  # how the hidden cells were chosen (Protection.describe()); empty: not said

    def footnote(self) -> str:
        return FOOTNOTE.format(m=self.min_cell, low=f"{BAND:.0%}", high=f"{1 - BAND:.0%}")

    def group(self, by: str, code: str) -> str:
        if code == ALL:
            return ALL
        parts = breakdown_parts(by)
        codes = code.split(CROSS_GROUP) if len(parts) >= 2 else [code]
        if len(codes) != len(parts):
            return code
        named = []
        for element, c in zip(parts, codes, strict=True):
            label = self.labels.get(element, {}).get(c)
            named.append(f"{label} ({c})" if label and label != c else c)
        return CROSS_GROUP.join(named)

    def breakdown(self, by: str) -> str:
        if not by:
            return "All students"
        return CROSS_GROUP.join(self.element_labels.get(p, p) for p in breakdown_parts(by))


def _count(value: int | None) -> int | str:
    return HIDDEN if value is None else value


def long_rows(tables: Sequence[OutcomeTable], catalog: Catalog, info: ReleaseInfo) -> list[list[object]]:
    """The release as one long table (the CSV's rows, without header)."""
    rows: list[list[object]] = []
    for t in tables:
        m = catalog.get(t.metric)
        for i, g in enumerate(t.groups):
            c, o = t.published(i)
            rows.append([t.metric, m.label, t.by or "all", info.breakdown(t.by), g, info.group(t.by, g),
                         _count(c), _count(o), t.rate(i)])  # fmt: skip
    return rows


CSV_FIELDS = (
    ("metric", "string", "The metric's id in the metrics catalog."),
    ("metric_label", "string", "The metric's name."),
    ("breakdown", "string", "The element the students are broken down by (all: the whole cohort)."),
    ("breakdown_label", "string", "That element's name."),
    ("group", "string", "The group's code."),
    ("group_label", "string", "The group's name."),
    ("cohort", "integer", "Students in the group counted by the metric (the denominator); * hidden."),
    ("outcome", "integer", "Of those, the students who reached the outcome (the numerator); * hidden."),
    ("rate", "string", "outcome / cohort as a percentage, or a coded band (≤ 5%, ≥ 95%); * hidden."),
)


def write_xlsx(path: Path, tables: Sequence[OutcomeTable], catalog: Catalog, info: ReleaseInfo) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    wb = Workbook()
    notes = wb.active
    notes.title = "Notes"
    bold = Font(bold=True)
    notes.append([info.title])
    notes["A1"].font = Font(bold=True, size=14)
    for k, v in (
        ("Agreement", info.agreement),
        ("Metrics catalog version", info.catalog_version),
        ("Smallest reported cell", info.min_cell),
        ("Protection of a hidden count (students)", info.protection),
        ("Hidden counts chosen", info.chosen),
        ("Released", info.created),
    ):
        if v != "":
            notes.append([k, v])
    notes.append([])
    notes.append([info.footnote()])
    notes.append([])
    notes.append(["Metric", "Definition", "Time window"])
    for cell in notes[notes.max_row]:
        cell.font = bold
    used: dict[str, None] = {}
    for t in tables:
        used.setdefault(t.metric)
    for mid in used:
        m = catalog.get(mid)
        notes.append([m.label, m.definition, m.time_window])
    notes.column_dimensions["A"].width = 42
    notes.column_dimensions["B"].width = 100
    names: set[str] = {"Notes"}
    for mid in used:
        m = catalog.get(mid)
        name = _sheet_name(m.label, names)
        ws = wb.create_sheet(name)
        ws.append([m.label])
        ws["A1"].font = Font(bold=True, size=13)
        ws.append([m.definition])
        ws.append([])
        for t in (t for t in tables if t.metric == mid):
            ws.append([info.breakdown(t.by), "Students", m.numerator_label.capitalize(), "Rate"])
            for cell in ws[ws.max_row]:
                cell.font = bold
            for i, g in enumerate(t.groups):
                c, o = t.published(i)
                ws.append([info.group(t.by, g), _count(c), _count(o), t.rate(i)])
                for cell in ws[ws.max_row][1:]:
                    cell.alignment = Alignment(horizontal="right")
            ws.append([])
        ws.append([info.footnote()])
        ws.column_dimensions["A"].width = 40
        for col in "BCD":
            ws.column_dimensions[col].width = 16
    wb.save(path)


def _sheet_name(label: str, used: set[str]) -> str:
    base = "".join(ch for ch in label if ch not in "[]:*?/\\")[:31].strip() or "Metric"
    name, n = base, 2
    while name in used:
        name = f"{base[:28]} {n}"
        n += 1
    used.add(name)
    return name


def write_csv(folder: Path, tables: Sequence[OutcomeTable], catalog: Catalog, info: ReleaseInfo) -> None:
    with open(folder / "outcomes.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([f for f, _, _ in CSV_FIELDS])
        for row in long_rows(tables, catalog, info):
            w.writerow([_safe_cell(v) for v in row])
    descriptor = {
        "profile": "tabular-data-package",
        "name": "pathshare-outcomes",
        "title": info.title,
        "description": info.footnote(),
        "created": info.created,
        "resources": [
            {
                "name": "outcomes",
                "path": "outcomes.csv",
                "profile": "tabular-data-resource",
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": {
                    "fields": [
                        {
                            "name": n,
                            "type": t,
                            "description": d,
                            **({"constraints": {"minimum": 0}} if t == "integer" else {}),
                        }
                        for n, t, d in CSV_FIELDS
                    ],
                    "missingValues": [HIDDEN],
                },
            }
        ],
    }
    (folder / "datapackage.json").write_text(
        json.dumps(descriptor, indent=2, ensure_ascii=False) + "\n", "utf-8"
    )


def _safe_cell(value: object) -> object:
    from deid._csvsafe import spreadsheet_safe  # the one rule (CSV injection)

    return spreadsheet_safe(value)


def _chart(t: OutcomeTable, info: ReleaseInfo, title: str) -> str:
    """A horizontal bar chart of the rate by group, as a base64 PNG (see _draw_chart)."""
    from matplotlib.figure import Figure

    labels = [info.group(t.by, g) for g in t.groups]
    fig = Figure(figsize=(7.5, 0.45 * len(labels) + 1.2), dpi=90)
    _draw_chart(fig.add_subplot(1, 1, 1), t, info, title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _draw_chart(ax: object, t: OutcomeTable, info: ReleaseInfo, title: str) -> None:
    """The rate by group on ``ax``. Hidden bars are hatched and labelled "hidden" across the whole
    axis; coded bars reach the band's edge, hatched."""
    labels = [info.group(t.by, g) for g in t.groups]
    for y, _g in enumerate(t.groups):
        c, o = t.published(y)
        text = t.rate(y)
        if c is not None and o is not None and c:
            value = 100 * o / c
            ax.barh(y, value, color="#3b6ea5")
            ax.text(min(value + 1, 92), y, text, va="center", fontsize=8)
        elif text != HIDDEN:  # coded: the band, not a value
            lo, hi = (0, 100 * BAND) if t.band[y] == "low" else (100 * (1 - BAND), 100)
            ax.barh(y, hi - lo, left=lo, color="white", edgecolor="#3b6ea5", hatch="//")
            ax.text(hi + 1 if hi < 90 else lo - 12, y, text, va="center", fontsize=8)
        else:
            ax.barh(y, 100, color="white", edgecolor="#999999", hatch="xx", alpha=0.6)
            note = "hidden (protects a small group)"
            ax.text(50, y, note, va="center", ha="center", fontsize=8, color="#555555")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of students", fontsize=8)
    ax.set_title(title, fontsize=9)


def _rows_text(t: OutcomeTable, info: ReleaseInfo) -> list[list[str]]:
    return [[info.group(t.by, g), str(_count(t.published(i)[0])), str(_count(t.published(i)[1])), t.rate(i)]
            for i, g in enumerate(t.groups)]  # fmt: skip


def write_pdf(path: Path, tables: Sequence[OutcomeTable], catalog: Catalog, info: ReleaseInfo) -> None:
    """The report as a PDF: a page of notes, then per table its chart over its table (Letter)."""
    import textwrap

    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    with PdfPages(path, metadata={"Title": info.title, "Creator": "PathShare"}) as pdf:
        fig = Figure(figsize=(8.5, 11))
        lines = [info.title, "", f"Agreement: {info.agreement}", f"Metrics catalog {info.catalog_version}",
                 f"Smallest reported cell: {info.min_cell}",
                 f"Protection of a hidden count: {info.protection} students"]  # fmt: skip
        if info.chosen:
            lines.append(f"Hidden counts chosen {info.chosen}")
        lines += [f"Released {info.created}", "", info.footnote(), ""]
        for mid in dict.fromkeys(t.metric for t in tables):
            m = catalog.get(mid)
            lines += [f"{m.label}: {m.definition} Time window: {m.time_window}.", ""]
        wrapped = [w for line in lines for w in (textwrap.wrap(line, 95) or [""])]
        fig.text(0.07, 0.95, "\n".join(wrapped), va="top", fontsize=8.5, family="sans-serif")
        pdf.savefig(fig)
        for t in tables:
            m = catalog.get(t.metric)
            title = f"{m.label} by {info.breakdown(t.by).lower()}" if t.by else m.label
            n = len(t.groups)
            fig = Figure(figsize=(8.5, 11))
            high = min(0.5, 0.04 * n + 0.08)  # the chart's share of the page, by its number of bars
            _draw_chart(fig.add_axes((0.3, 0.97 - high, 0.62, high - 0.03)), t, info, title)
            table = fig.add_axes((0.07, 0.05, 0.86, 0.97 - high - 0.12))
            table.axis("off")
            cols = ["Group", "Students", m.numerator_label.capitalize(), "Rate"]
            shown = table.table(cellText=_rows_text(t, info), colLabels=cols, loc="upper center",
                                cellLoc="left")  # fmt: skip
            shown.auto_set_font_size(False)
            shown.set_fontsize(7.5)
            pdf.savefig(fig)


def write_html(path: Path, tables: Sequence[OutcomeTable], catalog: Catalog, info: ReleaseInfo) -> None:
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(info.title)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .6em}"
        "td.n{text-align:right}.note{color:#555;font-size:.9em}</style></head><body>",
        f"<h1>{e(info.title)}</h1>",
        f"<p class='note'>Agreement: {e(info.agreement)} · metrics catalog {e(info.catalog_version)} · "
        f"smallest reported cell {info.min_cell} · released {e(info.created)}</p>",
        f"<p class='note'>{e(info.footnote())}</p>",
    ]
    used: dict[str, None] = {}
    for t in tables:
        used.setdefault(t.metric)
    for mid in used:
        m = catalog.get(mid)
        parts.append(f"<h2>{e(m.label)}</h2><p>{e(m.definition)} Time window: {e(m.time_window)}.</p>")
        for t in (t for t in tables if t.metric == mid):
            title = f"{m.label} by {info.breakdown(t.by).lower()}" if t.by else m.label
            parts.append(f"<h3>{e(info.breakdown(t.by))}</h3>")
            parts.append(f"<img alt='{e(title)}' src='data:image/png;base64,{_chart(t, info, title)}'>")
            parts.append("<table><tr><th>Group</th><th>Students</th>"
                         f"<th>{e(m.numerator_label.capitalize())}</th><th>Rate</th></tr>")  # fmt: skip
            for i, g in enumerate(t.groups):
                c, o = t.published(i)
                cells = "".join(f"<td class='n'>{e(str(x))}</td>" for x in (_count(c), _count(o), t.rate(i)))
                parts.append(f"<tr><td>{e(info.group(t.by, g))}</td>{cells}</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def write_release_files(
    folder: Path,
    tables: Sequence[OutcomeTable],
    catalog: Catalog,
    info: ReleaseInfo,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Write the release's files into ``folder`` (which exists); returns them."""
    out = []
    if "xlsx" in formats:
        write_xlsx(folder / "outcomes.xlsx", tables, catalog, info)
        out.append(folder / "outcomes.xlsx")
    if "csv" in formats:
        write_csv(folder, tables, catalog, info)
        out += [folder / "outcomes.csv", folder / "datapackage.json"]
    if "html" in formats:
        write_html(folder / "outcomes.html", tables, catalog, info)
        out.append(folder / "outcomes.html")
    if "pdf" in formats:
        write_pdf(folder / "outcomes.pdf", tables, catalog, info)
        out.append(folder / "outcomes.pdf")
    return out
