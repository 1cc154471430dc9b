"""One latency schema for every target (DESIGN.md: "Latency report schema") and the timer.

Timing protocol, for each model: load (timed) → first inference (timed alone: it pays for lazy
initialisation) → ``warmup`` untimed runs. Then the timed samples, in *interleaved rounds*: when
several models are measured together (a student against its teacher, int8 against fp32), round
r times a few calls of A, then of B, then of A again in round r + 1, so a burst of outside load
hits both sides and their ratio per round stays honest. Each model stops after ``iterations``
samples or once its samples add up to ``max_seconds`` (keeping at least five). Each sample is
one call on one batch, timed with ``perf_counter_ns`` (or, where the target says so, by the
device's own clock, e.g. CUDA events).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from compress.devices.machine import cpu_model, load_average

MIN_KEPT = 5  # a time budget never cuts a measurement below this many samples


class LatencyRecord(BaseModel):
    """One (artifact, target, batch size) measurement."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name in the run.")
    artifact: str = Field(description="Artifact path, or 'pytorch-eager'.")
    format: str = Field(description="'onnx', 'pytorch-eager', 'qnn-context', 'openvino-ir', ...")
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
    min_samples: int = Field(0, description="Fewer timed samples than this are flagged.")
    too_few_samples: bool = Field(False, description="iterations < min_samples.")
    throughput_per_s: float = Field(description="batch_size / median latency.")
    load_ms: float = Field(description="Time to load the artifact into the runtime.")
    first_inference_ms: float = Field(description="The first call alone.")
    threads: int | None = Field(None, description="Intra-op threads, when set.")
    inter_op_threads: int | None = Field(None, description="Inter-op threads, when set.")
    machine: dict[str, Any] | None = Field(
        None, description="Where it was measured, read then: CPU model, cores, load average "
        "(1, 5, 15 min) before and after.",
    )  # fmt: skip
    clock: str = Field("wall", description="'wall' (perf_counter), or the clock a target's call"
                       " reports: 'cuda-events', 'edge-run' (C++ around Run).")
    emulated: bool = Field(False, description="Timed on an emulator: not the device's latency.")
    estimated: bool = Field(False, description="True only for roofline estimates, never measured.")
    group: str | None = Field(None, description="Records timed in the same interleaved rounds.")
    round_medians_ms: list[float] | None = Field(
        None, description="Median of each interleaved round (ratios are taken round by round)."
    )
    metrics: dict[str, float] | None = Field(
        None, description="Task metrics of this artifact computed by this target's runtime."
    )
    metrics_reference: dict[str, float] | None = Field(
        None, description="Task metrics of the model it was compiled from, on cpu-ort.")
    operators: list[dict[str, Any]] | None = Field(
        None, description="Top operators by time: name, op, ms per call, share, where it ran."
    )
    placement: dict[str, Any] | None = Field(
        None, description="Operator placement (NPU n, CPU m), where the runtime reports it."
    )
    note: str | None = Field(None, description="What a reader must know about this record.")
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


@dataclass
class Contender:
    """One model of an interleaved measurement. ``load()`` returns the call to time; with
    ``device_clock`` that call returns its own duration in ms (CUDA events, ...)."""

    load: Callable[[], Callable[[], Any]]
    batch_size: int
    identity: dict[str, Any]
    device_clock: str | None = None  # the clock the call reports, e.g. "cuda-events"
    run: Callable[[], Any] | None = None
    load_ms: float = 0.0
    first_ms: float = 0.0
    samples: list[float] = field(default_factory=list)
    rounds: list[list[float]] = field(default_factory=list)

    def call(self) -> float:
        assert self.run is not None
        start = time.perf_counter_ns()
        result = self.run()
        wall = _ms_since(start)
        return float(result) if self.device_clock else wall


def _prepare(c: Contender, warmup: int) -> None:
    start = time.perf_counter_ns()
    c.run = c.load()
    c.load_ms = _ms_since(start)
    c.first_ms = c.call()
    for _ in range(warmup):
        c.call()


def _done(c: Contender, iterations: int, max_seconds: float) -> bool:
    kept = len(c.samples)
    return kept >= iterations or (kept >= MIN_KEPT and sum(c.samples) >= max_seconds * 1e3)


def measure_group(
    contenders: list[Contender], *, warmup: int, iterations: int, max_seconds: float,
    cv_threshold: float, rounds: int = 1, min_samples: int = 0, group: str | None = None,
) -> list[LatencyRecord]:  # fmt: skip
    """Time every contender in interleaved rounds of ``ceil(iterations / rounds)`` calls each."""
    before = load_average()
    for c in contenders:
        _prepare(c, warmup)
    chunk = max(1, math.ceil(iterations / max(1, rounds)))
    while not all(_done(c, iterations, max_seconds) for c in contenders):
        for c in contenders:
            this_round = []
            while len(this_round) < chunk and not _done(c, iterations, max_seconds):
                this_round.append(c.call())
                c.samples.append(this_round[-1])
            c.rounds.append(this_round)
    where = {"cpu_model": cpu_model(), "cores": _cores(), "load_before": before,
             "load_after": load_average()}  # fmt: skip
    return [_record(c, cv_threshold, min_samples, group if len(contenders) > 1 else None, where)
            for c in contenders]  # fmt: skip


def _cores() -> int | None:
    import os

    return os.cpu_count()


def _record(c: Contender, cv_threshold: float, min_samples: int, group: str | None,
            where: dict[str, Any]) -> LatencyRecord:  # fmt: skip
    stats = summarize(c.samples)
    medians = [statistics.median(r) if r else math.nan for r in c.rounds]
    return LatencyRecord(
        **{"machine": where, **c.identity}, batch_size=c.batch_size,
        iterations=len(c.samples), samples_ms=[round(s, 6) for s in c.samples], **stats,
        cv_threshold=cv_threshold, unstable=stats["cv"] > cv_threshold, min_samples=min_samples,
        too_few_samples=len(c.samples) < min_samples,
        throughput_per_s=c.batch_size / (stats["median_ms"] / 1e3), load_ms=c.load_ms,
        first_inference_ms=c.first_ms, group=group,
        round_medians_ms=[round(m, 6) for m in medians] if group else None,
        clock=c.device_clock or "wall",
    )  # fmt: skip


def measure(
    load: Callable[[], Callable[[], Any]], *, batch_size: int, warmup: int, iterations: int,
    max_seconds: float, cv_threshold: float, min_samples: int = 0, **identity: Any,
) -> LatencyRecord:  # fmt: skip
    """Time ``load()`` (which returns the function to time) and then that function's calls.
    ``identity`` fills the descriptive fields (model, target, runtime, ...)."""
    contender = Contender(load, batch_size, {**identity, "warmup": warmup})
    return measure_group([contender], warmup=warmup, iterations=iterations,
                         max_seconds=max_seconds, cv_threshold=cv_threshold,
                         min_samples=min_samples)[0]  # fmt: skip


def round_ratios(slow: LatencyRecord | dict, fast: LatencyRecord | dict) -> list[float]:
    """slow / fast per interleaved round (both timed in the same rounds), NaN rounds left out."""
    a = _get(slow, "round_medians_ms") or []
    b = _get(fast, "round_medians_ms") or []
    return [x / y for x, y in zip(a, b, strict=False)
            if y and not (math.isnan(x) or math.isnan(y))]  # fmt: skip


def _get(record: LatencyRecord | dict, key: str) -> Any:
    return record.get(key) if isinstance(record, dict) else getattr(record, key)
