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
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from hmviz.errors import HmvizError
from hmviz.explain._baselines import Baseline
from hmviz.explain._methods import METHODS, attribute, check_method, forward_in_batches, resolve_options, rows_budget
from hmviz.explain._model_view import (PairDifference, ScalarOutput, as_inputs, eval_view, grad_context,
                                      has_recurrent, model_device)
from hmviz.explain._regions import (PROMOTER_DOWNSTREAM_BP, PROMOTER_UPSTREAM_BP, Region, format_bp, region_masks,
                                    tss_regions)
from hmviz.explain.attributions import resolve_baseline


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
    x_a: np.ndarray = field(repr=False, default=None)
    x_b: np.ndarray = field(repr=False, default=None)
    options: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return METHODS[self.method].label + (" + SmoothGrad" if self.options.get("smoothgrad") else "")

    def by_mark(self) -> pd.DataFrame:
        """Signed sums over bins: one row per mark, columns gene A, gene B and ``total``."""
        a, b = self.values_a.sum(axis=0), self.values_b.sum(axis=0)
        return pd.DataFrame({self.gene_a: a, self.gene_b: b, "total": a + b},
                            index=pd.Index(self.marks, name="mark"))

    def by_region(self) -> pd.DataFrame:
        """Signed sums per (mark, region): columns gene A, gene B and ``total`` (their sum)."""
        t = self.table.pivot_table(index=["mark", "region"], columns="gene", values="attribution", sort=False)
        t = t[[self.gene_a, self.gene_b]] if self.gene_a != self.gene_b else t
        t["total"] = t.sum(axis=1)
        return t

    def to_frame(self) -> pd.DataFrame:
        """Long table ``gene, bin, bin_start_bp, mark, attribution`` for both genes (2 x bins x marks rows)."""
        n_bins, n_marks = self.values_a.shape
        genes = np.repeat(np.asarray([self.gene_a, self.gene_b], dtype=object), n_bins * n_marks)
        values = np.concatenate([self.values_a.reshape(-1), self.values_b.reshape(-1)]).astype(np.float64)
        return pd.DataFrame({
            "gene": genes,
            "bin": np.tile(np.repeat(np.arange(n_bins), n_marks), 2),
            "bin_start_bp": np.tile(np.repeat(np.asarray(self.bin_starts_bp, dtype=np.int64), n_marks), 2),
            "mark": np.tile(np.asarray(self.marks, dtype=object), 2 * n_bins),
            "attribution": values,
        })


def _fmt(v: float) -> str:
    return f"{v:+.0f}" if abs(v) >= 100 else f"{v:+.2g}"


def _region_phrase(region: Region) -> str:
    if region.start_bp is None and region.end_bp is None:
        return "across the window"
    if region.name == "promoter" and region.start_bp is not None and region.end_bp is not None:
        return f"at the promoter ({region.bounds})"
    if region.name == "upstream" and region.start_bp is None and region.end_bp is not None:
        return f"beyond {format_bp(region.end_bp, signed=False)} upstream"
    if region.name == "downstream" and region.end_bp is None and region.start_bp is not None:
        return f"beyond {format_bp(region.start_bp, signed=False)} downstream"
    return f"in the {region.name} region ({region.bounds})"


