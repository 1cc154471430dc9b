"""OpenVINO runtime: an ONNX artifact or its IR (``.xml`` + ``.bin``) compiled for a device.

    model = OpenVinoModel("student.onnx", device="CPU", threads=1)
    model.run({"input": x}); model.input_specs; model.output_specs
    model.layer_times()      # per-layer counters of the last call, when perf_counters=True
    save_ir("student.onnx", "student.xml")

Precision is pinned: OpenVINO's CPU plugin otherwise runs fp32 models in bf16 on CPUs that have
it, which would time a different arithmetic than the artifact's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError


def _openvino() -> Any:
    try:
        import openvino
    except ImportError:
        install = "pip install 'edge-compress[openvino]'"
        raise CompressError(f"the OpenVINO targets need openvino: {install}") from None
    return openvino


def devices() -> list[str]:
    return list(_openvino().Core().available_devices)


def device_name(device: str) -> str:
    return str(_openvino().Core().get_property(device, "FULL_DEVICE_NAME"))


def save_ir(onnx_path: str | Path, xml_path: str | Path) -> Path:
    """Convert an ONNX file to OpenVINO IR (``.xml`` and ``.bin`` beside it), atomically."""
    ov = _openvino()
    xml_path = Path(xml_path)
    partial = xml_path.with_name(f".{xml_path.stem}.partial.xml")
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(partial), compress_to_fp16=False)
    os.replace(partial.with_suffix(".bin"), xml_path.with_suffix(".bin"))
    os.replace(partial, xml_path)  # the .xml last: it names the model, so it marks completion
    return xml_path


def _spec(port: Any) -> dict[str, Any]:
    shape = [d.get_length() if d.is_static else None for d in port.get_partial_shape()]
    return {"name": port.any_name, "shape": shape, "type": str(port.get_element_type())}


class OpenVinoModel:
    """A model compiled for one OpenVINO device, with an explicit thread count."""

    def __init__(self, path: str | Path, device: str = "CPU", threads: int | None = 1,
                 perf_counters: bool = False, precision: str = "f32") -> None:  # fmt: skip
        ov = _openvino()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "PERF_COUNT": perf_counters}
        if device == "CPU":
            config["INFERENCE_PRECISION_HINT"] = precision
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = ov.Core().compile_model(str(path), device, config)
        except RuntimeError as e:
            why = str(e).strip().splitlines()[0]
            raise CompressError(f"{Path(path).name}: OpenVINO cannot compile it for {device} "
                                f"({why})") from None
        self.request = self.compiled.create_infer_request()
        self.input_specs = [_spec(p) for p in self.compiled.inputs]
        self.output_specs = [_spec(p) for p in self.compiled.outputs]
        self.input_names = [s["name"] for s in self.input_specs]
        self.output_names = [s["name"] for s in self.output_specs]
        self.version = ov.__version__
        self.device = device

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.request.infer({name: inputs[name] for name in self.input_names})
        return {name: np.array(result[port]) for name, port in
                zip(self.output_names, self.compiled.outputs, strict=True)}  # fmt: skip

    def scores(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.request.infer({name: inputs[name] for name in self.input_names})
        return np.array(self.request.get_output_tensor(0).data)

    def layer_times(self) -> list[dict[str, Any]]:
        """Per-layer time of the last call (needs ``perf_counters=True``), executed layers only."""
        return [{"name": p.node_name, "op": p.node_type, "kernel": p.exec_type,
                 "ms": p.real_time.total_seconds() * 1e3} for p in self.request.profiling_info
                if p.status.name == "EXECUTED"]  # fmt: skip
