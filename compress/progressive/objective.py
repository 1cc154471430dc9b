"""The loss of student t: the ensemble F_t = F_{t−1} + f_t (earlier students frozen) against the
labels and the teacher, with per-example weights.

    L_t = Σ_i w_i [a·CE(F_t(x_i), y_i) + (1 − a)·T²·KL(σ(g(x_i)/T) ‖ σ(F_t(x_i)/T))] / Σ_i w_i

Without augmentation F_{t−1}'s and the teacher's scores are fixed numbers per training example,
computed once (``by_row``), so "F_{t−1}.detach()" costs nothing per step. With augmentation the
batch differs every epoch, so the frozen earlier students and the teacher run on it
(``on_batch``): a forward pass each, no gradient. Either way the gradient reaches f_t only.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compress.models.zoo import scores
from compress.tasks import TaskInfo
from compress.train import Criterion

# (training rows (b,), the batch's inputs by name) -> scores (b, k), without gradient
ScoresOf = Callable[[Tensor, dict[str, Tensor]], Tensor]


def progressive_loss(ensemble: Tensor, teacher: Tensor, labels: Tensor, weights: Tensor,
                     alpha: float, temperature: float) -> Tensor:  # fmt: skip
    """ensemble, teacher (b, k) logits; labels (b,); weights (b,) → the weighted mean loss."""
    hard = F.cross_entropy(ensemble, labels, reduction="none")  # (b,)
    t_log = F.log_softmax(teacher / temperature, dim=1)  # (b, k)
    e_log = F.log_softmax(ensemble / temperature, dim=1)
    soft = (t_log.exp() * (t_log - e_log)).sum(1) * temperature**2  # KL(teacher ‖ F_t) (b,)
    per_example = alpha * hard + (1 - alpha) * soft
    return (weights * per_example).sum() / weights.sum()


def by_row(table: np.ndarray) -> ScoresOf:
    """Scores precomputed per training example (n, k), read by row."""
    return lambda rows, inputs: torch.from_numpy(np.asarray(table[rows.numpy()], np.float32))


def on_batch(model: nn.Module, info: TaskInfo) -> ScoresOf:
    """A frozen model run on the batch as the student sees it (augmented). The model is held by
    the closure, not as a submodule, so its weights never join the student's optimizer."""
    model.eval().requires_grad_(False)

    def run(rows: Tensor, inputs: dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            return scores(model, info, inputs)  # (b, k)

    return run


class ProgressiveCriterion(Criterion):
    """F_{t−1}'s summed scores and the teacher's, by training row or on the batch, and each
    example's weight (by row)."""

    def __init__(self, earlier: ScoresOf, teacher: ScoresOf, weights: np.ndarray,
                 alpha: float, temperature: float) -> None:  # fmt: skip
        super().__init__()
        self.earlier, self.teacher, self.weights = earlier, teacher, weights  # weights (n,)
        self.alpha, self.temperature = alpha, temperature

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        ensemble = self.earlier(rows, inputs) + scores  # F_{t−1} + f_t (b, k)
        weights = torch.from_numpy(self.weights[rows.numpy()])
        return progressive_loss(ensemble, self.teacher(rows, inputs), labels, weights,
                                self.alpha, self.temperature)  # fmt: skip
