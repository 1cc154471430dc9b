"""The seq2seq method: exact alignment of student decoder positions to teacher positions, the
masked KD loss, the encoder-decoder's positions, the data's pairs and the task's metrics."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compress.models.encdec import EncoderDecoder, centred_positions
from compress.models.gpt import GPT
from compress.seq2seq.loss import Seq2SeqDistillation, TeacherPerBatch, masked_kl, target_ce
from compress.tasks.seq2seq import IGNORE, count_correct, metrics_from_counts

VOCAB, BOS, PAD = 64, 2, 0


def padded_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    """Three sources of different lengths (right-padded) and targets of different lengths."""
    g = torch.Generator().manual_seed(seed)
    lengths, targets = [7, 4, 2], [5, 3, 1]
    ids = torch.full((3, 7), PAD)
    mask = torch.zeros(3, 7, dtype=torch.int64)
    labels = torch.full((3, 5), IGNORE)
    for i, (n, t) in enumerate(zip(lengths, targets, strict=True)):
        ids[i, :n] = torch.randint(3, VOCAB, (n,), generator=g)
        mask[i, :n] = 1
        labels[i, :t] = torch.randint(3, VOCAB, (t,), generator=g)
    decoder = torch.where(labels == IGNORE, PAD, labels)
    decoder = torch.cat([torch.full((3, 1), BOS), decoder[:, :-1]], dim=1)
    return {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": decoder,
            "labels": labels}  # fmt: skip


def teacher() -> GPT:
    """Random, with peaked predictions (a wide embedding): a misaligned position then shows."""
    torch.manual_seed(0)
    model = GPT(VOCAB, 32, 2, 4, 2).eval()
    model.embed.weight.data.mul_(100)
    return model


def copying_student(model: GPT, batch: dict[str, torch.Tensor], shift: int = 0) -> torch.Tensor:
    """A student that copies the teacher: each row alone, its real source tokens followed by the
    decoder inputs, no padding; decoder position t takes the teacher's logits at position
    len(source) + t (+ ``shift``, to show that a wrong alignment is caught)."""
    rows = []
    t = batch["decoder_input_ids"].shape[1]
    for i in range(len(batch["input_ids"])):
        source = batch["input_ids"][i][batch["attention_mask"][i] == 1]
        seq = torch.cat([source, batch["decoder_input_ids"][i]])[None]  # (1, s_i + t)
        with torch.no_grad():
            logits = model.step(seq, torch.ones_like(seq))[0][0]  # (s_i + t, V)
        where = (len(source) + torch.arange(t) + shift).clamp(max=len(seq[0]) - 1)
        rows.append(logits[where])
    return torch.stack(rows)  # (b, t, V)


def test_a_student_copying_the_teachers_logits_gets_zero_kl():
    model, batch = teacher(), padded_batch()
    criterion = Seq2SeqDistillation(TeacherPerBatch(model, _info()), alpha=1.0, temperature=1.0)
    exact = copying_student(model, batch)
    assert criterion(exact, None, None, batch).item() == pytest.approx(0.0, abs=1e-6)
    off_by_one = copying_student(model, batch, shift=1)
    assert criterion(off_by_one, None, None, batch).item() > 0.05


def _info():
    from compress.tasks.seq2seq import Seq2Seq, Seq2SeqTaskConfig

    return Seq2Seq(Seq2SeqTaskConfig(name="seq2seq", vocab_size=VOCAB, max_length=16)).info([])


def test_loss_is_a_kl_plus_one_minus_a_ce_over_real_tokens_only():
    batch = padded_batch(1)
    g = torch.Generator().manual_seed(3)
    student, teacher_logits = torch.randn(3, 5, VOCAB, generator=g), torch.randn(3, 5, VOCAB,
                                                                                 generator=g)
    labels = batch["labels"]
    real = labels != IGNORE
    p = teacher_logits[real].softmax(-1)
    kl = (p * (p.log() - student[real].log_softmax(-1))).sum(-1).mean()
    ce = F.cross_entropy(student[real], labels[real])

    class Fixed:
        def __call__(self, _inputs):
            return teacher_logits

    loss = Seq2SeqDistillation(Fixed(), alpha=0.9, temperature=1.0)(student, None, None, batch)
    assert loss.item() == pytest.approx((0.9 * kl + 0.1 * ce).item(), rel=1e-5)
    changed = student.clone()
    changed[~real] = 1e3 * torch.randn_like(changed[~real])  # padding positions: anything
    assert masked_kl(changed, teacher_logits, labels, 1.0).item() == pytest.approx(kl.item(), 1e-5)
    assert target_ce(changed, labels).item() == pytest.approx(ce.item(), rel=1e-5)


def test_temperature_scales_the_kl_by_t_squared():
    g = torch.Generator().manual_seed(4)
    s, t = torch.randn(2, 3, 9, generator=g), torch.randn(2, 3, 9, generator=g)
    labels = torch.zeros(2, 3, dtype=torch.int64)
    soft = masked_kl(s / 2, t / 2, labels, 1.0)
    assert masked_kl(s, t, labels, 2.0).item() == pytest.approx(4 * soft.item(), rel=1e-5)


def test_encoder_positions_are_centred_on_each_source():
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    got = centred_positions(mask)
    assert got[0].tolist() == [-2, -1, 0, 1, 2]
    assert got[1, :4].tolist() == [-1, 0, 1, 2]  # floor((4 - 1) / 2) = 1


@pytest.mark.parametrize("make", [lambda: GPT(VOCAB, 32, 2, 4, 2),
                                  lambda: EncoderDecoder(VOCAB, 32, 2, 1, 4, 2)])
def test_padding_changes_no_real_logit(make):
    torch.manual_seed(0)
    model, batch = make().eval(), padded_batch(2)
    with torch.no_grad():
        together = model(batch["input_ids"], batch["attention_mask"], batch["decoder_input_ids"])
        for i in range(3):
            n = int(batch["attention_mask"][i].sum())
            alone = model(batch["input_ids"][i : i + 1, :n], batch["attention_mask"][i : i + 1, :n],
                          batch["decoder_input_ids"][i : i + 1])  # fmt: skip
            assert torch.allclose(alone[0], together[i], atol=1e-5)


def test_cross_attention_has_no_rope_and_self_attention_has():
    model = EncoderDecoder(VOCAB, 32, 2, 1, 4, 2)
    assert all(layer.self_block.attn.use_rope and not layer.cross.use_rope
               for layer in model.decoder)  # fmt: skip
    # one embedding, tied to the head: no other (vocab, dim) matrix among the parameters
    tables = [n for n, p in model.named_parameters() if p.shape == (VOCAB, 32)]
    assert tables == ["embed.weight"]


def test_the_decoder_only_baseline_matches_the_students_parameter_count():
    from compress.models import count_params
    from compress.models.encdec import EncDecSpec
    from compress.seq2seq.students import matched_decoder_only

    info = _info()
    spec = EncDecSpec(arch="encdec", dim=64, encoder_layers=4, decoder_layers=2, heads=4,
                      kv_heads=2)  # fmt: skip
    from compress.models import build_model

    ours, theirs = (count_params(build_model(s, info))
                    for s in (spec, matched_decoder_only(spec, info)))  # fmt: skip
    assert abs(theirs - ours) / ours < 0.08


def test_span_corruption_hides_spans_the_target_gives_back():
    from compress.data.seq2seq_corpus import SENTINELS, corrupt_spans

    words = [f"w{i}" for i in range(60)]
    for seed in range(20):
        source, target = corrupt_spans(words, np.random.default_rng(seed))
        spans, current = {}, None
        for token in target.split():
            if token in SENTINELS:
                current = token
                spans[current] = []
            else:
                spans[current].append(token)
        restored = [w for token in source.split() for w in spans.get(token, [token])]
        assert restored == words
        assert 1 <= len(spans) <= len(SENTINELS) and all(spans.values())
        assert not any(a in SENTINELS and b in SENTINELS
                       for a, b in itertools.pairwise(source.split()))  # fmt: skip


def test_exact_match_under_teacher_forcing_is_every_real_token_right():
    labels = np.array([[5, 6, IGNORE], [7, 8, 9]])
    logits = np.zeros((2, 3, 10))
    logits[0, 0, 5] = logits[0, 1, 6] = 1  # row 0 all right (padding ignored)
    logits[1, 0, 7] = logits[1, 1, 1] = logits[1, 2, 9] = 1  # row 1 one token wrong
    m = metrics_from_counts(count_correct(logits, labels))
    assert m["exact_match"] == 0.5
    assert m["token_accuracy"] == pytest.approx(4 / 5)
    assert not math.isnan(m["token_accuracy"])


def test_cached_top_k_with_the_whole_vocabulary_is_the_exact_loss():
    from compress.seq2seq.topk import CachedTopKDistillation, topk_kl

    batch = padded_batch(5)
    g = torch.Generator().manual_seed(6)
    student, teacher_logits = (torch.randn(3, 5, VOCAB, generator=g) for _ in range(2))
    labels = batch["labels"]
    top = teacher_logits.topk(VOCAB, dim=-1)
    exact = masked_kl(student, teacher_logits, labels, 2.0)
    assert topk_kl(student, top.values, top.indices, labels, 2.0).item() == pytest.approx(
        exact.item(), rel=1e-5)  # fmt: skip
    # k = 4 of 64: the KL over the teacher's best four, renormalised, is another number
    four = teacher_logits.topk(4, dim=-1)
    approximate = topk_kl(student, four.values, four.indices, labels, 2.0)
    assert abs(approximate.item() - exact.item()) > 1e-3
    # rows of the cache are looked up by the batch's row numbers in the training split
    cache = (np.zeros((10, 5, VOCAB), np.float32), np.zeros((10, 5, VOCAB), np.int32))
    rows = torch.tensor([7, 2, 9])
    cache[0][rows.numpy()], cache[1][rows.numpy()] = top.values.numpy(), top.indices.numpy()
    criterion = CachedTopKDistillation(cache, alpha=1.0, temperature=2.0)
    assert criterion(student, None, rows, batch).item() == pytest.approx(exact.item(), rel=1e-5)


def test_validate_refuses_a_seq2seq_stage_on_another_task(tmp_path):
    from tests.conftest import cli, digits_recipe, write_recipe

    recipe = digits_recipe()
    recipe["stages"] = [{"kind": "seq2seq", "student": {"arch": "encdec", "dim": 32},
                         "train": {"epochs": 1, "lr": 1e-3}}, {"kind": "report"}]  # fmt: skip
    done = cli("validate", write_recipe(tmp_path / "r.yaml", recipe))
    assert done.returncode == 2
    assert "r.yaml:" in done.stderr and "stages[0]" in done.stderr
    assert "task: seq2seq" in done.stderr
    assert "Traceback" not in done.stderr


def test_rouge_l_is_the_f1_of_the_longest_common_subsequence():
    from compress.tasks.rouge import lcs_length, rouge_l, rouge_rows

    assert lcs_length([1, 2, 3, 4, 5], [2, 9, 4, 5, 1]) == 3  # 2 4 5, in order, not contiguous
    assert rouge_l([1, 2, 3, 4], [1, 3, 4, 5]) == pytest.approx(2 * 3 / 8)
    assert rouge_l([4, 3, 2, 1], [1, 2, 3, 4]) == pytest.approx(2 * 1 / 8)  # order matters
    assert rouge_l([], []) == 1.0 and rouge_l([1], []) == 0.0
    eos = 9
    generated = np.array([[5, 6, eos, 5, 5], [7, 7, 7, 7, 7]])  # after EOS ignored; no EOS
    labels = np.array([[5, 6, eos, IGNORE], [7, 8, eos, IGNORE]])
    assert rouge_rows(generated, labels, eos, IGNORE).tolist() == pytest.approx([1.0, 2 / 7])


def test_greedy_rouge_reads_generations_not_the_teacher_forced_argmax():
    """A model that says the source's first token, then EOS: greedy decoding feeds its own
    choices back and ends once every row has said EOS (two calls, not sixteen)."""
    from compress.tasks.rouge import greedy_tokens

    eos, bos, vocab = 3, 2, 10
    calls = []

    def predict(inputs):  # (b, k) decoder inputs -> (b, k, V): first source token, then EOS
        decoder = inputs["decoder_input_ids"]
        calls.append(decoder.shape[1])
        logits = np.zeros((*decoder.shape, vocab))
        logits[:, 0, :][np.arange(len(decoder)), inputs["input_ids"][:, 0]] = 1
        logits[:, 1:, eos] = 1
        return logits

    source = {"input_ids": np.array([[5, 6], [7, 8]]), "attention_mask": np.ones((2, 2), int)}
    out = greedy_tokens(predict, source, bos, eos, steps=16)
    assert out.tolist() == [[5, eos], [7, eos]] and calls == [1, 2]
