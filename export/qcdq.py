"""QCDQ ONNX through Brevitas' own export: the models of the quantize stage's ``brevitas``
method, whose layers already carry their quantizers. Every quantized tensor is written as
QuantizeLinear → Clip → DequantizeLinear (the Clip narrows int8 to the trained bit width, so 4-
and 2-bit weights and 8-bit activations share the standard int8 operators); ONNX Runtime's CPU
EP runs it as is. The weights stay fp32 initializers quantized in the graph, so the file is not
smaller than fp32; what it buys is the trained integer grid, bit for bit.

Parity is onnx-qdq's: the logits are int8 (the last layer quantizes its output), so the error is
stated in steps of that scale, beside the top-1 rules."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import onnx
from torch import nn

from compress.errors import StageFailed
from compress.export.checked import write_checked
from compress.export.formats import Exported, ExportFormat, ExportJob, register_format
from compress.export.onnx import ScoresOnly, _exporter_logs_off, dynamic_shapes, strip_debug_info
from compress.export.qdq import check_steps, output_step
from compress.models.zoo import as_tensors
from compress.tasks import TaskInfo


def export_qcdq(model: nn.Module, info: TaskInfo, sample: dict, path: Path, opset: int) -> None:
    """Write ``model`` (Brevitas layers) to ``path`` with the signature's names and dynamic
    axes; ``sample`` needs at least 2 along every dynamic axis."""
    from compress.quant.brevitas_layers import brevitas

    brevitas()  # a clear error naming the extra when Brevitas is missing
    with warnings.catch_warnings():  # its import warns about an optional kernel package
        warnings.simplefilter("ignore")
        from brevitas.export import export_onnx_qcdq

    wrapped = ScoresOnly(model.eval(), info).eval()
    args = tuple(sample[name] for name in info.signature.input_names)
    try:
        # The exporter prints progress lines and warnings; keep the CLI's output ours.
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            _exporter_logs_off(),
        ):
            warnings.simplefilter("ignore")
            export_onnx_qcdq(wrapped, args=args, export_path=str(path), dynamo=True,
                             opset_version=opset, input_names=info.signature.input_names,
                             output_names=info.signature.output_names[:1],
                             dynamic_shapes=(dynamic_shapes(info),), optimize=True,
                             external_data=False)  # fmt: skip
    except Exception as e:  # the exporter raises many types; all mean the same to the user
        raise StageFailed(f"QCDQ export failed for {path.name}: {str(e).splitlines()[0]}") from e
    strip_debug_info(path)
    _initializers_not_inputs(path)


def _initializers_not_inputs(path: Path) -> None:
    """Brevitas' exporter lists the initializers among the graph's inputs too, which makes them
    overridable and stops ONNX Runtime from folding them as constants; keep the real inputs."""
    model = onnx.load(str(path))
    graph = model.graph
    constants = {i.name for i in graph.initializer}
    real = [i for i in graph.input if i.name not in constants]
    del graph.input[:]
    graph.input.extend(real)
    onnx.save(model, str(path))


@register_format
class QcdqOnnx(ExportFormat):
    name = "onnx-qcdq"
    suffix = ".qcdq.onnx"
    description = ("QCDQ ONNX of a model with Brevitas layers (the quantize stage's brevitas "
                   "method), via Brevitas' export; parity in steps of the output's scale plus "
                   "top-1 rules")  # fmt: skip

    def refuses(self, precision: str) -> str | None:
        if precision == "fp32":
            return (
                "onnx-qcdq holds models trained with Brevitas layers (quantize method "
                "brevitas); an fp32 model has none: export it as onnx or onnx-qdq"
            )
        return None

    def export(self, job: ExportJob) -> Exported:
        from compress.quant.brevitas_layers import is_brevitas

        if not is_brevitas(job.model):
            raise StageFailed(f"onnx-qcdq: {job.artifact.name} has no Brevitas layers (only the "
                              "quantize stage's brevitas method makes them); export it as "
                              "onnx-qdq or onnx-packed")  # fmt: skip

        def write(tmp: Path) -> None:
            export_qcdq(job.model, job.info, as_tensors(job.inputs), tmp, job.opset)

        def check(reference: dict, actual: dict, tmp: Path) -> dict:
            return check_steps(job, reference, actual, output_step(tmp))

        parity = write_checked(job.path, write, job.model, job.info, job.inputs, check, job.what)
        precision = job.artifact.precision
        return Exported(job.path, precision, parity)
