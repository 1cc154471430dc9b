"""A Hugging Face causal LM brought as ``model: {hf: FOLDER}`` is the decoder-only teacher of
the seq2seq stage: it loads offline, it is distilled into the encoder-decoder student through
the pipeline, the recipe must use its tokenizer, and its KV-cache ONNX graph chooses PyTorch's
token at every greedy step in ONNX Runtime.

Everything is made here: a BPE tokenizer trained on Austen's sentences (with the seq2seq task's
special tokens) and a random 2-layer GPT-2 of that vocabulary, written by save_pretrained."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from tests.conftest import cli, write_recipe

pytest.importorskip("transformers")

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def austen_tokenizer(path, vocab_size: int = 400):
    from compress.data.austen import austen_sentences
    from compress.data.tokenizer import train_tokenizer
    from compress.tasks.seq2seq import add_special_tokens, seq2seq_special_tokens

    sentences = austen_sentences(min_words=1, max_words=10_000)[0][:1500]
    train_tokenizer(sentences, vocab_size, path)
    add_special_tokens(path, seq2seq_special_tokens(), ours=True)
    return path


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    """A save_pretrained GPT-2 folder with the tokenizer.json its ids mean."""
    from tokenizers import Tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("hf") / "gpt2"
    folder.mkdir()
    tokenizer = Tokenizer.from_file(str(austen_tokenizer(folder / "tokenizer.json")))
    cls, eos = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[EOS]")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=tokenizer.get_vocab_size(), n_positions=160, n_embd=32,
                        n_layer=2, n_head=2, bos_token_id=cls, eos_token_id=eos,
                        tie_word_embeddings=False)  # fmt: skip
    model = GPT2LMHeadModel(config)
    model.lm_head.weight.data.normal_(0, 1)  # peaked, varied logits: greedy without near-ties
    model.save_pretrained(folder)
    return folder


def seq2seq_info(vocab: int):
    from compress.tasks.seq2seq import Seq2Seq, Seq2SeqTaskConfig

    return Seq2Seq(Seq2SeqTaskConfig(name="seq2seq", vocab_size=vocab, max_length=32)).info([])


def load_teacher(folder):
    from compress.models.hf import HFModelSpec, build_hf

    config = json.loads((folder / "config.json").read_text())
    return build_hf(HFModelSpec(hf=folder), seq2seq_info(config["vocab_size"])).eval()


def sources(vocab: int) -> dict[str, np.ndarray]:
    """Three right-padded sources of 9, 5 and 2 tokens."""
    ids = np.random.default_rng(0).integers(10, vocab, size=(3, 9)).astype(np.int64)
    mask = (np.arange(9)[None] < np.array([[9], [5], [2]])).astype(np.int64)
    return {"input_ids": np.where(mask == 1, ids, 0), "attention_mask": mask}


def test_the_hf_teacher_reads_source_then_target_and_padding_changes_nothing(gpt2_folder):
    teacher = load_teacher(gpt2_folder)
    src = sources(teacher.hf.config.vocab_size)
    decoder = torch.tensor([[2, 11, 12, 13]] * 3)
    with torch.no_grad():
        together = teacher(torch.from_numpy(src["input_ids"]),
                           torch.from_numpy(src["attention_mask"]), decoder)  # (3, 4, V)
        for i, n in enumerate([9, 5, 2]):
            seq = torch.cat([torch.from_numpy(src["input_ids"][i, :n]), decoder[i]])[None]
            plain = teacher.hf(input_ids=seq).logits[0, n:]  # no padding, positions 0..n+3
            assert torch.allclose(together[i], plain, atol=1e-4)


def test_the_hf_teachers_onnx_graphs_agree_with_pytorch_at_every_greedy_step(gpt2_folder,
                                                                              tmp_path):
    """Through the onnx-generation format, as the export stage runs it: the teacher-forcing
    graph within fp32 tolerance, and the KV-cache decoder's greedy generation (8 steps from
    three right-padded sources) equal to PyTorch's token at every step in ONNX Runtime."""
    from compress.export.formats import EXPORT_FORMATS, ExportJob, ParityPolicy, load_formats
    from compress.tasks.seq2seq import IGNORE

    load_formats()
    teacher = load_teacher(gpt2_folder)
    vocab = teacher.hf.config.vocab_size
    labels = np.random.default_rng(1).integers(10, vocab, size=(3, 8))
    labels[:, -1], labels[1, 4:] = 3, IGNORE  # EOS id 3; row 1 ends earlier
    labels[1, 3] = 3
    decoder = np.concatenate([np.full((3, 1), 2), np.where(labels == IGNORE, 0, labels)[:, :-1]], 1)
    inputs = {**sources(vocab), "decoder_input_ids": decoder, "labels": labels}
    job = ExportJob(teacher, None, seq2seq_info(vocab), inputs, "3 rows",
                    tmp_path / "t" / "t.forward.onnx", 17, ParityPolicy(1e-4, 1e-3, 8, 0.97),
                    tmp_path, lambda: iter(()))  # fmt: skip
    parity = EXPORT_FORMATS.get("onnx-generation")().export(job).parity
    assert parity["passed"] and parity["top1_agreement"] == 1.0
    generation = parity["generation"]
    assert generation["tokens_equal"] and generation["steps"] == 8
    assert generation["max_abs_error"] < 1e-3
    meta = json.loads((tmp_path / "t" / "generation" / "generation.json").read_text())
    assert {k: meta[k] for k in ("kind", "layers", "kv_heads", "head_dim", "eos_id")} == {
        "kind": "decoder-only", "layers": 2, "kv_heads": 2, "head_dim": 16, "eos_id": 3}
    from compress.runtime.generate import Sampling, generate, open_generator

    out = generate(open_generator(tmp_path / "t" / "generation"), inputs["input_ids"],
                   inputs["attention_mask"], Sampling(8, stop_at_eos=False))  # fmt: skip
    assert len(set(out.tokens.ravel().tolist())) > 3  # varied greedy choices, not one token


