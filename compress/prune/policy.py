"""The two N2N policies (the paper's code: hidden size 30, two LSTM layers).

Stage 1, removal: a bidirectional LSTM reads the whole layer sequence and gives each layer a
keep/remove distribution. Stage 2, shrinkage: an autoregressive LSTM (two stacked LSTMCells)
walks the child's layers, each step reading the layer and the action it took for the layer
before, and picks one of ``FACTORS``. Layers the rules fix take their forced action and add
nothing to the log-probability.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from compress.prune.layers import KINDS, LayerSpec, kernel_shrinkable, removable, shrinkable
from compress.prune.surgery import FACTORS, Plan

HIDDEN = 30


def layer_features(layers: list[LayerSpec]) -> Tensor:
    """(n, f): one-hot kind, then kernel, stride, padding, log widths, bn, relu, and what the
    rules allow, each scaled to about [0, 1]."""
    can_remove, can_shrink = removable(layers), shrinkable(layers)
    rows = []
    for i, lay in enumerate(layers):
        kind = [float(lay.kind == k) for k in KINDS]
        rows.append(kind + [lay.kernel / 7, lay.stride / 4, lay.padding / 3,
                            math.log2(1 + lay.out) / 12, math.log2(1 + lay.mid) / 12,
                            float(lay.bn), float(lay.relu), float(can_remove[i]),
                            float(can_shrink[i])])  # fmt: skip
    return torch.tensor(rows, dtype=torch.float32)


FEATURES = len(KINDS) + 9


class RemovalPolicy(nn.Module):
    """Bidirectional 2-layer LSTM over the layers → keep/remove logits per layer."""

    def __init__(self, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.lstm = nn.LSTM(FEATURES, hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, 2)  # [remove, keep]

    def forward(self, features: Tensor) -> Tensor:  # (n, f) -> (n, 2) logits
        out, _ = self.lstm(features[None])  # (1, n, 2·hidden)
        return self.head(out[0])

    def sample(self, layers: list[LayerSpec], gen: torch.Generator) -> tuple[Plan, Tensor]:
        """A plan that removes some removable layers, and its log-probability (scalar)."""
        logits = self(layer_features(layers))  # (n, 2)
        dist = torch.distributions.Categorical(logits=logits)
        draws = torch.multinomial(dist.probs, 1, generator=gen)[:, 0]  # (n,)
        allowed = torch.tensor(removable(layers))
        keep = torch.where(allowed, draws == 1, torch.ones_like(allowed))
        log_prob = (dist.log_prob(draws) * allowed).sum()
        return Plan(keep=keep.tolist(), factors=[1.0] * len(layers)), log_prob


class ShrinkPolicy(nn.Module):
    """Autoregressive two-layer LSTMCell over the kept layers → one of FACTORS per layer for
    its width (unless not ``widths``) and, with ``kernels``, one more for a conv's kernel size
    (a head of its own on the same step; the next step reads the width action)."""

    def __init__(self, hidden: int = HIDDEN, kernels: bool = False, widths: bool = True) -> None:
        super().__init__()
        self.hidden, self.widths = hidden, widths
        self.cells = nn.ModuleList([nn.LSTMCell(FEATURES + len(FACTORS), hidden),
                                    nn.LSTMCell(hidden, hidden)])  # fmt: skip
        self.head = nn.Linear(hidden, len(FACTORS))
        # Only when asked: a search without it keeps its exact weights, samples and checkpoints.
        self.kernel_head = nn.Linear(hidden, len(FACTORS)) if kernels else None

    def sample(self, layers: list[LayerSpec], keep: list[bool],
               gen: torch.Generator) -> tuple[Plan, Tensor]:  # fmt: skip
        """Factors for the layers ``keep`` retains (removed ones stay 1.0), and the
        log-probability of the free choices (scalar)."""
        features = layer_features(layers)
        can_shrink = shrinkable(layers) if self.widths else [False] * len(layers)
        can_kernel = kernel_shrinkable(layers)
        states = [(torch.zeros(1, self.hidden), torch.zeros(1, self.hidden)) for _ in self.cells]
        previous = torch.zeros(1, len(FACTORS))  # one-hot of the last action; none at first
        factors, log_prob = [1.0] * len(layers), torch.zeros(())
        kernels = [1.0] * len(layers) if self.kernel_head is not None else None
        for i in (i for i, k in enumerate(keep) if k):
            x = torch.cat([features[i : i + 1], previous], dim=1)  # (1, f + actions)
            for j, cell in enumerate(self.cells):
                states[j] = cell(x, states[j])
                x = states[j][0]
            dist = torch.distributions.Categorical(logits=self.head(x)[0])  # (actions,)
            if can_shrink[i]:
                action = torch.multinomial(dist.probs, 1, generator=gen)[0]
                log_prob = log_prob + dist.log_prob(action)
                factors[i] = FACTORS[int(action)]
            else:
                action = torch.tensor(len(FACTORS) - 1)  # forced: unchanged (1.0)
            if kernels is not None and self.kernel_head is not None and can_kernel[i]:
                k_dist = torch.distributions.Categorical(logits=self.kernel_head(x)[0])
                k_action = torch.multinomial(k_dist.probs, 1, generator=gen)[0]
                log_prob = log_prob + k_dist.log_prob(k_action)
                kernels[i] = FACTORS[int(k_action)]
            previous = nn.functional.one_hot(action, len(FACTORS)).float()[None]
        return Plan(keep=list(keep), factors=factors, kernels=kernels), log_prob


class Policies(nn.Module):
    """Both policies in one module, trained by one optimizer with the paper's two learning
    rates (one parameter group each), and saved and resumed together."""

    def __init__(self, fields: tuple[str, ...] = ("out",)) -> None:
        super().__init__()
        self.removal = RemovalPolicy()
        self.shrink = ShrinkPolicy(kernels="kernel" in fields, widths="out" in fields)

    def optimizer(self, removal_lr: float, shrink_lr: float) -> torch.optim.Adam:
        return torch.optim.Adam([{"params": self.removal.parameters(), "lr": removal_lr},
                                 {"params": self.shrink.parameters(), "lr": shrink_lr}])
