"""A task: the model's signature, how a batch is made, its metrics, and the one evaluation used for
the PyTorch model, for every exported artifact in its runtime and on every target, so the three can
never disagree on what a metric means.

Torch-free: a task works on numpy arrays, and the device runtimes evaluate with the same code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from compress.config import StrictModel
from compress.errors import ModelError
from compress.registry import Registry
from compress.tasks.signature import Metric, Signature

# predict(inputs by name, each (b, ...)) -> the task's scores, e.g. logits (b, k)
Predict = Callable[[dict[str, np.ndarray]], np.ndarray]


class TaskConfig(StrictModel):
    """Base of every task's recipe section; subclasses add ``name: Literal[...]``."""

    name: str = Field(description="Registered task name.")


@dataclass(frozen=True)
class TaskInfo:
    """What a model builder is told about its task: the signature and the sizes it needs.

    A builder is called as ``fn(info, **kwargs)`` and reads ``info.num_classes``,
    ``info.input_shape`` (images: (c, h, w)) or ``info.vocab_size`` (text)."""

    task: str
    signature: Signature
    classes: list[str]
    input_shape: tuple[int, ...] = ()
    vocab_size: int | None = None
    max_length: int | None = None

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "signature": self.signature.model_dump(mode="json"),
                "classes": self.classes, "input_shape": list(self.input_shape),
                "vocab_size": self.vocab_size, "max_length": self.max_length}  # fmt: skip

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TaskInfo:
        return cls(d["task"], Signature.model_validate(d["signature"]), list(d["classes"]),
                   tuple(d.get("input_shape") or ()), d.get("vocab_size"),
                   d.get("max_length"))  # fmt: skip


@dataclass
class Examples:
    """n examples: inputs ``x`` (an array, or a lazy reader indexed by arrays of row numbers, so
    data larger than memory streams) and integer labels ``y`` (n,)."""

    x: Any
    y: np.ndarray
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx: np.ndarray) -> Examples:
        x = self.x[idx] if isinstance(self.x, np.ndarray) else _Rows(self.x, idx)
        return Examples(x, self.y[idx], self.notes)


@dataclass(frozen=True)
class _Rows:
    """A lazy subset of a lazy reader: rows ``idx`` of ``base``."""

    base: Any
    idx: np.ndarray

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, rows: np.ndarray) -> Any:
        return self.base[self.idx[rows]]


class Task(ABC):
    """One registered task; an instance is bound to its recipe config (and, for text, to the
    tokenizer) by ``prepare``."""

    config_model: ClassVar[type[TaskConfig]]
    data_kind: ClassVar[str]  # the kind of data source it reads: "image", "text"
    metrics: ClassVar[tuple[Metric, ...]]
    classifies: ClassVar[bool] = True  # its data has classes (two at least)

    def __init__(self, config: TaskConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)

    @abstractmethod
    def info(self, classes: list[str], input_shape: tuple[int, ...]) -> TaskInfo:
        """The builder's description of this task on the given data."""

    @abstractmethod
    def batch(self, x: Any, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Model inputs for ``rows`` of ``x``, by input name."""

    @abstractmethod
    def score(self, scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        """Every metric of this task from the model's scores on labelled examples."""

    @classmethod
    def scores_shape(cls, info: TaskInfo, batch: int, length: int) -> tuple[int, ...]:
        """The shape of a model's scores on ``batch`` inputs of ``length`` tokens: (b, k)."""
        return (batch, info.num_classes)

    def training_loss(self) -> Any:
        """What a model of this task trains on alone (a teacher): an objective of
        ``compress.train`` (torch, imported here only). Classification: cross-entropy."""
        import torch.nn.functional as F

        return lambda scores, labels, _rows: F.cross_entropy(scores, labels)

    @staticmethod
    def scores_of(output: Any) -> Any:
        """What the task reads from a model's output: a tensor, the first of a tuple, or
        ``logits`` of a dict or ``transformers`` ModelOutput."""
        if isinstance(output, list | tuple):
            if not output:
                raise ModelError("the model returned an empty tuple; expected logits")
            return output[0]
        if isinstance(output, dict):  # ModelOutput is an OrderedDict
            if "logits" not in output:
                keys = ", ".join(map(str, output)) or "none"
                raise ModelError(f"the model returned a dict without 'logits' (keys: {keys})")
            return output["logits"]
        return output

    def evaluate(self, predict: Predict, examples: Examples, batch_size: int) -> dict[str, float]:
        """The task's metrics of ``predict`` on ``examples``: THE evaluation, for PyTorch models,
        exported artifacts and targets alike."""
        chunks = [predict(self.batch(examples.x, rows)) for rows in batches(len(examples),
                                                                            batch_size)]
        return self.score(np.concatenate(chunks), examples.y)


def batches(n: int, size: int, order: np.ndarray | None = None) -> list[np.ndarray]:
    """Row numbers of consecutive batches of ``size`` over ``order`` (default 0..n-1)."""
    order = np.arange(n) if order is None else order
    return [order[i : i + size] for i in range(0, n, size)]


def accuracy_metric() -> Metric:
    return Metric(name="accuracy", unit="%", direction="higher", scale=100.0)


def top1(scores: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(scores).argmax(1) == labels).mean())


TASKS: Registry[type[Task]] = Registry("task")


def register_task(cls: type[Task]) -> type[Task]:
    name = cls.config_model.model_fields["name"].annotation.__args__[0]  # Literal["name"]
    return TASKS.register(name)(cls)


def task_names() -> Sequence[str]:
    return TASKS.names()
