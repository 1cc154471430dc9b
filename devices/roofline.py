"""Roofline estimates for hardware that is absent, from the device descriptions in
``devices/hardware/*.json`` (peak operations per second per precision and memory bandwidth, each
with its source). Only on request, and always labelled estimated: an estimate is a floor set by
arithmetic and by reading the weights once, never a measurement.

    t(batch) = max(flops_per_sample x batch / peak[precision], weight_bytes / bandwidth)
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from compress.devices.latency import LatencyRecord, summarize
from compress.errors import CompressError

HARDWARE = Path(__file__).parent / "hardware"


class DeviceDescription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="File name without .json.")
    device: str = Field(description="What it describes.")
    peak_ops_per_s: dict[str, float] = Field(description="Precision -> peak ops per second.")
    peak_source: str = Field(description="Where the peaks come from.")
    memory_bandwidth_bytes_per_s: float = Field(description="Memory bandwidth, bytes/s.")
    bandwidth_source: str = Field(description="Where the bandwidth comes from.")


def known_devices() -> list[str]:
    return sorted(p.stem for p in HARDWARE.glob("*.json"))


def read_device(name: str) -> DeviceDescription:
    path = HARDWARE / f"{name}.json"
    if not path.is_file():
        known = ", ".join(known_devices())
        raise CompressError(f"no device description {name!r}; known: {known}")
    return DeviceDescription.model_validate(json.loads(path.read_text(encoding="utf-8")))


def estimate(device: DeviceDescription, *, model: str, flops: int, weight_bytes: int,
             precision: str, batch: int, input_shape: list[int]) -> LatencyRecord | None:
    """The roofline time of one batch, as a record marked estimated (None when the device has
    no peak for ``precision``)."""
    peak = device.peak_ops_per_s.get(precision)
    if peak is None:
        return None
    ms = 1e3 * max(flops * batch / peak, weight_bytes / device.memory_bandwidth_bytes_per_s)
    return LatencyRecord(
        model=model, artifact=f"estimate:{device.name}", format="roofline",
        target=f"estimate:{device.name}", runtime="roofline", runtime_version="-",
        precision=precision, batch_size=batch, input_shape=input_shape, warmup=0, iterations=0,
        samples_ms=[], **summarize([ms]), cv_threshold=0.0, unstable=False,
        throughput_per_s=batch / (ms / 1e3), load_ms=0.0, first_inference_ms=0.0,
        estimated=True, note=f"estimated, not measured: {device.device}; peak: "
        f"{device.peak_source}; bandwidth: {device.bandwidth_source}",
    )  # fmt: skip
