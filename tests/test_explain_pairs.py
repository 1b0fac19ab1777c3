"""Gene-pair explanations: completeness, antisymmetry, and a sentence that names the right reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hmviz.errors import HmvizError
from hmviz.explain import explain_pair, make_baseline

N_BINS, N_MARKS = 20, 3
MARKS = ("H3K4me3", "H3K36me3", "H3K27me3")
STARTS = (np.arange(N_BINS) - N_BINS // 2) * 100  # 100-bp bins, TSS at bin 10: -1000 .. +900


# Small LSTM calls on a shared 2-core machine: one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class LinearScore(nn.Module):
    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(dim=(1, 2))


def planted_ranker():
    """Score = H3K4me3 at the promoter - 0.5 * H3K27me3 anywhere (a known answer)."""
    from hmviz.models import PairwiseRanker

    w = torch.zeros(N_BINS, N_MARKS)
    promoter = (STARTS >= -300) & (STARTS < 300)
    w[torch.as_tensor(promoter), 0] = 1.0
    w[:, 2] = -0.5
    return PairwiseRanker(LinearScore(w)).eval(), w


def planted_genes():
    x_a = torch.zeros(N_BINS, N_MARKS)
    x_a[7:13, 0] = 2.0  # gene A: strong H3K4me3 at the promoter
    x_b = torch.zeros(N_BINS, N_MARKS)
    x_b[:5, 2] = 3.0  # gene B: H3K27me3 far upstream (-1000 .. -600 bp)
    return x_a, x_b


def explain_planted(x_a, x_b, names=("ZC3H4", "GAPDH"), **kw):
    model, w = planted_ranker()
    kw.setdefault("strand_aware", True)
    return explain_pair(model, x_a, x_b, names=names, marks=MARKS, bin_starts_bp=STARTS, promoter_bp=(300, 300),
                        **kw), w


def test_pair_ig_is_closed_form_and_complete():
    x_a, x_b = planted_genes()
    pe, w = explain_planted(x_a, x_b)
    np.testing.assert_allclose(pe.values_a, (x_a * w).numpy(), atol=1e-5)
    np.testing.assert_allclose(pe.values_b, -(x_b * w).numpy(), atol=1e-5)
    assert pe.difference == pytest.approx(12.0 + 7.5)
    assert pe.probability == pytest.approx(1 / (1 + np.exp(-19.5)))
    assert pe.kind == "ranking" and pe.baseline_difference == 0.0
    total = pe.values_a.sum() + pe.values_b.sum()
    assert total == pytest.approx(pe.difference - pe.baseline_difference, abs=1e-4)
    assert abs(pe.convergence_delta) < 1e-4


def test_sentence_names_the_right_gene_mark_and_region():
    x_a, x_b = planted_genes()
    pe, _ = explain_planted(x_a, x_b)
    assert pe.sentence == (
        "The model ranks ZC3H4 above GAPDH (P = 1.00, a score difference of 19.50 logit). H3K4me3 favours ZC3H4 "
        "most: +12.00 logit in total, all of it at the promoter (-300 bp to +300 bp), where ZC3H4 has more "
        "H3K4me3; then H3K27me3 (+7.50). All marks together give +19.50 of the +19.50 score difference in ZC3H4's "
        "favour (gap below 0.0001)."
    )
    # B above A: the same reasons, now for GAPDH losing
    swapped, _ = explain_planted(x_b, x_a, names=("GAPDH", "ZC3H4"))
    assert swapped.sentence == pe.sentence
    # B truly above A: B gets the promoter mark, A the repressive one
    flip, _ = explain_planted(x_b, x_a, names=("ZC3H4", "GAPDH"))
    assert flip.sentence.startswith("The model ranks GAPDH above ZC3H4 (P = 1.00, a score difference of 19.50 logit). "
                                    "H3K4me3 favours GAPDH most: +12.00 logit in total, all of it at the promoter "
                                    "(-300 bp to +300 bp), where GAPDH has more H3K4me3")


def test_close_call_probability_and_single_reason():
    x_a = torch.zeros(N_BINS, N_MARKS)
    x_a[9, 0] = 0.3
    x_b = torch.zeros(N_BINS, N_MARKS)
    pe, _ = explain_planted(x_a, x_b, names=("A", "B"))
    assert pe.sentence == ("The model ranks A above B (P = 0.57, a score difference of 0.30 logit). H3K4me3 favours A "
                           "most: +0.300 logit in total, all of it at the promoter (-300 bp to +300 bp), where A has "
                           "more H3K4me3. All marks together give +0.300 of the +0.300 score difference in A's favour "
                           "(gap below 0.0001).")


def test_swapping_a_and_b_negates_the_attributions():
    from hmviz.models import AttentiveChrome, AttentiveChromeConfig, PairwiseRanker

    torch.manual_seed(0)
    model = PairwiseRanker(AttentiveChrome(AttentiveChromeConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8,
                                                                 mark_hidden=4))).eval()
    g = torch.Generator().manual_seed(1)
    x_a, x_b = torch.randn(N_BINS, N_MARKS, generator=g), torch.randn(N_BINS, N_MARKS, generator=g)
    ref = torch.randn(16, N_BINS, N_MARKS, generator=g)
    kw = dict(baseline="train_mean", reference_inputs=ref, n_steps=32, bin_starts_bp=STARTS)
    ab = explain_pair(model, x_a, x_b, **kw)
    ba = explain_pair(model, x_b, x_a, **kw)
    np.testing.assert_allclose(ba.values_a, -ab.values_b, atol=1e-5)
    np.testing.assert_allclose(ba.values_b, -ab.values_a, atol=1e-5)
    assert ba.probability == pytest.approx(1 - ab.probability, abs=1e-6)
    assert abs(ab.convergence_delta) < 1e-3
    assert ab.values_a.sum() + ab.values_b.sum() == pytest.approx(ab.score_a - ab.score_b, abs=1e-3)


def test_tables_summaries_and_long_frame():
    x_a, x_b = planted_genes()
    pe, _ = explain_planted(x_a, x_b)
    assert list(pe.table.columns) == ["gene", "mark", "region", "region_bp", "attribution"]
    assert len(pe.table) == 2 * N_MARKS * 3
    # the bp the regions' bins really cover (the window ends at +1 kb)
    assert set(pe.table.region_bp) == {"-1 kb to -300 bp", "-300 bp to +300 bp", "+300 bp to +1 kb"}
    cell = pe.table[(pe.table.gene == "ZC3H4") & (pe.table.mark == "H3K4me3") & (pe.table.region == "promoter")]
    assert float(cell.attribution.iloc[0]) == pytest.approx(12.0, abs=1e-4)
    by_mark = pe.by_mark()
    assert by_mark.loc["H3K27me3", "GAPDH"] == pytest.approx(7.5, abs=1e-4)
    assert by_mark["total"].sum() == pytest.approx(pe.difference, abs=1e-4)
    assert pe.by_region().loc[("H3K4me3", "promoter"), "total"] == pytest.approx(12.0, abs=1e-4)
    frame = pe.to_frame()
    assert list(frame.columns) == ["gene", "bin", "bin_start_bp", "mark", "attribution"]
    assert len(frame) == 2 * N_BINS * N_MARKS
    assert frame.attribution.sum() == pytest.approx(pe.difference, abs=1e-4)


def test_other_methods_on_pairs():
    x_a, x_b = planted_genes()
    dl, w = explain_planted(x_a, x_b, method="deeplift")
    np.testing.assert_allclose(dl.values_a, (x_a * w).numpy(), atol=1e-5)
    sal, _ = explain_planted(x_a, x_b, method="saliency")
    # slopes: ranked by size (H3K27me3's -0.5 over 20 bins x 2 genes beats H3K4me3's 1 over 6 bins x 2), no sums
    assert sal.sentence == (
        "The model ranks ZC3H4 above GAPDH (P = 1.00, a score difference of 19.50 logit). Ranked by the size of its "
        "slopes, the score difference is most sensitive to H3K27me3 upstream (-1 kb to -300 bp), then H3K4me3 "
        "(slopes say how fast the score difference moves for a small change; they are not shares of it).")
    abl, _ = explain_planted(x_a, x_b, method="feature_ablation")
    assert abl.sentence.endswith("Ranked by the change in the score difference when a mark is replaced by the "
                                 "reference, H3K4me3 favours ZC3H4 most (ZC3H4 has more H3K4me3), then H3K27me3 "
                                 "(these effects overlap and are not shares of the score difference).")
    ref = torch.rand(12, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(2))
    gs, _ = explain_planted(x_a, x_b, method="gradient_shap", baseline=make_baseline("gene_sample", ref, n_genes=6),
                            n_samples=50)
    assert gs.convergence_delta is not None and abs(gs.convergence_delta) < 2.0
    with pytest.raises(HmvizError, match="one input per gene"):
        explain_pair(planted_ranker()[0], torch.zeros(2, N_BINS, N_MARKS), torch.zeros(2, N_BINS, N_MARKS),
                     bin_starts_bp=STARTS)


def test_deeplift_pair_on_a_cnn_ranker_is_complete():
    from hmviz.models import DeepChrome, DeepChromeConfig, PairwiseRanker

    torch.manual_seed(0)
    model = PairwiseRanker(DeepChrome(DeepChromeConfig(n_marks=N_MARKS, n_bins=N_BINS, n_filters=8, kernel_size=4,
                                                       pool_size=2, hidden1=16, hidden2=8))).eval()
    g = torch.Generator().manual_seed(3)
    x_a, x_b = torch.rand(N_BINS, N_MARKS, generator=g) * 3, torch.rand(N_BINS, N_MARKS, generator=g) * 3
    pe = explain_pair(model, x_a, x_b, "deeplift", bin_starts_bp=STARTS)
    assert abs(pe.convergence_delta) < 1e-4
    ig = explain_pair(model, x_a, x_b, "integrated_gradients", bin_starts_bp=STARTS)
    assert abs(ig.convergence_delta) < 1e-3


def test_plain_classifier_and_deepdiff():
    from hmviz.models import DeepDiff, DeepDiffConfig

    _, w = planted_ranker()
    x_a, x_b = planted_genes()
    plain = explain_pair(LinearScore(w).eval(), x_a, x_b, marks=MARKS, bin_starts_bp=STARTS)
    assert plain.kind == "scores" and plain.difference == pytest.approx(19.5)

    torch.manual_seed(0)
    dd = DeepDiff(DeepDiffConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8, mark_hidden=4, joint_hidden=8)).eval()
    g = torch.Generator().manual_seed(4)
    x_a, x_b = torch.randn(N_BINS, N_MARKS, generator=g), torch.randn(N_BINS, N_MARKS, generator=g)
    pe = explain_pair(dd, x_a, x_b, names=("K562", "H1"), gene="GATA1", marks=MARKS, bin_starts_bp=STARTS,
                      n_steps=32)
    assert pe.kind == "differential" and pe.probability is None
    with torch.no_grad():
        assert pe.difference == pytest.approx(float(dd(x_a[None], x_b[None])[0]), abs=1e-5)
    assert pe.values_a.sum() + pe.values_b.sum() == pytest.approx(pe.difference - pe.baseline_difference, abs=1e-3)
    word = "H1 than in K562" if pe.difference > 0 else "K562 than in H1"
    assert pe.sentence.startswith(f"The model predicts GATA1 higher in {word} (log2 fold change H1 over K562:")


def test_deepdiff_pair_with_a_method_without_baseline():
    # saliency takes no baseline: the difference is the model's output alone, with no reference value
    from hmviz.models import DeepDiff, DeepDiffConfig

    torch.manual_seed(0)
    dd = DeepDiff(DeepDiffConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8, mark_hidden=4, joint_hidden=8)).eval()
    g = torch.Generator().manual_seed(4)
    x_a, x_b = torch.randn(N_BINS, N_MARKS, generator=g), torch.randn(N_BINS, N_MARKS, generator=g)
    pe = explain_pair(dd, x_a, x_b, "saliency", names=("K562", "H1"), gene="GATA1", marks=MARKS, bin_starts_bp=STARTS)
    with torch.no_grad():
        assert pe.difference == pytest.approx(float(dd(x_a[None], x_b[None])[0]), abs=1e-5)
    assert pe.baseline is None and pe.baseline_difference is None and pe.convergence_delta is None
    assert pe.values_a.shape == pe.values_b.shape == (N_BINS, N_MARKS)
