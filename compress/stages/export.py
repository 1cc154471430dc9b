"""Export every model to ONNX, check parity against PyTorch on real test inputs, measure the
task's metrics on the artifact in ONNX Runtime, and write its signature file beside it.

Each artifact gets a folder of its own (``03-export/student/``): the ONNX file, its signature
file and, for text, the tokenizer; copying that folder to a device is all it takes."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from compress.atomic import write_json, write_text
from compress.config import StrictModel
from compress.errors import StageFailed
from compress.pipeline.artifacts import Artifacts, ExportArtifact, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.stages.models import load_model


class ParityConfig(StrictModel):
    """Tolerances of the parity check (numpy.allclose rule) and how many real inputs it uses."""

    atol: float = Field(1e-4, ge=0, description="Absolute tolerance.")
    rtol: float = Field(1e-3, ge=0, description="Relative tolerance.")
    samples: int = Field(
        256, ge=2, le=65536, description="Test samples compared (as one batch)."
    )


class ExportConfig(StageConfig):
    """ONNX export of the run's models."""

    kind: Literal["export"] = Field(description="Stage kind.")
    formats: list[Literal["onnx"]] = Field(["onnx"], min_length=1, description="Formats to write.")
    opset: int = Field(20, ge=17, le=23, description="ONNX opset of the dynamo exporter.")
    parity: ParityConfig = Field(default_factory=ParityConfig, description="Parity check.")
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

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: ExportConfig = self.config
        wanted = set(cfg.models or ())
        chosen = [m for m in ctx.artifacts.models
                  if cfg.models is None or {m.name, m.group} & wanted]  # fmt: skip
        if not chosen:
            raise StageFailed(f"export: none of {cfg.models} is a model of this run")
        return Artifacts(exports=[self._export(ctx, m) for m in chosen])

    def _export(self, ctx: StageContext, artifact: ModelArtifact) -> ExportArtifact:
        from compress.export.checked import export_checked
        from compress.runtime import OrtModel

        cfg: ExportConfig = self.config
        splits = ctx.data()
        # one folder per artifact: the file, its signature and tokenizer, all a device needs
        path = ctx.stage_dir / artifact.name / f"{artifact.name}.onnx"
        rows = np.arange(min(cfg.parity.samples, len(splits.test)))
        inputs = splits.task.batch(splits.test.x, rows)
        what = f"{len(rows)} test examples of {splits.source}"
        parity = export_checked(load_model(ctx, artifact), splits.info, inputs, path, cfg.opset,
                                cfg.parity.atol, cfg.parity.rtol, what)  # fmt: skip
        session = OrtModel(path)
        metrics = splits.task.evaluate(session.scores, splits.test, ctx.recipe.data.eval_batch_size)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        agreement = parity["top1_agreement"]
        ctx.log.info(f"  {path.name}: parity max abs {parity['max_abs_error']:.2g}, top-1 "
                     f"agreement {agreement:.4f}; {shown} (onnxruntime)")  # fmt: skip
        export = ExportArtifact(
            model=artifact.name, format="onnx", precision=artifact.precision, path=ctx.rel(path),
            signature=ctx.rel(path.with_suffix(".signature.json")),
            size_bytes=path.stat().st_size, runtime=f"onnxruntime {session.version}",
            metrics=metrics, parity=parity,
        )  # fmt: skip
        write_signature(ctx, artifact, export)
        return export


def write_signature(ctx: StageContext, model: ModelArtifact, export: ExportArtifact) -> None:
    """The artifact's contract beside it; a tokenizer is copied next to it, so the folder alone
    is enough to run it."""
    from compress.pipeline.manifest import git_commit, versions
    from compress.runtime.signature import ArtifactSignature

    splits = ctx.data()
    path = ctx.path(export.path)
    tokenizer = None
    if splits.tokenizer is not None:
        tokenizer = f"{model.name}.tokenizer.json"
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
