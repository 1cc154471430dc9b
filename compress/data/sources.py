"""The built-in data sets that work offline: Fashion-MNIST, scikit-learn's digits, Jane Austen."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from compress.data.source import DataConfig, DataSource, RawData, register_source
from compress.tasks.base import Examples

FASHION_DIR = Path(
    os.environ.get("COMPRESS_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
)
FASHION_FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip


def grey_pixels(shape: tuple[int, int, int]) -> dict:
    """The preprocessing of the built-in image sets as a runtime applies it to an image file:
    grey, resized to the set's size, pixels scaled to [0, 1] (the sets' darkest-to-brightest
    range, 0–255 or 0–16, maps onto [0, 1] the same way)."""
    from compress.runtime.preprocess import ImagePreprocessing

    c, h, w = shape
    p = ImagePreprocessing(size=(h, w), resize=None, channels=c, mean=(0.0,) * c, std=(1.0,) * c)
    return p.to_json()


def read_idx(path: Path) -> np.ndarray:
    """IDX format: magic (0, 0, dtype 0x08 = uint8, ndim), ndim big-endian uint32 sizes, data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an uint8 IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_missing() -> str | None:
    absent = [name for name in FASHION_FILES.values() if not (FASHION_DIR / name).is_file()]
    if not absent:
        return None
    return (
        f"{', '.join(absent)} not found in {FASHION_DIR}; install it with "
        "`apt-get install dataset-fashion-mnist` (Debian), or set COMPRESS_FASHION_MNIST_DIR"
    )


class FashionConfig(DataConfig):
    """Fashion-MNIST: 60,000 + 10,000 grey 28×28 images of 10 kinds of clothing (Debian's
    dataset-fashion-mnist)."""

    source: Literal["fashion-mnist"] = Field(description="Data source.")


@register_source
class FashionMnist(DataSource):
    config_model, kind = FashionConfig, "image"

    def missing(self) -> str | None:
        return fashion_missing()

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        return FASHION_CLASSES, (1, 28, 28)

    def load(self) -> RawData:
        a = {key: read_idx(FASHION_DIR / name) for key, name in FASHION_FILES.items()}
        x = {k: (a[k][:, None] / np.float32(255.0)) for k in ("train_x", "test_x")}
        return RawData(Examples(x["train_x"], a["train_y"].astype(np.int64)),
                       Examples(x["test_x"], a["test_y"].astype(np.int64)), FASHION_CLASSES,
                       grey_pixels((1, 28, 28)))  # fmt: skip

    def files(self) -> list[Path]:
        return [FASHION_DIR / name for name in FASHION_FILES.values()]


class DigitsConfig(DataConfig):
    """scikit-learn's 1,797 8×8 digits (0–16 grey levels), for fast checks; a fixed stratified
    20 % test split."""

    source: Literal["digits"] = Field(description="Data source.")


@register_source
class Digits(DataSource):
    config_model, kind = DigitsConfig, "image"

    def missing(self) -> str | None:
        try:
            import sklearn.datasets  # noqa: F401
        except ImportError:
            return "scikit-learn is not installed: pip install 'edge-compress[train]'"
        return None

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        return [str(d) for d in range(10)], (1, 8, 8)

    def load(self) -> RawData:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x = (digits.images[:, None] / np.float32(16.0)).astype(np.float32)  # (n, 1, 8, 8)
        train_x, test_x, train_y, test_y = train_test_split(
            x, digits.target, test_size=0.2, random_state=0, stratify=digits.target
        )
        return RawData(Examples(train_x, train_y.astype(np.int64)),
                       Examples(test_x, test_y.astype(np.int64)), self.describe()[0],
                       grey_pixels((1, 8, 8)))  # fmt: skip


class AustenConfig(DataConfig):
    """Sentences of Jane Austen's six novels, labelled by novel (Debian's r-cran-janeaustenr,
    unpacked without R by `make data`); a test split is held out."""

    source: Literal["austen"] = Field(description="Data source.")
    min_words: int = Field(6, ge=1, description="Shorter sentences are left out.")
    max_words: int = Field(60, ge=2, description="Longer sentences are left out.")


@register_source
class Austen(DataSource):
    config_model, kind = AustenConfig, "text"

    def missing(self) -> str | None:
        from compress.data.austen import austen_missing

        return austen_missing()

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        from compress.data.austen import CLASSES

        return list(CLASSES), ()

    def load(self) -> RawData:
        from compress.data.austen import austen_sentences

        texts, labels, classes = austen_sentences(self.config.min_words, self.config.max_words)
        return RawData(Examples(np.array(texts, dtype=object), labels), None, classes)

    def files(self) -> list[Path]:
        from compress.data.austen import find_austen_dir

        folder = find_austen_dir()
        return [folder / "data" / name for name in ("Rdata.rdb", "Rdata.rdx")] if folder else []
