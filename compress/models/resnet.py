"""A small ResNet (He et al. 2016, basic blocks) sized for 8×8 to 32×32 inputs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor, nn

from compress.config import StrictModel
from compress.models.zoo import image_shape, register_arch
from compress.tasks import TaskInfo


class BasicBlock(nn.Module):
    """y = relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:  # 1×1 projection when the shape changes
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: Tensor) -> Tensor:  # (b, c_in, h, w) -> (b, c_out, h/stride, w/stride)
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y))
        return (y + self.shortcut(x)).relu()


class ResNetSmallSpec(StrictModel):
    """Stem conv, then ``stages`` stages of ``blocks`` basic blocks, width doubling per stage."""

    arch: Literal["resnet-small"] = Field(description="Architecture name.")
    width: int = Field(16, ge=1, le=1024, description="Channels of the stem and the first stage.")
    stages: int = Field(3, ge=1, le=5, description="Stages; each after the first halves H, W.")
    blocks: int = Field(1, ge=1, le=8, description="Basic blocks per stage.")


@register_arch("resnet-small", ResNetSmallSpec)
def resnet_small(spec: ResNetSmallSpec, info: TaskInfo) -> nn.Module:
    input_shape, classes = image_shape(info), info.num_classes
    layers: list[nn.Module] = [
        nn.Conv2d(input_shape[0], spec.width, 3, 1, 1, bias=False),
        nn.BatchNorm2d(spec.width),
        nn.ReLU(),
    ]
    c = spec.width
    for stage in range(spec.stages):
        c_out = spec.width * 2**stage
        for block in range(spec.blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(c, c_out, stride))
            c = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]  # (b, c) -> (b, k)
    return nn.Sequential(*layers)
