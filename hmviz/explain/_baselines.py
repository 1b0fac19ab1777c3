"""Baselines: the reference input an attribution is measured against.

An attribution answers "what in this gene's marks moves the output away from the output at the
baseline", so the baseline is part of the answer and is stored with every result.

All baselines live in the model's **input space** (after the model card's transform, e.g. log1p and
per-mark standardisation). In that space "no reads" is ``transform(0)``, not 0; ``zeros`` therefore
needs the transform (or a precomputed zero-reads input) to mean what its name says.

==========================  ==========================================================  ============
name                        what it is                                                  shape
==========================  ==========================================================  ============
``zeros``                   no reads in any bin: ``transform(0)``                       (bins, marks)
``train_mean``              per-mark, per-bin mean of the reference (training) genes     (bins, marks)
``low_expression_mean``     mean of the low-expression reference genes (label 0, or     (bins, marks)
                            the bottom quartile by expression)
``gene_sample``             K reference genes drawn at random (GradientShap)             (K, bins, marks)
==========================  ==========================================================  ============
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hmviz.errors import DataError, HmvizError

GENE_SAMPLE_SIZE = 32
#: The baseline the CLI and the app use unless told otherwise. Chosen by measurement on real data
#: (``bench/bench_reference.py``, quoted in docs/explanations.md): "no reads" is the lowest input a
#: gene can have, so against it any reads raise a gene's score. On K562 (E123, 600 genes), promoter
#: H3K4me3 and gene-body H3K36me3 lowered the score of 0 of 20 silent test genes against "no reads"
#: and of 20 of 20 against the training mean (ranker-deepchrome and deepchrome alike); over 400
#: expressed-vs-silent pairs every reference gave promoter H3K4me3 to the expressed gene in 93-95%.
#: The training mean is defined for every model (DeepDiff too), which low_expression_mean is not.
DEFAULT_BASELINE = "train_mean"
#: One line for the pages: why the default is what it is.
DEFAULT_BASELINE_WHY = (
    "The default reference is the training genes' mean: a mark counts where a gene has more or "
    "less of it than an average gene. Against 'No reads' any reads raise a score: on real K562 "
    "data promoter H3K4me3 lowered none of 20 silent genes' scores against no reads, all 20 "
    "against the mean."
)


@dataclass(frozen=True)
class BaselineSpec:
    """A baseline the app lists: its label, what it means, and what it needs."""

    label: str
    description: str
    needs_reference: bool  # needs the reference (training) genes' inputs
    distribution: bool  # a sample of inputs (for GradientShap) rather than one input


BASELINES: dict[str, BaselineSpec] = {
    "zeros": BaselineSpec("No reads", "zero reads in every bin and mark (the transform applied to 0)", False, False),
    "train_mean": BaselineSpec(
        "Training mean",
        "per-mark, per-bin mean of the training genes (what sets this gene apart from an average gene)",
        True,
        False,
    ),
    "low_expression_mean": BaselineSpec(
        "Low-expression mean",
        "mean of the low-expression training genes (label 0, or the bottom quartile "
        "by expression): why is this gene on",
        True,
        False,
    ),
    "gene_sample": BaselineSpec(
        "Sample of genes",
        "a random sample of training genes, as a distribution of baselines for GradientShap",
        True,
        True,
    ),
}


@dataclass(frozen=True)
class Baseline:
    """A baseline in the model's input space.

    Attributes:
        name: key of :data:`BASELINES` (or ``"custom"``).
        description: what it means, in words (shown next to the attribution).
        values: float32 array ``(bins, marks)``, or ``(K, bins, marks)`` for a distribution.
    """

    name: str
    description: str
    values: np.ndarray

    @property
    def is_distribution(self) -> bool:
        return self.values.ndim == 3

    @property
    def label(self) -> str:
        """Its name for people (``"Training mean"``, as the app lists it); a custom baseline's ``name``."""
        spec = BASELINES.get(self.name)
        return spec.label if spec is not None else self.name

    def tensor(self, like: torch.Tensor) -> torch.Tensor:
        """The values as a tensor on ``like``'s device and dtype, with a leading batch axis."""
        t = torch.as_tensor(self.values, dtype=like.dtype, device=like.device)
        return t if self.is_distribution else t.unsqueeze(0)


def _zero_reads(transform, n_bins: int, n_marks: int) -> np.ndarray:
    zeros = np.zeros((1, n_bins, n_marks), dtype=np.float32)
    if isinstance(transform, dict):  # the model card's "transform" entry
        from hmviz.data.transforms import SignalTransform

        transform = SignalTransform.from_dict(transform)
    fn: Callable = transform.transform if hasattr(transform, "transform") else transform
    out = np.asarray(fn(zeros), dtype=np.float32)
    if out.shape != zeros.shape:
        raise HmvizError(f"The transform turned a (1, {n_bins}, {n_marks}) input into {out.shape}.")
    return out[0]


