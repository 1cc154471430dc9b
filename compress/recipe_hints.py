""" "Did you mean": the keys a recipe section allows, found by walking the pydantic models along
an error's location (the same path pydantic reports, union tags included)."""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _tag_of(member: Any) -> str | None:
    """The tag of a union member: a pydantic Tag, or the Literal default of its 'kind' field."""
    if get_origin(member) is Annotated:
        tags = [m.tag for m in get_args(member)[1:] if isinstance(m, Tag)]
        if tags:
            return tags[0]
    member = _unwrap(member)
    kind = getattr(member, "model_fields", {}).get("kind")
    if kind is not None and get_origin(kind.annotation) is Literal:
        return get_args(kind.annotation)[0]
    return None


def _step(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field else None
    origin = get_origin(tp)
    if origin is list and isinstance(part, int):
        return get_args(tp)[0]
    if origin in (Union, types.UnionType):
        members = [m for m in get_args(tp) if m is not type(None)]
        tagged = [m for m in members if _tag_of(m) == part]
        if tagged:
            return _unwrap(tagged[0])
        if len(members) == 1:  # Optional[X]: the location goes straight into X
            return _step(members[0], part)
    return None


def allowed_keys(root: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """Keys allowed in the mapping that holds ``loc[-1]`` ([] when the path cannot be followed).

    A union tag in ``loc`` is consumed without moving; an Optional is looked through."""
    node: Any = root
    for part in loc[:-1]:
        nxt = _step(node, part)
        if nxt is None:
            return []
        node = nxt
    node = _unwrap(node)
    if get_origin(node) in (Union, types.UnionType):
        members = [m for m in get_args(node) if m is not type(None)]
        node = _unwrap(members[0]) if len(members) == 1 else node
    return list(getattr(node, "model_fields", {}))


def unknown_key_message(root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    keys = allowed_keys(root, loc)
    if not keys:
        return "unknown key (not allowed here; check the spelling)"
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    guess = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key; {guess}allowed here: {', '.join(keys)}"


# pydantic names the discriminator it used; recipes call these things by other names.
_DISCRIMINATORS = {"'kind'": ("kind", "stage kind"), "_spec_tag()": ("arch", "architecture"),
                   "_source_tag()": ("source", "data source"), "_task_tag()": ("name", "task")}


def union_tag_error(err: dict[str, Any]) -> tuple[tuple[str | int, ...], str] | None:
    """(location, message) for a bad or missing union tag ('kind: exprot', 'arch: cnn-tiny')."""
    if err["type"] not in ("union_tag_invalid", "union_tag_not_found"):
        return None
    ctx = err.get("ctx", {})
    key, noun = _DISCRIMINATORS.get(ctx.get("discriminator", ""), ("kind", "kind"))
    loc = tuple(err["loc"]) + (key,)
    if err["type"] == "union_tag_not_found":
        return loc, f"required key is missing (the {noun})"
    known = [t.strip(" '") for t in ctx.get("expected_tags", "").split(",")]
    if noun == "architecture":  # 'python' and 'hf' are other keys, not architecture names
        known = [t for t in known if t not in ("python", "hf")]
        return loc, (f"unknown architecture {ctx.get('tag')!r}; known: {', '.join(known)} "
                     "(or python: 'module:function' for your own, hf: FOLDER for a "
                     "transformers model)")  # fmt: skip
    return loc, f"unknown {noun} {ctx.get('tag')!r}; known: {', '.join(known)}"
