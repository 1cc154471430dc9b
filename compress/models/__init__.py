"""The model zoo: architectures registered by name, built from a validated spec.

Importing this package registers the built-in architectures. ``model_spec()`` is the recipe type
of a model section (a union of every registered spec); it is built on first use, after plugins
registered theirs.
"""

from compress.models import cnn, encdec, gpt, hf, mlp, resnet, text, vgg  # noqa: F401  (register architectures)
from compress.models.mamba_students import mamba  # noqa: F401  (mamba, mamba-ensemble)
from compress.models.zoo import (
    ARCHS,
    PythonModelSpec,
    build_model,
    count_flops,
    count_params,
    model_spec,
)
from compress.prune import child  # noqa: F401  (the n2n-child architecture)

__all__ = [
    "ARCHS",
    "PythonModelSpec",
    "model_spec",
    "build_model",
    "count_flops",
    "count_params",
]
