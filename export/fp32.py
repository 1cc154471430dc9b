"""fp32 ONNX: the model as trained, checked element by element (numpy.allclose rule)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from compress.export.checked import write_checked
from compress.export.formats import Exported, ExportFormat, ExportJob, register_format
from compress.export.onnx import export_onnx
from compress.export.parity import check_parity
from compress.models.zoo import as_tensors
from compress.tasks import TaskInfo


def export_checked(model: nn.Module, info: TaskInfo, inputs: dict[str, np.ndarray], path: Path,
                   opset: int, atol: float, rtol: float, what: str) -> dict:  # fmt: skip
    """Export ``model`` to ``path``; return the parity summary on ``inputs`` (described by
    ``what``); raises StageFailed outside the tolerances."""
    tensors = as_tensors(inputs)

    def write(tmp: Path) -> None:
        export_onnx(model.eval(), info, tensors, tmp, opset)

    def check(reference: dict, actual: dict, _tmp: Path) -> dict:
        return check_parity(path.name, reference, actual, atol, rtol)

    return write_checked(path, write, model, info, inputs, check, what)


@register_format
class Fp32Onnx(ExportFormat):
    name = "onnx"
    suffix = ".onnx"
    description = "fp32 ONNX; parity within atol + rtol·|x| of PyTorch"

    def refuses(self, precision: str) -> str | None:
        return None  # a quantized model's weights are fp32 values on its grid

    def export(self, job: ExportJob) -> Exported:
        parity = export_checked(job.model, job.info, job.inputs, job.path, job.opset,
                                job.parity.atol, job.parity.rtol, job.what)  # fmt: skip
        return Exported(job.path, "fp32", parity)
