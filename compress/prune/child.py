"""The ``n2n-child`` architecture: a child network described by its teacher's layer sequence
and the plan that made it, so a checkpoint rebuilds from JSON (no pickled modules); and which
kind of child a teacher gets (the project's surgery where it reads the teacher, Torch-Pruning's
``tp-child`` otherwise)."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import Field
from torch import nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.models.zoo import image_shape, register_arch
from compress.prune.layers import LayerSpec
from compress.prune.surgery import Plan, apply_plan, architecture_hash, build_layers, surgery_layers
from compress.prune.tp_surgery import TPChildMaker
from compress.tasks import TaskInfo

# A small default (the zoo's contract builds every architecture from its defaults).
_DEFAULT_TEACHER = [
    LayerSpec(kind="conv", kernel=3, padding=1, out=16, bn=True, relu=True),
    LayerSpec(kind="conv", kernel=3, padding=1, out=16, bn=True, relu=True),
    LayerSpec(kind="maxpool", kernel=2, stride=2),
    LayerSpec(kind="flatten"),
    LayerSpec(kind="linear", bias=True),
]


class N2NChildSpec(StrictModel):
    """A network N2N made: the teacher's layers with ``plan`` applied (layers removed, widths
    shrunk, never under ``floor``)."""

    arch: Literal["n2n-child"] = Field(description="Architecture name.")
    teacher: list[LayerSpec] = Field(default_factory=lambda: list(_DEFAULT_TEACHER),
                                     min_length=1, max_length=4096,
                                     description="The teacher's layer sequence.")  # fmt: skip
    plan: Plan | None = Field(None, description="Kept layers and shrink factors (none: the "
                              "teacher's own layers).")  # fmt: skip
    floor: int = Field(10, ge=1, le=65536, description="No width is shrunk under this.")

    def layers(self) -> list[LayerSpec]:
        plan = self.plan or Plan.identity(len(self.teacher))
        return apply_plan(self.teacher, plan, self.floor)


@register_arch("n2n-child", N2NChildSpec)
def n2n_child(spec: N2NChildSpec, info: TaskInfo) -> nn.Module:
    return build_layers(spec.layers(), image_shape(info), info.num_classes)


class ChildMaker(Protocol):
    """What the search needs to make children of one teacher."""

    layers: list[LayerSpec]  # what the policies read
    removal: bool  # whether stage 1 (layer removal) applies

    def spec(self, plan: Plan) -> Any:
        """The child's architecture spec (JSON-able, a registered architecture)."""

    def key(self, spec: Any, extra: dict | None) -> str:
        """The child cache's key."""


class SurgeryChildMaker:
    """Children by the project's own surgery (flat networks of the zoo's blocks)."""

    removal = True

    def __init__(self, layers: list[LayerSpec], floor: int) -> None:
        self.layers, self.floor = layers, floor

    def spec(self, plan: Plan) -> N2NChildSpec:
        return N2NChildSpec(arch="n2n-child", teacher=self.layers, plan=plan, floor=self.floor)

    def key(self, spec: Any, extra: dict | None) -> str:
        return architecture_hash(spec.layers(), extra)


def child_maker(teacher: nn.Module, teacher_spec: dict, info: TaskInfo,
                floor: int) -> ChildMaker:  # fmt: skip
    """The project's surgery where it reads the teacher; Torch-Pruning's dependency graph
    otherwise. ModelError (saying why each does not apply) when neither does."""
    try:
        return SurgeryChildMaker(surgery_layers(teacher, info.input_shape, info.num_classes), floor)
    except ModelError as own:
        try:
            return TPChildMaker(teacher, teacher_spec, info, floor)
        except ModelError as tp:
            raise ModelError(f"{own}; and {tp}") from None
