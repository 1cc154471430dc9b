"""Plain VGG-style CNNs: stages of 3×3 conv + BatchNorm + ReLU, a 2×2 max-pool after each stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.models.zoo import image_shape, register_arch
from compress.tasks import TaskInfo


def conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    # bias=False: BatchNorm's shift makes a conv bias redundant.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


def vgg(
    in_channels: int, stages: list[list[int]], hidden: int, spatial: tuple[int, int], classes: int
) -> nn.Sequential:
    """``stages[i]`` lists the output channels of stage i's convs; each stage halves H and W."""
    layers: list[nn.Module] = []
    c, (h, w) = in_channels, spatial
    for stage in stages:
        for c_out in stage:
            layers += conv_bn_relu(c, c_out)
            c = c_out
        layers.append(nn.MaxPool2d(2))
        h, w = h // 2, w // 2
    if h == 0 or w == 0:
        raise ModelError(
            f"{len(stages)} pooling stages shrink {spatial[0]}×{spatial[1]} inputs to nothing; "
            "use fewer blocks"
        )
    layers.append(nn.Flatten())  # (b, c*h*w)
    features = c * h * w
    if hidden:
        layers += [nn.Linear(features, hidden), nn.ReLU()]
        features = hidden
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


class CnnSmallSpec(StrictModel):
    """A small student: ``blocks`` stages of one conv each, channels doubling from ``width``."""

    arch: Literal["cnn-small"] = Field(description="Architecture name.")
    width: int = Field(16, ge=1, le=1024, description="Channels of the first conv.")
    blocks: int = Field(2, ge=1, le=8, description="Conv stages; each halves height and width.")
    hidden: int = Field(
        0, ge=0, le=65536, description="Width of a hidden fully connected layer (0: no hidden "
        "layer; the pooled features go straight to the class logits).",
    )  # fmt: skip


@register_arch("cnn-small", CnnSmallSpec)
def cnn_small(spec: CnnSmallSpec, info: TaskInfo) -> nn.Module:
    input_shape, classes = image_shape(info), info.num_classes
    stages = [[spec.width * 2**i] for i in range(spec.blocks)]
    return vgg(input_shape[0], stages, spec.hidden, input_shape[1:], classes)


class CnnLargeSpec(StrictModel):
    """A teacher-sized CNN: width, 2×width twice, 4×width, then a wide fully connected layer."""

    arch: Literal["cnn-large"] = Field(description="Architecture name.")
    width: int = Field(32, ge=1, le=1024, description="Channels of the first conv.")
    hidden: int = Field(
        256, ge=0, le=65536, description="Width of the hidden fully connected layer (0: no "
        "hidden layer; the pooled features go straight to the class logits).",
    )  # fmt: skip


@register_arch("cnn-large", CnnLargeSpec)
def cnn_large(spec: CnnLargeSpec, info: TaskInfo) -> nn.Module:
    input_shape, classes = image_shape(info), info.num_classes
    w = spec.width
    stages = [[w], [2 * w, 2 * w], [4 * w]]
    return vgg(input_shape[0], stages, spec.hidden, input_shape[1:], classes)
