"""Decoder-only language model (``gpt``): pre-RMSNorm blocks, RoPE, causal grouped-query attention,
input embedding tied to the output head. Also the blocks the encoder-decoder student shares.

Positions come from the attention mask (``cumsum(mask) - 1``), so right-padded sources, left
padding and a KV cache of any length all give the same logits for the same real tokens.

One model serves two tasks, told apart by the number of inputs:
- language modeling: ``(input_ids, attention_mask)`` -> next-token logits (b, l, V);
- seq2seq: ``(input_ids, attention_mask, decoder_input_ids)``: the model reads the source followed
  by the decoder inputs and returns the logits of the decoder positions (b, t, V), the same
  contract as the encoder-decoder student (see ``compress.seq2seq.align``).
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

NEG = -1e9  # added to masked attention scores; finite, so a fully masked row gives no NaN
ROPE_THETA = 10_000.0

KV = tuple[Tensor, Tensor]  # keys, values: (b, kv_heads, l, head_dim) each


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x: Tensor, positions: Tensor) -> Tensor:
    """Rotary embedding (rotate-half form): x (b, h, l, d), positions (b, l) of any dtype."""
    d = x.shape[-1]
    inv_freq = ROPE_THETA ** (-torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    angles = positions.to(torch.float32)[:, None, :, None] * inv_freq  # (b, 1, l, d/2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def mask_positions(mask: Tensor) -> Tensor:
    """Position of each token counted over real tokens only: (b, l) int mask -> (b, l)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)


def attention_bias(key_mask: Tensor, queries: int, causal: bool) -> Tensor:
    """Additive bias (b, 1, q, k): padding keys hidden; with ``causal`` the last ``queries`` keys
    are the queries themselves and each sees only keys up to its own index."""
    k = key_mask.shape[-1]
    bias = (1.0 - key_mask[:, None, None, :].to(torch.float32)) * NEG  # (b, 1, 1, k)
    if causal:
        q_index = torch.arange(queries, device=key_mask.device)[:, None] + (k - queries)
        future = torch.arange(k, device=key_mask.device)[None, :] > q_index  # (q, k)
        bias = bias + future.to(torch.float32) * NEG
    return bias


