"""Readers for the user's own data: a folder of images per class, or .npy / .npz arrays.

Every problem with the input is a DataError of one line that names the file and what is wrong,
because the user fixes files, not stack traces. Images decode lazily (``ImageFolderData``), so a
data set larger than memory streams through DataLoader workers; arrays load eagerly and are
checked whole, since a NaN found in epoch 3 costs the two epochs before it.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from compress.atomic import sha256_file
from compress.errors import DataError
from compress.runtime.preprocess import ImagePreprocessing, load_image, preprocess_image

if TYPE_CHECKING:
    from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
OS_LITTER = frozenset({"Thumbs.db", "desktop.ini"})  # written by file browsers, not by users
MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "1": "1-bit", "P": "palette",
              "RGBA": "RGBA (alpha dropped)", "CMYK": "CMYK", "I;16": "16-bit grayscale",
              "I": "32-bit grayscale", "RGB": "RGB"}  # fmt: skip


def _skipped(entry: Path) -> bool:
    return entry.name.startswith(".") or entry.name in OS_LITTER


def _is_image(entry: Path) -> bool:
    return entry.suffix.lower() in IMAGE_EXTENSIONS


def scan_image_folder(root: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """Image paths, int64 labels and class names of ``root/<class>/<image>``.

    Classes are the subfolders' names, sorted, so label i means the same class on every machine.
    Hidden files are skipped; any other non-image file inside a class folder is an error, since
    it is usually a photo in a format we do not read (.heic, .tiff) that would silently vanish.
    Non-image files directly in ``root`` (a README, a licence) are ignored; images there are an
    error, because they have no class.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected a folder with one subfolder per class")
    entries = [e for e in sorted(root.iterdir()) if not _skipped(e)]
    loose = [e for e in entries if e.is_file() and _is_image(e)]
    if loose:
        raise DataError(
            f"{loose[0]}: image directly in {root} ({len(loose)} such); "
            "put each image in a subfolder named after its class"
        )
    classes = [e.name for e in entries if e.is_dir()]
    per_class = [_class_images(root, root / name) for name in classes]
    if not any(per_class):
        raise DataError(
            f"{root} has no images; expected one subfolder per class holding "
            f"{', '.join(IMAGE_EXTENSIONS)} files"
        )
    for name, files in zip(classes, per_class, strict=True):
        if not files:
            raise DataError(f"{root / name}: class folder has no images")
    if len(classes) < 2:
        raise DataError(
            f"{root}: only one class ({classes[0]!r}); needs at least two classes, "
            "one subfolder each"
        )
    labels = np.concatenate([np.full(len(f), i, np.int64) for i, f in enumerate(per_class)])
    return [path for files in per_class for path in files], labels, classes


def _class_images(root: Path, folder: Path) -> list[Path]:
    images = []
    for entry in sorted(folder.iterdir()):
        if _skipped(entry):
            continue
        if entry.is_dir():
            raise DataError(
                f"{entry}: a folder inside class folder {folder.name!r}; expected image files "
                f"only (is {root} the folder that holds the class folders?)"
            )
        if not _is_image(entry):
            raise DataError(
                f"{entry}: not an image file (extension {entry.suffix or 'none'!r}); expected "
                f"{', '.join(IMAGE_EXTENSIONS)}; convert, move or delete it"
            )
        images.append(entry)
    return images


class ImageFolderData:
    """Images decoded and preprocessed on demand: ``data[indices]`` → float32 batch.

    Holds only paths and the preprocessing (labels come from ``scan_image_folder``), so it
    pickles cheaply into DataLoader workers and never holds the decoded data set in memory.
    """

    def __init__(self, paths: Sequence[Path], preprocessing: ImagePreprocessing) -> None:
        self.paths = [Path(p) for p in paths]
        self.preprocessing = preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, indices: np.ndarray | int) -> np.ndarray:
        """One image (an int index) or a stacked batch (an array of indices)."""
        idx = np.asarray(indices)
        if idx.ndim == 0:
            return preprocess_image(_open(self.paths[int(idx)]), self.preprocessing)
        paths = [self.paths[int(i)] for i in idx.ravel()]
        arrays = [preprocess_image(_open(path), self.preprocessing) for path in paths]
        if not arrays:
            return np.empty((0,), np.float32)
        for path, a in zip(paths, arrays, strict=True):
            if a.shape != arrays[0].shape:
                raise DataError(_shape_mismatch(path, a, paths[0]))
        return np.stack(arrays)

    def check_all(self, p: ImagePreprocessing | None = None) -> list[str]:
        """Decode every image once before training; notes on what preprocessing will change.

        A corrupt file found now costs seconds; found in a DataLoader worker mid-epoch it costs
        the run. Returns notes such as "converted 3 grayscale images to RGB (first: path)".
        """
        p = p or self.preprocessing
        converted: dict[str, list[Path]] = {}
        first: tuple[Path, np.ndarray] | None = None
        for path in self.paths:
            image = _open(path)
            if image.mode != p.mode:
                converted.setdefault(image.mode, []).append(path)
            x = preprocess_image(image, p)
            if first is None:
                first = (path, x)
            elif x.shape != first[1].shape:
                raise DataError(_shape_mismatch(path, x, first[0]))
        target = MODE_NAMES[p.mode]
        return [
            f"converted {len(paths)} {MODE_NAMES.get(mode, mode)} image"
            f"{'s' if len(paths) > 1 else ''} to {target} (first: {paths[0]})"
            for mode, paths in converted.items()
        ]


