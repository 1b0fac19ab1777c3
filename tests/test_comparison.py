"""The paired comparison of two models on the same test genes: its numbers and its sentence."""

import re

import numpy as np
import pytest

from hmviz import metrics as M
from hmviz.comparison import Comparison, compare
from hmviz.errors import HmvizError


def c_words(task: str) -> str:
    return {"binary": "test AUROC", "ranking": "test concordance index", "differential": "test R²"}[task]


def _genes(n: int) -> list[str]:
    return [f"G{i}" for i in range(n)]


def _labels(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % 2).astype(float)


def test_the_difference_is_the_two_metrics_on_the_shared_genes_and_lies_in_its_interval():
    rng = np.random.default_rng(1)
    y = _labels(300)
    a, b = y + rng.normal(0, 0.6, 300), y + rng.normal(0, 0.9, 300)
    ids = _genes(300)
    other = {g: s for g, s in zip(ids, b) if g != "G7"}  # the other model did not score one gene
    c = compare("binary", y, a, ids, other, model="A", other="B")
    keep = np.arange(300) != 7
    assert c.n_genes == 299
    assert c.difference == pytest.approx(M.auroc(y[keep], a[keep]) - M.auroc(y[keep], b[keep]), abs=1e-12)
    assert c.low <= c.difference <= c.high
    assert c.cell() == f"{c.difference:+.3f} ({c.low:+.3f} to {c.high:+.3f})"


def test_the_paired_interval_is_narrower_than_either_model_alone():
    """Shared difficulty cancels: b is a with a little noise, so the difference hardly moves."""
    rng = np.random.default_rng(2)
    y = _labels(200)
    a = y + rng.normal(0, 1.0, 200)
    b = a + rng.normal(0, 0.1, 200)
    _, low, high = M.paired_bootstrap_ci(M.auroc, y, a, b, n=500, seed=0)
    alone = M.bootstrap_ci(M.auroc, y, a, n=500, seed=0)
    assert high - low < (alone[1] - alone[0]) / 3


def test_the_paired_interval_equals_one_metric_call_per_resample():
    """The rowwise AUROC path draws the same resamples as the one-call-per-resample path."""
    rng = np.random.default_rng(3)
    y = _labels(60)
    a, b = y + rng.normal(0, 1, 60), y + rng.normal(0, 1, 60)
    fast = M.paired_bootstrap_ci(M.auroc, y, a, b, n=300, seed=4)
    slow = M.paired_bootstrap_ci(lambda t, s: M.auroc(t, s), y, a, b, n=300, seed=4)
    assert fast == pytest.approx(slow, abs=1e-12)
    assert fast == M.paired_bootstrap_ci(M.auroc, y, a, b, n=300, seed=4)  # seeded


@pytest.mark.parametrize("task", ["binary", "ranking", "differential"])
def test_a_clearly_better_model_is_ahead_and_named_so(task):
    rng = np.random.default_rng(4)
    truth = _labels(200) if task == "binary" else rng.normal(0, 1, 200)
    good, poor = truth + rng.normal(0, 0.2, 200), truth + rng.normal(0, 3.0, 200)
    ids = _genes(200)
    c = compare(task, truth, good, ids, dict(zip(ids, poor)), model="deepchrome", other="logistic regression", n=300)
    assert c.verdict == "ahead" and c.low > 0
    text = c.sentence()
    assert f"the {c_words(task)} of deepchrome is {abs(c.difference):.3f} above that of logistic regression;" in text
    assert text.endswith("deepchrome is ahead beyond the resampling noise of these genes.")
    assert "200 test genes" in text
    # swapped, the same genes: the same size of difference, now behind, and the other model named ahead
    d = compare(task, truth, poor, ids, dict(zip(ids, good)), model="logistic regression", other="deepchrome", n=300)
    assert d.verdict == "behind" and d.difference == pytest.approx(-c.difference)
    assert f"of logistic regression is {abs(c.difference):.3f} below that of deepchrome;" in d.sentence()
    assert d.sentence().endswith("deepchrome is ahead beyond the resampling noise of these genes.")


def test_models_on_a_par_are_not_told_apart():
    rng = np.random.default_rng(5)
    y = _labels(100)
    a, b = y + rng.normal(0, 1, 100), y + rng.normal(0, 1, 100)
    ids = _genes(100)
    c = compare("binary", y, a, ids, dict(zip(ids, b)), model="A", other="B")
    assert c.low < 0 < c.high and c.verdict == "not told apart"
    assert c.sentence().endswith("these genes do not tell the two apart.")


def test_identical_scores_are_the_same_metric_and_not_told_apart():
    y = _labels(50)
    s = np.linspace(0, 1, 50)
    ids = _genes(50)
    c = compare("binary", y, s, ids, dict(zip(ids, s)), model="A", other="B")
    assert (c.difference, c.low, c.high) == (0.0, 0.0, 0.0)
    text = c.sentence()
    assert text.startswith("On the 50 test genes both were scored on, A and B have the same test AUROC to 3 decimals;")
    assert "not tell the two apart" in text


def test_every_number_in_the_sentence_is_the_comparisons_own():
    c = Comparison("test_concordance_index", "M", "O", 1234, -0.0123, -0.031, 0.0049, 0.9, 200)
    text = c.sentence()
    assert re.findall(r"[-+]?\d[\d,]*\.?\d*", text) == ["1,234", "0.012", "90", "200", "-0.031", "+0.005"]
    assert "the test concordance index of M is 0.012 below that of O;" in text


def test_too_few_shared_genes_is_refused_with_the_names():
    with pytest.raises(HmvizError, match="A and B share 1 scored test gene"):
        compare("binary", np.array([0.0, 1.0]), np.array([0.1, 0.2]), ["x", "y"], {"y": 0.3}, model="A", other="B")
