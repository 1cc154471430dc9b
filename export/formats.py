"""Export formats: each is one class that says which models it can hold and writes one model's
artifact with its own parity policy (fp32 tolerance, quantization steps plus top-1 agreement,
...). The export stage knows no format in particular, so the quantization, text and target work
adds formats instead of branches in the stage.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from compress.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from compress.pipeline.artifacts import ModelArtifact
    from compress.tasks import TaskInfo


@dataclass(frozen=True)
class ParityPolicy:
    """Tolerances the recipe set; each format reads the ones that apply to it."""

    atol: float  # fp32 formats: numpy.allclose rule
    rtol: float
    steps: float  # quantized formats: max error in steps of the output's quantization scale
    min_top1_agreement: float  # quantized formats: share of inputs whose top-1 class agrees


@dataclass(frozen=True)
class ExportJob:
    """One model to write as one artifact."""

    model: nn.Module  # as trained; a quantized model holds its weights on the quantization grid
    artifact: ModelArtifact
    info: TaskInfo
    inputs: dict[str, np.ndarray]  # real test inputs for the parity check
    what: str  # those inputs in words, for the parity summary
    path: Path  # the file to write; its folder holds everything a device needs
    opset: int
    parity: ParityPolicy
    run_dir: Path  # where the model's side files (quantization codes) are
    calibration: Callable[[], Iterator[dict[str, np.ndarray]]]  # training batches, on demand


@dataclass(frozen=True)
class Exported:
    """What a format wrote: the file, the precision of its arithmetic, its parity summary."""

    path: Path
    precision: str
    parity: dict[str, Any]


class ExportFormat(ABC):
    """One way of writing a model; registered by name in EXPORT_FORMATS."""

    name: ClassVar[str]
    suffix: ClassVar[str]  # file name ending, e.g. ".onnx" or ".qdq.onnx"
    description: ClassVar[str]

    @abstractmethod
    def refuses(self, precision: str) -> str | None:
        """Why a model whose weights have ``precision`` cannot be written this way, or None."""

    @abstractmethod
    def export(self, job: ExportJob) -> Exported:
        """Write ``job.path`` atomically, checked against ``job.model``; raise StageFailed when
        parity fails, leaving no file behind."""


EXPORT_FORMATS: Registry[type[ExportFormat]] = Registry("export format")


def register_format(cls: type[ExportFormat]) -> type[ExportFormat]:
    return EXPORT_FORMATS.register(cls.name)(cls)


def default_format(precision: str, method: str | None = None) -> str:
    """The format that holds a model of this precision (quantized by ``method``) best: fp32 ONNX
    for fp32 models, Brevitas' QCDQ for Brevitas layers, QDQ for int8 (integer kernels on CPUs
    and NPUs), packed low-bit codes below 8 bits."""
    if method == "brevitas":
        return "onnx-qcdq"
    if precision == "int8":
        return "onnx-qdq"
    return "onnx" if precision == "fp32" else "onnx-packed"


def load_formats() -> None:
    """Import the built-in formats (they register themselves)."""
    from compress.export import fp32, generation_format, packed, qcdq, qdq  # noqa: F401
