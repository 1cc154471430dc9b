"""The N2N search: stage 1 learns which layers to remove, stage 2 how much to shrink the
layers the best stage-1 child kept. Each iteration samples ``rollouts`` children, evaluates
the new ones (the rest come from the cache, by architecture hash), scores them, and takes one
REINFORCE step on sum_k (R_k − b) · log π(a_k) with b the running mean of earlier iterations'
mean rewards. The state is checkpointed after every iteration (see ``state``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from compress.atomic import write_with
from compress.errors import CompressError
from compress.log import Log
from compress.prune.child import ChildMaker, SurgeryChildMaker
from compress.prune.evaluate import ChildJob, ChildResult
from compress.prune.executor import Executor
from compress.prune.latency_reward import LatencyProbe
from compress.prune.layers import LayerSpec
from compress.prune.policy import Policies
from compress.prune.reward import INVALID, reward, size_ratio
from compress.prune.state import ChildRecord, Iteration, SearchState, load_search, save_search
from compress.prune.surgery import Plan


@dataclass(frozen=True)
class SearchSettings:
    iterations: dict[str, int]  # per stage
    rollouts: dict[str, int]  # per stage
    removal_lr: float
    shrink_lr: float
    floor: int
    seed: int
    max_param_ratio: float | None = None
    min_accuracy_ratio: float | None = None
    constrain_removal: bool = True  # false: only stage 2 is held to the constraints
    cache_extra: dict | None = None  # what else decides a child's training (the cache key)
    shrink_fields: tuple[str, ...] = ("out",)  # what stage 2 shrinks: "out", "kernel"


@dataclass
class Teacher:
    layers: list[LayerSpec]
    params: int
    accuracy: float  # on the search's held-out set, as children are measured
    model: nn.Module | None = field(default=None, repr=False)  # timed for a latency reward


class Search:
    """One resumable search in ``folder``."""

    def __init__(self, folder: Path, teacher: Teacher, settings: SearchSettings,
                 executor: Executor, log: Log,
                 latency: LatencyProbe | None = None,
                 maker: ChildMaker | None = None) -> None:  # fmt: skip
        self.folder, self.teacher, self.s, self.executor, self.log = (
            folder, teacher, settings, executor, log)  # fmt: skip
        self.latency = latency
        self.maker = maker or SurgeryChildMaker(teacher.layers, settings.floor)
        torch.manual_seed(settings.seed)  # the policies' initial weights
        random.seed(settings.seed)  # every generator starts from the seed; resumes restore them
        np.random.seed(settings.seed)
        self.policies = Policies(self._fields(settings.shrink_fields))
        self.opt = self.policies.optimizer(settings.removal_lr, settings.shrink_lr)
        self.sampler = torch.Generator().manual_seed(settings.seed)
        folder.mkdir(parents=True, exist_ok=True)
        self.state = load_search(folder, self.policies, self.opt, self.sampler) or SearchState()
        if self.state.history:
            log.info(f"  n2n: resuming after iteration {len(self.state.history)} "
                     f"({self.state.trainings} children trained)")  # fmt: skip
        if latency is not None and self.state.teacher_latency_ms is None:
            self._time_teacher(latency)

    def _time_teacher(self, latency: LatencyProbe) -> None:
        """The teacher's latency, measured once per search (a resume reads it back)."""
        if self.teacher.model is None:
            raise ValueError("a latency reward needs the teacher's model to time")
        record = latency.measure(self.teacher.model, "teacher")
        self.state = self.state.model_copy(update={"teacher_latency_ms": record.median_ms})
        self.log.info(f"  n2n: teacher {record.median_ms:.3f} ms median on {record.target} at "
                      f"batch {record.batch_size} ({record.iterations} calls, cv "
                      f"{record.cv:.2f})")  # fmt: skip

    def _fields(self, fields: tuple[str, ...]) -> tuple[str, ...]:
        """Kernel sizes shrink through the project's surgery only (Torch-Pruning prunes
        channels)."""
        if "kernel" in fields and not self.maker.removal:
            self.log.info("  n2n: kernel sizes are not shrunk: Torch-Pruning prunes channels")
            return tuple(f for f in fields if f != "kernel") or ("out",)
        return fields

    def run(self) -> SearchState:
        if not self.maker.removal and self.state.stage == "removal":
            self.log.info("  n2n: removal stage skipped: layer removal applies to the "
                          "project's own surgery only; shrinking through Torch-Pruning's "
                          "dependency graph")  # fmt: skip
        while self.state.stage != "done":
            stage = self.state.stage
            if self.state.index >= self.s.iterations[stage] or (
                    stage == "removal" and not self.maker.removal):  # fmt: skip
                self._next_stage()
                continue
            self._iteration(stage)
        return self.state

    def _next_stage(self) -> None:
        stage = self.state.stage
        update: dict = {"index": 0, "stage": "shrink" if stage == "removal" else "done"}
        if stage == "removal":  # stage 2 shrinks what the best stage-1 child kept
            best = self.state.children.get(self._removal_best() or "")
            update["keep"] = best.keep if best else [True] * len(self.teacher.layers)
        self.state = self.state.model_copy(update=update)
        self.state = save_search(self.folder, self.state, self.policies, self.opt, self.sampler)

    def _sample(self, stage: str) -> tuple[Plan, torch.Tensor]:
        layers = self.teacher.layers
        if stage == "removal":
            return self.policies.removal.sample(layers, self.sampler)
        keep = self.state.keep or [True] * len(layers)
        return self.policies.shrink.sample(layers, keep, self.sampler)

    def _iteration(self, stage: str) -> None:
        began, step = time.perf_counter(), len(self.state.history)
        old_best = self.state.best_file
        plans, log_probs, keys, jobs, specs = [], [], [], {}, {}
        for _ in range(self.s.rollouts[stage]):
            plan, log_prob = self._sample(stage)
            spec = self.maker.spec(plan)
            key = self.maker.key(spec, self.s.cache_extra)
            plans.append(plan), log_probs.append(log_prob), keys.append(key)
            specs[key] = spec
            if key not in self.state.children and key not in jobs:
                jobs[key] = ChildJob(key, spec.model_dump(mode="json"))
        results = self.executor.map(list(jobs.values()))
        children = dict(self.state.children)
        for plan, key in zip(plans, keys, strict=True):
            if key in jobs and key not in children:
                result = next(r for r in results if r.key == key)
                children[key] = _record(result, plan, stage, step)
        if self.latency is not None:
            children = self._timed(children, specs, results)
        held = stage != "removal" or self.s.constrain_removal
        rewards = [self._reward(children[k], self.state.index, penalised=held) for k in keys]
        baseline = self._policy_step(stage, log_probs, rewards)
        best, best_reward = self._best(children)
        self.state = self.state.model_copy(update={
            "children": children, "index": self.state.index + 1,
            "trainings": self.state.trainings + len(jobs),
            "seconds": self.state.seconds + time.perf_counter() - began,
            "history": [*self.state.history, Iteration(
                stage=stage, index=self.state.index, keys=keys, rewards=rewards,
                baseline=baseline, trainings=len(jobs), seconds=time.perf_counter() - began,
                best=best)],
            "best": best, "best_reward": best_reward,
            "best_file": self._save_best(best, results),
        })  # fmt: skip
        self.state = save_search(self.folder, self.state, self.policies, self.opt, self.sampler)
        if old_best and old_best != self.state.best_file:  # the JSON names the new one now
            (self.folder / old_best).unlink(missing_ok=True)
        self.log.info(f"  n2n {stage} {self.state.index}/{self.s.iterations[stage]}: reward "
                      f"mean {sum(rewards) / len(rewards):.3f} max {max(rewards):.3f}, "
                      f"{len(jobs)} trained ({self.state.trainings} so far), best "
                      f"{best_reward or 0:.3f} ({time.perf_counter() - began:.1f}s)")  # fmt: skip

    def _timed(self, children: dict[str, ChildRecord], specs: dict[str, Any],
               results: list[ChildResult]) -> dict[str, ChildRecord]:  # fmt: skip
        """This iteration's valid children with their latency measured (each once: a cached
        child keeps the latency it was first measured at)."""
        assert self.latency is not None
        trained = {r.key: r.weights for r in results}
        children = dict(children)
        for key, spec in specs.items():
            child = children[key]
            if child.valid and child.latency_ms is None:
                try:
                    record = self.latency.child(spec.model_dump(mode="json"), trained.get(key))
                except CompressError as e:  # a child that does not export cannot be deployed
                    children[key] = child.model_copy(update={"valid": False,
                                                             "error": f"not timed: {e}"})
                    continue
                children[key] = child.model_copy(update={"latency_ms": record.median_ms,
                                                         "latency_cv": record.cv})  # fmt: skip
        return children

    def _reward(self, child: ChildRecord, epoch: int, penalised: bool = True) -> float:
        if not child.valid:
            return INVALID
        params = child.params / self.teacher.params
        mode = self.latency.mode if self.latency is not None else None
        timed = mode and child.latency_ms and self.state.teacher_latency_ms
        latency = child.latency_ms / self.state.teacher_latency_ms if timed else None
        scored = reward(size_ratio(params, latency, mode), 1.0, child.accuracy,
                        self.teacher.accuracy, epoch=epoch if penalised else 0,
                        max_size_ratio=self.s.max_param_ratio if penalised else None,
                        min_accuracy_ratio=self.s.min_accuracy_ratio if penalised else None,
                        param_ratio=params)  # fmt: skip
        return scored.reward

    def _policy_step(self, stage: str, log_probs: list[torch.Tensor],
                     rewards: list[float]) -> float:  # fmt: skip
        """One REINFORCE step with per-rollout advantages; returns the baseline used."""
        means = self.state.baselines.get(stage, [])
        baseline = reinforce(self.opt, log_probs, rewards, means)
        self.state = self.state.model_copy(update={"baselines": {
            **self.state.baselines, stage: [*means, sum(rewards) / len(rewards)]}})  # fmt: skip
        return baseline

    def _best(self, children: dict[str, ChildRecord]) -> tuple[str | None, float | None]:
        """The child with the highest reward without the annealed penalty, among those within
        the constraints when any is."""
        def within(c: ChildRecord) -> bool:
            return self._reward(c, epoch=10**6) > INVALID

        valid = [c for c in children.values() if c.valid]
        pool = [c for c in valid if within(c)] or valid
        if not pool:
            return None, None
        best = max(pool, key=lambda c: (self._reward(c, 0, penalised=False), c.key))
        return best.key, self._reward(best, 0, penalised=False)

    def _removal_best(self) -> str | None:
        """The stage-1 child stage 2 starts from: the best child so far, or, when stage 1 is
        not held to the constraints, the stage-1 child of the highest unpenalised reward."""
        if self.s.constrain_removal:
            return self.state.best
        removal = [c for c in self.state.children.values() if c.valid and c.stage == "removal"]
        if not removal:
            return None
        return max(removal, key=lambda c: (self._reward(c, 0, penalised=False), c.key)).key

    def _save_best(self, best: str | None, results: list[ChildResult]) -> str | None:
        """A new best child's trained weights, kept for the stage's model."""
        if best is None or best == self.state.best:
            return self.state.best_file
        weights = next((r.weights for r in results if r.key == best), None)
        if weights is None:  # the best came from an earlier iteration: its file is there
            return self.state.best_file
        name = f"best-{best}.safetensors"
        write_with(self.folder / name, lambda tmp: save_file(weights, str(tmp)))
        return name


def reinforce(opt: torch.optim.Optimizer, log_probs: list[torch.Tensor], rewards: list[float],
              earlier_means: list[float]) -> float:  # fmt: skip
    """One REINFORCE step on −(1/K) sum_k (R_k − b) log π(a_k), b the running mean of earlier
    iterations' mean rewards (this batch's mean at the first); returns b."""
    batch_mean = sum(rewards) / len(rewards)
    baseline = sum(earlier_means) / len(earlier_means) if earlier_means else batch_mean
    loss = -sum((r - baseline) * lp for r, lp in zip(rewards, log_probs, strict=True))
    opt.zero_grad(set_to_none=True)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:  # forced choices only: no step
        (loss / len(rewards)).backward()
        opt.step()
    return baseline


def _record(result: ChildResult, plan: Plan, stage: str, step: int) -> ChildRecord:
    return ChildRecord(key=result.key, keep=plan.keep, factors=plan.factors,
                       kernels=plan.kernels, valid=result.valid,
                       params=result.params, flops=result.flops, accuracy=result.accuracy,
                       seconds=result.seconds, error=result.error, stage=stage,
                       iteration=step)  # fmt: skip
