"""One bidirectional LSTM per histone mark, with independent weights, run without per-mark models.

AttentiveChrome gives every mark its own ``LSTM(input 1 -> hidden H, bidirectional)`` over that
mark's bins. :class:`PerMarkBiLSTM` stores the M LSTMs' weights stacked along a leading mark axis
(``weight_hh_l0[m]`` is mark m's ``nn.LSTM.weight_hh_l0``) and offers two exact ways to run them:

* ``"per_mark"``: M calls of the fused LSTM kernel, one per mark, with that mark's weights.
* ``"block"``: ONE call of an ``LSTM(M -> M*H)`` whose weights are assembled, at every forward,
  as block-diagonal matrices from the stacked per-mark weights. Within each gate block
  (PyTorch's gate order i, f, g, o, each ``M*H`` rows), hidden unit ``m*H + j`` only sees input
  column m and hidden units ``m*H .. m*H+H-1``, so the M LSTMs stay mathematically independent.
  The off-block entries are constant zeros, not parameters, so no gradient or optimiser step can
  break the structure.

Both give the same numbers and share one ``state_dict``; they differ only in speed (on CPU the
block call does M times the recurrent FLOPs; see the config's ``bin_lstm_impl``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call

BinLSTMImpl = Literal["per_mark", "block"]

_DIRECTIONS = ("", "_reverse")


class PerMarkBiLSTM(nn.Module):
    """M independent bidirectional LSTMs (input size 1, hidden size H), one per mark.

    Args:
        n_marks: M, the number of marks (independent LSTMs).
        hidden_size: H per direction; each bin's state is 2H (forward half, then backward half).
        impl: ``"per_mark"`` or ``"block"`` (see the module docstring); same result either way.

    Input ``x``: ``(batch, bins, marks)``. Output: ``(batch, marks, bins, 2H)`` where
    ``out[:, m]`` equals ``nn.LSTM(1, H, bidirectional=True, batch_first=True)`` applied to
    ``x[:, :, m:m+1]`` with mark m's weights (``{name: p[m]}`` for every parameter).
    """

    def __init__(self, n_marks: int, hidden_size: int, impl: BinLSTMImpl = "per_mark") -> None:
        super().__init__()
        if impl not in ("per_mark", "block"):
            raise ValueError(f"impl must be 'per_mark' or 'block', got {impl!r}")
        self.n_marks = n_marks
        self.hidden_size = hidden_size
        self.impl = impl
        m, h = n_marks, hidden_size
        bound = 1.0 / math.sqrt(h)  # nn.LSTM's default init; the models re-initialise anyway
        for d in _DIRECTIONS:
            self.register_parameter(f"weight_ih_l0{d}", nn.Parameter(torch.empty(m, 4 * h, 1).uniform_(-bound, bound)))
            self.register_parameter(f"weight_hh_l0{d}", nn.Parameter(torch.empty(m, 4 * h, h).uniform_(-bound, bound)))
            self.register_parameter(f"bias_ih_l0{d}", nn.Parameter(torch.empty(m, 4 * h).uniform_(-bound, bound)))
            self.register_parameter(f"bias_hh_l0{d}", nn.Parameter(torch.empty(m, 4 * h).uniform_(-bound, bound)))

    def extra_repr(self) -> str:
        return f"n_marks={self.n_marks}, hidden_size={self.hidden_size}, bidirectional=True, impl={self.impl!r}"

    def mark_parameters(self, mark: int) -> dict[str, torch.Tensor]:
        """Mark ``mark``'s weights, named and shaped as in ``nn.LSTM(1, H, bidirectional=True)``."""
        return {name: p[mark] for name, p in self.named_parameters(recurse=False)}

    @torch.no_grad()
    def load_mark_lstm(self, mark: int, lstm: nn.LSTM) -> None:
        """Copy a separate ``nn.LSTM(1, H, bidirectional=True)``'s weights into mark ``mark``."""
        for name, p in self.named_parameters(recurse=False):
            p[mark].copy_(getattr(lstm, name))

    def block_parameters(self) -> dict[str, torch.Tensor]:
        """Weights of the equivalent single ``nn.LSTM(M, M*H, bidirectional=True)``, block-diagonal."""
        m, h = self.n_marks, self.hidden_size
        ref = self.weight_hh_l0
        eye = torch.eye(m, dtype=ref.dtype, device=ref.device)
        out: dict[str, torch.Tensor] = {}
        for name, p in self.named_parameters(recurse=False):
            if name.startswith("weight_ih"):
                # (mark, gate*unit, 1) -> [gate, mark, unit]; row gate*M*H + mark*H + unit, column mark
                w = p.reshape(m, 4, h).permute(1, 0, 2)
                out[name] = torch.einsum("gmj,mn->gmjn", w, eye).reshape(4 * m * h, m)
            elif name.startswith("weight_hh"):
                # (mark, gate*unit, unit') -> [gate, mark, unit, unit']; nonzero only for the same mark
                w = p.reshape(m, 4, h, h).permute(1, 0, 2, 3)
                out[name] = torch.einsum("gmjk,mn->gmjnk", w, eye).reshape(4 * m * h, m * h)
            else:
                out[name] = p.reshape(m, 4, h).permute(1, 0, 2).reshape(4 * m * h)
        return out

    def _lstm_shell(self, input_size: int, hidden_size: int) -> nn.LSTM:
        # A weightless nn.LSTM (meta device) run through torch.func.functional_call with our
        # weights. A fresh shell per forward keeps concurrent forwards (threads sharing one cached
        # model) from swapping weights into each other's call.
        return nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True, device="meta")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, bins, _ = x.shape
        m, h = self.n_marks, self.hidden_size
        if self.impl == "block":
            shell = self._lstm_shell(m, m * h)
            states, _ = functional_call(shell, self.block_parameters(), (x,))
            # (batch, bins, direction*mark*unit) -> (batch, mark, bins, direction*unit)
            return states.reshape(batch, bins, 2, m, h).permute(0, 3, 1, 2, 4).reshape(batch, m, bins, 2 * h)
        shell = self._lstm_shell(1, h)
        per_mark = [functional_call(shell, self.mark_parameters(i), (x[:, :, i : i + 1],))[0] for i in range(m)]
        return torch.stack(per_mark, dim=1)  # (batch, mark, bins, 2H)
