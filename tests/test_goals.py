"""Goal arithmetic and comparisons of build_report, against numbers worked out by hand.

Every expected number below is computed in the comments from the artifacts the test builds,
never by calling the code under test; boundaries are placed exactly on the limit (values with an
exact binary form, so the comparison, not rounding, decides).
"""

from __future__ import annotations

import math

import pytest

from compress.devices.report.build import ONE_SEED, build_report

ACCURACY = {"name": "accuracy", "unit": "%", "direction": "higher", "scale": 100.0}
PERPLEXITY = {"name": "perplexity", "unit": "", "direction": "lower", "scale": 1.0}
T_975_DF2 = 4.302653  # Student's t, 97.5th percentile, 2 degrees of freedom (from a table)


def _model(name, group, role, seed, params, flops):
    return {"name": name, "group": group, "role": role, "seed": seed,
            "parent": None if role == "teacher" else "teacher", "transform": "trained",
            "precision": "fp32", "checkpoint": f"{name}.safetensors", "arch": "cnn",
            "params": params, "flops": flops, "metrics_pytorch": {},
            "val_metrics": None}  # fmt: skip


def _run(teacher: dict, student: dict[int, dict], scratch: dict[int, dict] | None = None,
         metrics: tuple[dict, ...] = (ACCURACY, PERPLEXITY), latency: list | None = None,
         student_params: int | None = 250) -> dict:  # fmt: skip
    """Artifacts of a run: teacher (1000 params, 8000 FLOPs), a student group (250 params, 1000
    FLOPs) with one model per seed and, optionally, its from-scratch twin. Metric values
    (stored units) are given per seed and land on the exported artifact, which the report reads
    first; the PyTorch numbers are deliberately different, so reading them would show."""
    models = [_model("teacher", "teacher", "teacher", None, 1000, 8000)]
    exports = [{"model": "teacher", "format": "onnx", "runtime": "onnxruntime", "metrics": teacher}]
    for group, role, per_seed in (("student", "student", student),
                                  ("student-scratch", "baseline", scratch or {})):  # fmt: skip
        for seed, values in per_seed.items():
            name = f"{group}@s{seed}"
            model = _model(name, group, role, seed, student_params, 1000)
            model["metrics_pytorch"] = {k: 0.0 for k in values}
            models.append(model)
            exports.append({"model": name, "format": "onnx", "runtime": "onnxruntime",
                            "metrics": values})  # fmt: skip
    return {"task": {"name": "t", "metrics": list(metrics)}, "models": models,
            "exports": exports, "latency": latency or [], "notes": []}  # fmt: skip


def _report(artifacts: dict, **wanted) -> dict:
    return build_report(artifacts, recipe="r", smoke=False, versions={}, wanted_goals=wanted)


def _goal(report: dict, name: str) -> dict:
    found = [g for g in report["goals"] if g["name"] == name]
    assert len(found) == 1, [g["name"] for g in report["goals"]]
    return found[0]


def _lat(model, fmt, bs, median, **extra):
    return {"model": model, "format": fmt, "batch_size": bs, "median_ms": median, **extra}


# Teacher accuracy 75 %, perplexity 20; every student seed 68.75 %, perplexities 21 / 21.5 / 22.
TEACHER = {"accuracy": 0.75, "perplexity": 20.0}
STUDENT = {0: {"accuracy": 0.6875, "perplexity": 21.0}, 1: {"accuracy": 0.6875, "perplexity": 21.5},
           2: {"accuracy": 0.6875, "perplexity": 22.0}}  # fmt: skip


def test_size_ratios_and_metric_deltas():
    (c,) = _report(_run(TEACHER, STUDENT))["comparisons"]
    assert c["group"] == "student" and c["teacher"] == "teacher"
    assert c["param_ratio"] == 0.25  # 250 / 1000
    assert c["flops_ratio"] == 0.125  # 1000 / 8000
    # accuracy: 68.75 − 75 = −6.25 points, 'higher is better' so a drop of +6.25.
    assert c["metrics"]["accuracy"] == {"delta": -6.25, "drop": 6.25}
    # perplexity: mean (21 + 21.5 + 22) / 3 = 21.5; 21.5 − 20 = +1.5, 'lower is better' so the
    # rise is a drop of +1.5 as well.
    assert c["metrics"]["perplexity"] == {"delta": 1.5, "drop": 1.5}


