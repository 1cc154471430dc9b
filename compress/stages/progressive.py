"""The progressive stage: Mamba students distilled one after another into an ensemble whose
summed logits approach the teacher, so a device can stop after any number of them (see
compress/progressive/ and docs/progressive.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.data.source import AugmentConfig
from compress.errors import ModelError
from compress.models import build_model
from compress.models.mamba_students import MambaSpec
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.progressive.goals import AnytimeGoal
from compress.recipe import TrainConfig

PLOT_FILE = "anytime.png"


class ProgressiveConfig(StageConfig):
    """Progressive knowledge distillation into a sequence of Mamba students (anytime ensemble)."""

    kind: Literal["progressive"] = Field(description="Stage kind.")
    name: str = Field("pkd", pattern=r"^[\w.-]+$", max_length=90,
                      description="Prefix of the models: NAME-m1.. (members), NAME-k1.. (the "
                      "first k members summed).")  # fmt: skip
    students: list[MambaSpec] = Field(
        min_length=1, max_length=32, description="The students in training order, each "
        "{arch: mamba, d_model: .., ...}: growing or constant sizes.",
    )  # fmt: skip
    alpha: float = Field(0.5, ge=0, le=1, description="Weight a of CE(ensemble, labels); the "
                         "teacher's soft loss gets 1 − a.")  # fmt: skip
    temperature: float = Field(4.0, gt=0, le=100, description="Temperature T of the soft loss.")
    boost: float = Field(
        0.0, ge=0, le=10, description="Boosting strength β: example weights grow as "
        "exp(β · disagreement of the ensemble so far with the teacher); 0: equal weights.",
    )  # fmt: skip
    stop_margin: float | None = Field(
        0.5, ge=0, description="Stop adding students once the ensemble's validation metric is "
        "within this many units (accuracy: points) of the teacher's; null: train them all.",
    )  # fmt: skip
    train: TrainConfig = Field(description="How to train each student.")
    goals: list[AnytimeGoal] = Field(
        default_factory=list, max_length=16, description="Points the anytime curve should "
        "reach, e.g. {max_flops: 0.5, max_drop: 0.5}; the report's section says which prefix "
        "ensemble meets each.",
    )  # fmt: skip
    augment: AugmentConfig | None = Field(
        None, description="Random flips and crops of the students' training batches (default: "
        "data.augment, which also augments the teacher's training): the teacher and the earlier "
        "students then run on every batch instead of reading precomputed scores.",
    )  # fmt: skip


@register_stage
class ProgressiveStage(Stage):
    config_model = ProgressiveConfig
    requires = ("models",)
    provides = ("models",)

    def plan(self, ctx: PlanContext) -> None:
        cfg: ProgressiveConfig = self.config
        for i, spec in enumerate(cfg.students):
            try:
                build_model(spec, ctx.info)
            except ModelError as e:
                raise ctx.error(("students", i), str(e)) from None
        for t in range(1, len(cfg.students) + 1):
            ctx.add_model(f"{cfg.name}-m{t}", ("name",))
            ctx.add_model(f"{cfg.name}-k{t}", ("name",))

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.progressive.curve import anytime_section, curve_note, write_curve_png
        from compress.progressive.ensemble import Settings, train_ensemble

        cfg: ProgressiveConfig = self.config
        settings = Settings(cfg.name, cfg.students, cfg.alpha, cfg.temperature, cfg.boost,
                            cfg.stop_margin, cfg.train,
                            cfg.augment or ctx.recipe.data.augment)  # fmt: skip
        teacher, metric = ctx.artifacts.teacher(), ctx.data().task.metrics[0]
        models, curves = [], {}
        for seed in ctx.recipe.student_seeds():
            made, curves[seed if ctx.recipe.seeds else None] = train_ensemble(
                ctx, settings, teacher, seed, bool(ctx.recipe.seeds))  # fmt: skip
            models += made
        plot = write_curve_png(ctx.stage_dir / PLOT_FILE, curves, teacher, metric, cfg.goals)
        section = anytime_section(ctx.stage_dir.name, curves, teacher, metric, cfg.goals,
                                  ctx.rel(plot))  # fmt: skip
        notes = [curve_note(p, metric) for points in curves.values() for p in points]
        return Artifacts(models=models, notes=notes, sections=[section])
