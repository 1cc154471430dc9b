"""A Hugging Face causal LM (``model: {hf: FOLDER}``) as a decoder-only generation artifact:
one ``decoder.onnx`` with the same inputs and outputs as the project's own decoder-only graph
(``input_ids`` (b, n), ``attention_mask`` (b, p + n), ``past_key_i``/``past_value_i`` ->
``logits``, ``present_key_i``/``present_value_i``), so ``compress.runtime.generate`` drives it
unchanged and the per-step greedy parity check of ``generation_parity`` applies as it is.

Why not Optimum: every release of ``optimum-onnx`` (0.0.1 to 0.1.0) requires
``transformers<4.58``; this project resolves ``transformers`` 5.x beside torch 2.13, and
``optimum`` 2.x no longer carries the ONNX exporter. So the graph is written here, by the
TorchScript exporter like the project's other generation graphs: the past is handed to the
model as a ``transformers`` ``DynamicCache`` built from the graph's inputs, and the grown cache
is returned flat. Positions are counted over the attention mask, as ``HFCausalLM`` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from compress.models.gpt import mask_positions
from compress.models.hf import HFCausalLM, import_transformers

KV = tuple[Tensor, Tensor]  # keys, values: (b, kv_heads, l, head_dim) each


def cache_step(model: HFCausalLM, input_ids: Tensor, attention_mask: Tensor,
               past: list[KV]) -> tuple[Tensor, list[KV]]:  # fmt: skip
    """Logits (b, n, V) of ``input_ids`` (b, n) after ``past`` (one (keys, values) per layer,
    (b, kv, p, hd), p may be 0) and the grown cache; ``attention_mask`` (b, p + n)."""
    transformers = import_transformers()
    n = input_ids.shape[1]
    cache = transformers.DynamicCache(ddp_cache_data=past)
    out = model.hf(input_ids=input_ids, attention_mask=attention_mask,
                   position_ids=mask_positions(attention_mask)[:, -n:], use_cache=True,
                   **{_cache_keyword(model.hf): cache})  # fmt: skip
    grown = out.get("cache", out.get("past_key_values"))
    return out.logits[..., : model.vocab], [(layer.keys, layer.values) for layer in grown.layers]


def _cache_keyword(model: nn.Module) -> str:
    """transformers 5 names the argument ``cache``; 4.x ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class HFDecoderGraph(nn.Module):
    def __init__(self, model: HFCausalLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                *past: Tensor) -> tuple[Tensor, ...]:  # fmt: skip
        pairs = [(past[i], past[i + 1]) for i in range(0, len(past), 2)]
        logits, present = cache_step(self.model, input_ids, attention_mask, pairs)
        return (logits, *(t for kv in present for t in kv))


def describe_hf(model: HFCausalLM) -> dict[str, Any]:
    """The cache's shape, read off one real step (any architecture's head layout)."""
    with torch.no_grad():
        one = torch.zeros(1, 1, dtype=torch.int64)
        _, present = cache_step(model.eval(), one, torch.ones_like(one), [])
    keys = present[0][0]  # (1, kv_heads, 1, head_dim)
    return {"kind": "decoder-only", "layers": len(present), "kv_heads": int(keys.shape[1]),
            "head_dim": int(keys.shape[3])}  # fmt: skip


def export_hf_decoder(model: HFCausalLM, folder: Path, sample: dict[str, np.ndarray],
                      opset: int = 17) -> list[Path]:  # fmt: skip
    """Write ``decoder.onnx`` (with KV cache) into ``folder``; ``sample`` holds real sources'
    ``input_ids`` and ``attention_mask`` (b, s): the traced call is two new tokens after them."""
    from compress.export.seq2seq import decoder_only_axes, kv_names, write_graph

    model = model.eval()
    ids, mask = (torch.from_numpy(sample[k]) for k in ("input_ids", "attention_mask"))
    with torch.no_grad():
        _, past = cache_step(model, ids, mask, [])
    step = torch.ones(len(ids), 2, dtype=torch.int64)
    full = torch.cat([mask, torch.ones_like(step)], dim=1)
    layers = len(past)
    past_names, present_names = kv_names("past", layers), kv_names("present", layers)
    path = folder / "decoder.onnx"
    write_graph(HFDecoderGraph(model), (step, full, *(t for kv in past for t in kv)),
                ["input_ids", "attention_mask", *past_names], ["logits", *present_names],
                decoder_only_axes(past_names, present_names), path, opset)  # fmt: skip
    return [path]
