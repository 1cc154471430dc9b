"""A user's own data: an image folder, arrays in .npy/.npz files, or a python function."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from compress.data.source import DataConfig, DataSource, RawData, register_source
from compress.errors import DataError
from compress.tasks.base import Examples


class ImageFolderConfig(DataConfig):
    """One subfolder per class, image files of any size inside; the preprocessing below is
    applied the same way in training, export parity, evaluation and the runtimes."""

    source: Literal["image-folder"] = Field(description="Data source.")
    train: Path = Field(description="Folder of class subfolders (relative to the recipe).")
    test: Path | None = Field(None, description="Test folder with the same classes (default: "
                              "20 % of `train` held out).")  # fmt: skip
    size: tuple[int, int] = Field(description="Height and width the model sees.")
    resize: int | None = Field(
        None, ge=1, description="Resize the shorter side to this, then centre-crop to `size` "
        "(default: resize straight to `size`).",
    )  # fmt: skip
    channels: Literal[1, 3] = Field(3, description="1: grey, 3: RGB (images are converted).")
    mean: list[float] = Field([0.0], description="Per-channel mean subtracted after scaling "
                              "pixels to [0, 1] (one value applies to all channels).")  # fmt: skip
    std: list[float] = Field([1.0], description="Per-channel standard deviation divided by.")


@register_source
class ImageFolder(DataSource):
    config_model, kind = ImageFolderConfig, "image"

    def preprocessing(self) -> Any:
        from compress.runtime.preprocess import ImagePreprocessing

        c = self.config
        per_channel = [(v * c.channels if len(v) == 1 else v) for v in (c.mean, c.std)]
        if any(len(v) != c.channels for v in per_channel):
            raise DataError(f"image-folder: mean and std need 1 or {c.channels} values")
        mean, std = (tuple(v) for v in per_channel)
        return ImagePreprocessing(size=tuple(c.size), resize=c.resize, channels=c.channels,
                                  mean=mean, std=std)  # fmt: skip

    def missing(self) -> str | None:
        absent = [p for p in (self.config.train, self.config.test) if p and not p.is_dir()]
        return f"no such folder: {absent[0]}" if absent else None

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        from compress.data.files import scan_image_folder

        _, _, classes = scan_image_folder(self.config.train)
        return classes, (self.config.channels, *self.config.size)

    def _examples(self, root: Path, classes: list[str] | None, notes: list[str]) -> Examples:
        from compress.data.files import ImageFolderData, scan_image_folder

        files, labels, found = scan_image_folder(root)
        if classes is not None and found != classes:
            raise DataError(f"{root}: classes {found} differ from the training folder's {classes}")
        data = ImageFolderData(files, self.preprocessing())
        notes += data.check_all(self.preprocessing())
        return Examples(data, labels.astype(np.int64))

    def load(self) -> RawData:
        notes: list[str] = []
        train = self._examples(self.config.train, None, notes)
        classes = self.describe()[0]
        test = self._examples(self.config.test, classes, notes) if self.config.test else None
        return RawData(train, test, classes, self.preprocessing().to_json(), notes)

    def files(self) -> list[Path]:
        from compress.data.files import scan_image_folder

        roots = [r for r in (self.config.train, self.config.test) if r is not None]
        return [f for root in roots for f in scan_image_folder(root)[0]]


class ArraySet(DataConfig):
    """Inputs and labels in .npy / .npz files (never unpickled)."""

    inputs: Path = Field(description="Inputs: .npy, or .npz with `input_key` (relative to the "
                         "recipe).")  # fmt: skip
    labels: Path | None = Field(None, description="Labels .npy/.npz (default: in `inputs`).")
    input_key: str | None = Field(None, description="Array name inside an .npz of inputs.")
    label_key: str | None = Field(None, description="Array name inside an .npz of labels.")


class ArraysConfig(ArraySet):
    """Arrays of model-ready inputs (float32 images (n, c, h, w)) and integer labels."""

    source: Literal["arrays"] = Field(description="Data source.")
    test: ArraySet | None = Field(None, description="Test arrays (default: 20 % held out).")
    classes: list[str] | None = Field(None, description="Class names (default: '0', '1', ...).")


def _array_set(s: Any) -> Examples:
    from compress.data.files import load_arrays

    x, y = load_arrays(s.inputs, s.labels, s.input_key, s.label_key)
    return Examples(x.astype(np.float32, copy=False), y.astype(np.int64))


@register_source
class Arrays(DataSource):
    config_model, kind = ArraysConfig, "image"

    def missing(self) -> str | None:
        c = self.config
        paths = [c.inputs, c.labels] + ([c.test.inputs, c.test.labels] if c.test else [])
        absent = [p for p in paths if p is not None and not p.is_file()]
        return f"no such file: {absent[0]}" if absent else None

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        train = _array_set(self.config)
        k = int(train.y.max()) + 1
        return self.config.classes or [str(i) for i in range(k)], tuple(train.x.shape[1:])

    def load(self) -> RawData:
        train = _array_set(self.config)
        test = _array_set(self.config.test) if self.config.test else None
        classes, _ = self.describe()
        top = max(int(train.y.max()), int(test.y.max()) if test else 0)
        if top >= len(classes):
            raise DataError(f"{self.config.inputs}: label {top} but only {len(classes)} classes")
        return RawData(train, test, classes)

    def files(self) -> list[Path]:
        c = self.config
        paths = [c.inputs, c.labels] + ([c.test.inputs, c.test.labels] if c.test else [])
        return [p for p in paths if p is not None]


class PythonDataConfig(DataConfig):
    """Anything else: ``fn(**kwargs)`` returns a dict with ``train_x``, ``train_y``, ``classes``
    and optionally ``test_x``, ``test_y`` (numpy arrays; texts as lists of strings)."""

    source: Literal["python"] = Field(description="Data source.")
    python: str = Field(pattern=r"^[\w.]+:\w+$", description="'package.module:function'.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    kind: Literal["image", "text"] = Field("image", description="What the inputs are.")


@register_source
class PythonData(DataSource):
    config_model, kind = PythonDataConfig, "image"

    def __init__(self, config: PythonDataConfig) -> None:
        super().__init__(config)
        self.kind = config.kind  # type: ignore[misc]  (the recipe says what its function gives)
        self._raw: RawData | None = None

    def describe(self) -> tuple[list[str], tuple[int, ...]]:
        raw = self.load()
        return raw.classes, tuple(
            np.asarray(raw.train.x[:1]).shape[1:]
        ) if self.kind == "image" else ()

    def load(self) -> RawData:
        if self._raw is None:
            self._raw = _call_data_function(self.config)
        return self._raw

    def files(self) -> list[Path]:
        from compress.plugins import module_file

        return [f for f in [module_file(self.config.python.split(":")[0])] if f]


def _call_data_function(c: PythonDataConfig) -> RawData:
    module_name, func_name = c.python.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        d = func(**c.kwargs)
        keys = ("train_x", "train_y", "classes")
        if not isinstance(d, dict) or any(k not in d for k in keys):
            raise TypeError(f"returned {type(d).__name__}, not a dict with {', '.join(keys)}")
    except Exception as e:  # the user's code: any failure is a data error at this key
        raise DataError(f"data function {c.python}: {type(e).__name__}: {e}") from None

    def examples(x: Any, y: Any) -> Examples:
        x = np.array(x, dtype=object) if c.kind == "text" else np.asarray(x, np.float32)
        y = np.asarray(y)
        if len(x) != len(y) or y.dtype.kind not in "iu":
            raise DataError(f"data function {c.python}: {len(x)} inputs, {len(y)} integer "
                            f"labels expected (labels are {y.dtype})")  # fmt: skip
        return Examples(x, y.astype(np.int64))

    test = examples(d["test_x"], d["test_y"]) if "test_x" in d else None
    return RawData(examples(d["train_x"], d["train_y"]), test, [str(k) for k in d["classes"]])
