"""Data sources: where examples come from (``data: {source: NAME, ...}`` in a recipe).

A source is one class with one config model, registered by name like stages. It says cheaply what
it holds (classes, input shape) so a recipe validates without loading anything, loads its
examples, and names the files it reads so cache keys follow their content.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from compress.config import StrictModel
from compress.registry import Registry
from compress.tasks.base import Examples


class AugmentConfig(StrictModel):
    """Random changes to training images, drawn anew for every batch of every epoch (seeded by
    the seed, the epoch and the step, so a resumed run stays bit-exact). Validation, test,
    parity and export always see the images as they are."""

    flip: bool = Field(False, description="Mirror each image left-right with probability 1/2.")
    crop_padding: int = Field(
        0, ge=0, le=64, description="Pad each side with this many zero pixels, then crop a random "
        "window of the original size (0: no crop).",
    )  # fmt: skip


def augment_images(x: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """``x`` (b, c, h, w) with each image flipped and shifted as ``cfg`` says. Every draw comes
    from ``rng``, which the caller seeds per batch, so the same batch is augmented the same way
    in a resumed run and in any DataLoader worker."""
    b, _, h, w = x.shape
    p = cfg.crop_padding
    flips = rng.random(b) < 0.5 if cfg.flip else np.zeros(b, dtype=bool)  # (b,)
    dy, dx = rng.integers(0, 2 * p + 1, size=(2, b)) if p else np.zeros((2, b), dtype=int)
    padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x  # (b, c, h+2p, w+2p)
    out = np.empty_like(x)
    for i in range(b):
        window = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]  # (c, h, w)
        out[i] = window[..., ::-1] if flips[i] else window
    return out


class DataConfig(StrictModel):
    """Fields every source shares: batching, the validation split and augmentation."""

    source: str = Field(description="Registered data source.")
    batch_size: int = Field(128, ge=1, description="Training batch size.")
    eval_batch_size: int = Field(1000, ge=1, description="Batch size for evaluation passes.")
    val_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the training split held out for validation."
    )
    workers: int = Field(
        0, ge=0, le=64, description="DataLoader worker processes for training (0: in-process)."
    )
    augment: AugmentConfig | None = Field(
        None, description="Image tasks: random flips and crops of training batches (default: "
        "none); the teacher then runs on every distillation batch instead of precomputed scores.",
    )  # fmt: skip


@dataclass
class RawData:
    """What a source loads. ``test`` is None when the source has no test split of its own: one
    is then held out of ``train`` (see ``splits.TEST_FRACTION``)."""

    train: Examples
    test: Examples | None
    classes: list[str]
    preprocessing: dict[str, Any] | None = None  # what a runtime applies to raw input
    notes: list[str] = field(default_factory=list)  # facts for the report (conversions, ...)


class DataSource(ABC):
    """One registered source, bound to its recipe config (its paths already resolved against the
    recipe's folder)."""

    config_model: ClassVar[type[DataConfig]]
    kind: ClassVar[str]  # "image" or "text": which tasks can read it

    def __init__(self, config: DataConfig) -> None:
        self.config = config

    def missing(self) -> str | None:
        """None when the data is there, else what is missing and how to install it."""
        return None

    @abstractmethod
    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        """(class names, input shape) without loading the examples; text sources give ()."""

    @abstractmethod
    def load(self) -> RawData:
        """The examples."""

    def files(self) -> list[Path]:
        """Files whose content the examples come from (fingerprinted into cache keys)."""
        return []

    def fingerprint(self) -> str:
        """What changes when the data changes; hashed into every stage's cache key."""
        from compress.data.files import fingerprint_files

        files = self.files()
        return fingerprint_files(files) if files else ""


DATA_SOURCES: Registry[type[DataSource]] = Registry("data source")


def register_source(cls: type[DataSource]) -> type[DataSource]:
    name = cls.config_model.model_fields["source"].annotation.__args__[0]  # Literal["name"]
    return DATA_SOURCES.register(name)(cls)
