"""The recipe schema (pydantic) and loading a recipe file into it.

Every error names the file, the line and the key path (``recipe.yaml:12: stages[1].student.width:
Input should be a valid integer``). The JSON Schema for editors comes from the same models.

The schema is built after the recipe's plugins are imported, so the architectures, losses,
stages, data sources and tasks they register validate exactly like the built-in ones.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, model_validator

from compress.config import StrictModel
from compress.recipe_hints import union_tag_error, unknown_key_message
from compress.yaml_source import YamlSource


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


def _field_of(value: Any, field: str) -> str | None:
    return value.get(field) if isinstance(value, dict) else getattr(value, field, None)


def _source_tag(value: Any) -> str | None:
    return _field_of(value, "source")


def _task_tag(value: Any) -> str | None:
    return _field_of(value, "name")


def _tagged_union(registry: Any, tag: Any) -> Any:
    """The union of the config models of everything in ``registry``, told apart by ``tag``."""
    registry.freeze("the recipe schema")
    members = [Annotated[cls.config_model, Tag(name)] for name, cls in registry.items()]
    return Annotated[Union[tuple(members)], Discriminator(tag)]  # noqa: UP007  (run-time union)


def _task_shorthand(value: Any) -> Any:
    """``task: NAME`` is short for ``task: {name: NAME}``."""
    return {"name": value} if isinstance(value, str) else value


def _dataset_key(value: Any) -> Any:
    """Recipes written before data sources said ``data: {dataset: NAME}``; still accepted."""
    if isinstance(value, dict) and "dataset" in value and "source" not in value:
        value = {("source" if k == "dataset" else k): v for k, v in value.items()}
    return value


@functools.cache
def recipe_model() -> type[StrictModel]:
    """Built once, after plugins: ``stages``, ``data`` and ``task`` are unions discriminated by
    ``kind``, ``source`` and ``name`` over everything registered."""
    import compress.stages  # noqa: F401  (registers the built-in stages)
    from compress.data import DATA_SOURCES
    from compress.pipeline.stage import STAGES
    from compress.stages.teacher import TeacherConfig
    from compress.tasks import TASKS

    configs = [cls.config_model for _, cls in STAGES.items() if not cls.top_level]
    STAGES.freeze("the recipe schema")
    stage_union = Annotated[Union[tuple(configs)], Field(discriminator="kind")]  # noqa: UP007
    data_union, task_union = (
        _tagged_union(DATA_SOURCES, _source_tag),
        _tagged_union(TASKS, _task_tag),
    )

    class Recipe(StrictModel):
        """A whole run: data, teacher, and the stages that compress, export, profile, report."""

        name: str = Field(pattern=r"^[A-Za-z0-9][\w.-]*$", max_length=100,
                          description="Names the run directory.")  # fmt: skip
        seed: int = Field(
            0, ge=0, le=2**32 - 1, description="Seeds data splits, initialisation and shuffling."
        )
        seeds: list[Annotated[int, Field(ge=0, le=2**32 - 1)]] | None = Field(
            None, min_length=2, max_length=1000, description="Repeat every student training once "
            "per seed (the teacher and the data split use `seed`); reports show each seed, mean "
            "and std.",
        )  # fmt: skip
        plugins: list[str] = Field(
            default_factory=list, description="Modules imported before the recipe is read; they "
            "register architectures, losses, stages, data sources, tasks and targets.",
        )  # fmt: skip
        task: task_union = Field({"name": "image-classification"}, description="The task.")
        data: data_union = Field(description="The data source, its split and batching.")
        teacher: TeacherConfig = Field(description="The teacher (or the model to deploy).")
        stages: list[stage_union] = Field(min_length=1, description="Stages, run in order.")

        @model_validator(mode="before")
        @classmethod
        def _shorthands(cls, value: Any) -> Any:
            if isinstance(value, dict):
                value = {**value, "task": _task_shorthand(value.get("task", "image-"
                         "classification")), "data": _dataset_key(value.get("data"))}  # fmt: skip
                if value["data"] is None:
                    del value["data"]
            return value

        def all_stages(self) -> list[tuple[tuple[str | int, ...], Any]]:
            """(key path, config) of every stage the runner runs, the teacher first."""
            return [(("teacher",), self.teacher)] + [
                (("stages", i), s) for i, s in enumerate(self.stages)
            ]

        def student_seeds(self) -> list[int]:
            return self.seeds or [self.seed]

    return Recipe


def json_schema() -> dict[str, Any]:
    return recipe_model().model_json_schema()


def load_plugins(source: YamlSource) -> None:
    """The recipe folder on sys.path, installed entry points, then the recipe's ``plugins``."""
    from compress.plugins import add_recipe_folder, import_plugin, load_entry_points

    add_recipe_folder(source.path.parent)
    load_entry_points()
    plugins = source.data.get("plugins") or []
    if not isinstance(plugins, list):
        raise source.error_at(("plugins",), "a list of module names")
    for i, name in enumerate(plugins):
        try:
            import_plugin(str(name))
        except Exception as e:  # the user's module: any failure is located at its entry
            raise source.error_at(("plugins", i), f"cannot import plugin {name!r}: "
                                  f"{type(e).__name__}: {e}") from None  # fmt: skip


def resolve_paths(model: BaseModel, base: Path) -> BaseModel:
    """Every relative path in the recipe is relative to the recipe's folder."""
    updates: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[name] = (base / value).resolve()
        elif isinstance(value, BaseModel):
            updates[name] = resolve_paths(value, base)
        elif isinstance(value, list) and value and isinstance(value[0], BaseModel):
            updates[name] = [resolve_paths(v, base) for v in value]
    return model.model_copy(update=updates)


def load_recipe(path: str | Path) -> tuple[Any, YamlSource]:
    """Parse and validate; relative paths are resolved against the recipe's folder."""
    source = YamlSource.read(path)
    load_plugins(source)
    try:
        recipe = recipe_model().model_validate(source.data)
    except ValidationError as e:
        err = e.errors()[0]
        if tagged := union_tag_error(err):
            raise source.error_at(*tagged) from None
        hint = unknown_key_message(recipe_model(), tuple(err["loc"]))
        raise source.error_for(err, hint) from None
    return resolve_paths(recipe, source.path.parent), source
