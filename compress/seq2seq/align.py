"""Where the teacher's logits for the student's decoder positions are.

The student's encoder reads the source (b, s); its decoder reads ``[BOS, y_0 .. y_{t-2}]`` and
position t predicts target token ``y_t``. The decoder-only teacher reads the source followed by
the same decoder inputs, ``[x_1 .. x_s, BOS, y_0 .. y_{t-2}]`` (the BOS doubles as the separator
between source and target), so its position ``s + t`` has read exactly what the student's
decoder position t has read and predicts the same ``y_t``. A source padded on the right keeps
these indices: the teacher's positions come from its attention mask, padding is never attended.
"""

from __future__ import annotations

import torch
from torch import Tensor


def teacher_view(input_ids: Tensor, attention_mask: Tensor,
                 decoder_input_ids: Tensor) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The teacher's input ids and mask (b, s + t): source, then the decoder inputs. Padding at
    the end of the decoder inputs is marked real: it follows every real target token, so under
    causal attention no real position sees it, and its logits are masked out of the loss."""
    ids = torch.cat([input_ids, decoder_input_ids], dim=1)
    mask = torch.cat([attention_mask, torch.ones_like(decoder_input_ids)], dim=1)
    return ids, mask


def teacher_positions(source_length: int, target_length: int) -> Tensor:
    """Index into the teacher's sequence of the logits for each decoder position: (t,)."""
    return source_length + torch.arange(target_length)


def aligned(teacher_states: Tensor, source_length: int) -> Tensor:
    """The teacher's logits or hidden states (b, s + t, ...) at the decoder positions:
    (b, t, ...)."""
    t = teacher_states.shape[1] - source_length
    return teacher_states.index_select(1, teacher_positions(source_length, t))
