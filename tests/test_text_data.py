"""Text data: Austen sentences labelled by novel, and the BPE tokenizer that feeds text students."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from compress.data import austen
from compress.data.austen import CLASSES, austen_missing, austen_sentences, split_sentences
from compress.data.tokenizer import TextEncoder, train_tokenizer
from compress.errors import DataError

needs_austen = pytest.mark.skipif(
    austen_missing() is not None, reason=f"Austen novels absent: {austen_missing()}"
)

_SUBJECTS = ["the captain", "my sister", "our neighbour", "the old gardener", "a young officer"]
_VERBS = ["walked to", "wrote about", "spoke of", "thought of", "admired"]
_OBJECTS = ["the abbey", "the long letter", "a quiet garden", "the evening party", "her cousin"]


def _sentences(n: int = 2000) -> list[str]:
    """Varied English-like sentences, so tokenizer tests need no installed corpus."""
    rng = random.Random(0)
    out = []
    for i in range(n):
        words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
        tail = " ".join(rng.choice(_OBJECTS) for _ in range(i % 7))
        out.append(f"{' '.join(words).capitalize()}, and then {tail}!".replace(" !", "!"))
    return out


@needs_austen
def test_austen_has_all_six_novels_with_matching_labels():
    texts, labels, classes = austen_sentences()
    assert classes == CLASSES and len(classes) == 6
    assert labels.dtype == np.int64 and labels.shape == (len(texts),)
    counts = np.bincount(labels, minlength=6)
    assert all(2000 <= c <= 10000 for c in counts), dict(zip(classes, counts, strict=True))
    assert all(6 <= len(t.split()) <= 60 for t in texts)
    assert not any("CHAPTER" in t or "_" in t or "  " in t for t in texts)
    first = texts[int(np.argmax(labels == classes.index("Pride & Prejudice")))]
    assert first.startswith("It is a truth universally acknowledged")


@needs_austen
def test_austen_is_deterministic_and_honours_word_limits():
    a = austen_sentences(min_words=4, max_words=20)
    b = austen_sentences(min_words=4, max_words=20)
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert max(len(t.split()) for t in a[0]) == 20


def test_split_sentences_keeps_titles_and_initials():
    text = '"No. I am sure." Mr. A. B. Smith came. It was I. Why? "Well," said he.'
    assert split_sentences(text) == [
        '"No.', 'I am sure."', "Mr. A. B. Smith came.", "It was I.", "Why?", '"Well," said he.'
    ]  # fmt: skip


def test_austen_missing_and_unreadable_files_raise_data_error(tmp_path, monkeypatch):
    monkeypatch.setattr(austen, "_DEFAULT_DIRS", ())
    monkeypatch.setenv("COMPRESS_AUSTEN_DIR", str(tmp_path))
    reason = austen_missing()
    assert reason and str(tmp_path) in reason and "install-austen.sh" in reason
    with pytest.raises(DataError, match="install-austen.sh"):
        austen_sentences()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "Rdata.rdb").write_bytes(b"junk")
    (tmp_path / "data" / "Rdata.rdx").write_bytes(b"junk")
    assert austen_missing() is None
    with pytest.raises(DataError, match="Rdata.rdx"):
        austen_sentences()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer(_sentences(), 300, path)
    return path


def test_encoder_pads_masks_and_caps_dynamically(trained):
    enc = TextEncoder.load(trained)
    assert enc.pad_id == 0 and 50 < enc.vocab_size <= 300
    short = enc.encode(["The captain.", "My sister admired the abbey"], max_length=64)
    ids, mask = short["input_ids"], short["attention_mask"]
    assert ids.dtype == mask.dtype == np.int64 and ids.shape == mask.shape
    assert ids.shape[1] == mask.sum(axis=1).max() < 64  # padded to the longest, not max_length
    assert np.array_equal(mask, (ids != enc.pad_id).astype(np.int64))
    assert (ids[:, 0] == enc.cls_id).all()
    assert (ids < enc.vocab_size).all()
    assert enc.decode(ids[1]) == "my sister admired the abbey"
    capped = enc.encode(_sentences(50), max_length=5)["input_ids"]
    assert capped.shape == (50, 5) and (capped[:, 0] == enc.cls_id).all()


def test_same_texts_give_identical_file_in_another_process(trained, tmp_path):
    """A fresh interpreter gets new hash seeds, which is where BPE training used to differ."""
    texts, again = tmp_path / "texts.json", tmp_path / "again.json"
    texts.write_text(json.dumps(_sentences()))
    code = (
        "import json, sys; from pathlib import Path; "
        "from compress.data.tokenizer import train_tokenizer; "
        "train_tokenizer(json.loads(Path(sys.argv[1]).read_text()), 300, Path(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", code, texts, again], check=True, timeout=60)
    assert again.read_bytes() == trained.read_bytes()


def test_loading_a_missing_or_corrupt_tokenizer_names_the_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(DataError, match="nope.json"):
        TextEncoder.load(missing)
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"model": ')
    with pytest.raises(DataError, match="corrupt.json"):
        TextEncoder.load(corrupt)
