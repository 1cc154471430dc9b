"""Build the report (the content of report.json) from a run's artifacts. No torch needed, so
``compress report RUN_DIR`` works on any machine that has the run directory.

Nothing here knows what a task measures: metric names, units, scales and which direction is
better all come from ``artifacts["task"]["metrics"]`` (the first one is the primary metric).
Models trained once per seed are reported per model *group*, with mean ± std over the seeds,
because one seed's number is an anecdote.

Units: ``models[*].metrics`` keep the raw stored values (as the artifacts do); everything in
``groups``, ``comparisons`` and ``goals`` is in displayed units (stored × scale, e.g. %).
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from functools import partial
from typing import Any

from compress.devices.machine import machine

from .quantized import gap_goal, quantization_rows, speedup_goal
from .stats import mean_std, paired_interval
from .targets import EAGER, build_targets, find, primary_target, ratio_spread

# Reports from before tasks existed measured accuracy only, stored as a 0–1 fraction.
DEFAULT_METRIC: dict[str, Any] = {
    "name": "accuracy",
    "unit": "%",
    "direction": "higher",
    "scale": 100.0,
}
LATENCY_BATCHES = (1, 64)
ONE_SEED = "one seed: no interval; use seeds: [0, 1, 2]"


def task_metrics(task: dict | None) -> list[dict[str, Any]]:
    """The task's metric descriptions, complete; accuracy (%) when the task is unknown."""
    out = []
    for m in (task or {}).get("metrics") or []:
        if isinstance(m, dict) and m.get("name"):
            out.append(
                {
                    "name": str(m["name"]),
                    "unit": str(m.get("unit") or ""),
                    "direction": "lower" if m.get("direction") == "lower" else "higher",
                    "scale": float(m.get("scale") or 1.0),
                }
            )
    return out or [dict(DEFAULT_METRIC)]


