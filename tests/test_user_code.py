"""A user's own code and data: builders beside the recipe, plugins, honest cache keys, and bad
input that is reported as one located line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import cli, digits_recipe, write_recipe

MLP_BUILDER = (
    "import math\n"
    "import torch.nn as nn\n"
    "def mlp(info, hidden=16):\n"
    "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(info.input_shape), hidden),\n"
    "                         nn.ReLU(), nn.Linear(hidden, info.num_classes))\n"
)

PLUGIN = '''
import torch
from typing import Literal
from pydantic import Field
from torch import nn
from compress.config import StrictModel
from compress.distill.losses import WeightedLoss, register_loss
from compress.models.zoo import image_shape, register_arch

class LinearSpec(StrictModel):
    """One linear layer."""
    arch: Literal["plugin-linear"] = Field(description="Architecture name.")

@register_arch("plugin-linear", LinearSpec)
def linear(spec, info):
    c, h, w = image_shape(info)
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, info.num_classes))

@register_loss("l1", WeightedLoss)
def l1(cfg, student, teacher, labels):
    """Mean absolute difference of the logits."""
    return (student - teacher).abs().mean()
'''


def small_recipe(**teacher_model) -> dict:
    recipe = digits_recipe()
    recipe["teacher"]["train"]["epochs"] = 1
    if teacher_model:
        recipe["teacher"]["model"] = teacher_model
    recipe["stages"] = [{"kind": "export"}]
    return recipe


def ran(result) -> list[str]:
    return [line.split(":")[0] for line in result.stderr.splitlines() if line.endswith(": running")]


@pytest.mark.slow
def test_editing_the_builder_reruns_the_stages_that_use_it(tmp_path):
    (tmp_path / "my_models.py").write_text(MLP_BUILDER)
    recipe = write_recipe(tmp_path / "r.yaml", small_recipe(python="my_models:mlp"))
    assert cli("run", recipe, "--out", tmp_path / "run").returncode == 0
    again = cli("run", recipe, "--out", tmp_path / "run")
    assert ran(again) == [], again.stderr
    (tmp_path / "my_models.py").write_text(MLP_BUILDER.replace("hidden=16", "hidden=24"))
    edited = cli("run", recipe, "--out", tmp_path / "run")
    assert edited.returncode == 0, edited.stderr
    assert ran(edited) == ["01-teacher", "02-export"]


@pytest.mark.slow
def test_replacing_a_data_file_reruns_everything(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((120, 1, 4, 4), dtype=np.float32), np.arange(120) % 3
    np.savez(tmp_path / "data.npz", x=x, y=y)
    recipe = small_recipe(arch="mlp", hidden=[8])
    recipe["data"] = {"source": "arrays", "inputs": "data.npz", "input_key": "x",
                      "label_key": "y", "batch_size": 32}  # fmt: skip
    path = write_recipe(tmp_path / "r.yaml", recipe)
    assert cli("run", path, "--out", tmp_path / "run").returncode == 0
    np.savez(tmp_path / "data.npz", x=x[::-1].copy(), y=y)  # same shapes, other content
    result = cli("run", path, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert ran(result) == ["01-teacher", "02-export"]


@pytest.mark.slow
def test_a_plugin_registers_an_architecture_and_a_loss(tmp_path):
    (tmp_path / "my_ext.py").write_text(PLUGIN)
    recipe = small_recipe(arch="plugin-linear")
    recipe["plugins"] = ["my_ext"]
    recipe["stages"] = [{"kind": "distill", "student": {"arch": "plugin-linear"},
                         "losses": {"l1": {"weight": 1.0}}, "baseline": "none",
                         "train": {"epochs": 1, "lr": 1e-2}}]  # fmt: skip
    path = write_recipe(tmp_path / "r.yaml", recipe)
    result = cli("run", path, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    outputs = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"][1]["outputs"]
    assert outputs["models"][0]["arch"] == "plugin-linear"
    # Without the plugin, the same recipe is refused at its line.
    del recipe["plugins"]
    refused = cli("validate", write_recipe(tmp_path / "no-plugin.yaml", recipe))
    assert refused.returncode == 2 and "unknown architecture 'plugin-linear'" in refused.stderr


def one_line_error(result, path, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


BAD_BUILDERS = {
    "no-logits": ("def build(info):\n    import torch.nn as nn\n"
                  "    class M(nn.Module):\n        def forward(self, x):\n"
                  "            return {'features': x}\n    return M()\n",
                  "dict without 'logits' (keys: features)"),
    "raises": ("def build(info):\n    raise RuntimeError('no GPU for me')\n",
               "raised RuntimeError: no GPU for me"),
    "wrong-signature": ("def build(input_shape, classes, width):\n    pass\n",
                        "builders are called as fn(info, **kwargs)"),
    "not-a-module": ("def build(info):\n    return 3\n", "returned int, not a torch.nn.Module"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_BUILDERS))
def test_a_bad_builder_is_one_located_line(tmp_path, case):
    source, message = BAD_BUILDERS[case]
    (tmp_path / "bad_models.py").write_text(source)
    path = write_recipe(tmp_path / "r.yaml", small_recipe(python="bad_models:build"))
    one_line_error(cli("validate", path), path, "teacher.model:", message)


def test_a_missing_builder_or_plugin_is_one_located_line(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", small_recipe(python="nowhere_models:build"))
    one_line_error(cli("validate", path), path, "teacher.model:", "No module named")
    recipe = small_recipe()
    recipe["plugins"] = ["broken_ext"]
    (tmp_path / "broken_ext.py").write_text("import does_not_exist\n")
    path = write_recipe(tmp_path / "p.yaml", recipe)
    one_line_error(cli("validate", path), path, "plugins[0]:", "cannot import plugin 'broken_ext'")


def test_two_models_may_not_share_a_name(tmp_path):
    recipe = digits_recipe()
    recipe["stages"].insert(1, dict(recipe["stages"][0]))  # a second distill, also 'student'
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path), path, "stages[1].name:", "'student' is already made")


def test_cpu_torch_eager_is_a_target(tmp_path):
    recipe = digits_recipe()
    recipe["stages"][2]["targets"] = ["cpu-ort", "cpu-torch-eager"]
    assert cli("validate", write_recipe(tmp_path / "r.yaml", recipe)).returncode == 0
    recipe["stages"][2]["targets"] = ["cpu-ort", "tpu-magic"]
    path = write_recipe(tmp_path / "bad.yaml", recipe)
    one_line_error(cli("validate", path), path, "stages[2].targets:",
                   "unknown target 'tpu-magic'; known: cpu-openvino, cpu-ort, cpu-ort-cpp, "
                   "cpu-torch-eager")  # fmt: skip
