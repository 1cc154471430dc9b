"""The built-in tasks: image and sequence classification, both scored by top-1 accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from compress.errors import DataError
from compress.tasks.base import (
    Task,
    TaskConfig,
    TaskInfo,
    accuracy_metric,
    register_task,
    top1,
)
from compress.tasks.signature import Signature, TensorSpec


def _logits(classes: int) -> TensorSpec:
    return TensorSpec(name="logits", dtype="float32", shape=["batch", classes])


class ImageClassificationConfig(TaskConfig):
    """Images in, class logits out."""

    name: Literal["image-classification"] = Field(description="Task name.")


@register_task
class ImageClassification(Task):
    """Input ``input`` float32 (batch, c, h, w), preprocessed as the data source says."""

    config_model = ImageClassificationConfig
    data_kind = "image"
    metrics = (accuracy_metric(),)

    def info(self, classes: list[str], input_shape: tuple[int, ...]) -> TaskInfo:
        signature = Signature(
            inputs=[TensorSpec(name="input", dtype="float32", shape=["batch", *input_shape])],
            outputs=[_logits(len(classes))],
        )
        return TaskInfo(self.name, signature, classes, tuple(input_shape))

    def batch(self, x: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
        return {"input": np.ascontiguousarray(x[rows], dtype=np.float32)}

    def score(self, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        return {"accuracy": top1(scores, labels)}


class SequenceClassificationConfig(TaskConfig):
    """Text in (token ids and an attention mask, dynamic batch and sequence axes), class logits
    out. A BPE tokenizer is trained on the training split and saved with the run, unless one is
    given."""

    name: Literal["sequence-classification"] = Field(description="Task name.")
    vocab_size: int = Field(4000, ge=64, le=1_000_000, description="BPE vocabulary size.")
    max_length: int = Field(64, ge=4, le=100_000, description="Tokens per text, at most.")
    tokenizer: Path | None = Field(
        None, description="A tokenizers JSON file to use instead of training one (relative to "
        "the recipe)."
    )  # fmt: skip


@register_task
class SequenceClassification(Task):
    """Inputs ``input_ids`` and ``attention_mask``, int64 (batch, sequence); sequences are
    padded to the longest in their batch, so the sequence axis is dynamic."""

    config_model = SequenceClassificationConfig
    data_kind = "text"
    metrics = (accuracy_metric(),)
    encoder: Any = None  # TextEncoder, set by use_tokenizer

    def use_tokenizer(self, path: Path) -> None:
        from compress.data.tokenizer import TextEncoder

        self.encoder = TextEncoder.load(path)

    def info(self, classes: list[str], input_shape: tuple[int, ...] = ()) -> TaskInfo:
        ids = ["batch", "sequence"]
        signature = Signature(
            inputs=[TensorSpec(name="input_ids", dtype="int64", shape=ids),
                    TensorSpec(name="attention_mask", dtype="int64", shape=ids)],
            outputs=[_logits(len(classes))],
        )  # fmt: skip
        vocab = self.encoder.vocab_size if self.encoder else self.config.vocab_size
        return TaskInfo(self.name, signature, classes, (), vocab, self.config.max_length)

    def batch(self, x: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
        if self.encoder is None:
            raise DataError("sequence-classification: no tokenizer loaded")
        return self.encoder.encode([str(t) for t in x[rows]], self.config.max_length)

    def score(self, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        return {"accuracy": top1(scores, labels)}
