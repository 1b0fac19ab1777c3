"""Attention pooling with a learned context vector (AttentiveChrome, DeepDiff).

Scores are dot products with a learned vector, ``score_t = h_t . w`` (no tanh or projection, as
in the AttentiveChrome paper); ``alpha = softmax_t(score)``; the pooled vector is
``sum_t alpha_t h_t``.

With one context vector per group (AttentiveChrome's bin level) on the CPU, the pooling runs in the
compiled kernel (:mod:`hmviz.models._native`) where it is built: one pass over each gene's states
forward and one backward, the same numbers as the eager PyTorch below up to float rounding.
"""

from __future__ import annotations

import torch
from torch import nn

from hmviz.models import _native


class ContextAttention(nn.Module):
    """Pool a sequence of states with weights from a learned context vector.

    Args:
        dim: size D of each state.
        n_groups: ``None`` for one shared context vector ``(D,)``; an integer G for G independent
            context vectors ``(G, D)``, one per group (AttentiveChrome: one per mark).
        init_range: context vectors are drawn from U(-init_range, init_range).

    ``forward(states)`` with ``states`` shaped ``(batch, L, D)`` (or ``(batch, G, L, D)`` with
    groups) returns the pooled ``(batch, D)`` (``(batch, G, D)``); with ``return_weights=True`` it
    returns ``(pooled, weights)`` where ``weights`` is ``(batch, L)`` (``(batch, G, L)``) and sums
    to 1 over L.
    """

    def __init__(self, dim: int, n_groups: int | None = None, init_range: float = 0.1) -> None:
        super().__init__()
        shape = (dim,) if n_groups is None else (n_groups, dim)
        self.context = nn.Parameter(torch.empty(shape).uniform_(-init_range, init_range))
        self.softmax = nn.Softmax(dim=-1)
        self._kernel: bool | None = None  # whether the compiled kernel is used (fixed at the first forward)

    def forward(
        self, states: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self._kernel is None:  # asked once per model, so a running model never switches implementation
            self._kernel = _native.ready() is not None
        if self.context.dim() == 2 and self._kernel and _fused_ok(states, self.context):
            pooled, weights = _FusedGroupedAttention.apply(states.contiguous(), self.context)
            return (pooled, weights) if return_weights else pooled
        # (batch, [G,] L, D) @ ([G,] D, 1) -> (batch, [G,] L): one score per position
        scores = torch.matmul(states, self.context.unsqueeze(-1)).squeeze(-1)
        weights = self.softmax(scores)
        # (batch, [G,] 1, L) @ (batch, [G,] L, D) -> (batch, [G,] D)
        pooled = torch.matmul(weights.unsqueeze(-2), states).squeeze(-2)
        if return_weights:
            return pooled, weights
        return pooled


def _fused_ok(states: torch.Tensor, context: torch.Tensor) -> bool:
    return (
        states.device.type == "cpu"
        and states.dim() == 4
        and states.dtype == context.dtype
        and states.dtype in (torch.float32, torch.float64)
    )


class _FusedGroupedAttention(torch.autograd.Function):
    """Grouped context attention in the compiled kernel: ``(states, context) -> (pooled, weights)``."""

    @staticmethod
    def forward(ctx, states, context):
        pooled, weights = _native.load().attention_forward(states, context.contiguous())
        ctx.save_for_backward(states, context, weights)
        return pooled, weights

    @staticmethod
    def backward(ctx, d_pooled, d_weights):
        states, context, weights = ctx.saved_tensors
        d_states, d_context = _native.load().attention_backward(
            d_pooled.contiguous(), d_weights.contiguous(), states, context.contiguous(), weights
        )
        return d_states, d_context