def recipe(folder, tokenizer) -> dict:
    task = {"name": "seq2seq", "max_length": 32, "max_target": 8}
    return {
        "name": "hf-teacher", "task": {**task, **({"tokenizer": str(tokenizer)} if tokenizer
                                                  else {})},
        "data": {"source": "austen-seq2seq", "batch_size": 16, "eval_batch_size": 64,
                 "passage_words": 16, "target_words": 6, "max_pairs": 400},
        "teacher": {"model": {"hf": str(folder)}, "train": {"epochs": 1, "lr": 1e-3}},
        "stages": [{"kind": "seq2seq", "name": "ed", "scratch": False,
                    "student": {"arch": "encdec", "dim": 32, "encoder_layers": 2,
                                "decoder_layers": 1, "heads": 2, "kv_heads": 1},
                    "train": {"epochs": 1, "lr": 3e-3}}, {"kind": "report"}],
    }  # fmt: skip


def test_the_recipe_must_use_the_hf_teachers_tokenizer(gpt2_folder, tmp_path):
    from compress.models.hf import check_same_tokenizer

    own = gpt2_folder / "tokenizer.json"
    other = tmp_path / "other.json"  # the teacher's tokens, two of them numbered the other way
    spec = json.loads(own.read_text())
    vocab = spec["model"]["vocab"]
    a, b = list(vocab)[20:22]
    vocab[a], vocab[b] = vocab[b], vocab[a]
    other.write_text(json.dumps(spec))
    assert check_same_tokenizer(gpt2_folder, own) is None
    shutil.copy(own, tmp_path / "copy.json")  # the same ids in another file: fine
    assert check_same_tokenizer(gpt2_folder, tmp_path / "copy.json") is None
    assert "set task.tokenizer to" in check_same_tokenizer(gpt2_folder, None)
    bare = tmp_path / "bare"
    shutil.copytree(gpt2_folder, bare)
    (bare / "tokenizer.json").unlink()
    assert "has no tokenizer.json" in check_same_tokenizer(bare, own)
    # through the CLI: exit 2, one line at the recipe's task.tokenizer
    done = cli("validate", write_recipe(tmp_path / "r.yaml", recipe(gpt2_folder, other)),
               env=OFFLINE)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "r.yaml:" in done.stderr and "task.tokenizer" in done.stderr
    assert "number tokens differently" in done.stderr and "Traceback" not in done.stderr
    # the right tokenizer, but sources longer than the teacher's 160 positions
    timed = recipe(gpt2_folder, own)
    timed["stages"][1:1] = [{"kind": "export", "formats": ["onnx-generation"]},
                            {"kind": "generation", "source_lengths": [64, 256]}]  # fmt: skip
    done = cli("validate", write_recipe(tmp_path / "r.yaml", timed), env=OFFLINE)
    assert done.returncode == 2, done.stderr
    assert "stages[2]" in done.stderr and "reads at most 160 tokens" in done.stderr


def test_an_hf_causal_lm_is_distilled_into_the_encoder_decoder_offline(gpt2_folder, tmp_path):
    run = tmp_path / "run"
    path = write_recipe(tmp_path / "r.yaml", recipe(gpt2_folder, gpt2_folder / "tokenizer.json"))
    done = cli("run", path, "--smoke", "--out", run, "--quiet", env=OFFLINE)
    assert done.returncode == 0, done.stderr
    report = json.loads((run / "report.json").read_text())
    models = {m["name"]: m for m in report["models"]}
    assert models["teacher"]["arch"] == "hf:gpt2"  # fine-tuned on the targets, then distilled
    assert models["teacher"]["transform"] == "trained"
    assert models["ed"]["parent"] == "teacher" and models["ed"]["arch"] == "encdec"
    for name in ("teacher", "ed", "ed-deconly"):
        metrics = models[name]["metrics_pytorch"]
        assert set(metrics) == {"token_accuracy", "exact_match", "rouge_l"}
        assert 0 <= metrics["rouge_l"] <= 1
