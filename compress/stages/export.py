"""Export every model to ONNX, check parity against PyTorch on real test inputs, measure the
task's metrics on the artifact in ONNX Runtime, and write its signature file beside it.

Each artifact gets a folder of its own (``03-export/student/``): the ONNX file, its signature
file and, for text, the tokenizer; copying that folder to a device is all it takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from compress.atomic import write_json, write_text
from compress.config import StrictModel
from compress.errors import StageFailed
from compress.export.formats import (
    EXPORT_FORMATS,
    ExportFormat,
    ExportJob,
    ParityPolicy,
    default_format,
    load_formats,
)
from compress.pipeline.artifacts import Artifacts, ExportArtifact, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.stages.models import load_model


class ParityConfig(StrictModel):
    """How close an artifact must be to its PyTorch model on real test inputs."""

    atol: float = Field(1e-4, ge=0, description="fp32 formats: absolute tolerance.")
    rtol: float = Field(1e-3, ge=0, description="fp32 formats: relative tolerance.")
    steps: float = Field(
        8.0, gt=0, description="Quantized formats: largest error allowed, in quantization steps "
        "of the output (uint8 activations round at every layer, so errors add up to a few).",
    )  # fmt: skip
    min_top1_agreement: float = Field(
        0.9, ge=0, le=1, description="Quantized formats: share of test inputs whose top-1 class "
        "must match the PyTorch model's. Beside it, the class must match wherever the PyTorch "
        "model's lead over its runner-up is wider than twice the allowed error.",
    )  # fmt: skip
    samples: int = Field(
        256, ge=2, le=65536, description="Test samples compared (as one batch)."
    )


class ExportConfig(StageConfig):
    """Export of the run's models, each in the formats that hold it."""

    kind: Literal["export"] = Field(description="Stage kind.")
    formats: list[str] | None = Field(
        None, min_length=1, description="Formats to write each model in, where the format can "
        "hold it: onnx (fp32), onnx-qdq (int8 QDQ), onnx-packed (low-bit codes), onnx-qcdq "
        "(Brevitas models). Default: the one that fits each model's precision (fp32 → onnx, "
        "int8 → onnx-qdq, fewer bits → onnx-packed; the brevitas method's models → onnx-qcdq).",
    )  # fmt: skip
    opset: int = Field(20, ge=17, le=23, description="ONNX opset of the dynamo exporter.")
    parity: ParityConfig = Field(default_factory=ParityConfig, description="Parity check.")
    calibration_samples: int = Field(
        2048, ge=1, le=1_000_000, description="Training examples that calibrate the activation "
        "ranges of int8 formats.",
    )  # fmt: skip
    models: list[str] | None = Field(
        None, description="Models to export, by name or by the recipe's name for a group of "
        "seeds (default: all)."
    )  # fmt: skip


