"""Attention weights of the attention models, per gene and per expression class, and how well they
agree with attributions.

Attention (AttentiveChrome's alpha over bins and beta over marks) is a model-internal weighting,
not an attribution: it says where the model looked, not what moved the output. Show it next to an
attribution, and use :func:`attention_attribution_agreement` to see how far the two agree.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hmviz.errors import DataError, HmvizError, ModelError
from hmviz.explain._model_view import as_inputs, eval_view, model_device, require_module
from hmviz.explain.attributions import Attribution

ATTENTION_BATCH = 512


def _accepts(module: nn.Module, flag: str) -> bool:
    try:
        return flag in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def has_attention(model: nn.Module) -> bool:
    """Whether ``model`` has attention weights to show: AttentiveChrome, a ranker built on it (its
    :func:`attention_maps`), or DeepDiff (:func:`attention_maps_per_cell`)."""
    return any(
        candidate is not None and _accepts(candidate, "return_attention")
        for candidate in (model, getattr(model, "encoder", None))
    ) or _accepts(model, "return_all")


def _attention_module(model: nn.Module) -> nn.Module:
    """The module whose ``forward(x, return_attention=True)`` gives alpha and beta."""
    for candidate in (model, getattr(model, "encoder", None)):
        if candidate is not None and _accepts(candidate, "return_attention"):
            return candidate
    if _accepts(model, "return_all"):
        raise ModelError(f"{type(model).__name__} reads two cells; use attention_maps_per_cell(model, x_a, x_b).")
    raise ModelError(
        f"{type(model).__name__} has no attention weights to show. Attention maps exist for AttentiveChrome, "
        "rankers built on it and DeepDiff (attention_maps_per_cell); for other models use an attribution "
        "method (e.g. integrated_gradients)."
    )


def _alpha_beta(out) -> tuple[torch.Tensor, torch.Tensor]:
    alpha = getattr(out, "bin_attention", None)
    beta = getattr(out, "mark_attention", None)
    if alpha is None and isinstance(out, (tuple, list)) and len(out) >= 3:
        alpha, beta = out[1], out[2]
    if alpha is None or beta is None:
        raise ModelError(
            f"The model returned {type(out).__name__} with return_attention=True; expected "
            "(logits, bin_attention, mark_attention)."
        )
    return alpha, beta


def attention_maps(
    model: nn.Module, inputs: torch.Tensor | np.ndarray, batch_size: int = ATTENTION_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """Attention of an attention model for every gene.

    Args:
        model: AttentiveChrome, or a ranker whose ``encoder`` is one. Never modified.
        inputs: ``(genes, bins, marks)`` in the model's input space.

    Returns:
        ``alpha`` ``(genes, marks, bins)`` (sums to 1 over bins for each mark) and ``beta``
        ``(genes, marks)`` (sums to 1 over marks), float32.
    """
    module = _attention_module(require_module(model))
    module = eval_view(module)
    x = as_inputs(inputs).to(model_device(module))
    alphas, betas = [], []
    with torch.inference_mode():
        for start in range(0, x.shape[0], batch_size):
            alpha, beta = _alpha_beta(module(x[start : start + batch_size], return_attention=True))
            alphas.append(alpha.float().cpu())
            betas.append(beta.float().cpu())
    return torch.cat(alphas).numpy(), torch.cat(betas).numpy()


def attention_maps_per_cell(
    model: nn.Module, x_a: torch.Tensor | np.ndarray, x_b: torch.Tensor | np.ndarray, batch_size: int = ATTENTION_BATCH
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Attention of a two-cell model (DeepDiff) per cell: ``{cell key: (alpha, beta)}``.

    Keys are the model's own: ``"a"`` and ``"b"`` for DeepDiff's ``aux`` variant, ``"b-a"`` for
    ``raw_d`` (one AttentiveChrome on the difference). Shapes as in :func:`attention_maps`.
    """
    require_module(model)
    if not _accepts(model, "return_all"):
        raise ModelError(f"{type(model).__name__} does not expose per-cell attention; use attention_maps(model, x).")
    view = eval_view(model)
    device = model_device(view)
    xa, xb = as_inputs(x_a).to(device), as_inputs(x_b).to(device)
    parts: dict[str, tuple[list, list]] = {}
    with torch.inference_mode():
        for start in range(0, xa.shape[0], batch_size):
            out = view(xa[start : start + batch_size], xb[start : start + batch_size], return_all=True)
            for key, cell in out.attention.items():
                alphas, betas = parts.setdefault(key, ([], []))
                alphas.append(cell.bin.float().cpu())
                betas.append(cell.mark.float().cpu())
    return {key: (torch.cat(a).numpy(), torch.cat(b).numpy()) for key, (a, b) in parts.items()}


