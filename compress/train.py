"""The training loop every stage shares, with a checkpoint after every epoch.

Resume is exact: the shuffle of epoch e is seeded by (seed, e) and the learning rate is a pure
function of the step, so a run killed after epoch k and resumed gives bit-for-bit the weights of
a run that was never interrupted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from compress.atomic import write_with
from compress.log import Log
from compress.recipe import TrainConfig

# objective(logits (b, k), labels (b,), sample indices (b,)) -> scalar loss
Objective = Callable[[Tensor, Tensor, Tensor], Tensor]
STATE_FILE = "train-state.safetensors"


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=True, weight_decay=cfg.weight_decay)  # fmt: skip
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * step / total))  # cosine decay to 0


def save_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer, epoch: int) -> None:
    tensors = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    sd = opt.state_dict()
    scalars: dict[str, dict] = {}
    for idx, slots in sd["state"].items():
        for name, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{name}"] = value.detach().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    meta = {"epoch": str(epoch), "param_groups": json.dumps(sd["param_groups"]),
            "scalars": json.dumps(scalars)}  # fmt: skip
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer) -> int:
    """Restore model and optimizer; return the number of epochs already done."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, slots in json.loads(meta["scalars"]).items():
        state.setdefault(int(idx), {}).update(slots)
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["epoch"])


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int) -> float:
    return (predict(model, x, batch_size).argmax(1) == y).float().mean().item()


@dataclass
class TrainingRun:
    """One model's training: what every epoch needs, so epochs stay short functions."""

    model: nn.Module
    opt: torch.optim.Optimizer
    x: Tensor  # (n, c, h, w)
    y: Tensor  # (n,)
    objective: Objective
    cfg: TrainConfig
    batch_size: int
    seed: int
    log: Log
    label: str

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def epoch(self, epoch: int) -> float:
        """Train one epoch; return its mean loss."""
        self.model.train()
        shuffle = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self.x), generator=shuffle)
        steps, total = self.steps_per_epoch, self.steps_per_epoch * self.cfg.epochs
        running = 0.0
        with self.log.progress(f"{self.label} epoch {epoch + 1}/{self.cfg.epochs}", steps) as bar:
            for step in range(steps):
                idx = order[step * self.batch_size : (step + 1) * self.batch_size]
                for group in self.opt.param_groups:
                    group["lr"] = lr_at(epoch * steps + step, total, self.cfg)
                loss = self.objective(self.model(self.x[idx]), self.y[idx], idx)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                running += loss.item()
                bar.advance(loss=running / (step + 1))
        return running / steps


def train(
    model: nn.Module, x: Tensor, y: Tensor, objective: Objective, cfg: TrainConfig, *,
    batch_size: int, seed: int, state_dir: Path, log: Log, label: str,
    validate: Callable[[nn.Module], float],
) -> float:  # fmt: skip
    """Train in place for ``cfg.epochs``, resuming from ``state_dir`` if a state is there.
    Returns the final validation accuracy."""
    run = TrainingRun(model, make_optimizer(model, cfg), x, y, objective, cfg, batch_size, seed,
                      log, label)  # fmt: skip
    state_path = state_dir / STATE_FILE
    start = load_state(state_path, model, run.opt) if state_path.is_file() else 0
    if start:
        log.info(f"  {label}: resuming from the checkpoint of epoch {start}/{cfg.epochs}")
    val_acc = validate(model) if start == cfg.epochs else float("nan")
    for epoch in range(start, cfg.epochs):
        began = time.perf_counter()
        loss = run.epoch(epoch)
        val_acc = validate(model)
        save_state(state_path, model, run.opt, epoch + 1)
        log.info(f"  {label}: epoch {epoch + 1}/{cfg.epochs} loss {loss:.4f} "
                 f"val_acc {val_acc:.4f} ({time.perf_counter() - began:.1f}s)",
                 model=label, epoch=epoch + 1, loss=loss, val_accuracy=val_acc)  # fmt: skip
    model.eval()
    return val_acc
