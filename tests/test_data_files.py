"""User data readers (compress.data.files) and the shared image preprocessing (runtime side)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compress.data.files import (
    ImageFolderData,
    fingerprint_content,
    fingerprint_files,
    load_arrays,
    scan_image_folder,
)
from compress.data.sources import fashion_missing
from compress.errors import DataError
from compress.runtime.preprocess import ImagePreprocessing, load_image, preprocess_image
from tests.conftest import ROOT

RGB = ImagePreprocessing(size=(8, 8), resize=None, channels=3, mean=(0.5,) * 3, std=(0.25,) * 3)


def png(path: Path, pixels: np.ndarray | None = None, mode: str = "RGB") -> Path:
    """A small image file; a colour gradient unless pixels are given."""
    if pixels is None:
        pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
        pixels = pixels[..., 0] if mode == "L" else pixels
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def folder(root: Path, counts: dict[str, int]) -> Path:
    for name, n in counts.items():
        for i in range(n):
            png(root / name / f"{i}.png")
    return root


# -- preprocessing -----------------------------------------------------------------------------


def test_preprocess_normalises_known_pixels():
    image = Image.fromarray(np.array([[0, 255], [51, 102]], np.uint8))
    p = ImagePreprocessing(size=None, resize=None, channels=1, mean=(0.5,), std=(0.25,))
    x = preprocess_image(image, p)
    assert x.shape == (1, 2, 2) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], [[-2.0, 2.0], [-1.2, -0.4]], atol=1e-6)


def test_preprocess_converts_modes_and_honours_layout():
    gray = Image.fromarray(np.full((2, 2), 51, np.uint8))
    p = ImagePreprocessing(None, None, 3, mean=(0.0, 0.1, 0.2), std=(1.0, 1.0, 0.5), layout="nhwc")
    x = preprocess_image(gray, p)
    assert x.shape == (2, 2, 3)
    np.testing.assert_allclose(x[0, 0], [0.2, 0.1, 0.0], atol=1e-6)


def test_preprocess_resizes_then_crops_the_centre():
    columns = np.tile(np.array([0, 60, 120, 180], np.uint8), (2, 1))  # h=2, w=4
    p = ImagePreprocessing(size=(2, 2), resize=2, channels=1, mean=(0.0,), std=(1.0,))
    x = preprocess_image(Image.fromarray(columns), p)
    np.testing.assert_allclose(x[0] * 255, [[60, 120], [60, 120]], atol=1e-4)
    straight = ImagePreprocessing(size=(3, 5), resize=None, channels=1, mean=(0.0,), std=(1.0,))
    assert preprocess_image(Image.fromarray(columns), straight).shape == (1, 3, 5)


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.array([[0, 32896], [65535, 257]], np.uint16)).save(tmp_path / "g.png")
    p = ImagePreprocessing(None, None, 1, (0.0,), (1.0,))
    x = preprocess_image(load_image(tmp_path / "g.png"), p)
    np.testing.assert_allclose(x[0] * 255, [[0, 128], [255, 1]], atol=1e-4)


def test_preprocessing_round_trips_through_json_and_refuses_unknown_keys():
    p = ImagePreprocessing(size=(96, 96), resize=110, channels=3, mean=(0.1,) * 3, std=(0.2,) * 3)
    assert ImagePreprocessing.from_json(json.loads(json.dumps(p.to_json()))) == p
    with pytest.raises(ValueError, match="unknown keys"):
        ImagePreprocessing.from_json({**p.to_json(), "flip": True})
    with pytest.raises(ValueError, match="one value per channel"):
        ImagePreprocessing(size=None, resize=None, channels=3, mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match="smaller than the crop"):
        ImagePreprocessing(size=(96, 96), resize=64, channels=1, mean=(0.5,), std=(0.5,))


def test_preprocess_module_runs_without_torch(tmp_path):
    png(tmp_path / "a.png")
    code = textwrap.dedent(f"""
        import sys
        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ModuleNotFoundError("torch is blocked", name=name)
        sys.meta_path.insert(0, BlockTorch())
        from compress.runtime.preprocess import ImagePreprocessing, load_image, preprocess_image
        p = ImagePreprocessing((8, 8), None, 3, (0.5,) * 3, (0.25,) * 3)
        print(preprocess_image(load_image({str(tmp_path / "a.png")!r}), p).shape)
        assert "torch" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 8, 8)"


