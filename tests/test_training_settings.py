"""Settings that are used, baselines named for what they are and deterministic, labels on new data,
class balance per split (issue 15, items 2 and 6)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hmviz.checkpoints import save_model
from hmviz.data.dataset import HistoneDataset
from hmviz.data.gene_sets import recorded_genes
from hmviz.data.synthetic import make_sample_dataset, make_two_cell_sample
from hmviz.data.targets import LabelRule
from hmviz.errors import DataError
from hmviz.baselines import train_baseline
from hmviz.evaluation import evaluate, evaluation_set
from hmviz.options import TrainOptions
from hmviz.training import train


@pytest.fixture(scope="module")
def small():
    ds, _ = make_sample_dataset(n_genes=200, seed=6, n_bins=20, bin_size=500)
    return ds


def _weights(result):
    return torch.cat([v.flatten().float() for v in result.model.state_dict().values()])


def test_the_optimizer_setting_is_the_optimizer_used(small):
    """`--set optimizer=sgd` (DeepChrome's paper recipe) was recorded but training ran Adam."""
    opts = dict(model="deepchrome", seed=4, epochs=1, batch_size=32, device="cpu")
    adam = train(small, TrainOptions(**opts))
    sgd = train(small, TrainOptions(**opts, model_overrides={"optimizer": "sgd"}))
    assert not torch.equal(_weights(adam), _weights(sgd))
    assert sgd.card["config"]["optimizer"] == "sgd" and sgd.card["training"]["optimizer"] == "sgd"
    assert adam.card["training"]["optimizer"] == "adam"
    again = train(small, TrainOptions(**opts, model_overrides={"optimizer": "sgd"}))
    assert torch.equal(_weights(sgd), _weights(again))
    # plain SGD at lr 1e-3 for a few steps moves the weights far less than Adam does
    start = train(small, TrainOptions(**{**opts, "epochs": 1, "lr": 1e-12}))
    assert (_weights(sgd) - _weights(start)).abs().max() < (_weights(adam) - _weights(start)).abs().max()
    from hmviz.engine import make_optimizer

    p = [torch.nn.Parameter(torch.zeros(2))]
    assert type(make_optimizer("sgd", p, 0.1)) is torch.optim.SGD
    assert type(make_optimizer("adamw", p, 0.1)) is torch.optim.AdamW


def test_baselines_are_named_for_what_they_are(small):
    assert train_baseline(small, "logistic", TrainOptions(model="deepchrome"))["model"] == "logistic"
    assert train_baseline(small, "logistic", TrainOptions(model="ranker-deepchrome"))["model"] == "ridge"
    two = make_two_cell_sample(n_genes=120, seed=1)
    assert train_baseline(two, "logistic", TrainOptions(model="deepdiff"))["model"] == "ridge"
    assert train_baseline(two, "boosted-trees", TrainOptions(model="deepdiff"))["model"] == "boosted-trees"


def test_boosted_trees_do_not_depend_on_the_seed_above_ten_thousand_genes():
    """Above 10,000 training genes scikit-learn stops early on a random internal hold-out drawn from
    random_state; boosted trees now stop on the split's validation genes, so one split, one result."""
    rng = np.random.default_rng(0)
    n = 15_000
    signal = rng.poisson(2.0, size=(n, 2, 2)).astype(np.float32)
    score = signal[:, 0, 0] - signal[:, 1, 1] + rng.normal(0, 1.5, n)
    split = np.where(np.arange(n) < 11_000, "train", np.where(np.arange(n) < 13_000, "valid", "test"))
    ds = HistoneDataset(signal, [f"G{k}" for k in range(n)], ("a", "b"), bin_size=100,
                        labels=(score > np.median(score)).astype(int), split=split)
    a = train_baseline(ds, "boosted-trees", TrainOptions(model="deepchrome", seed=1))
    b = train_baseline(ds, "boosted-trees", TrainOptions(model="deepchrome", seed=2))
    assert a == b and 0.6 < a["test_auroc"] < 1.0


def test_evaluate_applies_the_cards_label_rule_to_expression_without_labels(small, tmp_path):
    result = train(small, TrainOptions(model="deepchrome", label_rule="median", epochs=1, device="cpu"))
    threshold = result.card["label_threshold"]
    no_labels = dataclasses.replace(small, labels=None, meta={})
    chosen = evaluation_set(result.card, no_labels)
    expected = LabelRule.parse("median").apply(small.expression, threshold)
    np.testing.assert_array_equal(chosen.task.labels, expected)  # the recorded threshold, not a new median

    by_file = train(small, TrainOptions(model="deepchrome", label_rule="file", epochs=1, device="cpu"))
    save_model(by_file.model, by_file.card, tmp_path / "file")
    with pytest.raises(DataError, match="has expression values but no labels.*--label median"):
        evaluate(tmp_path / "file", no_labels, device="cpu")
    with pytest.raises(DataError, match="neither expression values nor labels"):
        evaluate(tmp_path / "file", dataclasses.replace(no_labels, expression=None), device="cpu")


def test_a_random_split_is_stratified_and_the_card_reports_the_class_balance():
    ds, _ = make_sample_dataset(n_genes=400, seed=2, n_bins=20, bin_size=500)
    skewed = dataclasses.replace(ds, labels=(ds.expression > np.quantile(ds.expression, 0.8)).astype(int),
                                 split=None, meta={})
    card = train(skewed, TrainOptions(model="deepchrome", split="random", epochs=1, device="cpu")).card
    balance = card["split"]["class_balance"]
    assert card["split"]["stratified_by"] == "label" and "labelled high" in balance["what"]
    for name in ("train", "valid", "test"):
        rows = np.isin(skewed.gene_ids, list(recorded_genes(card["genes"])[name]))
        assert balance[name] == pytest.approx(skewed.labels[rows].mean(), abs=1e-4)
        assert abs(balance[name] - 0.2) <= 0.02  # every split near the 20 % of high genes
