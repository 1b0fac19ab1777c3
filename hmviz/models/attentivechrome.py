"""AttentiveChrome (Singh et al., NeurIPS 2017): two-level attention over bins, then over marks.

Architecture (v2 PyTorch release, rebuilt from the paper's description):

1. Bin level, one model per mark: a bidirectional LSTM (input 1, hidden ``bin_hidden``=32) reads
   that mark's bins; attention with a learned per-mark context vector gives
   ``alpha`` (softmax over bins) and the mark embedding ``sum_t alpha_t h_t`` (2*32 = 64-d).
   All marks run together in :class:`~hmviz.models._recurrent.PerMarkBiLSTM` with independent
   per-mark weights.
2. Mark level: a bidirectional LSTM (input 64, hidden ``mark_hidden``=16) reads the sequence of
   mark embeddings; attention with a 32-d context vector gives ``beta`` (softmax over marks) and a
   32-d gene vector.
3. Head: ``Linear(32 -> 1)``, one logit per gene (BCEWithLogits for the binary task).

Every parameter is initialised U(-0.1, 0.1) as in the paper's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from hmviz.models._attention import ContextAttention
from hmviz.models._common import Dropout, ModelConfig, OptimizerName, check_input
from hmviz.models._recurrent import BinLSTMImpl, PerMarkBiLSTM


@dataclass(kw_only=True)
class AttentiveChromeConfig(ModelConfig):
    """AttentiveChrome hyperparameters; defaults are the v2 paper code's unless noted.

    Attributes:
        bin_hidden: hidden units per direction of each mark's bin-level LSTM (paper: 32); the mark
            embedding is ``2 * bin_hidden``.
        mark_hidden: hidden units per direction of the mark-level LSTM (paper: ``bin_hidden // 2``
            = 16); the gene vector is ``2 * mark_hidden``.
        dropout: dropout on both LSTMs' outputs. 0.0 reproduces v2, whose ``LSTM(dropout=0.5)``
            with one layer is a no-op; a non-zero value applies it as the Lua v1 code did (a
            deviation from v2).
        init_range: every parameter is drawn from U(-init_range, init_range) (paper: 0.1).
        bin_lstm_impl: how the per-mark LSTMs are run; all are exact (same numbers up to float
            rounding) and share one state_dict. ``"auto"`` (default): ``"native"`` on CPU where the
            compiled kernel could be built (once per machine; needs a C++ compiler and ninja),
            else ``"grouped"``; ``"per_mark"`` on a GPU. ``"native"``: one compiled loop per
            LSTM, forward and backward through time (``_bilstm_native.cpp``). ``"grouped"``: all
            marks and both directions advance together, one batched matrix product per time step,
            backward through time written out (``_recurrent._GroupedBiLSTM``). ``"per_mark"``: one
            call of PyTorch's fused LSTM kernel (oneDNN, cuDNN) per mark. ``"block"``: one fused
            call of a block-diagonal LSTM over all marks, ``n_marks`` times the recurrent FLOPs.
            ``python bench/bench_models.py lstm-floor`` times them on the CPU.
        optimizer, grad_clip: paper values (Adam, clip-norm 1).
        epochs: a cap of 100, a safety net: early stopping (``--patience``) ends the run.
            **Deviation**: the paper trains 30 epochs. On 600 REMC genes the best validation epoch
            was 29 of 30 and 39 of 60 on seed 5 (``python bench/bench_epochs.py``): a 30-epoch cap
            stops a model that is still improving.
        batch_size: 64. **Deviation**: the paper used 16; at 16 genes per step the LSTM kernels
            are 1.5-2x slower per gene on CPU. Set ``batch_size=16`` to reproduce the paper.
        lr: 1e-3. **Deviation** that goes with the batch size: the paper's 2e-4 is for batch 16; at
            batch 64 it leaves the loss flat at log 2 for several epochs, so early stopping could end
            a run before it learned (seen on 1 of 5 seeds on 600 REMC genes). ``paper_defaults()``
            gives 2e-4 with batch 16.
        min_steps: 300 training steps before early stopping may end a run. **Deviation** (the paper
            has no early stopping). With 200 training genes (4 steps per epoch) the patience of 10
            epochs ended 2 of 5 seeds on the 600 E003 genes at epochs 14 and 11, keeping epochs 4
            and 1 (test AUROC 0.776 on seed 4, accuracy at the class prior); with the warm-up all 5
            seeds kept epochs 24-34, validation AUROC 0.867 +- 0.007 against 0.847 +- 0.029
            (docs/training.md). On a genome-wide set 300 steps are a few epochs.
    """

    bin_hidden: int = 32
    mark_hidden: int = 16
    dropout: float = 0.0
    init_range: float = 0.1
    bin_lstm_impl: BinLSTMImpl = "auto"
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 100
    grad_clip: float | None = 1.0
    weight_decay: float = 0.0
    min_steps: int | None = 300

    @classmethod
    def paper_defaults(cls, n_marks: int, n_bins: int) -> AttentiveChromeConfig:
        """The v2 training recipe exactly (batch size 16)."""
        return cls(n_marks=n_marks, n_bins=n_bins, batch_size=16, lr=2e-4, epochs=30, min_steps=None)


class AttentionOutput(NamedTuple):
    """AttentiveChrome output with attention weights (``forward(x, return_attention=True)``).

    Attributes:
        logits: ``(batch,)`` one logit per gene.
        bin_attention: ``(batch, marks, bins)`` alpha, sums to 1 over bins for each mark.
        mark_attention: ``(batch, marks)`` beta, sums to 1 over marks.
    """

    logits: torch.Tensor
    bin_attention: torch.Tensor
    mark_attention: torch.Tensor


class BinLevelEncoder(nn.Module):
    """Per-mark BiLSTM over bins + per-mark context attention.

    ``forward(x)``: ``x`` ``(batch, bins, marks)`` -> mark embeddings ``(batch, marks, 2*hidden)``;
    with ``return_attention=True`` also alpha ``(batch, marks, bins)``.
    """

    def __init__(
        self,
        n_marks: int,
        hidden: int = 32,
        dropout: float = 0.0,
        impl: BinLSTMImpl = "auto",
        init_range: float = 0.1,
    ) -> None:
        super().__init__()
        self.lstm = PerMarkBiLSTM(n_marks, hidden, impl=impl)
        self.dropout = Dropout(dropout)
        self.attention = ContextAttention(2 * hidden, n_groups=n_marks, init_range=init_range)
        self.out_dim = 2 * hidden

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        states = self.dropout(self.lstm(x))  # (batch, marks, bins, 2*hidden)
        return self.attention(states, return_weights=return_attention)


class MarkLevelEncoder(nn.Module):
    """BiLSTM over the sequence of mark embeddings + context attention.

    ``forward(e)``: ``e`` ``(batch, marks, in_dim)`` -> gene vector ``(batch, 2*hidden)``; with
    ``return_attention=True`` also beta ``(batch, marks)``.
    """

    def __init__(self, in_dim: int, hidden: int = 16, dropout: float = 0.0, init_range: float = 0.1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, bidirectional=True, batch_first=True)
        self.dropout = Dropout(dropout)
        self.attention = ContextAttention(2 * hidden, init_range=init_range)
        self.out_dim = 2 * hidden

    def forward(
        self, mark_embeddings: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        states, _ = self.lstm(mark_embeddings)  # (batch, marks, 2*hidden)
        return self.attention(self.dropout(states), return_weights=return_attention)


def init_uniform_(module: nn.Module, init_range: float) -> None:
    """Re-initialise every parameter of ``module`` from U(-init_range, init_range) (the paper's init)."""
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-init_range, init_range)


