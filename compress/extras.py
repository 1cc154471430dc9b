"""Optional dependencies, imported where they are used, with an error naming the extra that
installs them: the zoo, the recipe schema and the device runtime work without any of them."""

from __future__ import annotations

import importlib
from types import ModuleType

from compress.errors import CompressError


def import_extra(module: str, extra: str, purpose: str,
                 error: type[CompressError] = CompressError) -> ModuleType:  # fmt: skip
    """``module``, or ``error`` saying that ``purpose`` needs it and which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise error(f"{purpose} needs {module}, which is not installed: "
                    f"pip install 'edge-compress[{extra}]'") from None  # fmt: skip
