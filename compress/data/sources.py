"""The real data sets that work offline (DESIGN.md: "Teachers and data")."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from compress.data.splits import DATASETS, RawData, Source

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


def fashion_load() -> RawData:
    arrays = {key: read_idx(FASHION_DIR / name) for key, name in FASHION_FILES.items()}
    images = {k: (arrays[k][:, None] / np.float32(255.0)) for k in ("train_x", "test_x")}
    return RawData(images["train_x"], arrays["train_y"], images["test_x"], arrays["test_y"],
                   FASHION_CLASSES)  # fmt: skip


DATASETS.register("fashion-mnist")(Source(fashion_missing, fashion_load, (1, 28, 28), 10))


def digits_missing() -> str | None:
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return "scikit-learn is not installed: pip install 'edge-compress[train]'"
    return None


def digits_load() -> RawData:
    """scikit-learn's 1,797 8×8 digits (0–16); a fixed 20 % stratified test split, seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images[:, None] / np.float32(16.0)).astype(np.float32)  # (n, 1, 8, 8)
    train_x, test_x, train_y, test_y = train_test_split(
        x, digits.target, test_size=0.2, random_state=0, stratify=digits.target
    )
    return RawData(train_x, train_y, test_x, test_y, [str(d) for d in range(10)])


DATASETS.register("digits")(Source(digits_missing, digits_load, (1, 8, 8), 10))
