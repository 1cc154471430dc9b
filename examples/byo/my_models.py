"""A user's own model code, the way it would sit next to a recipe: builders called as
``fn(info, **kwargs)``, where ``info`` tells the input shape and the number of classes.

The teacher returns a dict (as many model libraries do); the pipeline reads its ``logits``.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv_block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.MaxPool2d(2)]  # fmt: skip


class PhotoNet(nn.Module):
    """Conv blocks that halve the image each, global average pooling, a linear head."""

    def __init__(self, channels: int, widths: list[int], classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for width in widths:
            layers += conv_block(channels, width)
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, classes)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        embedding = self.features(image)  # (b, c)
        return {"logits": self.head(embedding), "embedding": embedding}


class Logits(nn.Module):
    """The same network returning its logits alone."""

    def __init__(self, net: PhotoNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        return self.net(image)["logits"]


def teacher(info, widths: tuple[int, ...] = (32, 64, 128, 128)) -> nn.Module:
    return PhotoNet(info.input_shape[0], list(widths), info.num_classes)


def student(info, widths: tuple[int, ...] = (8, 16, 32)) -> nn.Module:
    return Logits(PhotoNet(info.input_shape[0], list(widths), info.num_classes))
