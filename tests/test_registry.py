"""The generic registry, and contract tests that every registered name must pass."""

from __future__ import annotations

import pytest
import torch

from compress.distill.losses import LOSSES
from compress.errors import UnknownNameError
from compress.models import ARCHS, build_model, count_params
from compress.pipeline.stage import STAGES
from compress.recipe import json_schema, recipe_model
from compress.registry import Registry
from compress.tasks.signature import dummy_inputs
from tests.conftest import image_info, spec_of


def test_duplicate_names_are_errors():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.register("a")(2)


def test_unknown_name_lists_the_known_ones():
    reg: Registry[int] = Registry("thing")
    reg.register("b")(1)
    reg.register("a")(2)
    with pytest.raises(UnknownNameError, match=r"unknown thing 'c'; known: a, b"):
        reg.get("c")


recipe_model()  # registers the built-in stages


@pytest.mark.parametrize("kind", STAGES.names())
def test_stage_contract(kind):
    stage = STAGES.get(kind)
    config = stage.config_model
    assert config.model_config["extra"] == "forbid"
    assert config.model_fields["kind"].annotation.__args__ == (kind,)
    undocumented = [n for n, f in config.model_fields.items() if not f.description]
    assert not undocumented, f"{kind}: fields without description: {undocumented}"
    assert set(stage.requires) | set(stage.provides) <= {"models", "exports", "latency", "reports"}


def _properties_without_description(schema: dict, defs: dict, seen: set) -> list[str]:
    missing = []
    for name, prop in schema.get("properties", {}).items():
        if "description" not in prop:
            missing.append(name)
    for ref in _refs(schema):
        if ref not in seen:
            seen.add(ref)
            missing += _properties_without_description(defs[ref], defs, seen)
    return missing


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"].split("/")[-1]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_recipe_key_is_documented():
    schema = json_schema()
    assert not _properties_without_description(schema, schema.get("$defs", {}), set())


def text_info(classes: int = 6):
    from compress.tasks.classification import (
        SequenceClassification,
        SequenceClassificationConfig,
    )

    task = SequenceClassification(SequenceClassificationConfig(name="sequence-classification",
                                                               vocab_size=100, max_length=16))
    return task.info([str(i) for i in range(classes)])


TEXT_ARCHS = {"text-transformer", "text-bag"}
GENERATIVE_ARCHS = {"gpt", "encdec"}  # language-modeling and seq2seq models, no classifiers


@pytest.mark.parametrize("arch", ARCHS.names())
@pytest.mark.parametrize("variant", ["small-image", "large-image", "text"])
def test_architecture_contract(arch, variant):
    """Every architecture builds for the data it reads and refuses the other kind plainly."""
    from compress.errors import ModelError
    from compress.models.zoo import as_tensors, call_model

    info = {"small-image": image_info((1, 8, 8)), "large-image": image_info((3, 28, 28)),
            "text": text_info()}[variant]  # fmt: skip
    if arch in GENERATIVE_ARCHS:  # they serve their own tasks (tests/test_lm.py, test_seq2seq)
        with pytest.raises(ModelError, match=f"^{arch} "):  # a plain, named refusal
            build_model(spec_of({"arch": arch}), info)
        return
    if (arch in TEXT_ARCHS) != (variant == "text"):
        with pytest.raises(ModelError, match="architecture needs"):
            build_model(spec_of({"arch": arch}), info)
        return
    model = build_model(spec_of({"arch": arch}), info).eval()
    assert count_params(model) > 0
    inputs = as_tensors(dummy_inputs(info.signature, batch=3, length=5))
    assert call_model(model, info, inputs).shape == (3, info.num_classes)


def _loss_inputs(name: str, matching: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(student, teacher, labels) of the kind the loss is called with: logits (b, k) for a logit
    loss; for a feature loss (b, c, h, w) features as they leave the student's adapter, of the
    same shape as the teacher's. ``matching``: the teacher's equal the student's exactly."""
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    shape = (4, 8, 5, 5) if LOSSES.get(name).needs_features else (16, 10)
    student = torch.randn(*shape, generator=gen).requires_grad_(True)
    teacher = student.detach().clone() if matching else 3 * torch.randn(*shape, generator=gen)
    return student, teacher, torch.randint(0, 10, (shape[0],), generator=gen)


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_contract(name):
    """Every registered loss: a finite scalar whose gradient reaches the student; zero when a
    student matches its teacher exactly, and never zero (in value or gradient) when it does not,
    so a loss that always returns 0 cannot pass."""
    loss = LOSSES.get(name)
    cfg = loss.config()
    student, teacher, labels = _loss_inputs(name, matching=False)
    value = loss.fn(cfg, student, teacher, labels)
    assert value.shape == () and torch.isfinite(value)
    assert value.item() > 1e-3, f"{name}: zero on a student that does not match its teacher"
    value.backward()
    assert student.grad is not None and torch.isfinite(student.grad).all()
    assert student.grad.abs().sum().item() > 1e-6, f"{name}: no gradient reaches the student"
    if loss.needs_teacher:  # a student that matches its teacher exactly has nothing to learn
        student, teacher, labels = _loss_inputs(name, matching=True)
        assert loss.fn(cfg, student, teacher, labels).item() == pytest.approx(0.0, abs=1e-6)


def _log_softmax(z: torch.Tensor) -> torch.Tensor:
    """log softmax over classes written out, independent of F.log_softmax / F.kl_div."""
    z = z - z.max(dim=1, keepdim=True).values
    return z - z.exp().sum(dim=1, keepdim=True).log()


def _kd_by_hand(student: torch.Tensor, teacher: torch.Tensor, t: float) -> torch.Tensor:
    """T² · batch mean of sum_k p_t (log p_t − log p_s), at temperature T: KL(teacher ‖ student)."""
    log_p_s, log_p_t = _log_softmax(student / t), _log_softmax(teacher / t)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=1).mean() * t * t


