"""The encoder-decoder student (``encdec``) of "Return of the Encoder" (Elfeki et al., 2025).

About two thirds of the layers in the encoder; pre-RMSNorm; RoPE in self-attention, with the
encoder's positions centred on the middle of each source (``p - (len - 1) // 2``) and the
decoder's counted from 0; no RoPE in cross-attention; grouped-query attention; one embedding
shared by encoder and decoder and tied to the output head.

Generation splits the model where its cost splits: ``encode`` runs once per source and returns
every decoder layer's cross-attention keys and values; ``decode_step`` runs once per generated
token with the self-attention KV cache. ``forward`` (teacher forcing) is the two together.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from compress.models.gpt import (
    KV,
    Attention,
    AttentionSpec,
    Block,
    RMSNorm,
    attention_bias,
    check_heads,
    mask_positions,
    text_vocab,
)
from compress.models.zoo import register_arch
from compress.tasks import TaskInfo


def centred_positions(mask: Tensor) -> Tensor:
    """Encoder positions centred on each source's middle: (b, s) mask -> (b, s)."""
    length = mask.sum(-1, keepdim=True)  # (b, 1)
    return mask_positions(mask) - torch.div(length - 1, 2, rounding_mode="floor")


class DecoderBlock(nn.Module):
    """Pre-norm causal self-attention (RoPE, KV cache), cross-attention (no RoPE), MLP."""

    def __init__(self, dim: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.self_block = Block(dim, heads, kv_heads)  # self-attention and MLP
        self.norm_cross = RMSNorm(dim)
        self.cross = Attention(dim, heads, kv_heads, use_rope=False)

    def forward(self, x: Tensor, positions: Tensor, self_bias: Tensor, past: KV | None,
                cross_kv: KV, cross_bias: Tensor) -> tuple[Tensor, KV]:  # fmt: skip
        b = self.self_block
        h = b.norm1(x)
        k, v = b.attn.keys_values(h, positions)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        x = x + b.attn(h, positions, (k, v), self_bias)
        x = x + self.cross(self.norm_cross(x), None, cross_kv, cross_bias)
        return x + b.mlp(b.norm2(x)), (k, v)


class EncoderDecoder(nn.Module):
    def __init__(self, vocab: int, dim: int, encoder_layers: int, decoder_layers: int,
                 heads: int, kv_heads: int) -> None:  # fmt: skip
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)  # shared by encoder, decoder and the head
        nn.init.normal_(self.embed.weight, std=0.02)
        self.encoder = nn.ModuleList(Block(dim, heads, kv_heads) for _ in range(encoder_layers))
        self.encoder_norm = RMSNorm(dim)
        self.decoder = nn.ModuleList(
            DecoderBlock(dim, heads, kv_heads) for _ in range(decoder_layers)
        )
        self.decoder_norm = RMSNorm(dim)

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> list[KV]:
        """Each decoder layer's cross-attention keys and values of the source (b, s):
        per layer (b, kv_heads, s, head_dim) twice, computed once per source."""
        x = self.embed(input_ids)  # (b, s, d)
        positions = centred_positions(attention_mask)
        bias = attention_bias(attention_mask, input_ids.shape[1], causal=False)  # (b, 1, 1, s)
        for layer in self.encoder:
            x, _ = layer(x, positions, bias)
        memory = self.encoder_norm(x)  # (b, s, d)
        return [layer.cross.keys_values(memory, None) for layer in self.decoder]

    def decode_step(self, decoder_input_ids: Tensor, attention_mask: Tensor, cross: list[KV],
                    past: list[KV] | None = None) -> tuple[Tensor, list[KV]]:  # fmt: skip
        """Logits (b, n, V) of the decoder inputs (b, n) after ``past`` (per layer (b, kv, P, hd));
        ``attention_mask`` (b, s) is the source's, for cross-attention."""
        n = decoder_input_ids.shape[1]
        done = past[0][0].shape[2] if past is not None else 0
        positions = (torch.arange(n) + done)[None, :].expand(decoder_input_ids.shape[0], n)
        self_mask = torch.ones(positions.shape[0], done + n, dtype=attention_mask.dtype)
        self_bias = attention_bias(self_mask, n, causal=True)  # (b, 1, n, P + n)
        cross_bias = attention_bias(attention_mask, n, causal=False)  # (b, 1, 1, s)
        x = self.embed(decoder_input_ids)  # (b, n, d)
        present = []
        for i, layer in enumerate(self.decoder):
            x, kv = layer(x, positions, self_bias, past[i] if past is not None else None,
                          cross[i], cross_bias)  # fmt: skip
            present.append(kv)
        return self.decoder_norm(x) @ self.embed.weight.T, present  # (b, n, V)

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                decoder_input_ids: Tensor) -> Tensor:  # fmt: skip
        cross = self.encode(input_ids, attention_mask)
        return self.decode_step(decoder_input_ids, attention_mask, cross)[0]  # (b, t, V)


class EncDecSpec(AttentionSpec):
    """Encoder-decoder student: pre-RMSNorm, RoPE (centred in the encoder), GQA, no RoPE in
    cross-attention, one embedding shared and tied to the head."""

    arch: Literal["encdec"] = Field(description="Architecture name.")
    encoder_layers: int = Field(4, ge=1, le=96, description="Encoder blocks (about 2/3).")
    decoder_layers: int = Field(2, ge=1, le=96, description="Decoder blocks (about 1/3).")


@register_arch("encdec", EncDecSpec)
def encdec(spec: EncDecSpec, info: TaskInfo) -> nn.Module:
    check_heads(spec.dim, spec.heads, spec.kv_heads)
    return EncoderDecoder(text_vocab(info), spec.dim, spec.encoder_layers, spec.decoder_layers,
                          spec.heads, spec.kv_heads)  # fmt: skip
