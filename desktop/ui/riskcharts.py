"""The Risk step's charts: group sizes, information lost per column, students keeping each value.

Drawing only: every number comes from the disclosure search's result (deid.DisclosureResult, as the
preview job returns it). matplotlib draws offscreen into an image the window shows, so nothing here
needs a display server, and it loads only when the Risk step is first filled.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QImage, QPixmap

MAX_GROUPS = 12  # bars per quasi-identifier in the before/after chart (the largest groups)


def risk_pixmap(disclosure: dict[str, Any], width_px: int = 900, height_px: int = 260) -> QPixmap:
    """Three charts side by side: classes by size, information lost per column, and for the most
    varied quasi-identifier kept (up to :data:`MAX_GROUPS` groups) students before and after."""
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
    labels = [names.get(q, q) for q in losses]
    ax.barh(labels, [100 * v for v in losses.values()], color="#E45756")
    ax.set_xlim(0, 100)
    ax.set_title("Information lost per column (%)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.invert_yaxis()

    ax = fig.add_subplot(1, 3, 3)
    q, groups = _groups_to_show(disclosure)
    if q:
        top = sorted(groups, key=lambda g: -g["students"])[:MAX_GROUPS]
        x = range(len(top))
        ax.bar([i - 0.2 for i in x], [g["students"] for g in top], width=0.4, label="in the extract",
               color="#9D9D9D")
        ax.bar([i + 0.2 for i in x], [g["students"] - g["suppressed"] for g in top], width=0.4,
               label="keep it", color="#54A24B")
        ax.set_xticks(list(x), [str(g["group"])[:10] for g in top], rotation=60, fontsize=6)
        ax.set_title(f"{names.get(q, q)}: students before and after", fontsize=9)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    else:
        ax.set_axis_off()
    canvas_image = _render(fig)
    return QPixmap.fromImage(canvas_image)


def _groups_to_show(disclosure: dict[str, Any]) -> tuple[str | None, list[dict[str, Any]]]:
    """The kept quasi-identifier with the most students losing a value (ties: the most groups)."""
    removed = set(disclosure.get("removed") or ())
    groups = disclosure.get("groups") or []
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


def _render(fig: Any) -> QImage:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width, height = canvas.get_width_height()
    buffer = bytes(canvas.buffer_rgba())
    return QImage(buffer, width, height, QImage.Format.Format_RGBA8888).copy()
