"""Architecture registry and the one place models are built.

Each architecture registers a spec (its recipe section, a pydantic model with ``arch`` as a
literal) and a builder ``(spec, input_shape, num_classes) -> nn.Module``. A user's own builder is
reached with ``python: package.module:function`` (it runs the user's code, like a build file).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

import torch
from pydantic import Discriminator, Field, Tag
from torch import nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.registry import Registry

Builder = Callable[[Any, tuple[int, ...], int], nn.Module]


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
    """A user's builder function; it is called as ``fn(input_shape, num_classes, **kwargs)``."""

    python: str = Field(
        description="'package.module:function' returning a torch.nn.Module", pattern=r"^[\w.]+:\w+$"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for it.")


def _spec_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "python" if "python" in value else value.get("arch")
    return "python" if isinstance(value, PythonModelSpec) else getattr(value, "arch", None)


def model_spec_type() -> Any:
    """The discriminated union of every registered spec (built after all archs registered)."""
    members = [Annotated[a.spec, Tag(name)] for name, a in ARCHS.items()]
    members.append(Annotated[PythonModelSpec, Tag("python")])
    return Annotated[Union[tuple(members)], Discriminator(_spec_tag)]  # noqa: UP007  (run-time union)


def _build_python(spec: PythonModelSpec, input_shape: tuple[int, ...], classes: int) -> nn.Module:
    module_name, func_name = spec.python.split(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as e:
        raise ModelError(f"cannot import model builder {spec.python!r}: {e}") from None
    model = func(input_shape, classes, **spec.kwargs)
    if not isinstance(model, nn.Module):
        raise ModelError(f"{spec.python} returned {type(model).__name__}, not a torch.nn.Module")
    return model


def build_model(spec: Any, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """Build and check that the model maps ``(b, *input_shape)`` to ``(b, num_classes)``."""
    if isinstance(spec, PythonModelSpec):
        model = _build_python(spec, input_shape, num_classes)
    else:
        try:
            model = ARCHS.get(spec.arch).build(spec, tuple(input_shape), num_classes)
        except ModelError as e:
            message = f"{spec.arch} does not fit inputs of shape {list(input_shape)}: {e}"
            raise ModelError(message) from None
    check_shapes(model, input_shape, num_classes, describe(spec))
    return model


def describe(spec: Any) -> str:
    return spec.python if isinstance(spec, PythonModelSpec) else spec.arch


def check_shapes(model: nn.Module, input_shape: tuple[int, ...], classes: int, name: str) -> None:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(2, *input_shape))
    except RuntimeError as e:
        first_line = str(e).strip().splitlines()[0]
        raise ModelError(
            f"{name} does not fit inputs of shape {list(input_shape)}: {first_line}"
        ) from None
    finally:
        model.train(was_training)
    if tuple(out.shape) != (2, classes):
        raise ModelError(
            f"{name} maps inputs {list(input_shape)} to {list(out.shape[1:])}, "
            f"expected {classes} class logits"
        )


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one sample's forward pass by torch's own counter: convolutions and matrix
    products, a multiply-add counting 2; elementwise ops (BatchNorm, ReLU, pooling) not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(counter.get_total_flops())
