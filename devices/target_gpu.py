"""NVIDIA GPU targets on the device side (no torch): ``gpu-ort`` (ONNX Runtime's CUDA execution
provider, from ``onnxruntime-gpu``) and ``gpu-tensorrt`` (an engine built with the ``tensorrt``
Python API, timed with CUDA events). Present only where a GPU and the package are; otherwise
absent with the reason. ``gpu-torch*`` (CUDA PyTorch) live on the host side, in
compress/eager_target.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from compress.devices.targets import (
    ONNX_FORMATS,
    TARGETS,
    Availability,
    Inputs,
    Prepared,
    Target,
    TimingSettings,  # fmt: skip
)

INSTALL = "pip install 'edge-compress[gpu]'"


@TARGETS.register("gpu-ort")
class GpuOrt(Target):
    name, hardware, runtime, formats = "gpu-ort", "NVIDIA GPU", "onnxruntime-cuda", ONNX_FORMATS
    note = "wall time of session.run: includes copying inputs to and outputs from the GPU"

    def availability(self) -> Availability:
        import onnxruntime as ort

        from compress.runtime.providers import CUDA_EP

        if CUDA_EP not in ort.get_available_providers():
            why = f"the CPU build; onnxruntime-gpu: {INSTALL}"
            return Availability(False, f"onnxruntime {ort.__version__} has no CUDA EP ({why})")
        return Availability(True, f"onnxruntime {ort.__version__} CUDA EP")

    def version(self) -> str:
        import onnxruntime as ort

        return ort.__version__

    def open(self, path: Path, settings: TimingSettings) -> Any:
        from compress.errors import CompressError
        from compress.runtime.providers import CUDA_EP, SessionModel, open_ort

        model = SessionModel(open_ort(path, "cuda", threads=settings.thread_counts))
        if CUDA_EP not in model.providers():  # no GPU: onnxruntime quietly falls back to CPU
            raise CompressError(f"{path.name}: the CUDA execution provider did not start")
        return model


def _cuda_devices() -> int:
    from cuda.bindings import runtime as cudart

    err, count = cudart.cudaGetDeviceCount()
    return count if int(err) == 0 else 0


@TARGETS.register("gpu-tensorrt")
class GpuTensorRt(Target):
    name, hardware, runtime, formats = "gpu-tensorrt", "NVIDIA GPU", "tensorrt", (
        "onnx", "onnx-qdq")  # TensorRT builds INT8 from QDQ; it has no BitShift for packed codes
    device_clock = "cuda-events"
    note = "engine time per call from CUDA events (no host copies)"
    max_batch = 64

    def availability(self) -> Availability:
        for module, package in (("tensorrt", "tensorrt"), ("cuda", "cuda-python")):
            if find_spec(module) is None:
                return Availability(False, f"{package} is not installed ({INSTALL})")
        if _cuda_devices() == 0:
            return Availability(False, "no CUDA device is visible")
        return Availability(True, f"tensorrt {self.version()}")

    def version(self) -> str:
        import tensorrt

        return tensorrt.__version__

    def prepare(self, artifact: Path, precision: str, workdir: Path,
                calibration: Callable[[], Iterable[Inputs]] | None = None) -> Prepared:  # fmt: skip
        """fp32 artifacts build with FP16 kernels allowed; QDQ artifacts as INT8 engines."""
        from compress.runtime.tensorrt import build_engine

        int8 = precision == "int8"
        built = "int8" if int8 else "fp16"
        engine = build_engine(artifact, workdir / f"{artifact.stem}.{built}.plan", fp16=True,
                              int8=int8, max_batch=self.max_batch)  # fmt: skip
        return Prepared(engine, "tensorrt-engine", built, reference=artifact)

    def open(self, path: Path, settings: TimingSettings) -> Any:
        from compress.runtime.tensorrt import TensorRtModel

        return TensorRtModel(path)

    def call(self, session: Any, inputs: Inputs) -> Callable[[], Any]:
        return lambda: session.device_ms(inputs)
