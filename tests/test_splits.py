"""Train/valid/test splits (hmviz.data.splits)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hmviz.data.dataset import HistoneDataset
from hmviz.data.splits import (
    DEFAULT_TEST_CHROMS,
    DEFAULT_VALID_CHROMS,
    chromosome_split,
    ensure_split,
    normalize_chrom,
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
    out = ensure_split(_dataset(chrom=chrom), how="chromosome")
    assert out.meta["split"] == {"kind": "chromosome", "valid_chroms": ["chr6", "chr7"],
                                 "test_chroms": ["chr8", "chr9"], "counts": {"train": 8, "valid": 16, "test": 16}}
    with pytest.raises(DataError, match="no chrom column"):
        ensure_split(_dataset(), how="chromosome")
    with pytest.raises(DataError, match="Unknown split 'chrom'.*file, random, chromosome"):
        ensure_split(_dataset(), how="chrom")
    with pytest.raises(DataError, match="no 'train' genes"):
        ensure_split(_dataset(split=["test"] * 40))
