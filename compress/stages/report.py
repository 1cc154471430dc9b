"""Write report.json, report.md and report.html at the top of the run directory."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.config import StrictModel
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import Stage, StageConfig, StageContext, register_stage


class GoalsConfig(StrictModel):
    """Targets every student is checked against; the report shows PASS or FAIL for each."""

    max_param_ratio: float | None = Field(None, gt=0, description="Student params / teacher's.")
    max_accuracy_drop_points: float | None = Field(
        None, ge=0, description="Teacher accuracy minus student accuracy, in points, at most."
    )
    min_speedup_b1: float | None = Field(
        None, gt=0, description="Teacher eager PyTorch / student artifact latency at batch 1."
    )
    beat_baseline: bool = Field(False, description="Student must beat its from-scratch twin.")


class ReportConfig(StageConfig):
    """The run's report."""

    kind: Literal["report"] = Field(description="Stage kind.")
    goals: GoalsConfig = Field(default_factory=GoalsConfig, description="Goals to check.")


@register_stage
class ReportStage(Stage):
    config_model = ReportConfig
    requires = ("models",)
    provides = ("reports",)

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.pipeline.report import write_run_report

        paths = write_run_report(
            ctx.run_dir, ctx.artifacts, self.config.goals.model_dump(), ctx.smoke
        )
        for path in paths:
            ctx.log.info(f"  wrote {path}")
        return Artifacts(reports=[ctx.rel(p) for p in paths])
