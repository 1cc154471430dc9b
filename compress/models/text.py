"""Text classifiers over token ids and an attention mask, both (b, l) int64.

``text-transformer``: a small pre-norm Transformer encoder (the teacher-sized one);
``text-bag``: embeddings averaged over the unmasked tokens, then an MLP (a tiny student).
Attention is written out (not ``nn.MultiheadAttention``) so the ONNX export keeps the dynamic
sequence axis and the mask as plain tensor ops.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.models.zoo import describe_inputs, register_arch
from compress.tasks import TaskInfo

NEG = -1e9  # added to masked attention scores; finite, so no NaN in a fully masked row


def _vocab(info: TaskInfo) -> int:
    if info.vocab_size is None or info.signature.input_names[:2] != ["input_ids", "attention_mask"]:
        raise ModelError(f"a text architecture needs input_ids and attention_mask; the task "
                         f"{info.task} has {describe_inputs(info)}")  # fmt: skip
    return info.vocab_size


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over the sequence of the tokens whose mask is 1: (b, l, d), (b, l) -> (b, d)."""
    m = mask.unsqueeze(-1).to(x.dtype)  # (b, l, 1)
    return (x * m).sum(1) / m.sum(1).clamp(min=1.0)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (b, h, l, d_head)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)  # (b, h, l, l)
        scores = scores + (1 - mask[:, None, None, :].to(x.dtype)) * NEG  # keys that are padding
        y = scores.softmax(-1) @ v  # (b, h, l, d_head)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x), mask)  # pre-norm residual blocks
        return x + self.ff(self.norm2(x))


class TextTransformer(nn.Module):
    def __init__(self, vocab: int, max_length: int, dim: int, layers: int, heads: int,
                 classes: int) -> None:  # fmt: skip
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(max_length, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, 4 * dim) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        x = self.embed(input_ids) + self.pos[: input_ids.shape[1]]  # (b, l, d)
        for layer in self.layers:
            x = layer(x, attention_mask)
        return self.head(masked_mean(self.norm(x), attention_mask))  # (b, k)


class TextTransformerSpec(StrictModel):
    """A pre-norm Transformer encoder with learned positions, mean-pooled, linear head."""

    arch: Literal["text-transformer"] = Field(description="Architecture name.")
    dim: int = Field(128, ge=8, le=4096, description="Model width.")
    layers: int = Field(2, ge=1, le=48, description="Encoder layers.")
    heads: int = Field(4, ge=1, le=64, description="Attention heads (must divide dim).")


@register_arch("text-transformer", TextTransformerSpec)
def text_transformer(spec: TextTransformerSpec, info: TaskInfo) -> nn.Module:
    if spec.dim % spec.heads:
        raise ModelError(f"heads ({spec.heads}) must divide dim ({spec.dim})")
    return TextTransformer(_vocab(info), info.max_length or 512, spec.dim, spec.layers,
                           spec.heads, info.num_classes)  # fmt: skip


class TextBag(nn.Module):
    def __init__(self, vocab: int, dim: int, hidden: int, classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.mlp(masked_mean(self.embed(input_ids), attention_mask))  # (b, k)


class TextBagSpec(StrictModel):
    """Token embeddings averaged over the text, then a one-hidden-layer MLP."""

    arch: Literal["text-bag"] = Field(description="Architecture name.")
    dim: int = Field(64, ge=4, le=4096, description="Embedding width.")
    hidden: int = Field(64, ge=4, le=4096, description="Hidden layer width.")


@register_arch("text-bag", TextBagSpec)
def text_bag(spec: TextBagSpec, info: TaskInfo) -> nn.Module:
    return TextBag(_vocab(info), spec.dim, spec.hidden, info.num_classes)
