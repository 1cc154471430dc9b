"""The quantize stage in a real run: every quantized model exported, measured in ONNX Runtime,
and smaller on disk; bad quantize sections refused before anything runs."""

from __future__ import annotations

import json

import onnx
import pytest

from tests.conftest import cli, digits_recipe, write_recipe
from tests.test_user_code import one_line_error


def quant_recipe(data: dict | None = None, **quantize) -> dict:
    stages = digits_recipe()["stages"]
    student = {**stages[0], "student": {"arch": "cnn-small", "width": 8, "hidden": 256},
               "baseline": "none"}  # fmt: skip
    section = {"kind": "quantize", "model": "student", "bits": [8, 2], "methods": ["ptq", "qkd"],
               "bucket_size": 64, "keep_first_last": False,
               "train": {"epochs": 2, "lr": 3e-3}, **quantize}  # fmt: skip
    recipe = digits_recipe(stages=[student, section, {"kind": "export"}])
    return recipe if data is None else {**recipe, "data": data}


def outputs(run_dir) -> tuple[dict, list]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    models, exports = {}, []
    for stage in manifest["stages"]:
        models |= {m["name"]: m for m in stage["outputs"].get("models", [])}
        exports += stage["outputs"].get("exports", [])
    return models, exports


@pytest.mark.slow
def test_quantized_students_are_exported_and_measured_on_the_artifact(tmp_path):
    # MNIST's 1,000 held-out digits: 0.5 points is 5 images (on digits' 360 it would be 1.8, and
    # one near-tie flipped by int8 rounding would decide the test)
    data = {"source": "mnist", "batch_size": 64, "eval_batch_size": 500}
    recipe = write_recipe(tmp_path / "r.yaml", quant_recipe(data))
    result = cli("run", recipe, "--out", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr
    models, exports = outputs(tmp_path / "run")
    by_model = {e["model"]: e for e in exports}
    assert {"student-ptq8", "student-ptq2", "student-qkd8", "student-qkd2"} <= set(models)
    qkd2 = models["student-qkd2"]
    assert (qkd2["precision"], qkd2["parent"], qkd2["transform"]) == ("int2", "student", "qkd")
    assert by_model["student-qkd8"]["format"] == "onnx-qdq"
    assert by_model["student-qkd2"]["format"] == "onnx-packed"
    for name in ("student-qkd8", "student-ptq8"):  # int8 QDQ: integer kernels, within 0.5 points
        export = by_model[name]
        assert export["precision"] == "int8"
        assert abs(export["metrics"]["accuracy"] - models[name]["metrics_pytorch"]["accuracy"]) \
            <= 0.005
        assert export["parity"]["max_error_steps"] <= export["parity"]["steps"]
    for name in ("student-qkd2", "student-ptq2"):  # packed codes: the same weights exactly
        export = by_model[name]
        assert export["metrics"] == models[name]["metrics_pytorch"]
        assert export["parity"]["max_abs_error"] < 1e-4
    fp32, packed = by_model["student"]["size_bytes"], by_model["student-qkd2"]["size_bytes"]
    assert packed < fp32 / 4, (packed, fp32)  # 2-bit codes: the file really is smaller
    graph = onnx.load(str(tmp_path / "run" / by_model["student-qkd2"]["path"])).graph
    assert {"BitShift", "BitwiseAnd", "Gather"} <= {n.op_type for n in graph.node}
    matrices = [i.name for i in graph.initializer
                if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) >= 2 and min(i.dims) > 1]
    assert not matrices, matrices  # every conv and linear weight is unpacked from its codes


@pytest.mark.parametrize(("change", "key", "fragment"), [
    ({"bits": [9]}, "bits", "2, 4 or 8"),
    ({"bits": [0]}, "bits", "2, 4 or 8"),
    ({"bucket_size": 0}, "bucket_size", "greater than or equal to 1"),
    ({"methods": ["qkd", "qkd"]}, "methods", "once"),
    ({"model": "pupil"}, "model", "no model named 'pupil'"),
])  # fmt: skip
def test_bad_quantize_sections_are_located(tmp_path, change, key, fragment):
    from compress.errors import RecipeError
    from compress.pipeline.runner import plan
    from compress.recipe import load_recipe

    path = write_recipe(tmp_path / "r.yaml", quant_recipe(**change))
    with pytest.raises(RecipeError) as e:
        plan(*load_recipe(path))
    message = str(e.value)
    assert message.startswith(f"{path}:") and f"stages[1].{key}" in message, message
    assert fragment in message, message


def test_a_format_that_cannot_hold_the_bits_is_refused(tmp_path):
    recipe = quant_recipe(bits=[4])
    recipe["stages"][-1]["formats"] = ["onnx-qdq"]
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path), path, "stages[2].formats", "student-ptq4",
                   "export it as onnx-packed")
