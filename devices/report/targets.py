"""The per-target part of the report: for each target, every artifact it ran with its latency,
its metrics *as that target computed them*, operator placement and top operators; the
accuracy-against-latency front; the fastest artifact meeting the recipe's accuracy floor (a
goal); and how each measurement moved since the previous report of the same run directory.

Records are always picked by (model, target, batch size) explicitly, never "the first one".
"""

from __future__ import annotations

import statistics
from typing import Any

EAGER = "cpu-torch-eager"


def measured(latency: list[dict]) -> list[dict]:
    return [r for r in latency if isinstance(r, dict) and not r.get("estimated")]


def target_of(r: dict) -> str:
    """Records from before targets were named ran on the only two there were."""
    return str(r.get("target") or (EAGER if r.get("format") == "pytorch-eager" else "cpu-ort"))


def find(latency: list[dict], model: str, target: str, batch: int) -> dict | None:
    """The measured record of ``model`` on ``target`` at ``batch`` (None when there is none)."""
    return next((r for r in measured(latency) if r.get("model") == model
                 and target_of(r) == target and r.get("batch_size") == batch), None)  # fmt: skip


def targets_of(latency: list[dict]) -> list[str]:
    return list(dict.fromkeys(target_of(r) for r in measured(latency)))


def primary_target(latency: list[dict], wanted: str | None) -> str | None:
    """The target the headline numbers use: the recipe's choice, else the first one measured
    that is neither eager PyTorch nor an emulator (emulator time is no device's latency)."""
    if wanted:
        return wanted
    real = [r for r in measured(latency) if not r.get("emulated")]
    return next((t for t in targets_of(real) if t != EAGER), None)


def ratio_spread(slow: dict | None, fast: dict | None) -> dict[str, Any] | None:
    """slow / fast per interleaved round: median, min, max and the count; None unless both were
    timed in the same rounds."""
    if not slow or not fast or not slow.get("group") or slow.get("group") != fast.get("group"):
        return None
    pairs = zip(slow.get("round_medians_ms") or [], fast.get("round_medians_ms") or [],
                strict=False)  # fmt: skip
    ratios = [a / b for a, b in pairs if a == a and b == b and b]  # NaN != NaN: empty rounds
    if not ratios:
        return None
    return {"median": statistics.median(ratios), "low": min(ratios), "high": max(ratios),
            "rounds": len(ratios)}  # fmt: skip


def _shown(metric: dict, metrics: dict | None) -> float | None:
    value = (metrics or {}).get(metric["name"])
    return None if value is None else float(value) * metric["scale"]


def _better(metric: dict, a: float, b: float) -> bool:
    return a > b if metric["direction"] == "higher" else a < b


def front(rows: list[dict], metric: dict) -> set[str]:
    """Artifacts on the accuracy-against-latency front: none is both faster and better."""
    points = [(r["model"], r["b1_ms"], r["metric"]) for r in rows
              if r["b1_ms"] is not None and r["metric"] is not None]  # fmt: skip
    return {name for name, ms, v in points
            if not any((ms2 <= ms and not _better(metric, v, v2) and (ms2 < ms or v2 != v))
                       for _, ms2, v2 in points)}  # fmt: skip


def target_rows(latency: list[dict], target: str, metric: dict) -> list[dict]:
    """One row per model run on ``target``, at batch 1 (or its smallest batch)."""
    recs = [r for r in measured(latency) if target_of(r) == target]
    rows = []
    for model in dict.fromkeys(str(r.get("model")) for r in recs):
        mine = sorted((r for r in recs if r.get("model") == model), key=lambda r: r["batch_size"])
        r = find(latency, model, target, 1) or mine[0]
        rows.append({
            "model": model, "format": r.get("format"), "precision": r.get("precision"),
            "batch": r.get("batch_size"), "b1_ms": r.get("median_ms"), "cv": r.get("cv"),
            "samples": r.get("iterations"), "unstable": bool(r.get("unstable")),
            "too_few_samples": bool(r.get("too_few_samples")),
            "emulated": bool(r.get("emulated")), "metric": _shown(metric, r.get("metrics")),
            "metric_reference": _shown(metric, r.get("metrics_reference")),
            "placement": r.get("placement"), "operators": r.get("operators") or [],
            "threads": r.get("threads"), "machine": r.get("machine"), "note": r.get("note"),
        })  # fmt: skip
    on_front = front(rows, metric)
    for row in rows:
        row["on_front"] = row["model"] in on_front
    return rows


def fastest_goal(target: str, rows: list[dict], metric: dict, floor: float) -> dict:
    """The fastest artifact on ``target`` whose metric on that target meets ``floor``."""
    ok = [r for r in rows if r["metric"] is not None and r["b1_ms"] is not None
          and not _better(metric, floor, r["metric"])]  # fmt: skip
    best = min(ok, key=lambda r: r["b1_ms"]) if ok else None
    word = "at least" if metric["direction"] == "higher" else "at most"
    return {
        "name": f"{target}: fastest meeting {metric['name']} floor", "kind": "fastest at floor",
        "group": target, "target": floor, "unit": "ms",
        "description": f"fastest artifact on {target} with {metric['name']} {word} {floor:g} "
        f"as {target} computes it: {best['model'] if best else 'none'}",
        "measured": best["b1_ms"] if best else None, "passed": best is not None,
        "reason": None if best else f"no artifact on {target} meets the floor",
        "model": best["model"] if best else None,
    }  # fmt: skip


def versus_previous(latency: list[dict], previous: dict | None) -> list[dict]:
    """Each (model, target, batch) measured now and in the previous report: how it moved."""
    if not previous:
        return []
    old = previous.get("latency") or []
    out = []
    for r in measured(latency):
        before = find(old, r.get("model"), target_of(r), r.get("batch_size"))
        if before and before.get("median_ms") and r.get("median_ms"):
            change = r["median_ms"] / before["median_ms"] - 1
            out.append({"model": r["model"], "target": target_of(r), "batch": r["batch_size"],
                        "before_ms": before["median_ms"], "now_ms": r["median_ms"],
                        "change": change, "previous_created": previous.get("created")})  # fmt: skip
    return out


def build_targets(latency: list[dict], metric: dict, floors: dict[str, float] | None,
                  previous: dict | None) -> dict[str, Any]:  # fmt: skip
    """report["targets"]: per-target rows, floor goals, and the comparison with the last report."""
    per_target = {t: target_rows(latency, t, metric) for t in targets_of(latency)}
    floor = (floors or {}).get(metric["name"])
    goals = [] if floor is None else [fastest_goal(t, rows, metric, floor)
                                      for t, rows in per_target.items() if t != EAGER]  # fmt: skip
    return {"per_target": per_target, "goals": goals,
            "versus_previous": versus_previous(latency, previous)}  # fmt: skip
