"""The per-target report: records picked by (model, target, batch) explicitly, the front, the
fastest artifact meeting a floor, the change since the previous report."""

from __future__ import annotations

from compress.devices.report.build import build_report
from compress.devices.report.markdown import render_markdown

ACC = {"name": "accuracy", "unit": "%", "direction": "higher", "scale": 100.0}


def rec(model, target, batch, ms, acc=None, **kw):
    return {"model": model, "target": target, "batch_size": batch, "median_ms": ms,
            "format": "pytorch-eager" if target == "cpu-torch-eager" else "onnx",
            "precision": "fp32", "iterations": 50, "cv": 0.01, "metrics":
            None if acc is None else {"accuracy": acc}, **kw}  # fmt: skip


def model(name, role, params):
    return {"name": name, "group": name, "role": role, "params": params, "flops": 1,
            "checkpoint": f"{name}.safetensors", "arch": "cnn",
            "metrics_pytorch": {"accuracy": 0.9}}  # fmt: skip


def report(latency, goals=None, previous=None):
    artifacts = {"task": {"metrics": [ACC]}, "latency": latency,
                 "models": [model("teacher", "teacher", 100), model("student", "student", 10),
                            model("tiny", "student", 1)]}  # fmt: skip
    return build_report(artifacts, recipe="r", smoke=False, versions={}, wanted_goals=goals,
                        previous=previous)  # fmt: skip


LATENCY = [
    # An emulator record first: "the first non-eager batch-1 record" would wrongly pick it.
    rec("student", "npu-qnn", 1, 40.0, 0.88, emulated=True),
    rec("teacher", "cpu-torch-eager", 1, 10.0, group="b1", round_medians_ms=[10.0, 12.0]),
    rec("student", "cpu-ort", 1, 1.0, 0.90, group="b1", round_medians_ms=[1.0, 1.0]),
    rec("tiny", "cpu-ort", 1, 0.5, 0.80),
    rec("student", "cpu-ort", 64, 9.0, 0.90),
]


def test_comparisons_pick_the_named_target_and_batch():
    r = report(LATENCY)
    assert r["primary_target"] == "cpu-ort"  # not the emulator's, measured first
    student = next(c for c in r["comparisons"] if c["group"] == "student")
    assert student["latency_b1_model_ms"] == 1.0 and student["speedup_b1"] == 10.0
    assert student["speedup_b1_rounds"] == {"median": 11.0, "low": 10.0, "high": 12.0,
                                            "rounds": 2}  # fmt: skip
    on_npu = report(LATENCY, goals={"target": "npu-qnn"})
    student = next(c for c in on_npu["comparisons"] if c["group"] == "student")
    assert student["latency_b1_model_ms"] == 40.0 and student["speedup_b1_rounds"] is None


def test_front_and_fastest_artifact_meeting_the_floor_per_target():
    r = report(LATENCY, goals={"accuracy_floor": {"accuracy": 85.0}})
    rows = {x["model"]: x for x in r["targets"]["per_target"]["cpu-ort"]}
    assert rows["tiny"]["on_front"] and rows["student"]["on_front"]  # faster vs better
    goals = {g["group"]: g for g in r["goals"] if g["kind"] == "fastest at floor"}
    assert goals["cpu-ort"]["model"] == "student" and goals["cpu-ort"]["passed"]  # tiny: 80 %
    assert goals["npu-qnn"]["model"] == "student" and goals["npu-qnn"]["measured"] == 40.0
    strict = report(LATENCY, goals={"accuracy_floor": {"accuracy": 95.0}})
    failed = [g for g in strict["goals"] if g["kind"] == "fastest at floor"]
    assert failed and not any(g["passed"] for g in failed)
    assert "EMULATOR" in render_markdown(r)


def test_change_since_the_previous_report_of_the_run_directory():
    before = report(LATENCY)
    now = [dict(x) for x in LATENCY]
    now[2]["median_ms"] = 0.8
    r = report(now, previous=before)
    moved = {(c["model"], c["target"], c["batch"]): c for c in r["targets"]["versus_previous"]}
    assert abs(moved[("student", "cpu-ort", 1)]["change"] - (-0.2)) < 1e-9
    assert moved[("tiny", "cpu-ort", 1)]["change"] == 0.0
    assert "20.0% faster" in render_markdown(r)
