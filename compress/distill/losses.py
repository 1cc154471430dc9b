"""Distillation losses, registered by name and combined by weight in a recipe:

    losses: {kd: {weight: 0.9, temperature: 4}, ce: {weight: 0.1}}

Each loss sees the student's logits (b, k), the teacher's logits (b, k) and the labels (b,).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from pydantic import Field, create_model, model_validator
from torch import Tensor

from compress.config import StrictModel
from compress.registry import Registry

LossFn = Callable[[Any, Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Loss:
    config: type[StrictModel]
    fn: LossFn
    needs_teacher: bool


LOSSES: Registry[Loss] = Registry("loss")


def register_loss(
    name: str, config: type[StrictModel], needs_teacher: bool = True
) -> Callable[[LossFn], LossFn]:
    def add(fn: LossFn) -> LossFn:
        LOSSES.register(name)(Loss(config, fn, needs_teacher))
        return fn

    return add


class WeightedLoss(StrictModel):
    weight: float = Field(1.0, ge=0, description="Weight of this term in the total loss.")


class KDLoss(WeightedLoss):
    temperature: float = Field(4.0, gt=0, description="Softmax temperature T for both models.")


@register_loss("kd", KDLoss)
def kd_loss(cfg: KDLoss, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
    """Hinton et al. 2015: T² · KL(softmax(z_t/T) ‖ softmax(z_s/T)); T² keeps the gradient
    scale independent of T."""
    t = cfg.temperature
    log_p_student = F.log_softmax(student / t, dim=1)  # (b, k)
    log_p_teacher = F.log_softmax(teacher / t, dim=1)  # (b, k)
    kl = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return kl * t * t


class CELoss(WeightedLoss):
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing epsilon.")


@register_loss("ce", CELoss, needs_teacher=False)
def ce_loss(cfg: CELoss, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy against the true labels."""
    return F.cross_entropy(student, labels, label_smoothing=cfg.label_smoothing)


@register_loss("mse", WeightedLoss)
def logit_mse(cfg: WeightedLoss, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
    """Mean squared error between logits (Ba & Caruana 2014)."""
    return F.mse_loss(student, teacher)


class _AtLeastOneLoss(StrictModel):
    @model_validator(mode="after")
    def _some_weight(self) -> _AtLeastOneLoss:
        terms = [getattr(self, name) for name in type(self).model_fields]
        if not any(term is not None and term.weight > 0 for term in terms):
            raise ValueError(
                f"give at least one loss with weight > 0 ({', '.join(LOSSES.names())})"
            )
        return self


@functools.cache
def losses_model() -> type[StrictModel]:
    """A recipe section with one optional key per registered loss (unknown keys are errors)."""
    fields = {
        name: (loss.config | None, Field(None, description=(loss.fn.__doc__ or "").split("\n")[0]))
        for name, loss in LOSSES.items()
    }
    return create_model("Losses", __base__=_AtLeastOneLoss, **fields)


def combined_objective(losses: StrictModel) -> Callable[[Tensor, Tensor | None, Tensor], Tensor]:
    """sum_i w_i · loss_i(student, teacher, labels) over the losses the recipe names."""
    terms = [(LOSSES.get(name), cfg) for name in LOSSES.names()
             if (cfg := getattr(losses, name)) is not None and cfg.weight > 0]  # fmt: skip

    def objective(student: Tensor, teacher: Tensor | None, labels: Tensor) -> Tensor:
        return sum(cfg.weight * loss.fn(cfg, student, teacher, labels) for loss, cfg in terms)

    return objective


def needs_teacher(losses: StrictModel) -> bool:
    return any(LOSSES.get(n).needs_teacher and getattr(losses, n) is not None
               for n in LOSSES.names())  # fmt: skip
