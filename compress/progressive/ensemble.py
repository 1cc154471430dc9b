"""Train Mamba students one after another into an ensemble whose summed logits approach the
teacher (progressive distillation, B-DISTIL style), and stop once it is close enough.

Every member and every prefix of the ensemble (its first k members, one graph) is a model of the
run, so export, profile and report treat them like any other model: member t is ``NAME-mT``
(role ``member``, parent the teacher), the first k together are ``NAME-kK`` (role ``ensemble``,
parent its newest member ``NAME-mK``, architecture ``mamba-ensemble`` listing the members).
Their FLOPs include the selective scan; an ensemble's are the sum of its members' (cumulative).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from compress.atomic import write_json
from compress.data.source import AugmentConfig
from compress.distill.stage import teacher_logits
from compress.models import build_model
from compress.models.mamba_students import MambaEnsembleSpec, MambaSpec, SumOfLogits
from compress.pipeline.artifacts import ModelArtifact
from compress.pipeline.stage import StageContext
from compress.progressive.boosting import boosting_weights
from compress.progressive.objective import ProgressiveCriterion, ScoresOf, by_row, on_batch
from compress.recipe import TrainConfig
from compress.stages.models import Lineage, epochs_for, finish_model, load_model, seeded, validation
from compress.tasks import TaskInfo
from compress.train import predict, train

ANYTIME_FILE = "anytime{suffix}.json"


@dataclass(frozen=True)
class Settings:
    """What the recipe's progressive section decides."""

    name: str
    students: list[MambaSpec]
    alpha: float  # weight of the hard-label loss
    temperature: float
    boost: float  # β of the boosting weights (0: equal weights)
    margin: float | None  # stop when the ensemble is this close to the teacher (None: never)
    train: TrainConfig
    augment: AugmentConfig | None  # the students' training batches; None: as they are


@dataclass
class SumSoFar:
    """The scores of the members trained so far, summed, on the training and validation splits."""

    train: np.ndarray  # (n_train, k)
    val: np.ndarray  # (n_val, k)


def train_ensemble(ctx: StageContext, settings: Settings, teacher: ModelArtifact,
                   seed: int, repeated: bool) -> tuple[list[ModelArtifact], list[dict[str, Any]]]:
    """Members and prefix ensembles for one seed, in training order (m1, k1, m2, k2, ...), and
    the anytime curve: a point per prefix ensemble (PyTorch test metrics; the export stage
    measures the same models' artifacts), also written to ``anytime.json``."""
    splits = ctx.data()
    suffix = f"@s{seed}" if repeated else ""
    scores_of_teacher = teacher_logits(ctx, teacher)  # (n_train, k), computed once per stage
    k = splits.info.num_classes
    so_far = SumSoFar(np.zeros((len(splits.train), k), np.float32),
                      np.zeros((len(splits.val), k), np.float32))  # fmt: skip
    made: list[ModelArtifact] = []
    members: list[nn.Module] = []
    curve: list[dict[str, Any]] = []
    # augmented batches differ every epoch: the teacher then runs on each one
    teacher_model = load_model(ctx, teacher) if settings.augment else None
    for t, spec in enumerate(settings.students, 1):
        weights = boosting_weights(so_far.train if t > 1 else None, scores_of_teacher,
                                   settings.temperature, settings.boost)  # fmt: skip
        criterion = ProgressiveCriterion(
            *_signals(splits.info, members, so_far, teacher_model, scores_of_teacher),
            weights, settings.alpha, settings.temperature)  # fmt: skip
        model, val = _train_member(ctx, settings, spec, t, seed, so_far, criterion, suffix)
        members.append(model)
        member = finish_model(ctx, model, spec, Lineage(
            f"{settings.name}-m{t}{suffix}", f"{settings.name}-m{t}", "member", "progressive",
            teacher.name, seed if repeated else None), validation(ctx)(model))  # fmt: skip
        ensemble = finish_model(
            ctx, SumOfLogits(members), MambaEnsembleSpec(arch="mamba-ensemble",
                                                         members=settings.students[:t]),
            Lineage(f"{settings.name}-k{t}{suffix}", f"{settings.name}-k{t}", "ensemble",
                    "ensemble", member.name, seed if repeated else None), val)  # fmt: skip
        made += [member, ensemble]
        curve.append(_curve_point(t, member, ensemble, teacher))
        so_far.train += _scores(ctx, model, "train")
        so_far.val += _scores(ctx, model, "val")
        if _close_enough(ctx, settings, teacher, ensemble, t):
            break
    write_json(ctx.stage_dir / ANYTIME_FILE.format(suffix=suffix),
               {"teacher": teacher.name, "teacher_flops": teacher.flops, "points": curve})
    return made, curve


