"""One latency schema for every target (DESIGN.md: "Latency report schema") and the timer.

Timing protocol: load (timed) → first inference (timed alone: it pays for lazy initialisation)
→ ``warmup`` untimed runs → up to ``iterations`` timed runs, stopping early after
``max_seconds``. Each sample is one call on one batch, timed with ``perf_counter_ns``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


class LatencyRecord(BaseModel):
    """One (artifact, target, batch size) measurement."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name in the run.")
    artifact: str = Field(description="Artifact path, or 'pytorch-eager'.")
    format: str = Field(description="'onnx', 'pytorch-eager', ...")
    target: str = Field(description="Target name, e.g. 'cpu-ort'.")
    runtime: str = Field(description="Runtime that ran it.")
    runtime_version: str = Field(description="Its version.")
    precision: str = Field(description="'fp32', 'int8', ...")
    batch_size: int = Field(description="Samples per call.")
    input_shape: list[int] = Field(description="Full input shape, batch first.")
    warmup: int = Field(description="Untimed runs after the first inference.")
    iterations: int = Field(description="Timed runs actually made.")
    samples_ms: list[float] = Field(description="Raw per-call latencies, milliseconds.")
    min_ms: float
    mean_ms: float
    median_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cv: float = Field(description="Coefficient of variation: stdev / mean of the samples.")
    cv_threshold: float = Field(description="Above it the measurement is flagged unstable.")
    unstable: bool = Field(description="cv > cv_threshold: do not trust small differences.")
    throughput_per_s: float = Field(description="batch_size / median latency.")
    load_ms: float = Field(description="Time to load the artifact into the runtime.")
    first_inference_ms: float = Field(description="The first call alone.")
    threads: int | None = Field(None, description="Intra-op threads, when set.")
    estimated: bool = Field(False, description="True only for roofline estimates, never measured.")
    ttft_ms: float | None = Field(None, description="Time to first token (generative models).")
    decode_tokens_per_s: float | None = Field(None, description="Decode rate (generative models).")


def summarize(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms, dtype=np.float64)
    mean = float(a.mean())
    stdev = statistics.stdev(samples_ms) if len(samples_ms) > 1 else 0.0
    pct = {p: float(np.percentile(a, p)) for p in (50, 90, 95, 99)}
    return {"min_ms": float(a.min()), "mean_ms": mean, "median_ms": pct[50], "p90_ms": pct[90],
            "p95_ms": pct[95], "p99_ms": pct[99], "max_ms": float(a.max()),
            "cv": stdev / mean if mean > 0 else 0.0}  # fmt: skip


def _ms_since(start_ns: int) -> float:
    return (time.perf_counter_ns() - start_ns) / 1e6


def measure(
    load: Callable[[], Callable[[], Any]], *, batch_size: int, warmup: int, iterations: int,
    max_seconds: float, cv_threshold: float, **identity: Any,
) -> LatencyRecord:  # fmt: skip
    """Time ``load()`` (which returns the function to time) and then that function's calls.
    ``identity`` fills the descriptive fields (model, target, runtime, ...)."""
    start = time.perf_counter_ns()
    run = load()
    load_ms = _ms_since(start)
    start = time.perf_counter_ns()
    run()
    first_ms = _ms_since(start)
    for _ in range(warmup):
        run()
    samples: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(samples) < iterations and (len(samples) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter_ns()
        run()
        samples.append(_ms_since(start))
    stats = summarize(samples)
    return LatencyRecord(
        **identity, batch_size=batch_size, warmup=warmup, iterations=len(samples),
        samples_ms=[round(s, 6) for s in samples], **stats, cv_threshold=cv_threshold,
        unstable=stats["cv"] > cv_threshold,
        throughput_per_s=batch_size / (stats["median_ms"] / 1e3), load_ms=load_ms,
        first_inference_ms=first_ms,
    )  # fmt: skip
