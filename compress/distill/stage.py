"""The distill stage: train a student against the teacher, and the same student without it.

The baseline starts from the same initial weights and sees the same batches in the same order,
so the difference between the two students is what the teacher taught, nothing else.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from compress.distill.losses import combined_objective, losses_model, needs_teacher
from compress.models import ModelSpec, build_model
from compress.pipeline.artifacts import Artifacts, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.recipe import TrainConfig
from compress.stages.models import check_buildable, epochs_for, finish_model, load_model, seeded
from compress.train import Objective, accuracy, predict, train


class DistillConfig(StageConfig):
    """Knowledge distillation into a student architecture, with weighted losses."""

    kind: Literal["distill"] = Field(description="Stage kind.")
    name: str = Field("student", pattern=r"^[\w.-]+$", description="Name of the student model.")
    student: ModelSpec = Field(description="Student architecture: {arch: NAME, ...}.")
    losses: losses_model() = Field(description="Weighted loss terms: kd, ce, mse, ...")
    train: TrainConfig = Field(description="How to train the student.")
    baseline: Literal["scratch", "none"] = Field(
        "scratch", description="'scratch': also train the student on labels alone, for comparison."
    )


@register_stage
class DistillStage(Stage):
    config_model = DistillConfig
    requires = ("models",)
    provides = ("models",)

    def plan(self, ctx: PlanContext) -> None:
        check_buildable(ctx, self.config.student, "student")

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: DistillConfig = self.config
        splits = ctx.data()
        teacher_artifact = next(m for m in ctx.artifacts.models if m.role == "teacher")
        teacher_logits = None
        if needs_teacher(cfg.losses):
            # No augmentation here, so the teacher's logits on the training split are fixed:
            # computing them once costs a third of one teacher epoch instead of one teacher
            # forward pass per student step.
            teacher = load_model(ctx, teacher_artifact)
            teacher_logits = predict(teacher, splits.train_x, ctx.recipe.data.eval_batch_size)
            ctx.log.info(f"  {cfg.name}: teacher logits computed on {len(teacher_logits)} samples")
        kd = combined_objective(cfg.losses)

        def distilled(student: Tensor, labels: Tensor, idx: Tensor) -> Tensor:
            return kd(student, _rows(teacher_logits, idx), labels)

        def scratch(student: Tensor, labels: Tensor, _idx: Tensor) -> Tensor:
            return F.cross_entropy(student, labels)

        students = [self._train(ctx, cfg.name, "student", distilled)]
        if cfg.baseline == "scratch":
            students.append(self._train(ctx, f"{cfg.name}-scratch", "baseline", scratch))
        return Artifacts(models=students)

    def _train(
        self, ctx: StageContext, name: str, role: str, objective: Objective
    ) -> ModelArtifact:
        cfg: DistillConfig = self.config
        splits = ctx.data()
        seeded(ctx.recipe.seed)  # same seed → the same initial student for both runs
        model = build_model(cfg.student, splits.input_shape, splits.num_classes)
        val = train(
            model, splits.train_x, splits.train_y, objective, epochs_for(ctx, cfg.train),
            batch_size=ctx.recipe.data.batch_size, seed=ctx.recipe.seed,
            state_dir=ctx.stage_dir / name, log=ctx.log, label=name,
            validate=lambda m: accuracy(m, splits.val_x, splits.val_y,
                                        ctx.recipe.data.eval_batch_size),
        )  # fmt: skip
        return finish_model(ctx, model, cfg.student, name, role, val)


def _rows(logits: Tensor | None, idx: Tensor) -> Tensor | None:
    return None if logits is None else torch.index_select(logits, 0, idx)
