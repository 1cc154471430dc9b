"""int8 QDQ ONNX through ONNX Runtime's static quantization: per-channel int8 weights, uint8
activations calibrated (min-max) on training batches. The CPU EP runs it with integer kernels, and
it is the layout the QNN EP (Hexagon NPU) takes.

Parity is stated in quantization steps: activations are rounded to uint8 all along the network,
so the logits differ from the PyTorch model's by a few steps of the output's scale, never by an
fp32 tolerance. Top-1 agreement on the test inputs is checked beside it.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

from compress.errors import StageFailed
from compress.export.checked import write_checked
from compress.export.formats import Exported, ExportFormat, ExportJob, register_format
from compress.export.onnx import export_onnx
from compress.export.parity import compare
from compress.models.zoo import as_tensors


def output_step(path: Path) -> float | None:
    """The quantization step of the graph's first output: the scale of the DequantizeLinear
    that produces it (None when the output is not quantized)."""
    model = onnx.load(str(path))
    graph = model.graph
    out = graph.output[0].name
    producer = next((n for n in graph.node if out in n.output), None)
    if producer is None or producer.op_type != "DequantizeLinear":
        return None
    scales = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    scale = scales.get(producer.input[1])
    return None if scale is None else float(np.max(scale))


def quantize_int8(fp32: Path, out: Path, batches: Iterator[dict[str, np.ndarray]]) -> None:
    """Static QDQ quantization of ``fp32`` into ``out``, calibrated on ``batches``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(batches, None)

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the quantizer logs advice about pre-processing per call
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(str(fp32), str(out), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.MinMax)  # fmt: skip
    finally:
        quiet.setLevel(level)


@register_format
class QdqOnnx(ExportFormat):
    name = "onnx-qdq"
    suffix = ".qdq.onnx"
    description = ("int8 QDQ ONNX (ONNX Runtime static quantization); parity in steps of the "
                   "output's scale plus top-1 agreement")  # fmt: skip

    def refuses(self, precision: str) -> str | None:
        if precision in ("fp32", "int8"):
            return None
        return (f"onnx-qdq holds 8-bit weights; a model with {precision} weights would be "
                "quantized again to 8 bits: export it as onnx-packed")  # fmt: skip

    def export(self, job: ExportJob) -> Exported:
        def write(tmp: Path) -> None:
            fp32 = tmp.with_name(tmp.name + ".fp32")
            try:
                export_onnx(job.model.eval(), job.info, as_tensors(job.inputs), fp32, job.opset)
                quantize_int8(fp32, tmp, job.calibration())
            finally:
                fp32.unlink(missing_ok=True)

        def check(reference: dict, actual: dict, tmp: Path) -> dict:
            return check_steps(job, reference, actual, output_step(tmp))

        parity = write_checked(job.path, write, job.model, job.info, job.inputs, check, job.what)
        return Exported(job.path, "int8", parity)


def check_steps(job: ExportJob, reference: dict, actual: dict, step: float | None) -> dict:
    """Pass when every score is within ``steps`` output steps of PyTorch's, and the top-1 class
    agrees wherever PyTorch's lead over its runner-up is wider than twice that error (a flip
    there is no rounding), and on at least ``min_top1_agreement`` of all inputs."""
    from compress.export.checked import top1_agreement

    name = next(iter(reference))
    ref, got = reference[name], actual[name]
    result = compare(name, ref, got, np.inf, 0.0)
    policy = job.parity
    if step is None:  # an unquantized output: only the class agreement can be held to
        step = float("nan")
    in_steps = result.max_abs_error / step
    top2 = np.sort(ref, axis=1)[:, -2:]  # (n, 2)
    clear = top2[:, 1] - top2[:, 0] > 2 * policy.steps * np.nan_to_num(step, nan=0.0)
    flipped = int((clear & (ref.argmax(1) != got.argmax(1))).sum())
    agreement = top1_agreement(reference, actual)
    passed = not in_steps > policy.steps and not flipped and \
        agreement >= policy.min_top1_agreement  # fmt: skip
    summary = {"passed": passed, "max_abs_error": result.max_abs_error,
               "max_rel_error": result.max_rel_error, "output_step": step,
               "max_error_steps": in_steps, "steps": policy.steps,
               "clear_margin_flips": flipped, "min_top1_agreement": policy.min_top1_agreement}
    if not passed:
        raise StageFailed(f"parity check failed for {job.path.name}: max error {in_steps:.3g} "
                          f"output steps (allowed {policy.steps:g}); {flipped} inputs changed "
                          "class although PyTorch's lead was wider than the allowed error; "
                          f"top-1 agreement {agreement:.4f} (required "
                          f"{policy.min_top1_agreement:g}) against the PyTorch model")
    return summary
