"""OpenVINO targets: ``cpu-openvino`` (present wherever the ``openvino`` package is) and
``npu-openvino`` (an Intel NPU, when OpenVINO sees one). Both run the artifact's OpenVINO IR,
written from the ONNX artifact when the target prepares it."""

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

INSTALL = "pip install 'edge-compress[openvino]'"


class OpenVinoTarget(Target):
    runtime, formats = "openvino", ONNX_FORMATS
    device: str

    def availability(self) -> Availability:
        if find_spec("openvino") is None:
            return Availability(False, f"openvino is not installed ({INSTALL})")
        from compress.runtime.openvino import device_name, devices

        found = devices()
        if self.device not in found:
            return Availability(False, f"OpenVINO {self.version()} sees no {self.device} "
                                f"here (devices: {', '.join(found) or 'none'})")  # fmt: skip
        return Availability(True, f"openvino {self.version()} on {device_name(self.device)}")

    def version(self) -> str:
        import openvino

        return openvino.__version__.split("-")[0]

    def prepare(self, artifact: Path, precision: str, workdir: Path,
                calibration: Callable[[], Iterable[Inputs]] | None = None) -> Prepared:  # fmt: skip
        from compress.runtime.openvino import save_ir

        xml = save_ir(artifact, workdir / f"{artifact.stem}.xml")
        return Prepared(xml, "openvino-ir", precision, reference=artifact)

    def open(self, path: Path, settings: TimingSettings, perf_counters: bool = False) -> Any:
        from compress.runtime.openvino import OpenVinoModel

        return OpenVinoModel(path, self.device, settings.threads, perf_counters)

    def operators(self, path: Path, inputs: Inputs, settings: TimingSettings,
                  workdir: Path) -> list[dict] | None:  # fmt: skip
        from compress.devices.operators import profile_openvino

        return profile_openvino(self.open(path, settings, perf_counters=True), inputs, calls=20)


@TARGETS.register("cpu-openvino")
class CpuOpenVino(OpenVinoTarget):
    name, hardware, device = "cpu-openvino", "CPU", "CPU"


@TARGETS.register("npu-openvino")
class NpuOpenVino(OpenVinoTarget):
    name, hardware, device = "npu-openvino", "Intel NPU", "NPU"
