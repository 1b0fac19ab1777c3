"""Pairwise ranking of genes (RankNet): which of two genes is expressed higher?

A twin network: one shared backbone ``encoder`` (any single-cell model, e.g. DeepChrome or
AttentiveChrome) scores each gene, ``s = encoder(x)`` of shape ``(batch,)``; the pair logit is
``s_a - s_b`` and ``P(a above b) = sigmoid(s_a - s_b)``. Training uses the RankNet loss
(:func:`ranknet_loss`). No published model ranks gene pairs from marks; the nearest anchor is
DeepDiff's siamese design (shared encoder, difference fusion).

Because the pair logit is a difference of per-gene scores, swapping A and B negates it exactly
and ``P(b above a) = 1 - P(a above b)``; ranking all genes only needs one score per gene.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from hmviz.errors import ModelError
from hmviz.models.attentivechrome import AttentiveChromeConfig
from hmviz.models.deepchrome import DeepChromeConfig


@dataclass(kw_only=True)
class RankerDeepChromeConfig(DeepChromeConfig):
    """DeepChrome backbone trained as a pairwise ranker; fields as :class:`DeepChromeConfig`.

    ``batch_size`` counts genes per step with the engine's default within-batch pair sampling
    (``pairs_per_gene`` x genes pairs among them), gene pairs per step with global sampling (see
    :class:`hmviz.options.TrainOptions`).
    """


@dataclass(kw_only=True)
class RankerAttentiveChromeConfig(AttentiveChromeConfig):
    """AttentiveChrome backbone trained as a pairwise ranker; fields as :class:`AttentiveChromeConfig`.

    ``batch_size`` counts genes per step with the engine's default within-batch pair sampling
    (``pairs_per_gene`` x genes pairs among them), gene pairs per step with global sampling (see
    :class:`hmviz.options.TrainOptions`).

    ``min_steps``: none by default (the classifier's 300-step warm-up was measured for the
    classifier only; the ranker's pairwise loss did not stop early on an untrained epoch on 600 E123
    genes, docs/results.md). ``--set min_steps=300`` applies it.
    """

    min_steps: int | None = None


class PairwiseRanker(nn.Module):
    """Twin network with a shared backbone that scores genes.

    Args:
        encoder: a module mapping ``(batch, bins, marks)`` to one score per gene ``(batch,)``.

    ``forward(x_a)`` (``x_b`` omitted) returns the scores ``(batch,)``, same as :meth:`score`;
    ``forward(x_a, x_b)`` returns the pair logit ``s_a - s_b`` ``(batch,)``. The two genes are
    scored by two separate backbone calls, so ``forward(x_b, x_a)`` is exactly ``-forward(x_a,
    x_b)``. For attribution methods that require each module to run once per forward (DeepLift),
    explain :meth:`score` on single genes, or the pair through :meth:`pair_logit` on two scores.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = getattr(encoder, "config", None)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """Per-gene score ``(batch,)`` for ``x`` ``(batch, bins, marks)``; higher = ranked higher."""
        s = self.encoder(x)
        if s.ndim != 1:
            raise ModelError(
                f"PairwiseRanker's backbone must return one score per gene, shape (batch,), got {tuple(s.shape)}."
            )
        return s

    @staticmethod
    def pair_logit(s_a: torch.Tensor, s_b: torch.Tensor) -> torch.Tensor:
        """Pair logit ``s_a - s_b`` from two score tensors (exactly antisymmetric)."""
        return s_a - s_b

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor | None = None) -> torch.Tensor:
        if x_b is None:
            return self.score(x_a)
        if x_a.shape[0] != x_b.shape[0]:
            raise ModelError(f"Gene pairs need as many A genes as B genes, got {x_a.shape[0]} and {x_b.shape[0]}.")
        return self.pair_logit(self.score(x_a), self.score(x_b))

    def prob_a_above_b(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        """``P(gene a is expressed higher than gene b) = sigmoid(s_a - s_b)``, shape ``(batch,)``."""
        return torch.sigmoid(self.forward(x_a, x_b))


def ranknet_targets(y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
    """RankNet target per pair: 1 if ``y_a > y_b``, 0 if ``y_a < y_b``, 0.5 for a tie."""
    return (y_a > y_b).float() + 0.5 * (y_a == y_b).float()


def ranknet_loss(pair_logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor) -> torch.Tensor:
    """RankNet loss ``BCEWithLogits(s_a - s_b, 1[y_a > y_b])``, mean over pairs.

    Tied pairs get target 0.5 (RankNet's convention), which pushes their scores together; a
    pair sampler that skips ties avoids them entirely.
    """
    return F.binary_cross_entropy_with_logits(pair_logits, ranknet_targets(y_a, y_b).to(pair_logits.dtype))
