"""Bad input: one clear line naming file, line and key; exit code 2; no traceback; no run."""

from __future__ import annotations

import pytest

from tests.conftest import cli

RECIPE = """\
name: digits-test
seed: 0
data: {source: digits, batch_size: 64}
teacher:
  model: {arch: cnn-large, width: 16, hidden: 64}
  train: {epochs: 3, lr: 3.0e-3}
stages:
  - kind: distill
    student:
      arch: cnn-small
      width: 4
    losses: {kd: {weight: 0.9, temperature: 4}, ce: {weight: 0.1}}
    train: {epochs: 3, lr: 1.0e-2}
  - kind: export
  - kind: report
"""

# (case, text to replace, replacement, expected fragments of the one-line message)
CASES = [
    ("malformed-yaml", "data: {source: digits, batch_size: 64}", "data: {source: digits",
     [":4:", "malformed YAML"]),
    ("unknown-key", "      width: 4", "      widht: 4",
     [":11:", "stages[0].student.widht:", "did you mean 'width'?",
      "allowed here: arch, width, blocks, hidden"]),
    ("unknown-top-key", "seed: 0", "sede: 0", [":2:", "sede:", "did you mean 'seed'?"]),
    ("unknown-loss-key", "temperature: 4", "temprature: 4",
     [":12:", "stages[0].losses.kd.temprature:", "did you mean 'temperature'?"]),
    ("unknown-train-key", "lr: 3.0e-3", "lr: 3.0e-3, epoch: 3",
     [":6:", "teacher.train.epoch:", "did you mean 'epochs'?"]),
    ("wrong-type", "      width: 4", "      width: four",
     [":11:", "stages[0].student.width:", "integer"]),
    ("unknown-stage", "  - kind: export", "  - kind: exprot",
     [":14:", "stages[1].kind:", "unknown stage kind 'exprot'; known: distill, export,"]),
    ("unknown-arch", "      arch: cnn-small", "      arch: cnn-tiny",
     [":10:", "stages[0].student.arch:", "unknown architecture 'cnn-tiny'; known: cnn-large,"]),
    ("student-does-not-fit", "      width: 4", "      width: 4\n      blocks: 5",
     [":9:", "stages[0].student:", "does not fit input float32 ['batch', 1, 8, 8]"]),
    ("missing-checkpoint", "  train: {epochs: 3, lr: 3.0e-3}", "  checkpoint: nope.safetensors",
     [":6:", "teacher.checkpoint:", "checkpoint not found", "nope.safetensors"]),
    ("missing-key", "    train: {epochs: 3, lr: 1.0e-2}\n", "",
     [":8:", "stages[0].train:", "required key is missing"]),
    ("missing-arch", "      arch: cnn-small\n", "",
     [":9:", "stages[0].student.arch:", "required key is missing (the architecture)"]),
    ("duplicate-key", "seed: 0\n", "seed: 0\nseed: 1\n", [":3:", "seed:", "duplicate key"]),
    ("stage-order", "  - kind: export\n", "  - kind: profile\n",
     [":14:", "stages[1].kind:", "needs exports from an earlier stage"]),
    ("unknown-dataset", "source: digits", "source: cifar-11",
     [":3:", "data.source:", "unknown data source 'cifar-11'", "digits"]),
    ("init-weights-of-nothing", "      width: 4", "      width: 4\n    student_init: weights",
     [":8:", "stages[0].distill:", "student_init: weights needs student_from"]),
]  # fmt: skip


@pytest.mark.parametrize("verb", ["validate", "run"])
@pytest.mark.parametrize(("case", "old", "new", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_recipe(tmp_path, verb, case, old, new, expected):
    assert old in RECIPE
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace(old, new, 1))
    run_dir = tmp_path / "run"
    extra = ["--out", str(run_dir)] if verb == "run" else []
    result = cli(verb, path, *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}:")
    for fragment in expected:
        assert fragment in lines[0]
    assert result.stdout == ""
    assert not run_dir.exists()  # nothing started, nothing marked complete


def test_missing_dataset_says_how_to_install(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace("source: digits", "source: fashion-mnist"))
    result = cli("run", path, "--out", tmp_path / "run",
                 env={"COMPRESS_FASHION_MNIST_DIR": str(tmp_path / "empty")})  # fmt: skip
    assert result.returncode == 2
    line = result.stderr.strip()
    assert f"{path}:3: data.source:" in line
    assert "apt-get install dataset-fashion-mnist" in line
    assert not (tmp_path / "run").exists()


def test_valid_recipe_prints_nothing(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE)
    result = cli("validate", path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_unreadable_recipe(tmp_path):
    result = cli("validate", tmp_path / "absent.yaml")
    assert result.returncode == 2
    assert "absent.yaml" in result.stderr and "Traceback" not in result.stderr


def test_the_old_dataset_key_still_reads(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.replace("source: digits", "dataset: digits"))
    result = cli("validate", path)
    assert (result.returncode, result.stderr) == (0, "")
