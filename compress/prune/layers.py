"""A network as N2N sees it: a sequence of layer descriptions (type, kernel, stride, output
channels, padding; residual blocks as one entry with their inner width), read from a built
``nn.Sequential`` of the zoo's building blocks.

Pools, flatten and global pooling are entries too: the policies read them (they say where the
resolution changes), and they are never removed or shrunk.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.models.resnet import BasicBlock

KINDS = ("conv", "block", "linear", "maxpool", "avgpool", "gap", "flatten")


class LayerSpec(StrictModel):
    """One layer of a plain CNN or a ResNet, as the policies read it and surgery rebuilds it."""

    kind: Literal["conv", "block", "linear", "maxpool", "avgpool", "gap", "flatten"] = Field(
        description="conv (+BatchNorm, +ReLU), block (ResNet basic block), linear (+ReLU), "
        "maxpool, avgpool, gap (global average pool), flatten."
    )
    kernel: int = Field(0, ge=0, le=64, description="Kernel size (conv, block, pools).")
    stride: int = Field(1, ge=1, le=64, description="Stride (conv, block, pools).")
    padding: int = Field(0, ge=0, le=64, description="Zero padding (conv, block).")
    out: int = Field(0, ge=0, le=65536, description="Output channels or features; 0: the "
                     "task's class count (the classifier) or unchanged (pools).")  # fmt: skip
    mid: int = Field(0, ge=0, le=65536, description="A block's inner width (its first conv).")
    bn: bool = Field(False, description="A BatchNorm follows the conv.")
    relu: bool = Field(False, description="A ReLU follows.")
    bias: bool = Field(False, description="The conv or linear layer has a bias.")


def describe_network(model: nn.Module) -> tuple[list[LayerSpec], list[list[nn.Module]]]:
    """The layer sequence of a flat ``nn.Sequential`` of Conv2d / BatchNorm2d / ReLU /
    MaxPool2d / AvgPool2d / AdaptiveAvgPool2d(1) / Flatten / Linear / BasicBlock, and the
    modules of each layer (for weight inheritance). Anything else: ModelError."""
    if not isinstance(model, nn.Sequential):
        raise ModelError(f"N2N surgery reads a flat nn.Sequential; got {type(model).__name__}")
    layers: list[LayerSpec] = []
    groups: list[list[nn.Module]] = []
    for i, module in enumerate(model):
        if isinstance(module, nn.BatchNorm2d | nn.ReLU) and groups and _absorbs(layers[-1], module):
            layers[-1] = layers[-1].model_copy(update=(
                {"bn": True} if isinstance(module, nn.BatchNorm2d) else {"relu": True}))
            groups[-1].append(module)
            continue
        layers.append(_layer(module, i))
        groups.append([module])
    if not layers or layers[-1].kind != "linear":
        raise ModelError("N2N surgery needs a network that ends in a Linear classifier")
    layers[-1] = layers[-1].model_copy(update={"out": 0})  # the classifier: the task's classes
    return layers, groups


def _absorbs(last: LayerSpec, module: nn.Module) -> bool:
    """A BatchNorm joins the conv before it; a ReLU joins the conv or linear before it."""
    if isinstance(module, nn.BatchNorm2d):
        return last.kind == "conv" and not last.bn and not last.relu
    return last.kind in ("conv", "linear") and not last.relu


def _pair(value: int | tuple[int, ...]) -> int:
    """A square kernel's size (or stride, padding); rectangular ones are not described."""
    if isinstance(value, tuple):
        if len(set(value)) != 1:
            raise ModelError(f"N2N surgery reads square kernels only, got {value}")
        return int(value[0])
    return int(value)


def _layer(module: nn.Module, index: int) -> LayerSpec:
    if isinstance(module, nn.Conv2d):
        if module.groups != 1 or _pair(module.dilation) != 1:
            raise ModelError(f"layer {index}: grouped or dilated convs are not described")
        return LayerSpec(kind="conv", kernel=_pair(module.kernel_size),
                         stride=_pair(module.stride), padding=_pair(module.padding),
                         out=module.out_channels, bias=module.bias is not None)  # fmt: skip
    if isinstance(module, BasicBlock):
        c1 = module.conv1
        return LayerSpec(kind="block", kernel=_pair(c1.kernel_size), stride=_pair(c1.stride),
                         padding=_pair(c1.padding), out=module.conv2.out_channels,
                         mid=c1.out_channels)  # fmt: skip
    if isinstance(module, nn.Linear):
        return LayerSpec(kind="linear", out=module.out_features, bias=module.bias is not None)
    if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
        kind = "maxpool" if isinstance(module, nn.MaxPool2d) else "avgpool"
        return LayerSpec(kind=kind, kernel=_pair(module.kernel_size),
                         stride=_pair(module.stride or module.kernel_size),
                         padding=_pair(module.padding))  # fmt: skip
    if isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1)):
        return LayerSpec(kind="gap")
    if isinstance(module, nn.Flatten):
        return LayerSpec(kind="flatten")
    raise ModelError(f"layer {index} ({type(module).__name__}) is not one N2N surgery "
                     "knows: Conv2d, BatchNorm2d, ReLU, pools, Flatten, Linear, "
                     "BasicBlock")  # fmt: skip


def removable(layers: list[LayerSpec]) -> list[bool]:
    """Which layers stage 1 may remove: stride-1 convs and blocks, except the first and the
    last layer; strided layers, linear layers and pools are always kept (the paper's rules).
    A block may go only when it keeps its channel count (its shortcut is the identity)."""
    out = []
    for i, layer in enumerate(layers):
        inner = 0 < i < len(layers) - 1
        ok = layer.kind == "conv" or (layer.kind == "block" and _identity(layers, i))
        out.append(inner and ok and layer.stride == 1)
    return out


def _identity(layers: list[LayerSpec], i: int) -> bool:
    """Whether block i's input has its output's channel count (the previous layer with
    channels had them)."""
    before = next((lay.out for lay in reversed(layers[:i]) if lay.out), None)
    return before == layers[i].out


def shrinkable(layers: list[LayerSpec]) -> list[bool]:
    """Which layers stage 2 may shrink (output channels or features): convs and hidden linear
    layers, and a block's inner width. In a network with blocks, a conv feeding a block keeps
    its width so the block's identity shortcut still adds up (sizes consistent in a block)."""
    out = []
    for i, layer in enumerate(layers):
        nxt = next((lay for lay in layers[i + 1 :] if lay.out or lay.kind == "block"), None)
        feeds_block = nxt is not None and nxt.kind == "block"
        out.append(layer.kind == "block" or (layer.kind in ("conv", "linear") and layer.out > 0
                                             and not feeds_block))  # fmt: skip
    return out


def kernel_shrinkable(layers: list[LayerSpec]) -> list[bool]:
    """Which layers stage 2 may give a smaller kernel (field ``kernel``): plain convs with a
    kernel over 1 (a block's convs keep theirs, so its shortcut still matches)."""
    return [lay.kind == "conv" and lay.kernel > 1 for lay in layers]
