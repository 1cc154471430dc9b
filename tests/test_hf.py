"""Hugging Face models and data sets on local disk: ``model: {hf: FOLDER}`` (save_pretrained)
and ``data: {source: hf-dataset}``, end to end to a checked ONNX artifact, with no hub access.

Everything is made here: a tiny BERT with a WordPiece vocabulary of the test's own words, and a
few hundred labelled sentences, so the tests run offline in seconds."""

from __future__ import annotations

import json
import random
import sys

import numpy as np
import pytest

from tests.conftest import cli, write_recipe
from tests.test_user_code import one_line_error

pytest.importorskip("transformers")
pytest.importorskip("datasets")

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# one thread: on a busy 2-core machine, two OpenMP threads wait on each other ~100x longer
ONE_THREAD = {**OFFLINE, "OMP_NUM_THREADS": "1"}
GOOD = ["good", "great", "lovely", "fine", "superb"]
BAD = ["bad", "awful", "dull", "poor", "boring"]
FILLER = ["the", "a", "film", "movie", "was", "plot", "actors", "really", "quite", "and"]
CLASSES = ["neg", "pos"]


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    """No hub, and datasets' arrow cache in the test's folder, not the user's home (datasets
    read its environment when imported, so its config is patched too)."""
    import datasets

    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))  # for the CLI
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def reviews(n: int = 300) -> list[dict]:
    rng = random.Random(0)
    rows = []
    for i in range(n):
        label = CLASSES[i % 2]
        words = rng.sample(FILLER, 4) + [rng.choice(GOOD if label == "pos" else BAD)]
        rng.shuffle(words)
        rows.append({"text": " ".join(words).capitalize() + ".", "label": label})
    return rows


