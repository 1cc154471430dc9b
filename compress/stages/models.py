"""Helpers the model-making stages share: build-checks at plan time, saving a finished model."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from compress.errors import ModelError
from compress.models import build_model, count_flops, count_params
from compress.models.checkpoint import architecture, load_checkpoint, save_checkpoint
from compress.models.zoo import describe
from compress.pipeline.artifacts import ModelArtifact
from compress.pipeline.stage import PlanContext, StageContext
from compress.recipe import TrainConfig
from compress.train import accuracy


def check_buildable(ctx: PlanContext, spec: Any, key: str) -> nn.Module:
    """Build the model once on the data's shapes; a misfit is a recipe error at ``key``."""
    try:
        return build_model(spec, ctx.input_shape, ctx.num_classes)
    except ModelError as e:
        raise ctx.error((key,), str(e)) from None


def epochs_for(ctx: StageContext, cfg: TrainConfig) -> TrainConfig:
    """--smoke trains one epoch on the sliver of data, whatever the recipe says."""
    return cfg.model_copy(update={"epochs": 1}) if ctx.smoke else cfg


def finish_model(
    ctx: StageContext, model: nn.Module, spec: Any, name: str, role: str, val_acc: float | None
) -> ModelArtifact:
    """Save the checkpoint in the stage folder and measure what the report needs."""
    splits = ctx.data()
    path = ctx.stage_dir / f"{name}.safetensors"
    save_checkpoint(path, model, architecture(spec, splits.input_shape, splits.num_classes))
    test_acc = accuracy(model, splits.test_x, splits.test_y, ctx.recipe.data.eval_batch_size)
    ctx.log.info(f"  {name}: test accuracy (PyTorch) {test_acc:.4f}")
    return ModelArtifact(
        name=name, role=role, checkpoint=ctx.rel(path), arch=describe(spec),
        params=count_params(model), flops=count_flops(model, splits.input_shape),
        accuracy_pytorch=test_acc, val_accuracy=val_acc,
    )  # fmt: skip


def load_model(ctx: StageContext, artifact: ModelArtifact) -> nn.Module:
    model, _ = load_checkpoint(ctx.path(artifact.checkpoint))
    return model


def seeded(seed: int) -> None:
    """One seed for initialisation; shuffles are seeded per epoch in the training loop."""
    torch.manual_seed(seed)
