"""Bucketed quantization, its gradients and the low-bit ONNX formats, against hand arithmetic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from compress.errors import StageFailed
from compress.export.formats import ExportJob, ParityPolicy
from compress.export.packed import pack
from compress.export.qdq import QdqOnnx
from compress.quant.functions import compression_ratio, quantize
from compress.quant.weights import LearnedLevels, StraightThrough, attach, finish, quantizable
from tests.conftest import image_info


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("bucket_size", [7, 256])
def test_each_bucket_holds_at_most_2_to_the_b_values(bits, bucket_size):
    w = torch.randn(33, 29) * torch.linspace(0.01, 3, 29)  # 957 values: the last bucket is short
    q = quantize(w, bits, bucket_size)
    values = q.levels[q.codes] * q.alpha + q.beta  # (n_buckets, k)
    assert q.codes.min() >= 0 and q.codes.max() < 2**bits
    assert max(len(torch.unique(row)) for row in values) <= 2**bits
    restored = q.dequantize()
    assert restored.shape == w.shape
    # deterministic rounding: every value within half a step of its bucket's grid
    step = (q.alpha / (2**bits - 1)).expand(-1, bucket_size).flatten()[: w.numel()]
    assert torch.all((restored - w).abs().flatten() <= step / 2 + 1e-6)


def test_bucket_extremes_are_kept_exactly():
    w = torch.tensor([[-3.0, 0.1, 0.2, 5.0]])
    assert torch.equal(quantize(w, 2, 4).dequantize()[0, [0, 3]], torch.tensor([-3.0, 5.0]))


def test_stochastic_rounding_is_unbiased():
    w = torch.tensor([0.0, 0.1, 0.37, 0.5, 0.93, 1.0]).repeat(1, 1)
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([quantize(w, 2, 6, rounding="stochastic", generator=generator)
                         .dequantize() for _ in range(4000)])  # fmt: skip
    deterministic = quantize(w, 2, 6).dequantize()
    # the mean of the draws is the value itself (within 4 standard errors), which rounding to
    # nearest is not
    stderr = draws.std(0) / 4000**0.5 + 1e-9
    assert torch.all((draws.mean(0) - w).abs() <= 4 * stderr + 1e-6)
    assert (deterministic - w).abs().max() > 0.03


def test_compression_formula_and_packing():
    assert compression_ratio(4, 256) == pytest.approx(7.529, abs=1e-3)
    assert compression_ratio(2, 256) == pytest.approx(14.22, abs=1e-2)
    assert compression_ratio(8, 256) == pytest.approx(3.879, abs=1e-3)
    codes = np.array([1, 2, 3, 0, 3], np.uint8)
    assert pack(codes, 2).tolist() == [0b00111001, 0b00000011]  # first code in the low bits
    assert pack(np.array([15, 1, 7]), 4).tolist() == [0x1F, 0x07]


def test_level_gradient_is_the_bucket_scale_times_the_weight_gradient():
    torch.manual_seed(0)
    w = torch.randn(6, 10, dtype=torch.float64)
    levels = LearnedLevels(w, bits=2, bucket_size=16, init="quantiles")
    target = torch.randn(6, 10, dtype=torch.float64)

    def loss(points: torch.Tensor) -> torch.Tensor:
        levels.levels.data = points
        return ((levels(w) - target) ** 2).sum()

    p0 = levels.levels.detach().clone()
    value = loss(p0.clone().requires_grad_(False))
    value.backward()
    autograd = levels.levels.grad.clone()
    # the paper's formula: dL/dp_j = sum over weights coded j of alpha_bucket * dL/dw_hat
    q = levels.quantized(w)
    dw = 2 * (q.dequantize() - target).flatten()
    alpha = q.alpha.expand(-1, 16).flatten()[: w.numel()]
    codes = q.codes.flatten()[: w.numel()]
    formula = torch.stack([(alpha * dw)[codes == j].sum() for j in range(4)])
    eps = 1e-6
    numeric = torch.stack([(loss(p0 + eps * e) - loss(p0 - eps * e)) / (2 * eps)
                           for e in torch.eye(4, dtype=torch.float64)])  # fmt: skip
    assert torch.allclose(autograd, formula, rtol=1e-9, atol=1e-9)
    assert torch.allclose(autograd, numeric, rtol=1e-5, atol=1e-6)


def test_levels_stay_sorted_while_they_learn():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16), nn.Linear(16, 4))
    names = quantizable(model, keep_first_last=True)
    model.requires_grad_(False)
    attach(model, names, LearnedLevels, bits=2, bucket_size=32, init="uniform")
    levels = model[2].parametrizations.weight[0].levels
    opt = torch.optim.SGD([levels], lr=5.0)  # large steps: points would cross unsorted
    x, y = torch.randn(64, 8), torch.randint(0, 4, (64,))
    crossed = False
    for _ in range(20):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        crossed |= bool((levels.diff() < 0).any())
        model(x)  # the next pass sorts them before use
        assert torch.all(levels.diff() >= 0)
    assert crossed  # the test did exercise an unsorted step
    codes = finish(model, names)
    assert len(torch.unique(model[2].weight)) <= 4 * codes["2.weight"].codes.shape[0]


def test_straight_through_trains_the_shadow_weights_and_ends_on_the_grid():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.Linear(32, 4))
    names = quantizable(model, keep_first_last=True)
    attach(model, names, StraightThrough, bits=2, bucket_size=64, rounding="deterministic",
           seed=0)  # fmt: skip
    shadow = model[2].parametrizations.weight.original
    before = shadow.detach().clone()
    nn.functional.cross_entropy(model(torch.randn(16, 8)), torch.randint(0, 4, (16,))).backward()
    assert shadow.grad is not None and shadow.grad.abs().sum() > 0
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    assert not torch.equal(shadow.detach(), before)  # fp shadow weights moved
    codes = finish(model, names)
    assert list(codes) == ["2.weight"]
    assert torch.equal(model[2].weight.detach(), codes["2.weight"].dequantize())
    assert len(torch.unique(model[2].weight[:2])) <= 4  # 64 weights, one bucket, 4 values


def test_a_qdq_artifact_outside_its_step_tolerance_is_refused(tmp_path):
    torch.manual_seed(0)
    info = image_info()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)).eval()
    inputs = {"input": np.random.default_rng(0).random((64, 1, 8, 8), dtype=np.float32)}
    path = tmp_path / "m.qdq.onnx"

    def job(steps: float) -> ExportJob:
        return ExportJob(model, None, info, inputs, "random", path, 20,  # type: ignore[arg-type]
                         ParityPolicy(1e-4, 1e-3, steps, 0.0), tmp_path,
                         lambda: iter([inputs]))  # fmt: skip

    done = QdqOnnx().export(job(8.0))
    ops = {n.op_type for n in onnx.load(str(done.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and done.precision == "int8"
    assert 0 < done.parity["max_error_steps"] <= 8
    path.unlink()
    with pytest.raises(StageFailed, match="output steps"):
        QdqOnnx().export(job(1e-3))
    assert not path.exists() and list(tmp_path.iterdir()) == []
