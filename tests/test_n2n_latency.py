"""N2N rewarded on measured latency: how the size ratio is formed in each mode, the recipe's
checks, and a real search on scikit-learn's digits whose children are exported to ONNX and timed
in ONNX Runtime, their latency in the records and their rewards computed from it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from compress.errors import RecipeError
from compress.log import Log
from compress.models import count_params
from compress.prune.config import LatencyRewardConfig
from compress.prune.evaluate import ChildTrainer, ChildTraining
from compress.prune.executor import LocalExecutor
from compress.prune.latency_reward import make_probe
from compress.prune.reward import INVALID, compression_reward, reward, size_ratio
from compress.prune.search import Search, SearchSettings, Teacher
from compress.prune.surgery import build_layers, surgery_layers
from tests.conftest import image_info
from tests.test_n2n_stage import N2N, _plan


def test_size_ratio_per_mode():
    assert size_ratio(0.25, None, None) == 0.25  # the paper: parameters only
    assert size_ratio(0.25, 0.64, "replace") == 0.64
    assert size_ratio(0.25, 0.64, "join") == pytest.approx(math.sqrt(0.25 * 0.64))  # 0.4
    with pytest.raises(ValueError, match="measured latency"):
        size_ratio(0.25, None, "join")


def test_a_latency_reward_keeps_the_parameter_rules():
    """A child with the teacher's parameter count is the teacher timed again: −1 even when its
    timing came out faster; the parameter constraint bounds parameters, not latency."""
    assert reward(0.9, 1.0, 0.9, 0.9, epoch=0, param_ratio=1.0).reward == INVALID
    slower = reward(1.05, 1.0, 0.9, 0.9, epoch=0, param_ratio=0.2)
    assert slower.reward == INVALID  # smaller but no faster
    fast = reward(0.5, 1.0, 0.9, 0.9, epoch=20, max_size_ratio=0.3, param_ratio=0.2)
    assert not fast.violates and fast.reward == pytest.approx(compression_reward(0.5))
    big = reward(0.5, 1.0, 0.9, 0.9, epoch=20, max_size_ratio=0.3, param_ratio=0.4)
    assert big.violates and big.reward == INVALID  # ε = 0 after 15 iterations


@pytest.mark.parametrize(("target", "message"), [
    ("cpu-nope", r"unknown target 'cpu-nope'; known: .*cpu-ort"),
    ("cpu-torch-eager", r"target 'cpu-torch-eager' does not run ONNX files; these do: .*cpu-ort"),
])  # fmt: skip
def test_a_latency_target_is_checked_when_the_recipe_loads(tmp_path, target, message):
    stage = {**N2N, "reward": {"latency": {"target": target}}}
    with pytest.raises(RecipeError, match=r"r\.yaml.*stages\[0\]\.reward\.latency\.target") as e:
        _plan(tmp_path, stages=[stage])
    assert e.match(message)


def _digits(n_train: int, n_val: int) -> tuple[np.ndarray, ...]:
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # (n, 1, 8, 8)
    return x[:n_train], x[-n_val:], y[-n_val:].astype(np.int64)


def _search(folder, probe, teacher, layers, trainer):
    settings = SearchSettings(iterations={"removal": 1, "shrink": 1},
                              rollouts={"removal": 2, "shrink": 2}, removal_lr=0.003,
                              shrink_lr=0.1, floor=4, seed=0)  # fmt: skip
    record = Teacher(layers, count_params(teacher), trainer.accuracy(teacher), teacher)
    return Search(folder, record, settings, LocalExecutor(trainer, 1), Log(quiet=True), probe)


def test_a_latency_search_times_every_child_in_onnx_runtime(tmp_path):
    info = image_info((1, 8, 8), classes=10)
    torch.manual_seed(0)
    conv = {"kind": "conv", "kernel": 3, "padding": 1, "bn": True, "relu": True}
    from compress.prune.layers import LayerSpec

    layers = [LayerSpec(**conv, out=24), LayerSpec(**conv, out=24), LayerSpec(**conv, out=24),
              LayerSpec(kind="maxpool", kernel=2, stride=2), LayerSpec(kind="flatten"),
              LayerSpec(kind="linear", bias=True)]  # fmt: skip
    teacher = build_layers(layers, (1, 8, 8), 10).eval()
    layers = surgery_layers(teacher, (1, 8, 8), 10)
    x_train, x_val, y_val = _digits(200, 100)
    with torch.no_grad():
        logits = teacher(torch.from_numpy(x_train)).numpy()  # (200, 10)
    training = ChildTraining(epochs=1, lr=5e-4, weight_decay=5e-4, batch_size=64,
                             inherit=True, seed=0)  # fmt: skip
    trainer = ChildTrainer(info, x_train, logits, x_val, y_val, teacher.state_dict(), training)
    cfg = LatencyRewardConfig(target="cpu-ort", batch_size=4, mode="join")
    probe = make_probe(cfg, info, {"input": x_val}, smoke=True)
    assert probe.inputs["input"].shape == (4, 1, 8, 8)
    search = _search(tmp_path, probe, teacher, layers, trainer)
    state = search.run()
    t_ms = state.teacher_latency_ms
    assert t_ms is not None and t_ms > 0
    valid = [c for c in state.children.values() if c.valid]
    assert valid and all(c.latency_ms and c.latency_ms > 0 for c in valid)
    t_params = count_params(teacher)
    for it in state.history:  # every reward is the join formula on the recorded measurements
        for key, got in zip(it.keys, it.rewards, strict=True):
            c = state.children[key]
            ratio = math.sqrt(c.params / t_params * c.latency_ms / t_ms)
            want = (compression_reward(1 - ratio) * c.accuracy / search.teacher.accuracy
                    if ratio < 1 and c.params < t_params else INVALID)  # fmt: skip
            assert got == pytest.approx(want)

    def no_second_timing(*args, **kwargs):
        raise AssertionError("the teacher was timed again on resume")

    probe.measure = no_second_timing  # a resume reads the teacher's latency back
    again = _search(tmp_path, probe, teacher, layers, trainer)
    assert again.state.teacher_latency_ms == t_ms
    assert again.run().history == state.history
