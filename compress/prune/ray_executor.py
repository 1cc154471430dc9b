"""N2N children as Ray tasks (``executor: {kind: ray}``), on a local Ray the run starts or on a
running cluster at ``address``.

The trainer (the search's data and the teacher) goes to Ray's object store once; each child is
a task that asks for one CPU and trains with one torch thread, so a local Ray with ``workers``
CPUs trains that many children at once and a cluster as many as it has CPUs. Results come back
in the jobs' order, so the policy update sees the same list as with the local executor.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import replace
from typing import Any

from compress.errors import CompressError, StageFailed
from compress.extras import import_extra
from compress.prune.config import ExecutorConfig
from compress.prune.evaluate import ChildJob, ChildResult, ChildTrainer
from compress.prune.executor import EXECUTORS, Executor

PROBE_SECONDS = 5.0  # an address that does not answer in this long is reported, not waited on
QUIET = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}


class RayClusterError(CompressError):
    """The recipe's Ray cluster cannot be reached or joined (exit code 2: fix the address)."""


def import_ray() -> Any:
    """Ray, or a clear error naming the extra that installs it."""
    return import_extra("ray", "ray", "n2n executor 'ray'")


def _train_child(trainer: ChildTrainer, job: ChildJob) -> ChildResult:
    """One Ray task: Ray resolves ``trainer`` from the object store in the worker."""
    return trainer(job)


def _warm_worker(trainer: ChildTrainer) -> int:
    """Loads in a worker, before the search times anything, the trainer (and so torch) and
    what a first child training would import: torch's first optimizer pulls in torch._dynamo
    (4 s on a quiet core)."""
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    return os.getpid()


@EXECUTORS.register("ray")
class RayExecutor(Executor):
    """Children as Ray tasks. ``close`` shuts down a local Ray this executor started and
    disconnects from a cluster it joined (which keeps running). When this process is already
    connected to Ray (a driver that called ``ray.init``), the search uses that connection and
    leaves it open. Ray's processes share the run's fate: a run killed with SIGKILL takes its
    local Ray with it."""

    def __init__(self, trainer: ChildTrainer, cfg: ExecutorConfig) -> None:
        self.ray = ray = import_ray()
        self.owned = not ray.is_initialized()
        if self.owned:
            connect(ray, cfg)
        try:
            self.task = ray.remote(num_cpus=1)(_train_child)
            self.trainer = ray.put(replace(trainer, threads=1))
            warm = ray.remote(num_cpus=1)(_warm_worker)
            ray.get([warm.remote(self.trainer) for _ in range(cfg.workers)])
        except BaseException:
            self.close()
            raise

    def map(self, jobs: list[ChildJob]) -> list[ChildResult]:
        refs = [self.task.remote(self.trainer, job) for job in jobs]
        try:
            return self.ray.get(refs)  # in the jobs' order, whichever finished first
        except self.ray.exceptions.RayError as e:
            for ref in refs:  # a cluster would train the rest for nothing
                self.ray.cancel(ref, force=True)
            if isinstance(e, self.ray.exceptions.RayTaskError):
                raise  # the child training's own error, with its traceback
            raise StageFailed(f"n2n: a child's Ray task failed ({type(e).__name__}: {e}); "
                              "running the recipe again resumes the search at its last "
                              "finished iteration") from None  # fmt: skip

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


def connect(ray: Any, cfg: ExecutorConfig) -> None:
    """A local Ray with ``cfg.workers`` CPUs (never a cluster some other process started on
    this machine), or the cluster at ``cfg.address``, checked to answer first: Ray itself
    retries an unreachable address for minutes."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
    if cfg.address is None:
        ray.init(address="local", num_cpus=cfg.workers, **QUIET)
        return
    probe(cfg.address)
    try:
        ray.init(address=cfg.address, **QUIET)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise RayClusterError(f"n2n executor.address {cfg.address!r}: cannot join the Ray "
                              f"cluster there: {e}") from None  # fmt: skip


def probe(address: str) -> None:
    """A TCP connection to the head's port, or a clear error saying why there is none."""
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise RayClusterError(
            f"n2n executor.address {address!r}: no Ray cluster answers there ({why}); start "
            f"one with `ray start --head --port {port}` on {host}, or leave address out to "
            "start a local Ray for the run"
        ) from None
