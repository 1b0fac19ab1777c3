"""Merging bins into wider ones (``HistoneDataset.merge_bins``, ``convert --merge-bins``): known answers."""

from __future__ import annotations

import numpy as np
import pytest

from hmviz.cli.main import main
from hmviz.data import HistoneDataset, MultiCellDataset, read_dataset
from hmviz.data.io import write_long
from hmviz.errors import DataError


def _ramp(n_bins: int = 12, tss_bin: int = 6, bin_size: int = 100) -> HistoneDataset:
    """2 genes x ``n_bins`` x 2 marks; bin b of mark m of gene g holds 100 g + 10 m + b (every value known)."""
    g, b, m = np.meshgrid(np.arange(2), np.arange(n_bins), np.arange(2), indexing="ij")
    return HistoneDataset(signal=(100 * g + 10 * m + b).astype(np.float32), marks=("H3K4me3", "H3K27me3"),
                          gene_ids=np.array(["A", "B"]), bin_size=bin_size, tss_bin=tss_bin,
                          split=np.array(["train", "test"], dtype=object))


def test_sum_adds_the_counts_of_each_group_and_the_tss_keeps_its_place():
    ds = _ramp()
    merged = ds.merge_bins(3)
    assert (merged.n_bins, merged.bin_size, merged.tss_bin) == (4, 300, 2)
    # bins 0-2, 3-5 upstream of the TSS (bin 6's start), 6-8, 9-11 downstream; gene B, mark H3K27me3: 110 + b
    assert merged.signal[1, :, 1].tolist() == [3 * 110 + 0 + 1 + 2, 3 * 110 + 12, 3 * 110 + 21, 3 * 110 + 30]
    assert merged.signal.sum() == pytest.approx(ds.signal.sum())  # nothing dropped: every count is kept
    assert merged.bin_starts_bp().tolist() == [-600, -300, 0, 300]  # the TSS is still a bin start
    assert merged.flank_bp == ds.flank_bp
    assert merged.signal.dtype == np.float32 and merged.split.tolist() == ["train", "test"]
    assert merged.meta["merged_bins"] == {"factor": 3, "how": "sum", "from": "12 bins of 100 bp",
                                          "dropped_bins": {"upstream": 0, "downstream": 0}}


def test_mean_averages_and_groups_that_do_not_fill_are_dropped_at_the_ends():
    ds = _ramp(n_bins=12, tss_bin=5)  # 5 bins upstream, 7 downstream: groups of 2 leave one bin at each end
    merged = ds.merge_bins(2, how="mean")
    assert (merged.n_bins, merged.tss_bin, merged.bin_size) == (5, 2, 200)
    assert merged.signal[0, :, 0].tolist() == [1.5, 3.5, 5.5, 7.5, 9.5]  # bins (1,2), (3,4) | (5,6), (7,8), (9,10)
    assert merged.meta["merged_bins"]["dropped_bins"] == {"upstream": 1, "downstream": 1}
    assert merged.bin_starts_bp().tolist() == [-400, -200, 0, 200, 400]


def test_merging_one_at_a_time_changes_nothing_and_two_cells_merge_alike():
    ds = _ramp()
    assert np.array_equal(ds.merge_bins(1).signal, ds.signal)
    two = MultiCellDataset({"X": ds, "Y": ds}).merge_bins(4)
    assert all(c.n_bins == 2 and c.bin_size == 400 and c.tss_bin == 1 for c in two.cells.values())  # 2 dropped per end


@pytest.mark.parametrize("factor, how, message", [
    (0, "sum", "whole number of at least 1"),
    (2.5, "sum", "whole number of at least 1"),
    (True, "sum", "whole number of at least 1"),
    (7, "sum", r"cannot be merged 7 at a time.*at most 6"),
    (2, "max", "'sum' \\(read counts\\) or 'mean'"),
])
def test_bad_merges_are_refused_with_what_would_work(factor, how, message):
    with pytest.raises(DataError, match=message):
        _ramp().merge_bins(factor, how)


def test_convert_merge_bins_writes_the_wider_bins(tmp_path, capsys):
    src = write_long(_ramp(n_bins=100, tss_bin=50), tmp_path / "in.csv.gz")
    out = tmp_path / "out.csv.gz"
    assert main(["convert", str(src), str(out), "--merge-bins", "10"]) == 0
    said = capsys.readouterr().out
    assert "2 genes x 10 bins x 2 marks" in said and "1000-bp bins (from 100 bins of 100 bp, 10 at a time by sum;" in said
    back = read_dataset(out)
    assert (back.n_bins, back.bin_size, back.tss_bin) == (10, 1000, 5)
    assert back.signal[0, 0, 0] == sum(range(10))  # gene A, H3K4me3: bins 0-9 hold 0..9


@pytest.mark.parametrize("flag, message", [
    ("0", "--merge-bins must be 1 or more"),
    ("60", "Give a smaller --merge-bins (at most 50"),
])
def test_convert_bad_merge_is_one_line_in_the_flags_words(tmp_path, capsys, flag, message):
    src = write_long(_ramp(n_bins=100, tss_bin=50), tmp_path / "in.csv.gz")
    assert main(["convert", str(src), str(tmp_path / "out.csv.gz"), "--merge-bins", flag]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out.csv.gz").exists()
