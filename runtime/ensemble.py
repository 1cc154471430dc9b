"""Anytime inference with a progressive ensemble: run the first k member artifacts and sum their
logits. Device side: numpy and ONNX Runtime, never torch.

    ensemble = AnytimeEnsemble.from_export_dir("runs/mamba-pkd/03-export", "pkd")
    logits = ensemble.scores({"input": x}, k=3)      # members 1..3 only; the rest never load

A device picks k at run time: fewer members when it is busy or on battery, more when accuracy
matters. The sum of the first k members equals the ``NAME-kK`` artifact (one graph) up to float
rounding; the per-member form lets a device stop early without a graph per k.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from compress.errors import CompressError
from compress.runtime.ort import OrtModel


class AnytimeEnsemble:
    """Member ONNX files in training order; each session is opened when first needed."""

    def __init__(self, paths: Sequence[str | Path],
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:  # fmt: skip
        if not paths:
            raise CompressError("an ensemble needs at least one member artifact")
        missing = [str(p) for p in paths if not Path(p).is_file()]
        if missing:
            raise CompressError(f"member artifact not found: {missing[0]}")
        self.paths = [Path(p) for p in paths]
        self.providers = providers
        self._sessions: list[OrtModel] = []

    @classmethod
    def from_export_dir(cls, folder: str | Path, name: str,
                        providers: tuple[str, ...] = ("CPUExecutionProvider",),
                        ) -> AnytimeEnsemble:  # fmt: skip
        """``NAME-m1``, ``NAME-m2``, ... as the export stage lays them out (one folder each),
        up to the first one missing."""
        folder, paths = Path(folder), []
        while (path := folder / f"{name}-m{len(paths) + 1}" / f"{name}-m{len(paths) + 1}.onnx"
               ).is_file():  # fmt: skip
            paths.append(path)
        if not paths:
            raise CompressError(f"{folder}: no member artifacts {name}-m1, {name}-m2, ... here")
        return cls(paths, providers)

    def __len__(self) -> int:
        return len(self.paths)

    def member(self, t: int) -> OrtModel:
        """Member t (1-based), its session opened on first use."""
        while len(self._sessions) < t:
            self._sessions.append(OrtModel(self.paths[len(self._sessions)], self.providers))
        return self._sessions[t - 1]

    def scores(self, inputs: dict[str, np.ndarray], k: int | None = None) -> np.ndarray:
        """The sum of the first ``k`` members' logits (b, classes); all members by default."""
        k = len(self) if k is None else k
        if not 1 <= k <= len(self):
            raise CompressError(f"k must be between 1 and {len(self)} (the members), got {k}")
        total = self.member(1).scores(inputs).astype(np.float32, copy=True)  # (b, classes)
        for t in range(2, k + 1):
            total += self.member(t).scores(inputs)
        return total
