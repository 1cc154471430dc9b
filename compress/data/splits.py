"""Data set registry and the train / validation / test split every stage shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from compress.errors import DataError
from compress.registry import Registry


@dataclass(frozen=True)
class RawData:
    """What a source returns: images (n, c, h, w) in [0, 1] and integer labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: list[str]


@dataclass(frozen=True)
class Source:
    missing: Callable[[], str | None]  # None when present, else how to install it
    load: Callable[[], RawData]
    input_shape: tuple[int, ...]  # known without loading, so recipes validate fast
    num_classes: int


DATASETS: Registry[Source] = Registry("data set")

SMOKE_SIZES = {"train": 512, "val": 256, "test": 512}


@dataclass(frozen=True)
class Splits:
    name: str
    train_x: torch.Tensor  # (n, c, h, w) float32 in [0, 1]
    train_y: torch.Tensor  # (n,) int64
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list[str]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "train": len(self.train_y),
            "val": len(self.val_y),
            "test": len(self.test_y),
            "input_shape": list(self.input_shape),
            "classes": self.num_classes,
            "preprocessing": "pixel / max pixel value → [0, 1], float32",
        }


def check_available(name: str) -> None:
    reason = DATASETS.get(name).missing()
    if reason:
        raise DataError(f"data set {name!r} is not installed: {reason}")


def load_splits(name: str, val_fraction: float, seed: int, smoke: bool = False) -> Splits:
    """Shuffle the training split with ``seed`` and hold out ``val_fraction`` of it."""
    check_available(name)
    raw = DATASETS.get(name).load()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(raw.train_y))
    n_val = max(1, int(round(val_fraction * len(order))))
    val, train = order[:n_val], order[n_val:]
    if smoke:
        train, val = train[: SMOKE_SIZES["train"]], val[: SMOKE_SIZES["val"]]
    test = np.arange(len(raw.test_y))
    if smoke:
        test = rng.permutation(test)[: SMOKE_SIZES["test"]]

    def tensors(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        return torch.from_numpy(np.ascontiguousarray(x[idx], np.float32)), torch.from_numpy(
            y[idx].astype(np.int64)
        )

    return Splits(
        name,
        *tensors(raw.train_x, raw.train_y, train),
        *tensors(raw.train_x, raw.train_y, val),
        *tensors(raw.test_x, raw.test_y, test),
        raw.classes,
    )
