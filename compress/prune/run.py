"""The n2n stage's work: the teacher's layers, the search's data, the search, and the best
child saved as a model of the run with the search log and its report section beside it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from torch import nn

from compress.errors import ModelError
from compress.models import build_model, count_params
from compress.models.checkpoint import read_architecture
from compress.pipeline.artifacts import Artifacts, ModelArtifact, StageSection
from compress.pipeline.stage import PlanContext, StageContext
from compress.prune.child import child_maker
from compress.prune.compare import check_comparison, compared_log, comparison_section
from compress.prune.evaluate import ChildTrainer, ChildTraining
from compress.prune.executor import EXECUTORS, check_executor
from compress.prune.search import Search, SearchSettings, Teacher
from compress.prune.search_log import SearchRun, write_search_log
from compress.prune.section import search_section
from compress.prune.surgery import Plan
from compress.stages.models import Lineage, finish_model, load_model, validation
from compress.train import predict

APPLIES_TO = ("N2N surgery applies to flat networks of the zoo's blocks: cnn-small, cnn-large, "
              "vgg, resnet-small, n2n-child; other networks shrink through Torch-Pruning's "
              "dependency graph (extra 'prune')")  # fmt: skip


def check_n2n(ctx: PlanContext, cfg: Any) -> None:
    """The model exists earlier in the run, the task is image classification, and surgery
    applies to the teacher's architecture (checked by building it); the executor can run and
    a timing comparison compares like with like."""
    check_executor(ctx, cfg.executor)
    check_comparison(ctx, cfg)
    if cfg.model not in ctx.models:
        known = ", ".join(sorted(ctx.models)) or "none"
        raise ctx.error(("model",), f"no earlier stage makes a model named {cfg.model!r} "
                        f"(models so far: {known})")  # fmt: skip
    if ctx.info.task != "image-classification" or len(ctx.info.input_shape) != 3:
        raise ctx.error(("kind",), f"n2n compresses image classifiers; the task is "
                        f"{ctx.info.task}")  # fmt: skip
    if cfg.model == "teacher":
        try:
            net = build_model(ctx.recipe.teacher.model, ctx.info)
            child_maker(net, ctx.recipe.teacher.model.model_dump(mode="json"), ctx.info,
                        cfg.shrinkage.floor)  # fmt: skip
        except ModelError as e:
            raise ctx.error(("model",), f"{e}; {APPLIES_TO}") from None


def run_n2n(ctx: StageContext, cfg: Any) -> Artifacts:
    source = next(m for m in ctx.artifacts.models if m.name == cfg.model)
    model = load_model(ctx, source).eval()
    info = ctx.data().info
    try:  # the teacher's own spec: a tp-child rebuilds from it
        teacher_spec = read_architecture(ctx.path(source.checkpoint))["model"]
        maker = child_maker(model, teacher_spec, info, cfg.shrinkage.floor)
    except ModelError as e:
        raise ModelError(f"{cfg.model}: {e}; {APPLIES_TO}") from None
    layers = maker.layers
    trainer = _trainer(ctx, cfg, model)
    teacher = Teacher(layers, count_params(model), trainer.accuracy(model), model)
    ctx.log.info(f"  n2n: {cfg.model} has {len(layers)} layers, {teacher.params:,} parameters, "
                 f"{100 * teacher.accuracy:.2f} % on {len(trainer.y_val)} held-out "
                 "examples")  # fmt: skip
    began = time.perf_counter()
    executor = EXECUTORS.get(cfg.executor.kind)(trainer, cfg.executor)
    run = SearchRun(cfg.name, cfg.executor.model_dump(), time.perf_counter() - began,
                    len(trainer.y_val), cfg.compare_with)  # fmt: skip
    try:
        search = Search(ctx.stage_dir / "search", teacher, _settings(ctx, cfg, trainer),
                        executor, ctx.log, _latency(ctx, cfg, trainer), maker)  # fmt: skip
        run.resumed = bool(search.state.history)
        state = search.run()
    finally:
        executor.close()
    run.finish()
    sections = _sections(ctx, cfg, write_search_log(ctx.stage_dir, state, teacher, run))
    if state.best is None:
        raise ModelError(f"n2n: none of the {len(state.children)} children sampled was valid")
    if cfg.compare_with is not None:  # a timing repeat: the child is the earlier search's
        return Artifacts(sections=sections)
    best = state.children[state.best]
    spec = maker.spec(Plan(keep=best.keep, factors=best.factors, kernels=best.kernels))
    child = _load_best(spec, info, ctx.stage_dir / "search" / state.best_file)
    who = Lineage(cfg.name, cfg.name, "child", "n2n", source.name)  # distill it to finish it
    artifact = finish_model(ctx, child, spec, who, validation(ctx)(child))
    return Artifacts(models=[artifact], notes=[_note(artifact, source, state)],
                     sections=sections)  # fmt: skip


def _sections(ctx: StageContext, cfg: Any, log: dict) -> list[StageSection]:
    """The search's own section, and the timing comparison when this search repeats one."""
    stage = ctx.rel(ctx.stage_dir)
    sections = [search_section(log, stage)]
    if cfg.compare_with is not None:
        other = compared_log(ctx.run_dir, ctx.artifacts.sections, cfg.compare_with)
        sections.append(comparison_section(log, other, cfg.min_speedup, stage))
    return sections


