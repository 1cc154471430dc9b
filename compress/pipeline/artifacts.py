"""What stages hand each other. Paths are relative to the run directory, so a run can be moved."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quantization(Record):
    """How a model's weights were quantized, for the formats that store them as codes."""

    method: str = Field(description="'ptq', 'qat', 'qkd', 'dq' or 'brevitas'.")
    bits: int = Field(description="Bits per quantized weight.")
    bucket_size: int = Field(description="Weights per bucket that share one scale.")
    codes: str | None = Field(description="Safetensors file of the codes, relative to the run "
                              "directory; None when the export calibrates (8-bit PTQ).")
    tensors: list[str] = Field(description="Quantized parameters; the others stay fp32.")


class ModelArtifact(Record):
    """A trained PyTorch model: safetensors weights + architecture description."""

    name: str = Field(description="Unique name in the run: 'teacher', 'student', 'student@s1'.")
    group: str = Field(description="The recipe's name for it; the same for every seed's copy.")
    role: str = Field(description="Its part in the run: 'teacher', 'student', 'baseline', ...")
    seed: int | None = Field(None, description="Seed of its training, when the run repeats seeds.")
    parent: str | None = Field(None, description="The model it was made from (lineage).")
    transform: str = Field(description="What made it: 'trained', 'loaded', 'distill', ...")
    precision: str = Field("fp32", description="Precision of its weights: 'fp32', 'int8', ...")
    quantization: Quantization | None = Field(None, description="Its quantization, if any.")
    checkpoint: str = Field(description="Safetensors file, relative to the run directory.")
    arch: str = Field(description="Architecture name or python builder.")
    params: int = Field(description="Number of parameters.")
    flops: int = Field(description="FLOPs per sample: convs and matmuls, multiply-add = 2.")
    metrics_pytorch: dict[str, float] = Field(description="Task metrics of the PyTorch model.")
    val_metrics: dict[str, float] | None = Field(None, description="Validation task metrics.")


class ExportArtifact(Record):
    """An exported artifact, checked against its PyTorch model and measured in its runtime."""

    model: str = Field(description="Name of the ModelArtifact it came from.")
    format: str = Field(description="'onnx', ...")
    precision: str = Field("fp32", description="Precision of the artifact's arithmetic.")
    path: str = Field(description="File, relative to the run directory.")
    signature: str = Field(description="Its signature file, relative to the run directory.")
    size_bytes: int = Field(description="File size.")
    runtime: str = Field(description="Runtime and version the metrics were measured in.")
    metrics: dict[str, float] = Field(description="Task metrics measured on the artifact.")
    parity: dict[str, Any] = Field(description="Max abs / rel error and top-1 agreement against "
                                   "PyTorch, tolerances, the inputs used.")  # fmt: skip


class StageTable(Record):
    """A table a stage adds to the report: cells are numbers or text, None is an empty cell."""

    caption: str = Field(description="What the table shows, one sentence.")
    columns: list[str] = Field(description="Column headers.")
    rows: list[list[float | int | str | None]] = Field(description="One list of cells per row.")


class StageFigure(Record):
    """A PNG plot a stage made, embedded in report.html and linked from report.md."""

    path: str = Field(description="PNG file, relative to the run directory.")
    caption: str = Field(description="What the plot shows, one sentence.")


class StageGoal(Record):
    """A goal a stage judged itself (a search's speed-up over another), counted in the report's
    Goals table beside the report's own."""

    name: str = Field(description="Short name: 'n2n-1worker: speed-up'.")
    description: str = Field(description="What is claimed, one sentence.")
    measured: float | None = Field(description="The measured value; None when not measured.")
    target: float = Field(description="The value the goal asks for.")
    unit: str = Field("", description="Unit of measured and target: '×', '%', 'points'.")
    passed: bool = Field(description="Whether it was met; False when not measured.")
    reason: str | None = Field(None, description="Why it could not be judged, if so.")


class StageSection(Record):
    """What one stage has to tell the report's readers beyond models, exports and latency: an N2N
    search log, an anytime ensemble's curve, how a distributed stage ran."""

    stage: str = Field(description="Name of the stage that wrote it.")
    title: str = Field(description="Section heading.")
    text: list[str] = Field(default_factory=list, description="Paragraphs, plain text.")
    tables: list[StageTable] = Field(default_factory=list, description="Its tables.")
    figures: list[StageFigure] = Field(default_factory=list, description="Its plots.")
    goals: list[StageGoal] = Field(default_factory=list, description="Goals it judged.")


class Artifacts(Record):
    """Everything produced so far; each stage returns the part it added."""

    dataset: dict[str, Any] | None = Field(None, description="Summary of the data splits.")
    task: dict[str, Any] | None = Field(
        None, description="The task: name, metrics (name, unit, direction, scale), signature."
    )
    models: list[ModelArtifact] = Field(default_factory=list)
    exports: list[ExportArtifact] = Field(default_factory=list)
    latency: list[dict[str, Any]] = Field(default_factory=list, description="LatencyRecords.")
    reports: list[str] = Field(default_factory=list, description="Report files written.")
    notes: list[str] = Field(default_factory=list, description="Facts for the report's readers.")
    sections: list[StageSection] = Field(default_factory=list,
                                         description="Stages' own report sections.")  # fmt: skip

    def merge(self, added: Artifacts) -> Artifacts:
        return Artifacts(
            dataset=added.dataset or self.dataset,
            task=added.task or self.task,
            models=self.models + added.models,
            exports=self.exports + added.exports,
            latency=self.latency + added.latency,
            reports=self.reports + added.reports,
            notes=self.notes + added.notes,
            sections=self.sections + added.sections,
        )

    def files(self) -> list[str]:
        """Files whose content a later stage depends on (hashed into its cache key)."""
        return [m.checkpoint for m in self.models] + [e.path for e in self.exports]

    def teacher(self) -> ModelArtifact:
        return next(m for m in self.models if m.role == "teacher")
