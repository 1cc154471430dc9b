"""ROUGE-L of greedy generations, for the seq2seq task: a graded metric where exact match is 0.

Greedy decoding runs through the task's ``predict`` (the teacher-forcing forward: source and the
decoder inputs so far -> logits of every target position), one call per new token with the
prefix grown by the previous argmax. So the PyTorch model, the exported ``forward.onnx`` and a
target's runtime are scored by the same loop; no KV cache is needed (and none is timed here).

ROUGE-L F1 (Lin, 2004) over token ids: the longest common subsequence (LCS) of the generated
tokens and the reference target, both up to and without EOS; precision = LCS / generated length,
recall = LCS / reference length, F1 = 2·LCS / (generated + reference). Tokens are the run's BPE
tokens, not words: scores are comparable between models of one run (one tokenizer), not with
word-level ROUGE-L published elsewhere. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


def lcs_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common subsequence of ``a`` and ``b`` (dynamic programming, one
    row of len(b) + 1 kept: O(len(a)·len(b)) time)."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0  # row[j - 1] of the previous row
        for j, y in enumerate(b, start=1):
            above = row[j]
            row[j] = diagonal + 1 if x == y else max(row[j], row[j - 1])
            diagonal = above
    return row[-1]


def rouge_l(candidate: Sequence[int], reference: Sequence[int]) -> float:
    """ROUGE-L F1 in [0, 1]; two empty sequences agree (1.0), one empty scores 0."""
    if not candidate and not reference:
        return 1.0
    return 2.0 * lcs_length(candidate, reference) / (len(candidate) + len(reference))


def until(tokens: Sequence[int], stop: int) -> list[int]:
    """The tokens before the first ``stop`` (all of them without one)."""
    tokens = [int(t) for t in tokens]
    return tokens[: tokens.index(stop)] if stop in tokens else tokens


def greedy_tokens(predict: Predict, inputs: dict[str, np.ndarray], bos: int, eos: int,
                  steps: int) -> np.ndarray:  # fmt: skip
    """Greedy generation of up to ``steps`` tokens per source: (b, n), n <= steps. Each call
    reads the source and ``[BOS, g_0 .. g_{k-1}]`` and takes the argmax at the last position;
    the loop ends when every row has produced EOS (later tokens of a row are ignored)."""
    source = {k: inputs[k] for k in ("input_ids", "attention_mask")}
    decoder = np.full((len(source["input_ids"]), 1), bos, dtype=np.int64)  # (b, 1)
    done = np.zeros(len(decoder), dtype=bool)
    for _ in range(steps):
        logits = predict({**source, "decoder_input_ids": decoder})  # (b, k, V)
        token = np.asarray(logits)[:, -1].argmax(-1).astype(np.int64)  # (b,)
        decoder = np.concatenate([decoder, token[:, None]], axis=1)
        done |= token == eos
        if done.all():
            break
    return decoder[:, 1:]


def rouge_rows(generated: np.ndarray, labels: np.ndarray, eos: int, ignore: int) -> np.ndarray:
    """ROUGE-L F1 per row (b,) of generated tokens (b, n) against the labels (b, t), each cut at
    its EOS (the labels' padding ``ignore`` dropped)."""
    scores = [rouge_l(until(g, eos), until([t for t in row if t != ignore], eos))
              for g, row in zip(generated, labels, strict=True)]  # fmt: skip
    return np.asarray(scores, dtype=np.float64)
