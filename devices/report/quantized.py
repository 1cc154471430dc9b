"""Quantized models side by side with the full-precision model they came from: accuracy on the
artifact, file size, compression against the parent's fp32 artifact beside the paper's formula
k·32 / (k·b + 64) for the tensors it quantized, and latency at batch 1 and 64. Plus the two
comparison goals such a run is judged by: a metric gap between two groups (paired by seed) and
a speed-up of one group's artifact over another's at a batch size, from interleaved rounds.
"""

from __future__ import annotations

import statistics
from typing import Any

from .stats import paired_interval
from .targets import find, ratio_spread

FLOAT_BITS = 32


def formula(bits: int, bucket_size: int) -> float:
    """fp32 bits over quantized bits per bucket of k weights (two fp32 scales per bucket)."""
    return bucket_size * FLOAT_BITS / (bucket_size * bits + 2 * FLOAT_BITS)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _group_value(report: dict, group: str, pick: Any) -> float | None:
    """Median over the group's seeds of ``pick(model)``."""
    found = [pick(m) for m in report.get("models") or [] if m.get("group") == group]
    return _median([v for v in found if v is not None])


def _file_bytes(model: dict) -> float | None:
    sizes = [a.get("size_bytes") for a in model.get("artifacts") or [] if a.get("size_bytes")]
    return float(sizes[0]) if sizes else None


def _ms(report: dict, model: dict, batch: int) -> float | None:
    record = find(report.get("latency") or [], model["name"], report.get("primary_target"), batch)
    return float(record["median_ms"]) if record else None


def quantization_rows(report: dict) -> list[dict]:
    """One row per quantized group and per parent group they came from, parents first."""
    models = report.get("models") or []
    by_name = {m["name"]: m for m in models}
    quantized = [g for g in report.get("groups") or [] if _quant_of(models, g["group"])]
    parents = list(dict.fromkeys(by_name[m["parent"]]["group"] for m in models
                                 if m.get("quantization") and m.get("parent") in by_name))
    rows = []
    for g in [g for g in report.get("groups") or [] if g["group"] in parents] + quantized:
        quant = _quant_of(models, g["group"])
        parent = _parent_group(models, by_name, g["group"]) if quant else g["group"]
        size = _group_value(report, g["group"], _file_bytes)
        parent_size = _group_value(report, parent, _file_bytes)
        rows.append({
            "group": g["group"], "method": quant["method"] if quant else "fp32",
            "bits": quant["bits"] if quant else FLOAT_BITS, "metric": g["metrics"],
            "file_bytes": size,
            "compression": parent_size / size if size and parent_size else None,
            # the formula is for bucketed codes; per-channel QCDQ files keep fp32 weights
            "formula": formula(quant["bits"], quant["bucket_size"])
            if quant and quant["method"] != "brevitas" else None,
            "b1_ms": _group_value(report, g["group"], lambda m: _ms(report, m, 1)),
            "b64_ms": _group_value(report, g["group"], lambda m: _ms(report, m, 64)),
        })  # fmt: skip
    return rows


def _quant_of(models: list[dict], group: str) -> dict | None:
    return next((m["quantization"] for m in models
                 if m.get("group") == group and m.get("quantization")), None)  # fmt: skip


def _parent_group(models: list[dict], by_name: dict, group: str) -> str:
    member = next(m for m in models if m.get("group") == group)
    parent = by_name.get(member.get("parent") or "")
    return parent["group"] if parent else group


def gap_goal(report: dict, goal: dict, metric: dict, confidence: float) -> dict:
    """``model`` − ``against`` in ``metric`` (displayed units), paired by seed; passes when the
    mean gap is at least ``min``. The interval shows how far the seeds agree."""
    rows = {g["group"]: g for g in report.get("groups") or []}
    a, b = rows.get(goal["model"]), rows.get(goal["against"])
    name = metric["name"]
    result = {"name": f"{goal['model']}: gap to {goal['against']}", "kind": "gap",
              "group": goal["model"], "target": goal["min"], "metric": name,
              "unit": "points" if metric["unit"] == "%" else metric["unit"],
              "description": f"{name} of {goal['model']} − {goal['against']} ≥ "
                             f"{goal['min']:+g}, paired by seed", "confidence": confidence}
    if a is None or b is None:
        missing = goal["model"] if a is None else goal["against"]
        return {**result, "measured": None, "passed": False, "reason": f"no group {missing}"}
    ours, theirs = _by_seed(a, name), _by_seed(b, name)
    if list(theirs) == [None]:  # a model trained once (the teacher): every seed against it
        pairs = [(v, theirs[None]) for v in ours.values()]
    else:
        pairs = [(ours[s], theirs[s]) for s in ours if s in theirs]
    if not pairs:
        return {**result, "measured": None, "passed": False, "reason": "no seed in common"}
    iv = paired_interval([p[0] for p in pairs], [p[1] for p in pairs], confidence)
    passed = iv["mean"] >= goal["min"]
    return {**result, "measured": iv["mean"], "passed": passed, "reason": None,
            **{k: iv[k] for k in ("n", "differences", "low", "high")}}  # fmt: skip


def _by_seed(group: dict, metric: str) -> dict[Any, float]:
    values = zip(group["seeds"] or [None] * len(group["metrics"][metric]["values"]),
                 group["metrics"][metric]["values"], strict=True)  # fmt: skip
    return {s: v for s, v in values if v is not None}


def speedup_goal(report: dict, goal: dict) -> dict:
    """Median latency of ``against`` over ``model`` at ``batch`` on ``target`` (first seed of
    each), with the spread over interleaved rounds."""
    target, batch = goal.get("target") or report.get("primary_target"), goal["batch"]
    latency = report.get("latency") or []
    first = {g: next((m["name"] for m in report.get("models") or [] if m.get("group") == g), g)
             for g in (goal["model"], goal["against"])}  # fmt: skip
    fast, slow = (find(latency, first[g], target, batch) for g in (goal["model"], goal["against"]))
    ratio = slow["median_ms"] / fast["median_ms"] if fast and slow else None
    spread = ratio_spread(slow, fast)
    detail = (f"per round {spread['low']:.2f}–{spread['high']:.2f}× over {spread['rounds']} "
              "interleaved rounds" if spread else None)  # fmt: skip
    return {"name": f"{goal['model']}: speed-up over {goal['against']}", "kind": "speed-up",
            "group": goal["model"], "measured": ratio, "target": goal["min"], "unit": "×",
            "description": f"{goal['against']} latency / {goal['model']}'s at batch {batch} on "
                           f"{target} ≥ {goal['min']:g}×",
            "passed": ratio is not None and ratio >= goal["min"],
            "reason": detail if ratio is not None else "not measured"}  # fmt: skip

