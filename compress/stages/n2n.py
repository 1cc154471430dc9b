"""The n2n stage: N2N's reinforcement-learned layer removal and shrinkage of an earlier model
(``compress.prune``); the best child becomes a model of the run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from compress.pipeline.artifacts import Artifacts
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.prune.config import (
    ChildTrainConfig,
    ExecutorConfig,
    RemovalConfig,
    RewardConfig,
    ShrinkConfig,
)


class N2NConfig(StageConfig):
    """N2N (Ashok et al. 2018): a policy removes layers of ``model``, a second shrinks the
    rest; each child is trained briefly against it and rewarded for size and accuracy."""

    kind: Literal["n2n"] = Field(description="Stage kind.")
    model: str = Field("teacher", description="The earlier model to compress (its name).")
    name: str = Field("n2n", pattern=r"^[\w.-]+$", max_length=100,
                      description="Name of the best child, a model of the run.")  # fmt: skip
    removal: RemovalConfig = Field(default_factory=RemovalConfig, description="Stage 1.")
    shrinkage: ShrinkConfig = Field(default_factory=ShrinkConfig, description="Stage 2.")
    child_train: ChildTrainConfig = Field(default_factory=ChildTrainConfig,
                                          description="Training of each child.")  # fmt: skip
    reward: RewardConfig = Field(default_factory=RewardConfig, description="Constraints.")
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig,
                                     description="Where the children train: here, one after "
                                     "another, in worker processes, or as Ray "
                                     "tasks.")  # fmt: skip
    compare_with: str | None = Field(None, description="The name of an earlier n2n stage this "
                                     "one repeats with another executor (all else equal) to "
                                     "time it: its section shows both wall times, their ratio "
                                     "and whether both found the same best child. Such a "
                                     "stage adds no model.")  # fmt: skip
    min_speedup: float | None = Field(None, gt=0, description="Goal (with compare_with): this "
                                      "search's wall time over the earlier one's is at least "
                                      "this; the section says met or missed.")  # fmt: skip


@register_stage
class N2NStage(Stage):
    config_model = N2NConfig
    requires = ("models",)
    provides = ("models",)

    def plan(self, ctx: PlanContext) -> None:
        from compress.prune.run import check_n2n

        check_n2n(ctx, self.config)
        if self.config.compare_with is None:  # a timing repeat's child is the earlier one's
            ctx.add_model(self.config.name, ("name",))

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.prune.run import run_n2n

        return run_n2n(ctx, self.config)
