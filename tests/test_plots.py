"""hmviz.plots: every function returns a Figure whose traces carry the input data; bad shapes are clear errors."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from hmviz import plots
from hmviz.errors import DataError

MARKS = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
N_BINS, BIN_SIZE, TSS_BIN = 20, 100, 10
STARTS = (np.arange(N_BINS) - TSS_BIN) * BIN_SIZE  # -1000 .. +900 bp


@pytest.fixture
def values() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N_BINS, len(MARKS)))


def _tss_lines(fig: go.Figure) -> list:
    return [s for s in fig.layout.shapes if s.type == "line" and s.x0 == 0 and s.x1 == 0]


def test_attribution_heatmap_is_marks_by_bp_with_tss_and_centred_scale(values):
    fig = plots.attribution_heatmap(values, MARKS, STARTS, bin_size=BIN_SIZE)
    assert isinstance(fig, go.Figure)
    hm = fig.data[0]
    np.testing.assert_array_equal(np.asarray(hm.z), values.T)
    np.testing.assert_array_equal(hm.x, STARTS + BIN_SIZE / 2)  # bin centres in bp relative to the TSS
    assert tuple(hm.y) == MARKS
    assert hm.zmid == 0 and hm.zmin == -hm.zmax == -np.abs(values).max()
    assert len(_tss_lines(fig)) == 1
    assert "TSS" in fig.layout.xaxis.title.text and fig.layout.title.text
    # bin size read from the spacing of the starts when not given
    np.testing.assert_array_equal(plots.attribution_heatmap(values, MARKS, STARTS).data[0].x, hm.x)


def test_heatmap_shape_errors_name_the_expected_shape(values):
    with pytest.raises(DataError, match=r"\(bins, marks\)"):
        plots.attribution_heatmap(values.T, MARKS, STARTS)
    with pytest.raises(DataError, match="bin starts"):
        plots.attribution_heatmap(values, MARKS, STARTS[:-1])
    with pytest.raises(DataError, match="dimension"):
        plots.attribution_heatmap(values[None], MARKS, STARTS)


def test_pair_heatmaps_share_one_symmetric_scale_and_show_the_difference(values):
    b = values[::-1] * 0.5
    fig = plots.pair_heatmaps(values, b, MARKS, STARTS, gene_a="GATA1", gene_b="TAL1")
    assert len(fig.data) == 3 and all(t.coloraxis == "coloraxis" for t in fig.data)
    np.testing.assert_allclose(np.asarray(fig.data[2].z), (values - b).T)
    zmax = np.abs(values - b).max()
    assert fig.layout.coloraxis.cmid == 0 and fig.layout.coloraxis.cmax == pytest.approx(zmax)
    assert len(_tss_lines(fig)) == 3
    titles = [a.text for a in fig.layout.annotations]
    assert "GATA1" in titles and "TAL1" in titles and "GATA1 minus TAL1" in titles
    summed = plots.pair_heatmaps(values, b, MARKS, STARTS, combine="sum")
    np.testing.assert_allclose(np.asarray(summed.data[2].z), (values + b).T)
    with pytest.raises(DataError):
        plots.pair_heatmaps(values, b[:, :3], MARKS, STARTS)


def test_mark_and_region_bars():
    v = np.array([0.5, -0.2, 0.0, 1.0, -1.0])
    fig = plots.mark_bars(v, MARKS)
    assert tuple(fig.data[0].x) == MARKS and np.allclose(fig.data[0].y, v)
    pair = plots.mark_bars(np.stack([v, -v]), MARKS, series_names=("A", "B"))
    assert [t.name for t in pair.data] == ["A", "B"] and pair.layout.barmode == "group"
    np.testing.assert_allclose(pair.data[1].y, -v)
    regions = ("upstream (< -1 kb)", "promoter (-1 kb to +1 kb)", "downstream (>= +1 kb)")
    r = np.arange(15, dtype=float).reshape(3, 5)
    fig = plots.region_bars(r, MARKS, regions)
    assert [t.name for t in fig.data] == list(MARKS)
    np.testing.assert_allclose(fig.data[3].y, r[:, 3])
    assert tuple(fig.data[0].x) == regions
    with pytest.raises(DataError, match="expected"):
        plots.mark_bars(v[:4], MARKS)
    with pytest.raises(DataError, match=r"\(regions, marks\)"):
        plots.region_bars(r.T, MARKS, regions)


def test_attention_heatmap_and_beta():
    alpha = np.random.default_rng(1).dirichlet(np.ones(N_BINS), size=len(MARKS))  # (marks, bins)
    fig = plots.attention_heatmap(alpha, MARKS, STARTS)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), alpha)
    assert fig.data[0].zmin == 0 and len(_tss_lines(fig)) == 1
    beta = np.array([[0.1, 0.2, 0.3, 0.2, 0.2], [0.3, 0.1, 0.1, 0.4, 0.1]])
    fig = plots.attention_beta_bars(beta, MARKS, series_names=("low", "high"))
    assert [t.name for t in fig.data] == ["low", "high"]
    assert len(plots.attention_beta_bars(beta[0], MARKS).data) == 1
    with pytest.raises(DataError):
        plots.attention_heatmap(alpha.T, MARKS, STARTS)


def test_roc_and_pr_curves_name_the_area_in_the_legend():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    good, poor = y + rng.normal(0, 0.5, 300), rng.normal(size=300)
    fig = plots.roc_curves({"DeepChrome": (y, good), "random": (y, poor)})
    from sklearn.metrics import average_precision_score, roc_auc_score

    assert fig.data[0].name == f"DeepChrome (AUROC {roc_auc_score(y, good):.3f})"
    assert fig.data[0].x[0] == 0 and fig.data[0].y[-1] == 1
    assert "chance" in fig.data[-1].name
    fig = plots.pr_curves({"DeepChrome": (y, good)})
    assert fig.data[0].name == f"DeepChrome (AUPRC {average_precision_score(y, good):.3f})"
    assert fig.layout.shapes[0].y0 == pytest.approx(y.mean())
    # One model: plotly would hide a lone trace's legend, and with it the AUPRC.
    assert fig.layout.showlegend is True
    assert fig.layout.annotations[0].text == f"random ranking ({y.mean():.2f} of genes are high)"
    assert fig.layout.annotations[0].yanchor == "top"  # under the line, where the curve does not run
    with pytest.raises(DataError, match="labels"):
        plots.roc_curves({"x": (y[:10], good)})
    with pytest.raises(DataError, match="both classes"):
        plots.roc_curves({"x": (np.ones(5), np.arange(5))})


def test_predicted_vs_actual_groups_by_label():
    expr = np.array([0.0, 1.0, 3.0, 10.0, 100.0, np.nan])
    pred = np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.5])
    labels = np.array([0, 0, 0, 1, 1, 1])
    fig = plots.predicted_vs_actual(pred, expr, labels=labels, gene_names=list("abcdef"))
    low, high = fig.data
    np.testing.assert_allclose(low.x, np.log1p(expr[:3]))
    np.testing.assert_allclose(high.y, pred[3:5])  # the gene without expression is left out
    assert "Spearman r = 1.000" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "measured expression, log(1 + value)"
    with pytest.raises(DataError, match="one of each"):
        plots.predicted_vs_actual(pred[:3], expr)
    # Two cells: what was measured is a change; a Spearman r given (a table's) is the one shown.
    fc = plots.predicted_vs_actual(pred[:5], [-2.0, -1.0, 0.0, 0.5, 3.0], log1p_expression=False,
                                   measured_name="log2 fold change", spearman=0.8109)
    assert fc.layout.title.text == "Predicted vs measured log2 fold change (Spearman r = 0.811, 5 genes)"
    assert fc.layout.xaxis.title.text == "measured log2 fold change"
    assert "log2 fold change %{x:.3g}" in fc.data[0].hovertemplate


def test_mark_profiles_means_per_group_and_mark():
    rng = np.random.default_rng(3)
    signal = rng.poisson(2.0, size=(40, N_BINS, len(MARKS))).astype(float)
    groups = np.repeat([0, 1], 20)
    fig = plots.mark_profiles(signal, MARKS, STARTS, groups)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert len(lines) == 2 * len(MARKS)
    high_k4me3 = next(t for t in lines if t.name.startswith("high") and t.yaxis == "y4")
    np.testing.assert_allclose(high_k4me3.y, np.log1p(signal[20:, :, 3]).mean(axis=0))
    np.testing.assert_array_equal(high_k4me3.x, STARTS + BIN_SIZE / 2)
    assert len(_tss_lines(fig)) == len(MARKS)
    with pytest.raises(DataError, match="one group per gene"):
        plots.mark_profiles(signal, MARKS, STARTS, groups[:5])


def test_training_curves_from_a_card_history():
    history = [{"stage": "train", "epoch": e, "train_loss": 1.0 / e, "valid_metric": 0.5 + e / 100, "seconds": 1.0}
               for e in range(1, 6)]
    fig = plots.training_curves(history, best_epoch=4)
    loss, valid = fig.data
    assert list(loss.x) == [1, 2, 3, 4, 5] and np.allclose(loss.y, [1.0 / e for e in range(1, 6)])
    assert np.allclose(valid.y, [0.5 + e / 100 for e in range(1, 6)])
    assert any(s.x0 == 4 for s in fig.layout.shapes) and len(fig.data) == 2
    # the kept epoch named in the legend with what chose it: here the loss, while the panel draws the metric
    chosen = plots.training_curves(history, best_epoch=2, selected_on="validation loss")
    assert [t.name for t in chosen.data[2:]] == ["kept: epoch 2<br>(best validation loss)"]
    assert chosen.data[2].line.dash == "dot" and list(chosen.data[2].x) == [None]  # no point: a legend entry
    auroc = plots.training_curves([{"stage": "train", "epoch": 1, "train_loss": 0.5, "valid_auroc": 0.7}])
    assert auroc.data[1].name == "validation AUROC"  # the metric's name, not its key
    with pytest.raises(DataError, match="train_loss"):
        plots.training_curves([{"epoch": 1}])
    # With the validation loss (what chose the kept epoch, in most cards): beside the training loss, the
    # metric still on the right whatever the keys' order.
    losses = [{"stage": "train", "epoch": e, "train_loss": 1.0 / e, "valid_loss": (e - 3) ** 2 + 0.3,
               "valid_auroc": 0.5 + e / 100} for e in range(1, 6)]
    fig = plots.training_curves(losses, best_epoch=3, selected_on="validation loss")
    names = {t.name: t for t in fig.data}
    assert list(names) == ["training loss", "validation loss", "validation AUROC", "kept: epoch 3<br>(best validation loss)"]
    assert names["validation loss"].xaxis == "x" and names["validation AUROC"].xaxis == "x2"
    best = int(np.argmin(names["validation loss"].y))
    assert names["validation loss"].x[best] == 3  # the dotted line stands at the loss's minimum
    assert plots.training_curves([{k: r[k] for k in ("epoch", "train_loss", "valid_loss")} for r in losses]).data[1].name \
        == "validation loss"


def test_every_bar_of_a_mark_or_region_chart_is_named_on_its_axis():
    """At 1024 px the pair's half-width mark chart showed 3 of its 5 mark names: plotly drops category
    labels that would overlap unless the ticks are given."""
    marks = ["H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"]
    fig = plots.mark_bars(np.ones((2, 5)), marks, series_names=("A", "B"))
    assert list(fig.layout.xaxis.tickvals) == marks and list(fig.layout.xaxis.ticktext) == marks
    regions = ["upstream", "promoter", "downstream"]
    fig = plots.region_bars(np.ones((3, 5)), marks, regions)
    assert list(fig.layout.xaxis.tickvals) == regions
