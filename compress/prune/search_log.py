"""The search log: reward per iteration, the best child so far, and parameters against accuracy
of every evaluated child, as JSON and two PNG plots in the stage folder (``search-log.json``,
``search-rewards.png``, ``search-children.png``)."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never open a window
import matplotlib.pyplot as plt  # noqa: E402

from compress.atomic import write_bytes, write_json  # noqa: E402
from compress.prune.search import Teacher  # noqa: E402
from compress.prune.state import SearchState  # noqa: E402

LOG_FILE, REWARD_PLOT, CHILDREN_PLOT = ("search-log.json", "search-rewards.png",
                                        "search-children.png")  # fmt: skip


def search_log(state: SearchState, teacher: Teacher) -> dict:
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
    }  # fmt: skip


def write_search_log(folder: Path, state: SearchState, teacher: Teacher) -> list[Path]:
    log = search_log(state, teacher)
    write_json(folder / LOG_FILE, log)
    write_bytes(folder / REWARD_PLOT, _rewards_png(log))
    write_bytes(folder / CHILDREN_PLOT, _children_png(log))
    return [folder / LOG_FILE, folder / REWARD_PLOT, folder / CHILDREN_PLOT]


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


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
    return _png(fig)


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
    return _png(fig)
