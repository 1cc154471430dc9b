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


def _first_line(e: BaseException) -> str:
    """An exception as one line: its type, and the first line of its message."""
    text = (str(e).strip().splitlines() or [""])[0]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _one_line(e: CompressError) -> CompressError:
    """The same error, its message cut to its first line (the CLI prints one line)."""
    lines = str(e).strip().splitlines()
    return e if len(lines) <= 1 else CompressError(lines[0])


def _read_inputs(path: Path) -> np.ndarray:
    """Model-ready inputs from an .npy (or the one array of an .npz), never unpickled; a file
    that is neither is one line naming it."""
    from compress.data.files import _read_array

    x = _read_array(path, None, "inputs")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise CompressError(f"{path}: inputs have dtype {x.dtype}; expected numbers")
    if x.ndim == 0 or x.size == 0:
        raise CompressError(f"{path}: holds no inputs (shape {list(x.shape)})")
    return x


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
        x = _read_inputs(npy)[:batch]
        return {info.signature.input_names[0]: x.astype(np.float32)}, f"{len(x)} inputs of {npy}"
    if recipe is not None:
        from compress.data import load_splits
        from compress.recipe import load_recipe

        r, _ = load_recipe(recipe)
        splits = load_splits(r, Path("runs") / r.name, smoke=False)
        rows = np.arange(min(batch, len(splits.test)))
        return splits.task.batch(splits.test.x, rows), f"{len(rows)} test examples of {r.name}"
    return _noise(info, batch), "uniform noise"


def _checkpoint_file(path: Path) -> None:
    if not path.is_file():
        raise CompressError(f"{path}: checkpoint not found" if not path.exists() else
                            f"{path}: not a file")  # fmt: skip


def _architecture(path: Path) -> dict | None:
    """The architecture description in a checkpoint's metadata, checked step by step so that
    any fault (not safetensors, metadata that is not JSON, a description that does not
    validate) is one line naming the file; None when it has none."""
    import json

    from pydantic import TypeAdapter, ValidationError
    from safetensors import safe_open

    from compress.models.checkpoint import ARCH_KEY, task_info
    from compress.models.zoo import ARCHS, model_spec

    _checkpoint_file(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:  # safetensors' own errors, OSError
        raise CompressError(f"{path}: not a readable safetensors checkpoint "
                            f"({_first_line(e)})") from None  # fmt: skip
    if ARCH_KEY not in meta:
        return None
    try:
        arch = json.loads(meta[ARCH_KEY])
    except json.JSONDecodeError as e:
        raise CompressError(f"{path}: its {ARCH_KEY} metadata is not valid JSON ({e})") from None
    if not isinstance(arch, dict):
        raise CompressError(f"{path}: its {ARCH_KEY} metadata is not a JSON object")
    model = arch.get("model")
    if not isinstance(model, dict):
        raise CompressError(f"{path}: its architecture description has no 'model' object")
    if not {"python", "hf"} & set(model) and "arch" in model and str(model["arch"]) not in ARCHS:
        raise CompressError(f"{path}: its architecture description names an unknown "
                            f"architecture {model['arch']!r}; known: "
                            f"{', '.join(ARCHS.names())}")  # fmt: skip
    try:
        TypeAdapter(model_spec()).validate_python(model)
    except ValidationError as e:
        err = e.errors()[0]
        tag = next((model[k] for k in ("python", "hf") if k in model), model.get("arch"))
        loc = [str(p) for p in err["loc"] if p != tag]  # pydantic's union tag is no key
        raise CompressError(f"{path}: its architecture description is invalid at "
                            f"{'.'.join(['model', *loc])}: {err['msg']}") from None  # fmt: skip
    try:
        task_info(arch)
    except Exception as e:  # a description written by something else
        raise CompressError(f"{path}: its architecture description has no valid task "
                            f"({_first_line(e)})") from None  # fmt: skip
    return arch


def _user_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(model, TaskInfo) from a checkpoint of ours, or a user's builder and input shape."""
    from compress.models.checkpoint import load_checkpoint, load_weights

    if args.builder is None:
        if args.checkpoint is None:
            raise CompressError("give a checkpoint, or --builder module:function --input-shape")
        if _architecture(args.checkpoint) is not None:
            try:
                return load_checkpoint(args.checkpoint)
            except CompressError as e:
                raise _one_line(e) from None
            except Exception as e:  # weights that do not load into the described model
                raise CompressError(f"{args.checkpoint}: cannot load it: "
                                    f"{_first_line(e)}") from None  # fmt: skip
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
        _checkpoint_file(args.checkpoint)
        try:
            load_weights(model, args.checkpoint)
        except CompressError as e:
            raise _one_line(e) from None
        except Exception as e:  # not safetensors, or tensors that do not load
            raise CompressError(f"{args.checkpoint}: cannot load its weights: "
                                f"{_first_line(e)}") from None  # fmt: skip
    return model.eval(), info


def _export(args: argparse.Namespace) -> int:
    from compress.export.fp32 import export_checked

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
    path = args.artifact
    if not path.is_file():
        raise CompressError(f"{path}: ONNX file not found" if not path.exists() else
                            f"{path}: not a file")  # fmt: skip
    if any(b < 1 for b in args.batch_sizes):
        raise CompressError(f"{path}: batch sizes must be >= 1, got {args.batch_sizes}")
    try:
        session = OrtModel(path)
    except Exception as e:  # onnxruntime's own errors: not protobuf, not a valid graph, ...
        raise CompressError(f"{path}: not an ONNX model onnxruntime can load "
                            f"({_first_line(e)})") from None  # fmt: skip
    from_recipe = "profile it from a recipe (its profile stage makes real batches)"
    if len(session.input_names) != 1:
        raise CompressError(f"{path}: takes {len(session.input_names)} inputs; {from_recipe}")
    name = session.input_names[0]
    kind = session.session.get_inputs()[0].type  # e.g. 'tensor(float)'
    if kind != "tensor(float)":
        dtype = kind.removeprefix("tensor(").removesuffix(")")
        raise CompressError(f"{path}: its input {name!r} takes {dtype}, and `compress profile` "
                            f"times float32 inputs; {from_recipe}")  # fmt: skip
    dims = session.input_shapes[name][1:]
    if not all(isinstance(d, int) and d > 0 for d in dims):
        raise CompressError(f"{path}: input {name!r} has the shape {['batch', *dims]}: "
                            f"only the batch may vary; {from_recipe}")  # fmt: skip
    shape = [int(d) for d in dims]
    given = None if args.inputs is None else _read_inputs(args.inputs).astype(np.float32)
    settings = TimingSettings(args.warmup, args.iterations, args.max_seconds, args.cv_threshold)
    for batch in args.batch_sizes:
        x = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
        if given is not None:
            x = np.resize(given, (batch, *shape))
        try:
            r = target.profile(path, path.stem, {name: x}, settings)
        except Exception as e:  # the model refuses the batch (a fixed batch size, ...)
            raise CompressError(f"{path}: running it on a batch of {batch} failed "
                                f"({_first_line(e)})") from None  # fmt: skip
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
