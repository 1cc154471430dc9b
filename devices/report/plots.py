"""PNG plots for report.html: accuracy vs latency (per batch size) and accuracy vs model size.

Each function returns PNG bytes, or None when the report holds nothing to plot, so the caller can
simply skip the figure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib

# Agg before pyplot: report writing runs headless (CI, SSH, devices) and must never open a window.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backend_bases import RendererBase  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from .fmt import fmt_count, is_estimated, is_unstable, num, to_percent  # noqa: E402

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">"]


@dataclass
class _Point:
    label: str
    x: float
    y: float
    model: str
    target: str
    estimated: bool
    unstable: bool


def _to_png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    # No "Software" metadata: identical reports give identical bytes.
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _artifact_accuracy(model: dict, rec: dict) -> float | None:
    """Accuracy (%) of the artifact a latency record ran, falling back from path to format."""
    arts = [a for a in model.get("artifacts") or [] if isinstance(a, dict)]
    for art in arts:
        if art.get("path") == rec.get("artifact") and to_percent(art.get("accuracy")) is not None:
            return to_percent(art.get("accuracy"))
    fmt = str(rec.get("format") or rec.get("artifact") or "")
    if fmt.startswith("pytorch"):
        return to_percent(model.get("accuracy_pytorch"))
    for art in arts:
        if art.get("format") == rec.get("format") and to_percent(art.get("accuracy")) is not None:
            return to_percent(art.get("accuracy"))
    return None


def _latency_points(report: dict, batch_size: int) -> list[_Point]:
    models = {m.get("name"): m for m in report.get("models") or [] if isinstance(m, dict)}
    points: list[_Point] = []
    seen: set[tuple] = set()
    for rec in report.get("latency") or []:
        if not isinstance(rec, dict) or rec.get("batch_size") != batch_size:
            continue
        model, target = str(rec.get("model")), str(rec.get("target"))
        x = num(rec.get("median_ms"))
        y = _artifact_accuracy(models.get(rec.get("model")) or {}, rec)
        # Same model+target twice only differs by artifact/precision; a repeat adds nothing.
        key = (model, target, rec.get("artifact"), rec.get("precision"))
        if x is None or x <= 0 or y is None or key in seen:  # log axis needs x > 0
            continue
        seen.add(key)
        label = f"{model} · {target}"
        if rec.get("precision") not in (None, "fp32"):
            label += f" ({rec['precision']})"
        est, unst = is_estimated(rec), is_unstable(rec)
        label += " [estimated]" if est else ""
        label += " [UNSTABLE]" if unst else ""
        points.append(_Point(label, x, y, model, target, est, unst))
    return points


def _style_maps(points: list[_Point]) -> tuple[dict[str, str], dict[str, str]]:
    """Colour per model, marker shape per target."""
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    models = list(dict.fromkeys(p.model for p in points))
    targets = list(dict.fromkeys(p.target for p in points))
    colors = {m: cycle[i % len(cycle)] for i, m in enumerate(models)}
    markers = {t: _MARKERS[i % len(_MARKERS)] for i, t in enumerate(targets)}
    return colors, markers


# Label positions tried in order (offset in points, horizontal alignment): right of the point,
# then above/below, then to the left, so neighbouring labels stop overprinting each other.
_LABEL_SLOTS = [
    ((7, -3), "left"),
    ((7, 6), "left"),
    ((7, -13), "left"),
    ((-7, -3), "right"),
    ((-7, 6), "right"),
    ((-7, -13), "right"),
    ((10, 16), "left"),
    ((10, -23), "left"),
    ((-10, 16), "right"),
    ((-10, -23), "right"),
    ((14, 27), "left"),
    ((14, -34), "left"),
]


def _annotate(
    ax: plt.Axes, label: str, x: float, y: float, slot: tuple, leader: bool = False
) -> Annotation:
    (dx, dy), ha = slot
    # A thin leader line ties a displaced label to its point; next to the point it is invisible.
    arrow = {"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 1, "shrinkB": 5}
    return ax.annotate(
        label,
        (x, y),
        xytext=(dx, dy),
        textcoords="offset points",
        fontsize=8,
        ha=ha,
        arrowprops=arrow if leader else None,
    )


def _place_labels(fig: plt.Figure, ax: plt.Axes, items: list[tuple[str, float, float]]) -> None:
    """Annotate each (label, x, y), choosing the first slot that stays inside the axes and does
    not overlap a marker or an earlier label; falls back to the first slot."""
    # Freeze the limits first: label placement works in display space, which must not move.
    ax.autoscale_view()
    lo, hi = ax.get_xlim()
    # Labels run rightwards: on a log axis leave extra room on the right so they fit beside
    # the rightmost points instead of being pushed to the left of them.
    ax.set_xlim(lo, hi * (hi / lo) ** 0.3 if ax.get_xscale() == "log" and lo > 0 else hi)
    ax.set_ylim(ax.get_ylim())
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    taken = []
    for _, x, y in items:  # markers are obstacles too (about 6 px radius at s=70, dpi=110)
        px, py = ax.transData.transform((x, y))
        taken.append(Bbox([[px - 7, py - 7], [px + 7, py + 7]]))
    for label, x, y in items:
        for slot in _LABEL_SLOTS:
            box = _label_box(ax, renderer, label, x, y, slot)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(t) for t in taken):
                break
        else:  # nothing fits: the first slot beats the last
            slot = _LABEL_SLOTS[0]
            box = _label_box(ax, renderer, label, x, y, slot)
        _annotate(ax, label, x, y, slot, leader=True)
        taken.append(box)


def _label_box(
    ax: plt.Axes, renderer: RendererBase, label: str, x: float, y: float, slot: tuple
) -> Bbox:
    # Measured without the leader line: its bbox would reach the point and always overlap it.
    trial = _annotate(ax, label, x, y, slot)
    box = trial.get_window_extent(renderer)
    trial.remove()
    return box


def accuracy_vs_latency(report: dict, batch_size: int) -> bytes | None:
    """Accuracy (%) against median latency (ms, log) at one batch size; one point per
    (model, target, artifact); hollow = estimated, red ring = unstable."""
    points = _latency_points(report, batch_size)
    if not points:
        return None
    colors, markers = _style_maps(points)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    try:
        for p in points:
            color = colors[p.model]
            ax.scatter(
                [p.x],
                [p.y],
                s=70,
                marker=markers[p.target],
                zorder=3,
                facecolors="none" if p.estimated else color,
                edgecolors="red" if p.unstable else color,
                linewidths=2.5 if p.unstable else 1.5,
            )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.margins(x=0.25, y=0.15)
        _place_labels(fig, ax, [(p.label, p.x, p.y) for p in points])
        ax.set_xlabel("Median latency (ms, log scale)")
        ax.set_ylabel("Accuracy (%)")
        title = f"Accuracy vs latency — batch {batch_size}"
        if any(p.estimated or p.unstable for p in points):
            title += "\n(hollow = estimated, red ring = unstable)"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        return _to_png(fig)
    finally:
        plt.close(fig)


def _size_points(report: dict) -> list[tuple[str, float, float, str]]:
    """(name, params, best accuracy %, role) for every model that has both numbers."""
    out = []
    for m in report.get("models") or []:
        if not isinstance(m, dict):
            continue
        params = num(m.get("params"))
        accs = [
            to_percent(a.get("accuracy")) for a in m.get("artifacts") or [] if isinstance(a, dict)
        ]
        accs = [a for a in accs if a is not None]
        # Without exported artifacts, the PyTorch accuracy is the best we know.
        best = max(accs) if accs else to_percent(m.get("accuracy_pytorch"))
        if params is not None and params > 0 and best is not None:
            out.append((str(m.get("name")), params, best, str(m.get("role") or "")))
    return out


def accuracy_vs_size(report: dict) -> bytes | None:
    """Best artifact accuracy (%) against parameter count (log); one labelled point per model."""
    points = _size_points(report)
    if not points:
        return None
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    roles = list(dict.fromkeys(role for *_, role in points))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    try:
        for _, params, acc, role in points:
            ax.scatter([params], [acc], s=70, zorder=3, color=cycle[roles.index(role) % len(cycle)])
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_count(v, trim=True)))
        ax.margins(x=0.25, y=0.15)
        labels = [(f"{n} ({r})" if r and r != n else n, x, y) for n, x, y, r in points]
        _place_labels(fig, ax, labels)
        ax.set_xlabel("Parameters (log scale)")
        ax.set_ylabel("Best artifact accuracy (%)")
        ax.set_title("Accuracy vs model size")
        ax.grid(True, which="both", alpha=0.3)
        return _to_png(fig)
    finally:
        plt.close(fig)
