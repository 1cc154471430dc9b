"""The loss of student t: the ensemble F_t = F_{t−1} + f_t (earlier students frozen) against the
labels and the teacher, with per-example weights.

    L_t = Σ_i w_i [a·CE(F_t(x_i), y_i) + (1 − a)·T²·KL(σ(g(x_i)/T) ‖ σ(F_t(x_i)/T))] / Σ_i w_i

F_{t−1}'s scores are fixed numbers per training example, computed once after student t−1
finished, so "F_{t−1}.detach()" costs nothing per step and the gradient reaches f_t only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from compress.train import Criterion


def progressive_loss(ensemble: Tensor, teacher: Tensor, labels: Tensor, weights: Tensor,
                     alpha: float, temperature: float) -> Tensor:  # fmt: skip
    """ensemble, teacher (b, k) logits; labels (b,); weights (b,) → the weighted mean loss."""
    hard = F.cross_entropy(ensemble, labels, reduction="none")  # (b,)
    t_log = F.log_softmax(teacher / temperature, dim=1)  # (b, k)
    e_log = F.log_softmax(ensemble / temperature, dim=1)
    soft = (t_log.exp() * (t_log - e_log)).sum(1) * temperature**2  # KL(teacher ‖ F_t) (b,)
    per_example = alpha * hard + (1 - alpha) * soft
    return (weights * per_example).sum() / weights.sum()


class ProgressiveCriterion(Criterion):
    """Reads, by training row, the earlier students' summed scores, the teacher's scores and the
    example's weight."""

    def __init__(self, earlier: np.ndarray, teacher: np.ndarray, weights: np.ndarray,
                 alpha: float, temperature: float) -> None:  # fmt: skip
        super().__init__()
        self.earlier, self.teacher, self.weights = earlier, teacher, weights  # (n, k), (n, k), (n,)
        self.alpha, self.temperature = alpha, temperature

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        r = rows.numpy()
        ensemble = torch.from_numpy(np.asarray(self.earlier[r])) + scores  # F_{t−1} + f_t (b, k)
        teacher = torch.from_numpy(np.asarray(self.teacher[r], dtype=np.float32))
        weights = torch.from_numpy(self.weights[r])
        return progressive_loss(ensemble, teacher, labels, weights, self.alpha, self.temperature)
