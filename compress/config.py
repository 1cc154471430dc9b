"""Base of every recipe model: unknown keys are errors, and every field carries a description."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

# Keys of a core schema that hold values or settings, never a schema to look into.
_NOT_SCHEMAS = frozenset({"metadata", "default", "serialization", "cls", "config", "ref"})


def _not_bool(value: Any) -> Any:
    """YAML 1.1 reads yes/no/on/off as booleans and pydantic would take True as 1, so
    ``epochs: yes`` silently meant one epoch: a number field refuses a boolean outright."""
    if isinstance(value, bool):
        raise PydanticCustomError(
            "bool_not_number",
            "expected a number, got a boolean (YAML reads true/false, yes/no and on/off as "
            "booleans)",
        )
    return value


def _takes_numbers(schema: dict[str, Any]) -> bool:
    """int and float fields, and Literal[1, 3] (which would take True as 1 too)."""
    if schema.get("type") in ("int", "float"):
        return True
    expected = schema.get("expected") if schema.get("type") == "literal" else None
    return bool(expected) and all(type(v) in (int, float) for v in expected)


def _refuse_bools(schema: Any) -> Any:
    """Wrap every number schema, wherever it sits (lists, dicts, tuples, unions, Optional), in
    ``_not_bool``, so the error keeps pydantic's own location down to the list item."""
    if isinstance(schema, list | tuple):
        return type(schema)(_refuse_bools(s) for s in schema)
    if not isinstance(schema, dict):
        return schema
    if _takes_numbers(schema):
        return core_schema.no_info_before_validator_function(_not_bool, schema)
    if schema.get("type") == "function-before" and schema["function"].get("function") is _not_bool:
        return schema  # already wrapped (a nested model's schema reused)
    return {k: v if k in _NOT_SCHEMAS else _refuse_bools(v) for k, v in schema.items()}


class StrictModel(BaseModel):
    """A recipe section. ``extra="forbid"`` makes a misspelt key an error, not a silent default;
    ``allow_inf_nan=False`` refuses ``.inf`` and ``.nan``, which no setting means; booleans are
    refused where a number is expected (see ``_not_bool``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """pydantic's schema with booleans refused by every number field, so the error is a
        normal validation error that the recipe loader locates by file, line and key."""
        return _refuse_bools(handler(source))
