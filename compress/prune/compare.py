"""An N2N search timed against an earlier one (``compare_with``): the same search run again in
the same run with only the executor changed, so the report puts both wall times side by side
with their ratio, says whether both found the same best child (they must: a child's training
is seeded by its architecture), and whether the recipe's speed-up goal was met."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from compress.errors import StageFailed
from compress.pipeline.artifacts import StageGoal, StageSection, StageTable
from compress.pipeline.stage import PlanContext
from compress.prune.search_log import LOG_FILE
from compress.prune.section import executor_text

TIMING_ONLY = {"name", "executor", "compare_with", "min_speedup"}  # all else must be equal


def check_comparison(ctx: PlanContext, cfg: Any) -> None:
    """``compare_with`` names an earlier n2n search that this one repeats exactly but for the
    executor; ``min_speedup`` needs it."""
    if cfg.compare_with is None:
        if cfg.min_speedup is not None:
            raise ctx.error(("min_speedup",), "a speed-up goal needs compare_with: the earlier "
                            "n2n search whose wall time this one's is divided by")  # fmt: skip
        return
    _, index = ctx.key_path
    earlier = [s for s in ctx.recipe.stages[:index] if s.kind == "n2n"
               and s.compare_with is None and s.name == cfg.compare_with]  # fmt: skip
    if not earlier:
        raise ctx.error(("compare_with",), f"no earlier n2n stage (without compare_with) is "
                        f"named {cfg.compare_with!r}")  # fmt: skip
    other = earlier[-1]
    where = _first_difference(cfg.model_dump(exclude=TIMING_ONLY),
                              other.model_dump(exclude=TIMING_ONLY))  # fmt: skip
    if where:
        raise ctx.error(where, f"differs from the n2n search {cfg.compare_with!r} this one is "
                        "timed against: only name and executor may differ, or the two wall "
                        "times would time different searches")  # fmt: skip
    if cfg.executor == other.executor:
        raise ctx.error(("executor",), f"the same as {cfg.compare_with!r}'s: the comparison "
                        "would time one executor twice")  # fmt: skip


def _first_difference(a: Any, b: Any, path: tuple = ()) -> tuple:
    """The key path of the first value that differs, () when none does."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            found = _first_difference(a[key], b.get(key), (*path, key))
            if found:
                return found
        return ()
    return () if a == b else path


def compared_log(run_dir: Path, sections: list[StageSection], name: str) -> dict:
    """The search log of the earlier n2n search named ``name`` (its stage wrote a section)."""
    for section in sections:
        path = run_dir / section.stage / LOG_FILE
        if path.is_file():
            log = json.loads(path.read_text())
            if log["run"]["name"] == name and log["run"]["compare_with"] is None:
                return log
    raise StageFailed(f"n2n: the search log of the earlier search {name!r} is gone; run "
                      "the recipe again with --fresh")  # fmt: skip


