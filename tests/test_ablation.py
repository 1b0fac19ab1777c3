"""Mark ablation: subsets, resumable retraining (a study), masking a trained model, the CLI verb."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from hmviz.cli.main import main
from hmviz.data import read_dataset
from hmviz.data.synthetic import make_sample_dataset
from hmviz.data.transforms import SignalTransform
from hmviz.errors import DataError, HmvizError
from hmviz.explain.ablation import NONE_MASKED, ablate_mask
from hmviz.studies import make_executor
from hmviz.studies.ablation import ablate_retrain, load_ablation
from hmviz.studies.executors import InlineExecutor, StudyCancelled
from hmviz.studies.marks import (
    mark_subsets,
    read_published_ablation,
    smallest_within_margin,
    subset_name,
)
from hmviz.studies.runner import RUNS_DIR
from hmviz.options import TrainOptions
from hmviz.training import train
from tests.conftest import ROOT, shared_path

THREE = ("H3K4me3", "H3K36me3", "H3K4me1")
TINY = {"epochs": 1, "marks": THREE}


@pytest.fixture(scope="module")
def small():
    ds, _ = make_sample_dataset(n_genes=200, seed=3)
    return ds


@pytest.fixture(scope="module")
def sample():
    return read_dataset(ROOT / "sample_data")


@pytest.fixture(scope="module")
def trained(sample):
    """DeepChrome trained 3 epochs on the sample data (planted: H3K4me3, H3K36me3 up; H3K27me3, H3K9me3 down)."""
    return train(sample, TrainOptions(model="deepchrome", seed=1, epochs=3, device="cpu"))


# ----------------------------------------------------------------------------- subsets
def test_every_non_empty_subset_once_all_marks_first_names_stable():
    marks = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
    subsets = mark_subsets(marks)
    assert len(subsets) == 31 == len(set(subsets))
    assert subsets[0] == marks and all(subsets)
    assert [sum(len(s) == k for s in subsets) for k in (1, 2, 3, 4, 5)] == [5, 10, 10, 5, 1]
    for s in subsets:  # each subset keeps the dataset's mark order
        assert list(s) == sorted(s, key=marks.index)
    assert subset_name(("H3K4me3", "H3K36me3")) == "H3K4me3+H3K36me3"
    assert mark_subsets(marks) == subsets
    with pytest.raises(DataError, match=r"\+"):
        mark_subsets(("a+b", "c"))


def test_smallest_within_margin_picks_fewest_marks_then_best():
    t = pd.DataFrame({"marks": ["A+B+C", "A+B", "B+C", "A", "C"], "n_marks": [3, 2, 2, 1, 1],
                      "metric": "test_auroc", "mean": [0.90, 0.895, 0.899, 0.885, 0.50]})
    assert smallest_within_margin(t, 0.02)["marks"] == "A"
    assert smallest_within_margin(t, 0.01)["marks"] == "B+C"  # both pairs qualify: the better one
    assert smallest_within_margin(t, 0.0)["marks"] == "A+B+C"
    # With a validation column the choice is made on validation, not test: "C" is worst on test but
    # within the margin on validation, so it is the answer.
    t2 = t.assign(valid_mean=[0.90, 0.80, 0.80, 0.70, 0.895])
    assert smallest_within_margin(t2, 0.01)["marks"] == "C"
    assert smallest_within_margin(t2, 0.01, on="test")["marks"] == "B+C"
    with pytest.raises(HmvizError, match="margin"):
        smallest_within_margin(t, -1)
    with pytest.raises(DataError, match="all-marks"):
        smallest_within_margin(t[t["n_marks"] < 3], 0.01)


# ------------------------------------------------------------------------ retraining
def _results(tmp_path):
    return sorted((tmp_path / RUNS_DIR).glob("*/result.json"))


def test_retrain_in_parallel_then_rerun_recomputes_nothing(small, tmp_path):
    events = []
    table = ablate_retrain(small, "deepchrome", seeds=(1,), out_dir=tmp_path, executor=make_executor("local", 2),
                           progress=events.append, **TINY)
    assert len(events) == 7 and not any(e.from_cache for e in events) and events[-1].done == 7
    assert len(table) == 7 and set(table["marks"]) == {subset_name(s) for s in mark_subsets(THREE)}
    assert {"marks", "n_marks", "metric", "mean", "std", "n_runs", "valid_metric", "valid_mean", "seed_1",
            "rank"} <= set(table.columns)
    assert (table["metric"] == "test_auroc").all() and (table["n_runs"] == 1).all()
    assert table["rank"].is_monotonic_increasing and table["rank"].iloc[0] == 1
    files = _results(tmp_path)
    assert len(files) == 7
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    again = []
    table2 = ablate_retrain(small, "deepchrome", seeds=(1,), out_dir=tmp_path, executor=InlineExecutor(),
                            progress=again.append, **TINY)
    assert all(e.from_cache for e in again) and table2.attrs["computed"] == 0 and table2.attrs["reused"] == 7
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes
    pd.testing.assert_frame_equal(table2, table)
    # Another metric of the same runs, without training.
    other = load_ablation(tmp_path, metric="test_pairwise_accuracy")
    assert (other["metric"] == "test_pairwise_accuracy").all() and len(other) == 7


def test_interrupted_run_keeps_finished_results_and_resumes(small, tmp_path):
    seen = []
    with pytest.raises(StudyCancelled, match="cancelled"):
        ablate_retrain(small, "deepchrome", seeds=(1,), out_dir=tmp_path, executor=InlineExecutor(),
                       progress=seen.append, should_stop=lambda: len(seen) >= 3, **TINY)
    assert len(_results(tmp_path)) == 3
    assert len(load_ablation(tmp_path)) == 3  # the finished subsets already make a table
    resumed = []
    table = ablate_retrain(small, "deepchrome", seeds=(1,), out_dir=tmp_path, executor=InlineExecutor(),
                           progress=resumed.append, **TINY)
    assert sum(e.from_cache for e in resumed) == 3 and table.attrs["computed"] == 4 and len(table) == 7


def test_out_dir_with_other_settings_is_refused(small, tmp_path):
    one = {"seeds": (1,), "out_dir": tmp_path, "executor": InlineExecutor(), "marks": ("H3K4me3",)}
    ablate_retrain(small, "deepchrome", epochs=1, **one)
    with pytest.raises(HmvizError, match=r"another study spec.*epochs: 1 there, 2 now"):
        ablate_retrain(small, "deepchrome", epochs=2, **one)
    with pytest.raises(HmvizError, match="fingerprint"):
        ablate_retrain(small.subset(np.arange(150)), "deepchrome", epochs=1, **one)
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["identity"]["models"][0]["name"] == "deepchrome" and study["identity"]["epochs"] == 1


def test_bad_arguments_are_clear(small):
    with pytest.raises(HmvizError, match="seeds"):
        ablate_retrain(small, "deepchrome", seeds=(), executor=InlineExecutor())
    with pytest.raises(HmvizError, match="differential"):
        ablate_retrain(small, "deepdiff", executor=InlineExecutor())
    with pytest.raises(HmvizError, match="H3K79me2"):
        ablate_retrain(small, "deepchrome", marks=("H3K79me2",), executor=InlineExecutor())


def test_retrain_needs_no_fcntl(small, tmp_path, monkeypatch):
    """Windows has no fcntl; the old ablation imported it for a lock file and crashed there."""
    import sys

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    table = ablate_retrain(small, "deepchrome", seeds=(1,), out_dir=tmp_path, executor=InlineExecutor(),
                           epochs=1, marks=("H3K4me3",))
    assert len(table) == 1 and not list(tmp_path.glob(".lock"))


# --------------------------------------------------------------------------- masking
def test_masking_nothing_reproduces_the_models_test_metric(trained, sample):
    table = ablate_mask(trained.model, trained.card, sample, subsets="leave-one-out")
    ref = table[table["masked_marks"] == NONE_MASKED].iloc[0]
    assert ref["value"] == pytest.approx(trained.metrics["test_auroc"], abs=1e-6) and ref["drop"] == 0
    assert "test split" in table.attrs["evaluated_on"] and table.attrs["genes_evaluated"] == 450
    assert len(table) == 1 + len(sample.marks)
    assert set(table.columns) >= {"marks", "masked_marks", "n_marks", "metric", "value", "drop", "rank"}


def test_masking_planted_marks_drops_the_metric_and_the_decoy_does_not(trained, sample):
    table = ablate_mask(trained.model, trained.card, sample,
                        subsets=[("H3K4me3", "H3K36me3"), ("H3K4me1",)]).set_index("masked_marks")
    assert table.loc["H3K36me3+H3K4me3", "drop"] > 0.05
    assert table.loc["H3K4me1", "drop"] < 0.02
    single = ablate_mask(trained.model, trained.card, sample, subsets="single").set_index("marks")
    assert abs(single.loc["H3K4me1", "value"] - 0.5) < 0.1  # the decoy alone knows nothing
    assert single.loc["H3K36me3", "value"] > 0.75


def test_other_data_is_scored_on_the_genes_evaluate_scores(trained, sample, tmp_path):
    from hmviz.checkpoints import save_model
    from hmviz.evaluation import evaluate

    save_model(trained.model, trained.card, tmp_path / "model")
    other = sample.subset(np.arange(300))  # part of the training data: only the model's test genes are scored
    table = ablate_mask(trained.model, trained.card, other, subsets="leave-one-out")
    n_test = int((other.split == "test").sum())
    assert table.attrs["evaluated_on"].startswith(f"{n_test} of the model's") and table.attrs["genes_evaluated"] == n_test
    reference = table.loc[table["masked_marks"] == NONE_MASKED, "value"].item()
    metrics = evaluate(tmp_path / "model", other, device="cpu")
    assert metrics["genes_evaluated"] == n_test and reference == pytest.approx(metrics["test_auroc"], abs=1e-6)

    unsplit = dataclasses.replace(other, split=None)  # no split column: still the model's test genes only
    table = ablate_mask(trained.model, trained.card, unsplit, subsets="leave-one-out")
    assert table.attrs["genes_evaluated"] == n_test
    reference = table.loc[table["masked_marks"] == NONE_MASKED, "value"].item()
    assert reference == pytest.approx(evaluate(tmp_path / "model", unsplit, device="cpu")["test_auroc"], abs=1e-6)


def test_scoring_other_inputs_leaves_the_evaluation_set_unchanged(trained, sample):
    import torch

    from hmviz.errors import ModelError
    from hmviz.evaluation import evaluation_set

    chosen = evaluation_set(trained.card, sample)
    before = chosen.metrics(trained.model)
    assert before["test_auroc"] == pytest.approx(trained.metrics["test_auroc"], abs=1e-6)
    x = chosen.inputs
    shuffled = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(0))]
    assert abs(chosen.metrics(trained.model, shuffled)["test_auroc"] - 0.5) < 0.1  # inputs no longer match labels
    assert chosen.inputs is x and chosen.metrics(trained.model) == before
    with pytest.raises(ModelError, match="same shape|must have shape"):
        chosen.metrics(trained.model, x[:, :, :2])


def test_zeros_baseline_means_no_reads(trained, sample):
    table = ablate_mask(trained.model, trained.card, sample, subsets="leave-one-out", baseline="zeros")
    assert "transform applied to 0" in table.attrs["baseline"]
    from hmviz.explain.ablation import _mask_baseline
    from hmviz.inference import prepare_inputs

    x = prepare_inputs(trained.card, sample)
    zero = _mask_baseline("zeros", trained.card, x, None).values
    expected = SignalTransform.from_dict(trained.card["transform"]).transform(np.zeros((1, 100, 5), np.float32))[0]
    np.testing.assert_allclose(zero, expected)
    assert not np.allclose(zero, 0)
    with pytest.raises(HmvizError, match="Unknown masking baseline"):
        ablate_mask(trained.model, trained.card, sample, baseline="gene_sample")
    with pytest.raises(HmvizError, match="at least one mark"):
        ablate_mask(trained.model, trained.card, sample, subsets=[sample.marks])


# ------------------------------------------------------------------------------- CLI
def test_cli_retrain_round_trip(tmp_path, capsys):
    out = tmp_path / "abl"
    argv = ["ablate", "--data", str(ROOT / "sample_data"), "--model", "deepchrome", "--out", str(out),
            "--seeds", "1", "--epochs", "1", "--marks", "H3K4me3,H3K4me1", "--workers", "1", "--quiet"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "smallest subset within 0.01 of all marks" in printed and "chosen on validation" in printed
    table = pd.read_csv(out / "ablation.csv")
    assert list(table.columns) == ["marks", "n_marks", "metric", "mean", "std", "n_runs", "valid_metric",
                                   "valid_mean", "seed_1", "rank"]
    assert set(table["marks"]) == {"H3K4me3+H3K4me1", "H3K4me3", "H3K4me1"}
    assert main(argv) == 0  # resumed: nothing to train


def test_cli_mask_round_trip(trained, tmp_path, capsys):
    from hmviz.checkpoints import save_model

    save_model(trained.model, trained.card, tmp_path / "model")
    code = main(["ablate", "--mode", "mask", "--data", str(ROOT / "sample_data"), "--model", str(tmp_path / "model"),
                 "--out", str(tmp_path / "mask"), "--subsets", "leave-one-out"])
    assert code == 0
    table = pd.read_csv(tmp_path / "mask" / "ablation.csv")
    assert len(table) == 6 and NONE_MASKED in set(table["masked_marks"])
    assert "evaluated on test split of the training data" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--seeds", "0"], "--seeds must be at least 1"),
    (["--mode", "mask", "--workers", "2"], "--workers applies to --mode retrain only"),
    (["--mode", "mask", "--set", "dropout=0.1"], "--set applies to --mode retrain only"),
    (["--set", "dropot=0.1"], "no setting 'dropot'"),
    (["--mode", "sideways"], "invalid choice"),
    (["--model", "nonet"], "Unknown model 'nonet'"),
])
def test_cli_bad_flags_are_one_error_line(tmp_path, capsys, extra, message):
    argv = ["ablate", "--data", str(ROOT / "sample_data"), "--model", "deepchrome", "--out", str(tmp_path)] + extra
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_cli_ablate_takes_set_for_a_ten_bin_table(small, tmp_path, capsys):
    """DeepChrome's default kernel and pool do not fit 10 bins; --set makes the ablation possible."""
    from hmviz.data.io import write_long

    ten = dataclasses.replace(small, signal=np.ascontiguousarray(small.signal[:, 45:55, :]),
                              tss_bin=small.tss_bin - 45)
    write_long(ten, tmp_path / "ten.csv")
    base = ["ablate", "--data", str(tmp_path / "ten.csv"), "--model", "deepchrome", "--seeds", "1", "--epochs",
            "1", "--marks", "H3K4me3,H3K36me3", "--workers", "1", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "default")]) == 2  # every run fails with the defaults
    capsys.readouterr()
    assert main(base + ["--out", str(tmp_path / "set"), "--set", "kernel_size=3", "--set", "pool_size=2"]) == 0
    table = pd.read_csv(tmp_path / "set" / "ablation.csv")
    assert len(table) == 3 and table["mean"].notna().all()
    card = json.loads(next((tmp_path / "set" / RUNS_DIR).glob("*/model_card.json")).read_text())
    assert card["config"]["kernel_size"] == 3 and card["config"]["pool_size"] == 2 and card["n_bins"] == 10


