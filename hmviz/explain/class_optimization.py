"""DeepChrome's class-optimisation map: the input that the model finds most "high" (or "low").

As in DeepChrome's ``7_viz.lua``: start from X ~ U(0, 1) shaped (bins, marks), take RMSprop steps
(lr 0.1) on ``NLL(target class) + l2 * ||X||^2`` with the model in eval mode (dropout inactive),
then clamp at 0 and divide by the maximum to get a (marks, bins) heat map. For a model with one
logit per gene, NLL of "high" is ``softplus(-logit)`` and of "low" ``softplus(logit)``; a ranker's
score is treated as that logit.

The optimised input lives in the model's input space (e.g. standardised log1p reads), so the map
shows where the model wants signal above the level of zero in that space. Only the input is
optimised: the model's parameters get no gradients and nothing about the model is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hmviz.errors import HmvizError
from hmviz.explain._model_view import ScalarOutput, eval_view, first_tensor, grad_context, model_device, scorer


@dataclass
class ClassOptimizationMap:
    """Result of :func:`class_optimization_map`.

    Attributes:
        map: ``(marks, bins)`` in [0, 1]: the optimised input clamped at 0 and divided by its maximum
            (all zeros if nothing is positive).
        input: ``(bins, marks)`` the optimised input itself, unclamped, in the model's input space.
        logit: the model's output at ``input``.
        target: ``"high"`` or ``"low"``.
        losses: the objective after every step (NLL + L2).
    """

    map: np.ndarray
    input: np.ndarray
    logit: float
    target: str
    losses: np.ndarray


def class_optimization_map(
    model: nn.Module,
    n_bins: int,
    n_marks: int,
    target: Literal["high", "low"] = "high",
    l2: float = 0.009,
    steps: int = 1000,
    lr: float = 0.1,
    seed: int = 1,
) -> ClassOptimizationMap:
    """The input that maximises the ``target`` class under L2 regularisation (DeepChrome's map).

    Args:
        model: a single-gene model (``(B,)`` logits or ``(B, 2)`` class logits) or a ranker.
        n_bins, n_marks: the input shape the model was built for.
        target: ``"high"`` or ``"low"`` expression.
        l2: weight of ``||X||^2`` (DeepChrome: 0.009).
        steps: RMSprop steps (DeepChrome: 1000); lr: its learning rate (0.1).
        seed: seeds the U(0, 1) start (a private generator; global random state is untouched).
    """
    if target not in ("high", "low"):
        raise HmvizError(f"target must be 'high' or 'low'; got '{target}'.")
    if steps < 1 or lr <= 0 or l2 < 0:
        raise HmvizError(f"Need steps >= 1, lr > 0 and l2 >= 0; got steps={steps}, lr={lr}, l2={l2}.")
    view = eval_view(model)  # eval(): dropout inactive, without removing any module
    device = model_device(view)
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand((1, n_bins, n_marks), generator=generator).to(device).requires_grad_(True)
    optimizer = torch.optim.RMSprop([x], lr=lr)
    losses = np.empty(steps)
    fn = scorer(view)
    what = type(view).__name__
    with grad_context(view):
        for step in range(steps):
            out = first_tensor(fn(x), what)
            if out.ndim == 2 and out.shape[1] == 2:  # two-class logits: NLL of the target class
                nll = F.cross_entropy(out, torch.tensor([1 if target == "high" else 0], device=device))
            else:
                logit = out.reshape(-1)[0]
                nll = F.softplus(-logit if target == "high" else logit)
            loss = nll + l2 * (x * x).sum()
            # Gradients for the input only: the model's parameters get none (no .grad, no flags set).
            (grad,) = torch.autograd.grad(loss, [x])
            x.grad = grad
            optimizer.step()
            losses[step] = float(loss.detach())
        with torch.no_grad():
            final = float(ScalarOutput(view, target=None)(x)[0])
    values = x.detach()[0].cpu().numpy()
    heat = np.clip(values.T, 0.0, None)
    peak = heat.max()
    return ClassOptimizationMap(
        map=heat / peak if peak > 0 else heat, input=values, logit=final, target=target, losses=losses
    )
