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
