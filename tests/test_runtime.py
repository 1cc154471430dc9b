"""The exported artifact folders are all a device needs: `compress.runtime` classifies a raw
image file and a sentence from them with torch blocked, and the user's own-model examples run
end to end with --smoke (byo.yaml, then deploy-only.yaml on the checkpoint it made)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from compress.data.austen import austen_missing
from compress.data.sources import fashion_missing
from tests.conftest import ROOT, cli
from tests.test_device_side import run_without_torch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(fashion_missing() or austen_missing()), reason="data not installed"),
]


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    """examples/byo copied out, its photos written, byo.yaml run with --smoke into runs/byo."""
    root = tmp_path_factory.mktemp("byo")
    example = shutil.copytree(ROOT / "examples" / "byo", root / "examples" / "byo",
                              ignore=shutil.ignore_patterns("photos"))  # fmt: skip
    made = subprocess.run([sys.executable, example / "make_images.py", example / "photos",
                           "--per-class", "40", "--grayscale-every", "10"],
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = cli("run", example / "byo.yaml", "--smoke", "--out", root / "runs" / "byo", "--quiet")
    assert result.returncode == 0, result.stderr
    return example, root / "runs" / "byo"


@pytest.fixture(scope="module")
def austen(tmp_path_factory):
    out = tmp_path_factory.mktemp("austen") / "run"
    result = cli("run", ROOT / "examples" / "austen-cls.yaml", "--smoke", "--out", out, "--quiet")
    assert result.returncode == 0, result.stderr
    return out


def test_byo_run_trains_a_users_model_on_an_image_folder(byo):
    _, run = byo
    report = json.loads((run / "report.json").read_text())
    assert {m["arch"] for m in report["models"]} == {"my_models:teacher", "my_models:student"}
    assert any("converted" in note and "grayscale" in note for note in report["notes"])
    eager = {r["model"] for r in report["latency"] if r["target"] == "cpu-torch-eager"}
    assert eager == {"teacher", "student", "student-scratch"}  # every checkpoint is timed
    signature = json.loads((run / "03-export" / "student" / "student.signature.json").read_text())
    assert signature["signature"]["inputs"][0]["shape"] == ["batch", 3, 64, 64]
    assert signature["preprocessing"]["resize"] == 72 and signature["labels"][0] == "ankle-boot"


def test_deploy_only_exports_and_profiles_a_given_checkpoint(byo, tmp_path):
    example, run = byo
    result = cli("run", example / "deploy-only.yaml", "--smoke", "--out", tmp_path / "deploy",
                 "--quiet")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "deploy" / "report.json").read_text())
    (teacher,) = report["models"]
    trained = json.loads((run / "report.json").read_text())["models"][0]
    assert teacher["transform"] == "loaded"
    assert teacher["metrics_pytorch"] == trained["metrics_pytorch"]


def test_python_runtime_classifies_an_image_and_a_sentence_without_torch(byo, austen):
    example, run = byo
    image = next((example / "photos" / "test" / "trouser").glob("*.png"))
    script = ROOT / "examples" / "python_runtime.py"
    result = run_without_torch(f"""
        sys.argv = ["python_runtime.py", "--image-model", {str(run / "03-export" / "student")!r},
                    "--image", {str(image)!r},
                    "--text-model", {str(austen / "03-export" / "teacher")!r},
                    "--sentence", "Emma Woodhouse, handsome, clever, and rich."]
        import runpy
        runpy.run_path({str(script)!r}, run_name="__main__")
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{image} (") and len(lines) == 8  # two titles, 3 labels each
    assert "Emma Woodhouse" in lines[4] and "%" in lines[5]


def test_runtime_reads_the_signature_and_runs_a_batch_of_texts(austen):
    from compress.runtime import load

    model = load(austen / "03-export" / "student" / "student.onnx")
    assert model.meta.task == "sequence-classification"
    assert [s.name for s in model.meta.signature.inputs] == ["input_ids", "attention_mask"]
    out = model.classify(["A short one.", "A much longer sentence that has many more tokens."])
    assert len(out) == 2 and all(len(ranked) == 3 for ranked in out)
    assert model.provenance["parity"]["passed"] and model.provenance["parent"] == "teacher"


def test_runtime_refuses_bad_inputs_and_broken_artifacts_with_clear_errors(austen, tmp_path):
    import numpy as np

    from compress.errors import CompressError
    from compress.runtime import load

    model = load(austen / "03-export" / "student")
    ids = np.ones((2, 5), np.int64)
    bad = {"dtype": {"input_ids": ids.astype(np.int32), "attention_mask": ids},
           "rank": {"input_ids": ids[0], "attention_mask": ids},
           "axis": {"input_ids": ids, "attention_mask": ids[:1]},
           "missing": {"input_ids": ids}, "unknown": {"input_ids": ids, "attention_mask": ids,
                                                     "pixels": ids}}  # fmt: skip
    said = {}
    for case, inputs in bad.items():
        with pytest.raises(CompressError) as e:
            model.run(inputs)
        said[case] = str(e.value)
    assert "'input_ids' is int32, it takes int64" in said["dtype"]
    assert "has shape (5,)" in said["rank"] and "axis 'batch'" in said["axis"]
    assert "missing input 'attention_mask'" in said["missing"]
    assert "unknown input 'pixels'" in said["unknown"]
    assert model.run({"input_ids": ids, "attention_mask": ids})["logits"].shape == (2, 6)

    folder = shutil.copytree(austen / "03-export" / "student", tmp_path / "student")
    onnx = folder / "student.onnx"
    onnx.write_bytes(onnx.read_bytes()[:400])
    with pytest.raises(CompressError, match="student.onnx: cpu-ort cannot load it"):
        load(folder)
    onnx.unlink()
    with pytest.raises(CompressError, match="no such artifact"):
        load(folder)
    with pytest.raises(CompressError, match="unknown target 'tpu'"):
        load(austen / "03-export" / "teacher", target="tpu")


def test_runtime_needs_only_its_extra(byo):
    """Classify with torch, the training, plotting and recipe libraries all unimportable:
    what a device with `pip install 'edge-compress[runtime]'` (plus Pillow) has."""
    example, run = byo
    image = next((example / "photos" / "test" / "trouser").glob("*.png"))
    result = run_without_torch(f"""
        class BlockHostLibraries:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"matplotlib", "rich", "yaml", "sklearn", "onnx",
                                           "safetensors", "scipy", "transformers"}}:
                    raise ModuleNotFoundError(f"{{name}} is blocked", name=name)
        sys.meta_path.insert(0, BlockHostLibraries())
        from compress.runtime import load
        model = load({str(run / "03-export" / "student")!r})
        (label, p), *_ = model.classify({str(image)!r})
        print(label in model.labels, 0 < p <= 1, model.provenance["recipe"])
        print(sorted(m for m in sys.modules if m.split(".")[0] in {{"torch", "matplotlib"}}))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["True True byo", "[]"]
