"""One bidirectional LSTM per histone mark, with independent weights, run without per-mark models.

AttentiveChrome gives every mark its own ``LSTM(input 1 -> hidden H, bidirectional)`` over that
mark's bins. :class:`PerMarkBiLSTM` stores the M LSTMs' weights stacked along a leading mark axis
(``weight_hh_l0[m]`` is mark m's ``nn.LSTM.weight_hh_l0``) and offers three exact ways to run them:

* ``"native"``: the compiled kernel of ``_bilstm_native.cpp`` (built once per machine by
  :mod:`hmviz.models._native`; CPU, float32/float64): each of the 2M LSTMs runs its whole
  recurrence, forward and backward through time, in one compiled loop on one of torch's threads.
  About 2x the speed of ``"grouped"`` on CPU (``bench/bench_models.py speed``; README).
* ``"grouped"``: all 2M (mark, direction) LSTMs advance together, ONE batched matrix product
  (``torch.bmm`` over the 2M LSTMs) per time step, with the backward pass through time written out
  by hand in :class:`_GroupedBiLSTM` (so autograd records one node, not 100 steps of small ops).
  Each LSTM keeps its own weights; the batch axis of the product is the (mark, direction) axis.
* ``"per_mark"``: M calls of the fused LSTM kernel, one per mark, with that mark's weights.
* ``"auto"`` (the models' default): ``"native"`` on CPU where it could be built, else
  ``"grouped"``; ``"per_mark"`` on other devices, where
  the vendor's fused kernel (cuDNN) runs each mark in one launch while the grouped recurrence would
  launch a dozen small kernels per time step.
* ``"block"``: ONE call of an ``LSTM(M -> M*H)`` whose weights are assembled, at every forward,
  as block-diagonal matrices from the stacked per-mark weights. Within each gate block
  (PyTorch's gate order i, f, g, o, each ``M*H`` rows), hidden unit ``m*H + j`` only sees input
  column m and hidden units ``m*H .. m*H+H-1``, so the M LSTMs stay mathematically independent.
  The off-block entries are constant zeros, not parameters, so no gradient or optimiser step can
  break the structure.

All give the same numbers up to float rounding and share one ``state_dict``; they differ only
in speed (on CPU the block call does M times the recurrent FLOPs; see the config's ``bin_lstm_impl``).
"""

from __future__ import annotations

import math
import typing
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call
from torch.ops import aten

from hmviz.errors import ModelError
from hmviz.models import _native

BinLSTMImpl = Literal["auto", "native", "grouped", "per_mark", "block"]
BIN_LSTM_IMPLS: tuple[str, ...] = typing.get_args(BinLSTMImpl)

_DIRECTIONS = ("", "_reverse")


