"""Train/valid/test splits (hmviz.data.splits)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmviz.data.dataset import HistoneDataset
from hmviz.data.splits import (
    DEFAULT_TEST_CHROMS,
    DEFAULT_VALID_CHROMS,
    choose_holdout_chroms,
    chromosome_split,
    ensure_split,
    normalize_chrom,
    quantile_strata,
    random_split,
    split_counts,
)
from hmviz.errors import DataError


def _dataset(n=40, chrom=None, split=None):
    return HistoneDataset(np.zeros((n, 3, 2), np.float32), [f"G{k}" for k in range(n)], ("a", "b"),
                          chrom=chrom, split=split)


# ------------------------------------------------------------------ random
def test_random_split_is_seeded_and_has_exact_counts():
    a = random_split(1000, (0.7, 0.15, 0.15), seed=3)
    b = random_split(1000, (0.7, 0.15, 0.15), seed=3)
    c = random_split(1000, (0.7, 0.15, 0.15), seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert [(a == s).sum() for s in ("train", "valid", "test")] == [700, 150, 150]


@pytest.mark.parametrize("n", [3, 4, 5, 7, 10, 11, 101])
def test_random_split_counts_add_up_and_no_split_is_empty(n):
    split = random_split(n, seed=0)
    counts = [(split == s).sum() for s in ("train", "valid", "test")]
    assert sum(counts) == n
    assert min(counts) >= 1
    assert tuple(counts) == split_counts(n)


def test_split_counts_rounding():
    assert split_counts(10, (0.7, 0.15, 0.15)) == (7, 2, 1)
    assert split_counts(3, (0.98, 0.01, 0.01)) == (1, 1, 1)
    assert split_counts(10, (0.8, 0.2, 0.0)) == (8, 2, 0)


@pytest.mark.parametrize("fractions", [(0.7, 0.2), (0.7, 0.2, 0.2), (0.0, 0.5, 0.5), (1.2, -0.1, -0.1), ("a", 1, 0)])
def test_bad_fractions(fractions):
    with pytest.raises(DataError, match="fraction"):
        random_split(10, fractions, seed=0)


# ------------------------------------------------------------------ chromosomes
@pytest.mark.parametrize("raw,expected", [("1", "chr1"), ("chr1", "chr1"), ("CHR01", "chr1"), ("x", "chrX"),
                                          ("chrx", "chrX"), ("MT", "chrM"), ("chrM", "chrM"), (" 22 ", "chr22"),
                                          ("chrUn_gl000220", "chrUn_gl000220"), ("NA", ""), (".", "")])
def test_normalize_chrom(raw, expected):
    assert normalize_chrom(raw) == expected


def test_chromosome_split_defaults_are_selenes_and_names_are_harmonised():
    assert DEFAULT_VALID_CHROMS == ("chr6", "chr7") and DEFAULT_TEST_CHROMS == ("chr8", "chr9")
    chrom = np.array(["1", "chr6", "7", "chr8", "9", "X", "chr2", "8"])
    split = chromosome_split(chrom)
    assert split.tolist() == ["train", "valid", "valid", "test", "test", "train", "train", "test"]
    # hold-outs named either way, also as a comma-separated string
    assert chromosome_split(chrom, valid_chroms="chr1", test_chroms=["X", "2"]).tolist() == \
        ["valid", "train", "train", "train", "train", "test", "test", "train"]


def test_chromosome_split_errors():
    chrom = np.array(["chr1", "chr2", "chr6", "chr7", "chr8", "chr9"])
    with pytest.raises(DataError, match="chr21 have no genes.*chr1, chr2, chr6"):
        chromosome_split(chrom, valid_chroms=["chr21"], test_chroms=["chr8"])
    with pytest.raises(DataError, match="both validation and test"):
        chromosome_split(chrom, valid_chroms=["chr8"], test_chroms=["8"])
    with pytest.raises(DataError, match="1 genes have no chromosome"):
        chromosome_split(np.array(["chr1", "NA", "chr8", "chr6", "chr7", "chr9"]))
    with pytest.raises(DataError, match="none is left for training"):
        chromosome_split(np.array(["chr6", "chr8"]), valid_chroms=["chr6"], test_chroms=["chr8"])


# ------------------------------------------------------------------ ensure_split
def test_ensure_split_keeps_the_file_split():
    file_split = ["train"] * 30 + ["valid"] * 5 + ["test"] * 5
    ds = _dataset(split=file_split)
    out = ensure_split(ds)
    assert out.split.tolist() == file_split
    assert out.meta["split"] == {"kind": "file", "counts": {"train": 30, "valid": 5, "test": 5}}
    assert "split" not in ds.meta  # input unchanged


def test_ensure_split_random_when_file_has_none_or_when_asked():
    ds = _dataset(split=None)
    out = ensure_split(ds, seed=5)
    assert out.meta["split"]["kind"] == "random" and out.meta["split"]["seed"] == 5
    np.testing.assert_array_equal(out.split, random_split(40, seed=5))
    assert ds.split is None
    replaced = ensure_split(_dataset(split=["train"] * 40), how="random", seed=1, fractions=(0.5, 0.25, 0.25))
    assert replaced.meta["split"] == {"kind": "random", "seed": 1, "fractions": [0.5, 0.25, 0.25],
                                      "counts": {"train": 20, "valid": 10, "test": 10}}
    json.dumps(replaced.meta["split"])  # JSON-safe for the model card
    # a split made earlier keeps its record when the file split is kept
    assert ensure_split(replaced).meta["split"] == replaced.meta["split"]


def test_ensure_split_by_chromosome():
    chrom = ["1", "chr6", "chr7", "8", "chr9"] * 8
    out = ensure_split(_dataset(chrom=chrom), how="chromosome", valid_chroms=DEFAULT_VALID_CHROMS,
                       test_chroms=DEFAULT_TEST_CHROMS)
    assert out.meta["split"] == {"kind": "chromosome", "valid_chroms": ["chr6", "chr7"],
                                 "test_chroms": ["chr8", "chr9"], "chroms_chosen": "given",
                                 "counts": {"train": 8, "valid": 16, "test": 16}}
    chosen = ensure_split(_dataset(chrom=chrom), how="chromosome", seed=4)  # none given: chosen from the seed
    info = chosen.meta["split"]
    assert info["chroms_chosen"] == "seeded" and info["seed"] == 4 and min(info["counts"].values()) == 8
    json.dumps(info)
    with pytest.raises(DataError, match="chromosome split only"):
        ensure_split(_dataset(chrom=chrom), how="random", test_chroms=["chr8"])
    with pytest.raises(DataError, match="no chrom column"):
        ensure_split(_dataset(), how="chromosome")
    with pytest.raises(DataError, match="Unknown split 'chrom'.*file, random, chromosome"):
        ensure_split(_dataset(), how="chrom")
    with pytest.raises(DataError, match="no 'train' genes"):
        ensure_split(_dataset(split=["test"] * 40))


# ------------------------------------------------------------------ chosen hold-outs, stratification
def test_chosen_hold_out_chromosomes_hold_about_their_fraction_of_genes():
    """On a human-like gene distribution (the synthetic data's chromosome sizes), every seed gives
    validation and test sets within 3 points of 15 % of the genes, whole chromosomes, disjoint."""
    from hmviz.data.synthetic import make_sample_dataset

    chrom = make_sample_dataset(n_genes=3000, seed=0)[0].chrom
    choices = set()
    for seed in range(8):
        valid, test = choose_holdout_chroms(chrom, (0.7, 0.15, 0.15), seed=seed)
        assert (valid, test) == choose_holdout_chroms(chrom, (0.7, 0.15, 0.15), seed=seed)
        assert not set(valid) & set(test)
        split = chromosome_split(chrom, valid, test)
        for name in ("valid", "test"):
            assert abs((split == name).mean() - 0.15) < 0.03, (seed, name, (split == name).mean())
        choices.add((tuple(valid), tuple(test)))
    assert len(choices) > 1  # the seed chooses


def test_chosen_hold_outs_keep_given_ones_and_need_three_chromosomes():
    chrom = np.array(["chr1"] * 50 + ["chr2"] * 10 + ["chr3"] * 10 + ["chr4"] * 10)
    valid, test = choose_holdout_chroms(chrom, test_chroms="4", seed=0)
    assert test == ["chr4"] and valid and "chr4" not in valid
    assert choose_holdout_chroms(chrom, valid_chroms="chr2", test_chroms="chr3") == (["chr2"], ["chr3"])
    with pytest.raises(DataError, match="only 2"):
        choose_holdout_chroms(np.array(["chr1"] * 5 + ["chr2"] * 5))


def test_stratified_random_split_balances_every_stratum_with_exact_totals():
    labels = np.r_[np.ones(300, int), np.zeros(700, int)]
    split = random_split(1000, (0.7, 0.15, 0.15), seed=3, strata=labels)
    assert [(split == s).sum() for s in ("train", "valid", "test")] == list(split_counts(1000))
    for s, share in (("train", 0.7), ("valid", 0.15), ("test", 0.15)):
        assert abs((labels[split == s] == 1).sum() - share * 300) <= 1  # each class split in the fractions
    np.testing.assert_array_equal(split, random_split(1000, (0.7, 0.15, 0.15), seed=3, strata=labels))
    assert not np.array_equal(split, random_split(1000, (0.7, 0.15, 0.15), seed=4, strata=labels))
    np.testing.assert_array_equal(random_split(50, seed=2), random_split(50, seed=2, strata=None))  # unchanged


def test_quantile_strata():
    values = np.r_[np.arange(100.0), np.nan]
    strata = quantile_strata(values, n_strata=4)
    assert strata[-1] == -1 and np.bincount(strata[:-1]).tolist() == [25, 25, 25, 25]
    assert (np.diff(strata[:-1]) >= 0).all()
    assert set(quantile_strata(np.arange(30.0)).tolist()) == {0}  # too few genes for more than one bin
