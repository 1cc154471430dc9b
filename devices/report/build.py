"""Build the report (the content of report.json) from a run's artifacts. No torch needed, so
``compress report RUN_DIR`` works on any machine that has the run directory."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {"platform": platform.platform(), "processor": platform.machine(), "cpu_model": cpu,
            "cores": os.cpu_count(), "python": platform.python_version()}  # fmt: skip


def _median(
    latency: list[dict], model: str, fmt_pred: Callable[[str], bool], batch: int
) -> float | None:
    for r in latency:
        if r["model"] == model and fmt_pred(r["format"]) and r["batch_size"] == batch:
            return r["median_ms"]
    return None


def artifact_accuracy(model: dict, exports: list[dict]) -> float:
    """Accuracy on the exported artifact when there is one, else of the PyTorch model."""
    measured = [e["accuracy"] for e in exports if e["model"] == model["name"]]
    return measured[0] if measured else model["accuracy_pytorch"]


def comparisons(artifacts: dict) -> list[dict]:
    teacher = next((m for m in artifacts["models"] if m["role"] == "teacher"), None)
    if teacher is None:
        return []
    latency, exports = artifacts.get("latency", []), artifacts.get("exports", [])
    teacher_accuracy = artifact_accuracy(teacher, exports)
    teacher_eager = _median(latency, teacher["name"], lambda f: f == "pytorch-eager", 1)
    rows = []
    for m in artifacts["models"]:
        if m["role"] == "teacher":
            continue
        model_b1 = _median(latency, m["name"], lambda f: f != "pytorch-eager", 1)
        rows.append({
            "model": m["name"], "role": m["role"], "teacher": teacher["name"],
            "param_ratio": m["params"] / teacher["params"],
            "flops_ratio": m["flops"] / teacher["flops"] if teacher["flops"] else None,
            "accuracy_delta_points": 100 * (artifact_accuracy(m, exports) - teacher_accuracy),
            "latency_b1_teacher_eager_ms": teacher_eager, "latency_b1_model_ms": model_b1,
            "speedup_b1": teacher_eager / model_b1 if teacher_eager and model_b1 else None,
        })  # fmt: skip
    return rows


def goals(rows: list[dict], wanted: dict | None) -> list[dict]:
    """Check the recipe's goals for every student (role 'student') against the comparisons."""
    wanted = wanted or {}
    baseline = {r["model"]: r for r in rows if r["role"] == "baseline"}
    out: list[dict] = []
    for r in (r for r in rows if r["role"] == "student"):
        name = r["model"]

        def add(goal: str, text: str, measured: float | None, target: float,
                ok: Callable[[float, float], bool],
                name: str = name) -> None:  # fmt: skip
            passed = measured is not None and ok(measured, target)
            out.append({"name": f"{name}: {goal}", "description": text, "measured": measured,
                        "target": target, "passed": passed})  # fmt: skip

        if (v := wanted.get("max_param_ratio")) is not None:
            add("params", f"params ≤ {v:g} × teacher's", r["param_ratio"], v, lambda m, t: m <= t)
        if (v := wanted.get("max_accuracy_drop_points")) is not None:
            add("accuracy", f"within {v:g} points of the teacher", -r["accuracy_delta_points"],
                v, lambda m, t: m <= t)  # fmt: skip
        if (v := wanted.get("min_speedup_b1")) is not None:
            add("latency", f"batch-1 artifact latency ≥ {v:g}× below teacher eager PyTorch",
                r["speedup_b1"], v, lambda m, t: m >= t)  # fmt: skip
        if wanted.get("beat_baseline") and (b := baseline.get(f"{name}-scratch")):
            gain = r["accuracy_delta_points"] - b["accuracy_delta_points"]
            add("beats-scratch", "accuracy above the same student trained without the teacher",
                gain, 0.0, lambda m, t: m > t)  # fmt: skip
    return out


def build_report(artifacts: dict, *, recipe: str, smoke: bool, versions: dict,
                 wanted_goals: dict | None = None) -> dict:  # fmt: skip
    rows = comparisons(artifacts)
    models = []
    for m in artifacts.get("models", []):
        exported = [e for e in artifacts.get("exports", []) if e["model"] == m["name"]]
        models.append({**m, "artifacts": exported})
    return {
        "recipe": recipe, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": smoke, "machine": machine(), "versions": versions,
        "dataset": artifacts.get("dataset"), "models": models,
        "latency": artifacts.get("latency", []), "comparisons": rows,
        "goals": goals(rows, wanted_goals), "notes": artifacts.get("notes", []),
    }  # fmt: skip
