"""The signature file written beside every exported artifact: everything a runtime, Python or
C++, needs to use it — the task, inputs and outputs, the preprocessing or the tokenizer, class
labels, the metrics measured on this very file, and where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import CompressError
from compress.tasks.signature import Metric, Signature

SUFFIX = ".signature.json"


class ArtifactSignature(BaseModel):
    """``<artifact>.signature.json``; paths in it are relative to its own folder."""

    model_config = ConfigDict(extra="forbid")

    file: str = Field(description="The artifact file.")
    format: str = Field(description="'onnx', ...")
    precision: str = Field(description="'fp32', 'int8', ...")
    task: str = Field(description="Task name: 'image-classification', ...")
    signature: Signature = Field(description="Inputs and outputs.")
    preprocessing: dict[str, Any] | None = Field(
        None, description="Image preprocessing (resize, crop, channels, mean/std, layout)."
    )
    tokenizer: str | None = Field(None, description="Tokenizer JSON file, for text inputs.")
    max_length: int | None = Field(None, description="Tokens per text, at most.")
    labels: list[str] = Field(description="Class names, in output order.")
    metrics: dict[str, float] = Field(description="Task metrics measured on this artifact.")
    metric_info: list[Metric] = Field(description="Name, unit and direction of each metric.")
    provenance: dict[str, Any] = Field(
        description="Recipe, stage, model and parent, commit, versions, parity result."
    )

    @classmethod
    def read(cls, path: Path) -> ArtifactSignature:
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as e:
            raise CompressError(f"{path}: not a readable signature file ({e})") from None


def signature_path(artifact: Path) -> Path:
    return artifact.with_suffix(SUFFIX)
