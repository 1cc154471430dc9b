"""The Mamba block against the paper's recurrence (fp64), its initialisation, its FLOPs by hand,
and its loop-free ONNX export in ONNX Runtime."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compress.models import build_model, count_flops
from compress.models.mamba import MambaBlock, chunked_scan
from tests.conftest import image_info, spec_of


def recurrence(block: MambaBlock, h: torch.Tensor) -> torch.Tensor:
    """The block's forward from the equations of Gu & Dao (2023), one time step at a time:
    x, z = W_in h; x = SiLU(causal depthwise conv x); (δ, B, C) = W_x x; Δ = softplus(W_Δ δ + b);
    s_t = exp(Δ_t A) s_{t−1} + Δ_t B_t x_t; y_t = C_t·s_t + D x_t; out = W_out (y ⊙ SiLU(z))."""
    b, length, _ = h.shape
    d, n, r = block.d_inner, block.d_state, block.dt_rank
    xz = h @ block.in_proj.weight.T  # (b, l, 2d)
    x, z = xz[..., :d], xz[..., d:]
    w, bias = block.conv1d.weight[:, 0], block.conv1d.bias  # (d, k), (d,)
    k = w.shape[1]
    conv = torch.stack([bias + sum(w[:, j] * x[:, t - (k - 1) + j] for j in range(k)
                                   if t - (k - 1) + j >= 0) for t in range(length)], 1)
    x = F.silu(conv)  # (b, l, d)
    proj = x @ block.x_proj.weight.T  # (b, l, r + 2n)
    delta = F.softplus(proj[..., :r] @ block.dt_proj.weight.T + block.dt_proj.bias)  # (b, l, d)
    B, C = proj[..., r : r + n], proj[..., r + n :]  # (b, l, n)
    A = -torch.exp(block.A_log)  # (d, n)
    s = h.new_zeros(b, d, n)
    ys = []
    for t in range(length):
        s = torch.exp(delta[:, t, :, None] * A) * s + (delta[:, t, :, None] * B[:, t, None, :]
                                                       * x[:, t, :, None])  # fmt: skip
        ys.append((s * C[:, t, None, :]).sum(-1) + block.D * x[:, t])
    y = torch.stack(ys, 1) * F.silu(z)  # (b, l, d)
    return y @ block.out_proj.weight.T


@pytest.mark.parametrize("seed", range(4))
def test_block_equals_the_recurrence_in_fp64(seed):
    gen = torch.Generator().manual_seed(seed)
    d_model, d_state, d_conv, expand, length, chunk = (
        int(v) for v in torch.randint(1, 9, (6,), generator=gen) + torch.tensor([3, 0, 0, 0, 4, 0])
    )  # random shapes, chunks that do and do not divide the length
    torch.manual_seed(seed)
    block = MambaBlock(d_model, d_state, d_conv, min(expand, 3), chunk=chunk).double()
    with torch.no_grad():  # a larger Δ than the init gives, so the state decays visibly
        block.dt_proj.bias.add_(2.0)
    h = torch.randn(2, length, d_model, dtype=torch.float64, generator=gen)
    expected = recurrence(block, h)
    got = block(h)
    assert got.shape == (2, length, d_model)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_a_long_sequence_with_strong_decay_stays_finite():
    """exp is only taken of differences ≤ 0: no overflow where exp(−ΣΔA) alone would be inf."""
    u = torch.ones(1, 1, 400)
    delta = torch.full((1, 1, 400), 5.0)  # Σ Δ·A = −2000 · 16: exp(+32000) would overflow
    A, B, C = torch.full((1, 1), -16.0), torch.ones(1, 1, 400), torch.ones(1, 1, 400)
    y = chunked_scan(u, delta, A, B, C, torch.zeros(1), torch.full((1, 1, 400), 30.0), chunk=64)
    assert torch.isfinite(y).all()
    # steady state: s = Δ u / (1 − e^{ΔA}) ≈ 5, times silu(30) ≈ 30
    assert y[0, 0, -1].item() == pytest.approx(5 * 30, rel=1e-4)


def test_reference_initialisation():
    torch.manual_seed(0)
    block = MambaBlock(32, d_state=16)
    A = -torch.exp(block.A_log)
    torch.testing.assert_close(A, -torch.arange(1.0, 17.0).repeat(64, 1))
    assert torch.equal(block.D, torch.ones(64))
    assert block.dt_rank == 2 and block.in_proj.bias is None and block.out_proj.bias is None
    dt = F.softplus(block.dt_proj.bias.detach())  # the inverse softplus undone: log-uniform
    assert dt.min() >= 1e-3 - 1e-7 and dt.max() <= 0.1 + 1e-7
    assert math.log(dt.max() / dt.min()) > 3  # spread over most of the two decades


def test_flops_count_the_scan_by_hand():
    spec = {"arch": "mamba", "d_model": 4, "d_state": 3, "d_conv": 2, "expand": 2}
    info = image_info((1, 5, 6), classes=7)  # rows: 5 tokens of 6 values
    model = build_model(spec_of(spec), info)
    steps, v, dm, di, n, k, r, c = 5, 6, 4, 8, 3, 2, 1, 7
    expected = (2 * steps * v * dm  # embed
                + 2 * steps * dm * 2 * di  # in_proj
                + 2 * (steps + k - 1) * di * k  # depthwise conv (before cutting to causal length)
                + 2 * steps * di * (r + 2 * n)  # x_proj
                + 2 * steps * r * di  # Δ projection
                + steps * di * (8 * n + 3)  # the scan: recurrence, skip and gate
                + 2 * steps * di * dm  # out_proj
                + 2 * dm * c)  # head  # fmt: skip
    assert count_flops(model, info) == expected


def test_ensemble_flops_are_the_members_summed():
    info = image_info((1, 8, 8))
    members = [{"arch": "mamba", "d_model": 4}, {"arch": "mamba", "d_model": 8, "layers": 2}]
    each = [count_flops(build_model(spec_of(m), info), info) for m in members]
    ensemble = build_model(spec_of({"arch": "mamba-ensemble", "members": members}), info)
    assert count_flops(ensemble, info) == sum(each)


def test_patches_that_do_not_tile_the_image_are_a_model_error():
    from compress.errors import ModelError

    with pytest.raises(ModelError, match="5×5 patches do not tile 8×8 images"):
        build_model(spec_of({"arch": "mamba", "sequence": "patches", "patch": 5}), image_info())


def test_onnx_export_is_loop_free_and_agrees_in_fp32(tmp_path):
    """Patches (rows are exported by the pipeline test in test_progressive.py)."""
    import onnx

    from compress.export.onnx import export_onnx
    from compress.runtime import OrtModel

    torch.manual_seed(0)
    info = image_info((1, 12, 12))
    spec = {"arch": "mamba", "d_model": 8, "layers": 2, "sequence": "patches", "patch": 3,
            "chunk": 5}  # 16 patches: 4 chunks of 5, 5, 5 and 1 steps  # fmt: skip
    model = build_model(spec_of(spec), info).eval()
    x = torch.rand(5, 1, 12, 12)
    path = tmp_path / "m.onnx"
    export_onnx(model, info, {"input": x}, path, opset=20)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "Loop" not in ops and "Scan" not in ops
    assert ops.count("CumSum") == 2 * 4  # one per chunk and layer: nothing per time step
    with torch.no_grad():
        expected = model(x).numpy()
    got = OrtModel(path).scores({"input": x.numpy()})
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
