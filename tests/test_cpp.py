"""The C++ runtime, built by `make cpp` against the onnxruntime wheel, computes what the Python
runtime and the PyTorch model compute, on every exported artifact of every example recipe; it
refuses bad input with exit code 2; examples/cpp classifies a real Fashion-MNIST image as the
Python runtime does.

Every examples/*.yaml runs once with --smoke (two at a time); the walk reads each run's
report.json, so artifacts that later recipes or formats add are checked without new code."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from compress.data.austen import austen_missing
from compress.data.sources import fashion_missing
from tests.conftest import ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(fashion_missing() or austen_missing()), reason="data not installed"),
]
BUILD = ROOT / "build" / "cpp"
EDGE_RUN = BUILD / "edge-run"
FP32_MAX_ABS = 1e-5  # C++ against Python: the same library on the same inputs


@pytest.fixture(scope="module")
def built():
    """`make cpp` (headers fetched once, the build folder reused: a no-op when current)."""
    done = subprocess.run(["make", "-s", "cpp", f"PY={sys.executable}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert EDGE_RUN.is_file() and (BUILD / "examples" / "classify_image").is_file()
    return EDGE_RUN


@pytest.fixture(scope="module")
def runs(example_runs):
    return example_runs


def exported(run):
    """(report model entry, export entry) for every artifact in the run's report."""
    report = json.loads((run / "report.json").read_text())
    return [(m, a) for m in report["models"] for a in m["artifacts"]]


def task_inputs(recipe, run):
    """The recipe's task signature and 32 real test inputs for it."""
    from compress.data import load_splits
    from compress.recipe import load_recipe

    splits = load_splits(load_recipe(recipe)[0], run, smoke=True)
    rows = np.arange(min(32, len(splits.test)))
    names = splits.info.signature.input_names
    batch = splits.task.batch(splits.test.x, rows)  # a text task's batch also holds its labels
    return names, {name: batch[name] for name in names}


def within_export_tolerance(parity: dict, reference: np.ndarray, actual: np.ndarray) -> bool:
    """The artifact's own parity rule, as its export recorded it: numpy.allclose for float
    formats, output steps plus top-1 agreement for quantized ones."""
    if "atol" in parity:
        return bool(np.allclose(actual, reference, atol=parity["atol"], rtol=parity["rtol"]))
    assert "steps" in parity, f"unknown parity rule {sorted(parity)}: teach this test"
    agree = float((reference.argmax(1) == actual.argmax(1)).mean())
    step = parity["output_step"]
    close = not np.isfinite(step) or np.abs(actual - reference).max() <= parity["steps"] * step
    return close and agree >= parity["min_top1_agreement"]


def assert_same(cpp: dict, py: dict, what: str) -> None:
    assert cpp.keys() == py.keys(), what
    for name, a in cpp.items():
        b = py[name]
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}/{name}"
        if a.dtype.kind in "iub":
            assert np.array_equal(a, b), f"{what}/{name}: integer outputs differ"
        else:
            assert np.abs(a - b).max() <= FP32_MAX_ABS, f"{what}/{name}: {np.abs(a - b).max()}"


def test_cpp_python_and_pytorch_agree_on_every_example_artifact(built, runs):
    import torch

    from compress.models.checkpoint import load_checkpoint
    from compress.models.zoo import as_tensors, scores
    from compress.runtime import load
    from compress.runtime.edge_run import run_cpp
    from compress.tasks.signature import dummy_inputs

    checked = []
    for recipe, run in runs.items():
        task_names, real = task_inputs(recipe, run)
        for model, art in exported(run):
            artifact = load(run / art["path"])
            takes_task_inputs = [s.name for s in artifact.inputs] == task_names
            # a step of a generator takes its own inputs; its parity was checked at export
            inputs = real if takes_task_inputs else dummy_inputs(artifact.meta.signature)
            what = f"{recipe.name}:{art['path']}"
            py = artifact.run(inputs)
            cpp = run_cpp(run / art["path"], inputs, [o.name for o in artifact.outputs])
            assert_same(cpp, py, what)
            parity = artifact.provenance["parity"]
            assert parity["passed"], what
            if takes_task_inputs:
                torch_model, info = load_checkpoint(run / model["checkpoint"])
                with torch.no_grad():
                    ref = scores(torch_model.eval(), info, as_tensors(inputs)).numpy()
                first = artifact.outputs[0].name
                assert within_export_tolerance(parity, ref, py[first]), what
                assert within_export_tolerance(parity, ref, cpp[first]), what
            checked.append(what)
    assert len(checked) >= 3 * len(runs)  # teacher, student, baseline at least, per recipe


