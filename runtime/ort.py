"""An ONNX model in an ONNX Runtime session (the CPU execution provider unless told otherwise)."""

from __future__ import annotations

from pathlib import Path

from compress.runtime.providers import SessionModel


class OrtModel(SessionModel):
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
        super().__init__(ort.InferenceSession(str(path), options, providers=list(providers)))
        # shapes with named dynamic axes, e.g. ['batch', 1, 28, 28]
        self.input_shapes = {s["name"]: s["shape"] for s in self.input_specs}