class PerMarkBiLSTM(nn.Module):
    """M independent bidirectional LSTMs (input size 1, hidden size H), one per mark.

    Args:
        n_marks: M, the number of marks (independent LSTMs).
        hidden_size: H per direction; each bin's state is 2H (forward half, then backward half).
        impl: ``"auto"``, ``"native"``, ``"grouped"``, ``"per_mark"`` or ``"block"`` (see the
            module docstring); same result any way.

    Input ``x``: ``(batch, bins, marks)``. Output: ``(batch, marks, bins, 2H)`` where
    ``out[:, m]`` equals ``nn.LSTM(1, H, bidirectional=True, batch_first=True)`` applied to
    ``x[:, :, m:m+1]`` with mark m's weights (``{name: p[m]}`` for every parameter).
    """

    weight_hh_l0: nn.Parameter  # one of the 8 stacked parameters registered in __init__ (nn.LSTM's names)

    def __init__(self, n_marks: int, hidden_size: int, impl: BinLSTMImpl = "auto") -> None:
        super().__init__()
        if impl not in BIN_LSTM_IMPLS:
            raise ValueError(f"impl must be one of {', '.join(BIN_LSTM_IMPLS)}; got {impl!r}")
        self.n_marks = n_marks
        self.hidden_size = hidden_size
        self.impl = impl
        self._auto_cpu: str | None = None  # what "auto" runs on the CPU, fixed at its first resolution
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

    def resolved_impl(self, device: torch.device) -> str:
        """The implementation a forward on ``device`` uses ("auto" resolved; see the module docstring)."""
        if self.impl == "auto":
            if device.type != "cpu":
                return "per_mark"
            if self._auto_cpu is None:  # asked once per model, so a running model never switches implementation
                self._auto_cpu = "native" if _native.preferred() else "grouped"
            return self._auto_cpu
        if self.impl == "native":
            if device.type != "cpu":
                raise ModelError(
                    f"bin_lstm_impl='native' runs on the CPU only (the input is on {device}); use 'auto' or 'per_mark'"
                )
            if _native.load() is None:
                raise ModelError(
                    f"bin_lstm_impl='native' is not available here: {_native.unavailable_reason()}; "
                    "use 'auto' or 'grouped'"
                )
        return self.impl

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, bins, _ = x.shape
        m, h = self.n_marks, self.hidden_size
        impl = self.resolved_impl(x.device)
        if impl == "native":
            params = [getattr(self, name) for name in _PARAM_ORDER]
            with torch.autocast(x.device.type, enabled=False):  # fp32/fp64 only, as "grouped"
                x = x.to(params[0].dtype).contiguous()
                if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
                    return _NativeBiLSTM.apply(x, *params)
                with torch.no_grad():
                    w_ih, w_hh, bias = _native_weights(*params)
                    return _native_forward(x, w_ih, w_hh, bias, store=False)[0]
        if impl == "grouped":
            params = [getattr(self, name) for name in _PARAM_ORDER]
            # fp32 (or fp64) throughout, also under autocast: the time loop writes into preallocated
            # buffers, and mixed precision would change the recurrence's numerics anyway.
            with torch.autocast(x.device.type, enabled=False):
                dtype = params[0].dtype
                x = x.to(dtype)
                if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
                    return _GroupedBiLSTM.apply(x, *params)
                with torch.no_grad():
                    return _grouped_states(_grouped_recurrence(x, _grouped_weights(*params), store=False)[0], m, h)
        if impl == "block":
            shell = self._lstm_shell(m, m * h)
            states, _ = functional_call(shell, self.block_parameters(), (x,))
            # (batch, bins, direction*mark*unit) -> (batch, mark, bins, direction*unit)
            return states.reshape(batch, bins, 2, m, h).permute(0, 3, 1, 2, 4).reshape(batch, m, bins, 2 * h)
        shell = self._lstm_shell(1, h)
        per_mark = [functional_call(shell, self.mark_parameters(i), (x[:, :, i : i + 1],))[0] for i in range(m)]
        return torch.stack(per_mark, dim=1)  # (batch, mark, bins, 2H)


# -- "grouped": the 2M LSTMs as one batched recurrence, backward through time by hand -------------
#
# Layout. The LSTMs are indexed g = 0..2M-1: g < M is mark g read forwards, g >= M is mark g-M read
# backwards (its input flipped in time, its states flipped back at the end). Every per-step tensor
# is (G, batch, .), stored time-major (T, G, batch, .) so that step t is one contiguous block.
# Gates are reordered from PyTorch's (i, f, g, o) to (i, f, o, g) so the three sigmoid gates are
# adjacent. The input (size 1) and the biases ride along the recurrent product: the matmul's left
# operand at step t is [h_{t-1}, x_t, 1] (width H+2), its right operand [W_hh | W_ih | b_ih+b_hh]^T,
# so one bmm per step gives every LSTM's four gate pre-activations.
#
# Speed on CPU comes from keeping the element-wise work to a few vectorised ops per step: the cell
# candidate uses tanh(z) = 2 sigmoid(2z) - 1 (its weight columns are doubled, so ONE sigmoid covers
# all four gates; PyTorch's tanh measured several times slower than its sigmoid here), and tanh(c)
# likewise. The backward keeps the forward's activations and computes every gate's gradient with
# one ``sigmoid_backward`` over the four gates (the cell candidate's slot then holds dL/dz / 4, a
# factor restored on the weights it multiplies).

