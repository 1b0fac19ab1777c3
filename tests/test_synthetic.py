"""Generated sample data with planted rules (hmviz.data.synthetic) and the shipped sample_data/."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from hmviz.data.splits import ensure_split
from hmviz.data.synthetic import (
    MARKS,
    PLANTED_RULES,
    main,
    make_sample_dataset,
    oracle_log_expression,
    planted_terms,
    write_sample_data,
)
from hmviz.errors import DataError

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
ORACLE_RANGE = (0.85, 0.95)  # documented in sample_data/README.md


@pytest.fixture(scope="module")
def sample():
    return make_sample_dataset(n_genes=1500, seed=0)


def test_same_seed_same_data_other_seed_differs():
    a, truth_a = make_sample_dataset(n_genes=120, seed=3)
    b, truth_b = make_sample_dataset(n_genes=120, seed=3)
    c, _ = make_sample_dataset(n_genes=120, seed=4)
    assert a.fingerprint() == b.fingerprint() and truth_a == truth_b
    np.testing.assert_array_equal(a.split, b.split)
    assert a.fingerprint() != c.fingerprint()


def test_dataset_shape_and_annotation(sample):
    ds, truth = sample
    assert ds.signal.shape == (1500, 100, 5) and ds.signal.dtype == np.float32
    assert ds.marks == MARKS == ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
    assert ds.bin_size == 100 and ds.tss_bin == 50 and ds.strand_aware is True
    assert ds.gene_ids[0] == "SIM00001" and ds.symbols[0] == "SIMG1"
    assert set(ds.strand) == {"+", "-"}
    assert set(ds.chrom) == {f"chr{k}" for k in range(1, 23)} | {"chrX"}
    # counts: integers, sparse, over-dispersed
    assert (ds.signal == np.round(ds.signal)).all() and ds.signal.min() >= 0
    assert 0.3 < (ds.signal == 0).mean() < 0.7
    for k in range(ds.n_marks):
        x = ds.signal[:, :, k]
        assert x.var() > 2 * x.mean()
    # expression: RPKM-like, non-negative, some zeros; labels are the median rule on train genes
    assert (ds.expression >= 0).all() and 0.1 < (ds.expression == 0).mean() < 0.5
    train = ds.split == "train"
    threshold = np.median(ds.expression[train])
    np.testing.assert_array_equal(ds.labels, (ds.expression > threshold).astype(np.int8))
    assert truth["label_threshold"] == pytest.approx(threshold, abs=1e-6)
    assert ds.meta["split"]["kind"] == "random" and ds.meta["labels"]["rule"] == "median"
    # a chromosome split works with the default (selene) hold-outs
    assert ensure_split(ds, how="chromosome").meta["split"]["counts"]["test"] > 0


def test_planted_signal_is_present(sample):
    ds, _ = sample
    starts = ds.bin_starts_bp()
    high, low = ds.labels == 1, ds.labels == 0
    col = {m: ds.marks.index(m) for m in ds.marks}

    def region_mean(mark, lo, hi, genes):
        bins = (starts >= lo) & (starts < hi)
        return ds.signal[genes][:, bins, col[mark]].mean()

    assert region_mean("H3K4me3", -1000, 1000, high) > 2 * region_mean("H3K4me3", -1000, 1000, low)
    assert region_mean("H3K36me3", 1000, 5000, high) > 2 * region_mean("H3K36me3", 1000, 5000, low)
    assert region_mean("H3K27me3", -5000, 5000, low) > 1.5 * region_mean("H3K27me3", -5000, 5000, high)
    assert region_mean("H3K9me3", -5000, 5000, low) > 1.3 * region_mean("H3K9me3", -5000, 5000, high)
    # the decoy is the same in both classes
    k4me1_high, k4me1_low = region_mean("H3K4me1", -5000, 5000, high), region_mean("H3K4me1", -5000, 5000, low)
    assert abs(k4me1_high - k4me1_low) < 0.1 * k4me1_low
    # H3K4me3: the TSS bin dips below the peaks on both sides (nucleosome-depleted region)
    profile = ds.signal[:, :, col["H3K4me3"]].mean(axis=0)
    t = ds.tss_bin
    assert profile[t] < 0.8 * profile[t - 3] and profile[t] < 0.8 * profile[t + 3]
    # H3K36me3 lies downstream of the TSS (strand-aware bins)
    body = ds.signal[:, :, col["H3K36me3"]].mean(axis=0)
    assert body[t + 30:].mean() > 3 * body[: t - 10].mean()


def test_oracle_auroc_is_in_the_documented_range(sample):
    ds, truth = sample
    oracle = oracle_log_expression(ds)
    auc = roc_auc_score(ds.labels, oracle)
    assert ORACLE_RANGE[0] < auc < ORACLE_RANGE[1]
    assert truth["oracle_auroc"]["all_genes"] == pytest.approx(auc, abs=1e-4)
    # the interaction matters: without the bivalent gate the oracle is worse
    rules = copy.deepcopy(PLANTED_RULES)
    for term in rules["terms"]:
        term.pop("multiplied_by", None)
    assert roc_auc_score(ds.labels, oracle_log_expression(ds, rules)) < auc - 0.02
    gate = planted_terms(ds)["bivalent_gate"]
    assert 0.1 < (gate > 0.5).mean() < 0.3  # bivalent promoters are a minority
    # the decoy adds nothing beyond chance
    k4me1 = np.log1p(ds.signal[:, :, ds.marks.index("H3K4me1")]).mean(axis=1)
    assert abs(roc_auc_score(ds.labels, k4me1) - 0.5) < 0.05


def test_ground_truth_is_machine_readable(sample):
    ds, truth = sample
    loaded = json.loads(json.dumps(truth))
    np.testing.assert_allclose(oracle_log_expression(ds, loaded), oracle_log_expression(ds, PLANTED_RULES))
    assert loaded["expected_sign"] == {"H3K27me3": -1, "H3K36me3": 1, "H3K4me1": 0, "H3K4me3": 1, "H3K9me3": -1}
    assert {t["mark"] for t in loaded["terms"]} == {"H3K4me3", "H3K36me3", "H3K27me3", "H3K9me3"}
    assert loaded["interaction"]["marks"] == ["H3K27me3", "H3K4me3"] and loaded["decoy_marks"] == ["H3K4me1"]
    assert loaded["run"]["n_genes"] == 1500 and loaded["run"]["strand_aware"] is True
    assert loaded["noise"]["sd"] > 0


def test_window_must_cover_the_planted_regions():
    with pytest.raises(DataError, match="-5 kb..\\+5 kb"):
        make_sample_dataset(n_genes=50, n_bins=40, bin_size=100)
    ds, _ = make_sample_dataset(n_genes=50, n_bins=50, bin_size=200)
    assert ds.signal.shape == (50, 50, 5)


def test_files_are_byte_identical_for_a_seed(tmp_path):
    a = write_sample_data(tmp_path / "a", seed=0, n_genes=60)
    b = write_sample_data(tmp_path / "b", seed=0, n_genes=60)
    c = write_sample_data(tmp_path / "c", seed=1, n_genes=60)
    assert sorted(a) == ["README.md", "expression.tsv", "ground_truth.json", "histone.csv.gz",
                         "two_cells/histone.csv.gz"]
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    for name in ("histone.csv.gz", "expression.tsv", "ground_truth.json", "two_cells/histone.csv.gz"):
        assert a[name].read_bytes() != c[name].read_bytes(), name
    lines = a["expression.tsv"].read_text().splitlines()
    assert lines[0] == "gene_id\texpression" and len(lines) == 61


def test_written_files_read_back(tmp_path):
    from hmviz.data.io import read_dataset

    paths = write_sample_data(tmp_path, seed=2, n_genes=40)
    expected, _ = make_sample_dataset(n_genes=40, seed=2)
    ds = read_dataset(paths["histone.csv.gz"], expression=paths["expression.tsv"])
    assert ds.marks == expected.marks and ds.tss_bin == expected.tss_bin and ds.bin_size == expected.bin_size
    np.testing.assert_array_equal(ds.gene_ids, expected.gene_ids)
    np.testing.assert_array_equal(ds.signal, expected.signal)
    np.testing.assert_array_equal(ds.labels, expected.labels)
    np.testing.assert_array_equal(ds.split, expected.split)
    np.testing.assert_allclose(ds.expression, expected.expression)


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--seed", "5", "--n-genes", "30"]) == 0
    assert (tmp_path / "ground_truth.json").exists()
    assert main(["--out", str(tmp_path), "--n-genes", "3"]) == 2
    assert capsys.readouterr().err.startswith("error: n_genes must be at least 10")


def test_shipped_sample_data_is_current_and_small():
    truth_file = SAMPLE_DATA / "ground_truth.json"
    if not truth_file.exists():
        pytest.fail("sample_data/ is missing; run: python -m hmviz.data.synthetic --out sample_data --seed 0")
    shipped = json.loads(truth_file.read_text())
    _, truth = make_sample_dataset(n_genes=shipped["run"]["n_genes"], seed=shipped["run"]["seed"])
    assert truth == shipped, "sample_data/ is stale; regenerate it (see sample_data/README.md)"
    assert ORACLE_RANGE[0] < shipped["oracle_auroc"]["all_genes"] < ORACLE_RANGE[1]
    total = sum(p.stat().st_size for p in SAMPLE_DATA.iterdir() if p.is_file())
    assert total < 5 * 1024 * 1024


def test_two_cell_sample_reads_as_two_cells_with_expression(tmp_path):
    from hmviz.data.dataset import MultiCellDataset
    from hmviz.data.io import read_dataset

    paths = write_sample_data(tmp_path / "s", seed=0, n_genes=60)
    two = read_dataset(paths["two_cells/histone.csv.gz"])
    assert isinstance(two, MultiCellDataset) and two.cell_names == ["synthetic", "synthetic-B"]
    a, b = two.cells.values()
    assert a.expression is not None and b.expression is not None
    assert not np.array_equal(a.signal, b.signal) and np.array_equal(a.split, b.split)
    one = read_dataset(tmp_path / "s")  # the folder itself stays the one-cell dataset
    assert one.n_genes == 60 and one.cell == "synthetic"
