"""An ONNX model in an ONNX Runtime session (the CPU execution provider unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OrtModel:
    """``OrtModel("student.onnx").run(x)`` → logits, for inputs of shape (batch, *input_shape)."""

    def __init__(
        self,
        path: str | Path,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options, providers=list(providers))
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_shape = list(first.shape)  # the batch axis is a name, e.g. 'batch'
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.version = ort.__version__

    def run(self, x: np.ndarray) -> np.ndarray:
        """The first output for one input batch."""
        return self.session.run(self.output_names[:1], {self.input_name: x})[0]

    def run_all(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(
            zip(self.output_names, self.session.run(None, {self.input_name: x}), strict=True)
        )

    def accuracy(self, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
        """Top-1 accuracy of the artifact itself, in this runtime."""
        hits = 0
        for i in range(0, len(x), batch_size):
            hits += int((self.run(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        return hits / len(x)
