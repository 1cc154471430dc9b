"""A multilayer perceptron on flattened inputs."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.models.zoo import image_shape, register_arch
from compress.tasks import TaskInfo


class MlpSpec(StrictModel):
    """Flatten, then fully connected layers with ReLU."""

    arch: Literal["mlp"] = Field(description="Architecture name.")
    hidden: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        default_factory=lambda: [128], max_length=64,
        description="Hidden layer widths, 1 to 65536 each, at most 64 layers ([]: a linear "
        "classifier).",
    )  # fmt: skip


@register_arch("mlp", MlpSpec)
def mlp(spec: MlpSpec, info: TaskInfo) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]  # (b, c, h, w) -> (b, c*h*w)
    features = math.prod(image_shape(info))
    for width in spec.hidden:
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    layers.append(nn.Linear(features, info.num_classes))
    return nn.Sequential(*layers)
