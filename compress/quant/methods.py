"""The ways the quantize stage makes a low-bit model from a full-precision one (the fifth,
``brevitas``, swaps in Brevitas layers: compress/quant/brevitas_layers.py).

- ``ptq``: post-training quantization, no training. 8 bits: ONNX Runtime's static quantization
  at export (calibrated on training data); fewer bits: round-to-nearest on the same buckets.
- ``qat``: quantized training on labels alone (the baseline without a teacher).
- ``qkd``: quantized distillation: the same training against the teacher,
  a·T²·KL(teacher ‖ student at T) + (1 − a)·CE.
- ``dq``: differentiable quantization: the weights stay, the levels of every tensor are learned
  against the distillation loss with the full-precision model as teacher.

qat, qkd and dq start from the full-precision model's weights and see the same batches in the
same order, so their differences are the method's alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compress.quant.functions import Quantized, quantize
from compress.quant.weights import LearnedLevels, StraightThrough, attach, quantizable

Method = Literal["ptq", "qat", "qkd", "dq", "brevitas"]  # brevitas: see brevitas_layers.py
TRAINED = ("qat", "qkd", "dq")


@dataclass(frozen=True)
class QuantSettings:
    bits: int
    bucket_size: int
    rounding: str  # "deterministic" or "stochastic", for qat and qkd
    keep_first_last: bool
    levels_init: str  # dq: "uniform" or "quantiles"


def round_to_nearest(model: nn.Module, s: QuantSettings) -> dict[str, Quantized]:
    """Post-training quantization below 8 bits: every quantizable weight rounded to its
    bucket's nearest level, in place; returns the codes."""
    modules = dict(model.named_modules())
    codes = {}
    with torch.no_grad():
        for name in quantizable(model, s.keep_first_last):
            weight = modules[name].weight
            q = quantize(weight, s.bits, s.bucket_size)
            weight.copy_(q.dequantize())
            codes[f"{name}.weight"] = q
    return codes


def prepare(model: nn.Module, method: Method, s: QuantSettings, seed: int) -> list[str]:
    """Attach the method's parametrizations; return the quantized modules' names. For dq every
    other parameter is frozen: only the levels learn."""
    names = quantizable(model, s.keep_first_last)
    if method == "dq":
        model.requires_grad_(False)
        attach(model, names, LearnedLevels, bits=s.bits, bucket_size=s.bucket_size,
               init=s.levels_init)  # fmt: skip
    else:
        attach(model, names, StraightThrough, bits=s.bits, bucket_size=s.bucket_size,
               rounding=s.rounding, seed=seed)  # fmt: skip
    return names


def labels_only(scores: Tensor, labels: Tensor, _rows: Tensor) -> Tensor:
    """qat's objective: cross-entropy on the labels, no teacher."""
    return F.cross_entropy(scores, labels)
