"""An ONNX model in an ONNX Runtime session (the CPU execution provider unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OrtModel:
    """``OrtModel("student.onnx").run({"input": x})`` → ``{"logits": ...}``."""

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
        self.input_names = [i.name for i in self.session.get_inputs()]
        # shapes with named dynamic axes, e.g. ['batch', 1, 28, 28]
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.version = ort.__version__

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output, by name, for one batch of inputs by name."""
        feed = {name: inputs[name] for name in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    def scores(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The first output (a task's scores)."""
        feed = {name: inputs[name] for name in self.input_names}
        return self.session.run(self.output_names[:1], feed)[0]
