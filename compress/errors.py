"""Typed exceptions. The CLI turns each into one clear message and an exit code, never a traceback.

Exit code 2 means "your input is wrong" (recipe, checkpoint, data set); exit code 1 means a stage
ran and failed a check (for example an ONNX parity check).
"""

from __future__ import annotations


class CompressError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code = 2


class UnknownNameError(CompressError, KeyError):
    """A registry lookup for a name nobody registered."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind, self.name, self.known = kind, name, known
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(known) or '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class RecipeError(CompressError):
    """Something wrong in a recipe, located by file, line and key path."""

    def __init__(self, message: str, file: str = "", line: int | None = None, key: str = ""):
        self.message, self.file, self.line, self.key = message, file, line, key
        super().__init__(self.format())

    def format(self) -> str:
        where = self.file or "<recipe>"
        if self.line is not None:
            where += f":{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class DataError(CompressError):
    """A data set that is missing or unreadable."""


class ModelError(CompressError):
    """An architecture or checkpoint that does not fit the data or cannot be built."""


class StageFailed(CompressError):
    """A stage ran and one of its checks failed (parity, accuracy on the artifact, ...)."""

    exit_code = 1
