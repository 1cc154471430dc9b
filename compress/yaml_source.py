"""A YAML file kept with its node tree, so any key path can be traced back to its line.

Reading refuses, with one located line, what would otherwise crash or hang the loader: a file
that is too big or not UTF-8, nesting too deep for Python's recursion, and aliases that expand
to more values than any recipe has (the "billion laughs" bomb)."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.reader import ReaderError

from compress.errors import RecipeError

KeyPath = tuple[str | int, ...]

MAX_BYTES = 1_000_000  # recipes are a few KB; past this it is the wrong file, and slow to parse
MAX_DEPTH = 100  # nesting levels; recipes use about 5, Python's recursion limit is 1000
MAX_VALUES = 100_000  # YAML values after expanding aliases; recipes have hundreds

_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"


def format_key_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _read_text(path: Path) -> str:
    """The file as text. At most MAX_BYTES + 1 bytes are read, so a huge file or a device
    (/dev/zero) is refused at once instead of filling memory."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise RecipeError(f"cannot read recipe: {e.strerror or e}", str(path)) from None
    if len(raw) > MAX_BYTES:
        raise RecipeError(f"recipe is larger than {MAX_BYTES // 1_000_000} MB; a recipe is a "
                          "short text file (is this the right file?)", str(path))  # fmt: skip
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        utf16 = " (it looks like UTF-16)" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise RecipeError(f"not UTF-8 text: byte 0x{raw[e.start]:02x} cannot be decoded{utf16}; "
                          "save the recipe as UTF-8", str(path), line) from None  # fmt: skip


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _yaml_error(e: yaml.YAMLError, text: str, file: str) -> RecipeError:
    """One located line for a PyYAML error. An error at the end of the file (an unclosed quote
    or bracket) is reported where the unclosed thing starts, which is where the fix goes."""
    if isinstance(e, ReaderError):
        line = text.count("\n", 0, e.position) + 1
        return RecipeError(f"malformed YAML: character U+{e.character:04X} is not allowed in YAML "
                           "text (is this a binary file?)", file, line)  # fmt: skip
    problem = _one_line(getattr(e, "problem", None) or e)
    mark, context = getattr(e, "problem_mark", None), getattr(e, "context", None)
    cmark = getattr(e, "context_mark", None)
    if context and cmark and _blame_context(mark, context, problem, text):
        return RecipeError(f"malformed YAML: {problem} {context} that starts on this line", file,
                           cmark.line + 1)  # fmt: skip
    if context:
        problem += f" ({context}" + (f" on line {cmark.line + 1})" if cmark else ")")
    return RecipeError(f"malformed YAML: {problem}", file, mark.line + 1 if mark else None)


def _blame_context(mark: Any, context: str, problem: str, text: str) -> bool:
    """True when the context mark is the useful line: the problem is at the end of the text, or
    inside a quoted scalar that swallowed the lines after it (a bad escape is pinpointed by the
    problem mark instead)."""
    if mark is None or not text[mark.index :].strip():
        return True
    return "quoted scalar" in context and "escape" not in problem


