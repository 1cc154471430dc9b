"""Report statistics and goals: the t interval, groups over seeds, direction-aware goals, and
reports from the artifact schema before tasks."""

from __future__ import annotations

import statistics

import pytest

from compress.cli import _summary
from compress.devices.report import render_html, render_markdown
from compress.devices.report.build import ONE_SEED, build_report
from compress.devices.report.stats import mean_std, paired_interval, t_cdf, t_quantile

ACCURACY = {"name": "accuracy", "unit": "%", "direction": "higher", "scale": 100.0}
PERPLEXITY = {"name": "perplexity", "unit": "", "direction": "lower", "scale": 1.0}


def _model(name: str, group: str, role: str, seed: int | None, value: float, metric: str) -> dict:
    return {"name": name, "group": group, "role": role, "seed": seed, "parent": None,
            "transform": "trained", "precision": "fp32", "checkpoint": f"{name}.safetensors",
            "arch": "mlp", "params": 1000 if role == "teacher" else 100,
            "flops": 2000 if role == "teacher" else 200,
            "metrics_pytorch": {metric: value}, "val_metrics": None}  # fmt: skip


def _artifacts(teacher: float, student: list[float], scratch: list[float] | None = None,
               metric: dict = ACCURACY, seeded: bool = True) -> dict:  # fmt: skip
    """A run whose student (and scratch twin) were trained once per value; ``seeded=False``
    is a run without seeds (names without '@s', seed None)."""
    name = metric["name"]
    models = [_model("teacher", "teacher", "teacher", None, teacher, name)]
    for group, role, values in (("student", "student", student),
                                ("student-scratch", "baseline", scratch or [])):  # fmt: skip
        for seed, value in enumerate(values):
            model = f"{group}@s{seed}" if seeded else group
            models.append(_model(model, group, role, seed if seeded else None, value, name))
    return {"task": {"name": "t", "metrics": [metric]}, "models": models, "exports": [],
            "latency": [], "notes": []}  # fmt: skip


def _build(artifacts: dict, **goals) -> dict:
    return build_report(artifacts, recipe="r", smoke=False, versions={}, wanted_goals=goals)


def _goal(report: dict, kind: str) -> dict:
    (goal,) = [g for g in report["goals"] if g["kind"] == kind]
    return goal


@pytest.mark.parametrize(
    ("p", "df", "t"),
    [(0.975, 2, 4.303), (0.975, 4, 2.776), (0.975, 9, 2.262), (0.95, 1, 6.314),
     (0.995, 3, 5.841), (0.95, 30, 1.697), (0.975, 1000, 1.962)],
)  # fmt: skip
def test_t_quantile_matches_tables(p, df, t):
    assert t_quantile(p, df) == pytest.approx(t, abs=1e-3)
    assert t_quantile(1 - p, df) == pytest.approx(-t, abs=1e-3)
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_mean_std_is_the_sample_std_and_none_for_one_value():
    assert mean_std([1.0, 2.0, 4.0]) == (pytest.approx(7 / 3), pytest.approx(1.5275252))
    assert mean_std([3.0]) == (3.0, None)
    assert mean_std([]) == (None, None)


def test_paired_interval():
    iv = paired_interval([1.5, 1.6, 1.7], [1.0, 1.0, 1.0], 0.95)
    assert iv["n"] == 3 and iv["differences"] == pytest.approx([0.5, 0.6, 0.7])
    assert iv["mean"] == pytest.approx(0.6) and iv["std"] == pytest.approx(0.1)
    half = 4.302653 * 0.1 / 3**0.5
    assert iv["low"] == pytest.approx(0.6 - half) and iv["high"] == pytest.approx(0.6 + half)
    wider = paired_interval([1.5, 1.6, 1.7], [1.0, 1.0, 1.0], 0.99)
    assert wider["low"] < iv["low"] and wider["high"] > iv["high"]
    one = paired_interval([2.0], [1.0], 0.95)
    assert one["n"] == 1 and one["mean"] == 1.0 and one["low"] is None and one["high"] is None
    with pytest.raises(ValueError):
        paired_interval([1.0, 2.0], [1.0], 0.95)


