"""Which runtime opens an artifact: by the target it should run on, else by its format.

Every session object has the same small surface: ``run(inputs) -> {name: array}``,
``scores(inputs)`` (the first output), ``input_names``, ``output_names`` and ``version``. ONNX
files (formats ``onnx``, ``onnx-qdq``, ``onnx-packed``, ...) open in ONNX Runtime; OpenVINO IR,
QNN context models and TensorRT engines open in their own modules, each behind its own extra.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from compress.errors import CompressError

# target name -> (module, extra to install, how to open a file with it)
_TARGETS: dict[str, tuple[str, str]] = {
    "cpu-ort": ("compress.runtime.ort", "runtime"),
    "gpu-ort": ("compress.runtime.providers", "runtime"),
    "cpu-openvino": ("compress.runtime.openvino", "openvino"),
    "npu-openvino": ("compress.runtime.openvino", "openvino"),
    "npu-qnn": ("compress.runtime.qnn", "npu"),
    "gpu-tensorrt": ("compress.runtime.tensorrt", "gpu"),
}
# non-ONNX artifact formats -> the target that runs them
_FORMAT_TARGETS = {"openvino": "cpu-openvino", "openvino-ir": "cpu-openvino",
                   "qnn-context": "npu-qnn", "tensorrt": "gpu-tensorrt"}  # fmt: skip


def default_target(fmt: str, path: Path) -> str:
    """The target an artifact runs on when the caller names none."""
    if fmt in _FORMAT_TARGETS:
        return _FORMAT_TARGETS[fmt]
    if fmt == "onnx" or fmt.startswith("onnx-") or path.suffix == ".onnx":
        return "cpu-ort"
    raise CompressError(f"{path.name}: unknown artifact format {fmt!r}; this runtime opens "
                        f"ONNX files and {', '.join(sorted(_FORMAT_TARGETS))}")  # fmt: skip


def open_session(path: Path, fmt: str, target: str | None = None, threads: int | None = None,
                 providers: tuple[str, ...] | None = None) -> Any:  # fmt: skip
    """A session for ``path`` on ``target`` (default: by format), with a clear error when the
    target's module or package is missing or the file is not a model the runtime can load."""
    target = target or default_target(fmt, path)
    if target not in _TARGETS:
        raise CompressError(f"unknown target {target!r}; the runtime opens artifacts on "
                            f"{', '.join(_TARGETS)}")  # fmt: skip
    module_name, extra = _TARGETS[target]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise CompressError(f"{path.name}: target {target} needs {module_name} and its packages "
                            f"(pip install 'edge-compress[{extra}]'): {e}") from None  # fmt: skip
    try:
        return _open(module, target, path, threads, providers)
    except CompressError:
        raise
    except ImportError as e:
        raise CompressError(f"{path.name}: target {target} needs packages not installed here "
                            f"(pip install 'edge-compress[{extra}]'): {e}") from None  # fmt: skip
    except Exception as e:  # corrupt, truncated or foreign files: each runtime has its own type
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompressError(f"{path}: {target} cannot load it ({first})") from None


def _open(module: Any, target: str, path: Path, threads: int | None,
          providers: tuple[str, ...] | None) -> Any:  # fmt: skip
    if target == "cpu-ort":
        return module.OrtModel(path, providers or ("CPUExecutionProvider",), threads)
    if target == "gpu-ort":
        opts = {"threads": module.Threads(threads, 1)} if threads else {}
        return module.SessionModel(module.open_ort(path, "cuda", **opts))
    if target in ("cpu-openvino", "npu-openvino"):
        return module.OpenVinoModel(path, "CPU" if target == "cpu-openvino" else "NPU", threads)
    if target == "npu-qnn":
        return module.QnnModel(path)
    if path.suffix == ".onnx":  # gpu-tensorrt runs engines, which its target builds from ONNX
        raise CompressError(f"{path.name}: gpu-tensorrt runs a TensorRT engine; build one with "
                            "compress.runtime.tensorrt.build_engine first")  # fmt: skip
    return module.TensorRtModel(path)
