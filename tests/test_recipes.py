"""Shipped recipes validate, the JSON Schema file is current, the loaders read real data."""

from __future__ import annotations

import json

import pytest

from compress.data import load_splits
from compress.recipe import json_schema
from tests.conftest import ROOT, cli


@pytest.mark.parametrize("recipe", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_recipes_validate(recipe):
    result = cli("validate", recipe)
    assert (result.returncode, result.stderr) == (0, "")


def test_committed_json_schema_is_current():
    committed = json.loads((ROOT / "recipe.schema.json").read_text())
    assert committed == json_schema(), "run `make schema` and commit recipe.schema.json"


def test_fashion_mnist_is_the_real_data_set():
    splits = load_splits("fashion-mnist", val_fraction=0.1, seed=0)
    assert (len(splits.train_y), len(splits.val_y), len(splits.test_y)) == (54000, 6000, 10000)
    assert splits.input_shape == (1, 28, 28)
    assert splits.test_y.bincount().tolist() == [1000] * 10  # the official balanced test split
    assert splits.train_x.min() == 0.0 and splits.train_x.max() == 1.0


def test_digits_split_is_seeded():
    a, b = load_splits("digits", 0.1, seed=1), load_splits("digits", 0.1, seed=1)
    c = load_splits("digits", 0.1, seed=2)
    assert a.train_y.equal(b.train_y) and not a.train_y.equal(c.train_y)
    assert len(a.test_y) == 360


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_recipes_run_end_to_end_with_smoke(recipe, tmp_path):
    result = cli("run", recipe, "--smoke", "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["smoke"] is True
    assert {m["role"] for m in report["models"]} == {"teacher", "student", "baseline"}
    assert all(m["artifacts"] for m in report["models"])  # every model exported and measured
