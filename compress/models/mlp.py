"""A multilayer perceptron on flattened inputs."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.models.zoo import register_arch


class MlpSpec(StrictModel):
    """Flatten, then fully connected layers with ReLU."""

    arch: Literal["mlp"] = Field(description="Architecture name.")
    hidden: list[int] = Field(default_factory=lambda: [128], description="Hidden layer widths.")


@register_arch("mlp", MlpSpec)
def mlp(spec: MlpSpec, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]  # (b, c, h, w) -> (b, c*h*w)
    features = math.prod(input_shape)
    for width in spec.hidden:
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)
