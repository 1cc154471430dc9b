"""Intermediate features by module path, and the losses that read them.

As in torchdistill, a loss names modules by their dotted path in ``named_modules()``
(``hint: {student: "4", teacher: "7"}``); a forward hook on each keeps its latest output during
the forward pass the training loop runs anyway, so no model is rewritten or wrapped. A feature
loss is called like a logit loss, ``fn(cfg, student, teacher, labels)``, with the student's
feature already mapped by the loss's adapter: a small module built once from the two shapes
(``probe_shapes`` runs the task's dummy inputs through each network) and trained with the
student. Adapters belong to the objective, not to the student: they are in the optimizer and the
resume state, never in the exported model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from compress.distill.losses import FeatureLoss, Loss, register_loss
from compress.errors import ModelError
from compress.models.zoo import as_tensors, call_model
from compress.tasks import TaskInfo
from compress.tasks.signature import dummy_inputs


def find_module(model: nn.Module, path: str, who: str) -> nn.Module:
    """The module at ``path`` ('' is the model itself); a wrong path names a few real ones."""
    try:
        return model.get_submodule(path)
    except AttributeError:
        kinds = {name: type(m).__name__ for name, m in model.named_modules() if name}
        near = difflib.get_close_matches(path, list(kinds), n=6, cutoff=0.5) or list(kinds)[:6]
        shown = ", ".join(f"{n!r} ({kinds[n]})" for n in near) or "none: it has no submodules"
        raise ModelError(f"no module {path!r} in the {who}; its module paths include {shown} "
                         f"({len(kinds)} in all: named_modules())") from None  # fmt: skip


def first_tensor(output: Any) -> Tensor | None:
    """A module's output as one tensor: itself, the first of a tuple, the first value of a dict
    (what transformer layers return); None when there is none."""
    while not isinstance(output, Tensor):
        if isinstance(output, list | tuple) and output:
            output = output[0]
        elif isinstance(output, dict) and output:
            output = next(iter(output.values()))
        else:
            return None
    return output


def no_output(path: str, who: str) -> ModelError:
    return ModelError(f"module {path!r} of the {who} gives no tensor in a forward pass (a "
                      "container that is never called, such as a ModuleList, or an output "
                      "without tensors); name a module that runs")  # fmt: skip


class FeatureCapture:
    """Forward hooks that keep the latest output of each module named by path, while entered
    (``with capture:``); leaving removes them, so the model is left exactly as it was."""

    def __init__(self, model: nn.Module, paths: Iterable[str], who: str) -> None:
        self.who = who
        self.modules = {p: find_module(model, p, who) for p in sorted(set(paths))}
        self.outputs: dict[str, Tensor] = {}
        self._handles: list[Any] = []

    def __enter__(self) -> FeatureCapture:
        for path, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._keeper(path)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.outputs.clear()

    def _keeper(self, path: str) -> Any:
        def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
            self.outputs[path] = first_tensor(output)  # type: ignore[assignment]  (None: get says)

        return keep

    def get(self, path: str) -> Tensor:
        found = self.outputs.get(path)
        if found is None:
            raise no_output(path, self.who)
        return found


def probe_shapes(model: nn.Module, info: TaskInfo, paths: Iterable[str],
                 who: str) -> dict[str, tuple[int, ...]]:  # fmt: skip
    """Each module's output shape on the task's dummy inputs (batch 2): one forward pass in
    eval mode without gradients, so BatchNorm statistics and the RNG are untouched. A module
    that did not run, or gave no tensor, is left out."""
    was_training = model.training
    model.eval()
    try:
        with FeatureCapture(model, paths, who) as capture, torch.no_grad():
            inputs = dummy_inputs(info.signature, batch=2, length=info.max_length or 8)
            call_model(model, info, as_tensors(inputs))
            return {path: tuple(out.shape) for path, out in capture.outputs.items()
                    if out is not None}  # fmt: skip
    finally:
        model.train(was_training)


def build_adapters(terms: list[tuple[str, Loss, Any]], student: dict[str, tuple[int, ...]],
                   teacher: dict[str, tuple[int, ...]], seed: int) -> nn.ModuleDict:  # fmt: skip
    """One adapter per feature term, from the probed shapes. Initialised from ``seed`` on a
    forked RNG: the global stream (dropout, the from-scratch twin) is the same as without it."""
    terms = [(name, loss, cfg) for name, loss, cfg in terms if loss.needs_features]
    for _, _, cfg in terms:
        for who, shapes in (("student", student), ("teacher", teacher)):
            if getattr(cfg, who) not in shapes:
                raise no_output(getattr(cfg, who), who)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.ModuleDict({
            name: (loss.adapter or same_rank)(cfg, student[cfg.student], teacher[cfg.teacher])
            for name, loss, cfg in terms
        })  # fmt: skip


def same_rank(cfg: Any, student: tuple[int, ...], teacher: tuple[int, ...]) -> nn.Module:
    """No adapter, for losses that compare shapes of one rank (2, 3 or 4) and resize the rest."""
    if len(student) != len(teacher) or len(student) not in (2, 3, 4):
        raise ModelError(f"student features {_shape(student)} and teacher features "
                         f"{_shape(teacher)}: expected the same rank, (b, d), (b, t, d) or "
                         "(b, c, h, w)")  # fmt: skip
    return nn.Identity()


def _shape(shape: tuple[int, ...]) -> str:
    return "(b, " + ", ".join(map(str, shape[1:])) + ")"


def pool_to(x: Tensor, size: tuple[int, ...]) -> Tensor:
    """Adaptive average pooling of the trailing 1 or 2 axes to ``size`` (a no-op when equal)."""
    if tuple(x.shape[-len(size) :]) == size:
        return x
    return (F.adaptive_avg_pool2d if len(size) == 2 else F.adaptive_avg_pool1d)(x, size)


def common_size(a: Tensor, b: Tensor, axes: int) -> tuple[int, ...]:
    """The smaller of the two sizes along each spatial axis: the trailing two of (b, c, h, w),
    else axis 1 ((b, t, d): tokens; (b, d): units)."""
    dims = slice(-2, None) if axes == 2 else slice(1, 2)
    return tuple(min(m, n) for m, n in zip(a.shape[dims], b.shape[dims], strict=True))


class HintLoss(FeatureLoss):
    """FitNets: the student's feature map, through a learned adapter, regresses the teacher's."""


def hint_adapter(cfg: HintLoss, student: tuple[int, ...], teacher: tuple[int, ...]) -> nn.Module:
    """A 1×1 conv from the student's channels to the teacher's for (b, c, h, w) features, a
    linear layer over the last axis for (b, d) and (b, t, d)."""
    same_rank(cfg, student, teacher)
    if len(student) == 4:
        return nn.Conv2d(student[1], teacher[1], kernel_size=1)
    return nn.Linear(student[-1], teacher[-1])


@register_loss("hint", HintLoss, needs_features=True, adapter=hint_adapter)
def hint_loss(cfg: HintLoss, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
    """FitNets hint (Romero et al. 2015): MSE between the teacher's features and the student's mapped by a learned 1×1 conv (or linear) adapter."""  # noqa: E501  (one line: the schema's description)
    if student.dim() == 4:  # (b, c, h, w): pool both to the smaller spatial size
        size = common_size(student, teacher, 2)
        student, teacher = pool_to(student, size), pool_to(teacher, size)
    return F.mse_loss(student, teacher)


class AttentionLoss(FeatureLoss):
    """Attention transfer between two modules' outputs."""

    p: float = Field(2.0, ge=1, description="Exponent of the attention map sum_c |a|^p.")


