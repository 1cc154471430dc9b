"""The quantize stage's brevitas method: Brevitas layers trained by distillation, rebuilt from
their checkpoint, exported as QCDQ ONNX that ONNX Runtime's CPU EP runs like the PyTorch model."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

from compress.errors import StageFailed
from compress.export.formats import ExportJob, ParityPolicy, default_format
from compress.export.qcdq import QcdqOnnx
from compress.models import build_model
from compress.models.checkpoint import architecture, load_checkpoint, save_checkpoint
from compress.quant.brevitas_layers import description, with_brevitas_layers
from tests.conftest import cli, image_info, spec_of, write_recipe
from tests.test_quant_pipeline import outputs, quant_recipe

pytest.importorskip("brevitas", reason="the brevitas extra is not installed")


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images[:, None] / 16.0).astype(np.float32), data.target  # (n, 1, 8, 8)


def brevitas_student(bits: int, x: np.ndarray):
    """A cnn-small on digits with Brevitas layers, its activation ranges collected on ``x``."""
    torch.manual_seed(0)
    spec = spec_of({"arch": "cnn-small", "width": 8, "hidden": 32})
    model = with_brevitas_layers(build_model(spec, image_info()), bits, keep_first_last=False)
    model.train()
    with torch.no_grad():
        for batch in np.array_split(x[:512], 8):
            model(torch.from_numpy(batch))
    return model.eval(), spec


def test_the_layers_quantize_weights_per_channel_to_the_bits():
    model, _ = brevitas_student(4, digits()[0])
    conv = model[0]
    codes = conv.quant_weight().int()  # (c_out, c_in, 3, 3)
    assert codes.abs().max() <= 7 and conv.quant_weight().scale.shape[0] == codes.shape[0]
    assert all(len(torch.unique(c)) <= 15 for c in codes)  # narrow range: 2^4 − 1 levels
    relu = model[2]
    assert relu.act_quant.bit_width() == 8 and not relu.act_quant.is_signed


def test_a_brevitas_model_rebuilds_from_its_checkpoint(tmp_path):
    x, _ = digits()
    model, spec = brevitas_student(4, x)
    arch = {**architecture(spec, image_info()), "quantization": description(4, False)}
    save_checkpoint(tmp_path / "m.safetensors", model, arch)
    loaded, _ = load_checkpoint(tmp_path / "m.safetensors")
    batch = torch.from_numpy(x[:64])
    with torch.no_grad():
        assert torch.equal(loaded(batch), model(batch))  # quantizers and scales came back


def test_qcdq_export_runs_in_onnxruntime_like_pytorch(tmp_path):
    x, _ = digits()
    model, _ = brevitas_student(4, x)
    test = {"input": x[-256:]}
    path = tmp_path / "m.qcdq.onnx"
    job = ExportJob(model, SimpleNamespace(name="m", precision="int4"),  # type: ignore[arg-type]
                    image_info(), test, "digits", path, 20, ParityPolicy(1e-4, 1e-3, 1.5, 0.99),
                    tmp_path, lambda: iter([]))  # fmt: skip
    done = QcdqOnnx().export(job)
    graph = onnx.load(str(done.path)).graph
    assert {"QuantizeLinear", "Clip", "DequantizeLinear"} <= {n.op_type for n in graph.node}
    assert "BatchNormalization" not in {n.op_type for n in graph.node}  # folded into the convs
    assert [i.name for i in graph.input] == ["input"]  # weights are constants, not inputs
    assert done.precision == "int4"
    assert done.parity["max_error_steps"] <= 1.5  # a rounding tie flips one step at most
    assert done.parity["top1_agreement"] >= 0.99
    path.unlink()
    with pytest.raises(StageFailed, match="no Brevitas layers"):
        QcdqOnnx().export(replace(job, model=build_model(spec_of({"arch": "cnn-small"}),
                                                         image_info())))  # fmt: skip
    assert default_format("int4", "brevitas") == "onnx-qcdq"
    assert QcdqOnnx().refuses("fp32") and not path.exists()


@pytest.mark.slow
def test_brevitas_students_are_distilled_and_measured_on_their_qcdq_artifact(tmp_path):
    section = quant_recipe(methods=["brevitas"], bits=[8, 4])
    section["stages"][-1]["models"] = ["student-brevitas8", "student-brevitas4"]
    recipe = write_recipe(tmp_path / "r.yaml", section)
    result = cli("run", recipe, "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr
    models, exports = outputs(tmp_path / "run")
    by_model = {e["model"]: e for e in exports}
    for bits in (8, 4):
        name = f"student-brevitas{bits}"
        model, export = models[name], by_model[name]
        assert (model["precision"], model["transform"]) == (f"int{bits}", "brevitas")
        assert model["quantization"]["method"] == "brevitas"
        assert (export["format"], export["precision"]) == ("onnx-qcdq", f"int{bits}")
        arch = json.loads((tmp_path / "run" / model["checkpoint"]).with_suffix(".json").read_text())
        assert arch["quantization"] == {"method": "brevitas", "bits": bits,
                                        "keep_first_last": False, "fold_batchnorm": True}
        pytorch, artifact = model["metrics_pytorch"]["accuracy"], export["metrics"]["accuracy"]
        assert abs(artifact - pytorch) <= 0.005, (name, artifact, pytorch)
        assert export["parity"]["max_error_steps"] <= export["parity"]["steps"]
        assert pytorch > 0.8, (name, pytorch)  # it learned: digits' chance is 0.1


def test_without_brevitas_the_method_is_refused_at_plan_time(tmp_path, monkeypatch):
    import importlib.util

    from compress.errors import RecipeError
    from compress.pipeline.runner import plan
    from compress.recipe import load_recipe

    path = write_recipe(tmp_path / "r.yaml", quant_recipe(methods=["qkd", "brevitas"]))
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "brevitas" else found(name, *a))
    with pytest.raises(RecipeError, match=r"stages\[1\]\.methods.*\.\[brevitas\]"):
        plan(*load_recipe(path))
