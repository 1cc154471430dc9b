"""Bad data is one clear line naming the file, the recipe's line and key, exit 2, and nothing
marked complete."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.conftest import cli, write_recipe
from tests.test_user_code import one_line_error


def image_recipe(root) -> dict:
    return {
        "name": "bad-images", "task": "image-classification",
        "data": {"source": "image-folder", "train": str(root), "size": [8, 8], "channels": 3,
                 "batch_size": 16},
        "teacher": {"model": {"arch": "mlp", "hidden": [8]}, "train": {"epochs": 1, "lr": 1e-2}},
        "stages": [{"kind": "export"}],
    }  # fmt: skip


def photos(root, classes=("cat", "dog"), per_class=6, mode="RGB"):
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.new(mode, (12, 10), color=40 * i if mode == "L" else (40 * i, 9, 9)).save(
                root / c / f"{i}.png"
            )
    return root


def test_an_image_folder_without_images(tmp_path):
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    path = write_recipe(tmp_path / "r.yaml", image_recipe(tmp_path / "photos"))
    one_line_error(cli("validate", path), path, "data.source:", "photos")


def test_an_image_folder_with_one_class(tmp_path):
    root = photos(tmp_path / "photos", classes=("cat",))
    path = write_recipe(tmp_path / "r.yaml", image_recipe(root))
    one_line_error(cli("validate", path), path, "data.source:", "two classes")


@pytest.mark.slow
def test_a_corrupt_image_is_found_when_read_and_nothing_is_complete(tmp_path):
    root = photos(tmp_path / "photos")
    (root / "dog" / "3.png").write_bytes(b"this is not a png")
    path = write_recipe(tmp_path / "r.yaml", image_recipe(root))
    result = cli("run", path, "--out", tmp_path / "run", "--quiet")
    one_line_error(result, path, "data:", "3.png")
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert [s["status"] for s in stages] == ["failed"]


@pytest.mark.slow
def test_grey_images_among_colour_ones_are_converted_and_said_so(tmp_path):
    root = photos(tmp_path / "photos")
    photos(root, classes=("cat",), per_class=2, mode="L")  # overwrite two cats in grey
    path = write_recipe(tmp_path / "r.yaml", image_recipe(root))
    result = cli("run", path, "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr
    outputs = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"][0]["outputs"]
    assert any("converted 2 grayscale images to RGB" in n for n in outputs["notes"])


def arrays_recipe(tmp_path, x, y) -> dict:
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    recipe = image_recipe(tmp_path)
    recipe["data"] = {"source": "arrays", "inputs": "x.npy", "labels": "y.npy"}
    return recipe


@pytest.mark.parametrize(("case", "fragment"), [
    ("lengths", "10 inputs but 9 labels"),
    ("nan", "NaN"),
    ("float-labels", "y.npy"),
    ("object", "pickle"),
])  # fmt: skip
def test_bad_arrays(tmp_path, case, fragment):
    x, y = np.zeros((10, 1, 4, 4), np.float32), np.arange(10) % 2
    if case == "lengths":
        y = y[:9]
    elif case == "nan":
        x[3, 0, 1, 1] = np.nan
    elif case == "float-labels":
        y = y.astype(np.float32)
    elif case == "object":
        x = np.array([None] * 10, dtype=object)
    if case == "object":
        np.save(tmp_path / "x.npy", x, allow_pickle=True)
        np.save(tmp_path / "y.npy", y)
        recipe = image_recipe(tmp_path)
        recipe["data"] = {"source": "arrays", "inputs": "x.npy", "labels": "y.npy"}
    else:
        recipe = arrays_recipe(tmp_path, x, y)
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path), path, "data.source:", fragment)


def test_a_missing_tokenizer_file(tmp_path):
    recipe = image_recipe(tmp_path)
    recipe["task"] = {"name": "sequence-classification", "tokenizer": "absent.json"}
    recipe["data"] = {"source": "austen"}
    recipe["teacher"]["model"] = {"arch": "text-bag"}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path), path, "task.tokenizer:", "absent.json")


def test_a_model_that_takes_shorter_sequences_than_the_task_makes(tmp_path):
    (tmp_path / "short_models.py").write_text(
        "import torch.nn as nn\n"
        "class Short(nn.Module):\n"
        "    def __init__(self, classes):\n"
        "        super().__init__()\n"
        "        self.embed, self.pos = nn.Embedding(100, 8), nn.Embedding(16, 8)\n"
        "        self.head = nn.Linear(8, classes)\n"
        "    def forward(self, ids, mask):\n"
        "        import torch\n"
        "        x = self.embed(ids) + self.pos(torch.arange(ids.shape[1]))\n"
        "        return self.head(x.mean(1))\n"
        "def build(info):\n"
        "    return Short(info.num_classes)\n"
    )
    recipe = image_recipe(tmp_path)
    recipe["task"] = {"name": "sequence-classification", "vocab_size": 100, "max_length": 32}
    recipe["data"] = {"source": "austen"}
    recipe["teacher"]["model"] = {"python": "short_models:build"}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path), path, "teacher.model:", "does not fit")