def _trainer(ctx: StageContext, cfg: Any, teacher: nn.Module) -> ChildTrainer:
    """The search's fixed data: a seeded subset of the training split with the teacher's
    logits on it, and a subset of the validation split (never the test split)."""
    splits, ct = ctx.data(), cfg.child_train
    rng = np.random.default_rng(ctx.recipe.seed)
    subset = min(ct.subset, len(splits.train), 256 if ctx.smoke else ct.subset)
    rows = np.sort(rng.choice(len(splits.train), subset, replace=False))
    val_rows = np.arange(min(ct.val_subset, len(splits.val)))
    bs = ctx.recipe.data.eval_batch_size
    logits = predict(teacher, splits.task, splits.info, splits.train.take(rows), bs)  # (n, k)
    name = splits.info.signature.input_names[0]
    settings = ChildTraining(epochs=1 if ctx.smoke else ct.epochs, lr=ct.lr,
                             weight_decay=ct.weight_decay, batch_size=ct.batch_size,
                             inherit=ct.inherit, seed=ctx.recipe.seed)  # fmt: skip
    return ChildTrainer(
        splits.info, splits.task.batch(splits.train.x, rows)[name], logits.astype(np.float32),
        splits.task.batch(splits.val.x, val_rows)[name], splits.val.y[val_rows].astype(np.int64),
        {k: v.detach().clone() for k, v in teacher.state_dict().items()}, settings,
    )  # fmt: skip


def _latency(ctx: StageContext, cfg: Any, trainer: ChildTrainer) -> Any:
    """The latency reward's timer on real held-out inputs, when the recipe asks for one."""
    from compress.prune.latency_reward import make_probe

    if cfg.reward.latency is None:
        return None
    name = trainer.info.signature.input_names[0]
    return make_probe(cfg.reward.latency, trainer.info, {name: trainer.x_val}, ctx.smoke)


def _settings(ctx: StageContext, cfg: Any, trainer: ChildTrainer) -> SearchSettings:
    smoke = ctx.smoke
    return SearchSettings(
        iterations={"removal": min(cfg.removal.iterations, 1 if smoke else 10**9),
                    "shrink": min(cfg.shrinkage.iterations, 1 if smoke else 10**9)},
        rollouts={"removal": cfg.removal.rollouts, "shrink": cfg.shrinkage.rollouts},
        removal_lr=cfg.removal.lr, shrink_lr=cfg.shrinkage.lr, floor=cfg.shrinkage.floor,
        seed=ctx.recipe.seed, max_param_ratio=cfg.reward.max_param_ratio,
        min_accuracy_ratio=cfg.reward.min_accuracy_ratio,
        constrain_removal=cfg.reward.constrain_removal,
        cache_extra={"train": cfg.child_train.model_dump(), "smoke": smoke},
        shrink_fields=tuple(cfg.shrinkage.fields),
    )  # fmt: skip


def _load_best(spec: Any, info: Any, path: Any) -> nn.Module:
    from safetensors.torch import load_file

    child = build_model(spec, info)
    child.load_state_dict(load_file(str(path)))
    return child.eval()


def _note(child: ModelArtifact, source: ModelArtifact, state: Any) -> str:
    return (f"n2n: {child.name} is {source.params / child.params:.1f}× smaller than "
            f"{source.name} ({child.params:,} vs {source.params:,} parameters), found among "
            f"{len(state.children)} children ({state.trainings} trained) in "
            f"{len(state.history)} iterations, {state.seconds / 60:.1f} min of search")