def test_load_image_names_unreadable_files(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    truncated = png(
        tmp_path / "cut.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    )
    truncated.write_bytes(truncated.read_bytes()[:300])
    for path in (tmp_path / "notes.png", truncated, tmp_path / "absent.png"):
        with pytest.raises(ValueError, match=str(path.name)):
            load_image(path)


# -- image folders -----------------------------------------------------------------------------


def test_scan_finds_classes_and_labels_and_skips_hidden_files(tmp_path):
    root = folder(tmp_path / "data", {"cat": 2, "ant": 1})
    (root / "cat" / ".DS_Store").write_text("")
    (root / "README.md").write_text("about the data")
    png(root / "ant" / "UPPER.JPG")
    paths, labels, classes = scan_image_folder(root)
    assert classes == ["ant", "cat"]
    assert [p.relative_to(root).as_posix() for p in paths] == [
        "ant/0.png", "ant/UPPER.JPG", "cat/0.png", "cat/1.png"
    ]  # fmt: skip
    assert labels.tolist() == [0, 0, 1, 1] and labels.dtype == np.int64


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: None, "no such folder"),
        (lambda r: r.write_text("x"), "not a folder"),
        (lambda r: r.mkdir(), "has no images"),
        (lambda r: [(r / c).mkdir(parents=True) for c in "ab"], "has no images"),
        (lambda r: folder(r, {"only": 2}), "needs at least two classes"),
        (lambda r: (folder(r, {"a": 1}), (r / "b").mkdir()), "class folder has no images"),
        (lambda r: (folder(r, {"a": 1, "b": 1}), (r / "b" / "x.heic").write_text("")), "x.heic"),
        (lambda r: (folder(r, {"a": 1, "b": 1}), png(r / "loose.png")), "loose.png"),
        (lambda r: folder(r, {"train/a": 1, "train/b": 1, "test/a": 1}), "inside class folder"),
    ],
)
def test_scan_errors_name_the_problem(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(DataError, match=message) as error:
        scan_image_folder(root)
    assert str(root) in str(error.value)


def test_grayscale_images_are_converted_and_reported(tmp_path):
    root = folder(tmp_path / "data", {"a": 2, "b": 2})
    png(root / "b" / "2.png", mode="L")
    png(root / "a" / "9.png", mode="L")
    data = ImageFolderData(scan_image_folder(root)[0], RGB)
    notes = data.check_all()
    assert notes == [f"converted 2 grayscale images to RGB (first: {root / 'a' / '9.png'})"]
    assert data[np.array([2, 5])].shape == (2, 3, 8, 8)


def test_image_data_pickles_and_streams_the_same_arrays(tmp_path):
    data = ImageFolderData(scan_image_folder(folder(tmp_path / "data", {"a": 2, "b": 3}))[0], RGB)
    indices = np.array([4, 0, 2])
    batch = data[indices]
    assert batch.shape == (3, 3, 8, 8) and batch.dtype == np.float32
    # A spawned process gets the reader the way a DataLoader worker does: sent, not shared.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        in_worker = pool.apply(data.__getitem__, (indices,))
        size = pool.apply(len, (data,))
    np.testing.assert_array_equal(in_worker, batch)
    assert data[1].shape == (3, 8, 8) and size == 5


def test_corrupt_image_is_a_data_error_naming_it(tmp_path):
    root = folder(tmp_path / "data", {"a": 1, "b": 1})
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    data = ImageFolderData(scan_image_folder(root)[0], RGB)
    with pytest.raises(DataError, match="broken.jpg"):
        data.check_all()
    with pytest.raises(DataError, match="broken.jpg"):
        data[np.arange(3)]


def test_mixed_sizes_without_a_target_size_are_refused(tmp_path):
    root = folder(tmp_path / "data", {"a": 1, "b": 1})
    png(root / "b" / "big.png", np.zeros((10, 10, 3), np.uint8))
    keep = ImagePreprocessing(None, None, 3, (0.5,) * 3, (0.25,) * 3)
    with pytest.raises(DataError, match="big.png.*set a preprocessing size"):
        ImageFolderData(scan_image_folder(root)[0], keep).check_all()


# -- arrays ------------------------------------------------------------------------------------


def test_load_arrays_from_npy_pair_and_from_one_npz(tmp_path):
    x, y = np.random.default_rng(0).random((5, 2, 3), np.float32), np.arange(5) % 2
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y.astype(np.int32))
    np.savez(tmp_path / "both.npz", images=x, targets=y)
    got_x, got_y = load_arrays(tmp_path / "x.npy", tmp_path / "y.npy", None, None)
    np.testing.assert_array_equal(got_x, x)
    assert got_y.dtype == np.int64 and got_y.tolist() == y.tolist()
    got_x, got_y = load_arrays(tmp_path / "both.npz", None, "images", "targets")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((3, 2)), np.arange(4), "3 inputs but 4 labels"),
        (np.zeros((3, 2)), np.array([0.0, 1.0, 1.0]), "expected integers"),
        (np.array(["a", "b"]), np.arange(2), "expected numbers"),
        (np.array([[np.nan, 1], [np.inf, np.nan]]), np.arange(2), "2 NaN and 1 infinite"),
        (np.zeros((2, 2)), np.array([0, -1]), "1 labels are negative"),
        (np.array([{"a": 1}, None], dtype=object), np.arange(2), "pickled arrays are refused"),
    ],
)
def test_load_arrays_errors_name_the_file(tmp_path, x, y, message):
    np.save(tmp_path / "x.npy", x, allow_pickle=True)
    np.save(tmp_path / "y.npy", y)
    with pytest.raises(DataError, match=message) as error:
        load_arrays(tmp_path / "x.npy", tmp_path / "y.npy", None, None)
    assert "x.npy" in str(error.value) or "y.npy" in str(error.value)