def tiny_bert(folder, classes=CLASSES, max_positions: int = 64):
    """A 2-layer BertForSequenceClassification and its tokenizer.json, as save_pretrained
    writes them."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    from compress.models.hf import import_transformers

    import_transformers()  # quiet: no progress bars in the test's output
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    letters = list("abcdefghijklmnopqrstuvwxyz.,!")
    tokens = special + sorted(set(GOOD + BAD + FILLER)) + letters + [f"##{c}" for c in letters]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )  # fmt: skip
    tok.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=max_positions, num_labels=len(classes),
                        id2label=dict(enumerate(classes)),
                        label2id={c: i for i, c in enumerate(classes)})  # fmt: skip
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def text_recipe(tmp_path, **data) -> dict:
    (tmp_path / "reviews.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reviews()))
    if not (tmp_path / "bert").exists():
        tiny_bert(tmp_path / "bert")
    return {
        "name": "hf-text",
        "task": {"name": "sequence-classification", "tokenizer": "bert/tokenizer.json",
                 "max_length": 32},
        "data": {"source": "hf-dataset", "path": "reviews.jsonl", "text": "text",
                 "label": "label", "batch_size": 32, **data},
        "teacher": {"model": {"hf": "bert"}, "train": {"epochs": 1, "lr": 3e-3}},
        "stages": [{"kind": "export"}],
    }  # fmt: skip


@pytest.mark.slow
def test_a_saved_bert_on_a_local_data_set_trains_and_exports_with_parity(tmp_path):
    recipe = text_recipe(tmp_path)
    path = write_recipe(tmp_path / "r.yaml", recipe)
    result = cli("run", path, "--out", tmp_path / "run", "--smoke", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    teacher, export = (s["outputs"] for s in manifest["stages"])
    assert teacher["models"][0]["arch"] == "hf:bert"
    assert teacher["dataset"]["classes"] == 2
    parity = export["exports"][0]["parity"]
    assert parity["passed"] and parity["top1_agreement"] == 1.0
    folder = tmp_path / "run" / "02-export" / "teacher"
    signature = json.loads((folder / "teacher.signature.json").read_text())
    assert signature["labels"] == CLASSES and signature["tokenizer"] == "teacher.tokenizer.json"
    # the artifact folder runs alone, with the BERT tokenizer's [CLS] ... [SEP]
    from compress.runtime import load

    top = load(folder).classify("The film was really superb.")
    assert {label for label, _ in top} == set(CLASSES)


@pytest.mark.slow
def test_an_hf_model_is_a_pretrained_teacher_and_a_student_architecture(tmp_path):
    recipe = text_recipe(tmp_path)
    recipe["teacher"] = {"model": {"hf": "bert"}}  # used as saved: no train, no checkpoint
    recipe["stages"] = [{"kind": "distill", "student": {"hf": "bert"}, "baseline": "none",
                         "losses": {"kd": {"weight": 1.0, "temperature": 2.0}},
                         "train": {"epochs": 1, "lr": 1e-3}}]  # fmt: skip
    path = write_recipe(tmp_path / "r.yaml", recipe)
    result = cli("run", path, "--out", tmp_path / "run", "--smoke", "--quiet", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    stages = json.loads((tmp_path / "run" / "manifest.json").read_text())["stages"]
    made = [(m["name"], m["arch"], m["transform"]) for s in stages for m in s["outputs"]["models"]]
    assert made == [("teacher", "hf:bert", "built"), ("student", "hf:bert", "distill")]


def test_the_bert_tokenizer_json_encodes_like_transformers(tmp_path):
    from transformers import AutoTokenizer

    from compress.data.tokenizer import TextEncoder

    folder = tiny_bert(tmp_path / "bert")
    ours = TextEncoder.load(folder / "tokenizer.json")
    theirs = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    texts = [r["text"] for r in reviews(8)] + ["good " * 40]
    got = ours.encode(texts, max_length=12)
    want = theirs(texts, max_length=12, truncation=True, padding="longest", return_tensors="np")
    assert np.array_equal(got["input_ids"], want["input_ids"])
    assert np.array_equal(got["attention_mask"], want["attention_mask"])
    assert got["input_ids"][-1, -1] == theirs.sep_token_id  # a cut row still ends with [SEP]


def test_a_checkpoint_of_an_hf_model_rebuilds_without_its_folder(tmp_path):
    import shutil

    import torch

    from compress.models import build_model, model_spec
    from compress.models.checkpoint import architecture, load_checkpoint, save_checkpoint
    from compress.stages.models import spec_files
    from compress.tasks.classification import (
        SequenceClassification,
        SequenceClassificationConfig,
    )
    from tests.conftest import spec_of

    folder = tiny_bert(tmp_path / "bert")
    task = SequenceClassification(SequenceClassificationConfig(
        name="sequence-classification", tokenizer=folder / "tokenizer.json", max_length=16))
    task.use_tokenizer(folder / "tokenizer.json")
    info = task.info(CLASSES)
    spec = spec_of({"hf": str(folder)})
    assert type(spec).__name__ == "HFModelSpec" and model_spec() is not None
    assert [f.name for f in spec_files(spec)] == ["config.json", "model.safetensors"]
    model = build_model(spec, info).eval()
    save_checkpoint(tmp_path / "m.safetensors", model, architecture(spec, info))
    shutil.rmtree(folder)  # the checkpoint carries config.json; its weights are its own
    again, again_info = load_checkpoint(tmp_path / "m.safetensors")
    inputs = {k: torch.from_numpy(v) for k, v in task.batch(
        np.array(["a good film", "the plot was dull and boring"], dtype=object),
        np.arange(2)).items()}  # fmt: skip
    with torch.no_grad():
        want = model(inputs["input_ids"], inputs["attention_mask"]).logits
        got = again(inputs["input_ids"], inputs["attention_mask"]).logits
    assert again_info.classes == CLASSES and torch.equal(want, got)


def test_a_missing_column_is_one_located_line(tmp_path):
    recipe = text_recipe(tmp_path, text="review")
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path, env=OFFLINE), path, "data.source:", "reviews.jsonl",
                   "no column 'review'; its columns: text, label")  # fmt: skip


@pytest.mark.parametrize(("case", "fragments"), [
    ("no-file", ("absent.parquet", "no such file or folder")),
    ("file-type", ("reviews.txt", "unsupported file type '.txt'")),
    ("no-split", ("no split 'train'", "splits: fit")),
])  # fmt: skip
def test_bad_hf_data_is_one_located_line(tmp_path, case, fragments):
    recipe = text_recipe(tmp_path)
    if case == "no-file":
        recipe["data"]["path"] = "absent.parquet"
    elif case == "file-type":
        (tmp_path / "reviews.txt").write_text("good film\n")
        recipe["data"]["path"] = "reviews.txt"
    else:
        import datasets

        rows = reviews(20)
        whole = datasets.Dataset.from_list(rows)
        datasets.DatasetDict({"fit": whole}).save_to_disk(str(tmp_path / "saved"))
        recipe["data"]["path"] = "saved"
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path, env=OFFLINE), path, "data.source:", *fragments)


def hf_source(section: dict):
    """The data source of a recipe's ``data`` section, validated as a recipe would."""
    from pydantic import TypeAdapter

    from compress.data import make_source
    from compress.recipe import recipe_model

    union = recipe_model().model_fields["data"].annotation
    return make_source(TypeAdapter(union).validate_python(section))


