"""One generic registry for stages, losses, architectures, data sets and targets (timm-style).

STAGES = Registry("stage")

@STAGES.register("distill")
class DistillStage: ...

STAGES.get("distill")  # the class; an unknown name lists the known ones
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from compress.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names → objects. Registering a name twice is an error: plugins cannot shadow each other."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._frozen_by = ""  # what read the names; later registrations would be missed

    def freeze(self, by: str) -> None:
        """Refuse registrations from now on: ``by`` (e.g. the recipe schema) has read the names."""
        self._frozen_by = by

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            if self._frozen_by:
                raise ValueError(
                    f"{self.kind} {name!r} is registered after {self._frozen_by} was built; "
                    "list its module under `plugins:` in the recipe, or install it as an "
                    "edge_compress.plugins entry point"
                )
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, sorted(self._items)) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, T]]:
        yield from sorted(self._items.items())

    def __contains__(self, name: object) -> bool:
        return name in self._items