def _open(path: Path) -> Image.Image:
    try:
        return load_image(path)
    except ValueError as e:
        raise DataError(str(e)) from None


def _shape_mismatch(path: Path, x: np.ndarray, first: Path) -> str:
    return f"{path}: preprocesses to shape {x.shape}, unlike {first}; set a preprocessing size"


def load_arrays(
    inputs: Path, labels: Path | None, input_key: str | None, label_key: str | None
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and int64 labels from .npy / .npz files, checked before any training.

    With ``labels`` None, both arrays come from the ``inputs`` .npz, named by the two keys.
    Never unpickles: a pickled array can run arbitrary code when loaded.
    """
    if labels is None and label_key is None:
        raise DataError(f"{inputs}: no labels; give a labels file or a label key in this .npz")
    x_file, y_file = Path(inputs), Path(labels or inputs)
    x, y = _read_array(x_file, input_key, "inputs"), _read_array(y_file, label_key, "labels")
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{x_file}: inputs hold no samples (shape {x.shape})")
    if y.ndim != 1:
        raise DataError(f"{y_file}: labels must be one-dimensional, got shape {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{x_file}, {y_file}: {len(x)} inputs but {len(y)} labels")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(
            f"{y_file}: labels have dtype {y.dtype}; expected integers (class indices), "
            "e.g. save labels.astype(np.int64)"
        )
    if y.min() < 0:
        raise DataError(f"{y_file}: {int((y < 0).sum())} labels are negative (min {y.min()})")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(f"{x_file}: inputs have dtype {x.dtype}; expected numbers")
    if np.issubdtype(x.dtype, np.floating):
        _check_finite(x_file, x)
    return x, y.astype(np.int64, copy=False)


def _check_finite(path: Path, x: np.ndarray) -> None:
    nan, inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    if nan or inf:
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise DataError(
            f"{path}: inputs hold {nan} NaN and {inf} infinite values "
            f"in {len(bad)} samples (first: sample {bad[0]})"
        )


def _read_array(path: Path, key: str | None, what: str) -> np.ndarray:
    """One array from a .npy, or the one named ``key`` (or the only one) from a .npz."""
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    with open(path, "rb") as f:
        magic = f.read(6)
    try:
        if magic == b"\x93NUMPY":
            if key is not None:
                raise DataError(f"{path}: a .npy holds one array; {what} key {key!r} needs .npz")
            return np.load(path, allow_pickle=False)
        if magic[:4] == b"PK\x03\x04":
            with np.load(path, allow_pickle=False) as npz:
                return npz[_npz_key(path, list(npz.files), key, what)]
    except ValueError as e:
        if "allow_pickle" in str(e):  # numpy's message for object arrays
            raise DataError(
                f"{path}: holds a pickled (object) array; pickled arrays are refused because "
                "loading one can run code; save a numeric array"
            ) from None
        raise DataError(f"{path}: cannot read ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: cannot read ({e})") from None
    raise DataError(f"{path}: not a .npy or .npz file (save it with numpy.save or numpy.savez)")


def _npz_key(path: Path, keys: list[str], key: str | None, what: str) -> str:
    if key is None:
        if len(keys) == 1:
            return keys[0]
        raise DataError(f"{path}: holds arrays {', '.join(keys)}; name the {what} key")
    if key not in keys:
        raise DataError(f"{path}: no array {key!r}; the keys there: {', '.join(keys) or '(none)'}")
    return key


def fingerprint_files(paths: list[Path]) -> str:
    """sha256 over each file's (relative path, size, mtime_ns): cheap, for cache keys.

    Costs one stat per file, so fingerprinting 100,000 images takes well under a second. The
    trade-off: a same-size edit that keeps the mtime (``cp -p``, some sync tools) goes unseen,
    and a touch or a copy without kept mtimes misses the cache needlessly (safe, only slow).
    Paths are relative to the files' common folder, so moving the data set keeps the key.
    Order matters: it is the order labels follow.
    """
    digest = hashlib.sha256()
    for rel, path in _relative(paths):
        try:
            st = path.stat()
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def fingerprint_content(paths: list[Path]) -> str:
    """sha256 over each file's relative path and content hash: exact, but reads every byte.

    For small inputs (an .npz of arrays) where exactness is worth a full read; for a large
    image folder prefer ``fingerprint_files``.
    """
    digest = hashlib.sha256()
    for rel, path in _relative(paths):
        try:
            content = sha256_file(path)
        except OSError as e:
            raise DataError(f"{path}: cannot read ({e.strerror or e})") from None
        digest.update(f"{rel}\0{content}\n".encode())
    return digest.hexdigest()


def _relative(paths: list[Path]) -> list[tuple[str, Path]]:
    if not paths:
        return []
    absolute = [Path(p).absolute() for p in paths]
    base = Path(os.path.commonpath([p.parent for p in absolute]))
    return [(p.relative_to(base).as_posix(), p) for p in absolute]
