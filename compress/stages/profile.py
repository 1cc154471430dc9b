"""Time every exported artifact on every requested target, and the teacher in eager PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from pydantic import Field, field_validator

from compress.devices.latency import LatencyRecord, measure
from compress.devices.targets import TARGETS, Target, TimingSettings
from compress.pipeline.artifacts import Artifacts, ExportArtifact
from compress.pipeline.stage import Stage, StageConfig, StageContext, register_stage
from compress.stages.models import load_model

SMOKE_TIMING = TimingSettings(warmup=2, iterations=10, max_seconds=1.0)


class ProfileConfig(StageConfig):
    """Latency on targets, with the schema of DESIGN.md."""

    kind: Literal["profile"] = Field(description="Stage kind.")
    targets: list[str] = Field(["cpu-ort"], min_length=1, description="Target names.")
    batch_sizes: list[int] = Field([1, 64], min_length=1, description="Batch sizes to time.")
    warmup: int = Field(20, ge=0, description="Untimed runs before timing.")
    iterations: int = Field(200, ge=5, description="Timed runs per measurement.")
    max_seconds: float = Field(20.0, gt=0, description="Cap on one measurement's timed loop.")
    cv_threshold: float = Field(0.15, gt=0, description="Flag unstable above this CV.")
    teacher_eager: bool = Field(True, description="Also time the teacher in eager PyTorch.")

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, names: list[str]) -> list[str]:
        for name in names:
            TARGETS.get(name)  # UnknownNameError lists the known targets
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

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: ProfileConfig = self.config
        settings = SMOKE_TIMING if ctx.smoke else TimingSettings(
            cfg.warmup, cfg.iterations, cfg.max_seconds, cfg.cv_threshold)  # fmt: skip
        records: list[LatencyRecord] = []
        notes: list[str] = []
        for name in cfg.targets:
            target = TARGETS.get(name)()
            available = target.availability()
            if not available.present:
                notes.append(f"target {name}: absent ({available.detail}); not measured")
                ctx.log.info(f"  {notes[-1]}")
                continue
            for export in ctx.artifacts.exports:
                if export.format in target.formats:
                    records += [self._time(ctx, target, export, b, settings)
                                for b in cfg.batch_sizes]  # fmt: skip
        if cfg.teacher_eager:
            records += [self._teacher_eager(ctx, b, settings) for b in cfg.batch_sizes]
        return Artifacts(latency=[r.model_dump() for r in records], notes=notes)

    def _time(self, ctx: StageContext, target: Target, export: ExportArtifact, batch: int,
              settings: TimingSettings) -> LatencyRecord:  # fmt: skip
        inputs = _batch(ctx, batch).numpy()
        record = target.profile(ctx.path(export.path), export.model, inputs, settings)
        record = record.model_copy(update={"artifact": export.path})
        _log(ctx, record)
        return record

    def _teacher_eager(
        self, ctx: StageContext, batch: int, settings: TimingSettings
    ) -> LatencyRecord:
        teacher = next(m for m in ctx.artifacts.models if m.role == "teacher")
        inputs = _batch(ctx, batch)

        def load() -> Callable[[], torch.Tensor]:
            model = load_model(ctx, teacher)
            return lambda: _no_grad_call(model, inputs)

        record = measure(
            load, batch_size=batch, warmup=settings.warmup, iterations=settings.iterations,
            max_seconds=settings.max_seconds, cv_threshold=settings.cv_threshold,
            model=teacher.name, artifact="pytorch-eager", format="pytorch-eager",
            target="cpu-torch-eager", runtime="torch", runtime_version=torch.__version__,
            precision="fp32", input_shape=list(inputs.shape), threads=torch.get_num_threads(),
        )  # fmt: skip
        _log(ctx, record)
        return record


def _no_grad_call(model: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(inputs)


def _batch(ctx: StageContext, batch: int) -> torch.Tensor:
    """Real test inputs, repeated when the test split is smaller than the batch."""
    x = ctx.data().test_x
    reps = -(-batch // len(x))
    return x.repeat(reps, 1, 1, 1)[:batch].contiguous() if reps > 1 else x[:batch].contiguous()


def _log(ctx: StageContext, r: LatencyRecord) -> None:
    flag = f" UNSTABLE (cv {r.cv:.2f})" if r.unstable else ""
    ctx.log.info(f"  {r.model} on {r.target} batch {r.batch_size}: median {r.median_ms:.4f} ms, "
                 f"p99 {r.p99_ms:.4f} ms, cv {r.cv:.2f}{flag}")  # fmt: skip