@dataclass
class ClassAttention:
    """Attention averaged per expression class.

    Attributes:
        classes: class names (``"low"``, ``"high"`` for 0/1 labels).
        alpha: ``(classes, marks, bins)`` mean alpha; beta: ``(classes, marks)`` mean beta.
        counts: genes per class.
    """

    classes: tuple[str, ...]
    alpha: np.ndarray
    beta: np.ndarray
    counts: np.ndarray


def attention_by_class(alpha: np.ndarray, beta: np.ndarray, labels: np.ndarray) -> ClassAttention:
    """Mean alpha ``(marks, bins)`` and beta ``(marks,)`` per class of ``labels`` ``(genes,)``."""
    alpha, beta, labels = np.asarray(alpha), np.asarray(beta), np.asarray(labels)
    if alpha.ndim != 3 or beta.ndim != 2 or not (len(alpha) == len(beta) == len(labels)):
        raise DataError(
            f"Expected alpha (genes, marks, bins), beta (genes, marks) and labels (genes,); got "
            f"{alpha.shape}, {beta.shape} and {labels.shape}."
        )
    values = np.unique(labels)
    names = {0: "low", 1: "high"} if set(values.tolist()) <= {0, 1} else {}
    return ClassAttention(
        classes=tuple(names.get(v, str(v)) for v in values.tolist()),
        alpha=np.stack([alpha[labels == v].mean(axis=0) for v in values]),
        beta=np.stack([beta[labels == v].mean(axis=0) for v in values]),
        counts=np.array([(labels == v).sum() for v in values]),
    )


def rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of ``a[..., :]`` with ``b[..., :]`` along the last axis (average
    ranks for ties); NaN where either row is constant."""
    from scipy.stats import rankdata

    ra = rankdata(a, axis=-1)
    rb = rankdata(b, axis=-1)
    ra -= ra.mean(axis=-1, keepdims=True)
    rb -= rb.mean(axis=-1, keepdims=True)
    denom = np.sqrt((ra**2).sum(axis=-1) * (rb**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (ra * rb).sum(axis=-1) / np.where(denom > 0, denom, 1.0), np.nan)


@dataclass
class AttentionAgreement:
    """Rank agreement between attention and |attribution|.

    Attributes:
        level: ``"marks"`` (beta vs per-mark |attribution|) or ``"bins"`` (alpha vs |attribution|
            over the bins of each mark).
        per_gene: ``(genes,)`` Spearman rho (for bins: the mean over marks); NaN where undefined.
        mean: mean of ``per_gene`` over the genes where it is defined.
        per_gene_mark: ``(genes, marks)`` rho over bins per mark (level ``"bins"`` only).
    """

    level: str
    per_gene: np.ndarray
    mean: float
    per_gene_mark: np.ndarray | None = None


def attention_attribution_agreement(attention: np.ndarray, attribution: Attribution | np.ndarray) -> AttentionAgreement:
    """Spearman correlation between attention and the magnitude of an attribution.

    Args:
        attention: beta ``(genes, marks)`` or alpha ``(genes, marks, bins)``.
        attribution: an :class:`Attribution` or its values ``(genes, bins, marks)``.
    """
    values = attribution.values if isinstance(attribution, Attribution) else np.asarray(attribution)
    attention = np.asarray(attention, dtype=np.float64)
    if values.ndim != 3:
        raise HmvizError(f"attribution values must be (genes, bins, marks); got {values.shape}.")
    magnitude = np.abs(values.astype(np.float64))
    g, n_bins, n_marks = magnitude.shape
    if attention.shape == (g, n_marks):
        rho = rowwise_spearman(attention, magnitude.sum(axis=1))
        per_gene_mark = None
        level = "marks"
    elif attention.shape == (g, n_marks, n_bins):
        per_gene_mark = rowwise_spearman(attention, magnitude.transpose(0, 2, 1))
        with np.errstate(invalid="ignore"):
            rho = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in per_gene_mark])
        level = "bins"
    else:
        raise HmvizError(
            f"Attention shaped {attention.shape} does not match attributions for {g} genes, "
            f"{n_bins} bins and {n_marks} marks: give beta (genes, marks) or alpha (genes, marks, bins)."
        )
    finite = np.isfinite(rho)
    return AttentionAgreement(level, rho, float(rho[finite].mean()) if finite.any() else float("nan"), per_gene_mark)
