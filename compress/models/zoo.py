"""Architecture registry and the one place models are built.

Each architecture registers a spec (its recipe section, a pydantic model with ``arch`` as a
literal) and a builder ``(spec, info: TaskInfo) -> nn.Module``. A user's own builder is reached
with ``python: package.module:function`` (it runs the user's code, like a build file) and is
called as ``fn(info, **kwargs)``. A model takes the task's inputs positionally, in the
signature's order, and may return a tensor, a tuple, a dict or a ``transformers`` ModelOutput.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

import numpy as np
import torch
from pydantic import Discriminator, Field, Tag
from torch import nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.registry import Registry
from compress.tasks import TASKS, TaskInfo
from compress.tasks.signature import dummy_inputs

Builder = Callable[[Any, TaskInfo], nn.Module]


@dataclass(frozen=True)
class Architecture:
    spec: type[StrictModel]
    build: Builder


ARCHS: Registry[Architecture] = Registry("architecture")


def register_arch(name: str, spec: type[StrictModel]) -> Callable[[Builder], Builder]:
    def add(build: Builder) -> Builder:
        ARCHS.register(name)(Architecture(spec, build))
        return build

    return add


class PythonModelSpec(StrictModel):
    """A user's builder function; it is called as ``fn(info, **kwargs)`` where ``info`` holds
    the task's signature, ``num_classes``, ``input_shape`` (images) or ``vocab_size`` (text)."""

    python: str = Field(
        description="'package.module:function' returning a torch.nn.Module", pattern=r"^[\w.]+:\w+$"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for it.")


def _spec_tag(value: Any) -> str | None:
    """``python`` and ``hf`` are keys of their own; zoo architectures say ``arch: NAME``."""
    from compress.models.hf import HFModelSpec

    if isinstance(value, dict):
        return next((k for k in ("python", "hf") if k in value), None) or value.get("arch")
    if isinstance(value, HFModelSpec):
        return "hf"
    return "python" if isinstance(value, PythonModelSpec) else getattr(value, "arch", None)


@functools.cache
def model_spec() -> Any:
    """The discriminated union of every registered spec. Built once, after plugins registered
    their architectures; a later registration is refused (it would be missing from recipes)."""
    from compress.models.hf import HFModelSpec

    ARCHS.freeze("the recipe schema")
    members = [Annotated[a.spec, Tag(name)] for name, a in ARCHS.items()]
    members.append(Annotated[PythonModelSpec, Tag("python")])
    members.append(Annotated[HFModelSpec, Tag("hf")])
    return Annotated[Union[tuple(members)], Discriminator(_spec_tag)]  # noqa: UP007  (run-time union)


def _build_python(spec: PythonModelSpec, info: TaskInfo) -> nn.Module:
    """Import the user's module and call its builder. Whatever their code raises (on import,
    a syntax error, in the call) is a ModelError of one line naming their file, line and
    function, and the exception's first line; the caller locates it in the recipe."""
    import os
    import sysconfig
    import traceback
    from pathlib import Path

    module_name, func_name = spec.python.split(":")
    lib = sysconfig.get_paths()  # the standard library, installed packages, and ours
    ours = tuple({os.path.join(p, "") for p in (lib["stdlib"], lib["platstdlib"], lib["purelib"],
                  lib["platlib"], str(Path(__file__).resolve().parents[1]))})  # fmt: skip

    def failure(e: BaseException) -> str:
        """``Type: first line (at FILE:LINE in FUNCTION)``: the innermost frame of the user's
        code (not the standard library's, an installed package's or ours)."""
        text = (e.msg if isinstance(e, SyntaxError) else str(e)).strip()
        text = (text.splitlines() or [""])[0]
        what = f"{type(e).__name__}: {text}" if text else type(e).__name__
        frames = [(f.f_code.co_filename, line, f.f_code.co_name)
                  for f, line in traceback.walk_tb(e.__traceback__)]  # fmt: skip
        theirs = [f for f in frames if not f[0].startswith(("<", *ours))]
        if isinstance(e, SyntaxError) and e.filename:
            theirs = [(e.filename, e.lineno, "<module>")]
        if not theirs:
            return what
        file, line, function = theirs[-1]
        return f"{what} (at {file}:{line} in {function})"

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name + ".").startswith(e.name + "."):  # the module itself is absent
            raise ModelError(f"cannot import model builder {spec.python!r}: {e}") from None
        raise ModelError(f"cannot import model builder {spec.python!r}: {failure(e)}") from None
    except Exception as e:  # the user's module: a syntax error, or anything its import raises
        raise ModelError(f"cannot import model builder {spec.python!r}: {failure(e)}") from None
    func = getattr(module, func_name, None)
    if func is None:
        raise ModelError(f"cannot import model builder {spec.python!r}: module {module_name!r} "
                         f"({getattr(module, '__file__', None) or 'no file'}) has no attribute "
                         f"{func_name!r}")  # fmt: skip
    try:
        model = func(info, **spec.kwargs)
    except Exception as e:  # the user's code: any failure is a model error, located by caller
        hint = (" (builders are called as fn(info, **kwargs); info has num_classes, input_shape, "
                "vocab_size, signature)") if isinstance(e, TypeError) else ""  # fmt: skip
        raise ModelError(f"{spec.python}(info, **kwargs) raised {failure(e)}{hint}") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec.python} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_model(spec: Any, info: TaskInfo) -> nn.Module:
    """Build and check that the model maps the task's inputs to ``(b, num_classes)`` scores."""
    from compress.models.hf import HFModelSpec, build_hf

    if isinstance(spec, PythonModelSpec):
        model = _build_python(spec, info)
    elif isinstance(spec, HFModelSpec):
        model = build_hf(spec, info)
    else:
        try:
            model = ARCHS.get(spec.arch).build(spec, info)
        except ModelError as e:
            raise ModelError(f"{spec.arch} does not fit {describe_inputs(info)}: {e}") from None
        except Exception as e:  # a plugin's builder: any failure is a model error, one line
            raise ModelError(f"building {spec.arch} raised {type(e).__name__}: {e}") from None
    check_outputs(model, info, describe(spec))
    return model