def _asymmetric_logits() -> tuple[torch.Tensor, torch.Tensor]:
    """A confident (peaked) teacher and a hesitant (flat) student: KL(t‖s) ≠ KL(s‖t)."""
    gen = torch.Generator().manual_seed(0)
    return 0.3 * torch.randn(8, 10, generator=gen), 10 * torch.randn(8, 10, generator=gen)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_kd_is_t_squared_kl_of_teacher_to_student(temperature):
    from compress.distill.losses import KDLoss

    kd = LOSSES.get("kd").fn
    student, teacher = _asymmetric_logits()
    labels = torch.zeros(8, dtype=torch.long)
    value = kd(KDLoss(temperature=temperature), student, teacher, labels)
    expected = _kd_by_hand(student, teacher, temperature)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    # The direction matters and these logits tell the two apart: the reversed KL is far off.
    reversed_kl = _kd_by_hand(teacher, student, temperature)
    assert abs(reversed_kl.item() - expected.item()) > 0.5 * expected.item()
    # Random logits too, not just the hand-picked pair.
    gen = torch.Generator().manual_seed(int(temperature))
    s, t = torch.randn(16, 7, generator=gen), 2 * torch.randn(16, 7, generator=gen)
    assert kd(KDLoss(temperature=temperature), s, t, labels[:1].repeat(16)).item() == (
        pytest.approx(_kd_by_hand(s, t, temperature).item(), rel=1e-5)
    )


def _kd_grad_norm(temperature: float) -> float:
    from compress.distill.losses import KDLoss

    gen = torch.Generator().manual_seed(1)
    student = torch.randn(32, 10, generator=gen).requires_grad_(True)
    teacher = torch.randn(32, 10, generator=gen)
    labels = torch.zeros(32, dtype=torch.long)
    LOSSES.get("kd").fn(KDLoss(temperature=temperature), student, teacher, labels).backward()
    return student.grad.norm().item()


def test_kd_gradient_scale_does_not_shrink_with_temperature():
    """Hinton et al. 2015: the soft targets' gradient scales as 1/T², so the loss is multiplied
    by T² to keep it comparable to the hard-label term as T changes. With T², the gradient w.r.t.
    the student's logits tends to a T-independent limit for large T; without it, it falls by
    ~16× from T = 2 to T = 8 (~4× with T instead of T²)."""
    norms = {t: _kd_grad_norm(t) for t in (2.0, 4.0, 8.0)}
    assert norms[8.0] > 0
    for t in (4.0, 8.0):
        assert 0.6 < norms[t] / norms[2.0] < 1.5, norms


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_ce_is_label_smoothed_cross_entropy(smoothing):
    from compress.distill.losses import CELoss

    gen = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(12, 5, generator=gen)
    labels = torch.randint(0, 5, (12,), generator=gen)
    log_p = _log_softmax(logits)
    nll = -log_p.gather(1, labels[:, None]).squeeze(1)  # −log p of the true class
    uniform = -log_p.mean(dim=1)  # cross-entropy against the uniform distribution
    expected = ((1 - smoothing) * nll + smoothing * uniform).mean()
    value = LOSSES.get("ce").fn(CELoss(label_smoothing=smoothing), logits, logits.clone(), labels)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    assert value.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels, label_smoothing=smoothing).item(),
        rel=1e-5,
    )
    if smoothing:  # the setting is used, not ignored
        assert abs(value.item() - nll.mean().item()) > 1e-3


def test_mse_is_the_mean_of_squared_logit_differences():
    from compress.distill.losses import WeightedLoss

    student = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    teacher = torch.tensor([[0.0, 0.0, 0.5], [2.0, 1.0, -4.0]])
    # Squares 1, 4, 0, 4, 4, 9: their mean over all six entries.
    expected = (1 + 4 + 0 + 4 + 4 + 9) / 6
    value = LOSSES.get("mse").fn(WeightedLoss(), student, teacher, torch.zeros(2))
    assert value.item() == pytest.approx(expected)
    assert value.item() == pytest.approx(((student - teacher) ** 2).mean().item())


def test_flops_count_a_multiply_add_as_two():
    from compress.models import count_flops

    model = build_model(spec_of({"arch": "mlp", "hidden": [32]}), image_info())
    assert count_flops(model, image_info()) == 2 * (64 * 32 + 32 * 10)
