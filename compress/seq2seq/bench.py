"""The generation benchmark behind the ``generation`` stage: real sources of exact lengths from
the test split, TTFT and decode rate of every artifact timed together per length, peak memory
in a fresh process each, and the encoder-decoder against decoder-only ratios the goals read."""

from __future__ import annotations

import json
import statistics
from typing import Any

import numpy as np

from compress.atomic import write_json
from compress.errors import StageFailed
from compress.pipeline.stage import StageContext

DECODER_ONLY = "-deconly"  # the seq2seq stage names its decoder-only student NAME-deconly


def sibling(model: str, suffix: str) -> str:
    """The name of ``model``'s sibling of the same seed: ``NAME@s1`` -> ``NAME{suffix}@s1``
    (the seq2seq stage names a seed's models ``GROUP@sSEED``)."""
    base, at, seed = model.partition("@")
    return f"{base}{suffix}{at}{seed}"


def group_of(model: str) -> str:
    return model.partition("@")[0]


def sources_of_length(ctx: StageContext, length: int, batch: int) -> dict[str, np.ndarray]:
    """``batch`` rows of exactly ``length`` source tokens: test sources run together, row i
    starting at test source i."""
    splits = ctx.data()
    texts = [str(s) for s in splits.test.x[np.arange(len(splits.test))].source]
    rows = []
    for i in range(batch):
        joined, j = "", i
        while len(joined.split()) < length and j < len(texts):  # words >= tokens is not needed:
            joined, j = f"{joined} {texts[j]}", j + 1  # encode below cuts to length exactly
        rows.append(joined)
    encoded = splits.task.encoder.encode(rows, length)
    if encoded["input_ids"].shape[1] < length or not encoded["attention_mask"].all():
        raise StageFailed(f"generation: the test split has too little text for {length}-token "
                          "sources")  # fmt: skip
    return encoded


def twins(records: list[Any], length: int) -> list[tuple[Any, Any]]:
    """(encoder-decoder record, its decoder-only twin's) pairs timed at ``length``, both with
    a TTFT and a decode rate."""
    at = {r.model: r for r in records if r.input_shape[1] == length}
    pairs = [(r, at.get(sibling(name, DECODER_ONLY))) for name, r in at.items()]
    return [(r, t) for r, t in pairs if t is not None and r.ttft_ms and t.ttft_ms
            and r.decode_tokens_per_s and t.decode_tokens_per_s]  # fmt: skip


def pair_ratios(records: list[Any], length: int) -> list[str]:
    """For each encoder-decoder timed beside its decoder-only twin at ``length``: their TTFT
    and decode-rate ratios."""
    return [f"generation @ source {length}: {r.model} TTFT {r.ttft_ms:.2f} ms = "
            f"{r.ttft_ms / t.ttft_ms:.2f}× {t.model}'s ({t.ttft_ms:.2f} ms); decode "
            f"{r.decode_tokens_per_s:.0f} tok/s = "
            f"{r.decode_tokens_per_s / t.decode_tokens_per_s:.2f}× "
            f"({t.decode_tokens_per_s:.0f} tok/s)" for r, t in twins(records, length)]  # fmt: skip


TTFT_GOAL, DECODE_GOAL, DISTILL_GOAL = 0.6, 3.0, 3.0  # the paper's claims, as the issue set them


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def speed_goals(records: list[Any], length: int) -> list[str]:
    """Goal lines at the longest source: TTFT ratio <= 0.6, decode-rate ratio >= 3."""
    lines = []
    for r, twin in twins(records, length):
        ttft, rate = r.ttft_ms / twin.ttft_ms, r.decode_tokens_per_s / twin.decode_tokens_per_s
        lines += [f"goal: {r.model} TTFT at source {length} <= {TTFT_GOAL}× {twin.model}'s: "
                  f"{ttft:.3f}× ({_verdict(ttft <= TTFT_GOAL)})",
                  f"goal: {r.model} decode rate >= {DECODE_GOAL}× {twin.model}'s: {rate:.3f}× "
                  f"({_verdict(rate >= DECODE_GOAL)})"]  # fmt: skip
    return lines


