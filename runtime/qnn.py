"""Qualcomm Hexagon NPU through ONNX Runtime's QNN execution provider (HTP backend).

    model = QnnModel("student.int8.onnx", QnnOptions(soc="SM8650"))   # a QDQ model or a context
    model.run({"input": x}); model.input_specs; model.output_specs
    placed = compile_context("student.int8.onnx", "student.SM8650.qnn.onnx", QnnOptions())

On x86 Linux the HTP backend of ``onnxruntime-qnn`` is an emulator: it computes what the NPU
computes (same quantized arithmetic), at an emulator's speed. ``QnnModel.emulated`` says so, and
every timing taken through it must be labelled as emulator time, never as device latency.

A context model (EPContext) is the NPU's compiled binary for one SoC, embedded in an ONNX file:
the NPU counterpart of a TensorRT engine. It loads without recompiling.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compress.errors import CompressError
from compress.runtime.providers import QNN_EP, SessionModel, Threads, open_ort, qnn_htp_backend

# SoC model ids and Hexagon architectures from the QNN SDK's QnnTypes.h (QNN_SOC_MODEL_*), as
# tabulated in ExecuTorch's Qualcomm backend (backends/qualcomm/serialization/qc_schema.py).
SOCS: dict[str, tuple[int, int, str]] = {
    "SM8550": (43, 73, "Snapdragon 8 Gen 2"),
    "SM8650": (57, 75, "Snapdragon 8 Gen 3"),
    "SM8750": (69, 79, "Snapdragon 8 Elite"),
    "SM8850": (87, 81, "Snapdragon 8 Elite Gen 5"),
}
QDQ = {"QuantizeLinear", "DequantizeLinear"}


@dataclass(frozen=True)
class QnnOptions:
    soc: str = "SM8650"
    allow_cpu_fallback: bool = False  # the default refuses a model the NPU cannot take whole

    def provider_options(self) -> dict[str, str]:
        if self.soc not in SOCS:
            raise CompressError(f"unknown Snapdragon SoC {self.soc!r}; known: {', '.join(SOCS)}")
        soc_model, arch, _ = SOCS[self.soc]
        return {"backend_path": qnn_htp_backend(), "soc_model": str(soc_model),
                "htp_arch": str(arch), "htp_performance_mode": "burst"}  # fmt: skip

    def config(self) -> dict[str, str]:
        return {"session.disable_cpu_ep_fallback": "0" if self.allow_cpu_fallback else "1"}


def is_emulated() -> bool:
    """True when the QNN EP's device is not an NPU (the x86 HTP emulator)."""
    import onnxruntime as ort

    from compress.runtime.providers import qnn_library

    qnn_library()
    kinds = {d.device.type.name for d in ort.get_ep_devices() if d.ep_name == QNN_EP}
    return "NPU" not in kinds


class QnnModel(SessionModel):
    """A QDQ ONNX model or a QNN context model in a session on the HTP backend."""

    def __init__(self, path: str | Path, options: QnnOptions | None = None,
                 threads: Threads | None = None, profile_prefix: str | None = None) -> None:
        options, threads = options or QnnOptions(), threads or Threads()
        try:
            session = open_ort(path, "qnn", threads=threads, config=options.config(),
                               provider_options=options.provider_options(),
                               profile_prefix=profile_prefix)  # fmt: skip
        except CompressError:
            raise
        except Exception as e:  # the EP refuses the graph: unsupported operators, no fallback
            raise CompressError(f"{Path(path).name}: the QNN HTP backend refused it "
                                f"({str(e).strip().splitlines()[-1]})") from None  # fmt: skip
        super().__init__(session)
        self.emulated = is_emulated()


def compile_context(model: str | Path, out: str | Path, options: QnnOptions) -> dict[str, Any]:
    """Compile ``model`` for ``options.soc`` into an EPContext model at ``out`` (one file, the
    binary embedded) and return the operator placement. The file appears only when complete."""
    out = Path(out)
    partial = out.with_name(f".{out.name}.partial")
    config = {**options.config(), "ep.context_enable": "1", "ep.context_embed_mode": "1",
              "ep.context_file_path": str(partial)}  # fmt: skip
    try:
        open_ort(model, "qnn", config=config, provider_options=options.provider_options())
    except Exception as e:
        partial.unlink(missing_ok=True)
        raise CompressError(f"{Path(model).name}: compiling for {options.soc} failed "
                            f"({str(e).strip().splitlines()[-1]})") from None  # fmt: skip
    os.replace(partial, out)
    return placement(model, out)


def placement(model: str | Path, context: str | Path) -> dict[str, Any]:
    """Which of ``model``'s nodes the NPU took: every node of the original graph that is not
    left as an ordinary node in the context model went into an NPU binary (EPContext node)."""
    import onnx

    original = onnx.load(str(model), load_external_data=False).graph.node
    compiled = onnx.load(str(context), load_external_data=False).graph.node
    on_cpu = [n.op_type for n in compiled if n.op_type != "EPContext"]
    compute = [n.op_type for n in original if n.op_type not in QDQ]
    cpu_compute = [op for op in on_cpu if op not in QDQ]
    return {
        "npu": len(original) - len(on_cpu), "cpu": len(on_cpu),
        "npu_compute": len(compute) - len(cpu_compute), "cpu_compute": len(cpu_compute),
        "cpu_ops": sorted(set(on_cpu)), "binaries": sum(n.op_type == "EPContext" for n in compiled),
    }  # fmt: skip
