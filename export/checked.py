"""Export plus parity in one step: an artifact appears under its final name only once its
outputs matched the PyTorch model's on the given inputs, so a failed artifact never sits in a
folder looking finished."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from compress.atomic import atomic_path
from compress.models.zoo import as_tensors, scores
from compress.tasks import TaskInfo

# check(reference outputs, the artifact's outputs, the temporary file) -> parity summary;
# raises StageFailed to refuse the artifact
Check = Callable[[dict[str, np.ndarray], dict[str, np.ndarray], Path], dict]
# write(temporary file) -> None
Write = Callable[[Path], None]


def reference_outputs(model: nn.Module, info: TaskInfo,
                      inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # fmt: skip
    """The PyTorch model's scores on ``inputs``, under the signature's first output name."""
    with torch.no_grad():
        out = scores(model.eval(), info, as_tensors(inputs)).numpy()
    return {info.signature.output_names[0]: out}


def top1_agreement(reference: dict[str, np.ndarray], actual: dict[str, np.ndarray]) -> float:
    """Share of inputs whose highest score is the same class in both."""
    name = next(iter(reference))
    return float((np.argmax(reference[name], 1) == np.argmax(actual[name], 1)).mean())


def write_checked(path: Path, write: Write, model: nn.Module, info: TaskInfo,
                  inputs: dict[str, np.ndarray], check: Check, what: str) -> dict:  # fmt: skip
    """Write ``path`` through ``write``, run it in ONNX Runtime on ``inputs`` (described by
    ``what``) and ``check`` it against the PyTorch model before it takes its final name."""
    from compress.runtime import OrtModel

    reference = reference_outputs(model, info, inputs)
    with atomic_path(path) as tmp:
        write(tmp)
        actual = OrtModel(tmp).run(inputs)
        parity = check(reference, actual, tmp)
    return {**parity, "top1_agreement": top1_agreement(reference, actual), "inputs": what}
