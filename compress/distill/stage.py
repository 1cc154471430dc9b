"""The distill stage: train a student against the teacher, and the same student without it.

The baseline starts from the same initial weights and sees the same batches in the same order,
so the difference between the two students is what the teacher taught, nothing else. With
``seeds:`` in the recipe both are trained once per seed, so the gain is measured with a spread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from compress.atomic import atomic_path
from compress.distill.losses import combined_objective, losses_model, needs_teacher
from compress.models import build_model, model_spec
from compress.pipeline.artifacts import Artifacts, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.recipe import TrainConfig
from compress.stages.models import (
    Lineage,
    check_buildable,
    epochs_for,
    finish_model,
    load_model,
    seeded,
    spec_files,
    validation,
)
from compress.train import Objective, predict, train

TEACHER_LOGITS = "teacher-logits.npy"


class DistillConfig(StageConfig):
    """Knowledge distillation into a student architecture, with weighted losses."""

    kind: Literal["distill"] = Field(description="Stage kind.")
    name: str = Field("student", pattern=r"^[\w.-]+$", description="Name of the student model.")
    student: model_spec() = Field(description="Student architecture: {arch: NAME, ...}.")
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
        ctx.add_model(self.config.name, ("name",))
        if self.config.baseline == "scratch":
            ctx.add_model(f"{self.config.name}-scratch", ("name",))

    def input_files(self) -> list[Path]:
        return spec_files(self.config.student)

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: DistillConfig = self.config
        teacher = ctx.artifacts.teacher()
        logits = teacher_logits(ctx, teacher) if needs_teacher(cfg.losses) else None
        kd = combined_objective(cfg.losses)

        def distilled(student: Tensor, labels: Tensor, idx: Tensor) -> Tensor:
            rows = None if logits is None else torch.from_numpy(logits[idx.numpy()])
            return kd(student, rows, labels)

        def scratch(student: Tensor, labels: Tensor, _idx: Tensor) -> Tensor:
            return F.cross_entropy(student, labels)

        seeds = ctx.recipe.seeds
        students = []
        for seed in ctx.recipe.student_seeds():
            suffix = f"@s{seed}" if seeds else ""
            student = Lineage(cfg.name + suffix, cfg.name, "student", "distill", teacher.name,
                              seed if seeds else None)  # fmt: skip
            students.append(self._train(ctx, student, seed, distilled))
            if cfg.baseline == "scratch":
                base = Lineage(f"{cfg.name}-scratch{suffix}", f"{cfg.name}-scratch", "baseline",
                               "trained", None, seed if seeds else None)  # fmt: skip
                students.append(self._train(ctx, base, seed, scratch))
        return Artifacts(models=students)

    def _train(self, ctx: StageContext, who: Lineage, seed: int,
               objective: Objective) -> ModelArtifact:  # fmt: skip
        cfg: DistillConfig = self.config
        splits = ctx.data()
        seeded(seed)  # same seed → the same initial student for the distilled and scratch runs
        model = build_model(cfg.student, splits.info)
        val = train(
            model, splits, objective, epochs_for(ctx, cfg.train),
            batch_size=ctx.recipe.data.batch_size, seed=seed, workers=ctx.recipe.data.workers,
            state_dir=ctx.stage_dir / who.name, log=ctx.log, label=who.name,
            validate=validation(ctx),
        )  # fmt: skip
        return finish_model(ctx, model, cfg.student, who, val)


def teacher_logits(ctx: StageContext, teacher: ModelArtifact) -> np.ndarray:
    """The teacher's scores on the training split, computed once into a memory-mapped file in
    the stage folder (not held in RAM). There is no augmentation, so they are fixed: computing
    them once costs a third of one teacher epoch instead of one teacher pass per student step."""
    path = ctx.stage_dir / TEACHER_LOGITS
    if not path.is_file():
        splits = ctx.data()
        model = load_model(ctx, teacher)
        with atomic_path(path) as tmp:
            shape = (len(splits.train), splits.info.num_classes)  # (n, k)
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            step = ctx.recipe.data.eval_batch_size
            for start in range(0, len(splits.train), step):
                rows = np.arange(start, min(start + step, len(splits.train)))
                out[rows] = predict(model, splits.task, splits.info, splits.train.take(rows), step)
            out.flush()
            del out
        ctx.log.info(f"  teacher scores computed on {len(splits.train)} training examples")
    return np.load(path, mmap_mode="r")
