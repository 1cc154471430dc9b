"""The seq2seq stage: distil the decoder-only teacher into an encoder-decoder student and into a
decoder-only student of the same parameter count, each also trained without the teacher.

Thin: the method (alignment, loss, students) lives in ``compress.seq2seq``; training, saving and
measuring are the pipeline's own. Each pair (distilled, scratch) starts from the same weights and
sees the same batches in the same order, so their difference is what the teacher taught.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from compress.models.encdec import EncDecSpec
from compress.models.gpt import GPTSpec
from compress.pipeline.artifacts import Artifacts, ModelArtifact
from compress.pipeline.stage import PlanContext, Stage, StageConfig, StageContext, register_stage
from compress.recipe import TrainConfig


class Seq2SeqConfig(StageConfig):
    """Encoder-decoder student distilled from a decoder-only teacher, with a decoder-only
    student of equal parameters as the baseline (both also trained from scratch)."""

    kind: Literal["seq2seq"] = Field(description="Stage kind.")
    name: str = Field("encdec", pattern=r"^[\w.-]+$", max_length=80,
                      description="Name of the encoder-decoder student.")  # fmt: skip
    student: EncDecSpec = Field(description="The encoder-decoder: {arch: encdec, ...}.")
    decoder_only: GPTSpec | None = Field(
        None, description="The decoder-only student (default: the student's width and heads, "
        "its depth chosen to match the student's parameter count)."
    )  # fmt: skip
    alpha: float = Field(0.9, ge=0, le=1, description="Weight a of KL(teacher‖student); "
                         "cross-entropy gets 1 − a.")  # fmt: skip
    temperature: float = Field(1.0, gt=0, le=100, description="Softmax temperature of the KL.")
    teacher_logits: Literal["per-batch", "top-k"] = Field(
        "per-batch", description="How the teacher's logits reach the loss: 'per-batch' runs the "
        "teacher on every batch (exact KL, one teacher pass per step); 'top-k' computes its "
        "top_k logits per position once into the stage folder (one pass in all, n·t·k·8 bytes "
        "on disk, KL over those k tokens)."
    )  # fmt: skip
    top_k: int = Field(32, ge=1, le=100_000, description="Logits kept per position with top-k.")
    train: TrainConfig = Field(description="How to train every student.")
    scratch: bool = Field(True, description="Also train each student without the teacher.")


def _check_hf_teacher(ctx: PlanContext, tokens: int, what: str) -> None:
    """An ``hf:`` teacher's logits are over its own token ids, so the task must use its
    tokenizer (the error points at task.tokenizer); and it must read ``tokens`` positions
    (``what`` says which)."""
    from compress.models.hf import HFModelSpec, check_same_tokenizer, max_positions

    teacher, task = ctx.recipe.teacher.model, ctx.recipe.task
    if not isinstance(teacher, HFModelSpec):
        return
    problem = check_same_tokenizer(teacher.hf, task.tokenizer)
    if problem:
        raise ctx.source.error_at(("task", "tokenizer") if task.tokenizer else ("task",), problem)
    limit = max_positions(teacher.hf)
    if limit is not None and tokens > limit:
        raise ctx.error(("kind",), f"the hf: teacher {teacher.hf.name} reads at most {limit} "
                        f"tokens; {what} are {tokens}")  # fmt: skip


@register_stage
class Seq2SeqStage(Stage):
    config_model = Seq2SeqConfig
    requires = ("models",)
    provides = ("models",)

    def plan(self, ctx: PlanContext) -> None:
        from compress.stages.models import check_buildable

        if ctx.info.task != "seq2seq":
            raise ctx.error(("kind",), f"the seq2seq stage needs `task: seq2seq`; the recipe's "
                            f"task is {ctx.info.task}")  # fmt: skip
        task = ctx.recipe.task
        _check_hf_teacher(ctx, task.max_length + task.max_target,
                          "task.max_length + task.max_target (source, then target)")  # fmt: skip
        check_buildable(ctx, self.config.student, "student")
        if self.config.decoder_only is not None:
            check_buildable(ctx, self.config.decoder_only, "decoder_only")
        for name in self._names():
            ctx.add_model(name, ("name",))

    def _names(self) -> list[str]:
        bases = [self.config.name, f"{self.config.name}-deconly"]
        return [n for b in bases for n in ([b, f"{b}-scratch"] if self.config.scratch else [b])]

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.seq2seq.students import matched_decoder_only

        cfg: Seq2SeqConfig = self.config
        info = ctx.data().info
        specs = {cfg.name: cfg.student,
                 f"{cfg.name}-deconly": cfg.decoder_only or matched_decoder_only(cfg.student,
                                                                                 info)}  # fmt: skip
        models = []
        for seed in ctx.recipe.student_seeds():
            for name, spec in specs.items():
                models += self._pair(ctx, name, spec, seed)
        return Artifacts(models=models)

    def _pair(self, ctx: StageContext, group: str, spec: Any, seed: int) -> list[ModelArtifact]:
        """The distilled student and, with ``scratch``, the same one trained on labels."""
        from compress.seq2seq.loss import TargetCrossEntropy, TeacherPerBatch
        from compress.stages.models import Lineage, load_model

        cfg: Seq2SeqConfig = self.config
        teacher = ctx.artifacts.teacher()
        suffix = f"@s{seed}" if ctx.recipe.seeds else ""
        seed_of = seed if ctx.recipe.seeds else None
        who = Lineage(group + suffix, group, "student", "seq2seq", teacher.name, seed_of)
        kd = self._distillation(ctx, TeacherPerBatch(load_model(ctx, teacher), ctx.data().info))
        out = [self._train(ctx, spec, who, seed, kd)]
        if cfg.scratch:
            who = Lineage(f"{group}-scratch{suffix}", f"{group}-scratch", "baseline", "trained",
                          None, seed_of)  # fmt: skip
            out.append(self._train(ctx, spec, who, seed, TargetCrossEntropy()))
        return out

    def _distillation(self, ctx: StageContext, teacher: Any) -> Any:
        """The distillation criterion with the teacher per batch or its cached top-k."""
        from compress.seq2seq.loss import Seq2SeqDistillation
        from compress.seq2seq.topk import CachedTopKDistillation, cache_topk

        cfg: Seq2SeqConfig = self.config
        if cfg.teacher_logits == "per-batch":
            return Seq2SeqDistillation(teacher, cfg.alpha, cfg.temperature)
        splits = ctx.data()
        cache = cache_topk(teacher, splits.task, splits.train, cfg.top_k,
                           ctx.recipe.task.max_target, ctx.stage_dir,
                           ctx.recipe.data.eval_batch_size)  # fmt: skip
        return CachedTopKDistillation(cache, cfg.alpha, cfg.temperature)

    def _train(self, ctx: StageContext, spec: Any, who: Any, seed: int,
               objective: Any) -> ModelArtifact:  # fmt: skip
        from compress.models import build_model
        from compress.stages.models import epochs_for, finish_model, seeded, validation
        from compress.train import train

        splits = ctx.data()
        seeded(seed)  # same seed → the same initial weights with and without the teacher
        model = build_model(spec, splits.info)
        val = train(model, splits, objective, epochs_for(ctx, self.config.train),
                    batch_size=ctx.recipe.data.batch_size, seed=seed,
                    workers=ctx.recipe.data.workers, state_dir=ctx.stage_dir / who.name,
                    log=ctx.log, label=who.name, validate=validation(ctx))  # fmt: skip
        return finish_model(ctx, model, spec, who, val)


class GenerationBenchConfig(StageConfig):
    """Time to first token and decode tokens per second of the run's generation artifacts
    (export format onnx-generation) on cpu-ort, at several source lengths, and peak memory."""

    kind: Literal["generation"] = Field(description="Stage kind.")
    models: list[str] | None = Field(
        None, description="Models to time, by name (default: every onnx-generation export)."
    )
    source_lengths: list[int] = Field([64, 256, 512], min_length=1,
                                      description="Source lengths in tokens.")  # fmt: skip
    new_tokens: int = Field(32, ge=2, le=4096, description="Tokens generated per call (fixed).")
    batch_size: int = Field(1, ge=1, le=1024, description="Sources per call.")
    warmup: int = Field(2, ge=0, le=1000, description="Untimed generations first.")
    iterations: int = Field(20, ge=3, le=10_000, description="Timed generations per model.")
    rounds: int = Field(5, ge=1, le=1000, description="Interleaved rounds per source length.")
    max_seconds: float = Field(20.0, gt=0, le=3600, description="Cap on one model's timing.")
    threads: int | None = Field(None, ge=1, le=256, description="ONNX Runtime intra-op threads.")


@register_stage
class GenerationBenchStage(Stage):
    config_model = GenerationBenchConfig
    requires = ("exports",)
    provides = ("latency",)

    def plan(self, ctx: PlanContext) -> None:
        if ctx.info.task != "seq2seq":
            raise ctx.error(("kind",), "the generation stage times seq2seq artifacts; the "
                            f"recipe's task is {ctx.info.task}")  # fmt: skip
        if self.config.models is None or "teacher" in self.config.models:
            longest = max(self.config.source_lengths) + 1 + self.config.new_tokens
            _check_hf_teacher(ctx, longest, "the longest source + BOS + new_tokens")
        unknown = [n for n in self.config.models or () if n not in ctx.models]
        if unknown:
            raise ctx.error(("models",), f"no model named {unknown[0]!r} is made before this "
                            f"stage; known: {', '.join(ctx.models)}")  # fmt: skip

    def run(self, ctx: StageContext) -> Artifacts:
        from compress.seq2seq.bench import benchmark_generation

        records, notes = benchmark_generation(ctx, self.config)
        return Artifacts(latency=[r.model_dump(mode="json") for r in records], notes=notes)
