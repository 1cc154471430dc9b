"""Weight inheritance: a child starts from its teacher's surviving weights instead of at random.

Each kept layer keeps the output channels whose filters have the largest L1 norm; its inputs
are the channels its predecessor kept. A layer whose teacher predecessor was removed reads other
channels than it was trained on: it starts at random (and its successors read its channels in
order), so inheritance never copies weights into a place where they mean something else.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from compress.prune.layers import LayerSpec, describe_network

_PARAMETRIC = ("conv", "block", "linear")


def inherit_weights(child: nn.Sequential, teacher: nn.Sequential, keep: list[bool]) -> int:
    """Copy what fits from ``teacher`` into ``child`` (made from it with ``keep``); return how
    many child layers inherited."""
    t_layers, t_groups = describe_network(teacher)
    c_layers, c_groups = describe_network(child)
    kept = [i for i, k in enumerate(keep) if k]  # child layer j is teacher layer kept[j]
    chosen: dict[int, Tensor] = {}  # child layer -> the teacher channels it kept (out,)
    prev_c: int | None = None
    inherited = 0
    for j, t in enumerate(kept):
        lay = c_layers[j]
        if lay.kind not in _PARAMETRIC:
            continue
        prev_t = next((i for i in range(t - 1, -1, -1) if t_layers[i].kind in _PARAMETRIC), None)
        aligned = (kept[prev_c] if prev_c is not None else None) == prev_t
        if aligned:
            in_idx = None if prev_c is None else _inputs(chosen[prev_c], t_layers, prev_t,
                                                         t_groups[t][0])  # fmt: skip
            chosen[j] = _copy_layer(c_groups[j], t_groups[t], lay, in_idx)
            inherited += 1
        else:
            chosen[j] = torch.arange(_width(lay, c_groups[j][0]))
        prev_c = j
    return inherited


def _width(lay: LayerSpec, module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else lay.out


def _inputs(prev_out: Tensor, t_layers: list[LayerSpec], prev_t: int, first: nn.Module) -> Tensor:
    """The teacher input indices of a layer whose predecessor kept ``prev_out`` channels; a
    linear layer after a flatten reads each channel's h·w positions."""
    if isinstance(first, nn.Linear) and t_layers[prev_t].kind != "linear":
        hw = first.in_features // t_layers[prev_t].out
        return (prev_out[:, None] * hw + torch.arange(hw)[None]).flatten()  # (c·hw,)
    return prev_out


def _top(weight: Tensor, k: int) -> Tensor:
    """The k output channels with the largest L1 norm, in their original order."""
    norms = weight.detach().abs().flatten(1).sum(dim=1)  # (out,)
    return norms.topk(k).indices.sort().values


def _copy_layer(dst: list[nn.Module], src: list[nn.Module], lay: LayerSpec,
                in_idx: Tensor | None) -> Tensor:  # fmt: skip
    """Copy one layer (a conv with its BatchNorm, a linear, or a block); return the teacher
    output channels it kept."""
    if lay.kind == "block":
        d, s = dst[0], src[0]
        mid = _top(s.conv1.weight, d.conv1.out_channels)
        everything = torch.arange(d.conv2.out_channels)
        _load(d.conv1, s.conv1, mid, in_idx)
        _load(d.bn1, s.bn1, mid, None)
        _load(d.conv2, s.conv2, everything, mid)
        _load(d.bn2, s.bn2, everything, None)
        if isinstance(d.shortcut, nn.Sequential) and isinstance(s.shortcut, nn.Sequential):
            _load(d.shortcut[0], s.shortcut[0], everything, in_idx)
            _load(d.shortcut[1], s.shortcut[1], everything, None)
        return everything
    main = dst[0]
    out = _top(src[0].weight, _width(lay, main))
    _load(main, src[0], out, in_idx)
    for d, s in zip(dst[1:], src[1:], strict=True):
        if isinstance(d, nn.BatchNorm2d):
            _load(d, s, out, None)
    return out


@torch.no_grad()
def _load(dst: nn.Module, src: nn.Module, out_idx: Tensor, in_idx: Tensor | None) -> None:
    """dst's own tensors ← src's rows ``out_idx`` (and weight columns ``in_idx``; a smaller
    kernel takes the centre of the teacher's), where the shapes then agree."""
    for name, value in [*dst.named_parameters(recurse=False), *dst.named_buffers(recurse=False)]:
        taken = getattr(src, name)
        if taken.dim() > 0:
            taken = taken[out_idx]
            if in_idx is not None and name == "weight" and taken.dim() > 1:
                taken = taken[:, in_idx]
        if taken.dim() == 4 and value.dim() == 4 and taken.shape[2:] != value.shape[2:]:
            taken = _centre(taken, value.shape[2], value.shape[3])
        if taken.shape == value.shape:
            value.copy_(taken)


def _centre(weight: Tensor, kh: int, kw: int) -> Tensor:
    """The central kh × kw taps of conv weights (out, in, h, w)."""
    top, left = (weight.shape[2] - kh) // 2, (weight.shape[3] - kw) // 2
    return weight[:, :, top : top + kh, left : left + kw]
