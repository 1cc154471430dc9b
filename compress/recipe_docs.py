"""The README's recipe reference, rendered from the same JSON Schema editors use."""

from __future__ import annotations

import json
from typing import Any

from compress.recipe import json_schema

BEGIN, END = "<!-- recipe-reference:begin -->", "<!-- recipe-reference:end -->"


def _default(prop: dict[str, Any], required: bool) -> str:
    if required:
        return "required"
    return f"`{json.dumps(prop['default'])}`" if "default" in prop else ""


def _section(title: str, model: dict[str, Any]) -> list[str]:
    lines = [f"**{title}**" + (f": {model['description']}" if model.get("description") else ""),
             "", "| key | default | meaning |", "| --- | --- | --- |"]  # fmt: skip
    required = set(model.get("required", []))
    for key, prop in model.get("properties", {}).items():
        meaning = prop.get("description", "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{key}` | {_default(prop, key in required)} | {meaning} |")
    return lines + [""]


def recipe_reference() -> str:
    """Markdown tables: the top level, then every section the schema defines, by name."""
    schema = json_schema()
    parts = _section("recipe (top level)", schema)
    for name, model in sorted(schema.get("$defs", {}).items()):
        if model.get("properties"):
            parts += _section(name, model)
    return "\n".join([BEGIN, "", *parts, END])
