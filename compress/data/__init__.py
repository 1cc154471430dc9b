"""Offline data sets, split into train / validation / test tensors held in memory.

Inputs are images scaled to [0, 1] with shape (c, h, w); the exported models take exactly that,
so an edge device needs no other preprocessing than dividing pixel values by their maximum.
"""

from compress.data import sources  # noqa: F401  (register data sets)
from compress.data.splits import DATASETS, Splits, check_available, load_splits

__all__ = ["DATASETS", "Splits", "check_available", "load_splits"]
