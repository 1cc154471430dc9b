"""Export every model to ONNX, check parity against PyTorch, measure accuracy in ONNX Runtime."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from compress.config import StrictModel
from compress.errors import StageFailed
from compress.pipeline.artifacts import Artifacts, ExportArtifact, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.stages.models import load_model


class ParityConfig(StrictModel):
    """Tolerances of the parity check (numpy.allclose rule) and how many real inputs it uses."""

    atol: float = Field(1e-4, ge=0, description="Absolute tolerance.")
    rtol: float = Field(1e-3, ge=0, description="Relative tolerance.")
    samples: int = Field(256, ge=2, description="Test samples compared (as one batch).")


class ExportConfig(StageConfig):
    """ONNX export of the run's models."""

    kind: Literal["export"] = Field(description="Stage kind.")
    formats: list[Literal["onnx"]] = Field(["onnx"], min_length=1, description="Formats to write.")
    opset: int = Field(20, ge=17, le=23, description="ONNX opset of the dynamo exporter.")
    parity: ParityConfig = Field(default_factory=ParityConfig, description="Parity check.")
    models: list[str] | None = Field(None, description="Models to export (default: all).")


@register_stage
class ExportStage(Stage):
    config_model = ExportConfig
    requires = ("models",)
    provides = ("exports",)

    def plan(self, ctx: PlanContext) -> None:
        if self.config.models is not None and not self.config.models:
            raise ctx.error(("models",), "an empty list exports nothing; leave it out for all")

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: ExportConfig = self.config
        chosen = [m for m in ctx.artifacts.models if cfg.models is None or m.name in cfg.models]
        missing = set(cfg.models or ()) - {m.name for m in chosen}
        if missing:
            known = ", ".join(m.name for m in ctx.artifacts.models)
            raise StageFailed(f"export: no model named {sorted(missing)}; the run has {known}")
        return Artifacts(exports=[self._export(ctx, m) for m in chosen])

    def _export(self, ctx: StageContext, artifact: ModelArtifact) -> ExportArtifact:
        from compress.export.checked import export_checked
        from compress.runtime import OrtModel

        cfg: ExportConfig = self.config
        splits = ctx.data()
        path = ctx.stage_dir / f"{artifact.name}.onnx"
        parity = export_checked(load_model(ctx, artifact), splits.test_x[: cfg.parity.samples],
                                path, cfg.opset, cfg.parity.atol, cfg.parity.rtol)  # fmt: skip
        session = OrtModel(path)
        acc = session.accuracy(splits.test_x.numpy(), splits.test_y.numpy().astype(np.int64),
                               ctx.recipe.data.eval_batch_size)  # fmt: skip
        ctx.log.info(f"  {path.name}: parity max abs {parity['max_abs_error']:.2g}, "
                     f"accuracy (onnxruntime) {acc:.4f}")  # fmt: skip
        return ExportArtifact(
            model=artifact.name, format="onnx", path=ctx.rel(path), size_bytes=path.stat().st_size,
            runtime=f"onnxruntime {session.version}", accuracy=acc, parity=parity,
        )  # fmt: skip
