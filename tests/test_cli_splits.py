"""Every split kind works through the CLI for every model family, the chromosome hold-out included
(issue 15, item 2): hold-out chromosomes chosen from the seed or given, recorded in the card with the
class balance of each split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmviz.checkpoints import read_card
from hmviz.cli.main import main
from hmviz.data.gene_sets import recorded_genes
from hmviz.data.io import read_dataset, write_long
from hmviz.data.splits import normalize_chrom
from hmviz.data.synthetic import make_sample_dataset, make_two_cell_sample
from hmviz.models import MODEL_REGISTRY

SINGLE_CELL = [name for name, spec in MODEL_REGISTRY.items() if spec.task != "differential"]
DIFFERENTIAL = [name for name, spec in MODEL_REGISTRY.items() if spec.task == "differential"]


@pytest.fixture(scope="module")
def one_cell(tmp_path_factory) -> str:
    """120 generated genes on 23 chromosomes, 20 bins of 500 bp, with a split column."""
    ds, _ = make_sample_dataset(n_genes=120, seed=1, n_bins=20, bin_size=500)
    return str(write_long(ds, tmp_path_factory.mktemp("one") / "genes.csv.gz"))


@pytest.fixture(scope="module")
def two_cells(tmp_path_factory) -> str:
    return str(write_long(make_two_cell_sample(n_genes=120, seed=2), tmp_path_factory.mktemp("two") / "cells.csv.gz"))


def _check_card(card: dict, data_path: str, kind: str) -> None:
    split = card["split"]
    assert split["kind"] == kind and all(split["counts"][s] > 0 for s in ("train", "valid", "test"))
    balance = split["class_balance"]
    assert all(0.0 < balance[s] < 1.0 for s in ("train", "valid", "test")) and balance["what"]
    genes = recorded_genes(card["genes"])
    assert {s: len(g) for s, g in genes.items()} == split["counts"]
    if kind == "chromosome":
        ds = read_dataset(data_path)
        ds = ds.first if hasattr(ds, "first") else ds
        chrom = dict(zip(ds.gene_ids, (normalize_chrom(c) for c in ds.chrom)))
        assert not set(split["valid_chroms"]) & set(split["test_chroms"])
        for name, held in (("valid", split["valid_chroms"]), ("test", split["test_chroms"])):
            assert {g for g, c in chrom.items() if c in held} == genes[name]  # whole chromosomes held out


@pytest.mark.parametrize("kind", ["file", "random", "chromosome"])
@pytest.mark.parametrize("model", SINGLE_CELL + DIFFERENTIAL)
def test_every_family_trains_with_every_split(model, kind, one_cell, two_cells, tmp_path, capsys):
    data = two_cells if model in DIFFERENTIAL else one_cell
    out = tmp_path / "m"
    assert main(["train", "--data", data, "--model", model, "--out", str(out), "--split", kind, "--epochs", "1",
                 "--quiet", "--device", "cpu", "--seed", "3"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out.strip().splitlines()[-1])  # the last line stays the JSON of metrics
    assert metrics["model"] == model and metrics["best_epoch"] == 1
    card = read_card(out)
    _check_card(card, data, kind)
    assert f"split {kind}" in captured.err and "% positive" in captured.err


@pytest.mark.parametrize("model", ["deepchrome", "ranker-deepchrome", *DIFFERENTIAL])
def test_baselines_run_on_a_chromosome_split(model, one_cell, two_cells, capsys):
    data = two_cells if model in DIFFERENTIAL else one_cell
    assert main(["baselines", "--data", data, "--compare-with", model, "--split", "chromosome"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == 2 and all(r["compared_with"] == model for r in rows)


def test_hold_out_chromosomes_are_seeded_or_given(one_cell, tmp_path, capsys):
    cards = []
    for k, extra in enumerate([["--seed", "1"], ["--seed", "1"], ["--seed", "2"],
                               ["--valid-chroms", "chr2,chr3", "--test-chroms", "1"], ["--test-chroms", "chr1"]]):
        out = tmp_path / f"m{k}"
        assert main(["train", "--data", one_cell, "--model", "deepchrome", "--out", str(out), "--epochs", "1",
                     "--quiet", "--split", "chromosome", *extra]) == 0
        cards.append(read_card(out)["split"])
    capsys.readouterr()
    held = [(c["valid_chroms"], c["test_chroms"]) for c in cards]
    assert held[0] == held[1] and held[0] != held[2]  # same seed, same choice; another seed, another choice
    assert cards[0]["chroms_chosen"] == "seeded" and cards[0]["seed"] == 1
    assert held[3] == (["chr2", "chr3"], ["chr1"]) and cards[3]["chroms_chosen"] == "given"
    assert held[4][1] == ["chr1"] and "chr1" not in held[4][0] and cards[4]["chroms_chosen"] == "test given, the other seeded"
    # chromosomes alone imply the chromosome split; with another split they are an error
    assert main(["train", "--data", one_cell, "--model", "deepchrome", "--out", str(tmp_path / "x"), "--epochs", "1",
                 "--quiet", "--test-chroms", "chr1"]) == 0
    assert read_card(tmp_path / "x")["split"]["kind"] == "chromosome"
    capsys.readouterr()
    assert main(["train", "--data", one_cell, "--model", "deepchrome", "--out", str(tmp_path / "y"), "--epochs", "1",
                 "--quiet", "--split", "random", "--test-chroms", "chr1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--split chromosome" in err[0]
