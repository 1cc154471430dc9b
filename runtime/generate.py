"""Text generation over ONNX Runtime, without torch: greedy, temperature and top-k sampling, stop
tokens, a batch of sources at once.

An artifact folder (written by ``compress.export.seq2seq``) holds ``generation.json`` (the kind,
the KV cache's shape, the BOS/EOS/padding ids) and the graphs: ``encoder.onnx`` and
``decoder.onnx`` for an encoder-decoder, ``decoder.onnx`` alone for a decoder-only model. Both
are driven the same way: ``prefill`` reads the sources and returns the logits of the first new
token (the encoder-decoder runs its encoder, then its decoder on BOS; the decoder-only model runs
on the source followed by BOS), then ``advance`` feeds one token per row and returns the next
logits, the KV cache growing inside.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from compress.runtime.ort import OrtModel

GENERATION_FILE = "generation.json"


@dataclass(frozen=True)
class Sampling:
    """How the next token is chosen: temperature 0 is greedy (argmax)."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_k: int | None = None
    stop_tokens: tuple[int, ...] = ()  # besides the artifact's EOS
    stop_at_eos: bool = True  # False: always max_new_tokens (benchmarks time a fixed length)
    seed: int = 0


@dataclass
class Generated:
    """Tokens (b, n) padded after each row's stop token, and the time the phases took."""

    tokens: np.ndarray
    first_token_s: float  # prefill: reading the sources up to the first new token's logits
    decode_s: float  # every later step
    steps: int  # tokens generated per row (the longest row)
    step_logits: list[np.ndarray] = field(default_factory=list)  # with keep_logits: (b, V) each


class _Session:
    """The graphs of one artifact and its cache; subclasses drive their kind."""

    def __init__(self, folder: Path, meta: dict, threads: int | None) -> None:
        self.meta = meta
        self.decoder = OrtModel(folder / "decoder.onnx", threads=threads)

    def _empty(self, batch: int) -> dict[str, np.ndarray]:
        shape = (batch, self.meta["kv_heads"], 0, self.meta["head_dim"])
        return {f"past_{kind}_{i}": np.zeros(shape, np.float32)
                for i in range(self.meta["layers"]) for kind in ("key", "value")}  # fmt: skip

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        out = self.decoder.run(feed)
        self.past = {k.replace("present_", "past_"): v for k, v in out.items() if k != "logits"}
        return out["logits"][:, -1]  # (b, V)


class EncoderDecoderSession(_Session):
    def __init__(self, folder: Path, meta: dict, threads: int | None) -> None:
        super().__init__(folder, meta, threads)
        self.encoder = OrtModel(folder / "encoder.onnx", threads=threads)

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.cross = self.encoder.run({"input_ids": input_ids, "attention_mask": attention_mask})
        self.source_mask = attention_mask
        bos = np.full((len(input_ids), 1), self.meta["bos_id"], np.int64)
        return self.advance(bos, first=True)

    def advance(self, tokens: np.ndarray, first: bool = False) -> np.ndarray:
        past = self._empty(len(tokens)) if first else self.past
        return self._run({"input_ids": tokens, "encoder_attention_mask": self.source_mask,
                          **self.cross, **past})  # fmt: skip


class DecoderOnlySession(_Session):
    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        bos = np.full((len(input_ids), 1), self.meta["bos_id"], np.int64)
        self.mask = np.concatenate([attention_mask, np.ones_like(bos)], axis=1)
        ids = np.concatenate([input_ids, bos], axis=1)
        return self._run({"input_ids": ids, "attention_mask": self.mask,
                          **self._empty(len(ids))})  # fmt: skip

    def advance(self, tokens: np.ndarray) -> np.ndarray:
        self.mask = np.concatenate([self.mask, np.ones_like(tokens)], axis=1)
        return self._run({"input_ids": tokens, "attention_mask": self.mask, **self.past})


def open_generator(folder: str | Path, threads: int | None = None) -> _Session:
    """The session of an artifact folder, by the kind its ``generation.json`` names."""
    folder = Path(folder)
    meta = json.loads((folder / GENERATION_FILE).read_text(encoding="utf-8"))
    kinds = {"encoder-decoder": EncoderDecoderSession, "decoder-only": DecoderOnlySession}
    return kinds[meta["kind"]](folder, meta, threads)


def choose(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> np.ndarray:
    """The next token of each row (b,) from logits (b, V)."""
    if sampling.temperature <= 0:
        return logits.argmax(-1)
    scaled = logits.astype(np.float64) / sampling.temperature
    if sampling.top_k is not None and sampling.top_k < scaled.shape[-1]:
        kth = np.partition(scaled, -sampling.top_k, axis=-1)[:, -sampling.top_k][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    p = np.exp(scaled - scaled.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.array([rng.choice(len(row), p=row) for row in p])


def generate(session: _Session, input_ids: np.ndarray, attention_mask: np.ndarray,
             sampling: Sampling = Sampling(), keep_logits: bool = False,
             clock: Callable[[], float] = time.perf_counter) -> Generated:  # fmt: skip
    """Generate up to ``max_new_tokens`` per row; a row stops at EOS or a stop token and is
    padded after it. The loop stops when every row has stopped."""
    meta = session.meta
    stops = np.array([meta["eos_id"]] * sampling.stop_at_eos + list(sampling.stop_tokens))
    rng = np.random.default_rng(sampling.seed)
    began = clock()
    logits = session.prefill(input_ids.astype(np.int64), attention_mask.astype(np.int64))
    first = clock() - began
    done = np.zeros(len(input_ids), dtype=bool)
    out, kept = [], []
    for step in range(sampling.max_new_tokens):
        if keep_logits:
            kept.append(logits)
        token = np.where(done, meta["pad_id"], choose(logits, sampling, rng))  # (b,)
        out.append(token)
        done |= np.isin(token, stops)
        if done.all() or step == sampling.max_new_tokens - 1:
            break
        logits = session.advance(token[:, None].astype(np.int64))
    total = clock() - began
    return Generated(np.stack(out, axis=1), first, total - first, len(out), kept)
