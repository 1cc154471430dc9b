"""The train / validation / test split every stage shares, and the task bound to it.

The test split never depends on the recipe's seed (a source's own test split, or a fixed
hold-out), so students trained with different seeds are measured on the same examples.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from compress.data.source import DATA_SOURCES, DataSource, RawData
from compress.errors import DataError
from compress.tasks import TASKS, Examples, Task, TaskInfo

SMOKE_SIZES = {"train": 512, "val": 256, "test": 512}
TEST_FRACTION = 0.2  # held out of sources without a test split of their own


@dataclass
class Splits:
    source: str
    task: Task
    info: TaskInfo
    train: Examples
    val: Examples
    test: Examples
    preprocessing: dict[str, Any] | None = None
    tokenizer: Path | None = None  # text tasks: the tokenizer file the task uses
    notes: list[str] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    def summary(self) -> dict:
        return {
            "name": self.source, "task": self.task.name,
            "train": len(self.train), "val": len(self.val), "test": len(self.test),
            "input_shape": list(self.info.input_shape), "classes": self.info.num_classes,
            "preprocessing": self.preprocessing,
        }  # fmt: skip


def make_source(data_config: Any) -> DataSource:
    return DATA_SOURCES.get(data_config.source)(data_config)


def make_task(task_config: Any) -> Task:
    return TASKS.get(task_config.name)(task_config)


def check_available(source: DataSource) -> None:
    reason = source.missing()
    if reason:
        raise DataError(f"data source {source.config.source!r} is not available: {reason}")


def _split(raw: RawData, seed: int, val_fraction: float, smoke: bool) -> dict[str, Examples]:
    """Shuffle the training examples with ``seed`` and hold out ``val_fraction`` of them."""
    train, test = raw.train, raw.test
    if test is None:  # a fixed hold-out: the same test examples whatever the seed
        order = np.random.default_rng(0).permutation(len(train))
        n_test = max(1, int(round(TEST_FRACTION * len(order))))
        train, test = train.take(order[n_test:]), train.take(order[:n_test])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train))
    n_val = max(1, int(round(val_fraction * len(order))))
    val_rows, train_rows = order[:n_val], order[n_val:]
    test_rows = np.arange(len(test))
    if smoke:
        train_rows, val_rows = train_rows[: SMOKE_SIZES["train"]], val_rows[: SMOKE_SIZES["val"]]
        test_rows = rng.permutation(test_rows)[: SMOKE_SIZES["test"]]
    return {"train": train.take(train_rows), "val": train.take(val_rows),
            "test": test.take(test_rows)}  # fmt: skip


def load_splits(recipe: Any, run_dir: Path, smoke: bool = False) -> Splits:
    """Load the recipe's data, split it, and bind its task (training a tokenizer if needed)."""
    source = make_source(recipe.data)
    check_available(source)
    raw = source.load()
    parts = _split(raw, recipe.seed, recipe.data.val_fraction, smoke)
    task = make_task(recipe.task)
    tokenizer = None
    if task.data_kind == "text":
        trained_on = {"data": source.fingerprint(), "seed": recipe.seed, "smoke": smoke}
        tokenizer = _tokenizer(task, parts["train"], run_dir, trained_on)
        task.use_tokenizer(tokenizer)
    shape = tuple(parts["train"].x[np.arange(1)].shape[1:]) if task.data_kind == "image" else ()
    return Splits(recipe.data.source, task, task.info(raw.classes, shape), parts["train"],
                  parts["val"], parts["test"], raw.preprocessing, tokenizer,
                  raw.notes)  # fmt: skip


def _tokenizer(task: Task, train: Examples, run_dir: Path, trained_on: dict) -> Path:
    """The recipe's tokenizer file, or one trained on the training texts and kept in the run
    directory under a name that hashes what it was trained on (so it is never stale)."""
    given = task.config.tokenizer
    if given is not None:
        if not given.is_file():
            raise DataError(f"tokenizer file not found: {given}")
        return given
    from compress.data.tokenizer import train_tokenizer

    what = {"task": task.config.model_dump(mode="json"), **trained_on}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
    path = run_dir / "data" / f"tokenizer-{digest}.json"
    if not path.is_file():
        texts = [str(t) for t in train.x[np.arange(len(train))]]
        train_tokenizer(texts, task.config.vocab_size, path)
    return path
