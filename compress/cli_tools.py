"""``compress export`` and ``compress profile``: single steps on a given model or artifact.

``compress export`` takes the tool's own checkpoints, or a user's model: a python builder (plus
safetensors weights if the builder does not load its own) and the task's inputs. Parity runs on
real inputs when given (an ``.npy`` file, or a recipe's data), else on uniform noise, and says
which.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError


def _noise(info: Any, batch: int) -> dict[str, np.ndarray]:
    from compress.tasks.signature import dummy_inputs

    rng = np.random.default_rng(0)
    out = {}
    for name, a in dummy_inputs(info.signature, batch=batch).items():
        out[name] = (rng.random(a.shape, dtype=np.float32) if a.dtype == np.float32
                     else rng.integers(1, max(2, info.vocab_size or 2), a.shape))  # fmt: skip
    return out


def parity_inputs(info: Any, batch: int, npy: Path | None, recipe: Path | None,
                  ) -> tuple[dict[str, np.ndarray], str]:  # fmt: skip
    """Real inputs when the user gives them (an .npy of model-ready inputs, or a recipe whose
    data's test split is used), else uniform noise — and a description of which."""
    if npy is not None:
        from compress.data.files import load_arrays

        x = np.load(npy, allow_pickle=False)[:batch] if npy.suffix == ".npy" else \
            load_arrays(npy, None, None, None)[0][:batch]  # fmt: skip
        return {info.signature.input_names[0]: x.astype(np.float32)}, f"{len(x)} inputs of {npy}"
    if recipe is not None:
        from compress.data import load_splits
        from compress.recipe import load_recipe

        r, _ = load_recipe(recipe)
        splits = load_splits(r, Path("runs") / r.name, smoke=False)
        rows = np.arange(min(batch, len(splits.test)))
        return splits.task.batch(splits.test.x, rows), f"{len(rows)} test examples of {r.name}"
    return _noise(info, batch), "uniform noise"


def _user_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(model, TaskInfo) from a checkpoint of ours, or a user's builder and input shape."""
    from compress.models.checkpoint import load_checkpoint, load_weights, read_architecture

    if args.builder is None:
        if args.checkpoint is None:
            raise CompressError("give a checkpoint, or --builder module:function --input-shape")
        if read_architecture(args.checkpoint) is not None:
            return load_checkpoint(args.checkpoint)
        raise CompressError(f"{args.checkpoint} has no architecture description: give "
                            "--builder and --input-shape (and --classes)")  # fmt: skip
    from compress.models.zoo import PythonModelSpec, build_model
    from compress.plugins import add_recipe_folder
    from compress.tasks.classification import ImageClassification, ImageClassificationConfig

    add_recipe_folder(Path.cwd())
    task = ImageClassification(ImageClassificationConfig(name="image-classification"))
    info = task.info([str(i) for i in range(args.classes)], tuple(args.input_shape))
    model = build_model(PythonModelSpec(python=args.builder), info)
    if args.checkpoint is not None:
        load_weights(model, args.checkpoint)
    return model.eval(), info


def _export(args: argparse.Namespace) -> int:
    from compress.export.checked import export_checked

    model, info = _user_model(args)
    inputs, what = parity_inputs(info, 64, args.inputs, args.recipe)
    out = args.out or (args.checkpoint or Path(args.builder.split(":")[-1])).with_suffix(".onnx")
    parity = export_checked(model, info, inputs, out, args.opset, args.atol, args.rtol, what)
    print(f"{out}: parity on {what}: max abs {parity['max_abs_error']:.3g}, "
          f"max rel {parity['max_rel_error']:.3g}, top-1 agreement "
          f"{100 * parity['top1_agreement']:.2f}%")  # fmt: skip
    return 0


def _profile(args: argparse.Namespace) -> int:
    from compress.devices.targets import TARGETS, TimingSettings
    from compress.runtime import OrtModel

    target = TARGETS.get(args.target)()
    found = target.availability()
    if not found.present:
        raise CompressError(f"target {args.target} is absent here: {found.detail}")
    session = OrtModel(args.artifact)
    if len(session.input_names) != 1:
        raise CompressError(f"{args.artifact} takes {len(session.input_names)} inputs; profile "
                            "it from a recipe (its profile stage makes real batches)")  # fmt: skip
    name = session.input_names[0]
    shape = [int(d) for d in session.input_shapes[name][1:]]
    settings = TimingSettings(args.warmup, args.iterations, args.max_seconds, args.cv_threshold)
    for batch in args.batch_sizes:
        x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        if args.inputs is not None:
            x = np.resize(np.load(args.inputs, allow_pickle=False).astype(np.float32),
                          (batch, *shape))  # fmt: skip
        r = target.profile(args.artifact, args.artifact.stem, {name: x}, settings)
        flag = "  UNSTABLE" if r.unstable else ""
        print(f"{args.target} batch {batch:4}: median {r.median_ms:.4f} ms  p90 {r.p90_ms:.4f}  "
              f"p99 {r.p99_ms:.4f}  cv {r.cv:.3f}  {r.throughput_per_s:,.0f}/s  "
              f"load {r.load_ms:.1f} ms  first {r.first_inference_ms:.2f} ms{flag}")  # fmt: skip
        if args.json:
            from compress.atomic import write_json

            write_json(args.json.with_suffix(f".b{batch}.json"), r.model_dump())
    return 0


def add_tool_commands(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a model to ONNX and check parity")
    export.add_argument("checkpoint", type=Path, nargs="?", help="safetensors weights")
    export.add_argument("--builder", help="module:function building your model, fn(info)")
    export.add_argument("--input-shape", type=int, nargs="+", help="(c, h, w) with --builder")
    export.add_argument("--classes", type=int, default=10, help="classes, with --builder")
    export.add_argument("--out", type=Path, help="ONNX file (default: beside the checkpoint)")
    export.add_argument("--inputs", type=Path, help="check parity on these inputs (.npy/.npz)")
    export.add_argument("--recipe", type=Path, help="check parity on this recipe's test data")
    export.add_argument("--opset", type=int, default=20)
    export.add_argument("--atol", type=float, default=1e-4)
    export.add_argument("--rtol", type=float, default=1e-3)
    export.set_defaults(func=_export)
    profile = sub.add_parser("profile", help="time an ONNX artifact on a target")
    profile.add_argument("artifact", type=Path)
    profile.add_argument("--target", default="cpu-ort")
    profile.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    profile.add_argument("--inputs", type=Path, help="time on these inputs (.npy)")
    profile.add_argument("--warmup", type=int, default=20)
    profile.add_argument("--iterations", type=int, default=200)
    profile.add_argument("--max-seconds", type=float, default=20.0)
    profile.add_argument("--cv-threshold", type=float, default=0.15)
    profile.add_argument("--json", type=Path, help="also write records: PATH.b<batch>.json")
    profile.set_defaults(func=_profile)
