"""What stages hand each other. Paths are relative to the run directory, so a run can be moved."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelArtifact(Record):
    """A trained PyTorch model: safetensors weights + architecture description."""

    name: str = Field(description="Unique name in the run: 'teacher', 'student', ...")
    role: Literal["teacher", "student", "baseline"] = Field(description="Its part in the run.")
    checkpoint: str = Field(description="Safetensors file, relative to the run directory.")
    arch: str = Field(description="Architecture name or python builder.")
    params: int = Field(description="Number of parameters.")
    flops: int = Field(description="FLOPs per sample: convs and matmuls, multiply-add = 2.")
    accuracy_pytorch: float = Field(description="Test accuracy of the PyTorch model, 0–1.")
    val_accuracy: float | None = Field(None, description="Validation accuracy, 0–1.")


class ExportArtifact(Record):
    """An exported artifact, checked against its PyTorch model and measured in its runtime."""

    model: str = Field(description="Name of the ModelArtifact it came from.")
    format: str = Field(description="'onnx', ...")
    path: str = Field(description="File, relative to the run directory.")
    size_bytes: int = Field(description="File size.")
    runtime: str = Field(description="Runtime and version the accuracy was measured in.")
    accuracy: float = Field(description="Test accuracy measured on the artifact, 0–1.")
    parity: dict[str, Any] = Field(description="Max abs / rel error against PyTorch, tolerances.")


class Artifacts(Record):
    """Everything produced so far; each stage returns the part it added."""

    dataset: dict[str, Any] | None = Field(None, description="Summary of the data splits.")
    models: list[ModelArtifact] = Field(default_factory=list)
    exports: list[ExportArtifact] = Field(default_factory=list)
    latency: list[dict[str, Any]] = Field(default_factory=list, description="LatencyRecords.")
    reports: list[str] = Field(default_factory=list, description="Report files written.")
    notes: list[str] = Field(default_factory=list, description="Facts for the report's readers.")

    def merge(self, added: Artifacts) -> Artifacts:
        return Artifacts(
            dataset=added.dataset or self.dataset,
            models=self.models + added.models,
            exports=self.exports + added.exports,
            latency=self.latency + added.latency,
            reports=self.reports + added.reports,
            notes=self.notes + added.notes,
        )

    def files(self) -> list[str]:
        """Files whose content a later stage depends on (hashed into its cache key)."""
        return [m.checkpoint for m in self.models] + [e.path for e in self.exports]