def make_baseline(
    name: str,
    reference_inputs: np.ndarray | torch.Tensor | None = None,
    labels: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    *,
    transform=None,
    zero_reads: np.ndarray | torch.Tensor | None = None,
    shape: tuple[int, int] | None = None,
    n_genes: int = GENE_SAMPLE_SIZE,
    seed: int = 0,
) -> Baseline:
    """Build the baseline ``name`` (a key of :data:`BASELINES`) in the model's input space.

    Args:
        reference_inputs: ``(genes, bins, marks)`` transformed inputs of the reference genes, normally
            the training split. Needed by every baseline except ``zeros``.
        labels, expression: per reference gene (``low_expression_mean``: genes with label 0 when
            labels are given, otherwise the bottom quartile of expression).
        transform: for ``zeros``: the input transform (a ``SignalTransform``, the model card's
            ``"transform"`` dict, or a callable on ``(genes, bins, marks)`` arrays). ``zeros`` is
            then ``transform(0)``, i.e. no reads.
        zero_reads: alternatively, the precomputed ``(bins, marks)`` input for zero reads.
            Without ``transform`` and ``zero_reads``, ``zeros`` is 0 in the input space, which means
            no reads only for untransformed inputs (the description says so).
        shape: ``(bins, marks)``, needed by ``zeros`` when no reference inputs are given.
        n_genes: K for ``gene_sample`` (at most the number of reference genes).
        seed: for ``gene_sample``.
    """
    if name not in BASELINES:
        raise HmvizError(f"Unknown baseline '{name}'. Valid baselines: {', '.join(BASELINES)}.")
    ref = None
    if reference_inputs is not None:
        ref = np.asarray(
            reference_inputs.detach().cpu() if torch.is_tensor(reference_inputs) else reference_inputs, dtype=np.float32
        )
        if ref.ndim != 3 or ref.shape[0] == 0:
            raise DataError(f"reference_inputs must be shaped (genes, bins, marks) with genes > 0; got {ref.shape}.")
    desc = BASELINES[name].description

    if name == "zeros":
        if zero_reads is not None:
            values = np.asarray(
                zero_reads.detach().cpu() if torch.is_tensor(zero_reads) else zero_reads, dtype=np.float32
            )
            values = values.reshape(values.shape[-2:])  # (bins, marks) or (1, bins, marks)
        else:
            if shape is not None:
                n_bins, n_marks = shape
            elif ref is not None:
                n_bins, n_marks = ref.shape[1:]
            else:
                raise HmvizError("The 'zeros' baseline needs its shape: pass reference_inputs or shape=(bins, marks).")
            if transform is not None:
                values = _zero_reads(transform, n_bins, n_marks)
            else:
                values = np.zeros((n_bins, n_marks), dtype=np.float32)
                desc = (
                    "zero in the model's input space (no transform was given, so this is 'no reads' only "
                    "if the inputs are untransformed counts)"
                )
        return Baseline(name, desc, values)

    if ref is None:  # every baseline but 'zeros' needs_reference
        raise HmvizError(f"The '{name}' baseline is computed from the training genes; pass reference_inputs.")
    if name == "train_mean":
        return Baseline(name, f"{desc}; {ref.shape[0]} genes", ref.mean(axis=0))

    if name == "low_expression_mean":
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (ref.shape[0],):
                raise DataError(f"labels has shape {labels.shape}; expected ({ref.shape[0]},).")
            low = labels == 0
            rule = "label 0"
        elif expression is not None:
            expression = np.asarray(expression, dtype=np.float64)
            if expression.shape != (ref.shape[0],):
                raise DataError(f"expression has shape {expression.shape}; expected ({ref.shape[0]},).")
            finite = np.isfinite(expression)
            low = finite & (expression <= np.quantile(expression[finite], 0.25)) if finite.any() else finite
            rule = "bottom quartile of expression"
        else:
            raise DataError(
                "The 'low_expression_mean' baseline needs labels or expression values for the "
                "reference genes; this data has neither. Choose 'train_mean' or 'zeros'."
            )
        if not low.any():
            raise DataError(
                f"No low-expression genes ({rule}) among the {ref.shape[0]} reference genes; choose another baseline."
            )
        return Baseline(name, f"mean of {int(low.sum())} low-expression training genes ({rule})", ref[low].mean(axis=0))

    # gene_sample
    k = int(min(max(1, n_genes), ref.shape[0]))
    pick = np.sort(np.random.default_rng(seed).choice(ref.shape[0], size=k, replace=False))
    return Baseline(name, f"{k} training genes drawn at random (seed {seed}), a distribution of baselines", ref[pick])


def as_baseline(baseline, n_bins: int, n_marks: int) -> Baseline:
    """A :class:`Baseline` from a Baseline, an array ``(bins, marks)``/``(K, bins, marks)`` or a scalar."""
    if isinstance(baseline, Baseline):
        values = baseline.values
        out = baseline
    else:
        if torch.is_tensor(baseline):
            baseline = baseline.detach().cpu().numpy()
        values = np.asarray(baseline, dtype=np.float32)
        if values.ndim == 3 and values.shape[0] == 1:  # one input with a batch axis, not a sample of one
            values = values[0]
        if values.ndim == 0:
            values = np.full((n_bins, n_marks), float(values), dtype=np.float32)
        out = Baseline("custom", "a baseline given by the caller", values)
    if values.shape[-2:] != (n_bins, n_marks) or values.ndim not in (2, 3):
        raise HmvizError(
            f"The baseline is shaped {values.shape}; expected ({n_bins}, {n_marks}) or (K, {n_bins}, {n_marks})."
        )
    return out