def test_a_lower_is_better_metric_that_falls_is_no_drop():
    better = {s: {"accuracy": 0.75, "perplexity": 19.0} for s in range(3)}
    report = _report(_run(TEACHER, better), max_metric_drop={"perplexity": 0.0})
    (c,) = report["comparisons"]
    assert c["metrics"]["perplexity"] == {"delta": -1.0, "drop": -1.0}
    goal = _goal(report, "student: perplexity drop")
    assert goal["measured"] == -1.0 and goal["passed"] and goal["reason"] is None


@pytest.mark.parametrize(("limit", "passed"), [(6.25, True), (6.24, False), (7.0, True)])
def test_max_metric_drop_at_the_boundary_higher_is_better(limit, passed):
    goal = _goal(_report(_run(TEACHER, STUDENT), max_metric_drop={"accuracy": limit}),
                 "student: accuracy drop")  # fmt: skip
    assert goal["measured"] == 6.25 and goal["target"] == limit
    assert goal["passed"] is passed and goal["unit"] == "points" and goal["kind"] == "accuracy drop"


@pytest.mark.parametrize(("limit", "passed"), [(1.5, True), (1.49, False)])
def test_max_metric_drop_at_the_boundary_lower_is_better(limit, passed):
    goal = _goal(_report(_run(TEACHER, STUDENT), max_metric_drop={"perplexity": limit}),
                 "student: perplexity drop")  # fmt: skip
    assert goal["measured"] == 1.5 and goal["passed"] is passed and goal["unit"] == ""


@pytest.mark.parametrize(("limit", "passed"), [(0.25, True), (0.24, False)])
def test_max_param_ratio_at_the_boundary(limit, passed):
    goal = _goal(_report(_run(TEACHER, STUDENT), max_param_ratio=limit), "student: params")
    assert goal["measured"] == 0.25 and goal["passed"] is passed and goal["unit"] == "×"


def _latency() -> list[dict]:
    """Teacher eager b1 2 ms; student artifacts at b1 0.2 / 0.25 / 0.5 ms over seeds: median
    0.25 ms, so a speed-up of exactly 8 (a mean, 0.3167 ms, would give 6.3). Records that must
    not count: the teacher's own ONNX run, the students' eager runs, batch 64, an estimate."""
    return [
        _lat("student@s1", "onnx", 1, 0.001, estimated=True),  # listed first on purpose
        _lat("teacher", "onnx", 1, 1.0),
        _lat("teacher", "pytorch-eager", 64, 50.0),
        _lat("teacher", "pytorch-eager", 1, 2.0),
        *(_lat(f"student@s{s}", "pytorch-eager", 1, 0.9) for s in range(3)),
        _lat("student@s0", "onnx", 1, 0.2),
        _lat("student@s1", "onnx", 1, 0.25),
        _lat("student@s2", "onnx", 1, 0.5),
        _lat("student@s0", "onnx", 64, 3.0),
    ]


def test_speedup_is_teacher_eager_b1_over_the_groups_median_b1():
    (c,) = _report(_run(TEACHER, STUDENT, latency=_latency()))["comparisons"]
    assert c["latency_b1_teacher_eager_ms"] == 2.0
    assert c["latency_b1_model_ms"] == 0.25
    assert c["speedup_b1"] == 8.0


@pytest.mark.parametrize(("limit", "passed"), [(8.0, True), (8.01, False), (2.0, True)])
def test_min_speedup_b1_at_the_boundary(limit, passed):
    report = _report(_run(TEACHER, STUDENT, latency=_latency()), min_speedup_b1=limit)
    goal = _goal(report, "student: speed-up b1")
    assert goal["measured"] == 8.0 and goal["target"] == limit
    assert goal["passed"] is passed and goal["unit"] == "×" and goal["reason"] is None


def test_goals_are_checked_for_students_only():
    artifacts = _run(TEACHER, STUDENT, {s: {"accuracy": 0.5} for s in range(3)})
    report = _report(artifacts, max_param_ratio=1.0, max_metric_drop={"accuracy": 100.0})
    assert [c["group"] for c in report["comparisons"]] == ["student", "student-scratch"]
    assert [g["name"] for g in report["goals"]] == ["student: params", "student: accuracy drop"]


