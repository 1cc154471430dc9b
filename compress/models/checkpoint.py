"""Checkpoints: safetensors weights with the architecture description in the file's metadata.

The description (``{"model": spec, "task": TaskInfo}``) is also written beside the weights as
JSON for people to read. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from compress.atomic import write_json, write_with
from compress.errors import ModelError
from compress.models.zoo import build_model, model_spec
from compress.tasks import TaskInfo

ARCH_KEY = "edge_compress.architecture"


def architecture(spec: Any, info: TaskInfo) -> dict:
    """What rebuilds the model: its spec and task; for an ``hf:`` model also the folder's
    config.json, so the checkpoint rebuilds without the folder (on another machine, or after
    the folder changed) and without reading the folder's weights only to replace them."""
    from compress.models.hf import HFModelSpec, read_config

    arch = {"model": spec.model_dump(mode="json"), "task": info.to_json()}
    if isinstance(spec, HFModelSpec):
        arch["hf_config"] = read_config(spec.hf)
    return arch


def task_info(arch: dict) -> TaskInfo:
    """The task a checkpoint was made for; descriptions written before tasks existed held an
    image classifier's input shape and class count."""
    if "task" in arch:
        return TaskInfo.from_json(arch["task"])
    from compress.tasks.classification import ImageClassification, ImageClassificationConfig

    task = ImageClassification(ImageClassificationConfig(name="image-classification"))
    return task.info([str(i) for i in range(arch["num_classes"])], tuple(arch["input_shape"]))


def save_checkpoint(path: str | Path, model: nn.Module, arch: dict) -> None:
    """Write ``path`` (safetensors) and ``path`` with suffix ``.json`` (the description)."""
    path = Path(path)
    # contiguous clones: safetensors refuses tensors that share storage.
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {ARCH_KEY: json.dumps(arch)}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))
    write_json(path.with_suffix(".json"), arch)


def read_architecture(path: str | Path) -> dict | None:
    """The description in the file's metadata; None for a plain state dict saved elsewhere."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (OSError, SafetensorError) as e:
        raise ModelError(f"{path}: not a readable safetensors checkpoint ({e})") from None
    return json.loads(meta[ARCH_KEY]) if ARCH_KEY in meta else None


def weights_mismatch(model: nn.Module, path: str | Path) -> str | None:
    """How the file's tensors differ from the model's (names, shapes); None when they fit.
    Reads only the header, so recipes are checked before anything runs."""
    with safe_open(str(path), framework="pt") as f:
        stored = {name: list(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    wanted = {name: list(t.shape) for name, t in model.state_dict().items()}
    problems = [f"missing {n}" for n in wanted if n not in stored]
    problems += [f"unexpected {n}" for n in stored if n not in wanted]
    problems += [f"{n}: file {stored[n]} vs model {wanted[n]}"
                 for n in wanted if n in stored and stored[n] != wanted[n]]  # fmt: skip
    if not problems:
        return None
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return "weights do not fit the architecture: " + "; ".join(problems[:3]) + more


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    if problem := weights_mismatch(model, path):
        raise ModelError(f"{path}: {problem}")
    tensors = load_file(str(path))
    if problem := non_finite(tensors):
        raise ModelError(f"{path}: {problem}")
    model.load_state_dict(tensors)
    return model.eval()


def non_finite(tensors: dict[str, Any]) -> str | None:
    """Which tensors hold NaN or infinite values (a model trained from them would be NaN)."""
    bad = [n for n, t in tensors.items() if t.is_floating_point() and not t.isfinite().all()]
    if not bad:
        return None
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    return f"tensor {bad[0]} holds NaN or infinite values{more}"


def load_checkpoint(path: str | Path) -> tuple[nn.Module, TaskInfo]:
    """Build the model from the file's own description and load its weights."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    arch = read_architecture(path)
    if arch is None:
        raise ModelError(f"{path}: no architecture description in its metadata")
    try:
        spec = TypeAdapter(model_spec()).validate_python(arch["model"])
        info = task_info(arch)
    except (ValidationError, KeyError) as e:
        raise ModelError(f"{path}: bad architecture description: {e}") from None
    try:
        model = _rebuild(spec, info, arch)
    except ModelError as e:
        raise ModelError(f"{path}: {e}") from None
    return load_weights(model, path), info


def _rebuild(spec: Any, info: TaskInfo, arch: dict) -> nn.Module:
    """The untrained model the checkpoint's weights go into."""
    from compress.models.hf import HFModelSpec, build_hf

    if isinstance(spec, HFModelSpec) and "hf_config" in arch:
        model = build_hf(spec, info, stored_config=arch["hf_config"])
    else:
        model = build_model(spec, info)
    if "quantization" in arch:  # layers a quantization method swapped in (brevitas)
        from compress.quant.brevitas_layers import rebuild

        model = rebuild(model, arch["quantization"])
    return model
