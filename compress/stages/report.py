"""Write report.json, report.md and report.html at the top of the run directory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.config import StrictModel
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage


class GapGoal(StrictModel):
    """One group's primary metric against another's, paired by seed."""

    model: str = Field(description="The group checked (the recipe's name for a model).")
    against: str = Field(description="The group it is compared with.")
    min: float = Field(
        description="Smallest allowed mean of model − against, in the metric's shown unit "
        "(accuracy: points; −1 allows one point worse, 5 asks for five points better).",
    )  # fmt: skip


class SpeedupGoal(StrictModel):
    """One group's artifact against another's, timed in the same interleaved rounds."""

    model: str = Field(description="The group that should be faster.")
    against: str = Field(description="The group it is compared with.")
    batch: int = Field(ge=1, le=65536, description="Batch size of the comparison.")
    min: float = Field(gt=0, description="Smallest allowed latency ratio against / model.")
    target: str | None = Field(None, description="Target (default: the report's primary).")


class GoalsConfig(StrictModel):
    """Targets every student is checked against; the report shows PASS or FAIL for each."""

    max_param_ratio: float | None = Field(None, gt=0, description="Student params / teacher's.")
    max_metric_drop: dict[str, float] = Field(
        default_factory=dict, description="Per task metric, how much worse than the teacher a "
        "student may be, in the metric's unit (accuracy: points); the task says which direction "
        "is worse.",
    )  # fmt: skip
    min_speedup_b1: float | None = Field(
        None, gt=0, description="Teacher eager PyTorch / student artifact latency at batch 1."
    )
    beat_baseline: bool = Field(
        False, description="Student must beat its from-scratch twin: the confidence interval of "
        "the paired per-seed differences must lie above zero (needs `seeds:`).",
    )  # fmt: skip
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Level of that interval.")
    target: str | None = Field(
        None, description="Target whose batch-1 latency the speed-up goal and the model "
        "tables use (default: the first target profiled other than cpu-torch-eager).",
    )  # fmt: skip
    gaps: list[GapGoal] = Field(
        default_factory=list, description="Metric gaps between two groups (e.g. a 4-bit "
        "student within one point of its full-precision parent).",
    )  # fmt: skip
    speedups: list[SpeedupGoal] = Field(
        default_factory=list, description="Latency ratios between two groups' artifacts (e.g. "
        "int8 against fp32 at batch 64).",
    )  # fmt: skip
    accuracy_floor: dict[str, float] = Field(
        default_factory=dict, description="Per task metric, the floor (in the metric's shown "
        "unit, e.g. 90 for 90 %): for each target, the fastest artifact meeting it is named.",
    )  # fmt: skip


class ReportConfig(StageConfig):
    """The run's report."""

    kind: Literal["report"] = Field(description="Stage kind.")
    goals: GoalsConfig = Field(default_factory=GoalsConfig, description="Goals to check.")


@register_stage
class ReportStage(Stage):
    config_model = ReportConfig
    requires = ("models",)
    provides = ("reports",)

    def plan(self, ctx: PlanContext) -> None:
        from compress.data import make_task
        from compress.pipeline.stage import STAGES
        from compress.yaml_source import format_key_path

        # A report covers what the stages before it made: only report stages may follow one.
        _, index = ctx.key_path  # ("stages", i)
        for j in range(index + 1, len(ctx.recipe.stages)):
            later = ctx.recipe.stages[j]
            if "reports" not in STAGES.get(later.kind).provides:
                raise ctx.error(("kind",), f"{format_key_path(('stages', j))} ({later.kind}) "
                                "comes after this report stage, which would not report it; "
                                "put report stages last")  # fmt: skip

        self._check_compared_models(ctx)
        metrics = [m.name for m in make_task(ctx.recipe.task).metrics]
        goals = self.config.goals
        for field in ("max_metric_drop", "accuracy_floor"):
            for name in getattr(goals, field):
                if name not in metrics:
                    raise ctx.error(("goals", field, name), f"task {ctx.recipe.task.name!r} has "
                                    f"no metric {name!r}; it has {', '.join(metrics)}")  # fmt: skip
        if goals.target is not None:
            from compress.devices.targets import TARGETS

            if goals.target not in TARGETS:
                raise ctx.error(("goals", "target"), f"unknown target {goals.target!r}; known: "
                                f"{', '.join(TARGETS.names())}")  # fmt: skip

    def _check_compared_models(self, ctx: PlanContext) -> None:
        """Both sides of every gap and speed-up goal are models of the run."""
        goals = self.config.goals
        for key, listed in (("gaps", goals.gaps), ("speedups", goals.speedups)):
            for i, goal in enumerate(listed):
                for side in ("model", "against"):
                    if getattr(goal, side) not in ctx.models:
                        raise ctx.error(("goals", key, i, side), f"no model named "
                                        f"{getattr(goal, side)!r} is made before this stage; "
                                        f"known: {', '.join(ctx.models)}")  # fmt: skip

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.pipeline.report import write_run_report

        paths = write_run_report(
            ctx.run_dir, ctx.artifacts, self.config.goals.model_dump(), ctx.smoke
        )
        for path in paths:
            ctx.log.info(f"  wrote {path}")
        return Artifacts(reports=[ctx.rel(p) for p in paths])
