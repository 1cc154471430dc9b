"""Sequence-to-sequence pairs built from Jane Austen's novels: span-corruption denoising and
continuation, tasks whose source and target differ in length (the paper's asymmetric tasks).

- denoise: a passage of consecutive sentences with about 15 % of its words removed in spans
  (mean length 3), each span replaced by a sentinel ``[M0]``, ``[M1]``, ...; the target is the
  sentinels each followed by the words it hides (T5's span corruption, on words).
- continue: a passage; the target is the sentence that follows it.

Passages never cross a novel's end. Everything is drawn from a generator seeded by a fixed seed,
so the same settings give the same pairs. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field

from compress.data.source import DataConfig, RawData, register_source
from compress.data.sources import Austen
from compress.tasks.base import Examples

SENTINELS = tuple(f"[M{i}]" for i in range(8))
Kind = Literal["denoise", "continue"]


@dataclass(frozen=True)
class TextPairs:
    """(source, target) texts, indexed by arrays of row numbers like an array of examples.
    Iterating yields each pair as one text (what a tokenizer is trained on)."""

    source: np.ndarray  # (n,) object: str
    target: np.ndarray  # (n,) object: str

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, rows: np.ndarray) -> TextPairs:
        return TextPairs(self.source[rows], self.target[rows])

    def __iter__(self):  # noqa: ANN204  (iterator of str)
        return (f"{s} {t}" for s, t in zip(self.source, self.target, strict=True))


def passages(sentences: list[str], novels: np.ndarray, words: int) -> list[list[str]]:
    """Runs of consecutive sentences of one novel, each up to about ``words`` words."""
    out: list[list[str]] = []
    current: list[str] = []
    count = 0
    for i, sentence in enumerate(sentences):
        if current and (novels[i] != novels[i - 1] or count >= words):
            out.append(current)
            current, count = [], 0
        current.append(sentence)
        count += len(sentence.split())
    if current:
        out.append(current)
    return out


def corrupt_spans(words: list[str], rng: np.random.Generator, rate: float = 0.15,
                  mean_span: float = 3.0) -> tuple[str, str]:  # fmt: skip
    """(source with spans replaced by sentinels, target: each sentinel then its words)."""
    n = len(words)
    spans = int(np.clip(round(n * rate / mean_span), 1, len(SENTINELS)))
    starts = np.sort(rng.choice(np.arange(max(1, n - 1)), size=min(spans, max(1, n - 1)),
                                replace=False))  # fmt: skip
    source: list[str] = []
    target: list[str] = []
    position = 0
    for k, first in enumerate(starts):
        start = max(int(first), position + 1 if target else 0)  # spans never touch: merge none
        if start >= n:
            break
        end = min(n, start + max(1, int(rng.poisson(mean_span - 1)) + 1))
        source += words[position:start] + [SENTINELS[k]]
        target += [SENTINELS[k], *words[start:end]]
        position = end
    source += words[position:]
    return " ".join(source), " ".join(target)


def build_pairs(sentences: list[str], novels: np.ndarray, kinds: tuple[Kind, ...],
                passage_words: int, target_words: int, seed: int = 0) -> TextPairs:  # fmt: skip
    """Every passage gives one pair of each kind (continuation needs a following sentence)."""
    rng = np.random.default_rng(seed)
    chunks = passages(sentences, novels, passage_words)
    sources, targets = [], []
    for chunk in chunks:
        if "denoise" in kinds:
            s, t = corrupt_spans(" ".join(chunk).split(), rng)
            sources.append(s)
            targets.append(t)
        if "continue" in kinds and len(chunk) > 1:
            following = chunk[-1].split()[:target_words]
            sources.append(" ".join(chunk[:-1]))
            targets.append(" ".join(following))
    return TextPairs(np.array(sources, dtype=object), np.array(targets, dtype=object))


class AustenSeq2SeqConfig(DataConfig):
    """Source/target pairs from Jane Austen's novels (Debian's r-cran-janeaustenr, unpacked by
    `make data`): span-corruption denoising and continuation; a test split is held out."""

    source: Literal["austen-seq2seq"] = Field(description="Data source.")
    kinds: list[Kind] = Field(["denoise", "continue"], min_length=1,
                              description="Pair kinds: 'denoise', 'continue' or both.")  # fmt: skip
    passage_words: int = Field(
        60, ge=8, le=2000, description="Words per source passage, about (sentences are whole)."
    )
    target_words: int = Field(24, ge=2, le=500, description="Continuation targets: words at most.")
    max_pairs: int | None = Field(
        None, ge=10, description="Keep this many pairs, drawn evenly over the novels (default: "
        "all); a small benchmark trains in minutes.",
    )  # fmt: skip


@register_source
class AustenSeq2Seq(Austen):
    """The Austen source's files and checks, other examples."""

    config_model = AustenSeq2SeqConfig

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        return [], ()

    def load(self) -> RawData:
        from compress.data.austen import austen_sentences

        cfg: AustenSeq2SeqConfig = self.config
        sentences, novels, _ = austen_sentences(min_words=1, max_words=10_000)
        pairs = build_pairs(sentences, novels, tuple(dict.fromkeys(cfg.kinds)),
                            cfg.passage_words, cfg.target_words)  # fmt: skip
        if cfg.max_pairs is not None and cfg.max_pairs < len(pairs):
            pairs = pairs[np.linspace(0, len(pairs) - 1, cfg.max_pairs).astype(np.int64)]
        notes = [f"{len(pairs)} {'/'.join(cfg.kinds)} pairs from Austen passages of about "
                 f"{cfg.passage_words} words"]  # fmt: skip
        return RawData(Examples(pairs, np.zeros(len(pairs), np.int64)), None, [], notes=notes)
