"""The ``n2n`` stage's recipe section. Defaults are the paper's code's, budgets are small."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from compress.config import StrictModel


class RemovalConfig(StrictModel):
    """Stage 1: which layers to remove (bidirectional LSTM policy)."""

    iterations: int = Field(10, ge=0, le=10_000, description="Policy updates (0: skip stage).")
    rollouts: int = Field(5, ge=1, le=1000, description="Children sampled per update.")
    lr: float = Field(0.003, gt=0, description="Adam learning rate of the policy.")


class ShrinkConfig(StrictModel):
    """Stage 2: how much to shrink each remaining layer (autoregressive LSTM policy)."""

    iterations: int = Field(20, ge=0, le=10_000, description="Policy updates (0: skip stage).")
    rollouts: int = Field(5, ge=1, le=1000, description="Children sampled per update.")
    lr: float = Field(0.1, gt=0, description="Adam learning rate of the policy.")
    floor: int = Field(10, ge=1, le=65536, description="No layer is shrunk under this many "
                       "output channels or features.")  # fmt: skip
    fields: list[Literal["out", "kernel"]] = Field(
        ["out"], min_length=1, max_length=2, description="What is shrunk: 'out' (output "
        "channels, a block's inner width), 'kernel' (a conv's kernel size, its padding cut to "
        "match; the project's surgery only).")  # fmt: skip

    @field_validator("fields")
    @classmethod
    def _once_each(cls, fields: list[str]) -> list[str]:
        if len(set(fields)) != len(fields):
            raise ValueError(f"a field is listed twice: {fields}")
        return fields


class ChildTrainConfig(StrictModel):
    """How each sampled child is trained and measured: MSE to the teacher's logits on a subset
    of the training split, accuracy on a subset of the validation split."""

    epochs: int = Field(5, ge=1, le=1000, description="Epochs over the subset.")
    subset: int = Field(5000, ge=16, le=10_000_000, description="Training examples used.")
    val_subset: int = Field(2000, ge=16, le=10_000_000, description="Validation examples "
                            "the reward's accuracy is measured on.")  # fmt: skip
    batch_size: int = Field(128, ge=1, le=65536, description="Batch size.")
    lr: float = Field(5e-4, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(5e-4, ge=0, description="Adam L2 weight decay.")
    inherit: bool = Field(False, description="Start each child from the teacher's surviving "
                          "weights (the paper starts at random).")  # fmt: skip


class LatencyRewardConfig(StrictModel):
    """The child's latency measured on a target, in the reward's size term: each child is
    exported to ONNX and timed there (median of ``iterations`` calls), the teacher once."""

    target: str = Field("cpu-ort", description="A target that runs ONNX files (see "
                        "`compress targets`).")  # fmt: skip
    batch_size: int = Field(1, ge=1, le=65536, description="Samples per timed call.")
    mode: Literal["replace", "join"] = Field("replace", description="'replace': C = 1 − "
                                             "latency ratio; 'join': C = 1 − √(parameter "
                                             "ratio × latency ratio).")  # fmt: skip
    warmup: int = Field(10, ge=0, le=10_000, description="Untimed calls before timing.")
    iterations: int = Field(60, ge=5, le=100_000, description="Timed calls; the median "
                            "counts.")  # fmt: skip
    max_seconds: float = Field(5.0, gt=0, le=600, description="Cap on one model's timed "
                               "calls (at least 5 are kept).")  # fmt: skip
    threads: int = Field(1, ge=1, le=1024, description="Intra-op threads of the runtime.")

    @field_validator("target")
    @classmethod
    def _known_target(cls, name: str) -> str:
        from compress.devices.targets import ONNX_FORMATS, TARGETS

        if name not in TARGETS:  # a ValueError, so the message gets the file and line
            raise ValueError(f"unknown target {name!r}; known: {', '.join(TARGETS.names())}")
        if "onnx" not in TARGETS.get(name).formats:
            onnx = [n for n, t in TARGETS.items() if set(t.formats) & set(ONNX_FORMATS)]
            raise ValueError(f"target {name!r} does not run ONNX files; these do: "
                             f"{', '.join(onnx)}")  # fmt: skip
        return name


class RewardConfig(StrictModel):
    """Optional constraints (a child outside them gets the paper's annealed penalty), and an
    optional latency term."""

    max_param_ratio: float | None = Field(None, gt=0, le=1, description="Child parameters "
                                          "over the teacher's at most this.")  # fmt: skip
    min_accuracy_ratio: float | None = Field(None, gt=0, le=1, description="Child accuracy "
                                             "over the teacher's at least this.")  # fmt: skip
    constrain_removal: bool = Field(True, description="Apply the constraints in stage 1 too "
                                    "(the paper's way). false: stage 1 is rewarded on size and "
                                    "accuracy alone and stage 2 shrinks its best child into "
                                    "them: removal alone meets a tight size bound only by "
                                    "removing most layers.")  # fmt: skip
    latency: LatencyRewardConfig | None = Field(None, description="Reward measured latency "
                                                "on a target instead of, or beside, fewer "
                                                "parameters (none: parameters "
                                                "only).")  # fmt: skip


class ExecutorConfig(StrictModel):
    """Where children train."""

    kind: Literal["local", "processes", "ray"] = Field("local", description="'local': one "
                                                       "after another here; 'processes': "
                                                       "worker processes (one thread each); "
                                                       "'ray': Ray tasks (one CPU each), on a "
                                                       "local Ray or the cluster at "
                                                       "'address' (extra 'ray').")  # fmt: skip
    workers: int = Field(2, ge=1, le=256, description="Worker processes ('processes'), or the "
                         "CPUs of the local Ray the run starts ('ray'; a cluster at 'address' "
                         "runs as many children at once as it has CPUs).")  # fmt: skip
    address: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+:[0-9]{1,5}$",
                                description="'ray' only: 'host:port' of a running Ray "
                                "cluster's head; None starts a local Ray for the "
                                "run.")  # fmt: skip
