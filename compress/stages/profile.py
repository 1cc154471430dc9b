"""Time every exported artifact on every requested target, and the teacher in eager PyTorch.

Targets run what they can: ``cpu-ort`` the ONNX artifacts, ``cpu-torch-eager`` every model's
checkpoint. Every batch is real test inputs made by the task, so text models are timed on real
sentence lengths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, field_validator

from compress import eager_target  # noqa: F401  (registers cpu-torch-eager)
from compress.devices.latency import LatencyRecord
from compress.devices.targets import TARGETS, Target, TimingSettings
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage

SMOKE_TIMING = TimingSettings(warmup=2, iterations=10, max_seconds=1.0)


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
    teacher_eager: bool = Field(
        True, description="Also time the teacher in eager PyTorch (the speed-up goal's baseline)."
    )

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in TARGETS:  # a ValueError, so the message gets the file and line
                raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS.names())}")
        return names

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        if any(b < 1 for b in sizes):
            raise ValueError("batch sizes must be >= 1")
        return sizes


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

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: ProfileConfig = self.config
        settings = SMOKE_TIMING if ctx.smoke else TimingSettings(
            cfg.warmup, cfg.iterations, cfg.max_seconds, cfg.cv_threshold)  # fmt: skip
        records: list[LatencyRecord] = []
        notes: list[str] = []
        eager = TARGETS.get("cpu-torch-eager")()
        for name in cfg.targets:
            target = TARGETS.get(name)()
            available = target.availability()
            if not available.present:
                notes.append(f"target {name}: absent ({available.detail}); not measured")
                ctx.log.info(f"  {notes[-1]}")
                continue
            for path, model, precision in self._artifacts(ctx, target):
                records += [self._time(ctx, target, path, model, precision, b, settings)
                            for b in cfg.batch_sizes]  # fmt: skip
        if cfg.teacher_eager and "cpu-torch-eager" not in cfg.targets:
            teacher = ctx.artifacts.teacher()
            path = ctx.path(teacher.checkpoint)
            records += [self._time(ctx, eager, path, teacher.name, teacher.precision, b, settings)
                        for b in cfg.batch_sizes]  # fmt: skip
        return Artifacts(latency=[r.model_dump() for r in records], notes=notes)

    def _artifacts(self, ctx: StageContext, target: Target) -> list[tuple[Path, str, str]]:
        """(file, model name, precision) of everything this target can run."""
        found = [(ctx.path(e.path), e.model, e.precision) for e in ctx.artifacts.exports
                 if e.format in target.formats]  # fmt: skip
        if "pytorch" in target.formats:
            found += [(ctx.path(m.checkpoint), m.name, m.precision) for m in ctx.artifacts.models]
        return found

    def _time(self, ctx: StageContext, target: Target, path: Path, model: str, precision: str,
              batch: int, settings: TimingSettings) -> LatencyRecord:  # fmt: skip
        record = target.profile(path, model, real_batch(ctx, batch), settings, precision)
        if record.artifact != "pytorch-eager":
            record = record.model_copy(update={"artifact": ctx.rel(path)})
        _log(ctx, record)
        return record


def real_batch(ctx: StageContext, batch: int) -> dict[str, np.ndarray]:
    """Real test inputs, the test split repeated when it is smaller than the batch."""
    splits = ctx.data()
    rows = np.arange(batch) % len(splits.test)
    return splits.task.batch(splits.test.x, rows)


def _log(ctx: StageContext, r: LatencyRecord) -> None:
    flag = f" UNSTABLE (cv {r.cv:.2f})" if r.unstable else ""
    ctx.log.info(f"  {r.model} on {r.target} batch {r.batch_size}: median {r.median_ms:.4f} ms, "
                 f"p99 {r.p99_ms:.4f} ms, cv {r.cv:.2f}{flag}")  # fmt: skip
