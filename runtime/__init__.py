"""Load and run exported artifacts. Device side: never imports torch."""

from compress.runtime.artifact import Artifact, check_inputs, load
from compress.runtime.ort import OrtModel

__all__ = ["Artifact", "OrtModel", "check_inputs", "load"]