@pytest.mark.parametrize(
    ("gains", "passed"),
    [([0.5, 0.6, 0.7], True), ([1.0, -0.9, 0.2], False), ([-0.5, -0.6, -0.7], False)],
)
def test_beat_baseline_passes_only_when_the_lower_bound_is_above_zero(gains, passed):
    scratch = [0.80, 0.82, 0.81]
    student = [s + g / 100 for s, g in zip(scratch, gains, strict=True)]  # gains in points
    goal = _goal(_build(_artifacts(0.9, student, scratch), beat_baseline=True), "beats baseline")
    assert goal["passed"] is passed
    assert goal["n"] == 3 and goal["differences"] == pytest.approx(gains)
    assert goal["measured"] == pytest.approx(sum(gains) / 3)
    assert (goal["low"] > 0) is passed and goal["low"] < goal["measured"] < goal["high"]
    assert goal["confidence"] == 0.95 and goal["unit"] == "points" and goal["reason"] is None


@pytest.mark.parametrize("seeded", [True, False])
def test_beat_baseline_with_one_seed_fails_with_the_reason(seeded):
    report = _build(_artifacts(0.9, [0.89], [0.80], seeded=seeded), beat_baseline=True)
    goal = _goal(report, "beats baseline")
    assert goal["measured"] == pytest.approx(9.0)  # a big gain, but one seed proves nothing
    assert not goal["passed"] and goal["n"] == 1 and goal["low"] is None
    assert goal["reason"] == ONE_SEED == "one seed: no interval; use seeds: [0, 1, 2]"
    assert ONE_SEED in render_markdown(report)
    assert any(ONE_SEED in line for line in _summary(report))


def test_beat_baseline_without_a_baseline_fails():
    goal = _goal(_build(_artifacts(0.9, [0.89, 0.88]), beat_baseline=True), "beats baseline")
    assert not goal["passed"] and "no baseline 'student-scratch'" in goal["reason"]


def test_confidence_comes_from_the_goals():
    artifacts = _artifacts(0.9, [0.808, 0.820, 0.812], [0.80, 0.81, 0.80])  # +0.8, +1.0, +1.2
    at_95 = _goal(_build(artifacts, beat_baseline=True), "beats baseline")
    at_99 = _goal(_build(artifacts, beat_baseline=True, confidence=0.99), "beats baseline")
    assert at_95["passed"] and not at_99["passed"] and at_99["confidence"] == 0.99


def test_lower_is_better_metric_flips_drop_goals():
    # Perplexity: the teacher's 20.0; a student at 20.4 is 0.4 worse, one at 19.0 is better.
    worse = _build(_artifacts(20.0, [20.4, 20.4], metric=PERPLEXITY),
                   max_metric_drop={"perplexity": 0.3})  # fmt: skip
    goal = _goal(worse, "perplexity drop")
    assert goal["measured"] == pytest.approx(0.4) and not goal["passed"]
    assert worse["comparisons"][0]["metrics"]["perplexity"] == {
        "delta": pytest.approx(0.4), "drop": pytest.approx(0.4)}  # fmt: skip
    better = _goal(_build(_artifacts(20.0, [19.0, 19.0], metric=PERPLEXITY),
                          max_metric_drop={"perplexity": 0.3}), "perplexity drop")  # fmt: skip
    assert better["measured"] == pytest.approx(-1.0) and better["passed"]
    # The same numbers as a 'higher is better' metric read the other way round.
    higher = {**PERPLEXITY, "direction": "higher"}
    flipped = _goal(_build(_artifacts(20.0, [19.0, 19.0], metric=higher),
                           max_metric_drop={"perplexity": 0.3}), "perplexity drop")  # fmt: skip
    assert flipped["measured"] == pytest.approx(1.0) and not flipped["passed"]


def test_lower_is_better_metric_flips_beat_baseline():
    artifacts = _artifacts(20.0, [19.0, 19.1, 18.9], [19.5, 19.7, 19.6], metric=PERPLEXITY)
    goal = _goal(_build(artifacts, beat_baseline=True), "beats baseline")
    assert goal["differences"] == pytest.approx([0.5, 0.6, 0.7]) and goal["passed"]


def test_drop_goal_for_an_unknown_metric_fails():
    goal = _goal(_build(_artifacts(0.9, [0.9]), max_metric_drop={"f1": 1.0}), "f1 drop")
    assert not goal["passed"] and goal["reason"] == "the task has no metric 'f1'"


