"""Bucketed quantization of one weight tensor, as Polino, Pascanu and Alistarh define it.

The tensor is flattened and cut into buckets of k values (the last one padded with its own last
value, so its min and max are unchanged). Each bucket is scaled to [0, 1] by its minimum β and
range α (α < 1e-10 → 1), each scaled value x is mapped to one of s = 2^b levels in [0, 1], and
mapped back:

    x = (v − β) / α,     q = level[code(x)],     v̂ = α·q + β

Uniform levels are i / (s − 1); rounding is deterministic, code = round(x·(s−1)), or stochastic,
code = floor(x·(s−1)) + 1[U < frac(x·(s−1))], which is unbiased: E[q] = x. Non-uniform levels are
any sorted points in [0, 1]; a value takes the nearest one. A bucket stores k codes of b bits and
two fp32 scalars, so against fp32 the tensor shrinks by k·32 / (k·b + 64).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

TINY_RANGE = 1e-10
FLOAT_BITS = 32


@dataclass
class Quantized:
    """One tensor as codes plus per-bucket scales: everything the packed artifact stores."""

    codes: Tensor  # (n_buckets, k) int64 in [0, s)
    alpha: Tensor  # (n_buckets, 1) bucket range
    beta: Tensor  # (n_buckets, 1) bucket minimum
    levels: Tensor  # (s,) sorted points in [0, 1]
    shape: tuple[int, ...]  # the tensor's shape

    def dequantize(self) -> Tensor:
        values = self.levels[self.codes] * self.alpha + self.beta  # (n_buckets, k)
        numel = int(torch.tensor(self.shape).prod()) if self.shape else 1
        return values.flatten()[:numel].view(self.shape)


def uniform_levels(bits: int) -> Tensor:
    """The 2^b evenly spaced levels i / (2^b − 1) of [0, 1]."""
    return torch.linspace(0.0, 1.0, 2**bits)


def buckets(w: Tensor, bucket_size: int) -> Tensor:
    """(n_buckets, k): ``w`` flattened, the last bucket padded with its last value."""
    flat = w.detach().flatten()
    pad = (-flat.numel()) % bucket_size
    if pad:
        flat = torch.cat([flat, flat[-1:].expand(pad)])
    return flat.view(-1, bucket_size)


def bucket_scales(values: Tensor) -> tuple[Tensor, Tensor]:
    """α (range) and β (minimum) per bucket, each (n_buckets, 1)."""
    beta = values.min(dim=1, keepdim=True).values
    alpha = values.max(dim=1, keepdim=True).values - beta
    return torch.where(alpha < TINY_RANGE, torch.ones_like(alpha), alpha), beta


def nearest_level(x: Tensor, levels: Tensor) -> Tensor:
    """Index of the nearest of the sorted ``levels`` for every element of ``x``."""
    midpoints = (levels[1:] + levels[:-1]) / 2
    return torch.bucketize(x, midpoints)


def quantize(w: Tensor, bits: int, bucket_size: int, *, rounding: str = "deterministic",
             levels: Tensor | None = None, generator: torch.Generator | None = None) -> Quantized:
    """``w`` quantized to ``bits`` bits per value in buckets of ``bucket_size``: uniform levels
    with deterministic or stochastic rounding, or the nearest of the given sorted ``levels``."""
    values = buckets(w, bucket_size)  # (n_buckets, k)
    alpha, beta = bucket_scales(values)
    x = ((values - beta) / alpha).clamp(0.0, 1.0)  # (n_buckets, k) in [0, 1]
    if levels is not None:
        return Quantized(nearest_level(x, levels), alpha, beta, levels, tuple(w.shape))
    top = 2**bits - 1
    if rounding == "deterministic":
        codes = torch.round(x * top)
    else:  # stochastic: round up with probability equal to the fractional part
        low = torch.floor(x * top)
        draw = torch.rand(x.shape, generator=generator, dtype=x.dtype)
        codes = low + (draw < x * top - low).to(x.dtype)
    return Quantized(codes.long(), alpha, beta, uniform_levels(bits).to(w.dtype), tuple(w.shape))


def compression_ratio(bits: int, bucket_size: int) -> float:
    """fp32 bits over quantized bits per bucket: k·32 / (k·b + 2·32)."""
    return bucket_size * FLOAT_BITS / (bucket_size * bits + 2 * FLOAT_BITS)
