"""The search's state, checkpointed after every iteration.

``search.json`` (written atomically, last) holds everything but tensors: where the search is,
the baselines, every evaluated child with its plan and measurements, each iteration's rewards,
the best child, and the random generators (the sampler's, torch's, numpy's, python's). It names
the safetensors file with the policies' weights and Adam state of that same iteration, written
before it, so a SIGKILL at any moment leaves a JSON file naming a complete state.
"""

from __future__ import annotations

import base64
import random
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from compress.atomic import write_json
from compress.pipeline.artifacts import Record
from compress.prune.policy import Policies
from compress.train import load_state, save_state

STATE_FILE = "search.json"


class ChildRecord(Record):
    """One evaluated child: the plan that made it and what it measured."""

    key: str = Field(description="Architecture hash (the child cache's key).")
    keep: list[bool] = Field(description="Per teacher layer: kept.")
    factors: list[float] = Field(description="Per teacher layer: width factor.")
    kernels: list[float] | None = Field(None, description="Per teacher layer: kernel-size "
                                        "factor (shrinkage field 'kernel' only).")  # fmt: skip
    valid: bool = Field(description="It built and trained.")
    params: int = Field(0, description="Parameters, counted on the built child.")
    flops: int = Field(0, description="FLOPs per sample, counted on the built child.")
    accuracy: float = Field(0.0, description="Fraction correct on the search's held-out set.")
    seconds: float = Field(0.0, description="Time to build, train and measure it.")
    latency_ms: float | None = Field(None, description="Median latency on the reward's "
                                     "target (latency reward only).")  # fmt: skip
    latency_cv: float | None = Field(None, description="Its timed calls' coefficient of "
                                     "variation (their noise).")  # fmt: skip
    error: str = Field("", description="Why it is invalid.")
    stage: str = Field(description="The search stage that first sampled it.")
    iteration: int = Field(description="Global iteration that first sampled it.")


class Iteration(Record):
    """One policy update: its rollouts' children and rewards."""

    stage: str = Field(description="'removal' or 'shrink'.")
    index: int = Field(description="Iteration within its stage.")
    keys: list[str] = Field(description="Each rollout's child.")
    rewards: list[float] = Field(description="Each rollout's reward.")
    baseline: float = Field(description="The baseline the advantages were taken against.")
    trainings: int = Field(description="Children trained in it (the rest came from the cache).")
    seconds: float = Field(description="Wall time.")
    best: str | None = Field(description="The best child after it.")


class SearchState(Record):
    stage: str = Field("removal", description="'removal', 'shrink' or 'done'.")
    index: int = Field(0, description="Iterations finished in the current stage.")
    baselines: dict[str, list[float]] = Field(
        default_factory=dict, description="Per stage: the batch means so far (the baseline is "
        "their running mean).")  # fmt: skip
    children: dict[str, ChildRecord] = Field(default_factory=dict, description="By key.")
    history: list[Iteration] = Field(default_factory=list, description="Every iteration.")
    best: str | None = Field(None, description="Key of the best child so far.")
    best_reward: float | None = Field(None, description="Its reward (unpenalised).")
    best_file: str | None = Field(None, description="Its trained weights, in the search folder.")
    keep: list[bool] | None = Field(None, description="The removal stage's chosen layers.")
    policy_file: str | None = Field(None, description="Policies + Adam state of this point.")
    rng: dict = Field(default_factory=dict, description="Random generator states.")
    teacher_latency_ms: float | None = Field(None, description="The teacher's median latency "
                                             "on the reward's target, measured once.")  # fmt: skip
    trainings: int = Field(0, description="Children trained so far (cache misses).")
    seconds: float = Field(0.0, description="Search time so far, over all sessions.")


def rng_states(sampler: torch.Generator) -> dict:
    """Every random generator the search touches, as JSON."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "sampler": base64.b64encode(sampler.get_state().numpy().tobytes()).decode(),
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode(),
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "python": [version, list(internal), gauss],
    }  # fmt: skip


def restore_rng(states: dict, sampler: torch.Generator) -> None:
    def tensor(text: str) -> torch.Tensor:
        return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)

    sampler.set_state(tensor(states["sampler"]))
    torch.set_rng_state(tensor(states["torch"]))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))


def save_search(folder: Path, state: SearchState, policies: Policies,
                opt: torch.optim.Optimizer, sampler: torch.Generator) -> SearchState:  # fmt: skip
    """Policies first (a new file), then the JSON naming it, then the old policy file goes."""
    steps = len(state.history)
    policy_file = f"policies-{steps:04d}.safetensors"
    save_state(folder / policy_file, policies, opt, steps)
    old = state.policy_file
    state = state.model_copy(update={"policy_file": policy_file, "rng": rng_states(sampler)})
    write_json(folder / STATE_FILE, state.model_dump(mode="json"))
    if old and old != policy_file:
        (folder / old).unlink(missing_ok=True)
    return state


def load_search(folder: Path, policies: Policies, opt: torch.optim.Optimizer,
                sampler: torch.Generator) -> SearchState | None:  # fmt: skip
    """The last checkpointed state, restored into the policies, the optimizer and the
    generators; None when the search has not finished an iteration yet."""
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    state = SearchState.model_validate_json(path.read_text())
    if state.policy_file:
        load_state(folder / state.policy_file, policies, opt)
    restore_rng(state.rng, sampler)
    return state
