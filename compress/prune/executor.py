"""Where a search's children train: in this process, or in worker processes (Ray tasks:
``ray_executor``).

An executor maps the trainer over a batch of jobs and returns the results in the jobs' order.
New executors implement ``Executor`` and register by name.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

from compress.pipeline.stage import PlanContext
from compress.prune.config import ExecutorConfig
from compress.prune.evaluate import ChildJob, ChildResult, ChildTrainer
from compress.registry import Registry


class Executor(ABC):
    """Trains batches of children; ``close`` releases what it holds (processes, a cluster)."""

    @abstractmethod
    def map(self, jobs: list[ChildJob]) -> list[ChildResult]:
        """Evaluate every job; results in the jobs' order."""

    def close(self) -> None:  # noqa: B027  (optional hook)
        """Release workers."""


EXECUTORS: Registry[type[Executor]] = Registry("executor")


def check_executor(ctx: PlanContext, cfg: ExecutorConfig) -> None:
    """Before anything runs: Ray is installed when the recipe asks for it, and an address is
    given only to Ray. (Whether the cluster answers is checked when the search starts.)"""
    if cfg.kind == "ray" and importlib.util.find_spec("ray") is None:
        raise ctx.error(("executor", "kind"), "executor 'ray' needs Ray, which is not "
                        "installed: pip install 'edge-compress[ray]'")  # fmt: skip
    if cfg.address is not None and cfg.kind != "ray":
        raise ctx.error(("executor", "address"), f"an address is a Ray cluster's; executor "
                        f"{cfg.kind!r} runs on this machine (use kind: ray)")  # fmt: skip


@EXECUTORS.register("local")
class LocalExecutor(Executor):
    """One child after another in this process, with torch's threads."""

    def __init__(self, trainer: ChildTrainer, cfg: ExecutorConfig) -> None:
        self.trainer = trainer

    def map(self, jobs: list[ChildJob]) -> list[ChildResult]:
        return [self.trainer(job) for job in jobs]


_TRAINER: ChildTrainer | None = None  # a worker process's copy, set once when it starts


def _start_worker(trainer: ChildTrainer) -> None:
    global _TRAINER
    _TRAINER = trainer
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A run killed with SIGKILL cannot stop its pool: a worker whose parent is gone (it was
    re-parented) exits by itself instead of waiting forever for jobs."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _run_job(job: ChildJob) -> ChildResult:
    assert _TRAINER is not None, "worker started without its trainer"
    return _TRAINER(job)


@EXECUTORS.register("processes")
class ProcessExecutor(Executor):
    """``workers`` spawned processes, one thread each; the data and the teacher are sent to
    each once when it starts (in memory; nothing is unpickled from disk)."""

    def __init__(self, trainer: ChildTrainer, cfg: ExecutorConfig) -> None:
        self.pool = ProcessPoolExecutor(
            cfg.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker, initargs=(replace(trainer, threads=1),),
        )  # fmt: skip

    def map(self, jobs: list[ChildJob]) -> list[ChildResult]:
        return list(self.pool.map(_run_job, jobs))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


# Registers 'ray' last (it imports this module's Executor); Ray itself is imported only when a
# search uses it.
from compress.prune import ray_executor  # noqa: E402, F401
