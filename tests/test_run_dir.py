"""A run directory you can trust: one run at a time, no stale state picked up, cached stages
verified by content, non-finite numbers stopped, files published with the usual mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from compress.atomic import sha256_file
from tests.conftest import ROOT, cli, digits_recipe, write_recipe
from tests.test_user_code import one_line_error, ran

pytestmark = pytest.mark.slow


def quick(**distill_train) -> dict:
    recipe = digits_recipe()
    recipe["teacher"]["train"]["epochs"] = 2
    recipe["stages"][0]["train"] = {"epochs": 2, "lr": 1e-2, **distill_train}
    recipe["stages"][0]["baseline"] = "none"
    recipe["stages"] = recipe["stages"][:2]  # distill, export
    return recipe


def run(tmp_path, recipe: dict, out: str = "run", name: str = "r.yaml", *flags: str):
    return cli("run", write_recipe(tmp_path / name, recipe), "--out", tmp_path / out, *flags)


def test_a_second_run_into_a_busy_directory_refuses_at_once(tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", quick())
    command = [sys.executable, "-m", "compress", "run", str(recipe), "--out", str(tmp_path / "run")]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    for line in first.stderr:
        if "01-teacher: running" in line:
            break
    second = cli("run", recipe, "--out", tmp_path / "run")
    assert second.returncode == 3, second.stderr
    assert f"in use by another `compress run` (pid {first.pid})" in second.stderr
    first.stderr.read()
    assert first.wait(timeout=120) == 0
    assert not (tmp_path / "run" / ".lock").exists()  # a finished run leaves no lock behind


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").write_text(str(dead.pid))
    result = run(tmp_path, quick())
    assert result.returncode == 0, result.stderr
    assert f"took over the lock of pid {dead.pid}, which is gone" in result.stderr


def test_no_stale_resume_state_after_editing_the_recipe(tmp_path):
    """A → B (distill removed) → C (distill back, other lr and optimizer) into one folder ends
    with C's student, the same as C run on its own."""
    assert run(tmp_path, quick()).returncode == 0
    without = quick()
    without["stages"] = without["stages"][1:]
    assert run(tmp_path, without).returncode == 0
    changed = quick(lr=5e-3, optimizer="sgd")
    result = run(tmp_path, changed)
    assert result.returncode == 0, result.stderr
    assert "resuming" not in result.stderr
    alone = run(tmp_path, changed, "alone")
    assert alone.returncode == 0
    student = "02-distill/student.safetensors"
    assert sha256_file(tmp_path / "run" / student) == sha256_file(tmp_path / "alone" / student)


def test_a_deleted_manifest_does_not_resurrect_the_old_teacher(tmp_path):
    assert run(tmp_path, quick()).returncode == 0
    (tmp_path / "run" / "manifest.json").unlink()
    changed = quick()
    changed["teacher"]["train"]["lr"] = 1e-3
    result = run(tmp_path, changed)
    assert result.returncode == 0 and "resuming" not in result.stderr
    assert run(tmp_path, changed, "alone").returncode == 0
    teacher = "01-teacher/teacher.safetensors"
    assert sha256_file(tmp_path / "run" / teacher) == sha256_file(tmp_path / "alone" / teacher)


@pytest.mark.parametrize("damage", ["truncate-checkpoint", "flip-bytes", "truncate-onnx"])
def test_a_changed_output_reruns_its_stage_and_says_so(tmp_path, damage):
    assert run(tmp_path, quick()).returncode == 0
    teacher = tmp_path / "run" / "01-teacher" / "teacher.safetensors"
    onnx = tmp_path / "run" / "03-export" / "student" / "student.onnx"
    target = onnx if damage == "truncate-onnx" else teacher
    original = sha256_file(target)
    data = bytearray(target.read_bytes())
    if damage == "flip-bytes":
        data[-64:-48] = bytes(16)  # 16 bytes inside the last tensor
    else:
        data = data[: len(data) // 2]
    target.write_bytes(bytes(data))
    result = run(tmp_path, quick())
    assert result.returncode == 0, result.stderr
    assert "changed since this stage wrote it; running it again from scratch" in result.stderr
    assert ran(result)[0] == ("03-export" if damage == "truncate-onnx" else "01-teacher")
    assert sha256_file(target) == original  # deterministic: the same file again


def test_out_that_is_a_file_or_holds_a_corrupt_manifest(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    path = write_recipe(tmp_path / "r.yaml", quick())
    result = cli("run", path, "--out", tmp_path / "file")
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text("{not json")
    result = cli("run", path, "--out", tmp_path / "run")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a manifest written by edge-compress" in result.stderr and "--fresh" in result.stderr
    assert cli("run", path, "--out", tmp_path / "run", "--fresh").returncode == 0


def test_a_checkpoint_holding_nan_is_refused_at_validate(tmp_path):
    assert run(tmp_path, quick()).returncode == 0
    tensors = load_file(tmp_path / "run" / "01-teacher" / "teacher.safetensors")
    name = next(n for n, t in tensors.items() if t.is_floating_point())
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, tmp_path / "nan.safetensors")
    recipe = quick()
    recipe["teacher"] = {"model": recipe["teacher"]["model"],
                         "checkpoint": str(tmp_path / "nan.safetensors")}  # fmt: skip
    path = write_recipe(tmp_path / "nan.yaml", recipe)
    one_line_error(cli("validate", path), path, "teacher.checkpoint:", "holds NaN or infinite")


def test_a_loss_that_becomes_nan_stops_training(tmp_path):
    recipe = quick()
    recipe["teacher"]["train"] = {"epochs": 1, "lr": 1e30, "schedule": "constant"}
    result = run(tmp_path, recipe, "run", "r.yaml", "--quiet")
    assert result.returncode == 1, result.stderr
    assert "teacher: the loss became" in result.stderr and "at epoch 1, step" in result.stderr
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    assert [s["status"] for s in stages] == ["failed"]


def test_checkpoints_are_published_with_the_usual_mode(tmp_path):
    assert run(tmp_path, quick()).returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    mode = (tmp_path / "run" / "01-teacher" / "teacher.safetensors").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask


def test_report_on_a_corrupt_manifest_is_one_line(tmp_path):
    (tmp_path / "manifest.json").write_text('{"recipe_name": 3}')
    result = cli("report", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "not a manifest written by edge-compress" in (
        result.stderr)  # fmt: skip
