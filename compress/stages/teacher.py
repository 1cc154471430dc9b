"""Stage 1: the teacher, or the model to deploy: trained here, loaded from a safetensors
checkpoint, fine-tuned from one, or a pretrained builder's model used as it is."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from safetensors.torch import load_file
from torch import nn

from compress.errors import ModelError
from compress.models import build_model, model_spec
from compress.models.checkpoint import (
    load_weights,
    non_finite,
    read_architecture,
    task_info,
    weights_mismatch,
)
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import (
    PlanContext,
    Stage,
    StageConfig,
    StageContext,
    register_stage,
)
from compress.recipe import TrainConfig
from compress.stages.models import (
    Lineage,
    check_buildable,
    epochs_for,
    finish_model,
    seeded,
    spec_files,
    validation,
)
from compress.train import train


class TeacherConfig(StageConfig):
    """The teacher: a zoo architecture or a python builder. With ``train`` it is trained here
    (from ``checkpoint`` when given: fine-tuning); with only ``checkpoint`` it is loaded; with
    neither, the builder's model is used as it is (a pretrained builder)."""

    kind: Literal["teacher"] = Field("teacher", description="Always 'teacher'.")
    model: model_spec() = Field(
        description="Architecture: {arch: NAME, ...} or {python: 'mod:fn'}."
    )
    train: TrainConfig | None = Field(None, description="Train (or fine-tune) it here.")
    checkpoint: Path | None = Field(
        None, description="Safetensors weights to start from (relative to the recipe)."
    )


@register_stage
class TeacherStage(Stage):
    config_model = TeacherConfig
    provides = ("models",)
    top_level = True

    def plan(self, ctx: PlanContext) -> None:
        model = check_buildable(ctx, self.config.model, "model")
        ctx.add_model("teacher", ("model",))
        path = self.config.checkpoint
        if path is None:
            return
        if not path.is_file():
            raise ctx.error(("checkpoint",), f"checkpoint not found: {path}")
        try:
            problem = self._checkpoint_problem(model, ctx)
        except ModelError as e:
            problem = str(e)
        if problem:
            raise ctx.error(("checkpoint",), problem)

    def _checkpoint_problem(self, model: nn.Module, ctx: PlanContext) -> str | None:
        """A checkpoint of ours says what task it was trained for; any file's weights must fit
        the recipe's architecture."""
        arch = read_architecture(self.config.checkpoint)
        if arch:
            made_for = task_info(arch)
            if made_for.signature != ctx.info.signature:
                wanted = [(s.name, s.shape) for s in ctx.info.signature.inputs]
                had = [(s.name, s.shape) for s in made_for.signature.inputs]
                return (f"made for inputs {had} and {made_for.num_classes} classes; the data "
                        f"gives {wanted} and {ctx.info.num_classes}")  # fmt: skip
        return weights_mismatch(model, self.config.checkpoint) or non_finite(
            load_file(str(self.config.checkpoint))
        )

    def input_files(self) -> list[Path]:
        given = [self.config.checkpoint] if self.config.checkpoint else []
        return given + spec_files(self.config.model)

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: TeacherConfig = self.config
        splits = ctx.data()
        seeded(ctx.recipe.seed)
        model = build_model(cfg.model, splits.info)
        if cfg.checkpoint is not None:
            load_weights(model, cfg.checkpoint)
            ctx.log.info(f"  teacher: loaded {cfg.checkpoint}")
        if cfg.train is None:
            val = validation(ctx)(model)
            transform = "loaded" if cfg.checkpoint else "built"
        else:
            val = train(
                model, splits, splits.task.training_loss(),
                epochs_for(ctx, cfg.train), batch_size=ctx.recipe.data.batch_size,
                seed=ctx.recipe.seed, workers=ctx.recipe.data.workers, state_dir=ctx.stage_dir,
                log=ctx.log, label="teacher", validate=validation(ctx),
                augment=ctx.recipe.data.augment,
            )  # fmt: skip
            transform = "fine-tuned" if cfg.checkpoint else "trained"
        who = Lineage("teacher", "teacher", "teacher", transform)
        artifact = finish_model(ctx, model, cfg.model, who, val)
        return Artifacts(dataset=splits.summary(), task=task_summary(splits),
                         models=[artifact], notes=list(splits.notes))  # fmt: skip


def task_summary(splits: object) -> dict:
    """The task as reports read it: its name, metrics and signature."""
    task = splits.task
    return {"name": task.name, "metrics": [m.model_dump() for m in task.metrics],
            "signature": splits.info.signature.model_dump(mode="json")}  # fmt: skip
