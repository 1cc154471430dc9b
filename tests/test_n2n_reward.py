"""N2N's reward (Ashok et al. 2018): its shape, invalid children, the annealed penalty, and the
REINFORCE step that learns from it on a toy problem whose best action is known."""

from __future__ import annotations

import math

import pytest
import torch

from compress.prune.layers import LayerSpec, removable, shrinkable
from compress.prune.policy import Policies
from compress.prune.reward import INVALID, annealing, compression_reward, reward
from compress.prune.search import reinforce
from compress.prune.surgery import FACTORS


def test_compression_reward_is_zero_at_no_compression_one_at_full_and_concave():
    assert compression_reward(0.0) == 0.0
    assert compression_reward(1.0) == 1.0
    grid = [i / 20 for i in range(21)]
    values = [compression_reward(c) for c in grid]
    assert all(b > a for a, b in zip(values, values[1:], strict=False))  # rising
    second = [values[i - 1] - 2 * values[i] + values[i + 1] for i in range(1, 20)]
    assert all(d < 0 for d in second)  # concave: each halving is worth less than the last
    assert compression_reward(0.5) == pytest.approx(0.75)


def test_reward_is_compression_times_accuracy_ratio():
    scored = reward(100, 1000, 0.88, 0.92, epoch=0)
    c = 1 - 100 / 1000
    assert scored.compression == pytest.approx(c)
    assert scored.reward == pytest.approx(c * (2 - c) * 0.88 / 0.92)
    assert not scored.violates


@pytest.mark.parametrize("child", [1000, 1500])
def test_a_child_no_smaller_than_its_teacher_scores_minus_one(child):
    assert reward(child, 1000, 0.99, 0.92, epoch=0).reward == INVALID == -1.0


def test_annealing_schedule():
    assert annealing(0) == 1.0
    assert annealing(15) == 0.0
    assert annealing(30) == 0.0  # clipped, never negative
    assert annealing(7.5) == pytest.approx(0.5**4)
    assert annealing(3) == pytest.approx((1 - 3 / 15) ** 4)
    values = [annealing(e) for e in range(16)]
    assert all(b < a for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("epoch", [0, 5, 10, 15, 20])
def test_constraint_penalty_is_annealed(epoch):
    """Outside the constraint: (ε − 1) + ε·R, soft at first, −1 from epoch 15 on."""
    free = reward(300, 1000, 0.9, 0.92, epoch=epoch)
    capped = reward(300, 1000, 0.9, 0.92, epoch=epoch, max_size_ratio=0.1)
    eps = annealing(epoch)
    assert capped.violates
    assert capped.reward == pytest.approx((eps - 1) + eps * free.reward)
    within = reward(50, 1000, 0.9, 0.92, epoch=epoch, max_size_ratio=0.1)
    assert not within.violates and within.reward > capped.reward
    slow = reward(50, 1000, 0.5, 0.92, epoch=epoch, min_accuracy_ratio=0.9)
    assert slow.violates == True  # noqa: E712  (a plain bool)


def _toy_layers() -> list[LayerSpec]:
    conv = {"kind": "conv", "kernel": 3, "padding": 1, "bn": True, "relu": True}
    return [LayerSpec(**conv, out=16), LayerSpec(**conv, out=16), LayerSpec(**conv, out=32),
            LayerSpec(**conv, out=32), LayerSpec(kind="maxpool", kernel=2, stride=2),
            LayerSpec(kind="flatten"), LayerSpec(kind="linear", out=64, relu=True, bias=True),
            LayerSpec(kind="linear", bias=True)]  # fmt: skip


def test_removal_policy_learns_the_known_best_removal():
    """Reward 1 for the known best plan (remove layer 2, keep layers 1 and 3), 0 for any other:
    the paper's budget of 100 REINFORCE steps of 5 rollouts (at 0.01, about 3× its learning
    rate) takes the policy's probability of that exact plan from about 1/8 to near 1."""
    layers, right = _toy_layers(), {1: True, 2: False, 3: True}
    assert [i for i, ok in enumerate(removable(layers)) if ok] == list(right)
    torch.manual_seed(0)
    policies, gen = Policies(), torch.Generator().manual_seed(0)
    opt = policies.optimizer(0.01, 0.1)

    def expected() -> float:  # exact: the product of the per-layer probabilities
        from compress.prune.policy import layer_features

        with torch.no_grad():
            p_keep = policies.removal(layer_features(layers)).softmax(1)[:, 1]  # (n,)
        return math.prod((p_keep[i] if keep else 1 - p_keep[i]).item()
                         for i, keep in right.items())  # fmt: skip

    before, means = expected(), []
    for _ in range(100):
        samples = [policies.removal.sample(layers, gen) for _ in range(5)]
        rewards = [float(all(plan.keep[i] == k for i, k in right.items())) for plan, _ in samples]
        reinforce(opt, [lp for _, lp in samples], rewards, means)
        means.append(sum(rewards) / len(rewards))
    assert before < 0.25
    assert expected() > 0.9, (before, expected())


def test_shrink_policy_learns_the_known_best_factor():
    """Reward: the fraction of shrinkable layers given factor 0.6 (one of 11 actions). The
    expected reward, estimated on 200 samples, must rise well above its start."""
    layers = _toy_layers()
    keep, can = [True] * len(layers), shrinkable(layers)
    torch.manual_seed(1)
    policies, gen = Policies(), torch.Generator().manual_seed(1)
    opt = policies.optimizer(0.003, 0.01)

    def score(plan) -> float:
        hits = [plan.factors[i] == 0.6 for i in range(len(layers)) if can[i]]
        return sum(hits) / len(hits)

    def expected() -> float:
        with torch.no_grad():
            return sum(score(policies.shrink.sample(layers, keep, gen)[0])
                       for _ in range(200)) / 200  # fmt: skip

    before, means = expected(), []
    assert before < 0.3  # 1 of 11 actions at the start
    for _ in range(30):
        samples = [policies.shrink.sample(layers, keep, gen) for _ in range(5)]
        rewards = [score(plan) for plan, _ in samples]
        reinforce(opt, [lp for _, lp in samples], rewards, means)
        means.append(sum(rewards) / len(rewards))
    assert FACTORS.count(0.6) == 1
    assert expected() > before + 0.3, (before, expected())
