"""The n2n stage's report section, made from its search log: what the search cost, the best
child against the teacher, the reward per iteration, and the log's two plots."""

from __future__ import annotations

from compress.pipeline.artifacts import StageFigure, StageSection, StageTable
from compress.prune.search_log import CHILDREN_PLOT, REWARD_PLOT


def search_section(log: dict, stage: str) -> StageSection:
    """``stage``: the stage folder's name, relative to the run directory (the plots lie there)."""
    return StageSection(
        stage=stage, title=f"N2N search ({log['run']['name']})",
        text=[cost_text(log), best_text(log)],
        tables=[_iterations_table(log), *_plan_table(log)],
        figures=[
            StageFigure(path=f"{stage}/{REWARD_PLOT}", caption="Mean reward of each "
                        "iteration's rollouts and the best reward so far."),
            StageFigure(path=f"{stage}/{CHILDREN_PLOT}", caption="Parameters against "
                        "held-out accuracy of every valid child, the teacher and the best."),
        ],
    )  # fmt: skip


def executor_text(run: dict) -> str:
    ex = run["executor"]
    where = {"local": "in the run's own process", "processes": "in worker processes",
             "ray": f"as Ray tasks on the cluster at {ex.get('address')}" if ex.get("address")
             else "as Ray tasks on a local Ray the run started"}[ex["kind"]]  # fmt: skip
    n = ex["workers"]
    workers = "" if ex["kind"] == "local" else f", {n} worker{'s' if n > 1 else ''}"
    return f"executor {ex['kind']} ({where}{workers})"


def cost_text(log: dict) -> str:
    run, its = log["run"], log["iterations"]
    sampled = sum(len(it["keys"]) for it in its)
    stages = {s: sum(it["stage"] == s for it in its) for s in ("removal", "shrink")}
    resumed = "; it resumed a search an earlier invocation began" if run["resumed"] else ""
    return (f"Search cost: {sampled} children sampled in {len(its)} iterations "
            f"({stages['removal']} removal, {stages['shrink']} shrinkage): "
            f"{log['child_trainings']} child trainings and {log['cache_hits']} cache "
            f"hit{'' if log['cache_hits'] == 1 else 's'} (a "
            f"child sampled again is not trained again). Wall time {log['search_seconds']:.1f} s "
            f"on {executor_text(run)}, plus {run['start_seconds']:.1f} s to start the executor; "
            f"1-minute load average {run['load_before']:.2f} before and "
            f"{run['load_after']:.2f} after{resumed}.")  # fmt: skip


def best_child(log: dict) -> dict | None:
    return next((c for c in log["children"] if c["key"] == log["best"]), None)


def best_text(log: dict) -> str:
    best, teacher = best_child(log), log["teacher"]
    if best is None:
        return "No child the search sampled was valid."
    kept = sum(best["keep"])
    return (f"Best child {best['key']} (reward {log['best_reward']:.3f}): "
            f"{best['params']:,} parameters, {teacher['params'] / best['params']:.1f}× fewer "
            f"than the teacher's {teacher['params']:,}; it keeps {kept} of "
            f"{len(best['keep'])} layers. Accuracy after its short child training "
            f"{100 * best['accuracy']:.2f} % against the teacher's "
            f"{100 * teacher['accuracy']:.2f} % on the same {log['run']['val_examples']:,} "
            "validation examples (its test accuracy is in the models table).")  # fmt: skip


def _iterations_table(log: dict) -> StageTable:
    rows = [[i, it["stage"], it["trainings"], len(it["keys"]) - it["trainings"],
             it["mean_reward"], max(it["rewards"]), it["baseline"], it["best_reward_so_far"],
             it["seconds"]]
            for i, it in enumerate(log["iterations"], 1)]  # fmt: skip
    return StageTable(
        caption="Reward per iteration (the policy's REINFORCE baseline beside it).",
        columns=["iteration", "stage", "trained", "cache hits", "mean reward", "max reward",
                 "baseline", "best so far", "seconds"],
        rows=rows,
    )  # fmt: skip


def _plan_table(log: dict) -> list[StageTable]:
    best = best_child(log)
    if best is None:
        return []
    rows = [[i, lay["kind"], lay["out"] or None, "kept" if keep else "removed",
             factor if keep and lay["out"] else None]
            for i, (lay, keep, factor) in enumerate(
                zip(log["teacher"]["layers"], best["keep"], best["factors"], strict=True), 1)]
    return [StageTable(
        caption="The best child's plan: each teacher layer kept or removed, and the factor "
                "its width is multiplied by (pools and the classifier have none to shrink).",
        columns=["layer", "kind", "teacher width", "kept", "width factor"], rows=rows,
    )]  # fmt: skip
