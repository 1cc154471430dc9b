"""Classify a raw image file and a sentence with exported artifacts, using `compress.runtime` only
(no torch: this is what runs on the device).

    python examples/python_runtime.py \
        --image-model runs/byo/03-export/student.onnx --image photo.png \
        --text-model runs/austen-cls/03-export/student.onnx \
        --sentence "She was the youngest of the two daughters of a most affectionate father."

Each artifact folder holds the ONNX file and its signature file (inputs, preprocessing or
tokenizer, labels, the metrics measured on it); nothing else is needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from compress.errors import CompressError
from compress.runtime import load


def show(title: str, ranked: list[tuple[str, float]]) -> None:
    print(title)
    for label, score in ranked:
        print(f"  {score:6.1%}  {label}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image-model", type=Path, help="an exported image classifier")
    parser.add_argument("--image", type=Path, help="an image file to classify")
    parser.add_argument("--text-model", type=Path, help="an exported text classifier")
    parser.add_argument("--sentence", help="a sentence to classify")
    args = parser.parse_args(argv)
    try:
        classify(args)
    except CompressError as e:
        print(f"error: {e}")
        return 2
    return 0


def classify(args: argparse.Namespace) -> None:
    if args.image_model and args.image:
        model = load(args.image_model)
        show(f"{args.image} ({model.provenance['model']}, test accuracy "
             f"{model.meta.metrics['accuracy']:.2%}):", model.classify(args.image))  # fmt: skip
    if args.text_model and args.sentence:
        model = load(args.text_model)
        show(f"{args.sentence!r} ({model.provenance['model']}):", model.classify(args.sentence))


if __name__ == "__main__":
    raise SystemExit(main())
