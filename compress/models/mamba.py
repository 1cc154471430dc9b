"""The Mamba block (Gu & Dao 2023) in plain PyTorch, and its selective scan written loop-free.

This module imports torch alone (no pydantic, nothing else of the project), so a GPU machine with
nothing but torch and mamba-ssm can load it by path and compare the two scan paths.

The recurrence, per batch element, channel d and state n (``selective_scan_ref`` in mamba-ssm):

    Δ_l = softplus(δ_l + bias)          x_l = exp(Δ_l A) x_{l-1} + Δ_l B_l u_l
    y_l = Σ_n C_l x_l + D u_l           out_l = y_l · silu(z_l)

Unrolled, ``x_l = Σ_{s≤l} exp(S_l − S_s) Δ_s B_s u_s`` with ``S_l = Σ_{k≤l} Δ_k A`` (a cumulative
sum). Since A < 0 and Δ > 0, S decreases, so ``S_l − S_s ≤ 0`` for every s ≤ l: only those
differences are exponentiated (the others are masked to −∞ first), never ``exp(S_l)`` and
``exp(−S_s)`` apart, which overflow. The quadratic form is evaluated in chunks of the sequence
carrying the state x between them, which bounds memory at (b, c, c, d, n) for chunk length c and
exports to ONNX as CumSum, Exp, Mul and ReduceSum: no ONNX Loop, and no step unrolled per time
step (only one step per chunk).

Where mamba-ssm imports (it needs CUDA) and the tensors are on a GPU, the block calls its fused
``selective_scan_fn`` instead; exporting always takes the loop-free path.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DT_MIN, DT_MAX, DT_FLOOR = 1e-3, 0.1, 1e-4  # the reference initialisation of Δ


@functools.cache
def kernel_scan() -> Callable[..., Tensor] | None:
    """mamba-ssm's fused ``selective_scan_fn``, or None where it does not import (no CUDA, not
    installed: its package loads its CUDA extension at import time)."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # ImportError, or an OSError/RuntimeError from a CUDA library: no kernel
        return None
    return selective_scan_fn


def chunked_scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor,
                 z: Tensor, chunk: int = 8) -> Tensor:  # fmt: skip
    """The selective scan with Δ already positive: u, delta, z (b, d, l); A (d, n);
    B, C (b, n, l); D (d,). Returns (b, d, l). Loop-free within each chunk of ``chunk`` steps."""
    b, d, length = u.shape
    n = A.shape[1]
    log_decay = delta.transpose(1, 2)[..., None] * A  # Δ·A (b, l, d, n), ≤ 0
    drive = (delta * u).transpose(1, 2)[..., None] * B.transpose(1, 2)[:, :, None, :]  # (b,l,d,n)
    c_t = C.transpose(1, 2)[:, :, None, :]  # (b, l, 1, n)
    state = u.new_zeros(b, d, n)  # x before the chunk (b, d, n)
    ys = []
    for start in range(0, length, chunk):  # one step per chunk, not per time step
        stop = min(start + chunk, length)
        cum = log_decay[:, start:stop].cumsum(1)  # S_l − S_start (b, c, d, n)
        steps = stop - start
        diff = cum[:, :, None] - cum[:, None]  # S_l − S_s (b, c_l, c_s, d, n)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=u.device).tril()
        causal = causal[None, :, :, None, None]  # s ≤ l
        weights = torch.where(causal, diff, float("-inf")).exp()  # only differences ≤ 0
        x = (weights * drive[:, None, start:stop]).sum(2)  # Σ_s ... (b, c, d, n)
        x = x + cum.exp() * state[:, None]  # the state carried in, decayed (b, c, d, n)
        state = x[:, -1]
        ys.append((x * c_t[:, start:stop]).sum(-1))  # y = Σ_n C x (b, c, d)
    y = torch.cat(ys, 1).transpose(1, 2)  # (b, d, l)
    y = y + D[:, None] * u
    return y * F.silu(z)


