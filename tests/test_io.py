"""Readers and the long-format writer: round trips, determinism, atomic writes, format details."""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hmviz.data import HistoneDataset, MultiCellDataset, read_dataset, read_expression, write_long
from hmviz.data.io import detect_format
from hmviz.errors import DataError

SUFFIXES = ["csv", "csv.gz", "tsv", "tsv.gz", "parquet"]
FIELDS = ("signal", "gene_ids", "symbols", "chrom", "strand", "expression", "labels", "split")


def assert_same(a: HistoneDataset, b: HistoneDataset) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype or name in ("gene_ids", "symbols", "chrom", "strand", "split"), name
            assert np.array_equal(x, y, equal_nan=name == "expression"), name
    assert (a.marks, a.bin_size, a.tss_bin, a.cell, a.strand_aware) == (b.marks, b.bin_size, b.tss_bin, b.cell,
                                                                         b.strand_aware)


def assert_same_data(a, b) -> None:
    assert type(a) is type(b)
    if isinstance(a, MultiCellDataset):
        assert list(a.cells) == list(b.cells)
        for name in a.cells:
            assert_same(a.cells[name], b.cells[name])
    else:
        assert_same(a, b)


def synthetic(n_genes=7, n_bins=9, seed=0, cell=None) -> HistoneDataset:
    """Every optional field set; awkward values (leading zeros, a comma in a symbol, NaN expression,
    non-integer signal that float32 must keep exactly, 7 marks, a non-default window)."""
    rng = np.random.default_rng(seed)
    signal = (rng.random((n_genes, n_bins, 7)) * 50).astype(np.float32)
    signal[0, 0, 0] = 1e-8
    signal[1, 1, 1] = 123456.789
    expression = rng.lognormal(1, 1, n_genes)
    expression[2] = np.nan
    return HistoneDataset(
        signal=signal,
        gene_ids=[f"{i:06d}" for i in range(n_genes)],
        marks=("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3", "H3K27ac", "H3K9ac"),
        bin_size=50, tss_bin=3,
        symbols=[f"SYM{i}" if i != 4 else "A,B" for i in range(n_genes)],
        chrom=[f"chr{1 + i % 3}" for i in range(n_genes)],
        strand=["+", "-", "."][:1] * 3 + ["-"] * (n_genes - 3),
        expression=expression,
        labels=np.arange(n_genes) % 2,
        split=(["train", "valid", "test"] * n_genes)[:n_genes],
        strand_aware=True,
        cell=cell,
    )


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_round_trip_synthetic(tmp_path, suffix):
    ds = synthetic()
    path = write_long(ds, tmp_path / f"data.{suffix}")
    back = read_dataset(path)
    assert_same(ds, back)
    assert back.meta["format"] == "long" and back.meta["notes"] == []


@pytest.mark.parametrize("suffix", ["csv.gz", "parquet"])
def test_round_trip_minimal_dataset(tmp_path, suffix):
    ds = HistoneDataset(signal=np.arange(24, dtype=np.float32).reshape(2, 4, 3), gene_ids=["a", "b"],
                        marks=("m1", "m2", "m3"))
    back = read_dataset(write_long(ds, tmp_path / f"d.{suffix}"))
    assert_same(ds, back)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_round_trip_multicell(tmp_path, suffix):
    mc = MultiCellDataset({"K562": synthetic(seed=1, cell="K562"), "H1": synthetic(seed=2, cell="H1")})
    back = read_dataset(write_long(mc, tmp_path / f"mc.{suffix}"))
    assert isinstance(back, MultiCellDataset)
    assert_same_data(mc, back)
    renamed = read_dataset(tmp_path / f"mc.{suffix}", cell_names={"H1": "E003"})
    assert renamed.cell_names == ["K562", "E003"] and renamed.cells["E003"].cell == "E003"


@pytest.mark.parametrize("fixture", ["e123_dir", "toy_dir", "deepdiff_dir"])
@pytest.mark.parametrize("suffix", ["csv.gz", "parquet"])
def test_real_data_round_trip(request, tmp_path, fixture, suffix):
    data = read_dataset(request.getfixturevalue(fixture))
    back = read_dataset(write_long(data, tmp_path / f"real.{suffix}"))
    assert_same_data(data, back)


