"""Export plus parity in one step: the ONNX file appears under its final name only once its
outputs matched the PyTorch model's on the given inputs, so a failed artifact never sits in a
folder looking finished."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.atomic import atomic_path
from compress.export.onnx import export_onnx
from compress.export.parity import check_parity
from compress.models.zoo import as_tensors, scores
from compress.tasks import TaskInfo


def export_checked(model: nn.Module, info: TaskInfo, inputs: dict[str, np.ndarray], path: Path,
                   opset: int, atol: float, rtol: float, what: str) -> dict:  # fmt: skip
    """Export ``model`` to ``path``; return the parity summary on ``inputs`` (described by
    ``what``); raises StageFailed outside the tolerances."""
    from compress.runtime import OrtModel

    model = model.eval()
    tensors = as_tensors(inputs)
    output = info.signature.output_names[0]
    with atomic_path(path) as tmp:
        export_onnx(model, info, tensors, tmp, opset)
        with torch.no_grad():
            reference = {output: scores(model, info, tensors).numpy()}
        actual = OrtModel(tmp).run(inputs)
        parity = check_parity(path.name, reference, actual, atol, rtol)
    agree = np.argmax(reference[output], 1) == np.argmax(actual[output], 1)
    return {**parity, "top1_agreement": float(agree.mean()), "inputs": what}
