"""The language-modeling task and the decoder-only LM: next-token labels, causality, perplexity,
and a teacher LM trained by the pipeline's teacher stage on Austen's sentences."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compress.models.gpt import GPT
from compress.tasks.language_modeling import negative_log_likelihood
from compress.tasks.seq2seq import IGNORE


def test_the_lm_is_causal_and_padding_changes_nothing_before_it():
    torch.manual_seed(0)
    model = GPT(64, 32, 2, 4, 2).eval()
    ids = torch.randint(3, 64, (1, 10))
    changed = ids.clone()
    changed[0, 6] = (ids[0, 6] + 1) % 64
    with torch.no_grad():
        a, b = model(ids, torch.ones_like(ids)), model(changed, torch.ones_like(ids))
    assert torch.allclose(a[0, :6], b[0, :6], atol=1e-6)
    assert not torch.allclose(a[0, 6:], b[0, 6:], atol=1e-3)


def test_perplexity_of_uniform_logits_is_the_vocabulary_size():
    logits = np.zeros((2, 3, 17))
    labels = np.array([[1, 2, IGNORE], [3, IGNORE, IGNORE]])
    nll, n = negative_log_likelihood(logits, labels)
    assert n == 3 and np.exp(nll / n) == pytest.approx(17.0)


def test_a_teacher_lm_trains_through_the_pipeline(tmp_path):
    from tests.conftest import cli, write_recipe

    recipe = {
        "name": "lm-test", "task": {"name": "language-modeling", "vocab_size": 300,
                                    "max_length": 24},
        "data": {"source": "austen", "batch_size": 32, "eval_batch_size": 64},
        "teacher": {"model": {"arch": "gpt", "dim": 32, "layers": 1, "heads": 2, "kv_heads": 1},
                    "train": {"epochs": 1, "lr": 1.0e-2}},
        "stages": [{"kind": "report"}],
    }  # fmt: skip
    run = tmp_path / "run"
    done = cli("run", write_recipe(tmp_path / "lm.yaml", recipe), "--smoke", "--out", run,
               "--quiet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    arch = json.loads((run / "01-teacher" / "teacher.json").read_text())
    assert arch["model"]["arch"] == "gpt" and arch["task"]["task"] == "language-modeling"
    manifest = json.loads((run / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert "perplexity" in text
    # one epoch on 512 sentences: better than a uniform guess over the vocabulary
    report = json.loads((run / "report.json").read_text())
    teacher = next(m for m in report["models"] if m["name"] == "teacher")
    assert teacher["metrics_pytorch"]["perplexity"] < 300
