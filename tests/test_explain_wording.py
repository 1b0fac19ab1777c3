"""What each method's numbers are, and a sentence that is true for them, on constructed attributions.

* the registry: every method has a Captum class and a kind; only IG, GradientShap and DeepLift are
  additive, and only additive methods are described with "contribution";
* Integrated Gradients doubles its steps until the gap is within 1% of the output difference, and says
  when it stops at the cap;
* the sentence names the mark with the largest total (not the largest single cell), states ties and
  all-negative cases, adds up for additive methods and ranks for the others;
* regions are named as the data allows: bp spans for coarse bins, left/right without a strand.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from torch import nn

from hmviz.explain import KINDS, METHODS, data_regions, explain, explain_pair, pair_sentence

MARKS = ("H3K4me3", "H3K36me3", "H3K27me3")
STARTS = np.arange(-5000, 5000, 100)  # 100-bp bins, -5 kb .. +5 kb

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fine_regions(strand_aware=True):
    return data_regions(STARTS, 100, strand_aware)  # upstream, promoter, downstream


def cells(**by_mark) -> np.ndarray:
    """``(regions, marks)`` from {mark: (upstream, promoter, downstream)}."""
    out = np.zeros((3, len(MARKS)))
    for mark, values in by_mark.items():
        out[:, MARKS.index(mark)] = values
    return out


# --------------------------------------------------------------------------------- registry
def test_every_method_declares_its_captum_class_and_kind():
    import captum.attr

    for name, spec in METHODS.items():
        assert spec.kind in KINDS, name
        assert isinstance(getattr(captum.attr, spec.captum), type), name
    assert {n for n, s in METHODS.items() if s.additive} == {"integrated_gradients", "gradient_shap", "deeplift"}
    assert METHODS["saliency"].kind == "sensitivity"
    assert METHODS["occlusion"].kind == METHODS["feature_ablation"].kind == "removal"
    for name, spec in METHODS.items():
        words = (spec.value_title("logit") + " " + spec.meaning + " " + spec.exactness).lower()
        if not spec.additive:
            assert "contribution" not in words and not re.search(r"(?<!not )\badds? up to", words), name
    assert METHODS["occlusion"].value_title("log2 fold change") == "effect of removal (log2 fold change)"
    assert METHODS["integrated_gradients"].value_title("logit") == "contribution (logit)"


# ------------------------------------------------------------------- IG refines its own steps
class Curved(nn.Module):
    """score(x) = sum(exp(x)): IG with few left-Riemann steps misses the curvature."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x).sum(dim=(1, 2))


def test_integrated_gradients_doubles_its_steps_until_the_gap_is_within_one_percent():
    x = torch.full((2, 4, 3), 1.5)
    x[1] = 0.8
    base = np.zeros((4, 3), dtype=np.float32)
    attr = explain(Curved(), x, "integrated_gradients", baseline=base, n_steps=2, integration="riemann_left")
    explained = attr.outputs - attr.baseline_outputs
    assert np.all(np.abs(attr.convergence_delta) <= 0.01 * np.abs(explained))
    assert np.all(attr.work > 2) and not attr.cap_reached.any()
    assert attr.values.sum(axis=(1, 2)) == pytest.approx(explained + attr.convergence_delta, rel=1e-5)
    # the same with a cap too low to get there: it stops, and says so
    capped = explain(Curved(), x, "integrated_gradients", baseline=base, n_steps=2, max_steps=8,
                     integration="riemann_left")
    assert capped.cap_reached.all() and np.all(capped.work == 8)
    assert np.all(np.abs(capped.convergence_delta) > 0.01 * np.abs(explained))


def test_pair_explanation_reports_its_steps_and_cap():
    x_a, x_b = torch.full((100, 3), 1.2), torch.zeros(100, 3)
    pe = explain_pair(Curved(), x_a, x_b, baseline=np.full((100, 3), -1.0, dtype=np.float32), bin_starts_bp=STARTS,
                      n_steps=2, integration="riemann_left")
    assert pe.work > 2 and pe.cap_reached is False
    assert abs(pe.convergence_delta) <= 0.01 * abs(pe.difference - pe.baseline_difference)
    capped = explain_pair(Curved(), x_a, x_b, baseline=np.full((100, 3), -1.0, dtype=np.float32),
                          bin_starts_bp=STARTS, n_steps=2, max_steps=4, integration="riemann_left")
    assert capped.cap_reached is True and capped.work == 4


# ---------------------------------------------------------------------------------- sentence
def sentence(contrib_a, contrib_b=None, difference=None, method="integrated_gradients", regions=None, **kw):
    contrib_b = np.zeros_like(contrib_a) if contrib_b is None else contrib_b
    regions = regions or fine_regions()
    if difference is None:
        difference = float(contrib_a.sum() + contrib_b.sum())
    kw.setdefault("gap", 0.0)
    return pair_sentence("A", "B", difference, 1 / (1 + np.exp(-difference)), MARKS, regions, contrib_a, contrib_b,
                         np.ones_like(contrib_a), method=method, **kw)


