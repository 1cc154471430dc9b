"""``compress.runtime.load(path)``: an exported artifact with its contract, usable without torch.

    model = load("runs/fashion-kd/03-export/student.onnx")   # or the folder, if it holds one
    model.classify("shoe.png")           # [("Sneaker", 0.93), ("Sandal", 0.05), ...]
    model.classify("It is a truth universally acknowledged ...")
    model.run({"input": x})              # raw outputs by name

Raw input (an image file, a PIL image, a string) is preprocessed exactly as in training, from
the artifact's signature file; arrays are taken as model-ready inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError
from compress.runtime.ort import OrtModel
from compress.runtime.signature import SUFFIX, ArtifactSignature, signature_path


class Artifact:
    """An exported model, its signature, and the preprocessing its inputs need."""

    def __init__(self, path: Path, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        self.path = path
        self.meta = ArtifactSignature.read(signature_path(path))
        self.session = OrtModel(path, providers)
        self._encoder: Any = None

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta.provenance

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return self.session.run(inputs)

    def inputs_for(self, raw: Any) -> dict[str, np.ndarray]:
        """Model inputs from raw input: image paths or images, texts, or an array batch."""
        if self.meta.tokenizer:
            texts = [raw] if isinstance(raw, str) else list(raw)
            return self._text_encoder().encode(texts, self.meta.max_length or 512)
        name = self.meta.signature.inputs[0].name
        if isinstance(raw, np.ndarray):
            return {name: raw.astype(np.float32, copy=False)}
        items = raw if isinstance(raw, list | tuple) else [raw]
        return {name: np.stack([self._image(item) for item in items])}

    def classify(self, raw: Any, top: int = 3) -> list[list[tuple[str, float]]] | list[
        tuple[str, float]
    ]:  # fmt: skip
        """The ``top`` labels and softmax scores per input (a list per input for a batch)."""
        logits = self.session.scores(self.inputs_for(raw))  # (b, k)
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        out = [[(self.labels[i], float(row[i])) for i in np.argsort(-row)[:top]] for row in p]
        single = isinstance(raw, str | Path) or not isinstance(raw, Sequence | np.ndarray)
        return out[0] if single else out

    def _image(self, item: Any) -> np.ndarray:
        from compress.runtime.preprocess import ImagePreprocessing, load_image, preprocess_image

        if self.meta.preprocessing is None:
            raise CompressError(f"{self.path.name} takes arrays; it has no image preprocessing")
        try:
            image = load_image(item) if isinstance(item, str | Path) else item
            return preprocess_image(image, ImagePreprocessing.from_json(self.meta.preprocessing))
        except ValueError as e:  # unreadable file, bad preprocessing: the caller's input
            raise CompressError(str(e)) from None

    def _text_encoder(self) -> Any:
        if self._encoder is None:
            from compress.data.tokenizer import TextEncoder

            self._encoder = TextEncoder.load(self.path.parent / self.meta.tokenizer)
        return self._encoder


def load(path: str | Path, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> Artifact:
    """Open an artifact file, or a folder holding exactly one signature file."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob(f"*{SUFFIX}"))
        if len(found) != 1:
            raise CompressError(f"{path}: {len(found)} signature files here; name the artifact")
        path = path / ArtifactSignature.read(found[0]).file
    if not path.is_file():
        raise CompressError(f"no such artifact: {path}")
    return Artifact(path, providers)