def test_beat_baseline_pairs_by_seed_and_needs_the_lower_bound_above_zero():
    # Student 72 / 70 / 71 % for seeds 0 / 1 / 2; its scratch twin listed in another order:
    # seed 2 70.5, seed 0 71, seed 1 69. Gains by seed: +1, +1, +0.5 points.
    student = {0: {"accuracy": 0.72}, 1: {"accuracy": 0.70}, 2: {"accuracy": 0.71}}
    scratch = {2: {"accuracy": 0.705}, 0: {"accuracy": 0.71}, 1: {"accuracy": 0.69}}
    goal = _goal(_report(_run(TEACHER, student, scratch), beat_baseline=True),
                 "student: beats baseline")  # fmt: skip
    assert goal["seeds"] == [0, 1, 2] and goal["n"] == 3
    assert goal["differences"] == pytest.approx([1.0, 1.0, 0.5])
    # Mean 5/6; deviations 1/6, 1/6, −1/3: sample variance (1/36 + 1/36 + 4/36) / 2 = 1/12.
    mean, std = 5 / 6, math.sqrt(1 / 12)
    half = T_975_DF2 * std / math.sqrt(3)  # ≈ 0.7171
    assert goal["measured"] == pytest.approx(mean) and goal["std"] == pytest.approx(std)
    assert goal["low"] == pytest.approx(mean - half, abs=1e-5)  # ≈ +0.116 > 0
    assert goal["high"] == pytest.approx(mean + half, abs=1e-5)
    assert goal["passed"] and goal["reason"] is None
    assert goal["unit"] == "points" and goal["target"] == 0.0 and goal["confidence"] == 0.95
    # Paired by position instead (72−70.5, 70−71, 71−69 = +1.5, −1, +2) the mean is the same
    # 5/6 but the spread is far larger: the interval would reach below zero and the goal fail.


def test_beat_baseline_fails_when_the_mean_gain_is_inside_the_noise():
    # Gains +2, −0.5, +0.5: mean +2/3 > 0, but std √(19/12) ≈ 1.258 puts the lower bound at
    # 2/3 − 4.303 × 1.258 / √3 ≈ −2.46.
    student = {0: {"accuracy": 0.72}, 1: {"accuracy": 0.695}, 2: {"accuracy": 0.705}}
    scratch = {0: {"accuracy": 0.70}, 1: {"accuracy": 0.70}, 2: {"accuracy": 0.70}}
    goal = _goal(_report(_run(TEACHER, student, scratch), beat_baseline=True),
                 "student: beats baseline")  # fmt: skip
    assert goal["measured"] == pytest.approx(2 / 3)
    std = math.sqrt(19 / 12)
    assert goal["low"] == pytest.approx(2 / 3 - T_975_DF2 * std / math.sqrt(3), abs=1e-5)
    assert not goal["passed"]


def test_beat_baseline_lower_is_better_metric_counts_a_fall_as_a_gain():
    student = {s: {"perplexity": p} for s, p in enumerate([19.0, 19.1, 18.9])}
    scratch = {s: {"perplexity": p} for s, p in enumerate([19.5, 19.7, 19.6])}
    report = _report(_run({"perplexity": 20.0}, student, scratch, metrics=(PERPLEXITY,)),
                     beat_baseline=True)  # fmt: skip
    goal = _goal(report, "student: beats baseline")
    assert goal["differences"] == pytest.approx([0.5, 0.6, 0.7])  # scratch − student
    assert goal["measured"] == pytest.approx(0.6) and goal["passed"] and goal["unit"] == ""


def test_beat_baseline_with_one_seed_fails_with_the_reason():
    student, scratch = {0: {"accuracy": 0.80}}, {0: {"accuracy": 0.70}}
    goal = _goal(_report(_run(TEACHER, student, scratch), beat_baseline=True),
                 "student: beats baseline")  # fmt: skip
    assert goal["measured"] == pytest.approx(10.0)  # a big gain, but no interval from one pair
    assert goal["low"] is None and goal["high"] is None and goal["n"] == 1
    assert not goal["passed"] and goal["reason"] == ONE_SEED


def test_beat_baseline_without_a_shared_seed_fails():
    student, scratch = {0: {"accuracy": 0.80}, 1: {"accuracy": 0.8}}, {5: {"accuracy": 0.70}}
    goal = _goal(_report(_run(TEACHER, student, scratch), beat_baseline=True),
                 "student: beats baseline")  # fmt: skip
    assert goal["measured"] is None and not goal["passed"]
    assert goal["reason"] == "no seed shared with 'student-scratch'"


