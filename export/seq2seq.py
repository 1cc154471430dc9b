"""Generation artifacts: the encoder-decoder as an encoder and a decoder with a KV cache, the
decoder-only model as one decoder with a KV cache, each checked step by step over a whole greedy
generation against the PyTorch model.

Encoder-decoder, two files:
- ``encoder.onnx``: ``input_ids``, ``attention_mask`` (b, s) -> ``cross_key_i``,
  ``cross_value_i`` (b, kv_heads, s, head_dim) for every decoder layer i: the cross-attention
  keys and values are computed once per source, inside the encoder's graph;
- ``decoder.onnx``: ``input_ids`` (b, n), ``encoder_attention_mask`` (b, s), the cross K/V, and
  ``past_key_i``, ``past_value_i`` (b, kv_heads, p, head_dim) -> ``logits`` (b, n, V),
  ``present_key_i``, ``present_value_i`` (b, kv_heads, p + n, head_dim).
Decoder-only, one file ``decoder.onnx``: ``input_ids`` (b, n), ``attention_mask`` (b, p + n),
past -> logits, present. The first call has p = 0 (empty past), later calls n = 1.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from compress.atomic import atomic_path
from compress.errors import StageFailed
from compress.models.encdec import EncoderDecoder
from compress.models.gpt import GPT

MAX_DIM = 1 << 16


def kv_names(prefix: str, layers: int) -> list[str]:
    return [f"{prefix}_{kind}_{i}" for i in range(layers) for kind in ("key", "value")]


def _pairs(flat: tuple[Tensor, ...]) -> list[tuple[Tensor, Tensor]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def _flat(kvs: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, ...]:
    return tuple(t for kv in kvs for t in kv)


class EncoderGraph(nn.Module):
    def __init__(self, model: EncoderDecoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        return _flat(self.model.encode(input_ids, attention_mask))


class EncDecDecoderGraph(nn.Module):
    def __init__(self, model: EncoderDecoder) -> None:
        super().__init__()
        self.model, self.layers = model, len(model.decoder)

    def forward(self, input_ids: Tensor, encoder_attention_mask: Tensor,
                *caches: Tensor) -> tuple[Tensor, ...]:  # fmt: skip
        cross, past = _pairs(caches[: 2 * self.layers]), _pairs(caches[2 * self.layers :])
        logits, present = self.model.decode_step(input_ids, encoder_attention_mask, cross, past)
        return (logits, *_flat(present))


class DecoderOnlyGraph(nn.Module):
    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                *past: Tensor) -> tuple[Tensor, ...]:  # fmt: skip
        logits, present = self.model.step(input_ids, attention_mask, _pairs(past))
        return (logits, *_flat(present))


def torchscript_export(graph: nn.Module, args: tuple[Tensor, ...], names: list[str],
                       outputs: list[str], axes: dict[str, dict[int, str]], path: Path,
                       opset: int) -> None:  # fmt: skip
    """One graph with named inputs, outputs and dynamic axes, written to ``path``. The
    TorchScript exporter: it keeps an axis dynamic whatever its size in the sample (the first
    decoder call has an empty past, length 0, which torch.export would specialise), and it
    writes these small graphs in seconds where the dynamo exporter takes minutes."""
    quiet = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(graph.eval(), args, str(path), dynamo=False, opset_version=opset,
                              input_names=names, output_names=outputs,
                              dynamic_axes={k: v for k, v in axes.items() if k in names + outputs})
        except Exception as e:  # the exporter raises many types; all mean the same here
            raise StageFailed(f"ONNX export failed for {path.name}: "
                              f"{str(e).splitlines()[0]}") from e  # fmt: skip


def write_graph(graph: nn.Module, args: tuple[Tensor, ...], names: list[str], outputs: list[str],
           axes: dict[str, dict[int, str]], path: Path, opset: int) -> None:  # fmt: skip
    """``torchscript_export`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torchscript_export(graph, args, names, outputs, axes, tmp, opset)


def _kv_axes(names: list[str], length: str) -> dict[str, dict[int, str]]:
    return {n: {0: "batch", 2: length} for n in names}


def export_encdec(model: EncoderDecoder, folder: Path, sample: dict[str, np.ndarray],
                  opset: int = 17) -> list[Path]:  # fmt: skip
    """Write ``encoder.onnx`` and ``decoder.onnx`` into ``folder``; ``sample`` holds
    ``input_ids`` and ``attention_mask`` (b, s) of real sources."""
    model = model.eval()
    layers = len(model.decoder)
    ids, mask = (torch.from_numpy(sample[k]) for k in ("input_ids", "attention_mask"))
    cross_names, past_names = kv_names("cross", layers), kv_names("past", layers)
    present_names = kv_names("present", layers)
    src = {"input_ids": {0: "batch", 1: "source"}, "attention_mask": {0: "batch", 1: "source"}}
    encoder = folder / "encoder.onnx"
    write_graph(EncoderGraph(model), (ids, mask), ["input_ids", "attention_mask"], cross_names,
           {**src, **_kv_axes(cross_names, "source")}, encoder, opset)  # fmt: skip
    with torch.no_grad():
        cross = model.encode(ids, mask)
        step = torch.ones(len(ids), 2, dtype=torch.int64)  # two decoder tokens after a past of 3
        _, past = model.decode_step(torch.ones(len(ids), 3, dtype=torch.int64), mask, cross)
    decoder = folder / "decoder.onnx"
    axes = {"input_ids": {0: "batch", 1: "new"},
            "encoder_attention_mask": {0: "batch", 1: "source"},
            "logits": {0: "batch", 1: "new"}, **_kv_axes(cross_names, "source"),
            **_kv_axes(past_names, "past"), **_kv_axes(present_names, "total")}  # fmt: skip
    write_graph(EncDecDecoderGraph(model), (step, mask, *_flat(cross), *_flat(past)),
           ["input_ids", "encoder_attention_mask", *cross_names, *past_names],
           ["logits", *present_names], axes, decoder, opset)  # fmt: skip
    return [encoder, decoder]


def export_decoder_only(model: GPT, folder: Path, sample: dict[str, np.ndarray],
                        opset: int = 17) -> list[Path]:  # fmt: skip
    """Write ``decoder.onnx`` (with KV cache) into ``folder``; ``sample`` as for
    ``export_encdec``."""
    model = model.eval()
    layers = len(model.layers)
    ids, mask = (torch.from_numpy(sample[k]) for k in ("input_ids", "attention_mask"))
    with torch.no_grad():
        _, past = model.step(ids, mask)
    step = torch.ones(len(ids), 2, dtype=torch.int64)
    full = torch.cat([mask, torch.ones_like(step)], dim=1)
    past_names, present_names = kv_names("past", layers), kv_names("present", layers)
    path = folder / "decoder.onnx"
    write_graph(DecoderOnlyGraph(model), (step, full, *_flat(past)),
                ["input_ids", "attention_mask", *past_names], ["logits", *present_names],
                decoder_only_axes(past_names, present_names), path, opset)  # fmt: skip
    return [path]


def decoder_only_axes(past: list[str], present: list[str]) -> dict[str, dict[int, str]]:
    """Dynamic axes of a decoder-only graph with a KV cache."""
    return {"input_ids": {0: "batch", 1: "new"}, "attention_mask": {0: "batch", 1: "total"},
            "logits": {0: "batch", 1: "new"}, **_kv_axes(past, "past"),
            **_kv_axes(present, "total")}  # fmt: skip


def export_generation(model: nn.Module, folder: Path, sample: dict[str, np.ndarray],
                      opset: int = 17) -> list[Path]:  # fmt: skip
    """The generation artifact of an encoder-decoder or decoder-only model (ours, or an hf:
    causal LM)."""
    from compress.models.hf import HFCausalLM

    if isinstance(model, EncoderDecoder):
        return export_encdec(model, folder, sample, opset)
    if isinstance(model, GPT):
        return export_decoder_only(model, folder, sample, opset)
    if isinstance(model, HFCausalLM):
        from compress.export.hf_generation import export_hf_decoder

        return export_hf_decoder(model, folder, sample, opset)
    raise StageFailed(f"no generation export for {type(model).__name__}: encdec, gpt and hf: "
                      "causal LMs only")  # fmt: skip


def describe(model: nn.Module) -> dict[str, Any]:
    """What the runtime needs to drive the graphs: the kind and the cache's shape."""
    from compress.models.hf import HFCausalLM

    if isinstance(model, HFCausalLM):
        from compress.export.hf_generation import describe_hf

        return describe_hf(model)
    if isinstance(model, EncoderDecoder):
        attn, layers = model.decoder[0].self_block.attn, len(model.decoder)
        kind = "encoder-decoder"
    else:
        attn, layers, kind = model.layers[0].attn, len(model.layers), "decoder-only"
    return {"kind": kind, "layers": layers, "kv_heads": attn.kv_heads, "head_dim": attn.head_dim}