class _RecipeLoader(yaml.SafeLoader):
    """SafeLoader that composes the node tree once and refuses, while composing, nesting deeper
    than MAX_DEPTH and more than MAX_VALUES values with every alias expanded. Aliases are shared
    nodes, so every later walk (key checks, construction, pydantic) sees them expanded; counting
    at compose time stops a bomb before anything walks it."""

    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file, self.values = file, 0
        self.frames: list[list[int]] = []  # [values, height] of each node being composed
        self.shapes: dict[yaml.Node, tuple[int, int]] = {}  # finished node -> (values, height)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._compose_alias(parent, index, event)
        self.values += 1
        self._check(event.start_mark, 1, None)
        self.frames.append([1, 1])
        node = super().compose_node(parent, index)
        values, height = self.frames.pop()
        self.shapes[node] = (values, height)
        self._add_to_parent(values, height)
        return node

    def _compose_alias(self, parent: Any, index: Any, event: yaml.AliasEvent) -> Any:
        node = super().compose_node(parent, index)  # raises for an undefined alias
        if node not in self.shapes:
            raise self._error(event.start_mark, f"alias *{event.anchor} is inside its own "
                              "anchor; a recipe cannot contain itself")  # fmt: skip
        values, height = self.shapes[node]
        self.values += values
        self._check(event.start_mark, height, event.anchor)
        self._add_to_parent(values, height)
        return node

    def _check(self, mark: yaml.Mark, height: int, alias: str | None) -> None:
        """Refuse at the value (or alias) that takes the depth or the value count past its cap."""
        expanded = f" once alias *{alias} is expanded" if alias else ""
        if len(self.frames) + height > MAX_DEPTH:
            raise self._error(mark, f"nested more than {MAX_DEPTH} levels deep{expanded}")
        if self.values > MAX_VALUES:
            bomb = " (each use of an alias counts all of its values)" if alias else ""
            raise self._error(mark, f"more than {MAX_VALUES:,} values{expanded or ' in a recipe'}"
                              f"{bomb}")  # fmt: skip

    def _add_to_parent(self, values: int, height: int) -> None:
        if self.frames:
            self.frames[-1][0] += values
            self.frames[-1][1] = max(self.frames[-1][1], height + 1)

    def _error(self, mark: yaml.Mark, message: str) -> RecipeError:
        return RecipeError(message, self.file, mark.line + 1)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value PyYAML resolves but Python cannot hold (``2024-13-01`` as a date, an int of
        5,000 digits) raises ValueError; make it a located YAML error instead of a traceback."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            raise ConstructorError(None, None, f"cannot read this value: {_one_line(e)}",
                                   node.start_mark) from None  # fmt: skip


def _compose(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The node tree and the data built from that same tree: the text is parsed once."""
    try:
        loader = _RecipeLoader(text, file)  # the reader checks the characters here
        root = loader.get_single_node()
        _check_keys(root, (), file, set())
        return root, loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as e:
        raise _yaml_error(e, text, file) from None


def _key_problem(key: yaml.Node) -> str | None:
    """Why ``key`` cannot be a recipe key (None if it can). ``<<`` merges keep working."""
    if isinstance(key, yaml.ScalarNode):
        if key.tag in (_STR, _MERGE):
            return None
        kind = key.tag.rsplit(":", 1)[-1]
        return f"keys must be strings; YAML reads {key.value or '(empty)'} as {kind}: quote it"
    kind = "list" if isinstance(key, yaml.SequenceNode) else "mapping"
    return f"keys must be strings, not a {kind}"


def _check_keys(node: yaml.Node | None, path: KeyPath, file: str, done: set[yaml.Node]) -> None:
    """PyYAML keeps the last of two equal keys silently, and builds keys no recipe key matches
    from ``1:`` or ``[a]:`` (or crashes on them): refuse both at the key's own line. Each node is
    checked once, however many aliases share it."""
    if node is None or node in done:
        return
    done.add(node)
    if isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_keys(item, path + (i,), file, done)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key, value in node.value:
        line, scalar = key.start_mark.line + 1, isinstance(key, yaml.ScalarNode)
        if problem := _key_problem(key):
            where = path + (key.value,) if scalar else path
            raise RecipeError(problem, file, line, format_key_path(where))
        if key.value in seen:
            raise RecipeError("duplicate key", file, line, format_key_path(path + (key.value,)))
        seen.add(key.value)
        _check_keys(value, path + (key.value,), file, done)


@dataclass(frozen=True)
class YamlSource:
    path: Path
    data: Any
    root: yaml.Node | None

    @classmethod
    def read(cls, path: str | Path) -> YamlSource:
        path = Path(path)
        root, data = _compose(_read_text(path), str(path))
        if not isinstance(data, dict):
            raise RecipeError("a recipe is a mapping of keys (name, seed, data, ...)", str(path), 1)
        return cls(path, data, root)

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
    """The line and node of ``part`` under ``node``. The last equal key wins, as in the data: a
    ``<<`` merge puts the merged keys first and the mapping's own keys after them."""
    if isinstance(node, yaml.MappingNode):
        for key, value in reversed(node.value):
            if key.value == part:
                return key.start_mark.line + 1, value
    elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None
