"""The quantize stage: low-bit models of an earlier model of the run, by post-training
quantization, quantized training, quantized distillation and differentiable quantization, each
at every bit width asked for. Every one is a model of the run (its own name, parent, precision),
so the export, profile and report stages treat it like any other."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Literal

from pydantic import Field, field_validator
from torch import nn

from compress.config import StrictModel
from compress.distill.losses import losses_model
from compress.distill.stage import TeacherSignal
from compress.errors import StageFailed
from compress.pipeline.artifacts import Artifacts, ModelArtifact, Quantization
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.quant.brevitas_layers import description, quantized_weights, with_brevitas_layers
from compress.quant.brevitas_layers import missing as brevitas_missing
from compress.quant.codes import save_codes
from compress.quant.functions import Quantized
from compress.quant.methods import Method, QuantSettings, labels_only, prepare
from compress.quant.methods import round_to_nearest as rtn
from compress.quant.weights import finish
from compress.recipe import TrainConfig
from compress.stages.models import Lineage, epochs_for, load_model, save_model, validation
from compress.train import train


def paper_losses() -> Any:
    """Polino et al.'s defaults: 0.7·T²·KL at T = 2, plus 0.3·CE."""
    return losses_model()(kd={"weight": 0.7, "temperature": 2.0}, ce={"weight": 0.3})


class LevelsConfig(StrictModel):
    """Differentiable quantization: how the levels start and how they learn."""

    init: Literal["uniform", "quantiles"] = Field(
        "uniform", description="Initial levels: evenly spaced, or quantiles of the weights."
    )
    train: TrainConfig = Field(
        default_factory=lambda: TrainConfig(epochs=2, lr=1e-5, optimizer="sgd"),
        description="Training of the levels (the weights stay fixed). A level's gradient sums "
        "over every weight coded to it, so it is large: the paper's lr is 1e-5 (SGD); at 2 bits "
        "1e-4 and 1e-3 made levels leave their range and merge.",
    )  # fmt: skip


