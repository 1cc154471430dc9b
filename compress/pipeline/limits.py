"""Sizes a recipe may ask for, checked before anything runs: what would otherwise fail only
after all the training (a batch that cannot be allocated) or silently repeat work (a seed listed
twice)."""

from __future__ import annotations

from typing import Any

from compress.tasks import TaskInfo
from compress.yaml_source import YamlSource

MAX_BATCH = 65_536  # one batch must fit in memory
MAX_PARAMS = 2_000_000_000


def check_recipe_limits(recipe: Any, source: YamlSource) -> None:
    """Every seed of ``seeds`` once; data batch sizes of at most MAX_BATCH."""
    first: dict[int, int] = {}
    for i, seed in enumerate(recipe.seeds or ()):
        if seed in first:
            raise source.error_at(("seeds", i), f"seed {seed} is listed twice (also at "
                                  f"seeds[{first[seed]}]); each seed trains every student "
                                  "once")  # fmt: skip
        first[seed] = i
    for key in ("batch_size", "eval_batch_size"):
        size = getattr(recipe.data, key, None)
        if isinstance(size, int) and size > MAX_BATCH:
            raise source.error_at(("data", key), f"batch size {size:,} is too large: at most "
                                  f"{MAX_BATCH} (one batch must fit in memory)")  # fmt: skip


def zoo_parameters(spec: Any, info: TaskInfo) -> int | None:
    """A zoo model's parameter count, built on the meta device (shapes only, nothing
    allocated); None when it cannot be built (its real build says why at its key)."""
    import torch

    from compress.models.zoo import ARCHS

    try:
        with torch.device("meta"):
            net = ARCHS.get(spec.arch).build(spec, info)
        return sum(p.numel() for p in net.parameters())
    except Exception:  # reported by the real build, with its location
        return None


def check_model_sizes(cfg: Any, key_path: tuple, info: TaskInfo, source: YamlSource) -> None:
    """Every zoo model a stage section names has at most MAX_PARAMS parameters: sizes that are
    each allowed can multiply past what any machine holds."""
    for name in type(cfg).model_fields:
        spec = getattr(cfg, name)
        if isinstance(getattr(spec, "arch", None), str) and not hasattr(spec, "hf"):
            count = zoo_parameters(spec, info)
            if count is not None and count > MAX_PARAMS:
                raise source.error_at(key_path + (name,), f"{spec.arch} with these settings "
                                      f"has {count:,} parameters; the limit is "
                                      f"{MAX_PARAMS:,}: make it smaller")  # fmt: skip
