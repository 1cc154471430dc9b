"""Sequence-to-sequence: a source text in, a target text out, one token at a time.

Signature (every model of the task, encoder-decoder or decoder-only): ``input_ids`` and
``attention_mask`` of the source (b, s), ``decoder_input_ids`` (b, t) = ``[BOS, y_0 .. y_{t-2}]``;
out ``logits`` (b, t, V), position t scoring target token ``y_t``. The target ends with EOS. The
tokenizer is the run's BPE with ``[CLS]`` as BOS, plus ``[EOS]`` and the denoising sentinels.

Metrics: under teacher forcing, token accuracy over the real target tokens (EOS included) and
exact match, the share of targets whose every token is the model's top choice (exact match under
teacher forcing equals exact match of greedy generation: greedy decoding reproduces the target
exactly when, and only when, the argmax is right at every step of the target's own prefix); and
ROUGE-L F1 of greedy generations of up to ``max_target`` tokens (``compress.tasks.rouge``), a
graded score where small models' exact match is 0. Torch-free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from compress.errors import DataError
from compress.tasks.base import (
    Examples,
    Predict,
    Task,
    TaskConfig,
    TaskInfo,
    batches,
    register_task,
)
from compress.tasks.signature import Metric, Signature, TensorSpec

BOS, EOS = "[CLS]", "[EOS]"
IGNORE = -100  # label of padding: no loss, no metric


def seq2seq_special_tokens() -> list[str]:
    from compress.data.seq2seq_corpus import SENTINELS

    return [EOS, *SENTINELS]


def token_metrics() -> tuple[Metric, ...]:
    return (Metric(name="token_accuracy", unit="%", direction="higher", scale=100.0),
            Metric(name="exact_match", unit="%", direction="higher", scale=100.0),
            Metric(name="rouge_l", unit="%", direction="higher", scale=100.0))  # fmt: skip


def count_correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row: (right tokens, real tokens, 1 if every real token is right): (b, 3)."""
    real = labels != IGNORE  # (b, t)
    right = (np.asarray(logits).argmax(-1) == labels) & real
    return np.stack([right.sum(1), real.sum(1), (right.sum(1) == real.sum(1))], axis=1)


def metrics_from_counts(counts: np.ndarray) -> dict[str, float]:
    """Token accuracy and exact match from ``count_correct`` rows (n, 3)."""
    tokens = max(int(counts[:, 1].sum()), 1)
    return {"token_accuracy": float(counts[:, 0].sum() / tokens),
            "exact_match": float(counts[:, 2].mean()) if len(counts) else 0.0}  # fmt: skip


def logits_spec(axis: str, vocab: int) -> TensorSpec:
    return TensorSpec(name="logits", dtype="float32", shape=["batch", axis, vocab])


def add_special_tokens(path: Path, tokens: list[str], ours: bool) -> None:
    """Make sure the tokenizer file has ``tokens``: a file this run trained gets them added and
    rewritten (deterministically); a user's file must have them already."""
    from tokenizers import AddedToken, Tokenizer

    from compress.atomic import write_text

    tokenizer = Tokenizer.from_file(str(path))
    absent = [t for t in tokens if tokenizer.token_to_id(t) is None]
    if not absent:
        return
    if not ours:
        raise DataError(f"{path}: the tokenizer lacks the special tokens {', '.join(absent)}")
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in absent])
    write_text(path, tokenizer.to_str(pretty=True) + "\n")


class TokenLogits:
    """What the text-generation tasks share: scores are logits per token position (b, l, V),
    batches carry ``labels`` (IGNORE where no token is scored), a model trains on their
    cross-entropy, and the data need no classes."""

    classifies = False
    config: Any
    encoder: Any
    name: str

    def token_info(self, classes: list[str], inputs: list[TensorSpec], axis: str) -> TaskInfo:
        vocab = self.encoder.vocab_size if self.encoder else self.config.vocab_size
        signature = Signature(inputs=inputs, outputs=[logits_spec(axis, vocab)])
        return TaskInfo(self.name, signature, classes, (), vocab, self.config.max_length)

    @classmethod
    def scores_shape(cls, info: TaskInfo, batch: int, length: int) -> tuple[int, ...]:
        return (batch, length, info.vocab_size)

    def training_loss(self) -> Any:
        from compress.seq2seq.loss import TargetCrossEntropy

        return TargetCrossEntropy()


