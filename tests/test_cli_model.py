"""The model verbs of the command line: train, evaluate, models, baselines (issue 3, item 5)."""

from __future__ import annotations

import json

import pytest

from hmviz.checkpoints import read_card
from hmviz.cli.main import main
from hmviz.data.io import write_long
from hmviz.data.synthetic import make_sample_dataset, make_two_cell_sample
from hmviz.models import MODEL_REGISTRY


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> str:
    """240 generated genes with expression (labels come from the median rule), as a long-format table."""
    ds, _ = make_sample_dataset(n_genes=240, seed=5)
    return str(write_long(ds, tmp_path_factory.mktemp("data") / "genes.csv.gz"))


@pytest.fixture(scope="module")
def two_cells(tmp_path_factory) -> str:
    return str(write_long(make_two_cell_sample(n_genes=200, seed=2), tmp_path_factory.mktemp("two") / "cells.csv.gz"))


def _json_line(out: str) -> dict:
    """The last stdout line, which must be one JSON object (what scripts parse)."""
    lines = out.strip().splitlines()
    assert lines, "nothing on stdout"
    return json.loads(lines[-1])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


@pytest.mark.parametrize("model, metric", [
    ("deepchrome", "test_auroc"),
    ("ranker-deepchrome", "test_pairwise_accuracy"),
    ("simplechrome", "test_auroc"),
])
def test_train_then_evaluate_report_the_same_test_metric(data, tmp_path, capsys, model, metric):
    out = tmp_path / "model"
    assert main(["train", "--data", data, "--model", model, "--out", str(out), "--epochs", "2", "--seed", "3",
                 "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    trained = _json_line(captured.out)
    assert trained["model"] == model and 0.0 <= trained[metric] <= 1.0
    assert "epoch 1/2" in captured.err  # progress is shown on stderr, never mixed into the JSON
    assert (out / "model.safetensors").exists() and read_card(out)["seed"] == 3

    assert main(["evaluate", "--model", str(out), "--data", data, "--device", "cpu"]) == 0
    evaluated = _json_line(capsys.readouterr().out)
    assert evaluated["evaluated_on"].startswith("test split of the training data")
    assert evaluated[metric] == pytest.approx(trained[metric], abs=1e-6)


def test_evaluate_against_baselines_compares_on_the_same_genes(data, tmp_path, capsys):
    """``evaluate --baselines``: the baselines are those of ``baselines`` for the model's run (same split,
    labels, seed), and each line's difference is the model's test AUROC minus the baseline's."""
    out = tmp_path / "model"
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "2", "--seed", "3",
                 "--device", "cpu", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", data, "--device", "cpu", "--baselines"]) == 0
    model, *baselines = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert main(["baselines", "--data", data, "--compare-with", "deepchrome", "--seed", "3"]) == 0
    alone = {b["model"]: b for b in map(json.loads, capsys.readouterr().out.strip().splitlines())}
    assert [b["model"] for b in baselines] == ["logistic", "boosted-trees"]
    for b in baselines:
        versus = b["versus_model"]
        assert b["test_auroc"] == alone[b["model"]]["test_auroc"]
        assert versus["metric"] == "test_auroc" and versus["genes"] == model["genes_evaluated"]
        assert versus["model_minus_baseline"] == pytest.approx(model["test_auroc"] - b["test_auroc"], abs=2e-6)
        low, high = versus["ci95"]
        assert low <= versus["model_minus_baseline"] <= high
        assert versus["sentence"].startswith(f"On the {versus['genes']:,} test genes both were scored on, ")
        assert "scores_by_gene" not in b


def test_evaluate_against_baselines_on_data_that_lost_its_split_uses_the_models_genes(tmp_path, capsys):
    """Issue 15's case for the baselines: the model was trained on a table with a split column and is
    evaluated on the same table without it. The baselines are trained and tested on the model's own genes
    (from its card), as on the table with the column, not refused for a split the user never asked for."""
    import dataclasses

    ds, _ = make_sample_dataset(n_genes=240, seed=5)
    assert ds.split is not None
    with_split = str(write_long(ds, tmp_path / "with.csv.gz"))
    without = str(write_long(dataclasses.replace(ds, split=None), tmp_path / "without.csv.gz"))
    out = str(tmp_path / "model")
    assert main(["train", "--data", with_split, "--model", "deepchrome", "--out", out, "--epochs", "1", "--quiet",
                 "--split", "file"]) == 0
    capsys.readouterr()
    lines = {}
    for name, path in (("with", with_split), ("without", without)):
        assert main(["evaluate", "--model", out, "--data", path, "--device", "cpu", "--baselines"]) == 0
        lines[name] = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert lines["without"][0]["evaluated_on"].startswith("test split of the training data: the model's")
    for a, b in zip(lines["with"][1:], lines["without"][1:], strict=True):
        assert a["test_auroc"] == b["test_auroc"] and a["versus_model"] == b["versus_model"]
        assert b["versus_model"]["genes"] == int((ds.split == "test").sum())


def test_a_ranker_on_labels_only_is_compared_on_the_auroc(tmp_path, capsys):
    """Without expression a ranker learns high/low pairs, and its pairwise accuracy is the AUROC: it is compared
    with its baselines (classifiers on the labels) on the test AUROC, not left without a comparison."""
    import dataclasses

    ds, _ = make_sample_dataset(n_genes=240, seed=5)
    assert ds.labels is not None
    path = str(write_long(dataclasses.replace(ds, expression=None), tmp_path / "labels.csv.gz"))
    out = str(tmp_path / "ranker")
    assert main(["train", "--data", path, "--model", "ranker-deepchrome", "--out", out, "--epochs", "1",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", out, "--data", path, "--device", "cpu", "--baselines"]) == 0
    model, *baselines = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert [b["model"] for b in baselines] == ["logistic", "boosted-trees"]
    for b in baselines:
        versus = b["versus_model"]
        assert versus["metric"] == "test_auroc" and "the test AUROC of ranker-deepchrome is" in versus["sentence"]
        assert versus["model_minus_baseline"] == pytest.approx(model["test_auroc"] - b["test_auroc"], abs=2e-6)


def test_deepdiff_reports_pearson_r(two_cells, tmp_path, capsys):
    assert main(["train", "--data", two_cells, "--model", "deepdiff", "--out", str(tmp_path / "dd"), "--epochs", "1",
                 "--quiet"]) == 0
    metrics = _json_line(capsys.readouterr().out)
    assert -1.0 <= metrics["test_pearson_r"] <= 1.0 and "test_direction_auroc" in metrics


def test_model_settings_reach_the_card_and_evaluate_rebuilds_them(two_cells, tmp_path, capsys):
    """--set picks DeepDiff's variant with the auxiliary per-cell heads; evaluate rebuilds that model."""
    out = tmp_path / "dd"
    assert main(["train", "--data", two_cells, "--model", "deepdiff", "--out", str(out), "--epochs", "1", "--quiet",
                 "--set", "variant=aux", "--set", "bin_lstm_impl=per_mark", "--set", "grad_clip=none"]) == 0
    trained = _json_line(capsys.readouterr().out)
    config = read_card(out)["config"]
    assert (config["variant"], config["bin_lstm_impl"], config["grad_clip"]) == ("aux", "per_mark", None)
    assert main(["evaluate", "--model", str(out), "--data", two_cells]) == 0
    assert _json_line(capsys.readouterr().out)["test_pearson_r"] == pytest.approx(trained["test_pearson_r"], abs=1e-6)
    assert main(["train", "--data", two_cells, "--model", "deepdiff", "--out", str(tmp_path / "x"), "--epochs", "1",
                 "--quiet", "--set", "variant=rawd"]) == 2
    assert "takes aux or raw_d; got 'rawd'" in _one_error_line(capsys)


@pytest.mark.parametrize("flags, selected_on, best_of", [
    ([], "validation metric", lambda h: (h["valid_auroc"], -h["valid_loss"])),  # the default; ties: lower loss
    (["--select-on", "loss"], "validation loss", lambda h: -h["valid_loss"]),
])
def test_the_kept_epoch_is_the_best_on_the_chosen_validation_quantity(data, tmp_path, capsys, flags, selected_on,
                                                                     best_of):
    out = tmp_path / "m"
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "4",
                 "--patience", "0", "--quiet", *flags]) == 0
    capsys.readouterr()
    card = read_card(out)
    assert card["training"]["selected_on"] == selected_on
    history = [h for h in card["history"] if h["stage"] == "train"]
    assert len(history) == 4
    best = max(history, key=best_of)  # the first of equals, as training keeps the first
    assert card["training"]["best_epoch"] == best["epoch"]
    assert card["metrics"]["valid_auroc"] == pytest.approx(best["valid_auroc"], abs=1e-6)


def test_marks_and_label_flags_reach_the_card(data, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "1",
                 "--marks", "H3K4me3,H3K36me3", "--label", "quantile:0.7", "--quiet"]) == 0
    capsys.readouterr()
    card = read_card(out)
    assert card["marks"] == ["H3K4me3", "H3K36me3"] and card["label_rule"] == "quantile:0.7"


def test_existing_model_is_kept_unless_forced(data, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    before = (out / "model.safetensors").read_bytes()
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "1", "--seed", "9",
                 "--quiet"]) == 2
    assert "--force" in _one_error_line(capsys)
    assert (out / "model.safetensors").read_bytes() == before
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "1", "--seed", "9",
                 "--quiet", "--force"]) == 0
    assert read_card(out)["seed"] == 9


