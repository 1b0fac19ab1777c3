"""hmviz.load -> TrainedModel with a typed ModelCard (issue 17, item 2): checked once, version-tagged, old
cards still load, and every workflow method gives what the library functions give."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest

import hmviz
from hmviz.card import ModelCard
from hmviz.checkpoints import CARD_FILE, CARD_FORMAT
from hmviz.errors import ModelError
from hmviz.models import get_spec
from hmviz.resources import bundled_models, sample_data

BUNDLED = sorted(p.name for p in bundled_models().iterdir() if (p / CARD_FILE).exists())


def _raw(name: str = "deepchrome") -> dict:
    return json.loads((bundled_models() / name / CARD_FILE).read_text())


@pytest.fixture(scope="module")
def genes():
    """120 genes of the sample data (the bundled models' window and marks)."""
    from hmviz.data import read_dataset

    ds = read_dataset(sample_data())
    return ds.subset(np.arange(120))


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_card_loads_typed_and_writes_back_unchanged(name):
    raw = _raw(name)
    card = hmviz.load_card(bundled_models() / name)
    assert card.model == raw["model"] and card.task == get_spec(raw["model"]).task
    assert card.marks == tuple(raw["marks"]) and (card.n_bins, card.bin_size) == (raw["n_bins"], raw["bin_size"])
    assert card.card_format == CARD_FORMAT == 1
    assert card.to_dict() == raw


def test_an_old_card_without_the_later_fields_loads_with_the_earlier_defaults():
    old = {k: v for k, v in _raw("ranker-deepchrome").items()
           if k not in ("card_format", "task", "tss_bin", "cells", "strand_aware", "genes", "description")}
    card = ModelCard.from_dict(old)
    assert card.task == "ranking"  # the family's task
    assert (card.tss_bin, card.cells, card.genes, card.strand_aware) == (None, None, None, None)
    assert card.card_format == 1
    assert card.to_dict() == old  # written back as it was: still a card without gene records


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(marks="H3K4me3"), "'marks'"),
    (lambda c: c.pop("transform"), "'transform' is missing"),
    (lambda c: c.update(card_format=2), "newer hmviz"),
    (lambda c: c.update(task="ranking"), "'task'"),
    (lambda c: c.pop("config"), "not an hmviz model card"),
])
def test_a_damaged_card_is_refused_once_naming_the_field(edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(ModelError, match=message):
        ModelCard.from_dict(raw, "my_model/model_card.json")


def test_train_options_rebuild_the_runs_split_on_its_own_data_only():
    raw = _raw()
    raw["split"] = {"kind": "chromosome", "fractions": [0.6, 0.2, 0.2], "valid_chroms": ["chr2"],
                    "test_chroms": ["chr3", "chr4"]}
    raw["seed"], raw["label_rule"], raw["transform"]["scaling"] = 7, "median", "max"
    card = ModelCard.from_dict(raw)
    same = card.train_options()
    assert (same.model, same.seed, same.marks, same.label_rule) == ("deepchrome", 7, card.marks, "median")
    assert (same.split, same.split_fractions, same.valid_chroms, same.test_chroms) == (
        "chromosome", (0.6, 0.2, 0.2), ("chr2",), ("chr3", "chr4"))
    assert (same.log1p, same.scaling, same.cells) == (True, "max", None)
    other = card.train_options(same_data=False)
    assert (other.split, other.label_rule, other.seed) == ("auto", None, 7)
    deepdiff = hmviz.load_card(bundled_models() / "deepdiff")
    assert deepdiff.train_options().cells == deepdiff.cells and len(deepdiff.cells) == 2


def test_the_cards_records_read_as_attributes_and_none_where_an_old_card_lacks_them():
    raw = _raw()
    raw["split"] = {"kind": "chromosome", "valid_chroms": ["chr2"], "test_chroms": ["chr3"],
                    "counts": {"train": 5, "valid": 2, "test": 1},
                    "class_balance": {"train": 0.4, "valid": 0.5, "test": 1.0, "what": "label 1 (high)"}}
    raw["training"].update(pairs_per_gene=8, pair_sampling="uniform")
    card = ModelCard.from_dict(raw)
    run = card.run
    assert (run.epochs_max, run.epochs_run, run.best_epoch, run.batch_size, run.seconds, run.device) == tuple(
        raw["training"][k] for k in ("epochs_max", "epochs_run", "best_epoch", "batch_size", "seconds", "device"))
    assert (run.pairs_per_gene, run.pair_sampling, run.bin_lstm_impl) == (8, "uniform", None)
    split = card.split_record
    assert (split.kind, split.valid_chroms, split.test_chroms, split.fractions) == (
        "chromosome", ("chr2",), ("chr3",), (0.7, 0.15, 0.15))
    assert (split.counts["test"], split.positive_share("valid"), split.positive) == (1, 0.5, "label 1 (high)")
    assert (card.data_source, card.fingerprint, card.n_genes) == (
        raw["data"]["source"], raw["data"]["fingerprint"], raw["data"]["genes"])
    assert card.bundled == raw["bundled"] and card.main_metric == "test_auroc"
    assert card.input_transform.to_dict() == raw["transform"]
    assert card.to_dict() == raw  # the records are views: the card is written back as it was

    old = {k: v for k, v in _raw().items() if k not in ("split", "training", "data", "bundled")}
    card = ModelCard.from_dict(old)
    assert card.run == hmviz.card.TrainingRun() and card.run.best_epoch is None
    assert card.split_record == hmviz.card.SplitRecord() and card.split_record.kind == "file"
    assert (card.data_source, card.fingerprint, card.n_genes, card.bundled) == (None, None, None, None)
    assert ModelCard.from_dict(_raw("deepdiff")).main_metric == "test_r2"
    assert card.to_dict() == old


def test_trained_model_gives_what_the_library_functions_give(genes, tmp_path):
    from hmviz.evaluation import evaluate
    from hmviz.explain.session import prepare
    from hmviz.inference import predict_scores

    path = bundled_models() / "deepchrome"
    model = hmviz.load(path)
    assert isinstance(model, hmviz.TrainedModel) and isinstance(model.card, hmviz.ModelCard)
    scores = model.predict(genes)
    np.testing.assert_array_equal(scores, predict_scores(model.module, _raw(), genes))
    assert model.evaluate(genes) == evaluate(path, genes, device="cpu")

    attr = model.explain(genes, [genes.gene_ids[3]], method="saliency")
    direct = prepare(model.module, _raw(), genes).explain_genes([3], "saliency", "zeros")
    np.testing.assert_array_equal(attr.values, direct.values)
    pair = model.explain_pair(genes, genes.gene_ids[0], genes.gene_ids[1], method="saliency")
    assert pair.explanation.probability == pytest.approx(
        1 / (1 + np.exp(-(scores[0] - scores[1]))), abs=1e-5)

    saved = hmviz.load(model.save(tmp_path / "copy"))
    assert saved.card == model.card
    np.testing.assert_array_equal(saved.predict(genes), scores)


def test_a_differential_model_does_not_pretend_to_score_one_cell(genes):
    with pytest.raises(ModelError, match="between two cells"):
        hmviz.load(bundled_models() / "deepdiff").predict(genes)


def test_import_hmviz_stays_light():
    """``hmviz.load`` and the card types come on first use; ``import hmviz`` loads no torch."""
    code = "import sys, hmviz; print(sorted(m for m in sys.modules if m.startswith(('torch', 'hmviz.'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['hmviz._version', 'hmviz.errors']"


def test_card_copies_do_not_share_state():
    card = hmviz.load_card(bundled_models() / "deepchrome")
    d = card.to_dict()
    d["transform"]["center"][0] = 123.0
    assert card.to_dict() == _raw() and copy.deepcopy(card) == card
