"""``model: {hf: FOLDER}``: a Hugging Face ``transformers`` model saved with ``save_pretrained``.

The folder is read with ``local_files_only=True`` and the hub is switched off before
``transformers`` is imported: a recipe never downloads anything, so a run reproduces offline.
``transformers`` is imported inside functions only, so the zoo, the recipe schema and the
device runtime work without the ``hf`` extra installed.

The model is wrapped so that it takes the task's inputs positionally in the signature's order
(``input_ids, attention_mask`` or ``input``) and hands them to the transformers model by keyword
(``pixel_values`` for images): keyword calls do not depend on where a model class puts its
arguments (GPT-2 has ``past_key_values`` second). The wrapper returns the model's ModelOutput;
the task reads its ``logits``.

For ``language-modeling`` and ``seq2seq`` the folder holds a causal LM (AutoModelForCausalLM),
wrapped as ``HFCausalLM``: positions are counted over the attention mask (as ``arch: gpt``
does), and for seq2seq it reads the source followed by the decoder inputs and returns the logits
of the decoder positions, the contract of ``compress.seq2seq.align``. Its ids are its own
tokenizer's: a recipe that distils it uses that tokenizer (``check_same_tokenizer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field
from torch import Tensor, nn

from compress.config import StrictModel
from compress.data.hf import offline
from compress.errors import ModelError
from compress.tasks import TaskInfo

INSTALL = "pip install 'edge-compress[hf]'"
TEXT_INPUTS = ["input_ids", "attention_mask"]
CAUSAL_TASKS = ("language-modeling", "seq2seq")  # an hf: folder holds a causal LM for these
# What a save_pretrained folder holds besides config.json: the weights, maybe sharded.
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin",
                   "pytorch_model.bin.index.json")  # fmt: skip


class HFModelSpec(StrictModel):
    """A Hugging Face transformers model saved locally with ``save_pretrained`` (never
    downloaded): AutoModelForSequenceClassification for text classification,
    AutoModelForImageClassification for image tasks, AutoModelForCausalLM for language-modeling
    and seq2seq (a decoder-only teacher); its weights are the starting point."""

    hf: Path = Field(description="Folder written by save_pretrained: config.json and the "
                     "weights (relative to the recipe).")  # fmt: skip


def import_transformers() -> Any:
    """``transformers``, quiet (no progress bars or notices on the CLI's stderr)."""
    offline()
    try:
        import transformers
    except ImportError:
        raise ModelError(f"hf: models need transformers: {INSTALL}") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def folder_files(folder: Path) -> list[Path]:
    """config.json and the weight files: what a stage's cache key hashes, so replacing the
    weights re-runs the stages that build this model."""
    weights = sorted({f for pattern in WEIGHT_PATTERNS for f in folder.glob(pattern)})
    config = folder / "config.json"
    return ([config] if config.is_file() else []) + [f for f in weights if f.is_file()]


def check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such folder (hf: wants a folder written by "
                         "save_pretrained)")  # fmt: skip
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder} has no config.json: not a save_pretrained folder")


def read_config(folder: Path) -> dict[str, Any]:
    """config.json as a dict (for checkpoints of ours, which rebuild from it)."""
    check_folder(folder)
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ModelError(f"{folder}/config.json: not readable JSON ({e})") from None


class HFClassifier(nn.Module):
    """The task's inputs positionally in, the transformers model's ModelOutput out."""

    def __init__(self, model: nn.Module, keywords: list[str]) -> None:
        super().__init__()
        self.hf = model
        self.keywords = keywords

    def forward(self, *inputs: Tensor) -> Any:
        return self.hf(**dict(zip(self.keywords, inputs, strict=True)))


