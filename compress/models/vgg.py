"""VGG-style networks (Simonyan & Zisserman 2015) sized for small images: stages of 3×3 conv +
BatchNorm + ReLU, a 2×2 max-pool after each stage, then fully connected layers. The N2N
benchmark's teacher: most of its parameters sit in layers a search can remove or shrink."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.models.cnn import vgg as vgg_layers
from compress.models.zoo import image_shape, register_arch
from compress.tasks import TaskInfo

Width = Annotated[int, Field(ge=1, le=4096)]


class VggSpec(StrictModel):
    """``stages[i]`` lists stage i's conv widths (each stage halves H and W); one hidden fully
    connected layer of ``hidden`` features before the classifier."""

    arch: Literal["vgg"] = Field(description="Architecture name.")
    stages: list[Annotated[list[Width], Field(min_length=1, max_length=16)]] = Field(
        default_factory=lambda: [[32, 32], [64, 64], [128, 128]], min_length=1, max_length=8,
        description="Conv widths per stage, e.g. [[64, 64], [128, 128]] (VGG-13's pattern).",
    )  # fmt: skip
    hidden: int = Field(512, ge=0, le=65536, description="Width of the hidden fully connected "
                        "layer (0: none).")  # fmt: skip


@register_arch("vgg", VggSpec)
def vgg(spec: VggSpec, info: TaskInfo) -> nn.Module:
    shape = image_shape(info)
    return vgg_layers(shape[0], spec.stages, spec.hidden, shape[1:], info.num_classes)
