"""edge-compress: teacher → small students → exported artifacts → measured on the target.

This module stays light on purpose: the device side (``compress.runtime``,
``compress.devices``) imports through it and must work without torch.
"""

__version__ = "0.1.0"
