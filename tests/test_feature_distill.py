"""Distillation beyond logits: module outputs by path, hint and attention losses with the teacher
run per batch, and seeded augmentation of training batches only."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from compress.data.source import AugmentConfig
from compress.distill.features import (
    AttentionLoss,
    FeatureCapture,
    HintLoss,
    attention_loss,
    attention_map,
    find_module,
    hint_adapter,
    hint_loss,
    probe_shapes,
)
from compress.errors import ModelError
from compress.models import build_model
from tests.conftest import cli, digits_recipe, image_info, spec_of, write_recipe
from tests.test_user_code import one_line_error

# Module paths on 8×8 digits: the student's '2' is (4, 8, 8), '6' (8, 4, 4); the teacher's '9'
# is (16, 4, 4), '13' (32, 2, 2).
STUDENT = {"arch": "cnn-small", "width": 4}
TEACHER = {"arch": "cnn-large", "width": 8, "hidden": 16}


def image_task():
    from compress.tasks.classification import ImageClassification, ImageClassificationConfig

    return ImageClassification(ImageClassificationConfig(name="image-classification"))


def test_hooks_capture_module_outputs_by_path_and_leave_the_model_as_it_was():
    model = build_model(spec_of(STUDENT), image_info()).eval()
    with FeatureCapture(model, ["2", "6", ""], "student") as capture:
        model(torch.zeros(3, 1, 8, 8))
        assert tuple(capture.get("2").shape) == (3, 4, 8, 8)  # (b, c, h, w)
        assert tuple(capture.get("6").shape) == (3, 8, 4, 4)
        assert tuple(capture.get("").shape) == (3, 10)  # the whole model: its logits
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(ModelError, match=r"no module '66' in the student; .*'6' \(ReLU\)"):
        find_module(model, "66", "student")

    class Stack(nn.Module):  # a ModuleList is a path, but never runs itself
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Flatten(), nn.Linear(64, 10)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.blocks[1](self.blocks[0](x))

    shapes = probe_shapes(Stack(), image_info(), ["blocks", "blocks.0"], "teacher")
    assert shapes == {"blocks.0": (2, 64)}  # 'blocks' left out: the plan says it gives nothing


def test_hint_is_zero_for_identical_features_and_its_adapter_learns():
    cfg = HintLoss(student="a", teacher="b")
    adapter = hint_adapter(cfg, (2, 4, 3, 3), (2, 4, 3, 3))  # 1×1 conv, 4 → 4 channels
    with torch.no_grad():
        adapter.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        adapter.bias.zero_()
    x = torch.randn(5, 4, 3, 3)  # (b, c, h, w)
    assert hint_loss(cfg, adapter(x), x, torch.zeros(5)).item() == pytest.approx(0.0, abs=1e-7)

    torch.manual_seed(0)
    student, teacher = torch.randn(8, 3, 4, 4), torch.randn(8, 6, 2, 2)  # other c, h, w
    adapter = hint_adapter(cfg, tuple(student.shape), tuple(teacher.shape))
    opt = torch.optim.SGD(adapter.parameters(), lr=0.1)
    losses = []
    for _ in range(30):
        loss = hint_loss(cfg, adapter(student), teacher, torch.zeros(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    with pytest.raises(ModelError, match="expected the same rank"):
        hint_adapter(cfg, (2, 8), (2, 4, 3, 3))
    assert isinstance(hint_adapter(cfg, (2, 8), (2, 16)), nn.Linear)


def test_attention_maps_are_normalised_and_resized_to_match():
    torch.manual_seed(0)
    a = torch.randn(4, 8, 4, 4)  # (b, c, h, w)
    m = attention_map(a, 2.0)  # (b, h·w)
    assert m.shape == (4, 16)
    assert torch.allclose(m.norm(dim=1), torch.ones(4))
    assert torch.allclose(attention_map(3 * a, 2.0), m)  # the scale of the features drops out
    cfg = AttentionLoss()
    assert attention_loss(cfg, a, a.clone(), torch.zeros(4)).item() == pytest.approx(0, abs=1e-6)
    other = attention_loss(cfg, a, torch.randn(4, 32, 2, 2), torch.zeros(4))  # pooled to 2×2
    assert 0 < other.item() <= 2


def test_augmentation_changes_training_batches_only_and_is_seeded():
    from compress.tasks.base import Examples
    from compress.train import BatchReader, evaluate

    task = image_task()
    rng = np.random.default_rng(0)
    examples = Examples(rng.random((16, 1, 8, 8), dtype=np.float32), np.arange(16) % 10)
    rows = [np.arange(8), np.arange(8, 16)]
    augment = AugmentConfig(flip=True, crop_padding=2)

    def batch(seed: int, epoch: int, aug: AugmentConfig | None = augment) -> np.ndarray:
        return BatchReader(task, examples, rows, aug, (seed, epoch))[1][0]["input"].numpy()

    raw = examples.x[8:16]
    assert np.array_equal(batch(0, 0, None), raw)
    assert not np.array_equal(batch(0, 0), raw)
    assert np.array_equal(batch(0, 0), batch(0, 0))  # seeded by (seed, epoch, step)
    assert not np.array_equal(batch(0, 0), batch(0, 1))
    assert not np.array_equal(batch(0, 0), batch(1, 0))

    seen: list[np.ndarray] = []  # evaluation reads the examples as they are
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].numpy().copy()))
    evaluate(model, task, image_info(), examples, batch_size=16)
    assert np.array_equal(seen[0], examples.x)


def small_distill(tmp_path: Path, losses: dict, **data) -> Path:
    """A recipe with a ready teacher checkpoint (no teacher training) and one distill stage."""
    torch.manual_seed(0)
    teacher = build_model(spec_of(TEACHER), image_info())
    save_file(teacher.state_dict(), str(tmp_path / "teacher.safetensors"))
    recipe = digits_recipe()
    recipe["data"].update(data)
    recipe["teacher"] = {"model": TEACHER, "checkpoint": "teacher.safetensors"}
    recipe["stages"] = [{"kind": "distill", "student": STUDENT, "losses": losses,
                         "train": {"epochs": 1, "lr": 1e-2}, "baseline": "none"}]  # fmt: skip
    return write_recipe(tmp_path / "r.yaml", recipe)


def test_a_hint_recipe_runs_the_teacher_per_batch(tmp_path):
    losses = {"hint": {"weight": 1.0, "student": "6", "teacher": "13"}, "kd": {"weight": 0.5},
              "attention": {"weight": 1.0, "student": "2", "teacher": "9"}}  # fmt: skip
    path = small_distill(tmp_path, losses)
    result = cli("run", path, "--out", tmp_path / "run", "--smoke")
    assert result.returncode == 0, result.stderr
    assert "teacher runs on every batch" in result.stderr
    stage = tmp_path / "run" / "02-distill"
    assert not (stage / "teacher-logits.npy").exists()
    state = json.loads((stage / "student.json").read_text())  # the exported student: no adapter
    assert "adapters" not in json.dumps(state)
    from safetensors import safe_open

    with safe_open(str(stage / "student.safetensors"), framework="pt") as f:
        assert not [k for k in f.keys() if "adapter" in k]  # noqa: SIM118  (not a dict)


@pytest.mark.parametrize("side", ["student", "teacher"])
def test_a_bad_module_path_is_one_located_line(tmp_path, side):
    hint = {"weight": 1.0, "student": "6", "teacher": "13", side: "6.conv"}
    path = small_distill(tmp_path, {"hint": hint})
    one_line_error(cli("validate", path), path, f"stages[0].losses.hint.{side}:",
                   f"no module '6.conv' in the {side}")  # fmt: skip


def test_augmentation_of_text_is_a_recipe_error(tmp_path):
    (tmp_path / "texts.py").write_text(
        "def make():\n    return {'train_x': ['a b', 'c d'] * 20, 'train_y': [0, 1] * 20,"
        " 'classes': ['x', 'y']}\n"
    )
    recipe = digits_recipe()
    recipe["task"] = {"name": "sequence-classification"}
    recipe["data"] = {"source": "python", "python": "texts:make", "kind": "text",
                      "augment": {"flip": True}}  # fmt: skip
    recipe["teacher"]["model"] = {"arch": "text-bag"}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path), path, "data.augment:", "augmentation is for image data")


def test_augmented_distillation_is_deterministic(tmp_path):
    from compress.log import Log
    from compress.pipeline.runner import run_recipe

    augment = {"flip": True, "crop_padding": 1}
    path = small_distill(tmp_path, {"kd": {"weight": 1.0}}, augment=augment)
    digests = []
    for out in ("a", "b"):
        run_recipe(path, out=tmp_path / out, smoke=True, log=Log(quiet=True))
        weights = tmp_path / out / "02-distill" / "student.safetensors"
        digests.append(hashlib.sha256(weights.read_bytes()).hexdigest())
        assert not (tmp_path / out / "02-distill" / "teacher-logits.npy").exists()
    assert digests[0] == digests[1]


def test_a_killed_feature_run_resumes_bit_exactly(tmp_path):
    """Adapters and their optimizer slots are in the resume state; augmentation is seeded per
    step: an interrupted run ends with the weights of one that ran through."""
    from compress.data.splits import Splits
    from compress.distill.losses import losses_model
    from compress.distill.stage import DistillCriterion, TeacherOnBatches
    from compress.log import Log
    from compress.recipe import TrainConfig
    from compress.tasks.base import Examples
    from compress.train import train

    info = image_info()
    rng = np.random.default_rng(0)
    data = Examples(rng.random((96, 1, 8, 8), dtype=np.float32), np.arange(96) % 10)
    splits = Splits("t", image_task(), info, data, data.take(np.arange(8)),
                    data.take(np.arange(8)))  # fmt: skip
    terms = {"hint": {"student": "6", "teacher": "13"}, "kd": {"weight": 0.5}}
    losses = losses_model().model_validate(terms)
    teacher = build_model(spec_of(TEACHER), info).eval().requires_grad_(False)
    on_batches = TeacherOnBatches(teacher, info, FeatureCapture(teacher, ["13"], "teacher"))

    def run(state_dir: Path, stop_after: int = 0) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        student = build_model(spec_of(STUDENT), info)
        crit = DistillCriterion(losses, student, on_batches, None, info, seed=0)
        epochs_done = []

        def validate(_model: nn.Module) -> dict[str, float]:
            epochs_done.append(1)
            if stop_after and len(epochs_done) > stop_after:
                raise KeyboardInterrupt  # killed before the state of epoch 2 is written
            return {}

        with on_batches.features, crit.student_features:
            train(student, splits, crit, TrainConfig(epochs=2, lr=1e-2), batch_size=32, seed=0,
                  workers=0, state_dir=state_dir, log=Log(quiet=True), label="s",
                  validate=validate, augment=AugmentConfig(flip=True, crop_padding=1))  # fmt: skip
        return {**student.state_dict(), **{f"objective.{k}": v
                                           for k, v in crit.state_dict().items()}}  # fmt: skip

    through = run(tmp_path / "through")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", stop_after=1)
    resumed = run(tmp_path / "killed")
    assert through.keys() == resumed.keys() and any("adapters.hint" in k for k in through)
    assert all(torch.equal(through[k], resumed[k]) for k in through)
