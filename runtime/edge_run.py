"""The C++ runtime seen from Python: find ``edge-run``, run an artifact with it, time it.

    outputs = run_cpp("runs/x/03-export/student", {"input": x})     # {"logits": array}
    record = time_cpp("runs/x/03-export/student", {"input": x}, iterations=200)

``time_cpp`` returns a dict with the fields of ``compress.devices.latency.LatencyRecord``
(target ``cpu-ort-cpp``), measured inside the C++ process with the Python profiler's protocol, so
a profile stage can put it beside the Python runtime's record. The binary is ``$EDGE_RUN`` or
``build/cpp/edge-run`` of this source tree (``make cpp`` builds it).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError

BUILT = Path(__file__).resolve().parents[1] / "build" / "cpp" / "edge-run"
TIMEOUT_S = 600


def edge_run_binary() -> Path | None:
    """The edge-run executable, or None when it is not built."""
    path = Path(os.environ.get("EDGE_RUN", BUILT))
    return path if path.is_file() and os.access(path, os.X_OK) else None


def call_edge_run(artifact: str | Path, inputs: dict[str, np.ndarray], *options: str,
                  outputs: list[str] = ()) -> tuple[str, dict[str, np.ndarray]]:  # fmt: skip
    """Run ``edge-run ARTIFACT`` on ``inputs`` (written as .npy) with ``options``; return its
    stdout and the ``outputs`` it wrote, by name. Its error line becomes a CompressError."""
    binary = edge_run_binary()
    if binary is None:
        raise CompressError(f"edge-run is not built ({BUILT}): run `make cpp`, or set EDGE_RUN")
    with tempfile.TemporaryDirectory(prefix="edge-run-") as tmp:
        args = [str(binary), str(artifact), *options]
        for i, (name, x) in enumerate(inputs.items()):
            np.save(Path(tmp) / f"in{i}.npy", np.ascontiguousarray(x))
            args += ["--input", f"{name}={Path(tmp) / f'in{i}.npy'}"]
        for i, name in enumerate(outputs):
            args += ["--output", f"{name}={Path(tmp) / f'out{i}.npy'}"]
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
        if done.returncode != 0:
            raise CompressError(done.stderr.strip() or f"edge-run exited with {done.returncode}")
        written = {name: np.load(Path(tmp) / f"out{i}.npy") for i, name in enumerate(outputs)}
    return done.stdout, written


def run_cpp(artifact: str | Path, inputs: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """The artifact's outputs as the C++ runtime computes them (default: every output)."""
    if outputs is None:
        stdout, _ = call_edge_run(artifact, inputs, "--json")
        outputs = [o["name"] for o in json.loads(stdout)["outputs"]]
    return call_edge_run(artifact, inputs, outputs=outputs)[1]


def time_cpp(artifact: str | Path, inputs: dict[str, np.ndarray], *, iterations: int = 200,
             warmup: int = 20, max_seconds: float = 20.0, threads: int | None = None,
             model: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A latency record (LatencyRecord's fields) measured by edge-run on one batch."""
    options = ["--bench", str(iterations), "--warmup", str(warmup),
               "--max-seconds", str(max(1, round(max_seconds))), "--json"]  # fmt: skip
    if threads:
        options += ["--threads", str(threads)]
    stdout, _ = call_edge_run(artifact, inputs, *options)
    record = json.loads(stdout)
    if model is not None:
        record["model"] = model
    return record
