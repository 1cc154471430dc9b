"""The distillation loss of "Return of the Encoder": ``a·KL(teacher‖student) + (1 − a)·CE`` over
the real target tokens (padding masked), at temperature T (paper: a = 0.9, T = 1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compress.models.zoo import scores as model_scores
from compress.tasks import TaskInfo
from compress.tasks.seq2seq import IGNORE
from compress.train import Criterion


def masked_kl(student: Tensor, teacher: Tensor, labels: Tensor, temperature: float) -> Tensor:
    """KL(teacher ‖ student) of the softened distributions, mean over real target positions,
    times T² (gradients keep their scale across temperatures). Logits (b, t, V), labels (b, t).
    A teacher with a larger vocabulary is cut to the student's (the paper's rule)."""
    real = labels != IGNORE  # (b, t)
    s = F.log_softmax(student[real] / temperature, dim=-1)  # (n, V)
    t = F.log_softmax(teacher[real][..., : student.shape[-1]] / temperature, dim=-1)
    kl = (t.exp() * (t - s)).sum(-1)  # (n,)
    return kl.mean() * temperature**2


def target_ce(student: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the target tokens, padding ignored: logits (b, t, V), labels (b, t)."""
    return F.cross_entropy(student.flatten(0, 1), labels.flatten(), ignore_index=IGNORE)


class TargetCrossEntropy(Criterion):
    """Training without a teacher: cross-entropy with the batch's ``labels``."""

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        return target_ce(scores, inputs["labels"])


class TeacherPerBatch:
    """The teacher, in eval mode without gradients, run on every batch: its logits at the
    student's decoder positions (the model's seq2seq forward aligns them)."""

    def __init__(self, model: nn.Module, info: TaskInfo) -> None:
        self.model, self.info = model.eval().requires_grad_(False), info

    def __call__(self, inputs: dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            return model_scores(self.model, self.info, inputs)  # (b, t, V)


class Seq2SeqDistillation(Criterion):
    """``alpha·KL + (1 − alpha)·CE`` against the teacher's aligned logits."""

    def __init__(self, teacher: TeacherPerBatch, alpha: float, temperature: float) -> None:
        super().__init__()
        self.teacher, self.alpha, self.temperature = teacher, alpha, temperature

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        gold = inputs["labels"]
        kl = masked_kl(scores, self.teacher(inputs), gold, self.temperature)
        return self.alpha * kl + (1 - self.alpha) * target_ce(scores, gold)