def accuracy_goals(ctx: StageContext, models: list[str]) -> list[str]:
    """Goal lines on the task's primary metric (measured on the artifact where exported), per
    encoder-decoder group over its seeds (mean ± std with several): at least its decoder-only
    twin's; distillation adds >= 3 points over the same student trained without the teacher."""
    metric = ctx.data().task.primary
    measured = {m.name: m.metrics_pytorch.get(metric.name) for m in ctx.artifacts.models}
    measured |= {e.model: e.metrics.get(metric.name) for e in ctx.artifacts.exports}
    shown = {k: metric.display(v) for k, v in measured.items() if v is not None}
    lines = []
    for group in dict.fromkeys(group_of(m) for m in models):
        seeds = [m for m in models if group_of(m) == group and m in shown]
        for suffix, goal in (("-deconly", "twin"), ("-scratch", "distillation")):
            pairs = [(shown[m], shown[sibling(m, suffix)]) for m in seeds
                     if sibling(m, suffix) in shown]  # fmt: skip
            if pairs:
                lines.append(_accuracy_line(group, f"{group}{suffix}", metric.name, pairs, goal))
    return lines


def _accuracy_line(group: str, other: str, metric: str, pairs: list[tuple[float, float]],
                   goal: str) -> str:  # fmt: skip
    """One goal line over the seeds' (this, other) values; the verdict reads the mean."""
    diffs = [a - b for a, b in pairs]
    mean = statistics.fmean(diffs)
    spread = f" ± {statistics.stdev(diffs):.2f} (sample std)" if len(diffs) > 1 else ""
    values = "; ".join(f"{a:.2f} vs {b:.2f}" for a, b in pairs)
    seeds = f"{len(pairs)} seeds" if len(pairs) > 1 else "one seed"
    if goal == "twin":
        return (f"goal: {group} {metric} >= {other}'s: {mean:+.2f}{spread} points ({values}; "
                f"{seeds}) ({_verdict(mean >= 0)})")  # fmt: skip
    return (f"goal: distillation adds >= {DISTILL_GOAL} points to {group}: {mean:+.2f}{spread} "
            f"({values} without; {seeds}) ({_verdict(mean >= DISTILL_GOAL)})")  # fmt: skip


def benchmark_generation(ctx: StageContext, cfg: Any) -> tuple[list[Any], list[str]]:
    from compress.devices.generation import GenerationArtifact, Timing, peak_memory, time_generation

    exports = [e for e in ctx.artifacts.exports if e.format == "onnx-generation"
               and (cfg.models is None or group_of(e.model) in cfg.models
                    or e.model in cfg.models)]  # fmt: skip
    if not exports:
        raise StageFailed("generation: no onnx-generation export to time; add an export stage "
                          "with formats: [onnx-generation] before this one")  # fmt: skip
    artifacts = [GenerationArtifact(e.model, ctx.path(e.path).parent / "generation")
                 for e in exports]  # fmt: skip
    timing = (Timing(warmup=1, iterations=3, max_seconds=1.0, rounds=1, threads=cfg.threads)
              if ctx.smoke else Timing(cfg.warmup, cfg.iterations, cfg.max_seconds, cfg.rounds,
                                       threads=cfg.threads))  # fmt: skip
    records, notes = [], []
    for length in cfg.source_lengths:
        source = sources_of_length(ctx, length, cfg.batch_size)
        timed = time_generation(artifacts, source, cfg.new_tokens, timing)
        for r in timed:
            ctx.log.info(f"  {r.model} @ {length}: TTFT {r.ttft_ms:.2f} ms, decode "
                         f"{r.decode_tokens_per_s:.0f} tok/s (cv {r.cv:.2f})")  # fmt: skip
        records += timed
        notes.append(f"generation @ source {length}, {cfg.new_tokens} new tokens, batch "
                     f"{cfg.batch_size} (cpu-ort): " + "; ".join(
                         f"{r.model} TTFT {r.ttft_ms:.2f} ms, decode "
                         f"{r.decode_tokens_per_s:.0f} tok/s" for r in timed))  # fmt: skip
        notes += pair_ratios(timed, length)
    longest = max(cfg.source_lengths)
    notes += speed_goals(records, longest) + accuracy_goals(ctx, [a.model for a in artifacts])
    memory = {a.model: peak_memory(a.folder, longest, cfg.new_tokens) for a in artifacts}
    notes += [f"peak memory of one generation @ source {longest}: {name} {m['peak_rss_mib']:.0f} "
              f"MiB resident ({m['generation_mib']:.0f} MiB above onnxruntime loaded)"
              for name, m in memory.items()]  # fmt: skip
    summary = {"records": [r.model_dump(mode="json") for r in records], "memory": memory,
               "notes": notes}  # fmt: skip
    write_json(ctx.stage_dir / "generation.json", json.loads(json.dumps(summary)))
    return records, notes
