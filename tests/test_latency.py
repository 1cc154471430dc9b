"""The latency schema and timer: statistics, the unstable flag, the timing protocol.

The timer is checked against a fake clock that advances only when the timed code "runs", so
every number is exact and nothing depends on how loaded the machine running the tests is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from compress.devices import latency
from compress.devices.latency import LatencyRecord, measure, summarize

IDENTITY = dict(model="m", artifact="a.onnx", format="onnx", target="t", runtime="r",
                runtime_version="1", precision="fp32", input_shape=[1, 4])  # fmt: skip
MS = 1_000_000  # nanoseconds


class FakeClock:
    """Stands in for the ``time`` module inside compress.devices.latency: both of its clocks
    read one counter, which moves only when ``advance`` is called."""

    def __init__(self) -> None:
        self.ns = 10**12  # an arbitrary origin: nothing may assume the clock starts at 0

    def advance(self, ms: float) -> None:
        self.ns += round(ms * MS)

    def perf_counter_ns(self) -> int:
        return self.ns

    def perf_counter(self) -> float:
        return self.ns / 1e9


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(latency, "time", fake)
    return fake


class Model:
    """``load`` takes ``load_ms``; the calls of what it returns take ``calls_ms`` in order (the
    first call, the warmup calls, the timed ones), then ``then_ms`` over and over, as read on
    the fake clock."""

    def __init__(self, clock: FakeClock, load_ms: float, calls_ms: list[float],
                 then_ms: list[float]) -> None:  # fmt: skip
        self.clock, self.load_ms = clock, load_ms
        self.calls_ms, self.then_ms = list(calls_ms), list(then_ms)
        self.loads = self.calls = 0

    def load(self):
        self.loads += 1
        self.clock.advance(self.load_ms)
        return self.run

    def run(self) -> None:
        i, n = self.calls, len(self.calls_ms)
        self.clock.advance(self.calls_ms[i] if i < n else self.then_ms[(i - n) % len(self.then_ms)])
        self.calls += 1


def _measure(model: Model, **kw) -> LatencyRecord:
    args = dict(batch_size=1, warmup=0, iterations=1000, max_seconds=3600.0, cv_threshold=0.15)
    return measure(model.load, **{**args, **kw}, **IDENTITY)


def test_summary_statistics_match_numpy():
    samples = [1.0, 2.0, 3.0, 4.0, 10.0]
    stats = summarize(samples)
    assert stats["min_ms"] == 1.0 and stats["max_ms"] == 10.0
    assert stats["median_ms"] == 3.0 and stats["mean_ms"] == 4.0
    assert stats["p90_ms"] == pytest.approx(np.percentile(samples, 90))
    assert stats["cv"] == pytest.approx(np.std(samples, ddof=1) / 4.0)


def test_every_statistic_is_exact_on_known_samples(clock):
    # load 7 ms; first call 3 ms; two warmup calls of 50 ms; then the five timed calls.
    model = Model(clock, 7.0, [3.0, 50.0, 50.0, 4.0, 1.0, 10.0, 2.0, 3.0], [99.0])
    rec = _measure(model, batch_size=4, warmup=2, iterations=5)
    assert model.loads == 1 and model.calls == 1 + 2 + 5
    assert rec.load_ms == 7.0 and rec.first_inference_ms == 3.0  # each timed alone
    assert rec.samples_ms == [4.0, 1.0, 10.0, 2.0, 3.0]  # in call order, warmup left out
    assert rec.iterations == 5 and rec.warmup == 2 and rec.batch_size == 4
    # By hand, on the sorted samples 1 2 3 4 10 (linear interpolation between ranks):
    assert rec.min_ms == 1.0 and rec.max_ms == 10.0
    assert rec.mean_ms == 4.0 and rec.median_ms == 3.0
    assert rec.p90_ms == pytest.approx(7.6)  # rank 3.6: 4 + 0.6 × (10 − 4)
    assert rec.p95_ms == pytest.approx(8.8)  # rank 3.8
    assert rec.p99_ms == pytest.approx(9.76)  # rank 3.96
    # Sample std: squared deviations 9 + 4 + 1 + 0 + 36 = 50, / (5 − 1) → √12.5; cv = that / 4.
    assert rec.cv == pytest.approx(math.sqrt(12.5) / 4)
    assert rec.throughput_per_s == pytest.approx(4 / 0.003)  # 4 samples per 3 ms median
    assert rec.unstable and rec.cv_threshold == 0.15
    assert rec.model == "m" and rec.target == "t" and not rec.estimated


def test_a_slow_first_call_and_load_stay_out_of_the_samples(clock):
    model = Model(clock, 900.0, [250.0], [2.0])  # lazy initialisation on the first call
    rec = _measure(model, warmup=0, iterations=6)
    assert rec.load_ms == 900.0 and rec.first_inference_ms == 250.0
    assert rec.samples_ms == [2.0] * 6 and rec.max_ms == 2.0


@pytest.mark.parametrize(
    ("threshold", "unstable"), [(0.0, True), (0.52, True), (0.53, False), (1.0, False)]
)  # fmt: skip
def test_unstable_is_cv_strictly_above_the_threshold(clock, threshold, unstable):
    steady = _measure(Model(clock, 1.0, [], [2.0]), iterations=10, cv_threshold=threshold)
    assert steady.cv == 0.0 and not steady.unstable  # cv 0 is never above any threshold
    # Alternating 3 ms / 1 ms, ten calls: mean 2, sample std √(10/9), cv ≈ 0.527.
    noisy = _measure(Model(clock, 1.0, [1.0], [3.0, 1.0]), iterations=10, cv_threshold=threshold)
    assert noisy.samples_ms == [3.0, 1.0] * 5
    assert noisy.cv == pytest.approx(math.sqrt(10 / 9) / 2)
    assert noisy.unstable is unstable
    assert noisy.cv_threshold == threshold


def test_iterations_cap_the_timed_calls(clock):
    model = Model(clock, 1.0, [], [1.0])
    rec = _measure(model, warmup=3, iterations=12, max_seconds=3600.0)
    assert rec.iterations == len(rec.samples_ms) == 12
    assert model.calls == 1 + 3 + 12


def test_time_budget_stops_the_loop(clock):
    # 10 ms calls and a 75 ms budget: calls start at 0, 10, ..., 70 ms, all before the deadline;
    # at 80 ms it has passed. The budget counts from the end of warmup, not from loading.
    model = Model(clock, 500.0, [], [10.0])
    rec = _measure(model, warmup=20, iterations=1000, max_seconds=0.075)
    assert rec.iterations == len(rec.samples_ms) == 8
    assert model.calls == 1 + 20 + 8


@pytest.mark.parametrize("max_seconds", [0.0, 0.001, 0.03])
def test_time_budget_keeps_at_least_five_samples(clock, max_seconds):
    model = Model(clock, 1.0, [], [20.0])
    rec = _measure(model, iterations=1000, max_seconds=max_seconds)
    assert rec.iterations == 5 and rec.samples_ms == [20.0] * 5


def test_fewer_iterations_than_five_are_respected(clock):
    rec = _measure(Model(clock, 1.0, [], [1.0]), iterations=3, max_seconds=0.0)
    assert rec.iterations == 3


def test_measure_runs_on_the_real_clock():
    """No timing assertions, only that the real clock is wired in and the record is whole."""
    calls = []
    rec = measure(lambda: lambda: calls.append(1), batch_size=2, warmup=2, iterations=7,
                  max_seconds=60.0, cv_threshold=0.15, **IDENTITY)  # fmt: skip
    assert len(calls) == 1 + 2 + 7 and rec.iterations == len(rec.samples_ms) == 7
    assert all(s >= 0 for s in rec.samples_ms) and rec.load_ms >= 0 and rec.min_ms <= rec.max_ms
    LatencyRecord.model_validate(rec.model_dump())


def test_schema_has_every_field_the_design_names():
    names = set(LatencyRecord.model_fields)
    wanted = {"target", "runtime", "runtime_version", "precision", "batch_size", "input_shape",
              "warmup", "iterations", "samples_ms", "min_ms", "mean_ms", "median_ms", "p90_ms",
              "p95_ms", "p99_ms", "max_ms", "cv", "unstable", "throughput_per_s", "load_ms",
              "first_inference_ms", "ttft_ms", "decode_tokens_per_s", "estimated"}  # fmt: skip
    assert wanted <= names


def test_interleaved_rounds_alternate_and_record_each_rounds_median(clock):
    """A then B, chunk by chunk: a burst of outside load lands in both sides' same round."""
    from compress.devices.latency import Contender, measure_group, round_ratios

    order = []

    def model(name, ms):
        def run():
            order.append(name)
            clock.advance(ms)

        return Contender(lambda: run, 1, {**IDENTITY, "model": name, "warmup": 0})

    a, b = measure_group([model("A", 4.0), model("B", 2.0)], warmup=0, iterations=6,
                         max_seconds=3600.0, cv_threshold=0.15, rounds=3, min_samples=10,
                         group="g")  # fmt: skip
    assert order == ["A", "B"] + ["A", "A", "B", "B"] * 3  # first calls, then 3 rounds of 2
    assert a.round_medians_ms == [4.0, 4.0, 4.0] and b.group == "g"
    assert round_ratios(a, b) == [2.0, 2.0, 2.0]
    assert a.too_few_samples and a.iterations == 6 and a.min_samples == 10  # 6 < 10: flagged
    assert a.machine["cores"] and "load_after" in a.machine


def test_a_single_measurement_is_not_flagged_when_it_meets_the_floor(clock):
    rec = _measure(Model(clock, 1.0, [], [1.0]), iterations=30, min_samples=30)
    assert not rec.too_few_samples and rec.group is None and rec.round_medians_ms is None
