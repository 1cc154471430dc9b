"""N2N on a user's own teacher the project's surgery cannot read: a builder beside the recipe
with a concatenation of two branches and a residual add. Torch-Pruning's dependency graph
shrinks it consistently; the child is smaller (counted), forwards, trains against the teacher,
exports to ONNX and rebuilds from its plan (JSON) alone."""

from __future__ import annotations

import copy
import json
import sys

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from pydantic import TypeAdapter
from sklearn.datasets import load_digits

from compress.errors import ModelError
from compress.export.onnx import export_onnx
from compress.models import PythonModelSpec, build_model, count_params, model_spec
from compress.prune.child import SurgeryChildMaker, child_maker
from compress.prune.evaluate import ChildJob, ChildTrainer, ChildTraining
from compress.prune.surgery import Plan
from compress.prune.tp_surgery import TPChildMaker, prune
from tests.conftest import image_info
from tests.test_n2n_stage import N2N, _plan

BRANCHY = '''
import torch
from torch import nn


class Branchy(nn.Module):
    """A stem, two branches concatenated, a conv with a residual conv, a two-layer head."""

    def __init__(self, channels, classes, width):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1),
                                  nn.BatchNorm2d(width), nn.ReLU())
        self.wide = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.narrow = nn.Sequential(nn.Conv2d(width, width // 2, 1), nn.ReLU())
        self.mix = nn.Conv2d(width + width // 2, 2 * width, 3, padding=1)
        self.res = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.head = nn.Sequential(nn.Linear(2 * width, 32), nn.ReLU(), nn.Linear(32, classes))

    def forward(self, x):                                          # (b, c, h, w)
        x = self.stem(x)
        x = torch.cat([self.wide(x), self.narrow(x)], dim=1)       # (b, 1.5 w, h, w)
        x = torch.relu(self.mix(x))
        x = x + torch.relu(self.res(x))                            # (b, 2 w, h, w)
        return self.head(x.mean(dim=(2, 3)))                       # (b, classes)


def build(info, width=16):
    return Branchy(info.input_shape[0], info.num_classes, width)
'''
INFO = image_info((1, 8, 8), classes=10)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)  # (n, 1, 8, 8)
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, digits):
    """The user's network, trained briefly on the first 1,400 digits."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "branchy.py").write_text(BRANCHY)
    sys.path.insert(0, str(folder))
    spec = PythonModelSpec(python="branchy:build")
    torch.manual_seed(0)
    model = build_model(spec, INFO)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(digits[0][:1400]), torch.from_numpy(digits[1][:1400])
    for _ in range(6):  # about 0.79 on the held-out digits: the pooled head is a weak learner
        for start in range(0, 1400, 64):
            loss = F.cross_entropy(model(x[start : start + 64]), y[start : start + 64])
            opt.zero_grad()
            loss.backward()
            opt.step()
    yield model.eval(), spec.model_dump(mode="json")
    sys.path.remove(str(folder))


def test_a_branchy_user_network_is_shrunk_consistently(teacher, digits):
    model, spec = teacher
    maker = child_maker(model, spec, INFO, floor=4)
    assert isinstance(maker, TPChildMaker) and not maker.removal  # no layer removal here
    assert [lay.out for lay in maker.layers] == [16, 16, 8, 32, 32]  # stem wide narrow res head
    child_spec = maker.spec(Plan(keep=[True] * 5, factors=[0.5, 0.25, 1.0, 0.5, 0.5]))
    child = build_model(child_spec, INFO)
    assert count_params(child) < count_params(model) / 2
    assert child.stem[0].out_channels == child.wide[0].in_channels == 8
    assert child.mix.in_channels == 4 + 8  # the concat of the two shrunk branches
    assert child.mix.out_channels == child.res.out_channels == 16  # the residual add agrees
    assert child.head[2].out_features == 10  # the classifier keeps every class
    assert child(torch.from_numpy(digits[0][:5])).shape == (5, 10)


def test_the_child_trains_exports_and_rebuilds_from_its_plan(teacher, digits, tmp_path):
    model, spec = teacher
    maker = child_maker(model, spec, INFO, floor=4)
    child_spec = maker.spec(Plan(keep=[True] * 5, factors=[0.5, 0.5, 1.0, 0.5, 0.5]))
    x, y = digits
    held_out = torch.from_numpy(x[1400:])  # (397, 1, 8, 8)
    with torch.no_grad():
        logits = model(torch.from_numpy(x[:1000])).numpy()  # (1000, 10)
        target = model(held_out)  # (397, 10)
    settings = ChildTraining(epochs=3, lr=5e-3, weight_decay=0.0, batch_size=64, inherit=True,
                             seed=0)  # fmt: skip
    trainer = ChildTrainer(INFO, x[:1000], logits, x[1400:], y[1400:], model.state_dict(),
                           settings)  # fmt: skip
    job = ChildJob(maker.key(child_spec, None), child_spec.model_dump(mode="json"))
    result = trainer(job)
    assert result.valid, result.error
    assert result.params < count_params(model) / 2
    assert result.accuracy > 0.3, result.accuracy  # 397 held-out digits; chance is 0.1

    # The checkpoint's JSON alone rebuilds the architecture; the trained weights fit it.
    rebuilt = build_model(TypeAdapter(model_spec()).validate_python(
        json.loads(json.dumps(child_spec.model_dump(mode="json")))), INFO)  # fmt: skip
    rebuilt.load_state_dict(result.weights)
    pruned = prune(copy.deepcopy(model), INFO, child_spec.groups)  # the child before training
    with torch.no_grad():
        before = F.mse_loss(pruned.eval()(held_out), target).item()
        after = F.mse_loss(rebuilt.eval()(held_out), target).item()
        assert after < 0.5 * before, (before, after)  # it learned to match the teacher
        sample = held_out[:32]  # (32, 1, 8, 8)
        expected = rebuilt(sample).numpy()

    path = tmp_path / "child.onnx"
    export_onnx(rebuilt, INFO, {"input": sample[:2]}, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": sample.numpy()})
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_same_kept_channels_share_one_key(teacher):
    """The cache key is what the child keeps: with a floor of 8, factors 0.25 and 0.5 of the
    stem's 16 channels both keep its 8 strongest; 0.7 keeps 11."""
    model, spec = teacher
    maker = child_maker(model, spec, INFO, floor=8)
    a = maker.spec(Plan(keep=[True] * 5, factors=[0.25, 1.0, 1.0, 1.0, 1.0]))
    b = maker.spec(Plan(keep=[True] * 5, factors=[0.5, 1.0, 1.0, 1.0, 1.0]))
    c = maker.spec(Plan(keep=[True] * 5, factors=[0.7, 1.0, 1.0, 1.0, 1.0]))
    assert maker.key(a, None) == maker.key(b, None) != maker.key(c, None)


def test_the_zoo_networks_keep_the_projects_own_surgery():
    net = build_model(TypeAdapter(model_spec()).validate_python(
        {"arch": "vgg", "stages": [[8], [16]], "hidden": 32}), INFO)  # fmt: skip
    assert isinstance(child_maker(net, {}, INFO, floor=4), SurgeryChildMaker)


def test_without_torch_pruning_the_error_names_the_extra(teacher, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_pruning", None)  # as if not installed
    with pytest.raises(ModelError, match=r"flat nn.Sequential.*edge-compress\[prune\]"):
        child_maker(teacher[0], teacher[1], INFO, floor=4)


def test_a_recipe_with_a_branchy_teacher_plans(tmp_path):
    (tmp_path / "branchy_plan.py").write_text(BRANCHY)
    model = {"python": "branchy_plan:build", "kwargs": {"width": 8}}
    stages = [N2N, {"kind": "export"}]
    names = [n for n, _ in _plan(tmp_path, teacher={"model": model, "train": {
        "epochs": 1, "lr": 1e-3}}, stages=stages)[0]]  # fmt: skip
    assert names == ["01-teacher", "02-n2n", "03-export"]
