"""Open ONNX Runtime sessions on a named execution provider, with explicit thread counts.

The public surface every session module shares (``compress.runtime.load`` dispatches to them by
artifact format):

    session = open_ort(path, "cpu" | "cuda" | "qnn", threads=Threads(1, 1), ...)
    model = SessionModel(session)       # .run({name: array}) -> {name: array}, .scores(inputs)
    model.input_specs / model.output_specs   # [{"name", "shape", "type"}]

The QNN execution provider is not built into onnxruntime: it is the plugin library of the PyPI
package ``onnxruntime-qnn`` (``pip install 'edge-compress[npu]'``), registered once per process
with ``onnxruntime.register_execution_provider_library``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError

QNN_EP = "QNNExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
_registered: set[str] = set()


@dataclass(frozen=True)
class Threads:
    """Threads a runtime may use; always set, so both sides of a comparison use the same."""

    intra_op: int = 1
    inter_op: int = 1


def session_options(threads: Threads, profile_prefix: str | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads.intra_op
    options.inter_op_num_threads = threads.inter_op
    # Spinning threads burn a core between calls; on a shared machine that steals from the
    # other side of an interleaved comparison.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if profile_prefix:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return options


def qnn_library() -> str:
    """Register the QNN plugin EP (once) and return its library path."""
    import onnxruntime as ort

    try:
        import onnxruntime_qnn
    except ImportError:
        install = "pip install 'edge-compress[npu]'"
        raise CompressError(f"npu-qnn needs onnxruntime-qnn: {install}") from None
    path = onnxruntime_qnn.get_library_path()
    if QNN_EP not in _registered:
        ort.register_execution_provider_library(QNN_EP, path)
        _registered.add(QNN_EP)
    return path


def qnn_htp_backend() -> str:
    import onnxruntime_qnn

    return onnxruntime_qnn.get_qnn_htp_path()


def open_ort(
    path: str | Path, provider: str = "cpu", *, threads: Threads | None = None,
    provider_options: dict[str, str] | None = None, config: dict[str, str] | None = None,
    profile_prefix: str | None = None,
) -> Any:  # fmt: skip
    """An ``onnxruntime.InferenceSession`` on ``provider`` ("cpu", "cuda" or "qnn"); ``config``
    holds session config entries (``session.disable_cpu_ep_fallback``, ``ep.context_*``)."""
    import onnxruntime as ort

    options = session_options(threads or Threads(), profile_prefix)
    for key, value in (config or {}).items():
        options.add_session_config_entry(key, value)
    if provider == "qnn":
        qnn_library()
        devices = [d for d in ort.get_ep_devices() if d.ep_name == QNN_EP]
        if not devices:
            raise CompressError("onnxruntime-qnn is registered but offers no device")
        options.add_provider_for_devices(devices[:1], provider_options or {})
        return ort.InferenceSession(str(path), options)
    names = {"cpu": ["CPUExecutionProvider"], "cuda": [CUDA_EP, "CPUExecutionProvider"]}
    providers = names[provider]
    if provider == "cuda":
        providers = [(CUDA_EP, provider_options or {}), "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


def _spec(value: Any) -> dict[str, Any]:
    return {"name": value.name, "shape": list(value.shape), "type": value.type}


class SessionModel:
    """An ``InferenceSession`` behind the runtime's small API: run, scores, input/output specs."""

    def __init__(self, session: Any) -> None:
        import onnxruntime as ort

        self.session = session
        self.input_specs = [_spec(i) for i in session.get_inputs()]
        self.output_specs = [_spec(o) for o in session.get_outputs()]
        self.input_names = [s["name"] for s in self.input_specs]
        self.output_names = [s["name"] for s in self.output_specs]
        self.version = ort.__version__

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: inputs[name] for name in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))

    def scores(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: inputs[name] for name in self.input_names}
        return self.session.run(self.output_names[:1], feed)[0]

    def providers(self) -> list[str]:
        return list(self.session.get_providers())
