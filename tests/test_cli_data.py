"""``python -m hmviz validate`` and ``convert`` on the real data and on bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hmviz.cli.main import main
from hmviz.data import MultiCellDataset, read_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_validate_e123(e123_dir, capsys):
    assert main(["validate", str(e123_dir)]) == 0
    out = capsys.readouterr().out
    assert "genes:    600" in out
    assert "bins:     100 x 100 bp, TSS at bin 50 (window -5000 .. +5000 bp)" in out
    assert "marks:    H3K27me3, H3K36me3, H3K4me1, H3K4me3, H3K9me3 (5, in this order)" in out
    assert "split:    train 200, valid 200, test 200" in out
    assert "labels:   332 high / 268 low" in out


def test_validate_deepdiff_and_toy(deepdiff_dir, toy_dir, capsys):
    assert main(["validate", str(deepdiff_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 cell types over the same genes: Cell1, Cell2" in out
    assert out.count("bins:     200 x 100 bp") == 2 and "H3K4me1, H3K4me3, H3K9me3, H3K27me3, H3K36me3" in out
    assert main(["validate", str(toy_dir), "--format", "deepchrome"]) == 0
    out = capsys.readouterr().out
    assert "genes:    30" in out and "split:    train 10, valid 10, test 10" in out


def test_validate_prints_notes(tmp_path, capsys):
    (tmp_path / "d.tsv").write_text("gene_id\tbin\tH3K4me3\n" + "".join(f"g\t{b}\t1\n" for b in range(4)))
    assert main(["validate", str(tmp_path / "d.tsv")]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "100 bp with the TSS at the start of bin bins // 2" in out


@pytest.mark.parametrize("fixture", ["e123_dir", "toy_dir", "deepdiff_dir"])
@pytest.mark.parametrize("suffix", ["csv.gz", "parquet"])
def test_convert_real_data_round_trip(request, tmp_path, capsys, fixture, suffix):
    src = request.getfixturevalue(fixture)
    out = tmp_path / f"converted.{suffix}"
    assert main(["convert", str(src), str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: ")
    original, back = read_dataset(src), read_dataset(out)
    pairs = (zip(original.cells.values(), back.cells.values()) if isinstance(original, MultiCellDataset)
             else [(original, back)])
    for a, b in pairs:
        assert np.array_equal(a.signal, b.signal) and np.array_equal(a.gene_ids, b.gene_ids)
        assert (a.marks, a.bin_size, a.tss_bin) == (b.marks, b.bin_size, b.tss_bin)
        for name in ("labels", "split", "symbols"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None and y is None) or np.array_equal(x, y)
        assert (a.expression is None and b.expression is None) or np.array_equal(a.expression, b.expression,
                                                                                  equal_nan=True)


def test_convert_refuses_to_overwrite_without_force(toy_dir, tmp_path, capsys):
    out = tmp_path / "toy.csv"
    out.write_text("keep me\n")
    assert main(["convert", str(toy_dir), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert out.read_text() == "keep me\n"
    assert main(["convert", str(toy_dir), str(out), "--force"]) == 0
    assert read_dataset(out).n_genes == 30


def test_failed_convert_leaves_existing_output_untouched(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("g1,1,0,0,0,0,0,1\ng1,1,0,0,0,0,0,1\n")  # bin 1 twice
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous contents")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["convert", str(bad), str(out), "--force"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bin 1 twice" in err and err.count("\n") == 1
    assert out.read_bytes() == b"previous contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left behind


def test_convert_bad_output_name_reads_nothing(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "missing"), str(tmp_path / "out.xlsx")]) == 2
    assert "cannot tell the output format" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "out.csv")]) == 2
    assert "needs at least one input and an output" in capsys.readouterr().err


def test_bad_format_flag_is_one_line(capsys, tmp_path):
    assert main(["validate", str(tmp_path), "--format", "bed"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'bed'" in err


def test_subprocess_bad_input_is_one_error_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes("gene_id,bin,H3K4me3\n".encode("utf-16"))
    run = subprocess.run([sys.executable, "-m", "hmviz", "validate", str(bad)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1 and "UTF-16" in run.stderr
