"""On a GPU with mamba-ssm: its fused selective-scan kernel against our loop-free PyTorch scan,
through the same Mamba blocks (forward and gradients, fp32).

Skipped with a reason elsewhere (mamba-ssm does not even import without CUDA). Also runs as a
plain script (``python3 tests/test_mamba_gpu.py``) on a machine with torch and mamba-ssm only:
it loads compress/models/mamba.py by path, which imports nothing but torch.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import torch

BLOCK_FILE = Path(__file__).resolve().parents[1] / "compress" / "models" / "mamba.py"
SHAPES = [(2, 28, 16, 16), (3, 49, 32, 8), (1, 200, 64, 16)]  # (batch, length, d_model, d_state)


def block_module():
    spec = importlib.util.spec_from_file_location("mamba_block_under_test", BLOCK_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def why_not_ready(module) -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device"
    if module.kernel_scan() is None:
        return "mamba-ssm is not importable here (scripts/device/mamba-gpu.sh builds it)"
    return None


def compare_paths(module) -> list[dict]:
    """Per shape: the largest absolute differences of outputs and of input/weight gradients
    between the kernel path and the PyTorch path; raises AssertionError beyond tolerance."""
    results = []
    for batch, length, d_model, d_state in SHAPES:
        torch.manual_seed(0)
        block = module.MambaBlock(d_model, d_state=d_state).cuda()
        h = torch.randn(batch, length, d_model, device="cuda")
        outs, grads = [], []
        for use_kernel in (True, False):
            block.scan.use_kernel = use_kernel
            block.zero_grad()
            x = h.clone().requires_grad_(True)
            out = block(x)
            out.square().sum().backward()
            outs.append(out.detach())
            grads.append([x.grad] + [p.grad.clone() for p in block.parameters()])
        out_err = (outs[0] - outs[1]).abs().max().item()
        grad_err = max(((a - b).abs().max() / b.abs().max().clamp(min=1e-6)).item()
                       for a, b in zip(*grads, strict=True))  # fmt: skip
        scale = outs[1].abs().max().item()
        results.append({"shape": (batch, length, d_model, d_state), "max_abs_out": out_err,
                        "out_scale": scale, "max_rel_grad": grad_err})  # fmt: skip
        assert out_err <= 1e-4 * max(1.0, scale), results[-1]
        assert grad_err <= 1e-3, results[-1]
    return results


def test_kernel_path_matches_the_pytorch_scan():
    import pytest

    module = block_module()
    if reason := why_not_ready(module):
        pytest.skip(reason)
    compare_paths(module)


if __name__ == "__main__":
    mod = block_module()
    if reason := why_not_ready(mod):
        print(f"SKIPPED: {reason}")
        sys.exit(3)
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, kernel "
          f"{mod.kernel_scan().__module__}.{mod.kernel_scan().__name__}")  # fmt: skip
    for row in compare_paths(mod):
        print(f"PASS {row}")
    print("kernel path == PyTorch path within tolerance (out 1e-4 × scale, grads 1e-3 relative)")
