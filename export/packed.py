"""Packed low-bit ONNX: each quantized weight is stored as its b-bit codes, 8/b to a byte, plus
per-bucket α and β (fp32) and the tensor's 2^b levels, and dequantized inside the graph:

    bytes ─BitShift─BitwiseAnd─► codes ─Gather(levels)─► q ─·α+β─► weight ─Reshape─► Conv/Gemm

so the file really is smaller (k·32 / (k·b + 64) for a quantized tensor) and holds exactly the
grid the model was trained on. Every input of that subgraph is a constant, so ONNX Runtime folds
it into an fp32 weight when the session is created: the arithmetic stays fp32, the file and the
download shrink. Parity is therefore held to the fp32 tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compress.errors import StageFailed
from compress.export.checked import write_checked
from compress.export.formats import Exported, ExportFormat, ExportJob, register_format
from compress.export.onnx import export_onnx
from compress.export.parity import check_parity
from compress.models.zoo import as_tensors
from compress.quant.functions import Quantized

PACKABLE_BITS = (1, 2, 4, 8)
PREFIX = "model."  # the exporter's name for the wrapped model's parameters


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """(n,) codes below 2^bits → bytes holding 8/bits codes each, the first in the low bits."""
    per = 8 // bits
    padded = np.concatenate([codes, np.zeros((-len(codes)) % per, codes.dtype)])
    lanes = padded.reshape(-1, per).astype(np.uint8)  # (bytes, per)
    shifts = (np.arange(per) * bits).astype(np.uint8)
    return np.bitwise_or.reduce(lanes << shifts, axis=1).astype(np.uint8)


def shared_constants(bits: int) -> list[onnx.TensorProto]:
    """Constants every packed tensor's subgraph reads; stored once per file."""
    per = 8 // bits
    return [numpy_helper.from_array((np.arange(per) * bits).astype(np.uint8)[None], "pk_shifts"),
            numpy_helper.from_array(np.array([2**bits - 1], np.uint8), "pk_mask"),
            numpy_helper.from_array(np.array([-1, 1], np.int64), "pk_column"),
            numpy_helper.from_array(np.array([-1], np.int64), "pk_flat"),
            numpy_helper.from_array(np.array([0], np.int64), "pk_zero")]  # fmt: skip


def unpack_nodes(name: str, q: Quantized, bits: int,
                 channel_scale: np.ndarray | None) -> tuple[list, list]:  # fmt: skip
    """Initializers and nodes that compute the weight ``name`` from its packed codes, times
    ``channel_scale`` per output channel when the exporter folded a BatchNorm into it."""
    n_buckets, k = q.codes.shape
    numel = int(np.prod(q.shape)) if q.shape else 1
    n = name.replace(".", "_") + "_"
    inits = [numpy_helper.from_array(pack(q.codes.numpy().ravel(), bits), n + "packed"),
             numpy_helper.from_array(q.levels.numpy().astype(np.float32), n + "levels"),
             numpy_helper.from_array(q.alpha.numpy().astype(np.float32), n + "alpha"),
             numpy_helper.from_array(q.beta.numpy().astype(np.float32), n + "beta"),
             numpy_helper.from_array(np.array([n_buckets * k], np.int64), n + "codes_n"),
             numpy_helper.from_array(np.array([n_buckets, k], np.int64), n + "grid"),
             numpy_helper.from_array(np.array([numel], np.int64), n + "numel"),
             numpy_helper.from_array(np.array(q.shape, np.int64), n + "shape")]  # fmt: skip
    nodes = [helper.make_node("Reshape", [n + "packed", "pk_column"], [n + "col"]),
             helper.make_node("BitShift", [n + "col", "pk_shifts"], [n + "shifted"],
                              direction="RIGHT"),
             helper.make_node("BitwiseAnd", [n + "shifted", "pk_mask"], [n + "lanes"]),
             helper.make_node("Reshape", [n + "lanes", "pk_flat"], [n + "all"]),
             helper.make_node("Slice", [n + "all", "pk_zero", n + "codes_n"], [n + "codes"]),
             helper.make_node("Cast", [n + "codes"], [n + "index"], to=TensorProto.INT64),
             helper.make_node("Gather", [n + "levels", n + "index"], [n + "q"]),
             helper.make_node("Reshape", [n + "q", n + "grid"], [n + "q2"]),  # (n_buckets, k)
             helper.make_node("Mul", [n + "q2", n + "alpha"], [n + "scaled"]),
             helper.make_node("Add", [n + "scaled", n + "beta"], [n + "values"]),
             helper.make_node("Reshape", [n + "values", "pk_flat"], [n + "vflat"]),
             helper.make_node("Slice", [n + "vflat", "pk_zero", n + "numel"], [n + "w"]),
             helper.make_node("Reshape", [n + "w", n + "shape"], [n + "weight"])]  # fmt: skip
    if channel_scale is None:
        nodes[-1].output[0] = PREFIX + name
    else:  # (c_out, 1, ..., 1): the BatchNorm scale γ/√(σ²+ε) the exporter folded in
        scale = channel_scale.reshape(-1, *[1] * (len(q.shape) - 1)).astype(np.float32)
        inits.append(numpy_helper.from_array(scale, n + "bn_scale"))
        nodes.append(helper.make_node("Mul", [n + "weight", n + "bn_scale"], [PREFIX + name]))
    return inits, nodes


