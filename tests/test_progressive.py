"""Progressive distillation: the loss against its formula, boosting weights, recipe errors, and
one small run end to end (members, prefix ensembles, their artifacts and the runtime combiner)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compress.progressive.boosting import CAP, boosting_weights, disagreement
from compress.progressive.goals import AnytimeGoal, goal_result, stage_goal
from compress.progressive.objective import ProgressiveCriterion, by_row, on_batch, progressive_loss
from tests.conftest import cli, digits_recipe, image_info, write_recipe


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_loss_is_weighted_ce_plus_t_squared_kl_of_the_ensemble():
    rng = np.random.default_rng(0)
    ens, teacher = rng.normal(size=(6, 4)) * 3, rng.normal(size=(6, 4)) * 3
    labels, weights, a, T = rng.integers(0, 4, 6), rng.uniform(0.2, 3, 6), 0.3, 2.5
    ce = -np.log(_softmax(ens)[np.arange(6), labels])
    p, q = _softmax(teacher / T), _softmax(ens / T)
    kl = (p * np.log(p / q)).sum(1) * T**2
    expected = (weights * (a * ce + (1 - a) * kl)).sum() / weights.sum()
    got = progressive_loss(*(torch.tensor(v) for v in (ens, teacher, labels, weights)), a, T)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_only_the_new_student_learns_and_the_earlier_ones_enter_its_loss():
    """F_t = F_{t−1} + f_t: the earlier sum is a constant (by training row) added to f_t."""
    earlier = np.array([[5.0, -5.0], [0.0, 0.0]], np.float32)  # rows 0 and 1
    teacher = np.array([[2.0, 0.0], [0.0, 2.0]], np.float32)
    crit = ProgressiveCriterion(by_row(earlier), by_row(teacher), np.ones(2, np.float32),
                                alpha=1.0, temperature=1.0)  # fmt: skip
    f_t = torch.zeros(1, 2, requires_grad=True)
    labels = torch.tensor([1])
    row0 = crit(f_t, labels, torch.tensor([0]), {})
    row1 = crit(f_t, labels, torch.tensor([1]), {})
    assert row0.item() == pytest.approx(np.log(1 + np.exp(10.0)), rel=1e-5)  # CE of (5, −5)
    assert row1.item() == pytest.approx(np.log(2), rel=1e-6)
    row0.backward()
    assert f_t.grad[0, 1].item() < 0  # pushes f_t towards label 1: it alone gets the gradient


def test_augmented_batches_run_the_frozen_earlier_students_and_teacher_on_the_batch():
    """With augmentation the stored per-row scores are stale: the networks see the batch."""
    from compress.models.mamba_students import MambaSpec, mamba

    info = image_info((1, 8, 8), classes=3)
    earlier, teacher = (mamba(MambaSpec(arch="mamba", d_model=4), info) for _ in range(2))
    crit = ProgressiveCriterion(on_batch(earlier, info), on_batch(teacher, info),
                                np.ones(4, np.float32), alpha=0.0, temperature=2.0)  # fmt: skip
    assert list(crit.parameters()) == []  # the frozen networks never join the optimizer
    x = torch.rand(2, 1, 8, 8)
    f_t, rows = torch.zeros(2, 3, requires_grad=True), torch.tensor([0, 3])
    loss = crit(f_t, torch.tensor([0, 1]), rows, {"input": x})
    with torch.no_grad():
        expected = progressive_loss(earlier(x), teacher(x), torch.tensor([0, 1]), torch.ones(2),
                                    0.0, 2.0)  # fmt: skip
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6) and expected.item() > 0
    loss.backward()
    assert f_t.grad.abs().sum() > 0 and all(p.grad is None for p in earlier.parameters())


def test_boosting_weights_grow_with_disagreement_and_have_mean_one():
    rng = np.random.default_rng(1)
    teacher = rng.normal(size=(200, 10)) * 4
    ensemble = teacher + rng.normal(size=(200, 10)) * np.linspace(0, 3, 200)[:, None]
    r = disagreement(ensemble, teacher, 4.0)
    w = boosting_weights(ensemble, teacher, 4.0, strength=1.0)
    assert w.mean() == pytest.approx(1.0, rel=1e-5)
    order = np.argsort(r)
    assert np.all(np.diff(w[order]) >= -1e-6)  # more disagreement, never less weight
    assert w.max() / w.min() <= np.exp(CAP) * (1 + 1e-5)  # the cap bounds the spread
    assert w[order[-1]] > 2 * w[order[0]]
    assert np.all(boosting_weights(ensemble, teacher, 4.0, strength=0.0) == 1)
    assert np.all(boosting_weights(None, teacher, 4.0, strength=3.0) == 1)  # first student


def test_a_goal_is_met_by_the_first_prefix_within_its_budget_that_reaches_the_metric():
    from compress.tasks.base import accuracy_metric

    points = [{"ensemble": f"pkd-k{k}", "flops_ratio": share, "test_metrics_pytorch":
               {"accuracy": acc}} for k, share, acc in [(1, 0.01, 0.90), (2, 0.2, 0.96),
                                                        (3, 0.6, 0.99)]]  # fmt: skip
    metric = accuracy_metric()
    def check(**goal):
        return goal_result(AnytimeGoal(**goal), points, 98.0, metric)
    assert check(max_flops=0.01, reach=85)[0] == "pkd-k1"
    assert check(max_flops=0.5, reach=95)[0] == "pkd-k2"
    assert check(max_flops=0.5, max_drop=2.0)[0] == "pkd-k2"  # 96 ≥ 98 − 2
    missed = check(max_flops=0.5, max_drop=0.5)  # pkd-k3 reaches it, but over the budget
    assert missed[0] is None and "pkd-k2" in missed[1] and "96.00" in missed[1]
    assert check(max_flops=0.001, reach=10) == [None, "not met: no prefix within the FLOPs budget"]

    def judged(**goal):  # the same goals as the report's Goals table counts them
        return stage_goal(AnytimeGoal(**goal), points, 98.0, metric, "02-progressive")
    met, missed, empty = (judged(max_flops=0.5, max_drop=2.0), judged(max_flops=0.5, max_drop=0.5),
                          judged(max_flops=0.001, reach=10))  # fmt: skip
    assert met.passed and met.measured == pytest.approx(96.0) and met.target == 96.0
    assert not missed.passed and missed.measured == pytest.approx(96.0) and missed.target == 97.5
    assert not empty.passed and empty.measured is None and "no prefix" in empty.reason
    assert met.name == "02-progressive: anytime at 50 % of the FLOPs"


def _recipe(students, stop_margin=None, export=True, goals=()):
    stages = [{"kind": "progressive", "name": "pkd", "students": students, "boost": 1.0,
               "stop_margin": stop_margin, "train": {"epochs": 1, "lr": 1e-2},
               "goals": list(goals)}]  # fmt: skip
    if export:  # the teacher and pkd-k1 are exported like any model; left out here for time
        stages.append({"kind": "export", "models": ["pkd-m1", "pkd-m2", "pkd-k2"]})
    return digits_recipe(stages=stages, teacher={
        "model": {"arch": "cnn-large", "width": 8, "hidden": 32},
        "train": {"epochs": 1, "lr": 3e-3}})  # fmt: skip


@pytest.mark.parametrize("student, where, message", [
    ({"arch": "mamba", "d_model": 0}, "stages[0].students[1].d_model", "greater than or equal"),
    ({"arch": "mamba", "sequence": "patches", "patch": 3}, "stages[0].students[1]",
     "3×3 patches do not tile 8×8 images"),
    ({"arch": "mamba"}, "stages[0].goals[0]", "give one of reach and max_drop"),
])  # fmt: skip
def test_a_student_that_cannot_fit_is_a_recipe_error(tmp_path, student, where, message):
    goals = [{"max_flops": 0.5, "reach": 90, "max_drop": 1}] if "goals" in where else []
    recipe = write_recipe(tmp_path / "r.yaml", _recipe([{"arch": "mamba"}, student], goals=goals))
    done = cli("validate", recipe)
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "r.yaml:" in line and where in line and message in line
    assert "Traceback" not in done.stderr


def _outputs(run_dir, stage: str) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return next(s["outputs"] for s in manifest["stages"] if s["name"] == stage)


def test_two_students_make_members_prefix_ensembles_and_a_combinable_export(tmp_path):
    from compress.runtime import OrtModel
    from compress.runtime.ensemble import AnytimeEnsemble

    students = [{"arch": "mamba", "d_model": 4, "d_state": 4},
                {"arch": "mamba", "d_model": 8, "chunk": 3}]  # fmt: skip
    goals = [{"max_flops": 1.0, "reach": 0}, {"max_flops": 1e-6, "max_drop": 100}]
    recipe = write_recipe(tmp_path / "r.yaml", _recipe(students, goals=goals))
    run = tmp_path / "run"
    done = cli("run", recipe, "--smoke", "--out", run)
    assert done.returncode == 0, done.stderr[-2000:]
    models = {m["name"]: m for m in _outputs(run, "02-progressive")["models"]}
    assert list(models) == ["pkd-m1", "pkd-k1", "pkd-m2", "pkd-k2"]
    assert [models[n]["role"] for n in models] == ["member", "ensemble"] * 2
    assert models["pkd-m2"]["parent"] == "teacher" and models["pkd-k2"]["parent"] == "pkd-m2"
    assert models["pkd-k2"]["flops"] == models["pkd-m1"]["flops"] + models["pkd-m2"]["flops"]
    assert models["pkd-k1"]["flops"] == models["pkd-m1"]["flops"]
    curve = json.loads((run / "02-progressive" / "anytime.json").read_text())["points"]
    assert [p["cumulative_flops"] for p in curve] == [models["pkd-k1"]["flops"],
                                                      models["pkd-k2"]["flops"]]  # fmt: skip
    (section,) = _outputs(run, "02-progressive")["sections"]
    curve_table, goal_table = section["tables"]
    assert [row[:4] for row in curve_table["rows"]] == [
        ["pkd-k1", 1, models["pkd-k1"]["flops"], pytest.approx(100 * curve[0]["flops_ratio"],
                                                                abs=1e-3)],
        ["pkd-k2", 2, models["pkd-k2"]["flops"], pytest.approx(100 * curve[1]["flops_ratio"],
                                                                abs=1e-3)],
        ["teacher", None, curve_table["rows"][-1][2], 100.0]]  # fmt: skip
    assert curve_table["rows"][1][4] == pytest.approx(100 * models["pkd-k2"]["metrics_pytorch"][
        "accuracy"])  # fmt: skip
    assert [row[1] for row in goal_table["rows"]] == ["pkd-k1", None]
    assert "no prefix within the FLOPs budget" in goal_table["rows"][1][2]
    (figure,) = section["figures"]
    assert (run / figure["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    exports = {e["model"]: e for e in _outputs(run, "03-export")["exports"]}
    assert set(exports) == {"pkd-m1", "pkd-m2", "pkd-k2"}
    x = np.random.default_rng(0).random((7, 1, 8, 8), dtype=np.float32)
    members = [OrtModel(run / exports[f"pkd-m{t}"]["path"]).scores({"input": x}) for t in (1, 2)]
    combiner = AnytimeEnsemble.from_export_dir(run / "03-export", "pkd")
    assert len(combiner) == 2
    np.testing.assert_allclose(combiner.scores({"input": x}, k=1), members[0], rtol=0, atol=0)
    np.testing.assert_allclose(combiner.scores({"input": x}, k=2), members[0] + members[1],
                               rtol=0, atol=1e-6)  # fmt: skip
    one_graph = OrtModel(run / exports["pkd-k2"]["path"]).scores({"input": x})
    np.testing.assert_allclose(combiner.scores({"input": x}), one_graph, rtol=0, atol=1e-5)
    with pytest.raises(Exception, match="k must be between 1 and 2"):
        combiner.scores({"input": x}, k=3)


def test_training_stops_once_the_ensemble_is_within_the_margin(tmp_path):
    students = [{"arch": "mamba", "d_model": 4}] * 3
    recipe = write_recipe(tmp_path / "r.yaml", _recipe(students, stop_margin=100, export=False))
    done = cli("run", recipe, "--smoke", "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr[-2000:]
    names = [m["name"] for m in _outputs(tmp_path / "run", "02-progressive")["models"]]
    assert names == ["pkd-m1", "pkd-k1"]
    assert "stopping after 1 of 3 students" in done.stdout + done.stderr
