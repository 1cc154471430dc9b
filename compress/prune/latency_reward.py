"""Measured latency for N2N's reward (beyond the paper): fewer parameters is not always faster,
so the reward's size term can be the child's latency on a target instead of, or beside, its
parameter count (``reward.size_ratio``).

Each model is exported to ONNX with the project's exporter into a temporary folder, prepared
for the target as the profile stage prepares an artifact, and timed with the project's timer
(``Target.contender`` + ``time_together``: load, first call, warm-up, then timed calls); the
median call counts. The search times in its own process, one model at a time, after each
iteration's children have trained, so worker processes training children never share the CPU
with a timing. A latency is a property of this machine under its present load: a search that
rewards it is not bit-reproducible, and its numbers are only comparable within one run.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter
from torch import Tensor, nn

from compress.devices.latency import LatencyRecord
from compress.devices.targets import TARGETS, Target, TimingSettings, time_together
from compress.errors import ModelError
from compress.tasks import TaskInfo

# --smoke: a few calls, enough to run every step once.
SMOKE_CALLS = {"warmup": 2, "iterations": 10, "max_seconds": 1.0}


@dataclass
class LatencyProbe:
    """Times models on one target at one batch size of real inputs."""

    target: Target
    settings: TimingSettings
    info: TaskInfo
    inputs: dict[str, np.ndarray]  # one batch by input name, (b, c, h, w)
    mode: str  # "replace" or "join" (``reward.size_ratio``)

    def measure(self, model: nn.Module, name: str) -> LatencyRecord:
        """``model`` exported to ONNX (in a temporary folder), prepared and timed."""
        from compress.export.onnx import export_onnx

        # torch.export specialises a dimension of 1: the export sample has two rows.
        sample = {k: torch.from_numpy(np.repeat(v[:1], 2, axis=0)) for k, v in self.inputs.items()}
        with tempfile.TemporaryDirectory(prefix="n2n-latency-") as tmp:
            path = Path(tmp) / f"{name}.onnx"
            export_onnx(model.eval(), self.info, sample, path)
            prepared = self.target.prepare(path, "fp32", Path(tmp))
            contender = self.target.contender(prepared, name, self.inputs, self.settings)
            return time_together([contender], self.settings)[0]

    def child(self, spec: dict, weights: dict[str, Tensor] | None) -> LatencyRecord:
        """A child built from its spec (the search's JSON), with its trained weights when there
        are (a dense fp32 network's time does not depend on them; they are used anyway)."""
        from compress.models import build_model, model_spec

        with torch.random.fork_rng():  # building initialises weights: leave the search's RNG be
            model = build_model(TypeAdapter(model_spec()).validate_python(spec), self.info)
        if weights:
            model.load_state_dict(weights)
        return self.measure(model, "child")


def make_probe(cfg: Any, info: TaskInfo, inputs: dict[str, np.ndarray],
               smoke: bool) -> LatencyProbe:  # fmt: skip
    """The probe a ``reward.latency`` section asks for; ModelError when its target is absent."""
    target = TARGETS.get(cfg.target)()
    available = target.availability()
    if not available.present:
        raise ModelError(f"reward.latency.target {cfg.target} is absent here "
                         f"({available.detail}); a latency reward needs it present")  # fmt: skip
    calls = SMOKE_CALLS if smoke else {"warmup": cfg.warmup, "iterations": cfg.iterations,
                                       "max_seconds": cfg.max_seconds}  # fmt: skip
    settings = TimingSettings(**calls, min_samples=min(30, calls["iterations"]), rounds=1,
                              threads=cfg.threads, inter_op_threads=1)  # fmt: skip
    batch = {k: np.ascontiguousarray(v[np.arange(cfg.batch_size) % len(v)])
             for k, v in inputs.items()}  # fmt: skip
    return LatencyProbe(target, settings, info, batch, cfg.mode)