def comparison_section(this: dict, other: dict, min_speedup: float | None,
                       stage: str) -> StageSection:  # fmt: skip
    """``this`` search's wall time over ``other``'s: how many times as fast ``other`` was."""
    ratio = this["search_seconds"] / other["search_seconds"]
    same_best = this["best"] == other["best"]
    same_search = _rollouts(this) == _rollouts(other)
    one_run = (this["run"]["invocation"] == other["run"]["invocation"]
               and not this["run"]["resumed"] and not other["run"]["resumed"])  # fmt: skip
    if min_speedup is None:
        verdict = None
    elif not one_run:
        verdict = "not judged"
    else:
        verdict = "met" if ratio >= min_speedup else "missed"
    a, b = other["run"]["name"], this["run"]["name"]
    rows = [["speed-up: wall time of " + b + " / of " + a, shown(ratio),
             None if min_speedup is None else f"≥ {min_speedup:.3f}×", verdict],
            *[[check, _yes(ok), "yes", "met" if ok else "missed"] for check, ok in (
                ("same best child", same_best),
                ("same children and rewards in every iteration", same_search),
                ("both timed in this invocation, neither resumed", one_run))]]  # fmt: skip
    return StageSection(
        stage=stage, title=f"N2N search wall time: {a} against {b}",
        text=[_summary(this, other, ratio, verdict, min_speedup),
              "A speed-up measured on a machine busy with other work understates what more "
              "workers give; the load averages beside each search say how busy it was."],
        tables=[StageTable(caption="The same search (seed, data, budgets, reward) with two "
                           "executors, timed one after the other in one run.",
                           columns=["search", "executor", "workers", "search wall time (s)",
                                    "executor start (s)", "child trainings", "best child",
                                    "started (UTC)", "load before", "load after"],
                           rows=[_row(other), _row(this)]),
                StageTable(caption="What the comparison claims, and the recipe's goal.",
                           columns=["check", "value", "goal", "result"], rows=rows)],
        goals=[] if min_speedup is None else [speedup_goal(this, other, ratio, min_speedup,
                                                           verdict, same_best)],
    )  # fmt: skip


def speedup_goal(this: dict, other: dict, ratio: float, min_speedup: float, verdict: str | None,
                 same_best: bool) -> StageGoal:  # fmt: skip
    """The recipe's speed-up goal for the report's Goals table: met only when timed in one
    uninterrupted run and both searches found the same best child (else they were not the same
    search, and their times say nothing about the executors)."""
    a, b = other["run"], this["run"]
    reason = ("not timed in one uninterrupted run" if verdict == "not judged" else
              None if same_best else "the two searches found different best children")
    return StageGoal(
        name=f"{a['name']}: search speed-up",
        description=f"{a['name']} ({_workers(a)}) at least {min_speedup:g}× as fast as "
                    f"{b['name']} ({_workers(b)})",
        measured=math.floor(ratio * 1000) / 1000, target=min_speedup, unit="×",
        passed=verdict == "met" and same_best, reason=reason,
    )  # fmt: skip


def _workers(run: dict) -> str:
    n = run["executor"]["workers"]
    return f"{run['executor']['kind']}, {n} worker{'s' if n > 1 else ''}"


def shown(ratio: float) -> str:
    """Three decimals, rounded down: a ratio shown as meeting a goal of three decimals meets it
    (1.59992 shows as 1.599×, not 1.600×)."""
    return f"{math.floor(ratio * 1000) / 1000:.3f}×"


def _yes(ok: bool) -> str:  # a table cell holds numbers or text, not booleans
    return "yes" if ok else "no"


def _rollouts(log: dict) -> list:
    return [(it["keys"], it["rewards"]) for it in log["iterations"]]


def _row(log: dict) -> list:
    run = log["run"]
    return [run["name"], run["executor"]["kind"], run["executor"]["workers"],
            log["search_seconds"], run["start_seconds"],
            log["child_trainings"], log["best"], run["started_at"], run["load_before"],
            run["load_after"]]  # fmt: skip


def _summary(this: dict, other: dict, ratio: float, verdict: str | None,
             goal: float | None) -> str:  # fmt: skip
    a, b = other["run"], this["run"]
    text = (f"{b['name']} repeats the search {a['name']} with only the executor changed: "
            f"{other['search_seconds']:.1f} s on {executor_text(a)} against "
            f"{this['search_seconds']:.1f} s on {executor_text(b)}, so {a['name']} ran "
            f"{shown(ratio)} as fast.")  # fmt: skip
    if goal is not None:
        text += f" The recipe's goal is at least {goal:.3f}×: {verdict}."
    if verdict == "not judged":
        text += (" The two were not timed in one uninterrupted run (one was kept from, or "
                 "resumed after, an earlier invocation); run the recipe with --fresh.")
    same = "the same best child" if this["best"] == other["best"] else "different best children"
    return text + f" Both found {same} ({other['best']} and {this['best']})."
