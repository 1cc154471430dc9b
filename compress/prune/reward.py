"""The N2N reward (Ashok et al. 2018, eqs. 4-6, as their code computes it).

C = 1 − size_child / size_teacher (parameters, latency, or both: ``size_ratio``);
R_c = C(2 − C): 0 at C = 0, 1 at C = 1, concave, so the first halvings pay most.
R_a = acc_child / acc_teacher. R = R_c · R_a.
A child that is invalid (cannot be built, or is no smaller than its teacher: in parameters,
and in the size the reward reads) scores −1. A child outside the recipe's constraints scores
(ε − 1) + ε · R, with ε = clip((1 − epoch/15)^4, 0, 1): soft at first, then −1 once ε reaches
0 (after 15 iterations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INVALID = -1.0


def compression_reward(c: float) -> float:
    """R_c = C(2 − C) for C in [0, 1]."""
    return c * (2.0 - c)


def annealing(epoch: int, horizon: float = 15.0) -> float:
    """ε = clip((1 − epoch / horizon)^4, 0, 1): the penalty's softness at ``epoch``."""
    base = 1.0 - epoch / horizon
    return min(max(base, 0.0) ** 4, 1.0)


@dataclass(frozen=True)
class Scored:
    """A child's reward and its parts."""

    reward: float
    compression: float  # C
    accuracy_ratio: float  # R_a
    violates: bool


def size_ratio(param_ratio: float, latency_ratio: float | None, mode: str | None) -> float:
    """The child's size over the teacher's as the reward reads it: parameters (no latency
    term), latency ('replace'), or the geometric mean of both ratios ('join': halving either
    counts the same, and C(2 − C) keeps its shape and range)."""
    if mode is None:
        return param_ratio
    if latency_ratio is None:
        raise ValueError("a latency reward needs the child's measured latency")
    return latency_ratio if mode == "replace" else math.sqrt(param_ratio * latency_ratio)


def reward(size_child: float, size_teacher: float, acc_child: float, acc_teacher: float, *,
           epoch: int, max_size_ratio: float | None = None,
           min_accuracy_ratio: float | None = None,
           param_ratio: float | None = None) -> Scored:  # fmt: skip
    """The reward of one child. Sizes in any unit (parameters, milliseconds), accuracies as
    fractions or percent (only their ratio counts). ``param_ratio``, when the size is not the
    parameter count (a latency reward): a child with as many parameters as its teacher is
    invalid however its timing came out, and ``max_size_ratio`` bounds it (else the size
    ratio)."""
    no_smaller = param_ratio is not None and param_ratio >= 1  # the teacher itself, timed again
    if size_child >= size_teacher or size_child <= 0 or no_smaller:
        return Scored(INVALID, 0.0, 0.0, True)
    c = 1.0 - size_child / size_teacher
    ra = acc_child / acc_teacher if acc_teacher > 0 else 0.0
    r = compression_reward(c) * ra
    bounded = param_ratio if param_ratio is not None else size_child / size_teacher
    violates = (max_size_ratio is not None and bounded > max_size_ratio) or (
        min_accuracy_ratio is not None and ra < min_accuracy_ratio)  # fmt: skip
    if violates:
        eps = annealing(epoch)
        r = (eps - 1.0) + eps * r
    return Scored(r, c, ra, violates)
