"""The built-in stages; importing this package registers them."""

from compress.distill import stage as distill_stage  # noqa: F401
from compress.stages import export, profile, report, teacher  # noqa: F401
