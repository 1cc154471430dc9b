"""The distill stage: train a student against the teacher, and the same student without it.

The baseline starts from the same initial weights and sees the same batches in the same order,
so the difference between the two students is what the teacher taught, nothing else. With
``seeds:`` in the recipe both are trained once per seed, so the gain is measured with a spread.

The teacher's scores on the training split are computed once into a memory-mapped file when they
are all the losses need. When a loss reads intermediate features, or the batches are augmented
(so no two epochs see the same inputs), the teacher, loaded once in eval mode, runs on every batch.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, TypeAdapter, model_validator
from torch import Tensor, nn

from compress.atomic import atomic_path
from compress.distill.features import (
    FeatureCapture,
    build_adapters,
    find_module,
    no_output,
    probe_shapes,
)
from compress.distill.losses import active_terms, losses_model, needs_features, needs_teacher
from compress.errors import ModelError
from compress.models import build_model, model_spec
from compress.models.checkpoint import load_weights, read_architecture
from compress.models.zoo import scores as model_scores
from compress.pipeline.artifacts import Artifacts, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.recipe import TrainConfig
from compress.stages.models import (
    Lineage,
    check_buildable,
    epochs_for,
    finish_model,
    load_model,
    seeded,
    spec_files,
    validation,
)
from compress.tasks import TaskInfo
from compress.train import Criterion, Objective, predict, train

TEACHER_LOGITS = "teacher-logits.npy"


class DistillConfig(StageConfig):
    """Knowledge distillation into a student architecture, with weighted losses."""

    kind: Literal["distill"] = Field(description="Stage kind.")
    name: str = Field("student", pattern=r"^[\w.-]+$", max_length=100,
                      description="Name of the student model.")  # fmt: skip
    student: model_spec() | None = Field(
        None, description="Student architecture: {arch: NAME, ...} (or student_from)."
    )
    student_from: str | None = Field(
        None, description="Instead of student: the architecture of an earlier model of the run "
        "by name (an n2n child); student_init says how it starts.",
    )  # fmt: skip
    student_init: Literal["random", "weights"] = Field(
        "random", description="With student_from: 'random' initialises that architecture "
        "afresh; 'weights' starts from that model's trained weights (fine-tuning it).",
    )  # fmt: skip
    losses: losses_model() = Field(
        description="Weighted loss terms: kd, ce, mse on logits; hint, attention on module outputs."
    )
    train: TrainConfig = Field(description="How to train the student.")
    baseline: Literal["scratch", "none"] = Field(
        "scratch", description="'scratch': also train the student on labels alone, for comparison."
    )

    @model_validator(mode="after")
    def _one_student(self) -> DistillConfig:
        if (self.student is None) == (self.student_from is None):
            raise ValueError("give either student (an architecture) or student_from (a model "
                             "of the run), not both or neither")  # fmt: skip
        if self.student_init == "weights" and self.student_from is None:
            raise ValueError("student_init: weights needs student_from (whose weights to start "
                             "from)")  # fmt: skip
        return self


@register_stage
class DistillStage(Stage):
    config_model = DistillConfig
    requires = ("models",)
    provides = ("models",)

    def plan(self, ctx: PlanContext) -> None:
        if self.config.student_from is not None:  # its architecture is known once it is made
            self._check_student_from(ctx)
        else:
            student = check_buildable(ctx, self.config.student, "student")
            self._check_features(ctx, student)
        ctx.add_model(self.config.name, ("name",))
        if self.config.baseline == "scratch":
            ctx.add_model(f"{self.config.name}-scratch", ("name",))

    def _check_student_from(self, ctx: PlanContext) -> None:
        if self.config.student_from not in ctx.models:
            raise ctx.error(("student_from",), f"no earlier stage makes a model named "
                            f"{self.config.student_from!r}")  # fmt: skip
        if any(t[1].needs_features for t in active_terms(self.config.losses)):
            raise ctx.error(("losses",), "feature losses need a student architecture known "
                            "before the run: use student, not student_from")  # fmt: skip

    def student_source(self, ctx: StageContext) -> ModelArtifact:
        """The earlier model named by ``student_from``."""
        return next(m for m in ctx.artifacts.models if m.name == self.config.student_from)

    def student_spec(self, ctx: StageContext) -> Any:
        """The student's architecture: the recipe's, or that of the model ``student_from``."""
        if self.config.student_from is None:
            return self.config.student
        arch = read_architecture(ctx.path(self.student_source(ctx).checkpoint)) or {}
        return TypeAdapter(model_spec()).validate_python(arch.get("model"))

    def _check_features(self, ctx: PlanContext, student: nn.Module) -> None:
        """Every feature loss's module paths exist in both networks and their outputs fit its
        adapter: one pass of the task's dummy inputs through each network."""
        terms = [t for t in active_terms(self.config.losses) if t[1].needs_features]
        if not terms:
            return
        nets = {"student": student, "teacher": build_model(ctx.recipe.teacher.model, ctx.info)}
        for name, _, cfg in terms:
            for side, net in nets.items():
                try:
                    find_module(net, getattr(cfg, side), side)
                except ModelError as e:
                    raise ctx.error(("losses", name, side), str(e)) from None
        shapes = {side: probe_shapes(net, ctx.info, [getattr(c, side) for _, _, c in terms], side)
                  for side, net in nets.items()}  # fmt: skip
        for term in terms:
            name, _, cfg = term
            for side in nets:
                if (path := getattr(cfg, side)) not in shapes[side]:
                    raise ctx.error(("losses", name, side), str(no_output(path, side)))
            try:
                build_adapters([term], shapes["student"], shapes["teacher"], seed=0)
            except ModelError as e:
                raise ctx.error(("losses", name), str(e)) from None

    def input_files(self) -> list[Path]:
        return spec_files(self.config.student)

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: DistillConfig = self.config
        teacher = ctx.artifacts.teacher()
        signal = TeacherSignal.load(ctx, teacher, cfg.losses)

        def scratch(student: Tensor, labels: Tensor, _idx: Tensor) -> Tensor:
            return F.cross_entropy(student, labels)

        seeds = ctx.recipe.seeds
        students = []
        distilled = signal.criterion
        with signal.hooks():
            for seed in ctx.recipe.student_seeds():
                suffix = f"@s{seed}" if seeds else ""
                student = Lineage(cfg.name + suffix, cfg.name, "student", "distill", teacher.name,
                                  seed if seeds else None)  # fmt: skip
                students.append(self._train(ctx, student, seed, distilled))
                if cfg.baseline == "scratch":
                    base = Lineage(f"{cfg.name}-scratch{suffix}", f"{cfg.name}-scratch",
                                   "baseline", "trained", None,
                                   seed if seeds else None)  # fmt: skip
                    students.append(self._train(ctx, base, seed, lambda _m, _s: scratch))
        return Artifacts(models=students)

    def _train(self, ctx: StageContext, who: Lineage, seed: int,
               objective_for: Callable[[nn.Module, int], Objective | Criterion],
               ) -> ModelArtifact:  # fmt: skip
        """Train one student; ``objective_for(student, seed)`` makes its objective (a criterion
        with hooks on this student and adapters for it, or a plain function)."""
        cfg: DistillConfig = self.config
        splits = ctx.data()
        seeded(seed)  # same seed → the same initial student for the distilled and scratch runs
        spec = self.student_spec(ctx)
        model = build_model(spec, splits.info)
        if cfg.student_init == "weights":
            load_weights(model, ctx.path(self.student_source(ctx).checkpoint)).train()
        objective = objective_for(model, seed)
        hooks: AbstractContextManager[Any] = (objective.student_features if isinstance(
            objective, DistillCriterion) else nullcontext())  # fmt: skip
        with hooks:
            val = train(
                model, splits, objective, epochs_for(ctx, cfg.train),
                batch_size=ctx.recipe.data.batch_size, seed=seed, workers=ctx.recipe.data.workers,
                state_dir=ctx.stage_dir / who.name, log=ctx.log, label=who.name,
                validate=validation(ctx), augment=ctx.recipe.data.augment,
            )  # fmt: skip
        return finish_model(ctx, model, spec, who, val)


