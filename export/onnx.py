"""Export a PyTorch model to ONNX with the dynamo exporter, its inputs, outputs and dynamic axes
taken from the task's signature."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch
from torch import nn

from compress.errors import StageFailed
from compress.models.zoo import scores
from compress.tasks import TaskInfo

MAX_DIM = 1 << 16


class ScoresOnly(nn.Module):
    """The model as the artifact presents it: the signature's inputs in order, the task's scores
    out (whatever tuple, dict or ModelOutput the model itself returns)."""

    def __init__(self, model: nn.Module, info: TaskInfo) -> None:
        super().__init__()
        self.model, self.info = model, info

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return scores(self.model, self.info, dict(zip(self.info.signature.input_names, inputs,
                                                      strict=True)))  # fmt: skip


def dynamic_shapes(info: TaskInfo) -> tuple[dict[int, torch.export.Dim], ...]:
    """One ``torch.export.Dim`` per axis name, shared by every input that has it. A sequence
    axis is bounded by the task's max_length (learned positions have no more rows)."""
    dims: dict[str, torch.export.Dim] = {}
    shapes = []
    for spec in info.signature.inputs:
        axes = {}
        for i, name in spec.dynamic_axes().items():
            top = MAX_DIM if name == "batch" else (info.max_length or MAX_DIM)
            axes[i] = dims.setdefault(name, torch.export.Dim(name, min=1, max=top))
        shapes.append(axes)
    return tuple(shapes)


def export_onnx(model: nn.Module, info: TaskInfo, sample: dict[str, torch.Tensor], path: Path,
                opset: int = 20) -> None:  # fmt: skip
    """Write ``path`` with the signature's input and output names and named dynamic axes.

    ``sample`` needs at least 2 along every dynamic axis: torch.export specialises a size of 1."""
    wrapped = ScoresOnly(model.eval(), info).eval()
    args = tuple(sample[name] for name in info.signature.input_names)
    quiet = io.StringIO()
    try:
        # The exporter prints progress lines and torchvision notices; keep the CLI's output ours.
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _exporter_logs_off():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapped, args, dynamo=True, opset_version=opset,
                input_names=info.signature.input_names,
                output_names=info.signature.output_names[:1],
                dynamic_shapes=(dynamic_shapes(info),),  # one entry: the *inputs tuple
                external_data=False, verbose=False,
            )  # fmt: skip
    except Exception as e:  # the exporter raises many types; all mean the same to the user
        raise StageFailed(f"ONNX export failed for {path.name}: {str(e).splitlines()[0]}") from e
    program.save(str(path), external_data=False)
    strip_debug_info(path)


def strip_debug_info(path: Path) -> None:
    """Drop the exporter's per-node metadata (FX node, stack trace, module path): it is for
    debugging the exporter, holds paths of this machine, and can outweigh a small model's
    weights (28 kB beside 4 kB of packed codes)."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


@contextlib.contextmanager
def _exporter_logs_off() -> Iterator[None]:
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
