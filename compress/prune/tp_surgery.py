"""N2N shrinkage of a teacher the project's own surgery cannot read (a user's builder with
branches, concatenations, residual adds): Torch-Pruning's dependency graph finds the groups of
channels that must shrink together, and prunes them consistently.

Each prunable group (rooted at a conv or linear layer whose output channels are free, i.e. not
the classifier's) is one "layer" the shrinkage policy reads. A child is its teacher's model spec
plus, per group, the root layer's name and the output channels it keeps: the channels of largest
group L1 magnitude in the teacher (Torch-Pruning's ``MagnitudeImportance(p=1)``, deterministic).
The checkpoint's JSON holds both, so a child rebuilds by building the teacher's architecture and
pruning exactly those channels (the ``tp-child`` architecture; nothing is pickled). Stage 1
(layer removal) does not apply: removing a layer of an arbitrary graph has no general meaning.

Torch-Pruning is the optional extra ``prune``, imported only when a child is pruned.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.extras import import_extra
from compress.models.zoo import register_arch
from compress.prune.layers import LayerSpec
from compress.prune.surgery import Plan, shrunk
from compress.tasks import TaskInfo


class KeptChannels(StrictModel):
    """One pruned group: its root layer and the output channels the child keeps."""

    root: str = Field(min_length=1, max_length=1000, description="The root layer's module name "
                      "in the teacher (named_modules).")  # fmt: skip
    keep: list[int] = Field(min_length=1, max_length=65536, description="Its output channels "
                            "the child keeps, ascending.")  # fmt: skip


class TPChildSpec(StrictModel):
    """A network N2N shrank with Torch-Pruning's dependency graph: the teacher's architecture
    with, per group, only the kept output channels."""

    arch: Literal["tp-child"] = Field(description="Architecture name.")
    teacher: dict[str, Any] = Field(default_factory=lambda: {"arch": "cnn-small"},
                                    description="The teacher's model spec (as in a recipe).")
    factors: list[float] = Field(default_factory=list, max_length=4096, description="Per "
                                 "prunable group: the shrink factor sampled.")  # fmt: skip
    groups: list[KeptChannels] = Field(default_factory=list, max_length=4096,
                                       description="Per shrunk group: what is kept.")  # fmt: skip


def _torch_pruning() -> Any:
    return import_extra("torch_pruning", "prune", "N2N on a network its own surgery cannot "
                        "read", ModelError)


def _example(info: TaskInfo) -> Tensor:
    return torch.zeros(2, *info.input_shape)  # (2, c, h, w)


def _graph(model: nn.Module, info: TaskInfo) -> Any:
    tp = _torch_pruning()
    try:
        return tp.DependencyGraph().build_dependency(model, example_inputs=_example(info),
                                                     verbose=False)  # fmt: skip
    except Exception as e:  # Torch-Pruning traces the user's forward: any failure, one line
        raise ModelError(f"Torch-Pruning could not trace the model: {type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}") from None  # fmt: skip


def _output_layer(model: nn.Module, info: TaskInfo) -> nn.Module:
    """The last conv or linear layer the forward pass calls: its outputs are the logits."""
    called: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: called.append(mod))
             for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]  # fmt: skip
    try:
        with torch.no_grad():
            model.eval()(_example(info))
    finally:
        for hook in hooks:
            hook.remove()
    if not called:
        raise ModelError("the model has no Conv2d or Linear layer to shrink")
    return called[-1]


def prunable_groups(model: nn.Module, info: TaskInfo) -> list[tuple[str, Any]]:
    """(root name, group) per group whose channels may shrink, in the order the model
    registers its root layers; ModelError when there is none."""
    graph = _graph(model, info)
    names = {m: n for n, m in model.named_modules()}
    position = {n: i for i, n in enumerate(names.values())}
    groups = graph.get_all_groups(ignored_layers=[_output_layer(model, info)],
                                  root_module_types=[nn.Conv2d, nn.Linear])  # fmt: skip
    found = sorted(((names[g[0].dep.target.module], g) for g in groups),
                   key=lambda item: position[item[0]])
    if not found:
        raise ModelError("Torch-Pruning found no group of channels that may shrink")
    return found


def describe_groups(model: nn.Module, info: TaskInfo) -> list[LayerSpec]:
    """Each prunable group as the layer the shrinkage policy reads: its root's kind, kernel,
    stride, padding and output channels."""
    modules = dict(model.named_modules())
    out = []
    for name, _ in prunable_groups(model, info):
        m = modules[name]
        if isinstance(m, nn.Conv2d):
            out.append(LayerSpec(kind="conv", kernel=min(m.kernel_size[0], 64),
                                 stride=min(m.stride[0], 64), padding=min(_pad(m), 64),
                                 out=m.out_channels, bias=m.bias is not None))  # fmt: skip
        else:
            out.append(LayerSpec(kind="linear", out=m.out_features, bias=m.bias is not None))
    return out


def _pad(conv: nn.Conv2d) -> int:
    return conv.padding[0] if isinstance(conv.padding, tuple) else 0  # 'same' / 'valid': 0


def group_importance(teacher: nn.Module, info: TaskInfo) -> list[tuple[str, Tensor]]:
    """Per prunable group, its root's name and each output channel's L1 magnitude summed over
    every layer of the group (Torch-Pruning's ``MagnitudeImportance(p=1)``): (width,)."""
    importance = _torch_pruning().importance.MagnitudeImportance(p=1)
    groups = prunable_groups(teacher, info)  # traced with autograd: outside no_grad
    with torch.no_grad():
        return [(name, importance(group)) for name, group in groups]


def kept_channels(scores: list[tuple[str, Tensor]], factors: list[float],
                  floor: int) -> list[KeptChannels]:  # fmt: skip
    """Per group shrunk by its factor, the ``shrunk(width, factor, floor)`` channels of
    largest importance, ascending."""
    if len(factors) != len(scores):
        raise ModelError(f"{len(factors)} factors for {len(scores)} prunable groups")
    kept = []
    for (name, score), factor in zip(scores, factors, strict=True):
        k = shrunk(len(score), factor, floor)
        if k < len(score):
            keep = score.topk(k).indices.sort().values  # (k,)
            kept.append(KeptChannels(root=name, keep=keep.tolist()))
    return kept


def prune(model: nn.Module, info: TaskInfo, groups: list[KeptChannels]) -> nn.Module:
    """``model`` with each group cut to its kept channels, in place (and returned)."""
    if not groups:
        return model
    graph = _graph(model, info)
    modules = dict(model.named_modules())
    for g in groups:
        root = modules.get(g.root)
        if not isinstance(root, nn.Conv2d | nn.Linear):
            raise ModelError(f"the teacher has no conv or linear layer named {g.root!r}")
        width = root.out_channels if isinstance(root, nn.Conv2d) else root.out_features
        drop = sorted(set(range(width)) - set(g.keep))
        if not drop or any(i >= width for i in g.keep):
            raise ModelError(f"{g.root}: cannot keep channels {g.keep[:8]}... of {width}")
        prune_out = graph.get_pruner_of_module(root).prune_out_channels
        graph.get_pruning_group(root, prune_out, idxs=drop).prune()
    return model


def teacher_model(spec: TPChildSpec, info: TaskInfo) -> nn.Module:
    """The teacher's architecture, untrained."""
    from pydantic import TypeAdapter

    from compress.models import build_model, model_spec

    return build_model(TypeAdapter(model_spec()).validate_python(spec.teacher), info)


@register_arch("tp-child", TPChildSpec)
def tp_child(spec: TPChildSpec, info: TaskInfo) -> nn.Module:
    return prune(teacher_model(spec, info), info, spec.groups)


class TPChildMaker:
    """Children of a teacher pruned through its dependency graph (no removal stage)."""

    removal = False

    def __init__(self, teacher: nn.Module, teacher_spec: dict, info: TaskInfo,
                 floor: int) -> None:  # fmt: skip
        self.teacher_spec, self.floor = teacher_spec, floor
        self.layers = describe_groups(teacher, info)
        self.scores = group_importance(teacher, info)

    def spec(self, plan: Plan) -> TPChildSpec:
        return TPChildSpec(arch="tp-child", teacher=self.teacher_spec, factors=plan.factors,
                           groups=kept_channels(self.scores, plan.factors, self.floor))

    def key(self, spec: Any, extra: dict | None) -> str:
        """The child cache's key: the channels it keeps (two plans that keep the same ones
        share one training) and whatever else decides its training."""
        payload = {"teacher": spec.teacher, "groups": [g.model_dump() for g in spec.groups],
                   "extra": extra or {}}  # fmt: skip
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
