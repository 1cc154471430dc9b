"""The built-in stages; importing this package registers them.

Every module in this folder is one stage kind, so adding a stage is adding a file here.
"""

import importlib
import pkgutil

from compress.distill import stage as distill_stage  # noqa: F401

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
