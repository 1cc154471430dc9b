"""Targets: a device plus a runtime plus a precision. Each knows whether it is present here and
how to time an artifact on it. Absent hardware is reported absent, never faked."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.devices.latency import LatencyRecord, measure
from compress.registry import Registry


@dataclass(frozen=True)
class Availability:
    present: bool
    detail: str  # version when present, the reason when absent


@dataclass(frozen=True)
class TimingSettings:
    warmup: int = 20
    iterations: int = 200
    max_seconds: float = 20.0
    cv_threshold: float = 0.15


class Target(ABC):
    name: str
    hardware: str
    runtime: str
    formats: tuple[str, ...]  # artifact formats it can run: "onnx", "pytorch" (a checkpoint)

    @abstractmethod
    def availability(self) -> Availability: ...

    @abstractmethod
    def profile(self, artifact: Path, model: str, inputs: dict[str, np.ndarray],
                settings: TimingSettings, precision: str = "fp32") -> LatencyRecord:  # fmt: skip
        """Time ``artifact`` on one batch of inputs by name (batch size = rows of each)."""


def timed(target: Target, load: Callable[[], Callable[[], object]], inputs: dict[str, np.ndarray],
          settings: TimingSettings, **identity: object) -> LatencyRecord:  # fmt: skip
    """``measure`` with the settings and the batch's shape filled in."""
    first = next(iter(inputs.values()))
    return measure(
        load, batch_size=len(first), warmup=settings.warmup, iterations=settings.iterations,
        max_seconds=settings.max_seconds, cv_threshold=settings.cv_threshold,
        target=target.name, runtime=target.runtime, input_shape=list(first.shape), **identity,
    )  # fmt: skip


TARGETS: Registry[Target] = Registry("target")


@TARGETS.register("cpu-ort")
class CpuOrt(Target):
    name, hardware, runtime, formats = "cpu-ort", "CPU", "onnxruntime", ("onnx",)

    def availability(self) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError:
            return Availability(False, "onnxruntime is not installed")
        if "CPUExecutionProvider" not in ort.get_available_providers():
            return Availability(False, "onnxruntime has no CPUExecutionProvider")
        return Availability(True, f"onnxruntime {ort.__version__}")

    def profile(self, artifact: Path, model: str, inputs: dict[str, np.ndarray],
                settings: TimingSettings, precision: str = "fp32") -> LatencyRecord:  # fmt: skip
        import onnxruntime as ort

        from compress.runtime import OrtModel

        def load() -> Callable[[], object]:
            session = OrtModel(artifact)
            return lambda: session.scores(inputs)

        return timed(
            self,
            load,
            inputs,
            settings,
            model=model,
            artifact=str(artifact),
            format="onnx",
            runtime_version=ort.__version__,
            precision=precision,
        )
