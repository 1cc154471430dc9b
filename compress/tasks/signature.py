"""A model's contract with the outside world: named inputs and outputs with dtypes and shapes whose
dynamic axes are named (Optimum's ``{name: {axis: "axis_name"}}``, Olive's io_config).

Torch-free: the device runtimes read the same description from an artifact's signature file.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Direction = Literal["higher", "lower"]


class TensorSpec(BaseModel):
    """One named input or output; a string in ``shape`` names a dynamic axis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Tensor name in the exported artifact.")
    dtype: Literal["float32", "int64"] = Field(description="Element type.")
    shape: list[int | str] = Field(description="Sizes; a string names a dynamic axis ('batch').")

    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def concrete(self, **sizes: int) -> list[int]:
        """The shape with every named axis replaced by ``sizes[name]``."""
        return [sizes[d] if isinstance(d, str) else d for d in self.shape]


class Signature(BaseModel):
    """All inputs (in the order the model takes them) and all outputs of a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[TensorSpec] = Field(description="Inputs, in the model's positional order.")
    outputs: list[TensorSpec] = Field(description="Outputs; the task reads the first.")

    @property
    def input_names(self) -> list[str]:
        return [s.name for s in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [s.name for s in self.outputs]


def dummy_inputs(signature: Signature, batch: int = 2, length: int = 8) -> dict[str, np.ndarray]:
    """Inputs of the signature's names, dtypes and shapes (dynamic axes: ``batch``, every other
    one ``length``); integer inputs are ones (a valid token id, an all-ones mask)."""
    out = {}
    for spec in signature.inputs:
        shape = [batch if d == "batch" else length if isinstance(d, str) else d for d in spec.shape]
        out[spec.name] = (np.ones(shape, np.int64) if spec.dtype == "int64"
                          else np.zeros(shape, np.float32))  # fmt: skip
    return out


class Metric(BaseModel):
    """A number a task measures: its name, unit and which direction is better."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Key in metric dicts, e.g. 'accuracy'.")
    unit: str = Field(description="Unit of the displayed value: '%', 'nats', ...")
    direction: Direction = Field(description="Whether higher or lower values are better.")
    scale: float = Field(1.0, description="Displayed value = stored value × scale (0–1 → %).")

    def display(self, value: float) -> float:
        return value * self.scale

    def drop(self, reference: float, value: float) -> float:
        """How much worse ``value`` is than ``reference``, in displayed units (> 0 = worse)."""
        worse = reference - value if self.direction == "higher" else value - reference
        return worse * self.scale
