"""Label rules, the continuous target and gene-pair sampling (hmviz.data.targets)."""

from __future__ import annotations

import numpy as np
import pytest

from hmviz.data.dataset import HistoneDataset
from hmviz.data.targets import (
    DEFAULT_TIE_TOLERANCE,
    NO_LABEL,
    LabelRule,
    label_dataset,
    log1p_expression,
    sample_pairs,
)
from hmviz.errors import DataError


# ------------------------------------------------------------------ LabelRule
@pytest.mark.parametrize("text", ["median", "quantile:0.75", "threshold:5.0", "threshold:-1.5", "quantile:0.1"])
def test_parse_round_trip(text):
    rule = LabelRule.parse(text)
    assert str(rule) == text
    assert LabelRule.parse(str(rule)) == rule


def test_parse_is_lenient_about_case_and_spaces():
    assert LabelRule.parse(" Quantile : 0.75 ") == LabelRule("quantile", 0.75)
    assert str(LabelRule("threshold", 5)) == "threshold:5.0"


@pytest.mark.parametrize("text", ["mean", "quantile", "quantile:abc", "quantile:1.5", "quantile:0",
                                  "threshold:", "threshold:nan", "median:3", ""])
def test_parse_errors_name_the_accepted_forms(text):
    with pytest.raises(DataError, match="median|quantile|threshold"):
        LabelRule.parse(text)


def test_median_is_fitted_on_training_genes_only():
    rng = np.random.default_rng(0)
    expr = rng.gamma(1.0, 10.0, size=200)
    train = np.arange(140)
    rule = LabelRule.parse("median")
    threshold = rule.fit(expr, train)
    assert threshold == pytest.approx(np.median(expr[train]))
    changed = expr.copy()
    changed[140:] = 1e6  # test genes only
    assert rule.fit(changed, train) == threshold
    mask = np.zeros(200, dtype=bool)
    mask[train] = True
    assert rule.fit(expr, mask) == threshold


def test_apply_labels_above_threshold():
    expr = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    labels = LabelRule().apply(expr, 2.0)
    assert labels.dtype == np.int8
    assert labels.tolist() == [0, 0, 0, 1, 1]


def test_quantile_and_threshold():
    expr = np.arange(100, dtype=float)
    q = LabelRule.parse("quantile:0.75")
    t = q.fit(expr, np.arange(100))
    assert t == pytest.approx(np.quantile(expr, 0.75))
    assert q.apply(expr, t).sum() == 25
    fixed = LabelRule.parse("threshold:10")
    assert fixed.fit(expr, np.arange(100)) == 10.0
    assert fixed.apply(expr, 10.0).sum() == 89


def test_one_class_rule_is_an_error_suggesting_another():
    expr = np.array([1.0, 2.0] + [7.0] * 8)  # the median is the top value: nobody is above it
    with pytest.raises(DataError, match="all 10 training genes.*'low'.*another rule"):
        LabelRule.parse("median").fit(expr, np.arange(10))
    with pytest.raises(DataError, match="'high'"):
        LabelRule.parse("threshold:-1").fit(expr, np.arange(10))


def test_nan_expression_is_excluded_not_labelled():
    expr = np.array([1.0, np.nan, 3.0, 4.0, np.nan, 6.0])
    rule = LabelRule()
    threshold = rule.fit(expr, np.arange(6))
    assert threshold == pytest.approx(3.5)  # median of the four finite values
    labels = rule.apply(expr, threshold)
    assert labels.tolist() == [0, NO_LABEL, 0, 1, NO_LABEL, 1]
    with pytest.raises(DataError, match="None of the 2 training genes"):
        rule.fit(expr, [1, 4])


def _dataset(expr, split):
    n = len(expr)
    return HistoneDataset(np.zeros((n, 4, 2), np.float32), [f"G{k}" for k in range(n)], ("a", "b"),
                          expression=expr, split=split)


def test_label_dataset_drops_and_reports_missing_expression(caplog):
    ds = _dataset([1.0, np.nan, 3.0, 4.0, 6.0, 0.5], ["train", "train", "train", "train", "test", "test"])
    out = label_dataset(ds, "median")
    assert out.gene_ids.tolist() == ["G0", "G2", "G3", "G4", "G5"]
    assert out.labels.tolist() == [0, 0, 1, 1, 0]
    assert out.meta["labels"] == {"rule": "median", "threshold": 3.0, "excluded_genes": ["G1"]}
    assert "G1" in caplog.text
    assert ds.labels is None  # input unchanged


