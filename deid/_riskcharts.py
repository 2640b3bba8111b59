"""The disclosure-control charts: groups of students by size, information lost per column, and students
before and after in the most affected quasi-identifier.

One drawing for every place that shows them: the app's Risk step (desktop/ui/riskcharts.py turns the
figure into an image on screen) and the release report the analyst opens (agreements' release kit embeds
:func:`risk_chart_png` in its HTML). Every number comes from the disclosure search's result
(``DisclosureResult.to_dict()``, or the report's ``disclosure`` block); the before/after chart needs
counts by group, which the sender's result has (``groups``) and the recipient's report has only for
published codes of at least k students (``suppression_by_group``). matplotlib draws offscreen (Agg).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

MAX_GROUPS = 12  # bars per quasi-identifier in the before/after chart (the largest groups)


def risk_figure(
    disclosure: Mapping[str, Any],
    width_px: int = 900,
    height_px: int = 260,
    *,
    groups: list[dict[str, Any]] | None = None,
) -> Any:
    """Three charts side by side (a matplotlib Figure): classes by size, information lost per column,
    and for the quasi-identifier kept that lost most (up to :data:`MAX_GROUPS` groups) students before
    and after. ``groups`` (attribute, group, students, suppressed) replace ``disclosure['groups']``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    names = disclosure.get("names") or {}
    sizes = disclosure.get("class_sizes") or {}
    ax = fig.add_subplot(1, 3, 1)
    ax.bar(list(sizes), list(sizes.values()), color="#4C78A8")
    ax.set_title("Groups of students by size", fontsize=9)
    ax.set_xlabel("students in the group", fontsize=8)
    ax.set_ylabel("groups", fontsize=8)
    ax.tick_params(labelsize=7)

    ax = fig.add_subplot(1, 3, 2)
    losses = disclosure.get("loss_by_column") or {}
    ax.barh([names.get(q, q) for q in losses], [100 * v for v in losses.values()], color="#E45756")
    ax.set_xlim(0, 100)
    ax.set_title("Information lost per column (%)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.invert_yaxis()

    ax = fig.add_subplot(1, 3, 3)
    q, shown = _groups_to_show(disclosure, groups)
    if q:
        top = sorted(shown, key=lambda g: -g["students"])[:MAX_GROUPS]
        x = range(len(top))
        before = [g["students"] for g in top]
        after = [g["students"] - g["suppressed"] for g in top]
        ax.bar([i - 0.2 for i in x], before, width=0.4, label="in the extract", color="#9D9D9D")
        ax.bar([i + 0.2 for i in x], after, width=0.4, label="keep it", color="#54A24B")
        ax.set_xticks(list(x), [str(g["group"])[:10] for g in top], rotation=60, fontsize=6)
        ax.set_title(f"{names.get(q, q)}: students before and after", fontsize=9)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    else:
        ax.set_axis_off()
    return fig


def risk_chart_png(disclosure: Mapping[str, Any], *, groups: list[dict[str, Any]] | None = None) -> bytes:
    """:func:`risk_figure` as PNG bytes (for a self-contained HTML page)."""
    fig = risk_figure(disclosure, groups=groups)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _groups_to_show(
    disclosure: Mapping[str, Any], groups: list[dict[str, Any]] | None
) -> tuple[str | None, list[dict[str, Any]]]:
    """The kept quasi-identifier with the most students losing a value (ties: the most groups)."""
    removed = set(disclosure.get("removed") or ())
    groups = groups if groups is not None else list(disclosure.get("groups") or [])
    best: tuple[tuple[int, int], str] | None = None
    for q in disclosure.get("quasi_identifiers") or []:
        if q in removed:
            continue
        mine = [g for g in groups if g["attribute"] == q]
        key = (sum(g["suppressed"] for g in mine), len(mine))
        if mine and (best is None or key > best[0]):
            best = (key, q)
    if best is None:
        return None, []
    return best[1], [g for g in groups if g["attribute"] == best[1]]