def test_parquet_files_with_a_test_file_and_labels_unseen_in_training(tmp_path):
    import pandas as pd

    rows = reviews(40)
    pd.DataFrame(rows[:30]).to_parquet(tmp_path / "train.parquet")
    pd.DataFrame(rows[30:]).to_parquet(tmp_path / "test.parquet")
    section = {"source": "hf-dataset", "path": str(tmp_path / "train.parquet"),
               "test": str(tmp_path / "test.parquet"), "text": "text"}  # fmt: skip
    raw = hf_source(section).load()
    assert raw.classes == CLASSES and (len(raw.train), len(raw.test)) == (30, 10)
    assert raw.train.x[0] == rows[0]["text"] and raw.test.y.tolist() == [0, 1] * 5
    pd.DataFrame(rows[30:] + [{"text": "meh", "label": "mixed"}]).to_parquet(
        tmp_path / "test.parquet")
    from compress.errors import DataError

    with pytest.raises(DataError, match=r"test.parquet: 1 labels outside the classes"):
        hf_source(section).load()


@pytest.mark.parametrize(("case", "message"), [
    ("no-config", "empty has no config.json: not a save_pretrained folder"),
    ("three-labels", "config.json has 3 labels, the task has 2 classes (neg, pos)"),
])  # fmt: skip
def test_a_model_folder_that_does_not_fit_is_one_located_line(tmp_path, case, message):
    recipe = text_recipe(tmp_path)
    if case == "no-config":
        (tmp_path / "empty").mkdir()
    else:
        tiny_bert(tmp_path / "three", classes=["a", "b", "c"])
    recipe["teacher"]["model"] = {"hf": "empty" if case == "no-config" else "three"}
    path = write_recipe(tmp_path / "r.yaml", recipe)
    one_line_error(cli("validate", path, env=OFFLINE), path, "teacher.model:", message)


def test_an_image_data_set_on_disk_preprocesses_like_an_image_folder(tmp_path):
    import datasets
    from PIL import Image

    images = [Image.new("L" if i == 0 else "RGB", (12, 10), color=20 * i) for i in range(8)]
    features = datasets.Features({"img": datasets.Image(),
                                  "y": datasets.ClassLabel(names=["cat", "dog"])})  # fmt: skip
    train = datasets.Dataset.from_dict({"img": images, "y": [i % 2 for i in range(8)]},
                                       features=features)  # fmt: skip
    datasets.DatasetDict({"train": train, "test": train.select(range(4))}).save_to_disk(
        str(tmp_path / "pets"))
    section = {"source": "hf-dataset", "path": str(tmp_path / "pets"), "image": "img",
               "label": "y", "size": [8, 8], "mean": [0.5], "std": [0.25]}  # fmt: skip
    source = hf_source(section)
    assert source.kind == "image" and source.describe() == (["cat", "dog"], (3, 8, 8))
    raw = source.load()
    assert raw.preprocessing["size"] == [8, 8] and len(raw.test) == 4
    batch = raw.train.x[np.arange(3)]
    assert batch.shape == (3, 3, 8, 8) and batch.dtype == np.float32
    assert np.allclose(batch[1, 0], (20 / 255 - 0.5) / 0.25) and np.allclose(batch[1, 1:], -2)
    assert any("converted 1 grayscale images" in n for n in raw.notes), raw.notes
    # an image classifier saved with save_pretrained takes the task's `input` as pixel_values
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    from compress.models import build_model
    from tests.conftest import image_info, spec_of

    vit = ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16,
                    num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                    num_labels=2, id2label={0: "cat", 1: "dog"})  # fmt: skip
    ViTForImageClassification(vit).save_pretrained(tmp_path / "vit")
    info = image_info((3, 8, 8), classes=2)
    model = build_model(spec_of({"hf": str(tmp_path / "vit")}), info).eval()
    with torch.no_grad():
        assert model(torch.from_numpy(batch)).logits.shape == (3, 2)


def test_without_the_extra_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    from compress.data.hf import read_local
    from compress.errors import DataError, ModelError
    from compress.models import build_model
    from tests.conftest import image_info, spec_of

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ModelError, match=r"pip install 'edge-compress\[hf\]'"):
        build_model(spec_of({"hf": str(tmp_path / "model")}), image_info((3, 8, 8), 2))
    with pytest.raises(DataError, match=r"pip install 'edge-compress\[hf\]'"):
        read_local(tmp_path / "model")
