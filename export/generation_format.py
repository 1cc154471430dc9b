"""The ``onnx-generation`` export format: a seq2seq model (``encdec`` or ``gpt``) as the files a
device generates text with, plus its teacher-forcing graph for the task's metrics.

In the model's folder: ``NAME.forward.onnx`` (the task's signature: source and decoder inputs ->
logits of every target position; fp32 parity within atol + rtol·|x|, evaluated by the export
stage in ONNX Runtime) and ``generation/`` (``encoder.onnx`` + ``decoder.onnx`` with the KV cache,
or ``decoder.onnx`` alone for a decoder-only model, and ``generation.json``), whose greedy
generation must choose the same token as the PyTorch model at every step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from compress.errors import StageFailed
from compress.export.formats import Exported, ExportFormat, ExportJob, register_format
from compress.tasks.seq2seq import IGNORE

PARITY_SOURCES = 4  # test sources generated from in the per-step parity check


def special_ids(inputs: dict[str, np.ndarray]) -> dict[str, int]:
    """BOS, EOS and padding ids as the task's batch uses them: every decoder input starts with
    BOS, every target ends with EOS, a padded source position holds the padding id."""
    labels = inputs["labels"]
    last = (labels != IGNORE).sum(1) - 1  # (b,) index of each target's EOS
    eos = np.unique(labels[np.arange(len(labels)), last])
    pads = np.unique(inputs["input_ids"][inputs["attention_mask"] == 0])
    if len(eos) != 1 or len(pads) > 1:
        raise StageFailed("onnx-generation: the batch does not end every target with one EOS "
                          "id, or pads with several ids")  # fmt: skip
    return {"bos_id": int(inputs["decoder_input_ids"][0, 0]), "eos_id": int(eos[0]),
            "pad_id": int(pads[0]) if len(pads) else 0}  # fmt: skip


def parity_sample(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The first few test sources, without columns that are padding in all of them."""
    ids, mask = inputs["input_ids"][:PARITY_SOURCES], inputs["attention_mask"][:PARITY_SOURCES]
    width = int(mask.sum(1).max())
    return {"input_ids": ids[:, :width], "attention_mask": mask[:, :width]}


def write_forward(job: ExportJob) -> dict:
    """The teacher-forcing graph (the task's signature) at ``job.path``, fp32 parity on the
    job's test inputs; written by the TorchScript exporter like the generation graphs."""
    import torch

    from compress.export.checked import write_checked
    from compress.export.onnx import ScoresOnly
    from compress.export.parity import check_parity
    from compress.export.seq2seq import torchscript_export

    sig = job.info.signature
    axes = {s.name: s.dynamic_axes() for s in [*sig.inputs, *sig.outputs]}
    args = tuple(torch.from_numpy(job.inputs[n]) for n in sig.input_names)

    def write(tmp: Path) -> None:
        torchscript_export(ScoresOnly(job.model.eval(), job.info), args, sig.input_names,
                           sig.output_names[:1], axes, tmp, job.opset)  # fmt: skip

    def check(reference: dict, actual: dict, _tmp: Path) -> dict:
        return check_parity(job.path.name, reference, actual, job.parity.atol, job.parity.rtol)

    return write_checked(job.path, write, job.model, job.info, job.inputs, check, job.what)


def token_agreement(job: ExportJob) -> float:
    """Share of real target positions where the artifact's top token is PyTorch's (the shared
    check's top-1 rule reads axis 1, the target axis here, so it is recomputed per token)."""
    from compress.export.checked import reference_outputs
    from compress.runtime import OrtModel

    reference = reference_outputs(job.model, job.info, job.inputs)["logits"]  # (b, t, V)
    actual = OrtModel(job.path).run(job.inputs)["logits"]
    real = job.inputs["labels"] != IGNORE
    return float((reference.argmax(-1) == actual.argmax(-1))[real].mean())


@register_format
class GenerationOnnx(ExportFormat):
    name = "onnx-generation"
    suffix = ".forward.onnx"
    description = ("seq2seq models: teacher-forcing ONNX plus encoder / decoder-with-KV-cache "
                   "graphs; greedy generation equal to PyTorch's at every step")  # fmt: skip

    def refuses(self, precision: str) -> str | None:
        return None if precision == "fp32" else f"onnx-generation writes fp32, not {precision}"

    def export(self, job: ExportJob) -> Exported:
        from compress.export.generation_parity import write_generation_artifact

        if job.info.task != "seq2seq":
            raise StageFailed(f"onnx-generation holds seq2seq models; {job.artifact.name} is "
                              f"a {job.info.task} model")  # fmt: skip
        parity = write_forward(job)
        gen = write_generation_artifact(
            job.model, job.path.parent / "generation", parity_sample(job.inputs),
            special_ids(job.inputs), max_new_tokens=job.inputs["labels"].shape[1],
            atol=max(job.parity.atol * 10, 1e-3),
        )  # fmt: skip
        parity["top1_agreement"] = token_agreement(job)
        parity["generation"] = {k: v for k, v in gen["parity"].items()
                                if k != "per_step_max_abs_error"}  # fmt: skip
        return Exported(job.path, "fp32", parity)
