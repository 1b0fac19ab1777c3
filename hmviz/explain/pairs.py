"""Why does the model rank gene A above gene B? Attributions of the score difference to both genes.

For a ranker (or any model that scores one gene), the explained quantity is
``f(x_A, x_B) = s(x_A) - s(x_B)`` and ``P(A > B) = sigmoid(s_A - s_B)``. Captum attributes it to
both inputs at once (tuple inputs, tuple baselines), so the two genes' attributions together sum
to ``f(x_A, x_B) - f(b_A, b_B)``; with the same baseline for both genes the second term is 0 for a
score model and the attributions share out exactly ``s_A - s_B`` (up to the convergence delta).

For a two-input model (DeepDiff) the same machinery explains ``model(x_A, x_B)``, the predicted
log2 fold change of B over A (e.g. one gene in two cell types).

Summaries are by mark and by region relative to the TSS (upstream, promoter, downstream; the bp
boundaries are parameters and are written into the table and the sentence).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from hmviz.errors import HmvizError
from hmviz.explain._baselines import Baseline
from hmviz.explain._methods import (
    METHODS,
    attribute,
    attribute_converged,
    check_method,
    forward_in_batches,
    output_unit,
    resolve_options,
    rows_budget,
)
from hmviz.explain._model_view import (
    PairDifference,
    ScalarOutput,
    as_inputs,
    eval_view,
    grad_context,
    has_recurrent,
    model_device,
)
from hmviz.explain._regions import (
    PROMOTER_DOWNSTREAM_BP,
    PROMOTER_UPSTREAM_BP,
    Region,
    data_regions,
    orientation_note,
    region_masks,
    tss_regions,
)
from hmviz.explain._sentence import explained_name, pair_sentence
from hmviz.explain.attributions import long_table, resolve_baseline


@dataclass
class PairExplanation:
    """Attributions of ``f(x_A, x_B)`` (score difference, or DeepDiff's fold change) to both inputs.

    Attributes:
        gene_a, gene_b: the names used in the table and the sentence.
        values_a, values_b: float32 ``(bins, marks)`` attributions to A's and B's inputs.
        difference: ``f(x_A, x_B)``: ``s_A - s_B`` or the predicted log2 fold change (B over A).
        baseline_difference: ``f(b_A, b_B)`` (0 for a score model with one baseline for both).
        probability: ``P(A > B) = sigmoid(s_A - s_B)``; None for two-input models.
        score_a, score_b: each gene's score (None for two-input models).
        convergence_delta: ``sum(values_a) + sum(values_b) - (difference - baseline_difference)``
            for additive methods, else None.
        kind: ``"ranking"`` (a ranker's scores), ``"scores"`` (logits of a single-gene classifier
            compared) or ``"differential"`` (a two-input model).
        table: contribution table ``gene, mark, region, region_bp, attribution`` (region sums).
        sentence: one plain-language sentence built from ``table``.
    """

    gene_a: str
    gene_b: str
    values_a: np.ndarray
    values_b: np.ndarray
    difference: float
    baseline_difference: float | None
    probability: float | None
    score_a: float | None
    score_b: float | None
    convergence_delta: float | None
    method: str
    baseline: Baseline | None
    marks: tuple[str, ...]
    bin_starts_bp: np.ndarray
    regions: tuple[Region, ...]
    kind: str
    table: pd.DataFrame
    sentence: str
    x_a: np.ndarray | None = field(repr=False, default=None)
    x_b: np.ndarray | None = field(repr=False, default=None)
    options: dict = field(default_factory=dict)
    unit: str = "logit"
    work: int | None = None
    cap_reached: bool | None = None

    @property
    def label(self) -> str:
        return METHODS[self.method].label + (" + SmoothGrad" if self.options.get("smoothgrad") else "")

    @property
    def additive(self) -> bool:
        """The values add up to ``difference - baseline_difference`` up to :attr:`convergence_delta`."""
        return self.convergence_delta is not None

    @property
    def explained(self) -> str:
        """What is explained, in words: "score difference", ..., "predicted log2 fold change"."""
        return explained_name(self.kind)

    @property
    def attribution_sum(self) -> float:
        return float(self.values_a.astype(np.float64).sum() + self.values_b.astype(np.float64).sum())

    @property
    def value_title(self) -> str:
        return METHODS[self.method].value_title(self.unit)

    def by_mark(self) -> pd.DataFrame:
        """Signed sums over bins: one row per mark, columns gene A, gene B and ``total``."""
        a, b = self.values_a.sum(axis=0), self.values_b.sum(axis=0)
        return pd.DataFrame({self.gene_a: a, self.gene_b: b, "total": a + b}, index=pd.Index(self.marks, name="mark"))

    def by_region(self) -> pd.DataFrame:
        """Signed sums per (mark, region): columns gene A, gene B and ``total`` (their sum)."""
        t = self.table.pivot_table(index=["mark", "region"], columns="gene", values="attribution", sort=False)
        t = t[[self.gene_a, self.gene_b]] if self.gene_a != self.gene_b else t
        t["total"] = t.sum(axis=1)
        return t

    def to_frame(self) -> pd.DataFrame:
        """Long table ``gene, bin, bin_start_bp, mark, attribution`` for both genes (2 x bins x marks rows)."""
        return long_table(
            np.stack([self.values_a, self.values_b]), [self.gene_a, self.gene_b], self.marks, self.bin_starts_bp
        )


def explain_pair(
    model: nn.Module,
    x_a: torch.Tensor | np.ndarray,
    x_b: torch.Tensor | np.ndarray,
    method: str = "integrated_gradients",
    baseline: str | Baseline | np.ndarray | None = "zeros",
    *,
    bin_starts_bp: np.ndarray,
    names: tuple[str, str] = ("A", "B"),
    gene: str | None = None,
    marks: Sequence[str] | None = None,
    promoter_bp: tuple[float, float] = (PROMOTER_UPSTREAM_BP, PROMOTER_DOWNSTREAM_BP),
    regions: Sequence[Region] | None = None,
    bin_size: float | None = None,
    strand_aware: bool | None = None,
    unit: str | None = None,
    target: int | None = None,
    reference_inputs: torch.Tensor | np.ndarray | None = None,
    labels: np.ndarray | None = None,
    expression: np.ndarray | None = None,
    transform=None,
    progress: Callable[[int, int], None] | None = None,
    **options,
) -> PairExplanation:
    """Explain ``f(x_A, x_B)`` (``s_A - s_B`` for score models; ``model(x_A, x_B)`` for DeepDiff).

    Args:
        model: a ranker (``score(x)``), a single-gene model (its logits are compared), or a
            two-input model such as DeepDiff. Never modified.
        x_a, x_b: ``(bins, marks)`` (or ``(1, bins, marks)``) inputs in the model's input space.
        method, baseline, target, **options: as in :func:`hmviz.explain.explain`; the same
            baseline is used for both genes.
        names: how the two inputs are called in the table and the sentence (gene ids or symbols;
            for DeepDiff, the two cell types). ``gene``: for DeepDiff, the gene, named in the sentence.
        bin_starts_bp: bp of each bin's start relative to the TSS (``dataset.bin_starts_bp()``);
            required, since the regions are placed by it.
        marks: mark names in input order (default ``mark1..markM``).
        promoter_bp: ``(upstream, downstream)`` bp bounding the promoter (default 1 kb each way);
            ``regions`` overrides the three regions entirely.
        bin_size, strand_aware: the data's bin size in bp (default: the spacing of ``bin_starts_bp``) and
            whether its bins follow each gene's strand; they decide the regions' names
            (:func:`~hmviz.explain._regions.data_regions`).
        unit: the output's unit (default: log2 fold change for two-input models, else logit).
    """
    spec = check_method(method, model)
    opts = resolve_options(method, options)
    xa, xb = as_inputs(x_a), as_inputs(x_b)
    if xa.shape != xb.shape or xa.shape[0] != 1:
        raise HmvizError(
            f"explain_pair takes one input per gene shaped (bins, marks); got {tuple(xa.shape)} and {tuple(xb.shape)}."
        )
    gene_a, gene_b = (str(n) for n in names)
    if gene_a == gene_b:
        raise HmvizError(f"The two inputs need different names for the table and the sentence; both are '{gene_a}'.")
    _, n_bins, n_marks = xa.shape
    marks = tuple(marks) if marks is not None else tuple(f"mark{k + 1}" for k in range(n_marks))
    if len(marks) != n_marks:
        raise HmvizError(f"{len(marks)} mark names given for inputs with {n_marks} marks.")
    starts = np.asarray(bin_starts_bp)
    if starts.shape != (n_bins,):
        raise HmvizError(f"bin_starts_bp has shape {starts.shape}; expected one position per bin ({n_bins},).")
    if bin_size is None:
        bin_size = float(np.min(np.diff(starts))) if n_bins > 1 else 1.0
    regions = tuple(regions) if regions is not None else tss_regions(*promoter_bp)
    if method == "feature_ablation":  # a whole mark is ablated at once: its effect has no region
        regions = (Region("window", None, None),)
    regions = data_regions(starts, bin_size, strand_aware, regions)
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
    forward = PairDifference(view, target)
    recurrent = has_recurrent(view)
    device = model_device(view)
    xa, xb = xa.to(device), xb.to(device)
    b = base.tensor(xa) if base is not None else None
    budget = rows_budget(opts, recurrent)
    kind = "differential" if forward.two_input else ("ranking" if hasattr(view, "score") else "scores")
    unit = unit or output_unit("differential" if forward.two_input else None)
    score_a = score_b = probability = baseline_difference = delta = None
    if forward.two_input:
        # f at the inputs and at the baseline in one call; for a distribution, over all baseline pairs
        # (GradientShap draws the two baselines independently).
        ba, bb = (xa[:0], xb[:0]) if b is None else (b, b)  # no baseline: the inputs alone
        if b is not None and len(b) > 1:
            ba, bb = b.repeat_interleave(len(b), 0), b.repeat(len(b), 1, 1)
        f = forward_in_batches(forward, [torch.cat([xa, ba]), torch.cat([xb, bb])], budget)
        difference = float(f[0])
        baseline_difference = float(f[1:].mean()) if b is not None else None
    else:
        scores = forward_in_batches(ScalarOutput(view, target), [torch.cat([xa, xb])], budget)
        score_a, score_b = float(scores[0]), float(scores[1])
        difference = score_a - score_b
        probability = 1.0 / (1.0 + math.exp(-difference))
        # Both genes share the baseline (or its distribution): f(b, b) = s(b) - s(b) = 0.
        baseline_difference = 0.0 if b is not None else None
    work = cap_reached = None
    with grad_context(view):
        if b is not None and baseline_difference is not None and spec.additive and not opts["smoothgrad"]:
            done = attribute_converged(
                forward,
                (xa, xb),
                (b, b),
                method,
                opts,
                recurrent,
                np.array([difference - baseline_difference]),
                progress,
            )
            (va, vb), delta = done.values, float(done.gap[0])
            if done.work is not None and done.cap_reached is not None:  # set together (refined methods)
                work, cap_reached = int(done.work[0]), bool(done.cap_reached[0])
        else:
            va, vb = attribute(forward, (xa, xb), (b, b) if b is not None else None, method, opts, recurrent, progress)
    values_a, values_b = va[0].float().cpu().numpy(), vb[0].float().cpu().numpy()

    masks = region_masks(starts, regions).astype(np.float64)  # (regions, bins)
    ra, rb = masks @ values_a.astype(np.float64), masks @ values_b.astype(np.float64)  # (regions, marks)
    signal = masks @ (xa[0] - xb[0]).double().cpu().numpy()
    rows = []
    for name, contrib in ((gene_a, ra), (gene_b, rb)):
        for m, mark in enumerate(marks):
            for r, region in enumerate(regions):
                rows.append((name, mark, region.name, region.span_text, float(contrib[r, m])))
    table = pd.DataFrame(rows, columns=["gene", "mark", "region", "region_bp", "attribution"])
    sentence = pair_sentence(
        gene_a,
        gene_b,
        difference,
        probability,
        marks,
        regions,
        ra,
        rb,
        signal,
        kind,
        gene=gene,
        method=method,
        unit=unit,
        baseline_difference=baseline_difference,
        gap=delta,
        note=orientation_note(strand_aware) if len(regions) > 1 else "",
    )
    return PairExplanation(
        gene_a=gene_a,
        gene_b=gene_b,
        values_a=values_a,
        values_b=values_b,
        difference=difference,
        baseline_difference=baseline_difference,
        probability=probability,
        score_a=score_a,
        score_b=score_b,
        convergence_delta=delta,
        method=method,
        baseline=base,
        marks=marks,
        bin_starts_bp=starts,
        regions=regions,
        kind=kind,
        table=table,
        sentence=sentence,
        x_a=xa[0].cpu().numpy(),
        x_b=xb[0].cpu().numpy(),
        options=opts,
        unit=unit,
        work=work,
        cap_reached=cap_reached,
    )
