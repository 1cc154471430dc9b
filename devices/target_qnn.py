"""``npu-qnn``: a Qualcomm Hexagon NPU through ONNX Runtime's QNN execution provider.

Preparing an artifact for it makes what ships to the phone: the model with its batch fixed (the
HTP compiles static shapes), quantized to uint8 QDQ when it is not quantized already (the HTP is
an integer engine; calibrated on real training inputs), then compiled into a QNN context binary
for the named Snapdragon SoC. The placement of every operator (NPU or CPU) is read from that
compilation. By default a model the NPU cannot take whole is refused with its placement named;
``allow_cpu_fallback`` runs the rest on the CPU and says how much.

On x86 the HTP backend is an emulator: accuracy through it is the NPU's arithmetic, but its
timings are emulator timings, labelled as such and never reported as device latency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from compress.devices.targets import (
    TARGETS,
    Availability,
    Inputs,
    Prepared,
    Target,
    TimingSettings,  # fmt: skip
)
from compress.errors import CompressError

INSTALL = "pip install 'edge-compress[npu]'"
NPU_BATCH = 1  # the context binary is compiled for one batch size


class NpuRefused(CompressError):
    """The NPU cannot take the whole model and CPU fallback is off."""


@TARGETS.register("npu-qnn")
class NpuQnn(Target):
    # fp32 ONNX is quantized here; an int8 QDQ artifact (per-channel int8 weights, uint8
    # activations) compiles as it is: checked, all of a QDQ CNN on the HTP with fallback off
    name, hardware, runtime = "npu-qnn", "Hexagon NPU", "onnxruntime-qnn"
    formats = ("onnx", "onnx-qdq")
    fixed_batch = NPU_BATCH

    def __init__(self, soc: str = "SM8650", allow_cpu_fallback: bool = False) -> None:
        from compress.runtime.qnn import QnnOptions

        self.options = QnnOptions(soc, allow_cpu_fallback)

    def availability(self) -> Availability:
        if find_spec("onnxruntime_qnn") is None:
            return Availability(False, f"onnxruntime-qnn is not installed ({INSTALL})")
        from compress.runtime.qnn import is_emulated

        try:
            emulated = is_emulated()
        except Exception as e:  # the plugin does not load beside this onnxruntime
            return Availability(False, f"the QNN plugin EP did not load ({e})")
        where = "HTP emulator on this CPU: timings are not NPU latency" if emulated else "NPU"
        return Availability(True, f"onnxruntime-qnn {self.version()} ({where})")

    @property
    def emulated(self) -> bool:  # type: ignore[override]
        from compress.runtime.qnn import is_emulated

        return is_emulated()

    @property
    def note(self) -> str | None:  # type: ignore[override]
        if self.emulated:
            soc = self.options.soc
            return f"HTP emulator on x86 (context for {soc}): emulator time, not device latency"
        return None

    def version(self) -> str:
        from importlib.metadata import version

        return version("onnxruntime-qnn")

    def prepare(self, artifact: Path, precision: str, workdir: Path,
                calibration: Callable[[], Iterable[Inputs]] | None = None) -> Prepared:  # fmt: skip
        from compress.runtime.qnn import compile_context

        fixed = workdir / f"{artifact.stem}.b{NPU_BATCH}.onnx"
        _fix_batch(artifact, fixed, NPU_BATCH)
        qdq = fixed
        if precision in ("fp32", "fp16", "bf16"):
            if calibration is None:
                raise CompressError(f"{artifact.name}: npu-qnn runs quantized models; give "
                                    "calibration inputs or an int8 QDQ artifact")  # fmt: skip
            qdq = workdir / f"{artifact.stem}.qdq.onnx"
            _quantize(fixed, qdq, calibration)
            precision = "int8"
        context = workdir / f"{artifact.stem}.{self.options.soc}.qnn.onnx"
        try:
            placed = compile_context(qdq, context, self.options)
        except CompressError as e:
            raise self._refusal(qdq, workdir, e) from None
        note = f"compiled for {self.options.soc}: NPU {placed['npu']} / CPU {placed['cpu']} nodes"
        return Prepared(context, "qnn-context", precision, placed, reference=qdq, note=note)

    def _refusal(self, qdq: Path, workdir: Path, error: CompressError) -> CompressError:
        """Why compilation failed: with fallback off, compile again allowing it, to name the
        operators the NPU could not take."""
        from dataclasses import replace

        from compress.runtime.qnn import compile_context

        if self.options.allow_cpu_fallback:
            return error
        probe = workdir / f".{qdq.stem}.probe.qnn.onnx"
        try:
            placed = compile_context(qdq, probe, replace(self.options, allow_cpu_fallback=True))
        except CompressError:
            return error
        finally:
            probe.unlink(missing_ok=True)
        return NpuRefused(f"{qdq.name}: the NPU cannot take {placed['cpu']} of "
                          f"{placed['npu'] + placed['cpu']} nodes ({', '.join(placed['cpu_ops'])}) "
                          "and CPU fallback is off; set allow_cpu_fallback: true to run them on "
                          "the CPU")  # fmt: skip

    def open(self, path: Path, settings: TimingSettings) -> Any:
        from compress.runtime.qnn import QnnModel

        return QnnModel(path, self.options, settings.thread_counts)


def _fix_batch(source: Path, out: Path, batch: int) -> None:
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    model = onnx.load(str(source))
    for value in model.graph.input:
        dims = [d.dim_value or batch for d in value.type.tensor_type.shape.dim]
        make_input_shape_fixed(model.graph, value.name, [batch, *dims[1:]])
    fix_output_shapes(model)
    onnx.save(model, str(out))


class _Reader:
    """onnxruntime.quantization's CalibrationDataReader protocol over batches of inputs, cut
    into the fixed batch the model was compiled for."""

    def __init__(self, batches: Iterable[Inputs], batch: int) -> None:
        self.rows = (
            {k: v[i : i + batch] for k, v in b.items()}
            for b in batches for i in range(0, len(next(iter(b.values()))) - batch + 1, batch)
        )  # fmt: skip

    def get_next(self) -> Inputs | None:
        return next(self.rows, None)

    def rewind(self) -> None:  # called by some calibrators; ours is a one-pass stream
        pass


def _quantize(fixed: Path, out: Path, calibration: Callable[[], Iterable[Inputs]]) -> None:
    """uint8 activations and weights, QDQ layout, as the QNN EP expects."""
    from onnxruntime.quantization import quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    config = get_qnn_qdq_config(str(fixed), _Reader(calibration(), NPU_BATCH))
    # onnxruntime.quantization advises pre-processing (shape inference, folding) on the root
    # logger at every call; the check that matters follows: the metrics measured on the target.
    logging.disable(logging.WARNING)
    try:
        quantize(str(fixed), str(out), config)
    finally:
        logging.disable(logging.NOTSET)


def rows_of(scores: Callable[[Inputs], np.ndarray], batch: int) -> Callable[[Inputs], np.ndarray]:
    """``scores`` of a model compiled for a fixed ``batch``, on inputs of any batch size."""

    def any_batch(inputs: Inputs) -> np.ndarray:
        n = len(next(iter(inputs.values())))
        return np.concatenate([scores({k: v[i : i + batch] for k, v in inputs.items()})
                               for i in range(0, n, batch)])  # fmt: skip

    return any_batch
