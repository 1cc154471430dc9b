"""The search log: reward per iteration, the best child so far, and parameters against accuracy
of every evaluated child, and how the search ran (executor, wall time, load), as JSON and two
PNG plots in the stage folder (``search-log.json``, ``search-rewards.png``,
``search-children.png``)."""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never open a window
import matplotlib.pyplot as plt  # noqa: E402

from compress.atomic import write_bytes, write_json  # noqa: E402
from compress.devices.report.plots import figure_png  # noqa: E402
from compress.prune.search import Teacher  # noqa: E402
from compress.prune.state import SearchState  # noqa: E402

LOG_FILE, REWARD_PLOT, CHILDREN_PLOT = ("search-log.json", "search-rewards.png",
                                        "search-children.png")  # fmt: skip
INVOCATION = uuid.uuid4().hex  # one per process: tells searches timed in one run from others


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class SearchRun:
    """How a search ran, beside what it found: what the report's cost paragraph and a timing
    comparison between two searches read."""

    name: str  # the stage's ``name``
    executor: dict  # its ExecutorConfig
    start_seconds: float  # starting the executor (a local Ray, worker processes)
    val_examples: int  # the held-out examples children and teacher are measured on
    compare_with: str | None = None  # the earlier search this one repeats for timing
    resumed: bool = False  # it continued a search that an earlier invocation began
    started_at: str = field(default_factory=utc_now)
    finished_at: str = ""
    load_before: float = field(default_factory=lambda: os.getloadavg()[0])  # 1-min average
    load_after: float = 0.0
    invocation: str = INVOCATION

    def finish(self) -> None:
        self.finished_at, self.load_after = utc_now(), os.getloadavg()[0]


def search_log(state: SearchState, teacher: Teacher, run: SearchRun) -> dict:
    """What the report shows: per iteration the rewards, their mean and the best so far; per
    child its plan, size and accuracy; the teacher; the cost."""
    best_so_far, iterations = float("-inf"), []
    for it in state.history:
        best_so_far = max(best_so_far, *it.rewards)
        iterations.append({**it.model_dump(), "mean_reward": sum(it.rewards) / len(it.rewards),
                           "best_reward_so_far": best_so_far})  # fmt: skip
    return {
        "teacher": {"params": teacher.params, "accuracy": teacher.accuracy,
                    "latency_ms": state.teacher_latency_ms,  # latency reward only
                    "layers": [lay.model_dump() for lay in teacher.layers]},
        "iterations": iterations,
        "children": [c.model_dump() for c in state.children.values()],
        "best": state.best, "best_reward": state.best_reward,
        "child_trainings": state.trainings, "search_seconds": state.seconds,
        "cache_hits": sum(len(it.keys) for it in state.history) - state.trainings,
        "run": asdict(run),
    }  # fmt: skip


def write_search_log(folder: Path, state: SearchState, teacher: Teacher,
                     run: SearchRun) -> dict:  # fmt: skip
    """The log, written with its plots; returned for the report's section."""
    log = search_log(state, teacher, run)
    write_bytes(folder / REWARD_PLOT, _rewards_png(log))
    write_bytes(folder / CHILDREN_PLOT, _children_png(log))
    write_json(folder / LOG_FILE, log)
    return log


def _rewards_png(log: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    its = log["iterations"]
    x = list(range(1, len(its) + 1))
    for stage, marker in (("removal", "o"), ("shrink", "s")):
        pts = [(i, it["mean_reward"]) for i, it in zip(x, its, strict=True) if it["stage"] == stage]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker, label=f"mean reward ({stage})")
    ax.plot(x, [it["best_reward_so_far"] for it in its], "-", label="best so far")
    ax.set_xlabel("iteration")
    ax.set_ylabel("reward")
    ax.legend(fontsize=8)
    return figure_png(fig)


def _children_png(log: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for stage, marker in (("removal", "o"), ("shrink", "s")):
        kids = [c for c in log["children"] if c["valid"] and c["stage"] == stage]
        if kids:
            ax.scatter([c["params"] for c in kids], [100 * c["accuracy"] for c in kids],
                       marker=marker, alpha=0.6, label=f"child ({stage})")  # fmt: skip
    teacher = log["teacher"]
    ax.scatter([teacher["params"]], [100 * teacher["accuracy"]], marker="*", s=150, c="k",
               label="teacher")  # fmt: skip
    best = next((c for c in log["children"] if c["key"] == log["best"]), None)
    if best:
        ax.scatter([best["params"]], [100 * best["accuracy"]], marker="*", s=150, c="r",
                   label="best child")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("parameters (counted on the built child)")
    ax.set_ylabel("held-out accuracy after child training, %")
    ax.legend(fontsize=8)
    return figure_png(fig)
