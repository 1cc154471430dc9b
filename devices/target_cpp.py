"""``cpu-ort-cpp``: the same ONNX artifact through the C++ runtime (``edge-run``, ONNX Runtime's
C++ API on the wheel's own libonnxruntime), so a report shows C++ latency beside Python's.

Timing: one ``edge-run --serve`` process holds the artifact and the inputs; each timed call asks
it to run once and reads back the time it measured around ``Run`` in C++, so Python's pipe and
overhead stay out of the samples. It is timed in the same interleaved rounds as the other
targets. Accuracy runs the C++ runtime on each evaluation batch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from compress.devices.targets import (
    ONNX_FORMATS,
    TARGETS,
    Availability,
    Inputs,
    Target,
    TimingSettings,  # fmt: skip
)


class CppArtifact:
    """An artifact opened for the C++ runtime: ``scores`` runs it on a batch; ``serve`` starts
    the process that timed calls go to."""

    def __init__(self, path: Path, threads: int) -> None:
        self.path, self.threads = path, threads

    def scores(self, inputs: Inputs) -> np.ndarray:
        from compress.runtime.edge_run import run_cpp

        return next(iter(run_cpp(self.path, inputs).values()))


@TARGETS.register("cpu-ort-cpp")
class CpuOrtCpp(Target):
    name, hardware, runtime, formats = "cpu-ort-cpp", "CPU", "onnxruntime-cpp", ONNX_FORMATS
    device_clock = "edge-run"  # each call returns the time edge-run measured around Run
    note = "timed inside edge-run (ONNX Runtime's C++ API), per call"

    def availability(self) -> Availability:
        from compress.runtime.edge_run import BUILT, edge_run_binary

        found = edge_run_binary()
        if found is None:
            return Availability(False, f"edge-run is not built ({BUILT}); run `make cpp`")
        return Availability(True, f"edge-run {found}, onnxruntime {self.version()}")

    def version(self) -> str:
        import onnxruntime as ort

        return ort.__version__

    def open(self, path: Path, settings: TimingSettings) -> Any:
        return CppArtifact(path, settings.threads)

    def call(self, session: Any, inputs: Inputs) -> Callable[[], Any]:
        from compress.runtime.edge_run import CppSession

        return CppSession(session.path, inputs, session.threads).time_call
