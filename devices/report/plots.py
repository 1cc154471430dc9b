"""PNG plots for report.html: the task's primary metric vs latency (per batch size) and vs model
size. Axis labels come from the task's metric description, never from an assumed accuracy.

Seeds of one model group become one point (mean metric, median latency, a bar of ± one std), so
three seeds do not crowd the plot with three labels that say the same thing.

Each function returns PNG bytes, or None when the report holds nothing to plot, so the caller can
simply skip the figure.
"""

from __future__ import annotations

import io
import statistics
from dataclasses import dataclass

import matplotlib

# Agg before pyplot: report writing runs headless (CI, SSH, devices) and must never open a window.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backend_bases import RendererBase  # noqa: E402
from matplotlib.text import Annotation  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from .fmt import fmt_count, is_estimated, is_unstable, metric_label, metrics_of, num  # noqa: E402
from .stats import mean_std  # noqa: E402

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">"]


@dataclass
class _Point:
    label: str
    x: float
    y: float
    yerr: float | None  # std over seeds, None for one seed
    model: str  # the group: one colour per group
    target: str
    estimated: bool
    unstable: bool


def figure_png(fig: plt.Figure) -> bytes:
    """``fig`` as PNG bytes, then closed (stages' plots use it too)."""
    buf = io.BytesIO()
    try:
        # No "Software" metadata: identical reports give identical bytes.
        fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    finally:
        plt.close(fig)
    return buf.getvalue()


def _shown(metrics: object, metric: dict) -> float | None:
    v = num(metrics.get(metric["name"])) if isinstance(metrics, dict) else None
    return None if v is None else v * metric["scale"]


def _record_metric(model: dict, rec: dict, metric: dict) -> float | None:
    """The metric (displayed) of what a latency record ran: the artifact at its path, else the
    PyTorch model for a PyTorch record, else an artifact of the same format."""
    arts = [a for a in model.get("artifacts") or [] if isinstance(a, dict)]
    by_path = [
        _shown(a.get("metrics"), metric) for a in arts if a.get("path") == rec.get("artifact")
    ]
    if str(rec.get("format") or rec.get("artifact") or "").startswith("pytorch"):
        by_path.append(_shown(model.get("metrics_pytorch"), metric))
    by_format = [
        _shown(a.get("metrics"), metric) for a in arts if a.get("format") == rec.get("format")
    ]
    return next((v for v in by_path + by_format if v is not None), None)


def _latency_buckets(report: dict, batch_size: int, metric: dict) -> dict[tuple, dict]:
    """Records at ``batch_size`` by (group, target, format, precision, estimated), one record
    per model (seed): the first, as a repeat adds nothing."""
    models = {m.get("name"): m for m in report.get("models") or [] if isinstance(m, dict)}
    buckets: dict[tuple, dict] = {}
    for rec in report.get("latency") or []:
        if not isinstance(rec, dict) or rec.get("batch_size") != batch_size:
            continue
        model = models.get(rec.get("model")) or {}
        x, y = num(rec.get("median_ms")), _record_metric(model, rec, metric)
        if x is None or x <= 0 or y is None:  # log axis needs x > 0
            continue
        group = str(model.get("group") or rec.get("model"))
        key = (group, str(rec.get("target")), rec.get("format"), rec.get("precision"),
               is_estimated(rec))  # fmt: skip
        buckets.setdefault(key, {}).setdefault(rec.get("model"), (x, y, is_unstable(rec)))
    return buckets


def _latency_points(report: dict, batch_size: int, metric: dict) -> list[_Point]:
    """One point per bucket: median latency and mean ± std of the metric over its seeds."""
    points = []
    for (group, target, _fmt, precision, est), seeds in _latency_buckets(
        report, batch_size, metric
    ).items():
        xs, ys, unstable = zip(*seeds.values(), strict=True)
        mean, std = mean_std(ys)
        label = f"{group} · {target}"
        label += f" ({precision})" if precision not in (None, "fp32") else ""
        label += f" ×{len(ys)} seeds" if len(ys) > 1 else ""
        label += " [estimated]" if est else ""
        label += " [UNSTABLE]" if any(unstable) else ""
        x = statistics.median(xs)
        points.append(_Point(label, x, mean, std, group, target, est, any(unstable)))
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


def _draw_point(ax: plt.Axes, p: _Point, color: str, marker: str) -> None:
    """A marker with a bar of ± one std over seeds, so seed noise is visible next to gaps."""
    if p.yerr:  # the spread over seeds, behind the marker
        ax.errorbar([p.x], [p.y], yerr=[p.yerr], fmt="none", ecolor=color, capsize=3, zorder=2)
    ax.scatter([p.x], [p.y], s=70, marker=marker, zorder=3,
               facecolors="none" if p.estimated else color,
               edgecolors="red" if p.unstable else color,
               linewidths=2.5 if p.unstable else 1.5)  # fmt: skip


def metric_vs_latency(report: dict, batch_size: int) -> bytes | None:
    """The primary metric against median latency (ms, log) at one batch size; one point per
    (group, target, format, precision), seeds pooled; hollow = estimated, red ring = unstable."""
    metric = metrics_of(report)[0]
    points = _latency_points(report, batch_size, metric)
    if not points:
        return None
    colors, markers = _style_maps(points)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    try:
        for p in points:
            _draw_point(ax, p, colors[p.model], markers[p.target])
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.margins(x=0.25, y=0.15)
        _place_labels(fig, ax, [(p.label, p.x, p.y) for p in points])
        ax.set_xlabel("Median latency (ms, log scale; median over seeds)")
        ax.set_ylabel(f"{metric_label(metric)} (mean over seeds)")
        title = f"{metric['name']} vs latency — batch {batch_size}"
        if any(p.estimated or p.unstable for p in points):
            title += "\n(hollow = estimated, red ring = unstable)"
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        return figure_png(fig)
    finally:
        plt.close(fig)


def _size_points(report: dict, metric: dict) -> list[tuple[str, float, float, float | None, str]]:
    """(group, params, mean metric, std, role) for every group that has both numbers."""
    out = []
    for g in report.get("groups") or []:
        if not isinstance(g, dict):
            continue
        params = num(g.get("params"))
        stat = (g.get("metrics") or {}).get(metric["name"]) or {}
        mean, std = num(stat.get("mean")), num(stat.get("std"))
        if params is not None and params > 0 and mean is not None:
            out.append((str(g.get("group")), params, mean, std, str(g.get("role") or "")))
    return out


def metric_vs_size(report: dict) -> bytes | None:
    """The primary metric (reported: the artifact's, mean over seeds) against parameter count
    (log); one labelled point per model group, bars of ± one std over seeds."""
    metric = metrics_of(report)[0]
    points = _size_points(report, metric)
    if not points:
        return None
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    roles = list(dict.fromkeys(role for *_, role in points))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    try:
        for name, params, mean, std, role in points:
            color = cycle[roles.index(role) % len(cycle)]
            _draw_point(ax, _Point(name, params, mean, std, name, "", False, False), color, "o")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_count(v, trim=True)))
        ax.margins(x=0.25, y=0.15)
        labels = [(f"{n} ({r})" if r and r != n else n, x, y) for n, x, y, _, r in points]
        _place_labels(fig, ax, labels)
        ax.set_xlabel("Parameters (log scale)")
        ax.set_ylabel(f"{metric_label(metric)} (artifact, mean over seeds)")
        ax.set_title(f"{metric['name']} vs model size")
        ax.grid(True, which="both", alpha=0.3)
        return figure_png(fig)
    finally:
        plt.close(fig)
