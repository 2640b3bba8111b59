"""Charts of a link run for the analyst: the match weight of each kind of token, and how the candidate
pairs spread over the match score, with the threshold drawn on both.

Drawn from the link report alone (:class:`deid._linkmatch.LinkReport`: weights, threshold and
``score_counts``, the number of candidate pairs of students at each score — counts, never who), by
matplotlib's Agg backend into PNG bytes: the CLI writes them to a file (``pathshare link --chart``),
the app shows them on its Link page. No display server, and matplotlib loads only when a chart is drawn.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

# What each kind of token compares, in the analyst's words (the chart's labels).
KIND_LABELS = {
    "I": "state ID",
    "A": "name + birth date",
    "M": "initials + surname + birth date",
    "W": "first & middle name + surname + birth date",
    "B": "name + birth date, day/month swapped",
    "C": "surname + birth date + sex",
    "E": "first name + birth date + sex",
    "G": "name + birth year",
    "P": "first name + birth date + surname within one typo",
    "Q": "surname + birth date + first name within one typo",
    "K": "Cal-PASS key",
}


def link_chart_data(report: Any) -> dict[str, Any]:
    """The numbers the charts draw, from a LinkReport or its dict: per kind the weight of agreeing
    (and, for estimated weights, of not agreeing), the threshold, and candidate pairs by score."""
    r = report if isinstance(report, Mapping) else report.to_dict()
    est = r.get("estimated")
    kinds = [
        k
        for k in KIND_LABELS
        if k in (r.get("kinds_a") or "").split() and k in (r.get("kinds_b") or "").split()
    ]
    if est:
        fitted = est["kinds"]
        kinds = [k for k in kinds if k in fitted]
        agree = {k: float(fitted[k]["weight"]) for k in kinds}
        import math

        disagree = {
            k: round(math.log2(max(1 - fitted[k]["m"], 1e-9) / max(1 - fitted[k]["u"], 1e-9)), 2)
            for k in kinds
        }
    else:
        weights = r.get("weights") or {}
        kinds = [k for k in kinds if k in weights and k != "K"]
        agree = {k: float(weights[k]) for k in kinds}
        disagree = {}
    counts = {float(s): int(n) for s, n in (r.get("score_counts") or {}).items()}
    return {
        "method": r.get("method"),
        "estimated": bool(est),
        "kinds": kinds,
        "labels": {k: KIND_LABELS[k] for k in kinds},
        "agree": agree,
        "disagree": disagree,
        "threshold": float(r.get("threshold") or 0),
        "score_counts": dict(sorted(counts.items())),
    }


def link_chart_png(report: Any, width_px: int = 1000, height_px: int = 340) -> bytes:
    """Two charts side by side as PNG bytes: the weight per kind of token, and the candidate pairs of
    students by match score (log scale), the threshold drawn on both."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    d = link_chart_data(report)
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    labels = [d["labels"][k] for k in d["kinds"]]
    y = list(range(len(labels)))
    ax.barh(y, [d["agree"][k] for k in d["kinds"]], color="#4C78A8", label="agree")
    if d["disagree"]:
        ax.barh(y, [d["disagree"][k] for k in d["kinds"]], color="#E45756", label="do not agree")
        ax.legend(fontsize=7, loc="lower right")
    ax.axvline(d["threshold"], color="#333333", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    how = "estimated from these files" if d["estimated"] else "set by PathShare"
    ax.set_title(f"Match weight of each kind of token ({how})", fontsize=9)
    ax.set_xlabel(f"weight (dashed: the match threshold, {d['threshold']:g})", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)

    ax = fig.add_subplot(1, 2, 2)
    scores, counts = list(d["score_counts"]), list(d["score_counts"].values())
    if scores:
        colors = ["#54A24B" if s >= d["threshold"] else "#9D9D9D" for s in scores]
        width = max(0.8, (max(scores) - min(scores)) / 80)  # estimated weights spread wider
        ax.bar(scores, counts, width=width, color=colors)
        ax.set_yscale("log")
        ax.axvline(d["threshold"] - 0.5, color="#333333", linestyle="--", linewidth=1)
    ax.set_title("Candidate pairs of students by match score", fontsize=9)
    ax.set_xlabel("score (green: at or above the threshold, may link)", fontsize=8)
    ax.set_ylabel("pairs (log scale)", fontsize=8)
    ax.tick_params(labelsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
