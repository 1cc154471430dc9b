"""Targets that run a model's checkpoint in PyTorch: ``cpu-torch-eager`` (the baseline exported
artifacts are compared with) and, on an NVIDIA GPU, ``gpu-torch`` (eager), ``gpu-torch-compiled``
(``torch.compile``) and ``gpu-torch-graphs`` (one CUDA graph replayed per call). They live on the
host side (they run torch) and register into the same target registry as the device targets;
importing this module does not import torch, so ``compress targets`` lists them as absent where
torch or a GPU is missing."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from compress.devices.targets import TARGETS, Availability, Inputs, Target, TimingSettings

TRAIN = "pip install 'edge-compress[train]'"


def _torch_found() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:  # an environment that blocks torch
        return False


class TorchCheckpoint:
    """A checkpoint's model on a device; ``scores(inputs)`` returns numpy scores."""

    def __init__(self, path: Path, device: str, mode: str) -> None:
        import torch

        from compress.models.checkpoint import load_checkpoint

        net, self.info = load_checkpoint(path)
        self.net = net.to(device).eval()
        self.device, self.mode = device, mode
        if mode == "compiled":
            self.net = torch.compile(self.net)
        self._graphs: dict[tuple, tuple[Any, dict, Any]] = {}

    def _forward(self, tensors: dict) -> Any:
        import torch

        from compress.models.zoo import scores

        with torch.inference_mode():
            return scores(self.net, self.info, tensors)

    def scores_tensor(self, inputs: Inputs) -> Any:
        """Scores left on the device (synchronized when on a GPU): what a timed call runs."""
        import torch

        from compress.models.zoo import as_tensors

        tensors = {k: v.to(self.device, non_blocking=True) for k, v in as_tensors(inputs).items()}
        out = self._replay(tensors) if self.mode == "graphs" else self._forward(tensors)
        if self.device == "cuda":
            torch.cuda.synchronize()
        return out

    def scores(self, inputs: Inputs) -> Any:
        return self.scores_tensor(inputs).float().cpu().numpy()

    def _replay(self, tensors: dict) -> Any:
        """Capture one CUDA graph per input shape (after warm-up on a side stream, as CUDA
        graph capture requires), then copy inputs into its static buffers and replay it."""
        import torch

        key = tuple((k, tuple(v.shape)) for k, v in sorted(tensors.items()))
        if key not in self._graphs:
            static = {k: v.clone() for k, v in tensors.items()}
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    self._forward(static)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = self._forward(static)
            self._graphs[key] = (graph, static, out)
        graph, static, out = self._graphs[key]
        for k, v in tensors.items():
            static[k].copy_(v)
        graph.replay()
        return out


class TorchTarget(Target):
    runtime, formats = "torch", ("pytorch",)
    device, mode = "cpu", "eager"

    def version(self) -> str:
        return version("torch")

    def open(self, path: Path, settings: TimingSettings) -> Any:
        import torch

        torch.set_num_threads(settings.threads)  # the same thread count as every runtime
        return TorchCheckpoint(path, self.device, self.mode)

    def call(self, session: Any, inputs: Inputs) -> Callable[[], Any]:
        return lambda: session.scores_tensor(inputs)


@TARGETS.register("cpu-torch-eager")
class CpuTorchEager(TorchTarget):
    """A checkpoint in eager PyTorch on the CPU; torch is imported only when it is timed."""

    name, hardware = "cpu-torch-eager", "CPU"

    def availability(self) -> Availability:
        if not _torch_found():
            return Availability(False, f"torch is not installed ({TRAIN})")
        return Availability(True, f"torch {version('torch')}")


class GpuTorch(TorchTarget):
    hardware, device = "NVIDIA GPU", "cuda"
    note = "wall time of a synchronized call, inputs copied to the GPU inside it"

    def availability(self) -> Availability:
        if not _torch_found():
            return Availability(False, f"torch is not installed ({TRAIN})")
        import torch

        if not torch.cuda.is_available():
            build = torch.version.cuda
            why = f"the CUDA {build} build sees no GPU" if build else "this torch is a CPU build"
            return Availability(False, f"torch {torch.__version__}: {why}")
        return Availability(True, f"torch {torch.__version__} on {torch.cuda.get_device_name()}")


@TARGETS.register("gpu-torch")
class GpuTorchEager(GpuTorch):
    name, mode = "gpu-torch", "eager"


@TARGETS.register("gpu-torch-compiled")
class GpuTorchCompiled(GpuTorch):
    name, mode = "gpu-torch-compiled", "compiled"


@TARGETS.register("gpu-torch-graphs")
class GpuTorchGraphs(GpuTorch):
    name, mode = "gpu-torch-graphs", "graphs"
