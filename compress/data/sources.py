"""The built-in data sets that work offline: Fashion-MNIST, scikit-learn's digits, Jane Austen."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field

from compress.data.source import DataConfig, DataSource, RawData, register_source
from compress.errors import DataError
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


IDX_MAGIC = {1: b"\x00\x00\x08\x01", 3: b"\x00\x00\x08\x03"}  # uint8 data, 1 or 3 dimensions
FASHION_SIZE = (28, 28)
GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError
REINSTALL = ("; reinstall dataset-fashion-mnist (Debian) or set COMPRESS_FASHION_MNIST_DIR to a "
             "folder of good copies")  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """IDX format: magic (0, 0, dtype 0x08 = uint8, ndim), ndim big-endian uint32 sizes, data.
    A file that does not read (corrupt gzip, wrong magic, fewer bytes than its sizes say) is a
    DataError naming it."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except GZIP_ERRORS as e:
        raise DataError(f"{path}: cannot be read as gzip ({e}){REINSTALL}") from None
    if data[:3] != b"\x00\x00\x08" or len(data) < 4 + 4 * data[3]:
        raise DataError(f"{path}: not an uint8 IDX file (magic number 0x{data[:4].hex():0>8})"
                        f"{REINSTALL}")  # fmt: skip
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != math.prod(shape):
        raise DataError(f"{path}: truncated: {len(data) - offset:,} bytes of data where its "
                        f"header says {math.prod(shape):,} ({'×'.join(map(str, shape))})"
                        f"{REINSTALL}")  # fmt: skip
    return np.frombuffer(data, np.uint8, offset=offset).reshape(shape)


def idx_header(path: Path, ndim: int) -> tuple[int, ...]:
    """The sizes in the header of a gzipped uint8 IDX file of ``ndim`` dimensions, from the first
    bytes of its stream; a DataError naming the file when it is not one."""
    size = 4 + 4 * ndim
    try:
        with gzip.open(path, "rb") as f:
            head = f.read(size)
    except GZIP_ERRORS as e:
        raise DataError(f"{path}: not a gzip file ({e})") from None
    if len(head) < 4 or head[:4] != IDX_MAGIC[ndim]:
        raise DataError(f"{path}: magic number 0x{head[:4].hex():0>8}, expected "
                        f"0x{IDX_MAGIC[ndim].hex()} (uint8 IDX of {ndim} "
                        f"dimension{'s' * (ndim > 1)})")  # fmt: skip
    if len(head) < size:
        raise DataError(f"{path}: truncated inside its header")
    return tuple(int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))


def gzip_length_problem(path: Path, expected: int) -> str | None:
    """Whether the file holds ``expected`` bytes uncompressed, from its gzip trailer (the
    length mod 2**32, the last 4 bytes): cheap. Only when the trailer disagrees (a truncated
    file, or several gzip members) is the whole stream read to know."""
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            if int.from_bytes(f.read(4), "little") == expected % 2**32:
                return None
        length = 0
        with gzip.open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                length += len(chunk)
    except GZIP_ERRORS as e:
        return f"truncated or corrupt ({e})"
    if length != expected:
        return f"truncated: {length:,} bytes where its header says {expected:,}"
    return None


def fashion_problem() -> str | None:
    """What is wrong with the installed files, read from their headers (magic numbers, sizes,
    images against labels), their gzip trailers and the small label files: fast enough for
    ``compress validate``. A corrupt middle of the image stream is found when it is loaded."""
    for split in ("train", "test"):
        images, labels = (FASHION_DIR / FASHION_FILES[f"{split}_{k}"] for k in ("x", "y"))
        n, h, w = idx_header(images, 3)
        if (h, w) != FASHION_SIZE:
            return f"{images}: {n}×{h}×{w} images; Fashion-MNIST's are 28×28"
        if n == 0:
            return f"{images}: holds no images"
        if problem := gzip_length_problem(images, 16 + n * h * w):
            return f"{images}: {problem}"
        (m,) = idx_header(labels, 1)
        if m != n:
            return f"{labels}: {m} labels for the {n} images of {images.name}"
        values = read_idx(labels)
        if (bad := np.flatnonzero(values >= len(FASHION_CLASSES))).size:
            return (f"{labels}: label {values[bad[0]]} at position {bad[0]}; Fashion-MNIST's "
                    f"classes are 0 to {len(FASHION_CLASSES) - 1}")  # fmt: skip
    return None


def fashion_missing() -> str | None:
    absent = [name for name in FASHION_FILES.values() if not (FASHION_DIR / name).is_file()]
    if not absent:
        try:
            problem = fashion_problem()
        except DataError as e:
            problem = str(e)
        return problem and problem.removesuffix(REINSTALL) + REINSTALL
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
