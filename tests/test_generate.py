"""Generation artifacts and the torch-free generation loop: KV-cache graphs whose greedy output
equals the PyTorch model's at every step, sampling, stop tokens and batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compress.errors import StageFailed
from compress.models.encdec import EncoderDecoder
from compress.models.gpt import GPT
from compress.runtime.generate import Generated, Sampling, choose, generate, open_generator

VOCAB = 40
SPECIAL = {"bos_id": 2, "eos_id": 3, "pad_id": 0}


def sources() -> dict[str, np.ndarray]:
    """Three sources of 9, 5 and 2 tokens, right-padded."""
    rng = np.random.default_rng(0)
    ids = rng.integers(4, VOCAB, size=(3, 9)).astype(np.int64)
    mask = np.zeros((3, 9), np.int64)
    for i, n in enumerate([9, 5, 2]):
        mask[i, :n] = 1
    return {"input_ids": np.where(mask == 1, ids, 0), "attention_mask": mask}


def peaked(model: torch.nn.Module) -> torch.nn.Module:
    """Random weights with a wide embedding: sharp, varied greedy choices (no ties)."""
    model.embed.weight.data.mul_(30)
    return model.eval()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from compress.export.generation_parity import write_generation_artifact

    torch.manual_seed(0)
    models = {"encdec": peaked(EncoderDecoder(VOCAB, 32, 2, 1, 4, 2)),
              "gpt": peaked(GPT(VOCAB, 32, 3, 4, 2))}  # fmt: skip
    root = tmp_path_factory.mktemp("generation")
    written = {name: write_generation_artifact(m, root / name, sources(), SPECIAL,
                                               max_new_tokens=10) for name, m in models.items()}
    return models, written, root


@pytest.mark.parametrize("kind", ["encdec", "gpt"])
def test_greedy_generation_from_the_artifact_equals_pytorch_at_every_step(artifacts, kind):
    models, written, root = artifacts
    parity = written[kind]["parity"]
    assert parity["tokens_equal"] and parity["steps"] == 10
    assert parity["max_abs_error"] < 1e-3
    names = {p.name for p in written[kind]["files"]}
    expected = {"encoder.onnx", "decoder.onnx"} if kind == "encdec" else {"decoder.onnx"}
    assert names == expected | {"generation.json"}
    meta = json.loads((root / kind / "generation.json").read_text())
    assert meta["kind"] == ("encoder-decoder" if kind == "encdec" else "decoder-only")
    # independently of the parity check: greedy tokens from a plain argmax loop over the
    # PyTorch model's full forward, one row at a time and without padding
    src = sources()
    out = generate(open_generator(root / kind), src["input_ids"], src["attention_mask"],
                   Sampling(max_new_tokens=6, stop_at_eos=False))  # fmt: skip
    for i in range(3):
        n = int(src["attention_mask"][i].sum())
        ids = torch.from_numpy(src["input_ids"][i : i + 1, :n])
        decoder = torch.tensor([[SPECIAL["bos_id"]]])
        for _ in range(6):
            with torch.no_grad():
                logits = models[kind](ids, torch.ones_like(ids), decoder)
            decoder = torch.cat([decoder, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
        assert out.tokens[i].tolist() == decoder[0, 1:].tolist()


def test_the_encoder_runs_once_and_the_cache_grows_one_token_per_step(artifacts):
    _, _, root = artifacts
    session = open_generator(root / "encdec")
    src = sources()
    session.prefill(src["input_ids"], src["attention_mask"])
    assert session.cross["cross_key_0"].shape == (3, 2, 9, 8)  # (b, kv_heads, s, head_dim)
    assert session.past["past_key_0"].shape[2] == 1
    session.advance(np.array([[5], [6], [7]]))
    assert session.past["past_key_0"].shape[2] == 2


def test_rows_stop_at_their_own_stop_token_and_are_padded_after(artifacts):
    _, _, root = artifacts
    src = sources()
    free = generate(open_generator(root / "gpt"), src["input_ids"], src["attention_mask"],
                    Sampling(max_new_tokens=8, stop_at_eos=False))  # fmt: skip
    stop = int(free.tokens[0, 2])  # row 0's third token becomes a stop token
    out = generate(open_generator(root / "gpt"), src["input_ids"], src["attention_mask"],
                   Sampling(max_new_tokens=8, stop_tokens=(stop,), stop_at_eos=False))  # fmt: skip
    first = int(np.argmax(free.tokens[0] == stop))
    assert out.tokens[0, : first + 1].tolist() == free.tokens[0, : first + 1].tolist()
    assert (out.tokens[0, first + 1 :] == SPECIAL["pad_id"]).all()
    for i in range(1, 3):  # other rows run on until they meet it themselves
        hit = np.flatnonzero(free.tokens[i] == stop)
        end = hit[0] + 1 if hit.size else out.tokens.shape[1]
        assert out.tokens[i, :end].tolist() == free.tokens[i, :end].tolist()


def test_top_k_and_temperature_sampling():
    rng = np.random.default_rng(0)
    logits = np.array([[0.0, 5.0, 4.0, 1.0, -2.0]] * 400)
    greedy = choose(logits, Sampling(), rng)
    assert (greedy == 1).all()
    top2 = choose(logits, Sampling(temperature=1.0, top_k=2), rng)
    assert set(top2.tolist()) == {1, 2}  # only the two best, both drawn
    assert 0.6 < (top2 == 1).mean() < 0.85  # e^5 / (e^5 + e^4) = 0.73
    hot = choose(logits, Sampling(temperature=100.0), rng)
    assert len(set(hot.tolist())) == 5  # near-uniform at a high temperature
    again = choose(logits, Sampling(temperature=1.0, top_k=2), np.random.default_rng(0))
    first = choose(logits, Sampling(temperature=1.0, top_k=2), np.random.default_rng(0))
    assert (again == first).all()  # seeded: reproducible


def test_parity_refuses_a_different_token_or_a_distant_logit():
    from compress.export.generation_parity import compare

    logits = [np.zeros((1, 4)), np.zeros((1, 4))]
    ref = Generated(np.array([[1, 2]]), 0.0, 0.0, 2, logits)
    with pytest.raises(StageFailed, match="differs"):
        compare(ref, Generated(np.array([[1, 3]]), 0.0, 0.0, 2, logits), 1e-3)
    far = [np.zeros((1, 4)), np.full((1, 4), 0.01)]
    with pytest.raises(StageFailed, match="step 1"):
        compare(ref, Generated(np.array([[1, 2]]), 0.0, 0.0, 2, far), 1e-3)


def test_generation_runs_from_the_folder_alone_without_torch(artifacts):
    from tests.test_device_side import run_without_torch

    _, written, root = artifacts
    src = sources()
    result = run_without_torch(f"""
        import numpy as np
        from compress.runtime.generate import Sampling, generate, open_generator
        ids = np.array({src["input_ids"].tolist()})
        mask = np.array({src["attention_mask"].tolist()})
        out = generate(open_generator({str(root / "encdec")!r}), ids, mask,
                       Sampling(10, stop_at_eos=False))
        assert "torch" not in sys.modules
        print(out.tokens.tolist())
    """)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == written["encdec"]["tokens"].tolist()


def test_generation_timing_fills_the_latency_schema(artifacts):
    from compress.devices.generation import GenerationArtifact, Timing, peak_memory, time_generation

    _, _, root = artifacts
    timed = [GenerationArtifact(n, root / n) for n in ("encdec", "gpt")]
    src = {k: v[:1] for k, v in sources().items()}
    records = time_generation(timed, src, 5, Timing(warmup=0, iterations=3, rounds=1))
    for r in records:
        assert r.ttft_ms > 0 and r.decode_tokens_per_s > 0
        assert r.iterations == 3 and r.group == "generation@9" and r.input_shape == [1, 9]
        # a sample is a whole generation: prefill plus 4 decode steps
        assert r.median_ms >= r.ttft_ms
    memory = peak_memory(root / "gpt", 16, 3)
    assert memory["peak_rss_mib"] > memory["generation_mib"] > 0


def test_the_onnx_generation_format_writes_both_graphs_with_their_parity(tmp_path):
    from compress.export.formats import EXPORT_FORMATS, ExportJob, ParityPolicy, load_formats
    from compress.runtime import OrtModel
    from compress.tasks.seq2seq import IGNORE, Seq2Seq, Seq2SeqTaskConfig

    load_formats()
    info = Seq2Seq(Seq2SeqTaskConfig(name="seq2seq", vocab_size=64, max_length=16)).info([])
    torch.manual_seed(1)
    model = peaked(EncoderDecoder(64, 32, 2, 1, 4, 2))
    labels = np.array([[5, 6, 7, SPECIAL["eos_id"]], [8, SPECIAL["eos_id"], IGNORE, IGNORE]])
    decoder = np.array([[2, 5, 6, 7], [2, 8, 0, 0]])
    src = {k: v[:2] for k, v in sources().items()}
    inputs = {**src, "decoder_input_ids": decoder, "labels": labels}
    job = ExportJob(model, None, info, inputs, "2 rows", tmp_path / "m" / "m.forward.onnx", 17,
                    ParityPolicy(1e-4, 1e-3, 8, 0.97), tmp_path, lambda: iter(()))  # fmt: skip
    done = EXPORT_FORMATS.get("onnx-generation")().export(job)
    assert done.parity["passed"] and done.parity["top1_agreement"] == 1.0
    assert done.parity["generation"]["tokens_equal"] and done.parity["generation"]["steps"] == 4
    logits = OrtModel(done.path).run(inputs)["logits"]  # teacher forcing, any target length
    assert logits.shape == (2, 4, 64)
    meta = json.loads((tmp_path / "m" / "generation" / "generation.json").read_text())
    assert {k: meta[k] for k in SPECIAL} == SPECIAL  # read off the batch: BOS, EOS, padding


def test_speed_goals_compare_each_encoder_decoder_with_its_decoder_only_twin():
    from types import SimpleNamespace

    from compress.seq2seq.bench import pair_ratios, speed_goals

    def rec(model, length, ttft, rate):
        return SimpleNamespace(model=model, input_shape=[1, length], ttft_ms=ttft,
                               decode_tokens_per_s=rate)  # fmt: skip

    records = [rec("s", 512, 6.0, 300.0), rec("s-deconly", 512, 10.0, 100.0),
               rec("s", 64, 1.0, 10.0), rec("teacher", 512, 50.0, 5.0)]  # fmt: skip
    goals = speed_goals(records, 512)
    assert goals == ["goal: s TTFT at source 512 <= 0.6× s-deconly's: 0.600× (met)",
                     "goal: s decode rate >= 3.0× s-deconly's: 3.000× (met)"]  # fmt: skip
    records[0] = rec("s", 512, 6.1, 299.0)
    assert [g.endswith("(MISSED)") for g in speed_goals(records, 512)] == [True, True]
    assert len(pair_ratios(records, 512)) == 1 and pair_ratios(records, 64) == []


def test_the_latency_table_shows_each_generation_records_source_length():
    from compress.devices.report.fmt import latency_table

    def rec(model, length, ttft):
        return {"model": model, "target": "cpu-ort", "batch_size": 1, "median_ms": 9.0,
                "input_shape": [1, length], "ttft_ms": ttft, "decode_tokens_per_s": 100.0}

    image = {"model": "cnn", "target": "cpu-ort", "batch_size": 1, "median_ms": 1.0,
             "input_shape": [1, 3, 32, 32]}  # fmt: skip
    table = latency_table({"latency": [rec("s", 64, 1.5), rec("s", 512, 4.0), image]}, False)
    column = table.headers.index("Source tokens")
    assert table.headers[column + 1] == "TTFT ms"
    assert [row[column] for row in table.rows] == ["64", "512", "—"]
    plain = latency_table({"latency": [image]}, False)  # no generation record: no column
    assert "Source tokens" not in plain.headers


def test_goals_pair_each_seeds_models_and_average_over_seeds():
    from types import SimpleNamespace

    from compress.seq2seq.bench import _accuracy_line, sibling, speed_goals

    assert sibling("s@s1", "-deconly") == "s-deconly@s1" and sibling("s", "-x") == "s-x"
    records = [SimpleNamespace(model=m, input_shape=[1, 512], ttft_ms=t, decode_tokens_per_s=r)
               for m, t, r in [("s@s1", 5.0, 300.0), ("s-deconly@s1", 10.0, 100.0),
                               ("s@s2", 5.0, 300.0), ("s-deconly@s1x", 1.0, 1.0)]]  # fmt: skip
    assert len(speed_goals(records, 512)) == 2  # s@s1 with its twin; s@s2 has none here
    line = _accuracy_line("s", "s-scratch", "token_accuracy", [(24.0, 20.0), (22.0, 20.0)],
                          "distillation")  # fmt: skip
    assert "+3.00 ± 1.41 (sample std)" in line and "2 seeds" in line and line.endswith("(met)")
    one = _accuracy_line("s", "s-deconly", "token_accuracy", [(20.0, 20.5)], "twin")
    assert "-0.50 points" in one and "one seed" in one and one.endswith("(MISSED)")
