"""Evaluating one child: build it by surgery, train it briefly to match the teacher's logits
(MSE, no labels: the paper's child training), and measure it on held-out data.

Everything a child's result depends on is in its job and the trainer's fixed data, and the
child's initialisation and shuffles are seeded by (search seed, architecture hash): the same
child gives the same result in this process or a worker, first time or after a resume.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from compress.errors import ModelError
from compress.models import count_flops, count_params
from compress.prune.child import N2NChildSpec
from compress.prune.inherit import inherit_weights
from compress.prune.surgery import build_layers
from compress.prune.tp_surgery import TPChildSpec, prune, teacher_model
from compress.tasks import TaskInfo


@dataclass(frozen=True)
class ChildJob:
    """One child to evaluate: its spec (teacher layers + plan) and its architecture hash."""

    key: str
    spec: dict


@dataclass
class ChildResult:
    """What evaluating a child measured; ``weights`` after its short training."""

    key: str
    valid: bool
    params: int = 0
    flops: int = 0
    accuracy: float = 0.0  # fraction correct on the search's held-out examples
    seconds: float = 0.0
    error: str = ""
    weights: dict[str, Tensor] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ChildTraining:
    """The paper's child training: Adam, lr 5e-4, weight decay 5e-4, a few epochs."""

    epochs: int
    lr: float
    weight_decay: float
    batch_size: int
    inherit: bool
    seed: int


@dataclass
class ChildTrainer:
    """The search's fixed data and the teacher, sent once to each worker process."""

    info: TaskInfo
    x_train: np.ndarray  # (n, c, h, w) float32
    teacher_logits: np.ndarray  # (n, k) float32
    x_val: np.ndarray  # (m, c, h, w)
    y_val: np.ndarray  # (m,) int64
    teacher: dict[str, Tensor]  # the teacher's weights, for inheritance
    settings: ChildTraining
    threads: int = 0  # 0: leave torch's default

    def __call__(self, job: ChildJob) -> ChildResult:
        began = time.perf_counter()
        if self.threads:
            torch.set_num_threads(self.threads)
        torch.manual_seed(child_seed(self.settings.seed, job.key))
        try:
            child = self._build(job.spec)
        except ModelError as e:
            return ChildResult(job.key, False, error=str(e))
        self._train(child, child_seed(self.settings.seed, job.key))
        return ChildResult(
            job.key, True, params=count_params(child), flops=count_flops(child, self.info),
            accuracy=self.accuracy(child), seconds=time.perf_counter() - began,
            weights={k: v.detach().clone() for k, v in child.state_dict().items()},
        )  # fmt: skip

    def _build(self, spec: dict) -> nn.Module:
        """The child, from the teacher's surviving weights with ``inherit``."""
        if spec["arch"] == "tp-child":  # pruned from the teacher: inheriting is pruning it
            tp_spec = TPChildSpec.model_validate(spec)
            model = teacher_model(tp_spec, self.info)
            if self.settings.inherit:
                model.load_state_dict(self.teacher)
            return prune(model, self.info, tp_spec.groups)
        n2n = N2NChildSpec.model_validate(spec)
        child = build_layers(n2n.layers(), self.info.input_shape, self.info.num_classes)
        if self.settings.inherit and n2n.plan is not None:
            teacher = build_layers(n2n.teacher, self.info.input_shape, self.info.num_classes)
            teacher.load_state_dict(self.teacher)
            inherit_weights(child, teacher, n2n.plan.keep)
        return child

    def _train(self, child: nn.Module, seed: int) -> None:
        s = self.settings
        opt = torch.optim.Adam(child.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        gen = torch.Generator().manual_seed(seed)
        child.train()
        for _ in range(s.epochs):
            order = torch.randperm(len(self.x_train), generator=gen)
            for start in range(0, len(order), s.batch_size):
                rows = order[start : start + s.batch_size].numpy()
                x = torch.from_numpy(self.x_train[rows])  # (b, c, h, w)
                loss = F.mse_loss(child(x), torch.from_numpy(self.teacher_logits[rows]))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        child.eval()

    @torch.no_grad()
    def accuracy(self, child: nn.Module) -> float:
        """Fraction of the held-out examples the model gets right."""
        child.eval()
        correct = 0
        for start in range(0, len(self.x_val), 1024):
            logits = child(torch.from_numpy(self.x_val[start : start + 1024]))  # (b, k)
            correct += int((logits.argmax(1).numpy() == self.y_val[start : start + 1024]).sum())
        return correct / len(self.x_val)


def child_seed(seed: int, key: str) -> int:
    """A child's own seed: the search's seed and its architecture hash."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:4], "little")
