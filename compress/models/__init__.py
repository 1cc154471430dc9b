"""The model zoo: architectures registered by name, built from a validated spec.

Importing this package registers the built-in architectures.
"""

from compress.models import cnn, mlp, resnet  # noqa: F401  (register architectures)
from compress.models.zoo import (
    ARCHS,
    PythonModelSpec,
    build_model,
    count_flops,
    count_params,
    model_spec_type,
)

# The recipe type of a model section: a union of every spec registered above.
ModelSpec = model_spec_type()

__all__ = [
    "ARCHS",
    "ModelSpec",
    "PythonModelSpec",
    "model_spec_type",
    "build_model",
    "count_flops",
    "count_params",
]
