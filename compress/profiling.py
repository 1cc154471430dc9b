"""The profile stage's steps: prepare each artifact for each target, measure task metrics and
top operators once per prepared artifact, time everything of one batch size together, check
the profiler itself, add roofline estimates on request."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from compress.devices.latency import LatencyRecord
from compress.devices.targets import TARGETS, Target, TimingSettings, time_together
from compress.errors import CompressError

CHUNK = 10  # calls per chunk of the trust check's bare loop

if TYPE_CHECKING:
    from compress.pipeline.stage import StageContext
    from compress.stages.profile import ProfileConfig, Ready


def prepare_all(ctx: StageContext, cfg: ProfileConfig, targets: list[Target],
                notes: list[str]) -> list[Ready]:  # fmt: skip
    """Each target's prepared artifacts, with metrics and operators; a target that refuses an
    artifact (an NPU without the operators it needs) is noted, not fatal."""
    from compress.stages.profile import Ready

    ready = []
    for target in targets:
        for path, model, precision in _runnable(ctx, target):
            workdir = ctx.stage_dir / target.name / model
            workdir.mkdir(parents=True, exist_ok=True)
            try:
                prepared = target.prepare(path, precision, workdir, lambda: _calibration(ctx, cfg))
            except CompressError as e:
                notes.append(f"target {target.name}: {model} not run: {e}")
                ctx.log.info(f"  {notes[-1]}")
                continue
            if prepared.note:
                notes.append(f"target {target.name}: {model}: {prepared.note}")
            item = Ready(target, prepared, model)
            if "pytorch" not in target.formats:
                _describe(ctx, cfg, item)
                notes += _against_reference(target.name, item)
            ready.append(item)
    return ready


def _against_reference(target: str, item: Ready) -> list[str]:
    """The NPU's arithmetic against the CPU EP's on the very same quantized model."""
    if not item.metrics or not item.reference_metrics:
        return []
    return [f"{item.model} on {target}: {name} {value:.4f} as {target} computes it, "
            f"{item.reference_metrics[name]:.4f} for the same quantized model on cpu-ort "
            f"(difference {value - item.reference_metrics[name]:+.4f})"
            for name, value in item.metrics.items() if name in item.reference_metrics]


def _runnable(ctx: StageContext, target: Target) -> list[tuple]:
    """(file, model name, precision) of everything this target can run."""
    found = [(ctx.path(e.path), e.model, e.precision) for e in ctx.artifacts.exports
             if e.format in target.formats]  # fmt: skip
    if "pytorch" in target.formats:
        found += [(ctx.path(m.checkpoint), m.name, m.precision) for m in ctx.artifacts.models]
    return found


def _calibration(ctx: StageContext, cfg: ProfileConfig) -> Iterator[dict[str, np.ndarray]]:
    """Real training inputs, in batches of 32, for a target that quantizes (npu-qnn)."""
    splits = ctx.data()
    n = min(cfg.qnn.calibration_samples, len(splits.train))
    for start in range(0, n, 32):
        yield splits.task.batch(splits.train.x, np.arange(start, min(start + 32, n)))


def _describe(ctx: StageContext, cfg: ProfileConfig, item: Ready) -> None:
    """Task metrics of the prepared artifact in its runtime (and of the model it was compiled
    from, on cpu-ort: int8 on the CPU EP and on the NPU can differ), and its top operators."""
    from compress.devices.target_qnn import rows_of
    from compress.stages.profile import SMOKE_EVAL_ROWS, real_batch

    settings = TimingSettings(threads=cfg.threads, inter_op_threads=cfg.inter_op_threads)
    splits = ctx.data()
    test = splits.test
    cap = SMOKE_EVAL_ROWS if ctx.smoke else cfg.accuracy_samples
    if cap is not None and cap < len(test):  # the first rows: every target sees the same ones
        test = test.take(np.arange(cap))
    fixed = getattr(item.target, "fixed_batch", None)
    if cfg.accuracy:
        session = item.target.open(item.prepared.path, settings)
        scores = rows_of(session.scores, fixed) if fixed else session.scores
        item.metrics = splits.task.evaluate(scores, test, ctx.recipe.data.eval_batch_size)
        if item.prepared.reference is not None and item.prepared.format == "qnn-context":
            reference = TARGETS.get("cpu-ort")().open(item.prepared.reference, settings)
            item.reference_metrics = splits.task.evaluate(
                rows_of(reference.scores, fixed or 1), test, ctx.recipe.data.eval_batch_size)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in item.metrics.items())
        if item.reference_metrics:
            shown += "; the same QDQ model on cpu-ort: " + ", ".join(
                f"{k} {v:.4f}" for k, v in item.reference_metrics.items())  # fmt: skip
        ctx.log.info(f"  {item.model} on {item.target.name}: {shown}")
    if cfg.operators:
        inputs = real_batch(ctx, fixed or 1)
        workdir = ctx.stage_dir / item.target.name / item.model
        item.operators = item.target.operators(item.prepared.path, inputs, settings, workdir)


def measure_ready(ctx: StageContext, ready: list[Ready], batch: int,
                  settings: TimingSettings) -> list[LatencyRecord]:  # fmt: skip
    """Everything that runs this batch size, timed together in interleaved rounds."""
    from compress.stages.profile import real_batch, relative

    if not ready:
        return []
    inputs = real_batch(ctx, batch)
    contenders = [r.target.contender(r.prepared, r.model, inputs, settings) for r in ready]
    records = time_together(contenders, settings, group=f"batch {batch}")
    out = []
    for item, record in zip(ready, records, strict=True):
        artifact = "pytorch-eager" if item.prepared.format == "pytorch-eager" else \
            relative(ctx, item.prepared.path)  # fmt: skip
        out.append(record.model_copy(update={
            "artifact": artifact, "metrics": item.metrics, "operators": item.operators,
            "metrics_reference": item.reference_metrics,
        }))  # fmt: skip
    return out


def trust(ctx: StageContext, ready: list[Ready], settings: TimingSettings) -> list[str]:
    """The profiler checked against itself: a student's cpu-ort artifact at batch 1 profiled
    five times (spread of the five medians), each time followed by a bare ``session.run`` loop
    of as many calls, timed ten calls at a time. The harness's overhead compares like with
    like: the median over chunks of ten consecutive calls of the mean call, harness against
    bare loop (a median resists the bursts of a shared machine; a mean would not)."""
    from compress.stages.profile import real_batch

    on_ort = [r for r in ready if r.target.name == "cpu-ort"]
    teacher = ctx.artifacts.teacher().name
    item = next((r for r in on_ort if r.model != teacher), on_ort[0] if on_ort else None)
    if item is None:
        return ["profiler trust check: no cpu-ort artifact to check it on"]
    inputs = real_batch(ctx, 1)
    session = item.target.open(item.prepared.path, settings)
    medians, overheads = [], []
    for _ in range(5):
        c = item.target.contender(item.prepared, item.model, inputs, settings)
        record = time_together([c], settings)[0]
        bare = []
        for _ in range(record.iterations // CHUNK):
            start = time.perf_counter_ns()
            for _ in range(CHUNK):
                session.scores(inputs)
            bare.append((time.perf_counter_ns() - start) / 1e6 / CHUNK)
        timed = [statistics.fmean(record.samples_ms[i : i + CHUNK])
                 for i in range(0, len(record.samples_ms) - CHUNK + 1, CHUNK)]  # fmt: skip
        medians.append(record.median_ms)
        overheads.append(statistics.median(timed) / statistics.median(bare) - 1)
    spread = (max(medians) - min(medians)) / statistics.median(medians)
    overhead = statistics.median(overheads)
    shown = ", ".join(f"{m:.4f}" for m in medians)
    verdict = "PASS" if spread <= 0.03 and abs(overhead) <= 0.03 else "FAIL"
    return [f"profiler trust ({item.model} on cpu-ort, batch 1): five medians {shown} ms, "
            f"spread {spread:.1%} (max−min over median; goal ≤ 3%); harness against a bare "
            f"session.run loop (median of {CHUNK}-call means): {overhead:+.1%} (goal within "
            f"±3%): {verdict}"]


def estimates(ctx: StageContext, cfg: ProfileConfig) -> list[LatencyRecord]:
    """Roofline estimates of every exported model on each requested device description."""
    from compress.devices.roofline import estimate, read_device

    by_name = {m.name: m for m in ctx.artifacts.models}
    shape = list(ctx.data().info.input_shape)
    out = []
    for device in map(read_device, cfg.estimate):
        for e in (e for e in ctx.artifacts.exports if e.model in by_name):
            for batch in cfg.batch_sizes:
                r = estimate(device, model=e.model, flops=by_name[e.model].flops,
                             weight_bytes=e.size_bytes, precision=e.precision, batch=batch,
                             input_shape=[batch, *shape])  # fmt: skip
                out += [r] if r else []
    return out