def test_edge_run_times_with_the_python_profilers_schema(built, runs):
    from compress.devices.latency import LatencyRecord
    from compress.runtime.edge_run import time_cpp

    run = runs[ROOT / "examples" / "digits-kd.yaml"]
    x = np.zeros((4, 1, 8, 8), np.float32)
    record = LatencyRecord(**time_cpp(run / "03-export" / "student", {"input": x},
                                      iterations=12, warmup=1, threads=1))  # fmt: skip
    assert (record.target, record.model, record.batch_size) == ("cpu-ort-cpp", "student", 4)
    assert record.iterations == len(record.samples_ms) == 12 and record.threads == 1
    assert record.input_shape == [4, 1, 8, 8] and record.precision == "fp32"
    assert record.min_ms <= record.median_ms <= record.p99_ms <= record.max_ms
    assert record.median_ms == pytest.approx(float(np.median(record.samples_ms)), rel=1e-6)


def test_a_served_cpp_session_times_each_call_inside_cpp(built, runs):
    from compress.errors import CompressError
    from compress.runtime.edge_run import CppSession

    student = runs[ROOT / "examples" / "digits-kd.yaml"] / "03-export" / "student"
    x = np.zeros((2, 1, 8, 8), np.float32)
    with CppSession(student, {"input": x}, threads=1) as session:
        times = [session.time_call() for _ in range(5)]
    assert all(0 < t < 1000 for t in times) and session._proc.returncode == 0
    with pytest.raises(CompressError, match="dtype float64, the model takes float32"):
        CppSession(student, {"input": x.astype(np.float64)})


def edge_run(*args):
    return subprocess.run([str(EDGE_RUN), *map(str, args)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip


@pytest.fixture(scope="module")
def student(runs):
    return runs[ROOT / "examples" / "digits-kd.yaml"] / "03-export" / "student"


@pytest.mark.parametrize("case", ["truncated", "garbage", "missing", "no-input-file", "shape",
                                  "dtype", "npy-truncated", "two-signatures",
                                  "bad-signature"])  # fmt: skip
def test_edge_run_refuses_bad_input_with_exit_code_2(built, student, tmp_path, case):
    folder = shutil.copytree(student, tmp_path / "student")
    onnx = folder / "student.onnx"
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 1, 8, 8), np.float32))
    artifact, expect = folder, "student.onnx"
    if case == "truncated":
        onnx.write_bytes(onnx.read_bytes()[:500])
        expect = "ONNX Runtime cannot load it"
    elif case == "garbage":
        onnx.write_bytes(b"\x00not a model" * 100)
        expect = "ONNX Runtime cannot load it"
    elif case == "missing":
        onnx.unlink()
        expect = "no such artifact"
    elif case == "no-input-file":
        x = tmp_path / "absent.npy"
        expect = "absent.npy: no such file"
    elif case == "shape":
        np.save(x, np.zeros((2, 1, 8, 9), np.float32))
        expect = "shape (2, 1, 8, 9), the model takes float32 (?, 1, 8, 8)"
    elif case == "dtype":
        np.save(x, np.zeros((2, 1, 8, 8), np.float64))
        expect = "dtype float64, the model takes float32"
    elif case == "npy-truncated":
        x.write_bytes(x.read_bytes()[:-7])
        expect = "truncated .npy data"
    elif case == "two-signatures":
        shutil.copy(folder / "student.signature.json", folder / "other.signature.json")
        expect = "2 signature files here"
    else:
        sig = folder / "student.signature.json"
        sig.write_text(sig.read_text()[:300])
        expect = "student.signature.json: not valid JSON (line"
    result = edge_run(artifact, "--input", x, "--output", tmp_path / "y.npy")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("edge-run: error: ") and expect in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "y.npy").exists()


def fashion_image(tmp_path, run):
    """A real Fashion-MNIST test image as a binary PGM, and its label."""
    from compress.data import load_splits
    from compress.recipe import load_recipe

    splits = load_splits(load_recipe(ROOT / "examples" / "fashion-kd.yaml")[0], run, smoke=True)
    pixels = np.rint(splits.test.x[7, 0] * 255).astype(np.uint8)  # (28, 28), stored as raw / 255
    path = tmp_path / "image.pgm"
    path.write_bytes(b"P5\n28 28\n255\n" + pixels.tobytes())
    return path, splits.classes[int(splits.test.y[7])]


def test_cpp_example_classifies_an_image_as_the_python_runtime_does(built, runs, tmp_path):
    from tests.test_device_side import run_without_torch

    run = runs[ROOT / "examples" / "fashion-kd.yaml"]
    student = run / "03-export" / "student@s0"
    image, _ = fashion_image(tmp_path, run)
    cpp = subprocess.run([BUILD / "examples" / "classify_image", student, image],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cpp.returncode == 0, cpp.stderr
    py = run_without_torch(f"""
        from compress.runtime import load
        for label, p in load({str(student)!r}).classify({str(image)!r}):
            print(f"{{100 * p:6.2f}}%  {{label}}")
    """)
    assert py.returncode == 0, py.stderr
    assert cpp.stdout == py.stdout and len(cpp.stdout.splitlines()) == 3
    bad = subprocess.run([BUILD / "examples" / "classify_image", student, student / "x.pgm"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "no such image file" in bad.stderr
