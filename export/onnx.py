"""Export a PyTorch classifier to ONNX with the dynamo exporter and a dynamic batch axis."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from compress.errors import StageFailed

INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(model: nn.Module, sample: torch.Tensor, path: Path, opset: int = 20) -> None:
    """Write ``path``: input 'input' (batch, *shape), output 'logits' (batch, classes).

    ``sample`` needs a batch of at least 2: torch.export specialises a dimension of size 1."""
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    quiet = io.StringIO()
    try:
        # The exporter prints progress lines and torchvision notices; keep the CLI's output ours.
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _exporter_logs_off():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (sample,), dynamo=True, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_shapes=({0: batch},), external_data=False, verbose=False,
            )  # fmt: skip
    except Exception as e:  # the exporter raises many types; all mean the same to the user
        raise StageFailed(f"ONNX export failed for {path.name}: {str(e).splitlines()[0]}") from e
    program.save(str(path), external_data=False)


@contextlib.contextmanager
def _exporter_logs_off() -> Iterator[None]:
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