def test_a_mark_spread_over_regions_beats_a_single_big_cell():
    # H3K27me3: +1.1 in each region (3.3 in total); H3K36me3: one cell of +2.2 (the biggest cell)
    s = sentence(cells(H3K27me3=(1.1, 1.1, 1.1), H3K36me3=(0, 0, 2.2), H3K4me3=(0, 1.5, 0)))
    first = s.split(". ", 1)[1]
    assert first.startswith("H3K27me3 favours A most: +3.30 logit in total (+1.10 upstream (-5 kb to -1 kb), "
                            "+1.10 at the promoter (-1 kb to +1 kb) and +1.10 downstream (+1 kb to +5 kb))"), s
    assert "then H3K36me3 (+2.20) and H3K4me3 (+1.50)" in s
    # the numbers add up: the regions to the mark's total, the marks to the score difference
    assert "All marks together give +7.00 of the +7.00 score difference in A's favour" in s


def test_ties_are_stated_as_ties():
    s = sentence(cells(H3K4me3=(0, 2.0, 0), H3K36me3=(0, 0, 2.0)))
    assert "H3K4me3 and H3K36me3 favour A equally and most (+2.00 logit each)" in s


def test_all_negative_names_the_strongest_opposing_mark():
    # DeepDiff: the predicted change is +0.5 (B over A) although every mark pushes it down: it comes from
    # the model's output at the reference (+1.0)
    contrib = cells(H3K4me3=(-0.1, -0.2, 0), H3K27me3=(0, -0.05, -0.1), H3K36me3=(-0.05, 0, 0))
    s = pair_sentence("K562", "H1", 0.5, None, MARKS, fine_regions(), contrib, np.zeros_like(contrib),
                      np.ones_like(contrib), "differential", gene="GATA1", unit="log2 fold change",
                      baseline_difference=1.0, gap=0.0)
    assert s.startswith("The model predicts GATA1 higher in H1 than in K562")
    assert "no mark favours H1: every one leans towards K562, most of all H3K4me3 (-0.300 log2 fold change" in s
    assert "minus its value at the reference (+1.000)" in s


def test_non_additive_methods_rank_and_never_sum():
    contrib = cells(H3K27me3=(1.1, 1.1, 1.1), H3K36me3=(0, 0, 2.2), H3K4me3=(0, 1.5, 0))
    for method in ("occlusion", "feature_ablation", "saliency"):
        s = sentence(contrib, method=method, difference=6.07)
        after_head = re.sub(r"\([^()]*(kb|bp)\)", "", s.split("logit). ", 1)[1])  # drop the regions' bp spans
        assert not re.search(r"(?<![A-Za-z\d])[+-]?\d", after_head), (method, s)  # ranks, no numbers (marks have digits)
        assert "not shares" in s and not re.search(r"(?<!not )\badds? up to", s) and "in total" not in s
    assert "Ranked by the change in the score difference when a mark is replaced by the reference, H3K27me3" in \
        sentence(contrib, method="occlusion", difference=6.07)


def test_coarse_bins_are_named_by_their_bp_span():
    starts = np.arange(-50_000, 50_000, 10_000)  # 10-kb bins
    regions = data_regions(starts, 10_000, True)
    assert [r.name for r in regions] == ["-50 kb to 0 bp", "0 bp to +10 kb", "+10 kb to +50 kb"]
    s = sentence(np.array([[0.0, 0, 0], [2.0, 0, 0], [0, 0, 0]]), regions=regions)
    assert "at 0 bp to +10 kb from the TSS" in s
    assert not re.search(r"promoter|upstream|downstream", s), s


def test_without_a_strand_positions_are_left_and_right():
    for strand_aware in (None, False):
        regions = fine_regions(strand_aware)
        assert [r.name for r in regions] == ["left of the TSS", "around the TSS", "right of the TSS"]
        s = sentence(cells(H3K36me3=(0, 0, 2.0)), regions=regions)
        assert "right of the TSS (+1 kb to +5 kb)" in s
        assert not re.search(r"promoter|upstream|downstream", s), s


def test_pair_explanation_uses_the_data_regions_and_the_strand_note():
    class Linear(nn.Module):
        def forward(self, x):
            return x[:, :, 0].sum(dim=1)

    x_a, x_b = torch.zeros(10, 3), torch.zeros(10, 3)
    x_a[3, 0] = 1.0
    starts = np.arange(-50_000, 50_000, 10_000)
    pe = explain_pair(Linear(), x_a, x_b, "integrated_gradients", np.zeros((10, 3), np.float32), bin_starts_bp=starts,
                      bin_size=10_000, strand_aware=None)
    assert list(dict.fromkeys(pe.table.region)) == ["-50 kb to 0 bp", "0 bp to +10 kb", "+10 kb to +50 kb"]
    assert "at -50 kb to 0 bp from the TSS" in pe.sentence and "as the bins are stored" in pe.sentence
