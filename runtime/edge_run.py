"""The C++ runtime seen from Python: find ``edge-run``, run an artifact with it, time it.

    outputs = run_cpp("runs/x/03-export/student", {"input": x})     # {"logits": array}
    record = time_cpp("runs/x/03-export/student", {"input": x}, iterations=200)
    with CppSession("runs/x/03-export/student", {"input": x}) as session:
        ms = session.time_call()      # one run, timed inside the C++ process

``time_cpp`` returns a dict with the fields of ``compress.devices.latency.LatencyRecord``
(target ``cpu-ort-cpp``), measured inside the C++ process with the Python profiler's protocol, so
a profile stage can put it beside the Python runtime's record. The binary is ``$EDGE_RUN`` or
``build/cpp/edge-run`` of this source tree (``make cpp`` builds it). ``CppSession`` keeps one
edge-run process loaded, for profilers that interleave models and read each call's own time.
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


def _binary() -> Path:
    binary = edge_run_binary()
    if binary is None:
        raise CompressError(f"edge-run is not built ({BUILT}): run `make cpp`, or set EDGE_RUN")
    return binary


def _input_args(folder: Path, inputs: dict[str, np.ndarray]) -> list[str]:
    """``--input name=folder/inN.npy`` for each input, the files written."""
    args = []
    for i, (name, x) in enumerate(inputs.items()):
        np.save(folder / f"in{i}.npy", np.ascontiguousarray(x))
        args += ["--input", f"{name}={folder / f'in{i}.npy'}"]
    return args


def call_edge_run(artifact: str | Path, inputs: dict[str, np.ndarray], *options: str,
                  outputs: list[str] = ()) -> tuple[str, dict[str, np.ndarray]]:  # fmt: skip
    """Run ``edge-run ARTIFACT`` on ``inputs`` (written as .npy) with ``options``; return its
    stdout and the ``outputs`` it wrote, by name. Its error line becomes a CompressError."""
    with tempfile.TemporaryDirectory(prefix="edge-run-") as tmp:
        args = [str(_binary()), str(artifact), *options, *_input_args(Path(tmp), inputs)]
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


class CppSession:
    """One ``edge-run --serve`` process with the artifact loaded and the inputs read;
    ``time_call()`` runs the model once and returns the time the C++ side measured, in ms."""

    def __init__(self, artifact: str | Path, inputs: dict[str, np.ndarray],
                 threads: int | None = None) -> None:  # fmt: skip
        self._tmp = tempfile.TemporaryDirectory(prefix="edge-run-")
        folder = Path(self._tmp.name)
        args = [str(_binary()), str(artifact), "--serve", *_input_args(folder, inputs)]
        if threads:
            args += ["--threads", str(threads)]
        self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, bufsize=1)  # fmt: skip
        if self._proc.stdout.readline().strip() != "ready":  # loading failed: its error line
            error = self._proc.stderr.read().strip()
            self.close()
            raise CompressError(error or f"edge-run exited with {self._proc.returncode}")

    def time_call(self) -> float:
        self._proc.stdin.write("run\n")
        answer = self._proc.stdout.readline()
        if not answer:
            raise CompressError(self._proc.stderr.read().strip() or "edge-run stopped")
        return float(answer)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
        self._tmp.cleanup()

    def __enter__(self) -> CppSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