def attention_map(a: Tensor, p: float, size: tuple[int, ...] | None = None) -> Tensor:
    """The normalised attention map: sum over channels of |a|^p, pooled to ``size``, flattened
    and L2-normalised per example. (b, c, h, w) -> (b, h·w); (b, t, d) -> (b, t) (channels
    last, as in transformers); (b, d) -> (b, d)."""
    m = a.abs().pow(p)
    if a.dim() == 4:
        m = m.sum(1)  # (b, h, w)
    elif a.dim() == 3:
        m = m.sum(-1)  # (b, t)
    if size is not None:
        m = pool_to(m, size)
    return F.normalize(m.flatten(1), dim=1)  # (b, n)


@register_loss("attention", AttentionLoss, needs_features=True, adapter=same_rank)
def attention_loss(cfg: AttentionLoss, student: Tensor, teacher: Tensor, labels: Tensor) -> Tensor:
    """Attention transfer (Zagoruyko & Komodakis 2017): L2 distance between normalised attention maps sum_c |a|^p, resized to match."""  # noqa: E501  (one line: the schema's description)
    axes = 2 if student.dim() == 4 else 1  # the map's axes: (h, w), or t, or d
    size = common_size(student, teacher, axes)
    s, t = attention_map(student, cfg.p, size), attention_map(teacher, cfg.p, size)  # (b, n)
    return (s - t).norm(dim=1).mean()
