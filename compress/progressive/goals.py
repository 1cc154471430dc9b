"""Goals for the anytime curve: a FLOPs budget (a share of the teacher's) and a metric to reach
within it, absolute or relative to the teacher. A goal is met when some prefix ensemble (the first
K students summed) is within the budget and reaches the metric."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from compress.config import StrictModel
from compress.pipeline.artifacts import StageGoal


class AnytimeGoal(StrictModel):
    """A point the anytime curve should reach: some prefix ensemble within a FLOPs budget whose
    test metric reaches ``reach``, or is at most ``max_drop`` worse than the teacher's."""

    max_flops: float = Field(gt=0, le=1, description="Largest share of the teacher's FLOPs "
                             "(0.01: 1 %).")  # fmt: skip
    reach: float | None = Field(
        None, description="The test metric to reach, in its shown unit (accuracy: %)."
    )
    max_drop: float | None = Field(
        None, ge=0, description="Largest gap to the teacher's test metric, in its shown unit "
        "(accuracy: points).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _one_bound(self) -> AnytimeGoal:
        if (self.reach is None) == (self.max_drop is None):
            raise ValueError("give one of reach and max_drop")
        return self

    def describe(self, unit: str) -> str:
        gap = "points" if unit == "%" else unit  # a difference of percentages is in points
        bound = (f"reaching {self.reach:g} {unit}" if self.reach is not None else
                 f"within {self.max_drop:g} {gap} of the teacher")  # fmt: skip
        return f"≤ {100 * self.max_flops:g} % of the teacher's FLOPs, {bound}"


def goal_result(goal: AnytimeGoal, points: list[dict[str, Any]], teacher: float | None,
                metric: Any) -> list[str | None]:  # fmt: skip
    """[the first prefix ensemble meeting the goal or None, what was measured] for one seed's
    curve; ``teacher`` is the teacher's shown metric."""
    floor = metric_floor(goal, teacher, metric)
    budget = [p for p in points if p["flops_ratio"] is not None
              and p["flops_ratio"] <= goal.max_flops]  # fmt: skip
    for p in budget:
        mine = shown(p["test_metrics_pytorch"], metric)
        if mine is not None and floor is not None and worse(metric, floor, mine) <= 0:
            return [p["ensemble"], f"met: {fmt(mine)} {metric.unit} with "
                    f"{percent(p['flops_ratio']):.2f} % of the teacher's FLOPs"]  # fmt: skip
    scored = [(mine, p) for p in budget
              if (mine := shown(p["test_metrics_pytorch"], metric)) is not None]  # fmt: skip
    if not scored:
        return [None, "not met: no prefix within the FLOPs budget"]
    mine, best = min(scored, key=lambda pair: worse(metric, 0.0, pair[0]))  # the best one
    return [None, f"not met: the best within the budget, {best['ensemble']}, has "
            f"{fmt(mine)} {metric.unit}"]  # fmt: skip


def stage_goal(goal: AnytimeGoal, points: list[dict[str, Any]], teacher: float | None,
               metric: Any, name: str) -> StageGoal:  # fmt: skip
    """The goal for the report's Goals table: the best shown metric of a prefix ensemble within
    the FLOPs budget against the metric the goal asks for."""
    floor = metric_floor(goal, teacher, metric)
    within = [v for p in points
              if p["flops_ratio"] is not None and p["flops_ratio"] <= goal.max_flops
              and (v := shown(p["test_metrics_pytorch"], metric)) is not None]  # fmt: skip
    best = min(within, key=lambda v: worse(metric, 0.0, v)) if within else None
    reason = ("no prefix ensemble within the FLOPs budget" if best is None else
              "the teacher's metric is unknown" if floor is None else None)  # fmt: skip
    return StageGoal(
        name=f"{name}: anytime at {100 * goal.max_flops:g} % of the FLOPs",
        description=goal.describe(metric.unit) + " (PyTorch test metric)",
        measured=best, target=goal.reach if floor is None else floor, unit=metric.unit,
        passed=best is not None and floor is not None and worse(metric, floor, best) <= 0,
        reason=reason,
    )  # fmt: skip


def metric_floor(goal: AnytimeGoal, teacher: float | None, metric: Any) -> float | None:
    """The shown metric a goal asks for: its own, or the teacher's less the allowed drop."""
    if goal.max_drop is None:
        return goal.reach
    if teacher is None:
        return None
    return teacher - goal.max_drop if metric.direction == "higher" else teacher + goal.max_drop


def worse(metric: Any, reference: float, value: float) -> float:
    """How much worse a shown ``value`` is than a shown ``reference`` (> 0: worse)."""
    return reference - value if metric.direction == "higher" else value - reference


def shown(metrics: dict[str, float] | None, metric: Any) -> float | None:
    """A metric from a model's metric dict in its shown unit (accuracy: %), None when absent."""
    value = (metrics or {}).get(metric.name)
    return None if value is None else metric.display(value)


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def percent(share: float | None) -> float | None:
    return None if share is None else round(100 * share, 3)