def test_label_dataset_needs_expression_and_train():
    ds = HistoneDataset(np.zeros((3, 4, 1), np.float32), ["a", "b", "c"], ("m",))
    with pytest.raises(DataError, match="no expression"):
        label_dataset(ds)
    with pytest.raises(DataError, match="no 'train' genes"):
        label_dataset(_dataset([1.0, 2.0], ["test", "valid"]))


def test_log1p_expression():
    out = log1p_expression([0.0, np.e - 1, np.nan])
    assert out[:2] == pytest.approx([0.0, 1.0])
    assert np.isnan(out[2])
    with pytest.raises(DataError, match="negative"):
        log1p_expression([1.0, -2.0])


# ------------------------------------------------------------------ pairs
def _pairs_setup(n=400, seed=0):
    rng = np.random.default_rng(seed)
    expr = np.round(rng.gamma(0.5, 20.0, size=n), 1)
    expr[rng.random(n) < 0.3] = 0.0  # many exact ties at zero
    split = rng.choice(["train", "valid", "test"], size=n, p=[0.6, 0.2, 0.2])
    return expr, split


def test_pairs_stay_in_split_skip_ties_and_are_balanced():
    expr, split = _pairs_setup()
    for name in ("train", "valid", "test"):
        index = np.flatnonzero(split == name)
        i, j, target = sample_pairs(expr, index, n_pairs=5001, seed=1)
        assert i.shape == j.shape == target.shape == (5001,)
        assert target.dtype == np.int8
        assert np.isin(i, index).all() and np.isin(j, index).all()
        assert (np.abs(np.log1p(expr[i]) - np.log1p(expr[j])) > DEFAULT_TIE_TOLERANCE).all()
        assert ((expr[i] > expr[j]) == (target == 1)).all()
        assert target.sum() == 5001 - 5001 // 2


def test_pairs_are_deterministic_per_seed_and_accept_a_mask():
    expr, split = _pairs_setup()
    mask = split == "train"
    a = sample_pairs(expr, mask, 1000, seed=7)
    b = sample_pairs(expr, np.flatnonzero(mask), 1000, seed=7)
    c = sample_pairs(expr, mask, 1000, seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])


def test_pairs_are_uniform_over_distinguishable_pairs():
    # three genes; with tolerance 0.5 only (0,2) and (1,2) are distinguishable, each half of the pairs
    expr = np.expm1(np.array([0.0, 0.3, 2.0]))
    i, j, _ = sample_pairs(expr, [0, 1, 2], 4000, seed=0, tie_tolerance=0.5)
    pairs = np.sort(np.stack([i, j], axis=1), axis=1)
    assert not ((pairs[:, 0] == 0) & (pairs[:, 1] == 1)).any()
    share = ((pairs[:, 0] == 0) & (pairs[:, 1] == 2)).mean()
    assert 0.45 < share < 0.55


def test_pairs_skip_genes_without_expression():
    expr = np.array([1.0, np.nan, 50.0, np.nan, 300.0])
    i, j, _ = sample_pairs(expr, np.arange(5), 200, seed=0)
    assert not np.isin(np.concatenate([i, j]), [1, 3]).any()


def test_pairs_error_when_split_cannot_form_pairs():
    with pytest.raises(DataError, match="no gene pairs"):
        sample_pairs([5.0, 5.02, 100.0], [0, 1], 10, seed=0)
    with pytest.raises(DataError, match="1 genes"):
        sample_pairs([5.0, 100.0], [0], 10, seed=0)
    with pytest.raises(DataError, match="n_pairs"):
        sample_pairs([5.0, 100.0], [0, 1], 0, seed=0)


def test_pairs_are_fast_for_many_pairs():
    import time

    expr, _ = _pairs_setup(n=20000)
    t0 = time.perf_counter()
    i, _, _ = sample_pairs(expr, np.arange(20000), 1_000_000, seed=0)
    assert i.size == 1_000_000
    assert time.perf_counter() - t0 < 5.0
