"""Metrics against hand-computed values and brute force."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest
import torch

from hmviz.errors import HmvizError
from hmviz.metrics import (
    accuracy,
    antisymmetry_error,
    auprc,
    auroc,
    binary_metrics,
    concordance_index,
    direction_auroc,
    mean_squared_error,
    pairwise_accuracy,
    pearson_r,
    r2,
    regression_metrics,
    regression_slope,
    spearman_r,
)


def brute_force_concordance(y: np.ndarray, s: np.ndarray) -> float:
    credit, comparable = 0.0, 0
    for i, j in itertools.combinations(range(len(y)), 2):
        if y[i] == y[j]:
            continue
        comparable += 1
        if s[i] == s[j]:
            credit += 0.5
        elif (s[i] > s[j]) == (y[i] > y[j]):
            credit += 1.0
    return credit / comparable


# -- binary --------------------------------------------------------------------------------------


def test_auroc_by_hand() -> None:
    # positives {0.8, 0.4}, negatives {0.6, 0.2}: pairs (pos > neg) = 3 of 4
    assert auroc([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2]) == pytest.approx(0.75)
    # a tied positive/negative pair counts 1/2
    assert auroc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)


def test_auprc_is_average_precision() -> None:
    # ranked: 1 (P=1/1), 0, 1 (P=2/3), 0 -> AP = (1 + 2/3) / 2
    assert auprc([1, 0, 1, 0], [0.8, 0.6, 0.4, 0.2]) == pytest.approx((1 + 2 / 3) / 2)


def test_accuracy_threshold_on_logits_or_probabilities() -> None:
    y = [1, 0, 1, 0]
    logits = [2.0, -1.0, -0.5, 0.3]
    assert accuracy(y, logits) == pytest.approx(0.5)  # logit > 0
    probs = 1 / (1 + np.exp(-np.array(logits)))
    assert accuracy(y, probs, threshold=0.5) == pytest.approx(0.5)


def test_one_class_raises_a_clear_error() -> None:
    with pytest.raises(HmvizError, match="both classes"):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(HmvizError, match="both classes"):
        auprc([0, 0], [0.1, 0.2])
    with pytest.raises(HmvizError, match="NaN"):
        auroc([0, 1], [0.1, float("nan")])
    with pytest.raises(HmvizError, match="one value per gene"):
        auroc([0, 1, 1], [0.1, 0.2])


def test_binary_metrics_keys_and_tensor_input() -> None:
    out = binary_metrics(torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([0.8, 0.6, 0.4, 0.2]))
    assert set(out) == {"auroc", "auprc", "accuracy", "n_genes", "positive_fraction"}
    assert out["auroc"] == pytest.approx(0.75) and out["n_genes"] == 4 and out["positive_fraction"] == 0.5


# -- regression ----------------------------------------------------------------------------------


def test_pearson_and_r2_are_different_things() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = 2 * y + 10  # perfectly correlated, badly calibrated
    assert pearson_r(y, pred) == pytest.approx(1.0)
    # SS_res = sum((y - pred)^2) = sum((y + 10)^2) = 11^2+12^2+13^2+14^2 = 630; SS_tot = 5
    assert r2(y, pred) == pytest.approx(1 - 630 / 5)
    assert r2(y, y) == pytest.approx(1.0)
    assert mean_squared_error(y, pred) == pytest.approx(630 / 4)


def test_regression_slope_by_hand() -> None:
    """Least-squares slope of predicted on measured: the shrinkage Pearson r cannot see."""
    y = np.array([-8.0, -2.0, 0.0, 3.0, 7.0])
    assert regression_slope(y, 2 * y + 10) == pytest.approx(2.0)
    assert regression_slope(y, 0.05 * y + 0.6) == pytest.approx(0.05)  # Pearson r 1, slope 0.05
    assert regression_slope(y, np.full(5, 0.587)) == pytest.approx(0.0)
    # y = [0, 1, 2], p = [0, 2, 1]: cov = (-1)(-1) + 0 + (1)(0) = 1 over var sum 2 -> 0.5
    assert regression_slope([0.0, 1.0, 2.0], [0.0, 2.0, 1.0]) == pytest.approx(0.5)
    with pytest.raises(HmvizError, match="constant"):
        regression_slope([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])


def test_spearman_by_hand() -> None:
    # monotone but non-linear: rho = 1, Pearson < 1
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman_r(y, y**3) == pytest.approx(1.0)
    assert pearson_r(y, y**3) < 1.0
    assert spearman_r(y, -y) == pytest.approx(-1.0)


def test_constant_prediction_raises() -> None:
    with pytest.raises(HmvizError, match="constant"):
        pearson_r([1.0, 2.0, 3.0], [1.0, 1.0, 1.0])


def test_regression_metrics_keys() -> None:
    out = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.1, 1.9, 3.2, 3.9])
    assert set(out) == {"pearson_r", "spearman_r", "r2", "mse", "concordance_index", "n_genes"}
    assert out["concordance_index"] == pytest.approx(1.0)


# -- ranking -------------------------------------------------------------------------------------


def test_pairwise_accuracy_by_hand() -> None:
    y = np.array([3.0, 1.0, 2.0, 2.0])
    s = np.array([0.9, 0.1, 0.5, 0.5])
    pairs = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [2, 1]])
    # (0,1) right; (1,2) right; (2,3) tied truth -> excluded; (3,0) right; (2,1) right -> 4/4
    assert pairwise_accuracy(y, s, pairs) == pytest.approx(1.0)
    # a tied score counts 1/2, a wrong order 0
    assert pairwise_accuracy(y, np.array([0.1, 0.1, 0.5, 0.5]), np.array([[0, 1], [0, 2]])) == pytest.approx(0.25)
    with pytest.raises(HmvizError, match="differs"):
        pairwise_accuracy(y, s, np.array([[2, 3]]))


def test_concordance_index_by_hand() -> None:
    y = [1.0, 2.0, 3.0]
    assert concordance_index(y, [1.0, 2.0, 3.0]) == pytest.approx(1.0)
    assert concordance_index(y, [3.0, 2.0, 1.0]) == pytest.approx(0.0)
    # pairs (1,2) tie in score -> 1/2; (1,3), (2,3) concordant -> (0.5 + 2) / 3
    assert concordance_index(y, [1.0, 1.0, 2.0]) == pytest.approx(2.5 / 3)
    assert concordance_index(y, [5.0, 5.0, 5.0]) == pytest.approx(0.5)
    with pytest.raises(HmvizError, match="different true"):
        concordance_index([2.0, 2.0], [1.0, 3.0])


@pytest.mark.parametrize("seed", range(5))
def test_concordance_index_matches_brute_force_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 60
    y = rng.integers(0, 8, n).astype(float)  # many ties in truth
    s = rng.integers(0, 6, n).astype(float)  # many ties in scores
    s[:20] = y[:20] + rng.normal(0, 0.5, 20)  # some signal
    assert concordance_index(y, s) == pytest.approx(brute_force_concordance(y, s), abs=1e-12)
    all_pairs = np.array(list(itertools.combinations(range(n), 2)))
    assert pairwise_accuracy(y, s, all_pairs) == pytest.approx(concordance_index(y, s), abs=1e-12)


def test_concordance_index_on_20000_genes_enumerates_no_pairs() -> None:
    # 20,000 genes have 2e8 pairs: any enumeration of them needs gigabytes. The O(n log n) count
    # stays within a few arrays of n. (Its speed is measured by bench/bench_metrics.py, not here.)
    rng = np.random.default_rng(0)
    y = rng.normal(size=20_000)
    s = y + rng.normal(size=20_000)
    tracemalloc.start()
    try:
        c = concordance_index(y, s)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 20_000 * 8  # fewer than 20 float64 arrays of n
    assert 0.5 < c < 1.0


def test_antisymmetry_error() -> None:
    p_ab = np.array([0.9, 0.3, 0.5])
    assert antisymmetry_error(p_ab, 1 - p_ab) == pytest.approx(0.0, abs=1e-15)
    assert antisymmetry_error(p_ab, np.array([0.1, 0.8, 0.5])) == pytest.approx(0.1)


# -- differential --------------------------------------------------------------------------------


def test_direction_auroc_excludes_unchanged_genes() -> None:
    true = np.array([2.0, -1.0, 0.0, 0.5, -3.0])
    pred = np.array([1.0, -0.5, 9.0, -0.1, 0.2])
    # unchanged gene (pred 9) excluded; up {1.0, -0.1} vs down {-0.5, 0.2}: 1>-0.5, 1>0.2, -0.1>-0.5 -> 3/4
    assert direction_auroc(true, pred) == pytest.approx(0.75)
    with pytest.raises(HmvizError, match="up and genes that go down"):
        direction_auroc([1.0, 2.0, 0.0], [0.1, 0.2, 0.3])


def test_balanced_accuracy_and_a_threshold_chosen_on_validation_genes() -> None:
    """A model whose logits are all below 0 calls every gene low: accuracy is the class prior and balanced
    accuracy 0.5; the cut with the best balanced accuracy on other genes of the same model recovers it."""
    from hmviz import metrics as M

    y = np.array([0, 0, 0, 0, 1, 1])  # 1/3 high
    shifted = np.array([-9.0, -8.5, -8.0, -7.5, -5.0, -4.0])  # ranks perfectly, every logit < 0
    assert M.accuracy(y, shifted) == pytest.approx(4 / 6)  # the prior of "low"
    assert M.balanced_accuracy(y, shifted) == 0.5
    cut = M.balanced_threshold(y, shifted)
    assert cut == pytest.approx((-7.5 + -5.0) / 2)  # halfway between the two scores it separates
    assert M.accuracy(y, shifted, threshold=cut) == 1.0 and M.balanced_accuracy(y, shifted, threshold=cut) == 1.0
    # Unbalanced mistakes: balanced accuracy weighs each class's recall equally.
    assert M.balanced_accuracy([0, 0, 0, 1], [-1, -1, 1, -1]) == pytest.approx((2 / 3 + 0) / 2)
    with pytest.raises(HmvizError, match="both classes"):
        M.balanced_threshold([1, 1], [0.1, 0.2])


def test_classifier_test_metrics_report_the_validation_threshold() -> None:
    """_BinaryTask's test metrics: accuracy at logit 0 beside accuracy at the cut chosen on validation genes
    (never on test genes), and balanced accuracy at both."""
    import torch

    from hmviz.tasks import _BinaryTask

    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [0.5], [1.5], [2.5], [3.5]])
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    split = np.array(["valid"] * 4 + ["test"] * 4)

    class Shifted(torch.nn.Module):
        def forward(self, v):
            return v[:, 0] - 10.0  # orders genes right, every logit < 0

    task = _BinaryTask(torch.device("cpu"), x, split, None, labels, 1)
    metrics = task.test_metrics(Shifted())
    assert metrics["test_accuracy"] == 0.5 and metrics["test_balanced_accuracy"] == 0.5
    assert metrics["valid_decision_threshold"] == pytest.approx(1.5 - 10.0)  # between valid genes 1.0 and 2.0
    assert metrics["test_accuracy_at_valid_threshold"] == 1.0
    assert metrics["test_balanced_accuracy_at_valid_threshold"] == 1.0


def test_metric_labels_name_each_metric_as_written_in_the_field():
    from hmviz.metrics import metric_label

    assert metric_label("test_auroc") == "test AUROC"
    assert metric_label("valid_auprc") == "validation AUPRC"
    assert metric_label("valid_loss") == "validation loss"  # as the cards' selected_on says it
    assert metric_label("test_r2") == "test R²"
    assert metric_label("test_pairwise_accuracy") == "test pairwise accuracy"
    assert metric_label("test_concordance_index") == "test concordance index"
    assert metric_label("test_pearson") == "test Pearson"
