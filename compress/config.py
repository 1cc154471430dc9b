"""Base of every recipe model: unknown keys are errors, and every field carries a description."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A recipe section. ``extra="forbid"`` makes a misspelt key an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
