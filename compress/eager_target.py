"""The ``cpu-torch-eager`` target: a model's checkpoint in eager PyTorch on the CPU, the baseline
exported artifacts are compared with. It lives on the host side (it runs torch), and registers
into the same target registry as the device targets; importing this module does not import
torch, so ``compress targets`` can list it as absent where torch is missing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from compress.devices.latency import LatencyRecord
from compress.devices.targets import TARGETS, Availability, Target, TimingSettings, timed


@TARGETS.register("cpu-torch-eager")
class CpuTorchEager(Target):
    """A checkpoint in eager PyTorch on the CPU; torch is imported only when it is timed."""

    name, hardware, runtime, formats = "cpu-torch-eager", "CPU", "torch", ("pytorch",)

    def availability(self) -> Availability:
        import importlib.util
        from importlib.metadata import version

        try:
            found = importlib.util.find_spec("torch") is not None
        except ImportError:  # an environment that blocks torch
            found = False
        if not found:
            return Availability(
                False, "torch is not installed (pip install 'edge-compress[train]')"
            )
        return Availability(True, f"torch {version('torch')}")

    def profile(self, artifact: Path, model: str, inputs: dict[str, np.ndarray],
                settings: TimingSettings, precision: str = "fp32") -> LatencyRecord:  # fmt: skip
        import torch

        from compress.models.checkpoint import load_checkpoint
        from compress.models.zoo import as_tensors, scores

        tensors = as_tensors(inputs)

        def load() -> Callable[[], object]:
            net, info = load_checkpoint(artifact)

            def run() -> object:
                with torch.inference_mode():
                    return scores(net, info, tensors)

            return run

        return timed(self, load, inputs, settings, model=model, artifact="pytorch-eager",
                     format="pytorch-eager", runtime_version=torch.__version__,
                     precision=precision, threads=torch.get_num_threads())  # fmt: skip