class Attention(nn.Module):
    """Grouped-query attention: ``heads`` query heads share ``kv_heads`` key/value heads."""

    def __init__(self, dim: int, heads: int, kv_heads: int, use_rope: bool) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.use_rope = use_rope
        self.q = nn.Linear(dim, heads * self.head_dim, bias=False)
        self.k = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o = nn.Linear(heads * self.head_dim, dim, bias=False)

    def _split(self, x: Tensor, heads: int) -> Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, heads, self.head_dim).transpose(1, 2)  # (b, h, l, hd)

    def keys_values(self, x: Tensor, positions: Tensor | None) -> KV:
        """Keys (rotated when this attention uses RoPE) and values of ``x`` (b, l, d)."""
        k, v = self._split(self.k(x), self.kv_heads), self._split(self.v(x), self.kv_heads)
        return (rope(k, positions) if self.use_rope else k), v

    def forward(self, x: Tensor, positions: Tensor | None, kv: KV, bias: Tensor) -> Tensor:
        """Queries from ``x`` (b, q, d) attend to ``kv`` under ``bias`` (b, 1, q, k)."""
        b, n, _ = x.shape
        q = self._split(self.q(x), self.heads)  # (b, h, q, hd)
        if self.use_rope:
            q = rope(q, positions)
        group = self.heads // self.kv_heads
        k, v = (t.repeat_interleave(group, dim=1) for t in kv)  # (b, h, k, hd)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias  # (b, h, q, k)
        y = scores.softmax(-1) @ v  # (b, h, q, hd)
        return self.o(y.transpose(1, 2).reshape(b, n, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.up, self.down = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(nn.functional.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm self-attention block; ``forward`` returns the output and this layer's new
    keys/values appended to ``past`` (the KV cache)."""

    def __init__(self, dim: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
        self.attn = Attention(dim, heads, kv_heads, use_rope=True)
        self.mlp = MLP(dim, 4 * dim)

    def forward(self, x: Tensor, positions: Tensor, bias: Tensor,
                past: KV | None = None) -> tuple[Tensor, KV]:  # fmt: skip
        h = self.norm1(x)
        k, v = self.attn.keys_values(h, positions)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        x = x + self.attn(h, positions, (k, v), bias)
        return x + self.mlp(self.norm2(x)), (k, v)


class GPT(nn.Module):
    def __init__(self, vocab: int, dim: int, layers: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.layers = nn.ModuleList(Block(dim, heads, kv_heads) for _ in range(layers))
        self.norm = RMSNorm(dim)

    def hidden(self, input_ids: Tensor, attention_mask: Tensor,
               past: list[KV] | None = None) -> tuple[Tensor, list[KV]]:  # fmt: skip
        """Final hidden states (b, n, d) of ``input_ids`` (b, n) after ``past`` (per layer,
        (b, kv, P, hd)); ``attention_mask`` (b, P + n) covers the past and the new tokens."""
        n = input_ids.shape[1]
        positions = mask_positions(attention_mask)[:, -n:]  # (b, n)
        bias = attention_bias(attention_mask, n, causal=True)  # (b, 1, n, P + n)
        x = self.embed(input_ids)  # (b, n, d)
        present = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, positions, bias, past[i] if past is not None else None)
            present.append(kv)
        return self.norm(x), present

    def step(self, input_ids: Tensor, attention_mask: Tensor,
             past: list[KV] | None = None) -> tuple[Tensor, list[KV]]:  # fmt: skip
        """Logits (b, n, V) and the grown cache; arguments as for ``hidden``."""
        h, present = self.hidden(input_ids, attention_mask, past)
        return h @ self.embed.weight.T, present  # tied head

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                decoder_input_ids: Tensor | None = None) -> Tensor:  # fmt: skip
        if decoder_input_ids is None:  # language modeling
            return self.step(input_ids, attention_mask)[0]
        from compress.seq2seq.align import aligned, teacher_view

        ids, mask = teacher_view(input_ids, attention_mask, decoder_input_ids)  # (b, s + t)
        h = aligned(self.hidden(ids, mask)[0], input_ids.shape[1])  # (b, t, d)
        return h @ self.embed.weight.T  # the head on the decoder positions only: (b, t, V)


def check_heads(dim: int, heads: int, kv_heads: int) -> None:
    if dim % heads or heads % kv_heads or (dim // heads) % 2:
        raise ModelError(f"heads ({heads}) must divide dim ({dim}) into an even head size, and "
                         f"kv_heads ({kv_heads}) must divide heads")  # fmt: skip


def text_vocab(info: TaskInfo) -> int:
    if info.vocab_size is None or info.signature.input_names[:2] != ["input_ids", "attention_mask"]:
        raise ModelError(f"a language model needs input_ids and attention_mask; the task "
                         f"{info.task} has {describe_inputs(info)}")  # fmt: skip
    return info.vocab_size


class AttentionSpec(StrictModel):
    """Width and heads, shared by the language models' specs."""

    dim: int = Field(256, ge=16, le=8192, description="Model width.")
    heads: int = Field(4, ge=1, le=128, description="Query heads (must divide dim).")
    kv_heads: int = Field(2, ge=1, le=128, description="Key/value heads (must divide heads).")


class GPTSpec(AttentionSpec):
    """Decoder-only Transformer LM: pre-RMSNorm, RoPE, causal grouped-query attention, tied
    embedding; for seq2seq it reads the source followed by the target."""

    arch: Literal["gpt"] = Field(description="Architecture name.")
    layers: int = Field(4, ge=1, le=96, description="Transformer blocks.")


@register_arch("gpt", GPTSpec)
def gpt(spec: GPTSpec, info: TaskInfo) -> nn.Module:
    check_heads(spec.dim, spec.heads, spec.kv_heads)
    return GPT(text_vocab(info), spec.dim, spec.layers, spec.heads, spec.kv_heads)