_PARAM_ORDER = tuple(f"{kind}_l0{d}" for d in _DIRECTIONS for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


def _gate_order(h: int, device: torch.device) -> torch.Tensor:
    """Row index taking PyTorch's gate blocks (i, f, g, o) to (i, f, o, g)."""
    unit = torch.arange(h, device=device)
    return torch.cat([unit, unit + h, unit + 3 * h, unit + 2 * h])


def _grouped_weights(w_ih, w_hh, b_ih, b_hh, w_ih_r, w_hh_r, b_ih_r, b_hh_r) -> torch.Tensor:
    """``(G, 4H, H+2)``: per LSTM ``[W_hh | W_ih | b_ih + b_hh]``, gate rows in (i, f, o, g) order."""
    h = w_hh.shape[-1]
    bias = torch.cat([b_ih + b_hh, b_ih_r + b_hh_r]).unsqueeze(-1)
    stacked = torch.cat([torch.cat([w_hh, w_hh_r]), torch.cat([w_ih, w_ih_r]), bias], dim=2)
    return stacked[:, _gate_order(h, w_hh.device)]


def _grouped_recurrence(x: torch.Tensor, weights: torch.Tensor, store: bool):
    """Run the G LSTMs over ``x`` ``(batch, T, M)``. Returns ``(HX, saved)``.

    ``HX`` ``(T+1, G, batch, H+2)``: row t holds ``[h_{t-1}, x_t, 1]`` (row T: ``h_{T-1}``).
    ``saved`` (``store=True``, for the backward): gate activations ``Z`` (sigmoids, i f o and
    sigmoid(2 z_g)), the cell candidates ``g``, cells ``c`` (with c_{-1} = 0 first), ``tanh(c)``, and
    ``o * (1 - tanh(c)^2)``, all time-major. Without ``store`` only the states are kept.
    """
    batch, steps, m = x.shape
    g_count, h = weights.shape[0], weights.shape[-1] - 2
    w = weights.transpose(1, 2).contiguous()  # (G, H+2, 4H)
    w[..., 3 * h :] *= 2  # the cell candidate's pre-activation doubled: tanh(z) = 2 sigmoid(2z) - 1
    hx = x.new_zeros(steps + 1, g_count, batch, h + 2)
    x_t = x.permute(1, 2, 0)  # (T, M, batch)
    hx[:steps, :m, :, h] = x_t
    hx[:steps, m:, :, h] = x_t.flip(0)
    hx[..., h + 1] = 1.0
    n = steps if store else 1  # without store, step t reuses slot 0 (and cells ping-pong in 0/1)
    gates = x.new_empty(n, g_count, batch, 4 * h)
    cand = x.new_empty(n, g_count, batch, h)
    cells = x.new_zeros(n + 1, g_count, batch, h)
    tanh_c = x.new_empty(n, g_count, batch, h)
    d_cell = x.new_empty(n, g_count, batch, h) if store else None
    scratch = x.new_empty(g_count, batch, h)
    minus_one = x.new_full((g_count, batch, h), -1.0)
    z_all, i_all, f_all, o_all, s_all = (
        gates.unbind(0),
        *(gates[..., k * h : (k + 1) * h].unbind(0) for k in range(4)),
    )
    cand_all, cell_all, tanh_all = cand.unbind(0), cells.unbind(0), tanh_c.unbind(0)
    rows, states = hx.unbind(0), hx[..., :h].unbind(0)
    for t in range(steps):
        k = t if store else 0
        c_prev, c_new = (cell_all[t], cell_all[t + 1]) if store else (cell_all[t % 2], cell_all[1 - t % 2])
        torch.bmm(rows[t], w, out=z_all[k])
        z_all[k].sigmoid_()
        torch.add(minus_one, s_all[k], alpha=2, out=cand_all[k])  # g = tanh(z_g)
        torch.mul(f_all[k], c_prev, out=c_new)
        c_new.addcmul_(i_all[k], cand_all[k])  # c = f c_prev + i g
        torch.mul(c_new, 2, out=scratch).sigmoid_()
        torch.add(minus_one, scratch, alpha=2, out=tanh_all[k])  # tanh(c)
        torch.mul(o_all[k], tanh_all[k], out=states[t + 1])  # h = o tanh(c)
        if d_cell is not None:  # store
            aten.tanh_backward.grad_input(o_all[k], tanh_all[k], grad_input=d_cell[k])  # o (1 - tanh(c)^2)
    return hx, ((gates, cand, cells, tanh_c, d_cell) if store else None)


def _grouped_states(hx: torch.Tensor, m: int, h: int) -> torch.Tensor:
    """``(batch, M, T, 2H)`` (forward half, then backward half) from ``HX``."""
    out = hx[1:, :, :, :h]  # (T, G, batch, H)
    forward, backward = out[:, :m], out[:, m:].flip(0)
    return torch.cat([forward.permute(2, 1, 0, 3), backward.permute(2, 1, 0, 3)], dim=-1)


class _GroupedBiLSTM(torch.autograd.Function):
    """``PerMarkBiLSTM`` with ``impl="grouped"``: inputs ``x`` and the 8 stacked parameters."""

    @staticmethod
    def forward(ctx, x, *params):
        weights = _grouped_weights(*params)
        hx, saved = _grouped_recurrence(x, weights, store=True)
        ctx.save_for_backward(weights, hx, *saved)
        return _grouped_states(hx, x.shape[2], params[1].shape[-1])

    @staticmethod
    def backward(ctx, grad):
        weights, hx, gates, cand, cells, tanh_c, d_cell = ctx.saved_tensors
        steps, g_count, batch, h = tanh_c.shape
        m = g_count // 2
        grad = grad.contiguous()
        # dL/dh_t from above, time-major per LSTM; dh accumulates the recurrent part in place
        d_h = torch.cat([grad[..., :h].permute(2, 1, 0, 3), grad[..., h:].permute(2, 1, 0, 3).flip(0)], dim=1)
        w_back = weights[..., : h + 1].clone()  # (G, 4H, H+1): [W_hh | W_ih]
        w_back[:, 3 * h :] *= 4  # see d_gates' cell-candidate slot below
        d_rows = grad.new_zeros(steps + 1, g_count, batch, h + 1)  # [dL/dh_{t-1} recurrent, dL/dx_t]
        d_weights = grad.new_zeros(g_count, 4 * h, h + 2)
        d_c = grad.new_zeros(g_count, batch, h)
        factors = grad.new_empty(g_count, batch, 4 * h)  # dL/d(gate value), times 1/4 for g (below)
        d_gates = grad.new_empty(g_count, batch, 4 * h)
        f_i, f_f, f_o, f_g = (factors[..., k * h : (k + 1) * h] for k in range(4))
        z_all, i_all, f_all = gates.unbind(0), gates[..., :h].unbind(0), gates[..., h : 2 * h].unbind(0)
        cand_all, cell_all, tanh_all, dc_all = cand.unbind(0), cells.unbind(0), tanh_c.unbind(0), d_cell.unbind(0)
        dh_all, d_rows_all, d_rec, rows = d_h.unbind(0), d_rows.unbind(0), d_rows[..., :h].unbind(0), hx.unbind(0)
        d_gates_t = d_gates.transpose(1, 2)
        for t in range(steps - 1, -1, -1):
            dh = dh_all[t].add_(d_rec[t + 1])
            d_c.addcmul_(dh, dc_all[t])  # through h = o tanh(c)
            torch.mul(dh, tanh_all[t], out=f_o)
            torch.mul(d_c, cand_all[t], out=f_i)
            torch.mul(d_c, cell_all[t], out=f_f)  # cell_all[t] is c_{t-1}
            torch.mul(d_c, i_all[t], out=f_g)
            # s (1 - s) for every slot: the gates' sigmoid derivative; for the candidate,
            # g = 2 s - 1 with s = sigmoid(2 z) gives dg/dz = 4 s (1 - s), so its slot is dL/dz / 4
            aten.sigmoid_backward.grad_input(factors, z_all[t], grad_input=d_gates)
            d_c.mul_(f_all[t])
            torch.bmm(d_gates, w_back, out=d_rows_all[t])
            d_weights.baddbmm_(d_gates_t, rows[t])
        d_weights[:, 3 * h :] *= 4
        d_weights = d_weights[:, torch.argsort(_gate_order(h, grad.device))]
        d_whh, d_wih, d_b = d_weights[..., :h], d_weights[..., h : h + 1], d_weights[..., h + 1]
        d_x = d_rows[:steps, :, :, h]  # (T, G, batch)
        d_x = (d_x[:, :m] + d_x[:, m:].flip(0)).permute(2, 0, 1)
        # parameter order: _PARAM_ORDER (forward direction's four, then the reverse direction's)
        return (d_x, d_wih[:m], d_whh[:m], d_b[:m], d_b[:m], d_wih[m:], d_whh[m:], d_b[m:], d_b[m:])


# -- "native": the compiled kernel (_bilstm_native.cpp) ---------------------------------------------


def _native_weights(w_ih, w_hh, b_ih, b_hh, w_ih_r, w_hh_r, b_ih_r, b_hh_r):
    """The kernel's ``(G, 4H)`` input weights, ``(G, 4H, H)`` recurrent weights and ``(G, 4H)`` biases."""
    w_ih_all = torch.cat([w_ih, w_ih_r]).squeeze(-1).contiguous()
    w_hh_all = torch.cat([w_hh, w_hh_r]).contiguous()
    bias = torch.cat([b_ih + b_hh, b_ih_r + b_hh_r]).contiguous()
    return w_ih_all, w_hh_all, bias


def _native_forward(x, w_ih, w_hh, bias, store: bool):
    """The kernel's forward: ``[out]``, or with ``store`` ``[out, gates, cells, tanh_c, states]``."""
    return _native.load().forward(x, w_hh.transpose(1, 2).contiguous(), w_ih, bias, store)


class _NativeBiLSTM(torch.autograd.Function):
    """``PerMarkBiLSTM`` with ``impl="native"``: inputs ``x`` and the 8 stacked parameters."""

    @staticmethod
    def forward(ctx, x, *params):
        w_ih, w_hh, bias = _native_weights(*params)
        out, *saved = _native_forward(x, w_ih, w_hh, bias, store=True)
        ctx.save_for_backward(x, w_hh, w_ih, *saved)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, w_hh, w_ih, gates, cells, tanh_c, states = ctx.saved_tensors
        m = x.shape[2]
        d_whh, d_wih, d_b, d_xg = _native.load().backward(
            grad.contiguous(), x, w_hh, w_ih, gates, cells, tanh_c, states
        )
        d_wih = d_wih.unsqueeze(-1)
        d_x = (d_xg[:m] + d_xg[m:].flip(1)).permute(2, 1, 0)  # (G, T, batch) -> (batch, T, M)
        # parameter order: _PARAM_ORDER (forward direction's four, then the reverse direction's)
        return (d_x, d_wih[:m], d_whh[:m], d_b[:m], d_b[:m], d_wih[m:], d_whh[m:], d_b[m:], d_b[m:])
