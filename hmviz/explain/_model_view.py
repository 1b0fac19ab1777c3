"""How the explainers see a model: one tensor out, eval mode, the model itself untouched.

* Captum needs a callable that returns one tensor; hmviz models may return extras (attention)
  behind flags, rankers score genes with ``score(x)``. :class:`ScalarOutput` and
  :class:`PairDifference` wrap them.
* Explanations never call ``model.train()`` and never change the given model: app sessions share
  it. A model found in training mode is explained through an eval-mode copy.
* Gradients through ``nn.LSTM`` on CUDA need cuDNN switched off (cuDNN's RNN backward requires
  training mode); :func:`grad_context` does that for the duration of the attribution only.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn

from hmviz.errors import HmvizError, ModelError

log = logging.getLogger(__name__)


def as_inputs(x) -> torch.Tensor:
    """A float32 tensor ``(genes, bins, marks)`` from a tensor or array (one gene ``(bins, marks)`` too).

    Always a new tensor object (detached), so setting ``requires_grad`` on it never reaches the caller's."""
    t = torch.as_tensor(x.detach() if torch.is_tensor(x) else np.asarray(x), dtype=torch.float32)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[0] == 0:
        raise HmvizError(f"inputs must be shaped (genes, bins, marks) with at least one gene; got {tuple(t.shape)}.")
    return t


def require_module(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"{type(model).__name__} is not a PyTorch model, so gradient and perturbation attributions do not "
            "apply to it. Explain one of the neural models (DeepChrome, AttentiveChrome, the ranker, ...)."
        )
    return model


def has_recurrent(model: nn.Module) -> bool:
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def eval_view(model: nn.Module) -> nn.Module:
    """``model`` if every module is in eval mode, else an eval-mode deep copy (the model is shared)."""
    if any(m.training for m in model.modules()):
        log.warning(
            "%s is in training mode (dropout active); explaining an eval-mode copy instead.", type(model).__name__
        )
        return copy.deepcopy(model).eval()
    return model


@contextlib.contextmanager
def grad_context(model: nn.Module) -> Iterator[None]:
    """Gradients on (even inside ``torch.inference_mode``), and cuDNN off for LSTMs on CUDA."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        if has_recurrent(model) and model_device(model).type == "cuda":
            stack.enter_context(torch.backends.cudnn.flags(enabled=False))
        yield


def _required_positional(fn) -> int:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(
        p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params
    )


def is_two_input(model: nn.Module) -> bool:
    """True for models whose forward compares two inputs and that cannot score one gene (DeepDiff)."""
    return not hasattr(model, "score") and _required_positional(model.forward) >= 2


def scorer(model: nn.Module) -> Callable[..., object]:
    """What scores one gene: ``model.score`` for rankers, else the model itself."""
    score = getattr(model, "score", None)
    return model if score is None else score


def first_tensor(out, what: str) -> torch.Tensor:
    """The logits from whatever a model returns (a tensor, a named tuple led by logits, a dict)."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict) and "logits" in out:
        return out["logits"]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise ModelError(f"{what} returned {type(out).__name__}; expected a tensor of logits.")


def select_output(out: torch.Tensor, target: int | None, what: str) -> torch.Tensor:
    """``(B,)`` from ``(B,)``, ``(B, 1)``, or column ``target`` of ``(B, C)``."""
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim == 1:
        if target not in (None, 0):
            raise ModelError(f"{what} has one output per gene; target must be None (got {target}).")
        return out
    if out.ndim == 2:
        if target is None:
            if out.shape[1] != 2:
                raise ModelError(f"{what} has {out.shape[1]} outputs per gene; choose one with target=INDEX.")
            target = 1  # two-class logits (DeepChrome-style): the "high" class
        if not 0 <= int(target) < out.shape[1]:
            raise ModelError(f"target {target} is out of range for {out.shape[1]} outputs per gene.")
        return out[:, int(target)]
    raise ModelError(f"{what} returned an output shaped {tuple(out.shape)}; expected one value per gene.")


class ScalarOutput(nn.Module):
    """``forward(x) -> (B,)``: the logit (or ranking score) of each gene in ``x`` (B, bins, marks)."""

    def __init__(self, model: nn.Module, target: int | None = None) -> None:
        super().__init__()
        require_module(model)
        if is_two_input(model):
            raise ModelError(
                f"{type(model).__name__} compares two inputs (e.g. two cell types) and cannot score one gene "
                "alone; explain it with explain_pair(model, x_a, x_b)."
            )
        self.model = model
        self.target = target
        self.what = type(model).__name__

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = scorer(self.model)
        return select_output(first_tensor(fn(x), self.what), self.target, self.what)


class PairDifference(nn.Module):
    """``forward(x_a, x_b) -> (B,)``.

    * Models that score one gene (rankers, classifiers): ``s(x_a) - s(x_b)``, both genes scored in
      one batched call.
    * Two-input models (DeepDiff): ``model(x_a, x_b)``, e.g. the log fold change of B over A.
    """

    def __init__(self, model: nn.Module, target: int | None = None) -> None:
        super().__init__()
        require_module(model)
        self.model = model
        self.target = target
        self.what = type(model).__name__
        self.two_input = is_two_input(model)

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        if self.two_input:
            return select_output(first_tensor(self.model(x_a, x_b), self.what), self.target, self.what)
        fn = scorer(self.model)
        # Score both genes in one call (one pass of every module, as DeepLift requires), ordered
        # [A first half, B first half, A second half, B second half]: DeepLift feeds
        # [inputs; baselines] and its rules split every module's batch into halves, which must pair
        # each input row with its own baseline row.
        n = x_a.shape[0]
        h = n // 2
        s = fn(torch.cat([x_a[:h], x_b[:h], x_a[h:], x_b[h:]]))
        s = select_output(first_tensor(s, self.what), self.target, self.what)
        return torch.cat([s[:h] - s[h : 2 * h], s[2 * h : 2 * h + n - h] - s[2 * h + n - h :]])
