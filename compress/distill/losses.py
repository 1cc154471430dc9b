"""Distillation losses, registered by name and combined by weight in a recipe:

    losses: {kd: {weight: 0.9, temperature: 4}, ce: {weight: 0.1}}

Each loss is called as ``fn(cfg, student, teacher, labels)``. A logit loss sees the student's
logits (b, k), the teacher's logits (b, k) and the labels (b,). A feature loss
(``needs_features=True``, its config a ``FeatureLoss``) sees instead the outputs of the modules its
config names by path in each network (compress/distill/features.py), the student's first mapped by
the loss's learned adapter, built once from both shapes; the teacher then runs on every batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from pydantic import Field, create_model, model_validator
from torch import Tensor, nn

from compress.config import StrictModel
from compress.registry import Registry

LossFn = Callable[[Any, Tensor, Tensor, Tensor], Tensor]
# adapter(cfg, student feature shape, teacher feature shape) -> the module mapping the student's
# feature to the teacher's (trained with the student); raises ModelError when they cannot match.
AdapterFactory = Callable[[Any, tuple[int, ...], tuple[int, ...]], nn.Module]


@dataclass(frozen=True)
class Loss:
    config: type[StrictModel]
    fn: LossFn
    needs_teacher: bool
    needs_features: bool = False  # reads module outputs: the teacher runs on every batch
    adapter: AdapterFactory | None = None  # feature losses: None maps nothing (identity)


LOSSES: Registry[Loss] = Registry("loss")


def register_loss(
    name: str, config: type[StrictModel], needs_teacher: bool = True,
    needs_features: bool = False, adapter: AdapterFactory | None = None,
) -> Callable[[LossFn], LossFn]:  # fmt: skip
    """Register ``fn`` under ``name``. A feature loss's config must be a ``FeatureLoss`` (it
    names the module paths); ``adapter`` builds its trainable mapping from the two shapes."""
    if needs_features and not issubclass(config, FeatureLoss):
        raise TypeError(f"feature loss {name!r}: its config must subclass FeatureLoss")

    def add(fn: LossFn) -> LossFn:
        LOSSES.register(name)(Loss(config, fn, needs_teacher, needs_features, adapter))
        return fn

    return add


class WeightedLoss(StrictModel):
    weight: float = Field(1.0, ge=0, description="Weight of this term in the total loss.")


class FeatureLoss(WeightedLoss):
    """A loss between two modules' outputs, named by dotted path as in ``named_modules()``."""

    student: str = Field("", pattern=r"^[\w.]*$", description="Module path in the student, e.g. "
                         "'features.3' ('': the whole model's output).")  # fmt: skip
    teacher: str = Field("", pattern=r"^[\w.]*$", description="Module path in the teacher, e.g. "
                         "'features.6' ('': the whole model's output).")  # fmt: skip


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


def active_terms(losses: StrictModel) -> list[tuple[str, Loss, Any]]:
    """(name, registered loss, config) of every term the recipe gives a weight > 0."""
    return [(name, LOSSES.get(name), cfg) for name in LOSSES.names()
            if (cfg := getattr(losses, name)) is not None and cfg.weight > 0]  # fmt: skip


def needs_teacher(losses: StrictModel) -> bool:
    return any(LOSSES.get(n).needs_teacher and getattr(losses, n) is not None
               for n in LOSSES.names())  # fmt: skip


def needs_features(losses: StrictModel) -> bool:
    """Whether a term reads module outputs, so the teacher must run on every batch."""
    return any(loss.needs_features for _, loss, _ in active_terms(losses))


from compress.distill import features as _features  # noqa: E402, F401  (registers hint, attention)
