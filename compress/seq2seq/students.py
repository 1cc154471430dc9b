"""The two students of a seq2seq stage: the encoder-decoder, and a decoder-only model of the same
width and heads whose depth makes its parameter count the closest to the encoder-decoder's."""

from __future__ import annotations

from compress.models import build_model, count_params
from compress.models.encdec import EncDecSpec
from compress.models.gpt import GPTSpec
from compress.tasks import TaskInfo


def matched_decoder_only(student: EncDecSpec, info: TaskInfo) -> GPTSpec:
    """The GPT spec with the encoder-decoder's dim and heads and the number of layers that
    brings its parameters nearest to the encoder-decoder's (ties: fewer layers)."""
    target = count_params(build_model(student, info))
    total = student.encoder_layers + student.decoder_layers

    def spec(layers: int) -> GPTSpec:
        return GPTSpec(arch="gpt", dim=student.dim, layers=layers, heads=student.heads,
                       kv_heads=student.kv_heads)  # fmt: skip

    candidates = range(max(1, total - 2), total + 4)
    sizes = {n: count_params(build_model(spec(n), info)) for n in candidates}
    return spec(min(sizes, key=lambda n: (abs(sizes[n] - target), n)))
