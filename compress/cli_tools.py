"""``compress export`` and ``compress profile``: single steps on a given checkpoint or artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def _inputs(input_shape: list[int], batch: int, dataset: str | None) -> tuple[np.ndarray, str]:
    """Real samples when a data set is named, else uniform noise in [0, 1] (and say so)."""
    if dataset:
        from compress.data import load_splits

        x = load_splits(dataset, 0.1, 0).test_x[:batch].numpy()
        return x, f"{len(x)} test samples of {dataset}"
    rng = np.random.default_rng(0)
    return rng.random((batch, *input_shape), dtype=np.float32), "uniform noise in [0, 1]"


def _export(args: argparse.Namespace) -> int:
    import torch

    from compress.export.checked import export_checked
    from compress.models.checkpoint import load_checkpoint

    model, arch = load_checkpoint(args.checkpoint)
    x, what = _inputs(arch["input_shape"], 64, args.dataset)
    out = args.out or args.checkpoint.with_suffix(".onnx")
    parity = export_checked(model, torch.from_numpy(x), out, args.opset, args.atol, args.rtol)
    print(f"{out}: parity on {what}: max abs {parity['max_abs_error']:.3g}, "
          f"max rel {parity['max_rel_error']:.3g}")  # fmt: skip
    return 0


def _profile(args: argparse.Namespace) -> int:
    from compress.devices.targets import TARGETS, TimingSettings
    from compress.errors import CompressError
    from compress.runtime import OrtModel

    target = TARGETS.get(args.target)()
    found = target.availability()
    if not found.present:
        raise CompressError(f"target {args.target} is absent here: {found.detail}")
    shape = [int(d) for d in OrtModel(args.artifact).input_shape[1:]]
    settings = TimingSettings(args.warmup, args.iterations, args.max_seconds, args.cv_threshold)
    for batch in args.batch_sizes:
        x, what = _inputs(shape, batch, args.dataset)
        r = target.profile(args.artifact, args.artifact.stem, x, settings)
        flag = "  UNSTABLE" if r.unstable else ""
        print(f"{args.target} batch {batch:4}: median {r.median_ms:.4f} ms  p90 {r.p90_ms:.4f}  "
              f"p99 {r.p99_ms:.4f}  cv {r.cv:.3f}  {r.throughput_per_s:,.0f}/s  "
              f"load {r.load_ms:.1f} ms  first {r.first_inference_ms:.2f} ms{flag}")  # fmt: skip
        if args.json:
            from compress.atomic import write_json

            write_json(args.json.with_suffix(f".b{batch}.json"), r.model_dump())
    return 0


def add_tool_commands(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a safetensors checkpoint to ONNX")
    export.add_argument("checkpoint", type=Path)
    export.add_argument("--out", type=Path, help="ONNX file (default: beside the checkpoint)")
    export.add_argument("--dataset", help="check parity on this data set's test samples")
    export.add_argument("--opset", type=int, default=20)
    export.add_argument("--atol", type=float, default=1e-4)
    export.add_argument("--rtol", type=float, default=1e-3)
    export.set_defaults(func=_export)
    profile = sub.add_parser("profile", help="time an ONNX artifact on a target")
    profile.add_argument("artifact", type=Path)
    profile.add_argument("--target", default="cpu-ort")
    profile.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    profile.add_argument("--dataset", help="time on this data set's test samples")
    profile.add_argument("--warmup", type=int, default=20)
    profile.add_argument("--iterations", type=int, default=200)
    profile.add_argument("--max-seconds", type=float, default=20.0)
    profile.add_argument("--cv-threshold", type=float, default=0.15)
    profile.add_argument("--json", type=Path, help="also write records: PATH.b<batch>.json")
    profile.set_defaults(func=_profile)
