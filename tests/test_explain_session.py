"""The glue the app and the CLI share (``hmviz.explain.session``): model + data -> explanations,
baselines from training genes, and suggested gene pairs."""

from __future__ import annotations

import numpy as np
import pytest

from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import DataError, HmvizError
from hmviz.explain.session import prepare, suggest_genes, suggest_pairs
from hmviz.options import TrainOptions
from hmviz.training import train

MARKS = ("H3K4me3", "H3K27me3")


def toy(n: int = 120, seed: int = 0) -> HistoneDataset:
    """Expression follows H3K4me3 up and H3K27me3 down; a file split 60/30/30."""
    rng = np.random.default_rng(seed)
    signal = rng.poisson(2.0, size=(n, 10, 2)).astype(np.float32)
    signal[: n // 2, 4:6, 0] += 20  # active promoters
    expression = np.exp(0.2 * signal[:, 4:6, 0].sum(1) - 0.1 * signal[:, :, 1].sum(1) + rng.normal(0, 0.3, n))
    split = np.array(["train"] * (n // 2) + ["valid"] * (n // 4) + ["test"] * (n - n // 2 - n // 4), dtype=object)
    order = rng.permutation(n)
    return HistoneDataset(signal=signal[order], gene_ids=[f"G{i}" for i in range(n)], marks=MARKS, bin_size=100,
                          symbols=[f"SYM{i}" for i in range(n)], expression=expression[order], split=split)


@pytest.fixture(scope="module")
def trained():
    ds = toy()
    result = train(ds, TrainOptions(model="deepchrome", epochs=2, device="cpu", label_rule="median",
                                    model_overrides={"n_filters": 4, "hidden1": 8, "hidden2": 4, "kernel_size": 3,
                                                     "pool_size": 2}))
    return ds, result.model, result.card


def test_prepare_checks_the_data_against_the_model(trained):
    ds, model, card = trained
    session = prepare(model, card, ds)
    assert session.x.shape == (ds.n_genes, 10, 2) and not session.differential
    assert session.reference_note == "the model's training genes"
    np.testing.assert_array_equal(session.reference_rows, np.flatnonzero(ds.split == "train"))
    np.testing.assert_array_equal(session.evaluation_rows(), np.flatnonzero(ds.split == "test"))
    labels = session.labels()  # the card's median rule, fitted on the training genes
    assert set(np.unique(labels)) == {0, 1}
    np.testing.assert_array_equal(labels, (ds.expression > card["label_threshold"]).astype(int))
    with pytest.raises(DataError, match="H3K27me3"):
        prepare(model, card, ds.select_marks(["H3K4me3"]))
    two = MultiCellDataset({"a": ds, "b": ds})
    with pytest.raises(DataError, match="one cell type"):
        prepare(model, card, two)


def test_explain_pair_by_symbol_matches_by_row(trained):
    ds, model, card = trained
    session = prepare(model, card, ds)
    pair = session.explain_pair("SYM3", "G7", "integrated_gradients", "train_mean")
    assert pair.rows == (3, 7) and pair.names == ("SYM3", "SYM7") and pair.ids == ("G3", "G7")
    again = session.explain_pair(3, 7, "integrated_gradients", "train_mean")
    np.testing.assert_allclose(pair.explanation.values_a, again.explanation.values_a)
    assert set(pair.to_frame()["gene"]) == {"G3", "G7"}
    assert pair.explanation.baseline.name == "train_mean"
    assert session.baseline("train_mean") is session.baseline("train_mean")  # built once
    with pytest.raises(HmvizError, match="same gene"):
        session.explain_pair("G3", "SYM3")
    with pytest.raises(DataError, match="Closest matches"):
        session.explain_pair("SYM3", "SYMX7")


def test_explain_genes_is_the_explain_contract(trained):
    ds, model, card = trained
    session = prepare(model, card, ds)
    attr = session.explain_genes(["G1", 2], "saliency")
    assert attr.values.shape == (2, 10, 2) and attr.gene_ids == ("G1", "G2") and attr.baseline is None
    scores = session.scores()
    np.testing.assert_allclose(attr.outputs, scores[[1, 2]], rtol=1e-5, atol=1e-5)


def test_suggested_pairs_are_what_they_say():
    rng = np.random.default_rng(1)
    n = 200
    measured = rng.normal(0, 2, n)
    scores = measured + rng.normal(0, 1.5, n)
    rows = np.arange(0, n, 2)
    table = suggest_pairs(scores, measured, rows, n=5)
    assert set(table["kind"]) == {"confident", "surprising", "close"}
    assert set(table["row_a"]) | set(table["row_b"]) <= set(rows.tolist())
    assert (scores[table["row_a"]] >= scores[table["row_b"]]).all()  # A is the gene the model ranks higher
    np.testing.assert_allclose(table["probability"], 1 / (1 + np.exp(-(scores[table["row_a"]] - scores[table["row_b"]]))))
    truth = measured[table["row_a"]] - measured[table["row_b"]]
    kinds = table["kind"].to_numpy()
    assert (truth[kinds == "confident"] >= 1).all() and (truth[kinds == "surprising"] <= -1).all()
    assert (np.abs(truth[kinds == "close"]) >= 1).all()
    assert table[kinds == "close"]["probability"].max() < table[kinds == "confident"]["probability"].min()
    for kind in ("confident", "surprising", "close"):
        genes = table[kinds == kind][["row_a", "row_b"]].to_numpy().ravel()
        assert len(set(genes)) == len(genes)  # no gene twice within a kind
    assert suggest_pairs(scores, measured, rows[:1]).empty


def test_suggested_genes_for_two_cells():
    predicted = np.array([3.0, -2.5, 0.1, 2.0, -0.05])
    measured = np.array([2.0, 1.5, -3.0, 0.2, 4.0])
    table = suggest_genes(predicted, measured, np.arange(5))
    by_kind = {k: g["row"].tolist() for k, g in table.groupby("kind")}
    assert by_kind["confident"] == [0]          # large predicted change, same direction
    assert by_kind["surprising"] == [1, 2, 4]   # opposite direction, largest predicted first
    assert by_kind["close"][0] == 4             # near-zero prediction of a clear change