# ------------------------------------------------------------------------ writer properties
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_write_is_deterministic(tmp_path, suffix):
    ds = synthetic()
    a = write_long(ds, tmp_path / f"a.{suffix}").read_bytes()
    b = write_long(synthetic(), tmp_path / f"b.{suffix}").read_bytes()
    assert a == b
    if suffix.endswith(".gz"):
        assert a[4:8] == b"\0\0\0\0"  # gzip mtime 0
        assert a[3] & 0x08 == 0  # no file name in the header


def test_csv_is_plain_and_quotes_only_when_needed(tmp_path):
    ds = synthetic()
    text = gzip.decompress(write_long(ds, tmp_path / "d.csv.gz").read_bytes()).decode()
    header, first = text.splitlines()[:2]
    assert header.startswith("gene_id,symbol,chrom,strand,split,expression,label,strand_aware,bin,bin_start_bp,")
    assert first.startswith('"000000","SYM0","chr1","+","train",')  # a symbol has a comma: text is quoted
    assert '"A,B"' in text
    plain = write_long(ds.subset([0, 1]), tmp_path / "p.csv").read_text()
    assert '"' not in plain and plain.splitlines()[1].startswith("000000,SYM0,chr1,+,train,")


def test_write_replaces_atomically_and_cleans_up_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "d.csv.gz"
    out.write_bytes(b"previous")
    import hmviz.data.formats._files as files

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_long(synthetic(), out)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["d.csv.gz"]


def test_write_unknown_suffix_writes_nothing(tmp_path):
    with pytest.raises(DataError, match=r"cannot tell the output format.*\.parquet"):
        write_long(synthetic(), tmp_path / "d.xlsx")
    assert list(tmp_path.iterdir()) == []


def test_written_file_is_group_readable(tmp_path):
    mode = write_long(synthetic(), tmp_path / "d.parquet").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


