"""``explain(model, inputs, method, target, baseline) -> Attribution``: one interface for every method.

Example::

    from hmviz.explain import explain, make_baseline
    x = prepare_inputs(card, dataset)                       # (genes, bins, marks), transformed
    base = make_baseline("zeros", transform=card.transform, shape=x.shape[1:])
    attr = explain(model, x[:10], "integrated_gradients", baseline=base)
    attr.by_mark()                                          # (genes, marks), signed
    attr.convergence_delta                                  # (genes,): sum(attr) - (f(x) - f(baseline))

Every result declares what its numbers are (``attr.kind``: additive, sensitivity or removal; see
``hmviz.explain._methods.KINDS``) and their unit (``attr.unit``: logit, or log2 fold change).
Integrated Gradients doubles its steps until each gene's gap is within 1% of its output difference
(or ``max_steps`` is reached: ``attr.cap_reached``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from hmviz.errors import HmvizError
from hmviz.explain._baselines import BASELINES, Baseline, as_baseline, make_baseline
from hmviz.explain._methods import (
    METHODS,
    attribute,
    attribute_converged,
    check_method,
    forward_in_batches,
    resolve_options,
    rows_budget,
)
from hmviz.explain._model_view import ScalarOutput, as_inputs, eval_view, grad_context, has_recurrent, model_device
from hmviz.explain._regions import Region, data_regions, orientation_note, region_masks
from hmviz.explain._sentence import gene_sentence

log = logging.getLogger(__name__)


def long_table(
    values: np.ndarray, genes: Sequence[str], marks: Sequence[str], bin_starts_bp: np.ndarray | None
) -> pd.DataFrame:
    """Long table ``gene, bin, bin_start_bp, mark, attribution`` from ``values`` (genes, bins, marks).

    ``bin_start_bp`` is missing (``<NA>``) when the positions are unknown: never invented."""
    g, b, m = values.shape
    if len(genes) != g or len(marks) != m:
        raise HmvizError(f"{len(genes)} gene ids and {len(marks)} marks given for values shaped {values.shape}.")
    starts = (
        np.tile(np.repeat(np.asarray(bin_starts_bp, dtype=np.int64), m), g)
        if bin_starts_bp is not None
        else pd.array([pd.NA] * (g * b * m), dtype="Int64")
    )
    return pd.DataFrame(
        {
            "gene": np.repeat(np.asarray(list(genes), dtype=object), b * m),
            "bin": np.tile(np.repeat(np.arange(b), m), g),
            "bin_start_bp": starts,
            "mark": np.tile(np.asarray(list(marks), dtype=object), g * b),
            "attribution": values.reshape(-1).astype(np.float64),
        }
    )


@dataclass
class Attribution:
    """Attributions of one output per gene to every bin and mark of its input.

    Attributes:
        values: float32 ``(genes, bins, marks)``, in output (logit) units.
        method: key of :data:`METHODS`.
        baseline: the :class:`Baseline` used (name, description, values), or None (saliency).
        convergence_delta: ``(genes,)`` ``sum(values) - (outputs - baseline_outputs)`` for additive
            methods without SmoothGrad (IG, GradientShap: in expectation, DeepLift); else None.
        target: what was attributed, in words (e.g. ``"logit"``, ``"ranking score"``).
        outputs: ``(genes,)`` the model output at the inputs.
        baseline_outputs: ``(genes,)`` the output at the baseline (mean over a baseline distribution),
            or None.
        options: the method options used (defaults filled in).
        marks, gene_ids, bin_starts_bp: labels for the axes, when known.
        unit: the output's unit: ``"logit"`` (classifier logit, ranker score).
        work: ``(genes,)`` steps (IG) or samples (GradientShap) used per gene after refinement.
        cap_reached: ``(genes,)`` True where the cap was reached before the gap fell within tolerance.
    """

    values: np.ndarray
    method: str
    baseline: Baseline | None
    convergence_delta: np.ndarray | None
    target: str
    outputs: np.ndarray
    baseline_outputs: np.ndarray | None = None
    options: dict = field(default_factory=dict)
    marks: tuple[str, ...] | None = None
    gene_ids: tuple[str, ...] | None = None
    bin_starts_bp: np.ndarray | None = None
    unit: str = "logit"
    work: np.ndarray | None = None
    cap_reached: np.ndarray | None = None

    @property
    def label(self) -> str:
        return METHODS[self.method].label + (" + SmoothGrad" if self.options.get("smoothgrad") else "")

    @property
    def exactness(self) -> str:
        return METHODS[self.method].exactness

    @property
    def kind(self) -> str:
        """What the numbers are: ``"additive"``, ``"sensitivity"`` or ``"removal"``."""
        return METHODS[self.method].kind

    @property
    def additive(self) -> bool:
        """The values add up to ``outputs - baseline_outputs`` (up to the gap); False with SmoothGrad,
        whose noise breaks that sum."""
        return self.convergence_delta is not None

    @property
    def value_title(self) -> str:
        return METHODS[self.method].value_title(self.unit)

    @property
    def max_abs_delta(self) -> float | None:
        return None if self.convergence_delta is None else float(np.max(np.abs(self.convergence_delta)))

    def by_mark(self) -> np.ndarray:
        """Signed sum over bins: ``(genes, marks)``."""
        return self.values.sum(axis=1)

    def by_region(self, bin_starts_bp: np.ndarray | None = None, regions: Sequence[Region] | None = None) -> np.ndarray:
        """Signed sums over the bins of each region: ``(genes, regions, marks)``.

        ``bin_starts_bp`` defaults to the one stored; ``regions`` to :func:`tss_regions` (upstream
        < -1 kb, promoter -1 kb..+1 kb, downstream >= +1 kb).
        """
        starts = self._starts(bin_starts_bp)
        masks = region_masks(starts, tuple(regions) if regions is not None else None).astype(self.values.dtype)
        return np.einsum("gbm,rb->grm", self.values, masks)

    def sentence(
        self,
        gene: int = 0,
        *,
        bin_size: float | None = None,
        strand_aware: bool | None = None,
        regions: Sequence[Region] | None = None,
    ) -> str:
        """One sentence for gene ``gene`` (a row of :attr:`values`): the mark with the largest total
        contribution and where it acts, in words true for the method (see ``_sentence.gene_sentence``)."""
        starts = self._starts(None)
        if bin_size is None:
            bin_size = float(np.min(np.diff(starts))) if len(starts) > 1 else 1.0
        fitted = data_regions(starts, bin_size, strand_aware, tuple(regions) if regions is not None else None)
        contrib = self.by_region(regions=fitted)[gene]
        name = self.gene_ids[gene] if self.gene_ids else str(gene)
        marks = self.marks or tuple(f"mark{k + 1}" for k in range(self.values.shape[2]))
        base = None if self.baseline_outputs is None else float(self.baseline_outputs[gene])
        return gene_sentence(
            name,
            float(self.outputs[gene]),
            base,
            marks,
            fitted,
            contrib,
            method=self.method,
            unit=self.unit,
            what="output" if self.target == "logit" else self.target,
            gap=None if self.convergence_delta is None else float(self.convergence_delta[gene]),
            note=orientation_note(strand_aware) if len(fitted) > 1 else "",
        )

    def _starts(self, bin_starts_bp: np.ndarray | None) -> np.ndarray:
        starts = self.bin_starts_bp if bin_starts_bp is None else np.asarray(bin_starts_bp)
        if starts is None:
            raise HmvizError("Bin positions are unknown; pass bin_starts_bp (dataset.bin_starts_bp()).")
        if len(starts) != self.values.shape[1]:
            raise HmvizError(f"{len(starts)} bin positions given for {self.values.shape[1]} bins.")
        return starts

    def to_frame(
        self,
        gene_ids: Sequence[str] | None = None,
        marks: Sequence[str] | None = None,
        bin_starts_bp: np.ndarray | None = None,
    ) -> pd.DataFrame:
        """Long table ``gene, bin, bin_start_bp, mark, attribution`` (genes x bins x marks rows)."""
        g, _, m = self.values.shape
        genes = list(gene_ids if gene_ids is not None else self.gene_ids or [str(i) for i in range(g)])
        mark_names = list(marks if marks is not None else self.marks or [f"mark{k + 1}" for k in range(m)])
        known = bin_starts_bp is not None or self.bin_starts_bp is not None
        return long_table(self.values, genes, mark_names, self._starts(bin_starts_bp) if known else None)


def resolve_baseline(baseline, spec_name: str, n_bins: int, n_marks: int, **make_kw) -> Baseline | None:
    """A :class:`Baseline` for method ``spec_name`` from a name, a Baseline, an array or None."""
    spec = METHODS[spec_name]
    if not spec.needs_baseline:
        return None
    if baseline is None:
        baseline = "zeros"
    if isinstance(baseline, str):
        if baseline not in BASELINES:
            raise HmvizError(f"Unknown baseline '{baseline}'. Valid baselines: {', '.join(BASELINES)}.")
        kw = {k: v for k, v in make_kw.items() if v is not None}
        kw.setdefault("shape", (n_bins, n_marks))
        baseline = make_baseline(baseline, **kw)
    base = as_baseline(baseline, n_bins, n_marks)
    if base.is_distribution and spec_name != "gradient_shap":
        raise HmvizError(
            f"The '{base.name}' baseline is a sample of {base.values.shape[0]} genes, a distribution for "
            f"GradientShap; {spec.label} compares with one baseline input. Choose gradient_shap, or the "
            "'train_mean' baseline."
        )
    return base


def explain(
    model: nn.Module,
    inputs: torch.Tensor | np.ndarray,
    method: str = "integrated_gradients",
    target: int | None = None,
    baseline: str | Baseline | np.ndarray | None = "zeros",
    *,
    reference_inputs: torch.Tensor | np.ndarray | None = None,
    labels: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    transform=None,
    marks: Sequence[str] | None = None,
    gene_ids: Sequence[str] | None = None,
    bin_starts_bp: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> Attribution:
    """Attribute ``model``'s output for each gene to the bins and marks of its input.

    Args:
        model: a single-gene model (``forward(x) -> (B,)`` logits; extras behind flags are ignored)
            or a ranker (its ``score(x)`` is attributed). Never modified: no ``train()``, no
            parameter or flag changes; a model left in training mode is explained via an eval copy.
        inputs: ``(genes, bins, marks)`` (or one gene ``(bins, marks)``) in the model's input space
            (``hmviz.inference.prepare_inputs``).
        method: a key of :data:`METHODS`.
        target: output column for models with several outputs per gene (``(B, 2)`` two-class
            logits default to column 1, "high"); None for one logit per gene.
        baseline: a name in :data:`BASELINES` (built with :func:`make_baseline` from
            ``reference_inputs``, ``labels``, ``expression``, ``transform``), a :class:`Baseline`, or an
            array ``(bins, marks)`` (``(K, bins, marks)`` for GradientShap). Ignored by saliency.
        marks, gene_ids, bin_starts_bp: axis labels stored in the result.
        progress: ``progress(genes_done, genes_total)`` after each chunk of genes.
        **options: the method's options (``METHODS[method].options``, e.g. ``n_steps=50``,
            ``window_bins=10``) and the common ones: ``smoothgrad``, ``noise_stdev`` (input units),
            ``nt_samples``, ``seed``, ``rows_per_pass``.

    Returns:
        :class:`Attribution` with values ``(genes, bins, marks)`` and, for IG / GradientShap /
        DeepLift, the per-gene convergence delta.
    """
    spec = check_method(method, model)
    opts = resolve_options(method, options)
    x = as_inputs(inputs)
    n_genes, n_bins, n_marks = x.shape
    base = resolve_baseline(
        baseline,
        method,
        n_bins,
        n_marks,
        reference_inputs=reference_inputs,
        labels=labels,
        expression=expression,
        transform=transform,
    )
    view = eval_view(model)
    forward = ScalarOutput(view, target)
    what = "ranking score" if hasattr(view, "score") else "logit"
    if target is not None:
        what = f"output {target}"
    recurrent = has_recurrent(view)
    device = model_device(view)
    x = x.to(device)
    budget = rows_budget(opts, recurrent)
    b = base.tensor(x) if base is not None else None
    # Outputs first: a shape mismatch is reported for the genes given, not for Captum's expanded batch.
    out = forward_in_batches(forward, [x if b is None else torch.cat([x, b])], budget)
    outputs = out[:n_genes]
    baseline_outputs = delta = work = cap_reached = None
    if b is not None:  # the output at the baseline (its mean over a distribution), the same for every gene
        baseline_outputs = np.full(n_genes, out[n_genes:].mean())
    with grad_context(view):
        if spec.additive and b is not None and not opts["smoothgrad"]:
            done = attribute_converged(
                forward, (x,), (b,), method, opts, recurrent, outputs - baseline_outputs, progress
            )
            (values,), delta, work, cap_reached = done.values, done.gap, done.work, done.cap_reached
        else:
            (values,) = attribute(forward, (x,), (b,) if b is not None else None, method, opts, recurrent, progress)
    return Attribution(
        values=values.float().cpu().numpy(),
        method=method,
        baseline=base,
        convergence_delta=delta,
        target=what,
        outputs=outputs,
        baseline_outputs=baseline_outputs,
        options=opts,
        marks=tuple(marks) if marks is not None else None,
        gene_ids=tuple(str(g) for g in gene_ids) if gene_ids is not None else None,
        bin_starts_bp=np.asarray(bin_starts_bp) if bin_starts_bp is not None else None,
        work=work,
        cap_reached=cap_reached,
    )


__all__ = ["Attribution", "explain", "long_table", "resolve_baseline"]
