"""The codes file of a quantized model: for every quantized tensor its codes, per-bucket α and
β, levels and shape, in safetensors. The packed ONNX artifact is written from it, so the
artifact holds exactly the grid the model was trained on."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from compress.atomic import write_with
from compress.quant.functions import Quantized


def save_codes(path: Path, codes: dict[str, Quantized]) -> None:
    tensors, shapes = {}, {}
    for name, q in codes.items():
        tensors[f"{name}.codes"] = q.codes.to(torch.uint8).contiguous()  # (n_buckets, k)
        tensors[f"{name}.alpha"] = q.alpha.flatten().float().contiguous()  # (n_buckets,)
        tensors[f"{name}.beta"] = q.beta.flatten().float().contiguous()  # (n_buckets,)
        tensors[f"{name}.levels"] = q.levels.detach().float().contiguous()  # (s,)
        shapes[name] = list(q.shape)
    meta = {"shapes": json.dumps(shapes)}
    write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_codes(path: Path) -> dict[str, Quantized]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        shapes = json.loads(f.metadata()["shapes"])
    tensors = load_file(str(path))
    return {name: Quantized(tensors[f"{name}.codes"].long(), tensors[f"{name}.alpha"][:, None],
                            tensors[f"{name}.beta"][:, None], tensors[f"{name}.levels"],
                            tuple(shape))
            for name, shape in shapes.items()}  # fmt: skip
