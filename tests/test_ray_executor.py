"""N2N children on Ray: one real run (a local two-worker Ray the pipeline starts and stops) that
searches the same digits teacher twice, here and on Ray, and must find the same children with
the same rewards; a Ray address nobody answers is a clear error, found in seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from compress.errors import CompressError
from compress.log import Log
from compress.pipeline.runner import run_recipe
from compress.prune.compare import comparison_section, shown
from compress.prune.ray_executor import RayClusterError
from tests.conftest import write_recipe

pytest.importorskip("ray")

N2N = {"kind": "n2n", "removal": {"iterations": 2, "rollouts": 3},
       "shrinkage": {"iterations": 2, "rollouts": 3, "floor": 4},
       "child_train": {"epochs": 1, "subset": 300, "val_subset": 150, "inherit": True},
       "reward": {"max_param_ratio": 0.6}}  # fmt: skip
RAY = {**N2N, "name": "n2n-ray", "compare_with": "n2n", "min_speedup": 1.0,
       "executor": {"kind": "ray", "workers": 2}}  # fmt: skip
RECIPE = {
    "name": "n2n-ray", "seed": 5,
    "data": {"source": "digits", "batch_size": 64},
    "teacher": {"model": {"arch": "vgg", "stages": [[8], [16, 16]], "hidden": 32},
                "train": {"epochs": 1, "lr": 3e-3}},
    "stages": [N2N, RAY],
}  # fmt: skip


def _search(run: Path, stage: str) -> dict:
    """The checkpointed search without its timings."""
    state = json.loads((run / stage / "search" / "search.json").read_text())
    for it in state["history"]:
        it.pop("seconds")
    for child in state["children"].values():
        child.pop("seconds")
    # torch's global generator is the one thing that differs: a child trained here reseeds it
    # (its training is seeded by its architecture), one trained on Ray reseeds a worker's
    del state["rng"]["torch"]
    return {k: v for k, v in state.items() if k not in ("seconds", "policy_file")}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """One run: the teacher, its search here (one torch thread, as each Ray task trains with),
    and the same search on a local Ray with two workers, timed against the first."""
    folder = tmp_path_factory.mktemp("n2n-ray")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        recipe = write_recipe(folder / "recipe.yaml", RECIPE)
        run_recipe(recipe, folder / "run", log=Log(quiet=True))
    finally:
        torch.set_num_threads(threads)
    return folder / "run"


def _logs(run: Path) -> tuple[dict, dict]:
    return tuple(json.loads((run / s / "search-log.json").read_text())
                 for s in ("03-n2n", "02-n2n"))  # type: ignore[return-value]  # fmt: skip


@pytest.mark.slow
def test_a_search_on_ray_finds_what_the_local_search_finds(run):
    local, ray = _search(run, "02-n2n"), _search(run, "03-n2n")
    assert len(local["history"]) == 4 and local["best"] is not None
    assert ray == local  # children, rewards, baselines, best child, the policy's sampler
    log = json.loads((run / "03-n2n" / "search-log.json").read_text())
    assert log["run"]["executor"] == {"kind": "ray", "workers": 2, "address": None}
    assert not __import__("ray").is_initialized()  # the Ray the run started is shut down


@pytest.mark.slow
def test_the_report_shows_each_search_and_the_comparison(run):
    manifest = json.loads((run / "manifest.json").read_text())
    outputs = {s["name"]: s["outputs"] for s in manifest["stages"]}
    local, timed = outputs["02-n2n"], outputs["03-n2n"]
    assert [m["name"] for m in local["models"]] == ["n2n"] and timed["models"] == []
    search, comparison = timed["sections"]
    assert search["title"] == "N2N search (n2n-ray)" and len(search["tables"][0]["rows"]) == 4
    for figure in local["sections"][0]["figures"] + search["figures"]:
        assert (run / figure["path"]).stat().st_size > 1000, figure["path"]
    assert "ray (as Ray tasks on a local Ray the run started, 2 workers)" in search["text"][0]
    checks = {row[0]: row[1:] for row in comparison["tables"][1]["rows"]}
    assert checks["same best child"] == ["yes", "yes", "met"]
    assert checks["same children and rewards in every iteration"] == ["yes", "yes", "met"]
    assert checks["both timed in this invocation, neither resumed"] == ["yes", "yes", "met"]


@pytest.mark.slow
def test_the_speedup_goal_is_judged_only_on_searches_timed_together(run):
    this, other = _logs(run)
    ratio = this["search_seconds"] / other["search_seconds"]

    def verdict(goal: float, **changes) -> str:
        changed = {**other, "run": {**other["run"], **changes}}
        rows = comparison_section(this, changed, goal, "03-n2n").tables[1].rows
        return rows[0][3]

    assert verdict(ratio * 0.99) == "met" and verdict(ratio * 1.01) == "missed"
    assert verdict(ratio * 0.99, invocation="another") == "not judged"
    assert shown(1.59992) == "1.599×" and shown(1.6) == "1.600×"  # never shown above the goal
    assert verdict(ratio * 0.99, resumed=True) == "not judged"


@pytest.mark.slow
def test_the_speedup_goal_reaches_the_reports_goals_only_for_the_same_search(run):
    this, other = _logs(run)
    ratio = this["search_seconds"] / other["search_seconds"]
    met = comparison_section(this, other, ratio * 0.99, "03-n2n").goals
    assert len(met) == 1 and met[0].passed and met[0].unit == "×"
    assert met[0].measured == pytest.approx(ratio, abs=1e-3)
    assert not comparison_section(this, other, ratio * 1.01, "03-n2n").goals[0].passed
    elsewhere = comparison_section(this, {**other, "best": "another"}, ratio * 0.99, "03-n2n")
    assert not elsewhere.goals[0].passed and "different best" in elsewhere.goals[0].reason
    assert comparison_section(this, other, None, "03-n2n").goals == []


@pytest.mark.slow
@pytest.mark.parametrize("address", ["127.0.0.1:1", "no-such-host.invalid:6379"])
def test_a_ray_address_nobody_answers_is_a_clear_error(run, tmp_path, address):
    shutil.copytree(run, tmp_path / "run")  # the teacher and the local search are kept
    recipe = {**RECIPE, "stages": [N2N, {**RAY, "executor": {"kind": "ray",
                                                             "address": address}}]}  # fmt: skip
    with pytest.raises(RayClusterError, match=rf"n2n executor.address '{address}': no Ray "
                       r"cluster answers there \(.+\); start one with `ray start --head"):
        run_recipe(write_recipe(tmp_path / "r.yaml", recipe), tmp_path / "run",
                   log=Log(quiet=True))  # fmt: skip
    assert issubclass(RayClusterError, CompressError) and RayClusterError.exit_code == 2
