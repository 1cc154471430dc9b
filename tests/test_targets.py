"""Targets run real artifacts in their real runtimes: ONNX Runtime, OpenVINO, the QNN HTP
(emulator on x86). Absent targets say why. GPU targets run where a GPU is (``pytest -k gpu``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from compress import eager_target  # noqa: F401  (registers the torch targets)
from compress.devices.latency import LatencyRecord
from compress.devices.targets import TARGETS, Prepared, TimingSettings

FAST = TimingSettings(warmup=1, iterations=12, max_seconds=5.0, min_samples=10, rounds=3)
GPU = ["gpu-ort", "gpu-tensorrt", "gpu-torch", "gpu-torch-compiled", "gpu-torch-graphs"]


@pytest.fixture(scope="module")
def cnn(tmp_path_factory) -> Path:
    """A small CNN exported to ONNX with a dynamic batch axis, and a uint8 QDQ copy of it
    (onnxruntime.quantization.quantize_static, batch fixed to 1) beside it."""
    import torch
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from compress.devices.target_qnn import _fix_batch

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(), torch.nn.Linear(16, 10),
    ).eval()  # fmt: skip
    folder = tmp_path_factory.mktemp("cnn")
    path = folder / "cnn.onnx"
    torch.onnx.export(net, (torch.randn(1, 1, 8, 8),), str(path), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "b"}, "logits": {0: "b"}},
                      dynamo=False, opset_version=17)  # fmt: skip
    _fix_batch(path, folder / "cnn.b1.onnx", 1)
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"input": rng.random((1, 1, 8, 8), dtype=np.float32)}
                            for _ in range(16)])  # fmt: skip

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(folder / "cnn.b1.onnx"), str(folder / "cnn.qdq.onnx"), Reader(),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QUInt8)  # fmt: skip
    return path


def _x(batch: int) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(1).random((batch, 1, 8, 8), dtype=np.float32)}


@pytest.mark.parametrize("name", TARGETS.names())
def test_every_target_is_present_or_absent_with_a_reason(name):
    target = TARGETS.get(name)()
    found = target.availability()
    assert found.detail.strip(), name
    if not found.present:  # the reason names what is missing or what was not seen
        assert any(w in found.detail for w in ("not installed", "no ", "sees no", "CPU build"))


@pytest.mark.parametrize("name", ["cpu-ort", "cpu-openvino"])
def test_cpu_targets_run_the_real_artifact_and_agree(cnn, tmp_path, name):
    target = TARGETS.get(name)()
    if not target.availability().present:
        pytest.skip(target.availability().detail)
    prepared = target.prepare(cnn, "fp32", tmp_path)
    assert prepared.path.is_file()
    got = target.open(prepared.path, FAST).scores(_x(4))
    want = TARGETS.get("cpu-ort")().open(cnn, FAST).scores(_x(4))
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-3)  # OpenVINO pinned to f32
    record = target.profile(prepared.path, "cnn", _x(2), FAST)
    LatencyRecord.model_validate(record.model_dump())
    assert record.iterations == 12 and record.threads == 1 and record.batch_size == 2
    assert record.machine["cores"] and record.machine["load_before"] is not None
    ops = target.operators(prepared.path, _x(1), FAST, tmp_path)
    assert ops and sum(o["share"] for o in ops) <= 1.0 + 1e-3  # shares rounded to 4 places
    assert any(o["op"] in ("Conv", "Convolution") for o in ops)


def _qnn(**kw):
    from compress.devices.target_qnn import NpuQnn

    target = NpuQnn(**kw)
    if not target.availability().present:
        pytest.skip(target.availability().detail)
    return target


def test_qnn_context_reloads_and_matches_the_qdq_model(cnn, tmp_path):
    from compress.runtime.qnn import QnnModel

    target = _qnn(soc="SM8650")
    qdq = cnn.with_name("cnn.qdq.onnx")
    prepared = target.prepare(qdq, "int8", tmp_path)
    assert prepared.format == "qnn-context" and prepared.path.name == "cnn.qdq.SM8650.qnn.onnx"
    assert prepared.placement["cpu"] == 0 and prepared.placement["npu"] > 0  # all on the NPU
    npu = QnnModel(prepared.path).scores(_x(1))  # a fresh session from the context file alone
    cpu = TARGETS.get("cpu-ort")().open(qdq, FAST).scores(_x(1))
    # The output is uint8-quantized: agree within two steps of its scale.
    step = (cpu.max() - cpu.min()) / 255
    np.testing.assert_allclose(npu, cpu, atol=2 * step + 1e-6)
    record = target.contender(prepared, "cnn", _x(1), FAST).identity
    assert record["emulated"] and "emulator" in record["note"]


def test_qnn_names_an_operator_the_npu_cannot_take(cnn, tmp_path):
    import onnx
    from onnx import helper

    from compress.devices.target_qnn import NpuRefused

    model = onnx.load(str(cnn.with_name("cnn.qdq.onnx")))
    out = model.graph.output[0].name
    model.graph.node.append(helper.make_node("Mod", [out, "k"], ["wrapped"], fmod=1))
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([0.5], np.float32), "k"))
    model.graph.output[0].name = "wrapped"
    bad = tmp_path / "mod.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(NpuRefused, match=r"cannot take \d+ of \d+ nodes \(Mod.*allow_cpu_fallback"):
        _qnn().prepare(bad, "int8", tmp_path)
    assert not list(tmp_path.glob("*.qnn.onnx"))  # nothing half-written
    prepared = _qnn(allow_cpu_fallback=True).prepare(bad, "int8", tmp_path)
    placed = prepared.placement
    assert "Mod" in placed["cpu_ops"] and placed["cpu"] >= 1 and placed["npu"] > placed["cpu"]
    assert _qnn(allow_cpu_fallback=True).open(prepared.path, FAST).scores(_x(1)).shape == (1, 10)


def test_interleaved_records_share_rounds_and_a_ratio(cnn, tmp_path):
    from compress.devices.report.targets import ratio_spread
    from compress.devices.targets import time_together

    ort = TARGETS.get("cpu-ort")()
    a = ort.contender(Prepared(cnn, "onnx", "fp32"), "a", _x(8), FAST)
    b = ort.contender(Prepared(cnn, "onnx", "fp32"), "b", _x(1), FAST)
    ra, rb = time_together([a, b], FAST, group="g")
    assert ra.group == rb.group == "g" and len(ra.round_medians_ms) == 3
    spread = ratio_spread(ra.model_dump(), rb.model_dump())
    assert spread["rounds"] == 3 and spread["low"] <= spread["median"] <= spread["high"]


@pytest.mark.parametrize("name", GPU)
def test_gpu_targets_run_a_real_artifact(cnn, tmp_path, name):
    """Runs wherever the GPU and the package are (scripts/device/gpu-targets.sh)."""
    target = TARGETS.get(name)()
    if not target.availability().present:
        pytest.skip(target.availability().detail)
    if "pytorch" in target.formats:
        pytest.skip("checkpoint targets are timed by scripts/device/gpu-targets.sh")
    prepared = target.prepare(cnn, "fp32", tmp_path)
    got = target.open(prepared.path, FAST).scores(_x(4))
    want = TARGETS.get("cpu-ort")().open(cnn, FAST).scores(_x(4))
    np.testing.assert_allclose(got, want, atol=5e-2)  # TensorRT may choose fp16 kernels
    record = target.profile(prepared.path, "cnn", _x(4), FAST)
    assert record.iterations == 12 and record.median_ms > 0


def test_a_multi_target_recipe_reports_every_target(tmp_path):
    """Digits end to end through cpu-ort, cpu-openvino and npu-qnn (emulator), GPU absent."""
    import json

    from tests.conftest import cli, digits_recipe, write_recipe

    recipe = digits_recipe()
    recipe["teacher"]["train"]["epochs"] = 1
    recipe["stages"][0]["train"]["epochs"] = 1
    recipe["stages"][0]["baseline"] = "none"  # one student is enough here
    recipe["stages"][2] = {"kind": "profile", "targets": ["cpu-ort", "cpu-openvino", "npu-qnn",
                                                          "gpu-ort"], "batch_sizes": [1, 4]}
    recipe["stages"][3]["goals"] = {"accuracy_floor": {"accuracy": 10.0}, "target": "cpu-ort"}
    run = tmp_path / "run"
    result = cli("run", write_recipe(tmp_path / "r.yaml", recipe), "--smoke", "--out", run)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((run / "report.json").read_text())
    per_target = report["targets"]["per_target"]
    assert {"cpu-ort", "cpu-openvino", "npu-qnn", "cpu-torch-eager"} <= set(per_target)
    npu = {r["model"]: r for r in per_target["npu-qnn"]}["student"]
    assert npu["emulated"] and npu["placement"]["cpu"] == 0 and npu["batch"] == 1
    assert npu["metric"] is not None and npu["metric_reference"] is not None
    assert any("gpu-ort: absent" in n for n in report["notes"])
    assert not any(r["target"] == "npu-qnn" and r["batch_size"] == 4 for r in report["latency"])
    groups = {r["group"] for r in report["latency"] if r["batch_size"] == 1}
    assert groups == {"batch 1"}  # everything at batch 1 timed in the same interleaved rounds
    floor = [g for g in report["goals"] if g["kind"] == "fastest at floor"]
    assert {g["group"] for g in floor} == {"cpu-ort", "cpu-openvino", "npu-qnn"}
    assert "## Target npu-qnn" in (run / "report.md").read_text()


def test_the_cpp_runtime_is_a_target_timed_by_its_own_clock(cnn, tmp_path):
    target = TARGETS.get("cpu-ort-cpp")()
    if not target.availability().present:
        pytest.skip(target.availability().detail)
    got = target.open(cnn, FAST).scores(_x(4))
    want = TARGETS.get("cpu-ort")().open(cnn, FAST).scores(_x(4))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)  # the same library, from C++
    record = target.profile(cnn, "cnn", _x(2), FAST)
    LatencyRecord.model_validate(record.model_dump())
    assert record.clock == "edge-run" and record.iterations == 12 and record.batch_size == 2
    assert 0 < record.median_ms < 1000
