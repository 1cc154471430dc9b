"""Targets: a device plus a runtime plus a precision. Each knows whether it is present here, how
to prepare an artifact for itself (an OpenVINO IR, a QNN context binary, a TensorRT engine), how
to open it in its runtime, and how to time it. Absent hardware is reported absent, never faked.

The targets themselves live beside this file (``target_*.py``) and register on import; the
host-side ones that run torch (``cpu-torch-eager``, ``gpu-torch*``) in compress/eager_target.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compress.devices.latency import Contender, LatencyRecord, measure_group
from compress.registry import Registry
from compress.runtime.providers import Threads

Inputs = dict[str, np.ndarray]


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
    min_samples: int = 30  # fewer timed samples than this: flagged, whatever the CV
    rounds: int = 10  # interleaved rounds when models are timed together
    threads: int = 1  # intra-op threads, the same for every runtime and both sides
    inter_op_threads: int = 1

    @property
    def thread_counts(self) -> Threads:
        return Threads(self.threads, self.inter_op_threads)


@dataclass(frozen=True)
class Prepared:
    """What a target runs: the artifact itself or a file made from it for this target."""

    path: Path
    format: str
    precision: str
    placement: dict[str, Any] | None = None
    reference: Path | None = None  # the model a prepared binary was compiled from (e.g. QDQ)
    note: str | None = None


class Target(ABC):
    name: str
    hardware: str
    runtime: str
    formats: tuple[str, ...]  # artifact formats it takes: "onnx", "pytorch" (a checkpoint)
    emulated: bool = False  # its timings are an emulator's, never the device's latency
    # its timed call returns the duration its own clock measured, named here; None: wall clock
    device_clock: str | None = None
    note: str | None = None  # a fact every record of this target carries

    @abstractmethod
    def availability(self) -> Availability: ...

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def open(self, path: Path, settings: TimingSettings) -> Any:
        """The prepared artifact in this target's runtime: an object with ``scores(inputs)``."""

    def prepare(self, artifact: Path, precision: str, workdir: Path,
                calibration: Callable[[], Iterable[Inputs]] | None = None) -> Prepared:  # fmt: skip
        """Make what this target runs from an exported artifact (default: the artifact)."""
        return Prepared(artifact, artifact.suffix.lstrip(".") or "onnx", precision)

    def operators(self, path: Path, inputs: Inputs, settings: TimingSettings,
                  workdir: Path) -> list[dict] | None:  # fmt: skip
        """Top operators by time, where the runtime reports them."""
        return None

    def call(self, session: Any, inputs: Inputs) -> Callable[[], Any]:
        return lambda: session.scores(inputs)

    def contender(self, prepared: Prepared, model: str, inputs: Inputs,
                  settings: TimingSettings, **extra: Any) -> Contender:  # fmt: skip
        first = next(iter(inputs.values()))
        identity = dict(
            model=model, artifact=str(prepared.path), format=prepared.format, target=self.name,
            runtime=self.runtime, runtime_version=self.version(), precision=prepared.precision,
            input_shape=list(first.shape), warmup=settings.warmup, threads=settings.threads,
            inter_op_threads=settings.inter_op_threads, emulated=self.emulated,
            placement=prepared.placement, note=self.note,
        )  # fmt: skip
        return Contender(lambda: self.call(self.open(prepared.path, settings), inputs),
                         len(first), {**identity, **extra}, self.device_clock)  # fmt: skip

    def profile(self, artifact: Path, model: str, inputs: Inputs, settings: TimingSettings,
                precision: str = "fp32") -> LatencyRecord:  # fmt: skip
        """Time ``artifact`` as it is (no preparation) on one batch of inputs by name."""
        fmt = "pytorch-eager" if "pytorch" in self.formats else "onnx"
        prepared = Prepared(artifact, fmt, precision)
        return time_together([self.contender(prepared, model, inputs, settings)], settings)[0]


def time_together(contenders: list[Contender], settings: TimingSettings,
                  group: str | None = None) -> list[LatencyRecord]:  # fmt: skip
    """Time ``contenders`` in interleaved rounds (one contender: plain timing)."""
    return measure_group(
        contenders, warmup=settings.warmup, iterations=settings.iterations,
        max_seconds=settings.max_seconds, cv_threshold=settings.cv_threshold,
        rounds=settings.rounds if len(contenders) > 1 else 1, min_samples=settings.min_samples,
        group=group,
    )  # fmt: skip


TARGETS: Registry[Target] = Registry("target")
# The ONNX files the export stage writes for a classifier: fp32, int8 QDQ, packed low-bit codes,
# Brevitas QCDQ.
ONNX_FORMATS = ("onnx", "onnx-qdq", "onnx-packed", "onnx-qcdq")


@TARGETS.register("cpu-ort")
class CpuOrt(Target):
    name, hardware, runtime, formats = "cpu-ort", "CPU", "onnxruntime", ONNX_FORMATS

    def availability(self) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError:
            return Availability(False, "onnxruntime is not installed")
        if "CPUExecutionProvider" not in ort.get_available_providers():
            return Availability(False, "onnxruntime has no CPUExecutionProvider")
        return Availability(True, f"onnxruntime {ort.__version__}")

    def version(self) -> str:
        import onnxruntime as ort

        return ort.__version__

    def open(self, path: Path, settings: TimingSettings) -> Any:
        from compress.runtime.providers import SessionModel, open_ort

        return SessionModel(open_ort(path, "cpu", threads=settings.thread_counts))

    def operators(self, path: Path, inputs: Inputs, settings: TimingSettings,
                  workdir: Path) -> list[dict] | None:  # fmt: skip
        from compress.devices.operators import profile_ort
        from compress.runtime.providers import open_ort

        def opened(prefix: str) -> Any:
            return open_ort(path, "cpu", threads=settings.thread_counts, profile_prefix=prefix)

        return profile_ort(opened, inputs, workdir / f"ort-profile-{path.stem}", calls=20)


# Every other target registers itself on import (after the base classes above exist).
from compress.devices import (  # noqa: E402, F401, I001
    target_cpp,
    target_gpu,
    target_openvino,
    target_qnn,
)