def display(metric: dict, value: Any) -> float | None:
    """A stored value in the metric's displayed unit (None stays None)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) * metric["scale"] if ok else None


def drop(metric: dict, reference: float, value: float) -> float:
    """How much worse ``value`` is than ``reference`` (both displayed); > 0 means worse, so a
    'lower is better' metric such as perplexity drops when it rises."""
    return reference - value if metric["direction"] == "higher" else value - reference


def _pytorch_metrics(model: dict) -> dict[str, float]:
    if model.get("metrics_pytorch"):
        return dict(model["metrics_pytorch"])
    old = model.get("accuracy_pytorch")  # schema before tasks
    return {} if old is None else {"accuracy": old}


def _export_metrics(export: dict) -> dict[str, float]:
    if export.get("metrics"):
        return dict(export["metrics"])
    old = export.get("accuracy")  # schema before tasks
    return {} if old is None else {"accuracy": old}


def _models(artifacts: dict) -> list[dict]:
    """Each model with its exports attached and the metrics the report uses for it: those of
    its first exported artifact (measured in the runtime that ships), else the PyTorch ones."""
    out = []
    for m in artifacts.get("models") or []:
        exports = [
            {**e, "metrics": _export_metrics(e)}
            for e in artifacts.get("exports") or []
            if e.get("model") == m["name"]
        ]
        art = next((e for e in exports if e["metrics"]), None)
        source = f"{art.get('format')} in {art.get('runtime')}" if art else "pytorch"
        out.append(
            {
                **m,
                "group": m.get("group") or m["name"],
                "seed": m.get("seed"),
                "metrics_pytorch": _pytorch_metrics(m),
                "artifacts": exports,
                "metrics": art["metrics"] if art else _pytorch_metrics(m),
                "metrics_source": source,
            }
        )
    return out


def _median_ms(latency: list[dict], model: str, target: str | None, batch: int) -> float | None:
    """The measured (never estimated) median of ``model`` on ``target`` at ``batch``."""
    r = find(latency, model, target, batch) if target else None
    return float(r["median_ms"]) if r and isinstance(r.get("median_ms"), int | float) else None


def _group_ms(latency: list[dict], members: list[dict], target: str | None,
              batch: int) -> float | None:  # fmt: skip
    """Median over the group's seeds of each seed's median (with 3+ seeds one slow seed barely
    moves it, unlike a mean)."""
    found = [_median_ms(latency, m["name"], target, batch) for m in members]
    found = [v for v in found if v is not None]
    return statistics.median(found) if found else None


def _metric_summary(metric: dict, members: list[dict]) -> dict[str, Any]:
    """Per-seed values (aligned with the group's ``seeds``; None where a seed lacks the metric)
    and their mean ± std, in displayed units."""
    values = [display(metric, m["metrics"].get(metric["name"])) for m in members]
    mean, std = mean_std([v for v in values if v is not None])
    return {"values": values, "mean": mean, "std": std, "n": sum(v is not None for v in values)}


def groups(models: list[dict], latency: list[dict], metrics: list[dict],
           target: str | None = None) -> list[dict]:  # fmt: skip
    """One row per model group (the seeds of one recipe model), in order of first appearance;
    latency on ``target`` (the report's primary target)."""
    rows = []
    for name in dict.fromkeys(m["group"] for m in models):
        members = [m for m in models if m["group"] == name]
        first = members[0]
        row = {
            "group": name,
            "role": first.get("role"),
            "arch": first.get("arch"),
            "params": first.get("params"),
            "flops": first.get("flops"),
            "models": [m["name"] for m in members],
            "seeds": [m["seed"] for m in members],
            "metrics_source": "; ".join(dict.fromkeys(m["metrics_source"] for m in members)),
            "metrics": {mt["name"]: _metric_summary(mt, members) for mt in metrics},
        }
        for b in LATENCY_BATCHES:
            row[f"latency_b{b}_ms"] = _group_ms(latency, members, target, b)
        row["latency_target"] = target
        rows.append(row)
    return rows


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if isinstance(a, int | float) and isinstance(b, int | float) and b else None


def comparisons(
    rows: list[dict], models: list[dict], latency: list[dict], metrics: list[dict],
    target: str | None = None,
) -> list[dict]:
    """Every non-teacher group against the teacher: size, metric deltas, batch-1 speed-up of
    the group on ``target`` against the teacher in eager PyTorch, with its spread over the
    interleaved rounds when both were timed together."""
    teacher = next((g for g in rows if g["role"] == "teacher"), None)
    if teacher is None:
        return []
    members = [m for m in models if m["group"] == teacher["group"]]
    teacher_eager = _group_ms(latency, members, EAGER, 1)
    out = []
    for g in (g for g in rows if g["role"] != "teacher"):
        deltas = {}
        for mt in metrics:
            t, v = teacher["metrics"][mt["name"]]["mean"], g["metrics"][mt["name"]]["mean"]
            both = t is not None and v is not None
            deltas[mt["name"]] = {
                "delta": v - t if both else None,
                "drop": drop(mt, t, v) if both else None,
            }
        out.append(
            {
                "group": g["group"],
                "role": g["role"],
                "teacher": teacher["group"],
                "param_ratio": _ratio(g["params"], teacher["params"]),
                "flops_ratio": _ratio(g["flops"], teacher["flops"]),
                "metrics": deltas,
                "latency_b1_teacher_eager_ms": teacher_eager,
                "latency_b1_model_ms": g["latency_b1_ms"],
                "speedup_b1": _ratio(teacher_eager, g["latency_b1_ms"]),
                "speedup_target": target,
                "speedup_b1_rounds": ratio_spread(
                    find(latency, members[0]["name"], EAGER, 1),
                    find(latency, g["models"][0], target, 1) if target else None,
                ),
            }
        )
    return out


def drop_unit(metric: dict) -> str:
    """Unit of a difference: a difference of percentages is in points."""
    return "points" if metric["unit"] == "%" else metric["unit"]


def _goal(
    group: str, kind: str, text: str, measured: float | None, target: float, **kw: Any
) -> dict:
    """One goal; ``kw`` holds ``passed``, ``unit`` and, for some kinds, ``reason`` and details.
    A goal whose number was never measured fails: an unchecked goal must not read as met."""
    passed = bool(kw.pop("passed")) and measured is not None
    reason = kw.pop("reason", None) or (None if measured is not None else "not measured")
    return {
        "name": f"{group}: {kind}",
        "kind": kind,
        "group": group,
        "description": text,
        "measured": measured,
        "target": target,
        "unit": kw.pop("unit", ""),
        "passed": passed,
        "reason": reason,
        **kw,
    }


def _drop_goal(c: dict, metrics: list[dict], name: str, limit: float) -> dict:
    """Group mean vs teacher, direction-aware; a metric the task lacks fails rather than being
    skipped, since a misspelt goal would otherwise pass silently."""
    metric = next((m for m in metrics if m["name"] == name), None)
    if metric is None:
        why = f"the task has no metric '{name}'"
        return _goal(c["group"], f"{name} drop", why, None, limit, passed=False, reason=why)
    d, unit = c["metrics"][name]["drop"], drop_unit(metric)
    text = (
        f"{name} at most {limit:g} {unit} worse than the teacher ({metric['direction']} is better)"
    )
    ok = d is not None and d <= limit
    return _goal(c["group"], f"{name} drop", text, d, limit, passed=ok, unit=unit, metric=name)


def _seed_values(g: dict, metric: str) -> dict[Any, float]:
    """Seed → value, so student and baseline pair by seed, not by position."""
    values = zip(g["seeds"], g["metrics"][metric]["values"], strict=True)
    return {s: v for s, v in values if v is not None}


def beat_baseline_goal(student: dict, rows: list[dict], primary: dict, confidence: float) -> dict:
    """Student − from-scratch twin, paired by seed, direction-aware (> 0 = student better).
    Passes only when the whole confidence interval lies above zero: a mean gain inside the
    seed noise is not a gain, and one seed has no interval at all."""
    name, base_name = primary["name"], f"{student['group']}-scratch"
    text = (
        f"{name} better than the same network trained from scratch ({base_name}): lower "
        f"bound of the {confidence:.0%} interval of the paired per-seed gain > 0"
    )
    goal = partial(
        _goal,
        student["group"],
        "beats baseline",
        text,
        target=0.0,
        unit=drop_unit(primary),
        metric=name,
        confidence=confidence,
    )
    nothing = {"n": 0, "differences": [], "low": None, "high": None}
    base = next((g for g in rows if g["group"] == base_name), None)
    if base is None:
        return goal(None, passed=False, reason=f"no baseline '{base_name}' in the run", **nothing)
    ours, theirs = _seed_values(student, name), _seed_values(base, name)
    seeds = [s for s in ours if s in theirs]
    if not seeds:
        return goal(None, passed=False, reason=f"no seed shared with '{base_name}'", **nothing)
    a, b = [ours[s] for s in seeds], [theirs[s] for s in seeds]
    if primary["direction"] == "lower":
        a, b = b, a
    iv = paired_interval(a, b, confidence)
    return goal(
        iv["mean"],
        passed=iv["low"] is not None and iv["low"] > 0,
        reason=ONE_SEED if iv["n"] == 1 else None,
        seeds=seeds,
        **{k: iv[k] for k in ("n", "differences", "low", "high", "std")},
    )


def _drop_limits(wanted: dict) -> dict[str, float]:
    """Metric → largest allowed drop; manifests from before tasks name accuracy only."""
    if wanted.get("max_metric_drop"):
        return dict(wanted["max_metric_drop"])
    old = wanted.get("max_accuracy_drop_points")  # goals from before tasks
    return {} if old is None else {"accuracy": old}


def goals(
    rows: list[dict], comps: list[dict], metrics: list[dict], wanted: dict | None
) -> list[dict]:
    """Check the recipe's goals for every student group (role 'student'), on group means."""
    wanted = wanted or {}
    by_group = {g["group"]: g for g in rows}
    out: list[dict] = []
    for c in (c for c in comps if c["role"] == "student"):
        g = c["group"]
        if (v := wanted.get("max_param_ratio")) is not None:
            r = c["param_ratio"]
            text = f"params ≤ {v:g} × teacher's"
            out.append(_goal(g, "params", text, r, v, passed=r is not None and r <= v, unit="×"))
        out += [_drop_goal(c, metrics, k, limit) for k, limit in _drop_limits(wanted).items()]
        if (v := wanted.get("min_speedup_b1")) is not None:
            s = c["speedup_b1"]
            text = (f"batch-1 latency on {c.get('speedup_target')} ≥ {v:g}× below the teacher "
                    "in eager PyTorch (cpu-torch-eager)")
            ok = s is not None and s >= v
            out.append(_goal(g, "speed-up b1", text, s, v, passed=ok, unit="×"))
        if wanted.get("beat_baseline"):
            confidence = float(wanted.get("confidence") or 0.95)
            out.append(beat_baseline_goal(by_group[g], rows, metrics[0], confidence))
    return out


def build_report(
    artifacts: dict, *, recipe: str, smoke: bool, versions: dict, wanted_goals: dict | None = None,
    previous: dict | None = None,
) -> dict:
    """report.json: the run's facts (models, latency) plus what the report derives from them
    (groups over seeds, comparisons with the teacher, per-target tables, goals, and the change
    since ``previous``, the last report of the same run directory)."""
    task = artifacts.get("task") or {}
    metrics = task_metrics(task)
    models = _models(artifacts)
    latency = artifacts.get("latency") or []
    wanted = wanted_goals or {}
    target = primary_target(latency, wanted.get("target"))
    rows = groups(models, latency, metrics, target)
    comps = comparisons(rows, models, latency, metrics, target)
    per_target = build_targets(latency, metrics[0], wanted.get("accuracy_floor"), previous)
    report = {
        "recipe": recipe,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "smoke": smoke,
        "machine": machine(),  # where the report was written; each record has where it ran
        "primary_target": target,
        "versions": versions,
        "dataset": artifacts.get("dataset"),
        "task": {**task, "metrics": metrics},
        "models": models,
        "groups": rows,
        "latency": latency,
        "comparisons": comps,
        "targets": per_target,
        "goals": goals(rows, comps, metrics, wanted_goals) + per_target["goals"],
        "notes": artifacts.get("notes") or [],
        "sections": artifacts.get("sections") or [],
    }
    report["quantization"] = quantization_rows(report)
    confidence = float(wanted.get("confidence") or 0.95)
    report["goals"] += [gap_goal(report, g, metrics[0], confidence)
                        for g in wanted.get("gaps") or []]  # fmt: skip
    report["goals"] += [speedup_goal(report, g) for g in wanted.get("speedups") or []]
    report["goals"] += stage_goals(report["sections"])
    return report


def stage_goals(sections: list[dict]) -> list[dict]:
    """The goals stages judged themselves, in the report's goal shape; one never measured
    fails, as the report's own do."""
    return [_stage_goal(g, s.get("stage")) for s in sections for g in s.get("goals") or []]


def _stage_goal(goal: dict, stage: str | None) -> dict:
    group, _, kind = goal["name"].partition(":")  # 'n2n: search speed-up'
    return _goal(group, kind.strip() or "goal", goal["description"], goal.get("measured"),
                 goal["target"], passed=goal.get("passed"), unit=goal.get("unit", ""),
                 reason=goal.get("reason"), stage=stage)  # fmt: skip