@dataclass
class TeacherSignal:
    """What the losses read of a teacher: its scores precomputed once into a memory-mapped file
    when they are all the losses need, else the teacher itself run on every batch."""

    losses: Any
    logits: np.ndarray | None
    on_batches: TeacherOnBatches | None
    info: TaskInfo

    @classmethod
    def load(cls, ctx: StageContext, teacher: ModelArtifact, losses: Any) -> TeacherSignal:
        wanted = needs_teacher(losses)
        augmented = ctx.recipe.data.augment is not None
        per_batch = needs_features(losses) or (wanted and augmented)
        logits = teacher_logits(ctx, teacher) if wanted and not per_batch else None
        on_batches = TeacherOnBatches.load(ctx, teacher, losses) if per_batch else None
        return cls(losses, logits, on_batches, ctx.data().info)

    def criterion(self, student: nn.Module, seed: int) -> DistillCriterion:
        return DistillCriterion(self.losses, student, self.on_batches, self.logits, self.info,
                                seed)  # fmt: skip

    def hooks(self) -> AbstractContextManager[Any]:
        """Keep the teacher's hooked modules while students train against it."""
        return self.on_batches.features if self.on_batches else nullcontext()


@dataclass
class TeacherOnBatches:
    """The teacher, loaded once, in eval mode without gradients, run on each training batch
    (augmented as the student sees it), with hooks keeping the modules the losses read."""

    model: nn.Module
    info: TaskInfo
    features: FeatureCapture

    @classmethod
    def load(cls, ctx: StageContext, teacher: ModelArtifact, losses: Any) -> TeacherOnBatches:
        model = load_model(ctx, teacher).eval().requires_grad_(False)
        paths = [cfg.teacher for _, loss, cfg in active_terms(losses) if loss.needs_features]
        ctx.log.info("  teacher runs on every batch (feature losses or augmented data); "
                     "no precomputed scores")  # fmt: skip
        return cls(model, ctx.data().info, FeatureCapture(model, paths, "teacher"))

    def __call__(self, inputs: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """The teacher's scores (b, k) on the batch and its features by path."""
        with torch.no_grad():
            out = model_scores(self.model, self.info, inputs)
        return out, dict(self.features.outputs)


class DistillCriterion(Criterion):
    """sum_i w_i · loss_i over the recipe's terms. Logit terms read the teacher's scores on this
    batch, or precomputed by row; feature terms read both networks' hooked modules, the
    student's through the term's adapter (the criterion's only parameters)."""

    def __init__(self, losses: Any, student: nn.Module, teacher: TeacherOnBatches | None,
                 logits: np.ndarray | None, info: TaskInfo, seed: int) -> None:  # fmt: skip
        super().__init__()
        self.terms = active_terms(losses)
        feature_terms = [t for t in self.terms if t[1].needs_features]
        paths = [cfg.student for _, _, cfg in feature_terms]
        self.student_features = FeatureCapture(student, paths, "student")
        self.teacher, self.logits = teacher, logits  # a plain object: not a submodule
        shapes: list[dict[str, tuple[int, ...]]] = [{}, {}]
        if feature_terms and teacher is not None:  # one dummy pass through each network
            shapes = [probe_shapes(student, info, paths, "student"),
                      probe_shapes(teacher.model, info, [c.teacher for *_, c in feature_terms],
                                   "teacher")]  # fmt: skip
        self.adapters = build_adapters(feature_terms, *shapes, seed=seed)

    def forward(self, scores: Tensor, labels: Tensor, rows: Tensor,
                inputs: dict[str, Tensor]) -> Tensor:  # fmt: skip
        if self.teacher is not None:
            teacher, features = self.teacher(inputs)
        else:
            teacher = None if self.logits is None else \
                torch.from_numpy(self.logits[rows.numpy()]).to(scores.device)  # a rank's GPU
            features = {}
        total = scores.new_zeros(())
        for name, loss, cfg in self.terms:
            if loss.needs_features:
                s = self.adapters[name](self.student_features.get(cfg.student))
                t = features[cfg.teacher]
            else:
                s, t = scores, teacher
            total = total + cfg.weight * loss.fn(cfg, s, t, labels)
        return total


def teacher_logits(ctx: StageContext, teacher: ModelArtifact) -> np.ndarray:
    """The teacher's scores on the training split, computed once into a memory-mapped file in
    the stage folder (not held in RAM). Without augmentation they are fixed: computing them
    once costs a third of one teacher epoch instead of one teacher pass per student step."""
    path = ctx.stage_dir / (TEACHER_LOGITS if teacher.role == "teacher" else
                            f"{teacher.name}-logits.npy")  # fmt: skip
    if not path.is_file():
        splits = ctx.data()
        model = load_model(ctx, teacher)
        with atomic_path(path) as tmp:
            shape = (len(splits.train), splits.info.num_classes)  # (n, k)
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            step = ctx.recipe.data.eval_batch_size
            for start in range(0, len(splits.train), step):
                rows = np.arange(start, min(start + step, len(splits.train)))
                out[rows] = predict(model, splits.task, splits.info, splits.train.take(rows), step)
            out.flush()
            del out
        ctx.log.info(f"  teacher scores computed on {len(splits.train)} training examples")
    return np.load(path, mmap_mode="r")
