"""Export plus parity in one step: the ONNX file appears under its final name only once its
outputs matched the PyTorch model's on the given inputs, so a failed artifact never sits in a
folder looking finished."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from compress.atomic import atomic_path
from compress.export.onnx import OUTPUT_NAME, export_onnx
from compress.export.parity import check_parity


def export_checked(
    model: nn.Module, inputs: torch.Tensor, path: Path, opset: int, atol: float, rtol: float
) -> dict:
    """Export ``model`` to ``path``; return the parity summary (raises StageFailed outside it)."""
    from compress.runtime import OrtModel

    model = model.eval()
    with atomic_path(path) as tmp:
        export_onnx(model, inputs[:2], tmp, opset)
        with torch.no_grad():
            reference = {OUTPUT_NAME: model(inputs).numpy()}
        actual = OrtModel(tmp).run_all(inputs.numpy())
        return check_parity(path.name, reference, actual, atol, rtol)
