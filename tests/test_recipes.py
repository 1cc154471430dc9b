"""Shipped recipes validate, the JSON Schema file is current, the loaders read real data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compress.data import load_splits
from compress.recipe import json_schema, load_recipe
from tests.conftest import ROOT, cli, digits_recipe, write_recipe


@pytest.mark.parametrize("recipe", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_recipes_validate(recipe):
    result = cli("validate", recipe)
    assert (result.returncode, result.stderr) == (0, "")


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "recipe.schema.json").read_text())
    assert committed == json_schema(), "run `make schema` and commit recipe.schema.json"


def splits_of(tmp_path, source: str, seed: int):
    path = write_recipe(tmp_path / f"{source}-{seed}.yaml",
                        digits_recipe(data={"source": source}, seed=seed))  # fmt: skip
    recipe, _ = load_recipe(path)
    return load_splits(recipe, tmp_path / "run")


def test_fashion_mnist_is_the_real_data_set(tmp_path):
    splits = splits_of(tmp_path, "fashion-mnist", 0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54000, 6000, 10000)
    assert splits.info.input_shape == (1, 28, 28)
    assert np.bincount(splits.test.y).tolist() == [1000] * 10  # the official balanced test split
    assert splits.train.x.min() == 0.0 and splits.train.x.max() == 1.0


def test_digits_split_is_seeded_and_the_test_split_is_not(tmp_path):
    a, b, c = (splits_of(tmp_path, "digits", seed) for seed in (1, 1, 2))
    assert np.array_equal(a.train.y, b.train.y) and not np.array_equal(a.train.y, c.train.y)
    assert len(a.test) == 360 and np.array_equal(a.test.x, c.test.x)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_recipes_run_end_to_end_with_smoke(recipe, example_runs):
    report = json.loads((example_runs[recipe] / "report.json").read_text())
    assert report["smoke"] is True
    roles = {m["role"] for m in report["models"]}
    assert "teacher" in roles and len(roles) > 1, roles  # the teacher and what it made
    assert all(m["artifacts"] for m in report["models"])  # every model exported and measured
