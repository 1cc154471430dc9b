"""A small BPE tokenizer for text students, trained here and shipped as one JSON file.

Torch-free on purpose: the device runtime tokenizes text too, with only ``tokenizers`` and numpy.
The JSON carries everything a runtime needs (lowercasing, splitting, merges, the ``[CLS]``
prefix), so a device that loads it with ``tokenizers.Tokenizer.from_file`` alone gets the same ids.
``TextEncoder`` also reads other tokenizers' files, such as the ``tokenizer.json`` that
``transformers`` writes beside a model: it takes the padding id and the special tokens
(``[CLS] … [SEP]`` for BERT) from the file rather than assuming ours.

A lowercase normaliser and word/punctuation pre-splitting suit a small vocabulary better than
byte-level BPE: no vocabulary slots go to bytes and case variants of the same word. Word starts
are marked with the Metaspace "▁" rather than a "##" continuation prefix, because tokenizers'
BpeTrainer numbers "##" tokens in hash-map order, so training with one is not reproducible
(huggingface/tokenizers issue #1794); "▁" is an ordinary character of the sorted alphabet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.trainers import BpeTrainer

from compress.atomic import write_text
from compress.errors import DataError

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIAL_TOKENS = [PAD, UNK, CLS]  # their ids are their positions: PAD is 0
PAD_TOKENS = (PAD, "<pad>", "<|pad|>", "<PAD>")  # BERT / RoBERTa, T5 / some GPT files / others


def _untrained(cls_id: int) -> Tokenizer:
    """The pipeline around the BPE model; ``cls_id`` is fixed by SPECIAL_TOKENS' order."""
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A", special_tokens=[(CLS, cls_id)]
    )
    tokenizer.decoder = decoders.Metaspace()
    return tokenizer


def train_tokenizer(texts: list[str], vocab_size: int, path: Path) -> None:
    """Train on ``texts`` and write the tokenizer JSON to ``path`` atomically.

    The same texts and vocab_size give a byte-identical file (no "##" tokens, see the module
    docstring), so a recipe's tokenizer is reproducible and can be cached by its inputs.
    """
    if not texts:
        raise ValueError("train_tokenizer needs at least one text")
    if vocab_size <= len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must exceed {len(SPECIAL_TOKENS)} (the special tokens)")
    tokenizer = _untrained(cls_id=SPECIAL_TOKENS.index(CLS))
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))
    write_text(path, tokenizer.to_str(pretty=True) + "\n")


class TextEncoder:
    """Texts -> padded id and mask arrays, padded to the longest text of each batch."""

    def __init__(self, tokenizer: Tokenizer, path: Path | None = None) -> None:
        self.tokenizer = tokenizer
        self.path = path
        self.pad_id = self._pad_id()
        self.cls_id = tokenizer.token_to_id(CLS)  # None for files without [CLS] (RoBERTa: <s>)
        # Padding and truncation are ours, per batch: a file saved with fixed-length padding
        # would otherwise pad every row and mark the padding as text in the mask.
        tokenizer.no_padding()
        self._truncation: int | None = None

    def _pad_id(self) -> int:
        """The file's padding id (set by its padding section), else its pad token's id. Ours is
        0; BERT's [PAD] is 0 too, RoBERTa's <pad> is 1. Any id works: the mask marks padding."""
        padding = self.tokenizer.padding
        if padding and padding.get("pad_id") is not None:
            return int(padding["pad_id"])
        for token in PAD_TOKENS:
            if (token_id := self.tokenizer.token_to_id(token)) is not None:
                return token_id
        raise DataError(f"{self.path or 'tokenizer'}: has no padding token "
                        f"({', '.join(PAD_TOKENS)}) and no padding setting")  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> TextEncoder:
        """Read a tokenizer JSON (``train_tokenizer``'s, or a model's ``tokenizer.json``);
        DataError names a bad file."""
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: tokenizer file not found")
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise DataError(f"{path}: not a readable tokenizer file ({exc})") from exc
        return cls(tokenizer, path)

    @property
    def vocab_size(self) -> int:
        """Rows an embedding table needs: every id ``encode`` can return is below this."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode(self, texts: list[str], max_length: int) -> dict[str, np.ndarray]:
        """``{"input_ids", "attention_mask"}``, int64 (n, L), L = longest in batch <= max_length.

        The file's post-processor adds the special tokens ([CLS] for ours, [CLS] … [SEP] for
        BERT); truncation to max_length keeps them (a BERT row ends with [SEP], as it does with
        transformers' own tokenizer), then rows are padded with the pad id / mask 0. Dynamic L
        keeps short batches cheap on a device.
        """
        if max_length < 1:
            raise ValueError("max_length must be at least 1 (room for [CLS])")
        if self._truncation != max_length:
            self.tokenizer.enable_truncation(max_length)
            self._truncation = max_length
        # tokenizers leaves a row whole when its special tokens alone exceed max_length
        rows = [e.ids[:max_length] for e in self.tokenizer.encode_batch(list(texts))]
        length = max((len(r) for r in rows), default=0)
        ids = np.full((len(rows), length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def decode(self, ids: list[int] | np.ndarray) -> str:
        """Text back from ids, skipping special tokens ([PAD], [CLS]): for reading predictions."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)
