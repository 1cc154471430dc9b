"""The latency schema and timer: statistics, the unstable flag, the timing protocol."""

from __future__ import annotations

import time

import numpy as np
import pytest

from compress.devices.latency import LatencyRecord, measure, summarize


def test_summary_statistics_match_numpy():
    samples = [1.0, 2.0, 3.0, 4.0, 10.0]
    stats = summarize(samples)
    assert stats["min_ms"] == 1.0 and stats["max_ms"] == 10.0
    assert stats["median_ms"] == 3.0 and stats["mean_ms"] == 4.0
    assert stats["p90_ms"] == pytest.approx(np.percentile(samples, 90))
    assert stats["cv"] == pytest.approx(np.std(samples, ddof=1) / 4.0)


def _timed(loader_calls: list, durations: list[float]):
    def load():
        loader_calls.append(1)
        it = iter(durations * 100)
        return lambda: time.sleep(next(it))

    return load


IDENTITY = dict(model="m", artifact="a.onnx", format="onnx", target="t", runtime="r",
                runtime_version="1", precision="fp32", input_shape=[1, 4])  # fmt: skip


def test_measure_follows_the_protocol_and_flags_noise():
    calls: list = []
    noisy = measure(_timed(calls, [0.001, 0.008]), batch_size=1, warmup=3, iterations=10,
                    max_seconds=5, cv_threshold=0.15, **IDENTITY)  # fmt: skip
    assert calls == [1]  # loaded once
    assert noisy.iterations == len(noisy.samples_ms) == 10
    assert noisy.unstable and noisy.cv > 0.5
    assert noisy.min_ms >= 1.0 and noisy.max_ms >= 8.0
    assert noisy.throughput_per_s == pytest.approx(1e3 / noisy.median_ms)


def test_steady_calls_are_not_flagged():
    steady = measure(_timed([], [0.002]), batch_size=4, warmup=1, iterations=10,
                     max_seconds=5, cv_threshold=0.5, **IDENTITY)  # fmt: skip
    assert not steady.unstable
    assert steady.throughput_per_s == pytest.approx(4e3 / steady.median_ms)


def test_time_budget_caps_the_loop_but_keeps_five_samples():
    record = measure(_timed([], [0.02]), batch_size=1, warmup=0, iterations=1000,
                     max_seconds=0.01, cv_threshold=0.15, **IDENTITY)  # fmt: skip
    assert record.iterations == 5


def test_schema_has_every_field_the_design_names():
    names = set(LatencyRecord.model_fields)
    wanted = {"target", "runtime", "runtime_version", "precision", "batch_size", "input_shape",
              "warmup", "iterations", "samples_ms", "min_ms", "mean_ms", "median_ms", "p90_ms",
              "p95_ms", "p99_ms", "max_ms", "cv", "unstable", "throughput_per_s", "load_ms",
              "first_inference_ms", "ttft_ms", "decode_tokens_per_s", "estimated"}  # fmt: skip
    assert wanted <= names