@register_stage
class ExportStage(Stage):
    config_model = ExportConfig
    requires = ("models",)
    provides = ("exports",)

    def plan(self, ctx: PlanContext) -> None:
        wanted = self.config.models
        if wanted is not None and not wanted:
            raise ctx.error(("models",), "an empty list exports nothing; leave it out for all")
        unknown = [n for n in wanted or () if n not in ctx.models]
        if unknown:
            raise ctx.error(("models",), f"no model named {unknown[0]!r} is made before this "
                            f"stage; known: {', '.join(ctx.models)}")  # fmt: skip
        if wanted is None:  # every model: a stage after this one must not make more unseen
            ctx.refuse_later("models", self.kind, "exported")
        self._check_formats(ctx, [n for n in ctx.models if wanted is None or n in wanted])

    def _check_formats(self, ctx: PlanContext, names: list[str]) -> None:
        """Every listed format exists, and every model has at least one that can hold it."""
        load_formats()
        for i, name in enumerate(self.config.formats or ()):
            if name not in EXPORT_FORMATS:
                raise ctx.error(("formats", i), f"unknown export format {name!r}; known: "
                                f"{', '.join(EXPORT_FORMATS.names())}")  # fmt: skip
        for model in names:
            precision = ctx.precisions.get(model, "fp32")
            if not self._formats_for(precision):
                reasons = "; ".join(EXPORT_FORMATS.get(f)().refuses(precision) or ""
                                    for f in self.config.formats or ())  # fmt: skip
                raise ctx.error(("formats",), f"no listed format can hold {model} ({precision} "
                                f"weights): {reasons}")  # fmt: skip

    def _formats_for(self, precision: str, method: str | None = None) -> list[ExportFormat]:
        names = self.config.formats or [default_format(precision, method)]
        formats = [EXPORT_FORMATS.get(n)() for n in names]
        return [f for f in formats if f.refuses(precision) is None]

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: ExportConfig = self.config
        load_formats()
        wanted = set(cfg.models or ())
        chosen = [m for m in ctx.artifacts.models
                  if cfg.models is None or {m.name, m.group} & wanted]  # fmt: skip
        if not chosen:
            raise StageFailed(f"export: none of {cfg.models} is a model of this run")
        return Artifacts(exports=[self._export(ctx, m, f) for m in chosen
                                  for f in self._formats_for(m.precision, method_of(m))])

    def _export(self, ctx: StageContext, artifact: ModelArtifact,
                fmt: ExportFormat) -> ExportArtifact:  # fmt: skip
        from compress.runtime import OrtModel

        job = self._job(ctx, artifact, fmt)
        done = fmt.export(job)
        session = OrtModel(done.path)
        splits = ctx.data()
        metrics = splits.task.evaluate(session.scores, splits.test, ctx.recipe.data.eval_batch_size)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        parity = done.parity
        ctx.log.info(f"  {done.path.name}: parity max abs {parity['max_abs_error']:.2g}, top-1 "
                     f"agreement {parity['top1_agreement']:.4f}; {shown} "
                     "(onnxruntime)")  # fmt: skip
        export = ExportArtifact(
            model=artifact.name, format=fmt.name, precision=done.precision,
            path=ctx.rel(done.path), signature=ctx.rel(signature_path(done.path)),
            size_bytes=done.path.stat().st_size, runtime=f"onnxruntime {session.version}",
            metrics=metrics, parity=parity,
        )  # fmt: skip
        write_signature(ctx, artifact, export)
        return export

    def _job(self, ctx: StageContext, artifact: ModelArtifact, fmt: ExportFormat) -> ExportJob:
        """Everything one format needs to write ``artifact`` into its folder."""
        cfg: ExportConfig = self.config
        splits = ctx.data()
        rows = np.arange(min(cfg.parity.samples, len(splits.test)))
        p = cfg.parity
        return ExportJob(
            model=load_model(ctx, artifact), artifact=artifact, info=splits.info,
            inputs=splits.task.batch(splits.test.x, rows),
            what=f"{len(rows)} test examples of {splits.source}",
            # one folder per model: its files, signatures and tokenizer, all a device needs
            path=ctx.stage_dir / artifact.name / f"{artifact.name}{fmt.suffix}", opset=cfg.opset,
            parity=ParityPolicy(p.atol, p.rtol, p.steps, p.min_top1_agreement),
            run_dir=ctx.run_dir, calibration=lambda: calibration_batches(ctx, cfg),
        )  # fmt: skip


def method_of(model: ModelArtifact) -> str | None:
    """How the model was quantized (its layers decide the format: brevitas → onnx-qcdq)."""
    return model.quantization.method if model.quantization else None


def calibration_batches(ctx: StageContext, cfg: ExportConfig) -> Iterator[dict[str, np.ndarray]]:
    """The first ``calibration_samples`` training examples, in evaluation-sized batches."""
    splits = ctx.data()
    n = min(cfg.calibration_samples, len(splits.train))
    step = ctx.recipe.data.eval_batch_size
    for start in range(0, n, step):
        yield splits.task.batch(splits.train.x, np.arange(start, min(start + step, n)))


def signature_path(artifact: Path) -> Path:
    """``student.qdq.onnx`` → ``student.qdq.signature.json``."""
    return artifact.with_name(artifact.name.removesuffix(".onnx") + ".signature.json")


def write_signature(ctx: StageContext, model: ModelArtifact, export: ExportArtifact) -> None:
    """The artifact's contract beside it; a tokenizer is copied next to it, so the folder alone
    is enough to run it."""
    from compress.pipeline.manifest import git_commit, versions
    from compress.runtime.signature import ArtifactSignature

    splits = ctx.data()
    path = ctx.path(export.path)
    tokenizer = None
    if splits.tokenizer is not None:
        tokenizer = f"{model.name}.tokenizer.json"  # shared by the model's formats
        write_text(path.parent / tokenizer, splits.tokenizer.read_text(encoding="utf-8"))
    meta = ArtifactSignature(
        file=path.name, format=export.format, precision=export.precision, task=splits.task.name,
        signature=splits.info.signature, preprocessing=splits.preprocessing, tokenizer=tokenizer,
        max_length=splits.info.max_length, labels=splits.classes, metrics=export.metrics,
        metric_info=list(splits.task.metrics),
        provenance={"recipe": ctx.recipe.name, "stage": ctx.stage_dir.name, "model": model.name,
                    "parent": model.parent, "transform": model.transform, "seed": model.seed,
                    "git_commit": git_commit(), "versions": versions(),
                    "parity": export.parity},
    )  # fmt: skip
    write_json(ctx.path(export.signature), meta.model_dump(mode="json"))
