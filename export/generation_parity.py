"""Write a generation artifact and check it: a whole greedy generation from the ONNX graphs (KV
cache, ONNX Runtime, through ``compress.runtime.generate``) against the PyTorch model run
without a cache, its full teacher-forcing forward recomputed on the growing prefix at every step.
The two must choose the same token at every step, with logits within the tolerance."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from compress.atomic import write_json
from compress.errors import StageFailed
from compress.export.seq2seq import describe, export_generation
from compress.runtime.generate import GENERATION_FILE, Generated, Sampling, generate, open_generator


class TorchFullForward:
    """A generation session over the PyTorch model with no cache: every step runs the model's
    ``forward(input_ids, attention_mask, decoder_input_ids)`` on all the tokens so far."""

    def __init__(self, model: nn.Module, meta: dict) -> None:
        self.model, self.meta = model.eval(), meta

    def _last(self) -> np.ndarray:
        with torch.no_grad():
            logits = self.model(self.ids, self.mask, self.decoder)  # (b, t, V)
        return logits[:, -1].numpy()

    def prefill(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        self.ids, self.mask = torch.from_numpy(input_ids), torch.from_numpy(attention_mask)
        self.decoder = torch.full((len(input_ids), 1), self.meta["bos_id"], dtype=torch.int64)
        return self._last()

    def advance(self, tokens: np.ndarray) -> np.ndarray:
        self.decoder = torch.cat([self.decoder, torch.from_numpy(tokens)], dim=1)
        return self._last()


def compare(reference: Generated, actual: Generated, atol: float) -> dict[str, Any]:
    """Per-step logit errors and token agreement; StageFailed when a token or a logit differs."""
    pairs = zip(reference.step_logits, actual.step_logits, strict=False)
    errors = [float(np.abs(r - a).max()) for r, a in pairs]
    same = reference.tokens.shape == actual.tokens.shape and bool(
        (reference.tokens == actual.tokens).all())  # fmt: skip
    if not same:
        raise StageFailed(f"greedy generation differs from PyTorch's: {actual.tokens.tolist()} "
                          f"vs {reference.tokens.tolist()}")  # fmt: skip
    if max(errors) > atol:
        step = int(np.argmax(errors))
        raise StageFailed(f"generation parity: logits differ by {max(errors):.3g} at step "
                          f"{step} (tolerance {atol})")  # fmt: skip
    return {"steps": len(errors), "max_abs_error": max(errors), "tokens_equal": True,
            "per_step_max_abs_error": errors, "tolerance": atol}  # fmt: skip


def write_generation_artifact(model: nn.Module, folder: Path, sample: dict[str, np.ndarray],
                              special: dict[str, int], max_new_tokens: int = 32,
                              atol: float = 1e-3, opset: int = 17) -> dict[str, Any]:  # fmt: skip
    """Export ``model`` into ``folder`` (graphs + ``generation.json``), then check a greedy
    generation of ``max_new_tokens`` on the ``sample`` sources (``input_ids``,
    ``attention_mask``) step by step. ``special``: bos_id, eos_id, pad_id. A failed check
    removes what was written. Returns the files and the parity summary."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        files = export_generation(model, folder, sample, opset)
        meta = {**describe(model), **special, "files": [f.name for f in files]}
        write_json(folder / GENERATION_FILE, meta)
        ids, mask = sample["input_ids"], sample["attention_mask"]
        # every one of the steps, EOS or not: a row that ended is checked on as it runs on
        sampling = Sampling(max_new_tokens=max_new_tokens, stop_at_eos=False)
        actual = generate(open_generator(folder), ids, mask, sampling, keep_logits=True)
        reference = generate(TorchFullForward(model, meta), ids, mask, sampling,  # type: ignore[arg-type]
                             keep_logits=True)  # fmt: skip
        parity = compare(reference, actual, atol)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return {"files": [*files, folder / GENERATION_FILE], "parity": parity,
            "tokens": actual.tokens}  # fmt: skip
