"""Write Fashion-MNIST out as a folder of class-named PNGs, the way a user's photos arrive.

    python examples/byo/make_images.py OUT_DIR [--per-class N] [--size 96] [--grayscale-every K]

gives OUT_DIR/train/<class>/<i>.png and OUT_DIR/test/<class>/<i>.png: RGB, upscaled from 28×28,
the first N images of each class (deterministic). ``--grayscale-every K`` leaves every K-th image
of a class in grayscale, as a mixed photo collection would be, to exercise the conversion.
Everything is written to OUT_DIR.tmp and renamed at the end, so a killed run leaves no half
folder under OUT_DIR.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from compress.data.sources import (
    FASHION_CLASSES,
    FASHION_DIR,
    FASHION_FILES,
    fashion_missing,
    read_idx,
)


def folder_name(class_name: str) -> str:
    """'T-shirt/top' → 't-shirt-top': lowercase, every run of other characters one dash."""
    return re.sub(r"[^a-z0-9]+", "-", class_name.lower()).strip("-")


def write_split(
    out: Path, images: np.ndarray, labels: np.ndarray, per_class: int, size: int, gray_every: int
) -> int:
    """The first ``per_class`` images of each class, in file order; returns how many."""
    written = 0
    for label, name in enumerate(FASHION_CLASSES):
        folder = out / folder_name(name)
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(labels == label)[:per_class]):
            image = Image.fromarray(images[index]).resize((size, size), Image.Resampling.BILINEAR)
            if not (gray_every and i % gray_every == gray_every - 1):
                image = image.convert("RGB")
            image.save(folder / f"{i}.png")
            written += 1
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder to create; must not exist")
    parser.add_argument("--per-class", type=int, default=200, help="train images per class")
    parser.add_argument(
        "--test-per-class", type=int, default=None, help="test images per class (per-class / 4)"
    )
    parser.add_argument("--size", type=int, default=96, help="side of the square images")
    parser.add_argument(
        "--grayscale-every", type=int, default=0, help="leave every K-th image grayscale (0: none)"
    )
    args = parser.parse_args(argv)
    if args.per_class < 1 or args.size < 1 or args.grayscale_every < 0:
        parser.error("--per-class and --size must be positive, --grayscale-every not negative")
    if args.test_per_class is None:
        args.test_per_class = max(1, args.per_class // 4)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out_dir
    if missing := fashion_missing():
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if out.exists():
        print(f"error: {out} already exists; delete it or pick another folder", file=sys.stderr)
        return 2
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # left by a killed run
    counts = {}
    for split, per_class in (("train", args.per_class), ("test", args.test_per_class)):
        images = read_idx(FASHION_DIR / FASHION_FILES[f"{split}_x"])
        labels = read_idx(FASHION_DIR / FASHION_FILES[f"{split}_y"])
        counts[split] = write_split(
            tmp / split, images, labels, per_class, args.size, args.grayscale_every
        )
    tmp.rename(out)
    print(f"wrote {counts['train']} train and {counts['test']} test images to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