def test_load_arrays_file_and_key_errors(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 2)), labels=np.arange(2))
    with pytest.raises(DataError, match=r"missing\.npy: no such file"):
        load_arrays(tmp_path / "missing.npy", None, None, "labels")
    with pytest.raises(DataError, match="no array 'imgs'; the keys there: images, labels"):
        load_arrays(tmp_path / "d.npz", None, "imgs", "labels")
    with pytest.raises(DataError, match="no labels"):
        load_arrays(tmp_path / "d.npz", None, "images", None)
    np.savez(tmp_path / "obj.npz", images=np.array([None, 1], dtype=object), labels=np.arange(2))
    with pytest.raises(DataError, match=r"obj\.npz: holds a pickled"):
        load_arrays(tmp_path / "obj.npz", None, "images", "labels")
    (tmp_path / "text.npy").write_text("1,2,3")
    with pytest.raises(DataError, match=r"text\.npy: not a \.npy or \.npz file"):
        load_arrays(tmp_path / "text.npy", tmp_path / "text.npy", None, None)


def test_fingerprints_track_metadata_or_content(tmp_path):
    paths = [png(tmp_path / "a" / "x" / "0.png"), png(tmp_path / "a" / "y" / "0.png")]
    quick, exact = fingerprint_files(paths), fingerprint_content(paths)
    os.rename(tmp_path / "a", tmp_path / "moved")
    moved = [tmp_path / "moved" / p.relative_to(tmp_path / "a") for p in paths]
    assert fingerprint_files(moved) == quick and fingerprint_content(moved) == exact
    stat = moved[0].stat()
    png(moved[0], np.full((4, 6, 3), 7, np.uint8))
    os.utime(moved[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fingerprint_content(moved) != exact  # content changed
    os.utime(moved[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert fingerprint_files(moved) != quick  # a touch is enough to change the cheap one


# -- the example image folder ------------------------------------------------------------------


def test_make_images_writes_a_class_folder(tmp_path):
    if reason := fashion_missing():
        pytest.skip(reason)
    script = ROOT / "examples" / "byo" / "make_images.py"
    out = tmp_path / "byo"
    args = [sys.executable, str(script), str(out), "--per-class", "3", "--size", "16"]
    result = subprocess.run([*args, "--grayscale-every", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "byo.tmp").exists()
    paths, labels, classes = scan_image_folder(out / "train")
    assert len(paths) == 30 and "t-shirt-top" in classes and "ankle-boot" in classes
    assert np.bincount(labels).tolist() == [3] * 10
    assert len(scan_image_folder(out / "test")[0]) == 10
    modes = [Image.open(p).mode for p in paths]
    assert modes.count("L") == 10 and modes.count("RGB") == 20
    assert Image.open(paths[0]).size == (16, 16)
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
