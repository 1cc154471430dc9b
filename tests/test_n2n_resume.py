"""An N2N search killed with SIGKILL mid-search resumes at its last finished iteration and ends
exactly as an uninterrupted search does (a real subprocess, a tiny budget on digits)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import ROOT, cli, write_recipe

RECIPE = {
    "name": "n2n-resume", "seed": 3,
    "data": {"source": "digits", "batch_size": 64},
    "teacher": {"model": {"arch": "vgg", "stages": [[8], [16, 16]], "hidden": 32},
                "train": {"epochs": 1, "lr": 3e-3}},
    "stages": [
        {"kind": "n2n", "removal": {"iterations": 3, "rollouts": 3},
         "shrinkage": {"iterations": 3, "rollouts": 3, "floor": 4},
         "child_train": {"epochs": 1, "subset": 400, "val_subset": 150, "inherit": True},
         "reward": {"max_param_ratio": 0.6}},
        {"kind": "distill", "name": "child-kd", "student_from": "n2n", "baseline": "none",
         "losses": {"kd": {"weight": 1.0, "temperature": 4}}, "train": {"epochs": 1, "lr": 1e-2}},
        # Starts from the child's weights; a learning rate of ~0 must leave them where they were.
        {"kind": "distill", "name": "child-ft", "student_from": "n2n", "student_init": "weights",
         "baseline": "none", "losses": {"kd": {"weight": 1.0, "temperature": 4}},
         "train": {"epochs": 1, "lr": 1e-12}},
    ],
}  # fmt: skip
ITERATIONS = 6
SEARCH = Path("02-n2n") / "search" / "search.json"


def _history(run: Path) -> list:
    try:
        return json.loads((run / SEARCH).read_text())["history"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return []


def _kill_mid_search(recipe: Path, run: Path) -> int:
    """Start the run, SIGKILL it once two iterations are checkpointed; the iterations done."""
    proc = subprocess.Popen([sys.executable, "-m", "compress", "run", str(recipe), "--out",
                             str(run), "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 240
    while len(_history(run)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(_history(run))


def _without_times(state: dict) -> dict:
    for it in state["history"]:
        it.pop("seconds")
    for child in state["children"].values():
        child.pop("seconds")
    return {k: v for k, v in state.items() if k not in ("seconds", "policy_file")}


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recipe run once without interruption."""
    folder = tmp_path_factory.mktemp("n2n-whole")
    done = cli("run", write_recipe(folder / "recipe.yaml", RECIPE), "--out", folder / "run")
    assert done.returncode == 0, done.stderr
    return folder / "run"


@pytest.mark.slow
def test_a_search_killed_with_sigkill_resumes_to_the_same_result(whole, tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", RECIPE)
    killed = tmp_path / "killed"
    assert len(_history(whole)) == ITERATIONS
    finished = _kill_mid_search(recipe, killed)
    assert 2 <= finished < ITERATIONS, f"the kill did not land mid-search ({finished} done)"
    resumed = cli("run", recipe, "--out", killed)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after iteration {finished}" in resumed.stderr
    a = json.loads((whole / SEARCH).read_text())
    b = json.loads((killed / SEARCH).read_text())
    assert _without_times(a) == _without_times(b)  # rewards, children, baselines, best, RNGs
    assert b["trainings"] <= 2 * ITERATIONS * 3
    for name in ("02-n2n/n2n.safetensors", "03-distill/child-kd.safetensors"):
        wa, wb = load_file(str(whole / name)), load_file(str(killed / name))
        assert wa.keys() == wb.keys()
        assert all((wa[k] == wb[k]).all() for k in wa), name
    log = json.loads((killed / "02-n2n" / "search-log.json").read_text())
    assert len(log["iterations"]) == ITERATIONS and log["children"]
    assert (killed / "02-n2n" / "search-rewards.png").stat().st_size > 1000


def _weight_distance(a: dict, b: dict) -> float:
    """Largest difference between trained parameters (BatchNorm's running statistics move in
    training mode whatever the learning rate, so they are left out)."""
    names = [k for k in a if "running_" not in k and "num_batches" not in k]
    return max(float((a[k] - b[k]).abs().max()) for k in names)


def test_student_init_weights_starts_from_the_child_and_random_does_not(whole):
    child = load_file(str(whole / "02-n2n" / "n2n.safetensors"))
    tuned = load_file(str(whole / "04-distill" / "child-ft.safetensors"))
    fresh = load_file(str(whole / "03-distill" / "child-kd.safetensors"))
    assert _weight_distance(child, tuned) < 1e-6
    assert _weight_distance(child, fresh) > 1e-2
