"""Generation speed of exported seq2seq artifacts: time to first token (TTFT: reading the source
up to the first new token's logits) and decode tokens per second (every later token), at several
source lengths and a fixed number of new tokens, in the project's latency schema.

Models timed at the same source length run in interleaved rounds (A, B, A, B, ...), so their
ratios come from the same minutes of the same machine. Each call is one whole generation of
``new_tokens`` tokens per row (EOS does not stop it: the length is fixed); a record's samples
are whole generations, its ``ttft_ms`` the median prefill and ``decode_tokens_per_s`` the rows ×
(new_tokens − 1) over the median decode time. Peak memory is read in a fresh process per artifact
(``python -m compress.devices.generation FOLDER LENGTH NEW``): the resident set's high-water mark
after one generation at the longest source, and how much of it the generation added. Torch-free.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compress.devices.latency import Contender, LatencyRecord, measure_group
from compress.runtime.generate import Sampling, generate, open_generator


@dataclass(frozen=True)
class GenerationArtifact:
    model: str  # name in the run
    folder: Path  # the generation/ folder of its export


@dataclass(frozen=True)
class Timing:
    warmup: int = 2
    iterations: int = 20
    max_seconds: float = 20.0
    rounds: int = 5
    cv_threshold: float = 0.15
    threads: int | None = None


def _contender(artifact: GenerationArtifact, source: dict[str, np.ndarray], new_tokens: int,
               timing: Timing, phases: list[tuple[float, float]]) -> Contender:  # fmt: skip
    threads, warmup = timing.threads, timing.warmup
    sampling = Sampling(max_new_tokens=new_tokens, stop_at_eos=False)

    def load():  # noqa: ANN202  (the call to time)
        session = open_generator(artifact.folder, threads=threads)

        def run() -> None:
            out = generate(session, source["input_ids"], source["attention_mask"], sampling)
            phases.append((out.first_token_s, out.decode_s))

        return run

    import onnxruntime as ort

    identity = {"model": artifact.model, "artifact": str(artifact.folder),
                "format": "onnx-generation", "target": "cpu-ort", "runtime": "onnxruntime",
                "runtime_version": ort.__version__, "precision": "fp32",
                "input_shape": list(source["input_ids"].shape), "threads": threads,
                "warmup": warmup}  # fmt: skip
    return Contender(load, len(source["input_ids"]), identity)


def time_generation(artifacts: list[GenerationArtifact], source: dict[str, np.ndarray],
                    new_tokens: int, timing: Timing) -> list[LatencyRecord]:  # fmt: skip
    """One record per artifact at this source (b, s), all timed in the same rounds."""
    phases: list[list[tuple[float, float]]] = [[] for _ in artifacts]
    contenders = [_contender(a, source, new_tokens, timing, p)
                  for a, p in zip(artifacts, phases, strict=True)]  # fmt: skip
    records = measure_group(contenders, warmup=timing.warmup, iterations=timing.iterations,
                            max_seconds=timing.max_seconds, cv_threshold=timing.cv_threshold,
                            rounds=timing.rounds,
                            group=f"generation@{source['input_ids'].shape[1]}")  # fmt: skip
    out = []
    for record, timed, c in zip(records, phases, contenders, strict=True):
        timed = timed[-len(c.samples):]  # the timed calls (load, first and warm-up came before)
        first = statistics.median(t for t, _ in timed)
        decode = statistics.median(d for _, d in timed)
        rate = c.batch_size * (new_tokens - 1) / decode if decode > 0 else None
        note = (f"one call = {new_tokens} new tokens per row after a {source['input_ids'].shape[1]}"
                "-token source; ttft = prefill, decode rate = later tokens")  # fmt: skip
        out.append(record.model_copy(update={"ttft_ms": first * 1e3, "decode_tokens_per_s": rate,
                                             "note": note}))
    return out


def peak_memory(folder: Path, source_length: int, new_tokens: int) -> dict[str, float]:
    """Peak resident memory (MiB) of a fresh process that loads the artifact and generates once,
    and the part above the process's size right after loading onnxruntime."""
    done = subprocess.run([sys.executable, "-m", "compress.devices.generation", str(folder),
                           str(source_length), str(new_tokens)], capture_output=True, text=True,
                          check=True, timeout=600)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _resident_peak_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        line = next(ln for ln in f if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _main(folder: str, source_length: str, new_tokens: str) -> None:
    import onnxruntime  # noqa: F401  (the baseline includes the runtime itself)

    baseline = _resident_peak_mib()
    session = open_generator(folder)
    ids = np.full((1, int(source_length)), session.meta["bos_id"], np.int64)
    generate(session, ids, np.ones_like(ids),
             Sampling(max_new_tokens=int(new_tokens), stop_at_eos=False))  # fmt: skip
    peak = _resident_peak_mib()
    print(json.dumps({"peak_rss_mib": round(peak, 1), "generation_mib": round(peak - baseline, 1)}))


if __name__ == "__main__":
    _main(*sys.argv[1:4])