class QuantizeConfig(StageConfig):
    """Quantized students of an earlier model: methods × bit widths."""

    kind: Literal["quantize"] = Field(description="Stage kind.")
    model: str = Field(description="The earlier model to quantize (the recipe's name for it; "
                       "with seeds, each seed's copy).")  # fmt: skip
    bits: list[Literal[2, 4, 8]] = Field(
        min_length=1, description="Bit widths; each gives one model per method."
    )
    methods: list[Literal["ptq", "qat", "qkd", "dq", "brevitas"]] = Field(
        min_length=1, description="ptq: post-training (ONNX Runtime static int8, or "
        "round-to-nearest below 8 bits); qat: quantized training on labels; qkd: quantized "
        "distillation from the teacher; dq: differentiable quantization (learned levels); "
        "brevitas: qkd's distillation with Brevitas layers (per-channel weights, int8 "
        "activations; needs the brevitas extra), exported as QCDQ ONNX.",
    )  # fmt: skip
    bucket_size: int = Field(
        256, ge=1, le=1 << 20, description="Weights per bucket sharing one scale (k)."
    )
    rounding: Literal["deterministic", "stochastic"] = Field(
        "deterministic", description="Rounding of qat and qkd during training; the final "
        "weights are always rounded to nearest.",
    )  # fmt: skip
    keep_first_last: bool = Field(
        True, description="Keep the first and last layers in full precision."
    )
    losses: losses_model() = Field(  # type: ignore[valid-type]
        default_factory=paper_losses, description="Loss of qkd and dq (default: 0.7·T²·KL at "
        "T = 2 plus 0.3·CE).",
    )  # fmt: skip
    train: TrainConfig | None = Field(
        None, description="Training of qat and qkd (the same for both); needed when they run."
    )
    dq: LevelsConfig = Field(default_factory=LevelsConfig, description="dq's levels.")

    @field_validator("bits", "methods")
    @classmethod
    def _unique(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError("each value may appear once")
        return values


@register_stage
class QuantizeStage(Stage):
    config_model = QuantizeConfig
    requires = ("models",)
    provides = ("models",)

    def plan(self, ctx: PlanContext) -> None:
        cfg: QuantizeConfig = self.config
        if cfg.model not in ctx.models:
            raise ctx.error(("model",), f"no model named {cfg.model!r} is made before this "
                            f"stage; known: {', '.join(ctx.models)}")  # fmt: skip
        if cfg.train is None and {"qat", "qkd", "brevitas"} & set(cfg.methods):
            raise ctx.error(("train",), "qat, qkd and brevitas train: give `train: {epochs: .., "
                            "lr: ..}`")  # fmt: skip
        if "brevitas" in cfg.methods and (why := brevitas_missing()):
            raise ctx.error(("methods",), why)
        for method in cfg.methods:
            for bits in cfg.bits:
                ctx.add_model(f"{cfg.model}-{method}{bits}", ("methods",), f"int{bits}")

    def run(self, ctx: StageContext) -> Artifacts:
        cfg: QuantizeConfig = self.config
        parents = [m for m in ctx.artifacts.models if cfg.model in (m.group, m.name)]
        if not parents:
            raise StageFailed(f"quantize: no model {cfg.model!r} in this run")
        made = []
        for parent in parents:
            for method in cfg.methods:
                signal = self._signal(ctx, method, parent)
                with signal.hooks() if signal else nullcontext():
                    made += [self._make(ctx, parent, method, bits, signal) for bits in cfg.bits]
        return Artifacts(models=made)

    def _signal(self, ctx: StageContext, method: Method,
                parent: ModelArtifact) -> TeacherSignal | None:  # fmt: skip
        """qkd learns from the run's teacher, dq from the full-precision model itself."""
        if method in ("qkd", "brevitas"):
            return TeacherSignal.load(ctx, ctx.artifacts.teacher(), self.config.losses)
        if method == "dq":
            return TeacherSignal.load(ctx, parent, self.config.losses)
        return None

    def _make(self, ctx: StageContext, parent: ModelArtifact, method: Method, bits: int,
              signal: TeacherSignal | None) -> ModelArtifact:  # fmt: skip
        cfg: QuantizeConfig = self.config
        group = f"{parent.group}-{method}{bits}"
        suffix = parent.name.removeprefix(parent.group)  # "@s3" with seeds, else ""
        who = Lineage(group + suffix, group, "baseline" if method in ("ptq", "qat") else
                      "quantized", method, parent.name, parent.seed)  # fmt: skip
        settings = QuantSettings(bits, cfg.bucket_size, cfg.rounding, cfg.keep_first_last,
                                 cfg.dq.init)  # fmt: skip
        model = load_model(ctx, parent)
        if method == "brevitas":
            model = with_brevitas_layers(model, bits, cfg.keep_first_last)
        val = None
        if method == "ptq":
            codes = rtn(model, settings) if bits < 8 else None
        else:
            codes, val = self._train(ctx, model, method, settings, signal, who)
        return self._save(ctx, model, parent, who, val, method, settings, codes)

    def _train(self, ctx: StageContext, model: nn.Module, method: Method, s: QuantSettings,
               signal: TeacherSignal | None,
               who: Lineage) -> tuple[dict[str, Quantized] | None, dict[str, float]]:  # fmt: skip
        cfg: QuantizeConfig = self.config
        seed = who.seed if who.seed is not None else ctx.recipe.seed
        names = [] if method == "brevitas" else prepare(model, method, s, seed)
        objective = labels_only if signal is None else signal.criterion(model, seed)
        train_cfg = cfg.dq.train if method == "dq" else cfg.train
        val = train(model, ctx.data(), objective, epochs_for(ctx, train_cfg),
                    batch_size=ctx.recipe.data.batch_size, seed=seed,
                    workers=ctx.recipe.data.workers, state_dir=ctx.stage_dir / who.name,
                    log=ctx.log, label=who.name, validate=validation(ctx),
                    augment=ctx.recipe.data.augment)  # fmt: skip
        return (None if method == "brevitas" else finish(model, names)), val

    def _save(self, ctx: StageContext, model: nn.Module, parent: ModelArtifact, who: Lineage,
              val: dict[str, float] | None, method: Method, s: QuantSettings,
              codes: dict[str, Quantized] | None) -> ModelArtifact:  # fmt: skip
        from compress.models.checkpoint import read_architecture

        arch = read_architecture(ctx.path(parent.checkpoint))
        if arch is None:
            raise StageFailed(f"{parent.checkpoint} holds no architecture description")
        codes_file = None
        if codes is not None:
            path = ctx.stage_dir / f"{who.name}.codes.safetensors"
            save_codes(path, codes)
            codes_file = ctx.rel(path)
        quant = Quantization(method=method, bits=s.bits, bucket_size=s.bucket_size,
                             codes=codes_file, tensors=sorted(codes or {}))  # fmt: skip
        if method == "brevitas":  # its layers rebuild from the description; one scale a channel
            arch = {**arch, "quantization": description(s.bits, s.keep_first_last)}
            tensors, per_scale = quantized_weights(model)
            quant = quant.model_copy(update={"bucket_size": per_scale, "tensors": tensors})
        # torch's FLOP counter trips on Brevitas' quantizers while their parameters want grads
        saved = save_model(ctx, model.requires_grad_(method != "brevitas"), arch, parent.arch,
                           who, val)  # fmt: skip
        return saved.model_copy(update={"precision": f"int{s.bits}", "quantization": quant})

