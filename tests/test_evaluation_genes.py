"""A model knows its genes: `evaluate` scores the model's own test genes, never its training genes
(issue 15, item 1)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from hmviz.checkpoints import read_card, save_model
from hmviz.cli.main import main
from hmviz.data.io import read_dataset, write_long
from hmviz.data.synthetic import make_sample_dataset
from hmviz.evaluation import evaluate, evaluation_set
from hmviz.options import TrainOptions
from hmviz.training import train


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


@pytest.fixture(scope="module")
def small_model():
    """deepchrome trained for one epoch on 300 generated genes (their own 70/15/15 split)."""
    ds, _ = make_sample_dataset(n_genes=300, seed=4)
    result = train(ds, TrainOptions(model="deepchrome", seed=2, epochs=1, device="cpu"))
    return ds, result


def test_the_card_records_every_gene_of_every_split_and_a_split_fingerprint(small_model):
    from hmviz.data.gene_sets import recorded_genes

    ds, result = small_model
    genes = recorded_genes(result.card["genes"])
    for name in ("train", "valid", "test"):
        assert genes[name] == set(ds.gene_ids[ds.split == name].tolist())
        assert result.card["genes"][name]["count"] == len(genes[name])
    assert result.card["data"]["split_fingerprint"] == result.card["genes"]["split_fingerprint"]
    moved = ds.split.copy()
    moved[np.flatnonzero(ds.split == "test")[0]] = "train"  # one gene moved: another split fingerprint
    other = train(dataclasses.replace(ds, split=moved, meta={}), TrainOptions(model="deepchrome", epochs=1))
    assert other.card["data"]["fingerprint"] == result.card["data"]["fingerprint"]  # same data...
    assert other.card["data"]["split_fingerprint"] != result.card["data"]["split_fingerprint"]  # ...other split


def test_data_the_model_never_saw_is_evaluated_whole_and_labelled_so(small_model):
    _, result = small_model
    other, _ = make_sample_dataset(n_genes=120, seed=9)
    other = dataclasses.replace(other, gene_ids=np.array([f"NEW{k}" for k in range(120)]), meta={})
    chosen = evaluation_set(result.card, other)
    assert chosen.n_genes == 120  # its own split column is ignored: no gene of it was seen in training
    assert chosen.evaluated_on.startswith("all genes of this data (120)") and "never trained" in chosen.evaluated_on
    assert chosen.gene_counts == {"model_test_genes": 45, "model_test_genes_in_data": 0, "unseen_genes_in_data": 120,
                                  "model_train_valid_genes_left_out": 0}


def test_partial_overlap_evaluates_only_genes_the_model_did_not_train_or_validate_on(small_model):
    ds, result = small_model
    rows = np.r_[np.flatnonzero(ds.split == "train")[:50], np.flatnonzero(ds.split == "valid")[:10],
                 np.flatnonzero(ds.split == "test")[:20]]
    part = ds.subset(rows)
    fresh, _ = make_sample_dataset(n_genes=300, seed=11)
    fresh = fresh.subset(np.arange(30))
    fresh = dataclasses.replace(fresh, gene_ids=np.array([f"NEW{k}" for k in range(30)]), meta={})
    mixed = dataclasses.replace(part, signal=np.concatenate([part.signal, fresh.signal]),
                                gene_ids=np.r_[part.gene_ids, fresh.gene_ids], symbols=None, chrom=None, strand=None,
                                expression=np.r_[part.expression, fresh.expression],
                                labels=np.r_[part.labels, fresh.labels], split=None, meta={})
    chosen = evaluation_set(result.card, mixed)
    evaluated = set(mixed.gene_ids[chosen.task.test_idx].tolist())
    expected = set(ds.gene_ids[rows[60:]].tolist()) | set(fresh.gene_ids.tolist())
    assert evaluated == expected
    assert chosen.evaluated_on == ("20 of the model's 45 test genes and 30 genes the model never saw "
                                   "(60 training/validation genes of the model in this data left out)")
    # The pages draw and suggest the same genes as the metrics (the Evaluate page's figures beside its table),
    # not the data's own test split; data of training genes only: every gene, to explain them.
    from hmviz.explain.session import prepare

    session = prepare(result.model, result.card, mixed)
    assert set(mixed.gene_ids[session.evaluation_rows()].tolist()) == expected
    seen = dataclasses.replace(ds.subset(np.flatnonzero(ds.split != "test")), split=None, meta={})
    assert len(prepare(result.model, result.card, seen).evaluation_rows()) == seen.n_genes


def test_data_holding_only_training_genes_is_refused(small_model):
    from hmviz.errors import DataError

    ds, result = small_model
    seen = ds.subset(np.flatnonzero(ds.split != "test"))
    with pytest.raises(DataError, match="none of its 45 test genes is here"):
        evaluation_set(result.card, dataclasses.replace(seen, split=None, meta={}))


def test_an_old_card_without_gene_records_still_evaluates_and_says_so(small_model, tmp_path):
    from hmviz.errors import DataError

    ds, result = small_model
    old = {k: v for k, v in result.card.items() if k != "genes"}
    save_model(result.model, old, tmp_path / "old")
    metrics = evaluate(tmp_path / "old", ds, device="cpu")
    assert metrics["test_auroc"] == pytest.approx(result.metrics["test_auroc"], abs=1e-6)
    assert metrics["evaluated_on"].startswith("test split of the training data")
    assert "predates gene records" in metrics["evaluated_on"] and "model_test_genes" not in metrics
    # a file split that the data no longer carries cannot be rebuilt: refused, not invented
    file_card = {**old, "split": {"kind": "file", "counts": old["split"]["counts"]}}
    with pytest.raises(DataError, match="predates gene records"):
        evaluation_set(file_card, dataclasses.replace(ds, split=None, meta={}))


def test_real_e123_table_without_its_split_is_scored_on_the_models_test_genes(e123_dir, tmp_path, capsys):
    """Acceptance on real data: the 600 E123 genes, trained on their own train/valid/test files, then
    given back as one table without a split column."""
    real = read_dataset(e123_dir)
    out = tmp_path / "m"
    assert main(["train", "--data", str(e123_dir), "--model", "deepchrome", "--out", str(out), "--epochs", "1",
                 "--quiet", "--device", "cpu"]) == 0
    table = write_long(dataclasses.replace(real, split=None, meta={}), tmp_path / "e123.csv.gz")
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", str(table), "--device", "cpu"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    n_test = int((real.split == "test").sum())
    assert metrics["genes_evaluated"] == metrics["model_test_genes"] == n_test
    assert metrics["test_auroc"] == pytest.approx(read_card(out)["metrics"]["test_auroc"], abs=1e-6)
    assert _evaluated_genes(read_card(out), read_dataset(table)) == set(real.gene_ids[real.split == "test"].tolist())
