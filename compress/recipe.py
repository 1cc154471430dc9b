"""The recipe schema (pydantic) and loading a recipe file into it.

Every error names the file, the line and the key path (``recipe.yaml:12: stages[1].student.width:
Input should be a valid integer``). The JSON Schema for editors comes from the same models.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, field_validator, model_validator

from compress.config import StrictModel
from compress.data.splits import DATASETS
from compress.models import ModelSpec
from compress.pipeline.stage import STAGES, StageConfig
from compress.recipe_hints import union_tag_error, unknown_key_message
from compress.yaml_source import YamlSource


class DataConfig(StrictModel):
    """Which data set, and how it is split and batched."""

    dataset: str = Field(description="Registered data set: 'fashion-mnist', 'digits'.")
    batch_size: int = Field(128, ge=1, description="Training batch size.")
    eval_batch_size: int = Field(1000, ge=1, description="Batch size for evaluation passes.")
    val_fraction: float = Field(
        0.1, gt=0, lt=0.5, description="Share of the training split held out for validation."
    )

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, name: str) -> str:
        if name not in DATASETS:
            raise ValueError(f"unknown data set {name!r}; known: {', '.join(DATASETS.names())}")
        return name


class TrainConfig(StrictModel):
    """One training run: optimizer, learning-rate schedule, epochs."""

    epochs: int = Field(ge=1, le=10_000, description="Passes over the training split.")
    lr: float = Field(gt=0, description="Peak learning rate.")
    weight_decay: float = Field(
        5e-4, ge=0, description="Decoupled weight decay (AdamW) or L2 (SGD)."
    )
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="Optimizer.")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD (Nesterov) momentum.")
    schedule: Literal["cosine", "constant"] = Field(
        "cosine", description="Learning rate per step: cosine decay to 0, or constant."
    )


class TeacherConfig(StageConfig):
    """The teacher: a zoo architecture or a python builder, trained here or loaded from a file."""

    kind: Literal["teacher"] = Field("teacher", description="Always 'teacher'.")
    model: ModelSpec = Field(description="Architecture: {arch: NAME, ...} or {python: 'mod:fn'}.")
    train: TrainConfig | None = Field(None, description="How to train it (when no checkpoint).")
    checkpoint: Path | None = Field(
        None, description="Safetensors checkpoint to load instead of training (relative to recipe)."
    )

    @model_validator(mode="after")
    def _train_or_load(self) -> TeacherConfig:
        if (self.train is None) == (self.checkpoint is None):
            raise ValueError("give exactly one of 'train' (train it here) or 'checkpoint'")
        return self


@functools.cache
def recipe_model() -> type[StrictModel]:
    """Built once every stage is registered: ``stages`` is a union discriminated by ``kind``."""
    import compress.stages  # noqa: F401  (registers the built-in stages)

    configs = [cls.config_model for _, cls in STAGES.items() if not cls.top_level]
    stage_union = Annotated[Union[tuple(configs)], Field(discriminator="kind")]  # noqa: UP007

    class Recipe(StrictModel):
        """A whole run: data, teacher, and the stages that compress, export, profile, report."""

        name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$", description="Names the run directory.")
        seed: int = Field(0, ge=0, description="Seeds data splits, initialisation and shuffling.")
        data: DataConfig = Field(description="The data set.")
        teacher: TeacherConfig = Field(description="The teacher network.")
        stages: list[stage_union] = Field(min_length=1, description="Stages, run in order.")

        def all_stages(self) -> list[tuple[tuple[str | int, ...], StageConfig]]:
            """(key path, config) of every stage the runner runs, the teacher first."""
            return [(("teacher",), self.teacher)] + [
                (("stages", i), s) for i, s in enumerate(self.stages)
            ]

    return Recipe


def json_schema() -> dict[str, Any]:
    return recipe_model().model_json_schema()


def load_recipe(path: str | Path) -> tuple[Any, YamlSource]:
    """Parse and validate; relative checkpoint paths are resolved against the recipe's folder."""
    source = YamlSource.read(path)
    try:
        recipe = recipe_model().model_validate(source.data)
    except ValidationError as e:
        err = e.errors()[0]
        if tagged := union_tag_error(err):
            raise source.error_at(*tagged) from None
        hint = unknown_key_message(recipe_model(), tuple(err["loc"]))
        raise source.error_for(err, hint) from None
    teacher = recipe.teacher
    if teacher.checkpoint is not None:
        resolved = (source.path.parent / teacher.checkpoint).resolve()
        if not resolved.is_file():
            raise source.error_at(("teacher", "checkpoint"), f"checkpoint not found: {resolved}")
        recipe = recipe.model_copy(
            update={"teacher": teacher.model_copy(update={"checkpoint": resolved})}
        )
    return recipe, source
