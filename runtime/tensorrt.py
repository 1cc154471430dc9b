"""NVIDIA TensorRT: build a serialized engine from an ONNX artifact and run it.

    build_engine("student.onnx", "student.fp16.plan", fp16=True, max_batch=64)
    model = TensorRtModel("student.fp16.plan")
    model.run({"input": x}); model.input_specs; model.output_specs
    model.device_ms({"input": x})   # one enqueue timed with CUDA events (device time)

Written against TensorRT 10's Python API and cuda-python's runtime bindings (no torch, so it
stays on the device side). A QDQ ONNX model builds as an explicitly quantized INT8 engine.
Absent here: it needs an NVIDIA GPU, ``tensorrt`` and ``cuda-python``
(``pip install 'edge-compress[gpu]'``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from compress.errors import CompressError


def _modules() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
        from cuda.bindings import runtime as cudart
    except ImportError as e:
        raise CompressError(f"gpu-tensorrt needs tensorrt and cuda-python ({e.name} is "
                            "missing): pip install 'edge-compress[gpu]'") from None  # fmt: skip
    return trt, cudart


def _check(result: Any) -> Any:
    """cuda-python returns (error, value...); raise on an error, return the value."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise CompressError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


def build_engine(onnx_path: str | Path, engine_path: str | Path, *, fp16: bool = False,
                 int8: bool = False, min_batch: int = 1, opt_batch: int = 1,
                 max_batch: int = 64) -> Path:  # fmt: skip
    """Parse ``onnx_path``, build one optimization profile over the batch axis, and write the
    serialized engine atomically."""
    trt, _ = _modules()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: always explicit batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise CompressError(f"{onnx_path}: TensorRT could not parse it ({errors})")
    config = builder.create_builder_config()
    for flag, wanted in ((trt.BuilderFlag.FP16, fp16), (trt.BuilderFlag.INT8, int8)):
        if wanted:
            config.set_flag(flag)
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        rest = list(tensor.shape)[1:]  # (b, ...) with only the batch dynamic
        profile.set_shape(tensor.name, [min_batch, *rest], [opt_batch, *rest], [max_batch, *rest])
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise CompressError(f"{onnx_path}: TensorRT failed to build an engine")
    out = Path(engine_path)
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(bytes(serialized))
    os.replace(partial, out)
    return out


class TensorRtModel:
    """A deserialized engine with device buffers sized for the last batch it ran."""

    def __init__(self, engine_path: str | Path) -> None:
        trt, self._cudart = _modules()
        self._trt = trt
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise CompressError(f"{engine_path}: not an engine this TensorRT can load")
        self.context = self.engine.create_execution_context()
        self.stream = _check(self._cudart.cudaStreamCreate())
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_specs = [self._spec(n) for n in names if is_input[n]]
        self.output_specs = [self._spec(n) for n in names if not is_input[n]]
        self.input_names = [s["name"] for s in self.input_specs]
        self.output_names = [s["name"] for s in self.output_specs]
        self.version = trt.__version__
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)

    def _spec(self, name: str) -> dict[str, Any]:
        dtype = np.dtype(self._trt.nptype(self.engine.get_tensor_dtype(name)))
        return {"name": name, "shape": list(self.engine.get_tensor_shape(name)),
                "type": str(dtype)}  # fmt: skip

    def _buffer(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self._cudart.cudaFree(ptr))
            ptr, size = _check(self._cudart.cudaMalloc(nbytes)), nbytes
            self._buffers[name] = (ptr, size)
        self.context.set_tensor_address(name, ptr)
        return ptr

    def _enqueue(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy inputs in, enqueue, and return host arrays for the outputs (not yet copied)."""
        h2d = self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        for name in self.input_names:
            x = np.ascontiguousarray(inputs[name])
            self.context.set_input_shape(name, x.shape)
            ptr = self._buffer(name, x.nbytes)
            _check(self._cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, h2d, self.stream))
        outs = {}
        for spec in self.output_specs:
            shape = tuple(self.context.get_tensor_shape(spec["name"]))
            outs[spec["name"]] = np.empty(shape, dtype=spec["type"])
            self._buffer(spec["name"], outs[spec["name"]].nbytes)
        return outs

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self._enqueue(inputs)
        self.context.execute_async_v3(self.stream)
        d2h = self._cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, host in outs.items():
            ptr = self._buffers[name][0]
            _check(self._cudart.cudaMemcpyAsync(host.ctypes.data, ptr, host.nbytes, d2h,
                                                self.stream))  # fmt: skip
        _check(self._cudart.cudaStreamSynchronize(self.stream))
        return outs

    def scores(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.run(inputs)[self.output_names[0]]

    def device_ms(self, inputs: dict[str, np.ndarray]) -> float:
        """One inference timed on the GPU with CUDA events: the engine alone, no copies."""
        self._enqueue(inputs)
        start, end = (_check(self._cudart.cudaEventCreate()) for _ in range(2))
        _check(self._cudart.cudaEventRecord(start, self.stream))
        self.context.execute_async_v3(self.stream)
        _check(self._cudart.cudaEventRecord(end, self.stream))
        _check(self._cudart.cudaEventSynchronize(end))
        ms = float(_check(self._cudart.cudaEventElapsedTime(start, end)))
        for event in (start, end):
            _check(self._cudart.cudaEventDestroy(event))
        return ms
