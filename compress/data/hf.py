"""``data: {source: hf-dataset}``: a Hugging Face ``datasets`` data set on local disk.

A ``save_to_disk`` folder (a DatasetDict with named splits, or one Dataset), or parquet / CSV /
JSON-lines files; the recipe names the columns. Nothing is ever fetched from the hub: a recipe
that names a hub id would run differently tomorrow, so only local paths are read, with the hub
switched off. ``datasets`` is imported inside functions, so recipes that do not use this source
need no ``hf`` extra.

Class names come from a ClassLabel feature, else they are the sorted distinct labels (strings or
integers), so label i means the same class on every machine. Images (an Image feature) go
through ``compress.runtime.preprocess`` like the image-folder source, so the exported artifact's
runtime preprocesses a photo exactly as training did.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from compress.data.source import DataConfig, DataSource, RawData, register_source
from compress.errors import DataError
from compress.tasks.base import Examples

INSTALL = "pip install 'edge-compress[hf]'"
FILE_TYPES = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}


class HFDatasetConfig(DataConfig):
    """A Hugging Face datasets data set from a local save_to_disk folder, or local parquet /
    CSV / JSON-lines files (never downloaded); the recipe names the columns."""

    source: Literal["hf-dataset"] = Field(description="Data source.")
    path: Path = Field(description="A save_to_disk folder, or a .parquet, .csv, .jsonl file "
                       "(relative to the recipe).")  # fmt: skip
    test: Path | None = Field(None, description="A folder or file for the test split (default: "
                              "the folder's `test_split`, else 20 % held out).")  # fmt: skip
    train_split: str = Field("train", description="Split of a DatasetDict folder to train on.")
    test_split: str | None = Field("test", description="Split of a DatasetDict folder to test on "
                                   "(when absent, 20 % is held out).")  # fmt: skip
    text: str | None = Field(None, description="Text column (a text task).")
    image: str | None = Field(None, description="Image column, an Image feature (an image task).")
    label: str = Field("label", description="Label column: ClassLabel, integers or strings.")
    size: tuple[int, int] | None = Field(None, description="Images: height and width the model "
                                         "sees.")  # fmt: skip
    resize: int | None = Field(None, ge=1, description="Images: resize the shorter side to "
                               "this, then centre-crop to `size`.")  # fmt: skip
    channels: Literal[1, 3] = Field(3, description="Images: 1 grey, 3 RGB (converted).")
    mean: list[float] = Field([0.0], description="Images: per-channel mean after scaling to "
                              "[0, 1].")  # fmt: skip
    std: list[float] = Field([1.0], description="Images: per-channel standard deviation.")

    @model_validator(mode="after")
    def _one_input(self) -> HFDatasetConfig:
        if (self.text is None) == (self.image is None):
            raise ValueError("name exactly one input column: `text` or `image`")
        if self.image is not None and self.size is None:
            raise ValueError("an `image` column needs `size: [height, width]`")
        return self


def offline() -> None:
    """The hub stays shut: set before ``transformers`` or ``datasets`` is first imported (they
    read these once); ``local_files_only=True`` covers a module imported earlier."""
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # the CLI's stderr is ours


def import_datasets() -> Any:
    """``datasets`` with the hub shut and its progress bars off (the CLI's stderr is ours)."""
    offline()
    try:
        import datasets
    except ImportError:
        raise DataError(f"hf-dataset needs the datasets package: {INSTALL}") from None
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    return datasets


def read_local(path: Path) -> Any:
    """A Dataset or DatasetDict from a save_to_disk folder or one data file."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    datasets = import_datasets()
    try:
        if path.is_dir():
            return datasets.load_from_disk(str(path))
        kind = FILE_TYPES.get(path.suffix.lower())
        if kind is None:
            raise DataError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                            f"hf-dataset reads a save_to_disk folder or "
                            f"{', '.join(FILE_TYPES)} files")  # fmt: skip
        read = {"parquet": datasets.Dataset.from_parquet, "csv": datasets.Dataset.from_csv,
                "json": datasets.Dataset.from_json}[kind]  # fmt: skip
        return read(str(path))
    except DataError:
        raise
    except Exception as e:  # datasets and pyarrow raise many types; all mean "cannot read"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"{path}: not readable as a data set ({first})") from None


def image_preprocessing(c: HFDatasetConfig) -> Any:
    from compress.runtime.preprocess import ImagePreprocessing

    mean, std = ((v * c.channels if len(v) == 1 else v) for v in (c.mean, c.std))
    if len(mean) != c.channels or len(std) != c.channels:
        raise DataError(f"hf-dataset: mean and std need 1 or {c.channels} values")
    return ImagePreprocessing(size=tuple(c.size), resize=c.resize, channels=c.channels,
                              mean=tuple(mean), std=tuple(std))  # fmt: skip


class HFImages:
    """Images of one column decoded and preprocessed on demand: ``data[rows]`` → float32
    batch. The Dataset is memory-mapped from its arrow files, so it pickles cheaply into
    DataLoader workers and a set larger than memory streams."""

    def __init__(self, dataset: Any, column: str, preprocessing: Any, where: str) -> None:
        self.dataset, self.column, self.preprocessing = dataset, column, preprocessing
        self.where = where

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, rows: np.ndarray | int) -> np.ndarray:
        from compress.runtime.preprocess import preprocess_image

        idx = np.asarray(rows)
        picked = [int(i) for i in idx.ravel()]
        try:
            images = self.dataset.select_columns([self.column])[picked][self.column]
            arrays = [preprocess_image(image, self.preprocessing) for image in images]
        except Exception as e:  # a corrupt image found mid-epoch: one line naming the column
            raise DataError(f"{self.where}: column {self.column!r}, rows {picked[:3]}...: "
                            f"{type(e).__name__}: {e}") from None  # fmt: skip
        if idx.ndim == 0:
            return arrays[0]
        return np.stack(arrays) if arrays else np.empty((0,), np.float32)


@register_source
class HFDataset(DataSource):
    config_model, kind = HFDatasetConfig, "text"

    def __init__(self, config: HFDatasetConfig) -> None:
        super().__init__(config)
        self.kind = "image" if config.image else "text"  # type: ignore[misc]  (per recipe)
        self._splits: tuple[Any, Any] | None = None
        self._classes: tuple[list[str], dict[Any, int] | None] | None = None

    def missing(self) -> str | None:
        absent = [p for p in (self.config.path, self.config.test) if p and not p.exists()]
        return f"{absent[0]}: no such file or folder" if absent else None

    def _datasets(self) -> tuple[Any, Any]:
        """(train, test or None), columns checked; read once per source."""
        if self._splits is None:
            c = self.config
            whole = read_local(c.path)
            train, test = _pick(whole, c.path, c.train_split, "train_split"), None
            named = "test_split" in c.model_fields_set and c.test_split is not None
            if c.test is not None:
                test = _pick(read_local(c.test), c.test, c.test_split or "test", "test_split")
            elif isinstance(whole, dict) and (c.test_split in whole or named):
                test = _pick(whole, c.path, c.test_split, "test_split")  # named: must be there
            for ds, where in ((train, c.path), (test, c.test or c.path)):
                if ds is not None:
                    _check_columns(ds, where, [x for x in (c.text, c.image, c.label) if x])
            self._splits = (train, test)
        return self._splits

    def _class_names(self) -> tuple[list[str], dict[Any, int] | None]:
        """Class names and the map from raw label to index (None: a ClassLabel's own ids)."""
        if self._classes is None:
            train, _ = self._datasets()
            feature = train.features[self.config.label]
            if type(feature).__name__ == "ClassLabel":
                self._classes = (list(feature.names), None)
            else:
                values = _labels(train, self.config.label, self.config.path)
                distinct = sorted(set(values.tolist()))
                self._classes = ([str(v) for v in distinct], {v: i for i, v in enumerate(distinct)})
        return self._classes

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        classes, _ = self._class_names()
        c = self.config
        return classes, ((c.channels, *c.size) if c.image else ())

    def _examples(self, ds: Any, where: Path, notes: list[str]) -> Examples:
        c = self.config
        classes, index = self._class_names()
        names = getattr(ds.features[c.label], "names", None)
        if index is None and names is not None and names != classes:
            raise DataError(f"{where}: ClassLabel names {names} differ from the training "
                            f"split's {classes}")  # fmt: skip
        raw = _labels(ds, c.label, where)
        if index is None:
            y = raw.astype(np.int64)
            bad = (y < 0) | (y >= len(classes))
        else:
            y = np.array([index.get(v, -1) for v in raw.tolist()], dtype=np.int64)
            bad = y < 0
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(f"{where}: {int(bad.sum())} labels outside the classes {classes} "
                            f"(first: row {first}, {raw[first]!r})")  # fmt: skip
        if c.text is not None:
            column = ds.with_format("arrow")[c.text]
            if column.null_count:
                raise DataError(f"{where}: column {c.text!r} has {column.null_count} empty rows")
            return Examples(np.array(column.to_pylist(), dtype=object), y)
        images = HFImages(ds, c.image, image_preprocessing(c), str(where))
        notes += _mode_notes(ds, c.image, c.channels, where)
        return Examples(images, y)

    def load(self) -> RawData:
        train, test = self._datasets()
        c, notes = self.config, []
        raw = RawData(self._examples(train, c.path, notes),
                      self._examples(test, c.test or c.path, notes) if test is not None else None,
                      self._class_names()[0], notes=notes)  # fmt: skip
        if c.image:
            raw.preprocessing = image_preprocessing(c).to_json()
        return raw

    def files(self) -> list[Path]:
        paths = [p for p in (self.config.path, self.config.test) if p is not None]
        found = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
        return [f for f in found if f.is_file()]


def _pick(whole: Any, where: Path, split: str, key: str) -> Any:
    """The named split of a DatasetDict; a plain Dataset is the split itself."""
    if not isinstance(whole, dict):  # a DatasetDict is a dict of splits
        return whole
    if split not in whole:
        raise DataError(f"{where}: no split {split!r} for {key} (splits: {', '.join(whole)})")
    return whole[split]


def _check_columns(ds: Any, where: Path, wanted: list[str]) -> None:
    for name in wanted:
        if name not in ds.column_names:
            raise DataError(f"{where}: no column {name!r}; its columns: "
                            f"{', '.join(ds.column_names)}")  # fmt: skip


def _labels(ds: Any, column: str, where: Path) -> np.ndarray:
    """The label column as integers or strings; floats and empty labels are refused."""
    values = ds.with_format("arrow")[column]
    if values.null_count:
        raise DataError(f"{where}: label column {column!r} has {values.null_count} empty rows")
    array = np.asarray(values.to_pylist())
    if array.dtype.kind not in "iuUb":
        raise DataError(f"{where}: label column {column!r} holds {array.dtype} values; expected "
                        "integers, strings or a ClassLabel")  # fmt: skip
    return array


def _mode_notes(ds: Any, column: str, channels: int, where: Path) -> list[str]:
    """Images the preprocessing converts (grey among colour), counted once before training,
    which also finds a corrupt image now rather than in epoch 3."""
    from compress.data.files import MODE_NAMES
    from compress.runtime.preprocess import MODES

    converted: dict[str, int] = {}
    for i in range(0, len(ds), 256):
        try:
            images = ds.select_columns([column])[i : i + 256][column]
        except Exception as e:  # an undecodable image: one line naming file and column
            raise DataError(f"{where}: column {column!r}, rows {i}–{i + 255}: "
                            f"{type(e).__name__}: {e}") from None  # fmt: skip
        if images and not hasattr(images[0], "mode"):
            raise DataError(f"{where}: column {column!r} holds {type(images[0]).__name__}, not "
                            "images; give it an Image feature (cast_column(name, Image()))")
        for image in images:
            if image.mode != MODES[channels]:
                converted[image.mode] = converted.get(image.mode, 0) + 1
    return [f"converted {n} {MODE_NAMES.get(mode, mode)} images in {where.name} to "
            f"{MODE_NAMES[MODES[channels]]}" for mode, n in converted.items()]  # fmt: skip
