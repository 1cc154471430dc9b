"""The teacher's top-k logits per target position, computed once for the training split and kept
on disk, as the alternative to running the teacher on every batch.

Files in the stage folder: ``teacher-topk-values.npy`` (n, t, k) float32 and
``teacher-topk-ids.npy`` (n, t, k) int32, t = the task's ``max_target``; positions past a target's
end hold zeros and are masked by the batch's labels. The KL is then taken over the teacher's k
best tokens, the teacher's probabilities renormalised over them: exact when the rest of its
distribution is negligible, an approximation otherwise (the cost of caching).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from compress.atomic import atomic_path
from compress.seq2seq.loss import TeacherPerBatch, target_ce
from compress.tasks import Examples, Task, batches
from compress.tasks.seq2seq import IGNORE
from compress.train import Criterion

VALUES, IDS = "teacher-topk-values.npy", "teacher-topk-ids.npy"


def cache_topk(teacher: TeacherPerBatch, task: Task, train: Examples, k: int, width: int,
               folder: Path, batch_size: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Memory-mapped (values, ids) of the teacher's top-k logits for every training example,
    computed once (a file already there is reused: the stage folder is keyed by its inputs)."""
    paths = folder / VALUES, folder / IDS
    if not all(p.is_file() for p in paths):
        shape = (len(train), width, k)
        with atomic_path(paths[0]) as tmp_v, atomic_path(paths[1]) as tmp_i:
            values = np.lib.format.open_memmap(tmp_v, mode="w+", dtype=np.float32, shape=shape)
            ids = np.lib.format.open_memmap(tmp_i, mode="w+", dtype=np.int32, shape=shape)
            for rows in batches(len(train), batch_size):
                inputs = task.batch(train.x, rows)
                logits = teacher({n: torch.from_numpy(a) for n, a in inputs.items()})
                top = logits.topk(k, dim=-1)  # (b, t_batch, k)
                t = logits.shape[1]
                values[rows, :t], ids[rows, :t] = top.values.numpy(), top.indices.numpy()
            values.flush()
            ids.flush()
            del values, ids
    return np.load(paths[0], mmap_mode="r"), np.load(paths[1], mmap_mode="r")


def topk_kl(student: Tensor, values: Tensor, ids: Tensor, labels: Tensor,
            temperature: float) -> Tensor:  # fmt: skip
    """KL(teacher‖student) over the teacher's top-k tokens per position, mean over real target
    positions, × T². student (b, t, V); values, ids (b, t, k); labels (b, t)."""
    real = labels != IGNORE
    s = F.log_softmax(student[real] / temperature, dim=-1)  # (n, V)
    t = F.log_softmax(values[real] / temperature, dim=-1)  # (n, k), renormalised over top-k
    kl = (t.exp() * (t - s.gather(-1, ids[real].long()))).sum(-1)
    return kl.mean() * temperature**2


class CachedTopKDistillation(Criterion):
    """``alpha·KL + (1 − alpha)·CE`` against the cached top-k logits of the batch's rows."""

    def __init__(self, cache: tuple[np.ndarray, np.ndarray], alpha: float,
                 temperature: float) -> None:  # fmt: skip
        super().__init__()
        self.values, self.ids = cache
        self.alpha, self.temperature = alpha, temperature

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        gold = inputs["labels"]
        t, index = gold.shape[1], rows.numpy()
        values = torch.from_numpy(np.ascontiguousarray(self.values[index, :t]))
        ids = torch.from_numpy(np.ascontiguousarray(self.ids[index, :t]))
        kl = topk_kl(scores, values, ids, gold, self.temperature)
        return self.alpha * kl + (1 - self.alpha) * target_ce(scores, gold)
