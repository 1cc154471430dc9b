"""A stage: one class, one config model, registered by kind; the runner knows no stage by name.

Adding a method means writing a ``StageConfig`` subclass with ``kind: Literal["name"]`` and a
``Stage`` subclass decorated with ``@register_stage``; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from compress.config import StrictModel
from compress.errors import RecipeError
from compress.pipeline.artifacts import Artifacts
from compress.registry import Registry
from compress.tasks import TaskInfo

if TYPE_CHECKING:
    from compress.data import Splits
    from compress.log import Log
    from compress.yaml_source import YamlSource


class StageConfig(StrictModel):
    """Base of every stage's recipe section; subclasses add ``kind: Literal[...]``."""

    kind: str


@dataclass(frozen=True)
class PlanContext:
    """What a stage may check before anything runs (no data loaded, nothing trained)."""

    recipe: Any
    source: YamlSource  # to point errors at the recipe's lines
    key_path: tuple[str | int, ...]  # where this stage's config sits in the recipe
    info: TaskInfo  # the task's signature and sizes on the recipe's data
    models: dict[str, str]  # names of the models earlier stages make → key path, for uniqueness
    precisions: dict[str, str] = field(default_factory=dict)  # model name → weight precision

    def error(self, sub_path: tuple[str | int, ...], message: str) -> RecipeError:
        """A RecipeError at ``sub_path`` inside this stage's section."""
        return self.source.error_at(self.key_path + sub_path, message)

    def refuse_later(self, artifact: str, kind: str, fate: str) -> None:
        """Refuse when a later stage makes ``artifact`` and no stage of ``kind`` (this one's)
        follows it: what it makes would never be ``fate`` (exported, timed)."""
        from compress.yaml_source import format_key_path

        _, index = self.key_path  # ("stages", i)
        stages = self.recipe.stages
        for j in range(index + 1, len(stages)):
            if artifact in STAGES.get(stages[j].kind).provides and not any(
                    s.kind == kind for s in stages[j + 1 :]):  # fmt: skip
                raise self.error(("kind",), f"{format_key_path(('stages', j))} "
                                 f"({stages[j].kind}) makes {artifact} after this {kind} stage "
                                 f"and no {kind} stage follows it: they would never be {fate}; "
                                 "move this stage after it")  # fmt: skip

    def add_model(self, name: str, sub_path: tuple[str | int, ...],
                  precision: str = "fp32") -> None:  # fmt: skip
        """Claim a model name; two models of one run may not share one (their files would)."""
        if name in self.models:
            raise self.error(sub_path, f"a model named {name!r} is already made at "
                             f"{self.models[name]}; give this one another name")  # fmt: skip
        from compress.yaml_source import format_key_path

        self.models[name] = format_key_path(self.key_path + sub_path)
        self.precisions[name] = precision


@dataclass
class StageContext:
    """What a running stage gets: its folder, the data, and the artifacts made so far."""

    recipe: Any
    run_dir: Path
    stage_dir: Path
    artifacts: Artifacts
    smoke: bool
    log: Log
    _splits: Splits | None = field(default=None, repr=False)

    def data(self) -> Splits:
        """The recipe's data splits, loaded on first use (stages that need no data skip it)."""
        if self._splits is None:
            from compress.data import load_splits

            self._splits = load_splits(self.recipe, self.run_dir, self.smoke)
        return self._splits

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.run_dir))

    def path(self, rel: str) -> Path:
        return self.run_dir / rel


class Stage(ABC):
    """One pipeline step. ``requires``/``provides`` name artifact kinds (fields of Artifacts)."""

    config_model: ClassVar[type[StageConfig]]
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    # Stages outside the recipe's ``stages`` list (the teacher has its own recipe section).
    top_level: ClassVar[bool] = False
    # Under torchrun: True runs it on every rank (its training shared by DistributedDataParallel),
    # False on rank 0 alone; None decides by whether its config holds a TrainConfig.
    distributed: ClassVar[bool | None] = None

    def __init__(self, config: StageConfig) -> None:
        self.config = config

    def plan(self, ctx: PlanContext) -> None:  # noqa: B027  (optional hook)
        """Check the config against the data and earlier stages; raise RecipeError to refuse."""

    def input_files(self) -> list[Path]:
        """Files outside the run directory this stage reads (hashed into its cache key): a
        checkpoint, the source of a user's model builder, ..."""
        return []

    @abstractmethod
    def run(self, ctx: StageContext) -> Artifacts:
        """Do the work inside ``ctx.stage_dir``; return the artifacts this stage added."""


def runs_on_every_rank(stage: Stage) -> bool:
    """Whether a torchrun launch runs ``stage`` on every rank: the stages that train in this
    process (a ``train:`` section anywhere in their config); the others run on rank 0 alone."""
    if stage.distributed is not None:
        return stage.distributed
    return _holds_train_config(stage.config)


def _holds_train_config(value: Any) -> bool:
    from compress.recipe import TrainConfig

    if isinstance(value, TrainConfig):
        return True
    if isinstance(value, BaseModel):
        return any(_holds_train_config(getattr(value, f)) for f in type(value).model_fields)
    if isinstance(value, list | tuple):
        return any(_holds_train_config(v) for v in value)
    return False


STAGES: Registry[type[Stage]] = Registry("stage kind")


def register_stage(cls: type[Stage]) -> type[Stage]:
    kind = cls.config_model.model_fields["kind"].annotation.__args__[0]  # Literal["kind"]
    cls.kind = kind  # type: ignore[attr-defined]
    return STAGES.register(kind)(cls)
