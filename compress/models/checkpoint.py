"""Checkpoints: safetensors weights with the architecture description in the file's metadata.

The description (``{"model": spec, "input_shape": [...], "num_classes": k}``) is also written
beside the weights as JSON for people to read. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from compress.atomic import write_json, write_with
from compress.errors import ModelError
from compress.models.zoo import build_model, model_spec_type

ARCH_KEY = "edge_compress.architecture"


def architecture(spec: Any, input_shape: tuple[int, ...], num_classes: int) -> dict:
    return {
        "model": spec.model_dump(mode="json"),
        "input_shape": list(input_shape),
        "num_classes": num_classes,
    }


def save_checkpoint(path: str | Path, model: nn.Module, arch: dict) -> None:
    """Write ``path`` (safetensors) and ``path`` with suffix ``.json`` (the description)."""
    path = Path(path)
    # contiguous clones: safetensors refuses tensors that share storage.
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {ARCH_KEY: json.dumps(arch)}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    write_json(path.with_suffix(".json"), arch)


def read_architecture(path: str | Path) -> dict:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (OSError, SafetensorError) as e:
        raise ModelError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    if ARCH_KEY not in meta:
        raise ModelError(f"{path}: no architecture description in its metadata")
    return json.loads(meta[ARCH_KEY])


def load_checkpoint(path: str | Path, spec: Any | None = None) -> tuple[nn.Module, dict]:
    """Build the model (from ``spec``, else from the file's own description) and load weights."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    arch = read_architecture(path)
    if spec is not None:
        arch = {**arch, "model": spec.model_dump(mode="json")}
    try:
        spec = TypeAdapter(model_spec_type()).validate_python(arch["model"])
    except ValidationError as e:
        raise ModelError(f"{path}: bad architecture description: {e.errors()[0]['msg']}") from None
    model = build_model(spec, tuple(arch["input_shape"]), arch["num_classes"])
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not match {arch['model']}: {e}") from None
    return model.eval(), arch
