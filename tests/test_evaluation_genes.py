"""A model knows its genes: `evaluate` scores the model's own test genes, never its training genes
(issue 15, item 1)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hmviz.checkpoints import read_card, save_model
from hmviz.cli import main
from hmviz.data.io import read_dataset, write_long
from hmviz.data.synthetic import make_sample_dataset
from hmviz.training import TrainOptions, evaluate, evaluation_set, train


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """240 generated genes written as a long table with a split column, and the same table without it."""
    ds, _ = make_sample_dataset(n_genes=240, seed=5)
    folder = tmp_path_factory.mktemp("tables")
    with_split = write_long(ds, folder / "with_split.csv.gz")
    without = write_long(dataclasses.replace(ds, split=None, meta={}), folder / "without_split.csv.gz")
    return ds, str(with_split), str(without)


@pytest.fixture(scope="module")
def trained(table, tmp_path_factory):
    """deepchrome trained for one epoch on the table's own (file) split, saved."""
    ds, with_split, _ = table
    out = tmp_path_factory.mktemp("model") / "m"
    assert main(["train", "--data", with_split, "--model", "deepchrome", "--out", str(out), "--epochs", "1",
                 "--seed", "3", "--quiet", "--device", "cpu"]) == 0
    return out


def _evaluated_genes(card, dataset) -> set[str]:
    chosen = evaluation_set(card, dataset)
    return set(dataset.gene_ids[chosen.task.test_idx].tolist())


def test_the_table_without_its_split_column_is_scored_on_the_models_own_test_genes(table, trained, capsys):
    """The leak of issue 15: the same table without its split column was scored on a new random split
    whose 'test' genes were mostly training genes."""
    ds, with_split, without = table
    card = read_card(trained)
    test_genes = set(ds.gene_ids[ds.split == "test"].tolist())
    no_split = read_dataset(without)
    assert no_split.split is None
    assert _evaluated_genes(card, no_split) == test_genes
    capsys.readouterr()
    assert main(["evaluate", "--model", str(trained), "--data", without, "--device", "cpu"]) == 0
    by_cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert by_cli["genes_evaluated"] == len(test_genes)
    assert by_cli["test_auroc"] == pytest.approx(card["metrics"]["test_auroc"], abs=1e-6)
