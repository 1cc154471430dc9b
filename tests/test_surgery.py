"""N2N network surgery on the zoo's networks: every plan the rules allow builds a real network
whose forward shapes work and whose modules are exactly what the plan says (property-based,
over random actions); weight inheritance; checkpoints rebuilt from JSON."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compress.errors import ModelError
from compress.models import build_model, count_flops, count_params
from compress.prune.child import N2NChildSpec
from compress.prune.inherit import inherit_weights
from compress.prune.layers import describe_network, kernel_shrinkable, removable, shrinkable
from compress.prune.surgery import FACTORS, Plan, apply_plan, build_layers, surgery_layers
from tests.conftest import image_info, spec_of

NETWORKS = {
    "cnn-small": {"arch": "cnn-small", "width": 8, "blocks": 2, "hidden": 16},
    "cnn-large": {"arch": "cnn-large", "width": 8, "hidden": 32},
    "vgg": {"arch": "vgg", "stages": [[8, 8], [16, 16]], "hidden": 32},
    "resnet-small": {"arch": "resnet-small", "width": 8, "stages": 2, "blocks": 2},
    "n2n-child": {"arch": "n2n-child"},
}
SHAPES = [(1, 8, 8), (3, 16, 16)]
_TEACHERS: dict = {}


def teacher(name: str, shape: tuple[int, ...]):
    """(model, layers, info), built once per network and input shape."""
    if (name, shape) not in _TEACHERS:
        info = image_info(shape, classes=7)
        torch.manual_seed(0)
        model = build_model(spec_of(NETWORKS[name]), info).eval()
        _TEACHERS[name, shape] = model, surgery_layers(model, shape, 7), info
    return _TEACHERS[name, shape]


@st.composite
def plans(draw):
    """A zoo network, an input shape, and a plan of random actions the rules allow."""
    name, shape = draw(st.sampled_from(sorted(NETWORKS))), draw(st.sampled_from(SHAPES))
    _, layers, _ = teacher(name, shape)
    keep = [draw(st.booleans()) if ok else True for ok in removable(layers)]
    factors = [draw(st.sampled_from(FACTORS)) if ok else 1.0 for ok in shrinkable(layers)]
    kernels = [draw(st.sampled_from(FACTORS)) if ok else 1.0 for ok in kernel_shrinkable(layers)]
    floor = draw(st.integers(1, 12))
    return name, shape, Plan(keep=keep, factors=factors,
                             kernels=draw(st.sampled_from([None, kernels]))), floor


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # the same 60 cases on every run
@given(plans())
def test_every_allowed_plan_builds_a_network_that_is_what_the_plan_says(case):
    name, shape, plan, floor = case
    model, layers, info = teacher(name, shape)
    spec = N2NChildSpec(arch="n2n-child", teacher=layers, plan=plan, floor=floor)
    child = build_model(spec, info).eval()  # build_model checks (2, classes) logits itself
    with torch.no_grad():
        assert child(torch.randn(5, *shape)).shape == (5, 7)
    # The built modules are exactly the plan's layers: nothing silently kept or resized.
    assert describe_network(child)[0] == apply_plan(layers, plan, floor)
    kept = [lay for lay, k in zip(layers, plan.keep, strict=True) if k]
    for built, before in zip(describe_network(child)[0], kept, strict=True):  # the floor holds
        assert built.out >= min(floor, before.out) and built.mid >= min(floor, before.mid)
    if all(plan.keep):  # shrinking alone never adds a parameter or a FLOP
        assert count_params(child) <= count_params(model)
        assert count_flops(child, info) <= count_flops(model, info)
        pairs = zip(plan.factors, layers, strict=True)
        if any(f < 1 and lay.out > floor for f, lay in pairs if lay.kind != "block"):
            assert count_params(child) < count_params(model)
    inherit_weights(child, model, plan.keep)  # never fails, whatever was removed
    with torch.no_grad():
        assert torch.isfinite(child(torch.randn(2, *shape))).all()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_inheriting_through_the_identity_plan_reproduces_the_teacher(name):
    model, layers, info = teacher(name, (3, 16, 16))
    child = build_layers(layers, (3, 16, 16), 7).eval()
    assert inherit_weights(child, model, [True] * len(layers)) > 0
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(child(x), model(x))


def test_a_shrunk_layer_inherits_its_largest_filters():
    model, layers, _ = teacher("vgg", (1, 8, 8))
    plan = Plan(keep=[True] * len(layers), factors=[0.5] + [1.0] * (len(layers) - 1))
    child = build_layers(apply_plan(layers, plan, 1), (1, 8, 8), 7)
    inherit_weights(child, model, plan.keep)
    w = model[0].weight  # (8, 1, 3, 3)
    top = w.abs().flatten(1).sum(1).topk(4).indices.sort().values
    assert torch.equal(child[0].weight, w[top])
    assert torch.equal(child[3].weight, model[3].weight[:, top])  # the next conv reads them


def test_a_smaller_kernel_keeps_same_convs_same_and_inherits_the_centre():
    """Field 'kernel': a 3×3 'same' conv given factor 0.5 becomes 1×1 without padding, the
    resolution after it unchanged, fewer parameters; it inherits the centre taps."""
    model, layers, info = teacher("vgg", (1, 8, 8))
    kernels = [0.5 if i == 1 else 1.0 for i in range(len(layers))]
    plan = Plan(keep=[True] * len(layers), factors=[1.0] * len(layers), kernels=kernels)
    child_layers = apply_plan(layers, plan, 1)
    assert (child_layers[1].kernel, child_layers[1].padding) == (1, 0)
    assert [lay.kernel for lay in child_layers[2:]] == [lay.kernel for lay in layers[2:]]
    child = build_layers(child_layers, (1, 8, 8), 7)
    assert count_params(child) == count_params(model) - 8 * 8 * 8  # 8 taps of 8×8 weights
    inherit_weights(child, model, plan.keep)
    assert torch.equal(child[3].weight, model[3].weight[:, :, 1:2, 1:2])
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert child[:4](x).shape == model[:4](x).shape  # (2, 8, 8, 8): still 'same'
    with pytest.raises(ModelError, match="may not be given a smaller kernel"):
        apply_plan(layers, plan.model_copy(update={"kernels": [0.5] * len(layers)}), 1)


def test_the_shrink_policy_samples_kernels_only_when_asked():
    from compress.prune.policy import Policies

    _, layers, _ = teacher("vgg", (1, 8, 8))
    keep, gen = [True] * len(layers), torch.Generator().manual_seed(0)
    assert Policies().shrink.sample(layers, keep, gen)[0].kernels is None
    plans = [Policies(("out", "kernel")).shrink.sample(layers, keep, gen)[0] for _ in range(5)]
    can = kernel_shrinkable(layers)
    assert all(len(p.kernels) == len(layers) for p in plans)
    assert all(p.kernels[i] == 1.0 for p in plans for i in range(len(layers)) if not can[i])
    assert any(p.kernels[i] < 1 for p in plans for i in range(len(layers)) if can[i])
    only = Policies(("kernel",)).shrink.sample(layers, keep, gen)[0]
    assert set(only.factors) == {1.0}  # widths left alone


def test_rules_refuse_what_the_paper_always_keeps():
    _, layers, _ = teacher("resnet-small", (3, 16, 16))
    kinds = [lay.kind for lay in layers]
    assert kinds[:2] == ["conv", "block"] and kinds[-1] == "linear"
    can = removable(layers)
    assert not can[0] and not can[-1]  # first and last layer
    fixed = [lay.stride != 1 or lay.kind == "linear" for lay in layers]
    assert not any(c and f for c, f in zip(can, fixed, strict=True))
    assert any(can)  # the identity blocks of each stage may go
    assert not shrinkable(layers)[0]  # the stem feeds a block: its width stays
    with pytest.raises(ModelError, match="may not be removed"):
        apply_plan(layers, Plan(keep=[False] + [True] * (len(layers) - 1),
                                factors=[1.0] * len(layers)), 10)  # fmt: skip
    with pytest.raises(ModelError, match="may not be shrunk"):
        apply_plan(layers, Plan(keep=[True] * len(layers),
                                factors=[1.0] * (len(layers) - 1) + [0.5]), 10)  # fmt: skip


def test_a_child_checkpoint_rebuilds_from_its_json_description(tmp_path):
    from compress.models.checkpoint import architecture, load_checkpoint, save_checkpoint

    model, layers, info = teacher("vgg", (1, 8, 8))
    plan = Plan(keep=[True, False] + [True] * (len(layers) - 2),
                factors=[0.5] + [1.0] * (len(layers) - 1))  # fmt: skip
    spec = N2NChildSpec(arch="n2n-child", teacher=layers, plan=plan, floor=2)
    child = build_model(spec, info).eval()
    save_checkpoint(tmp_path / "c.safetensors", child, architecture(spec, info))
    again, _ = load_checkpoint(tmp_path / "c.safetensors")
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(again(x), child(x))
    assert count_params(again) < count_params(model)


def test_surgery_refuses_a_network_it_does_not_know():
    from tests.test_registry import text_info

    net = build_model(spec_of({"arch": "text-bag"}), text_info())
    with pytest.raises(ModelError, match="N2N surgery"):
        describe_network(net)
