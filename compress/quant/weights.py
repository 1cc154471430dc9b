"""Quantized weights inside a model, as torch parametrizations, so the shared training loop,
its checkpoints and its resume work unchanged.

Quantized training (with or without a teacher): the module keeps its full-precision *shadow*
weight w; every forward pass uses Q(w), and the gradient taken at Q(w) is applied to w
(straight-through: w + (Q(w) − w).detach() has the value Q(w) and the gradient of w). At the end
the weight becomes Q(w).

Differentiable quantization: the weight is fixed and the levels of its tensor are learned. The
forward pass uses α·p[c(i)] + β for weight i, so autograd gives exactly the paper's gradient of a
point, dL/dp_j = Σ_{i: c(i)=j} α_bucket(i) · dL/dŵ_i. The levels are kept sorted, so the
nearest-level assignment stays an ordered partition.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from compress.quant.functions import Quantized, bucket_scales, buckets, quantize, uniform_levels

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.Embedding)


class StraightThrough(nn.Module):
    """Q(w) in the forward pass, the gradient of w in the backward pass."""

    def __init__(self, bits: int, bucket_size: int, rounding: str, seed: int) -> None:
        super().__init__()
        self.bits, self.bucket_size, self.rounding, self.seed = bits, bucket_size, rounding, seed
        # stochastic draws so far: saved with the training state, so a resumed run draws on
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))

    def quantized(self, w: Tensor) -> Quantized:
        if self.rounding == "stochastic" and self.training:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.draws))
            self.draws += 1
            return quantize(w, self.bits, self.bucket_size, rounding="stochastic",
                            generator=generator)  # fmt: skip
        return quantize(w, self.bits, self.bucket_size)

    def forward(self, w: Tensor) -> Tensor:
        return w + (self.quantized(w).dequantize() - w).detach()


class LearnedLevels(nn.Module):
    """The tensor's 2^b levels as parameters; the weight itself is fixed."""

    def __init__(self, w: Tensor, bits: int, bucket_size: int, init: str) -> None:
        super().__init__()
        self.bits, self.bucket_size = bits, bucket_size
        self.levels = nn.Parameter(initial_levels(w, bits, bucket_size, init))  # (s,)

    def quantized(self, w: Tensor) -> Quantized:
        with torch.no_grad():  # sorted before use: the assignment below needs ordered levels
            self.levels.copy_(torch.sort(self.levels).values)
        return quantize(w, self.bits, self.bucket_size, levels=self.levels.detach())

    def forward(self, w: Tensor) -> Tensor:
        q = self.quantized(w.detach())
        q.levels = self.levels  # the same codes, differentiable in the levels
        return q.dequantize()


def initial_levels(w: Tensor, bits: int, bucket_size: int, init: str) -> Tensor:
    """Uniform levels, or the quantiles of the tensor's scaled values (denser where the weights
    are)."""
    if init == "uniform":
        return uniform_levels(bits).to(w.dtype)
    values = buckets(w, bucket_size)  # (n_buckets, k)
    alpha, beta = bucket_scales(values)
    scaled = ((values - beta) / alpha).flatten()
    return torch.quantile(scaled, torch.linspace(0.0, 1.0, 2**bits, dtype=scaled.dtype))


def quantizable(model: nn.Module, keep_first_last: bool) -> list[str]:
    """Names of the modules whose weights are quantized, in model order: every convolution,
    linear and embedding layer, less the first and the last when they stay full precision."""
    names = [name for name, m in model.named_modules() if isinstance(m, QUANTIZABLE)]
    return names[1:-1] if keep_first_last else names


def attach(model: nn.Module, names: list[str], make: type[nn.Module], **kwargs: object) -> None:
    """Parametrize the weight of each named module with ``make(**kwargs)`` (LearnedLevels also
    gets the weight, for its initial levels)."""
    modules = dict(model.named_modules())
    for i, name in enumerate(names):
        module = modules[name]
        if make is LearnedLevels:
            p = LearnedLevels(module.weight.detach(), **kwargs)  # type: ignore[arg-type]
        else:
            p = make(**{**kwargs, "seed": int(kwargs.get("seed", 0)) * 1000 + i})
        parametrize.register_parametrization(module, "weight", p)


def finish(model: nn.Module, names: list[str]) -> dict[str, Quantized]:
    """Fix every quantized weight at its final Q(w) (deterministic rounding, or the learned
    levels) and drop the parametrizations; return the codes by parameter name."""
    modules = dict(model.named_modules())
    codes = {}
    with torch.no_grad():
        for name in names:
            module = modules[name]
            quantizer = module.parametrizations.weight[0].eval()
            q = quantizer.quantized(module.parametrizations.weight.original)
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
            module.weight.copy_(q.dequantize())
            codes[f"{name}.weight"] = q
    return codes
