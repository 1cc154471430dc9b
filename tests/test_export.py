"""ONNX export with a dynamic batch axis, the parity rule, and the export/profile commands."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compress.errors import StageFailed
from compress.export.onnx import export_onnx
from compress.export.parity import check_parity, compare
from compress.models import build_model
from compress.models.checkpoint import architecture, load_checkpoint, save_checkpoint
from compress.runtime import OrtModel
from tests.conftest import cli, image_info, spec_of


def test_compare_uses_the_allclose_rule():
    ref = np.array([1.0, -2.0, 100.0], np.float32)
    assert compare("y", ref, ref + 1e-5, atol=1e-4, rtol=0).passed
    off = compare("y", ref, ref + np.array([0, 0, 0.5], np.float32), atol=1e-4, rtol=1e-3)
    assert not off.passed and off.max_abs_error == pytest.approx(0.5)
    assert off.max_rel_error == pytest.approx(0.005)
    assert not compare("y", ref, ref[:2], 1, 1).passed  # a shape mismatch never passes


def test_parity_failure_names_each_output():
    ref = {"logits": np.zeros(3, np.float32), "probs": np.ones(3, np.float32)}
    got = {"logits": np.zeros(3, np.float32), "probs": np.full(3, 1.1, np.float32)}
    with pytest.raises(StageFailed) as e:
        check_parity("m.onnx", ref, got, atol=1e-4, rtol=1e-3)
    text = str(e.value)
    assert "logits: max abs error 0" in text and "(ok)" in text
    assert "probs: max abs error 0.1" in text and "FAILED" in text


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    spec = spec_of({"arch": "resnet-small", "width": 4})
    model = build_model(spec, image_info())
    path = tmp_path / "model.safetensors"
    save_checkpoint(path, model, architecture(spec, image_info()))
    return path, model.eval()


def test_checkpoint_round_trip(checkpoint):
    path, model = checkpoint
    loaded, info = load_checkpoint(path)
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(loaded(x), model(x))
    assert info.input_shape == (1, 8, 8) and path.with_suffix(".json").is_file()
    assert info == image_info()


def test_export_has_a_dynamic_batch_axis(checkpoint, tmp_path):
    _, model = checkpoint
    path = tmp_path / "m.onnx"
    export_onnx(model, image_info(), {"input": torch.rand(2, 1, 8, 8)}, path)
    session = OrtModel(path)
    assert session.input_shapes["input"][0] == "batch"  # a named, dynamic axis
    for batch in (1, 7):
        x = torch.rand(batch, 1, 8, 8)
        with torch.no_grad():
            got = session.run({"input": x.numpy()})["logits"]
            np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4)


def test_export_and_profile_commands(checkpoint, tmp_path):
    path, _ = checkpoint
    result = cli("export", path, "--out", tmp_path / "m.onnx")
    assert result.returncode == 0, result.stderr
    assert "parity on uniform noise: max abs" in result.stdout
    assert "top-1 agreement 100.00%" in result.stdout
    result = cli("profile", tmp_path / "m.onnx", "--batch-sizes", "1", "4", "--iterations", "10",
                 "--warmup", "2", "--json", tmp_path / "lat")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("cpu-ort batch    1: median")
    assert (tmp_path / "lat.b4.json").is_file()


def test_profile_on_an_unknown_target_lists_the_known_ones(tmp_path):
    result = cli("profile", tmp_path / "m.onnx", "--target", "tpu-magic")
    assert result.returncode == 2
    assert "unknown target 'tpu-magic'; known: cpu-openvino, cpu-ort, cpu-ort-cpp" in result.stderr
