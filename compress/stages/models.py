"""Helpers the model-making stages share: build-checks at plan time, saving a finished model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.errors import ModelError
from compress.models import PythonModelSpec, build_model, count_flops, count_params
from compress.models.checkpoint import architecture, load_checkpoint, save_checkpoint
from compress.models.zoo import describe
from compress.pipeline.artifacts import ModelArtifact
from compress.pipeline.stage import PlanContext, StageContext
from compress.recipe import TrainConfig
from compress.train import evaluate


def check_buildable(ctx: PlanContext, spec: Any, key: str) -> nn.Module:
    """Build the model once on the task's signature; a misfit is a recipe error at ``key``."""
    try:
        return build_model(spec, ctx.info)
    except ModelError as e:
        raise ctx.error((key,), str(e)) from None


def spec_files(spec: Any) -> list[Path]:
    """The files a model is built from: the source of a user's builder, or an hf: folder's
    config.json and weights. Editing them must re-run the stages that build the model."""
    from compress.models.hf import HFModelSpec, folder_files
    from compress.plugins import module_file

    if isinstance(spec, HFModelSpec):
        return folder_files(spec.hf)
    if not isinstance(spec, PythonModelSpec):
        return []
    found = module_file(spec.python.split(":")[0])
    return [found] if found else []


def epochs_for(ctx: StageContext, cfg: TrainConfig) -> TrainConfig:
    """--smoke trains one epoch on the sliver of data, whatever the recipe says."""
    return cfg.model_copy(update={"epochs": 1}) if ctx.smoke else cfg


@dataclass(frozen=True)
class Lineage:
    """Who a model is in the run: its unique name, the recipe's name for it, its part, the seed
    of its training, and where it came from."""

    name: str
    group: str
    role: str
    transform: str
    parent: str | None = None
    seed: int | None = None


def finish_model(ctx: StageContext, model: nn.Module, spec: Any, who: Lineage,
                 val: dict[str, float] | None) -> ModelArtifact:  # fmt: skip
    """Save the checkpoint in the stage folder and measure what the report needs."""
    return save_model(ctx, model, architecture(spec, ctx.data().info), describe(spec), who, val)


def save_model(ctx: StageContext, model: nn.Module, arch: dict, arch_name: str, who: Lineage,
               val: dict[str, float] | None) -> ModelArtifact:  # fmt: skip
    """``finish_model`` for a model rebuilt from the description ``arch`` of an earlier one
    (named ``arch_name`` in the report)."""
    splits = ctx.data()
    path = ctx.stage_dir / f"{who.name}.safetensors"
    save_checkpoint(path, model, arch)
    metrics = evaluate(model, splits.task, splits.info, splits.test,
                       ctx.recipe.data.eval_batch_size)  # fmt: skip
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    ctx.log.info(f"  {who.name}: test {shown} (PyTorch)")
    return ModelArtifact(
        name=who.name, group=who.group, role=who.role, seed=who.seed, parent=who.parent,
        transform=who.transform, checkpoint=ctx.rel(path), arch=arch_name,
        params=count_params(model), flops=count_flops(model, splits.info),
        metrics_pytorch=metrics, val_metrics=val or None,
    )  # fmt: skip


def validation(ctx: StageContext) -> Any:
    """The function training calls after each epoch: the task's metrics on the validation
    split."""
    splits = ctx.data()

    def run(model: nn.Module) -> dict[str, float]:
        return evaluate(model, splits.task, splits.info, splits.val,
                        ctx.recipe.data.eval_batch_size)  # fmt: skip

    return run


def load_model(ctx: StageContext, artifact: ModelArtifact) -> nn.Module:
    model, _ = load_checkpoint(ctx.path(artifact.checkpoint))
    return model


def seeded(seed: int) -> None:
    """One seed for initialisation; shuffles are seeded per epoch in the training loop."""
    torch.manual_seed(seed)
