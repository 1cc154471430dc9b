"""The n2n stage's recipe checks (before anything runs) and distill's student_from."""

from __future__ import annotations

import pytest

from compress.errors import RecipeError
from compress.pipeline.runner import plan
from compress.recipe import load_recipe
from tests.conftest import digits_recipe, write_recipe

N2N = {"kind": "n2n", "removal": {"iterations": 1}, "shrinkage": {"iterations": 1}}
KD = {"kd": {"weight": 1.0, "temperature": 4}}


def _plan(tmp_path, **changes):
    recipe, source = load_recipe(write_recipe(tmp_path / "r.yaml", digits_recipe(**changes)))
    return plan(recipe, source)


def test_a_valid_n2n_recipe_plans(tmp_path):
    stages = [N2N, {"kind": "distill", "name": "kd", "student_from": "n2n", "losses": KD,
                    "train": {"epochs": 1, "lr": 1e-2}}]  # fmt: skip
    names = [name for name, _ in _plan(tmp_path, stages=stages)[0]]
    assert names == ["01-teacher", "02-n2n", "03-distill"]


def test_n2n_of_an_unknown_model_is_located(tmp_path):
    with pytest.raises(RecipeError, match=r"stages\[0\]\.model: no earlier stage makes a model "
                       "named 'nope'"):  # fmt: skip
        _plan(tmp_path, stages=[{**N2N, "model": "nope"}])


def test_n2n_of_a_network_neither_surgery_can_shrink_is_located(tmp_path):
    """Not a flat Sequential (the project's surgery), and nothing but the classifier (no group
    of channels Torch-Pruning may shrink)."""
    (tmp_path / "linear.py").write_text(
        "from torch import nn\n"
        "class Linear(nn.Module):\n"
        "    def __init__(self, n, k):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(n, k)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
        "def build(info):\n"
        "    return Linear(64, info.num_classes)\n")  # fmt: skip
    teacher = {"model": {"python": "linear:build"}, "train": {"epochs": 1, "lr": 1e-3}}
    with pytest.raises(RecipeError, match=r"stages\[0\]\.model: .*flat nn.Sequential; got "
                       "Linear; and Torch-Pruning found no group.*N2N surgery applies to"):
        _plan(tmp_path, teacher=teacher, stages=[N2N])


@pytest.mark.parametrize("student", [None, {"arch": "cnn-small"}])
def test_distill_takes_one_student(tmp_path, student):
    stage = {"kind": "distill", "student_from": "n2n", "losses": KD,
             "train": {"epochs": 1, "lr": 1e-2}}  # fmt: skip
    if student is None:
        stage = {k: v for k, v in stage.items() if k != "student_from"}
    else:
        stage["student"] = student
    with pytest.raises(RecipeError, match="either student .* or student_from"):
        _plan(tmp_path, stages=[N2N, stage])


def test_distill_student_from_an_unknown_model_is_located(tmp_path):
    stage = {"kind": "distill", "student_from": "n2n-x", "losses": KD,
             "train": {"epochs": 1, "lr": 1e-2}}  # fmt: skip
    with pytest.raises(RecipeError, match=r"stages\[1\]\.student_from: no earlier stage"):
        _plan(tmp_path, stages=[N2N, stage])


TIMED = {**N2N, "name": "n2n-1", "compare_with": "n2n", "min_speedup": 1.6,
         "executor": {"kind": "processes", "workers": 1}}  # fmt: skip


def test_a_timing_repeat_plans_and_adds_no_model(tmp_path):
    stages = [{**N2N, "executor": {"kind": "processes", "workers": 2}}, TIMED,
              {"kind": "distill", "student_from": "n2n-1", "losses": KD,
               "train": {"epochs": 1, "lr": 1e-2}}]  # fmt: skip
    with pytest.raises(RecipeError, match=r"stages\[2\]\.student_from: no earlier stage makes "
                       "a model named 'n2n-1'"):  # fmt: skip
        _plan(tmp_path, stages=stages)
    assert len(_plan(tmp_path, stages=stages[:2])[0]) == 3


@pytest.mark.parametrize(("second", "where", "says"), [
    ({**TIMED, "compare_with": "nope"}, r"stages\[1\]\.compare_with",
     "no earlier n2n stage .* named 'nope'"),
    ({**TIMED, "child_train": {"epochs": 2}}, r"stages\[1\]\.child_train\.epochs",
     "differs from the n2n search 'n2n' .* only name and executor may differ"),
    ({**TIMED, "executor": {"kind": "local"}}, r"stages\[1\]\.executor",
     "the same as 'n2n''s: the comparison would time one executor twice"),
    ({**N2N, "name": "n2n-1", "min_speedup": 1.6}, r"stages\[1\]\.min_speedup",
     "a speed-up goal needs compare_with"),
    ({**N2N, "name": "n2n-1", "executor": {"kind": "processes", "address": "10.0.0.2:6379"}},
     r"stages\[1\]\.executor\.address", "an address is a Ray cluster's"),
    ({**N2N, "name": "n2n-1", "executor": {"kind": "ray", "address": "ray://head"}},
     r"stages\[1\]\.executor\.address", "should match pattern"),
])  # fmt: skip
def test_a_bad_executor_or_comparison_is_located(tmp_path, second, where, says):
    with pytest.raises(RecipeError, match=rf"{where}: .*{says}"):
        _plan(tmp_path, stages=[N2N, second])
