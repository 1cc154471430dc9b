"""Training on several processes under torchrun: DistributedDataParallel, rank 0 decides and writes.

torchrun starts one process per worker with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ... set;
``init`` joins them into one process group (NCCL when the processes have GPUs, gloo on CPUs).
Every rank plans the recipe; rank 0 alone holds the run directory's lock, decides which stages
are stale and tells the others, through a second gloo group with a long timeout, which training
stage to run with which artifacts. While a stage runs on every rank (``every_rank``), ``train``
wraps the model in DistributedDataParallel and each rank takes its share of every batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from compress.errors import CompressError, StageFailed

# Ranks > 0 wait on this group while rank 0 runs stages alone (an N2N search, an export) before
# the next training stage: no such stage may time them out, so the wait is long. The training
# group keeps torch's default timeout: its ranks are in lock step.
CONTROL_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class World:
    """The processes of one distributed invocation."""

    rank: int
    size: int
    local_rank: int
    nodes: int
    backend: str  # of the training group: 'nccl' or 'gloo'
    control: Any  # a gloo process group for the runner's decisions

    @property
    def main(self) -> bool:
        return self.rank == 0

    def describe(self) -> str:
        return (f"{self.size} processes on {self.nodes} node{'s' * (self.nodes > 1)} "
                f"({self.backend})")  # fmt: skip


_world: World | None = None  # set by init for the whole invocation
_training = False  # True while the runner runs a stage on every rank


def world_size_from_env() -> int:
    """How many processes torchrun started (1 outside torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def follower() -> bool:
    """This process is a rank > 0 of a torchrun launch: it prints and writes nothing."""
    return int(os.environ.get("RANK", "0")) > 0


def init() -> World | None:
    """Join torchrun's processes; None for a plain single-process run."""
    global _world
    size = world_size_from_env()
    if size == 1:
        return None
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    except (KeyError, ValueError):
        raise CompressError("WORLD_SIZE is set but RANK or LOCAL_RANK is not: start distributed "
                            "runs with torchrun") from None  # fmt: skip
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", size))
    # NCCL needs a GPU of its own for each process of a node; short of that, the CPUs and gloo
    backend = "nccl" if torch.cuda.device_count() >= local_size else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend)  # env:// with torchrun's MASTER_ADDR/PORT
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    nodes = int(os.environ.get("GROUP_WORLD_SIZE", max(1, size // local_size)))
    _world = World(rank, size, local, nodes, backend, control)
    return _world


def shutdown() -> None:
    global _world
    if _world is not None:
        dist.destroy_process_group()
        _world = None


def training() -> World | None:
    """The world ``train`` shares its work with: set only while a stage runs on every rank, so a
    stage rank 0 runs alone trains as one process."""
    return _world if _training else None


@contextmanager
def every_rank() -> Iterator[None]:
    global _training
    _training = True
    try:
        yield
    finally:
        _training = False


def how(world: World | None) -> dict[str, Any]:
    """How a stage ran, for its manifest entry: one process unless every rank ran it."""
    if world is None:
        return {"world_size": 1, "backend": None, "nodes": 1}
    return {"world_size": world.size, "backend": world.backend, "nodes": world.nodes}


def share_of_batch(batch_size: int, world: World | None) -> int:
    """Each rank's part of a batch: the global batch stays the recipe's, whatever the world."""
    size = world.size if world else 1
    if batch_size % size:
        raise StageFailed(batch_error(batch_size, size))
    return batch_size // size


def batch_error(batch_size: int, size: int) -> str:
    return (f"batch_size {batch_size} does not divide among {size} processes; make it a "
            f"multiple of {size} (every process takes batch_size / {size} of each batch)")


def device(world: World | None) -> torch.device:
    """Where this rank trains: its own GPU under NCCL, else the CPU."""
    if world is not None and world.backend == "nccl":
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def wrap(module: nn.Module, world: World | None,
         shared: nn.Module | None = None) -> nn.Module:  # fmt: skip
    """``module`` under DistributedDataParallel (its gradients averaged over the ranks), or as it
    is alone or without trainable parameters. Parameters it shares with ``shared`` (already
    wrapped) are left to ``shared``'s wrapper."""
    if world is None:
        return module
    taken = {id(p) for p in shared.parameters()} if shared is not None else set()
    own = [n for n, p in module.named_parameters() if p.requires_grad and id(p) not in taken]
    if not own:
        return module
    ignored = [n for n, p in module.named_parameters() if id(p) in taken]
    if ignored:
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, ignored)
    ids = [world.local_rank] if world.backend == "nccl" else None
    return DistributedDataParallel(module, device_ids=ids)


def mean(value: float, world: World | None) -> float:
    """``value`` averaged over the ranks (a loss for the log)."""
    if world is None:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device(world))
    dist.all_reduce(t)
    return t.item() / world.size


def agree(value: int, world: World | None, what: str) -> int:
    """Rank 0's ``value``; a rank that found another one stops the run."""
    if world is None:
        return value
    chosen = broadcast_json(value, world)
    if chosen != value:
        raise StageFailed(f"rank {world.rank} found {what} = {value}, rank 0 {chosen}: the "
                          "ranks do not see the same run directory")  # fmt: skip
    return chosen


def on_main(compute: Callable[[], Any], world: World | None) -> Any:
    """``compute()`` on rank 0 alone, its JSON-able result sent to every rank: for work whose
    answer is the same on every rank (validating weights every rank holds alike)."""
    if world is None:
        return compute()
    return broadcast_json(compute() if world.main else None, world)


def broadcast_json(obj: Any, world: World) -> Any:
    """Rank 0's JSON-able ``obj`` on every rank, as bytes over the control group (no pickle)."""
    data = json.dumps(obj).encode() if world.main else b""
    length = torch.tensor([len(data)], dtype=torch.int64)
    dist.broadcast(length, 0, group=world.control)
    buf = torch.frombuffer(bytearray(data), dtype=torch.uint8) if world.main else \
        torch.empty(int(length.item()), dtype=torch.uint8)  # fmt: skip
    dist.broadcast(buf, 0, group=world.control)
    return json.loads(buf.numpy().tobytes().decode())


def barrier(world: World) -> None:
    dist.barrier(group=world.control)