class AttentiveChrome(nn.Module):
    """Hierarchical-attention LSTM classifier (see the module docstring for the architecture).

    ``forward(x)``: ``x`` ``(batch, bins, marks)`` float32 -> logits ``(batch,)``.
    ``forward(x, return_attention=True)`` -> :class:`AttentionOutput` with alpha and beta.
    The logit is also the regression output when trained with MSE.
    """

    def __init__(self, config: AttentiveChromeConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.bin_encoder = BinLevelEncoder(c.n_marks, c.bin_hidden, c.dropout, c.bin_lstm_impl, c.init_range)
        self.mark_encoder = MarkLevelEncoder(self.bin_encoder.out_dim, c.mark_hidden, c.dropout, c.init_range)
        self.head = nn.Linear(self.mark_encoder.out_dim, 1)
        init_uniform_(self, c.init_range)

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> torch.Tensor | AttentionOutput:
        check_input(x, self.config.n_bins, self.config.n_marks, "AttentiveChrome")
        if not return_attention:
            return self.head(self.mark_encoder(self.bin_encoder(x))).squeeze(-1)
        mark_embeddings, alpha = self.bin_encoder(x, return_attention=True)
        gene_vector, beta = self.mark_encoder(mark_embeddings, return_attention=True)
        return AttentionOutput(self.head(gene_vector).squeeze(-1), alpha, beta)
