"""Runs a recipe's stages in order, skipping the ones whose cache key matches a finished run.

A stage's key hashes its kind and config, the previous stage's key (so a change re-runs every
stage after it), the task, the data section, a fingerprint of the data's files and the seeds, the
content of the files it consumes (user code included), and the versions of the libraries that
shape its output.

Under torchrun every rank plans the recipe; rank 0 alone locks and writes the run directory,
decides which stages are stale, and names each training stage it runs to the other ranks, which
run it with it (``compress.distributed``) in a private view of the folder and leave once no
training stage is left.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress import distributed
from compress.atomic import sha256_file
from compress.errors import DataError
from compress.log import Log
from compress.pipeline.artifacts import Artifacts, StageSection, StageTable
from compress.pipeline.limits import check_model_sizes, check_recipe_limits
from compress.pipeline.manifest import Manifest, git_commit, versions
from compress.pipeline.rundir import (
    changed_files,
    enter_stage_dir,
    file_hashes,
    forget_stage_dir,
    open_run_dir,
    private_view,
    stage_files,
)
from compress.pipeline.stage import STAGES, PlanContext, Stage, StageContext, runs_on_every_rank
from compress.recipe import load_recipe
from compress.tasks import TaskInfo
from compress.yaml_source import YamlSource


def task_info(recipe: Any, source: YamlSource) -> tuple[TaskInfo, str]:
    """The task on the recipe's data, known without loading it, and the data's fingerprint."""
    from compress.data import check_available, make_source, make_task

    try:
        data = make_source(recipe.data)
        check_available(data)
        classes, shape = data.describe()
        fingerprint = data.fingerprint()
    except DataError as e:
        raise source.error_at(("data", "source"), str(e)) from None
    task = make_task(recipe.task)
    if task.data_kind != data.kind:
        raise source.error_at(("task",), f"task {task.name!r} reads {task.data_kind} data; "
                              f"source {recipe.data.source!r} gives {data.kind}")  # fmt: skip
    if recipe.data.augment is not None and data.kind != "image":
        raise source.error_at(("data", "augment"), "augmentation is for image data; source "
                              f"{recipe.data.source!r} gives {data.kind}")  # fmt: skip
    if task.classifies and len(classes) < 2:
        raise source.error_at(("data", "source"), f"{len(classes)} class found; a classifier "
                              "needs at least two")  # fmt: skip
    tokenizer = getattr(recipe.task, "tokenizer", None)
    if task.data_kind == "text" and tokenizer is None and uses_hf_model(recipe):
        raise source.error_at(("task",), "an hf: text model needs its own tokenizer: set "
                              "task.tokenizer to the model folder's tokenizer.json")  # fmt: skip
    if tokenizer is not None:
        try:
            task.use_tokenizer(tokenizer)
        except DataError as e:
            raise source.error_at(("task", "tokenizer"), str(e)) from None
    return task.info(classes, shape), fingerprint


def uses_hf_model(recipe: Any) -> bool:
    """Whether any model section is ``hf:`` (its embeddings need the model's own tokenizer)."""
    from compress.models.hf import HFModelSpec

    sections = [recipe.teacher.model] + [getattr(s, "student", None) for s in recipe.stages]
    return any(isinstance(s, HFModelSpec) for s in sections)


def plan(recipe: Any, source: YamlSource) -> tuple[list[tuple[str, Stage]], str]:
    """Check everything that can be checked before running; return (folder name, stage) pairs
    and the data's fingerprint."""
    check_recipe_limits(recipe, source)
    info, fingerprint = task_info(recipe, source)
    available: set[str] = set()
    models: dict[str, str] = {}  # model name → where the recipe makes it
    precisions: dict[str, str] = {}  # model name → precision of its weights
    stages = []
    for i, (key_path, cfg) in enumerate(recipe.all_stages()):
        stage = STAGES.get(cfg.kind)(cfg)
        missing = [kind for kind in stage.requires if kind not in available]
        if missing:
            raise source.error_at(key_path + ("kind",), f"stage {cfg.kind!r} needs {missing[0]} "
                                  "from an earlier stage, and none makes them")  # fmt: skip
        check_model_sizes(cfg, key_path, info, source)
        stage.plan(PlanContext(recipe, source, key_path, info, models, precisions))
        available.update(stage.provides)
        stages.append((f"{i + 1:02d}-{cfg.kind}", stage))
    size = distributed.world_size_from_env()
    if recipe.data.batch_size % size and any(runs_on_every_rank(s) for _, s in stages):
        raise source.error_at(("data", "batch_size"),
                              distributed.batch_error(recipe.data.batch_size, size))  # fmt: skip
    return stages, fingerprint


def user_code(recipe: Any) -> list[Path]:
    """Source files of the recipe's plugins (any stage may run their code), and a tokenizer
    file the recipe names (every text stage reads it)."""
    from compress.plugins import module_file

    tokenizer = getattr(recipe.task, "tokenizer", None)
    return [f for name in recipe.plugins if (f := module_file(name))] + (
        [tokenizer] if tokenizer else [])  # fmt: skip


def stage_key(stage: Stage, previous: str, artifacts: Artifacts, run: Run) -> str:
    """Hashes the stage's kind and config, the previous stage's key, the data section, its
    fingerprint and the seeds, the content of every file it consumes (earlier artifacts, a
    checkpoint, a user's builder and plugins) and the library versions."""
    paths = [run.run_dir / rel for rel in artifacts.files()] + stage.input_files()
    paths += user_code(run.recipe)
    for path in paths:
        if path not in run.file_hashes:
            run.file_hashes[path] = sha256_file(path)
    inputs = {str(p.relative_to(run.run_dir) if p.is_relative_to(run.run_dir) else p):
              run.file_hashes[p] for p in paths}  # fmt: skip
    payload = {
        "kind": stage.kind, "config": stage.config.model_dump(mode="json"), "previous": previous,
        "task": run.recipe.task.model_dump(mode="json"),
        "data": run.recipe.data.model_dump(mode="json"), "data_files": run.data_fingerprint,
        "seed": run.recipe.seed, "seeds": run.recipe.seeds, "smoke": run.smoke,
        "inputs": inputs, "versions": run.libs,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_run_dir(recipe: Any, smoke: bool) -> Path:
    return Path("runs") / (recipe.name + ("-smoke" if smoke else ""))


def run_recipe(path: str | Path, out: Path | None = None, smoke: bool = False,
               fresh: bool = False, log: Log | None = None) -> Path:  # fmt: skip
    """Validate, plan, then run every stage that is not already done. Returns the run folder.
    Under torchrun, ranks > 0 only join the training stages rank 0 runs."""
    world = distributed.init()
    try:
        recipe, source = load_recipe(path)
        stages, fingerprint = plan(recipe, source)
        run_dir = out or default_run_dir(recipe, smoke)
        if world is not None and not world.main:
            follow(world, recipe, run_dir, smoke, dict(stages))
        else:
            lead(path, recipe, source, stages, fingerprint, run_dir, fresh, smoke,
                 log or Log(), world)  # fmt: skip
    finally:
        distributed.shutdown()
    return run_dir


def lead(path: str | Path, recipe: Any, source: YamlSource, stages: list[tuple[str, Stage]],
         fingerprint: str, run_dir: Path, fresh: bool, smoke: bool, log: Log,
         world: distributed.World | None) -> None:  # fmt: skip
    """Rank 0 (or the only process): lock the run directory and run what is stale."""
    lock = open_run_dir(run_dir, fresh, log)
    if world is not None:
        log.info(f"torchrun: {world.describe()}; training stages run on every process, the "
                 f"others on rank 0, which alone writes {run_dir}")  # fmt: skip
    try:
        libs = versions()
        previous_run = Manifest.read(run_dir)
        names = {n for n, _ in stages}
        kept = [s for s in previous_run.stages if s.name in names] if previous_run else []
        manifest = Manifest(
            recipe_name=recipe.name, recipe_file=str(Path(path).resolve()),
            recipe=recipe.model_dump(mode="json"), seed=recipe.seed, smoke=smoke, versions=libs,
            git_commit=git_commit(), stages=kept,
        )  # fmt: skip
        ran = Run(recipe, source, run_dir, smoke, log, manifest, libs, fingerprint,
                  world).all(stages)  # fmt: skip
    finally:
        lock.release()
    if ran == 0:
        log.info(f"nothing to do: all {len(stages)} stages are up to date in {run_dir}")


def follow(world: distributed.World, recipe: Any, run_dir: Path, smoke: bool,
           stages: dict[str, Stage]) -> None:  # fmt: skip
    """A rank > 0: run each training stage rank 0 names, with the artifacts it sends, in a
    private view of the run directory, until rank 0 says no training stage is left."""
    log = Log(quiet=True)  # rank 0 tells the user
    while (order := distributed.broadcast_json(None, world)) is not None:
        name = order["stage"]
        view = private_view(run_dir, name, world.rank)
        distributed.barrier(world)  # copied: rank 0 may write in the stage folder again
        try:
            artifacts = Artifacts.model_validate(order["artifacts"])
            ctx = StageContext(recipe, view, view / name, artifacts, smoke, log)
            with distributed.every_rank():
                stages[name].run(ctx)
        finally:
            shutil.rmtree(view, ignore_errors=True)


def ran_section(name: str, world: distributed.World, batch_size: int) -> StageSection:
    """The report's word on a stage every rank trained."""
    share = batch_size // world.size
    return StageSection(
        stage=name, title=f"{name}: distributed training",
        text=[f"Trained by {world.describe()} under torchrun with DistributedDataParallel: each "
              f"process took {share} rows of every batch of {batch_size} and the gradients were "
              "averaged over the processes, so every step is the one-process step on the whole "
              "batch; rank 0 alone wrote the run directory."],
        tables=[StageTable(caption="How the stage ran.",
                           columns=["processes", "nodes", "backend", "batch", "per process"],
                           rows=[[world.size, world.nodes, world.backend, batch_size, share]])],
    )  # fmt: skip


@dataclass
class Run:
    """One invocation over a run directory: runs what is stale, records everything."""

    recipe: Any
    source: YamlSource
    run_dir: Path
    smoke: bool
    log: Log
    manifest: Manifest
    libs: dict
    data_fingerprint: str
    world: distributed.World | None = None
    file_hashes: dict[Path, str] = field(default_factory=dict)

    def all(self, stages: list[tuple[str, Stage]]) -> int:
        """Run the stale stages in order; return how many ran."""
        artifacts, previous, ran = Artifacts(), "", 0
        shared = [i for i, (_, s) in enumerate(stages) if runs_on_every_rank(s)]
        last_shared = shared[-1] if shared and self.world else -1
        if last_shared < 0:
            self.release_others()
        for i, (name, stage) in enumerate(stages):
            key = stage_key(stage, previous, artifacts, self)
            if self.up_to_date(name, key):
                self.log.info(f"{name}: up to date (key {key}), skipped")
            else:
                self.one(name, stage, key, artifacts)
                ran += 1
            artifacts = artifacts.merge(Artifacts.model_validate(self.manifest.entry(name).outputs))
            previous = key
            if i == last_shared:
                self.release_others()
        return ran

    def release_others(self) -> None:
        """Tell ranks > 0 that no training stage is left: they leave, and never wait out an
        export or a profile that rank 0 runs alone."""
        if self.world is not None:
            distributed.broadcast_json(None, self.world)

    def up_to_date(self, name: str, key: str) -> bool:
        """Complete with this key, and every file it wrote still hashes as it did."""
        entry = self.manifest.entry(name)
        if not (entry and entry.status == "complete" and entry.key == key):
            return False
        changed = changed_files(self.run_dir, entry.hashes, self.file_hashes)
        if changed:
            self.log.info(f"{name}: {changed[0]} changed since this stage wrote it"
                          f"{f' (and {len(changed) - 1} more)' if len(changed) > 1 else ''}; "
                          "running it again from scratch")  # fmt: skip
            forget_stage_dir(self.run_dir / name)  # nothing in it can be trusted now
        return not changed and bool(entry.hashes)

    def one(self, name: str, stage: Stage, key: str, artifacts: Artifacts) -> None:
        stage_dir = self.run_dir / name
        resuming = enter_stage_dir(stage_dir, key)  # a stale folder is emptied here
        self.log.info(f"{name}: running{' (resuming)' if resuming else ''}", stage=name, key=key)
        shared = self.world is not None and runs_on_every_rank(stage)
        self.manifest.start(name, stage.kind, key, distributed.how(self.world if shared else None))
        self.manifest.save(self.run_dir)
        ctx = StageContext(self.recipe, self.run_dir, stage_dir, artifacts, self.smoke, self.log)
        try:
            added = self.on_every_rank(name, stage, ctx) if shared else stage.run(ctx)
        except Exception as e:  # recorded, then re-raised; Ctrl-C and SIGKILL leave 'running'
            self.manifest.finish(name, error=str(e) or type(e).__name__)
            self.manifest.save(self.run_dir)
            if isinstance(e, DataError):  # found only when read (a corrupt image): the input's
                raise self.source.error_at(("data",), str(e)) from None
            raise
        written = stage_files(stage_dir) + [self.run_dir / f for f in added.reports]
        hashes = file_hashes(self.run_dir, written, self.file_hashes)
        self.manifest.finish(name, outputs=added.model_dump(mode="json"), hashes=hashes)
        self.manifest.save(self.run_dir)
        self.log.info(f"{name}: complete in {self.manifest.entry(name).seconds:.1f}s")

    def on_every_rank(self, name: str, stage: Stage, ctx: StageContext) -> Artifacts:
        """Run a training stage with the other ranks: they copy its folder as it is now (its
        resume state), then every rank runs it; rank 0's result is the one recorded."""
        assert self.world is not None
        ctx.data()  # anything loading writes (a tokenizer it trains) exists before others read
        distributed.broadcast_json({"stage": name,
                                    "artifacts": ctx.artifacts.model_dump(mode="json")},
                                   self.world)  # fmt: skip
        distributed.barrier(self.world)  # they have their copy of the stage folder
        with distributed.every_rank():
            added = stage.run(ctx)
        section = ran_section(name, self.world, self.recipe.data.batch_size)
        return added.model_copy(update={"sections": added.sections + [section]})
