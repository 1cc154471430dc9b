"""Language modeling: text in, the next token's logits at every position out.

Signature: ``input_ids`` and ``attention_mask`` (b, l) -> ``logits`` (b, l, V); position i scores
token i + 1. Any text source works (the novel labels of ``austen`` are ignored). Metrics on the
held-out split: next-token accuracy and perplexity (exp of the mean negative log-likelihood per
real token). Torch-free; its training loss (cross-entropy of the next tokens) is the seq2seq
task's, on the ``labels`` its batches carry.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from compress.tasks.base import Examples, Predict, TaskInfo, batches, register_task
from compress.tasks.classification import SequenceClassification, SequenceClassificationConfig
from compress.tasks.seq2seq import IGNORE, TokenLogits, count_correct
from compress.tasks.signature import Metric, TensorSpec


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """(sum of -log p(label), number of real labels) of logits (b, l, V), labels (b, l)."""
    real = labels != IGNORE
    x = logits[real].astype(np.float64)  # (n, V)
    top = x.max(-1, keepdims=True)
    log_z = np.log(np.exp(x - top).sum(-1)) + top[:, 0]
    return float((log_z - x[np.arange(len(x)), labels[real]]).sum()), int(real.sum())


class LanguageModelingConfig(SequenceClassificationConfig):
    """Next-token prediction on the source's texts; a BPE tokenizer is trained on them."""

    name: Literal["language-modeling"] = Field(description="Task name.")  # type: ignore[assignment]


@register_task
class LanguageModeling(TokenLogits, SequenceClassification):
    config_model = LanguageModelingConfig
    metrics = (Metric(name="token_accuracy", unit="%", direction="higher", scale=100.0),
               Metric(name="perplexity", unit="", direction="lower"))  # fmt: skip

    def info(self, classes: list[str], input_shape: tuple[int, ...] = ()) -> TaskInfo:
        ids = ["batch", "sequence"]
        return self.token_info(classes, [TensorSpec(name="input_ids", dtype="int64", shape=ids),
                                         TensorSpec(name="attention_mask", dtype="int64",
                                                    shape=ids)], "sequence")  # fmt: skip

    def batch(self, x: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The texts' ids and mask, and ``labels``: the next token, IGNORE past each text."""
        out = super().batch(x, rows)
        ids, mask = out["input_ids"], out["attention_mask"]
        labels = np.full_like(ids, IGNORE)
        labels[:, :-1] = np.where(mask[:, 1:] == 1, ids[:, 1:], IGNORE)
        return {**out, "labels": labels}

    def score(self, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        counts = count_correct(scores, labels)
        nll, n = negative_log_likelihood(scores, labels)
        return {"token_accuracy": float(counts[:, 0].sum() / max(n, 1)),
                "perplexity": float(np.exp(nll / max(n, 1)))}  # fmt: skip

    def evaluate(self, predict: Predict, examples: Examples, batch_size: int) -> dict[str, float]:
        """Summed batch by batch: the logits of a whole split would not fit."""
        right = nll = n = 0.0
        for rows in batches(len(examples), batch_size):
            inputs = self.batch(examples.x, rows)
            logits, labels = predict(inputs), inputs["labels"]
            right += count_correct(logits, labels)[:, 0].sum()
            batch_nll, batch_n = negative_log_likelihood(logits, labels)
            nll, n = nll + batch_nll, n + batch_n
        return {"token_accuracy": right / max(n, 1), "perplexity": float(np.exp(nll / max(n, 1)))}