class HFCausalLM(nn.Module):
    """A transformers causal LM on the language-modeling signature ``(input_ids,
    attention_mask)`` -> logits (b, l, V), or the seq2seq one ``(..., decoder_input_ids)`` ->
    the logits of the decoder positions (b, t, V) read after the source. V is the task's
    vocabulary (its tokenizer's): a model whose embedding is padded beyond it (vocab_size
    rounded up) has its logits cut to it, as the distillation loss cuts a larger teacher's."""

    def __init__(self, model: nn.Module, vocab: int) -> None:
        super().__init__()
        self.hf, self.vocab = model, vocab

    def logits(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(b, l) -> (b, l, V); positions skip padding, so a right-padded source followed by
        the decoder inputs reads as if it had no padding."""
        from compress.models.gpt import mask_positions

        out = self.hf(input_ids=input_ids, attention_mask=attention_mask,
                      position_ids=mask_positions(attention_mask), use_cache=False)
        return out.logits[..., : self.vocab]

    def forward(self, input_ids: Tensor, attention_mask: Tensor,
                decoder_input_ids: Tensor | None = None) -> Tensor:  # fmt: skip
        if decoder_input_ids is None:
            return self.logits(input_ids, attention_mask)
        from compress.seq2seq.align import aligned, teacher_view

        ids, mask = teacher_view(input_ids, attention_mask, decoder_input_ids)  # (b, s + t)
        return aligned(self.logits(ids, mask), input_ids.shape[1])  # (b, t, V)


def _kind(info: TaskInfo) -> str:
    if info.task in CAUSAL_TASKS and info.vocab_size is not None:
        return "causal"
    if info.signature.input_names == TEXT_INPUTS and info.vocab_size is not None:
        return "text"
    if len(info.input_shape) == 3 and len(info.signature.input_names) == 1:
        return "image"
    names = ", ".join(info.signature.input_names)
    raise ModelError(f"hf: models classify text (input_ids, attention_mask) or images "
                     f"(c, h, w), or are causal LMs for {' and '.join(CAUSAL_TASKS)}; the task "
                     f"{info.task} has {names}")  # fmt: skip


def _check_labels(folder: Path, config: Any, info: TaskInfo) -> None:
    """The classification head must have one logit per class, in the task's order: a head
    trained on ["pos", "neg"] used for classes ["neg", "pos"] would be silently wrong."""
    if config.num_labels != info.num_classes:
        shown = ", ".join(info.classes[:5]) + (", ..." if info.num_classes > 5 else "")
        raise ModelError(f"{folder}: config.json has {config.num_labels} labels, the task has "
                         f"{info.num_classes} classes ({shown}); set num_labels (and id2label) "
                         "when saving the model")  # fmt: skip
    names = [str(config.id2label[i]) for i in range(config.num_labels)]
    if sorted(names) == sorted(info.classes) and names != info.classes:
        raise ModelError(f"{folder}: config.json labels {names} are the task's classes in "
                         f"another order ({info.classes}); relabel the data or the model")


def _check_text(folder: Path, config: Any, info: TaskInfo) -> None:
    vocab = getattr(config, "vocab_size", None)
    if vocab is not None and info.vocab_size is not None and info.vocab_size > vocab:
        raise ModelError(f"{folder}: the task's vocabulary has {info.vocab_size} ids (its "
                         f"tokenizer's, or task.vocab_size), the model embeds {vocab}; set "
                         "task.tokenizer to the model folder's tokenizer.json")  # fmt: skip
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and info.max_length and info.max_length > positions:
        raise ModelError(f"{folder}: the model takes at most {positions} tokens; set "
                         f"task.max_length to {positions} or less (it is {info.max_length})")


def _vocabulary(path: Path) -> dict[str, int]:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path)).get_vocab(with_added_tokens=True)
    except Exception as e:  # tokenizers raises its own Exception type for a bad file
        raise ModelError(f"{path}: not a tokenizers JSON file ({_first_line(e)})") from None


def check_same_tokenizer(folder: Path, tokenizer: Path | None) -> str | None:
    """The rule for distilling an ``hf:`` causal LM: the teacher's logits are over its own
    token ids, so the students must read the same ids: the task's tokenizer must be the folder's
    ``tokenizer.json`` or a file with the same token -> id map. Why not, or None."""
    own = Path(folder) / "tokenizer.json"
    if not own.is_file():
        return (f"{folder} has no tokenizer.json: save the teacher's fast tokenizer into the "
                "folder (tokenizer.save_pretrained) and set task.tokenizer to it; the students "
                "must read the teacher's token ids")  # fmt: skip
    if tokenizer is None:
        return (f"set task.tokenizer to {own}: the students must read the hf: teacher's token "
                "ids, and a tokenizer trained by the run numbers tokens differently")  # fmt: skip
    if not Path(tokenizer).is_file():
        return f"tokenizer file not found: {tokenizer}"
    ours, theirs = _vocabulary(Path(tokenizer)), _vocabulary(own)
    if ours != theirs:
        differ = len(set(ours.items()) ^ set(theirs.items()))
        return (f"task.tokenizer {tokenizer} and the hf: teacher's {own} number tokens "
                f"differently ({len(ours)} and {len(theirs)} tokens, {differ} token/id pairs "
                "not shared); use the teacher's tokenizer.json")  # fmt: skip
    return None


def max_positions(folder: Path) -> int | None:
    """How many tokens the folder's model reads at most (None when its config does not say:
    RoPE models without a stated limit)."""
    config = import_transformers().AutoConfig.from_pretrained(folder, local_files_only=True)
    return getattr(config, "max_position_embeddings", None)


def build_hf(spec: HFModelSpec, info: TaskInfo, stored_config: dict | None = None) -> nn.Module:
    """The folder's model with its weights, as float32, wrapped to the task's signature; with
    ``stored_config`` (a checkpoint's copy of config.json) an untrained one of that config,
    without the folder, for the checkpoint's weights to fill.

    Every failure is a ModelError of one line: the recipe's loader locates it at the model's
    key, and ``load_checkpoint`` names the checkpoint."""
    folder = Path(spec.hf)
    if stored_config is None:
        check_folder(folder)
    kind = _kind(info)
    transformers = import_transformers()
    try:
        if stored_config is None:
            config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
        else:
            stored = dict(stored_config)
            config = transformers.AutoConfig.for_model(stored.pop("model_type"), **stored)
    except (OSError, ValueError, KeyError) as e:
        raise ModelError(f"{folder}/config.json: {_first_line(e)}") from None
    if kind != "causal":  # a causal LM's head is its vocabulary, not classes
        _check_labels(folder, config, info)
    if kind != "image":
        _check_text(folder, config, info)
    auto = {"text": transformers.AutoModelForSequenceClassification,
            "image": transformers.AutoModelForImageClassification,
            "causal": transformers.AutoModelForCausalLM}[kind]
    try:
        if stored_config is None:
            model = auto.from_pretrained(folder, config=config, local_files_only=True)
        else:
            model = auto.from_config(config)
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        raise ModelError(f"{folder}: {auto.__name__} cannot load it: {_first_line(e)}") from None
    if kind == "causal":
        return HFCausalLM(model.float(), info.vocab_size)
    return HFClassifier(model.float(), TEXT_INPUTS if kind == "text" else ["pixel_values"])


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