def pair_sentence(
    gene_a: str, gene_b: str, difference: float, probability: float | None, marks: Sequence[str],
    regions: Sequence[Region], contrib_a: np.ndarray | None, contrib_b: np.ndarray | None,
    signal_diff: np.ndarray, kind: str = "ranking", max_reasons: int = 2, gene: str | None = None,
) -> str:
    """One sentence naming the winner and the (mark, region) cells that most favour it.

    Args:
        contrib_a, contrib_b: ``(regions, marks)`` attributions to A's and B's inputs; None to state
            the ranking only (for saliency, whose values are slopes, not contributions).
        signal_diff: ``(regions, marks)`` summed input signal of A minus B (sign gives higher/lower).
        kind: ``"ranking"``/``"scores"``: "ranks A above B (P = ...)"; ``"differential"``: "predicts
            GENE higher in B than in A (log2 fold change ...)", where A and B name the two cells and
            ``gene`` the gene (optional).

    A reason is stated as the winner's signal relative to the loser's ("higher H3K4me3 at the
    promoter of A") with its contribution in favour of the winner, in output units. Reasons
    smaller than a quarter of the first are left out.
    """
    if kind == "differential":
        subject = f"{gene} " if gene else "expression "
        if difference == 0:
            return f"The model predicts {subject}equal in {gene_a} and {gene_b} (log2 fold change 0.00)."
        winner, loser, sign = (gene_b, gene_a, 1.0) if difference > 0 else (gene_a, gene_b, -1.0)
        head = (f"The model predicts {subject}higher in {winner} than in {loser} "
                f"(log2 fold change {gene_b} over {gene_a}: {difference:+.2f})")
        of = "in"
    else:
        if difference == 0:
            return f"The model scores {gene_a} and {gene_b} equally (P = 0.50)."
        winner, loser, sign = (gene_a, gene_b, 1.0) if difference > 0 else (gene_b, gene_a, -1.0)
        p = probability if difference > 0 else 1.0 - probability
        head = f"The model ranks {winner} above {loser} (P = {p:.2f})"
        of = "of"
    if contrib_a is None or contrib_b is None:
        return head + "."
    # A positive contribution raises f (favours A for a score model, B's expression for DeepDiff's
    # B over A); multiplying by `sign` turns every value into support for the winner.
    support = sign * (contrib_a + contrib_b)
    # signal_diff is A - B; the winner is A when sign > 0 for scores, B when sign > 0 for DeepDiff.
    winner_minus_loser = signal_diff * (-sign if kind == "differential" else sign)
    order = [np.unravel_index(k, support.shape) for k in np.argsort(-support, axis=None, kind="stable")]
    top = [rm for rm in order[:max_reasons] if support[rm] > 0]
    if not top:
        r, m = np.unravel_index(int(np.argmin(support)), support.shape)
        return (f"{head}, although no single mark and region favours {winner}: every one leans towards "
                f"{loser}, most of all {marks[m]} {_region_phrase(regions[r])} ({_fmt(support[r, m])}).")
    reasons = []
    for k, (r, m) in enumerate(top):
        if k and support[r, m] < 0.25 * support[top[0]]:
            break
        d = winner_minus_loser[r, m]
        word = "higher " if d > 0 else "lower " if d < 0 else ""
        reasons.append(f"{word}{marks[m]} {_region_phrase(regions[r])}"
                       f"{f' {of} {winner}' if k == 0 else ''} ({_fmt(support[r, m])})")
    return f"{head} mainly because of {' and '.join(reasons)}."


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
    """
    spec = check_method(method, model)
    opts = resolve_options(method, options)
    xa, xb = as_inputs(x_a), as_inputs(x_b)
    if xa.shape != xb.shape or xa.shape[0] != 1:
        raise HmvizError(f"explain_pair takes one input per gene shaped (bins, marks); got {tuple(xa.shape)} "
                         f"and {tuple(xb.shape)}.")
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
    regions = tuple(regions) if regions is not None else tss_regions(*promoter_bp)
    if method == "feature_ablation":  # a whole mark is ablated at once: its effect has no region
        regions = (Region("window", None, None),)
    base = resolve_baseline(baseline, method, n_bins, n_marks, reference_inputs=reference_inputs, labels=labels,
                            expression=expression, transform=transform)

    view = eval_view(model)
    forward = PairDifference(view, target)
    recurrent = has_recurrent(view)
    device = model_device(view)
    xa, xb = xa.to(device), xb.to(device)
    b = base.tensor(xa) if base is not None else None
    budget = rows_budget(opts, recurrent)
    kind = "differential" if forward.two_input else ("ranking" if hasattr(view, "score") else "scores")
    score_a = score_b = probability = baseline_difference = delta = None
    if forward.two_input:
        # f at the inputs and at the baseline in one call; for a distribution, over all baseline pairs
        # (GradientShap draws the two baselines independently).
        ba = bb = b[:0] if b is None else b
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
    with grad_context(view):
        va, vb = attribute(forward, (xa, xb), (b, b) if b is not None else None, method, opts, recurrent, progress)
    va, vb = va[0].float().cpu().numpy(), vb[0].float().cpu().numpy()

    if baseline_difference is not None and spec.additive and not opts["smoothgrad"]:
        delta = float(va.astype(np.float64).sum() + vb.astype(np.float64).sum() - (difference - baseline_difference))

    masks = region_masks(starts, regions).astype(np.float64)  # (regions, bins)
    ra, rb = masks @ va.astype(np.float64), masks @ vb.astype(np.float64)  # (regions, marks)
    signal = masks @ (xa[0] - xb[0]).double().cpu().numpy()
    rows = []
    for name, contrib in ((gene_a, ra), (gene_b, rb)):
        for m, mark in enumerate(marks):
            for r, region in enumerate(regions):
                rows.append((name, mark, region.name, region.bounds, float(contrib[r, m])))
    table = pd.DataFrame(rows, columns=["gene", "mark", "region", "region_bp", "attribution"])
    saliency = method == "saliency"  # slopes, not contributions: state the ranking only
    sentence = pair_sentence(gene_a, gene_b, difference, probability, marks, regions, None if saliency else ra,
                             None if saliency else rb, signal, kind, gene=gene)
    return PairExplanation(
        gene_a=gene_a, gene_b=gene_b, values_a=va, values_b=vb, difference=difference,
        baseline_difference=baseline_difference, probability=probability, score_a=score_a, score_b=score_b,
        convergence_delta=delta, method=method, baseline=base, marks=marks, bin_starts_bp=starts, regions=regions,
        kind=kind, table=table, sentence=sentence, x_a=xa[0].cpu().numpy(), x_b=xb[0].cpu().numpy(), options=opts,
    )
