"""The pipeline rules, on real training runs of the digits data set (seconds each)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys

import pytest

from compress.atomic import sha256_file
from tests.conftest import ROOT, cli, digits_recipe, write_recipe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """One complete run of the digits recipe; tests copy it before changing anything."""
    tmp = tmp_path_factory.mktemp("run")
    recipe = write_recipe(tmp / "recipe.yaml", digits_recipe())
    result = cli("run", recipe, "--out", tmp / "run")
    assert result.returncode == 0, result.stderr
    return recipe, tmp / "run", result


def manifest(run_dir):
    return json.loads((run_dir / "manifest.json").read_text())


def test_run_writes_reports_and_a_complete_manifest(finished_run):
    _, run_dir, result = finished_run
    assert f"report: {run_dir / 'report.html'}" in result.stdout
    assert "student: accuracy " in result.stdout and "goals: 1/1 passed" in result.stdout
    for name in ("report.json", "report.md", "report.html"):
        assert (run_dir / name).stat().st_size > 0
    stages = manifest(run_dir)["stages"]
    assert [s["name"] for s in stages] == [
        "01-teacher", "02-distill", "03-export", "04-profile", "05-report"]  # fmt: skip
    assert all(s["status"] == "complete" for s in stages)
    report = json.loads((run_dir / "report.json").read_text())
    assert {m["name"] for m in report["models"]} == {"teacher", "student", "student-scratch"}
    assert all(m["artifacts"][0]["parity"]["passed"] for m in report["models"])
    targets = {(r["model"], r["target"], r["batch_size"]) for r in report["latency"]}
    assert ("student", "cpu-ort", 1) in targets and ("teacher", "cpu-torch-eager", 8) in targets


def test_rerun_runs_nothing_and_says_so(finished_run, tmp_path):
    recipe, run_dir, _ = finished_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    result = cli("run", recipe, "--out", copy)
    assert result.returncode == 0, result.stderr
    assert "nothing to do: all 5 stages are up to date" in result.stderr
    assert ": running" not in result.stderr


def test_changed_stage_reruns_itself_and_later_stages_only(finished_run, tmp_path):
    _, run_dir, _ = finished_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    changed = digits_recipe()
    changed["stages"][1]["parity"] = {"atol": 2e-4}  # the export stage
    recipe = write_recipe(tmp_path / "recipe.yaml", changed)
    result = cli("run", recipe, "--out", copy)
    assert result.returncode == 0, result.stderr
    ran = [line.split(":")[0] for line in result.stderr.splitlines() if line.endswith(": running")]
    assert ran == ["03-export", "04-profile", "05-report"]
    skipped = [line.split(":")[0] for line in result.stderr.splitlines() if "up to date" in line]
    assert skipped == ["01-teacher", "02-distill"]


def test_same_seed_gives_the_same_student(finished_run, tmp_path):
    recipe, run_dir, _ = finished_run
    result = cli("run", recipe, "--out", tmp_path / "again")
    assert result.returncode == 0, result.stderr
    for name in ("01-teacher/teacher", "02-distill/student", "02-distill/student-scratch"):
        path = f"{name}.safetensors"
        assert sha256_file(run_dir / path) == sha256_file(tmp_path / "again" / path), path


def test_sigkill_mid_training_resumes_from_last_epoch(finished_run, tmp_path):
    recipe, run_dir, _ = finished_run
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "compress", "run", str(recipe), "--out", str(killed)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
    )  # fmt: skip
    for line in process.stderr:
        if "student: epoch 2/3" in line:  # the student's second epoch checkpoint is written
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    stages = {s["name"]: s["status"] for s in manifest(killed)["stages"]}
    assert stages == {"01-teacher": "complete", "02-distill": "running"}

    result = cli("run", recipe, "--out", killed)
    assert result.returncode == 0, result.stderr
    assert "01-teacher: up to date" in result.stderr
    assert "02-distill: running (resuming)" in result.stderr
    # The kill lands during epoch 3 or, on a loaded machine, a little later: resume from there.
    resumed = re.search(r"student: resuming from the checkpoint of epoch (\d)/3", result.stderr)
    assert resumed and int(resumed.group(1)) >= 2
    for done in range(1, int(resumed.group(1)) + 1):  # no epoch was trained twice
        assert f"student: epoch {done}/3" not in result.stderr
    # Resumed exactly: the same weights as the run that was never interrupted.
    path = "02-distill/student.safetensors"
    assert sha256_file(killed / path) == sha256_file(run_dir / path)


def test_parity_outside_tolerance_fails_the_export_stage(finished_run, tmp_path):
    _, run_dir, _ = finished_run
    copy = shutil.copytree(run_dir, tmp_path / "run")
    strict = digits_recipe()
    strict["stages"][1]["parity"] = {"atol": 0.0, "rtol": 0.0}
    result = cli("run", write_recipe(tmp_path / "recipe.yaml", strict), "--out", copy)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "parity check failed for teacher.onnx (atol 0, rtol 0)" in result.stderr
    assert "logits: max abs error" in result.stderr and "FAILED" in result.stderr
    export = next(s for s in manifest(copy)["stages"] if s["name"] == "03-export")
    assert export["status"] == "failed"
    assert not list((copy / "03-export").rglob("*.onnx"))  # no artifact that looks finished


def test_teacher_from_a_checkpoint_is_loaded_not_trained(finished_run, tmp_path):
    _, run_dir, _ = finished_run
    recipe = digits_recipe()
    recipe["teacher"] = {
        "model": recipe["teacher"]["model"],
        "checkpoint": str(run_dir / "01-teacher" / "teacher.safetensors"),
    }
    recipe["stages"] = [{"kind": "export"}, {"kind": "report"}]  # fmt: skip
    result = cli("run", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    assert "teacher: loaded" in result.stderr and "epoch" not in result.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    trained = json.loads((run_dir / "report.json").read_text())
    assert report["models"][0]["metrics_pytorch"] == trained["models"][0]["metrics_pytorch"]


def test_a_users_python_builder_is_the_teacher(tmp_path):
    """The builder's module sits beside the recipe (no PYTHONPATH) and gets the task's info."""
    (tmp_path / "my_models.py").write_text(
        "import math\n"
        "import torch.nn as nn\n"
        "def wide_mlp(info, hidden=32):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(info.input_shape), hidden),\n"
        "                         nn.ReLU(), nn.Linear(hidden, info.num_classes))\n"
    )
    recipe = digits_recipe()
    recipe["teacher"]["model"] = {"python": "my_models:wide_mlp", "kwargs": {"hidden": 48}}
    recipe["teacher"]["train"]["epochs"] = 1
    recipe["stages"] = [{"kind": "export"}, {"kind": "report"}]
    result = cli("run", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "run",
                 cwd=ROOT / "tests")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["models"][0]["arch"] == "my_models:wide_mlp"
    assert report["models"][0]["params"] == 64 * 48 + 48 + 48 * 10 + 10


def test_json_logs_are_one_object_per_line(tmp_path):
    recipe = digits_recipe()
    recipe["teacher"]["train"]["epochs"] = 1
    recipe["stages"] = [{"kind": "export"}]
    result = cli("run", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "run",
                 "--json-logs")  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    epochs = [e for e in events if e.get("epoch") == 1 and e.get("model") == "teacher"]
    assert len(epochs) == 1 and 0.0 <= epochs[0]["val_accuracy"] <= 1.0
    assert any(e["message"] == "02-export: running" for e in events)
    quiet = cli("run", tmp_path / "r.yaml", "--out", tmp_path / "run", "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_an_absent_target_is_reported_absent_not_faked(tmp_path, monkeypatch):
    from compress.devices.targets import TARGETS, Availability, CpuOrt
    from compress.log import Log
    from compress.pipeline.runner import run_recipe

    class AbsentNpu(CpuOrt):  # registered for this test only
        name = "npu-absent"

        def availability(self) -> Availability:
            return Availability(False, "no NPU on this machine")

    monkeypatch.setitem(TARGETS._items, "npu-absent", AbsentNpu)
    recipe = digits_recipe()
    recipe["teacher"]["train"]["epochs"] = 1
    recipe["stages"] = [{"kind": "export"}, {"kind": "profile", "targets": ["npu-absent"],
                        "batch_sizes": [1], "iterations": 5}, {"kind": "report"}]  # fmt: skip
    run = run_recipe(write_recipe(tmp_path / "r.yaml", recipe), tmp_path / "run",
                     log=Log(quiet=True))  # fmt: skip
    report = json.loads((run / "report.json").read_text())
    assert not [r for r in report["latency"] if r["target"] == "npu-absent"]
    assert "target npu-absent: absent (no NPU on this machine); not measured" in report["notes"]
    assert "no NPU on this machine" in (run / "report.md").read_text()


def test_a_plain_state_dict_from_elsewhere_is_a_teacher(finished_run, tmp_path):
    """Weights saved by a user's own training (no description inside) load into the recipe's
    architecture; weights that do not fit it are refused before anything runs."""
    from safetensors.torch import load_file, save_file

    _, run_dir, _ = finished_run
    plain = tmp_path / "plain.safetensors"
    save_file(load_file(run_dir / "01-teacher" / "teacher.safetensors"), plain)  # no metadata
    recipe = digits_recipe()
    recipe["teacher"] = {"model": recipe["teacher"]["model"], "checkpoint": str(plain)}
    recipe["stages"] = [{"kind": "export"}]
    result = cli("run", write_recipe(tmp_path / "r.yaml", recipe), "--out", tmp_path / "run")
    assert result.returncode == 0, result.stderr
    trained = json.loads((run_dir / "report.json").read_text())["models"][0]["metrics_pytorch"]
    outputs = manifest(tmp_path / "run")["stages"][0]["outputs"]
    assert outputs["models"][0]["metrics_pytorch"] == trained

    recipe["teacher"]["model"]["width"] = 8  # not the architecture these weights belong to
    wrong = write_recipe(tmp_path / "wrong.yaml", recipe)
    line = 1 + next(i for i, t in enumerate(wrong.read_text().splitlines()) if "checkpoint:" in t)
    result = cli("validate", wrong)
    assert result.returncode == 2
    assert f"{wrong}:{line}: teacher.checkpoint: weights do not fit" in result.stderr
    assert "file [16, 1, 3, 3] vs model [8, 1, 3, 3]" in result.stderr