@pytest.mark.parametrize("extra, message", [
    (["--model", "deepchrom"], "deepchrom"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--label", "quantile:2"], "quantile"),
    (["--marks", "H3K79me2"], "H3K79me2"),
    (["--device", "gpu"], "invalid choice"),
    (["--select-on", "auc"], "invalid choice"),
    (["--patience", "-1"], "--patience must be 0"),
    (["--set", "dropout"], "KEY=VALUE"),
    (["--set", "n_filters=x"], "takes a whole number; got 'x'"),
    (["--set", "n_filter=20"], "Did you mean 'n_filters'?"),
    (["--set", "n_bins=50"], "set by the data"),
    (["--set", "optimizer=rmsprop"], "takes adam or adamw or sgd"),
    (["--set", "pool_size=0"], "pool_size must be a positive integer"),
    (["--set", "dropout=1.5"], "dropout is a probability in [0, 1)"),
    (["--set", "ema_decay=1"], "ema_decay is a decay per step in [0, 1)"),
    (["--set", "ema_decay=-0.5"], "ema_decay must be a finite number >= 0"),
])
def test_train_bad_flags_are_one_error_line(data, tmp_path, capsys, extra, message):
    argv = ["train", "--data", data, "--model", "deepchrome", "--out", str(tmp_path / "m"), "--epochs", "1", "--quiet"]
    assert main(argv + extra) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_deepdiff_baselines_regress_the_fold_change(two_cells, capsys):
    assert main(["baselines", "--data", two_cells, "--compare-with", "deepdiff"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["model"] for r in lines] == ["ridge", "boosted-trees"]  # a regressor, named for what it is
    for r in lines:
        assert r["compared_with"] == "deepdiff" and "test_direction_auroc" in r
        assert r["test_pearson_r"] > 0.3  # the generated cells' planted differences are learnable
    assert main(["baselines", "--data", two_cells, "--compare-with", "deepdiff", "--cells", "A"]) == 2
    assert "two cell names" in _one_error_line(capsys)


def test_evaluate_refuses_incompatible_data_and_missing_models(data, two_cells, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--data", data, "--model", "deepchrome", "--out", str(out), "--epochs", "1",
                 "--marks", "H3K4me3,H3K36me3", "--quiet"]) == 0
    capsys.readouterr()
    fewer = make_sample_dataset(n_genes=60, seed=1)[0].select_marks(["H3K4me3"])
    other = str(write_long(fewer, tmp_path / "one_mark.csv"))
    assert main(["evaluate", "--model", str(out), "--data", other]) == 2
    assert "H3K36me3" in _one_error_line(capsys)
    assert main(["evaluate", "--model", str(tmp_path / "nothing"), "--data", data]) == 2
    assert "nothing" in _one_error_line(capsys)
    assert main(["evaluate", "--model", str(out), "--data", two_cells]) == 2
    assert "one cell" in _one_error_line(capsys)


def test_models_lists_every_registered_family(capsys):
    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert set(listed) == set(MODEL_REGISTRY) >= {"deepchrome", "attentivechrome", "deepdiff", "simplechrome",
                                                   "ranker-deepchrome", "ranker-attentivechrome"}
    assert listed["deepdiff"]["task"] == "differential"


def test_baselines_print_one_json_line_each(data, capsys):
    assert main(["baselines", "--data", data, "--seed", "2"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 2 and all(0.5 < r["test_auroc"] <= 1.0 for r in rows)


def test_every_family_trains_from_the_cli_on_e123(e123_dir, tmp_path, capsys):
    for model in ("deepchrome", "attentivechrome", "simplechrome", "ranker-deepchrome", "ranker-attentivechrome"):
        assert main(["train", "--data", str(e123_dir), "--model", model, "--out", str(tmp_path / model),
                     "--epochs", "1", "--quiet"]) == 0, model
        metrics = _json_line(capsys.readouterr().out)
        assert 0.0 <= metrics["test_auroc"] <= 1.0
        assert read_card(tmp_path / model)["split"]["kind"] == "file"  # E123's own train/valid/test files


def test_deepdiff_trains_from_the_cli_on_real_two_cell_data(deepdiff_dir, tmp_path, capsys):
    out = tmp_path / "dd"
    assert main(["train", "--data", str(deepdiff_dir), "--model", "deepdiff", "--out", str(out), "--epochs", "1",
                 "--quiet"]) == 0
    trained = _json_line(capsys.readouterr().out)
    assert -1.0 <= trained["test_pearson_r"] <= 1.0 and 0.0 <= trained["test_direction_auroc"] <= 1.0
    assert read_card(out)["cells"] == ["Cell1", "Cell2"]
    assert main(["evaluate", "--model", str(out), "--data", str(deepdiff_dir)]) == 0
    evaluated = _json_line(capsys.readouterr().out)
    assert evaluated["evaluated_on"].startswith("test split of the training data")
    assert evaluated["test_pearson_r"] == pytest.approx(trained["test_pearson_r"], abs=1e-6)


def test_models_lists_each_familys_training_defaults_from_its_config(capsys):
    from hmviz.models.attentivechrome import AttentiveChromeConfig
    from hmviz.models.simplechrome import SimpleChromeConfig

    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    ac = AttentiveChromeConfig(n_marks=5, n_bins=100)
    assert listed["attentivechrome"]["training"] == {"epochs": ac.epochs, "batch_size": ac.batch_size, "lr": ac.lr,
                                                     "min_steps": ac.min_steps, "ema_decay": None}
    assert listed["deepchrome"]["training"]["min_steps"] is None
    latent = SimpleChromeConfig(n_marks=5, n_bins=100).latent_dim
    assert f"to {latent} numbers" in listed["simplechrome"]["description"]
    assert main(["models"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("attentivechrome "))
    assert f"at most {ac.epochs} epochs, no early stop before {ac.min_steps} steps" in line
    sc = SimpleChromeConfig(n_marks=5, n_bins=100)
    assert listed["simplechrome"]["training"]["vae_epochs"] == sc.vae_epochs
    assert "vae_epochs" not in listed["attentivechrome"]["training"]
    main(["models"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("simplechrome "))
    assert f"at most {sc.epochs} epochs after {sc.vae_epochs} VAE epochs," in line


def test_deepchrome_on_ten_bins_names_settings_that_fit_and_they_train(tmp_path, capsys):
    """A table of 10 bins per gene (as a genome-wide set in 10-kb bins): DeepChrome's kernel 10 and pool 5 need 14;
    the error names values that fit, in the command's words, and training with them works."""
    ds, _ = make_sample_dataset(n_genes=240, seed=5)
    path = str(write_long(ds.merge_bins(10), tmp_path / "ten.csv.gz"))
    base = ["train", "--data", path, "--model", "deepchrome", "--epochs", "2"]
    assert main([*base, "--out", str(tmp_path / "default")]) == 2
    line = _one_error_line(capsys)
    assert "needs at least 14 bins per gene; this data has 10" in line
    assert "e.g. --set kernel_size=3 --set pool_size=2" in line
    assert not (tmp_path / "default").exists()
    assert main([*base, "--out", str(tmp_path / "fits"), "--set", "kernel_size=3", "--set", "pool_size=2"]) == 0
    card = read_card(tmp_path / "fits")
    assert (card["n_bins"], card["config"]["kernel_size"], card["config"]["pool_size"]) == (10, 3, 2)