def scan_flops(batch: int, d: int, n: int, length: int) -> int:
    """FLOPs of the recurrent scan: per step, channel and state Δ·A and its exp (2), Δ·B·u (2),
    the update exp(ΔA)·x + ΔBu (2) and the read-out Σ_n C·x (2); per step and channel the skip
    D·u + y (2) and the gate y·silu(z) (1; the SiLU itself, like every activation here, is not
    counted). This is the work of the recurrence as mamba-ssm's kernel runs it; the chunked
    loop-free form does about chunk/2 times more elementwise work in exchange for no loop."""
    return batch * length * d * (8 * n + 3)


class SelectiveScan(nn.Module):
    """The scan as a module, so the FLOPs counter can ask it for its own count (its arithmetic
    is elementwise, which torch's counter does not see)."""

    def __init__(self, chunk: int = 8) -> None:
        super().__init__()
        self.chunk = chunk
        self.use_kernel = True  # mamba-ssm's kernel where it imports and the input is on CUDA

    def forward(self, u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor,
                z: Tensor, delta_bias: Tensor) -> Tensor:  # fmt: skip
        """u, delta (before bias and softplus), z (b, d, l); A (d, n); B, C (b, n, l);
        D, delta_bias (d,) → (b, d, l)."""
        kernel = kernel_scan() if self.use_kernel and u.is_cuda else None
        if kernel is not None and not torch.compiler.is_compiling():
            return kernel(u.contiguous(), delta.contiguous(), A, B.contiguous(), C.contiguous(),
                          D, z.contiguous(), delta_bias, delta_softplus=True)  # fmt: skip
        positive = F.softplus(delta + delta_bias[:, None])  # Δ (b, d, l)
        return chunked_scan(u, positive, A, B, C, D, z, self.chunk)

    def extra_flops(self, inputs: tuple[Tensor, ...], output: Tensor) -> int:
        u, A = inputs[0], inputs[2]
        return scan_flops(u.shape[0], A.shape[0], A.shape[1], u.shape[2])


class MambaBlock(nn.Module):
    """mamba-ssm's ``Mamba`` (mamba_simple.py) without its inference cache: (b, l, d_model) in
    and out."""

    def __init__(self, d_model: int, d_state: int = 16, d_conv: int = 4, expand: int = 2,
                 dt_rank: int | None = None, chunk: int = 8) -> None:  # fmt: skip
        super().__init__()
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.d_state = d_state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                                padding=d_conv - 1)  # fmt: skip
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32))
                                  .repeat(self.d_inner, 1))  # (d, n): A = −exp(A_log) = −1..−N
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.scan = SelectiveScan(chunk)
        self._init_dt()

    def _init_dt(self) -> None:
        """Δ's projection as in the reference: weights uniform in ±dt_rank^-½, and a bias that
        softplus maps onto a log-uniform draw in [1e-3, 0.1] (the inverse softplus of it)."""
        std = self.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(DT_MAX) - math.log(DT_MIN))
                       + math.log(DT_MIN)).clamp(min=DT_FLOOR)  # fmt: skip
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus⁻¹(dt)

    def forward(self, hidden: Tensor) -> Tensor:
        length = hidden.shape[1]
        x, z = self.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)  # (b, d, l) each
        x = F.silu(self.conv1d(x)[..., :length])  # causal depthwise conv (b, d, l)
        dt, B, C = self.x_proj(x.transpose(1, 2)).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1)  # (b, l, r), (b, l, n) twice
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # (b, d, l), bias in the scan
        A = -torch.exp(self.A_log.float())  # (d, n)
        y = self.scan(x, delta, A, B.transpose(1, 2), C.transpose(1, 2), self.D.float(), z,
                      self.dt_proj.bias.float())  # (b, d, l)  # fmt: skip
        return self.out_proj(y.transpose(1, 2))  # (b, l, d_model)