def test_a_goal_without_its_measurement_fails_as_not_measured():
    # No latency at all, no parameter count for the student, no perplexity on the student.
    student = {s: {"accuracy": 0.6875} for s in range(3)}
    artifacts = _run(TEACHER, student, student_params=None)
    report = _report(artifacts, max_param_ratio=10.0, min_speedup_b1=0.001,
                     max_metric_drop={"accuracy": 100.0, "perplexity": 100.0})  # fmt: skip
    for name in ("student: params", "student: speed-up b1", "student: perplexity drop"):
        goal = _goal(report, name)
        assert goal["measured"] is None, name
        assert goal["passed"] is False and goal["reason"] == "not measured", name
    assert _goal(report, "student: accuracy drop")["passed"]  # measured, and within 100 points


def test_speedup_without_the_teachers_eager_record_is_not_measured():
    # The teacher only has an ONNX record: a speed-up against it would be another comparison.
    latency = [r for r in _latency() if not (r["model"] == "teacher" and r["batch_size"] == 1
                                             and r["format"] == "pytorch-eager")]  # fmt: skip
    report = _report(_run(TEACHER, STUDENT, latency=latency), min_speedup_b1=0.001)
    (c,) = report["comparisons"]
    assert c["latency_b1_teacher_eager_ms"] is None and c["speedup_b1"] is None
    goal = _goal(report, "student: speed-up b1")
    assert not goal["passed"] and goal["reason"] == "not measured"


def _quantized(artifacts: dict, group: str, per_seed: dict, bits: int, size: int) -> dict:
    """Add a quantized group made from the student, one model per seed, with file sizes."""
    for seed, values in per_seed.items():
        name = f"{group}@s{seed}"
        model = _model(name, group, "quantized", seed, 250, 1000)
        model |= {"parent": f"student@s{seed}", "precision": f"int{bits}",
                  "quantization": {"method": "qkd", "bits": bits, "bucket_size": 256,
                                   "codes": None, "tensors": []}}  # fmt: skip
        artifacts["models"].append(model)
        artifacts["exports"].append({"model": name, "format": "onnx-packed", "metrics": values,
                                     "runtime": "onnxruntime", "size_bytes": size})  # fmt: skip
    for export in artifacts["exports"]:
        export.setdefault("size_bytes", 4000)
    return artifacts


def test_gap_goal_pairs_quantized_and_parent_by_seed():
    # qkd4 by seed 68 / 69.5 / 67 % against the student's 68.75 each: gaps −0.75, +0.75, −1.75.
    run = _quantized(_run(TEACHER, STUDENT), "student-qkd4",
                     {2: {"accuracy": 0.67}, 0: {"accuracy": 0.68}, 1: {"accuracy": 0.695}},
                     bits=4, size=1000)  # fmt: skip
    report = _report(run, gaps=[{"model": "student-qkd4", "against": "student", "min": -1.0}])
    goal = _goal(report, "student-qkd4: gap to student")
    assert goal["differences"] == pytest.approx([-1.75, -0.75, 0.75])  # seeds 2, 0, 1
    assert goal["measured"] == pytest.approx(-0.5833333) and goal["passed"]  # mean ≥ −1
    stricter = _report(run, gaps=[{"model": "student-qkd4", "against": "student", "min": -0.5}])
    assert not _goal(stricter, "student-qkd4: gap to student")["passed"]
    row = next(r for r in report["quantization"] if r["group"] == "student-qkd4")
    assert row["compression"] == pytest.approx(4.0)  # the parent's 4000-byte file over 1000
    assert row["formula"] == pytest.approx(256 * 32 / (256 * 4 + 64))
    assert [r["group"] for r in report["quantization"]] == ["student", "student-qkd4"]


def test_speedup_goal_reads_both_sides_at_the_named_batch():
    latency = [_lat("teacher", "onnx", 64, 20.0, target="cpu-ort"),
               _lat("teacher", "onnx", 1, 1.0, target="cpu-ort"),
               _lat("student@s0", "onnx", 64, 8.0, target="cpu-ort")]  # fmt: skip
    goal = {"model": "student", "against": "teacher", "batch": 64, "min": 2.5}
    report = _report(_run(TEACHER, STUDENT, latency=latency), target="cpu-ort", speedups=[goal])
    result = _goal(report, "student: speed-up over teacher")
    assert result["measured"] == pytest.approx(2.5) and result["passed"]
    report = _report(_run(TEACHER, STUDENT, latency=latency), target="cpu-ort",
                     speedups=[{**goal, "batch": 1}])  # fmt: skip
    result = _goal(report, "student: speed-up over teacher")
    assert result["measured"] is None and not result["passed"]  # no student record at batch 1
