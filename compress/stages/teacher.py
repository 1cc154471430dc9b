"""Stage 1: the teacher, trained on the recipe's data or loaded from a safetensors checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from torch import nn

from compress.errors import ModelError
from compress.models import build_model
from compress.models.checkpoint import load_weights, read_architecture, weights_mismatch
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import PlanContext, Stage, StageContext, register_stage
from compress.recipe import TeacherConfig
from compress.stages.models import check_buildable, epochs_for, finish_model, seeded
from compress.train import accuracy, train


@register_stage
class TeacherStage(Stage):
    config_model = TeacherConfig
    provides = ("models",)
    top_level = True

    def plan(self, ctx: PlanContext) -> None:
        model = check_buildable(ctx, self.config.model, "model")
        if self.config.checkpoint is not None:
            try:
                problem = self._checkpoint_problem(model, ctx)
            except ModelError as e:
                problem = str(e)
            if problem:
                raise ctx.error(("checkpoint",), problem)

    def _checkpoint_problem(self, model: nn.Module, ctx: PlanContext) -> str | None:
        """A checkpoint of ours says what data it was trained for; any file's weights must fit
        the recipe's architecture."""
        path = self.config.checkpoint
        arch = read_architecture(path)
        if arch and (tuple(arch["input_shape"]), arch["num_classes"]) != (
            ctx.input_shape, ctx.num_classes
        ):  # fmt: skip
            return (
                f"trained on inputs {arch['input_shape']} with {arch['num_classes']} classes; "
                f"the data has {list(ctx.input_shape)} and {ctx.num_classes}"
            )
        return weights_mismatch(model, path)

    def input_files(self) -> list[Path]:
        return [self.config.checkpoint] if self.config.checkpoint else []

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: TeacherConfig = self.config
        splits = ctx.data()
        eval_batch = ctx.recipe.data.eval_batch_size
        seeded(ctx.recipe.seed)
        model = build_model(cfg.model, splits.input_shape, splits.num_classes)
        if cfg.checkpoint is not None:
            load_weights(model, cfg.checkpoint)
            ctx.log.info(f"  teacher: loaded {cfg.checkpoint}")
            val = accuracy(model, splits.val_x, splits.val_y, eval_batch)
        else:
            val = train(
                model, splits.train_x, splits.train_y,
                lambda logits, labels, _idx: F.cross_entropy(logits, labels),
                epochs_for(ctx, cfg.train), batch_size=ctx.recipe.data.batch_size,
                seed=ctx.recipe.seed, state_dir=ctx.stage_dir, log=ctx.log, label="teacher",
                validate=lambda m: accuracy(m, splits.val_x, splits.val_y, eval_batch),
            )  # fmt: skip
        artifact = finish_model(ctx, model, cfg.model, "teacher", "teacher", val)
        return Artifacts(dataset=splits.summary(), models=[artifact])
