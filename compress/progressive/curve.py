"""The anytime curve in the report: per prefix ensemble (its first K students) its cumulative
FLOPs, their share of the teacher's and its test metric, as a table and a PNG plot (metric against
cumulative FLOPs, the teacher as a horizontal line), and the recipe's goals checked against it.

The metric is the PyTorch model's on the test split, measured when the stage trained it; the
export stage measures the same models' artifacts, and the report's model table shows both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never open a window
import matplotlib.pyplot as plt  # noqa: E402

from compress.atomic import write_bytes  # noqa: E402
from compress.devices.report.plots import figure_png  # noqa: E402
from compress.pipeline.artifacts import ModelArtifact, StageFigure, StageSection, StageTable  # noqa: E402
from compress.progressive.goals import (  # noqa: E402
    AnytimeGoal,  # fmt: skip
    fmt,
    goal_result,
    metric_floor,
    percent,
    shown,
    stage_goal,
)

Curves = dict[int | None, list[dict[str, Any]]]  # seed (None: one seed) → points, K = 1, 2, ...


def anytime_section(stage: str, curves: Curves, teacher: ModelArtifact, metric: Any,
                    goals: list[AnytimeGoal], figure: str | None) -> StageSection:  # fmt: skip
    """The report section: the curve's table, the goals' table and the plot (``figure``: its
    path relative to the run directory, None when none was drawn)."""
    theirs = shown(teacher.metrics_pytorch, metric)
    seeds = [] if list(curves) == [None] else ["seed"]  # a seed column only when seeds repeat
    rows = [[*([seed] if seeds else []), p["ensemble"], p["members"], p["cumulative_flops"],
             percent(p["flops_ratio"]), shown(p["test_metrics_pytorch"], metric)]
            for seed, points in curves.items() for p in points]  # fmt: skip
    rows.append([*([None] if seeds else []), teacher.name, None, teacher.flops, 100.0, theirs])
    tables = [StageTable(
        caption="The anytime curve: the first K students summed (one graph each) and the teacher.",
        columns=[*seeds, "model", "K", "cumulative FLOPs", "% of the teacher's FLOPs",
                 f"test {metric.name}, {metric.unit} (PyTorch)"], rows=rows)]  # fmt: skip
    if goals:
        tables.append(StageTable(
            caption="Goals: met when a prefix ensemble within the FLOPs budget reaches the "
            "metric (per seed, on the PyTorch test metric).",
            columns=["goal", *seeds, "first prefix meeting it", "result"],
            rows=[[goal.describe(metric.unit), *([seed] if seeds else []),
                   *goal_result(goal, points, theirs, metric)]
                  for goal in goals for seed, points in curves.items()]))  # fmt: skip
    return StageSection(
        stage=stage, title=f"Anytime ensemble: {metric.name} against cumulative FLOPs",
        text=[f"Students are trained one after another; the ensemble after K students sums their "
              f"logits, so a device may stop after any K. The teacher ({teacher.name}, "
              f"{teacher.flops:,} FLOPs per example) scores {fmt(theirs)} {metric.unit}."],
        goals=[stage_goal(goal, points, theirs, metric, stage + (
                   "" if seed is None else f"@s{seed}")) for goal in goals
               for seed, points in curves.items()],  # fmt: skip
        tables=tables, figures=[] if figure is None else [StageFigure(
            path=figure, caption=f"Test {metric.name} (PyTorch) against cumulative FLOPs after "
            f"each student; the dashed line is the teacher.")],
    )  # fmt: skip


def write_curve_png(path: Path, curves: Curves, teacher: ModelArtifact, metric: Any,
                    goals: list[AnytimeGoal]) -> Path:  # fmt: skip
    """Metric against cumulative FLOPs (log scale), one line per seed, the teacher as a line."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for seed, points in curves.items():
        x = [p["cumulative_flops"] for p in points]
        y = [shown(p["test_metrics_pytorch"], metric) for p in points]
        ax.plot(x, y, "o-", label="first K students" + ("" if seed is None else f", seed {seed}"))
        for p, xi, yi in zip(points, x, y, strict=True):
            ax.annotate(f"K={p['members']}", (xi, yi), textcoords="offset points", xytext=(3, -10),
                        fontsize=7)  # fmt: skip
    theirs = shown(teacher.metrics_pytorch, metric)
    if theirs is not None:
        ax.axhline(theirs, color="k", linestyle="--",
                   label=f"teacher ({teacher.flops:,} FLOPs)")  # fmt: skip
    for goal in goals:
        floor = metric_floor(goal, theirs, metric)
        if floor is not None and teacher.flops:
            ax.plot([goal.max_flops * teacher.flops], [floor], "rx", markersize=8)
    if goals:
        ax.plot([], [], "rx", label="goal: FLOPs budget and metric to reach")
    ax.set_xscale("log")
    ax.set_xlabel("cumulative FLOPs per example")
    ax.set_ylabel(f"test {metric.name}, {metric.unit} (PyTorch)")
    ax.legend(fontsize=7, loc="best")
    write_bytes(path, figure_png(fig))
    return path


def curve_note(point: dict[str, Any], metric: Any) -> str:
    """One line of the report's notes per prefix ensemble."""
    mine, share = shown(point["test_metrics_pytorch"], metric), point["flops_ratio"]
    ratio = "" if share is None else f" ({100 * share:.2f} % of the teacher's)"
    return (f"anytime {point['ensemble']}: {point['members']} member(s), "
            f"{point['cumulative_flops']:,} FLOPs{ratio}, test {metric.name} {fmt(mine)} "
            f"{metric.unit} (PyTorch)")  # fmt: skip