# ----------------------------------------------------------------------------- DeepChrome
def test_deepchrome_folder_keeps_file_split(e123_dir):
    ds = read_dataset(e123_dir)
    assert (ds.n_genes, ds.n_bins, ds.marks) == (600, 100, ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"))
    assert (ds.bin_size, ds.tss_bin, ds.flank_bp) == (100, 50, (5000, 5000))
    assert ds.summary()["split"] == {"train": 200, "valid": 200, "test": 200}
    assert ds.split[0] == "train" and ds.split[-1] == "test"


def test_deepchrome_explicit_files_and_leading_zeros(toy_dir):
    ds = read_dataset([toy_dir / "test.csv", toy_dir / "train.csv"])
    assert ds.n_genes == 20 and ds.split[0] == "test" and ds.split[-1] == "train"
    assert ds.gene_ids[10] == "000003"  # ids are text: leading zeros kept
    one = read_dataset(toy_dir / "valid.csv", cell_names=["E000"])
    assert one.n_genes == 10 and set(one.split) == {"valid"} and one.cell == "E000"


def test_files_not_named_by_split_are_joined_without_split(tmp_path, toy_dir):
    (tmp_path / "a.csv").write_bytes((toy_dir / "train.csv").read_bytes())
    (tmp_path / "b.csv").write_bytes((toy_dir / "test.csv").read_bytes())
    ds = read_dataset(tmp_path)
    assert ds.n_genes == 20 and ds.split is None


def test_expression_table_joins_deepchrome_ids_by_ensembl_number(e123_dir, deepdiff_dir):
    ds = read_dataset(e123_dir, expression=deepdiff_dir / "Cell1.expr.csv")
    cell1 = read_dataset(deepdiff_dir).cells["Cell1"]
    assert np.array_equal(ds.expression, cell1.expression)
    assert any("Ensembl number" in n for n in ds.meta["notes"])


# ------------------------------------------------------------------------------- DeepDiff
def test_deepdiff_folder_is_two_cells(deepdiff_dir):
    mc = read_dataset(deepdiff_dir)
    assert isinstance(mc, MultiCellDataset) and mc.cell_names == ["Cell1", "Cell2"]
    c1 = mc.cells["Cell1"]
    assert (c1.n_genes, c1.n_bins, c1.tss_bin, c1.flank_bp) == (600, 200, 100, (10000, 10000))
    assert c1.marks == ("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3")
    assert (c1.gene_ids[0], c1.symbols[0]) == ("ENSG00000130749", "ZC3H4")
    assert np.isfinite(c1.expression).all() and c1.labels is None
    renamed = read_dataset(deepdiff_dir, cell_names=["E123", "E003"])
    assert renamed.cell_names == ["E123", "E003"]
    with pytest.raises(DataError, match="1 cell name.*2 cell"):
        read_dataset(deepdiff_dir, cell_names=["E123"])


def _deepdiff_folder(folder: Path, expr: str) -> None:
    for cell in ("Cell1", "Cell2"):
        rows = [f"ENSG{g}_SYM_{g}_X_{b},1,2,3,4,5" for g in (1, 2, 3) for b in range(1, 5)]
        (folder / f"{cell}.train.csv").write_text("\n".join(rows) + "\n")
        (folder / f"{cell}.expr.csv").write_text(expr)


def test_deepdiff_genes_missing_from_expression_warn(tmp_path, caplog):
    _deepdiff_folder(tmp_path, "geneID,count\nENSG1,10\nENSG3,30\nENSG99,5\n")
    with caplog.at_level(logging.WARNING):
        mc = read_dataset(tmp_path)
    c1 = mc.cells["Cell1"]
    assert np.array_equal(c1.expression, [10, np.nan, 30], equal_nan=True)
    assert c1.symbols[0] == "SYM_1_X"  # the symbol is everything between the first and last "_"
    assert c1.n_bins == 4 and c1.split.tolist() == ["train"] * 3
    assert "1 of 3 genes have no expression value" in caplog.text and "ENSG2" in caplog.text


# ----------------------------------------------------------------------------- long format
def _long_lines(shuffle=False, base=0, starts=None):
    lines = []
    for g in ("gB", "gA", "gC"):
        for b in range(4):
            extra = f",{starts[b]}" if starts else ""
            lines.append(f"{g},{b + base},{b},{ord(g[1])}{extra}")
    if shuffle:
        lines = [lines[i] for i in np.random.default_rng(0).permutation(len(lines))]
    return lines


def test_long_rows_in_any_order(tmp_path, caplog):
    (tmp_path / "sorted.csv").write_text("gene_id,bin,H3K4me3,H3K27me3\n" + "\n".join(_long_lines()) + "\n")
    (tmp_path / "shuffled.csv").write_text("gene_id,bin,H3K4me3,H3K27me3\n"
                                           + "\n".join(_long_lines(shuffle=True, base=1)) + "\n")
    with caplog.at_level(logging.INFO, logger="hmviz"):
        a = read_dataset(tmp_path / "sorted.csv")
    b = read_dataset(tmp_path / "shuffled.csv")
    assert a.gene_ids.tolist() == ["gB", "gA", "gC"]  # order of first appearance
    assert np.array_equal(a.signal[:, :, 0], np.tile(np.arange(4), (3, 1)))
    assert set(b.gene_ids) == set(a.gene_ids)
    assert np.array_equal(b.signal[b.index_of("gA")], a.signal[a.index_of("gA")])
    assert (a.bin_size, a.tss_bin) == (100, 2)
    assert "no bin_start_bp column" in a.meta["notes"][0] and "no bin_start_bp column" in caplog.text


def test_long_bin_start_bp_defines_window(tmp_path):
    starts = [-400, -200, 0, 200]
    (tmp_path / "d.csv").write_text("gene_id,bin,H3K4me3,H3K27me3,bin_start_bp\n"
                                    + "\n".join(_long_lines(starts=starts)) + "\n")
    ds = read_dataset(tmp_path / "d.csv")
    assert (ds.bin_size, ds.tss_bin) == (200, 2) and ds.bin_starts_bp().tolist() == starts
    assert ds.meta["notes"] == []


def test_long_bin_start_bp_off_grid(tmp_path):
    (tmp_path / "d.csv").write_text("gene_id,bin,m,bin_start_bp\n" + "g,0,1,-150\ng,1,1,-50\ng,2,1,50\n")
    with pytest.raises(DataError, match="-150 bp, which is not a whole number of 100-bp bins"):
        read_dataset(tmp_path / "d.csv")


def test_long_tsv_sniffed_bom_crlf_and_gzip(tmp_path):
    text = "gene_id\tbin\tH3K4me3\r\n" + "".join(f"g{g}\t{b}\t{b}\r\n" for g in range(2) for b in range(3))
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())  # tabs despite the .csv name
    (tmp_path / "d2.txt.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("d.csv", "d2.txt.gz"):
        assert detect_format(tmp_path / name) == "long"
        ds = read_dataset(tmp_path / name)
        assert ds.marks == ("H3K4me3",) and ds.signal.shape == (2, 3, 1)


def test_long_case_insensitive_reserved_columns_and_strip(tmp_path):
    (tmp_path / "d.csv").write_text("Gene_ID,Bin,Split,Label,H3K4me3\n"
                                    "g1,0, Train,1,5\ng1,1, Train,1,6\ng2,0,test,0,7\ng2,1,test,0,8\n")
    ds = read_dataset(tmp_path / "d.csv")
    assert ds.split.tolist() == ["train", "test"] and ds.labels.tolist() == [1, 0] and ds.marks == ("H3K4me3",)


def test_parquet_with_integer_ids_and_counts(tmp_path):
    table = pa.table({"gene_id": pa.array([7, 7, 8, 8], pa.int64()), "bin": pa.array([0, 1, 0, 1], pa.int32()),
                      "H3K4me3": pa.array([1, 2, 3, 4], pa.int16())})
    pq.write_table(table, tmp_path / "d.parquet")
    ds = read_dataset(tmp_path / "d.parquet")
    assert ds.gene_ids.tolist() == ["7", "8"] and ds.signal[:, :, 0].tolist() == [[1, 2], [3, 4]]


def test_expression_table_for_long_format(tmp_path, caplog):
    (tmp_path / "d.csv").write_text("gene_id,bin,m\n" + "".join(f"g{g},{b},1\n" for g in range(3) for b in range(2)))
    (tmp_path / "e.tsv").write_text("gene_id\texpression\ng0\t1.5\ng2\t\ng1\tNA\n")
    with caplog.at_level(logging.WARNING):
        ds = read_dataset(tmp_path / "d.csv", expression=tmp_path / "e.tsv")
    assert np.array_equal(ds.expression, [1.5, np.nan, np.nan], equal_nan=True)
    assert "2 of 3 genes have no expression value" in caplog.text
    (tmp_path / "none.csv").write_text("gene_id,expression\nx,1\n")
    with pytest.raises(DataError, match="none of the 3 genes"):
        read_dataset(tmp_path / "d.csv", expression=tmp_path / "none.csv")


def test_read_expression_headerless_and_deepdiff_header(tmp_path):
    (tmp_path / "a.csv").write_text("ENSG1,10\nENSG2,20\n")
    (tmp_path / "b.csv").write_text("geneID,count\nENSG1,10\nENSG2,20\nENSG2,20\n")
    for name in ("a.csv", "b.csv"):
        s = read_expression(tmp_path / name)
        assert s.to_dict() == {"ENSG1": 10.0, "ENSG2": 20.0} and s.name == "expression"


def test_expression_given_twice_is_an_error(tmp_path):
    ds = synthetic()
    write_long(ds, tmp_path / "d.csv")
    (tmp_path / "e.csv").write_text("gene_id,expression\n000000,1\n")
    with pytest.raises(DataError, match="already has an expression column"):
        read_dataset(tmp_path / "d.csv", expression=tmp_path / "e.csv")


def test_same_file_twice_is_an_error(toy_dir):
    with pytest.raises(DataError, match="more than once"):
        read_dataset([toy_dir / "train.csv", toy_dir / "train.csv"])
