"""A YAML file kept with its node tree, so any key path can be traced back to its line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compress.errors import RecipeError

KeyPath = tuple[str | int, ...]


def format_key_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class YamlSource:
    path: Path
    data: Any
    root: yaml.Node | None

    @classmethod
    def read(cls, path: str | Path) -> YamlSource:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise RecipeError(f"cannot read recipe: {e.strerror or e}", str(path)) from None
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else None
            problem = getattr(e, "problem", None) or str(e)
            raise RecipeError(f"malformed YAML: {problem}", str(path), line) from None
        source = cls(path, data, root)
        source._refuse_duplicate_keys(root, ())
        if not isinstance(data, dict):
            raise RecipeError("a recipe is a mapping of keys (name, seed, data, ...)", str(path), 1)
        return source

    def _refuse_duplicate_keys(self, node: yaml.Node | None, path: KeyPath) -> None:
        """PyYAML keeps the last of two equal keys silently; a recipe must not."""
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if key.value in seen:
                    raise self._error("duplicate key", path + (key.value,), key.start_mark.line + 1)
                seen.add(key.value)
                self._refuse_duplicate_keys(value, path + (key.value,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._refuse_duplicate_keys(item, path + (i,))

    def _walk(self, loc: tuple[Any, ...]) -> tuple[KeyPath, int | None]:
        """Follow ``loc`` through the nodes. Parts with no node (pydantic's union tags, a missing
        key) are skipped except a missing last key, which is kept for the message."""
        node, path = self.root, ()
        line = node.start_mark.line + 1 if node else None
        for i, part in enumerate(loc):
            child = _child(node, part)
            if child is None:
                if i == len(loc) - 1 and isinstance(part, str | int):
                    path += (part,)
                continue
            key_line, node = child
            path += (part,)
            line = key_line
        return path, line

    def _error(self, message: str, path: KeyPath, line: int | None) -> RecipeError:
        return RecipeError(message, str(self.path), line, format_key_path(path))

    def error_at(self, loc: tuple[Any, ...], message: str) -> RecipeError:
        path, line = self._walk(loc)
        return self._error(message, path, line)

    def error_for(self, err: dict[str, Any], unknown_key: str | None = None) -> RecipeError:
        """A RecipeError from one pydantic error dict (``unknown_key``: the message for an
        extra_forbidden error, which knows the allowed keys)."""
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = unknown_key or "unknown key (not allowed here; check the spelling)"
        elif err["type"] == "missing":
            message = "required key is missing"
        return self.error_at(tuple(err["loc"]), message)


def _child(node: yaml.Node | None, part: Any) -> tuple[int, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part:
                return key.start_mark.line + 1, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None
