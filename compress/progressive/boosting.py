"""Boosting-style example weights (B-DISTIL): examples where the ensemble so far still disagrees
with the teacher weigh more in the next student's loss.

The disagreement is the per-example soft loss T²·KL(σ(g/T) ‖ σ(F_{t−1}/T)); the weight is
exponential in it, relative to its mean: ``w_i ∝ exp(β · min(r_i / mean(r), CAP))``, normalised to
mean 1. The cap keeps a few outliers (mislabelled digits) from taking the whole loss. β = 0 gives
equal weights; the first student, with no ensemble before it, always gets equal weights.
"""

from __future__ import annotations

import numpy as np

CAP = 5.0


def disagreement(ensemble: np.ndarray, teacher: np.ndarray, temperature: float) -> np.ndarray:
    """T²·KL(σ(teacher/T) ‖ σ(ensemble/T)) per example: (n, k) scores → (n,)."""

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z.astype(np.float64) / temperature
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    t_log, e_log = log_softmax(teacher), log_softmax(ensemble)
    return (np.exp(t_log) * (t_log - e_log)).sum(1) * temperature**2


def boosting_weights(ensemble: np.ndarray | None, teacher: np.ndarray, temperature: float,
                     strength: float) -> np.ndarray:  # fmt: skip
    """Weights (n,) of mean 1 for the next student; ``ensemble`` is None before the first."""
    n = len(teacher)
    if ensemble is None or strength == 0:
        return np.ones(n, dtype=np.float32)
    r = disagreement(ensemble, teacher, temperature)
    relative = np.minimum(r / max(float(r.mean()), 1e-12), CAP)
    w = np.exp(strength * (relative - relative.max()))  # ≤ 1: no overflow
    return (w / w.mean()).astype(np.float32)
