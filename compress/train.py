"""The training loop every stage shares, with a checkpoint after every epoch.

Resume is exact: the shuffle of epoch e is seeded by (seed, e) and the learning rate is a pure
function of the step, so a run killed after epoch k and resumed gives bit-for-bit the weights of
a run that was never interrupted. Augmentation (``data.augment``) is drawn per batch from
(seed, epoch, step) for the same reason.

Under torchrun (``compress.distributed``) the model trains under DistributedDataParallel: every
rank draws the same permutation of epoch e, takes its share of each batch (a distributed sampler;
batch_size / world_size rows each), and the averaged gradients give every rank the same step a
single process takes on the whole batch. An objective is a plain function of the scores, or a
``Criterion`` that also sees the batch's inputs and owns trainable parameters of its own.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler

from compress import distributed
from compress.atomic import write_with
from compress.data.source import AugmentConfig, augment_images
from compress.data.splits import Splits
from compress.errors import StageFailed
from compress.log import Log
from compress.models.zoo import as_tensors, scores
from compress.recipe import TrainConfig
from compress.tasks import Examples, Task, TaskInfo, batches

# objective(scores (b, k), labels (b,), row numbers in the training split (b,)) -> scalar loss
Objective = Callable[[Tensor, Tensor, Tensor], Tensor]
STATE_FILE = "train-state.safetensors"


class Criterion(nn.Module):
    """An objective that sees the whole batch, inputs included (to run a teacher on it), and may
    own parameters trained with the model (a hint loss's adapter): they join the optimizer after
    the model's and the resume state under ``objective.``, never the model's checkpoint."""

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        """scores (b, k), labels (b,), row numbers in the training split (b,), the model's
        inputs by name (augmented when the recipe says so) -> scalar loss."""
        raise NotImplementedError


class _Plain(Criterion):
    """A plain ``Objective`` as a criterion without parameters: its resume state is empty."""

    def __init__(self, fn: Objective) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        return self.fn(scores, labels, rows)


def make_optimizer(model: nn.Module, cfg: TrainConfig,
                   extra: nn.Module | None = None) -> torch.optim.Optimizer:  # fmt: skip
    """The model's parameters first, then ``extra``'s: the model's optimizer slots keep the
    indices they have without extra parameters."""
    params = list(model.parameters()) + (list(extra.parameters()) if extra is not None else [])
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=True, weight_decay=cfg.weight_decay)  # fmt: skip
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * step / total))  # cosine decay to 0


def save_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer, epoch: int,
               extra: nn.Module | None = None) -> None:  # fmt: skip
    """Model, optimizer and ``extra`` (a criterion's own parameters) after ``epoch`` epochs."""
    # .cpu(): a rank training on its GPU saves what a CPU run saves
    tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if extra is not None:
        tensors |= {f"objective.{k}": v.detach().cpu().clone()
                    for k, v in extra.state_dict().items()}  # fmt: skip
    sd = opt.state_dict()
    scalars: dict[str, dict] = {}
    for idx, slots in sd["state"].items():
        for name, value in slots.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    meta = {"epoch": str(epoch), "param_groups": json.dumps(sd["param_groups"]),
            "scalars": json.dumps(scalars)}  # fmt: skip
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_state(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
               extra: nn.Module | None = None) -> int:  # fmt: skip
    """Restore model, optimizer and ``extra``; return the number of epochs already done."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if extra is not None:
        extra.load_state_dict({k[10:]: v for k, v in tensors.items() if k.startswith("objective.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, slots in json.loads(meta["scalars"]).items():
        state.setdefault(int(idx), {}).update(slots)
    opt.load_state_dict({"state": state, "param_groups": json.loads(meta["param_groups"])})
    return int(meta["epoch"])


class BatchReader(torch.utils.data.Dataset):
    """Item i is batch i of a fixed list: the task's inputs as tensors, labels, row numbers.
    Worker processes of a DataLoader decode batches (images from files, tokenized text) in
    parallel with training, so data larger than memory streams. With ``augment``, image inputs
    (b, c, h, w) are augmented with draws seeded by (``seed``, epoch, i): training batches only,
    the same in every worker and in a resumed run."""

    def __init__(self, task: Task, examples: Examples, rows: list[np.ndarray],
                 augment: AugmentConfig | None = None,
                 seed: tuple[int, ...] = (0, 0)) -> None:  # fmt: skip
        self.task, self.examples, self.rows = task, examples, rows
        self.augment, self.seed = augment, seed  # seed: (recipe seed, epoch[, rank])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        rows = self.rows[i]
        batch = self.task.batch(self.examples.x, rows)
        if self.augment is not None and self.task.data_kind == "image":
            # one generator per input, seeded alike: several image inputs move together
            batch = {name: augment_images(x, self.augment, np.random.default_rng([*self.seed, i]))
                     if x.ndim == 4 else x for name, x in batch.items()}  # fmt: skip
        return as_tensors(batch), torch.from_numpy(self.examples.y[rows]), torch.from_numpy(rows)


def loader(task: Task, examples: Examples, rows: list[np.ndarray], workers: int,
           augment: AugmentConfig | None = None,
           seed: tuple[int, ...] = (0, 0)) -> DataLoader:  # fmt: skip
    # batch_size=None: items are whole batches already, in the order given.
    return DataLoader(BatchReader(task, examples, rows, augment, seed), batch_size=None,
                      shuffle=False, num_workers=workers, persistent_workers=False)  # fmt: skip


@torch.no_grad()
def predict(model: nn.Module, task: Task, info: TaskInfo, examples: Examples,
            batch_size: int) -> np.ndarray:  # fmt: skip
    """The task's scores of ``model`` on every example, in order: (n, k)."""
    model.eval()
    out = [on_model(model, info, as_tensors(task.batch(examples.x, rows))).numpy()
           for rows in batches(len(examples), batch_size)]  # fmt: skip
    return np.concatenate(out)


def on_model(model: nn.Module, info: TaskInfo, inputs: dict[str, Tensor]) -> Tensor:
    """The model's scores (b, k) on the CPU, its inputs moved to the device it is on (a rank's
    GPU while it trains under NCCL)."""
    where = next(model.parameters(), torch.empty(0)).device
    return scores(model, info, {k: v.to(where) for k, v in inputs.items()}).cpu()


def evaluate(model: nn.Module, task: Task, info: TaskInfo, examples: Examples,
             batch_size: int) -> dict[str, float]:  # fmt: skip
    """The task's metrics of a PyTorch model, through the same evaluation as any artifact."""
    model.eval()

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return on_model(model, info, as_tensors(inputs)).numpy()

    return task.evaluate(run, examples, batch_size)


@dataclass
class TrainingRun:
    """One model's training: what every epoch needs, so epochs stay short functions."""

    model: nn.Module
    opt: torch.optim.Optimizer
    task: Task
    info: TaskInfo
    examples: Examples
    objective: Criterion
    cfg: TrainConfig
    batch_size: int  # the global batch: every rank's share together
    seed: int
    workers: int
    log: Log
    label: str
    augment: AugmentConfig | None = None
    world: distributed.World | None = None

    def __post_init__(self) -> None:
        # DDP averages the gradients of the model and of the criterion's own parameters
        self.net = distributed.wrap(self.model, self.world)
        self.loss = distributed.wrap(self.objective, self.world, shared=self.model)
        self.device = distributed.device(self.world)

    @property
    def steps_per_epoch(self) -> int:
        # a rank's steps: ceil(ceil(n / w) / (b / w)) == ceil(n / b), the one-process schedule
        return math.ceil(len(self.examples) / self.batch_size)

    def rows(self, epoch: int) -> list[np.ndarray]:
        """This rank's batches of epoch ``epoch``: the permutation seeded by (seed, epoch), every
        rank's the same, padded to a multiple of the world size and dealt out row by row, so
        batch i of all ranks together is batch i of a single process."""
        size, rank = (self.world.size, self.world.rank) if self.world else (1, 0)
        sampler = DistributedSampler(range(len(self.examples)), num_replicas=size, rank=rank,
                                     shuffle=True, seed=self.seed * 100_003)  # fmt: skip
        sampler.set_epoch(epoch)  # permutation seeded by seed * 100_003 + epoch
        order = np.fromiter(iter(sampler), dtype=np.int64)
        return batches(len(order), self.batch_size // size, order)

    def epoch(self, epoch: int) -> float:
        """Train one epoch; return its mean loss (over every rank)."""
        self.model.train()
        self.objective.train()
        steps, total = self.steps_per_epoch, self.steps_per_epoch * self.cfg.epochs
        running = 0.0
        # augmentation draws differ between ranks, as they do between a batch's rows
        seed = (self.seed, epoch) + ((self.world.rank,) if self.world else ())
        with self.log.progress(f"{self.label} epoch {epoch + 1}/{self.cfg.epochs}", steps) as bar:
            for step, (inputs, labels, idx) in enumerate(loader(
                self.task, self.examples, self.rows(epoch), self.workers, self.augment, seed,
            )):  # fmt: skip
                for group in self.opt.param_groups:
                    group["lr"] = lr_at(epoch * steps + step, total, self.cfg)
                inputs = {k: v.to(self.device) for k, v in inputs.items()}
                labels = labels.to(self.device)
                loss = self.loss(scores(self.net, self.info, inputs), labels, idx, inputs)
                if not torch.isfinite(loss):  # a NaN model must never be marked complete
                    raise StageFailed(f"{self.label}: the loss became {loss.item()} at epoch "
                                      f"{epoch + 1}, step {step + 1}; lower the learning rate or "
                                      "check the loss weights")  # fmt: skip
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                running += loss.item()
                bar.advance(loss=running / (step + 1))
        return distributed.mean(running / steps, self.world)


def train(
    model: nn.Module, splits: Splits, objective: Objective | Criterion, cfg: TrainConfig, *,
    batch_size: int, seed: int, workers: int, state_dir: Path, log: Log, label: str,
    validate: Callable[[nn.Module], dict[str, float]], augment: AugmentConfig | None = None,
) -> dict[str, float]:  # fmt: skip
    """Train in place on ``splits.train`` for ``cfg.epochs``, resuming from ``state_dir`` if a
    state is there. A ``Criterion``'s parameters train along and resume with the model. Under
    torchrun every rank calls this alike and trains its share of each batch.
    Returns the final validation metrics."""
    world = distributed.training()
    distributed.share_of_batch(batch_size, world)  # refuses a batch the ranks cannot share
    crit = objective if isinstance(objective, Criterion) else _Plain(objective)
    model.to(distributed.device(world))
    crit.to(distributed.device(world))
    run = TrainingRun(model, make_optimizer(model, cfg, crit), splits.task, splits.info,
                      splits.train, crit, cfg, batch_size, seed, workers, log, label,
                      augment, world)  # fmt: skip
    state_path = state_dir / STATE_FILE
    start = load_state(state_path, model, run.opt, crit) if state_path.is_file() else 0
    start = distributed.agree(start, world, f"{label}'s epochs done")
    if start:
        log.info(f"  {label}: resuming from the checkpoint of epoch {start}/{cfg.epochs}")
    # the ranks hold the same weights: rank 0 validates, the others wait for its numbers
    val = distributed.on_main(lambda: validate(model), world) if start == cfg.epochs else {}
    for epoch in range(start, cfg.epochs):
        began = time.perf_counter()
        loss = run.epoch(epoch)
        val = distributed.on_main(lambda: validate(model), world)
        save_state(state_path, model, run.opt, epoch + 1, crit)
        shown = " ".join(f"val_{k} {v:.4f}" for k, v in val.items())
        log.info(f"  {label}: epoch {epoch + 1}/{cfg.epochs} loss {loss:.4f} {shown} "
                 f"({time.perf_counter() - began:.1f}s)", model=label, epoch=epoch + 1,
                 loss=loss, **{f"val_{k}": v for k, v in val.items()})  # fmt: skip
    model.eval()
    model.cpu()  # the stage saves and exports it from here on
    return val