def folded_scale(exported: np.ndarray, q: Quantized) -> np.ndarray | None:
    """The per-output-channel factor s with exported = Q(w)·s (a BatchNorm folded into the
    layer by the exporter), None when the exporter kept the weight as it was. Anything else
    means the exported weight is not the trained grid, and packing it would be wrong."""
    grid = q.dequantize().numpy().astype(np.float64)
    if exported.shape != grid.shape:
        raise ValueError(f"the exporter reshaped this weight ({list(exported.shape)} instead of "
                         f"{list(grid.shape)})")  # fmt: skip
    if np.allclose(exported, grid, rtol=1e-6, atol=1e-7):
        return None
    rows, flat = grid.reshape(len(grid), -1), exported.reshape(len(grid), -1).astype(np.float64)
    norms = (rows**2).sum(1)
    scale = np.where(norms > 0, (rows * flat).sum(1) / np.maximum(norms, 1e-30), 1.0)  # (c_out,)
    if not np.allclose(rows * scale[:, None], flat, rtol=1e-4, atol=1e-6):
        raise ValueError("the exporter changed this weight by more than a per-channel scale")
    return scale


def replace_weights(path: Path, codes: dict[str, Quantized], bits: int) -> None:
    """Swap each quantized fp32 initializer of the ONNX file for its packed codes and the
    subgraph that unpacks them (times the scale of a BatchNorm the exporter folded into it);
    the nodes go first, so the graph stays topologically sorted.
    The exporter's intermediate shape annotations go too: ONNX Runtime infers them, and in a
    small model they weigh as much as the codes."""
    model = onnx.load(str(path))
    graph = model.graph
    names = {PREFIX + name for name in codes}
    found = {i.name for i in graph.initializer}
    missing = sorted(names - found)
    if missing:
        raise ValueError(f"the exported graph has no initializer {missing[0]!r}")
    exported = {i.name: numpy_helper.to_array(i) for i in graph.initializer if i.name in names}
    kept = [i for i in graph.initializer if i.name not in names]
    del graph.initializer[:]
    graph.initializer.extend(kept + shared_constants(bits))
    del graph.value_info[:]
    prologue = []
    for name, q in codes.items():
        try:
            scale = folded_scale(exported[PREFIX + name], q)
        except ValueError as e:
            raise ValueError(f"{name}: {e}") from None
        inits, nodes = unpack_nodes(name, q, bits, scale)
        graph.initializer.extend(inits)
        prologue += nodes
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(prologue + body)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


@register_format
class PackedOnnx(ExportFormat):
    name = "onnx-packed"
    suffix = ".packed.onnx"
    description = ("ONNX with b-bit packed weight codes and per-bucket scales, dequantized in the "
                   "graph; parity within the fp32 tolerance of the quantized PyTorch model")

    def refuses(self, precision: str) -> str | None:
        if precision == "fp32":
            return "onnx-packed holds quantized weights; this model's are fp32"
        bits = int(precision.removeprefix("int"))
        if bits not in PACKABLE_BITS:
            return f"onnx-packed packs {', '.join(map(str, PACKABLE_BITS))} bits, not {bits}"
        return None

    def export(self, job: ExportJob) -> Exported:
        from compress.quant.codes import load_codes

        quant = job.artifact.quantization
        if quant is None or quant.codes is None:
            raise StageFailed(f"{job.artifact.name} has no quantization codes to pack; its "
                              "weights were never put on a low-bit grid")  # fmt: skip
        codes = load_codes(job.run_dir / quant.codes)

        def write(tmp: Path) -> None:
            export_onnx(job.model.eval(), job.info, as_tensors(job.inputs), tmp, job.opset)
            try:
                replace_weights(tmp, codes, quant.bits)
            except ValueError as e:
                raise StageFailed(f"cannot pack {job.artifact.name}'s weights: {e}") from None

        def check(reference: dict, actual: dict, _tmp: Path) -> dict:
            return check_parity(job.path.name, reference, actual, job.parity.atol,
                                job.parity.rtol)  # fmt: skip

        parity = write_checked(job.path, write, job.model, job.info, job.inputs, check, job.what)
        return Exported(job.path, job.artifact.precision, parity)