def image_shape(info: TaskInfo) -> tuple[int, ...]:
    """(c, h, w) for an image architecture; a text task is a misfit, said plainly."""
    if len(info.input_shape) != 3:
        raise ModelError(f"an image architecture needs (c, h, w) image inputs; the task "
                         f"{info.task} has {describe_inputs(info)}")  # fmt: skip
    return info.input_shape


def describe(spec: Any) -> str:
    """The model's name in reports and messages: the arch, the builder, or ``hf:FOLDER``."""
    if isinstance(spec, PythonModelSpec):
        return spec.python
    hf_folder = getattr(spec, "hf", None)
    return f"hf:{hf_folder.name}" if hf_folder is not None else spec.arch


def describe_inputs(info: TaskInfo) -> str:
    return ", ".join(f"{s.name} {s.dtype} {s.shape}" for s in info.signature.inputs)


def as_tensors(inputs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in inputs.items()}


def call_model(model: nn.Module, info: TaskInfo, inputs: dict[str, torch.Tensor]) -> Any:
    """The model's raw output for inputs by name, passed in the signature's order."""
    return model(*[inputs[name] for name in info.signature.input_names])


def scores(model: nn.Module, info: TaskInfo, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the task reads from the model's output (the logits)."""
    return TASKS.get(info.task).scores_of(call_model(model, info, inputs))


def check_outputs(model: nn.Module, info: TaskInfo, name: str) -> None:
    """One forward pass of dummy inputs: the model must map them to ``(2, num_classes)``
    scores. Whatever the forward raises is a ModelError of one line; for a user's model it
    names the file, line and function of their code that failed."""
    import os
    import sysconfig
    import traceback
    from pathlib import Path

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            # the longest sequence the task makes: a model that takes fewer tokens fails here
            inputs = dummy_inputs(info.signature, batch=2, length=info.max_length or 8)
            out = scores(model, info, as_tensors(inputs))
    except ModelError:
        raise
    except Exception as e:  # the model's forward, maybe a user's: one line, never a traceback
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        lib = sysconfig.get_paths()  # the standard library, installed packages, and ours
        ours = tuple({os.path.join(p, "") for p in (lib["stdlib"], lib["platstdlib"],
                      lib["purelib"], lib["platlib"],
                      str(Path(__file__).resolve().parents[1]))})  # fmt: skip
        theirs = [(f.f_code.co_filename, line, f.f_code.co_name)
                  for f, line in traceback.walk_tb(e.__traceback__)
                  if not f.f_code.co_filename.startswith(("<", *ours))]  # fmt: skip
        where = f" (at {theirs[-1][0]}:{theirs[-1][1]} in {theirs[-1][2]})" if theirs else ""
        if isinstance(e, RuntimeError | TypeError | ValueError | IndexError):  # shapes, dtypes
            raise ModelError(f"{name} does not fit {describe_inputs(info)}: {first_line}"
                             f"{where}") from None  # fmt: skip
        what = f"{type(e).__name__}: {first_line}" if str(e).strip() else type(e).__name__
        raise ModelError(f"{name} fails on {describe_inputs(info)}: {what}{where}") from None
    finally:
        model.train(was_training)
    expected = TASKS.get(info.task).scores_shape(info, 2, info.max_length or 8)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != expected:
        got = list(out.shape[1:]) if isinstance(out, torch.Tensor) else type(out).__name__
        want = (f"{info.num_classes} class logits" if len(expected) == 2
                else f"scores of shape {list(expected[1:])}")  # fmt: skip
        raise ModelError(f"{name} maps {describe_inputs(info)} to {got}, expected {want}")


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, info: TaskInfo) -> int:
    """FLOPs of one sample's forward pass by torch's own counter: convolutions and matrix
    products, a multiply-add counting 2; elementwise ops (BatchNorm, ReLU, pooling) not counted.
    Text models are counted on a sequence of ``max_length`` tokens. A module with an
    ``extra_flops(inputs, output) -> int`` method adds the FLOPs of work the counter does not
    see (elementwise arithmetic such as a selective scan) on each call."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    extra: list[int] = []  # one count per call of a module that counts itself
    hooks = [m.register_forward_hook(lambda mod, i, o: extra.append(mod.extra_flops(i, o)))
             for m in model.modules() if callable(getattr(m, "extra_flops", None))]  # fmt: skip
    inputs = as_tensors(dummy_inputs(info.signature, batch=1, length=info.max_length or 8))
    try:
        with torch.no_grad(), counter:
            call_model(model, info, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    model.train(was_training)
    return int(counter.get_total_flops()) + sum(extra)
