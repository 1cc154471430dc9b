"""reward.constrain_removal: false rewards stage 1 on size and accuracy alone and hands stage 2
the stage-1 child of the highest unpenalised reward; true (the paper's way) penalises stage-1
children outside the constraints. A real search on scikit-learn's digits."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from compress.log import Log
from compress.models import count_params
from compress.prune.evaluate import ChildTrainer, ChildTraining
from compress.prune.executor import LocalExecutor
from compress.prune.layers import LayerSpec
from compress.prune.reward import INVALID, compression_reward
from compress.prune.search import Search, SearchSettings, Teacher
from compress.prune.surgery import build_layers, surgery_layers
from tests.conftest import image_info
from tests.test_n2n_latency import _digits

CONV = {"kind": "conv", "kernel": 3, "padding": 1, "bn": True, "relu": True}
SETTINGS = SearchSettings(iterations={"removal": 2, "shrink": 1},
                          rollouts={"removal": 4, "shrink": 2}, removal_lr=0.003, shrink_lr=0.1,
                          floor=4, seed=1, max_param_ratio=0.02)  # fmt: skip


@pytest.fixture(scope="module")
def setup() -> tuple:
    torch.manual_seed(0)
    layers = [LayerSpec(**CONV, out=16), LayerSpec(**CONV, out=24), LayerSpec(**CONV, out=24),
              LayerSpec(kind="maxpool", kernel=2, stride=2), LayerSpec(kind="flatten"),
              LayerSpec(kind="linear", bias=True)]  # fmt: skip
    teacher = build_layers(layers, (1, 8, 8), 10).eval()
    x_train, x_val, y_val = _digits(200, 100)
    with torch.no_grad():
        logits = teacher(torch.from_numpy(x_train)).numpy()  # (200, 10)
    training = ChildTraining(epochs=1, lr=5e-4, weight_decay=5e-4, batch_size=64, inherit=True,
                             seed=0)  # fmt: skip
    trainer = ChildTrainer(image_info((1, 8, 8), classes=10), x_train, logits, x_val, y_val,
                           teacher.state_dict(), training)  # fmt: skip
    record = Teacher(surgery_layers(teacher, (1, 8, 8), 10), count_params(teacher),
                     trainer.accuracy(teacher))  # fmt: skip
    return record, trainer


def _search(folder, setup: tuple, constrain_removal: bool) -> Search:
    record, trainer = setup
    settings = dataclasses.replace(SETTINGS, constrain_removal=constrain_removal)
    return Search(folder, record, settings, LocalExecutor(trainer, 1), Log(quiet=True))


def _unpenalised(child, teacher: Teacher) -> float:
    if not child.valid or child.params >= teacher.params:  # no smaller than the teacher
        return INVALID
    return compression_reward(1 - child.params / teacher.params) * child.accuracy / teacher.accuracy


def test_an_unconstrained_removal_stage_is_rewarded_on_size_and_accuracy_alone(tmp_path, setup):
    search = _search(tmp_path, setup, constrain_removal=False)
    state = search.run()
    removal = [it for it in state.history if it.stage == "removal"]
    for it in removal:
        for key, got in zip(it.keys, it.rewards, strict=True):
            assert got == pytest.approx(_unpenalised(state.children[key], search.teacher))
    stage1 = [c for c in state.children.values() if c.stage == "removal" and c.valid]
    best = max(stage1, key=lambda c: _unpenalised(c, search.teacher))
    assert state.keep == best.keep
    assert all(c.params > 0.02 * search.teacher.params for c in stage1)  # all outside the bound


def test_a_constrained_removal_stage_penalises_children_outside_the_bound(tmp_path, setup):
    search = _search(tmp_path, setup, constrain_removal=True)
    state = search.run()
    first = state.history[0]
    outside = [(k, r) for k, r in zip(first.keys, first.rewards, strict=True)
               if _unpenalised(state.children[k], search.teacher) > INVALID]
    assert outside
    for key, got in outside:
        assert got < _unpenalised(state.children[key], search.teacher)
