"""Network surgery: a plan (which layers stay, how much each shrinks) applied to the teacher's
layer sequence gives the child's layer sequence, and that builds into a real, smaller
``nn.Sequential`` (fewer parameters in fact, measured on the built module).

Removing a layer resizes the next one's input; a block whose input no longer has its output's
channel count gets a 1×1 projection shortcut, as the zoo's ResNet does.
"""

from __future__ import annotations

import hashlib
import json

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.models.resnet import BasicBlock
from compress.prune.layers import LayerSpec, kernel_shrinkable, removable, shrinkable

# The paper's code: 11 shrink actions, 0.5 five times over (its prior favours halving).
FACTORS = (0.25, 0.5, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class Plan(StrictModel):
    """How a child is made from its teacher: one keep flag and one shrink factor per layer."""

    keep: list[bool] = Field(max_length=4096, description="Per teacher layer: kept or removed.")
    factors: list[float] = Field(max_length=4096, description="Per teacher layer: the factor "
                                 "its width is multiplied by (1.0: unchanged).")  # fmt: skip
    kernels: list[float] | None = Field(None, max_length=4096, description="Per teacher layer: "
                                        "the factor its kernel size is multiplied by (none: "
                                        "kernels unchanged).")  # fmt: skip

    @classmethod
    def identity(cls, n: int) -> Plan:
        return cls(keep=[True] * n, factors=[1.0] * n)


def apply_plan(layers: list[LayerSpec], plan: Plan, floor: int) -> list[LayerSpec]:
    """The child's layers. A removal the rules forbid, or a shrink of a fixed layer, is a
    ModelError (plans come from the policies, which respect the rules; this guards the rest)."""
    kernels = plan.kernels or [1.0] * len(layers)
    if len(plan.keep) != len(layers) or len(plan.factors) != len(layers) or len(kernels) != len(
            layers):  # fmt: skip
        raise ModelError(f"a plan for {len(plan.keep)} layers does not fit {len(layers)}")
    can_remove, can_shrink, can_kernel = (removable(layers), shrinkable(layers),
                                          kernel_shrinkable(layers))  # fmt: skip
    child = []
    for i, (layer, keep, factor) in enumerate(zip(layers, plan.keep, plan.factors, strict=True)):
        if not keep and not can_remove[i]:
            raise ModelError(f"layer {i} ({layer.kind}) may not be removed")
        for what, f, allowed in (("shrunk", factor, can_shrink[i]),
                                 ("given a smaller kernel", kernels[i], can_kernel[i])):
            if f != 1.0 and not allowed:
                raise ModelError(f"layer {i} ({layer.kind}) may not be {what}")
            if not 0 < f <= 1:
                raise ModelError(f"layer {i}: shrink factor {f} is outside (0, 1]")
        if keep:
            field = "mid" if layer.kind == "block" else "out"
            width = getattr(layer, field)
            update = {field: shrunk(width, factor, floor)}
            if kernels[i] != 1.0:
                update |= dict(zip(("kernel", "padding"), smaller_kernel(layer, kernels[i]),
                                   strict=True))  # fmt: skip
            child.append(layer.model_copy(update=update))
    return child


def smaller_kernel(layer: LayerSpec, factor: float) -> tuple[int, int]:
    """(kernel, padding) of a conv whose kernel is multiplied by ``factor``: odd, at least 1,
    and the padding cut by half the kernel's loss, so a 'same' conv stays 'same' (3×3 pad 1 →
    1×1 pad 0) and a 'valid' one keeps no padding."""
    k = max(1, round(layer.kernel * factor))
    k = k if k % 2 or k == layer.kernel else k - 1  # odd: centred like the teacher's
    return k, max(0, layer.padding - (layer.kernel - k) // 2)


def shrunk(width: int, factor: float, floor: int) -> int:
    """round(width · factor), never under ``floor`` (nor above the width itself)."""
    if factor == 1.0 or width == 0:
        return width
    return max(min(floor, width), round(width * factor))


class Block(BasicBlock):
    """The zoo's basic block with an inner width of its own: conv1 (c_in → mid), conv2 (mid →
    c_out). It is a BasicBlock, so surgery reads a child like any zoo ResNet."""

    def __init__(self, c_in: int, mid: int, c_out: int, stride: int, kernel: int = 3,
                 padding: int = 1) -> None:  # fmt: skip
        super().__init__(c_in, c_out, stride)
        if (mid, kernel, padding) != (c_out, 3, 1):
            self.conv1 = nn.Conv2d(c_in, mid, kernel, stride, padding, bias=False)
            self.bn1 = nn.BatchNorm2d(mid)
            self.conv2 = nn.Conv2d(mid, c_out, kernel, 1, padding, bias=False)


def build_layers(layers: list[LayerSpec], input_shape: tuple[int, ...],
                 classes: int) -> nn.Sequential:  # fmt: skip
    """A flat ``nn.Sequential`` of the layers for (c, h, w) inputs and ``classes`` logits;
    ModelError when the shapes do not work out (a resolution shrunk to nothing)."""
    c, h, w = input_shape
    features = None  # set once the activations are flat: (b, features)
    modules: list[nn.Module] = []
    for i, lay in enumerate(layers):
        if lay.kind in ("conv", "block", "maxpool", "avgpool") and features is not None:
            raise ModelError(f"layer {i} ({lay.kind}) comes after the features were flattened")
        if lay.kind == "conv":
            modules.append(nn.Conv2d(c, lay.out, lay.kernel, lay.stride, lay.padding,
                                     bias=lay.bias))  # fmt: skip
            modules += [nn.BatchNorm2d(lay.out)] if lay.bn else []
        elif lay.kind == "block":
            modules.append(Block(c, lay.mid, lay.out, lay.stride, lay.kernel, lay.padding))
        elif lay.kind in ("maxpool", "avgpool"):
            pool = nn.MaxPool2d if lay.kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(lay.kernel, lay.stride, lay.padding))
        elif lay.kind == "gap":
            modules.append(nn.AdaptiveAvgPool2d(1))
            h = w = 1
        elif lay.kind == "flatten":
            modules.append(nn.Flatten())
            features = c * h * w
        else:  # linear; a classifier without a flatten before it reads (b, c) after gap
            features = features if features is not None else c * h * w
            out = lay.out or classes
            modules.append(nn.Linear(features, out, bias=lay.bias))
            features = out
        if lay.kind in ("conv", "block", "maxpool", "avgpool"):
            c = lay.out or c
            h, w = ((s + 2 * lay.padding - lay.kernel) // lay.stride + 1 for s in (h, w))
            if h < 1 or w < 1:
                raise ModelError(f"layer {i} ({lay.kind}) shrinks the activations to nothing")
        modules += [nn.ReLU()] if lay.relu else []
    return nn.Sequential(*modules)


def architecture_hash(layers: list[LayerSpec], extra: dict | None = None) -> str:
    """The child cache's key: the child's own layers (two plans that build the same network
    share one training) and whatever else decides its training (``extra``)."""
    payload = {"layers": [lay.model_dump() for lay in layers], "extra": extra or {}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def surgery_layers(model: nn.Module, input_shape: tuple[int, ...],
                   classes: int) -> list[LayerSpec]:  # fmt: skip
    """The model's layer sequence, checked to be faithful: the network rebuilt from it takes
    the model's weights by name and computes the same logits. ModelError when surgery does not
    apply to this model."""
    import torch

    from compress.prune.layers import describe_network

    layers, _ = describe_network(model)
    rebuilt = build_layers(layers, input_shape, classes)
    try:
        rebuilt.load_state_dict(model.state_dict())
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelError(f"N2N's rebuilt network does not take the model's weights: "
                         f"{first}") from None
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))  # (2, c, h, w)
    with torch.no_grad():
        same = torch.allclose(rebuilt.eval()(x), model.eval()(x), atol=1e-5)
    if not same:
        raise ModelError("N2N's rebuilt network computes other logits than the model")
    return layers
