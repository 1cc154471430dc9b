"""Parity: the exported artifact must compute what the PyTorch model computes, on real inputs.

An output passes when every element satisfies |onnx - torch| <= atol + rtol * |torch| (the
``numpy.allclose`` rule). The report keeps the max absolute and relative error per output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from compress.errors import StageFailed


@dataclass(frozen=True)
class OutputParity:
    output: str
    max_abs_error: float
    max_rel_error: float
    passed: bool


def compare(
    name: str, reference: np.ndarray, actual: np.ndarray, atol: float, rtol: float
) -> OutputParity:
    if reference.shape != actual.shape:
        return OutputParity(name, float("inf"), float("inf"), False)
    diff = np.abs(actual.astype(np.float64) - reference.astype(np.float64))
    scale = np.abs(reference.astype(np.float64))
    rel = diff / np.maximum(scale, np.finfo(np.float32).tiny)
    passed = bool(np.all(diff <= atol + rtol * scale))
    return OutputParity(name, float(diff.max()), float(rel.max()), passed)


def check_parity(
    artifact: str,
    references: dict[str, np.ndarray],
    actuals: dict[str, np.ndarray],
    atol: float,
    rtol: float,
) -> dict:
    """Compare every output; raise StageFailed naming each failing output and its errors."""
    results = [compare(n, references[n], actuals[n], atol, rtol) for n in references]
    summary = {
        "atol": atol, "rtol": rtol, "passed": all(r.passed for r in results),
        "max_abs_error": max(r.max_abs_error for r in results),
        "max_rel_error": max(r.max_rel_error for r in results),
        "outputs": [asdict(r) for r in results],
    }  # fmt: skip
    if not summary["passed"]:
        lines = [
            f"  {r.output}: max abs error {r.max_abs_error:.3g}, "
            f"max rel error {r.max_rel_error:.3g} ({'ok' if r.passed else 'FAILED'})"
            for r in results
        ]
        raise StageFailed(
            f"parity check failed for {artifact} (atol {atol:g}, rtol {rtol:g}):\n"
            + "\n".join(lines)
        )
    return summary
