"""``compress.runtime.load(path)``: an exported artifact with its contract, usable without torch.

    model = load("runs/fashion-kd/03-export/student.onnx")   # or the folder, if it holds one
    model.classify("shoe.png")           # [("Sneaker", 0.93), ("Sandal", 0.05), ...]
    model.classify("It is a truth universally acknowledged ...")
    model.run({"input": x})              # raw outputs by name, inputs checked first
    model.inputs, model.outputs          # TensorSpecs: names, dtypes, shapes (named dynamic axes)
    model.provenance                     # recipe, stage, model, parent, versions, parity
    load(path, target="cpu-openvino")    # another runtime; default: by the artifact's format

Raw input (an image file, a PIL image, a string) is preprocessed exactly as in training, from
the artifact's signature file; arrays are taken as model-ready inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError
from compress.runtime.sessions import open_session
from compress.runtime.signature import SUFFIX, ArtifactSignature, signature_path
from compress.tasks.signature import TensorSpec


class Artifact:
    """An exported model, its signature, and the preprocessing its inputs need."""

    def __init__(self, path: Path, providers: tuple[str, ...] | None = None,
                 target: str | None = None, threads: int | None = None) -> None:  # fmt: skip
        self.path = path
        self.meta = ArtifactSignature.read(signature_path(path))
        self.session = open_session(path, self.meta.format, target, threads, providers)
        self._encoder: Any = None

    @property
    def inputs(self) -> list[TensorSpec]:
        return self.meta.signature.inputs

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.meta.signature.outputs

    @property
    def labels(self) -> list[str]:
        return self.meta.labels

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta.provenance

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every output by name; inputs by name, checked against the signature first."""
        check_inputs(self.inputs, inputs, self.path.name)
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


def check_inputs(specs: list[TensorSpec], inputs: dict[str, np.ndarray], what: str) -> None:
    """Raise CompressError naming the input when one is missing or unknown, has the wrong dtype,
    rank or fixed size, or a named dynamic axis takes two sizes (``batch`` 8 here, 4 there)."""
    unknown = sorted(set(inputs) - {s.name for s in specs})
    if unknown:
        raise CompressError(f"{what}: unknown input {unknown[0]!r}; it takes "
                            f"{', '.join(s.name for s in specs)}")  # fmt: skip
    axes: dict[str, int] = {}
    for spec in specs:
        if spec.name not in inputs:
            raise CompressError(f"{what}: missing input {spec.name!r}")
        x = np.asarray(inputs[spec.name])
        want = f"{spec.dtype} {tuple(spec.shape)}"
        if x.dtype != np.dtype(spec.dtype):
            raise CompressError(f"{what}: input {spec.name!r} is {x.dtype}, it takes {want}")
        fixed = all(isinstance(d, str) or d == n for d, n in zip(spec.shape, x.shape, strict=False))
        if x.ndim != len(spec.shape) or not fixed or 0 in x.shape:
            raise CompressError(f"{what}: input {spec.name!r} has shape {x.shape}, it takes {want}")
        for axis, name in spec.dynamic_axes().items():
            if axes.setdefault(name, x.shape[axis]) != x.shape[axis]:
                raise CompressError(f"{what}: axis {name!r} of input {spec.name!r} is "
                                    f"{x.shape[axis]}, {axes[name]} in another")  # fmt: skip


def load(path: str | Path, providers: tuple[str, ...] | None = None, target: str | None = None,
         threads: int | None = None) -> Artifact:  # fmt: skip
    """Open an artifact file, or a folder holding exactly one signature file, on ``target``
    (default: the runtime its format needs; ONNX files in ONNX Runtime on the CPU)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob(f"*{SUFFIX}"))
        if len(found) != 1:
            raise CompressError(f"{path}: {len(found)} signature files here; name the artifact")
        path = path / ArtifactSignature.read(found[0]).file
    if not path.is_file():
        raise CompressError(f"no such artifact: {path}")
    return Artifact(path, providers, target, threads)
