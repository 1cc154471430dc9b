"""Mamba image classifiers (``arch: mamba``) and sums of them (``arch: mamba-ensemble``).

An image enters as a sequence: its rows (``sequence: rows``, h tokens of c·w values) or its
non-overlapping p×p patches (``sequence: patches``, (h/p)·(w/p) tokens of c·p·p values, row by
row). Tokens are embedded linearly, pass through pre-norm residual Mamba blocks, are averaged over
the sequence and mapped to class logits. An ensemble's logits are the sum of its members'
(progressive distillation trains them one after another, see compress/progressive/).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import Tensor, nn

from compress.config import StrictModel
from compress.errors import ModelError
from compress.models.mamba import MambaBlock
from compress.models.zoo import image_shape, register_arch
from compress.tasks import TaskInfo


class MambaSpec(StrictModel):
    """A Mamba student: an image as a sequence of rows or patches, Mamba blocks, mean pooling."""

    arch: Literal["mamba"] = Field(description="Architecture name.")
    d_model: int = Field(16, ge=1, le=4096, description="Width of the token embedding.")
    layers: int = Field(1, ge=1, le=64, description="Mamba blocks, each with a residual.")
    d_state: int = Field(16, ge=1, le=256, description="State size N per channel.")
    d_conv: int = Field(4, ge=1, le=16, description="Kernel of the causal depthwise conv.")
    expand: int = Field(2, ge=1, le=8, description="Inner width = expand × d_model.")
    sequence: Literal["rows", "patches"] = Field(
        "rows", description="Tokens: the image's rows, or its non-overlapping square patches."
    )
    patch: int = Field(7, ge=1, le=1024, description="Patch side (sequence: patches).")
    chunk: int = Field(
        8, ge=1, le=1024, description="Steps per chunk of the loop-free scan (memory grows with "
        "its square; the result does not depend on it).",
    )  # fmt: skip


def token_layout(spec: MambaSpec, shape: tuple[int, ...]) -> tuple[int, int]:
    """(sequence length, values per token) of (c, h, w) images; a ModelError when patches do
    not tile the image."""
    c, h, w = shape
    if spec.sequence == "rows":
        return h, c * w
    p = spec.patch
    if h % p or w % p:
        raise ModelError(f"{p}×{p} patches do not tile {h}×{w} images; choose a patch side "
                         f"that divides both, or sequence: rows")  # fmt: skip
    return (h // p) * (w // p), c * p * p


class Tokens(nn.Module):
    """(b, c, h, w) images → (b, l, values) token sequences."""

    def __init__(self, sequence: str, patch: int) -> None:
        super().__init__()
        self.sequence, self.patch = sequence, patch

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        if self.sequence == "rows":
            return x.permute(0, 2, 1, 3).reshape(b, h, c * w)  # (b, h, c·w)
        p = self.patch
        x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)  # (b, h/p, w/p, c,p,p)
        return x.reshape(b, (h // p) * (w // p), c * p * p)


class Residual(nn.Module):
    """h + block(norm(h)), as mamba-ssm's Block with pre-normalisation."""

    def __init__(self, d_model: int, block: nn.Module) -> None:
        super().__init__()
        self.norm, self.block = nn.LayerNorm(d_model), block

    def forward(self, h: Tensor) -> Tensor:
        return h + self.block(self.norm(h))


class MambaClassifier(nn.Module):
    def __init__(self, spec: MambaSpec, shape: tuple[int, ...], classes: int) -> None:
        super().__init__()
        _, values = token_layout(spec, shape)
        self.tokens = Tokens(spec.sequence, spec.patch)
        self.embed = nn.Linear(values, spec.d_model)
        self.layers = nn.Sequential(*[
            Residual(spec.d_model, MambaBlock(spec.d_model, spec.d_state, spec.d_conv,
                                              spec.expand, chunk=spec.chunk))
            for _ in range(spec.layers)])  # fmt: skip
        self.norm = nn.LayerNorm(spec.d_model)
        self.head = nn.Linear(spec.d_model, classes)

    def forward(self, x: Tensor) -> Tensor:
        h = self.layers(self.embed(self.tokens(x)))  # (b, l, d_model)
        return self.head(self.norm(h).mean(1))  # (b, classes)


@register_arch("mamba", MambaSpec)
def mamba(spec: MambaSpec, info: TaskInfo) -> nn.Module:
    return MambaClassifier(spec, image_shape(info), info.num_classes)


class MambaEnsembleSpec(StrictModel):
    """The sum of Mamba students' logits: what progressive distillation makes after k members."""

    arch: Literal["mamba-ensemble"] = Field(description="Architecture name.")
    members: list[MambaSpec] = Field(
        default_factory=lambda: [MambaSpec(arch="mamba")], min_length=1, max_length=64,
        description="The members, in the order they were trained.",
    )  # fmt: skip


class SumOfLogits(nn.Module):
    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: Tensor) -> Tensor:
        total = self.members[0](x)  # (b, classes)
        for member in self.members[1:]:
            total = total + member(x)
        return total


@register_arch("mamba-ensemble", MambaEnsembleSpec)
def mamba_ensemble(spec: MambaEnsembleSpec, info: TaskInfo) -> nn.Module:
    return SumOfLogits([mamba(m, info) for m in spec.members])
