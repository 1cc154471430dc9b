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


@pytest.mark.parametrize("arch", ARCHS.names())
@pytest.mark.parametrize("variant", ["small-image", "large-image", "text"])
def test_architecture_contract(arch, variant):
    """Every architecture builds for the data it reads and refuses the other kind plainly."""
    from compress.errors import ModelError
    from compress.models.zoo import as_tensors, call_model

    info = {"small-image": image_info((1, 8, 8)), "large-image": image_info((3, 28, 28)),
            "text": text_info()}[variant]  # fmt: skip
    if (arch in TEXT_ARCHS) != (variant == "text"):
        with pytest.raises(ModelError, match="architecture needs"):
            build_model(spec_of({"arch": arch}), info)
        return
    model = build_model(spec_of({"arch": arch}), info).eval()
    assert count_params(model) > 0
    inputs = as_tensors(dummy_inputs(info.signature, batch=3, length=5))
    assert call_model(model, info, inputs).shape == (3, info.num_classes)


@pytest.mark.parametrize("name", LOSSES.names())
def test_loss_contract(name):
    loss = LOSSES.get(name)
    cfg = loss.config()
    logits = torch.randn(16, 10, requires_grad=True)
    labels = torch.randint(0, 10, (16,))
    value = loss.fn(cfg, logits, logits.detach().clone(), labels)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    assert logits.grad is not None
    if loss.needs_teacher:  # a student that matches its teacher exactly has nothing to learn
        assert value.item() == pytest.approx(0.0, abs=1e-6)


def test_flops_count_a_multiply_add_as_two():
    from compress.models import count_flops

    model = build_model(spec_of({"arch": "mlp", "hidden": [32]}), image_info())
    assert count_flops(model, image_info()) == 2 * (64 * 32 + 32 * 10)