def _signals(info: TaskInfo, members: list[nn.Module], so_far: SumSoFar,
             teacher_model: nn.Module | None,
             teacher_scores: np.ndarray) -> tuple[ScoresOf, ScoresOf]:  # fmt: skip
    """Where student t's loss reads F_{t−1} and the teacher: precomputed by training row, or,
    when the batches are augmented (``teacher_model`` given), the frozen networks run on them."""
    if teacher_model is None:
        return by_row(so_far.train), by_row(teacher_scores)
    earlier = on_batch(SumOfLogits(members), info) if members else by_row(so_far.train)  # zeros
    return earlier, on_batch(teacher_model, info)


def _train_member(ctx: StageContext, settings: Settings, spec: MambaSpec, t: int, seed: int,
                  so_far: SumSoFar, criterion: ProgressiveCriterion,
                  suffix: str) -> tuple[nn.Module, dict[str, float]]:  # fmt: skip
    """Student t on the loss of F_{t−1} + f_t; validated as the ensemble it completes."""
    splits = ctx.data()
    member_seed = seed + 7919 * (t - 1)  # members start from different weights
    seeded(member_seed)
    model = build_model(spec, splits.info)
    if t > 1:  # a new member starts as the zero function: F_t = F_{t−1} before its first step
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)

    def ensemble_val(student: nn.Module) -> dict[str, float]:
        return splits.task.score(so_far.val + _scores(ctx, student, "val"), splits.val.y)

    label = f"{settings.name}-m{t}{suffix}"
    val = train(model, splits, criterion, epochs_for(ctx, settings.train),
                batch_size=ctx.recipe.data.batch_size, seed=member_seed,
                workers=ctx.recipe.data.workers, state_dir=ctx.stage_dir / label, log=ctx.log,
                label=label, validate=ensemble_val, augment=settings.augment)  # fmt: skip
    return model, val


def _scores(ctx: StageContext, model: nn.Module, split: str) -> np.ndarray:
    splits = ctx.data()
    return predict(model, splits.task, splits.info, getattr(splits, split),
                   ctx.recipe.data.eval_batch_size)  # fmt: skip


def _curve_point(t: int, member: ModelArtifact, ensemble: ModelArtifact,
                 teacher: ModelArtifact) -> dict[str, Any]:  # fmt: skip
    return {"members": t, "member": member.name, "ensemble": ensemble.name,
            "member_flops": member.flops, "cumulative_flops": ensemble.flops,
            "flops_ratio": ensemble.flops / teacher.flops if teacher.flops else None,
            "val_metrics": ensemble.val_metrics, "test_metrics_pytorch": ensemble.metrics_pytorch,
            "member_test_metrics_pytorch": member.metrics_pytorch}  # fmt: skip


def _close_enough(ctx: StageContext, settings: Settings, teacher: ModelArtifact,
                  ensemble: ModelArtifact, t: int) -> bool:  # fmt: skip
    """Whether the ensemble's validation metric is within the margin of the teacher's."""
    metric = ctx.data().task.metrics[0]
    mine, theirs = (ensemble.val_metrics or {}).get(metric.name), (teacher.val_metrics or {}).get(
        metric.name)  # fmt: skip
    if settings.margin is None or mine is None or theirs is None:
        return False
    gap = metric.drop(theirs, mine)  # displayed units, > 0: worse than the teacher
    if gap > settings.margin:
        return False
    if t < len(settings.students):
        ctx.log.info(f"  {ensemble.name}: validation {metric.name} {gap:.2f} {metric.unit} from "
                     f"the teacher's, within the margin {settings.margin}; stopping after {t} of "
                     f"{len(settings.students)} students")  # fmt: skip
    return True
