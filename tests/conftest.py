"""Shared helpers: write small digits recipes, run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def image_info(shape: tuple[int, ...] = (1, 8, 8), classes: int = 10):
    """The TaskInfo an image classifier of ``shape`` and ``classes`` is built for."""
    from compress.tasks.classification import ImageClassification, ImageClassificationConfig

    task = ImageClassification(ImageClassificationConfig(name="image-classification"))
    return task.info([str(i) for i in range(classes)], shape)


def spec_of(section: dict):
    """A recipe model section validated into its spec."""
    from pydantic import TypeAdapter

    from compress.models import model_spec

    return TypeAdapter(model_spec()).validate_python(section)


def digits_recipe(**changes) -> dict:
    """A digits recipe small enough to run end to end in seconds."""
    recipe = {
        "name": "digits-test",
        "seed": 0,
        "data": {"source": "digits", "batch_size": 64},
        "teacher": {"model": {"arch": "cnn-large", "width": 16, "hidden": 64},
                    "train": {"epochs": 3, "lr": 3e-3}},
        "stages": [
            {"kind": "distill", "student": {"arch": "cnn-small", "width": 4},
             "losses": {"kd": {"weight": 0.9, "temperature": 4}, "ce": {"weight": 0.1}},
             "train": {"epochs": 3, "lr": 1e-2}},
            {"kind": "export"},
            {"kind": "profile", "batch_sizes": [1, 8], "warmup": 2, "iterations": 20},
            {"kind": "report", "goals": {"max_param_ratio": 0.5}},
        ],
    }  # fmt: skip
    recipe.update(changes)
    return recipe


def write_recipe(path: Path, recipe: dict | str) -> Path:
    path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False))
    return path


def cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300):
    """Run ``compress ARGS`` as a user would, in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "compress", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=cwd or ROOT,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture
def recipe_file(tmp_path: Path):
    def make(recipe: dict | str | None = None, name: str = "recipe.yaml") -> Path:
        return write_recipe(tmp_path / name, digits_recipe() if recipe is None else recipe)

    return make


@pytest.fixture(scope="session")
def example_runs(tmp_path_factory):
    """{recipe: run folder} of every example recipe, run once per session with --smoke, two at a
    time: the smoke test of the examples and the runtimes' parity walk share these runs."""
    root = tmp_path_factory.getbasetemp() / "example-runs"
    recipes = sorted((ROOT / "examples").glob("*.yaml"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out, pending = {}, list(recipes)
    while pending:
        batch, pending = pending[:2], pending[2:]
        procs = [(r, subprocess.Popen([sys.executable, "-m", "compress", "run", r, "--smoke",
                                       "--out", root / r.stem, "--quiet"], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
                 for r in batch]  # fmt: skip
        for recipe, proc in procs:
            _, err = proc.communicate(timeout=1200)
            assert proc.returncode == 0, f"{recipe.name}: {err[-2000:]}"
            out[recipe] = root / recipe.stem
    return out
