"""Attention maps: real weights that sum to 1, per-class means, and agreement with attributions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hmviz.errors import HmvizError, ModelError
from hmviz.explain import (attention_attribution_agreement, attention_by_class, attention_maps,
                           attention_maps_per_cell, explain, has_attention)

N_BINS, N_MARKS = 20, 3


# Small LSTM calls on a shared 2-core machine: one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_attentivechrome():
    from hmviz.models import AttentiveChrome, AttentiveChromeConfig

    torch.manual_seed(0)
    return AttentiveChrome(AttentiveChromeConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8, mark_hidden=4)).eval()


def inputs(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(seed)) * 2


def test_attention_sums_to_one_and_varies_across_genes():
    alpha, beta = attention_maps(small_attentivechrome(), inputs())
    assert alpha.shape == (6, N_MARKS, N_BINS) and beta.shape == (6, N_MARKS)
    np.testing.assert_allclose(alpha.sum(axis=2), 1.0, atol=1e-5)
    np.testing.assert_allclose(beta.sum(axis=1), 1.0, atol=1e-5)
    assert alpha.std(axis=0).max() > 1e-4 and beta.std(axis=0).max() > 1e-6  # real, gene-specific weights
    # batching does not change the result
    alpha2, beta2 = attention_maps(small_attentivechrome(), inputs(), batch_size=4)
    np.testing.assert_allclose(alpha, alpha2, atol=1e-6)
    np.testing.assert_allclose(beta, beta2, atol=1e-6)


def test_ranker_with_attention_backbone_and_models_without_attention():
    from hmviz.models import DeepChrome, DeepChromeConfig, PairwiseRanker

    backbone = small_attentivechrome()
    ranker = PairwiseRanker(backbone).eval()
    a1, b1 = attention_maps(ranker, inputs())
    a2, b2 = attention_maps(backbone, inputs())
    np.testing.assert_allclose(a1, a2)
    np.testing.assert_allclose(b1, b2)
    cnn = DeepChrome(DeepChromeConfig(n_marks=N_MARKS, n_bins=N_BINS, n_filters=4, kernel_size=4, pool_size=2,
                                      hidden1=8, hidden2=4)).eval()
    with pytest.raises(ModelError, match="no attention weights"):
        attention_maps(cnn, inputs())
    with pytest.raises(ModelError, match="no attention weights"):
        attention_maps(PairwiseRanker(cnn).eval(), inputs())
    assert has_attention(backbone) and has_attention(ranker)
    assert not has_attention(cnn) and not has_attention(PairwiseRanker(cnn))


def test_deepdiff_attention_per_cell():
    from hmviz.models import DeepDiff, DeepDiffConfig

    torch.manual_seed(0)
    dd = DeepDiff(DeepDiffConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8, mark_hidden=4, joint_hidden=8,
                                 variant="aux")).eval()
    assert has_attention(dd)
    maps = attention_maps_per_cell(dd, inputs(4, 1), inputs(4, 2))
    assert set(maps) == {"a", "b"}
    for alpha, beta in maps.values():
        assert alpha.shape == (4, N_MARKS, N_BINS) and beta.shape == (4, N_MARKS)
        np.testing.assert_allclose(alpha.sum(axis=2), 1.0, atol=1e-5)
        np.testing.assert_allclose(beta.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(ModelError, match="attention_maps_per_cell"):
        attention_maps(dd, inputs())
    raw_d = DeepDiff(DeepDiffConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8, mark_hidden=4)).eval()  # default
    (key, (alpha, beta)), = attention_maps_per_cell(raw_d, inputs(4, 1), inputs(4, 2)).items()
    assert key == "b-a" and alpha.shape == (4, N_MARKS, N_BINS) and beta.shape == (4, N_MARKS)


def test_attention_by_class_averages_each_class():
    alpha, beta = attention_maps(small_attentivechrome(), inputs(8))
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 0])
    per_class = attention_by_class(alpha, beta, labels)
    assert per_class.classes == ("low", "high")
    assert per_class.counts.tolist() == [5, 3]
    np.testing.assert_allclose(per_class.alpha[1], alpha[labels == 1].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(per_class.beta[0], beta[labels == 0].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(per_class.beta.sum(axis=1), 1.0, atol=1e-5)
    with pytest.raises(HmvizError):
        attention_by_class(alpha, beta, labels[:3])


def test_agreement_is_a_rank_correlation_over_marks_and_bins():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(5, N_BINS, N_MARKS))
    magnitude = np.abs(values)
    beta_same = magnitude.sum(axis=1) / magnitude.sum(axis=(1, 2))[:, None]
    agree = attention_attribution_agreement(beta_same, values)
    assert agree.level == "marks" and agree.per_gene.shape == (5,)
    np.testing.assert_allclose(agree.per_gene, 1.0)
    reverse = attention_attribution_agreement(-beta_same, values)
    assert reverse.mean == pytest.approx(-1.0)
    alpha = magnitude.transpose(0, 2, 1) ** 2  # same order over bins for every mark
    over_bins = attention_attribution_agreement(alpha, values)
    assert over_bins.level == "bins" and over_bins.per_gene_mark.shape == (5, N_MARKS)
    assert over_bins.mean == pytest.approx(1.0)
    with pytest.raises(HmvizError, match="does not match"):
        attention_attribution_agreement(beta_same[:, :2], values)


def test_agreement_with_a_real_attribution_is_reported():
    model = small_attentivechrome()
    x = inputs()
    alpha, beta = attention_maps(model, x)
    attr = explain(model, x, "integrated_gradients", n_steps=16)
    marks = attention_attribution_agreement(beta, attr)
    bins = attention_attribution_agreement(alpha, attr)
    assert -1.0 <= marks.mean <= 1.0 and -1.0 <= bins.mean <= 1.0
    assert np.isfinite(bins.per_gene).all()