# ------------------------------------------------------------------------- published
def test_published_table_reads_as_an_ablation_table():
    path = shared_path("published", "pairwise_E066_HepG2_results.csv")
    table = read_published_ablation(path, cell="E066")
    assert len(table) == 31 and table["n_marks"].max() == 5
    assert table.loc[table["marks"] == "H3K9me3", "mean"].item() == pytest.approx(0.5684)
    assert smallest_within_margin(table, 0.01, on="test")["n_marks"] == 1
    best = smallest_within_margin(table, 0.01)  # on the published validation accuracy
    assert best["chosen_on"] == "valid_mean" and best["valid_mean"] >= reference_valid(table) - 0.01
    with pytest.raises(DataError, match="E066, HepG2"):
        read_published_ablation(path)


def reference_valid(table):
    return table.loc[table["n_marks"].idxmax(), "valid_mean"]


def test_masking_a_ranker_on_other_data_evaluates_every_gene(small, sample):
    result = train(small, TrainOptions(model="ranker-deepchrome", seed=1, epochs=1, device="cpu"))
    other = dataclasses.replace(sample.subset(np.arange(250)), split=None,  # genes the model never saw
                                gene_ids=np.array([f"OTHER{k}" for k in range(250)]))
    table = ablate_mask(result.model, result.card, other, subsets="leave-one-out")
    assert (table["metric"] == "test_pairwise_accuracy").all() and table.attrs["genes_evaluated"] == 250
    assert "all genes" in table.attrs["evaluated_on"]