class Seq2SeqTaskConfig(TaskConfig):
    """Source text in, target text out (teacher-forced logits per target position). A BPE
    tokenizer is trained on the training pairs and saved with the run, unless one is given."""

    name: Literal["seq2seq"] = Field(description="Task name.")
    vocab_size: int = Field(2000, ge=64, le=1_000_000, description="BPE vocabulary size.")
    max_length: int = Field(512, ge=4, le=100_000, description="Source tokens, at most.")
    max_target: int = Field(32, ge=2, le=10_000, description="Target tokens with EOS, at most.")
    tokenizer: Path | None = Field(
        None, description="A tokenizers JSON file to use instead of training one (relative to "
        "the recipe); it must hold [CLS], [EOS] and the sentinels [M0]..[M7]."
    )  # fmt: skip


@register_task
class Seq2Seq(TokenLogits, Task):
    config_model = Seq2SeqTaskConfig
    data_kind = "text"
    metrics = token_metrics()
    encoder: Any = None  # TextEncoder, set by use_tokenizer

    def use_tokenizer(self, path: Path) -> None:
        from compress.data.tokenizer import TextEncoder

        add_special_tokens(path, seq2seq_special_tokens(), ours=self.config.tokenizer is None)
        self.encoder = TextEncoder.load(path)
        self.bos, self.eos = (self.encoder.tokenizer.token_to_id(t) for t in (BOS, EOS))

    def info(self, classes: list[str], input_shape: tuple[int, ...] = ()) -> TaskInfo:
        source = ["batch", "sequence"]
        return self.token_info(classes, [
            TensorSpec(name="input_ids", dtype="int64", shape=source),
            TensorSpec(name="attention_mask", dtype="int64", shape=source),
            TensorSpec(name="decoder_input_ids", dtype="int64", shape=["batch", "target"]),
        ], "target")  # fmt: skip

    def targets(self, texts: list[str]) -> np.ndarray:
        """Target ids + EOS, (n, t) padded with IGNORE, t <= max_target."""
        tokenizer = self.encoder.tokenizer
        rows = [e.ids[: self.config.max_target - 1] + [self.eos]
                for e in tokenizer.encode_batch(texts, add_special_tokens=False)]  # fmt: skip
        out = np.full((len(rows), max(len(r) for r in rows)), IGNORE, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    def batch(self, x: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The signature's inputs plus ``labels`` (b, t): the target, IGNORE where padded."""
        if self.encoder is None:
            raise DataError("seq2seq: no tokenizer loaded")
        pairs = x[rows]
        source = self.encoder.encode([str(s) for s in pairs.source], self.config.max_length)
        labels = self.targets([str(t) for t in pairs.target])
        decoder = np.where(labels == IGNORE, self.encoder.pad_id, labels)  # (b, t)
        decoder = np.concatenate([np.full((len(decoder), 1), self.bos), decoder[:, :-1]], 1)
        return {**source, "decoder_input_ids": decoder, "labels": labels}

    def score(self, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """The teacher-forced metrics of given logits (ROUGE-L needs generation: evaluate)."""
        return metrics_from_counts(count_correct(scores, labels))

    def evaluate(self, predict: Predict, examples: Examples, batch_size: int) -> dict[str, float]:
        """Counted batch by batch (the logits of a whole split (n, t, V) would not fit); each
        batch is also generated from greedily for ROUGE-L."""
        from compress.tasks.rouge import greedy_tokens, rouge_rows

        counts, rouge = [], []
        for rows in batches(len(examples), batch_size):
            inputs = self.batch(examples.x, rows)
            counts.append(count_correct(predict(inputs), inputs["labels"]))
            generated = greedy_tokens(predict, inputs, self.bos, self.eos, self.config.max_target)
            rouge.append(rouge_rows(generated, inputs["labels"], self.eos, IGNORE))
        scores = np.concatenate(rouge)
        return {**metrics_from_counts(np.concatenate(counts)),
                "rouge_l": float(scores.mean()) if len(scores) else 0.0}  # fmt: skip