def test_seeds_aggregate_into_one_group_row():
    report = _build(_artifacts(0.95, [0.911, 0.902, 0.925], [0.88, 0.89, 0.87]))
    assert [g["group"] for g in report["groups"]] == ["teacher", "student", "student-scratch"]
    student = report["groups"][1]
    assert student["models"] == ["student@s0", "student@s1", "student@s2"]
    assert student["seeds"] == [0, 1, 2] and student["metrics_source"] == "pytorch"
    stat = student["metrics"]["accuracy"]
    assert stat["values"] == pytest.approx([91.1, 90.2, 92.5]) and stat["n"] == 3
    assert stat["mean"] == pytest.approx(statistics.mean([91.1, 90.2, 92.5]))
    assert stat["std"] == pytest.approx(statistics.stdev([91.1, 90.2, 92.5]))
    assert report["groups"][0]["metrics"]["accuracy"]["std"] is None  # one teacher, no spread
    (comparison, _) = report["comparisons"]
    assert comparison["group"] == "student" and comparison["param_ratio"] == pytest.approx(0.1)
    assert comparison["metrics"]["accuracy"]["delta"] == pytest.approx(stat["mean"] - 95.0)


def test_group_latency_is_the_median_of_the_seeds_medians():
    artifacts = _artifacts(0.9, [0.8, 0.8, 0.8])
    artifacts["latency"] = [
        {"model": "teacher", "format": "pytorch-eager", "batch_size": 1, "median_ms": 2.0},
        *({"model": f"student@s{s}", "format": "onnx", "batch_size": 1, "median_ms": ms}
          for s, ms in enumerate([0.1, 0.5, 0.2])),
        {"model": "student@s0", "format": "onnx", "batch_size": 1, "median_ms": 0.01,
         "estimated": True},
    ]  # fmt: skip
    report = _build(artifacts, min_speedup_b1=10)
    assert report["groups"][1]["latency_b1_ms"] == pytest.approx(0.2)
    assert _goal(report, "speed-up b1")["measured"] == pytest.approx(10.0)
    assert _goal(report, "speed-up b1")["passed"]


OLD_ARTIFACTS = {
    "dataset": {"name": "digits", "train": 10, "val": 2, "test": 5, "classes": 10},
    "models": [
        {"name": "teacher", "role": "teacher", "checkpoint": "t.safetensors", "arch": "cnn-large",
         "params": 1000, "flops": 5000, "accuracy_pytorch": 0.9233, "val_accuracy": 0.92},
        {"name": "student", "role": "student", "checkpoint": "s.safetensors", "arch": "cnn-small",
         "params": 100, "flops": 500, "accuracy_pytorch": 0.9140, "val_accuracy": 0.91},
    ],
    "exports": [{"model": m, "format": "onnx", "path": f"{m}.onnx", "size_bytes": 4000,
                 "runtime": "onnxruntime 1.32.0", "accuracy": acc,
                 "parity": {"passed": True, "max_abs_error": 1e-6}}
                for m, acc in (("teacher", 0.9231), ("student", 0.9141))],
    "latency": [], "notes": [],
}  # fmt: skip


def test_old_style_artifacts_still_render():
    report = _build(OLD_ARTIFACTS, max_param_ratio=0.2, max_accuracy_drop_points=1.5)
    assert report["task"]["metrics"] == [ACCURACY]
    student = report["groups"][1]
    assert student["group"] == "student" and student["seeds"] == [None]
    assert student["metrics"]["accuracy"]["mean"] == pytest.approx(91.41)  # the ONNX number
    assert report["comparisons"][0]["metrics"]["accuracy"]["delta"] == pytest.approx(-0.9)
    assert [g["passed"] for g in report["goals"]] == [True, True]
    md = render_markdown(report)
    assert "accuracy (%) mean ± std" in md and "| 91.41 |" in md and "| 92.33 |" in md
    assert "</html>" in render_html(report)
    assert _summary(report)[0].startswith("student: accuracy 91.41% (onnx in onnxruntime")


def test_summary_lines():
    artifacts = _artifacts(0.95, [0.915, 0.916, 0.917], [0.91, 0.91, 0.91])
    report = _build(artifacts, max_param_ratio=0.05, beat_baseline=True)
    student, goals = _summary(report)
    assert student.startswith("student: accuracy 91.60 ± 0.10% (pytorch, 3 seeds; teacher 95.00%)")
    assert "0.100× its params" in student
    assert "+0.60 points over scratch (95% CI [+0.35, +0.85])" in student
    assert goals == "goals: 1/2 passed; failed: student: params"
