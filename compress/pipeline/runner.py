"""Runs a recipe's stages in order, skipping the ones whose cache key matches a finished run.

A stage's key hashes its kind and config, the previous stage's key (so a change re-runs every
stage after it), the data section and seed, the content of the files it consumes, and the
versions of the libraries that shape its output.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compress.atomic import sha256_file
from compress.errors import CompressError
from compress.log import Log
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.manifest import MANIFEST, Manifest, git_commit, versions
from compress.pipeline.stage import STAGES, PlanContext, Stage, StageContext
from compress.recipe import load_recipe
from compress.yaml_source import YamlSource


def plan(recipe: Any, source: YamlSource) -> list[tuple[str, Stage]]:
    """Check everything that can be checked before running; return (folder name, stage)."""
    from compress.data.splits import DATASETS, check_available
    from compress.errors import DataError

    try:
        check_available(recipe.data.dataset)
    except DataError as e:
        raise source.error_at(("data", "dataset"), str(e)) from None
    data = DATASETS.get(recipe.data.dataset)
    available: set[str] = set()
    stages = []
    for i, (key_path, cfg) in enumerate(recipe.all_stages()):
        stage = STAGES.get(cfg.kind)(cfg)
        missing = [kind for kind in stage.requires if kind not in available]
        if missing:
            raise source.error_at(key_path + ("kind",), f"stage {cfg.kind!r} needs {missing[0]} "
                                  "from an earlier stage, and none makes them")  # fmt: skip
        stage.plan(PlanContext(recipe, source, key_path, data.input_shape, data.num_classes))
        available.update(stage.provides)
        stages.append((f"{i + 1:02d}-{cfg.kind}", stage))
    return stages


def stage_key(stage: Stage, previous: str, artifacts: Artifacts, recipe: Any, run_dir: Path,
              smoke: bool, libs: dict, hashes: dict[Path, str]) -> str:  # fmt: skip
    """``hashes`` memoises file hashes within one invocation: every later stage's key hashes
    the same earlier artifacts again."""
    paths = [run_dir / rel for rel in artifacts.files()] + stage.input_files()
    for path in paths:
        if path not in hashes:
            hashes[path] = sha256_file(path)
    inputs = {str(p.relative_to(run_dir) if p.is_relative_to(run_dir) else p): hashes[p]
              for p in paths}  # fmt: skip
    payload = {
        "kind": stage.kind, "config": stage.config.model_dump(mode="json"), "previous": previous,
        "data": recipe.data.model_dump(mode="json"), "seed": recipe.seed, "smoke": smoke,
        "inputs": inputs, "versions": libs,
    }  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def default_run_dir(recipe: Any, smoke: bool) -> Path:
    return Path("runs") / (recipe.name + ("-smoke" if smoke else ""))


def prepare_run_dir(run_dir: Path, fresh: bool) -> None:
    if fresh and run_dir.exists():
        if any(run_dir.iterdir()) and not (run_dir / MANIFEST).is_file():
            raise CompressError(f"--fresh refuses to delete {run_dir}: it is not a run directory")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def run_recipe(path: str | Path, out: Path | None = None, smoke: bool = False,
               fresh: bool = False, log: Log | None = None) -> Path:  # fmt: skip
    """Validate, plan, then run every stage that is not already done. Returns the run folder."""
    log = log or Log()
    recipe, source = load_recipe(path)
    stages = plan(recipe, source)
    run_dir = out or default_run_dir(recipe, smoke)
    prepare_run_dir(run_dir, fresh)
    libs = versions()
    previous_run = Manifest.read(run_dir)
    kept = (
        [s for s in previous_run.stages if s.name in {n for n, _ in stages}] if previous_run else []
    )
    manifest = Manifest(
        recipe_name=recipe.name, recipe_file=str(Path(path).resolve()),
        recipe=recipe.model_dump(mode="json"), seed=recipe.seed, smoke=smoke, versions=libs,
        git_commit=git_commit(), stages=kept,
    )  # fmt: skip
    ran = Run(recipe, run_dir, smoke, log, manifest, libs).all(stages)
    if ran == 0:
        log.info(f"nothing to do: all {len(stages)} stages are up to date in {run_dir}")
    return run_dir


@dataclass
class Run:
    """One invocation over a run directory: runs what is stale, records everything."""

    recipe: Any
    run_dir: Path
    smoke: bool
    log: Log
    manifest: Manifest
    libs: dict
    file_hashes: dict[Path, str] = field(default_factory=dict)

    def all(self, stages: list[tuple[str, Stage]]) -> int:
        """Run the stale stages in order; return how many ran."""
        artifacts, previous, ran = Artifacts(), "", 0
        for name, stage in stages:
            key = stage_key(stage, previous, artifacts, self.recipe, self.run_dir, self.smoke,
                            self.libs, self.file_hashes)  # fmt: skip
            if self.up_to_date(name, key):
                self.log.info(f"{name}: up to date (key {key}), skipped")
            else:
                self.one(name, stage, key, artifacts)
                ran += 1
            artifacts = artifacts.merge(Artifacts.model_validate(self.manifest.entry(name).outputs))
            previous = key
        return ran

    def up_to_date(self, name: str, key: str) -> bool:
        entry = self.manifest.entry(name)
        if not (entry and entry.status == "complete" and entry.key == key):
            return False
        outputs = Artifacts.model_validate(entry.outputs).files()
        return all((self.run_dir / f).is_file() for f in outputs)

    def one(self, name: str, stage: Stage, key: str, artifacts: Artifacts) -> None:
        stage_dir = self.run_dir / name
        entry = self.manifest.entry(name)
        if entry and entry.key != key and stage_dir.exists():
            shutil.rmtree(stage_dir)  # its config or inputs changed: its old state is stale
        resuming = entry is not None and entry.key == key and entry.status != "complete"
        stage_dir.mkdir(parents=True, exist_ok=True)
        self.log.info(f"{name}: running{' (resuming)' if resuming else ''}", stage=name, key=key)
        self.manifest.start(name, stage.kind, key)
        self.manifest.save(self.run_dir)
        ctx = StageContext(self.recipe, self.run_dir, stage_dir, artifacts, self.smoke, self.log)
        try:
            added = stage.run(ctx)
        except Exception as e:  # recorded, then re-raised; Ctrl-C and SIGKILL leave 'running'
            self.manifest.finish(name, error=str(e) or type(e).__name__)
            self.manifest.save(self.run_dir)
            raise
        self.manifest.finish(name, outputs=added.model_dump(mode="json"))
        self.manifest.save(self.run_dir)
        self.log.info(f"{name}: complete in {self.manifest.entry(name).seconds:.1f}s")
