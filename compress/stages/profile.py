"""Time every exported artifact on every requested target, and the teacher in eager PyTorch.

Each target first prepares what it runs from the exported artifact (an OpenVINO IR, a QNN
context binary for a named Snapdragon, a TensorRT engine) inside this stage's folder. Then, per
batch size, everything is timed *together* in interleaved rounds, so the ratios the report
shows (student against teacher, one target against another) come from the same minutes of the
same machine. Each prepared artifact's task metrics are measured in its own runtime on the test
split, and its top operators are profiled where the runtime reports them. Every batch is real
test inputs made by the task, so text models are timed on real sentence lengths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from compress import eager_target  # noqa: F401  (registers cpu-torch-eager and gpu-torch*)
from compress.config import StrictModel
from compress.devices.latency import LatencyRecord
from compress.devices.targets import TARGETS, Prepared, Target, TimingSettings
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage

SMOKE_TIMING = TimingSettings(warmup=2, iterations=10, max_seconds=1.0, min_samples=10, rounds=2)
SMOKE_EVAL_ROWS = 128


class QnnConfig(StrictModel):
    """How ``npu-qnn`` compiles for the NPU."""

    soc: Literal["SM8550", "SM8650", "SM8750", "SM8850"] = Field(
        "SM8650", description="Snapdragon SoC the context binary is compiled for.")
    allow_cpu_fallback: bool = Field(
        False, description="Run operators the NPU cannot take on the CPU (default: refuse).")
    calibration_samples: int = Field(
        256, ge=1, le=100_000, description="Training inputs that calibrate an fp32 model's "
        "uint8 quantization for the NPU.")  # fmt: skip


class ProfileConfig(StageConfig):
    """Latency on targets, with the schema of DESIGN.md."""

    kind: Literal["profile"] = Field(description="Stage kind.")
    targets: list[str] = Field(["cpu-ort"], min_length=1, description="Target names.")
    batch_sizes: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        [1, 64], min_length=1, description="Batch sizes to time (1 to 65536)."
    )
    warmup: int = Field(20, ge=0, le=10_000, description="Untimed runs before timing.")
    iterations: int = Field(200, ge=5, le=100_000, description="Timed runs per measurement.")
    max_seconds: float = Field(
        20.0, gt=0, le=3600, description="Cap on one measurement's timed loop."
    )
    cv_threshold: float = Field(0.15, gt=0, description="Flag unstable above this CV.")
    min_samples: int = Field(
        30, ge=1, le=100_000, description="Flag a measurement with fewer timed samples.")
    rounds: int = Field(
        10, ge=1, le=10_000, description="Interleaved rounds (A, B, A, B, ...) per batch size.")
    threads: int = Field(1, ge=1, le=1024, description="Intra-op threads of every runtime.")
    inter_op_threads: int = Field(1, ge=1, le=1024, description="Inter-op threads, likewise.")
    teacher_eager: bool = Field(
        True, description="Also time the teacher in eager PyTorch (the speed-up goal's baseline)."
    )
    accuracy: bool = Field(
        True, description="Measure each prepared artifact's task metrics in its target's runtime.")
    accuracy_samples: int | None = Field(
        None, ge=1, description="Measure those metrics on the first N test examples only "
        "(default: all); an emulator is slow.")  # fmt: skip
    operators: bool = Field(True, description="Profile the top operators where runtimes can.")
    qnn: QnnConfig = Field(default_factory=QnnConfig, description="npu-qnn compilation.")
    estimate: list[str] = Field(
        [], description="Device descriptions (devices/hardware/*.json) to print roofline "
        "estimates for, labelled estimated.")  # fmt: skip
    trust_check: bool = Field(
        False, description="Profile the first cpu-ort artifact 5 times and a bare session.run "
        "loop beside it: the profiler's own spread and overhead.")  # fmt: skip

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in TARGETS:  # a ValueError, so the message gets the file and line
                raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS.names())}")
        return names

    @field_validator("estimate")
    @classmethod
    def _known_devices(cls, names: list[str]) -> list[str]:
        from compress.devices.roofline import known_devices

        for name in names:
            if name not in known_devices():
                raise ValueError(f"no device description {name!r}; known: "
                                 f"{', '.join(known_devices())}")  # fmt: skip
        return names


@dataclass
class Ready:
    """A target and one thing prepared for it."""

    target: Target
    prepared: Prepared
    model: str
    metrics: dict[str, float] | None = None
    reference_metrics: dict[str, float] | None = None
    operators: list[dict] | None = None

    def accepts(self, batch: int) -> bool:
        fixed = getattr(self.target, "fixed_batch", None)
        return fixed is None or fixed == batch


@register_stage
class ProfileStage(Stage):
    config_model = ProfileConfig
    requires = ("exports",)
    provides = ("latency",)

    def plan(self, ctx: PlanContext) -> None:
        """A target or a batch size listed twice would be timed twice, as two records; an
        export made after this stage, with no profile stage after it, would never be timed."""
        for field in ("targets", "batch_sizes"):
            values = getattr(self.config, field)
            for i, value in enumerate(values):
                if value in values[:i]:
                    what = "target" if field == "targets" else "batch size"
                    shown = repr(value) if field == "targets" else value
                    raise ctx.error((field, i), f"{what} {shown} is listed twice")
        ctx.refuse_later("exports", self.kind, "timed")

    def settings(self, ctx: StageContext) -> TimingSettings:
        cfg: ProfileConfig = self.config
        if ctx.smoke:
            return SMOKE_TIMING
        return TimingSettings(cfg.warmup, cfg.iterations, cfg.max_seconds, cfg.cv_threshold,
                              cfg.min_samples, cfg.rounds, cfg.threads, cfg.inter_op_threads)

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.profiling import estimates, measure_ready, prepare_all, trust

        cfg: ProfileConfig = self.config
        settings = self.settings(ctx)
        notes: list[str] = []
        if cfg.accuracy_samples and not ctx.smoke:
            notes.append(f"metrics on targets: the first {cfg.accuracy_samples} test examples")
        ready = prepare_all(ctx, cfg, self._targets(ctx, notes), notes)
        if cfg.teacher_eager and "cpu-torch-eager" not in cfg.targets:
            teacher = ctx.artifacts.teacher()
            eager = TARGETS.get("cpu-torch-eager")()
            path = ctx.path(teacher.checkpoint)
            ready.insert(0, Ready(eager, Prepared(path, "pytorch-eager", teacher.precision),
                                  teacher.name))  # fmt: skip
        records: list[LatencyRecord] = []
        for batch in cfg.batch_sizes:
            records += measure_ready(ctx, [r for r in ready if r.accepts(batch)], batch, settings)
        if cfg.trust_check:
            notes += trust(ctx, ready, settings)
        records += estimates(ctx, cfg)
        for r in records:
            _log(ctx, r)
        return Artifacts(latency=[r.model_dump() for r in records], notes=notes)

    def _targets(self, ctx: StageContext, notes: list[str]) -> list[Target]:
        cfg: ProfileConfig = self.config
        present = []
        for name in cfg.targets:
            target = make_target(name, cfg)
            available = target.availability()
            if not available.present:
                notes.append(f"target {name}: absent ({available.detail}); not measured")
                ctx.log.info(f"  {notes[-1]}")
                continue
            present.append(target)
        return present


def make_target(name: str, cfg: ProfileConfig) -> Target:
    if name == "npu-qnn":
        from compress.devices.target_qnn import NpuQnn

        return NpuQnn(cfg.qnn.soc, cfg.qnn.allow_cpu_fallback)
    return TARGETS.get(name)()


def real_batch(ctx: StageContext, batch: int) -> dict[str, np.ndarray]:
    """Real test inputs, the test split repeated when it is smaller than the batch."""
    splits = ctx.data()
    rows = np.arange(batch) % len(splits.test)
    return splits.task.batch(splits.test.x, rows)


def relative(ctx: StageContext, path: Path) -> str:
    try:
        return ctx.rel(path)
    except ValueError:  # outside the run directory
        return str(path)


def _log(ctx: StageContext, r: LatencyRecord) -> None:
    flags = [f"UNSTABLE (cv {r.cv:.2f})"] if r.unstable else []
    flags += [f"TOO FEW SAMPLES ({r.iterations} < {r.min_samples})"] if r.too_few_samples else []
    flags += ["EMULATOR"] if r.emulated else []
    flags += ["ESTIMATED"] if r.estimated else []
    ctx.log.info(f"  {r.model} on {r.target} batch {r.batch_size}: median {r.median_ms:.4f} ms, "
                 f"p99 {r.p99_ms:.4f} ms, cv {r.cv:.2f} {' '.join(flags)}".rstrip())  # fmt: skip

